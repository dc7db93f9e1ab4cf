//! The pending-payment janitor: attempts whose callback never came are
//! asked about through the providers' status APIs, faked here in their
//! wire formats (VNPay's signed `querydr`, MoMo's query, ZaloPay's order
//! status), each fake checking the signature of what it is sent. Passes
//! run on demand, with time shifted by passing `now`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use lephi::config::Settings;
use lephi::domain::Timestamp;
use lephi::janitor::{Janitor, Pass};
use lephi::store::Store;
use lephi::telemetry::Metrics;
use secrecy::SecretString;
use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::callbacks::gateways_accept;
use crate::helpers::{
    Backend, PaymentsApp, creds, hmac_sha256_hex, hmac_sha512_hex, spawn_payments_app_with,
    with_providers,
};
use crate::on_both_backends;
use crate::payments::{rsp_code, sepay_auth, sepay_transfer, vnpay_ipn};

on_both_backends!(
    the_janitor_recovers_a_vnpay_payment_whose_ipn_never_came,
    the_janitor_recovers_a_momo_payment_whose_ipn_never_came,
    the_janitor_recovers_a_zalopay_payment_whose_callback_never_came,
    a_callback_arriving_while_the_janitor_asks_is_recorded_once,
    a_failed_status_fails_the_attempt_and_leaves_the_invoice_open,
    a_pending_status_is_checked_again_later_with_nothing_recorded,
    an_erroring_provider_records_nothing_and_is_asked_again,
    past_the_give_up_limit_an_officer_is_asked_once_and_asking_stops,
    an_abandoned_vnpay_checkout_fails_without_troubling_an_officer,
    concurrent_passes_ask_about_each_attempt_once,
    only_due_gateway_attempts_are_asked_about,
    the_background_janitor_recovers_payments_on_its_own,
    attempts_older_than_the_give_up_age_when_first_seen_are_left_alone,
    the_background_janitor_asks_the_sandbox_when_it_is_on,
);

const VNPAY_QUERY: &str = "/merchant_webapi/api/transaction";
const MOMO_QUERY: &str = "/v2/gateway/api/query";
const ZALOPAY_QUERY: &str = "/v2/query";
const OWED: i64 = 650_000;
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// What a fake provider says of every order it is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Paid,
    Pending,
    Failed,
}

/// The app with the background janitor off, so that only the passes a
/// test runs ask the providers; MoMo and ZaloPay accept every payment.
async fn spawn(backend: Backend) -> PaymentsApp {
    let app = spawn_payments_app_with(backend, |s| s.janitor.enabled = false).await;
    gateways_accept(&app).await;
    app
}

/// A janitor on its own connections to the app's database, configured as
/// the app is (default janitor settings).
async fn janitor(app: &PaymentsApp) -> Janitor {
    let mut settings = Settings::default();
    with_providers(&mut settings, &app.provider_api.uri());
    let store = Store::connect(&lephi::config::DatabaseSettings {
        url: SecretString::from(app.app.database_url.clone()),
        max_connections: 4,
        ..Default::default()
    })
    .await
    .expect("a connection for the janitor");
    Janitor::new(
        store,
        &settings,
        &settings.providers,
        Arc::new(Metrics::new().unwrap()),
    )
    .expect("a janitor")
}

/// Now, shifted by `minutes`.
fn in_minutes(minutes: i64) -> Timestamp {
    Timestamp::now()
        .plus(time::Duration::minutes(minutes))
        .unwrap()
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// A provider transaction number, the same each time for one order.
fn txn_no(order_ref: &str) -> i64 {
    let mut hasher = DefaultHasher::new();
    order_ref.hash(&mut hasher);
    i64::try_from(hasher.finish() % 1_000_000_000).unwrap() + 1_000_000_000
}

/// `yyyyMMddHHmmss` in Vietnam time, as VNPay writes times.
fn vnp_now() -> String {
    let now = OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// VNPay answering `querydr` as DOMAIN.md says: the request's hash is
/// checked (`97` when it does not match), and the answer is signed with
/// `secret` over its fields joined with `|` in VNPay's order.
fn vnpay_answers(status: Status, secret: &'static str) -> impl Fn(&Request) -> ResponseTemplate {
    move |request: &Request| {
        let sent: Value = request.body_json().unwrap_or_default();
        let text = |key: &str| sent[key].as_str().unwrap_or_default().to_owned();
        let signed = [
            "vnp_RequestId",
            "vnp_Version",
            "vnp_Command",
            "vnp_TmnCode",
            "vnp_TxnRef",
            "vnp_TransactionDate",
            "vnp_CreateDate",
            "vnp_IpAddr",
            "vnp_OrderInfo",
        ]
        .map(text)
        .join("|");
        if text("vnp_SecureHash") != hmac_sha512_hex(creds::VNPAY_SECRET, &signed)
            || text("vnp_Command") != "querydr"
            || text("vnp_TmnCode") != creds::VNPAY_TMN
        {
            return ResponseTemplate::new(200).set_body_json(json!({
                "vnp_ResponseId": "RS1", "vnp_Command": "querydr", "vnp_ResponseCode": "97",
                "vnp_Message": "Invalid Checksum",
            }));
        }
        let txn_ref = text("vnp_TxnRef");
        let transaction_status = match status {
            Status::Paid => "00",
            Status::Pending => "01",
            Status::Failed => "02",
        };
        let fields = [
            ("vnp_ResponseId", format!("RS{}", text("vnp_RequestId"))),
            ("vnp_Command", "querydr".to_owned()),
            ("vnp_ResponseCode", "00".to_owned()),
            ("vnp_Message", "QueryDR Success".to_owned()),
            ("vnp_TmnCode", creds::VNPAY_TMN.to_owned()),
            ("vnp_TxnRef", txn_ref.clone()),
            ("vnp_Amount", (OWED * 100).to_string()),
            ("vnp_BankCode", "NCB".to_owned()),
            ("vnp_PayDate", vnp_now()),
            ("vnp_TransactionNo", txn_no(&txn_ref).to_string()),
            ("vnp_TransactionType", "01".to_owned()),
            ("vnp_TransactionStatus", transaction_status.to_owned()),
            ("vnp_OrderInfo", text("vnp_OrderInfo")),
            ("vnp_PromotionCode", String::new()),
            ("vnp_PromotionAmount", String::new()),
        ];
        let signed: Vec<&str> = fields.iter().map(|(_, v)| v.as_str()).collect();
        let mut answer: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        answer.insert(
            "vnp_SecureHash".into(),
            json!(hmac_sha512_hex(secret, &signed.join("|"))),
        );
        ResponseTemplate::new(200).set_body_json(Value::Object(answer))
    }
}

/// MoMo answering its status query: the request's signature is checked
/// (result code 11, access denied, when it does not match).
fn momo_answers(status: Status) -> impl Fn(&Request) -> ResponseTemplate {
    move |request: &Request| {
        let sent: Value = request.body_json().unwrap_or_default();
        let text = |key: &str| sent[key].as_str().unwrap_or_default().to_owned();
        let order_id = text("orderId");
        let request_id = text("requestId");
        let signed = format!(
            "accessKey={}&orderId={order_id}&partnerCode={}&requestId={request_id}",
            creds::MOMO_ACCESS,
            creds::MOMO_PARTNER
        );
        let (result_code, message, trans_id) =
            if text("signature") != hmac_sha256_hex(creds::MOMO_SECRET, &signed) {
                (11, "Truy cập bị từ chối.", 0)
            } else {
                match status {
                    Status::Paid => (0, "Thành công.", txn_no(&order_id)),
                    Status::Pending => (
                        1000,
                        "Giao dịch đã được khởi tạo, chờ người dùng xác nhận thanh toán.",
                        0,
                    ),
                    Status::Failed => (
                        1006,
                        "Giao dịch thất bại do người dùng đã từ chối xác nhận thanh toán.",
                        0,
                    ),
                }
            };
        ResponseTemplate::new(200).set_body_json(json!({
            "partnerCode": creds::MOMO_PARTNER,
            "orderId": order_id,
            "requestId": request_id,
            "extraData": "",
            "amount": OWED,
            "transId": trans_id,
            "payType": "qr",
            "resultCode": result_code,
            "refundTrans": [],
            "message": message,
            "responseTime": now_ms(),
            "lastUpdated": now_ms(),
        }))
    }
}

/// ZaloPay answering its order status query (a form signed with key1 over
/// `app_id|app_trans_id|key1`; `-1` when the mac does not match).
fn zalopay_answers(status: Status) -> impl Fn(&Request) -> ResponseTemplate {
    move |request: &Request| {
        let form: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let app_trans_id = field("app_trans_id");
        let signed = format!("{}|{app_trans_id}|{}", field("app_id"), creds::ZALOPAY_KEY1);
        if field("app_id") != creds::ZALOPAY_APP
            || field("mac") != hmac_sha256_hex(creds::ZALOPAY_KEY1, &signed)
        {
            return ResponseTemplate::new(200).set_body_json(json!({
                "return_code": 2, "return_message": "Giao dịch thất bại",
                "sub_return_code": -402, "sub_return_message": "Mac không hợp lệ",
            }));
        }
        let answer = match status {
            Status::Paid => json!({
                "return_code": 1, "return_message": "Giao dịch thành công",
                "sub_return_code": 1, "sub_return_message": "Giao dịch thành công",
                "is_processing": false, "amount": OWED, "zp_trans_id": txn_no(&app_trans_id),
                "server_time": now_ms(), "discount_amount": 0,
            }),
            Status::Pending => json!({
                "return_code": 3, "return_message": "Giao dịch chưa thực hiện hoặc đang xử lý",
                "sub_return_code": 3, "sub_return_message": "",
                "is_processing": true, "amount": 0, "zp_trans_id": 0,
                "server_time": now_ms(), "discount_amount": 0,
            }),
            Status::Failed => json!({
                "return_code": 2, "return_message": "Giao dịch thất bại",
                "is_processing": false, "amount": 0, "zp_trans_id": 0,
                "server_time": now_ms(), "discount_amount": 0,
            }),
        };
        ResponseTemplate::new(200).set_body_json(answer)
    }
}

/// Answers status queries at `at` with `answer` until the test resets the
/// fake provider.
async fn answer_queries(app: &PaymentsApp, at: &str, answer: impl wiremock::Respond + 'static) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(answer)
        .mount(&app.provider_api)
        .await;
}

/// Every provider answers `status` to every query.
pub(crate) async fn providers_answer(app: &PaymentsApp, status: Status) {
    answer_queries(app, VNPAY_QUERY, vnpay_answers(status, creds::VNPAY_SECRET)).await;
    answer_queries(app, MOMO_QUERY, momo_answers(status)).await;
    answer_queries(app, ZALOPAY_QUERY, zalopay_answers(status)).await;
}

/// Forgets the fake provider's answers and the requests it received, and
/// makes MoMo and ZaloPay accept payments again.
async fn reset(app: &PaymentsApp) {
    app.provider_api.reset().await;
    gateways_accept(app).await;
}

/// The status queries the fake provider received at `at`, as the order
/// each names.
async fn queried(app: &PaymentsApp, at: &str) -> Vec<String> {
    app.provider_api
        .received_requests()
        .await
        .expect("the fake provider records requests")
        .into_iter()
        .filter(|r| r.url.path() == at)
        .map(|r| match at {
            VNPAY_QUERY => r.body_json::<Value>().unwrap()["vnp_TxnRef"]
                .as_str()
                .unwrap()
                .to_owned(),
            MOMO_QUERY => r.body_json::<Value>().unwrap()["orderId"]
                .as_str()
                .unwrap()
                .to_owned(),
            _ => form_urlencoded::parse(&r.body)
                .find(|(k, _)| k == "app_trans_id")
                .map(|(_, v)| v.into_owned())
                .unwrap(),
        })
        .collect()
}

/// Every status query received, on any provider.
async fn all_queries(app: &PaymentsApp) -> Vec<String> {
    let mut all = queried(app, VNPAY_QUERY).await;
    all.extend(queried(app, MOMO_QUERY).await);
    all.extend(queried(app, ZALOPAY_QUERY).await);
    all
}

/// An open invoice with a pending attempt on `channel`: the invoice's id,
/// and the attempt as the API answered.
pub(crate) async fn pending_attempt(
    app: &PaymentsApp,
    dossier: &str,
    channel: &str,
) -> (String, Value) {
    let invoice = app.invoice(dossier).await;
    let id = invoice["id"].as_str().unwrap().to_owned();
    let attempt = app.attempt(&id, channel).await;
    assert_eq!(attempt.status, 201, "{}", attempt.text);
    (id, attempt.json())
}

fn order_ref(attempt: &Value) -> String {
    attempt["order_ref"].as_str().unwrap().to_owned()
}

/// An attempt as stored: its status, provider code, checks and next check.
#[derive(Debug)]
struct Stored {
    status: String,
    provider_code: Option<String>,
    checks: i64,
    next_check_at: Option<String>,
}

async fn stored(app: &PaymentsApp, attempt: &Value) -> Stored {
    let pool = app.app.raw_pool().await;
    let (status, provider_code, checks, next_check_at): (
        String,
        Option<String>,
        i64,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT status, provider_code, checks, next_check_at FROM payment_attempts WHERE id = $1",
    )
    .bind(attempt["id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .expect("the attempt is stored");
    pool.close().await;
    Stored {
        status,
        provider_code,
        checks,
        next_check_at,
    }
}

/// The payments of invoice `id` as stored: (channel, provider_txn_id,
/// source).
async fn payments_of(app: &PaymentsApp, id: &str) -> Vec<(String, String, String)> {
    let pool = app.app.raw_pool().await;
    let rows = sqlx::query_as(
        "SELECT channel, provider_txn_id, source FROM payments WHERE invoice_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

/// How many outbox events of `event_type` exist.
async fn events_of(app: &PaymentsApp, event_type: &str) -> i64 {
    let pool = app.app.raw_pool().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_events WHERE type = $1")
        .bind(event_type)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// Checks that invoice `id` was paid once, by the janitor, on `channel`.
async fn assert_paid_by_janitor(app: &PaymentsApp, id: &str, channel: &str, order: &str) {
    let invoice = app.invoice_now(id).await;
    assert_eq!(invoice["status"], "paid", "{invoice}");
    assert_eq!(invoice["amount_paid"], OWED);
    assert_eq!(
        payments_of(app, id).await,
        vec![(
            channel.to_owned(),
            txn_no(order).to_string(),
            "status_query".to_owned()
        )]
    );
}

fn pass(checked: usize, paid: usize, failed: usize, later: usize, given_up: usize) -> Pass {
    Pass {
        checked,
        paid,
        failed,
        later,
        given_up,
    }
}

fn momo_ipn(order_id: &str, trans_id: i64) -> Vec<u8> {
    let response_time = now_ms();
    let signed = format!(
        "accessKey={access}&amount={OWED}&extraData=&message=Thành công.&orderId={order_id}\
         &orderInfo=Thanh toan phi ho so&orderType=momo_wallet&partnerCode={partner}&payType=qr\
         &requestId={order_id}&responseTime={response_time}&resultCode=0&transId={trans_id}",
        access = creds::MOMO_ACCESS,
        partner = creds::MOMO_PARTNER,
    );
    json!({
        "partnerCode": creds::MOMO_PARTNER, "orderId": order_id, "requestId": order_id,
        "amount": OWED, "orderInfo": "Thanh toan phi ho so", "orderType": "momo_wallet",
        "transId": trans_id, "resultCode": 0, "message": "Thành công.", "payType": "qr",
        "responseTime": response_time, "extraData": "",
        "signature": hmac_sha256_hex(creds::MOMO_SECRET, &signed),
    })
    .to_string()
    .into_bytes()
}

fn zalopay_callback(app_trans_id: &str, zp_trans_id: i64) -> Vec<u8> {
    let data = format!(
        r#"{{"app_id":{},"app_trans_id":"{app_trans_id}","app_time":{},"app_user":"lephi","amount":{OWED},"embed_data":"{{}}","item":"[]","zp_trans_id":{zp_trans_id},"server_time":{},"channel":38,"merchant_user_id":"SAt9SA","user_fee_amount":0,"discount_amount":0}}"#,
        creds::ZALOPAY_APP,
        now_ms(),
        now_ms(),
    );
    json!({ "data": data, "mac": hmac_sha256_hex(creds::ZALOPAY_KEY2, &data), "type": 1 })
        .to_string()
        .into_bytes()
}

/// An attempt on `channel` whose callback never came, found paid by the
/// janitor's first check: the app, the invoice's id, the attempt and its
/// order reference.
async fn recovered(backend: Backend, channel: &str) -> (PaymentsApp, String, Value, String) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let (id, attempt) = pending_attempt(&app, "HS-1", channel).await;
    let order = order_ref(&attempt);
    providers_answer(&app, Status::Paid).await;
    assert_eq!(
        janitor.run_once(in_minutes(11)).await.unwrap(),
        pass(1, 1, 0, 0, 0)
    );
    assert_eq!(all_queries(&app).await, vec![order.clone()]);
    assert_paid_by_janitor(&app, &id, channel, &order).await;
    assert_eq!(stored(&app, &attempt).await.status, "succeeded");
    assert_eq!(events_of(&app, "payment.received").await, 1);
    assert_eq!(events_of(&app, "invoice.paid").await, 1);
    (app, id, attempt, order)
}

async fn the_janitor_recovers_a_vnpay_payment_whose_ipn_never_came(backend: Backend) {
    let (app, id, attempt, order) = recovered(backend, "vnpay").await;
    // The query named the payment URL's creation time, as VNPay wants.
    let requests = app.provider_api.received_requests().await.unwrap();
    let sent: Value = requests
        .iter()
        .find(|r| r.url.path() == VNPAY_QUERY)
        .unwrap()
        .body_json()
        .unwrap();
    let pay_url = attempt["pay_url"].as_str().unwrap();
    let create_date = form_urlencoded::parse(pay_url.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "vnp_CreateDate")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(sent["vnp_TransactionDate"], create_date.as_str());
    assert_eq!(sent["vnp_Version"], "2.1.0");
    assert!(!sent.to_string().contains(creds::VNPAY_SECRET));

    // The IPN comes late: already confirmed, nothing new.
    let ipn = vnpay_ipn(&order, OWED, &txn_no(&order).to_string(), "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "02"
    );
    assert_paid_by_janitor(&app, &id, "vnpay", &order).await;
    assert_eq!(events_of(&app, "payment.received").await, 1);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
    // A succeeded attempt is not asked about again.
    reset(&app).await;
    assert_eq!(
        janitor(&app).await.run_once(in_minutes(120)).await.unwrap(),
        Pass::default()
    );
    assert!(all_queries(&app).await.is_empty());
}

async fn the_janitor_recovers_a_momo_payment_whose_ipn_never_came(backend: Backend) {
    let (app, id, _, order) = recovered(backend, "momo").await;
    let late = momo_ipn(&order, txn_no(&order));
    let answer = app.callback("momo", "", late, &[JSON]).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_paid_by_janitor(&app, &id, "momo", &order).await;
    assert_eq!(events_of(&app, "payment.received").await, 1);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

async fn the_janitor_recovers_a_zalopay_payment_whose_callback_never_came(backend: Backend) {
    let (app, id, _, order) = recovered(backend, "zalopay").await;
    let late = zalopay_callback(&order, txn_no(&order));
    let answer = app.callback("zalopay", "", late, &[JSON]).await;
    assert_eq!(answer.json()["return_code"], 1, "{}", answer.text);
    assert_paid_by_janitor(&app, &id, "zalopay", &order).await;
    assert_eq!(events_of(&app, "payment.received").await, 1);
}

async fn a_callback_arriving_while_the_janitor_asks_is_recorded_once(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let (id, attempt) = pending_attempt(&app, "HS-1", "momo").await;
    let order = order_ref(&attempt);
    // MoMo takes its time to answer the query; the IPN arrives meanwhile.
    let slow = momo_answers(Status::Paid);
    answer_queries(&app, MOMO_QUERY, move |request: &Request| {
        slow(request).set_delay(Duration::from_millis(700))
    })
    .await;
    let pass = tokio::spawn(async move { janitor.run_once(in_minutes(11)).await });
    while queried(&app, MOMO_QUERY).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ipn = momo_ipn(&order, txn_no(&order));
    let answer = app.callback("momo", "", ipn, &[JSON]).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(pass.await.unwrap().unwrap().paid, 1);

    assert_eq!(
        payments_of(&app, &id).await,
        vec![(
            "momo".to_owned(),
            txn_no(&order).to_string(),
            "callback".to_owned()
        )]
    );
    assert_eq!(app.invoice_now(&id).await["status"], "paid");
    assert_eq!(events_of(&app, "payment.received").await, 1);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

async fn a_failed_status_fails_the_attempt_and_leaves_the_invoice_open(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let mut attempts = Vec::new();
    for (dossier, channel, code) in [
        ("HS-1", "vnpay", "02"),
        ("HS-2", "momo", "1006"),
        ("HS-3", "zalopay", "2"),
    ] {
        let (id, attempt) = pending_attempt(&app, dossier, channel).await;
        attempts.push((id, attempt, code));
    }
    providers_answer(&app, Status::Failed).await;

    assert_eq!(
        janitor.run_once(in_minutes(11)).await.unwrap(),
        pass(3, 0, 3, 0, 0)
    );
    for (id, attempt, code) in &attempts {
        let stored = stored(&app, attempt).await;
        assert_eq!(stored.status, "failed", "{attempt}");
        assert_eq!(stored.provider_code.as_deref(), Some(*code), "{attempt}");
        assert_eq!(app.invoice_now(id).await["status"], "open");
    }
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("outbox_events").await, 0);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
    // A failed attempt is not asked about again; the payer may try again.
    reset(&app).await;
    assert_eq!(
        janitor.run_once(in_minutes(600)).await.unwrap(),
        Pass::default()
    );
    assert!(all_queries(&app).await.is_empty());
    let retry = app.attempt(&attempts[0].0, "vnpay").await;
    assert_eq!(retry.status, 201, "{}", retry.text);
}

async fn a_pending_status_is_checked_again_later_with_nothing_recorded(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let mut attempts = Vec::new();
    for (dossier, channel) in [("HS-1", "vnpay"), ("HS-2", "momo"), ("HS-3", "zalopay")] {
        attempts.push(pending_attempt(&app, dossier, channel).await);
    }
    providers_answer(&app, Status::Pending).await;

    let first = in_minutes(11);
    assert_eq!(janitor.run_once(first).await.unwrap(), pass(3, 0, 0, 3, 0));
    let mut next_checks = Vec::new();
    for (id, attempt) in &attempts {
        let stored = stored(&app, attempt).await;
        assert_eq!(stored.status, "pending");
        assert_eq!(stored.checks, 1);
        let next = stored.next_check_at.expect("a next check");
        assert!(next > first.to_stored(), "{next}");
        next_checks.push(Timestamp::parse_rfc3339(&next).unwrap());
        assert_eq!(app.invoice_now(id).await["status"], "open");
    }
    assert_eq!(all_queries(&app).await.len(), 3);
    // Not due yet: nobody is asked.
    assert_eq!(janitor.run_once(first).await.unwrap(), Pass::default());
    assert_eq!(all_queries(&app).await.len(), 3);
    // Due again: each is asked once more, and the wait grows.
    let second = *next_checks.iter().max().unwrap();
    assert_eq!(janitor.run_once(second).await.unwrap(), pass(3, 0, 0, 3, 0));
    assert_eq!(all_queries(&app).await.len(), 6);
    for (_, attempt) in &attempts {
        let stored = stored(&app, attempt).await;
        assert_eq!(stored.checks, 2);
        assert!(stored.next_check_at.unwrap() > second.to_stored());
    }
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("outbox_events").await, 0);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

async fn an_erroring_provider_records_nothing_and_is_asked_again(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let (vnpay_id, vnpay) = pending_attempt(&app, "HS-1", "vnpay").await;
    let (momo_id, momo) = pending_attempt(&app, "HS-2", "momo").await;
    let (zalopay_id, zalopay) = pending_attempt(&app, "HS-3", "zalopay").await;
    let attempts = [
        (&vnpay_id, &vnpay),
        (&momo_id, &momo),
        (&zalopay_id, &zalopay),
    ];

    // VNPay says "paid" but signs with another secret; MoMo fails with
    // 500; ZaloPay answers what is not JSON.
    answer_queries(
        &app,
        VNPAY_QUERY,
        vnpay_answers(Status::Paid, "not-the-secret-0123456789"),
    )
    .await;
    answer_queries(
        &app,
        MOMO_QUERY,
        ResponseTemplate::new(500).set_body_string("Internal Server Error"),
    )
    .await;
    answer_queries(
        &app,
        ZALOPAY_QUERY,
        ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"),
    )
    .await;
    let first = in_minutes(11);
    assert_eq!(janitor.run_once(first).await.unwrap(), pass(3, 0, 0, 3, 0));
    assert_eq!(all_queries(&app).await.len(), 3);
    for (id, attempt) in attempts {
        let stored = stored(&app, attempt).await;
        assert_eq!(stored.status, "pending");
        assert_eq!(stored.checks, 1);
        assert!(stored.next_check_at.unwrap() > first.to_stored());
        assert_eq!(app.invoice_now(id).await["status"], "open");
    }
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("payment_exceptions").await, 0);

    // The providers recover: the payments are found at the next check.
    reset(&app).await;
    providers_answer(&app, Status::Paid).await;
    assert_eq!(
        janitor.run_once(in_minutes(60)).await.unwrap(),
        pass(3, 3, 0, 0, 0)
    );
    for (id, attempt) in attempts {
        let channel = attempt["channel"].as_str().unwrap();
        assert_paid_by_janitor(&app, id, channel, &order_ref(attempt)).await;
        assert_eq!(stored(&app, attempt).await.checks, 2);
    }
}

async fn past_the_give_up_limit_an_officer_is_asked_once_and_asking_stops(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let (id, attempt) = pending_attempt(&app, "HS-1", "momo").await;
    let (other_id, other) = pending_attempt(&app, "HS-2", "zalopay").await;
    providers_answer(&app, Status::Pending).await;
    assert_eq!(
        janitor.run_once(in_minutes(11)).await.unwrap(),
        pass(2, 0, 0, 2, 0)
    );
    // The last check falls at the limit, however the backoff went.
    for attempt in [&attempt, &other] {
        let next = stored(&app, attempt).await.next_check_at.unwrap();
        assert!(next <= in_minutes(24 * 60).to_stored(), "{next}");
    }

    // A day later the provider still does not know: one last question,
    // then an exception for an officer, and no more questions.
    let past = in_minutes(24 * 60 + 5);
    assert_eq!(janitor.run_once(past).await.unwrap(), pass(2, 0, 0, 0, 2));
    assert_eq!(all_queries(&app).await.len(), 4);
    let stored_attempt = stored(&app, &attempt).await;
    assert_eq!(stored_attempt.status, "pending");
    assert_eq!(stored_attempt.checks, 2);
    assert_eq!(stored_attempt.next_check_at, None);
    let listed = app
        .app
        .get(
            "/v1/exceptions?kind=unconfirmed_attempt&status=open",
            &app.finance_key,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let items = listed.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    let exception = items
        .iter()
        .find(|x| x["invoice_id"] == id.as_str())
        .expect("the MoMo attempt's exception");
    assert_eq!(exception["kind"], "unconfirmed_attempt");
    assert_eq!(exception["agency_code"], "P.D1");
    assert_eq!(exception["amount"], OWED);
    assert_eq!(exception["payment_id"], Value::Null);
    assert_eq!(exception["dossier_code"], "HS-1");
    let detail = exception["detail"].as_str().unwrap();
    assert!(detail.contains(&order_ref(&attempt)), "{detail}");
    assert!(items.iter().any(|x| x["invoice_id"] == other_id.as_str()));
    // Reconciliation's findings are the finance officers' alone.
    assert_eq!(events_of(&app, "exception.opened").await, 0);
    assert_eq!(app.app.count("payments").await, 0);

    reset(&app).await;
    providers_answer(&app, Status::Pending).await;
    assert_eq!(
        janitor.run_once(in_minutes(48 * 60)).await.unwrap(),
        Pass::default()
    );
    assert!(all_queries(&app).await.is_empty());
    assert_eq!(app.app.count("payment_exceptions").await, 2);

    // Money that arrives after all is still recorded, once.
    let late = momo_ipn(&order_ref(&attempt), 4088878999);
    let answer = app.callback("momo", "", late, &[JSON]).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(app.invoice_now(&id).await["status"], "paid");
    assert_eq!(stored(&app, &attempt).await.status, "succeeded");
}

async fn concurrent_passes_ask_about_each_attempt_once(backend: Backend) {
    let app = spawn(backend).await;
    let mut orders = Vec::new();
    let mut invoices = Vec::new();
    for (i, channel) in ["vnpay", "momo", "zalopay"]
        .iter()
        .cycle()
        .take(9)
        .enumerate()
    {
        let (id, attempt) = pending_attempt(&app, &format!("HS-{i}"), channel).await;
        orders.push(order_ref(&attempt));
        invoices.push(id);
    }
    // Slow answers, so that the passes overlap.
    let (vnpay, momo, zalopay) = (
        vnpay_answers(Status::Paid, creds::VNPAY_SECRET),
        momo_answers(Status::Paid),
        zalopay_answers(Status::Paid),
    );
    let delay = Duration::from_millis(300);
    answer_queries(&app, VNPAY_QUERY, move |r: &Request| {
        vnpay(r).set_delay(delay)
    })
    .await;
    answer_queries(&app, MOMO_QUERY, move |r: &Request| {
        momo(r).set_delay(delay)
    })
    .await;
    answer_queries(&app, ZALOPAY_QUERY, move |r: &Request| {
        zalopay(r).set_delay(delay)
    })
    .await;

    let now = in_minutes(11);
    let mut passes = Vec::new();
    for _ in 0..2 {
        let janitor = janitor(&app).await;
        passes.push(tokio::spawn(async move { janitor.run_once(now).await }));
    }
    let mut checked = 0;
    let mut paid = 0;
    for pass in passes {
        let pass = pass.await.unwrap().unwrap();
        checked += pass.checked;
        paid += pass.paid;
    }
    assert_eq!((checked, paid), (9, 9));
    let mut asked = all_queries(&app).await;
    asked.sort();
    let mut expected = orders.clone();
    expected.sort();
    assert_eq!(asked, expected, "each attempt is asked about once");
    assert_eq!(app.app.count("payments").await, 9);
    assert_eq!(events_of(&app, "payment.received").await, 9);
    for id in &invoices {
        assert_eq!(app.invoice_now(id).await["status"], "paid");
    }
    // And then no one is asked about again.
    let janitor = janitor(&app).await;
    assert_eq!(
        janitor.run_once(in_minutes(60)).await.unwrap(),
        Pass::default()
    );
}

async fn only_due_gateway_attempts_are_asked_about(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    // Paid by its IPN before the janitor looked.
    let (_, paid) = pending_attempt(&app, "HS-1", "vnpay").await;
    let ipn = vnpay_ipn(&order_ref(&paid), OWED, "14422574", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    // Failed by its IPN.
    let (_, failed) = pending_attempt(&app, "HS-2", "vnpay").await;
    let ipn = vnpay_ipn(&order_ref(&failed), OWED, "0", "24");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    // A bank transfer, which has no status API, never confirmed.
    let (transfer_invoice, transfer) = pending_attempt(&app, "HS-3", "bank_transfer").await;
    // A bank transfer paid by its notification.
    let (_, transferred) = pending_attempt(&app, "HS-4", "bank_transfer").await;
    let transferred_invoice = app
        .invoice_now(transferred["invoice_id"].as_str().unwrap())
        .await;
    let note = format!(
        "CT DEN:123 {} NOP PHI",
        transferred_invoice["payment_code"].as_str().unwrap()
    );
    let sepay = app
        .callback(
            "sepay",
            "",
            sepay_transfer(92704, OWED, &note),
            &[JSON, ("Authorization", &sepay_auth())],
        )
        .await;
    assert_eq!(sepay.status, 200, "{}", sepay.text);
    assert_eq!(stored(&app, &paid).await.status, "succeeded");
    assert_eq!(stored(&app, &failed).await.status, "failed");
    // Made just now: not old enough yet.
    let (_, young) = pending_attempt(&app, "HS-5", "momo").await;
    providers_answer(&app, Status::Paid).await;

    assert_eq!(
        janitor.run_once(in_minutes(5)).await.unwrap(),
        Pass::default()
    );
    assert!(all_queries(&app).await.is_empty());
    // Once old enough, only the young MoMo attempt is asked about.
    assert_eq!(
        janitor.run_once(in_minutes(11)).await.unwrap(),
        pass(1, 1, 0, 0, 0)
    );
    assert_eq!(all_queries(&app).await, vec![order_ref(&young)]);
    for attempt in [&paid, &failed, &transfer, &transferred] {
        assert_eq!(stored(&app, attempt).await.checks, 0, "{attempt}");
    }
    assert_eq!(stored(&app, &transfer).await.status, "pending");
    assert_eq!(app.invoice_now(&transfer_invoice).await["status"], "open");
    // Not even a day later.
    assert_eq!(
        janitor.run_once(in_minutes(48 * 60)).await.unwrap(),
        Pass::default()
    );
    assert_eq!(all_queries(&app).await.len(), 1);
    assert_eq!(
        app.app
            .get("/v1/exceptions?kind=unconfirmed_attempt", &app.finance_key)
            .await
            .json()["items"],
        json!([])
    );
}

async fn the_background_janitor_recovers_payments_on_its_own(backend: Backend) {
    let app = spawn_payments_app_with(backend, |s| {
        s.janitor.interval_secs = 1;
        s.janitor.first_check_after_secs = 1;
    })
    .await;
    gateways_accept(&app).await;
    providers_answer(&app, Status::Paid).await;
    let (id, attempt) = pending_attempt(&app, "HS-1", "zalopay").await;
    let order = order_ref(&attempt);
    let mut waited = 0;
    while app.invoice_now(&id).await["status"] != "paid" {
        assert!(waited < 300, "the janitor never recovered the payment");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_paid_by_janitor(&app, &id, "zalopay", &order).await;
    let metrics = app
        .app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await
        .text;
    assert!(
        metrics.contains(r#"lephi_janitor_checks_total{channel="zalopay",outcome="recorded"} 1"#),
        "{metrics}"
    );
}

/// A payer who opened VNPay's page and left: VNPay knows no transaction
/// (`91`). Within the day that may still change; at the give-up age the
/// payment window has long closed, so the attempt is failed, with no
/// exception for an officer.
async fn an_abandoned_vnpay_checkout_fails_without_troubling_an_officer(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let (id, attempt) = pending_attempt(&app, "HS-1", "vnpay").await;
    let not_found = ResponseTemplate::new(200).set_body_json(json!({
        "vnp_ResponseId": "RS1", "vnp_Command": "querydr", "vnp_ResponseCode": "91",
        "vnp_Message": "Transaction not found",
    }));
    answer_queries(&app, VNPAY_QUERY, not_found).await;
    assert_eq!(
        janitor.run_once(in_minutes(11)).await.unwrap(),
        pass(1, 0, 0, 1, 0)
    );
    assert_eq!(stored(&app, &attempt).await.status, "pending");
    assert_eq!(
        janitor.run_once(in_minutes(24 * 60 + 5)).await.unwrap(),
        pass(1, 0, 1, 0, 0)
    );
    let stored_attempt = stored(&app, &attempt).await;
    assert_eq!(stored_attempt.status, "failed");
    assert_eq!(stored_attempt.provider_code.as_deref(), Some("91"));
    assert_eq!(app.app.count("payment_exceptions").await, 0);
    assert_eq!(app.invoice_now(&id).await["status"], "open");
}

/// Attempts from before there was a janitor (a first deployment, or one
/// that was off for days) are not asked about all at once and raised for
/// officers: one already past the give-up age when first seen is left alone.
async fn attempts_older_than_the_give_up_age_when_first_seen_are_left_alone(backend: Backend) {
    let app = spawn(backend).await;
    let janitor = janitor(&app).await;
    let (_, old) = pending_attempt(&app, "HS-1", "momo").await;
    providers_answer(&app, Status::Pending).await;
    assert_eq!(
        janitor.run_once(in_minutes(24 * 60 + 5)).await.unwrap(),
        Pass::default()
    );
    assert!(all_queries(&app).await.is_empty());
    assert_eq!(stored(&app, &old).await.checks, 0);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

/// With the sandbox on (no real credentials), the janitor asks the
/// sandbox, as the app's own providers do: a ZaloPay payment declined in
/// the sandbox, which ZaloPay never calls back about, is failed.
async fn the_background_janitor_asks_the_sandbox_when_it_is_on(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |s| {
        s.janitor.interval_secs = 1;
        s.janitor.first_check_after_secs = 1;
    })
    .await;
    app.seed_agencies().await;
    let system_key = app.key(lephi::domain::Role::AgencySystem, "P.D1").await;
    let invoice = app
        .create_invoice(
            &system_key,
            "HS-1",
            &crate::helpers::invoice_body("P.D1", "HS-1"),
        )
        .await
        .json();
    let attempt = app
        .post(
            &format!("/v1/invoices/{}/attempts", invoice["id"].as_str().unwrap()),
            &system_key,
            &json!({ "channel": "zalopay" }),
        )
        .await
        .json();
    let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(attempt["pay_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let declined = browser
        .post(format!("{}/sandbox/zalopay/pay", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("order={order_ref}&decision=decline"))
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), 303);
    let pool = app.raw_pool().await;
    let mut status = String::new();
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        status = sqlx::query_scalar("SELECT status FROM payment_attempts WHERE order_ref = $1")
            .bind(&order_ref)
            .fetch_one(&pool)
            .await
            .unwrap();
        if status != "pending" {
            break;
        }
    }
    pool.close().await;
    assert_eq!(status, "failed");
}
