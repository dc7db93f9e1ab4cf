//! Helpers the providers share: keyed hashes and their constant-time
//! checks, PHP-style form encoding, Vietnam time, order references, and
//! reading fields from hostile JSON without panicking.
//!
//! A signature is only ever checked with [`Mac::verify_slice`], never by
//! comparing text, so that the time a check takes says nothing about how
//! much of a forged signature was right.

use actix_web::http::header::HeaderMap;
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha512};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::CallbackError;
use crate::domain::{Timestamp, Vnd};

type HmacSha256 = Hmac<Sha256>;
type HmacSha512 = Hmac<Sha512>;

/// Vietnam keeps UTC+7 all year, without daylight saving.
pub use crate::domain::timestamp::VIETNAM;

/// Symbols of generated references: no `0`/`O` or `1`/`I` to misread, and
/// only ASCII letters and digits, which every gateway accepts in an order id.
const REF_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const REF_RANDOM_LEN: usize = 12;

fn keyed<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Option<M> {
    // HMAC takes keys of any length, so this never fails; if it ever did,
    // callers fail closed (an empty signature, a refused check).
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
    mac.update(msg);
    Some(mac)
}

/// HMAC-SHA256 of `msg` under `key`, lowercase hex.
pub fn hmac_sha256_hex(key: &[u8], msg: &[u8]) -> String {
    keyed::<HmacSha256>(key, msg)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// HMAC-SHA512 of `msg` under `key`, lowercase hex.
pub fn hmac_sha512_hex(key: &[u8], msg: &[u8]) -> String {
    keyed::<HmacSha512>(key, msg)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Whether `given_hex` (either case) is the HMAC-SHA256 of `msg` under
/// `key`, compared in constant time. Text that is not hex is `false`.
pub fn verify_hmac_sha256_hex(key: &[u8], msg: &[u8], given_hex: &str) -> bool {
    let Ok(given) = hex::decode(given_hex) else {
        return false;
    };
    keyed::<HmacSha256>(key, msg).is_some_and(|mac| mac.verify_slice(&given).is_ok())
}

/// Whether `given_hex` (either case) is the HMAC-SHA512 of `msg` under
/// `key`, compared in constant time. Text that is not hex is `false`.
pub fn verify_hmac_sha512_hex(key: &[u8], msg: &[u8], given_hex: &str) -> bool {
    let Ok(given) = hex::decode(given_hex) else {
        return false;
    };
    keyed::<HmacSha512>(key, msg).is_some_and(|mac| mac.verify_slice(&given).is_ok())
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ: both are hashed under a fixed key and the tags compared
/// with [`Mac::verify_slice`]. The values are hashed as messages, not used
/// as keys, because HMAC treats a short key and the same key padded with
/// zero bytes as one key.
/// The secret a provider signs with and, during a rotation, the one it is
/// replacing: what the provider signs is accepted under either, and a
/// message signed under the previous one is logged, so that the operator
/// knows when the provider has moved on and the old one can go.
#[derive(Clone, Copy)]
pub struct Rotation<'a> {
    pub provider: &'static str,
    pub current: &'a SecretString,
    pub previous: Option<&'a SecretString>,
}

impl Rotation<'_> {
    /// Whether `check` accepts the message under one of the secrets.
    pub fn verifies(&self, check: impl Fn(&[u8]) -> bool) -> bool {
        if check(self.current.expose_secret().as_bytes()) {
            return true;
        }
        let by_previous = self
            .previous
            .is_some_and(|previous| check(previous.expose_secret().as_bytes()));
        if by_previous {
            tracing::warn!(
                provider = self.provider,
                "signed with the previous secret; remove it from the settings once the provider signs with the new one only"
            );
        }
        by_previous
    }
}

pub fn secrets_equal(expected: &[u8], given: &[u8]) -> bool {
    const DOMAIN: &[u8] = b"lephi secret comparison";
    let Some(expected_tag) = keyed::<HmacSha256>(DOMAIN, expected) else {
        return false;
    };
    let expected_tag = expected_tag.finalize().into_bytes();
    keyed::<HmacSha256>(DOMAIN, given).is_some_and(|mac| mac.verify_slice(&expected_tag).is_ok())
}

/// Encodes text as PHP's `urlencode` does, which is what VNPay signs:
/// ASCII letters, digits and `-_.` stay, a space becomes `+`, and every
/// other UTF-8 byte becomes `%XX` in upper case.
pub fn form_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0x0F)] as char);
            }
        }
    }
    out
}

/// The instant as a Vietnamese wall clock (UTC+7) shows it, which is how
/// the gateways write dates. At the very end of year 9999, where UTC+7
/// would leave the representable range, the UTC time is returned.
pub fn vietnam_time(at: Timestamp) -> OffsetDateTime {
    at.in_vietnam()
}

/// Parses a Vietnamese wall-clock time written in `format` (as VNPay's
/// `yyyyMMddHHmmss` or the banks' `YYYY-MM-DD HH:MM:SS`).
pub fn parse_vietnam_time(
    text: &str,
    format: &[time::format_description::BorrowedFormatItem<'_>],
) -> Option<Timestamp> {
    let local = PrimitiveDateTime::parse(text, format).ok()?;
    Timestamp::from_datetime(local.assume_offset(VIETNAM))
}

/// Parses `YYYY-MM-DD HH:MM:SS` in Vietnam time, as bank-notification
/// services write a transfer's time.
pub fn parse_bank_time(text: &str) -> Option<Timestamp> {
    parse_vietnam_time(
        text,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
}

/// The instant `ms` milliseconds after the Unix epoch, if representable.
pub fn from_unix_ms(ms: i64) -> Option<Timestamp> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Timestamp::from_datetime(at)
}

/// Milliseconds since the Unix epoch, as ZaloPay and Casso count time.
pub fn unix_ms(at: Timestamp) -> i64 {
    let nanos = at.as_datetime().unix_timestamp_nanos() / 1_000_000;
    // Years 1 to 9999 are about ±3e14 ms: always within i64.
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// `yymmdd` of the Vietnamese date, which ZaloPay requires at the start
/// of `app_trans_id` and which keeps references unique across days.
pub fn vietnam_yymmdd(at: Timestamp) -> String {
    let local = vietnam_time(at);
    format!(
        "{:02}{:02}{:02}",
        local.year().rem_euclid(100),
        u8::from(local.month()),
        local.day()
    )
}

/// `count` random symbols from the reference alphabet.
pub fn random_symbols(count: usize, rng: &mut impl Rng) -> String {
    (0..count)
        .map(|_| char::from(REF_ALPHABET[rng.random_range(0..REF_ALPHABET.len())]))
        .collect()
}

/// A new reference for a payment attempt: the Vietnamese date `yymmdd`
/// then 12 random symbols (60 bits), e.g. `261128K7QX2M9PTB4H`. Letters
/// and digits only, as every gateway accepts; the date prefix makes it
/// unique per day, as VNPay requires of `vnp_TxnRef`.
pub fn order_ref(now: Timestamp, rng: &mut impl Rng) -> String {
    let mut reference = vietnam_yymmdd(now);
    reference.push_str(&random_symbols(REF_RANDOM_LEN, rng));
    reference
}

/// The header's value, if present once or more (the first is taken) and
/// visible ASCII.
pub fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// Whether `at` lies within `max_skew_secs` of `received_at`, either way.
pub fn within_skew(at: Timestamp, received_at: Timestamp, max_skew_secs: i64) -> bool {
    (at.as_datetime() - received_at.as_datetime()).abs() <= time::Duration::seconds(max_skew_secs)
}

/// The body as a JSON object, or why it is not one.
pub fn json_object(body: &[u8]) -> Result<Map<String, Value>, CallbackError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(malformed("the body is not a JSON object")),
        Err(_) => Err(malformed("the body is not JSON")),
    }
}

pub(crate) fn malformed(message: impl Into<String>) -> CallbackError {
    CallbackError::Malformed(message.into())
}

/// A required string field.
pub fn str_field<'m>(map: &'m Map<String, Value>, field: &str) -> Result<&'m str, CallbackError> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(malformed(format!("{field} is not a string"))),
        None => Err(malformed(format!("{field} is missing"))),
    }
}

/// An optional string field: absent and `null` are `None`.
pub fn opt_str_field<'m>(
    map: &'m Map<String, Value>,
    field: &str,
) -> Result<Option<&'m str>, CallbackError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(malformed(format!("{field} is not a string"))),
    }
}

/// A required integer field, sent as a JSON integer or as a string of
/// decimal digits (with an optional leading `-`). Fractions, exponents and
/// values beyond `i64` are refused rather than rounded.
pub fn int_field(map: &Map<String, Value>, field: &str) -> Result<i64, CallbackError> {
    let value = map
        .get(field)
        .ok_or_else(|| malformed(format!("{field} is missing")))?;
    json_int(value).ok_or_else(|| malformed(format!("{field} is not an integer")))
}

/// An integer sent as a JSON integer or as a string of decimal digits.
pub fn json_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_int(s),
        _ => None,
    }
}

/// Plain decimal digits with an optional leading `-`, within `i64`.
pub fn parse_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A field's value as the sender wrote it into a signed string: a string
/// as is, a number in its decimal form. Anything else is malformed.
pub fn signed_text(map: &Map<String, Value>, field: &str) -> Result<String, CallbackError> {
    match map.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(malformed(format!("{field} is not a string or a number"))),
        None => Err(malformed(format!("{field} is missing"))),
    }
}

/// A positive whole amount of đồng from a JSON field.
pub fn amount_field(map: &Map<String, Value>, field: &str) -> Result<Vnd, CallbackError> {
    let dong = int_field(map, field)?;
    Vnd::positive(dong).map_err(|_| malformed(format!("{field} must be positive")))
}

/// Sends a request to a provider's API and reads its answer as a JSON
/// object, whatever the HTTP status: gateways explain a refusal in the
/// body, sometimes with an error status.
pub(crate) async fn send_for_json(
    request: reqwest::RequestBuilder,
) -> Result<Map<String, Value>, super::ProviderError> {
    use super::ProviderError;
    let response = request.send().await.map_err(ProviderError::from_http)?;
    let status = response.status();
    let text = response.text().await.map_err(ProviderError::from_http)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        _ if !status.is_success() => Err(ProviderError::BadAnswer(format!(
            "HTTP {} without a JSON answer",
            status.as_u16()
        ))),
        _ => Err(ProviderError::BadAnswer(
            "the answer is not a JSON object".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231, test case 2: key "Jefe".
        let msg = b"what do ya want for nothing?";
        assert_eq!(
            hmac_sha256_hex(b"Jefe", msg),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hmac_sha512_hex(b"Jefe", msg),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554\
             9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn verification_accepts_only_the_right_tag() {
        let msg = b"what do ya want for nothing?";
        let good = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert!(verify_hmac_sha256_hex(b"Jefe", msg, good));
        assert!(verify_hmac_sha256_hex(
            b"Jefe",
            msg,
            &good.to_ascii_uppercase()
        ));
        assert!(!verify_hmac_sha256_hex(b"Jeff", msg, good));
        assert!(!verify_hmac_sha256_hex(b"Jefe", b"what do ya want?", good));
        assert!(!verify_hmac_sha256_hex(b"Jefe", msg, &good[..62]));
        assert!(!verify_hmac_sha256_hex(b"Jefe", msg, ""));
        assert!(!verify_hmac_sha256_hex(b"Jefe", msg, "zz"));
        assert!(!verify_hmac_sha256_hex(b"Jefe", msg, "5bdcc1"));
        let good512 = hmac_sha512_hex(b"k", b"m");
        assert!(verify_hmac_sha512_hex(b"k", b"m", &good512));
        assert!(!verify_hmac_sha512_hex(b"k", b"n", &good512));
        assert!(!verify_hmac_sha512_hex(b"k", b"m", "not hex"));
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_equal(b"sk_live_1", b"sk_live_1"));
        assert!(!secrets_equal(b"sk_live_1", b"sk_live_2"));
        assert!(!secrets_equal(b"sk_live_1", b"sk_live_1\0"));
        assert!(!secrets_equal(b"sk_live_1", b""));
    }

    #[test]
    fn form_encoding_is_php_urlencode() {
        assert_eq!(form_encode("abc-XYZ_09."), "abc-XYZ_09.");
        assert_eq!(form_encode("a b"), "a+b");
        assert_eq!(
            form_encode("https://x.vn/r?a=1&b=2"),
            "https%3A%2F%2Fx.vn%2Fr%3Fa%3D1%26b%3D2"
        );
        assert_eq!(form_encode("*~+"), "%2A%7E%2B");
        assert_eq!(form_encode("đ"), "%C4%91");
    }

    #[test]
    fn vietnam_time_is_seven_hours_ahead() {
        let t = Timestamp::parse_rfc3339("2026-11-28T20:30:00Z").unwrap();
        let local = vietnam_time(t);
        assert_eq!((local.day(), local.hour()), (29, 3));
        assert_eq!(vietnam_yymmdd(t), "261129");
        let end = Timestamp::parse_rfc3339("9999-12-31T23:00:00Z").unwrap();
        assert_eq!(vietnam_time(end), end.as_datetime());
    }

    #[test]
    fn order_refs_start_with_the_vietnamese_date() {
        let t = Timestamp::parse_rfc3339("2026-11-28T18:00:00Z").unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let r = order_ref(t, &mut rng);
        assert_eq!(r.len(), 18);
        assert!(r.starts_with("261129"));
        assert!(r[6..].bytes().all(|b| REF_ALPHABET.contains(&b)));
        assert_ne!(r, order_ref(t, &mut rng));
    }

    #[test]
    fn unix_milliseconds_round_trip() {
        let t = from_unix_ms(1_764_300_000_123).unwrap();
        assert_eq!(t.to_stored(), "2025-11-28T03:20:00.123000Z");
        assert_eq!(unix_ms(t), 1_764_300_000_123);
        assert!(from_unix_ms(i64::MAX).is_none());
        assert!(from_unix_ms(i64::MIN).is_none());
    }

    #[test]
    fn parses_vietnamese_wall_clock() {
        let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let t = parse_vietnam_time("2026-11-28 07:05:00", f).unwrap();
        assert_eq!(t.to_stored(), "2026-11-28T00:05:00.000000Z");
        assert!(parse_vietnam_time("2026-13-28 07:05:00", f).is_none());
        assert!(parse_vietnam_time("", f).is_none());
    }

    #[test]
    fn integers_are_exact() {
        let map = json_object(
            br#"{"a":5,"b":"6","c":1.5,"d":"1e3","e":18446744073709551615,"f":"-7","g":true,"h":"","i":"+3"}"#,
        )
        .unwrap();
        assert_eq!(int_field(&map, "a"), Ok(5));
        assert_eq!(int_field(&map, "b"), Ok(6));
        assert_eq!(int_field(&map, "f"), Ok(-7));
        for bad in ["c", "d", "e", "g", "h", "i", "zz"] {
            assert!(int_field(&map, bad).is_err(), "{bad}");
        }
        assert!(amount_field(&map, "f").is_err());
        assert_eq!(amount_field(&map, "a"), Ok(Vnd::new(5)));
    }

    #[test]
    fn bodies_that_are_not_objects_are_malformed() {
        for body in [&b"[]"[..], b"1", b"", b"{", b"\xff"] {
            assert!(matches!(
                json_object(body),
                Err(CallbackError::Malformed(_))
            ));
        }
    }

    #[test]
    fn headers_are_read_as_text() {
        let mut headers = HeaderMap::new();
        headers.insert(
            actix_web::http::header::HeaderName::from_static("x-a"),
            actix_web::http::header::HeaderValue::from_static("v"),
        );
        assert_eq!(header(&headers, "X-A"), Some("v"));
        assert_eq!(header(&headers, "x-b"), None);
    }

    #[test]
    fn a_rotation_accepts_the_current_and_the_previous_secret_only() {
        let (current, previous) = (SecretString::from("new"), SecretString::from("old"));
        let message = b"vnp_Amount=65000000";
        let signed_by = |key: &str| hmac_sha512_hex(key.as_bytes(), message);
        let rotation = Rotation {
            provider: "vnpay",
            current: &current,
            previous: Some(&previous),
        };
        let settled = Rotation {
            previous: None,
            ..rotation
        };
        for (key, during, after) in [
            ("new", true, true),
            ("old", true, false),
            ("other", false, false),
        ] {
            let given = signed_by(key);
            let check = |k: &[u8]| verify_hmac_sha512_hex(k, message, &given);
            assert_eq!(
                rotation.verifies(check),
                during,
                "{key} during the rotation"
            );
            assert_eq!(settled.verifies(check), after, "{key} after it");
        }
    }
}
