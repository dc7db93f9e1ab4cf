//! `/console/statements`: the settlement statements imported in the
//! officer's scope, whatever became of them (queued, running, done,
//! refused), each with who imported it; `/console/statements/{id}`: a
//! done statement's lines, by outcome, each with the payment it settled.

use actix_web::{HttpRequest, HttpResponse, web};

use super::labels::Label;
use super::table::{Cell, Filter, List, ListQuery, Table, choices};
use super::{AGENCY, AMOUNT, CHANNEL, Officer, STATUS, Section, lang_of, link};
use crate::domain::payment::Channel;
use crate::domain::settlement::LineOutcome;
use crate::error::ApiError;
use crate::pages::{Html, Text, channel_name, text};
use crate::startup::AppState;
use crate::store::SettlementLineFilter;

pub const STATEMENTS: Text = text!("Sao kê đã nhập", "Statements");
const IMPORTED_BY: Text = text!("Người nhập", "Imported by");
const OUTCOME: Text = text!("Kết quả đối chiếu", "Outcome");

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    super::table::list_page(req, state, imports).await
}

async fn imports(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    query: &ListQuery,
) -> Result<List<'static>, ApiError> {
    let lang = lang_of(req);
    let channel = query.choice("channel", Channel::parse)?;
    let listed = state
        .store
        .list_statement_imports(
            officer.scope(),
            channel,
            query.cursor().as_deref(),
            query.limit(),
        )
        .await?;
    let count = |n: u64| Cell::Count(i64::try_from(n).unwrap_or(i64::MAX));
    Ok(List {
        section: Section::Statements,
        title: &STATEMENTS,
        path: "/console/statements".to_owned(),
        file: "sao-ke.csv",
        filters: vec![Filter::Choice {
            name: "channel",
            label: &CHANNEL,
            options: super::table::cashless_channels(lang),
        }],
        intro: Html::new(),
        table: Table {
            id: "statements",
            caption: &STATEMENTS,
            columns: &[
                &text!("Thời điểm nhập", "Imported"),
                &CHANNEL,
                &STATUS,
                &text!("Số dòng", "Lines"),
                &text!("Dòng khớp", "Matched"),
                &text!("Ngoại lệ mở", "Exceptions opened"),
                &IMPORTED_BY,
                &text!("Các dòng", "Lines"),
            ],
            rows: listed
                .items
                .iter()
                .map(|import| {
                    let (lines, matched, exceptions) = match &import.summary {
                        Some(s) => (
                            s.lines,
                            s.outcomes.get(&LineOutcome::Matched).copied().unwrap_or(0),
                            s.exceptions_opened,
                        ),
                        None => (
                            import
                                .progress
                                .lines_total
                                .unwrap_or(import.progress.lines_checked),
                            import.progress.lines_matched,
                            import.progress.exceptions_so_far,
                        ),
                    };
                    vec![
                        Cell::Time(import.imported_at),
                        Cell::text(channel_name(import.channel, lang)),
                        Cell::link(
                            import.status.label(lang),
                            link(
                                lang,
                                &format!("/console/uploads/statements/{}", import.id),
                                &[],
                            ),
                        ),
                        count(lines),
                        count(matched),
                        count(exceptions),
                        Cell::maybe(import.imported_by_name.clone()),
                        if import.summary.is_some() {
                            Cell::link(
                                lang.pick(&text!("Xem các dòng", "See the lines")),
                                link(lang, &format!("/console/statements/{}", import.id), &[]),
                            )
                        } else {
                            Cell::Empty
                        },
                    ]
                })
                .collect(),
        },
        next_cursor: listed.next_cursor,
    })
}

/// `GET /console/statements/{id}`: a statement's lines.
pub async fn lines(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let id = id.into_inner();
    super::table::list_page(req, state, async |req, state, officer, query| {
        statement_lines(req, state, officer, query, &id).await
    })
    .await
}

async fn statement_lines(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    query: &ListQuery,
    id: &str,
) -> Result<List<'static>, ApiError> {
    let lang = lang_of(req);
    if id.len() > 64 || id.chars().any(char::is_control) {
        return Err(ApiError::not_found("the statement"));
    }
    let import = state.store.statement_import(officer.scope(), id).await?;
    let filter = SettlementLineFilter {
        outcome: query.choice("outcome", LineOutcome::parse)?,
        after_line: query
            .cursor()
            .map(|c| c.parse::<i64>())
            .transpose()
            .map_err(|_| ApiError::bad_request(crate::error::ErrorCode::InvalidQuery, "cursor"))?,
        limit: query.limit(),
    };
    let listed = state
        .store
        .settlement_lines(officer.scope(), id, &filter)
        .await?;
    let mut intro = Html::new();
    intro
        .raw("<section class=\"card\"><p>")
        .text(&format!(
            "{} · {} · {}",
            channel_name(import.channel, lang),
            crate::pages::vietnam_minute(import.imported_at),
            import.imported_by_name.as_deref().unwrap_or_default()
        ))
        .raw("</p><p><a href=\"")
        .text(&link(lang, "/console/statements", &[]))
        .raw("\">")
        .t(
            lang,
            &text!("Về danh sách sao kê", "Back to the statements"),
        )
        .raw("</a></p></section>");
    Ok(List {
        section: Section::Statements,
        title: &text!("Các dòng của sao kê", "A statement's lines"),
        path: format!("/console/statements/{id}"),
        file: "dong-sao-ke.csv",
        filters: vec![Filter::Choice {
            name: "outcome",
            label: &OUTCOME,
            options: choices(LineOutcome::ALL, LineOutcome::as_str, lang),
        }],
        intro,
        table: Table {
            id: "lines",
            caption: &text!("Các dòng", "Lines"),
            columns: &[
                &text!("Dòng", "Line"),
                &text!("Mã giao dịch", "Transaction id"),
                &text!("Nội dung / mã tham chiếu", "Reference"),
                &text!("Thời điểm giao dịch", "Transaction time"),
                &AMOUNT,
                &text!("Phí", "Fee"),
                &OUTCOME,
                &AGENCY,
            ],
            rows: listed
                .items
                .iter()
                .map(|line| {
                    vec![
                        Cell::Count(line.line_no),
                        Cell::text(&line.txn_ref),
                        Cell::text(&line.reference),
                        Cell::Time(line.transaction_time),
                        Cell::Money(line.amount),
                        Cell::Money(line.fee),
                        Cell::text(line.outcome.label(lang)),
                        Cell::maybe(line.agency_code.as_ref().map(|c| c.to_string())),
                    ]
                })
                .collect(),
        },
        next_cursor: listed.next_cursor,
    })
}
