//! `/console/attempts`: attempts to pay on a gateway or by transfer, by
//! status, channel, agency and day: where a citizen who says they paid
//! got to, and what the provider answered.

use actix_web::{HttpRequest, HttpResponse, web};

use super::labels::Label;
use super::table::{Cell, Filter, List, ListQuery, Table, agency_filter, choices};
use super::{AGENCY, AMOUNT, CHANNEL, Officer, PAYMENT_CODE, STATUS, Section, lang_of, link};
use crate::domain::payment::{AttemptStatus, Channel};
use crate::error::ApiError;
use crate::pages::{Html, Text, channel_name, text};
use crate::startup::AppState;
use crate::store::AttemptFilter;

pub const ATTEMPTS: Text = text!("Giao dịch trực tuyến", "Payment attempts");

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
    let filter = AttemptFilter {
        status: query.choice("status", AttemptStatus::parse)?,
        channel: query.choice("channel", Channel::parse)?,
        agency_code: query.agency()?,
        created_from: query.from()?,
        created_to: query.to()?,
        after_id: query.cursor(),
        limit: query.limit(),
    };
    let listed = state.store.list_attempts(officer.scope(), &filter).await?;
    Ok(List {
        section: Section::Attempts,
        title: &ATTEMPTS,
        path: "/console/attempts".to_owned(),
        file: "giao-dich-truc-tuyen.csv",
        filters: vec![
            Filter::Choice {
                name: "status",
                label: &STATUS,
                options: choices(
                    [
                        AttemptStatus::Pending,
                        AttemptStatus::Succeeded,
                        AttemptStatus::Failed,
                    ],
                    AttemptStatus::as_str,
                    lang,
                ),
            },
            Filter::Choice {
                name: "channel",
                label: &CHANNEL,
                options: super::table::cashless_channels(lang),
            },
            agency_filter(state, officer).await?,
            Filter::Days,
        ],
        intro: Html::new(),
        table: Table {
            id: "attempts",
            caption: &ATTEMPTS,
            columns: &[
                &text!("Bắt đầu lúc", "Started"),
                &CHANNEL,
                &PAYMENT_CODE,
                &text!("Mã hồ sơ", "Dossier code"),
                &AGENCY,
                &text!("Mã đơn gửi cổng", "Order reference"),
                &STATUS,
                &text!("Cổng trả lời", "Provider's answer"),
                &AMOUNT,
            ],
            rows: listed
                .items
                .iter()
                .map(|a| {
                    let answer = match (&a.attempt.provider_code, &a.attempt.message) {
                        (Some(code), Some(message)) => Some(format!("{code}: {message}")),
                        (Some(code), None) => Some(code.clone()),
                        (None, Some(message)) => Some(message.clone()),
                        (None, None) => None,
                    };
                    vec![
                        Cell::Time(a.attempt.created_at),
                        Cell::text(channel_name(a.attempt.channel, lang)),
                        Cell::link(
                            &a.payment_code,
                            link(
                                lang,
                                &format!("/console/invoices/{}", a.attempt.invoice_id),
                                &[],
                            ),
                        ),
                        Cell::text(&a.dossier_code),
                        Cell::text(&a.agency_code),
                        Cell::text(&a.attempt.order_ref),
                        Cell::text(a.attempt.status.label(lang)),
                        Cell::maybe(answer),
                        Cell::Money(a.attempt.amount),
                    ]
                })
                .collect(),
        },
        next_cursor: listed.next_cursor,
    })
}
