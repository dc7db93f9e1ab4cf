//! SePay-style bank-transfer notifications: a service watching an
//! agency's bank account posts each transfer as JSON.
//!
//! The post is authenticated by an API key (`Authorization: Apikey ...`)
//! or by an HMAC-SHA256 signature over `{timestamp}.{raw body}` with the
//! timestamp in `X-SePay-Timestamp` and the hex signature in
//! `X-SePay-Signature`; either configured method passing is enough.

use serde_json::json;

use super::signing::{
    Rotation, amount_field, header, int_field, json_object, malformed, opt_str_field,
    parse_bank_time, parse_int, secrets_equal, str_field, verify_hmac_sha256_hex, within_skew,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ReceivedPayment, Reply,
    Verdict,
};
use crate::config::SepaySettings;
use crate::domain::Timestamp;
use crate::domain::payment::Channel;

/// How far a signed timestamp may be from the time of receipt: enough
/// for clock drift, too little to replay an old notification much later.
const MAX_SKEW_SECS: i64 = 300;

/// The SePay notification receiver for the configured account(s).
pub struct Sepay {
    settings: SepaySettings,
}

impl Sepay {
    pub fn new(settings: SepaySettings) -> Sepay {
        Sepay { settings }
    }

    fn api_key_matches(&self, request: &CallbackRequest<'_>) -> bool {
        let Some(key) = &self.settings.api_key else {
            return false;
        };
        let Some(given) = header(request.headers, "authorization")
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("apikey"))
            .map(|(_, given)| given.trim())
        else {
            return false;
        };
        Rotation {
            provider: "sepay",
            current: key,
            previous: self.settings.previous_api_key.as_ref(),
        }
        .verifies(|key| secrets_equal(key, given.as_bytes()))
    }

    fn signature_matches(&self, request: &CallbackRequest<'_>) -> bool {
        let Some(secret) = &self.settings.hmac_secret else {
            return false;
        };
        let (Some(timestamp), Some(signature)) = (
            header(request.headers, "x-sepay-timestamp"),
            header(request.headers, "x-sepay-signature"),
        ) else {
            return false;
        };
        let fresh = parse_int(timestamp)
            .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
            .and_then(Timestamp::from_datetime)
            .is_some_and(|at| within_skew(at, request.received_at, MAX_SKEW_SECS));
        if !fresh {
            return false;
        }
        let mut signed = Vec::with_capacity(timestamp.len() + 1 + request.body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'.');
        signed.extend_from_slice(request.body);
        Rotation {
            provider: "sepay",
            current: secret,
            previous: self.settings.previous_hmac_secret.as_ref(),
        }
        .verifies(|key| verify_hmac_sha256_hex(key, &signed, signature))
    }
}

impl Provider for Sepay {
    fn channel(&self) -> Channel {
        Channel::BankTransfer
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<CallbackEvent, CallbackError> {
        // Both checks run so that the time taken does not tell which
        // method was tried.
        let by_key = self.api_key_matches(request);
        let by_signature = self.signature_matches(request);
        if !(by_key || by_signature) {
            return Err(CallbackError::BadSignature);
        }
        let body = json_object(request.body)?;
        match str_field(&body, "transferType")? {
            "in" => {}
            "out" => {
                return Ok(CallbackEvent::Ignored {
                    reason: "outgoing transfer",
                });
            }
            _ => return Err(malformed("transferType is neither \"in\" nor \"out\"")),
        }
        let id = int_field(&body, "id")?;
        if id <= 0 {
            return Err(malformed("id must be positive"));
        }
        let amount = amount_field(&body, "transferAmount")?;
        let paid_at = parse_bank_time(str_field(&body, "transactionDate")?)
            .ok_or_else(|| malformed("transactionDate is not YYYY-MM-DD HH:MM:SS"))?;
        let account_number = str_field(&body, "accountNumber")?;
        if account_number.is_empty() {
            return Err(malformed("accountNumber is empty"));
        }
        let content = str_field(&body, "content")?;
        // SePay puts a payment code it recognised in `code`; keeping it in
        // front of the note lets the matcher find it first.
        let note = match opt_str_field(&body, "code")? {
            Some(code) if !code.trim().is_empty() => format!("{} {content}", code.trim()),
            _ => content.to_owned(),
        };
        Ok(CallbackEvent::Paid(ReceivedPayment {
            channel: Channel::BankTransfer,
            provider_txn_id: format!("sepay-{id}"),
            target: PaymentTarget::TransferNote(note),
            amount,
            paid_at: Some(paid_at),
            account_number: Some(account_number.to_owned()),
        }))
    }

    fn acknowledge(&self, _verdict: Verdict) -> Reply {
        success_reply()
    }

    fn reject(&self, error: &CallbackError) -> Reply {
        reject_reply(error)
    }

    fn retry_later(&self) -> Reply {
        retry_reply()
    }
}

/// `200 {"success": true}`: the notification is stored and need not be
/// sent again (SePay and Casso alike).
pub(crate) fn success_reply() -> Reply {
    Reply::json(200, json!({ "success": true }))
}

/// A refused notification, with a status that tells the sender not to
/// retry it unchanged.
pub(crate) fn reject_reply(error: &CallbackError) -> Reply {
    let (status, code) = match error {
        CallbackError::BadSignature => (401, "bad_signature"),
        CallbackError::Malformed(_) => (400, "malformed_callback"),
    };
    Reply::json(
        status,
        json!({ "success": false, "code": code, "message": error.to_string() }),
    )
}

/// `503`: the sender should retry later.
pub(crate) fn retry_reply() -> Reply {
    Reply::json(
        503,
        json!({
            "success": false,
            "code": "retry_later",
            "message": "the notification could not be stored now",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Vnd;
    use crate::providers::signing::hmac_sha256_hex;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use secrecy::SecretString;

    const API_KEY: &str = "SEPAYKEY2026ABCDEF";
    const HMAC_SECRET: &str = "sepay-hmac-secret";

    fn sepay(api_key: bool, hmac: bool) -> Sepay {
        Sepay::new(SepaySettings {
            api_key: api_key.then(|| SecretString::from(API_KEY)),
            previous_api_key: None,
            hmac_secret: hmac.then(|| SecretString::from(HMAC_SECRET)),
            previous_hmac_secret: None,
        })
    }

    const BODY: &str = r#"{"id":92704,"gateway":"Vietcombank","transactionDate":"2026-11-28 15:30:12","accountNumber":"0071000888888","code":null,"content":"LP23456789AB3 NGUYEN VAN A CHUYEN TIEN","transferType":"in","transferAmount":150000,"accumulated":19077000,"subAccount":null,"referenceCode":"MBVCB.3278907687","description":""}"#;

    fn received_at() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-28T15:30:20+07:00").unwrap()
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.append(HeaderName::from_static(name), value);
            }
        }
        map
    }

    fn verify_with(
        provider: &Sepay,
        headers: &HeaderMap,
        body: &str,
    ) -> Result<CallbackEvent, CallbackError> {
        provider.verify(&CallbackRequest {
            query: "",
            headers,
            body: body.as_bytes(),
            received_at: received_at(),
        })
    }

    fn by_key(body: &str) -> Result<CallbackEvent, CallbackError> {
        let h = headers(&[("authorization", format!("Apikey {API_KEY}"))]);
        verify_with(&sepay(true, false), &h, body)
    }

    /// Unix seconds of `received_at`.
    const NOW_SECS: i64 = 1_795_854_620;

    fn signed_headers(timestamp: i64, body: &str, secret: &str) -> HeaderMap {
        let signed = format!("{timestamp}.{body}");
        headers(&[
            ("x-sepay-timestamp", timestamp.to_string()),
            (
                "x-sepay-signature",
                hmac_sha256_hex(secret.as_bytes(), signed.as_bytes()),
            ),
        ])
    }

    #[test]
    fn an_incoming_transfer_with_the_api_key_is_paid() {
        assert_eq!(
            by_key(BODY).unwrap(),
            CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::BankTransfer,
                provider_txn_id: "sepay-92704".into(),
                target: PaymentTarget::TransferNote(
                    "LP23456789AB3 NGUYEN VAN A CHUYEN TIEN".into()
                ),
                amount: Vnd::new(150_000),
                paid_at: Timestamp::parse_rfc3339("2026-11-28T15:30:12+07:00"),
                account_number: Some("0071000888888".into()),
            })
        );
    }

    #[test]
    fn the_recognised_code_goes_first_in_the_note() {
        let body = BODY.replace("\"code\":null", "\"code\":\"LP23456789AB3\"");
        assert!(matches!(
            by_key(&body),
            Ok(CallbackEvent::Paid(ReceivedPayment {
                target: PaymentTarget::TransferNote(note), ..
            })) if note == "LP23456789AB3 LP23456789AB3 NGUYEN VAN A CHUYEN TIEN"
        ));
    }

    #[test]
    fn the_api_key_must_match() {
        let p = sepay(true, false);
        for value in [
            "Apikey WRONGKEY".to_owned(),
            format!("Bearer {API_KEY}"),
            format!("Apikey {API_KEY}x"),
            API_KEY.to_owned(),
            "Apikey ".to_owned(),
        ] {
            let h = headers(&[("authorization", value.clone())]);
            assert_eq!(
                verify_with(&p, &h, BODY),
                Err(CallbackError::BadSignature),
                "{value}"
            );
        }
        assert_eq!(
            verify_with(&p, &HeaderMap::new(), BODY),
            Err(CallbackError::BadSignature)
        );
        let h = headers(&[("authorization", format!("apikey  {API_KEY} "))]);
        assert!(verify_with(&p, &h, BODY).is_ok());
    }

    #[test]
    fn a_signed_notification_is_accepted_within_five_minutes() {
        let p = sepay(false, true);
        for skew in [-300, 0, 300] {
            let h = signed_headers(NOW_SECS + skew, BODY, HMAC_SECRET);
            assert!(verify_with(&p, &h, BODY).is_ok(), "{skew}");
        }
        for skew in [-301, 301, -1_000_000] {
            let h = signed_headers(NOW_SECS + skew, BODY, HMAC_SECRET);
            assert_eq!(
                verify_with(&p, &h, BODY),
                Err(CallbackError::BadSignature),
                "{skew}"
            );
        }
    }

    #[test]
    fn a_tampered_or_wrongly_signed_notification_is_refused() {
        let p = sepay(false, true);
        let h = signed_headers(NOW_SECS, BODY, HMAC_SECRET);
        for (from, to) in [
            ("92704", "92705"),
            ("Vietcombank", "Techcombank"),
            ("15:30:12", "15:30:13"),
            ("0071000888888", "0071000888889"),
            ("LP23456789AB3", "LP23456789AB4"),
            ("\"in\"", "\"out\""),
            ("150000", "250000"),
            ("19077000", "19077001"),
            ("MBVCB", "MBVCC"),
            ("\"description\":\"\"", "\"description\":\"x\""),
            (",\"gateway\"", ", \"gateway\""),
        ] {
            let tampered = BODY.replacen(from, to, 1);
            assert_eq!(
                verify_with(&p, &h, &tampered),
                Err(CallbackError::BadSignature),
                "{from}"
            );
        }
        let wrong = signed_headers(NOW_SECS, BODY, "another secret");
        assert_eq!(
            verify_with(&p, &wrong, BODY),
            Err(CallbackError::BadSignature)
        );
        // A signature made for another timestamp.
        let mut moved = signed_headers(NOW_SECS, BODY, HMAC_SECRET);
        moved.insert(
            HeaderName::from_static("x-sepay-timestamp"),
            HeaderValue::from_static("1795854621"),
        );
        assert_eq!(
            verify_with(&p, &moved, BODY),
            Err(CallbackError::BadSignature)
        );
        let no_signature = headers(&[("x-sepay-timestamp", NOW_SECS.to_string())]);
        assert_eq!(
            verify_with(&p, &no_signature, BODY),
            Err(CallbackError::BadSignature)
        );
        let bad_time = headers(&[
            ("x-sepay-timestamp", "soon".into()),
            ("x-sepay-signature", "00".into()),
        ]);
        assert_eq!(
            verify_with(&p, &bad_time, BODY),
            Err(CallbackError::BadSignature)
        );
        // An API key is no use when only signatures are configured.
        let key = headers(&[("authorization", format!("Apikey {API_KEY}"))]);
        assert_eq!(
            verify_with(&p, &key, BODY),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn either_configured_method_is_enough() {
        let p = sepay(true, true);
        let key = headers(&[("authorization", format!("Apikey {API_KEY}"))]);
        assert!(verify_with(&p, &key, BODY).is_ok());
        assert!(verify_with(&p, &signed_headers(NOW_SECS, BODY, HMAC_SECRET), BODY).is_ok());
        assert_eq!(
            verify_with(&p, &HeaderMap::new(), BODY),
            Err(CallbackError::BadSignature)
        );
    }

    #[test]
    fn outgoing_transfers_are_ignored() {
        let body = BODY.replace("\"in\"", "\"out\"");
        assert_eq!(
            by_key(&body),
            Ok(CallbackEvent::Ignored {
                reason: "outgoing transfer"
            })
        );
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            "not json".to_owned(),
            String::new(),
            "[]".to_owned(),
            BODY.replace("\"in\"", "\"sideways\""),
            BODY.replace("\"transferType\":\"in\",", ""),
            BODY.replace("150000", "-150000"),
            BODY.replace("150000", "0"),
            BODY.replace("150000", "150000.5"),
            BODY.replace("150000", "99999999999999999999999"),
            BODY.replace("150000", "\"lots\""),
            BODY.replace("92704", "-1"),
            BODY.replace("92704", "\"abc\""),
            BODY.replace("2026-11-28 15:30:12", "28/11/2026 15:30"),
            BODY.replace("\"0071000888888\"", "null"),
            BODY.replace("\"0071000888888\"", "\"\""),
            BODY.replace("\"code\":null", "\"code\":5"),
            BODY.replace("\"LP23456789AB3 NGUYEN VAN A CHUYEN TIEN\"", "7"),
        ] {
            assert!(
                matches!(by_key(&body), Err(CallbackError::Malformed(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn replies() {
        let p = sepay(true, false);
        let ack = p.acknowledge(Verdict::UnknownOrder);
        assert_eq!(ack.status, 200);
        assert_eq!(ack.body.as_deref(), Some(r#"{"success":true}"#));
        assert_eq!(p.reject(&CallbackError::BadSignature).status, 401);
        assert_eq!(p.reject(&CallbackError::Malformed("x".into())).status, 400);
        assert_eq!(p.retry_later().status, 503);
    }
}
