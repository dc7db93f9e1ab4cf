//! `/v1/exceptions`: payments that wait for a finance officer.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{
    Caller, JsonBody, page_limit, path_id, query_agency, query_choice, query_text, query_time,
};
use crate::domain::payment::{ExceptionKind, ExceptionStatus, PaymentException, Resolution};
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::ExceptionFilter;
use crate::usecases::exceptions;

#[derive(Serialize)]
struct ExceptionView<'a> {
    id: &'a str,
    kind: ExceptionKind,
    status: ExceptionStatus,
    payment_id: Option<&'a str>,
    invoice_id: Option<&'a str>,
    agency_code: Option<&'a AgencyCode>,
    amount: Option<Vnd>,
    detail: &'a str,
    opened_at: Timestamp,
    /// The statement line that found it.
    settlement_line: Option<LineRef<'a>>,
    dossier_code: Option<&'a str>,
    resolution: Option<ResolutionView<'a>>,
}

#[derive(Serialize)]
struct LineRef<'a> {
    settlement_id: &'a str,
    line_no: i64,
}

#[derive(Serialize)]
struct ResolutionView<'a> {
    resolution: Resolution,
    note: &'a str,
    payment_id: Option<&'a str>,
    resolved_by: &'a str,
    resolved_by_name: Option<&'a str>,
    resolved_at: Timestamp,
}

impl<'a> From<&'a PaymentException> for ExceptionView<'a> {
    fn from(x: &'a PaymentException) -> Self {
        ExceptionView {
            id: &x.id,
            kind: x.kind,
            status: x.status,
            payment_id: x.payment_id.as_deref(),
            invoice_id: x.invoice_id.as_deref(),
            agency_code: x.agency_code.as_ref(),
            amount: x.amount,
            detail: &x.detail,
            opened_at: x.opened_at,
            settlement_line: x.settlement_line.as_ref().map(|(file, line)| LineRef {
                settlement_id: file,
                line_no: *line,
            }),
            dossier_code: x.dossier_code.as_deref(),
            resolution: x.resolved.as_ref().map(|r| ResolutionView {
                resolution: r.resolution,
                note: &r.note,
                payment_id: r.payment_id.as_deref(),
                resolved_by: &r.by,
                resolved_by_name: r.by_name.as_deref(),
                resolved_at: r.at,
            }),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    kind: Option<String>,
    status: Option<String>,
    agency_code: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Finance, Role::Admin])?;
    let query = query.into_inner();
    let filter = ExceptionFilter {
        kind: query_choice(
            "kind",
            query.kind.as_deref(),
            ExceptionKind::parse,
            &ExceptionKind::names(),
        )?,
        status: query_choice(
            "status",
            query.status.as_deref(),
            ExceptionStatus::parse,
            "open, resolved",
        )?,
        agency_code: query_agency(query.agency_code.as_deref())?,
        opened_from: query_time("from", query.from.as_deref())?,
        opened_to: query_time("to", query.to.as_deref())?,
        after_id: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_exceptions(caller.scope(), &filter).await?;
    Ok(super::page_of(&page, ExceptionView::from))
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Finance, Role::Admin])?;
    let id = path_id("the exception", &id)?;
    let exception = state.store.get_exception(caller.scope(), id).await?;
    Ok(HttpResponse::Ok().json(ExceptionView::from(&exception)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    resolution: String,
    note: String,
    payment_id: Option<String>,
}

/// Records a finance officer's decision; the payment stays as recorded.
/// An admin may decide too: money of no known agency (naming no order, on
/// no agency's account) is in no finance officer's scope.
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<Resolve>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Finance, Role::Admin])?;
    let id = path_id("the exception", &id)?;
    let body = body.value;
    let exception = exceptions::resolve(
        &state.store,
        &caller.actor(),
        caller.scope(),
        id,
        &body.resolution,
        &body.note,
        body.payment_id.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(ExceptionView::from(&exception)))
}
