//! `/v1/settlements`: providers' and banks' statements, imported and
//! matched to payments, and their lines.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, FileBody, page_limit, path_id, query_choice, query_text};
use crate::domain::Scope;
use crate::domain::audit::Actor;
use crate::domain::payment::Channel;
use crate::domain::settlement::{LineOutcome, statement_account};
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::{Imported, SettledLine, SettlementLineFilter, SettlementSummary, StatementFile};

const OFFICERS: &[Role] = &[Role::Finance, Role::Admin];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    channel: Option<String>,
    profile: Option<String>,
    /// The account a bank statement is of.
    account: Option<String>,
}

/// An import's answer: its summary, and whether this file was imported
/// before (then nothing changed).
#[derive(Serialize)]
struct ImportView<'a> {
    #[serde(flatten)]
    summary: &'a SettlementSummary,
    already_imported: bool,
}

pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ImportQuery>,
    body: FileBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner();
    let imported = import_as(
        &state,
        &caller.actor(),
        caller.scope(),
        query.channel.as_deref(),
        query.profile,
        query.account.as_deref(),
        &body.0,
    )
    .await?;
    let view = ImportView {
        summary: &imported.summary,
        already_imported: !imported.new,
    };
    Ok(if imported.new {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Imports a statement of `channel` read with `profile` (the channel's
/// default if none): what both the API and the finance console do.
pub(crate) async fn import_as(
    state: &AppState,
    actor: &Actor,
    scope: &Scope,
    channel: Option<&str>,
    profile: Option<String>,
    account: Option<&str>,
    bytes: &[u8],
) -> Result<Imported, ApiError> {
    let channel = query_choice(
        "channel",
        channel,
        |c| Channel::parse(c).filter(|c| c.is_cashless()),
        "vnpay, momo, zalopay, bank_transfer",
    )?
    .ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "channel is required: vnpay, momo, zalopay or bank_transfer",
        )
    })?;
    let profile_name = query_text("profile", profile)?
        .unwrap_or_else(|| crate::reconcile::Profiles::default_for(channel).to_owned());
    let profile = state.profiles.get(&profile_name).ok_or_else(|| {
        ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!(
                "profile must be one of {}",
                state.profiles.names().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    if !profile.fits(channel) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("profile {profile_name} does not read {channel} statements"),
        ));
    }
    let account = statement_account(channel, account)
        .map_err(|message| ApiError::bad_request(ErrorCode::InvalidQuery, message))?;
    Ok(state
        .store
        .import_statement(
            actor,
            scope,
            &StatementFile {
                channel,
                profile: (&profile_name, profile),
                bytes,
                settlement_days: state
                    .settings
                    .reconciliation
                    .settlement_days
                    .of(channel)
                    .unwrap_or(0),
                account_number: account,
            },
        )
        .await?)
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

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the statement", &id)?;
    let summary = state.store.get_settlement(caller.scope(), id).await?;
    Ok(HttpResponse::Ok().json(summary))
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
