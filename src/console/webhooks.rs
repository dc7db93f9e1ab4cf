//! `/console/webhooks`: the events lephi tells the dossier systems, and
//! where each delivery stands: delivered, still being tried, held until
//! the agency sets its webhook, or dead after every try failed. A dead
//! letter (or any event) is sent again with "redeliver", as the API's
//! `POST /v1/events/{id}/redeliver` does, audited.

use actix_web::{HttpRequest, HttpResponse, web};

use super::labels::Label;
use super::table::{Cell, Filter, List, ListQuery, Table, choices};
use super::{AGENCY, Officer, STATUS, Section, lang_of, link, see_other, session};
use crate::error::ApiError;
use crate::pages::{Html, Text, text};
use crate::startup::AppState;
use crate::store::{EventFilter, EventStatus, EventType};

pub const WEBHOOKS: Text = text!("Thông báo cho hệ thống một cửa", "Webhook deliveries");
const REDELIVER: Text = text!("Gửi lại", "Redeliver");
const TYPES: [EventType; 5] = [
    EventType::PaymentReceived,
    EventType::InvoicePaid,
    EventType::ExceptionOpened,
    EventType::RefundSucceeded,
    EventType::RefundFailed,
];

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
    let filter = EventFilter {
        status: query.choice("status", EventStatus::parse)?,
        event_type: query
            .choice("type", |t| TYPES.into_iter().find(|k| k.as_str() == t))?
            .map(|t| t.as_str().to_owned()),
        after_id: query.cursor(),
        limit: query.limit(),
    };
    let listed = state.store.list_events(officer.scope(), &filter).await?;
    let mut intro = Html::new();
    if query.get("redelivered").is_some() {
        intro
            .raw("<p class=\"message\" role=\"status\" id=\"redelivered\">")
            .t(
                lang,
                &text!(
                    "Đã yêu cầu gửi lại; thông báo sẽ được gửi trong ít phút.",
                    "Redelivery asked for; the event is sent within minutes."
                ),
            )
            .raw("</p>");
    }
    let dead = state
        .store
        .list_events(
            officer.scope(),
            &EventFilter {
                status: Some(EventStatus::Dead),
                event_type: None,
                after_id: None,
                limit: 100,
            },
        )
        .await?;
    intro.raw("<section class=\"card\"><p id=\"dead-letters\">");
    if dead.items.is_empty() {
        intro.t(
            lang,
            &text!(
                "Không có thông báo nào gửi không được.",
                "No event has failed every delivery."
            ),
        );
    } else {
        intro
            .raw("<strong class=\"bad\">")
            .text(&crate::pages::count(dead.items.len() as u64, lang))
            .raw(if dead.next_cursor.is_some() { "+" } else { "" })
            .raw("</strong> ")
            .t(
                lang,
                &text!(
                    "thông báo đã gửi hết số lần mà không được (thư chết). Kiểm tra địa chỉ nhận của cơ quan rồi bấm «Gửi lại».",
                    "events failed every delivery (dead letters). Check the agency's webhook, then press Redeliver."
                ),
            )
            .raw(" <a href=\"")
            .text(&link(lang, "/console/webhooks", &[("status", "dead")]))
            .raw("\">")
            .t(lang, &text!("Xem thư chết", "See the dead letters"))
            .raw("</a>");
    }
    intro.raw("</p></section>");
    let csrf = officer.csrf.clone();
    Ok(List {
        section: Section::Webhooks,
        title: &WEBHOOKS,
        path: "/console/webhooks".to_owned(),
        file: "thong-bao.csv",
        filters: vec![
            Filter::Choice {
                name: "status",
                label: &STATUS,
                options: choices(
                    [
                        EventStatus::Dead,
                        EventStatus::Pending,
                        EventStatus::Held,
                        EventStatus::Delivered,
                    ],
                    EventStatus::as_str,
                    lang,
                ),
            },
            Filter::Choice {
                name: "type",
                label: &text!("Loại thông báo", "Event type"),
                options: choices(TYPES, EventType::as_str, lang),
            },
        ],
        intro,
        table: Table {
            id: "events",
            caption: &WEBHOOKS,
            columns: &[
                &text!("Tạo lúc", "Created"),
                &text!("Loại thông báo", "Event type"),
                &AGENCY,
                &STATUS,
                &text!("Số lần đã gửi", "Deliveries tried"),
                &text!("Lỗi gần nhất", "Last error"),
                &text!("Gửi được lúc", "Delivered"),
                &REDELIVER,
            ],
            rows: listed
                .items
                .iter()
                .map(|e| {
                    let kind = TYPES.into_iter().find(|k| k.as_str() == e.event_type);
                    vec![
                        Cell::Time(e.created_at),
                        Cell::text(kind.map_or(e.event_type.as_str(), |k| k.label(lang))),
                        Cell::maybe(e.agency_code.as_ref().map(|c| c.to_string())),
                        Cell::text(e.status.label(lang)),
                        Cell::Count(e.attempts),
                        Cell::maybe(
                            e.last_error
                                .as_deref()
                                .map(|err| super::labels::delivery_error(err, lang)),
                        ),
                        e.delivered_at.map_or(Cell::Empty, Cell::Time),
                        if e.status == EventStatus::Delivered || e.status == EventStatus::Held {
                            Cell::Empty
                        } else {
                            Cell::Button {
                                action: link(
                                    lang,
                                    &format!("/console/webhooks/{}/redeliver", e.id),
                                    &[],
                                ),
                                label: &REDELIVER,
                                csrf: csrf.clone(),
                            }
                        },
                    ]
                })
                .collect(),
        },
        next_cursor: listed.next_cursor,
    })
}

/// `POST /console/webhooks/{id}/redeliver`.
pub async fn redeliver(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, _form) = match session::posted_form(&req, &state, payload).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    if id.len() > 64 || id.chars().any(char::is_control) {
        return super::error_page(&req, Some(&officer), &ApiError::not_found("the event"));
    }
    match state
        .store
        .redeliver_event(&officer.actor(), officer.scope(), &id)
        .await
    {
        Ok(_) => see_other(&link(lang, "/console/webhooks", &[("redelivered", "1")])),
        Err(err) => super::error_page(&req, Some(&officer), &err.into()),
    }
}
