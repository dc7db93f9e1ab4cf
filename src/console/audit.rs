//! `/console/audit`: the audit log of the officer's scope, by person,
//! action, object and day: who did what to which record, when, and from
//! where, each named as people read it.

use actix_web::{HttpRequest, HttpResponse, web};

use super::labels::{ACTIONS, OBJECTS, action_name, actor_name, object_name};
use super::table::{Cell, Filter, List, ListQuery, Table};
use super::{AGENCY, Officer, Section, lang_of};
use crate::error::{ApiError, ErrorCode};
use crate::pages::{Html, Text, text};
use crate::startup::AppState;
use crate::store::AuditFilter;

pub const AUDIT: Text = text!("Nhật ký thao tác", "Audit log");
const WHO: Text = text!("Người thực hiện", "Who");
const ACTION: Text = text!("Thao tác", "Action");
const OBJECT: Text = text!("Đối tượng", "Object");

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    super::table::list_page(req, state, page).await
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    query: &ListQuery,
) -> Result<List<'static>, ApiError> {
    let lang = lang_of(req);
    let invalid = |what: &str| ApiError::bad_request(ErrorCode::InvalidQuery, what.to_owned());
    // The people and keys of the scope, by the name the audit gives them.
    let mut people: Vec<(String, String)> = state
        .store
        .officers(officer.scope())
        .await?
        .into_iter()
        .map(|o| {
            (
                format!("officer:{}", o.id),
                format!("{} <{}>", o.name, o.email),
            )
        })
        .collect();
    people.extend(
        state
            .store
            .list_api_keys(officer.scope())
            .await?
            .into_iter()
            .map(|k| {
                let name = format!("{} ({})", k.name, lang.pick(&text!("khóa API", "API key")));
                (format!("key:{}", k.id), name)
            }),
    );
    let limit = query.limit();
    let filter = AuditFilter {
        object_type: query
            .choice("object_type", |t| {
                OBJECTS.iter().find(|(o, _)| *o == t).map(|(o, _)| *o)
            })?
            .map(str::to_owned),
        object_id: query.text("object_id")?,
        action: query
            .choice("action", |a| {
                ACTIONS.iter().find(|(c, _)| *c == a).map(|(c, _)| *c)
            })?
            .map(str::to_owned),
        actor: query.choice("actor", |a| {
            people
                .iter()
                .find(|(id, _)| id == a)
                .map(|(id, _)| id.clone())
        })?,
        from: query.from()?,
        to: query.to()?,
        before_id: query
            .cursor()
            .map(|c| c.parse::<i64>().map_err(|_| invalid("cursor")))
            .transpose()?,
        // One more than shown tells whether there is a next page.
        limit: limit + 1,
    };
    let mut records = state.store.list_audit(officer.scope(), &filter).await?;
    let next_cursor = if records.len() as i64 > limit {
        records.truncate(usize::try_from(limit).unwrap_or(0));
        records.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(List {
        section: Section::Audit,
        title: &AUDIT,
        path: "/console/audit".to_owned(),
        file: "nhat-ky.csv",
        filters: vec![
            Filter::Choice {
                name: "actor",
                label: &WHO,
                options: people,
            },
            Filter::Choice {
                name: "action",
                label: &ACTION,
                options: ACTIONS
                    .iter()
                    .map(|(code, t)| ((*code).to_owned(), lang.pick(t).to_owned()))
                    .collect(),
            },
            Filter::Choice {
                name: "object_type",
                label: &OBJECT,
                options: OBJECTS
                    .iter()
                    .map(|(code, t)| ((*code).to_owned(), lang.pick(t).to_owned()))
                    .collect(),
            },
            Filter::Text {
                name: "object_id",
                label: &text!("Mã đối tượng", "Object id"),
            },
            Filter::Days,
        ],
        intro: Html::new(),
        table: Table {
            id: "audit",
            caption: &AUDIT,
            columns: &[
                &text!("Thời điểm", "When"),
                &WHO,
                &ACTION,
                &OBJECT,
                &text!("Mã đối tượng", "Object id"),
                &AGENCY,
                &text!("Địa chỉ máy", "Client address"),
            ],
            rows: records
                .iter()
                .map(|r| {
                    vec![
                        Cell::Time(r.at),
                        Cell::text(actor_name(&r.actor, r.actor_name.as_deref(), lang)),
                        Cell::text(action_name(&r.action, lang)),
                        Cell::text(object_name(&r.object_type, lang)),
                        Cell::text(&r.object_id),
                        Cell::maybe(r.agency_code.clone()),
                        Cell::maybe(r.client_addr.clone()),
                    ]
                })
                .collect(),
        },
        next_cursor,
    })
}
