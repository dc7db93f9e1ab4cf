//! Hostile input, thousands of cases per parser: every provider's callback
//! verifier fed random and mutated callbacks that are *signed right*, so
//! that the parsing behind the signature check is reached; money, payment
//! codes, transfer notes, VietQR, times, webhook URLs, the dossier register
//! and every statement profile (shipped and configured) fed random and
//! mutated text. Nothing may panic, and a refused callback never answers
//! 5xx. Then a sample of mutated signed callbacks goes through HTTP to the
//! real app, which must never answer 5xx.

use std::collections::BTreeMap;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use lephi::config::{CassoSettings, MomoSettings, SepaySettings, VnpaySettings, ZalopaySettings};
use lephi::domain::Timestamp;
use lephi::domain::money::Vnd;
use lephi::domain::payment_code::PaymentCode;
use lephi::domain::transfer_note;
use lephi::domain::webhook::{UrlPolicy, WebhookUrl};
use lephi::providers::signing::{
    form_encode, from_unix_ms, hmac_sha256_hex, hmac_sha512_hex, json_int, parse_bank_time,
    parse_int, unix_ms,
};
use lephi::providers::{
    CallbackRequest, Provider, bank_transfer, casso, momo, sepay, vnpay, zalopay,
};
use lephi::reconcile::profile::{Profile, Profiles};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::{Backend, PaymentsApp, creds, spawn_payments_app};
use crate::on_both_backends;

const VNPAY_SECRET: &str = "vnpay-fuzz-secret";
const MOMO_ACCESS: &str = "ACCESS";
const MOMO_SECRET: &str = "momo-fuzz-secret";
const ZALOPAY_KEY2: &str = "zalopay-fuzz-key2";
const SEPAY_KEY: &str = "sepay-fuzz-key";
const SEPAY_HMAC: &str = "sepay-fuzz-hmac";
const CASSO_KEY: &str = "casso-fuzz-key";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn vnpay() -> vnpay::Vnpay {
    vnpay::Vnpay::new(VnpaySettings {
        tmn_code: "LEPHI001".into(),
        hash_secret: secret(VNPAY_SECRET),
        previous_hash_secret: None,
        payment_url: "https://pay.example/vpcpay.html".into(),
        api_url: "https://pay.example/api".into(),
    })
}

fn momo() -> momo::Momo {
    momo::Momo::new(MomoSettings {
        partner_code: "MOMO".into(),
        access_key: MOMO_ACCESS.into(),
        secret_key: secret(MOMO_SECRET),
        previous_secret_key: None,
        endpoint: "https://momo.example".into(),
    })
}

fn zalopay() -> zalopay::Zalopay {
    zalopay::Zalopay::new(ZalopaySettings {
        app_id: "2553".into(),
        key1: secret("key1"),
        key2: secret(ZALOPAY_KEY2),
        previous_key2: None,
        endpoint: "https://zalopay.example".into(),
    })
}

fn sepay() -> sepay::Sepay {
    sepay::Sepay::new(SepaySettings {
        api_key: Some(secret(SEPAY_KEY)),
        previous_api_key: None,
        hmac_secret: Some(secret(SEPAY_HMAC)),
        previous_hmac_secret: None,
    })
}

fn casso() -> casso::Casso {
    casso::Casso::new(CassoSettings {
        checksum_key: secret(CASSO_KEY),
        previous_checksum_key: None,
    })
}

/// Runs `provider` over one callback as the route does: verify, check what
/// it names, and answer. A refusal must not be a 5xx.
fn verify(
    provider: &dyn Provider,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), TestCaseError> {
    let request = CallbackRequest {
        query,
        headers,
        body,
        received_at: Timestamp::now(),
    };
    match provider.verify(&request).and_then(|event| event.checked()) {
        Ok(_) => Ok(()),
        Err(error) => {
            let reply = provider.reject(&error);
            prop_assert!(reply.status < 500, "{error:?} answered {}", reply.status);
            Ok(())
        }
    }
}

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
    map
}

/// Text a hostile or broken sender might put in a field.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,25}",
        "-[0-9]{1,25}",
        "[0-9]{1,12}\\.[0-9]{1,30}",
        "[0-9]{1,3}(\\.[0-9]{3}){0,8}(,[0-9]{0,4})?",
        "[0-9 .,eE+-]{0,30}",
        "[A-Za-z0-9_]{0,40}",
        "[%&=+#?; -~]{0,30}",
        ".{0,60}",
        any::<String>(),
        Just(String::new()),
        Just("00".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("\u{0}".to_owned()),
    ]
}

/// A JSON value a hostile or broken sender might put in a field.
fn hostile_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => hostile_text().prop_map(Value::String),
        3 => any::<i64>().prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => Just(json!([])),
        1 => Just(json!({"a": {"b": [1, "x"]}})),
    ]
}

/// Edits of a JSON object: set a field (maybe a new one) or remove one.
fn json_edits(
    fields: &'static [&'static str],
) -> impl Strategy<Value = Vec<(usize, Option<Value>)>> {
    proptest::collection::vec(
        (
            0..fields.len() + 1,
            proptest::option::weighted(0.85, hostile_json()),
        ),
        1..5,
    )
}

fn apply(object: &mut Value, fields: &[&str], edits: Vec<(usize, Option<Value>)>) {
    let map = object.as_object_mut().expect("an object");
    for (field, value) in edits {
        let name = fields.get(field).copied().unwrap_or("unexpected");
        match value {
            Some(value) => map.insert(name.to_owned(), value),
            None => map.remove(name),
        };
    }
}

/// Byte edits: overwrite, remove or insert.
fn byte_edits() -> impl Strategy<Value = Vec<(proptest::sample::Index, u8, u8)>> {
    proptest::collection::vec(
        (any::<proptest::sample::Index>(), any::<u8>(), 0..3u8),
        1..8,
    )
}

fn mutate(bytes: &mut Vec<u8>, edits: Vec<(proptest::sample::Index, u8, u8)>) {
    for (at, byte, kind) in edits {
        let at = at.index(bytes.len().max(1)).min(bytes.len());
        match kind {
            0 if at < bytes.len() => bytes[at] = byte,
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, byte),
        }
    }
}

// ---------------------------------------------------------------------------
// Signed callbacks, built with the providers' own signing helpers.

const VNPAY_FIELDS: &[&str] = &[
    "vnp_Amount",
    "vnp_BankCode",
    "vnp_BankTranNo",
    "vnp_CardType",
    "vnp_OrderInfo",
    "vnp_PayDate",
    "vnp_ResponseCode",
    "vnp_TmnCode",
    "vnp_TransactionNo",
    "vnp_TransactionStatus",
    "vnp_TxnRef",
    "vnp_SecureHashType",
    "vnp_X",
];

fn vnpay_fields() -> BTreeMap<String, String> {
    [
        ("vnp_Amount", "65000000"),
        ("vnp_BankCode", "NCB"),
        ("vnp_BankTranNo", "VNP14422574"),
        ("vnp_CardType", "ATM"),
        ("vnp_OrderInfo", "Thanh toan phi ho so"),
        ("vnp_PayDate", "20261128143000"),
        ("vnp_ResponseCode", "00"),
        ("vnp_TmnCode", "LEPHI001"),
        ("vnp_TransactionNo", "14422574"),
        ("vnp_TransactionStatus", "00"),
        ("vnp_TxnRef", "261128K7QX2M9PTB4H"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A VNPay query signed as VNPay signs: sorted `vnp_*` pairs, form-encoded,
/// HMAC-SHA512 with the hash secret.
fn vnpay_query(fields: &BTreeMap<String, String>, secret: &str) -> String {
    let signed = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "vnp_SecureHashType")
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let hash = hmac_sha512_hex(secret.as_bytes(), signed.as_bytes());
    let mut query = fields
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    query.push_str("&vnp_SecureHash=");
    query.push_str(&hash);
    query
}

fn vnpay_mutated(edits: Vec<(usize, Option<String>)>, secret: &str) -> String {
    let mut fields = vnpay_fields();
    for (field, value) in edits {
        let name = VNPAY_FIELDS[field % VNPAY_FIELDS.len()].to_owned();
        match value {
            Some(value) => fields.insert(name, value),
            None => fields.remove(&name),
        };
    }
    vnpay_query(&fields, secret)
}

const MOMO_SIGNED: [&str; 12] = [
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

fn momo_body() -> Value {
    json!({
        "partnerCode": "MOMO", "orderId": "261128K7QX2M9PTB4H", "requestId": "REQ1",
        "amount": 650000, "orderInfo": "Thanh toan le phi", "orderType": "momo_wallet",
        "transId": 4088878653i64, "resultCode": 0, "message": "Thành công.", "payType": "qr",
        "responseTime": 1764318600000i64, "extraData": "",
    })
}

/// `body` signed as MoMo signs: HMAC-SHA256 over `accessKey=..&amount=..`
/// with every value as sent (a string as is, a number in decimal).
fn momo_signed(mut body: Value, secret: &str) -> Vec<u8> {
    let mut signed = format!("accessKey={MOMO_ACCESS}");
    for field in MOMO_SIGNED {
        let text = match &body[field] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        signed.push_str(&format!("&{field}={text}"));
    }
    body["signature"] = json!(hmac_sha256_hex(secret.as_bytes(), signed.as_bytes()));
    body.to_string().into_bytes()
}

const ZALOPAY_FIELDS: &[&str] = &[
    "app_id",
    "app_trans_id",
    "app_time",
    "app_user",
    "amount",
    "embed_data",
    "item",
    "zp_trans_id",
    "server_time",
    "channel",
    "merchant_user_id",
    "user_fee_amount",
    "discount_amount",
];

fn zalopay_data() -> Value {
    json!({
        "app_id": 2553, "app_trans_id": "261128_K7QX2M9PTB4H", "app_time": 1764318600000i64,
        "app_user": "lephi", "amount": 650000, "embed_data": "{}", "item": "[]",
        "zp_trans_id": 261128000000123i64, "server_time": 1764318600000i64, "channel": 38,
        "merchant_user_id": "m", "user_fee_amount": 0, "discount_amount": 0,
    })
}

/// ZaloPay's callback: `mac` is HMAC-SHA256 with key2 over `data` as sent.
fn zalopay_signed(data: &str, kind: Value, key2: &str) -> Vec<u8> {
    json!({ "data": data, "mac": hmac_sha256_hex(key2.as_bytes(), data.as_bytes()), "type": kind })
        .to_string()
        .into_bytes()
}

const SEPAY_FIELDS: &[&str] = &[
    "id",
    "gateway",
    "transactionDate",
    "accountNumber",
    "code",
    "content",
    "transferType",
    "transferAmount",
    "accumulated",
    "subAccount",
    "referenceCode",
];

fn sepay_body() -> Value {
    json!({
        "id": 92704, "gateway": "Vietcombank", "transactionDate": "2026-11-28 14:30:00",
        "accountNumber": "0011001234567", "code": null, "content": "LP23456789ABU",
        "transferType": "in", "transferAmount": 650000, "accumulated": 19077000,
        "subAccount": null, "referenceCode": "MBVCB.3278907687",
    })
}

const CASSO_FIELDS: &[&str] = &[
    "id",
    "reference",
    "description",
    "amount",
    "runningBalance",
    "transactionDateTime",
    "accountNumber",
    "bankName",
    "counterAccountName",
];

fn casso_body() -> Value {
    json!({
        "error": 0,
        "data": {
            "id": 2150003, "reference": "FT26332601234", "description": "LP23456789ABU",
            "amount": 650000, "runningBalance": 25000000,
            "transactionDateTime": "2026-11-28 15:30:12", "accountNumber": "0011001234567",
            "bankName": "VietcomBank", "counterAccountName": "NGUYEN VAN A",
        }
    })
}

/// Casso's header: `t=<ms>,v1=<HMAC-SHA512 of "t." + canonical body>`.
fn casso_header(t: &str, body: &Value, key: &str) -> String {
    let signed = format!("{t}.{}", casso::canonical_text(body));
    format!(
        "t={t},v1={}",
        hmac_sha512_hex(key.as_bytes(), signed.as_bytes())
    )
}

/// A time for a signature header: now, or anything at all.
fn signing_time(now: i64) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(now.to_string()),
        1 => any::<i64>().prop_map(|t| t.to_string()),
        1 => "[0-9-]{0,30}",
        1 => hostile_text(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn signed_vnpay_ipns_with_any_values_never_panic(
        edits in proptest::collection::vec(
            (0..VNPAY_FIELDS.len(), proptest::option::weighted(0.85, hostile_text())),
            1..6,
        ),
    ) {
        let query = vnpay_mutated(edits, VNPAY_SECRET);
        verify(&vnpay(), &query, &HeaderMap::new(), b"")?;
        // The return URL is read by the same code.
        let _ = vnpay().verify_return(&query);
    }

    #[test]
    fn signed_momo_ipns_with_any_values_never_panic(edits in json_edits(&MOMO_SIGNED)) {
        let mut body = momo_body();
        apply(&mut body, &MOMO_SIGNED, edits);
        verify(&momo(), "", &HeaderMap::new(), &momo_signed(body, MOMO_SECRET))?;
    }

    #[test]
    fn signed_zalopay_callbacks_with_any_data_never_panic(
        edits in json_edits(ZALOPAY_FIELDS),
        raw in proptest::option::weighted(0.3, byte_edits()),
        kind in prop_oneof![Just(json!(1)), hostile_json()],
    ) {
        let mut data = zalopay_data();
        apply(&mut data, ZALOPAY_FIELDS, edits);
        let mut data = data.to_string().into_bytes();
        if let Some(raw) = raw {
            mutate(&mut data, raw);
        }
        let data = String::from_utf8_lossy(&data);
        verify(&zalopay(), "", &HeaderMap::new(), &zalopay_signed(&data, kind, ZALOPAY_KEY2))?;
    }

    #[test]
    fn sepay_transfers_with_any_values_never_panic(
        edits in json_edits(SEPAY_FIELDS),
        raw in proptest::option::weighted(0.3, byte_edits()),
        by_signature in any::<bool>(),
        t in signing_time(time::OffsetDateTime::now_utc().unix_timestamp()),
    ) {
        let mut body = sepay_body();
        apply(&mut body, SEPAY_FIELDS, edits);
        let mut body = body.to_string().into_bytes();
        if let Some(raw) = raw {
            mutate(&mut body, raw);
        }
        let headers = if by_signature {
            let mut signed = format!("{t}.").into_bytes();
            signed.extend_from_slice(&body);
            headers(&[
                ("x-sepay-timestamp", t),
                ("x-sepay-signature", hmac_sha256_hex(SEPAY_HMAC.as_bytes(), &signed)),
            ])
        } else {
            headers(&[("authorization", format!("Apikey {SEPAY_KEY}"))])
        };
        verify(&sepay(), "", &headers, &body)?;
    }

    #[test]
    fn signed_casso_transfers_with_any_values_never_panic(
        edits in json_edits(CASSO_FIELDS),
        outer in proptest::option::weighted(0.2, hostile_json()),
        t in signing_time(unix_ms(Timestamp::now())),
    ) {
        let mut body = casso_body();
        apply(&mut body["data"], CASSO_FIELDS, edits);
        if let Some(outer) = outer {
            body["error"] = outer;
        }
        let headers = headers(&[("x-casso-signature", casso_header(&t, &body, CASSO_KEY))]);
        verify(&casso(), "", &headers, body.to_string().as_bytes())?;
    }

    #[test]
    fn signature_headers_of_any_shape_never_panic(
        sepay_t in hostile_text(),
        sepay_sig in hostile_text(),
        casso_sig in prop_oneof![
            "t=-?[0-9]{0,22},v1=[0-9a-f]{0,130}",
            "(t=[0-9]{0,5},?|v1=[0-9a-f]{0,8},?){0,12}",
            hostile_text(),
        ],
        authorization in prop_oneof![
            Just(format!("Apikey {SEPAY_KEY}")),
            "(Apikey|apikey|Bearer)? {0,3}[ -~]{0,40}",
            hostile_text(),
        ],
        body in prop_oneof![
            Just(sepay_body().to_string()),
            Just(casso_body().to_string()),
            ".{0,100}",
        ],
    ) {
        let headers = headers(&[
            ("x-sepay-timestamp", sepay_t),
            ("x-sepay-signature", sepay_sig),
            ("x-casso-signature", casso_sig),
            ("authorization", authorization),
        ]);
        verify(&sepay(), "", &headers, body.as_bytes())?;
        verify(&casso(), "", &headers, body.as_bytes())?;
    }
}

// ---------------------------------------------------------------------------
// Money, payment codes, transfer notes, times, URLs.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn amounts_never_panic_and_are_exact(text in hostile_text(), n in any::<i64>()) {
        let _ = Vnd::parse_decimal(&text);
        let _ = Vnd::parse_vietnamese(&text);
        let _ = Vnd::new(n).display_vi();
        let _ = json_int(&json!(text));
        let _ = parse_int(&text);
        let _ = from_unix_ms(n);
        let _ = parse_bank_time(&text);
        let _ = lephi::domain::dossier::parse_received_at(&text);
        let _ = lephi::domain::settlement::parse_day(&text);
        let _ = Timestamp::parse_rfc3339(&text);
    }

    #[test]
    fn a_fraction_however_small_is_refused(
        n in 0i64..1_000_000_000,
        zeros in 0usize..40,
        digit in 1u8..10,
    ) {
        let text = format!("{n}.{}{digit}", "0".repeat(zeros));
        prop_assert!(Vnd::parse_decimal(&text).is_err(), "{text} was accepted");
        let vietnamese = format!("{n},{}{digit}", "0".repeat(zeros));
        prop_assert!(Vnd::parse_vietnamese(&vietnamese).is_err(), "{vietnamese} was accepted");
    }

    #[test]
    fn payment_codes_and_notes_never_panic(
        text in prop_oneof![any::<String>(), hostile_text(), "(LP|lp|ĹP|Lp)[ .\\-]?[0-9A-Za-zĐđ .\\-\u{300}-\u{36F}]{0,20}"],
        bin in hostile_text(),
        account in hostile_text(),
        amount in any::<i64>(),
    ) {
        let _ = PaymentCode::parse(&text);
        if let Some(code) = transfer_note::find_payment_code(&text) {
            prop_assert_eq!(PaymentCode::parse(code.as_str()), Ok(code.clone()));
        }
        let _ = transfer_note::transfer_note(&text);
        let _ = bank_transfer::vietqr_payload(&bin, &account, Some(Vnd::new(amount)), &text);
        let _ = bank_transfer::vietqr_payload(&bin, &account, None, &text);
    }

    #[test]
    fn webhook_urls_and_keys_never_panic(
        url in prop_oneof![
            any::<String>(),
            "(https?|ftp)://[a-z0-9.:@\\[\\]%-]{0,40}(/[ -~]{0,20})?",
            hostile_text(),
        ],
        loopback in any::<bool>(),
    ) {
        let policy = UrlPolicy {
            allowed_hosts: vec!["motcua.example.gov.vn".into()],
            allow_loopback: loopback,
        };
        let _ = WebhookUrl::parse(&url, &policy);
        let _ = lephi::domain::webhook::WebhookSecret::parse(&url);
        let _ = lephi::domain::idempotency::IdempotencyKey::parse(&url);
        let _ = lephi::domain::AgencyCode::parse("code", &url);
    }
}

// ---------------------------------------------------------------------------
// Statement profiles (shipped and configured) and the dossier register.

const STATEMENTS: &[&str] = &[
    "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date\n14422574,261128K7QX2M9PTB4H,650000,3575,2026-10-01T10:00:00+07:00,2026-10-02\n",
    "bank_ref,description,amount,transaction_time\nFT26332601234,LP23456789ABU chuyen tien,650000,2026-11-28T15:30:12+07:00\n",
    "STT,Mã GD VNPAY,Mã GD merchant,Ngân hàng,Số tiền,Phí,Thời gian GD,Ngày quyết toán,Trạng thái\n1,14422574,261128K7QX2M9PTB4H,NCB,1.500.000,3.575,28/11/2026 13:03:57,29/11/2026,Thành công\n",
    "STT,Mã giao dịch,Mã đơn hàng,Số tiền,Phí giao dịch,Thời gian giao dịch,Ngày đối soát,Trạng thái\n1,4088878653,261128K7QX2M9PTB4H,150000,1000,28/11/2026 13:03:57,29/11/2026,Thành công\n",
    "Mã GD ZaloPay,Mã GD ứng dụng,Số tiền,Phí,Thời gian thanh toán,Ngày đối soát\n261128000000123,261128_K7QX2M9PTB4H,150000,1000,2026-11-28 13:03:57,2026-11-29\n",
    "STT;Ngày giao dịch;Số tham chiếu;Số tiền ghi nợ;Số tiền ghi có;Số dư;Mô tả\n1;28/11/2026 13:03:57;FT2633;;1.500.000;9.000.000;LP23456789ABU nop le phi\n",
    "Số bút toán,Nội dung,Số tiền có,Thời gian\nBT1,\"LP23456789ABU, le phi\",\"1.500.000,00\",28/11/2026 13:03:57\n",
    "dossier_code,agency_code,procedure_code,fee_amount,received_at\nHS-1,P.D1,1.004227,650000,2026-11-28\n",
];

/// Configured profiles like the README's, with `time_format` as given.
fn configured(time_format: &str, date_format: &str) -> Result<Profiles, String> {
    let bank: Profile = serde_json::from_value(json!({
        "layout": "bank", "delimiter": ",", "amount_format": "vietnamese",
        "time_format": time_format, "utc_offset": "+07:00",
        "columns": { "bank_ref": "Số bút toán", "description": "Nội dung",
                     "amount": "Số tiền có", "transaction_time": "Thời gian" },
    }))
    .map_err(|e| e.to_string())?;
    let gateway: Profile = serde_json::from_value(json!({
        "layout": "gateway", "delimiter": ";", "time_format": time_format,
        "date_format": date_format,
        "columns": { "provider_txn_id": "Mã GD VNPAY", "order_ref": "Mã tham chiếu",
                     "amount": "Số tiền", "transaction_time": "Thời gian GD",
                     "settlement_date": "Ngày quyết toán" },
    }))
    .map_err(|e| e.to_string())?;
    Profiles::new(&BTreeMap::from([
        ("bidv".to_owned(), bank),
        ("vnpay_2027".to_owned(), gateway),
    ]))
}

fn read_with_every_profile(profiles: &Profiles, file: &[u8]) {
    for name in profiles.names() {
        if let Ok(lines) = profiles.get(name).unwrap().read(file) {
            for line in lines {
                let _ = line;
            }
        }
    }
}

fn time_format() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("rfc3339".to_owned()),
        Just("[day]/[month]/[year] [hour]:[minute]:[second]".to_owned()),
        Just("[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]".to_owned()),
        "(\\[(day|month|year|hour|minute|second|offset_hour|subsecond|weekday|unix_timestamp)( [a-z_]{1,10}:[a-z0-9_]{1,10})?\\][ /:.-]?){0,6}",
        "[\\[\\]a-z _:/\\\\-]{0,30}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_profile_reads_random_and_mutated_files_without_panic(
        sample in 0..STATEMENTS.len(),
        edits in byte_edits(),
        random in proptest::collection::vec(any::<u8>(), 0..300),
        time in time_format(),
        date in time_format(),
    ) {
        let shipped = Profiles::new(&BTreeMap::new()).unwrap();
        let mut file = STATEMENTS[sample].as_bytes().to_vec();
        mutate(&mut file, edits);
        read_with_every_profile(&shipped, &file);
        read_with_every_profile(&shipped, &random);
        if let Ok(profiles) = configured(&time, &date) {
            read_with_every_profile(&profiles, &file);
            read_with_every_profile(&profiles, STATEMENTS[sample].as_bytes());
        }
        let _ = lephi::domain::dossier::parse_register(&file);
        let _ = lephi::domain::dossier::parse_register(&random);
        let _ = lephi::domain::agency::parse_agency_list(&file);
    }
}

// ---------------------------------------------------------------------------
// Through HTTP: mutated, correctly signed callbacks never get a 5xx.

on_both_backends!(mutated_signed_callbacks_never_get_a_5xx);

/// One mutated callback for `provider`, signed with the app's test
/// credentials: the route's parsing and storing are reached.
fn mutated_callback(
    provider: &str,
    runner: &mut TestRunner,
) -> (String, Vec<u8>, Vec<(&'static str, String)>) {
    let edits = |runner: &mut TestRunner, fields: &'static [&'static str]| {
        json_edits(fields).new_tree(runner).unwrap().current()
    };
    match provider {
        "vnpay" => {
            let strategy = proptest::collection::vec(
                (
                    0..VNPAY_FIELDS.len(),
                    proptest::option::weighted(0.85, hostile_text()),
                ),
                1..4,
            );
            let edits = strategy.new_tree(runner).unwrap().current();
            let mut fields = vnpay_fields();
            fields.insert("vnp_TmnCode".into(), creds::VNPAY_TMN.into());
            for (field, value) in edits {
                let name = VNPAY_FIELDS[field].to_owned();
                match value {
                    Some(value) => fields.insert(name, value),
                    None => fields.remove(&name),
                };
            }
            (
                vnpay_query(&fields, creds::VNPAY_SECRET),
                Vec::new(),
                Vec::new(),
            )
        }
        "momo" => {
            let mut body = momo_body();
            body["partnerCode"] = json!(creds::MOMO_PARTNER);
            apply(&mut body, &MOMO_SIGNED, edits(runner, &MOMO_SIGNED));
            // MoMo signs with the merchant's access key first.
            let mut signed = format!("accessKey={}", creds::MOMO_ACCESS);
            for field in MOMO_SIGNED {
                let text = match &body[field] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                signed.push_str(&format!("&{field}={text}"));
            }
            body["signature"] = json!(hmac_sha256_hex(
                creds::MOMO_SECRET.as_bytes(),
                signed.as_bytes()
            ));
            (String::new(), body.to_string().into_bytes(), Vec::new())
        }
        "zalopay" => {
            let mut data = zalopay_data();
            data["app_id"] = json!(creds::ZALOPAY_APP.parse::<i64>().unwrap());
            apply(&mut data, ZALOPAY_FIELDS, edits(runner, ZALOPAY_FIELDS));
            let body = zalopay_signed(&data.to_string(), json!(1), creds::ZALOPAY_KEY2);
            (String::new(), body, Vec::new())
        }
        "sepay" => {
            let mut body = sepay_body();
            body["accountNumber"] = json!(crate::helpers::BANK_ACCOUNT);
            apply(&mut body, SEPAY_FIELDS, edits(runner, SEPAY_FIELDS));
            let auth = format!("Apikey {}", creds::SEPAY_API_KEY);
            (
                String::new(),
                body.to_string().into_bytes(),
                vec![("Authorization", auth)],
            )
        }
        _ => {
            let mut body = casso_body();
            body["data"]["accountNumber"] = json!(crate::helpers::BANK_ACCOUNT);
            apply(&mut body["data"], CASSO_FIELDS, edits(runner, CASSO_FIELDS));
            let t = unix_ms(Timestamp::now()).to_string();
            let header = casso_header(&t, &body, creds::CASSO_KEY);
            (
                String::new(),
                body.to_string().into_bytes(),
                vec![("X-Casso-Signature", header)],
            )
        }
    }
}

async fn mutated_signed_callbacks_never_get_a_5xx(backend: Backend) {
    let app: PaymentsApp = spawn_payments_app(backend).await;
    // Real invoices and attempts, so that some mutations still name them.
    crate::callbacks::gateways_accept(&app).await;
    for (dossier, channel) in [("HS-1", "vnpay"), ("HS-2", "momo"), ("HS-3", "zalopay")] {
        let invoice = app.invoice(dossier).await;
        let attempt = app.attempt(invoice["id"].as_str().unwrap(), channel).await;
        assert_eq!(attempt.status, 201, "{}", attempt.text);
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &rand::rng().random::<[u8; 32]>(),
        ),
    );
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let providers = ["vnpay", "momo", "zalopay", "sepay", "casso"];
    for round in 0..300 {
        let provider = providers[rng.random_range(0..providers.len())];
        let (query, body, headers) = mutated_callback(provider, &mut runner);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = app.callback(provider, &query, body.clone(), &headers).await;
        assert!(
            answer.status < 500,
            "round {round}: {provider} answered {} to {query} {}: {}",
            answer.status,
            String::from_utf8_lossy(&body),
            answer.text
        );
    }
}
