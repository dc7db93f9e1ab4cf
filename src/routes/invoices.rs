//! `/v1/invoices`: dossier systems issue invoices; every role reads its scope.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{
    Caller, JsonBody, idempotency_key, page_limit, path_id, query_agency, query_choice, query_text,
    query_time,
};
use crate::domain::idempotency::request_hash;
use crate::domain::invoice::{FeeKind, FeeLine, InvoiceDraft, Payer};
use crate::domain::payment::{Channel, ExceptionKind};
use crate::domain::receipt::Receipt;
use crate::domain::refund::HeldMoney;
use crate::domain::{AgencyCode, Invoice, InvoiceStatus, NewInvoice, Role, Timestamp, Vnd};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{Created, IdempotentRequest, InvoiceFilter};

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateInvoice {
    dossier_code: String,
    procedure_code: String,
    procedure_name: String,
    agency_code: String,
    payer: PayerBody,
    lines: Vec<LineBody>,
    expires_at: Option<Timestamp>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PayerBody {
    name: String,
    id_number: Option<String>,
    phone: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    kind: FeeKind,
    description: String,
    amount: Vnd,
}

impl CreateInvoice {
    fn parse(&self, state: &AppState, now: Timestamp) -> Result<NewInvoice, ApiError> {
        let payer = Payer::parse(
            &self.payer.name,
            self.payer.id_number.as_deref(),
            self.payer.phone.as_deref(),
            self.payer.email.as_deref(),
        )?;
        let lines = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| FeeLine::parse(i, line.kind, &line.description, line.amount))
            .collect::<Result<Vec<_>, _>>()?;
        let draft = InvoiceDraft {
            dossier_code: &self.dossier_code,
            procedure_code: &self.procedure_code,
            procedure_name: &self.procedure_name,
            agency_code: &self.agency_code,
            payer,
            lines,
            expires_at: self.expires_at,
        };
        Ok(NewInvoice::parse(draft, &state.invoice_limits, now)?)
    }

    /// A hash of what was asked, to tell a replay from a different
    /// request under the same key.
    fn fingerprint(&self) -> Result<String, ApiError> {
        request_hash(self).map_err(|e| ApiError::internal(&e))
    }
}

/// An invoice as the API shows it: the payer's id number masked.
#[derive(Serialize)]
pub struct InvoiceView<'a> {
    id: &'a str,
    payment_code: &'a str,
    status: InvoiceStatus,
    total: Vnd,
    amount_paid: Vnd,
    agency_code: &'a AgencyCode,
    dossier_code: &'a str,
    procedure_code: &'a str,
    procedure_name: &'a str,
    lines: &'a [FeeLine],
    payer: PayerView<'a>,
    checkout_url: String,
    created_at: Timestamp,
    expires_at: Timestamp,
    /// The receipt, once the invoice is paid.
    receipt: Option<&'a Receipt>,
    /// Money received and not applied (paid twice, late, of the wrong
    /// amount, beyond the total), less what was refunded of it.
    amount_held: Vnd,
    amount_refunded: Vnd,
    held_payments: Vec<HeldPaymentView<'a>>,
}

/// A payment received for the invoice that holds money or was refunded,
/// with what was given back.
#[derive(Serialize)]
struct HeldPaymentView<'a> {
    payment_id: &'a str,
    channel: Channel,
    amount: Vnd,
    applied: Vnd,
    reason: Option<ExceptionKind>,
    received_at: Timestamp,
    refunded: Vnd,
    refunding: Vnd,
    held: Vnd,
    refund_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct PayerView<'a> {
    name: &'a str,
    id_number: Option<String>,
    phone: Option<&'a str>,
    email: Option<&'a str>,
}

impl<'a> InvoiceView<'a> {
    pub fn new(invoice: &'a Invoice, public_url: &str, held: &'a HeldMoney) -> InvoiceView<'a> {
        InvoiceView {
            id: &invoice.id,
            payment_code: invoice.payment_code.as_str(),
            status: invoice.status,
            total: invoice.total,
            amount_paid: invoice.amount_paid,
            agency_code: &invoice.agency_code,
            dossier_code: &invoice.dossier_code,
            procedure_code: &invoice.procedure_code,
            procedure_name: &invoice.procedure_name,
            lines: &invoice.lines,
            payer: PayerView {
                name: &invoice.payer.name,
                id_number: invoice.payer.masked_id_number(),
                phone: invoice.payer.phone.as_deref(),
                email: invoice.payer.email.as_deref(),
            },
            checkout_url: format!("{public_url}/pay/{}", invoice.payment_code),
            created_at: invoice.created_at,
            expires_at: invoice.expires_at,
            receipt: invoice.receipt.as_ref(),
            amount_held: held.amount_held(),
            amount_refunded: held.amount_refunded(),
            held_payments: held
                .payments
                .iter()
                .map(|p| HeldPaymentView {
                    payment_id: &p.payment_id,
                    channel: p.channel,
                    amount: p.amount,
                    applied: p.applied,
                    reason: p.kind,
                    received_at: p.received_at,
                    refunded: p.refunded(),
                    refunding: p.refunding(),
                    held: p.still_held(),
                    refund_ids: p.refunds.iter().map(|r| r.id.as_str()).collect(),
                })
                .collect(),
        }
    }
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateInvoice>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::AgencySystem])?;
    let key = idempotency_key(&req, "issue an invoice")?;
    let request = body.value;
    let fingerprint = request.fingerprint()?;
    let idempotent = IdempotentRequest {
        api_key_id: &caller.principal.key_id,
        key: &key,
        request_hash: &fingerprint,
    };
    // A key already used answers from the issuing transaction, which
    // claims it first. A body refused now (its `expires_at` passed, say)
    // may still be a replay, which answers as the first request did.
    let new = match request.parse(&state, Timestamp::now()) {
        Ok(new) => new,
        Err(refused) => {
            return match state.store.replay(&idempotent).await? {
                Some(replay) => Ok(respond(replay)),
                None => Err(refused),
            };
        }
    };
    let created = state
        .store
        .create_invoice(
            &caller.actor(),
            caller.scope(),
            &idempotent,
            &new,
            |invoice| {
                serde_json::to_string(&InvoiceView::new(
                    invoice,
                    &state.public_url,
                    &HeldMoney::default(),
                ))
                .unwrap_or_default()
            },
        )
        .await?;
    if created.created {
        state.metrics.invoices_created.inc();
    }
    Ok(respond(created))
}

/// The answer of an idempotent create, marked as a replay or not.
pub fn respond(created: Created) -> HttpResponse {
    let status = StatusCode::from_u16(created.status).unwrap_or(StatusCode::CREATED);
    HttpResponse::build(status)
        .content_type("application/json")
        .insert_header((
            "Idempotent-Replayed",
            if created.created { "false" } else { "true" },
        ))
        .body(created.body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    dossier_code: Option<String>,
    status: Option<String>,
    agency_code: Option<String>,
    created_from: Option<String>,
    created_to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let status = query_choice(
        "status",
        query.status.as_deref(),
        InvoiceStatus::parse,
        "open, paid, cancelled, expired",
    )?;
    let agency_code = query_agency(query.agency_code.as_deref())?;
    let filter = InvoiceFilter {
        dossier_code: query_text("dossier_code", query.dossier_code)?,
        status,
        agency_code,
        created_from: query_time("created_from", query.created_from.as_deref())?,
        created_to: query_time("created_to", query.created_to.as_deref())?,
        after_id: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_invoices(caller.scope(), &filter).await?;
    let ids: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
    let held = state.store.held_money_of(&ids).await?;
    let none = HeldMoney::default();
    Ok(super::page_of(&page, |invoice| {
        InvoiceView::new(
            invoice,
            &state.public_url,
            held.get(&invoice.id).unwrap_or(&none),
        )
    }))
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id("the invoice", &id)?;
    let invoice = state.store.get_invoice(caller.scope(), id).await?;
    let held = state.store.held_money(&invoice.id).await?;
    Ok(HttpResponse::Ok().json(InvoiceView::new(&invoice, &state.public_url, &held)))
}

pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::AgencySystem, Role::Admin])?;
    let id = path_id("the invoice", &id)?;
    let invoice = state
        .store
        .cancel_invoice(&caller.actor(), caller.scope(), id)
        .await?;
    let held = state.store.held_money(&invoice.id).await?;
    Ok(HttpResponse::Ok().json(InvoiceView::new(&invoice, &state.public_url, &held)))
}
