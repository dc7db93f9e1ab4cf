//! Casso-style bank-transfer notifications (webhook v2).
//!
//! Casso signs `t + "." + body` with HMAC-SHA512 under the checksum key,
//! where `body` is the JSON re-serialised compactly with every object's
//! keys sorted, and sends `X-Casso-Signature: t=<unix ms>,v1=<hex>`. The
//! canonical form is written here rather than left to `serde_json`, so
//! that it does not depend on which map type a feature flag selects.

use serde_json::Value;

use super::sepay::{reject_reply, retry_reply, success_reply};
use super::signing::{
    Rotation, from_unix_ms, header, int_field, malformed, parse_bank_time, parse_int, str_field,
    verify_hmac_sha512_hex, within_skew,
};
use super::{
    CallbackError, CallbackEvent, CallbackRequest, PaymentTarget, Provider, ReceivedPayment, Reply,
    Verdict,
};
use crate::config::CassoSettings;
use crate::domain::Vnd;
use crate::domain::payment::Channel;

/// How far the signed time may be from the time of receipt.
const MAX_SKEW_SECS: i64 = 300;
/// More `v1` values than this in one header is not key rotation.
const MAX_SIGNATURES: usize = 4;

/// The Casso notification receiver.
pub struct Casso {
    settings: CassoSettings,
}

impl Casso {
    pub fn new(settings: CassoSettings) -> Casso {
        Casso { settings }
    }

    fn signature_matches(&self, request: &CallbackRequest<'_>, body: &Value) -> bool {
        let Some(signature) = header(request.headers, "x-casso-signature") else {
            return false;
        };
        let mut timestamp = None;
        let mut candidates = Vec::new();
        for part in signature.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) if timestamp.is_none() => timestamp = Some(t),
                Some(("v1", v1)) if candidates.len() < MAX_SIGNATURES => candidates.push(v1),
                _ => {}
            }
        }
        let Some(timestamp) = timestamp else {
            return false;
        };
        let fresh = parse_int(timestamp)
            .and_then(from_unix_ms)
            .is_some_and(|at| within_skew(at, request.received_at, MAX_SKEW_SECS));
        if !fresh {
            return false;
        }
        let mut signed = String::from(timestamp);
        signed.push('.');
        write_canonical(body, &mut signed);
        // Several v1 values may be sent while a key is being rotated, and
        // lephi may hold the key being replaced as well.
        Rotation {
            provider: "casso",
            current: &self.settings.checksum_key,
            previous: self.settings.previous_checksum_key.as_ref(),
        }
        .verifies(|key| {
            candidates
                .iter()
                .any(|v1| verify_hmac_sha512_hex(key, signed.as_bytes(), v1))
        })
    }
}

/// `value` as compact JSON with every object's keys in ascending order:
/// the text Casso signs after `{t}.`. (Public for the tests that play
/// Casso's side.)
pub fn canonical_text(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Writes `value` as compact JSON with every object's keys in ascending
/// order: the text Casso signs. `serde_json` bounds nesting when parsing,
/// so the recursion is bounded too.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // JavaScript, which signs Casso's bodies, writes a whole float
        // without its fraction: 25000000.0 is `25000000`.
        Value::Number(number) => match number.as_f64() {
            Some(f) if number.is_f64() && f == 0.0 => out.push('0'),
            Some(f) if number.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => {
                out.push_str(&format!("{f:.0}"));
            }
            _ => out.push_str(&number.to_string()),
        },
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The reference of the sample transaction Casso's "test webhook" sends.
const TEST_REFERENCE: &str = "MA_GIAO_DICH_THU_NGHIEM";

impl Provider for Casso {
    fn channel(&self) -> Channel {
        Channel::BankTransfer
    }

    fn verify(&self, request: &CallbackRequest<'_>) -> Result<CallbackEvent, CallbackError> {
        if header(request.headers, "x-casso-signature").is_none() {
            return Err(CallbackError::BadSignature);
        }
        // The signed text is made from the parsed body, so the body must
        // parse before the signature can be checked.
        let body: Value =
            serde_json::from_slice(request.body).map_err(|_| malformed("the body is not JSON"))?;
        if !self.signature_matches(request, &body) {
            return Err(CallbackError::BadSignature);
        }
        let Value::Object(body) = body else {
            return Err(malformed("the body is not a JSON object"));
        };
        if int_field(&body, "error")? != 0 {
            return Err(malformed("error is not 0"));
        }
        let data = match body.get("data") {
            Some(Value::Object(data)) => data,
            Some(Value::Array(_)) => {
                return Err(malformed(
                    "data is a list (an older Casso webhook); only one transaction is supported",
                ));
            }
            _ => return Err(malformed("data is missing or not an object")),
        };
        // Casso's "test webhook" sends its sample transaction when the
        // webhook is set up, and the setup fails unless it is acknowledged.
        if data.get("id") == Some(&Value::from(0))
            && data.get("reference").and_then(Value::as_str) == Some(TEST_REFERENCE)
        {
            return Ok(CallbackEvent::Ignored {
                reason: "Casso's test webhook",
            });
        }
        let amount = int_field(data, "amount")?;
        if amount < 0 {
            return Ok(CallbackEvent::Ignored {
                reason: "outgoing transfer",
            });
        }
        if amount == 0 {
            return Ok(CallbackEvent::Ignored {
                reason: "transfer of no money",
            });
        }
        let id = int_field(data, "id")?;
        if id <= 0 {
            return Err(malformed("id must be positive"));
        }
        let description = str_field(data, "description")?;
        let paid_at = parse_bank_time(str_field(data, "transactionDateTime")?)
            .ok_or_else(|| malformed("transactionDateTime is not YYYY-MM-DD HH:MM:SS"))?;
        let account_number = str_field(data, "accountNumber")?;
        if account_number.is_empty() {
            return Err(malformed("accountNumber is empty"));
        }
        Ok(CallbackEvent::Paid(ReceivedPayment {
            channel: Channel::BankTransfer,
            provider_txn_id: format!("casso-{id}"),
            target: PaymentTarget::TransferNote(description.to_owned()),
            amount: Vnd::new(amount),
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

#[cfg(test)]
mod tests {
    #[test]
    fn whole_floats_are_written_as_javascript_writes_them() {
        let value: serde_json::Value =
            serde_json::from_str(r#"{"b":25000000.0,"a":-0.0,"c":1.5,"d":7}"#).unwrap();
        let mut out = String::new();
        super::write_canonical(&value, &mut out);
        assert_eq!(out, r#"{"a":0,"b":25000000,"c":1.5,"d":7}"#);
    }

    use super::*;
    use crate::domain::Timestamp;
    use crate::providers::signing::hmac_sha512_hex;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use secrecy::SecretString;

    const KEY: &str = "casso-checksum-key-2026";

    fn casso() -> Casso {
        Casso::new(CassoSettings {
            checksum_key: SecretString::from(KEY),
            previous_checksum_key: None,
        })
    }

    /// The body as Casso may send it: keys in its own order, with spaces.
    const BODY: &str = r#"{
  "error": 0,
  "data": {
    "id": 2150003,
    "reference": "FT26332601234",
    "description": "NGUYEN VAN A chuyen tien LP23456789AB3",
    "amount": 150000,
    "runningBalance": 25000000,
    "transactionDateTime": "2026-11-28 15:30:12",
    "accountNumber": "0071000888888",
    "bankName": "VietcomBank",
    "bankAbbreviation": "VCB",
    "counterAccountName": "NGUYEN VAN A",
    "counterAccountNumber": null,
    "tags": ["le phi", {"b": 1, "a": "Lệ phí"}]
  }
}"#;

    /// The same body compact with its keys sorted, written out by hand.
    const CANONICAL: &str = r#"{"data":{"accountNumber":"0071000888888","amount":150000,"bankAbbreviation":"VCB","bankName":"VietcomBank","counterAccountName":"NGUYEN VAN A","counterAccountNumber":null,"description":"NGUYEN VAN A chuyen tien LP23456789AB3","id":2150003,"reference":"FT26332601234","runningBalance":25000000,"tags":["le phi",{"a":"Lệ phí","b":1}],"transactionDateTime":"2026-11-28 15:30:12"},"error":0}"#;

    /// Unix ms of `received_at`: 2026-11-28 15:30:20 in Vietnam.
    const NOW_MS: i64 = 1_795_854_620_000;

    fn received_at() -> Timestamp {
        Timestamp::parse_rfc3339("2026-11-28T15:30:20+07:00").unwrap()
    }

    fn signature_header(t: i64, canonical: &str, key: &str) -> String {
        let v1 = hmac_sha512_hex(key.as_bytes(), format!("{t}.{canonical}").as_bytes());
        format!("t={t},v1={v1}")
    }

    fn verify_with(signature: Option<&str>, body: &str) -> Result<CallbackEvent, CallbackError> {
        let mut headers = HeaderMap::new();
        if let Some(signature) = signature.and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert(HeaderName::from_static("x-casso-signature"), signature);
        }
        casso().verify(&CallbackRequest {
            query: "",
            headers: &headers,
            body: body.as_bytes(),
            received_at: received_at(),
        })
    }

    fn verify(body: &str, canonical: &str) -> Result<CallbackEvent, CallbackError> {
        verify_with(Some(&signature_header(NOW_MS, canonical, KEY)), body)
    }

    #[test]
    fn cassos_signed_test_webhook_is_acknowledged_as_nothing_to_record() {
        let test = BODY
            .replace("\"id\": 2150003", "\"id\": 0")
            .replace("FT26332601234", "MA_GIAO_DICH_THU_NGHIEM");
        let canonical = CANONICAL
            .replace("\"id\":2150003", "\"id\":0")
            .replace("FT26332601234", "MA_GIAO_DICH_THU_NGHIEM");
        assert_eq!(
            verify(&test, &canonical).unwrap(),
            CallbackEvent::Ignored {
                reason: "Casso's test webhook"
            }
        );
        // Unsigned, it is refused as any callback is; another id 0 is malformed.
        assert_eq!(
            verify_with(
                Some(&signature_header(NOW_MS, &canonical, "other key")),
                &test
            ),
            Err(CallbackError::BadSignature)
        );
        let other = BODY.replace("\"id\": 2150003", "\"id\": 0");
        let other_canonical = CANONICAL.replace("\"id\":2150003", "\"id\":0");
        assert!(matches!(
            verify(&other, &other_canonical),
            Err(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn canonical_form_sorts_keys_recursively_and_drops_spaces() {
        let value: Value = serde_json::from_str(BODY).unwrap();
        let mut out = String::new();
        write_canonical(&value, &mut out);
        assert_eq!(out, CANONICAL);
    }

    #[test]
    fn a_signed_incoming_transfer_is_paid() {
        assert_eq!(
            verify(BODY, CANONICAL).unwrap(),
            CallbackEvent::Paid(ReceivedPayment {
                channel: Channel::BankTransfer,
                provider_txn_id: "casso-2150003".into(),
                target: PaymentTarget::TransferNote(
                    "NGUYEN VAN A chuyen tien LP23456789AB3".into()
                ),
                amount: Vnd::new(150_000),
                paid_at: Timestamp::parse_rfc3339("2026-11-28T15:30:12+07:00"),
                account_number: Some("0071000888888".into()),
            })
        );
    }

    #[test]
    fn every_tampered_field_is_a_bad_signature() {
        for (from, to) in [
            ("2150003", "2150004"),
            ("FT26332601234", "FT26332601235"),
            ("LP23456789AB3", "LP23456789AB4"),
            ("\"amount\": 150000", "\"amount\": 250000"),
            ("25000000", "25000001"),
            ("15:30:12", "15:30:13"),
            ("0071000888888", "0071000888889"),
            ("VietcomBank", "Techcombank"),
            ("\"error\": 0", "\"error\": 1"),
            ("\"b\": 1", "\"b\": 2"),
            ("\"VCB\"", "\"VCB\", \"extra\": true"),
        ] {
            let tampered = BODY.replacen(from, to, 1);
            assert_ne!(tampered, BODY);
            assert_eq!(
                verify(&tampered, CANONICAL),
                Err(CallbackError::BadSignature),
                "{from}"
            );
        }
    }

    #[test]
    fn a_wrong_key_stale_time_or_missing_signature_is_refused() {
        let wrong = signature_header(NOW_MS, CANONICAL, "another key");
        assert_eq!(
            verify_with(Some(&wrong), BODY),
            Err(CallbackError::BadSignature)
        );
        for skew in [-300_001, 300_001] {
            let stale = signature_header(NOW_MS + skew, CANONICAL, KEY);
            assert_eq!(
                verify_with(Some(&stale), BODY),
                Err(CallbackError::BadSignature)
            );
        }
        let fresh = signature_header(NOW_MS - 300_000, CANONICAL, KEY);
        assert!(verify_with(Some(&fresh), BODY).is_ok());
        // The signature for one time presented with another.
        let good = signature_header(NOW_MS, CANONICAL, KEY);
        let moved = good.replacen(&NOW_MS.to_string(), &(NOW_MS + 1).to_string(), 1);
        assert_eq!(
            verify_with(Some(&moved), BODY),
            Err(CallbackError::BadSignature)
        );
        assert_eq!(verify_with(None, BODY), Err(CallbackError::BadSignature));
        for header in [
            "",
            "t=1",
            "v1=00",
            &format!("t={NOW_MS}"),
            &format!("t=soon,v1={}", &good[good.len() - 128..]),
            &format!("t={NOW_MS},v1=zz"),
        ] {
            assert_eq!(
                verify_with(Some(header), BODY),
                Err(CallbackError::BadSignature),
                "{header}"
            );
        }
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let good = signature_header(NOW_MS, CANONICAL, KEY);
        let v1 = &good[good.len() - 128..];
        let header = format!("t={NOW_MS}, v1={}, v1={v1}", "0".repeat(128));
        assert!(verify_with(Some(&header), BODY).is_ok());
    }

    #[test]
    fn outgoing_transfers_are_ignored() {
        let body = CANONICAL.replace("\"amount\":150000", "\"amount\":-150000");
        assert_eq!(
            verify(&body, &body),
            Ok(CallbackEvent::Ignored {
                reason: "outgoing transfer"
            })
        );
        let body = CANONICAL.replace("\"amount\":150000", "\"amount\":0");
        assert!(matches!(
            verify(&body, &body),
            Ok(CallbackEvent::Ignored { .. })
        ));
    }

    #[test]
    fn malformed_bodies() {
        assert!(matches!(
            verify("not json", "not json"),
            Err(CallbackError::Malformed(_))
        ));
        assert!(matches!(verify("", ""), Err(CallbackError::Malformed(_))));
        let array_data = r#"{"data":[{"amount":150000,"id":1}],"error":0}"#;
        for body in [
            "[]",
            "7",
            array_data,
            r#"{"error":0}"#,
            r#"{"data":{}}"#,
            &CANONICAL.replace("\"error\":0", "\"error\":1"),
            &CANONICAL.replace("\"amount\":150000", "\"amount\":150000.5"),
            &CANONICAL.replace("\"amount\":150000", "\"amount\":\"x\""),
            &CANONICAL.replace("\"id\":2150003", "\"id\":-3"),
            &CANONICAL.replace("\"id\":2150003,", ""),
            &CANONICAL.replace("2026-11-28 15:30:12", "yesterday"),
            &CANONICAL.replace("\"0071000888888\"", "\"\""),
            &CANONICAL.replace(
                "\"description\":\"NGUYEN VAN A chuyen tien LP23456789AB3\",",
                "",
            ),
        ] {
            assert!(
                matches!(verify(body, body), Err(CallbackError::Malformed(_))),
                "{body}"
            );
        }
        // A number beyond i64 is read as a float, which the canonical form
        // prints in its shortest form.
        let huge = CANONICAL.replace("\"amount\":150000", "\"amount\":99999999999999999999999");
        let huge_canonical = CANONICAL.replace("\"amount\":150000", "\"amount\":1e+23");
        assert!(matches!(
            verify(&huge, &huge_canonical),
            Err(CallbackError::Malformed(_))
        ));
    }

    #[test]
    fn replies() {
        let c = casso();
        assert_eq!(
            c.acknowledge(Verdict::Recorded).body.as_deref(),
            Some(r#"{"success":true}"#)
        );
        assert_eq!(c.reject(&CallbackError::BadSignature).status, 401);
        assert_eq!(c.reject(&CallbackError::Malformed("x".into())).status, 400);
        assert_eq!(c.retry_later().status, 503);
    }
}
