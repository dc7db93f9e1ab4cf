//! `/v1/payments` and `/v1/invoices/{id}/payments`: money received, and
//! cash recorded at the counter.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{
    Caller, JsonBody, idempotency_key, page_limit, path_id, query_agency, query_choice, query_text,
    query_time,
};
use crate::domain::payment::{Channel, ExceptionKind, Payment, PaymentSource};
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::PaymentFilter;
use crate::usecases::cash::{self, CashPayment};

/// A payment as the API shows it.
#[derive(Serialize)]
pub struct PaymentView<'a> {
    id: &'a str,
    channel: Channel,
    provider_txn_id: &'a str,
    amount: Vnd,
    invoice_id: Option<&'a str>,
    agency_code: Option<&'a AgencyCode>,
    reference: &'a str,
    /// Why the amount was not applied to the invoice; `null` when it was.
    exception: Option<ExceptionKind>,
    source: PaymentSource,
    paid_at: Option<Timestamp>,
    recorded_at: Timestamp,
    /// Who recorded it (cash at the counter), as people read it.
    recorded_by_name: Option<&'a str>,
}

impl<'a> From<&'a Payment> for PaymentView<'a> {
    fn from(payment: &'a Payment) -> Self {
        PaymentView {
            id: &payment.id,
            channel: payment.channel,
            provider_txn_id: &payment.provider_txn_id,
            amount: payment.amount,
            invoice_id: payment.invoice_id.as_deref(),
            agency_code: payment.agency_code.as_ref(),
            reference: &payment.reference,
            exception: payment.exception,
            source: payment.source,
            paid_at: payment.paid_at,
            recorded_at: payment.recorded_at,
            recorded_by_name: payment.recorded_by_name.as_deref(),
        }
    }
}

const READERS: &[Role] = &[Role::Finance, Role::Admin];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    invoice_id: Option<String>,
    channel: Option<String>,
    agency_code: Option<String>,
    recorded_from: Option<String>,
    recorded_to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let query = query.into_inner();
    let filter = PaymentFilter {
        invoice_id: query_text("invoice_id", query.invoice_id)?,
        channel: query_choice(
            "channel",
            query.channel.as_deref(),
            Channel::parse,
            "vnpay, momo, zalopay, bank_transfer, cash",
        )?,
        agency_code: query_agency(query.agency_code.as_deref())?,
        recorded_from: query_time("recorded_from", query.recorded_from.as_deref())?,
        recorded_to: query_time("recorded_to", query.recorded_to.as_deref())?,
        after_id: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_payments(caller.scope(), &filter).await?;
    Ok(super::page_of(&page, PaymentView::from))
}

pub async fn of_invoice(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = path_id("the invoice", &id)?;
    let payments = state.store.invoice_payments(caller.scope(), id).await?;
    let items: Vec<PaymentView> = payments.iter().map(PaymentView::from).collect();
    Ok(HttpResponse::Ok().json(super::Items { items }))
}

pub async fn record_cash(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<CashPayment>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Finance])?;
    let id = path_id("the invoice", &id)?;
    let key = idempotency_key(&req, "record a cash payment")?;
    let created = cash::record(
        &state.store,
        &caller.principal,
        &caller.actor(),
        &key,
        id,
        body.value,
        |payment| serde_json::to_string(&PaymentView::from(payment)).unwrap_or_default(),
    )
    .await?;
    Ok(super::invoices::respond(created))
}
