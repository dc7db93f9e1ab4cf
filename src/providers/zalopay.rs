//! ZaloPay e-wallet, API v2: creating an order, checking the callback, the
//! order status query, and refunds.
//!
//! Requests are signed with `key1`, callbacks with `key2`, both
//! HMAC-SHA256 over values joined with `|` (requests) or over the raw
//! `data` string (callbacks). ZaloPay calls back only on success and may
//! not call at all, so pending orders must also be queried. ZaloPay's API
//! answers carry no mac: they are trusted as answers over TLS to lephi's
//! own request.

use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};

use super::signing::{
    Rotation, amount_field, from_unix_ms, hmac_sha256_hex, int_field, json_int, json_object,
    malformed, parse_int, random_symbols, send_for_json, signed_text, str_field, unix_ms,
    verify_hmac_sha256_hex, vietnam_yymmdd,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ProviderError,
    ReceivedPayment, RefundAnswer, RefundRequest, Reply, StartRequest, Started, Verdict,
};
use crate::config::ZalopaySettings;
use crate::domain::Timestamp;
use crate::domain::Vnd;
use crate::domain::payment::Channel;

const APP_USER: &str = "lephi";
/// ZaloPay's bounds on `expire_duration_seconds`.
const MIN_EXPIRY_SECS: i64 = 300;
const MAX_EXPIRY_SECS: i64 = 2_592_000;

/// A new `app_trans_id`: ZaloPay requires the Vietnamese date `yymmdd_`
/// in front; 12 random symbols follow, as in other order references.
pub fn app_trans_id(now: Timestamp, rng: &mut impl Rng) -> String {
    format!("{}_{}", vietnam_yymmdd(now), random_symbols(12, rng))
}

/// How many random symbols end an `m_refund_id`.
const REFUND_ID_RANDOM_LEN: usize = 10;

/// The ZaloPay gateway for one app.
pub struct Zalopay {
    settings: ZalopaySettings,
}

impl Zalopay {
    pub fn new(settings: ZalopaySettings) -> Zalopay {
        Zalopay { settings }
    }

    fn key1(&self) -> &[u8] {
        self.settings.key1.expose_secret().as_bytes()
    }

    /// The keys what ZaloPay signs (with key2) is checked under.
    fn key2(&self) -> Rotation<'_> {
        Rotation {
            provider: "zalopay",
            current: &self.settings.key2,
            previous: self.settings.previous_key2.as_ref(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.endpoint.trim_end_matches('/'))
    }

    /// The signed form fields of a `create` request, in order.
    pub fn create_request(
        &self,
        request: &StartRequest<'_>,
    ) -> Result<Vec<(&'static str, String)>, ProviderError> {
        let amount = request.amount.dong();
        if amount <= 0 {
            return Err(ProviderError::Refused {
                code: "amount_out_of_range".into(),
                message: "ZaloPay needs a positive amount".into(),
            });
        }
        let app_time = unix_ms(request.created_at).to_string();
        let embed_data = json!({ "redirecturl": request.return_url }).to_string();
        let item = "[]";
        let app_id = &self.settings.app_id;
        let app_trans_id = request.order_ref;
        let signed =
            format!("{app_id}|{app_trans_id}|{APP_USER}|{amount}|{app_time}|{embed_data}|{item}");
        let mac = hmac_sha256_hex(self.key1(), signed.as_bytes());
        let validity = (request.expires_at.as_datetime() - request.created_at.as_datetime())
            .whole_seconds()
            .clamp(MIN_EXPIRY_SECS, MAX_EXPIRY_SECS);
        Ok(vec![
            ("app_id", app_id.clone()),
            ("app_trans_id", app_trans_id.to_owned()),
            ("app_user", APP_USER.to_owned()),
            ("app_time", app_time),
            ("amount", amount.to_string()),
            ("item", item.to_owned()),
            ("embed_data", embed_data),
            ("description", request.description.to_owned()),
            ("bank_code", String::new()),
            ("callback_url", request.ipn_url.to_owned()),
            ("expire_duration_seconds", validity.to_string()),
            ("mac", mac),
        ])
    }

    /// Creates the order at ZaloPay and returns its `order_url`.
    pub async fn start(
        &self,
        http: &reqwest::Client,
        request: &StartRequest<'_>,
    ) -> Result<Started, ProviderError> {
        let form = self.create_request(request)?;
        let answer = send_for_json(post_form(http, &self.url("/v2/create"), &form)).await?;
        create_answer(&answer)
    }

    /// The signed form fields of an order status query.
    pub fn query_request(&self, app_trans_id: &str) -> Vec<(&'static str, String)> {
        let app_id = &self.settings.app_id;
        // ZaloPay signs the query with key1 also inside the signed text.
        let mut signed = format!("{app_id}|{app_trans_id}|").into_bytes();
        signed.extend_from_slice(self.key1());
        vec![
            ("app_id", app_id.clone()),
            ("app_trans_id", app_trans_id.to_owned()),
            ("mac", hmac_sha256_hex(self.key1(), &signed)),
        ]
    }

    /// A new `m_refund_id`: `yymmdd_appid_` (the Vietnamese date and this
    /// app) then 10 random symbols, as ZaloPay requires.
    pub fn m_refund_id(&self, now: Timestamp, rng: &mut impl Rng) -> String {
        format!(
            "{}_{}_{}",
            vietnam_yymmdd(now),
            self.settings.app_id,
            random_symbols(REFUND_ID_RANDOM_LEN, rng)
        )
    }

    /// The signed form fields of a refund. ZaloPay's mac does not cover
    /// `m_refund_id`; the `timestamp` is when the refund was submitted,
    /// so that a refund sent again is the same request.
    pub fn refund_request(&self, request: &RefundRequest<'_>) -> Vec<(&'static str, String)> {
        let app_id = &self.settings.app_id;
        let zp_trans_id = request.provider_txn_id;
        let amount = request.amount.dong();
        let description = request.description;
        let timestamp = unix_ms(request.submitted_at);
        let signed = format!("{app_id}|{zp_trans_id}|{amount}|{description}|{timestamp}");
        vec![
            ("app_id", app_id.clone()),
            ("m_refund_id", request.request_id.to_owned()),
            ("zp_trans_id", zp_trans_id.to_owned()),
            ("amount", amount.to_string()),
            ("timestamp", timestamp.to_string()),
            ("description", description.to_owned()),
            ("mac", hmac_sha256_hex(self.key1(), signed.as_bytes())),
        ]
    }

    /// Sends a refund: `return_code` 1 is [`RefundAnswer::Succeeded`], 2
    /// [`RefundAnswer::Failed`], 3 (processing) and any other
    /// [`RefundAnswer::Pending`], for `query_refund` to settle.
    pub async fn refund(
        &self,
        http: &reqwest::Client,
        request: &RefundRequest<'_>,
    ) -> Result<RefundAnswer, ProviderError> {
        let form = self.refund_request(request);
        let answer = send_for_json(post_form(http, &self.url("/v2/refund"), &form)).await?;
        let (return_code, code, message) = codes(&answer)?;
        Ok(
            refund_answer(return_code, code, message, &answer).unwrap_or_else(|(code, message)| {
                RefundAnswer::Pending {
                    provider_refund_id: refund_id(&answer),
                    provider_code: code,
                    message,
                }
            }),
        )
    }

    /// The signed form fields of a refund status query, sent at `now`.
    pub fn query_refund_request(
        &self,
        m_refund_id: &str,
        now: Timestamp,
    ) -> Vec<(&'static str, String)> {
        let app_id = &self.settings.app_id;
        let timestamp = unix_ms(now);
        let signed = format!("{app_id}|{m_refund_id}|{timestamp}");
        vec![
            ("app_id", app_id.clone()),
            ("m_refund_id", m_refund_id.to_owned()),
            ("timestamp", timestamp.to_string()),
            ("mac", hmac_sha256_hex(self.key1(), signed.as_bytes())),
        ]
    }

    /// Asks ZaloPay where the refund stands (`query_refund`):
    /// `return_code` 1 succeeded, 2 failed, 3 processing; any other is
    /// [`ProviderError::Refused`].
    pub async fn query_refund(
        &self,
        http: &reqwest::Client,
        request: &RefundRequest<'_>,
    ) -> Result<RefundAnswer, ProviderError> {
        let form = self.query_refund_request(request.request_id, Timestamp::now());
        let answer = send_for_json(post_form(http, &self.url("/v2/query_refund"), &form)).await?;
        let (return_code, code, message) = codes(&answer)?;
        refund_answer(return_code, code, message, &answer)
            .map_err(|(code, message)| ProviderError::Refused { code, message })
    }

    /// Asks ZaloPay where the order `app_trans_id` stands: `return_code`
    /// 1 paid, 2 failed, 3 pending; any other is
    /// [`ProviderError::Refused`].
    pub async fn query(
        &self,
        http: &reqwest::Client,
        app_trans_id: &str,
    ) -> Result<CallbackEvent, ProviderError> {
        let form = self.query_request(app_trans_id);
        let answer = send_for_json(post_form(http, &self.url("/v2/query"), &form)).await?;
        query_answer(app_trans_id, &answer)
    }
}

fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&'static str, String)],
) -> reqwest::RequestBuilder {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    http.post(url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
}

/// `return_code`, then the most specific code and message ZaloPay gave.
fn codes(answer: &Map<String, Value>) -> Result<(i64, String, String), ProviderError> {
    let return_code = answer
        .get("return_code")
        .and_then(json_int)
        .ok_or_else(|| ProviderError::BadAnswer("the answer has no return_code".into()))?;
    let code = answer
        .get("sub_return_code")
        .and_then(json_int)
        .unwrap_or(return_code)
        .to_string();
    let text = |key: &str| {
        answer
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (main, sub) = (text("return_message"), text("sub_return_message"));
    let message = match (main.is_empty(), sub.is_empty()) {
        (_, true) => main,
        (true, false) => sub,
        (false, false) => format!("{main}: {sub}"),
    };
    Ok((return_code, code, message))
}

/// A refund's `return_code` read as where the refund stands; the code and
/// message back for any other `return_code`.
fn refund_answer(
    return_code: i64,
    code: String,
    message: String,
    answer: &Map<String, Value>,
) -> Result<RefundAnswer, (String, String)> {
    match return_code {
        1 => Ok(RefundAnswer::Succeeded {
            provider_refund_id: refund_id(answer),
            provider_code: code,
            message,
        }),
        2 => Ok(RefundAnswer::Failed {
            provider_code: code,
            message,
        }),
        3 => Ok(RefundAnswer::Pending {
            provider_refund_id: refund_id(answer),
            provider_code: code,
            message,
        }),
        _ => Err((code, message)),
    }
}

/// ZaloPay's `refund_id`, a number or its digits.
fn refund_id(answer: &Map<String, Value>) -> Option<String> {
    answer
        .get("refund_id")
        .and_then(json_int)
        .filter(|id| *id > 0)
        .map(|id| id.to_string())
}

fn create_answer(answer: &Map<String, Value>) -> Result<Started, ProviderError> {
    let (return_code, code, message) = codes(answer)?;
    if return_code != 1 {
        return Err(ProviderError::Refused { code, message });
    }
    match answer.get("order_url").and_then(Value::as_str) {
        Some(url) if !url.is_empty() => Ok(Started {
            pay_url: url.to_owned(),
        }),
        _ => Err(ProviderError::BadAnswer(
            "the answer has no order_url".into(),
        )),
    }
}

fn query_answer(
    app_trans_id: &str,
    answer: &Map<String, Value>,
) -> Result<CallbackEvent, ProviderError> {
    let (return_code, code, message) = codes(answer)?;
    let bad = |err: CallbackError| ProviderError::BadAnswer(err.to_string());
    match return_code {
        1 => {
            let zp_trans_id = int_field(answer, "zp_trans_id").map_err(bad)?;
            if zp_trans_id <= 0 {
                return Err(ProviderError::BadAnswer(
                    "zp_trans_id must be positive".into(),
                ));
            }
            Ok(CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::Zalopay,
                provider_txn_id: zp_trans_id.to_string(),
                target: PaymentTarget::Order(app_trans_id.to_owned()),
                amount: amount_field(answer, "amount").map_err(bad)?,
                // The query does not say when the payer paid.
                paid_at: None,
                account_number: None,
            }))
        }
        2 => Ok(CallbackEvent::Failed {
            order_ref: app_trans_id.to_owned(),
            provider_code: code,
            message,
        }),
        3 => Ok(CallbackEvent::Pending {
            order_ref: app_trans_id.to_owned(),
            provider_code: code,
        }),
        _ => Err(ProviderError::Refused { code, message }),
    }
}

/// The fields of ZaloPay's redirect, in the order its `checksum` signs
/// them: `HMAC-SHA256(key2, appid|apptransid|pmcid|bankcode|amount|discountamount|status)`.
pub const REDIRECT_FIELDS: [&str; 7] = [
    "appid",
    "apptransid",
    "pmcid",
    "bankcode",
    "amount",
    "discountamount",
    "status",
];

/// `status` of a paid order in ZaloPay's redirect.
const REDIRECT_PAID: i64 = 1;

impl Zalopay {
    /// Checks the query ZaloPay sends the payer back with (without the
    /// `?`) against its `checksum`, compared in constant time. A declined
    /// or cancelled payment (any `status` but 1) is
    /// [`CallbackEvent::Failed`]. A paid one is [`CallbackEvent::Pending`]:
    /// the redirect names no `zp_trans_id`, so only the callback or the
    /// status query records the money. A field given twice, a missing or
    /// wrong checksum, or another app's redirect is refused.
    pub fn verify_redirect(&self, query: &str) -> Result<CallbackEvent, CallbackError> {
        let mut values: [Option<String>; REDIRECT_FIELDS.len()] = Default::default();
        let mut checksum = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match REDIRECT_FIELDS.iter().position(|field| *field == key) {
                Some(i) => &mut values[i],
                None if key == "checksum" => &mut checksum,
                None => continue,
            };
            // Two values for one signed key: which one was signed is
            // ambiguous, so neither is trusted.
            if slot.replace(value.into_owned()).is_some() {
                return Err(CallbackError::BadSignature);
            }
        }
        let checksum = checksum.ok_or(CallbackError::BadSignature)?;
        let values = values
            .into_iter()
            .zip(REDIRECT_FIELDS)
            .map(|(value, field)| value.ok_or_else(|| malformed(format!("{field} is missing"))))
            .collect::<Result<Vec<_>, _>>()?;
        let signed = values.join("|");
        if !self
            .key2()
            .verifies(|key| verify_hmac_sha256_hex(key, signed.as_bytes(), &checksum))
        {
            return Err(CallbackError::BadSignature);
        }
        let [app_id, app_trans_id, .., status] = values.as_slice() else {
            return Err(malformed("the redirect's fields are missing"));
        };
        if *app_id != self.settings.app_id {
            return Err(malformed("the redirect is for another app"));
        }
        if app_trans_id.is_empty() {
            return Err(malformed("apptransid is empty"));
        }
        let order_ref = app_trans_id.clone();
        match parse_int(status) {
            Some(REDIRECT_PAID) => Ok(CallbackEvent::Pending {
                order_ref,
                provider_code: status.clone(),
            }),
            Some(_) => Ok(CallbackEvent::Failed {
                order_ref,
                provider_code: status.clone(),
                message: "ZaloPay returned the payer with a failed or cancelled status".into(),
            }),
            None => Err(malformed("status is not an integer")),
        }
    }
}

impl Provider for Zalopay {
    fn channel(&self) -> Channel {
        Channel::Zalopay
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<CallbackEvent, CallbackError> {
        let body = json_object(request.body)?;
        let mac = match body.get("mac") {
            Some(Value::String(mac)) => mac.as_str(),
            _ => return Err(CallbackError::BadSignature),
        };
        // The mac covers `data` as sent: the string value itself, after
        // the outer JSON's escapes are undone, never a re-serialisation.
        let data = str_field(&body, "data")?;
        if !self
            .key2()
            .verifies(|key| verify_hmac_sha256_hex(key, data.as_bytes(), mac))
        {
            return Err(CallbackError::BadSignature);
        }
        // Type 1 is a payment; type 2 (agreement binding) is not used.
        if let Some(kind) = body.get("type")
            && json_int(kind) != Some(1)
        {
            return Err(malformed("type is not 1 (a payment)"));
        }
        let data = match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(map)) => map,
            _ => return Err(malformed("data is not a JSON object")),
        };
        if signed_text(&data, "app_id")? != self.settings.app_id {
            return Err(malformed("the callback is for another app"));
        }
        let app_trans_id = str_field(&data, "app_trans_id")?;
        if app_trans_id.is_empty() {
            return Err(malformed("app_trans_id is empty"));
        }
        let zp_trans_id = int_field(&data, "zp_trans_id")?;
        if zp_trans_id <= 0 {
            return Err(malformed("zp_trans_id must be positive"));
        }
        let amount: Vnd = amount_field(&data, "amount")?;
        let server_time = int_field(&data, "server_time")?;
        let paid_at =
            from_unix_ms(server_time).ok_or_else(|| malformed("server_time is out of range"))?;
        Ok(CallbackEvent::Paid(ReceivedPayment {
            channel: Channel::Zalopay,
            provider_txn_id: zp_trans_id.to_string(),
            target: PaymentTarget::Order(app_trans_id.to_owned()),
            amount,
            paid_at: Some(paid_at),
            account_number: None,
        }))
    }

    fn acknowledge(&self, _verdict: Verdict) -> Reply {
        Reply::json(
            200,
            json!({ "return_code": 1, "return_message": "success" }),
        )
    }

    fn reject(&self, error: &CallbackError) -> Reply {
        let message = match error {
            CallbackError::BadSignature => "mac not equal",
            CallbackError::Malformed(_) => "invalid callback",
        };
        Reply::json(200, json!({ "return_code": -1, "return_message": message }))
    }

    /// `0` makes ZaloPay call back again (up to 3 times).
    fn retry_later(&self) -> Reply {
        Reply::json(200, json!({ "return_code": 0, "return_message": "retry" }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderMap;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use secrecy::SecretString;

    const KEY1: &str = "PcY4iZIKFCIdgZvA6ueMcMHHUbRLYjPL";
    const KEY2: &str = "kLtgPl8HHhfvMuDHPwKfgfsY4Ydm9eIz";

    fn zalopay() -> Zalopay {
        Zalopay::new(ZalopaySettings {
            app_id: "2553".into(),
            key1: SecretString::from(KEY1),
            key2: SecretString::from(KEY2),
            previous_key2: None,
            endpoint: "https://sb-openapi.zalopay.vn".into(),
        })
    }

    /// `data` exactly as ZaloPay sends it (its own key order and spacing).
    const DATA: &str = r#"{"app_id":2553,"app_trans_id":"261128_K7QX2M9PTB4H","app_time":1764318600000,"app_user":"lephi","amount":150000,"embed_data":"{\"redirecturl\":\"https://lephi.example.vn/pay/return\"}","item":"[]","zp_trans_id":261128000000123,"server_time":1764318612345,"channel":38,"merchant_user_id":"abc","user_fee_amount":0,"discount_amount":0}"#;

    fn callback(data: &str, mac: &str) -> Vec<u8> {
        json!({ "data": data, "mac": mac, "type": 1 })
            .to_string()
            .into_bytes()
    }

    fn mac_of(data: &str, key: &str) -> String {
        hmac_sha256_hex(key.as_bytes(), data.as_bytes())
    }

    fn verify(body: &[u8]) -> Result<CallbackEvent, CallbackError> {
        let headers = HeaderMap::new();
        zalopay().verify(&CallbackRequest {
            query: "",
            headers: &headers,
            body,
            received_at: Timestamp::now(),
        })
    }

    #[test]
    fn app_trans_ids_start_with_the_vietnamese_date() {
        let t = Timestamp::parse_rfc3339("2026-11-28T18:00:00Z").unwrap();
        let id = app_trans_id(t, &mut StdRng::seed_from_u64(3));
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("261129_"));
        assert!(id[7..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn a_signed_callback_is_paid() {
        assert_eq!(
            verify(&callback(DATA, &mac_of(DATA, KEY2))).unwrap(),
            CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::Zalopay,
                provider_txn_id: "261128000000123".into(),
                target: PaymentTarget::Order("261128_K7QX2M9PTB4H".into()),
                amount: Vnd::new(150_000),
                paid_at: from_unix_ms(1_764_318_612_345),
                account_number: None,
            })
        );
    }

    #[test]
    fn the_mac_covers_the_data_string_byte_for_byte() {
        // The same JSON with different spacing is different signed text.
        let spaced = DATA.replace(",\"amount\"", ", \"amount\"");
        assert_eq!(
            verify(&callback(&spaced, &mac_of(DATA, KEY2))),
            Err(CallbackError::BadSignature)
        );
        assert!(verify(&callback(&spaced, &mac_of(&spaced, KEY2))).is_ok());
    }

    #[test]
    fn every_tampered_field_is_a_bad_signature() {
        let mac = mac_of(DATA, KEY2);
        for (from, to) in [
            ("\"app_id\":2553", "\"app_id\":2554"),
            ("261128_K7QX2M9PTB4H", "261128_K7QX2M9PTB4J"),
            ("\"app_time\":1764318600000", "\"app_time\":1764318600001"),
            ("\"amount\":150000", "\"amount\":250000"),
            ("redirecturl", "redirectUrl"),
            (
                "\"zp_trans_id\":261128000000123",
                "\"zp_trans_id\":261128000000124",
            ),
            (
                "\"server_time\":1764318612345",
                "\"server_time\":1764318612346",
            ),
            ("\"channel\":38", "\"channel\":39"),
            ("\"user_fee_amount\":0", "\"user_fee_amount\":1"),
        ] {
            let tampered = DATA.replacen(from, to, 1);
            assert_ne!(tampered, DATA);
            assert_eq!(
                verify(&callback(&tampered, &mac)),
                Err(CallbackError::BadSignature),
                "{from}"
            );
        }
    }

    #[test]
    fn a_wrong_key_or_missing_mac_is_a_bad_signature() {
        assert_eq!(
            verify(&callback(DATA, &mac_of(DATA, KEY1))),
            Err(CallbackError::BadSignature)
        );
        let no_mac = json!({ "data": DATA, "type": 1 }).to_string();
        assert_eq!(verify(no_mac.as_bytes()), Err(CallbackError::BadSignature));
        let number_mac = json!({ "data": DATA, "mac": 5, "type": 1 }).to_string();
        assert_eq!(
            verify(number_mac.as_bytes()),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(
            verify(&callback(DATA, "")),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn malformed_bodies() {
        for body in [&b"nope"[..], b"", b"[]", b"null"] {
            assert!(matches!(verify(body), Err(CallbackError::Malformed(_))));
        }
        let no_data = json!({ "mac": "00", "type": 1 }).to_string();
        assert!(matches!(
            verify(no_data.as_bytes()),
            Err(CallbackError::Malformed(_))
        ));
        for data in [
            "not json",
            "[1]",
            r#"{"app_id":2553}"#,
            &DATA.replace("\"amount\":150000", "\"amount\":-150000"),
            &DATA.replace("\"amount\":150000", "\"amount\":0"),
            &DATA.replace("\"amount\":150000", "\"amount\":1.5"),
            &DATA.replace("\"amount\":150000", "\"amount\":99999999999999999999999"),
            &DATA.replace("\"amount\":150000", "\"amount\":\"many\""),
            &DATA.replace("\"zp_trans_id\":261128000000123", "\"zp_trans_id\":\"x\""),
            &DATA.replace("\"server_time\":1764318612345", "\"server_time\":9e30"),
            &DATA.replace(
                "\"server_time\":1764318612345",
                "\"server_time\":9223372036854775807",
            ),
            &DATA.replace(
                "\"app_trans_id\":\"261128_K7QX2M9PTB4H\"",
                "\"app_trans_id\":7",
            ),
            &DATA.replace("\"app_id\":2553", "\"app_id\":2554"),
        ] {
            let result = verify(&callback(data, &mac_of(data, KEY2)));
            assert!(matches!(result, Err(CallbackError::Malformed(_))), "{data}");
        }
        let type_two = json!({ "data": DATA, "mac": mac_of(DATA, KEY2), "type": 2 }).to_string();
        assert!(matches!(
            verify(type_two.as_bytes()),
            Err(CallbackError::Malformed(_))
        ));
    }

    /// A redirect of a paid order, its checksum computed apart from
    /// lephi's code: HMAC-SHA256 under key2 over
    /// `2553|261128_K7QX2M9PTB4H|38||150000|0|1`.
    const PAID_REDIRECT: &str = "amount=150000&appid=2553&apptransid=261128_K7QX2M9PTB4H&bankcode=&checksum=04f9ae69e46630ba65aff104c479a388f5cde6f942ea3a0deaa853c7341f05ca&discountamount=0&pmcid=38&status=1";
    /// The same order cancelled (`status` -49), signed likewise over
    /// `2553|261128_K7QX2M9PTB4H|38||150000|0|-49`.
    const CANCELLED_REDIRECT: &str = "appid=2553&apptransid=261128_K7QX2M9PTB4H&pmcid=38&bankcode=&amount=150000&discountamount=0&status=-49&checksum=627707b24fefb055a0e89e2d633bbd4ade0898ae1c9ee1eebed5db4c8ea9e29a";

    /// `query` with `field`'s value replaced by `value`, checksum kept.
    fn with_field(query: &str, field: &str, value: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form_urlencoded::parse(query.as_bytes()).map(|(k, v)| {
                let v = if k == field {
                    value.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            }))
            .finish()
    }

    /// The redirect's fields signed with `key`, in the order ZaloPay
    /// sends them.
    fn redirect_signed(values: [&str; 7], key: &str) -> String {
        let checksum = mac_of(&values.join("|"), key);
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(REDIRECT_FIELDS.iter().zip(values));
        query.append_pair("checksum", &checksum);
        query.finish()
    }

    #[test]
    fn a_signed_redirect_says_failed_or_leaves_success_to_the_callback() {
        let z = zalopay();
        assert_eq!(
            z.verify_redirect(CANCELLED_REDIRECT),
            Ok(CallbackEvent::Failed {
                order_ref: "261128_K7QX2M9PTB4H".into(),
                provider_code: "-49".into(),
                message: "ZaloPay returned the payer with a failed or cancelled status".into(),
            })
        );
        // Success records nothing: the redirect names no zp_trans_id.
        assert_eq!(
            z.verify_redirect(PAID_REDIRECT),
            Ok(CallbackEvent::Pending {
                order_ref: "261128_K7QX2M9PTB4H".into(),
                provider_code: "1".into(),
            })
        );
        // Other parameters (lephi's own `lang`) and the checksum in
        // upper case change nothing.
        let upper = PAID_REDIRECT.replace(
            "04f9ae69e46630ba65aff104c479a388f5cde6f942ea3a0deaa853c7341f05ca",
            "04F9AE69E46630BA65AFF104C479A388F5CDE6F942EA3A0DEAA853C7341F05CA",
        );
        assert!(z.verify_redirect(&format!("{upper}&lang=en")).is_ok());
    }

    #[test]
    fn every_changed_redirect_field_is_a_bad_signature() {
        let z = zalopay();
        for (field, value) in [
            ("appid", "2554"),
            ("apptransid", "261128_K7QX2M9PTB4J"),
            ("pmcid", "39"),
            ("bankcode", "VCB"),
            ("amount", "1500000"),
            ("discountamount", "1"),
            ("status", "-49"),
        ] {
            let changed = with_field(PAID_REDIRECT, field, value);
            assert_eq!(
                z.verify_redirect(&changed),
                Err(CallbackError::BadSignature),
                "{field}"
            );
        }
        // A failed status turned into success does not verify either.
        assert_eq!(
            z.verify_redirect(&with_field(CANCELLED_REDIRECT, "status", "1")),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn a_redirect_signed_with_another_key_or_unsigned_is_refused() {
        let z = zalopay();
        let values = [
            "2553",
            "261128_K7QX2M9PTB4H",
            "38",
            "",
            "150000",
            "0",
            "-49",
        ];
        assert!(z.verify_redirect(&redirect_signed(values, KEY2)).is_ok());
        for key in [KEY1, "another-key"] {
            assert_eq!(
                z.verify_redirect(&redirect_signed(values, key)),
                Err(CallbackError::BadSignature),
                "{key}"
            );
        }
        let (unsigned, _) = CANCELLED_REDIRECT.split_once("&checksum=").unwrap();
        for query in [
            unsigned.to_owned(),
            format!("{unsigned}&checksum="),
            format!("{unsigned}&checksum=zz"),
            format!("{unsigned}&checksum=627707b24fefb055"),
            // Two checksums, or two statuses: neither is trusted.
            format!("{CANCELLED_REDIRECT}&checksum=00"),
            format!("{CANCELLED_REDIRECT}&status=1"),
            String::new(),
        ] {
            assert_eq!(
                z.verify_redirect(&query),
                Err(CallbackError::BadSignature),
                "{query}"
            );
        }
    }

    #[test]
    fn malformed_redirects_are_refused_even_when_signed() {
        let z = zalopay();
        // A signed field left out cannot be told from an empty one.
        let no_bankcode = CANCELLED_REDIRECT.replace("&bankcode=", "");
        assert!(matches!(
            z.verify_redirect(&no_bankcode),
            Err(CallbackError::Malformed(_))
        ));
        for values in [
            ["2554", "261128_K7QX2M9PTB4H", "38", "", "150000", "0", "1"],
            ["2553", "", "38", "", "150000", "0", "-49"],
            [
                "2553",
                "261128_K7QX2M9PTB4H",
                "38",
                "",
                "150000",
                "0",
                "failed",
            ],
        ] {
            assert!(
                matches!(
                    z.verify_redirect(&redirect_signed(values, KEY2)),
                    Err(CallbackError::Malformed(_))
                ),
                "{values:?}"
            );
        }
    }

    #[test]
    fn the_create_request_is_signed_as_documented() {
        let request = StartRequest {
            order_ref: "261128_K7QX2M9PTB4H",
            amount: Vnd::new(150_000),
            description: "Thanh toan le phi LP23456789AB",
            created_at: from_unix_ms(1_764_318_600_000).unwrap(),
            expires_at: from_unix_ms(1_764_319_500_000).unwrap(),
            return_url: "https://lephi.example.vn/pay/return",
            ipn_url: "https://lephi.example.vn/callbacks/zalopay",
            client_ip: "203.0.113.7",
            locale: "vn",
        };
        let form = zalopay().create_request(&request).unwrap();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let signed = r#"2553|261128_K7QX2M9PTB4H|lephi|150000|1764318600000|{"redirecturl":"https://lephi.example.vn/pay/return"}|[]"#;
        assert_eq!(
            field("mac"),
            hmac_sha256_hex(KEY1.as_bytes(), signed.as_bytes())
        );
        assert_eq!(
            field("callback_url"),
            "https://lephi.example.vn/callbacks/zalopay"
        );
        assert_eq!(field("expire_duration_seconds"), "900");
        let mut zero = request.clone();
        zero.amount = Vnd::new(0);
        assert!(zalopay().create_request(&zero).is_err());
    }

    #[test]
    fn the_query_is_signed_with_key1_inside() {
        let form = zalopay().query_request("261128_K7QX2M9PTB4H");
        let signed = format!("2553|261128_K7QX2M9PTB4H|{KEY1}");
        assert_eq!(
            form[2],
            ("mac", hmac_sha256_hex(KEY1.as_bytes(), signed.as_bytes()))
        );
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn answers() {
        assert_eq!(
            create_answer(&object(
                json!({"return_code": 1, "order_url": "https://qcgateway/x"})
            )),
            Ok(Started {
                pay_url: "https://qcgateway/x".into()
            })
        );
        assert_eq!(
            create_answer(&object(json!({
                "return_code": 2, "return_message": "Giao dịch thất bại",
                "sub_return_code": -402, "sub_return_message": "Mac không hợp lệ",
            }))),
            Err(ProviderError::Refused {
                code: "-402".into(),
                message: "Giao dịch thất bại: Mac không hợp lệ".into()
            })
        );
        assert!(matches!(
            create_answer(&object(json!({"order_url": "x"}))),
            Err(ProviderError::BadAnswer(_))
        ));
        let id = "261128_K7QX2M9PTB4H";
        assert!(matches!(
            query_answer(
                id,
                &object(json!({"return_code": 1, "amount": 150000, "zp_trans_id": 5}))
            ),
            Ok(CallbackEvent::Paid(_))
        ));
        assert!(matches!(
            query_answer(id, &object(json!({"return_code": 2}))),
            Ok(CallbackEvent::Failed { .. })
        ));
        assert!(matches!(
            query_answer(
                id,
                &object(json!({"return_code": 3, "is_processing": true}))
            ),
            Ok(CallbackEvent::Pending { .. })
        ));
        assert!(matches!(
            query_answer(
                id,
                &object(json!({"return_code": 1, "amount": -1, "zp_trans_id": 5}))
            ),
            Err(ProviderError::BadAnswer(_))
        ));
    }

    fn refund_request() -> RefundRequest<'static> {
        RefundRequest {
            request_id: "261201_2553_RQ7X2M9PTB",
            order_ref: "261128_K7QX2M9PTB4H",
            provider_txn_id: "261128000000123",
            payment_amount: Vnd::new(150_000),
            amount: Vnd::new(50_000),
            paid_at: from_unix_ms(1_764_318_612_345).unwrap(),
            submitted_at: from_unix_ms(1_764_554_400_000).unwrap(),
            created_by: "officer1",
            description: "Hoan le phi HS-1",
            client_ip: "10.0.0.1",
        }
    }

    #[test]
    fn refund_ids_name_the_day_and_the_app() {
        let t = Timestamp::parse_rfc3339("2026-12-01T18:00:00Z").unwrap();
        let id = zalopay().m_refund_id(t, &mut StdRng::seed_from_u64(4));
        assert_eq!(id.len(), "261202_2553_".len() + 10);
        assert!(id.starts_with("261202_2553_"), "{id}");
        assert!(id[12..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn the_refund_and_its_query_are_signed_as_documented() {
        let form = zalopay().refund_request(&refund_request());
        let field = |form: &[(&str, String)], name: &str| {
            form.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let signed = "2553|261128000000123|50000|Hoan le phi HS-1|1764554400000";
        assert_eq!(
            field(&form, "mac"),
            hmac_sha256_hex(KEY1.as_bytes(), signed.as_bytes())
        );
        assert_eq!(field(&form, "m_refund_id"), "261201_2553_RQ7X2M9PTB");
        assert_eq!(field(&form, "timestamp"), "1764554400000");
        let query = zalopay().query_refund_request(
            "261201_2553_RQ7X2M9PTB",
            from_unix_ms(1_764_554_500_000).unwrap(),
        );
        let signed = "2553|261201_2553_RQ7X2M9PTB|1764554500000";
        assert_eq!(
            field(&query, "mac"),
            hmac_sha256_hex(KEY1.as_bytes(), signed.as_bytes())
        );
    }

    #[test]
    fn refund_answers() {
        let read = |answer: Value| {
            let answer = object(answer);
            let (return_code, code, message) = codes(&answer).unwrap();
            refund_answer(return_code, code, message, &answer)
        };
        assert_eq!(
            read(
                json!({"return_code": 1, "return_message": "ok", "sub_return_code": 1, "refund_id": 42})
            ),
            Ok(RefundAnswer::Succeeded {
                provider_refund_id: Some("42".into()),
                provider_code: "1".into(),
                message: "ok".into(),
            })
        );
        assert_eq!(
            read(
                json!({"return_code": 2, "return_message": "fail", "sub_return_code": -13, "sub_return_message": "too much"})
            ),
            Ok(RefundAnswer::Failed {
                provider_code: "-13".into(),
                message: "fail: too much".into(),
            })
        );
        assert!(matches!(
            read(json!({"return_code": 3, "refund_id": "43"})),
            Ok(RefundAnswer::Pending { provider_refund_id: Some(id), .. }) if id == "43"
        ));
        assert_eq!(
            read(json!({"return_code": -1, "return_message": "?"})),
            Err(("-1".into(), "?".into()))
        );
        assert!(codes(&object(json!({"refund_id": 1}))).is_err());
    }

    #[test]
    fn replies_are_zalopay_codes() {
        let z = zalopay();
        let code = |r: Reply| {
            assert_eq!(r.status, 200);
            serde_json::from_str::<Value>(&r.body.unwrap()).unwrap()["return_code"].clone()
        };
        assert_eq!(code(z.acknowledge(Verdict::Recorded)), 1);
        assert_eq!(code(z.acknowledge(Verdict::UnknownOrder)), 1);
        assert_eq!(code(z.reject(&CallbackError::BadSignature)), -1);
        assert_eq!(code(z.reject(&CallbackError::Malformed("x".into()))), -1);
        assert_eq!(code(z.retry_later()), 0);
    }
}
