//! MoMo e-wallet, API v2 (`captureWallet`): creating a payment, checking
//! the IPN, and the status query.
//!
//! MoMo signs with HMAC-SHA256 over `key=value&...` with the keys in a
//! fixed (alphabetical) order and the values not URL-encoded; the
//! merchant's `accessKey` is part of the signed text though not of the IPN.

use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::signing::{
    from_unix_ms, hmac_sha256_hex, int_field, json_int, json_object, malformed, send_for_json,
    signed_text, str_field, verify_hmac_sha256_hex,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ProviderError,
    ReceivedPayment, Reply, StartRequest, Started, Verdict,
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
        let bad = |err: CallbackError| ProviderError::BadAnswer(err.to_string());
        let result_code = int_field(answer, "resultCode").map_err(bad)?;
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
        if let Some(order_id) = answer.get("orderId")
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
        // The query's responseTime is when MoMo answered, not when the
        // payer paid, so it is not a payment time.
        self.event(answer, order_ref, result_code, message, None)
            .map_err(bad)
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
        if !verify_hmac_sha256_hex(self.secret(), signed.as_bytes(), signature) {
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
