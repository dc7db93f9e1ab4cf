//! `/v1/dossiers`: the dossier register, imported from the dossier
//! systems' CSV files, and each dossier's payments and outcome.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, FileBody, page_limit, query_agency, query_choice, query_text};
use crate::domain::Scope;
use crate::domain::audit::Actor;
use crate::domain::dossier::{DossierOutcome, parse_received_at, parse_register};
use crate::domain::payment::Channel;
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::{DossierFilter, DossierImportSummary, ReconciledDossier, StoreError};

const OFFICERS: &[Role] = &[Role::Finance, Role::Admin];

/// A registered dossier as the API shows it.
#[derive(Serialize)]
struct DossierView<'a> {
    agency_code: &'a AgencyCode,
    dossier_code: &'a str,
    procedure_code: &'a str,
    fee_amount: Vnd,
    received_at: Timestamp,
    status: &'a str,
    /// Every payment for the dossier's invoices, applied or not.
    received_amount: Vnd,
    payment_count: u64,
    channels: &'a [Channel],
    outcome: DossierOutcome,
}

impl<'a> From<&'a ReconciledDossier> for DossierView<'a> {
    fn from(r: &'a ReconciledDossier) -> Self {
        DossierView {
            agency_code: &r.dossier.agency_code,
            dossier_code: &r.dossier.dossier_code,
            procedure_code: &r.dossier.procedure_code,
            fee_amount: r.dossier.fee_amount,
            received_at: r.dossier.received_at,
            status: &r.dossier.status,
            received_amount: r.payments.received,
            payment_count: r.payments.count,
            channels: &r.payments.channels,
            outcome: r.outcome,
        }
    }
}

/// Imports a register sent as the raw `text/csv` body, up to
/// `reconciliation.max_file_bytes`.
pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    body: FileBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let summary = import_as(&state, &caller.actor(), caller.scope(), body.0).await?;
    Ok(HttpResponse::Ok().json(summary))
}

/// Imports a register: what both the API and the finance console do.
pub(crate) async fn import_as(
    state: &AppState,
    actor: &Actor,
    scope: &Scope,
    bytes: web::Bytes,
) -> Result<DossierImportSummary, ApiError> {
    // A large file takes a while to parse: off the server's threads.
    let register = web::block(move || parse_register(&bytes))
        .await
        .map_err(|err| ApiError::internal(&err))?
        .map_err(|err| StoreError::ImportRefused {
            line: err.line,
            message: err.message,
        })?;
    Ok(state.store.import_dossiers(actor, scope, &register).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    agency_code: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

/// A received-time bound: an RFC 3339 time, or a day in Vietnam.
fn query_received(field: &'static str, value: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|text| {
            parse_received_at(text).map_err(|_| {
                ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    format!("{field} must be an RFC 3339 time with an offset, or a day YYYY-MM-DD"),
                )
            })
        })
        .transpose()
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let query = query.into_inner();
    let filter = DossierFilter {
        agency_code: query_agency(query.agency_code.as_deref())?,
        outcome: query_choice(
            "outcome",
            query.outcome.as_deref(),
            DossierOutcome::parse,
            &DossierOutcome::names(),
        )?,
        received_from: query_received("from", query.from.as_deref())?,
        received_to: query_received("to", query.to.as_deref())?,
        after: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_dossiers(caller.scope(), &filter).await?;
    Ok(super::page_of(&page, DossierView::from))
}
