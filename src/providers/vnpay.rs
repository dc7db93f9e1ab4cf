//! VNPay, payment gateway API 2.1.0: the signed payment URL, the IPN and
//! return-URL checks, and the `querydr` status query.
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
    form_encode, hmac_sha512_hex, malformed, parse_vietnam_time, send_for_json,
    verify_hmac_sha512_hex, vietnam_time,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ProviderError,
    ReceivedPayment, Reply, StartRequest, Started, Verdict,
};
use crate::config::VnpaySettings;
use crate::domain::payment::Channel;
use crate::domain::transfer_note::without_diacritics;
use crate::domain::{Timestamp, Vnd};

/// querydr's answer when VNPay has no transaction for the order.
const NO_SUCH_TRANSACTION: &str = "91";

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

    /// The signed payment URL to send the payer to. VNPay takes no IPN URL
    /// in the request (the merchant registers it with VNPay), so
    /// `request.ipn_url` is not used.
    pub fn start(&self, request: &StartRequest<'_>) -> Result<Started, ProviderError> {
        let amount = request
            .amount
            .dong()
            .checked_mul(100)
            .filter(|_| request.amount.dong() > 0)
            .ok_or_else(|| ProviderError::Refused {
                code: "amount_out_of_range".into(),
                message: "VNPay needs a positive amount".into(),
            })?;
        let locale = if request.locale == "en" { "en" } else { "vn" };
        let mut params = BTreeMap::new();
        params.insert("vnp_Version", VERSION.to_owned());
        params.insert("vnp_Command", "pay".to_owned());
        params.insert("vnp_TmnCode", self.settings.tmn_code.clone());
        params.insert("vnp_Amount", amount.to_string());
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
        if !verify_hmac_sha512_hex(self.secret(), signed.as_bytes(), &params.hash) {
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
        let fields: BTreeMap<String, String> = answer
            .iter()
            .filter_map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((k.clone(), text))
            })
            .collect();
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
        let hash = text("vnp_SecureHash");
        if !verify_hmac_sha512_hex(self.secret(), signed.as_bytes(), hash) {
            return Err(ProviderError::BadAnswer(
                "the answer's signature does not match".into(),
            ));
        }
        if text("vnp_TxnRef") != order_ref {
            return Err(ProviderError::BadAnswer(
                "the answer is about another order".into(),
            ));
        }
        self.event(&fields)
            .map_err(|err| ProviderError::BadAnswer(err.to_string()))
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
    let kept: String = description
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
    if info.is_empty() {
        format!("Thanh toan {order_ref}")
    } else {
        info
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
            Err(ProviderError::BadAnswer(_))
        ));
        assert!(matches!(
            v.query_answer("OTHERREF", &query_answer("00", SECRET)),
            Err(ProviderError::BadAnswer(_))
        ));
        let mut tampered = query_answer("00", SECRET);
        tampered.insert("vnp_Amount".into(), json!("25000000"));
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &tampered),
            Err(ProviderError::BadAnswer(_))
        ));
        let mut refused = serde_json::Map::new();
        refused.insert("vnp_ResponseCode".into(), json!("91"));
        assert!(matches!(
            v.query_answer("261128K7QX2M9PTB4H", &refused),
            Err(ProviderError::NotFound { code }) if code == "91"
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
