//! `/v1/payments/{id}/refunds` and `/v1/refunds`: money given back, asked
//! for by one finance officer and approved by another.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{
    Caller, JsonBody, idempotency_key, page_limit, path_id, query_agency, query_choice, query_text,
};
use crate::domain::Role;
use crate::domain::refund::RefundStatus;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::RefundFilter;
use crate::usecases::refunds::{PaidBack, RefundAsked, RefundView};

/// Finance officers ask for, approve and record refunds; an admin too,
/// for money of no known agency, which is in no finance officer's scope.
const OFFICERS: &[Role] = &[Role::Finance, Role::Admin];

pub async fn request(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<RefundAsked>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the payment", &id)?;
    let key = idempotency_key(&req, "ask for a refund")?;
    let created = state
        .refunds()
        .request(&caller.principal, &caller.actor(), &key, id, &body.value)
        .await?;
    Ok(super::invoices::respond(created))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    payment_id: Option<String>,
    status: Option<String>,
    agency_code: Option<String>,
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
    let filter = RefundFilter {
        payment_id: query_text("payment_id", query.payment_id)?,
        status: query_choice(
            "status",
            query.status.as_deref(),
            RefundStatus::parse,
            &RefundStatus::names(),
        )?,
        agency_code: query_agency(query.agency_code.as_deref())?,
        after_id: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_refunds(caller.scope(), &filter).await?;
    Ok(super::page_of(&page, RefundView::from))
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the refund", &id)?;
    let refund = state.store.get_refund(caller.scope(), id).await?;
    Ok(HttpResponse::Ok().json(RefundView::from(&refund)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    note: String,
}

pub async fn approve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<Decision>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, id, body, true).await
}

pub async fn reject(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<Decision>,
) -> Result<HttpResponse, ApiError> {
    decide(state, caller, id, body, false).await
}

async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<Decision>,
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the refund", &id)?;
    let refund = state
        .refunds()
        .decide(
            &caller.actor(),
            caller.scope(),
            id,
            approve,
            &body.value.note,
        )
        .await?;
    Ok(HttpResponse::Ok().json(RefundView::from(&refund)))
}

pub async fn complete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<PaidBack>,
) -> Result<HttpResponse, ApiError> {
    caller.require(OFFICERS)?;
    let id = path_id("the refund", &id)?;
    let refund = state
        .refunds()
        .complete(&caller.actor(), caller.scope(), id, &body.value)
        .await?;
    Ok(HttpResponse::Ok().json(RefundView::from(&refund)))
}
