//! Payment providers, one file each, behind one interface.
//!
//! A provider verifies its callbacks over the exact bytes received (with a
//! constant-time comparison, and no default that accepts), turns them into
//! one [`CallbackEvent`], and writes its answer in its own format. A
//! gateway (VNPay, MoMo, ZaloPay) also starts payments.

pub mod bank_transfer;
pub mod casso;
pub mod momo;
pub mod sepay;
pub mod signing;
pub mod vnpay;
pub mod zalopay;

use actix_web::http::header::HeaderMap;

use crate::config::ProviderSettings;
use crate::domain::payment::Channel;
use crate::domain::{Timestamp, Vnd};

/// A callback as received, before any parsing.
pub struct CallbackRequest<'a> {
    /// The raw query string, without the `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub received_at: Timestamp,
}

/// What a verified callback reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackEvent {
    /// Money was received.
    Paid(ReceivedPayment),
    /// The payment for this order failed or was declined.
    Failed {
        order_ref: String,
        provider_code: String,
        message: String,
    },
    /// The provider does not know the outcome yet.
    Pending {
        order_ref: String,
        provider_code: String,
    },
    /// Nothing to record, such as an outgoing bank transfer.
    Ignored { reason: &'static str },
}

/// Money a provider says it received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedPayment {
    pub channel: Channel,
    /// The provider's own id of the transaction: unique per channel.
    pub provider_txn_id: String,
    pub target: PaymentTarget,
    pub amount: Vnd,
    /// When the provider says the payer paid, if it says.
    pub paid_at: Option<Timestamp>,
    /// For a bank transfer: the receiving account, which names the agency
    /// even when the note names no invoice.
    pub account_number: Option<String>,
}

/// What a payment was for, as the provider names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentTarget {
    /// The reference lephi gave the provider for an attempt
    /// (`vnp_TxnRef`, MoMo's `orderId`, ZaloPay's `app_trans_id`).
    Order(String),
    /// A bank transfer's free-text note, which should carry a payment code.
    TransferNote(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("the signature is missing or does not match")]
    BadSignature,
    #[error("the callback is malformed: {0}")]
    Malformed(String),
}

/// What lephi made of a verified callback; each provider words its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A new payment, applied to its invoice.
    Recorded,
    /// This payment was recorded before; nothing changed.
    AlreadyRecorded,
    /// Recorded as an exception: no attempt or invoice matches.
    UnknownOrder,
    /// Recorded as an exception: the amount is not what is owed.
    AmountMismatch,
    /// Recorded as an exception: the invoice was already paid, cancelled
    /// or expired.
    InvoiceClosed,
    /// A failed, pending or ignored result, noted.
    Noted,
}

/// A provider's answer to its callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    /// A JSON body, or none (MoMo wants `204 No Content`).
    pub body: Option<String>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            body: Some(body.to_string()),
        }
    }
}

/// The callback side of a provider.
pub trait Provider: Send + Sync {
    fn channel(&self) -> Channel;

    /// Verifies the signature over the bytes received, then parses.
    fn verify(&self, request: &CallbackRequest<'_>) -> Result<CallbackEvent, CallbackError>;

    /// The answer once the event is stored (or found stored before).
    fn acknowledge(&self, verdict: Verdict) -> Reply;

    /// The answer to a callback that failed verification or parsing.
    fn reject(&self, error: &CallbackError) -> Reply;

    /// The answer when lephi cannot store the event now: the provider
    /// should call again.
    fn retry_later(&self) -> Reply;
}

/// What a gateway needs to start a payment.
#[derive(Debug, Clone)]
pub struct StartRequest<'a> {
    /// The attempt's reference, as the gateway will name it in its callback.
    pub order_ref: &'a str,
    pub amount: Vnd,
    /// ASCII text without diacritics shown to the payer.
    pub description: &'a str,
    pub created_at: Timestamp,
    /// When the gateway should stop accepting payment.
    pub expires_at: Timestamp,
    /// Where the payer's browser returns.
    pub return_url: &'a str,
    /// Where the gateway sends its callback.
    pub ipn_url: &'a str,
    pub client_ip: &'a str,
    /// `vn` or `en`.
    pub locale: &'a str,
}

/// A started payment: where to send the payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub pay_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider refused with code {code}: {message}")]
    Refused { code: String, message: String },
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider's answer could not be understood: {0}")]
    BadAnswer(String),
}

impl ProviderError {
    /// The provider's own code, or one of ours when it gave none.
    pub fn provider_code(&self) -> &str {
        match self {
            ProviderError::Refused { code, .. } => code,
            ProviderError::Timeout => "timeout",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::BadAnswer(_) => "bad_answer",
        }
    }

    pub(crate) fn from_http(err: reqwest::Error) -> ProviderError {
        if err.is_timeout() {
            ProviderError::Timeout
        } else if err.is_decode() {
            ProviderError::BadAnswer(err.to_string())
        } else {
            ProviderError::Unreachable(err.without_url().to_string())
        }
    }
}

/// The configured providers.
pub struct Providers {
    pub vnpay: Option<vnpay::Vnpay>,
    pub momo: Option<momo::Momo>,
    pub zalopay: Option<zalopay::Zalopay>,
    pub sepay: Option<sepay::Sepay>,
    pub casso: Option<casso::Casso>,
    http: reqwest::Client,
}

impl Providers {
    pub fn from_settings(settings: &ProviderSettings) -> anyhow::Result<Providers> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(settings.timeout_secs))
            .build()?;
        Ok(Providers {
            vnpay: settings.vnpay.clone().map(vnpay::Vnpay::new),
            momo: settings.momo.clone().map(momo::Momo::new),
            zalopay: settings.zalopay.clone().map(zalopay::Zalopay::new),
            sepay: settings.sepay.clone().map(sepay::Sepay::new),
            casso: settings.casso.clone().map(casso::Casso::new),
            http,
        })
    }

    /// The provider whose callback is served at `/callbacks/{name}`, if
    /// it is configured.
    pub fn callback(&self, name: &str) -> Option<&dyn Provider> {
        match name {
            "vnpay" => self.vnpay.as_ref().map(|p| p as &dyn Provider),
            "momo" => self.momo.as_ref().map(|p| p as &dyn Provider),
            "zalopay" => self.zalopay.as_ref().map(|p| p as &dyn Provider),
            "sepay" => self.sepay.as_ref().map(|p| p as &dyn Provider),
            "casso" => self.casso.as_ref().map(|p| p as &dyn Provider),
            _ => None,
        }
    }

    /// Whether payments can be started on `channel`. Bank transfers need
    /// no credentials to start (only the agency's account).
    pub fn can_start(&self, channel: Channel) -> bool {
        match channel {
            Channel::Vnpay => self.vnpay.is_some(),
            Channel::Momo => self.momo.is_some(),
            Channel::Zalopay => self.zalopay.is_some(),
            Channel::BankTransfer => true,
            Channel::Cash => false,
        }
    }

    /// The amounts a gateway takes, where it has limits.
    pub fn amount_limits(&self, channel: Channel) -> Option<(Vnd, Vnd)> {
        match channel {
            Channel::Momo => Some(momo::AMOUNT_LIMITS),
            _ => None,
        }
    }

    /// A new order reference for an attempt on a gateway `channel`.
    pub fn order_ref(&self, channel: Channel, now: Timestamp) -> String {
        match channel {
            Channel::Zalopay => zalopay::app_trans_id(now, &mut rand::rng()),
            _ => signing::order_ref(now, &mut rand::rng()),
        }
    }

    /// Starts a payment on a gateway; `None` if the channel is not a
    /// configured gateway.
    pub async fn start(
        &self,
        channel: Channel,
        request: &StartRequest<'_>,
    ) -> Option<Result<Started, ProviderError>> {
        Some(match channel {
            Channel::Vnpay => self.vnpay.as_ref()?.start(request),
            Channel::Momo => self.momo.as_ref()?.start(&self.http, request).await,
            Channel::Zalopay => self.zalopay.as_ref()?.start(&self.http, request).await,
            Channel::BankTransfer | Channel::Cash => return None,
        })
    }
}
