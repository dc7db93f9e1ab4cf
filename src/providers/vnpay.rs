//! VNPay, payment gateway API 2.1.0: the signed payment URL, the IPN and
//! return-URL checks, the `querydr` status query, and refunds.
//!
//! Every message is signed with HMAC-SHA512 under the merchant's hash
//! secret. Payment URLs, IPNs and return URLs sign the sorted `vnp_*`
//! parameters, form-encoded as PHP's `urlencode` does; the JSON API signs
//! its values joined with `|` in a fixed order.

use std::collections::BTreeMap;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::macros::format_description;

use super::signing::{
    Rotation, form_encode, hmac_sha512_hex, malformed, parse_vietnam_time, send_for_json,
    verify_hmac_sha512_hex, vietnam_time,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ProviderError,
    ReceivedPayment, RefundAnswer, RefundRequest, Reply, StartRequest, Started, Verdict,
};
use crate::config::VnpaySettings;
use crate::domain::payment::Channel;
use crate::domain::transfer_note::without_diacritics;
use crate::domain::{Timestamp, Vnd};

/// querydr's answer when VNPay has no transaction for the order.
const NO_SUCH_TRANSACTION: &str = "91";
/// A refund's answer when a refund of the payment is already in progress
/// (or this one was sent before): never a failure.
const REFUND_IN_PROGRESS: &str = "94";

pub(crate) const VERSION: &str = "2.1.0";
/// VNPay caps `vnp_OrderInfo` at 255 characters.
const ORDER_INFO_MAX: usize = 255;
/// The IP address sent with status queries, which come from lephi's own
/// server rather than from a payer's browser.
const SERVER_IP: &str = "127.0.0.1";

/// The fields of a `querydr` answer covered by its `vnp_SecureHash`, in
/// the order they are joined.
pub(crate) const QUERY_ANSWER_SIGNED: [&str; 15] = [
    "vnp_ResponseId",
    "vnp_Command",
    "vnp_ResponseCode",
    "vnp_Message",
    "vnp_TmnCode",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_PayDate",
    "vnp_TransactionNo",
    "vnp_TransactionType",
    "vnp_TransactionStatus",
    "vnp_OrderInfo",
    "vnp_PromotionCode",
    "vnp_PromotionAmount",
];

/// The fields of a refund request covered by its `vnp_SecureHash`, in
/// the order they are joined with `|`.
pub(crate) const REFUND_REQUEST_SIGNED: [&str; 13] = [
    "vnp_RequestId",
    "vnp_Version",
    "vnp_Command",
    "vnp_TmnCode",
    "vnp_TransactionType",
    "vnp_TxnRef",
    "vnp_Amount",
    "vnp_TransactionNo",
    "vnp_TransactionDate",
    "vnp_CreateBy",
    "vnp_CreateDate",
    "vnp_IpAddr",
    "vnp_OrderInfo",
];

/// The fields of a refund's answer covered by its `vnp_SecureHash`: the
/// querydr answer's, without the promotion fields.
pub(crate) const REFUND_ANSWER_SIGNED: &[&str] = QUERY_ANSWER_SIGNED.split_at(13).0;

/// `vnp_TransactionType` of a refund of the whole payment, and of a part.
pub(crate) const FULL_REFUND: &str = "02";
pub(crate) const PARTIAL_REFUND: &str = "03";

/// `vnp_TransactionType` of a refund of `amount` of a payment of
/// `payment_amount`.
pub(crate) fn refund_type(payment_amount: Vnd, amount: Vnd) -> &'static str {
    if amount == payment_amount {
        FULL_REFUND
    } else {
        PARTIAL_REFUND
    }
}

/// The VNPay gateway for one merchant terminal.
pub struct Vnpay {
    settings: VnpaySettings,
}

impl Vnpay {
    pub fn new(settings: VnpaySettings) -> Vnpay {
        Vnpay { settings }
    }

    fn secret(&self) -> &[u8] {
        self.settings.hash_secret.expose_secret().as_bytes()
    }

    /// The secrets what VNPay signs is checked under.
    fn verifying(&self) -> Rotation<'_> {
        Rotation {
            provider: "vnpay",
            current: &self.settings.hash_secret,
            previous: self.settings.previous_hash_secret.as_ref(),
        }
    }

    /// The signed payment URL to send the payer to. VNPay takes no IPN URL
    /// in the request (the merchant registers it with VNPay), so
    /// `request.ipn_url` is not used.
    pub fn start(&self, request: &StartRequest<'_>) -> Result<Started, ProviderError> {
        let amount = vnp_amount_text(request.amount)?;
        let locale = if request.locale == "en" { "en" } else { "vn" };
        let mut params = BTreeMap::new();
        params.insert("vnp_Version", VERSION.to_owned());
        params.insert("vnp_Command", "pay".to_owned());
        params.insert("vnp_TmnCode", self.settings.tmn_code.clone());
        params.insert("vnp_Amount", amount);
        params.insert("vnp_CreateDate", vnp_date(request.created_at));
        params.insert("vnp_ExpireDate", vnp_date(request.expires_at));
        params.insert("vnp_CurrCode", "VND".to_owned());
        params.insert("vnp_IpAddr", request.client_ip.to_owned());
        params.insert("vnp_Locale", locale.to_owned());
        params.insert(
            "vnp_OrderInfo",
            order_info(request.description, request.order_ref),
        );
        params.insert("vnp_OrderType", "other".to_owned());
        params.insert("vnp_ReturnUrl", request.return_url.to_owned());
        params.insert("vnp_TxnRef", request.order_ref.to_owned());
        let signed = encode_sorted(params.iter().map(|(k, v)| (*k, v.as_str())));
        let hash = hmac_sha512_hex(self.secret(), signed.as_bytes());
        let separator = if self.settings.payment_url.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(Started {
            pay_url: format!(
                "{}{separator}{signed}&vnp_SecureHash={hash}",
                self.settings.payment_url
            ),
        })
    }

    /// Checks the query string of the return URL the payer's browser comes
    /// back with; the same rule as the IPN. The result is for showing the
    /// payer, while the IPN (or a status query) records the payment.
    pub fn verify_return(&self, query: &str) -> Result<CallbackEvent, CallbackError> {
        let params = signed_params(query)?;
        let signed = encode_sorted(params.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if !self
            .verifying()
            .verifies(|key| verify_hmac_sha512_hex(key, signed.as_bytes(), &params.hash))
        {
            return Err(CallbackError::BadSignature);
        }
        self.event(&params.fields)
    }

    /// The JSON body of a `querydr` status query for the attempt
    /// `order_ref`, whose payment URL was created at `transaction_date`.
    /// `request_id` must be unique per day.
    pub fn querydr_request(
        &self,
        order_ref: &str,
        transaction_date: Timestamp,
        now: Timestamp,
        request_id: &str,
        ip: &str,
    ) -> Value {
        let transaction_date = vnp_date(transaction_date);
        let create_date = vnp_date(now);
        let order_info = format!("Truy van giao dich {order_ref}");
        let signed = [
            request_id,
            VERSION,
            "querydr",
            &self.settings.tmn_code,
            order_ref,
            &transaction_date,
            &create_date,
            ip,
            &order_info,
        ]
        .join("|");
        let hash = hmac_sha512_hex(self.secret(), signed.as_bytes());
        json!({
            "vnp_RequestId": request_id,
            "vnp_Version": VERSION,
            "vnp_Command": "querydr",
            "vnp_TmnCode": self.settings.tmn_code,
            "vnp_TxnRef": order_ref,
            "vnp_OrderInfo": order_info,
            "vnp_TransactionDate": transaction_date,
            "vnp_CreateDate": create_date,
            "vnp_IpAddr": ip,
            "vnp_SecureHash": hash,
        })
    }

    /// Asks VNPay where the attempt `order_ref` stands. VNPay knowing no
    /// transaction for it (`91`) is [`ProviderError::NotFound`]; a query
    /// VNPay could not answer (another `vnp_ResponseCode` than `00`) is
    /// [`ProviderError::Refused`] with that code; an answer that fails its
    /// signature is [`ProviderError::BadAnswer`].
    pub async fn query(
        &self,
        http: &reqwest::Client,
        order_ref: &str,
        transaction_date: Timestamp,
    ) -> Result<CallbackEvent, ProviderError> {
        let now = Timestamp::now();
        let request_id = super::signing::order_ref(now, &mut rand::rng());
        let body = self.querydr_request(order_ref, transaction_date, now, &request_id, SERVER_IP);
        let answer = send_for_json(http.post(&self.settings.api_url).json(&body)).await?;
        self.query_answer(order_ref, &answer)
    }

    fn query_answer(
        &self,
        order_ref: &str,
        answer: &serde_json::Map<String, Value>,
    ) -> Result<CallbackEvent, ProviderError> {
        let fields = self.verified_query(order_ref, answer)?;
        self.event(&fields)
            .map_err(|err| ProviderError::BadAnswer(err.to_string()))
    }

    /// A `querydr` answer's fields, once it is known to be VNPay's answer
    /// about `order_ref`. VNPay knowing no transaction for it (`91`) is
    /// [`ProviderError::NotFound`]; a query VNPay could not answer
    /// (another `vnp_ResponseCode` than `00`) is
    /// [`ProviderError::Refused`]; an answer that fails its signature is
    /// [`ProviderError::BadSignature`].
    fn verified_query(
        &self,
        order_ref: &str,
        answer: &serde_json::Map<String, Value>,
    ) -> Result<BTreeMap<String, String>, ProviderError> {
        let fields = answer_fields(answer);
        let text = |key: &str| fields.get(key).map(String::as_str).unwrap_or("");
        let response_code = text("vnp_ResponseCode");
        // A refusal changes nothing, so it is reported even unsigned.
        if response_code == NO_SUCH_TRANSACTION {
            return Err(ProviderError::NotFound {
                code: response_code.to_owned(),
            });
        }
        if response_code != "00" {
            return Err(ProviderError::Refused {
                code: if response_code.is_empty() {
                    "no_response_code".into()
                } else {
                    response_code.to_owned()
                },
                message: text("vnp_Message").to_owned(),
            });
        }
        let signed = QUERY_ANSWER_SIGNED.map(text).join("|");
        if !self
            .verifying()
            .verifies(|key| verify_hmac_sha512_hex(key, signed.as_bytes(), text("vnp_SecureHash")))
        {
            return Err(ProviderError::BadSignature);
        }
        if text("vnp_TxnRef") != order_ref {
            return Err(ProviderError::BadAnswer(
                "the answer is about another order".into(),
            ));
        }
        Ok(fields)
    }

    /// The signed JSON body of a refund of `request.amount` of the payment
    /// `request.order_ref`: type `02` when it is the whole payment, `03`
    /// when a part. Sent again unchanged (the same `vnp_RequestId` and
    /// `vnp_CreateDate`), VNPay sees the same refund.
    pub fn refund_request(&self, request: &RefundRequest<'_>) -> Result<Value, ProviderError> {
        let amount = vnp_amount_text(request.amount)?;
        let kind = refund_type(request.payment_amount, request.amount);
        let order_info = clean_info(request.description)
            .unwrap_or_else(|| format!("Hoan tien {}", request.order_ref));
        let mut body = serde_json::Map::new();
        for (key, value) in [
            ("vnp_RequestId", request.request_id.to_owned()),
            ("vnp_Version", VERSION.to_owned()),
            ("vnp_Command", "refund".to_owned()),
            ("vnp_TmnCode", self.settings.tmn_code.clone()),
            ("vnp_TransactionType", kind.to_owned()),
            ("vnp_TxnRef", request.order_ref.to_owned()),
            ("vnp_Amount", amount),
            ("vnp_TransactionNo", request.provider_txn_id.to_owned()),
            ("vnp_TransactionDate", vnp_date(request.paid_at)),
            ("vnp_CreateBy", request.created_by.to_owned()),
            ("vnp_CreateDate", vnp_date(request.submitted_at)),
            ("vnp_IpAddr", request.client_ip.to_owned()),
            ("vnp_OrderInfo", order_info),
        ] {
            body.insert(key.to_owned(), Value::String(value));
        }
        let signed = REFUND_REQUEST_SIGNED
            .map(|key| body.get(key).and_then(Value::as_str).unwrap_or_default())
            .join("|");
        let hash = hmac_sha512_hex(self.secret(), signed.as_bytes());
        body.insert("vnp_SecureHash".into(), Value::String(hash));
        Ok(Value::Object(body))
    }

    /// Sends a refund. VNPay accepting it (`00`) is
    /// [`RefundAnswer::Pending`]: VNPay settles refunds later, and its
    /// `querydr` says when the money went back.
    pub async fn refund(
        &self,
        http: &reqwest::Client,
        request: &RefundRequest<'_>,
    ) -> Result<RefundAnswer, ProviderError> {
        let body = self.refund_request(request)?;
        let answer = send_for_json(http.post(&self.settings.api_url).json(&body)).await?;
        self.refund_answer(request, &answer)
    }

    /// Reads a refund's answer. Unlike a query's refusal, a refusal here
    /// lets the refund be asked again, so every answer must be signed.
    fn refund_answer(
        &self,
        request: &RefundRequest<'_>,
        answer: &serde_json::Map<String, Value>,
    ) -> Result<RefundAnswer, ProviderError> {
        let fields = answer_fields(answer);
        let text = |key: &str| fields.get(key).map(String::as_str).unwrap_or("");
        let signed = REFUND_ANSWER_SIGNED
            .iter()
            .map(|key| text(key))
            .collect::<Vec<_>>()
            .join("|");
        if !self
            .verifying()
            .verifies(|key| verify_hmac_sha512_hex(key, signed.as_bytes(), text("vnp_SecureHash")))
        {
            return Err(ProviderError::BadSignature);
        }
        let about_us = |key: &str, ours: &str| text(key).is_empty() || text(key) == ours;
        if !about_us("vnp_TxnRef", request.order_ref)
            || !about_us("vnp_TmnCode", &self.settings.tmn_code)
        {
            return Err(ProviderError::BadAnswer(
                "the answer is about another order".into(),
            ));
        }
        let code = text("vnp_ResponseCode");
        let message = match text("vnp_Message") {
            "" => refund_message(code).to_owned(),
            message => message.to_owned(),
        };
        let txn_no = Some(text("vnp_TransactionNo").to_owned()).filter(|t| !t.is_empty());
        Ok(match code {
            "00" if text("vnp_TxnRef") == request.order_ref => RefundAnswer::Pending {
                provider_refund_id: txn_no,
                provider_code: code.to_owned(),
                message,
            },
            "00" => {
                return Err(ProviderError::BadAnswer(
                    "an accepted refund's answer must name its order".into(),
                ));
            }
            REFUND_IN_PROGRESS => RefundAnswer::Pending {
                provider_refund_id: None,
                provider_code: code.to_owned(),
                message,
            },
            "" => return Err(ProviderError::BadAnswer("the answer has no code".into())),
            _ => RefundAnswer::Failed {
                provider_code: code.to_owned(),
                message,
            },
        })
    }

    /// Asks VNPay (`querydr` of the payment) where the refund stands.
    pub async fn query_refund(
        &self,
        http: &reqwest::Client,
        request: &RefundRequest<'_>,
    ) -> Result<RefundAnswer, ProviderError> {
        let now = Timestamp::now();
        let query_id = super::signing::order_ref(now, &mut rand::rng());
        let body = self.querydr_request(
            request.order_ref,
            request.paid_at,
            now,
            &query_id,
            SERVER_IP,
        );
        let answer = send_for_json(http.post(&self.settings.api_url).json(&body)).await?;
        self.refund_query_answer(request, &answer)
    }

    /// Reads a `querydr` answer about a refunded payment. VNPay answers
    /// with one transaction of the order, the latest: only when it is a
    /// refund of this refund's type and amount does it say where this
    /// refund stands (`00` succeeded, `09` rejected, `05`/`06` and others
    /// in progress); anything else (`91`, the payment itself, another
    /// refund) cannot tell, and is [`RefundAnswer::Pending`].
    fn refund_query_answer(
        &self,
        request: &RefundRequest<'_>,
        answer: &serde_json::Map<String, Value>,
    ) -> Result<RefundAnswer, ProviderError> {
        let fields = match self.verified_query(request.order_ref, answer) {
            Ok(fields) => fields,
            Err(ProviderError::NotFound { code }) => {
                return Ok(RefundAnswer::Pending {
                    provider_refund_id: None,
                    message: "VNPay knows no transaction of this order".into(),
                    provider_code: code,
                });
            }
            Err(err) => return Err(err),
        };
        let text = |key: &str| fields.get(key).map(String::as_str).unwrap_or("");
        let kind = refund_type(request.payment_amount, request.amount);
        let status = text("vnp_TransactionStatus").to_owned();
        let amount = vnp_amount(text("vnp_Amount")).ok();
        if text("vnp_TransactionType") != kind || amount != Some(request.amount) {
            return Ok(RefundAnswer::Pending {
                provider_refund_id: None,
                provider_code: status,
                message: "VNPay's latest transaction of this order is not this refund".into(),
            });
        }
        let provider_refund_id =
            Some(text("vnp_TransactionNo").to_owned()).filter(|t| !t.is_empty());
        let message = match text("vnp_Message") {
            "" => response_message(&status).to_owned(),
            message => message.to_owned(),
        };
        Ok(match status.as_str() {
            "00" => RefundAnswer::Succeeded {
                provider_refund_id,
                provider_code: status,
                message,
            },
            "09" => RefundAnswer::Failed {
                provider_code: status,
                message,
            },
            _ => RefundAnswer::Pending {
                provider_refund_id,
                provider_code: status,
                message,
            },
        })
    }

    /// The outcome named by verified VNPay fields.
    fn event(&self, fields: &BTreeMap<String, String>) -> Result<CallbackEvent, CallbackError> {
        let field = |key: &str| {
            fields
                .get(key)
                .map(String::as_str)
                .ok_or_else(|| malformed(format!("{key} is missing")))
        };
        if field("vnp_TmnCode")? != self.settings.tmn_code {
            return Err(malformed("the callback is for another merchant's terminal"));
        }
        let order_ref = field("vnp_TxnRef")?;
        if order_ref.is_empty() {
            return Err(malformed("vnp_TxnRef is empty"));
        }
        let response_code = field("vnp_ResponseCode")?;
        let status = field("vnp_TransactionStatus")?;
        if response_code == "00" && status == "00" {
            let txn_no = field("vnp_TransactionNo")?;
            if txn_no.is_empty() {
                return Err(malformed("vnp_TransactionNo is empty"));
            }
            let amount = vnp_amount(field("vnp_Amount")?)?;
            let paid_at = match fields.get("vnp_PayDate").map(String::as_str) {
                None | Some("") => None,
                Some(text) => Some(
                    parse_vnp_date(text).ok_or_else(|| malformed("vnp_PayDate is not a date"))?,
                ),
            };
            return Ok(CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::Vnpay,
                provider_txn_id: txn_no.to_owned(),
                target: PaymentTarget::Order(order_ref.to_owned()),
                amount,
                paid_at,
                account_number: None,
            }));
        }
        // The response code says why a payment failed; when it is `00`
        // the transaction status is the one that says something.
        let code = if response_code != "00" {
            response_code
        } else {
            status
        };
        if status == "01" {
            return Ok(CallbackEvent::Pending {
                order_ref: order_ref.to_owned(),
                provider_code: code.to_owned(),
            });
        }
        let message = match fields.get("vnp_Message") {
            Some(message) if !message.is_empty() => message.clone(),
            _ => response_message(code).to_owned(),
        };
        Ok(CallbackEvent::Failed {
            order_ref: order_ref.to_owned(),
            provider_code: code.to_owned(),
            message,
        })
    }
}

impl Provider for Vnpay {
    fn channel(&self) -> Channel {
        Channel::Vnpay
    }

    /// VNPay's IPN is a GET: everything is in the query string.
    fn verify(&self, request: &CallbackRequest<'_>) -> Result<CallbackEvent, CallbackError> {
        self.verify_return(request.query)
    }

    fn acknowledge(&self, verdict: Verdict) -> Reply {
        match verdict {
            Verdict::Recorded | Verdict::Noted => rsp("00", "Confirm Success"),
            Verdict::AlreadyRecorded | Verdict::InvoiceClosed => {
                rsp("02", "Order already confirmed")
            }
            Verdict::UnknownOrder => rsp("01", "Order not found"),
            Verdict::AmountMismatch => rsp("04", "Invalid amount"),
        }
    }

    fn reject(&self, error: &CallbackError) -> Reply {
        match error {
            CallbackError::BadSignature => rsp("97", "Invalid signature"),
            CallbackError::Malformed(_) => rsp("99", "Invalid request"),
        }
    }

    fn retry_later(&self) -> Reply {
        rsp("99", "Unknown error")
    }
}

/// VNPay wants HTTP 200 whatever happened; the code is in the body.
fn rsp(code: &str, message: &str) -> Reply {
    Reply::json(200, json!({ "RspCode": code, "Message": message }))
}

/// The `vnp_*` parameters of a query string, apart from the hash.
pub(crate) struct SignedParams {
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) hash: String,
}

pub(crate) fn signed_params(query: &str) -> Result<SignedParams, CallbackError> {
    let mut fields = BTreeMap::new();
    let mut hash = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !key.starts_with("vnp_") || key == "vnp_SecureHashType" {
            continue;
        }
        if key == "vnp_SecureHash" {
            if hash.replace(value.into_owned()).is_some() {
                return Err(CallbackError::BadSignature);
            }
        } else if fields
            .insert(key.into_owned(), value.into_owned())
            .is_some()
        {
            // Two values for one signed key: which one was signed is
            // ambiguous, so neither is trusted.
            return Err(CallbackError::BadSignature);
        }
    }
    let hash = hash.ok_or(CallbackError::BadSignature)?;
    Ok(SignedParams { fields, hash })
}

/// `k=v&...` over the pairs in the order given (callers sort them),
/// form-encoded: the text VNPay signs, and the payment URL's query.
pub(crate) fn encode_sorted<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `yyyyMMddHHmmss` in Vietnam time.
pub(crate) fn vnp_date(at: Timestamp) -> String {
    let local = vietnam_time(at);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

pub(crate) fn parse_vnp_date(text: &str) -> Option<Timestamp> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    parse_vietnam_time(
        text,
        format_description!("[year][month][day][hour][minute][second]"),
    )
}

/// `vnp_Amount` of a positive amount: đồng × 100.
fn vnp_amount_text(amount: Vnd) -> Result<String, ProviderError> {
    amount
        .dong()
        .checked_mul(100)
        .filter(|_| amount.dong() > 0)
        .map(|hundredths| hundredths.to_string())
        .ok_or_else(|| ProviderError::Refused {
            code: "amount_out_of_range".into(),
            message: "VNPay needs a positive amount".into(),
        })
}

/// A JSON answer's string and number fields as text, as VNPay signs them.
fn answer_fields(answer: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    answer
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.clone(), text))
        })
        .collect()
}

/// `vnp_Amount` is đồng × 100 as plain digits; anything else, or a
/// fraction of a đồng, is refused rather than rounded.
pub(crate) fn vnp_amount(text: &str) -> Result<Vnd, CallbackError> {
    let hundredths = text
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| text.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| malformed("vnp_Amount is not a whole number"))?;
    if hundredths % 100 != 0 {
        return Err(malformed("vnp_Amount has a fraction of a đồng"));
    }
    Vnd::positive(hundredths / 100).map_err(|_| malformed("vnp_Amount must be positive"))
}

/// VNPay asks for order information without diacritics or special
/// characters: diacritics are removed and other characters become
/// spaces, so that both sides encode the
/// signed text the same way.
fn order_info(description: &str, order_ref: &str) -> String {
    clean_info(description).unwrap_or_else(|| format!("Thanh toan {order_ref}"))
}

/// `text` as VNPay takes order information (see [`order_info`]), unless
/// nothing is left.
fn clean_info(text: &str) -> Option<String> {
    let kept: String = text
        .chars()
        .filter_map(|c| match without_diacritics(c) {
            Some(c)
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ',' | ':' | '/') =>
            {
                Some(c)
            }
            // A combining accent belongs to the letter before it.
            None if ('\u{300}'..='\u{36F}').contains(&c) => None,
            _ => Some(' '),
        })
        .collect();
    let info: String = kept
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(ORDER_INFO_MAX)
        .collect();
    Some(info).filter(|info| !info.is_empty())
}

/// What VNPay's answers to a refund mean, when it gives no message.
fn refund_message(code: &str) -> &'static str {
    match code {
        "00" => "VNPay accepted the refund",
        "02" => "the refunds would be more than the payment",
        "03" => "the refund's data is not valid",
        "04" => "a whole refund cannot follow a partial one",
        "13" => "only a partial refund is allowed",
        "91" => "VNPay knows no such transaction",
        "93" => "the refund's amount is not valid for this payment",
        REFUND_IN_PROGRESS => "a refund of this payment is already in progress",
        "95" => "the payment did not succeed at VNPay, so it cannot be refunded",
        "97" => "VNPay found the request's checksum wrong",
        _ => "VNPay did not accept the refund",
    }
}

/// What VNPay's response codes mean, for people reading a failed attempt.
fn response_message(code: &str) -> &'static str {
    match code {
        "02" => "the transaction failed",
        "04" => "the transaction was reversed",
        "05" => "VNPay is processing a refund",
        "06" => "a refund was sent to the bank",
        "07" => "money taken, but the transaction is suspected of fraud",
        "09" => "the card or account is not registered for internet banking",
        "10" => "the payer failed authentication more than 3 times",
        "11" => "the payment timed out",
        "12" => "the card or account is locked",
        "13" => "the one-time password was wrong",
        "24" => "the payer cancelled",
        "51" => "the account has insufficient funds",
        "65" => "the account's daily limit was exceeded",
        "75" => "the bank is under maintenance",
        "79" => "the payer entered a wrong password too many times",
        _ => "the payment did not succeed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderMap;
    use secrecy::SecretString;

    const SECRET: &str = "TESTSECRETVNPAY0123456789ABCDEFG";

    fn vnpay() -> Vnpay {
        Vnpay::new(VnpaySettings {
            tmn_code: "LEPHI001".into(),
            hash_secret: SecretString::from(SECRET),
            previous_hash_secret: None,
            payment_url: "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html".into(),
            api_url: "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction".into(),
        })
    }

    /// An IPN query as VNPay sends it, fields sorted and encoded by hand.
    const IPN_SIGNED: &str = "vnp_Amount=15000000&vnp_BankCode=NCB&vnp_BankTranNo=VNP14226112\
&vnp_CardType=ATM&vnp_OrderInfo=Thanh+toan+le+phi+LP23456789AB&vnp_PayDate=20261128153012\
&vnp_ResponseCode=00&vnp_TmnCode=LEPHI001&vnp_TransactionNo=14226112\
&vnp_TransactionStatus=00&vnp_TxnRef=261128K7QX2M9PTB4H";

    fn signed_query(signed: &str, secret: &str) -> String {
        let hash = hmac_sha512_hex(secret.as_bytes(), signed.as_bytes());
        format!("{signed}&vnp_SecureHashType=HmacSHA512&vnp_SecureHash={hash}")
    }

    fn verify(query: &str) -> Result<CallbackEvent, CallbackError> {
        let headers = HeaderMap::new();
        vnpay().verify(&CallbackRequest {
            query,
            headers: &headers,
            body: b"",
            received_at: Timestamp::now(),
        })
    }

    #[test]
    fn a_signed_paid_ipn_is_paid() {
        let event = verify(&signed_query(IPN_SIGNED, SECRET)).unwrap();
        assert_eq!(
            event,
            CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::Vnpay,
                provider_txn_id: "14226112".into(),
                target: PaymentTarget::Order("261128K7QX2M9PTB4H".into()),
                amount: Vnd::new(150_000),
                paid_at: Timestamp::parse_rfc3339("2026-11-28T15:30:12+07:00"),
                account_number: None,
            })
        );
    }

    #[test]
    fn the_hash_may_come_first_and_upper_case_and_foreign_params_are_ignored() {
        let hash = hmac_sha512_hex(SECRET.as_bytes(), IPN_SIGNED.as_bytes()).to_uppercase();
        let query = format!("vnp_SecureHash={hash}&utm_source=x&{IPN_SIGNED}");
        assert!(matches!(verify(&query), Ok(CallbackEvent::Paid(_))));
    }

    #[test]
    fn every_tampered_field_is_a_bad_signature() {
        let query = signed_query(IPN_SIGNED, SECRET);
        for (from, to) in [
            ("vnp_Amount=15000000", "vnp_Amount=25000000"),
            ("vnp_BankCode=NCB", "vnp_BankCode=VCB"),
            ("vnp_BankTranNo=VNP14226112", "vnp_BankTranNo=VNP14226113"),
            ("vnp_CardType=ATM", "vnp_CardType=QRCODE"),
            ("le+phi", "le+phj"),
            ("vnp_PayDate=20261128153012", "vnp_PayDate=20261128153013"),
            ("vnp_ResponseCode=00", "vnp_ResponseCode=24"),
            ("vnp_TmnCode=LEPHI001", "vnp_TmnCode=LEPHI002"),
            ("vnp_TransactionNo=14226112", "vnp_TransactionNo=14226113"),
            ("vnp_TransactionStatus=00", "vnp_TransactionStatus=02"),
            (
                "vnp_TxnRef=261128K7QX2M9PTB4H",
                "vnp_TxnRef=261128K7QX2M9PTB4J",
            ),
            ("&vnp_BankCode=NCB", ""),
            ("vnp_TxnRef", "vnp_TxnRef=x&vnp_TxnRef"),
        ] {
            let tampered = query.replacen(from, to, 1);
            assert_ne!(tampered, query, "{from}");
            assert_eq!(
                verify(&tampered),
                Err(CallbackError::BadSignature),
                "{from}"
            );
        }
        let added = format!("{query}&vnp_Extra=1");
        assert_eq!(verify(&added), Err(CallbackError::BadSignature));
    }

    #[test]
    fn a_wrong_secret_a_missing_or_doubled_hash_is_a_bad_signature() {
        assert_eq!(
            verify(&signed_query(IPN_SIGNED, "ANOTHERSECRET")),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(verify(IPN_SIGNED), Err(CallbackError::BadSignature));
        let query = signed_query(IPN_SIGNED, SECRET);
        let doubled = format!("{query}&vnp_SecureHash=00");
        assert_eq!(verify(&doubled), Err(CallbackError::BadSignature));
        assert_eq!(
            verify(&format!("{IPN_SIGNED}&vnp_SecureHash=zz")),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(verify(""), Err(CallbackError::BadSignature));
        assert_eq!(verify("%%%&&=="), Err(CallbackError::BadSignature));
    }

    #[test]
    fn another_terminal_is_malformed_even_when_signed() {
        let signed = IPN_SIGNED.replace("LEPHI001", "OTHER001");
        assert!(matches!(
            verify(&signed_query(&signed, SECRET)),
            Err(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn bad_amounts_and_dates_are_malformed_even_when_signed() {
        for (from, to) in [
            ("vnp_Amount=15000000", "vnp_Amount=15000050"),
            ("vnp_Amount=15000000", "vnp_Amount=-15000000"),
            ("vnp_Amount=15000000", "vnp_Amount=0"),
            ("vnp_Amount=15000000", "vnp_Amount=1.5E7"),
            ("vnp_Amount=15000000", "vnp_Amount=99999999999999999999999"),
            ("vnp_Amount=15000000", "vnp_Amount="),
            ("vnp_PayDate=20261128153012", "vnp_PayDate=20261328153012"),
            ("vnp_PayDate=20261128153012", "vnp_PayDate=yesterday"),
            ("vnp_TransactionNo=14226112", "vnp_TransactionNo="),
            ("vnp_TxnRef=261128K7QX2M9PTB4H", "vnp_TxnRef="),
            ("&vnp_TransactionStatus=00", ""),
            ("vnp_ResponseCode=00&", ""),
        ] {
            let signed = IPN_SIGNED.replacen(from, to, 1);
            assert!(
                matches!(
                    verify(&signed_query(&signed, SECRET)),
                    Err(CallbackError::Malformed(_))
                ),
                "{to}"
            );
        }
    }

    #[test]
    fn failed_and_pending_outcomes() {
        let cancelled = "vnp_Amount=15000000&vnp_BankCode=NCB&vnp_CardType=ATM\
&vnp_OrderInfo=Thanh+toan&vnp_PayDate=20261128153012&vnp_ResponseCode=24\
&vnp_TmnCode=LEPHI001&vnp_TransactionNo=0&vnp_TransactionStatus=02\
&vnp_TxnRef=261128K7QX2M9PTB4H";
        assert_eq!(
            verify(&signed_query(cancelled, SECRET)).unwrap(),
            CallbackEvent::Failed {
                order_ref: "261128K7QX2M9PTB4H".into(),
                provider_code: "24".into(),
                message: "the payer cancelled".into(),
            }
        );
        let pending = "vnp_Amount=15000000&vnp_ResponseCode=00&vnp_TmnCode=LEPHI001\
&vnp_TransactionNo=14226112&vnp_TransactionStatus=01&vnp_TxnRef=261128K7QX2M9PTB4H";
        assert_eq!(
            verify(&signed_query(pending, SECRET)).unwrap(),
            CallbackEvent::Pending {
                order_ref: "261128K7QX2M9PTB4H".into(),
                provider_code: "01".into(),
            }
        );
    }

    #[test]
    fn the_return_url_follows_the_same_rule() {
        let v = vnpay();
        assert!(matches!(
            v.verify_return(&signed_query(IPN_SIGNED, SECRET)),
            Ok(CallbackEvent::Paid(_))
        ));
        assert_eq!(
            v.verify_return(&signed_query(IPN_SIGNED, "x")),
            Err(CallbackError::BadSignature)
        );
    }

    fn start_request<'a>(description: &'a str) -> StartRequest<'a> {
        StartRequest {
            order_ref: "261128K7QX2M9PTB4H",
            amount: Vnd::new(150_000),
            description,
            created_at: Timestamp::parse_rfc3339("2026-11-28T15:00:00+07:00").unwrap(),
            expires_at: Timestamp::parse_rfc3339("2026-11-28T15:15:00+07:00").unwrap(),
            return_url: "https://lephi.example.vn/pay/return?x=1",
            ipn_url: "https://lephi.example.vn/callbacks/vnpay",
            client_ip: "203.0.113.7",
            locale: "vn",
        }
    }

    #[test]
    fn the_payment_url_is_signed_over_its_own_query() {
        let started = vnpay()
            .start(&start_request("Thanh toan le phi LP23456789AB"))
            .unwrap();
        let signed = "vnp_Amount=15000000&vnp_Command=pay&vnp_CreateDate=20261128150000\
&vnp_CurrCode=VND&vnp_ExpireDate=20261128151500&vnp_IpAddr=203.0.113.7&vnp_Locale=vn\
&vnp_OrderInfo=Thanh+toan+le+phi+LP23456789AB&vnp_OrderType=other\
&vnp_ReturnUrl=https%3A%2F%2Flephi.example.vn%2Fpay%2Freturn%3Fx%3D1\
&vnp_TmnCode=LEPHI001&vnp_TxnRef=261128K7QX2M9PTB4H&vnp_Version=2.1.0";
        let hash = hmac_sha512_hex(SECRET.as_bytes(), signed.as_bytes());
        assert_eq!(
            started.pay_url,
            format!(
                "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html?{signed}&vnp_SecureHash={hash}"
            )
        );
    }

    #[test]
    fn order_info_drops_special_characters() {
        assert_eq!(order_info("Lệ phí *hộ tịch* #1", "R"), "Le phi ho tich 1");
        assert_eq!(order_info("  ", "R1"), "Thanh toan R1");
        assert_eq!(order_info(&"a".repeat(300), "R").len(), 255);
    }

    #[test]
    fn a_non_positive_or_huge_amount_is_refused_before_calling() {
        let mut request = start_request("x");
        request.amount = Vnd::new(0);
        assert!(matches!(
            vnpay().start(&request),
            Err(ProviderError::Refused { .. })
        ));
        request.amount = Vnd::new(i64::MAX / 10);
        assert!(matches!(
            vnpay().start(&request),
            Err(ProviderError::Refused { .. })
        ));
    }

    #[test]
    fn the_status_query_is_signed_in_the_documented_order() {
        let body = vnpay().querydr_request(
            "261128K7QX2M9PTB4H",
            Timestamp::parse_rfc3339("2026-11-28T15:00:00+07:00").unwrap(),
            Timestamp::parse_rfc3339("2026-11-28T16:00:00+07:00").unwrap(),
            "REQ1",
            "10.0.0.1",
        );
        let signed = "REQ1|2.1.0|querydr|LEPHI001|261128K7QX2M9PTB4H|20261128150000\
|20261128160000|10.0.0.1|Truy van giao dich 261128K7QX2M9PTB4H";
        assert_eq!(
            body["vnp_SecureHash"],
            hmac_sha512_hex(SECRET.as_bytes(), signed.as_bytes())
        );
        assert_eq!(body["vnp_TransactionDate"], "20261128150000");
        assert_eq!(body["vnp_Command"], "querydr");
    }

    fn query_answer(status: &str, secret: &str) -> serde_json::Map<String, Value> {
        let signed = format!(
            "R1|querydr|00|QueryDR Success|LEPHI001|261128K7QX2M9PTB4H|15000000|NCB\
|20261128153012|14226112|01|{status}|Thanh toan||"
        );
        let hash = hmac_sha512_hex(secret.as_bytes(), signed.as_bytes());
        let answer = json!({
            "vnp_ResponseId": "R1", "vnp_Command": "querydr", "vnp_ResponseCode": "00",
            "vnp_Message": "QueryDR Success", "vnp_TmnCode": "LEPHI001",
            "vnp_TxnRef": "261128K7QX2M9PTB4H", "vnp_Amount": "15000000", "vnp_BankCode": "NCB",
            "vnp_PayDate": "20261128153012", "vnp_TransactionNo": "14226112",
            "vnp_TransactionType": "01", "vnp_TransactionStatus": status,
            "vnp_OrderInfo": "Thanh toan", "vnp_SecureHash": hash,
        });
        match answer {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn status_query_answers() {
        let v = vnpay();
        let paid = v.query_answer("261128K7QX2M9PTB4H", &query_answer("00", SECRET));
        assert!(
            matches!(paid, Ok(CallbackEvent::Paid(ReceivedPayment { amount, .. })) if amount == Vnd::new(150_000))
        );
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &query_answer("01", SECRET)),
            Ok(CallbackEvent::Pending { .. })
        ));
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &query_answer("02", SECRET)),
            Ok(CallbackEvent::Failed { provider_code, .. }) if provider_code == "02"
        ));
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &query_answer("00", "wrong")),
            Err(ProviderError::BadSignature)
        ));
        assert!(matches!(
            v.query_answer("OTHERREF", &query_answer("00", SECRET)),
            Err(ProviderError::BadAnswer(_))
        ));
        let mut tampered = query_answer("00", SECRET);
        tampered.insert("vnp_Amount".into(), json!("25000000"));
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &tampered),
            Err(ProviderError::BadSignature)
        ));
        let mut refused = serde_json::Map::new();
        refused.insert("vnp_ResponseCode".into(), json!("91"));
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &refused),
            Err(ProviderError::NotFound { code }) if code == "91"
        ));
    }

    fn refund_request(amount: i64) -> RefundRequest<'static> {
        RefundRequest {
            request_id: "261201RQ7X2M9PTB4H",
            order_ref: "261128K7QX2M9PTB4H",
            provider_txn_id: "14226112",
            payment_amount: Vnd::new(150_000),
            amount: Vnd::new(amount),
            paid_at: Timestamp::parse_rfc3339("2026-11-28T15:30:12+07:00").unwrap(),
            submitted_at: Timestamp::parse_rfc3339("2026-12-01T09:00:00+07:00").unwrap(),
            created_by: "officer1",
            description: "Hoàn lệ phí HS-1",
            client_ip: "10.0.0.1",
        }
    }

    #[test]
    fn the_refund_is_signed_in_the_documented_order() {
        let body = vnpay().refund_request(&refund_request(50_000)).unwrap();
        let signed = "261201RQ7X2M9PTB4H|2.1.0|refund|LEPHI001|03|261128K7QX2M9PTB4H|5000000\
|14226112|20261128153012|officer1|20261201090000|10.0.0.1|Hoan le phi HS-1";
        assert_eq!(
            body["vnp_SecureHash"],
            hmac_sha512_hex(SECRET.as_bytes(), signed.as_bytes())
        );
        for (key, value) in [
            ("vnp_Command", "refund"),
            ("vnp_TransactionType", "03"),
            ("vnp_Amount", "5000000"),
            ("vnp_TransactionDate", "20261128153012"),
            ("vnp_CreateDate", "20261201090000"),
            ("vnp_CreateBy", "officer1"),
            ("vnp_OrderInfo", "Hoan le phi HS-1"),
        ] {
            assert_eq!(body[key], value, "{key}");
        }
        let full = vnpay().refund_request(&refund_request(150_000)).unwrap();
        assert_eq!(full["vnp_TransactionType"], "02");
        let mut blank = refund_request(150_000);
        blank.description = " ** ";
        let body = vnpay().refund_request(&blank).unwrap();
        assert_eq!(body["vnp_OrderInfo"], "Hoan tien 261128K7QX2M9PTB4H");
    }

    /// A refund's answer with `code`, signed with `secret` over the
    /// documented fields.
    fn refund_answer(code: &str, secret: &str) -> serde_json::Map<String, Value> {
        let signed = format!(
            "RS1|refund|{code}|Refund success|LEPHI001|261128K7QX2M9PTB4H|5000000|NCB\
|20261201090001|14230001|03|05|Hoan le phi HS-1"
        );
        let answer = json!({
            "vnp_ResponseId": "RS1", "vnp_Command": "refund", "vnp_ResponseCode": code,
            "vnp_Message": "Refund success", "vnp_TmnCode": "LEPHI001",
            "vnp_TxnRef": "261128K7QX2M9PTB4H", "vnp_Amount": "5000000", "vnp_BankCode": "NCB",
            "vnp_PayDate": "20261201090001", "vnp_TransactionNo": "14230001",
            "vnp_TransactionType": "03", "vnp_TransactionStatus": "05",
            "vnp_OrderInfo": "Hoan le phi HS-1",
            "vnp_SecureHash": hmac_sha512_hex(secret.as_bytes(), signed.as_bytes()),
        });
        match answer {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn refund_answers() {
        let v = vnpay();
        let request = refund_request(50_000);
        assert_eq!(
            v.refund_answer(&request, &refund_answer("00", SECRET)),
            Ok(RefundAnswer::Pending {
                provider_refund_id: Some("14230001".into()),
                provider_code: "00".into(),
                message: "Refund success".into(),
            })
        );
        assert!(matches!(
            v.refund_answer(&request, &refund_answer("94", SECRET)),
            Ok(RefundAnswer::Pending { provider_code, .. }) if provider_code == "94"
        ));
        for code in ["91", "95", "97", "02", "99"] {
            assert!(
                matches!(
                    v.refund_answer(&request, &refund_answer(code, SECRET)),
                    Ok(RefundAnswer::Failed { provider_code, .. }) if provider_code == code
                ),
                "{code}"
            );
        }
        for code in ["00", "94", "95"] {
            assert_eq!(
                v.refund_answer(&request, &refund_answer(code, "wrong")),
                Err(ProviderError::BadSignature),
                "{code}"
            );
        }
        for (field, value) in [
            ("vnp_ResponseCode", "95"),
            ("vnp_Amount", "15000000"),
            ("vnp_TransactionNo", "1"),
            ("vnp_TransactionType", "02"),
            ("vnp_Message", "x"),
        ] {
            let mut tampered = refund_answer("00", SECRET);
            tampered.insert(field.into(), json!(value));
            assert_eq!(
                v.refund_answer(&request, &tampered),
                Err(ProviderError::BadSignature),
                "{field}"
            );
        }
        let mut unsigned = refund_answer("95", SECRET);
        unsigned.remove("vnp_SecureHash");
        assert_eq!(
            v.refund_answer(&request, &unsigned),
            Err(ProviderError::BadSignature)
        );
        let mut other = request.clone();
        other.order_ref = "OTHERREF";
        assert!(matches!(
            v.refund_answer(&other, &refund_answer("00", SECRET)),
            Err(ProviderError::BadAnswer(_))
        ));
    }

    /// A querydr answer about a refund of `kind`, `hundredths` and
    /// `status`, signed with `secret`.
    fn refund_query(
        kind: &str,
        hundredths: &str,
        status: &str,
        secret: &str,
    ) -> serde_json::Map<String, Value> {
        let mut answer = query_answer(status, secret);
        answer.insert("vnp_TransactionType".into(), json!(kind));
        answer.insert("vnp_Amount".into(), json!(hundredths));
        let signed = QUERY_ANSWER_SIGNED
            .map(|key| answer.get(key).and_then(Value::as_str).unwrap_or_default())
            .join("|");
        answer.insert(
            "vnp_SecureHash".into(),
            json!(hmac_sha512_hex(secret.as_bytes(), signed.as_bytes())),
        );
        answer
    }

    #[test]
    fn refund_status_answers() {
        let v = vnpay();
        let request = refund_request(50_000);
        let read = |answer| v.refund_query_answer(&request, &answer);
        assert_eq!(
            read(refund_query("03", "5000000", "00", SECRET)),
            Ok(RefundAnswer::Succeeded {
                provider_refund_id: Some("14226112".into()),
                provider_code: "00".into(),
                message: "QueryDR Success".into(),
            })
        );
        for status in ["05", "06", "01"] {
            assert!(
                matches!(
                    read(refund_query("03", "5000000", status, SECRET)),
                    Ok(RefundAnswer::Pending { provider_code, .. }) if provider_code == status
                ),
                "{status}"
            );
        }
        assert!(matches!(
            read(refund_query("03", "5000000", "09", SECRET)),
            Ok(RefundAnswer::Failed { provider_code, .. }) if provider_code == "09"
        ));
        // The payment itself, another refund's amount or type: cannot tell.
        for (kind, hundredths) in [("01", "15000000"), ("03", "4000000"), ("02", "5000000")] {
            assert!(
                matches!(
                    read(refund_query(kind, hundredths, "09", SECRET)),
                    Ok(RefundAnswer::Pending { .. })
                ),
                "{kind} {hundredths}"
            );
        }
        let mut full = refund_request(150_000);
        full.amount = Vnd::new(150_000);
        assert!(matches!(
            v.refund_query_answer(&full, &refund_query("02", "15000000", "00", SECRET)),
            Ok(RefundAnswer::Succeeded { .. })
        ));
        assert_eq!(
            read(refund_query("03", "5000000", "00", "wrong")),
            Err(ProviderError::BadSignature)
        );
        let mut not_found = serde_json::Map::new();
        not_found.insert("vnp_ResponseCode".into(), json!("91"));
        assert!(matches!(
            read(not_found),
            Ok(RefundAnswer::Pending { provider_code, .. }) if provider_code == "91"
        ));
        let mut refused = serde_json::Map::new();
        refused.insert("vnp_ResponseCode".into(), json!("97"));
        assert!(matches!(
            read(refused),
            Err(ProviderError::Refused { code, .. }) if code == "97"
        ));
    }

    #[test]
    fn replies_are_vnpay_codes() {
        let v = vnpay();
        let body = |r: Reply| {
            assert_eq!(r.status, 200);
            serde_json::from_str::<Value>(&r.body.unwrap()).unwrap()["RspCode"].clone()
        };
        assert_eq!(body(v.acknowledge(Verdict::Recorded)), "00");
        assert_eq!(body(v.acknowledge(Verdict::Noted)), "00");
        assert_eq!(body(v.acknowledge(Verdict::AlreadyRecorded)), "02");
        assert_eq!(body(v.acknowledge(Verdict::InvoiceClosed)), "02");
        assert_eq!(body(v.acknowledge(Verdict::UnknownOrder)), "01");
        assert_eq!(body(v.acknowledge(Verdict::AmountMismatch)), "04");
        assert_eq!(body(v.reject(&CallbackError::BadSignature)), "97");
        assert_eq!(body(v.reject(&CallbackError::Malformed("x".into()))), "99");
        assert_eq!(body(v.retry_later()), "99");
    }
}
