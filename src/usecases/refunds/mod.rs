//! Refunds as use-cases, what both the API and the finance console call:
//! an officer asks for one from a payment (or the exception that holds
//! it), a second officer approves or rejects it, lephi sends an approved
//! gateway refund to the provider once and asks about it until it is
//! final ([`gateway`]), and an officer records how a bank transfer or
//! cash went back by hand.

pub mod gateway;

use serde::{Deserialize, Serialize};

use crate::config::RefundSettings;
use crate::domain::audit::Actor;
use crate::domain::idempotency::request_hash;
use crate::domain::payment::Channel;
use crate::domain::refund::{Refund, RefundStatus};
use crate::domain::{AgencyCode, IdempotencyKey, Scope, Timestamp, ValidationError, Vnd, text};
use crate::error::ApiError;
use crate::providers::Providers;
use crate::store::{Created, IdempotentRequest, NewRefund, Principal, Store};

/// A refund as the API shows it.
#[derive(Serialize)]
pub struct RefundView<'a> {
    id: &'a str,
    payment_id: &'a str,
    agency_code: Option<&'a AgencyCode>,
    channel: Channel,
    amount: Vnd,
    reason: &'a str,
    exception_id: Option<&'a str>,
    status: RefundStatus,
    requested_by: &'a str,
    requested_by_name: Option<&'a str>,
    requested_at: Timestamp,
    decided_by: Option<&'a str>,
    decided_by_name: Option<&'a str>,
    decided_at: Option<Timestamp>,
    decision_note: Option<&'a str>,
    request_id: Option<&'a str>,
    submitted_at: Option<Timestamp>,
    provider_refund_id: Option<&'a str>,
    provider_code: Option<&'a str>,
    provider_message: Option<&'a str>,
    reference: Option<&'a str>,
    completed_by: Option<&'a str>,
    completed_by_name: Option<&'a str>,
    completed_at: Option<Timestamp>,
    updated_at: Timestamp,
}

impl<'a> From<&'a Refund> for RefundView<'a> {
    fn from(r: &'a Refund) -> Self {
        RefundView {
            id: &r.id,
            payment_id: &r.payment_id,
            agency_code: r.agency_code.as_ref(),
            channel: r.channel,
            amount: r.amount,
            reason: &r.reason,
            exception_id: r.exception_id.as_deref(),
            status: r.status,
            requested_by: &r.requested_by,
            requested_by_name: r.requested_by_name.as_deref(),
            requested_at: r.requested_at,
            decided_by: r.decided_by.as_deref(),
            decided_by_name: r.decided_by_name.as_deref(),
            decided_at: r.decided_at,
            decision_note: r.decision_note.as_deref(),
            request_id: r.request_id.as_deref(),
            submitted_at: r.submitted_at,
            provider_refund_id: r.provider_refund_id.as_deref(),
            provider_code: r.provider_code.as_deref(),
            provider_message: r.provider_message.as_deref(),
            reference: r.reference.as_deref(),
            completed_by: r.completed_by.as_deref(),
            completed_by_name: r.completed_by_name.as_deref(),
            completed_at: r.completed_at,
            updated_at: r.updated_at,
        }
    }
}

/// What an officer asks: how much of the payment to give back, and why.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefundAsked {
    pub amount: Vnd,
    pub reason: String,
    /// The exception the refund settles; by default the one holding the money.
    #[serde(default)]
    pub exception_id: Option<String>,
}

/// How money went back by hand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaidBack {
    /// The bank's reference of the transfer back, or the counter's receipt number.
    pub reference: String,
    pub paid_back_at: Timestamp,
}

/// The refunds' use-cases over one store and the configured providers.
pub struct Refunds<'a> {
    pub store: &'a Store,
    pub providers: &'a Providers,
    pub settings: &'a RefundSettings,
}

impl Refunds<'_> {
    /// Asks for a refund of payment `payment_id`, once per idempotency key
    /// of the officer's key. Under the agency's threshold it is approved at
    /// once, and a gateway refund is then sent.
    pub async fn request(
        &self,
        principal: &Principal,
        actor: &Actor,
        key: &IdempotencyKey,
        payment_id: &str,
        asked: &RefundAsked,
    ) -> Result<Created, ApiError> {
        let fingerprint = request_hash(&(payment_id, asked)).map_err(|e| ApiError::internal(&e))?;
        let idempotent = IdempotentRequest {
            api_key_id: &principal.key_id,
            key,
            request_hash: &fingerprint,
        };
        if let Some(replay) = self.store.replay(&idempotent).await? {
            return Ok(replay);
        }
        if asked.amount.dong() <= 0 {
            return Err(ValidationError::new("amount", "must be a positive number of đồng").into());
        }
        let reason = text::bounded("reason", &asked.reason, 500)?;
        let exception_id = asked
            .exception_id
            .as_deref()
            .map(|id| text::code("exception_id", id, 64))
            .transpose()?;
        let approval_free_below =
            |agency: Option<&AgencyCode>| self.settings.approval_free_below(agency);
        let created = self
            .store
            .request_refund(
                actor,
                &idempotent,
                &principal.scope,
                &NewRefund {
                    payment_id,
                    amount: asked.amount,
                    reason: &reason,
                    exception_id: exception_id.as_deref(),
                    approval_free_below: &approval_free_below,
                },
                |refund| serde_json::to_string(&RefundView::from(refund)).unwrap_or_default(),
            )
            .await?;
        // Approved at once under the threshold: sent now.
        if created.created
            && let Some(id) = approved_id(&created.body)
        {
            match self.store.refund(&id).await {
                Ok(refund) => self.send_logged(&refund).await,
                Err(err) => {
                    tracing::warn!(refund = %id, error = %crate::error::error_chain(&err), "a refund could not be read to send it; the janitor will")
                }
            }
        }
        Ok(created)
    }

    /// A second officer approves (and a gateway refund is then sent) or
    /// rejects requested refund `id`.
    pub async fn decide(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        approve: bool,
        note: &str,
    ) -> Result<Refund, ApiError> {
        let note = if note.trim().is_empty() && approve {
            String::new()
        } else {
            text::bounded("note", note, 1_000)?
        };
        let decided = self
            .store
            .decide_refund(actor, scope, id, approve, &note)
            .await?;
        if decided.status == RefundStatus::Approved {
            self.send_logged(&decided).await;
            return Ok(self.store.get_refund(scope, id).await?);
        }
        Ok(decided)
    }

    /// Records how approved refund `id` of a bank transfer or cash went back.
    pub async fn complete(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        paid_back: &PaidBack,
    ) -> Result<Refund, ApiError> {
        let reference = text::bounded("reference", &paid_back.reference, 100)?;
        if paid_back.paid_back_at > Timestamp::now() {
            return Err(ValidationError::new("paid_back_at", "must not be in the future").into());
        }
        Ok(self
            .store
            .complete_refund(actor, scope, id, &reference, paid_back.paid_back_at)
            .await?)
    }
}

/// The id in a stored refund answer, if the refund was approved.
fn approved_id(body: &str) -> Option<String> {
    let refund = serde_json::from_str::<serde_json::Value>(body).ok()?;
    (refund["status"] == RefundStatus::Approved.as_str())
        .then(|| refund["id"].as_str().map(str::to_owned))
        .flatten()
}
