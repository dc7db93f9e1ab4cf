//! Cash received at the counter, as an officer records it.

use serde::{Deserialize, Serialize};

use crate::domain::audit::Actor;
use crate::domain::idempotency::request_hash;
use crate::domain::payment::{Channel, Payment, PaymentSource};
use crate::domain::{IdempotencyKey, Timestamp, ValidationError, Vnd, text};
use crate::error::ApiError;
use crate::providers::signing::vietnam_time;
use crate::store::{Created, IdempotentRequest, IncomingPayment, PaymentFor, Principal, Store};

/// Cash an officer received for an invoice.
#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CashPayment {
    pub amount: Vnd,
    /// The number on the paper receipt handed to the payer.
    pub receipt_number: String,
    pub received_at: Timestamp,
}

/// Records cash received at the counter for invoice `id`, once per
/// idempotency key of the officer's key. `view` makes the answer kept
/// for a replay of the same key.
pub async fn record(
    store: &Store,
    principal: &Principal,
    actor: &Actor,
    key: &IdempotencyKey,
    id: &str,
    body: CashPayment,
    view: impl FnOnce(&Payment) -> String,
) -> Result<Created, ApiError> {
    let fingerprint = request_hash(&(id, &body)).map_err(|e| ApiError::internal(&e))?;
    let idempotent = IdempotentRequest {
        api_key_id: &principal.key_id,
        key,
        request_hash: &fingerprint,
    };
    if let Some(replay) = store.replay(&idempotent).await? {
        return Ok(replay);
    }
    if body.amount.dong() <= 0 {
        return Err(ValidationError::new("amount", "must be a positive number of đồng").into());
    }
    let receipt_number = text::code("receipt_number", &body.receipt_number, 50)?;
    if body.received_at > Timestamp::now() {
        return Err(ValidationError::new("received_at", "must not be in the future").into());
    }
    // Receipt numbers run per agency and restart each year (Decree
    // 123/2020): the agency and the year make them unique.
    let scope = &principal.scope;
    let invoice = store.get_invoice(scope, id).await?;
    let year = vietnam_time(body.received_at).year();
    let provider_txn_id = format!("{}/{year}/{receipt_number}", invoice.agency_code);
    Ok(store
        .record_cash_payment(
            actor,
            &idempotent,
            &IncomingPayment {
                channel: Channel::Cash,
                provider_txn_id: &provider_txn_id,
                amount: body.amount,
                paid_for: PaymentFor::Invoice { scope, id },
                paid_at: Some(body.received_at),
                source: PaymentSource::Counter,
            },
            view,
        )
        .await?)
}
