//! Payment providers, one file each, behind one interface.
//!
//! A provider verifies its callbacks over the exact bytes received (with a
//! constant-time comparison, and no default that accepts), turns them into
//! one [`CallbackEvent`], and writes its answer in its own format. A
//! gateway (VNPay, MoMo, ZaloPay) also starts payments, answers status
//! queries, and refunds (see [`refund`]).

pub mod bank_transfer;
pub mod casso;
pub mod momo;
pub mod record;
pub mod refund;
pub mod sepay;
pub mod signing;
pub mod vnpay;
pub mod zalopay;

use actix_web::http::header::HeaderMap;

use crate::config::ProviderSettings;
use crate::domain::payment::Channel;
use crate::domain::{Timestamp, Vnd};

pub use refund::{RefundAnswer, RefundRequest};

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

impl CallbackEvent {
    /// Checks what the provider named before it is stored: references and
    /// transaction ids are short visible text (a NUL byte, which PostgreSQL
    /// refuses in text, would otherwise turn a valid callback into an
    /// endless retry); a transfer note keeps its words, with control
    /// characters made spaces.
    pub fn checked(self) -> Result<CallbackEvent, CallbackError> {
        fn reference(what: &str, value: &str) -> Result<(), CallbackError> {
            if value.is_empty()
                || value.chars().count() > 100
                || value.chars().any(char::is_control)
            {
                return Err(CallbackError::Malformed(format!(
                    "{what} must be 1 to 100 visible characters"
                )));
            }
            Ok(())
        }
        match self {
            CallbackEvent::Paid(mut payment) => {
                reference("the transaction id", &payment.provider_txn_id)?;
                match &mut payment.target {
                    PaymentTarget::Order(order_ref) => reference("the order reference", order_ref)?,
                    PaymentTarget::TransferNote(note) => *note = visible(note, 500),
                }
                if let Some(account) = &payment.account_number {
                    reference("the account number", account)?;
                }
                Ok(CallbackEvent::Paid(payment))
            }
            CallbackEvent::Failed {
                order_ref,
                provider_code,
                message,
            } => {
                reference("the order reference", &order_ref)?;
                Ok(CallbackEvent::Failed {
                    order_ref,
                    provider_code: visible(&provider_code, 50),
                    message: visible(&message, 300),
                })
            }
            CallbackEvent::Pending { ref order_ref, .. } => {
                reference("the order reference", order_ref)?;
                Ok(self)
            }
            CallbackEvent::Ignored { .. } => Ok(self),
        }
    }
}

/// At most `max` characters of `text`, control characters made spaces.
fn visible(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
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

impl Verdict {
    /// The verdict as a metric label.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Recorded => "recorded",
            Verdict::AlreadyRecorded => "already_recorded",
            Verdict::UnknownOrder => "unknown_order",
            Verdict::AmountMismatch => "amount_mismatch",
            Verdict::InvoiceClosed => "invoice_closed",
            Verdict::Noted => "noted",
        }
    }
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
    /// The provider knows no transaction for the order: the payer never
    /// went through with it, or has not yet.
    #[error("the provider has no transaction for this order (code {code})")]
    NotFound { code: String },
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the provider's answer could not be understood: {0}")]
    BadAnswer(String),
    #[error("the provider's answer is not signed with our key")]
    BadSignature,
}

impl ProviderError {
    /// The provider's own code, or one of ours when it gave none.
    pub fn provider_code(&self) -> &str {
        match self {
            ProviderError::Refused { code, .. } | ProviderError::NotFound { code } => code,
            ProviderError::Timeout => "timeout",
            ProviderError::Unreachable(_) => "unreachable",
            ProviderError::BadAnswer(_) => "bad_answer",
            ProviderError::BadSignature => "bad_signature",
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

    /// The gateways configured here, which can be asked where an attempt
    /// stands.
    pub fn queryable(&self) -> Vec<Channel> {
        [
            (Channel::Vnpay, self.vnpay.is_some()),
            (Channel::Momo, self.momo.is_some()),
            (Channel::Zalopay, self.zalopay.is_some()),
        ]
        .into_iter()
        .filter_map(|(channel, configured)| configured.then_some(channel))
        .collect()
    }

    /// Asks a gateway where the attempt `order_ref`, created at
    /// `created_at`, stands; its answer is verified and checked as a
    /// callback is. `None` if the channel is not a configured gateway.
    pub async fn query(
        &self,
        channel: Channel,
        order_ref: &str,
        created_at: Timestamp,
    ) -> Option<Result<CallbackEvent, ProviderError>> {
        let answer = match channel {
            Channel::Vnpay => {
                self.vnpay
                    .as_ref()?
                    .query(&self.http, order_ref, created_at)
                    .await
            }
            Channel::Momo => self.momo.as_ref()?.query(&self.http, order_ref).await,
            Channel::Zalopay => self.zalopay.as_ref()?.query(&self.http, order_ref).await,
            Channel::BankTransfer | Channel::Cash => return None,
        };
        Some(answer.and_then(|event| {
            event
                .checked()
                .map_err(|err| ProviderError::BadAnswer(err.to_string()))
        }))
    }
}

#[cfg(test)]
mod hostile_input {
    //! Every provider's callback parser, fed random and mutated bytes:
    //! it answers with a verdict or a refusal, and never panics.

    use actix_web::http::header::{HeaderName, HeaderValue};
    use proptest::prelude::*;
    use secrecy::SecretString;

    use super::*;
    use crate::config::*;

    fn providers() -> Vec<Box<dyn Provider>> {
        let secret = |s: &str| SecretString::from(s.to_owned());
        vec![
            Box::new(vnpay::Vnpay::new(VnpaySettings {
                tmn_code: "LEPHI001".into(),
                hash_secret: secret("vnpay-secret"),
                previous_hash_secret: None,
                payment_url: "https://pay.example/vpcpay.html".into(),
                api_url: "https://pay.example/api".into(),
            })),
            Box::new(momo::Momo::new(MomoSettings {
                partner_code: "MOMO".into(),
                access_key: "ACCESS".into(),
                secret_key: secret("momo-secret"),
                previous_secret_key: None,
                endpoint: "https://momo.example".into(),
            })),
            Box::new(zalopay::Zalopay::new(ZalopaySettings {
                app_id: "2553".into(),
                key1: secret("key1"),
                key2: secret("key2"),
                previous_key2: None,
                endpoint: "https://zalopay.example".into(),
            })),
            Box::new(sepay::Sepay::new(SepaySettings {
                api_key: Some(secret("sepay-key")),
                previous_api_key: None,
                hmac_secret: Some(secret("sepay-hmac")),
                previous_hmac_secret: None,
            })),
            Box::new(casso::Casso::new(CassoSettings {
                checksum_key: secret("casso-key"),
                previous_checksum_key: None,
            })),
        ]
    }

    /// Header values a hostile sender might try, signature headers first.
    fn headers(values: &[String]) -> HeaderMap {
        let names = [
            "authorization",
            "x-sepay-timestamp",
            "x-sepay-signature",
            "x-casso-signature",
        ];
        let mut map = HeaderMap::new();
        for (name, value) in names.iter().zip(values) {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(HeaderName::from_static(name), value);
            }
        }
        map
    }

    fn verify_all(query: &str, headers: &HeaderMap, body: &[u8]) {
        for provider in providers() {
            let request = CallbackRequest {
                query,
                headers,
                body,
                received_at: Timestamp::now(),
            };
            match provider.verify(&request) {
                Ok(_) => {}
                Err(err) => {
                    let reply = provider.reject(&err);
                    assert!(reply.status < 500, "{err:?} answered {}", reply.status);
                }
            }
        }
    }

    /// Callbacks that look like the real thing, for mutation.
    const SEEDS: &[&str] = &[
        r#"{"partnerCode":"MOMO","orderId":"261128ABC","requestId":"261128ABC","amount":650000,"orderInfo":"x","orderType":"momo_wallet","transId":4088878653,"resultCode":0,"message":"ok","payType":"qr","responseTime":1721720663942,"extraData":"","signature":"00"}"#,
        r#"{"data":"{\"app_id\":2553,\"app_trans_id\":\"261128_ABC\",\"app_time\":1,\"app_user\":\"u\",\"amount\":650000,\"embed_data\":\"{}\",\"item\":\"[]\",\"zp_trans_id\":1,\"server_time\":1,\"channel\":38,\"merchant_user_id\":\"m\",\"user_fee_amount\":0,\"discount_amount\":0}","mac":"00","type":1}"#,
        r#"{"id":92704,"gateway":"Vietcombank","transactionDate":"2026-11-28 14:30:00","accountNumber":"0011","code":null,"content":"LP2345","transferType":"in","transferAmount":650000,"accumulated":1,"subAccount":null,"referenceCode":"R"}"#,
        r#"{"error":0,"data":{"id":1,"reference":"R","description":"LP2345","amount":650000,"runningBalance":1,"transactionDateTime":"2026-11-28 14:30:00","accountNumber":"0011","bankName":"VCB"}}"#,
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_bytes_never_panic(
            query in ".{0,300}",
            values in proptest::collection::vec("[ -~]{0,80}", 0..4),
            body in proptest::collection::vec(any::<u8>(), 0..600),
        ) {
            verify_all(&query, &headers(&values), &body);
        }

        #[test]
        fn mutated_callbacks_never_panic(
            seed in 0..SEEDS.len(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
            values in proptest::collection::vec(
                prop_oneof![
                    Just("Apikey sepay-key".to_owned()),
                    Just("t=1764340200000,v1=00".to_owned()),
                    "[0-9]{0,25}",
                    "t=[0-9]{0,20},v1=[0-9a-f]{0,130}",
                ],
                0..4,
            ),
        ) {
            let mut body = SEEDS[seed].as_bytes().to_vec();
            for (at, byte) in edits {
                let at = at % body.len();
                body[at] = byte;
            }
            verify_all("", &headers(&values), &body);
        }

        #[test]
        fn vnpay_queries_never_panic(
            pairs in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("vnp_Amount".to_owned()),
                        Just("vnp_TxnRef".to_owned()),
                        Just("vnp_ResponseCode".to_owned()),
                        Just("vnp_TransactionStatus".to_owned()),
                        Just("vnp_TmnCode".to_owned()),
                        Just("vnp_PayDate".to_owned()),
                        Just("vnp_SecureHash".to_owned()),
                        "vnp_[A-Za-z]{0,12}",
                        "[%&=+ -~]{0,10}",
                    ],
                    "[%&=+ -~\u{80}-\u{10FFFF}]{0,40}",
                ),
                0..20,
            ),
        ) {
            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            verify_all(&query.join("&"), &HeaderMap::new(), b"");
        }
    }
}
