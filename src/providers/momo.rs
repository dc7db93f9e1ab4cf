//! MoMo e-wallet, API v2 (`captureWallet`): creating a payment, checking
//! the IPN, the status query, and refunds.
//!
//! MoMo signs with HMAC-SHA256 over `key=value&...` with the keys in a
//! fixed (alphabetical) order and the values not URL-encoded; the
//! merchant's `accessKey` is part of the signed text though not of the IPN.
//! MoMo's API answers (create, query, refund) carry no signature: they are
//! trusted as answers over TLS to lephi's own request, and checked to be
//! about the order asked.

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::signing::{
    Rotation, from_unix_ms, hmac_sha256_hex, int_field, json_int, json_object, malformed,
    parse_int, send_for_json, signed_text, str_field, verify_hmac_sha256_hex,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ProviderError,
    ReceivedPayment, RefundAnswer, RefundRequest, Reply, StartRequest, Started, Verdict,
};
use crate::config::MomoSettings;
use crate::domain::payment::Channel;
use crate::domain::{Timestamp, Vnd};

/// MoMo's limits on one `captureWallet` payment, in đồng.
const MIN_AMOUNT: i64 = 1_000;
const MAX_AMOUNT: i64 = 50_000_000;

/// The smallest and largest payment MoMo takes, in đồng.
pub const AMOUNT_LIMITS: (Vnd, Vnd) = (Vnd::new(MIN_AMOUNT), Vnd::new(MAX_AMOUNT));
const REQUEST_TYPE: &str = "captureWallet";

/// The IPN fields covered by its signature, in the signed order (after
/// `accessKey`, which is ours and not in the body).
const IPN_SIGNED: [&str; 12] = [
    "amount",
    "extraData",
    "message",
    "orderId",
    "orderInfo",
    "orderType",
    "partnerCode",
    "payType",
    "requestId",
    "responseTime",
    "resultCode",
    "transId",
];

/// The MoMo gateway for one partner.
pub struct Momo {
    settings: MomoSettings,
}

/// What a `resultCode` says about a transaction.
enum Outcome {
    Paid,
    Pending,
    Failed,
}

/// `resultCode` of a request whose `requestId` or `orderId` was used
/// before: for a refund lephi sends again unchanged, the first may have
/// gone through, so only the status query can tell.
const DUPLICATE_REQUEST: [i64; 2] = [40, 41];

fn outcome(result_code: i64) -> Outcome {
    match result_code {
        0 => Outcome::Paid,
        // 9000: authorised but not yet captured; no money has moved, so
        // the attempt waits for the capture (or a status query) to say.
        1000 | 7000 | 7002 | 9000 => Outcome::Pending,
        _ => Outcome::Failed,
    }
}

impl Momo {
    pub fn new(settings: MomoSettings) -> Momo {
        Momo { settings }
    }

    fn secret(&self) -> &[u8] {
        self.settings.secret_key.expose_secret().as_bytes()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.endpoint.trim_end_matches('/'))
    }

    /// The signed JSON body of a `create` request. The attempt's reference
    /// serves as both `orderId` and `requestId` (MoMo's idempotency key),
    /// so a repeated create for one attempt cannot make two payments.
    pub fn create_request(&self, request: &StartRequest<'_>) -> Result<Value, ProviderError> {
        let amount = request.amount.dong();
        if !(MIN_AMOUNT..=MAX_AMOUNT).contains(&amount) {
            return Err(ProviderError::Refused {
                code: "amount_out_of_range".into(),
                message: format!("MoMo takes {MIN_AMOUNT} to {MAX_AMOUNT} đồng"),
            });
        }
        let lang = if request.locale == "en" { "en" } else { "vi" };
        let s = &self.settings;
        let signed = format!(
            "accessKey={}&amount={amount}&extraData=&ipnUrl={}&orderId={}&orderInfo={}\
             &partnerCode={}&redirectUrl={}&requestId={}&requestType={REQUEST_TYPE}",
            s.access_key,
            request.ipn_url,
            request.order_ref,
            request.description,
            s.partner_code,
            request.return_url,
            request.order_ref,
        );
        Ok(json!({
            "partnerCode": s.partner_code,
            "accessKey": s.access_key,
            "requestId": request.order_ref,
            "amount": amount,
            "orderId": request.order_ref,
            "orderInfo": request.description,
            "redirectUrl": request.return_url,
            "ipnUrl": request.ipn_url,
            "extraData": "",
            "requestType": REQUEST_TYPE,
            "lang": lang,
            "signature": hmac_sha256_hex(self.secret(), signed.as_bytes()),
        }))
    }

    /// Creates the payment at MoMo and returns its `payUrl`. An amount
    /// outside MoMo's limits is refused without calling.
    pub async fn start(
        &self,
        http: &reqwest::Client,
        request: &StartRequest<'_>,
    ) -> Result<Started, ProviderError> {
        let body = self.create_request(request)?;
        let answer =
            send_for_json(http.post(self.url("/v2/gateway/api/create")).json(&body)).await?;
        create_answer(&answer, request.order_ref)
    }

    /// The signed JSON body of a status query.
    pub fn query_request(&self, order_ref: &str, request_id: &str) -> Value {
        let s = &self.settings;
        let signed = format!(
            "accessKey={}&orderId={order_ref}&partnerCode={}&requestId={request_id}",
            s.access_key, s.partner_code
        );
        json!({
            "partnerCode": s.partner_code,
            "requestId": request_id,
            "orderId": order_ref,
            "lang": "vi",
            "signature": hmac_sha256_hex(self.secret(), signed.as_bytes()),
        })
    }

    /// Asks MoMo where the attempt `order_ref` stands. Result codes below
    /// 1000 other than 0 describe the query itself (a bad request, an
    /// unknown order) rather than the payment, and are
    /// [`ProviderError::Refused`].
    pub async fn query(
        &self,
        http: &reqwest::Client,
        order_ref: &str,
    ) -> Result<CallbackEvent, ProviderError> {
        let request_id = super::signing::order_ref(Timestamp::now(), &mut rand::rng());
        let body = self.query_request(order_ref, &request_id);
        let answer =
            send_for_json(http.post(self.url("/v2/gateway/api/query")).json(&body)).await?;
        self.query_answer(order_ref, &answer)
    }

    fn query_answer(
        &self,
        order_ref: &str,
        answer: &Map<String, Value>,
    ) -> Result<CallbackEvent, ProviderError> {
        let (result_code, message) = self.query_result(order_ref, answer)?;
        // The query's responseTime is when MoMo answered, not when the
        // payer paid, so it is not a payment time.
        self.event(answer, order_ref, result_code, message, None)
            .map_err(|err| ProviderError::BadAnswer(err.to_string()))
    }

    /// A status query's `resultCode` and message, once the answer is known
    /// to be about `order_ref` at this partner. Result codes below 1000
    /// other than 0 describe the query itself (a bad request, an unknown
    /// order) rather than the payment, and are [`ProviderError::Refused`].
    fn query_result(
        &self,
        order_ref: &str,
        answer: &Map<String, Value>,
    ) -> Result<(i64, String), ProviderError> {
        let result_code = int_field(answer, "resultCode")
            .map_err(|err| ProviderError::BadAnswer(err.to_string()))?;
        let message = answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if result_code != 0 && result_code < 1000 {
            return Err(ProviderError::Refused {
                code: result_code.to_string(),
                message,
            });
        }
        self.about(answer, "orderId", order_ref)?;
        Ok((result_code, message))
    }

    /// Refuses an answer that names another order (in `order_field`) or
    /// another partner than ours.
    fn about(
        &self,
        answer: &Map<String, Value>,
        order_field: &str,
        order_ref: &str,
    ) -> Result<(), ProviderError> {
        if let Some(order_id) = answer.get(order_field)
            && order_id.as_str() != Some(order_ref)
        {
            return Err(ProviderError::BadAnswer(
                "the answer is about another order".into(),
            ));
        }
        if let Some(partner) = answer.get("partnerCode")
            && partner.as_str() != Some(self.settings.partner_code.as_str())
        {
            return Err(ProviderError::BadAnswer(
                "the answer is for another partner".into(),
            ));
        }
        Ok(())
    }

    /// The signed JSON body of a refund. The refund's id serves as both
    /// its `orderId` and its `requestId` (MoMo's idempotency key), so a
    /// refund sent again is the same refund. MoMo's `transId` is a
    /// number: a payment whose transaction id is not one is refused
    /// without calling.
    pub fn refund_request(&self, request: &RefundRequest<'_>) -> Result<Value, ProviderError> {
        let trans_id = parse_int(request.provider_txn_id)
            .filter(|id| *id > 0)
            .ok_or_else(|| ProviderError::Refused {
                code: "invalid_refund".into(),
                message: "MoMo's transId of the payment must be a positive number".into(),
            })?;
        let s = &self.settings;
        let (amount, id, description) = (
            request.amount.dong(),
            request.request_id,
            request.description,
        );
        let signed = format!(
            "accessKey={}&amount={amount}&description={description}&orderId={id}\
             &partnerCode={}&requestId={id}&transId={trans_id}",
            s.access_key, s.partner_code,
        );
        Ok(json!({
            "partnerCode": s.partner_code,
            "orderId": id,
            "requestId": id,
            "amount": amount,
            "transId": trans_id,
            "lang": "vi",
            "description": description,
            "signature": hmac_sha256_hex(self.secret(), signed.as_bytes()),
        }))
    }

    /// Sends a refund: `resultCode` 0 is [`RefundAnswer::Succeeded`] (with
    /// the refund's `transId`), 1000, 7000 and 7002 (in progress) and 40,
    /// 41 (sent before) are [`RefundAnswer::Pending`], others
    /// [`RefundAnswer::Failed`].
    pub async fn refund(
        &self,
        http: &reqwest::Client,
        request: &RefundRequest<'_>,
    ) -> Result<RefundAnswer, ProviderError> {
        let body = self.refund_request(request)?;
        let answer =
            send_for_json(http.post(self.url("/v2/gateway/api/refund")).json(&body)).await?;
        self.refund_answer(request.request_id, &answer)
    }

    fn refund_answer(
        &self,
        request_id: &str,
        answer: &Map<String, Value>,
    ) -> Result<RefundAnswer, ProviderError> {
        let result_code = int_field(answer, "resultCode")
            .map_err(|err| ProviderError::BadAnswer(err.to_string()))?;
        self.about(answer, "orderId", request_id)?;
        let outcome = if DUPLICATE_REQUEST.contains(&result_code) {
            Outcome::Pending
        } else {
            outcome(result_code)
        };
        Ok(refund_answer(result_code, answer, outcome))
    }

    /// Asks MoMo (the status query of the payment) where the refund
    /// stands: the answer's `refundTrans[]` entry whose `orderId` is the
    /// refund's id. No such entry yet is [`RefundAnswer::Pending`].
    pub async fn query_refund(
        &self,
        http: &reqwest::Client,
        request: &RefundRequest<'_>,
    ) -> Result<RefundAnswer, ProviderError> {
        let query_id = super::signing::order_ref(Timestamp::now(), &mut rand::rng());
        let body = self.query_request(request.order_ref, &query_id);
        let answer =
            send_for_json(http.post(self.url("/v2/gateway/api/query")).json(&body)).await?;
        self.refund_query_answer(request, &answer)
    }

    fn refund_query_answer(
        &self,
        request: &RefundRequest<'_>,
        answer: &Map<String, Value>,
    ) -> Result<RefundAnswer, ProviderError> {
        self.query_result(request.order_ref, answer)?;
        let refunds = match answer.get("refundTrans") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(refunds)) => refunds.as_slice(),
            Some(_) => {
                return Err(ProviderError::BadAnswer("refundTrans is not a list".into()));
            }
        };
        let entry = refunds
            .iter()
            .filter_map(Value::as_object)
            .find(|entry| entry.get("orderId").and_then(Value::as_str) == Some(request.request_id));
        let Some(entry) = entry else {
            return Ok(RefundAnswer::Pending {
                provider_refund_id: None,
                provider_code: "not_listed".into(),
                message: "MoMo lists no refund with this id yet".into(),
            });
        };
        let result_code = int_field(entry, "resultCode")
            .map_err(|err| ProviderError::BadAnswer(format!("refundTrans: {err}")))?;
        if entry.get("amount").and_then(json_int) != Some(request.amount.dong()) {
            return Err(ProviderError::BadAnswer(
                "MoMo lists this refund with another amount".into(),
            ));
        }
        Ok(refund_answer(result_code, entry, outcome(result_code)))
    }

    /// The event for an IPN or a query answer whose fields are trusted.
    fn event(
        &self,
        fields: &Map<String, Value>,
        order_ref: &str,
        result_code: i64,
        message: String,
        paid_at: Option<Timestamp>,
    ) -> Result<CallbackEvent, CallbackError> {
        Ok(match outcome(result_code) {
            Outcome::Paid => {
                let trans_id = int_field(fields, "transId")?;
                if trans_id <= 0 {
                    return Err(malformed("transId must be positive"));
                }
                let amount = int_field(fields, "amount")?;
                let amount =
                    Vnd::positive(amount).map_err(|_| malformed("amount must be positive"))?;
                CallbackEvent::Paid(ReceivedPayment {
                    channel: Channel::Momo,
                    provider_txn_id: trans_id.to_string(),
                    target: PaymentTarget::Order(order_ref.to_owned()),
                    amount,
                    paid_at,
                    account_number: None,
                })
            }
            Outcome::Pending => CallbackEvent::Pending {
                order_ref: order_ref.to_owned(),
                provider_code: result_code.to_string(),
            },
            Outcome::Failed => CallbackEvent::Failed {
                order_ref: order_ref.to_owned(),
                provider_code: result_code.to_string(),
                message,
            },
        })
    }
}

/// A refund's answer (or `refundTrans[]` entry) with `result_code`,
/// read as `outcome`.
fn refund_answer(result_code: i64, fields: &Map<String, Value>, outcome: Outcome) -> RefundAnswer {
    let provider_code = result_code.to_string();
    // A `refundTrans[]` entry has no message of its own.
    let message = match fields.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ => match outcome {
            Outcome::Paid => "MoMo refunded the payment",
            Outcome::Pending => "MoMo is processing the refund",
            Outcome::Failed => "MoMo did not refund the payment",
        }
        .to_owned(),
    };
    let provider_refund_id = fields
        .get("transId")
        .and_then(json_int)
        .filter(|id| *id > 0)
        .map(|id| id.to_string());
    match outcome {
        Outcome::Paid => RefundAnswer::Succeeded {
            provider_refund_id,
            provider_code,
            message,
        },
        Outcome::Pending => RefundAnswer::Pending {
            provider_refund_id,
            provider_code,
            message,
        },
        Outcome::Failed => RefundAnswer::Failed {
            provider_code,
            message,
        },
    }
}

/// Reads the answer to `create`, whatever its HTTP status.
fn create_answer(answer: &Map<String, Value>, order_ref: &str) -> Result<Started, ProviderError> {
    let result_code = answer
        .get("resultCode")
        .and_then(json_int)
        .ok_or_else(|| ProviderError::BadAnswer("the answer has no resultCode".into()))?;
    if result_code != 0 {
        return Err(ProviderError::Refused {
            code: result_code.to_string(),
            message: answer
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    // An answer about another order must not send the payer anywhere.
    if answer
        .get("orderId")
        .and_then(Value::as_str)
        .is_some_and(|id| id != order_ref)
    {
        return Err(ProviderError::BadAnswer(
            "the answer is about another order".into(),
        ));
    }
    match answer.get("payUrl").and_then(Value::as_str) {
        Some(url) if !url.is_empty() => Ok(Started {
            pay_url: url.to_owned(),
        }),
        _ => Err(ProviderError::BadAnswer("the answer has no payUrl".into())),
    }
}

impl Provider for Momo {
    fn channel(&self) -> Channel {
        Channel::Momo
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<CallbackEvent, CallbackError> {
        let body = json_object(request.body)?;
        let signature = match body.get("signature") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(CallbackError::BadSignature),
        };
        let mut signed = format!("accessKey={}", self.settings.access_key);
        for field in IPN_SIGNED {
            signed.push('&');
            signed.push_str(field);
            signed.push('=');
            signed.push_str(&signed_text(&body, field)?);
        }
        let signers = Rotation {
            provider: "momo",
            current: &self.settings.secret_key,
            previous: self.settings.previous_secret_key.as_ref(),
        };
        if !signers.verifies(|key| verify_hmac_sha256_hex(key, signed.as_bytes(), signature)) {
            return Err(CallbackError::BadSignature);
        }
        if str_field(&body, "partnerCode")? != self.settings.partner_code {
            return Err(malformed("the callback is for another partner"));
        }
        let order_ref = str_field(&body, "orderId")?;
        if order_ref.is_empty() {
            return Err(malformed("orderId is empty"));
        }
        let result_code = int_field(&body, "resultCode")?;
        let message = str_field(&body, "message")?.to_owned();
        let response_time = int_field(&body, "responseTime")?;
        let paid_at =
            from_unix_ms(response_time).ok_or_else(|| malformed("responseTime is out of range"))?;
        self.event(&body, order_ref, result_code, message, Some(paid_at))
    }

    /// MoMo wants `204 No Content` for every IPN it need not send again.
    fn acknowledge(&self, _verdict: Verdict) -> Reply {
        Reply {
            status: 204,
            body: None,
        }
    }

    fn reject(&self, error: &CallbackError) -> Reply {
        match error {
            CallbackError::BadSignature => Reply::json(
                401,
                json!({ "code": "bad_signature", "message": error.to_string() }),
            ),
            CallbackError::Malformed(_) => Reply::json(
                400,
                json!({ "code": "malformed_callback", "message": error.to_string() }),
            ),
        }
    }

    fn retry_later(&self) -> Reply {
        Reply::json(
            503,
            json!({ "code": "retry_later", "message": "the IPN could not be stored now" }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderMap;
    use secrecy::SecretString;

    const SECRET: &str = "K951B6PE1waDMi640xX08PD3vg6EkVlz";

    fn momo() -> Momo {
        Momo::new(MomoSettings {
            partner_code: "MOMOLEPHI2026".into(),
            access_key: "F8BBA842ECF85".into(),
            secret_key: SecretString::from(SECRET),
            previous_secret_key: None,
            endpoint: "https://test-payment.momo.vn/".into(),
        })
    }

    /// The signed text of the IPN below, written out by hand.
    const IPN_SIGNED_TEXT: &str = "accessKey=F8BBA842ECF85&amount=150000&extraData=\
&message=Thành công.&orderId=261128K7QX2M9PTB4H&orderInfo=Thanh toan le phi LP23456789AB\
&orderType=momo_wallet&partnerCode=MOMOLEPHI2026&payType=qr&requestId=261128K7QX2M9PTB4H\
&responseTime=1764318612000&resultCode=0&transId=4088878653";

    fn ipn(signature: &str) -> Value {
        json!({
            "partnerCode": "MOMOLEPHI2026",
            "orderId": "261128K7QX2M9PTB4H",
            "requestId": "261128K7QX2M9PTB4H",
            "amount": 150000,
            "orderInfo": "Thanh toan le phi LP23456789AB",
            "orderType": "momo_wallet",
            "transId": 4088878653u64,
            "resultCode": 0,
            "message": "Thành công.",
            "payType": "qr",
            "responseTime": 1764318612000u64,
            "extraData": "",
            "signature": signature,
        })
    }

    fn good_signature() -> String {
        hmac_sha256_hex(SECRET.as_bytes(), IPN_SIGNED_TEXT.as_bytes())
    }

    fn verify(body: &[u8]) -> Result<CallbackEvent, CallbackError> {
        let headers = HeaderMap::new();
        momo().verify(&CallbackRequest {
            query: "",
            headers: &headers,
            body,
            received_at: Timestamp::now(),
        })
    }

    fn verify_json(body: &Value) -> Result<CallbackEvent, CallbackError> {
        verify(body.to_string().as_bytes())
    }

    /// The body with one field replaced and signed again over `signed`.
    fn resigned(field: &str, value: Value, signed: &str) -> Value {
        let mut body = ipn(&hmac_sha256_hex(SECRET.as_bytes(), signed.as_bytes()));
        body[field] = value;
        body
    }

    #[test]
    fn a_signed_successful_ipn_is_paid() {
        assert_eq!(
            verify_json(&ipn(&good_signature())).unwrap(),
            CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::Momo,
                provider_txn_id: "4088878653".into(),
                target: PaymentTarget::Order("261128K7QX2M9PTB4H".into()),
                amount: Vnd::new(150_000),
                paid_at: from_unix_ms(1_764_318_612_000),
                account_number: None,
            })
        );
    }

    #[test]
    fn numeric_strings_are_accepted_as_sent() {
        let mut body = ipn(&good_signature());
        body["amount"] = json!("150000");
        body["transId"] = json!("4088878653");
        body["resultCode"] = json!("0");
        assert!(matches!(verify_json(&body), Ok(CallbackEvent::Paid(_))));
    }

    #[test]
    fn every_tampered_field_is_a_bad_signature() {
        for (field, value) in [
            ("amount", json!(250000)),
            ("extraData", json!("e30=")),
            ("message", json!("Success")),
            ("orderId", json!("261128K7QX2M9PTB4J")),
            ("orderInfo", json!("Thanh toan")),
            ("orderType", json!("other")),
            ("partnerCode", json!("MOMOOTHER")),
            ("payType", json!("napas")),
            ("requestId", json!("R2")),
            ("responseTime", json!(1764318612001u64)),
            ("resultCode", json!(1006)),
            ("transId", json!(4088878654u64)),
        ] {
            let mut body = ipn(&good_signature());
            body[field] = value;
            assert_eq!(
                verify_json(&body),
                Err(CallbackError::BadSignature),
                "{field}"
            );
        }
    }

    #[test]
    fn a_wrong_secret_or_missing_signature_is_a_bad_signature() {
        let wrong = hmac_sha256_hex(b"another secret", IPN_SIGNED_TEXT.as_bytes());
        assert_eq!(verify_json(&ipn(&wrong)), Err(CallbackError::BadSignature));
        let mut body = ipn("");
        assert_eq!(verify_json(&body), Err(CallbackError::BadSignature));
        body.as_object_mut().unwrap().remove("signature");
        assert_eq!(verify_json(&body), Err(CallbackError::BadSignature));
        body["signature"] = json!(12);
        assert_eq!(verify_json(&body), Err(CallbackError::BadSignature));
        assert_eq!(
            verify_json(&ipn(&good_signature().to_uppercase())).map(|_| ()),
            Ok(())
        );
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b"not json"[..],
            b"",
            b"[1,2]",
            b"\"text\"",
            b"{\"signature\":\"00\"",
        ] {
            assert!(
                matches!(verify(body), Err(CallbackError::Malformed(_))),
                "{body:?}"
            );
        }
        let mut missing = ipn(&good_signature());
        missing.as_object_mut().unwrap().remove("payType");
        assert!(matches!(
            verify_json(&missing),
            Err(CallbackError::Malformed(_))
        ));
        let mut wrong_type = ipn(&good_signature());
        wrong_type["orderInfo"] = json!(["x"]);
        assert!(matches!(
            verify_json(&wrong_type),
            Err(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn signed_but_unusable_values_are_malformed() {
        let cases = [
            ("amount", json!(-150000), "amount=-150000&"),
            ("amount", json!(0), "amount=0&"),
            ("amount", json!(1.5), "amount=1.5&"),
            (
                "amount",
                json!(99999999999999999999u128 as f64),
                "amount=1e+20&",
            ),
            ("amount", json!("15O000"), "amount=15O000&"),
            ("transId", json!(-1), "transId=-1"),
            ("responseTime", json!("soon"), "responseTime=soon&"),
        ];
        for (field, value, part) in cases {
            let original = match field {
                "amount" => "amount=150000&",
                "transId" => "transId=4088878653",
                _ => "responseTime=1764318612000&",
            };
            let signed = IPN_SIGNED_TEXT.replacen(original, part, 1);
            let body = resigned(field, value.clone(), &signed);
            let result = verify_json(&body);
            assert!(
                matches!(result, Err(CallbackError::Malformed(_))),
                "{field}={value}: {result:?}"
            );
        }
        let huge = "99999999999999999999";
        let signed = IPN_SIGNED_TEXT.replacen("amount=150000&", &format!("amount={huge}&"), 1);
        let body = format!(
            r#"{{"partnerCode":"MOMOLEPHI2026","orderId":"261128K7QX2M9PTB4H","requestId":"261128K7QX2M9PTB4H","amount":{huge},"orderInfo":"Thanh toan le phi LP23456789AB","orderType":"momo_wallet","transId":4088878653,"resultCode":0,"message":"Thành công.","payType":"qr","responseTime":1764318612000,"extraData":"","signature":"{}"}}"#,
            hmac_sha256_hex(SECRET.as_bytes(), signed.as_bytes())
        );
        // A number beyond 64 bits cannot be written back as sent, so the
        // signature check fails closed.
        assert_eq!(verify(body.as_bytes()), Err(CallbackError::BadSignature));
    }

    #[test]
    fn another_partner_is_malformed_even_when_signed() {
        let signed =
            IPN_SIGNED_TEXT.replacen("partnerCode=MOMOLEPHI2026", "partnerCode=MOMOOTHER", 1);
        let body = resigned("partnerCode", json!("MOMOOTHER"), &signed);
        assert!(matches!(
            verify_json(&body),
            Err(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn pending_and_failed_result_codes() {
        for (code, pending) in [
            (1000, true),
            (7000, true),
            (7002, true),
            (1006, false),
            (99, false),
        ] {
            let signed =
                IPN_SIGNED_TEXT.replacen("resultCode=0&", &format!("resultCode={code}&"), 1);
            let body = resigned("resultCode", json!(code), &signed);
            let event = verify_json(&body).unwrap();
            if pending {
                assert_eq!(
                    event,
                    CallbackEvent::Pending {
                        order_ref: "261128K7QX2M9PTB4H".into(),
                        provider_code: code.to_string(),
                    }
                );
            } else {
                assert_eq!(
                    event,
                    CallbackEvent::Failed {
                        order_ref: "261128K7QX2M9PTB4H".into(),
                        provider_code: code.to_string(),
                        message: "Thành công.".into(),
                    }
                );
            }
        }
        let signed = IPN_SIGNED_TEXT.replacen("resultCode=0&", "resultCode=9000&", 1);
        let body = resigned("resultCode", json!(9000), &signed);
        assert!(matches!(
            verify_json(&body),
            Ok(CallbackEvent::Pending { .. })
        ));
    }

    fn start_request(amount: i64) -> StartRequest<'static> {
        StartRequest {
            order_ref: "261128K7QX2M9PTB4H",
            amount: Vnd::new(amount),
            description: "Thanh toan le phi LP23456789AB",
            created_at: Timestamp::parse_rfc3339("2026-11-28T15:00:00+07:00").unwrap(),
            expires_at: Timestamp::parse_rfc3339("2026-11-28T15:15:00+07:00").unwrap(),
            return_url: "https://lephi.example.vn/pay/return",
            ipn_url: "https://lephi.example.vn/callbacks/momo",
            client_ip: "203.0.113.7",
            locale: "vn",
        }
    }

    #[test]
    fn the_create_request_is_signed_as_documented() {
        let body = momo().create_request(&start_request(150_000)).unwrap();
        let signed = "accessKey=F8BBA842ECF85&amount=150000&extraData=\
&ipnUrl=https://lephi.example.vn/callbacks/momo&orderId=261128K7QX2M9PTB4H\
&orderInfo=Thanh toan le phi LP23456789AB&partnerCode=MOMOLEPHI2026\
&redirectUrl=https://lephi.example.vn/pay/return&requestId=261128K7QX2M9PTB4H\
&requestType=captureWallet";
        assert_eq!(
            body["signature"],
            hmac_sha256_hex(SECRET.as_bytes(), signed.as_bytes())
        );
        assert_eq!(body["amount"], 150000);
        assert_eq!(body["lang"], "vi");
        assert_eq!(body["requestType"], "captureWallet");
    }

    #[test]
    fn amounts_outside_momo_limits_are_refused_before_calling() {
        for amount in [999, 50_000_001, 0, -5] {
            assert!(matches!(
                momo().create_request(&start_request(amount)),
                Err(ProviderError::Refused { code, .. }) if code == "amount_out_of_range"
            ));
        }
        assert!(momo().create_request(&start_request(1_000)).is_ok());
        assert!(momo().create_request(&start_request(50_000_000)).is_ok());
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn create_answers() {
        assert_eq!(
            create_answer(
                &object(json!({"resultCode": 0, "payUrl": "https://pay"})),
                "ORDER1"
            ),
            Ok(Started {
                pay_url: "https://pay".into()
            })
        );
        assert_eq!(
            create_answer(
                &object(json!({"resultCode": 22, "message": "out of range"})),
                "ORDER1"
            ),
            Err(ProviderError::Refused {
                code: "22".into(),
                message: "out of range".into()
            })
        );
        assert!(matches!(
            create_answer(&object(json!({"resultCode": 0})), "ORDER1"),
            Err(ProviderError::BadAnswer(_))
        ));
        assert!(matches!(
            create_answer(&object(json!({"payUrl": "https://pay"})), "ORDER1"),
            Err(ProviderError::BadAnswer(_))
        ));
        assert!(matches!(
            create_answer(
                &object(json!({"resultCode": 0, "orderId": "ORDER2", "payUrl": "https://pay"})),
                "ORDER1"
            ),
            Err(ProviderError::BadAnswer(_))
        ));
    }

    #[test]
    fn the_query_is_signed_as_documented() {
        let body = momo().query_request("261128K7QX2M9PTB4H", "Q1");
        let signed = "accessKey=F8BBA842ECF85&orderId=261128K7QX2M9PTB4H&partnerCode=MOMOLEPHI2026&requestId=Q1";
        assert_eq!(
            body["signature"],
            hmac_sha256_hex(SECRET.as_bytes(), signed.as_bytes())
        );
    }

    #[test]
    fn query_answers() {
        let m = momo();
        let answer = |code: i64| {
            object(json!({
                "partnerCode": "MOMOLEPHI2026", "orderId": "261128K7QX2M9PTB4H",
                "resultCode": code, "message": "m", "transId": 4088878653u64, "amount": 150000,
            }))
        };
        assert!(matches!(
            m.query_answer("261128K7QX2M9PTB4H", &answer(0)),
            Ok(CallbackEvent::Paid(_))
        ));
        assert!(matches!(
            m.query_answer("261128K7QX2M9PTB4H", &answer(1000)),
            Ok(CallbackEvent::Pending { .. })
        ));
        assert!(matches!(
            m.query_answer("261128K7QX2M9PTB4H", &answer(1006)),
            Ok(CallbackEvent::Failed { .. })
        ));
        assert!(matches!(
            m.query_answer("261128K7QX2M9PTB4H", &answer(42)),
            Err(ProviderError::Refused { code, .. }) if code == "42"
        ));
        assert!(matches!(
            m.query_answer("OTHER", &answer(0)),
            Err(ProviderError::BadAnswer(_))
        ));
    }

    fn refund_request(amount: i64) -> RefundRequest<'static> {
        RefundRequest {
            request_id: "261201RQ7X2M9PTB4H",
            order_ref: "261128K7QX2M9PTB4H",
            provider_txn_id: "4088878653",
            payment_amount: Vnd::new(150_000),
            amount: Vnd::new(amount),
            paid_at: from_unix_ms(1_764_318_612_000).unwrap(),
            submitted_at: from_unix_ms(1_764_554_400_000).unwrap(),
            created_by: "officer1",
            description: "Hoan le phi HS-1",
            client_ip: "10.0.0.1",
        }
    }

    #[test]
    fn the_refund_is_signed_as_documented() {
        let body = momo().refund_request(&refund_request(50_000)).unwrap();
        let signed = "accessKey=F8BBA842ECF85&amount=50000&description=Hoan le phi HS-1\
&orderId=261201RQ7X2M9PTB4H&partnerCode=MOMOLEPHI2026&requestId=261201RQ7X2M9PTB4H\
&transId=4088878653";
        assert_eq!(
            body["signature"],
            hmac_sha256_hex(SECRET.as_bytes(), signed.as_bytes())
        );
        assert_eq!(body["transId"], 4088878653u64);
        assert_eq!(body["amount"], 50000);
        assert_eq!(body["orderId"], body["requestId"]);
        let mut bad = refund_request(50_000);
        bad.provider_txn_id = "MOMO-1";
        assert!(matches!(
            momo().refund_request(&bad),
            Err(ProviderError::Refused { .. })
        ));
    }

    #[test]
    fn refund_answers() {
        let m = momo();
        let answer = |code: i64| {
            object(json!({
                "partnerCode": "MOMOLEPHI2026", "orderId": "261201RQ7X2M9PTB4H",
                "requestId": "261201RQ7X2M9PTB4H", "amount": 50000, "transId": 4100000001u64,
                "resultCode": code, "message": "m", "responseTime": 1764554400123u64,
            }))
        };
        let id = "261201RQ7X2M9PTB4H";
        assert_eq!(
            m.refund_answer(id, &answer(0)),
            Ok(RefundAnswer::Succeeded {
                provider_refund_id: Some("4100000001".into()),
                provider_code: "0".into(),
                message: "m".into(),
            })
        );
        for code in [1000, 7000, 7002, 40, 41] {
            assert!(
                matches!(
                    m.refund_answer(id, &answer(code)),
                    Ok(RefundAnswer::Pending { .. })
                ),
                "{code}"
            );
        }
        for code in [13, 20, 22, 1080, 1081, 99] {
            assert!(
                matches!(
                    m.refund_answer(id, &answer(code)),
                    Ok(RefundAnswer::Failed { provider_code, .. }) if provider_code == code.to_string()
                ),
                "{code}"
            );
        }
        assert!(matches!(
            m.refund_answer("ANOTHER", &answer(0)),
            Err(ProviderError::BadAnswer(_))
        ));
        let mut other_partner = answer(0);
        other_partner.insert("partnerCode".into(), json!("MOMOOTHER"));
        assert!(matches!(
            m.refund_answer(id, &other_partner),
            Err(ProviderError::BadAnswer(_))
        ));
        assert!(matches!(
            m.refund_answer(id, &object(json!({"message": "no code"}))),
            Err(ProviderError::BadAnswer(_))
        ));
    }

    #[test]
    fn refund_status_is_read_from_refund_trans() {
        let m = momo();
        let request = refund_request(50_000);
        let answer = |refunds: Value| {
            object(json!({
                "partnerCode": "MOMOLEPHI2026", "orderId": "261128K7QX2M9PTB4H",
                "resultCode": 0, "message": "m", "transId": 4088878653u64, "amount": 150000,
                "refundTrans": refunds,
            }))
        };
        let entry = |id: &str, amount: i64, code: i64| json!({"orderId": id, "amount": amount, "resultCode": code, "transId": 4100000001u64});
        let read = |answer| m.refund_query_answer(&request, &answer);
        assert!(matches!(
            read(answer(json!([entry("OTHER", 10_000, 0), entry("261201RQ7X2M9PTB4H", 50_000, 0)]))),
            Ok(RefundAnswer::Succeeded { provider_refund_id: Some(id), .. }) if id == "4100000001"
        ));
        assert!(matches!(
            read(answer(json!([entry("261201RQ7X2M9PTB4H", 50_000, 7000)]))),
            Ok(RefundAnswer::Pending { .. })
        ));
        assert!(matches!(
            read(answer(json!([entry("261201RQ7X2M9PTB4H", 50_000, 1080)]))),
            Ok(RefundAnswer::Failed { provider_code, .. }) if provider_code == "1080"
        ));
        assert!(matches!(
            read(answer(json!([entry("OTHER", 50_000, 0)]))),
            Ok(RefundAnswer::Pending { .. })
        ));
        assert!(matches!(
            read(answer(json!([]))),
            Ok(RefundAnswer::Pending { .. })
        ));
        assert!(matches!(
            read(answer(json!([entry("261201RQ7X2M9PTB4H", 40_000, 0)]))),
            Err(ProviderError::BadAnswer(_))
        ));
        assert!(matches!(
            read(answer(json!("none"))),
            Err(ProviderError::BadAnswer(_))
        ));
        let mut other_order = answer(json!([entry("261201RQ7X2M9PTB4H", 50_000, 0)]));
        other_order.insert("orderId".into(), json!("OTHERORDER"));
        assert!(matches!(
            read(other_order),
            Err(ProviderError::BadAnswer(_))
        ));
        assert!(matches!(
            read(object(json!({"resultCode": 42, "message": "no such order"}))),
            Err(ProviderError::Refused { code, .. }) if code == "42"
        ));
    }

    #[test]
    fn replies() {
        let m = momo();
        assert_eq!(
            m.acknowledge(Verdict::AmountMismatch),
            Reply {
                status: 204,
                body: None
            }
        );
        assert_eq!(m.reject(&CallbackError::BadSignature).status, 401);
        assert_eq!(m.reject(&CallbackError::Malformed("x".into())).status, 400);
        assert_eq!(m.retry_later().status, 503);
    }
}
