//! `/console/register`: the dossier register as reconciled against the
//! payments: each dossier with what it was charged, what was received,
//! through which channels, and what that makes of it (unpaid, underpaid,
//! paid twice…), by outcome, agency and day received.

use actix_web::{HttpRequest, HttpResponse, web};

use super::labels::Label;
use super::table::{Cell, Filter, List, ListQuery, Table, agency_filter, choices};
use super::{AGENCY, DOSSIER, Officer, Section, lang_of};
use crate::domain::dossier::DossierOutcome;
use crate::error::ApiError;
use crate::pages::{Html, Text, channel_name, text};
use crate::startup::AppState;
use crate::store::DossierFilter;

pub const REGISTER: Text = text!("Sổ hồ sơ", "Dossier register");
const OUTCOME: Text = text!("Kết quả thu", "Outcome");

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
    let filter = DossierFilter {
        agency_code: query.agency()?,
        outcome: query.choice("outcome", DossierOutcome::parse)?,
        received_from: query.from()?,
        received_to: query.to()?,
        after: query.cursor(),
        limit: query.limit(),
    };
    let listed = state.store.list_dossiers(officer.scope(), &filter).await?;
    let mut intro = Html::new();
    intro.raw("<p class=\"note\">").t(
        lang,
        &text!(
            "Mỗi hồ sơ trong sổ hồ sơ đã nhập, với số phí phải nộp và các khoản đã nhận cho hồ sơ đó.",
            "Each dossier of the imported register, with its fee and the payments received for it."
        ),
    );
    intro.raw("</p>");
    Ok(List {
        section: Section::Register,
        title: &REGISTER,
        path: "/console/register".to_owned(),
        file: "so-ho-so.csv",
        filters: vec![
            Filter::Choice {
                name: "outcome",
                label: &OUTCOME,
                options: choices(DossierOutcome::ALL, DossierOutcome::as_str, lang),
            },
            agency_filter(state, officer).await?,
            Filter::Days,
        ],
        intro,
        table: Table {
            id: "dossiers",
            caption: &REGISTER,
            columns: &[
                &text!("Ngày nhận hồ sơ", "Received"),
                &DOSSIER,
                &text!("Mã thủ tục", "Procedure"),
                &AGENCY,
                &text!("Phí phải nộp", "Fee"),
                &text!("Đã nhận", "Received"),
                &text!("Số khoản", "Payments"),
                &text!("Kênh", "Channels"),
                &OUTCOME,
            ],
            rows: listed
                .items
                .iter()
                .map(|d| {
                    vec![
                        Cell::Time(d.dossier.received_at),
                        Cell::text(&d.dossier.dossier_code),
                        Cell::text(&d.dossier.procedure_code),
                        Cell::text(d.dossier.agency_code.as_str()),
                        Cell::Money(d.dossier.fee_amount),
                        Cell::Money(d.payments.received),
                        Cell::Count(i64::try_from(d.payments.count).unwrap_or(i64::MAX)),
                        Cell::text(
                            d.payments
                                .channels
                                .iter()
                                .map(|c| channel_name(*c, lang))
                                .collect::<Vec<_>>()
                                .join(", "),
                        ),
                        Cell::text(d.outcome.label(lang)),
                    ]
                })
                .collect(),
        },
        next_cursor: listed.next_cursor,
    })
}
