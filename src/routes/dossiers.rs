//! `/v1/dossiers`: the dossier register, imported from the dossier
//! systems' CSV files, and each dossier's payments and outcome.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, page_limit, path_id, query_agency, query_choice, query_text};
use crate::domain::dossier::{DossierOutcome, parse_received_at};
use crate::domain::payment::Channel;
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::{DossierFilter, DossierImportSummary, ReconciledDossier, RegisterImport};

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

/// A register import as the API shows it: its job's status and progress,
/// and once done its summary's counts.
#[derive(Serialize)]
struct RegisterImportView<'a> {
    #[serde(flatten)]
    import: &'a RegisterImport,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    summary: Option<&'a DossierImportSummary>,
    /// On an upload: whether the same file was queued already (then
    /// nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    already_queued: Option<bool>,
}

/// `POST /v1/dossiers/import`: the body, a `text/csv` register, is
/// streamed to the upload folder (up to `reconciliation.max_file_bytes`)
/// and queued; the answer comes at once, 202 with the import to follow at
/// its `Location` (200 with that import for the same file already queued).
pub async fn import(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let upload = super::stream_upload(&req, &state, payload).await?;
    let queued = state
        .importer
        .queue_register(&caller.actor(), caller.scope(), &upload)
        .await?;
    let view = RegisterImportView {
        import: &queued.import,
        summary: queued.import.summary.as_ref(),
        already_queued: Some(!queued.new),
    };
    let location = format!("/v1/dossiers/imports/{}", queued.import.id);
    let mut answer = if queued.new {
        HttpResponse::Accepted()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer
        .insert_header((header::LOCATION, location))
        .json(view))
}

/// `GET /v1/dossiers/imports/{id}`.
pub async fn import_job(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the register import", &id)?;
    let import = state.store.register_import(caller.scope(), id).await?;
    Ok(HttpResponse::Ok().json(RegisterImportView {
        import: &import,
        summary: import.summary.as_ref(),
        already_queued: None,
    }))
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
