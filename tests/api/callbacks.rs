//! Provider callbacks under attack: for VNPay, MoMo, ZaloPay, SePay (API
//! key and HMAC) and Casso, a valid callback pays its invoice once, and
//! anything else (a signed field changed, another key, a missing or garbled
//! signature, a stale time, a malformed or oversized body) is refused in the
//! provider's own format, stores nothing, leaks no secret and is counted in
//! `/metrics`. Every expected signature is computed here from the signed
//! text spelled out as DOMAIN.md describes it, never by lephi's own code.

use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::{
    BANK_ACCOUNT, Backend, PaymentsApp, Response, creds, hmac_sha256_hex, hmac_sha512_hex,
    spawn_payments_app, spawn_payments_app_with,
};
use crate::on_both_backends;
use crate::payments::{rsp_code, sepay_auth, sepay_transfer, vnpay_ipn};

on_both_backends!(
    a_signed_vnpay_ipn_pays_the_invoice_and_its_replay_answers_02,
    the_sqlite_write_batches_are_counted_in_metrics,
    a_vnpay_ipn_with_any_signed_parameter_changed_answers_97_and_stores_nothing,
    a_vnpay_ipn_with_a_wrong_or_missing_hash_answers_97,
    malformed_vnpay_ipns_answer_99_or_97_and_never_5xx,
    a_signed_momo_ipn_pays_the_invoice_and_its_replay_is_acknowledged,
    a_momo_ipn_with_any_signed_field_changed_is_401_and_stores_nothing,
    a_momo_ipn_with_a_wrong_or_missing_signature_is_401,
    malformed_momo_ipns_are_400_and_store_nothing,
    a_signed_zalopay_callback_pays_the_invoice_and_its_replay_is_acknowledged,
    a_zalopay_callback_with_any_signed_field_changed_is_refused_and_stores_nothing,
    a_zalopay_callback_with_a_wrong_or_missing_mac_is_refused,
    malformed_zalopay_callbacks_are_refused_and_store_nothing,
    a_sepay_transfer_with_the_api_key_pays_the_invoice_once,
    a_sepay_transfer_with_a_wrong_or_missing_api_key_is_401,
    a_signed_sepay_transfer_pays_the_invoice_once,
    a_signed_sepay_transfer_with_any_byte_changed_is_401_and_stores_nothing,
    a_sepay_transfer_with_a_wrong_missing_garbled_or_stale_signature_is_401,
    sepay_accepts_only_the_methods_it_is_configured_with,
    malformed_sepay_transfers_are_400_and_store_nothing,
    a_casso_transfer_signed_over_its_canonical_form_pays_the_invoice_once,
    cassos_test_webhook_is_acknowledged_and_records_nothing,
    a_casso_transfer_with_any_signed_field_changed_is_401_and_stores_nothing,
    a_casso_transfer_with_a_wrong_missing_garbled_or_stale_signature_is_401,
    malformed_casso_transfers_are_400_and_store_nothing,
    oversized_callbacks_are_413_before_any_work,
    an_unconfigured_provider_has_no_callback,
    during_a_rotation_callbacks_under_either_secret_are_accepted_and_no_other,
);

const JSON: (&str, &str) = ("Content-Type", "application/json");
const PROVIDERS: [&str; 5] = ["vnpay", "momo", "zalopay", "sepay", "casso"];
/// Every secret a callback answer could leak.
const SECRETS: [&str; 7] = [
    creds::VNPAY_SECRET,
    creds::MOMO_SECRET,
    creds::ZALOPAY_KEY1,
    creds::ZALOPAY_KEY2,
    creds::SEPAY_API_KEY,
    creds::SEPAY_HMAC,
    creds::CASSO_KEY,
];
const OTHER_KEY: &str = "not-the-configured-secret-0123456789";
/// What every invoice of `PaymentsApp::invoice` owes.
const OWED: i64 = 650_000;

// ---------------------------------------------------------------------------
// Sending callbacks and checking what they left behind.

/// A callback as sent: query string, body and headers.
#[derive(Debug, Clone, Default)]
struct Callback {
    query: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Callback {
    fn get(query: impl Into<String>) -> Callback {
        Callback {
            query: query.into(),
            ..Callback::default()
        }
    }

    fn post(body: impl Into<Vec<u8>>, headers: &[(&'static str, &str)]) -> Callback {
        let mut all = vec![(JSON.0, JSON.1.to_owned())];
        all.extend(headers.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Callback {
            query: String::new(),
            body: body.into(),
            headers: all,
        }
    }
}

async fn send(app: &PaymentsApp, provider: &str, callback: &Callback) -> Response {
    let headers: Vec<(&str, &str)> = callback
        .headers
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    app.callback(provider, &callback.query, callback.body.clone(), &headers)
        .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadSignature,
    Malformed,
}

fn assert_no_secret(answer: &Response, why: &str) {
    for secret in SECRETS {
        assert!(
            !answer.text.contains(secret),
            "{why}: the answer leaks a secret: {}",
            answer.text
        );
        for (name, value) in &answer.headers {
            assert!(
                !value
                    .as_bytes()
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "{why}: header {name} leaks a secret"
            );
        }
    }
}

/// Checks that `answer` is `provider`'s own refusal for `refusal`, and
/// carries no secret.
fn assert_refused(provider: &str, answer: &Response, refusal: Refusal, why: &str) {
    assert!(
        answer.status < 500,
        "{why}: {} {}",
        answer.status,
        answer.text
    );
    assert_no_secret(answer, why);
    match provider {
        // VNPay always hears HTTP 200; the code is in the body.
        "vnpay" => {
            assert_eq!(answer.status, 200, "{why}: {}", answer.text);
            let body = answer.json();
            let code = match refusal {
                Refusal::BadSignature => "97",
                Refusal::Malformed => "99",
            };
            assert_eq!(body["RspCode"], code, "{why}: {body}");
            assert!(body["Message"].is_string(), "{why}: {body}");
        }
        "momo" => {
            let (status, code) = match refusal {
                Refusal::BadSignature => (401, "bad_signature"),
                Refusal::Malformed => (400, "malformed_callback"),
            };
            assert_eq!(answer.status, status, "{why}: {}", answer.text);
            assert_eq!(answer.code(), code, "{why}");
        }
        // ZaloPay hears HTTP 200 with return_code -1 for both.
        "zalopay" => {
            assert_eq!(answer.status, 200, "{why}: {}", answer.text);
            assert_eq!(answer.json()["return_code"], -1, "{why}: {}", answer.text);
        }
        "sepay" | "casso" => {
            let (status, code) = match refusal {
                Refusal::BadSignature => (401, "bad_signature"),
                Refusal::Malformed => (400, "malformed_callback"),
            };
            assert_eq!(answer.status, status, "{why}: {}", answer.text);
            let body = answer.json();
            assert_eq!(body["success"], false, "{why}: {body}");
            assert_eq!(body["code"], code, "{why}: {body}");
        }
        other => panic!("no such provider: {other}"),
    }
}

/// Checks `provider`'s acknowledgement of a callback it took.
fn assert_acknowledged(provider: &str, answer: &Response, why: &str) {
    assert_no_secret(answer, why);
    match provider {
        "momo" => {
            assert_eq!(answer.status, 204, "{why}: {}", answer.text);
            assert_eq!(answer.text, "", "{why}");
        }
        "zalopay" => {
            assert_eq!(answer.status, 200, "{why}: {}", answer.text);
            assert_eq!(answer.json()["return_code"], 1, "{why}: {}", answer.text);
        }
        "sepay" | "casso" => {
            assert_eq!(answer.status, 200, "{why}: {}", answer.text);
            assert_eq!(answer.json(), json!({ "success": true }), "{why}");
        }
        other => panic!("{other} acknowledges with a code: use vnpay_code"),
    }
}

/// VNPay's `RspCode`, checking HTTP 200.
fn vnpay_code(answer: &Response) -> String {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_no_secret(answer, "vnpay");
    answer.json()["RspCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Sends `callback` and checks it is refused and leaves nothing behind.
async fn refused(
    app: &PaymentsApp,
    provider: &str,
    callback: &Callback,
    refusal: Refusal,
    invoices: &[&str],
    why: &str,
) {
    let before = row_counts(app).await;
    let answer = send(app, provider, callback).await;
    assert_refused(provider, &answer, refusal, why);
    assert_nothing_stored(app, invoices, why).await;
    assert_eq!(row_counts(app).await, before, "{why}: a row was written");
}

/// How many rows each table holds: a refused callback writes none, not
/// even an audit record.
async fn row_counts(app: &PaymentsApp) -> Vec<(&'static str, i64)> {
    const TABLES: [&str; 11] = [
        "agencies",
        "agency_bank_accounts",
        "agency_webhooks",
        "api_keys",
        "audit_log",
        "idempotency_keys",
        "invoices",
        "outbox_events",
        "payment_attempts",
        "payment_exceptions",
        "payments",
    ];
    let pool = app.app.raw_pool().await;
    let mut counts = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .expect("the table can be counted");
        counts.push((table, n));
    }
    pool.close().await;
    counts
}

/// No payment, exception or notification, every attempt still pending
/// and every invoice in `invoices` still open.
async fn assert_nothing_stored(app: &PaymentsApp, invoices: &[&str], why: &str) {
    for table in ["payments", "payment_exceptions", "outbox_events"] {
        assert_eq!(app.app.count(table).await, 0, "{why}: {table}");
    }
    let pool = app.app.raw_pool().await;
    let moved: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM payment_attempts WHERE status <> 'pending'")
            .fetch_one(&pool)
            .await
            .expect("attempts can be counted");
    pool.close().await;
    assert_eq!(moved, 0, "{why}: an attempt changed");
    for id in invoices {
        let invoice = app.invoice_now(id).await;
        assert_eq!(invoice["status"], "open", "{why}: {invoice}");
        assert_eq!(invoice["amount_paid"], 0, "{why}: {invoice}");
    }
}

/// Checks the invoice is paid by exactly one payment on `channel`, with
/// `provider_txn_id`, and two notifications.
async fn assert_paid_once(app: &PaymentsApp, invoice_id: &str, channel: &str, txn_id: &str) {
    let invoice = app.invoice_now(invoice_id).await;
    assert_eq!(invoice["status"], "paid", "{invoice}");
    assert_eq!(invoice["amount_paid"], OWED, "{invoice}");
    assert_eq!(app.app.count("payments").await, 1);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
    assert_eq!(app.app.count("outbox_events").await, 2);
    let payments = app
        .app
        .get(
            &format!("/v1/invoices/{invoice_id}/payments"),
            &app.finance_key,
        )
        .await;
    assert_eq!(payments.status, 200, "{}", payments.text);
    let items = payments.json()["items"].clone();
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
    assert_eq!(items[0]["channel"], channel);
    assert_eq!(items[0]["provider_txn_id"], txn_id);
    assert_eq!(items[0]["amount"], OWED);
    assert_eq!(items[0]["exception"], Value::Null);
}

/// `lephi_callbacks_refused_total{provider,reason}` as `/metrics` shows it.
async fn refused_count(app: &PaymentsApp, provider: &str, reason: &str) -> u64 {
    let metrics = app
        .app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    let series =
        format!("lephi_callbacks_refused_total{{provider=\"{provider}\",reason=\"{reason}\"}} ");
    metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix(series.as_str()))
        .map_or(0, |n| n.trim().parse().expect("a counter value"))
}

async fn assert_refused_counts(app: &PaymentsApp, provider: &str, bad: u64, malformed: u64) {
    assert_eq!(
        refused_count(app, provider, "bad_signature").await,
        bad,
        "{provider} bad_signature"
    );
    assert_eq!(
        refused_count(app, provider, "malformed").await,
        malformed,
        "{provider} malformed"
    );
}

pub(crate) fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

pub(crate) fn now_secs() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// An invoice of 650,000 đồng: its id and payment code.
async fn open_invoice(app: &PaymentsApp, dossier: &str) -> (String, String) {
    let invoice = app.invoice(dossier).await;
    (
        invoice["id"].as_str().unwrap().to_owned(),
        invoice["payment_code"].as_str().unwrap().to_owned(),
    )
}

/// Makes the fake MoMo and ZaloPay accept every create request.
pub async fn gateways_accept(app: &PaymentsApp) {
    gateways_accept_on(&app.provider_api).await;
}

/// Makes the fake MoMo and ZaloPay at `server` accept every create request.
pub(crate) async fn gateways_accept_on(server: &wiremock::MockServer) {
    Mock::given(method("POST"))
        .and(path("/v2/gateway/api/create"))
        .respond_with(|request: &Request| {
            let sent: Value = request.body_json().unwrap_or_default();
            ResponseTemplate::new(200).set_body_json(json!({
                "partnerCode": sent["partnerCode"],
                "orderId": sent["orderId"],
                "requestId": sent["requestId"],
                "amount": sent["amount"],
                "responseTime": now_ms(),
                "message": "Thành công.",
                "resultCode": 0,
                "payUrl": "https://test-payment.momo.vn/v2/gateway/pay?t=TU9NTw",
            }))
        })
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/create"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "return_code": 1,
            "return_message": "Giao dịch thành công",
            "sub_return_code": 1,
            "sub_return_message": "Giao dịch thành công",
            "zp_trans_token": "ACxvGL_7gS1",
            "order_url": "https://qcgateway.zalopay.vn/openinapp?order=eyJ6cHRyYW5zdG9rZW4iOiJBQ3h2In0",
        })))
        .mount(server)
        .await;
}

/// An invoice with an attempt on `channel`: the invoice's id and the
/// attempt's order reference.
async fn invoice_with_attempt(app: &PaymentsApp, dossier: &str, channel: &str) -> (String, String) {
    let (id, _) = open_invoice(app, dossier).await;
    let attempt = app.attempt(&id, channel).await;
    assert_eq!(attempt.status, 201, "{}", attempt.text);
    let order_ref = attempt.json()["order_ref"].as_str().unwrap().to_owned();
    (id, order_ref)
}

fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from} is not in {text}");
    let out = text.replacen(from, to, 1);
    assert_ne!(out, text);
    out
}

// ---------------------------------------------------------------------------
// VNPay: `GET /callbacks/vnpay?<vnp_* parameters>&vnp_SecureHash=<hex>`.

/// The signed part of a VNPay query and its hash.
fn vnpay_parts(query: &str) -> (&str, &str) {
    query
        .split_once("&vnp_SecureHash=")
        .expect("a signed VNPay query")
}

/// `query` (from `vnpay_ipn`) with `from` replaced by `to` in its signed
/// text and signed again under `secret`.
fn vnpay_resigned(query: &str, from: &str, to: &str, secret: &str) -> String {
    let (signed, _) = vnpay_parts(query);
    let signed = if from.is_empty() {
        signed.to_owned()
    } else {
        replaced(signed, from, to)
    };
    format!(
        "{signed}&vnp_SecureHash={}",
        hmac_sha512_hex(secret, &signed)
    )
}

async fn a_signed_vnpay_ipn_pays_the_invoice_and_its_replay_answers_02(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "vnpay").await;
    let ipn = vnpay_ipn(&order_ref, OWED, "14422574", "00");
    assert_eq!(
        vnpay_code(&send(&app, "vnpay", &Callback::get(&ipn)).await),
        "00"
    );
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
    // VNPay retries: "already confirmed", still one payment.
    for _ in 0..2 {
        assert_eq!(
            vnpay_code(&send(&app, "vnpay", &Callback::get(&ipn)).await),
            "02"
        );
    }
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
    // The hash type VNPay may add is not signed and changes nothing.
    let with_type = format!("{ipn}&vnp_SecureHashType=HmacSHA512");
    assert_eq!(
        vnpay_code(&send(&app, "vnpay", &Callback::get(with_type)).await),
        "02"
    );
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
    assert_refused_counts(&app, "vnpay", 0, 0).await;
}

/// The SQLite writers' batch counters as `/metrics` shows them, in the
/// order batches, writes, log pages, commit seconds, checkpoints by the
/// checkpointer, checkpoints by commits at the log's bound; `None` for a
/// series it does not show.
async fn write_batches(app: &PaymentsApp) -> [Option<f64>; 6] {
    let metrics = app
        .app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    [
        "lephi_sqlite_write_batches_total ",
        "lephi_sqlite_batched_writes_total ",
        "lephi_sqlite_log_pages_total ",
        "lephi_sqlite_commit_seconds_total ",
        "lephi_sqlite_checkpoints_total ",
        "lephi_sqlite_checkpoints_at_bound_total ",
    ]
    .map(|series| {
        metrics
            .text
            .lines()
            .find_map(|line| line.strip_prefix(series))
            .map(|n| n.trim().parse().expect("a counter value"))
    })
}

async fn the_sqlite_write_batches_are_counted_in_metrics(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "vnpay").await;
    let before = write_batches(&app).await;
    let ipn = vnpay_ipn(&order_ref, OWED, "14422574", "00");
    // One paying callback, then two replays that write nothing.
    for code in ["00", "02", "02"] {
        assert_eq!(
            vnpay_code(&send(&app, "vnpay", &Callback::get(&ipn)).await),
            code
        );
    }
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
    let after = write_batches(&app).await;
    match backend {
        Backend::Sqlite => {
            // The checkpoints are shown too (how many depends on how long
            // the log already was).
            let [batches, writes, log_pages, seconds, _, _] =
                std::array::from_fn(|i| after[i].unwrap() - before[i].unwrap());
            // Each callback is a write (the replays undone), and waited for
            // its batch's commit; the outbox's dispatcher may write too.
            assert!(writes >= 3.0, "{before:?} {after:?}");
            assert!((1.0..=writes).contains(&batches), "{before:?} {after:?}");
            assert!(log_pages >= 1.0, "{before:?} {after:?}");
            assert!(seconds > 0.0, "{before:?} {after:?}");
        }
        Backend::Postgres => assert_eq!(before, [None; 6]),
    }
}

async fn a_vnpay_ipn_with_any_signed_parameter_changed_answers_97_and_stores_nothing(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "vnpay").await;
    let (other_id, other_ref) = invoice_with_attempt(&app, "HS-2", "vnpay").await;
    let invoices = [id.as_str(), other_id.as_str()];
    let ipn = vnpay_ipn(&order_ref, OWED, "14422574", "00");
    let txn_ref = format!("vnp_TxnRef={order_ref}");
    let other_txn_ref = format!("vnp_TxnRef={other_ref}");
    let tmn = format!("vnp_TmnCode={}", creds::VNPAY_TMN);
    // Each parameter the hash covers, changed after signing.
    let tampered = [
        ("vnp_Amount=65000000", "vnp_Amount=100000"),
        ("vnp_BankCode=NCB", "vnp_BankCode=VCB"),
        ("vnp_BankTranNo=VNP14422574", "vnp_BankTranNo=VNP14422575"),
        ("vnp_CardType=ATM", "vnp_CardType=QRCODE"),
        (
            "vnp_OrderInfo=Thanh+toan+phi+ho+so",
            "vnp_OrderInfo=Thanh+toan+phi+ho+so+khac",
        ),
        ("vnp_PayDate=20261128143000", "vnp_PayDate=20261128143001"),
        ("vnp_ResponseCode=00", "vnp_ResponseCode=24"),
        (tmn.as_str(), "vnp_TmnCode=LEPHI002"),
        ("vnp_TransactionNo=14422574", "vnp_TransactionNo=14422575"),
        ("vnp_TransactionStatus=00", "vnp_TransactionStatus=02"),
        // Paying another invoice with this payment's signature.
        (txn_ref.as_str(), other_txn_ref.as_str()),
        // A signed parameter dropped, one added, one sent twice.
        ("&vnp_BankTranNo=VNP14422574", ""),
        ("&vnp_TxnRef=", "&vnp_Extra=1&vnp_TxnRef="),
        ("&vnp_TxnRef=", "&vnp_Amount=65000000&vnp_TxnRef="),
    ];
    for (from, to) in tampered {
        let query = replaced(&ipn, from, to);
        let why = format!("{from} -> {to}");
        refused(
            &app,
            "vnpay",
            &Callback::get(query),
            Refusal::BadSignature,
            &invoices,
            &why,
        )
        .await;
    }
    assert_refused_counts(&app, "vnpay", tampered.len() as u64, 0).await;
    // The untouched IPN was valid all along.
    assert_eq!(
        vnpay_code(&send(&app, "vnpay", &Callback::get(&ipn)).await),
        "00"
    );
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
    assert_eq!(app.invoice_now(&other_id).await["status"], "open");
}

async fn a_vnpay_ipn_with_a_wrong_or_missing_hash_answers_97(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "vnpay").await;
    let invoices = [id.as_str()];
    let ipn = vnpay_ipn(&order_ref, OWED, "14422574", "00");
    let (signed, hash) = vnpay_parts(&ipn);
    let sha256 = hmac_sha256_hex(creds::VNPAY_SECRET, signed);
    let cases = [
        (vnpay_resigned(&ipn, "", "", OTHER_KEY), "another secret"),
        (
            vnpay_resigned(&ipn, "", "", creds::MOMO_SECRET),
            "another provider's secret",
        ),
        (format!("{signed}&vnp_SecureHash={sha256}"), "HMAC-SHA256"),
        (signed.to_owned(), "no hash"),
        (format!("{signed}&vnp_SecureHash="), "an empty hash"),
        (
            format!("{signed}&vnp_SecureHash=zz"),
            "a hash that is not hex",
        ),
        (
            format!("{signed}&vnp_SecureHash={}", "0".repeat(128)),
            "zeros",
        ),
        (
            format!("{signed}&vnp_SecureHash={}", &hash[..64]),
            "a truncated hash",
        ),
        (
            format!("{signed}&vnp_SecureHash={hash}&vnp_SecureHash={hash}"),
            "the hash twice",
        ),
        (
            format!("{signed}&vnp_SecureHash=t=abc,v1=zz"),
            "a garbled hash",
        ),
        (String::new(), "no query at all"),
        ("%%%&&==".to_owned(), "a garbled query"),
        (
            format!("{signed}&vnp_SecureHash=%FF%FE%00"),
            "a hash of bytes that are not text",
        ),
    ];
    for (query, why) in &cases {
        refused(
            &app,
            "vnpay",
            &Callback::get(query),
            Refusal::BadSignature,
            &invoices,
            why,
        )
        .await;
    }
    assert_refused_counts(&app, "vnpay", cases.len() as u64, 0).await;
    // Hex in either case is the same hash.
    let upper = format!("{signed}&vnp_SecureHash={}", hash.to_ascii_uppercase());
    assert_eq!(
        vnpay_code(&send(&app, "vnpay", &Callback::get(upper)).await),
        "00"
    );
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
}

async fn malformed_vnpay_ipns_answer_99_or_97_and_never_5xx(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "vnpay").await;
    let invoices = [id.as_str()];
    let ipn = vnpay_ipn(&order_ref, OWED, "14422574", "00");
    let txn_ref = format!("vnp_TxnRef={order_ref}");
    let tmn = format!("&vnp_TmnCode={}", creds::VNPAY_TMN);
    // Correctly signed, but not something lephi can record.
    let malformed = [
        ("vnp_Amount=65000000", "vnp_Amount=1e30"),
        (
            "vnp_Amount=65000000",
            "vnp_Amount=100000000000000000000000000000000",
        ),
        ("vnp_Amount=65000000", "vnp_Amount=-500"),
        ("vnp_Amount=65000000", "vnp_Amount=1250"),
        ("vnp_Amount=65000000", "vnp_Amount=65000050"),
        ("vnp_Amount=65000000", "vnp_Amount=12.5"),
        ("vnp_Amount=65000000", "vnp_Amount=0"),
        ("vnp_Amount=65000000", "vnp_Amount="),
        ("vnp_Amount=65000000&", ""),
        (tmn.as_str(), "&vnp_TmnCode=OTHER001"),
        (tmn.as_str(), ""),
        (txn_ref.as_str(), "vnp_TxnRef="),
        ("vnp_TransactionNo=14422574", "vnp_TransactionNo="),
        ("&vnp_TransactionNo=14422574", ""),
        ("vnp_PayDate=20261128143000", "vnp_PayDate=yesterday"),
        ("vnp_PayDate=20261128143000", "vnp_PayDate=20261399250000"),
        ("&vnp_ResponseCode=00", ""),
        ("&vnp_TransactionStatus=00", ""),
    ];
    for (from, to) in malformed {
        let query = vnpay_resigned(&ipn, from, to, creds::VNPAY_SECRET);
        let why = format!("{from} -> {to}");
        refused(
            &app,
            "vnpay",
            &Callback::get(query),
            Refusal::Malformed,
            &invoices,
            &why,
        )
        .await;
    }
    assert_refused_counts(&app, "vnpay", 0, malformed.len() as u64).await;

    // An absurdly long query string: refused, never a 5xx. Beyond 64 KiB
    // reqwest will not build the URI, so those go over a raw connection.
    for length in [8 * 1024, 30 * 1024, 60 * 1024, 200 * 1024, 2 * 1024 * 1024] {
        let target = format!("/callbacks/vnpay?{ipn}&vnp_Junk={}", "A".repeat(length));
        let (status, text) = raw_get(&app, &target).await;
        let head = &text[..text.len().min(200)];
        if length < 64 * 1024 {
            // Read and refused by VNPay's own rule: an unsigned parameter.
            assert_eq!(status, Some(200), "{length}: {head}");
            let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
            let body: Value = serde_json::from_str(body).expect("a JSON answer");
            assert_eq!(body["RspCode"], "97", "{length}: {body}");
        } else {
            // Refused by the HTTP server before lephi sees it.
            assert!(
                matches!(status, Some(400..=499)),
                "{length}: {status:?} {head}"
            );
        }
        assert!(
            !SECRETS.iter().any(|s| text.contains(s)),
            "{length}: {text}"
        );
        assert_nothing_stored(&app, &invoices, &format!("a {length}-byte query")).await;
    }
    assert_refused_counts(&app, "vnpay", 3, malformed.len() as u64).await;
    // The app still serves callbacks after all that.
    assert_eq!(
        vnpay_code(&send(&app, "vnpay", &Callback::get(&ipn)).await),
        "00"
    );
    assert_paid_once(&app, &id, "vnpay", "14422574").await;
}

/// Sends `GET target` over a raw HTTP/1.1 connection (reqwest builds no
/// URI over 64 KiB) and returns the answer's status (`None` if the server
/// closed the connection without answering) and text.
async fn raw_get(app: &PaymentsApp, target: &str) -> (Option<u16>, String) {
    let host = app.app.address.trim_start_matches("http://");
    let head = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    raw_exchange(app, head.into_bytes()).await
}

/// Writes `request` to the app over a raw connection and reads the answer
/// until the server closes it.
async fn raw_exchange(app: &PaymentsApp, request: Vec<u8>) -> (Option<u16>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.app.address.trim_start_matches("http://");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host)
            .await
            .expect("the app accepts connections");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(&request).await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), exchange)
        .await
        .expect("the app answers or closes the connection");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    (status, text)
}

// ---------------------------------------------------------------------------
// MoMo: `POST /callbacks/momo` with a JSON IPN signed with HMAC-SHA256.

/// A successful MoMo IPN for `order_id`, without its signature, and the
/// text MoMo signs for it, as DOMAIN.md spells it out.
pub(crate) fn momo_ipn(order_id: &str, trans_id: i64) -> (Value, String) {
    let response_time = now_ms();
    let signed = format!(
        "accessKey={access}&amount=650000&extraData=&message=Thành công.&orderId={order_id}\
         &orderInfo=Thanh toan le phi&orderType=momo_wallet&partnerCode={partner}&payType=qr\
         &requestId=REQ{order_id}&responseTime={response_time}&resultCode=0&transId={trans_id}",
        access = creds::MOMO_ACCESS,
        partner = creds::MOMO_PARTNER,
    );
    let body = json!({
        "partnerCode": creds::MOMO_PARTNER,
        "orderId": order_id,
        "requestId": format!("REQ{order_id}"),
        "amount": 650000,
        "orderInfo": "Thanh toan le phi",
        "orderType": "momo_wallet",
        "transId": trans_id,
        "resultCode": 0,
        "message": "Thành công.",
        "payType": "qr",
        "responseTime": response_time,
        "extraData": "",
    });
    (body, signed)
}

/// `body` with the signature of `signed` under `key`.
fn momo_signed(body: &Value, signed: &str, key: &str) -> Callback {
    let mut body = body.clone();
    body["signature"] = json!(hmac_sha256_hex(key, signed));
    Callback::post(body.to_string(), &[])
}

async fn a_signed_momo_ipn_pays_the_invoice_and_its_replay_is_acknowledged(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "momo").await;
    let (body, signed) = momo_ipn(&order_ref, 4088878653);
    let ipn = momo_signed(&body, &signed, creds::MOMO_SECRET);
    assert_acknowledged("momo", &send(&app, "momo", &ipn).await, "first");
    assert_paid_once(&app, &id, "momo", "4088878653").await;
    for _ in 0..2 {
        assert_acknowledged("momo", &send(&app, "momo", &ipn).await, "replay");
    }
    assert_paid_once(&app, &id, "momo", "4088878653").await;
    assert_refused_counts(&app, "momo", 0, 0).await;
}

async fn a_momo_ipn_with_any_signed_field_changed_is_401_and_stores_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "momo").await;
    let (other_id, other_ref) = invoice_with_attempt(&app, "HS-2", "momo").await;
    let invoices = [id.as_str(), other_id.as_str()];
    let (body, signed) = momo_ipn(&order_ref, 4088878653);
    let good = momo_signed(&body, &signed, creds::MOMO_SECRET);
    let good_body: Value = serde_json::from_slice(&good.body).unwrap();
    let tampered = [
        ("amount", json!(65000)),
        ("extraData", json!("e30=")),
        ("message", json!("Success")),
        ("orderId", json!(other_ref)),
        ("orderInfo", json!("Thanh toan le phi khac")),
        ("orderType", json!("other")),
        ("partnerCode", json!("MOMOOTHER")),
        ("payType", json!("napas")),
        ("requestId", json!("R2")),
        (
            "responseTime",
            json!(good_body["responseTime"].as_i64().unwrap() + 1),
        ),
        ("resultCode", json!(1006)),
        ("transId", json!(4088878654u64)),
    ];
    for (field, value) in &tampered {
        let mut changed = good_body.clone();
        changed[*field] = value.clone();
        let ipn = Callback::post(changed.to_string(), &[]);
        refused(&app, "momo", &ipn, Refusal::BadSignature, &invoices, field).await;
    }
    // The accessKey is signed but not sent: signed with another one.
    let other_access = replaced(&signed, creds::MOMO_ACCESS, "F8BBA842ECF86");
    let ipn = momo_signed(&body, &other_access, creds::MOMO_SECRET);
    refused(
        &app,
        "momo",
        &ipn,
        Refusal::BadSignature,
        &invoices,
        "accessKey",
    )
    .await;
    assert_refused_counts(&app, "momo", tampered.len() as u64 + 1, 0).await;
    assert_acknowledged("momo", &send(&app, "momo", &good).await, "untouched");
    assert_paid_once(&app, &id, "momo", "4088878653").await;
}

async fn a_momo_ipn_with_a_wrong_or_missing_signature_is_401(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "momo").await;
    let invoices = [id.as_str()];
    let (body, signed) = momo_ipn(&order_ref, 4088878653);
    let good = hmac_sha256_hex(creds::MOMO_SECRET, &signed);
    let with_signature = |signature: Value| {
        let mut body = body.clone();
        body["signature"] = signature;
        Callback::post(body.to_string(), &[])
    };
    let cases = [
        (momo_signed(&body, &signed, OTHER_KEY), "another secret"),
        (
            momo_signed(&body, &signed, creds::ZALOPAY_KEY2),
            "another provider's secret",
        ),
        (
            with_signature(json!(hmac_sha512_hex(creds::MOMO_SECRET, &signed))),
            "HMAC-SHA512",
        ),
        (Callback::post(body.to_string(), &[]), "no signature"),
        (with_signature(json!("")), "an empty signature"),
        (with_signature(json!("zz")), "a signature that is not hex"),
        (with_signature(json!("t=abc,v1=zz")), "a garbled signature"),
        (with_signature(json!(&good[..32])), "a truncated signature"),
        (with_signature(json!(null)), "a null signature"),
        (with_signature(json!(12)), "a number for the signature"),
        (with_signature(json!([good])), "a list for the signature"),
        (Callback::post("{}", &[]), "an empty object"),
    ];
    for (ipn, why) in &cases {
        refused(&app, "momo", ipn, Refusal::BadSignature, &invoices, why).await;
    }
    assert_refused_counts(&app, "momo", cases.len() as u64, 0).await;
    let upper = with_signature(json!(good.to_ascii_uppercase()));
    assert_acknowledged("momo", &send(&app, "momo", &upper).await, "upper-case hex");
    assert_paid_once(&app, &id, "momo", "4088878653").await;
}

async fn malformed_momo_ipns_are_400_and_store_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, order_ref) = invoice_with_attempt(&app, "HS-1", "momo").await;
    let invoices = [id.as_str()];
    let (body, signed) = momo_ipn(&order_ref, 4088878653);
    let good = momo_signed(&body, &signed, creds::MOMO_SECRET);
    let good_body: Value = serde_json::from_slice(&good.body).unwrap();
    let mut cases: Vec<(Callback, String)> = Vec::new();
    for raw in [
        "not json",
        "",
        "[]",
        "[1,2]",
        "\"text\"",
        "42",
        "null",
        "{\"signature\":",
    ] {
        cases.push((Callback::post(raw, &[]), format!("body {raw:?}")));
    }
    // Signed as sent, but values lephi cannot take.
    let amount = "amount=650000&";
    let response_time = format!("&responseTime={}&", body["responseTime"]);
    let order_id = format!("&orderId={order_ref}&");
    let resigned = [
        ("amount", json!("12.5"), amount, "amount=12.5&"),
        ("amount", json!(12.5), amount, "amount=12.5&"),
        ("amount", json!(-5), amount, "amount=-5&"),
        ("amount", json!(0), amount, "amount=0&"),
        ("amount", json!("650.000"), amount, "amount=650.000&"),
        ("amount", json!("abc"), amount, "amount=abc&"),
        (
            "transId",
            json!("abc"),
            "&transId=4088878653",
            "&transId=abc",
        ),
        ("transId", json!(-1), "&transId=4088878653", "&transId=-1"),
        ("resultCode", json!("ok"), "resultCode=0&", "resultCode=ok&"),
        (
            "responseTime",
            json!("soon"),
            response_time.as_str(),
            "&responseTime=soon&",
        ),
        (
            "responseTime",
            json!(99_999_999_999_999_999i64),
            response_time.as_str(),
            "&responseTime=99999999999999999&",
        ),
        ("orderId", json!(""), order_id.as_str(), "&orderId=&"),
        (
            "partnerCode",
            json!("MOMOOTHER"),
            "partnerCode=MOMOLEPHI2026",
            "partnerCode=MOMOOTHER",
        ),
    ];
    for (field, value, from, to) in resigned {
        let mut changed = body.clone();
        changed[field] = value.clone();
        let text = replaced(&signed, from, to);
        cases.push((
            momo_signed(&changed, &text, creds::MOMO_SECRET),
            format!("{field}={value}"),
        ));
    }
    // Fields missing or of the wrong type, still carrying a signature.
    for field in ["payType", "amount", "orderId", "transId", "message"] {
        let mut missing = good_body.clone();
        missing.as_object_mut().unwrap().remove(field);
        cases.push((
            Callback::post(missing.to_string(), &[]),
            format!("no {field}"),
        ));
    }
    for (field, value) in [
        ("orderInfo", json!(["x"])),
        ("amount", json!(true)),
        ("amount", json!(null)),
        ("extraData", json!({ "a": 1 })),
    ] {
        let mut wrong = good_body.clone();
        wrong[field] = value.clone();
        cases.push((
            Callback::post(wrong.to_string(), &[]),
            format!("{field}: {value}"),
        ));
    }
    for (ipn, why) in &cases {
        refused(&app, "momo", ipn, Refusal::Malformed, &invoices, why).await;
    }
    assert_refused_counts(&app, "momo", 0, cases.len() as u64).await;

    // 1e30 as a JSON number: refused whether lephi writes it back as MoMo
    // would have signed it or not.
    let mut huge = body.clone();
    huge["amount"] = json!(1e30);
    for written in [
        "amount=1e30&",
        "amount=1e+30&",
        "amount=1000000000000000000000000000000&",
    ] {
        let ipn = momo_signed(
            &huge,
            &replaced(&signed, amount, written),
            creds::MOMO_SECRET,
        );
        let answer = send(&app, "momo", &ipn).await;
        assert!(
            [400, 401].contains(&answer.status),
            "{written}: {}",
            answer.text
        );
        assert_no_secret(&answer, written);
        assert_nothing_stored(&app, &invoices, written).await;
    }
    assert_acknowledged("momo", &send(&app, "momo", &good).await, "untouched");
    assert_paid_once(&app, &id, "momo", "4088878653").await;
}

// ---------------------------------------------------------------------------
// ZaloPay: `POST /callbacks/zalopay` with `{data, mac, type}`, where
// mac = HMAC-SHA256(key2, data).

/// The `data` string of a ZaloPay callback, in ZaloPay's own key order.
pub(crate) fn zalopay_data(app_trans_id: &str, zp_trans_id: i64, server_time: i64) -> String {
    format!(
        r#"{{"app_id":{app_id},"app_trans_id":"{app_trans_id}","app_time":1764318600000,"app_user":"lephi","amount":650000,"embed_data":"{{\"redirecturl\":\"https://lephi.example.vn/return\"}}","item":"[]","zp_trans_id":{zp_trans_id},"server_time":{server_time},"channel":38,"merchant_user_id":"SAt9SA_OzvjhSnGxPNI-Ag","user_fee_amount":0,"discount_amount":0}}"#,
        app_id = creds::ZALOPAY_APP,
    )
}

fn zalopay_callback(data: &str, mac: &str) -> Callback {
    Callback::post(
        json!({ "data": data, "mac": mac, "type": 1 }).to_string(),
        &[],
    )
}

fn zalopay_signed(data: &str, key: &str) -> Callback {
    zalopay_callback(data, &hmac_sha256_hex(key, data))
}

async fn a_signed_zalopay_callback_pays_the_invoice_and_its_replay_is_acknowledged(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, app_trans_id) = invoice_with_attempt(&app, "HS-1", "zalopay").await;
    let data = zalopay_data(&app_trans_id, 261128000000123, now_ms());
    let callback = zalopay_signed(&data, creds::ZALOPAY_KEY2);
    assert_acknowledged("zalopay", &send(&app, "zalopay", &callback).await, "first");
    assert_paid_once(&app, &id, "zalopay", "261128000000123").await;
    for _ in 0..2 {
        assert_acknowledged("zalopay", &send(&app, "zalopay", &callback).await, "replay");
    }
    assert_paid_once(&app, &id, "zalopay", "261128000000123").await;
    assert_refused_counts(&app, "zalopay", 0, 0).await;
}

async fn a_zalopay_callback_with_any_signed_field_changed_is_refused_and_stores_nothing(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, app_trans_id) = invoice_with_attempt(&app, "HS-1", "zalopay").await;
    let (other_id, other_trans_id) = invoice_with_attempt(&app, "HS-2", "zalopay").await;
    let invoices = [id.as_str(), other_id.as_str()];
    let server_time = now_ms();
    let data = zalopay_data(&app_trans_id, 261128000000123, server_time);
    let mac = hmac_sha256_hex(creds::ZALOPAY_KEY2, &data);
    let server_time_field = format!("\"server_time\":{server_time}");
    let later = format!("\"server_time\":{}", server_time + 1);
    let tampered = [
        (
            format!("\"app_id\":{}", creds::ZALOPAY_APP),
            "\"app_id\":2554".to_owned(),
        ),
        (app_trans_id.clone(), other_trans_id.clone()),
        (
            "\"app_time\":1764318600000".to_owned(),
            "\"app_time\":1764318600001".to_owned(),
        ),
        (
            "\"app_user\":\"lephi\"".to_owned(),
            "\"app_user\":\"lephj\"".to_owned(),
        ),
        (
            "\"amount\":650000".to_owned(),
            "\"amount\":65000".to_owned(),
        ),
        ("redirecturl".to_owned(), "redirectUrl".to_owned()),
        ("\"item\":\"[]\"".to_owned(), "\"item\":\"[{}]\"".to_owned()),
        (
            "\"zp_trans_id\":261128000000123".to_owned(),
            "\"zp_trans_id\":261128000000124".to_owned(),
        ),
        (server_time_field, later),
        ("\"channel\":38".to_owned(), "\"channel\":39".to_owned()),
        (
            "SAt9SA_OzvjhSnGxPNI-Ag".to_owned(),
            "SAt9SA_OzvjhSnGxPNI-Ah".to_owned(),
        ),
        (
            "\"user_fee_amount\":0".to_owned(),
            "\"user_fee_amount\":1".to_owned(),
        ),
        (
            "\"discount_amount\":0".to_owned(),
            "\"discount_amount\":1".to_owned(),
        ),
        // The same JSON spaced differently is other signed text.
        (",\"amount\"".to_owned(), ", \"amount\"".to_owned()),
    ];
    for (from, to) in &tampered {
        let callback = zalopay_callback(&replaced(&data, from, to), &mac);
        let why = format!("{from} -> {to}");
        refused(
            &app,
            "zalopay",
            &callback,
            Refusal::BadSignature,
            &invoices,
            &why,
        )
        .await;
    }
    assert_refused_counts(&app, "zalopay", tampered.len() as u64, 0).await;
    let good = zalopay_callback(&data, &mac);
    assert_acknowledged("zalopay", &send(&app, "zalopay", &good).await, "untouched");
    assert_paid_once(&app, &id, "zalopay", "261128000000123").await;
}

async fn a_zalopay_callback_with_a_wrong_or_missing_mac_is_refused(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, app_trans_id) = invoice_with_attempt(&app, "HS-1", "zalopay").await;
    let invoices = [id.as_str()];
    let data = zalopay_data(&app_trans_id, 261128000000123, now_ms());
    let good = hmac_sha256_hex(creds::ZALOPAY_KEY2, &data);
    let raw = |body: Value| Callback::post(body.to_string(), &[]);
    let cases = [
        (
            zalopay_signed(&data, creds::ZALOPAY_KEY1),
            "key1 instead of key2",
        ),
        (zalopay_signed(&data, OTHER_KEY), "another key"),
        (
            zalopay_callback(&data, &hmac_sha512_hex(creds::ZALOPAY_KEY2, &data)),
            "HMAC-SHA512",
        ),
        (raw(json!({ "data": data, "type": 1 })), "no mac"),
        (zalopay_callback(&data, ""), "an empty mac"),
        (zalopay_callback(&data, "zz"), "a mac that is not hex"),
        (zalopay_callback(&data, "t=abc,v1=zz"), "a garbled mac"),
        (zalopay_callback(&data, &good[..32]), "a truncated mac"),
        (
            raw(json!({ "data": data, "mac": null, "type": 1 })),
            "a null mac",
        ),
        (
            raw(json!({ "data": data, "mac": 7, "type": 1 })),
            "a number for the mac",
        ),
        (raw(json!({})), "an empty object"),
    ];
    for (callback, why) in &cases {
        refused(
            &app,
            "zalopay",
            callback,
            Refusal::BadSignature,
            &invoices,
            why,
        )
        .await;
    }
    assert_refused_counts(&app, "zalopay", cases.len() as u64, 0).await;
    let upper = zalopay_callback(&data, &good.to_ascii_uppercase());
    assert_acknowledged(
        "zalopay",
        &send(&app, "zalopay", &upper).await,
        "upper-case hex",
    );
    assert_paid_once(&app, &id, "zalopay", "261128000000123").await;
}

async fn malformed_zalopay_callbacks_are_refused_and_store_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let (id, app_trans_id) = invoice_with_attempt(&app, "HS-1", "zalopay").await;
    let invoices = [id.as_str()];
    let data = zalopay_data(&app_trans_id, 261128000000123, now_ms());
    let mac = hmac_sha256_hex(creds::ZALOPAY_KEY2, &data);
    let mut cases: Vec<(Callback, String)> = Vec::new();
    for raw in ["not json", "", "[]", "[1,2]", "\"text\"", "42", "{\"mac\":"] {
        cases.push((Callback::post(raw, &[]), format!("body {raw:?}")));
    }
    let data_value: Value = serde_json::from_str(&data).unwrap();
    for (body, why) in [
        (json!({ "mac": mac, "type": 1 }), "no data"),
        (
            json!({ "data": data_value, "mac": mac, "type": 1 }),
            "data as an object",
        ),
        (
            json!({ "data": 5, "mac": mac, "type": 1 }),
            "data as a number",
        ),
        (json!({ "data": data, "mac": mac, "type": 2 }), "type 2"),
        (
            json!({ "data": data, "mac": mac, "type": "x" }),
            "type not a number",
        ),
    ] {
        cases.push((Callback::post(body.to_string(), &[]), why.to_owned()));
    }
    // Signed data lephi cannot take.
    let signed_bad = [
        ("\"amount\":650000", "\"amount\":\"12.5\""),
        ("\"amount\":650000", "\"amount\":12.5"),
        ("\"amount\":650000", "\"amount\":1e30"),
        ("\"amount\":650000", "\"amount\":-5"),
        ("\"amount\":650000", "\"amount\":0"),
        ("\"amount\":650000", "\"amount\":\"abc\""),
        (
            "\"amount\":650000",
            "\"amount\":100000000000000000000000000000",
        ),
        ("\"amount\":650000,", ""),
        ("\"zp_trans_id\":261128000000123", "\"zp_trans_id\":\"abc\""),
        ("\"zp_trans_id\":261128000000123", "\"zp_trans_id\":-1"),
        ("\"zp_trans_id\":261128000000123,", ""),
        ("\"app_id\":2553", "\"app_id\":2554"),
        ("\"app_id\":2553,", ""),
        (
            "\"server_time\":",
            "\"server_time\":99999999999999999,\"x\":",
        ),
        ("\"app_trans_id\":\"", "\"app_trans_id\":\"\",\"x\":\""),
    ];
    for (from, to) in signed_bad {
        let changed = replaced(&data, from, to);
        cases.push((
            zalopay_signed(&changed, creds::ZALOPAY_KEY2),
            format!("{from} -> {to}"),
        ));
    }
    for text in ["[]", "not json", "", "{}", "null"] {
        cases.push((
            zalopay_signed(text, creds::ZALOPAY_KEY2),
            format!("data {text:?}"),
        ));
    }
    for (callback, why) in &cases {
        refused(
            &app,
            "zalopay",
            callback,
            Refusal::Malformed,
            &invoices,
            why,
        )
        .await;
    }
    assert_refused_counts(&app, "zalopay", 0, cases.len() as u64).await;
    assert_acknowledged(
        "zalopay",
        &send(&app, "zalopay", &zalopay_callback(&data, &mac)).await,
        "untouched",
    );
    assert_paid_once(&app, &id, "zalopay", "261128000000123").await;
}

// ---------------------------------------------------------------------------
// SePay: `POST /callbacks/sepay`, by API key (`Authorization: Apikey ...`)
// or HMAC-SHA256 over `{unix seconds}.{raw body}` in `X-SePay-Signature`
// with the time in `X-SePay-Timestamp`.

fn with_api_key(body: impl Into<Vec<u8>>) -> Callback {
    Callback::post(body, &[("Authorization", &sepay_auth())])
}

/// A SePay notification exactly as sent, byte for byte.
pub(crate) fn sepay_raw(id: i64, content: &str) -> String {
    format!(
        r#"{{"id":{id},"gateway":"Vietcombank","transactionDate":"2026-11-28 14:30:00","accountNumber":"{BANK_ACCOUNT}","code":null,"content":"{content}","transferType":"in","transferAmount":650000,"accumulated":19077000,"subAccount":null,"referenceCode":"MBVCB.3278907687","description":"BankAPINotify {content}"}}"#
    )
}

/// `body` with an HMAC-SHA256 signature over `{t}.{body}` under `secret`.
fn sepay_signed(body: &str, t: &str, secret: &str) -> Callback {
    let signature = hmac_sha256_hex(secret, &format!("{t}.{body}"));
    Callback::post(
        body,
        &[("X-SePay-Timestamp", t), ("X-SePay-Signature", &signature)],
    )
}

async fn a_sepay_transfer_with_the_api_key_pays_the_invoice_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let transfer = with_api_key(sepay_transfer(
        92704,
        OWED,
        &format!("NGUYEN VAN A chuyen tien {code}"),
    ));
    assert_acknowledged("sepay", &send(&app, "sepay", &transfer).await, "first");
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
    for _ in 0..2 {
        assert_acknowledged("sepay", &send(&app, "sepay", &transfer).await, "replay");
    }
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
    assert_refused_counts(&app, "sepay", 0, 0).await;
}

async fn a_sepay_transfer_with_a_wrong_or_missing_api_key_is_401(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let invoices = [id.as_str()];
    let body = sepay_transfer(92704, OWED, &format!("chuyen tien {code}"));
    let key = creds::SEPAY_API_KEY;
    let authorizations = [
        format!("Apikey {OTHER_KEY}"),
        format!("Apikey {}", creds::SEPAY_HMAC),
        format!("Apikey {key}x"),
        format!("Apikey {}", &key[..key.len() - 1]),
        format!("Bearer {key}"),
        key.to_owned(),
        "Apikey".to_owned(),
        "Apikey ".to_owned(),
        String::new(),
        "t=abc,v1=zz".to_owned(),
        "Apikey khóa bí mật".to_owned(),
    ];
    let mut cases: Vec<(Callback, String)> = authorizations
        .iter()
        .map(|auth| {
            (
                Callback::post(body.clone(), &[("Authorization", auth)]),
                format!("{auth:?}"),
            )
        })
        .collect();
    cases.push((
        Callback::post(body.clone(), &[]),
        "no Authorization".to_owned(),
    ));
    cases.push((
        Callback::post(body.clone(), &[("X-Api-Key", key)]),
        "the key in another header".to_owned(),
    ));
    for (transfer, why) in &cases {
        refused(
            &app,
            "sepay",
            transfer,
            Refusal::BadSignature,
            &invoices,
            why,
        )
        .await;
    }
    assert_refused_counts(&app, "sepay", cases.len() as u64, 0).await;
    let good = with_api_key(body);
    assert_acknowledged("sepay", &send(&app, "sepay", &good).await, "the right key");
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
}

async fn a_signed_sepay_transfer_pays_the_invoice_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let body = sepay_raw(92704, &format!("NGUYEN VAN A chuyen tien {code}"));
    let transfer = sepay_signed(&body, &now_secs().to_string(), creds::SEPAY_HMAC);
    assert_acknowledged("sepay", &send(&app, "sepay", &transfer).await, "first");
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
    for _ in 0..2 {
        assert_acknowledged("sepay", &send(&app, "sepay", &transfer).await, "replay");
    }
    // The same transfer by API key is the same payment.
    let by_key = Callback::post(body.clone(), &[("Authorization", &sepay_auth())]);
    assert_acknowledged("sepay", &send(&app, "sepay", &by_key).await, "by key");
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
    assert_refused_counts(&app, "sepay", 0, 0).await;
}

async fn a_signed_sepay_transfer_with_any_byte_changed_is_401_and_stores_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let (other_id, other_code) = open_invoice(&app, "HS-2").await;
    let invoices = [id.as_str(), other_id.as_str()];
    let body = sepay_raw(92704, &format!("NGUYEN VAN A chuyen tien {code}"));
    let now = now_secs();
    let t = now.to_string();
    let signature = hmac_sha256_hex(creds::SEPAY_HMAC, &format!("{t}.{body}"));
    let headers = |t: &str| {
        [
            ("X-SePay-Timestamp", t.to_owned()),
            ("X-SePay-Signature", signature.clone()),
        ]
    };
    let account = format!("\"accountNumber\":\"{BANK_ACCOUNT}\"");
    let content = format!("\"content\":\"NGUYEN VAN A chuyen tien {code}\"");
    let other_content = format!("\"content\":\"NGUYEN VAN A chuyen tien {other_code}\"");
    let tampered = [
        ("\"id\":92704", "\"id\":92705"),
        ("\"gateway\":\"Vietcombank\"", "\"gateway\":\"Techcombank\""),
        (
            "\"transactionDate\":\"2026-11-28 14:30:00\"",
            "\"transactionDate\":\"2026-11-28 14:30:01\"",
        ),
        (account.as_str(), "\"accountNumber\":\"0011001234568\""),
        ("\"code\":null", "\"code\":\"LP\""),
        (content.as_str(), other_content.as_str()),
        ("\"transferType\":\"in\"", "\"transferType\":\"out\""),
        ("\"transferAmount\":650000", "\"transferAmount\":6500000"),
        ("\"accumulated\":19077000", "\"accumulated\":19077001"),
        ("\"subAccount\":null", "\"subAccount\":\"VA1\""),
        (
            "\"referenceCode\":\"MBVCB.3278907687\"",
            "\"referenceCode\":\"MBVCB.3278907688\"",
        ),
        (
            "\"description\":\"BankAPINotify",
            "\"description\":\"BankAPINotifx",
        ),
        // The same JSON spaced differently, or with a field added.
        ("{\"id\"", "{ \"id\""),
        ("{\"id\"", "{\"extra\":1,\"id\""),
    ];
    for (from, to) in tampered {
        let mut transfer = Callback::post(replaced(&body, from, to), &[]);
        transfer.headers.extend(headers(&t));
        let why = format!("{from} -> {to}");
        refused(
            &app,
            "sepay",
            &transfer,
            Refusal::BadSignature,
            &invoices,
            &why,
        )
        .await;
    }
    // The signed time changed, the signature kept.
    let mut moved = Callback::post(body.clone(), &[]);
    moved.headers.extend(headers(&(now - 1).to_string()));
    refused(
        &app,
        "sepay",
        &moved,
        Refusal::BadSignature,
        &invoices,
        "the time",
    )
    .await;
    assert_refused_counts(&app, "sepay", tampered.len() as u64 + 1, 0).await;
    let mut good = Callback::post(body, &[]);
    good.headers.extend(headers(&t));
    assert_acknowledged("sepay", &send(&app, "sepay", &good).await, "untouched");
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
}

async fn a_sepay_transfer_with_a_wrong_missing_garbled_or_stale_signature_is_401(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let invoices = [id.as_str()];
    let body = sepay_raw(92704, &format!("chuyen tien {code}"));
    let now = now_secs();
    let t = now.to_string();
    let good = hmac_sha256_hex(creds::SEPAY_HMAC, &format!("{t}.{body}"));
    let headers = |pairs: &[(&'static str, &str)]| Callback::post(body.clone(), pairs);
    let cases = [
        (sepay_signed(&body, &t, OTHER_KEY), "another secret"),
        (
            sepay_signed(&body, &t, creds::SEPAY_API_KEY),
            "the API key as the secret",
        ),
        (
            headers(&[
                ("X-SePay-Timestamp", &t),
                (
                    "X-SePay-Signature",
                    &hmac_sha512_hex(creds::SEPAY_HMAC, &format!("{t}.{body}")),
                ),
            ]),
            "HMAC-SHA512",
        ),
        (
            headers(&[
                ("X-SePay-Timestamp", &t),
                (
                    "X-SePay-Signature",
                    &hmac_sha256_hex(creds::SEPAY_HMAC, &body),
                ),
            ]),
            "the body alone signed",
        ),
        (headers(&[("X-SePay-Timestamp", &t)]), "no signature header"),
        (
            headers(&[("X-SePay-Signature", &good)]),
            "no timestamp header",
        ),
        (headers(&[]), "no headers at all"),
        (
            headers(&[("X-SePay-Timestamp", &t), ("X-SePay-Signature", "")]),
            "an empty signature",
        ),
        (
            headers(&[("X-SePay-Timestamp", ""), ("X-SePay-Signature", &good)]),
            "an empty timestamp",
        ),
        (
            headers(&[
                ("X-SePay-Timestamp", &t),
                ("X-SePay-Signature", "t=abc,v1=zz"),
            ]),
            "a garbled signature",
        ),
        (
            headers(&[
                ("X-SePay-Timestamp", &t),
                ("X-SePay-Signature", &format!("t={t},v1={good}")),
            ]),
            "the signature in another provider's format",
        ),
        (
            headers(&[("X-SePay-Timestamp", &t), ("X-SePay-Signature", "zz")]),
            "a signature that is not hex",
        ),
        (
            headers(&[
                ("X-SePay-Timestamp", &t),
                ("X-SePay-Signature", &good[..32]),
            ]),
            "a truncated signature",
        ),
        (
            headers(&[("X-SePay-Timestamp", "abc"), ("X-SePay-Signature", &good)]),
            "a timestamp that is not a number",
        ),
        (
            sepay_signed(&body, "abc", creds::SEPAY_HMAC),
            "a signed timestamp that is not a number",
        ),
        (
            sepay_signed(&body, &(now - 301).to_string(), creds::SEPAY_HMAC),
            "5 minutes and 1 second old",
        ),
        (
            sepay_signed(&body, &(now - 3600).to_string(), creds::SEPAY_HMAC),
            "an hour old",
        ),
        (
            sepay_signed(&body, &(now + 330).to_string(), creds::SEPAY_HMAC),
            "5 and a half minutes ahead (clocks may drift while the cases run)",
        ),
        (
            sepay_signed(&body, &(now * 1000).to_string(), creds::SEPAY_HMAC),
            "milliseconds",
        ),
        (sepay_signed(&body, "0", creds::SEPAY_HMAC), "the epoch"),
        (
            sepay_signed(&body, "-1", creds::SEPAY_HMAC),
            "before the epoch",
        ),
        (
            sepay_signed(&body, "99999999999999999999", creds::SEPAY_HMAC),
            "beyond 64 bits",
        ),
    ];
    for (transfer, why) in &cases {
        refused(
            &app,
            "sepay",
            transfer,
            Refusal::BadSignature,
            &invoices,
            why,
        )
        .await;
    }
    assert_refused_counts(&app, "sepay", cases.len() as u64, 0).await;
    // Four minutes of skew is within bounds.
    let recent = sepay_signed(&body, &(now_secs() - 240).to_string(), creds::SEPAY_HMAC);
    assert_acknowledged(
        "sepay",
        &send(&app, "sepay", &recent).await,
        "4 minutes old",
    );
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
}

async fn sepay_accepts_only_the_methods_it_is_configured_with(backend: Backend) {
    // Only the HMAC secret: the right API key opens nothing.
    let app = spawn_payments_app_with(backend, |s| {
        if let Some(sepay) = s.providers.sepay.as_mut() {
            sepay.api_key = None;
        }
    })
    .await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let body = sepay_raw(92704, &format!("chuyen tien {code}"));
    let by_key = with_api_key(body.clone());
    refused(
        &app,
        "sepay",
        &by_key,
        Refusal::BadSignature,
        &[&id],
        "no API key configured",
    )
    .await;
    let by_signature = sepay_signed(&body, &now_secs().to_string(), creds::SEPAY_HMAC);
    assert_acknowledged("sepay", &send(&app, "sepay", &by_signature).await, "signed");
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;

    // Only the API key: a valid signature opens nothing.
    let app = spawn_payments_app_with(backend, |s| {
        if let Some(sepay) = s.providers.sepay.as_mut() {
            sepay.hmac_secret = None;
        }
    })
    .await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let body = sepay_raw(92704, &format!("chuyen tien {code}"));
    let by_signature = sepay_signed(&body, &now_secs().to_string(), creds::SEPAY_HMAC);
    refused(
        &app,
        "sepay",
        &by_signature,
        Refusal::BadSignature,
        &[&id],
        "no secret configured",
    )
    .await;
    assert_refused_counts(&app, "sepay", 1, 0).await;
    assert_acknowledged(
        "sepay",
        &send(&app, "sepay", &with_api_key(body)).await,
        "by key",
    );
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
}

async fn malformed_sepay_transfers_are_400_and_store_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let invoices = [id.as_str()];
    let body = sepay_raw(92704, &format!("chuyen tien {code}"));
    let mut bodies: Vec<(String, String)> = [
        "not json", "", "[]", "[1,2]", "\"text\"", "42", "null", "{}", "{\"id\":",
    ]
    .iter()
    .map(|raw| ((*raw).to_owned(), format!("body {raw:?}")))
    .collect();
    for (from, to) in [
        ("\"transferAmount\":650000", "\"transferAmount\":\"12.5\""),
        ("\"transferAmount\":650000", "\"transferAmount\":12.5"),
        ("\"transferAmount\":650000", "\"transferAmount\":1e30"),
        (
            "\"transferAmount\":650000",
            "\"transferAmount\":100000000000000000000000000000",
        ),
        ("\"transferAmount\":650000", "\"transferAmount\":-5"),
        ("\"transferAmount\":650000", "\"transferAmount\":0"),
        (
            "\"transferAmount\":650000",
            "\"transferAmount\":\"650.000\"",
        ),
        ("\"transferAmount\":650000", "\"transferAmount\":null"),
        ("\"transferAmount\":650000,", ""),
        ("\"id\":92704", "\"id\":\"abc\""),
        ("\"id\":92704", "\"id\":-1"),
        ("\"id\":92704", "\"id\":0"),
        ("\"id\":92704,", ""),
        ("\"transferType\":\"in\"", "\"transferType\":\"sideways\""),
        ("\"transferType\":\"in\"", "\"transferType\":1"),
        ("\"transferType\":\"in\",", ""),
        (
            "\"transactionDate\":\"2026-11-28 14:30:00\"",
            "\"transactionDate\":\"yesterday\"",
        ),
        ("\"transactionDate\":\"2026-11-28 14:30:00\",", ""),
        ("\"content\":\"", "\"content\":5,\"x\":\""),
        ("\"code\":null", "\"code\":5"),
    ] {
        bodies.push((replaced(&body, from, to), format!("{from} -> {to}")));
    }
    let account = format!("\"accountNumber\":\"{BANK_ACCOUNT}\",");
    bodies.push((
        replaced(&body, &account, "\"accountNumber\":\"\","),
        "an empty account".to_owned(),
    ));
    bodies.push((replaced(&body, &account, ""), "no account".to_owned()));
    // Refused whichever way the sender authenticates.
    let t = now_secs().to_string();
    let mut sent = 0;
    for (raw, why) in &bodies {
        refused(
            &app,
            "sepay",
            &with_api_key(raw.clone()),
            Refusal::Malformed,
            &invoices,
            why,
        )
        .await;
        let signed = sepay_signed(raw, &t, creds::SEPAY_HMAC);
        refused(&app, "sepay", &signed, Refusal::Malformed, &invoices, why).await;
        sent += 2;
    }
    assert_refused_counts(&app, "sepay", 0, sent).await;
    assert_acknowledged(
        "sepay",
        &send(&app, "sepay", &with_api_key(body)).await,
        "untouched",
    );
    assert_paid_once(&app, &id, "bank_transfer", "sepay-92704").await;
}

// ---------------------------------------------------------------------------
// Casso: `POST /callbacks/casso` with `X-Casso-Signature: t=<unix ms>,v1=<hex>`,
// v1 = HMAC-SHA512(checksum key, t + "." + the body compact, keys sorted).

/// A Casso notification as Casso may send it: its own key order, spaces
/// and new lines.
pub(crate) fn casso_body(id: i64, description: &str) -> String {
    format!(
        r#"{{
  "error": 0,
  "data": {{
    "id": {id},
    "reference": "FT26332601234",
    "description": "{description}",
    "amount": 650000,
    "runningBalance": 25000000,
    "transactionDateTime": "2026-11-28 15:30:12",
    "accountNumber": "{BANK_ACCOUNT}",
    "bankName": "VietcomBank",
    "counterAccountName": "NGUYEN VAN A",
    "counterAccountNumber": null,
    "tags": [ {{ "name": "le phi", "id": 1 }} ]
  }}
}}"#
    )
}

/// The same notification compact with its keys sorted at every level,
/// written out by hand: the text Casso signs.
pub(crate) fn casso_canonical(id: i64, description: &str) -> String {
    format!(
        r#"{{"data":{{"accountNumber":"{BANK_ACCOUNT}","amount":650000,"bankName":"VietcomBank","counterAccountName":"NGUYEN VAN A","counterAccountNumber":null,"description":"{description}","id":{id},"reference":"FT26332601234","runningBalance":25000000,"tags":[{{"id":1,"name":"le phi"}}],"transactionDateTime":"2026-11-28 15:30:12"}},"error":0}}"#
    )
}

pub(crate) fn casso_signature(t: i64, canonical: &str, key: &str) -> String {
    format!(
        "t={t},v1={}",
        hmac_sha512_hex(key, &format!("{t}.{canonical}"))
    )
}

fn casso_signed(body: &str, canonical: &str, key: &str) -> Callback {
    let header = casso_signature(now_ms(), canonical, key);
    Callback::post(body, &[("X-Casso-Signature", &header)])
}

async fn a_casso_transfer_signed_over_its_canonical_form_pays_the_invoice_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let description = format!("Nộp lệ phí {code}");
    let body = casso_body(2150003, &description);
    let canonical = casso_canonical(2150003, &description);
    assert_ne!(body, canonical);
    let transfer = casso_signed(&body, &canonical, creds::CASSO_KEY);
    assert_acknowledged("casso", &send(&app, "casso", &transfer).await, "first");
    assert_paid_once(&app, &id, "bank_transfer", "casso-2150003").await;
    for _ in 0..2 {
        assert_acknowledged("casso", &send(&app, "casso", &transfer).await, "replay");
    }
    // The canonical text itself, and the body in yet another order, are
    // the same notification under the same signature.
    let header = casso_signature(now_ms(), &canonical, creds::CASSO_KEY);
    let reordered: Value = serde_json::from_str(&body).unwrap();
    for sent in [
        canonical.clone(),
        serde_json::to_string_pretty(&reordered).unwrap(),
    ] {
        let same = Callback::post(sent, &[("X-Casso-Signature", &header)]);
        assert_acknowledged("casso", &send(&app, "casso", &same).await, "same content");
    }
    assert_paid_once(&app, &id, "bank_transfer", "casso-2150003").await;
    assert_refused_counts(&app, "casso", 0, 0).await;
}

async fn cassos_test_webhook_is_acknowledged_and_records_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    // Casso's sample transaction, sent when its webhook is set up.
    let body =
        casso_body(0, "Giao dich thu nghiem").replace("FT26332601234", "MA_GIAO_DICH_THU_NGHIEM");
    let canonical = casso_canonical(0, "Giao dich thu nghiem")
        .replace("FT26332601234", "MA_GIAO_DICH_THU_NGHIEM");
    let test = casso_signed(&body, &canonical, creds::CASSO_KEY);
    let answer = send(&app, "casso", &test).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
    // Unsigned, it is refused as any notification is.
    let forged = casso_signed(&body, &canonical, "another key");
    assert_eq!(send(&app, "casso", &forged).await.status, 401);
}

async fn a_casso_transfer_with_any_signed_field_changed_is_401_and_stores_nothing(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let (other_id, other_code) = open_invoice(&app, "HS-2").await;
    let invoices = [id.as_str(), other_id.as_str()];
    let description = format!("NGUYEN VAN A chuyen tien {code}");
    let body = casso_body(2150003, &description);
    let t = now_ms();
    let header = casso_signature(t, &casso_canonical(2150003, &description), creds::CASSO_KEY);
    let account = format!("\"accountNumber\": \"{BANK_ACCOUNT}\"");
    let tampered = [
        ("\"error\": 0", "\"error\": 1".to_owned()),
        ("\"id\": 2150003", "\"id\": 2150004".to_owned()),
        ("FT26332601234", "FT26332601235".to_owned()),
        (code.as_str(), other_code.clone()),
        ("\"amount\": 650000", "\"amount\": 6500000".to_owned()),
        (
            "\"runningBalance\": 25000000",
            "\"runningBalance\": 25000001".to_owned(),
        ),
        ("15:30:12", "15:30:13".to_owned()),
        (
            account.as_str(),
            "\"accountNumber\": \"0011001234568\"".to_owned(),
        ),
        ("VietcomBank", "Techcombank".to_owned()),
        ("\"NGUYEN VAN A\"", "\"NGUYEN VAN B\"".to_owned()),
        (
            "\"counterAccountNumber\": null",
            "\"counterAccountNumber\": \"1\"".to_owned(),
        ),
        ("\"id\": 1 }", "\"id\": 2 }".to_owned()),
        ("\"le phi\"", "\"phi\"".to_owned()),
        // A field added or removed.
        (
            "\"bankName\"",
            "\"bankAbbreviation\": \"VCB\", \"bankName\"".to_owned(),
        ),
        ("\"counterAccountNumber\": null,", String::new()),
    ];
    for (from, to) in &tampered {
        let transfer = Callback::post(replaced(&body, from, to), &[("X-Casso-Signature", &header)]);
        let why = format!("{from} -> {to}");
        refused(
            &app,
            "casso",
            &transfer,
            Refusal::BadSignature,
            &invoices,
            &why,
        )
        .await;
    }
    // The signed time changed, the signature kept.
    let moved = replaced(&header, &format!("t={t}"), &format!("t={}", t + 1));
    let transfer = Callback::post(body.clone(), &[("X-Casso-Signature", &moved)]);
    refused(
        &app,
        "casso",
        &transfer,
        Refusal::BadSignature,
        &invoices,
        "the time",
    )
    .await;
    assert_refused_counts(&app, "casso", tampered.len() as u64 + 1, 0).await;
    let good = Callback::post(body, &[("X-Casso-Signature", &header)]);
    assert_acknowledged("casso", &send(&app, "casso", &good).await, "untouched");
    assert_paid_once(&app, &id, "bank_transfer", "casso-2150003").await;
}

async fn a_casso_transfer_with_a_wrong_missing_garbled_or_stale_signature_is_401(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let invoices = [id.as_str()];
    let description = format!("chuyen tien {code}");
    let body = casso_body(2150003, &description);
    let canonical = casso_canonical(2150003, &description);
    let now = now_ms();
    let good = casso_signature(now, &canonical, creds::CASSO_KEY);
    let v1 = good.split_once(",v1=").unwrap().1.to_owned();
    let with_header = |value: &str| Callback::post(body.clone(), &[("X-Casso-Signature", value)]);
    let signed_at = |t: i64| with_header(&casso_signature(t, &canonical, creds::CASSO_KEY));
    let sha256 = hmac_sha256_hex(creds::CASSO_KEY, &format!("{now}.{canonical}"));
    let cases = [
        (
            with_header(&casso_signature(now, &canonical, OTHER_KEY)),
            "another key",
        ),
        (
            with_header(&casso_signature(now, &canonical, creds::SEPAY_HMAC)),
            "another provider's key",
        ),
        (
            with_header(&casso_signature(now, &body, creds::CASSO_KEY)),
            "the body as sent signed",
        ),
        (with_header(&format!("t={now},v1={sha256}")), "HMAC-SHA256"),
        (Callback::post(body.clone(), &[]), "no header"),
        (
            Callback::post(body.clone(), &[("X-Casso-Signature-V2", &good)]),
            "another header",
        ),
        (with_header(""), "an empty header"),
        (with_header("t=abc,v1=zz"), "a garbled header"),
        (
            with_header(&format!("t={now},v1=chữ ký")),
            "a header that is not ASCII",
        ),
        (with_header(&format!("t={now}")), "no v1"),
        (with_header(&format!("v1={v1}")), "no t"),
        (with_header(&format!("t={now},v1=")), "an empty v1"),
        (
            with_header(&format!("t={now},v1=zz")),
            "a v1 that is not hex",
        ),
        (
            with_header(&format!("t=abc,v1={v1}")),
            "a t that is not a number",
        ),
        (with_header(&v1), "the bare signature"),
        (
            with_header(&format!("t={now},v1={}", &v1[..64])),
            "a truncated v1",
        ),
        (
            with_header(&format!("t={now};v1={v1}")),
            "the wrong separator",
        ),
        (signed_at(now - 301_000), "5 minutes and 1 second old"),
        (signed_at(now - 86_400_000), "a day old"),
        (
            signed_at(now + 330_000),
            "5 and a half minutes ahead (clocks may drift while the cases run)",
        ),
        (signed_at(now / 1000), "seconds instead of milliseconds"),
        (signed_at(0), "the epoch"),
        (signed_at(-1), "before the epoch"),
        (signed_at(i64::MAX), "the end of time"),
    ];
    for (transfer, why) in &cases {
        refused(
            &app,
            "casso",
            transfer,
            Refusal::BadSignature,
            &invoices,
            why,
        )
        .await;
    }
    assert_refused_counts(&app, "casso", cases.len() as u64, 0).await;
    // Four minutes of skew is within bounds.
    let recent = signed_at(now_ms() - 240_000);
    assert_acknowledged(
        "casso",
        &send(&app, "casso", &recent).await,
        "4 minutes old",
    );
    assert_paid_once(&app, &id, "bank_transfer", "casso-2150003").await;
}

async fn malformed_casso_transfers_are_400_and_store_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, code) = open_invoice(&app, "HS-1").await;
    let invoices = [id.as_str()];
    let description = format!("chuyen tien {code}");
    let canonical = casso_canonical(2150003, &description);
    // Each body is sent exactly as its canonical text, signed correctly.
    let mut bodies: Vec<(String, String)> = [
        "[]",
        "[1,2]",
        "\"text\"",
        "42",
        "null",
        "{}",
        r#"{"error":0}"#,
        r#"{"data":{},"error":0}"#,
        r#"{"data":[],"error":0}"#,
        r#"{"data":"x","error":0}"#,
    ]
    .iter()
    .map(|raw| ((*raw).to_owned(), format!("body {raw}")))
    .collect();
    for (from, to) in [
        ("\"error\":0", "\"error\":1"),
        ("\"error\":0", "\"error\":\"x\""),
        (",\"error\":0", ""),
        ("\"amount\":650000", "\"amount\":\"12.5\""),
        ("\"amount\":650000", "\"amount\":12.5"),
        ("\"amount\":650000", "\"amount\":\"abc\""),
        ("\"amount\":650000", "\"amount\":null"),
        ("\"amount\":650000,", ""),
        ("\"id\":2150003", "\"id\":\"abc\""),
        ("\"id\":2150003", "\"id\":-3"),
        ("\"id\":2150003,", ""),
        ("2026-11-28 15:30:12", "yesterday"),
    ] {
        bodies.push((replaced(&canonical, from, to), format!("{from} -> {to}")));
    }
    let described = format!("\"description\":\"{description}\"");
    bodies.push((
        replaced(&canonical, &described, "\"description\":5"),
        "a number for the description".to_owned(),
    ));
    let account = format!("\"accountNumber\":\"{BANK_ACCOUNT}\"");
    bodies.push((
        replaced(&canonical, &account, "\"accountNumber\":\"\""),
        "an empty account".to_owned(),
    ));
    let data_list = format!(
        r#"{{"data":[{}],"error":0}}"#,
        &canonical[8..canonical.len() - 11]
    );
    bodies.push((data_list, "data as a list".to_owned()));
    for (raw, why) in &bodies {
        let transfer = casso_signed(raw, raw, creds::CASSO_KEY);
        refused(&app, "casso", &transfer, Refusal::Malformed, &invoices, why).await;
    }
    // Not JSON at all: nothing can be signed, so it is malformed.
    for raw in ["not json", "", "{\"data\":"] {
        let transfer = casso_signed(raw, raw, creds::CASSO_KEY);
        refused(&app, "casso", &transfer, Refusal::Malformed, &invoices, raw).await;
    }
    assert_refused_counts(&app, "casso", 0, bodies.len() as u64 + 3).await;

    // 1e30 and a number beyond 64 bits: refused whichever way lephi
    // writes them back.
    for (sent, written) in [
        ("1e30", "1e30"),
        ("1e30", "1e+30"),
        ("100000000000000000000000000000", "1e+29"),
        ("100000000000000000000000000000", "1e29"),
    ] {
        let raw = replaced(
            &canonical,
            "\"amount\":650000",
            &format!("\"amount\":{sent}"),
        );
        let signed = replaced(
            &canonical,
            "\"amount\":650000",
            &format!("\"amount\":{written}"),
        );
        let answer = send(
            &app,
            "casso",
            &casso_signed(&raw, &signed, creds::CASSO_KEY),
        )
        .await;
        assert!(
            [400, 401].contains(&answer.status),
            "{sent}: {}",
            answer.text
        );
        assert_no_secret(&answer, sent);
        assert_nothing_stored(&app, &invoices, sent).await;
    }
    // A negative amount is Casso's word for money going out: acknowledged
    // so that Casso stops sending it, and nothing recorded.
    let outgoing = replaced(&canonical, "\"amount\":650000", "\"amount\":-5");
    let answer = send(
        &app,
        "casso",
        &casso_signed(&outgoing, &outgoing, creds::CASSO_KEY),
    )
    .await;
    assert_acknowledged("casso", &answer, "amount -5");
    assert_nothing_stored(&app, &invoices, "amount -5").await;

    let good = casso_signed(&canonical, &canonical, creds::CASSO_KEY);
    assert_acknowledged("casso", &send(&app, "casso", &good).await, "untouched");
    assert_paid_once(&app, &id, "bank_transfer", "casso-2150003").await;
}

// ---------------------------------------------------------------------------
// Every provider.

async fn oversized_callbacks_are_413_before_any_work(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (id, _) = open_invoice(&app, "HS-1").await;
    let invoices = [id.as_str()];
    let limit = 64 * 1024;
    for provider in PROVIDERS {
        for size in [limit + 1, 65 * 1024 + 1, 1024 * 1024] {
            let url = format!("{}/callbacks/{provider}", app.app.address);
            let request = if provider == "vnpay" {
                app.app.client.get(url)
            } else {
                app.app.client.post(url)
            };
            let mut body = vec![b' '; size];
            body[0] = b'{';
            let answer = request
                .header(JSON.0, JSON.1)
                .header("Authorization", sepay_auth())
                .body(body)
                .send()
                .await;
            let why = format!("{provider}, {size} bytes");
            match answer {
                Ok(answer) => assert_eq!(answer.status().as_u16(), 413, "{why}"),
                // Refused before the body was read: the server may close
                // the connection while a large body is still being sent.
                Err(err) => assert!(size > 65 * 1024 + 1, "{why}: {err}"),
            }
            assert_nothing_stored(&app, &invoices, &why).await;
        }
        // Sent in chunks, with no length declared up front.
        let host = app.app.address.trim_start_matches("http://");
        let method = if provider == "vnpay" { "GET" } else { "POST" };
        let mut request = format!(
            "{method} /callbacks/{provider} HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n"
        )
        .into_bytes();
        let mut left = 65 * 1024 + 1;
        while left > 0 {
            let chunk = left.min(8 * 1024);
            request.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
            request.extend(std::iter::repeat_n(b' ', chunk));
            request.extend_from_slice(b"\r\n");
            left -= chunk;
        }
        request.extend_from_slice(b"0\r\n\r\n");
        let (status, text) = raw_exchange(&app, request).await;
        let head = &text[..text.len().min(200)];
        assert_eq!(status, Some(413), "{provider}, chunked: {head}");
        assert_nothing_stored(&app, &invoices, "chunked").await;
        // Exactly at the limit the body is read, then refused for what it is.
        let at_limit = Callback::post(vec![b' '; limit], &[]);
        let answer = send(&app, provider, &at_limit).await;
        assert_ne!(answer.status, 413, "{provider}: {}", answer.text);
        assert!(answer.status < 500, "{provider}: {}", answer.text);
        // Nothing oversized was counted as refused by a provider: only the
        // one at the limit reached it.
        let counted = refused_count(&app, provider, "bad_signature").await
            + refused_count(&app, provider, "malformed").await;
        assert_eq!(counted, 1, "{provider}");
    }
    assert_nothing_stored(&app, &invoices, "after all").await;
}

/// A callback `provider` would accept (signed with the test credentials).
fn valid_callback(provider: &str, code: &str) -> Callback {
    match provider {
        "vnpay" => Callback::get(vnpay_ipn("261128NOSUCHORDER", OWED, "1", "00")),
        "momo" => {
            let (body, signed) = momo_ipn("261128NOSUCHORDER", 1);
            momo_signed(&body, &signed, creds::MOMO_SECRET)
        }
        "zalopay" => zalopay_signed(
            &zalopay_data("261128_NOSUCHORDER", 1, now_ms()),
            creds::ZALOPAY_KEY2,
        ),
        "sepay" => with_api_key(sepay_transfer(1, OWED, &format!("chuyen tien {code}"))),
        "casso" => {
            let canonical = casso_canonical(1, &format!("chuyen tien {code}"));
            casso_signed(&canonical, &canonical, creds::CASSO_KEY)
        }
        other => panic!("no such provider: {other}"),
    }
}

async fn an_unconfigured_provider_has_no_callback(backend: Backend) {
    for provider in PROVIDERS {
        let app = spawn_payments_app_with(backend, |s| match provider {
            "vnpay" => s.providers.vnpay = None,
            "momo" => s.providers.momo = None,
            "zalopay" => s.providers.zalopay = None,
            "sepay" => s.providers.sepay = None,
            _ => s.providers.casso = None,
        })
        .await;
        let (id, code) = open_invoice(&app, "HS-1").await;
        let answer = send(&app, provider, &valid_callback(provider, &code)).await;
        assert_eq!(answer.status, 404, "{provider}: {}", answer.text);
        assert_eq!(answer.code(), "route_not_found", "{provider}");
        assert_no_secret(&answer, provider);
        assert_nothing_stored(&app, &[&id], provider).await;
        assert_refused_counts(&app, provider, 0, 0).await;
        // The other providers are still served.
        for other in PROVIDERS.iter().filter(|p| **p != provider) {
            let answer = send(&app, other, &Callback::post("{}", &[])).await;
            assert_refused(other, &answer, Refusal::BadSignature, other);
        }
    }
}

/// A provider's secret rotated without downtime: with the old one kept as
/// `previous_*`, what the provider signs under either is accepted while it
/// moves over, and anything else is still refused.
async fn during_a_rotation_callbacks_under_either_secret_are_accepted_and_no_other(
    backend: Backend,
) {
    const NEW_VNPAY: &str = "VNPAYROTATEDSECRET0123456789ABCD";
    let app = spawn_payments_app_with(backend, |settings| {
        let vnpay = settings.providers.vnpay.as_mut().unwrap();
        vnpay.previous_hash_secret = Some(vnpay.hash_secret.clone());
        vnpay.hash_secret = NEW_VNPAY.to_owned().into();
        let sepay = settings.providers.sepay.as_mut().unwrap();
        sepay.previous_api_key = sepay.api_key.clone();
        sepay.api_key = Some("sepay-rotated-key".to_owned().into());
    })
    .await;
    // The provider still signs with the old secret: accepted.
    let (id, order_ref) = invoice_with_attempt(&app, "HS-ROT-1", "vnpay").await;
    let old = vnpay_ipn(&order_ref, 650_000, "50001", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &old, vec![], &[]).await),
        "00"
    );
    assert_eq!(app.invoice_now(&id).await["status"], "paid");
    // The provider has moved to the new one: accepted too.
    let (id, order_ref) = invoice_with_attempt(&app, "HS-ROT-2", "vnpay").await;
    let old = vnpay_ipn(&order_ref, 650_000, "50002", "00");
    let signed = old.split("&vnp_SecureHash=").next().unwrap();
    let new = format!(
        "{signed}&vnp_SecureHash={}",
        hmac_sha512_hex(NEW_VNPAY, signed)
    );
    assert_eq!(
        rsp_code(&app.callback("vnpay", &new, vec![], &[]).await),
        "00"
    );
    assert_eq!(app.invoice_now(&id).await["status"], "paid");
    // Any other secret is refused, and nothing is recorded.
    let (id, order_ref) = invoice_with_attempt(&app, "HS-ROT-3", "vnpay").await;
    let old = vnpay_ipn(&order_ref, 650_000, "50003", "00");
    let signed = old.split("&vnp_SecureHash=").next().unwrap();
    let forged = format!(
        "{signed}&vnp_SecureHash={}",
        hmac_sha512_hex("some other secret", signed)
    );
    assert_eq!(
        rsp_code(&app.callback("vnpay", &forged, vec![], &[]).await),
        "97"
    );
    assert_eq!(app.invoice_now(&id).await["status"], "open");

    // SePay's API key: the old and the new one, and no other.
    let (_, code) = open_invoice(&app, "HS-ROT-4").await;
    let note = format!("CHUYEN TIEN {code}");
    for (n, (key, status)) in [
        (sepay_auth(), 200),
        ("Apikey sepay-rotated-key".to_owned(), 200),
        ("Apikey sepay-some-other-key".to_owned(), 401),
    ]
    .into_iter()
    .enumerate()
    {
        let answer = app
            .callback(
                "sepay",
                "",
                sepay_transfer(880_000 + n as i64, 100_000, &note),
                &[
                    ("Authorization", key.as_str()),
                    ("Content-Type", "application/json"),
                ],
            )
            .await;
        assert_eq!(answer.status, status, "{key}: {}", answer.text);
    }
    assert_eq!(app.app.count("payments").await, 4);
}
