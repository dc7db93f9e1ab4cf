//! `/v1/settlements`: providers' and banks' statements, imported and
//! matched to payments, and their lines.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, page_limit, path_id, query_choice, query_text};
use crate::domain::payment::Channel;
use crate::domain::settlement::LineOutcome;
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::{SettledLine, SettlementLineFilter, StatementImport};

const OFFICERS: &[Role] = &[Role::Finance, Role::Admin];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    channel: Option<String>,
    profile: Option<String>,
    /// The account a bank statement is of.
    account: Option<String>,
}

/// An import as the API shows it: its job's status and progress, and once
/// done its summary's counts.
#[derive(Serialize)]
pub(crate) struct ImportView<'a> {
    #[serde(flatten)]
    import: &'a StatementImport,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    counts: Option<SummaryCounts<'a>>,
    /// On an upload: whether this file was queued before (then nothing
    /// changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    already_imported: Option<bool>,
}

/// What a done import found, as its summary counts it.
#[derive(Serialize)]
struct SummaryCounts<'a> {
    lines: u64,
    outcomes: &'a std::collections::BTreeMap<LineOutcome, u64>,
    rematched_lines: u64,
    unsettled_payments: u64,
    settled_later: u64,
    exceptions_opened: u64,
}

impl<'a> ImportView<'a> {
    pub(crate) fn of(import: &'a StatementImport, already_imported: Option<bool>) -> Self {
        ImportView {
            import,
            counts: import.summary.as_ref().map(|s| SummaryCounts {
                lines: s.lines,
                outcomes: &s.outcomes,
                rematched_lines: s.rematched_lines,
                unsettled_payments: s.unsettled_payments,
                settled_later: s.settled_later,
                exceptions_opened: s.exceptions_opened,
            }),
            already_imported,
        }
    }
}

/// `POST /v1/settlements`: the body, a `text/csv` statement, is streamed
/// to the upload folder and queued; the answer comes at once, 202 with
/// the import to follow at its `Location` (200 with the first import for
/// a file sent before).
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner();
    let profile = query_text("profile", query.profile)?;
    let upload = super::stream_upload(&req, &state, payload).await?;
    let queued = state
        .importer
        .queue_statement(
            &caller.actor(),
            caller.scope(),
            query.channel.as_deref(),
            profile.as_deref(),
            query.account.as_deref(),
            &upload,
        )
        .await?;
    let view = ImportView::of(&queued.import, Some(!queued.new));
    let location = format!("/v1/settlements/{}", queued.import.id);
    Ok(if queued.new {
        HttpResponse::Accepted()
            .insert_header((header::LOCATION, location))
            .json(view)
    } else {
        HttpResponse::Ok()
            .insert_header((header::LOCATION, location))
            .json(view)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner();
    let cursor = query_text("cursor", query.cursor)?;
    let page = state
        .store
        .list_settlements(caller.scope(), cursor.as_deref(), page_limit(query.limit)?)
        .await?;
    Ok(super::page_of(&page, |summary| summary))
}

/// An import, wherever its job is.
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the statement", &id)?;
    let import = state.store.statement_import(caller.scope(), id).await?;
    Ok(HttpResponse::Ok().json(ImportView::of(&import, None)))
}

/// A statement line as the API shows it.
#[derive(Serialize)]
struct LineView<'a> {
    line_no: i64,
    channel: Channel,
    /// The provider's transaction id, or the bank's reference.
    txn_ref: &'a str,
    /// The order reference, or the transfer's description.
    reference: &'a str,
    amount: Vnd,
    fee: Vnd,
    transaction_time: Timestamp,
    settlement_date: &'a str,
    outcome: LineOutcome,
    payment_id: Option<&'a str>,
    agency_code: Option<&'a AgencyCode>,
}

impl<'a> From<&'a SettledLine> for LineView<'a> {
    fn from(line: &'a SettledLine) -> Self {
        LineView {
            line_no: line.line_no,
            channel: line.channel,
            txn_ref: &line.txn_ref,
            reference: &line.reference,
            amount: line.amount,
            fee: line.fee,
            transaction_time: line.transaction_time,
            settlement_date: &line.settlement_date,
            outcome: line.outcome,
            payment_id: line.payment_id.as_deref(),
            agency_code: line.agency_code.as_ref(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinesQuery {
    outcome: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn lines(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<LinesQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the statement", &id)?;
    let query = query.into_inner();
    let after_line = query
        .cursor
        .map(|cursor| {
            cursor.parse::<i64>().map_err(|_| {
                ApiError::bad_request(ErrorCode::InvalidQuery, "cursor is not a line number")
            })
        })
        .transpose()?;
    let filter = SettlementLineFilter {
        outcome: query_choice(
            "outcome",
            query.outcome.as_deref(),
            LineOutcome::parse,
            "matched, amount_mismatch, missing_payment, duplicate_line",
        )?,
        after_line,
        limit: page_limit(query.limit)?,
    };
    let page = state
        .store
        .settlement_lines(caller.scope(), id, &filter)
        .await?;
    Ok(super::page_of(&page, LineView::from))
}
