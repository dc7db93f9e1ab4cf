//! `/v1/invoices/{id}/attempts`: start paying an invoice on one channel.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Caller, JsonBody, path_id};
use crate::domain::audit::Actor;
use crate::domain::payment::{Attempt, AttemptStatus, Channel};
use crate::domain::{Invoice, Role, Scope, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::providers::bank_transfer::{self, TransferInstructions};
use crate::providers::{ProviderError, StartRequest};
use crate::startup::AppState;
use crate::store::OpenedAttempt;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartAttempt {
    channel: String,
    /// The gateway page's language: `vn` (default) or `en`.
    locale: Option<String>,
}

#[derive(Serialize)]
struct AttemptView<'a> {
    id: &'a str,
    invoice_id: &'a str,
    channel: Channel,
    order_ref: &'a str,
    amount: Vnd,
    status: AttemptStatus,
    /// Where to send the payer (gateways).
    pay_url: Option<&'a str>,
    /// What the payer transfers, and to whom (bank transfer).
    bank_transfer: Option<TransferInstructions>,
    created_at: Timestamp,
}

pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: JsonBody<StartAttempt>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::AgencySystem])?;
    let id = path_id("the invoice", &id)?;
    let body = body.value;
    let channel = Channel::parse(&body.channel)
        .filter(|c| c.is_cashless())
        .ok_or_else(|| {
            ApiError::validation(crate::domain::ValidationError::new(
                "channel",
                "must be one of vnpay, momo, zalopay, bank_transfer",
            ))
        })?;
    let locale = match body.locale.as_deref() {
        None | Some("vn") => "vn",
        Some("en") => "en",
        Some(_) => {
            return Err(ApiError::validation(crate::domain::ValidationError::new(
                "locale",
                "must be vn or en",
            )));
        }
    };
    let client_ip = crate::client_addr::of(&req)
        .map(|addr| addr.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let starter = Starter {
        actor: caller.actor(),
        scope: caller.scope(),
        client_ip,
        locale,
    };
    let StartedAttempt {
        attempt,
        bank_transfer,
        ..
    } = start_attempt(&state, &starter, id, channel).await?;
    Ok(HttpResponse::Created().json(AttemptView {
        id: &attempt.id,
        invoice_id: &attempt.invoice_id,
        channel: attempt.channel,
        order_ref: &attempt.order_ref,
        amount: attempt.amount,
        status: attempt.status,
        pay_url: attempt.pay_url.as_deref(),
        bank_transfer,
        created_at: attempt.created_at,
    }))
}

/// Who starts paying, and from where.
pub struct Starter<'a> {
    pub actor: Actor,
    /// The invoices this starter may pay.
    pub scope: &'a Scope,
    /// The payer's address, which gateways want to know.
    pub client_ip: String,
    /// The gateway page's language: `vn` or `en`.
    pub locale: &'a str,
}

/// An attempt that has started: what the payer needs next.
pub struct StartedAttempt {
    /// With the gateway's `pay_url`, for a gateway.
    pub attempt: Attempt,
    /// What to transfer, and to whom, for a bank transfer.
    pub bank_transfer: Option<TransferInstructions>,
}

/// Starts paying invoice `invoice_id` on `channel`, the one way both the
/// API and the checkout page do: opens the attempt, then for a gateway
/// asks it for the payer's URL (a refusal fails the attempt and answers
/// 502 `provider_error`), or for a bank transfer gives the agency's
/// account with the VietQR payload.
pub async fn start_attempt(
    state: &AppState,
    starter: &Starter<'_>,
    invoice_id: &str,
    channel: Channel,
) -> Result<StartedAttempt, ApiError> {
    if !state.providers.can_start(channel) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ChannelUnavailable,
            format!("{channel} is not configured on this service"),
        )
        .with_details(json!({ "channel": channel })));
    }
    let now = Timestamp::now();
    let order_ref = match channel {
        Channel::BankTransfer => None,
        gateway => Some(state.providers.order_ref(gateway, now)),
    };
    let actor = &starter.actor;
    let opened = state
        .store
        .open_attempt(
            actor,
            starter.scope,
            invoice_id,
            channel,
            order_ref,
            state.providers.amount_limits(channel),
        )
        .await?;
    let OpenedAttempt {
        mut attempt,
        invoice,
        bank_account,
    } = opened;
    let mut bank_transfer = None;
    if let Some(account) = bank_account {
        bank_transfer = Some(bank_transfer::instructions(
            &account.bank_bin,
            &account.account_number,
            &account.account_name,
            attempt.amount,
            invoice.payment_code.as_str(),
        ));
    } else {
        let pay_url = start_on_gateway(
            state,
            &attempt,
            &invoice,
            starter.locale,
            &starter.client_ip,
        )
        .await;
        match pay_url {
            Ok(pay_url) => {
                state.store.attempt_started(&attempt.id, &pay_url).await?;
                attempt.pay_url = Some(pay_url);
            }
            Err(err) => {
                state
                    .store
                    .attempt_failed(
                        actor,
                        channel,
                        &attempt.order_ref,
                        err.provider_code(),
                        &err.to_string(),
                    )
                    .await?;
                tracing::warn!(%channel, attempt = %attempt.id, error = %err, "the provider refused to start a payment");
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::ProviderError,
                    format!("{channel} could not start the payment: {err}"),
                )
                .with_details(json!({
                    "channel": channel,
                    "provider_code": err.provider_code(),
                    "attempt_id": attempt.id,
                })));
            }
        }
    }
    Ok(StartedAttempt {
        attempt,
        bank_transfer,
    })
}

async fn start_on_gateway(
    state: &AppState,
    attempt: &Attempt,
    invoice: &Invoice,
    locale: &str,
    client_ip: &str,
) -> Result<String, ProviderError> {
    let description = format!(
        "Thanh toan phi ho so {} ma {}",
        ascii_words(&invoice.dossier_code),
        invoice.payment_code
    );
    // The payer comes back to the return page, which shows where the
    // payment stands (and never records it: the callback does).
    let return_url = format!(
        "{}/pay/{}/return/{}",
        state.public_url, invoice.payment_code, attempt.channel
    );
    let ipn_url = format!("{}/callbacks/{}", state.public_url, attempt.channel);
    // The gateway stops taking payment when the invoice expires, and
    // within a day at most.
    let expires_at = attempt
        .created_at
        .plus(time::Duration::days(1))
        .map_or(invoice.expires_at, |day| day.min(invoice.expires_at));
    let request = StartRequest {
        order_ref: &attempt.order_ref,
        amount: attempt.amount,
        description: &description,
        created_at: attempt.created_at,
        expires_at,
        return_url: &return_url,
        ipn_url: &ipn_url,
        client_ip,
        locale,
    };
    match state.providers.start(attempt.channel, &request).await {
        Some(started) => started.map(|s| s.pay_url),
        None => Err(ProviderError::BadAnswer(format!(
            "{} is not a gateway",
            attempt.channel
        ))),
    }
}

/// Letters, digits and a few separators: what gateways accept in an
/// order description.
fn ascii_words(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '/' | '_'))
        .take(60)
        .collect()
}
