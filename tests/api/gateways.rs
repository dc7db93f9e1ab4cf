//! MoMo and ZaloPay end to end: what lephi sends to each create API (its
//! signature recomputed here from DOMAIN.md's signed strings), what it
//! makes of their answers, refusals, timeouts and silence, and their signed
//! callbacks, each payment recorded exactly once.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, Request, ResponseTemplate};

use crate::helpers::{
    Backend, PaymentsApp, Response, creds, hmac_sha256_hex, invoice_body, spawn_payments_app,
    spawn_payments_app_with,
};
use crate::on_both_backends;

on_both_backends!(
    a_momo_attempt_is_signed_as_documented_and_gives_momos_pay_url,
    a_signed_momo_ipn_pays_the_invoice_once,
    a_declined_momo_ipn_fails_only_its_attempt,
    momo_refusals_fail_the_attempt_and_leave_the_invoice_open,
    a_momo_create_that_times_out_fails_the_attempt_but_a_late_ipn_still_pays,
    an_unreachable_momo_fails_the_attempt_and_another_channel_still_works,
    an_amount_outside_momos_limits_is_refused_without_calling_momo,
    a_zalopay_attempt_is_signed_as_documented_and_gives_the_order_url,
    a_signed_zalopay_callback_pays_the_invoice_once,
    zalopay_refusals_fail_the_attempt_with_the_most_specific_code,
    an_unconfigured_channel_is_unavailable_and_has_no_callback,
    bad_attempt_bodies_are_refused_before_any_provider_is_called,
);

const MOMO_CREATE: &str = "/v2/gateway/api/create";
const ZALOPAY_CREATE: &str = "/v2/create";
const MOMO_PAY_URL: &str =
    "https://test-payment.momo.vn/v2/gateway/pay?t=TU9NT0xFUEhJMjAyNnwyNjExMjhLN1FYMk05UFRCNEg";
const ZALOPAY_ORDER_URL: &str = "https://qcgateway.zalopay.vn/openinapp?order=eyJ6cHRyYW5zdG9rZW4iOiJBQ3h2R0xfN2dTMSIsImFwcGlkIjoyNTUzfQ";
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// MoMo accepting a create request, in its wire format, echoing the ids
/// it was sent.
fn momo_accepts(request: &Request) -> ResponseTemplate {
    let sent: Value = request.body_json().unwrap_or_default();
    ResponseTemplate::new(200).set_body_json(json!({
        "partnerCode": sent["partnerCode"],
        "orderId": sent["orderId"],
        "requestId": sent["requestId"],
        "amount": sent["amount"],
        "responseTime": now_ms(),
        "message": "Thành công.",
        "resultCode": 0,
        "payUrl": MOMO_PAY_URL,
        "deeplink": "momo://app?action=payWithApp&isScanQR=false&serviceType=app&sid=TU9NT0xFUEhJMjAyNnwyNjExMjg&v=3.0",
        "qrCodeUrl": "momo://app?action=payWithApp&isScanQR=true&serviceType=qr&sid=TU9NT0xFUEhJMjAyNnwyNjExMjg&v=3.0",
    }))
}

/// A fake provider's answer, chosen per test case.
type Answer = Box<dyn Fn(&Request) -> ResponseTemplate + Send + Sync>;

/// The same answer to every request.
fn fixed(answer: ResponseTemplate) -> Answer {
    Box::new(move |_: &Request| answer.clone())
}

/// MoMo refusing a create request with `result_code`, under HTTP `status`.
fn momo_refuses(status: u16, result_code: i64, message: &'static str) -> Answer {
    Box::new(move |request: &Request| {
        let sent: Value = request.body_json().unwrap_or_default();
        ResponseTemplate::new(status).set_body_json(json!({
            "partnerCode": sent["partnerCode"],
            "orderId": sent["orderId"],
            "requestId": sent["requestId"],
            "amount": sent["amount"],
            "responseTime": now_ms(),
            "message": message,
            "resultCode": result_code,
        }))
    })
}

/// ZaloPay accepting a create request, in its wire format.
fn zalopay_accepts() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "return_code": 1,
        "return_message": "Giao dịch thành công",
        "sub_return_code": 1,
        "sub_return_message": "Giao dịch thành công",
        "zp_trans_token": "ACxvGL_7gS1",
        "order_url": ZALOPAY_ORDER_URL,
        "order_token": "ACxvGL_7gS1",
        "qr_code": "00020101021226520010vn.zalopay0203001010627000503173307089089161731338580010A000000727012800069704540114998002123456780208QRIBFTTA5204739953037045405650005802VN63041234",
    }))
}

/// Answers the next `times` POSTs to `at` on the fake provider with
/// `answer`, and expects exactly that many.
async fn mount(app: &PaymentsApp, at: &str, answer: impl wiremock::Respond + 'static, times: u64) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(answer)
        .up_to_n_times(times)
        .expect(times)
        .mount(&app.provider_api)
        .await;
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// Today's date in Vietnam (UTC+7) as `yymmdd`.
fn vietnam_yymmdd() -> String {
    let now = OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
    format!(
        "{:02}{:02}{:02}",
        now.year() % 100,
        u8::from(now.month()),
        now.day()
    )
}

/// The requests the fake provider received on `at`, oldest first.
async fn received(app: &PaymentsApp, at: &str) -> Vec<Request> {
    app.provider_api
        .received_requests()
        .await
        .expect("the fake provider records requests")
        .into_iter()
        .filter(|r| r.url.path() == at)
        .collect()
}

fn content_type(request: &Request) -> &str {
    request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The JSON bodies MoMo's create API received, oldest first.
async fn momo_creates(app: &PaymentsApp) -> Vec<Value> {
    received(app, MOMO_CREATE)
        .await
        .iter()
        .map(|r| {
            assert_eq!(content_type(r), "application/json");
            r.body_json().expect("a JSON create request")
        })
        .collect()
}

/// The form fields ZaloPay's create API received, oldest first.
async fn zalopay_creates(app: &PaymentsApp) -> Vec<Vec<(String, String)>> {
    received(app, ZALOPAY_CREATE)
        .await
        .iter()
        .map(|r| {
            assert_eq!(content_type(r), "application/x-www-form-urlencoded");
            form_urlencoded::parse(&r.body).into_owned().collect()
        })
        .collect()
}

fn form_field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    let mut values = form.iter().filter(|(k, _)| k == name);
    let (_, value) = values
        .next()
        .unwrap_or_else(|| panic!("{name} is missing from {form:?}"));
    assert!(values.next().is_none(), "{name} is sent twice");
    value
}

fn id_of(value: &Value) -> &str {
    value["id"].as_str().expect("an id")
}

async fn start(app: &PaymentsApp, invoice_id: &str, body: &Value) -> Response {
    app.app
        .post(
            &format!("/v1/invoices/{invoice_id}/attempts"),
            &app.system_key,
            body,
        )
        .await
}

/// A successful attempt's answer.
async fn started(app: &PaymentsApp, invoice_id: &str, channel: &str) -> Value {
    let answer = app.attempt(invoice_id, channel).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.json()
}

/// Checks a 502 `provider_error` and returns the failed attempt's id.
fn provider_error(response: &Response, channel: &str, provider_code: &str) -> String {
    assert_eq!(response.status, 502, "{}", response.text);
    let body = response.json();
    assert_eq!(body["code"], "provider_error", "{body}");
    assert_eq!(body["details"]["channel"], channel, "{body}");
    assert_eq!(body["details"]["provider_code"], provider_code, "{body}");
    for secret in [creds::MOMO_SECRET, creds::ZALOPAY_KEY1, creds::ZALOPAY_KEY2] {
        assert!(!response.text.contains(secret), "{}", response.text);
    }
    body["details"]["attempt_id"]
        .as_str()
        .expect("details.attempt_id")
        .to_owned()
}

/// An attempt as stored: status, provider_code, pay_url, order_ref.
struct StoredAttempt {
    status: String,
    provider_code: Option<String>,
    pay_url: Option<String>,
    order_ref: String,
}

async fn stored_attempt(app: &PaymentsApp, id: &str) -> StoredAttempt {
    let pool = app.app.raw_pool().await;
    let (status, provider_code, pay_url, order_ref): (
        String,
        Option<String>,
        Option<String>,
        String,
    ) = sqlx::query_as(
        "SELECT status, provider_code, pay_url, order_ref FROM payment_attempts WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("the attempt is stored");
    pool.close().await;
    StoredAttempt {
        status,
        provider_code,
        pay_url,
        order_ref,
    }
}

/// Checks that attempt `id` is stored failed with `provider_code`, and
/// returns its order reference.
async fn assert_failed(app: &PaymentsApp, id: &str, provider_code: &str) -> String {
    let attempt = stored_attempt(app, id).await;
    assert_eq!(attempt.status, "failed");
    assert_eq!(attempt.provider_code.as_deref(), Some(provider_code));
    attempt.order_ref
}

/// Checks that attempt `id` failed to start, with `provider_code`, and
/// returns its order reference.
async fn assert_not_started(app: &PaymentsApp, id: &str, provider_code: &str) -> String {
    assert_eq!(stored_attempt(app, id).await.pay_url, None);
    assert_failed(app, id, provider_code).await
}

/// A MoMo IPN for `order_id`, signed in the test over DOMAIN.md's string.
fn momo_ipn(
    order_id: &str,
    amount: i64,
    trans_id: i64,
    result_code: i64,
    message: &str,
) -> Vec<u8> {
    let order_info = "Thanh toan phi ho so";
    let response_time = now_ms();
    let signed = format!(
        "accessKey={access}&amount={amount}&extraData=&message={message}&orderId={order_id}\
         &orderInfo={order_info}&orderType=momo_wallet&partnerCode={partner}&payType=qr\
         &requestId={order_id}&responseTime={response_time}&resultCode={result_code}\
         &transId={trans_id}",
        access = creds::MOMO_ACCESS,
        partner = creds::MOMO_PARTNER,
    );
    json!({
        "partnerCode": creds::MOMO_PARTNER,
        "orderId": order_id,
        "requestId": order_id,
        "amount": amount,
        "orderInfo": order_info,
        "orderType": "momo_wallet",
        "transId": trans_id,
        "resultCode": result_code,
        "message": message,
        "payType": "qr",
        "responseTime": response_time,
        "extraData": "",
        "signature": hmac_sha256_hex(creds::MOMO_SECRET, &signed),
    })
    .to_string()
    .into_bytes()
}

/// Sends a MoMo IPN and checks MoMo's `204 No Content`.
async fn momo_ipn_acknowledged(app: &PaymentsApp, ipn: &[u8]) {
    let answer = app.callback("momo", "", ipn.to_vec(), &[JSON]).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(answer.text, "");
}

/// The `data` string of a ZaloPay callback, in ZaloPay's own key order.
fn zalopay_data(app_trans_id: &str, app_time: i64, amount: i64, zp_trans_id: i64) -> String {
    let embed_data = serde_json::to_string(r#"{"redirecturl":"https://lephi.example.vn/return"}"#)
        .expect("a JSON string");
    format!(
        r#"{{"app_id":{app_id},"app_trans_id":"{app_trans_id}","app_time":{app_time},"app_user":"lephi","amount":{amount},"embed_data":{embed_data},"item":"[]","zp_trans_id":{zp_trans_id},"server_time":{server_time},"channel":38,"merchant_user_id":"SAt9SA_OzvjhSnGxPNI-Ag","user_fee_amount":0,"discount_amount":0}}"#,
        app_id = creds::ZALOPAY_APP,
        server_time = now_ms(),
    )
}

/// A ZaloPay callback carrying `data`, with its mac under `key`.
fn zalopay_callback(data: &str, key: &str) -> Vec<u8> {
    json!({ "data": data, "mac": hmac_sha256_hex(key, data), "type": 1 })
        .to_string()
        .into_bytes()
}

/// Sends a ZaloPay callback and returns its `return_code`.
async fn zalopay_return_code(app: &PaymentsApp, callback: &[u8]) -> i64 {
    let answer = app
        .callback("zalopay", "", callback.to_vec(), &[JSON])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["return_code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no return_code: {}", answer.text))
}

/// The payments recorded for invoice `id`, as the API lists them.
async fn payments_of(app: &PaymentsApp, id: &str) -> Vec<Value> {
    let answer = app
        .app
        .get(&format!("/v1/invoices/{id}/payments"), &app.finance_key)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["items"].as_array().unwrap().clone()
}

async fn a_momo_attempt_is_signed_as_documented_and_gives_momos_pay_url(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    mount(&app, MOMO_CREATE, momo_accepts, 1).await;
    let invoice = app.invoice("HS-1").await;
    let attempt = started(&app, id_of(&invoice), "momo").await;
    assert_eq!(attempt["channel"], "momo");
    assert_eq!(attempt["status"], "pending");
    assert_eq!(attempt["amount"], 650000);
    assert_eq!(attempt["pay_url"], MOMO_PAY_URL);
    assert_eq!(attempt["invoice_id"], invoice["id"]);
    let order_ref = attempt["order_ref"].as_str().unwrap();

    let creates = momo_creates(&app).await;
    assert_eq!(creates.len(), 1);
    let sent = &creates[0];
    let code = invoice["payment_code"].as_str().unwrap();
    let address = &app.app.address;
    let ipn_url = format!("{address}/callbacks/momo");
    let redirect_url = format!("{address}/pay/{code}/return/momo");
    assert_eq!(sent["partnerCode"], creds::MOMO_PARTNER);
    assert_eq!(sent["accessKey"], creds::MOMO_ACCESS);
    assert_eq!(sent["orderId"], order_ref);
    assert_eq!(sent["requestId"], order_ref);
    assert_eq!(sent["amount"], json!(650000), "the amount is a JSON number");
    assert_eq!(sent["redirectUrl"], redirect_url.as_str());
    assert_eq!(sent["ipnUrl"], ipn_url.as_str());
    assert!(ipn_url.ends_with("/callbacks/momo"));
    assert_eq!(sent["extraData"], "");
    assert_eq!(sent["requestType"], "captureWallet");
    assert_eq!(sent["lang"], "vi", "the default locale is Vietnamese");
    let order_info = sent["orderInfo"].as_str().unwrap();
    assert!(order_info.contains(code), "{order_info}");
    assert!(order_info.is_ascii(), "{order_info}");
    // Within MoMo's orderId pattern: lephi uses letters and digits only.
    assert!(!order_ref.is_empty());
    assert!(order_ref.bytes().all(|b| b.is_ascii_alphanumeric()));
    let signed = format!(
        "accessKey={access}&amount=650000&extraData=&ipnUrl={ipn_url}&orderId={order_ref}\
         &orderInfo={order_info}&partnerCode={partner}&redirectUrl={redirect_url}\
         &requestId={order_ref}&requestType=captureWallet",
        access = creds::MOMO_ACCESS,
        partner = creds::MOMO_PARTNER,
    );
    assert_eq!(
        sent["signature"],
        hmac_sha256_hex(creds::MOMO_SECRET, &signed)
    );
    // The secret key itself never goes over the wire.
    assert!(!sent.to_string().contains(creds::MOMO_SECRET));

    let stored = stored_attempt(&app, id_of(&attempt)).await;
    assert_eq!(stored.status, "pending");
    assert_eq!(stored.pay_url.as_deref(), Some(MOMO_PAY_URL));
    assert_eq!(stored.order_ref, order_ref);
}

async fn a_signed_momo_ipn_pays_the_invoice_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    mount(&app, MOMO_CREATE, momo_accepts, 1).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let attempt = started(&app, id, "momo").await;
    let order_ref = attempt["order_ref"].as_str().unwrap();

    // Signed with another key: refused, nothing recorded.
    let mut forged: Value =
        serde_json::from_slice(&momo_ipn(order_ref, 650_000, 4088878653, 0, "Thành công."))
            .unwrap();
    forged["signature"] = json!(hmac_sha256_hex("not-the-secret", "whatever"));
    let refused = app
        .callback("momo", "", forged.to_string().into_bytes(), &[JSON])
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(refused.code(), "bad_signature");
    assert_eq!(app.app.count("payments").await, 0);

    let ipn = momo_ipn(order_ref, 650_000, 4088878653, 0, "Thành công.");
    momo_ipn_acknowledged(&app, &ipn).await;
    let now = app.invoice_now(id).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["amount_paid"], 650000);
    assert_eq!(
        stored_attempt(&app, id_of(&attempt)).await.status,
        "succeeded"
    );

    // MoMo sends the same IPN again: acknowledged, nothing new.
    momo_ipn_acknowledged(&app, &ipn).await;
    assert_eq!(app.app.count("payments").await, 1);
    let payments = payments_of(&app, id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["channel"], "momo");
    assert_eq!(payments[0]["provider_txn_id"], "4088878653");
    assert_eq!(payments[0]["amount"], 650000);
    assert_eq!(payments[0]["exception"], Value::Null);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

async fn a_declined_momo_ipn_fails_only_its_attempt(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    mount(&app, MOMO_CREATE, momo_accepts, 2).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let attempt = started(&app, id, "momo").await;
    let order_ref = attempt["order_ref"].as_str().unwrap();
    let declined = momo_ipn(
        order_ref,
        650_000,
        4088878654,
        1006,
        "Giao dịch bị từ chối bởi người dùng.",
    );
    momo_ipn_acknowledged(&app, &declined).await;
    assert_failed(&app, id_of(&attempt), "1006").await;
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.invoice_now(id).await["status"], "open");
    // The payer tries again and pays.
    let retry = started(&app, id, "momo").await;
    let paid = momo_ipn(
        retry["order_ref"].as_str().unwrap(),
        650_000,
        4088878655,
        0,
        "Thành công.",
    );
    momo_ipn_acknowledged(&app, &paid).await;
    assert_eq!(app.invoice_now(id).await["status"], "paid");
    assert_eq!(app.app.count("payments").await, 1);
}

async fn momo_refusals_fail_the_attempt_and_leave_the_invoice_open(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let not_json = ResponseTemplate::new(500).set_body_string("<html>Internal Server Error</html>");
    let no_pay_url = ResponseTemplate::new(200).set_body_json(json!({
        "partnerCode": creds::MOMO_PARTNER, "resultCode": 0, "message": "Thành công."
    }));
    let cases = [
        (
            momo_refuses(200, 22, "Số tiền giao dịch nằm ngoài phạm vi cho phép."),
            "22",
        ),
        (
            momo_refuses(400, 20, "Yêu cầu bị từ chối vì sai định dạng."),
            "20",
        ),
        (momo_refuses(500, 99, "Lỗi không xác định."), "99"),
        (fixed(not_json), "bad_answer"),
        (fixed(no_pay_url), "bad_answer"),
    ];
    let mut order_refs = Vec::new();
    for (answer, code) in cases {
        app.provider_api.verify().await;
        app.provider_api.reset().await;
        mount(&app, MOMO_CREATE, answer, 1).await;
        let refused = app.attempt(id, "momo").await;
        let attempt_id = provider_error(&refused, "momo", code);
        order_refs.push(assert_not_started(&app, &attempt_id, code).await);
        assert_eq!(
            momo_creates(&app).await.len(),
            1,
            "{code}: one call, no retry"
        );
        assert_eq!(app.invoice_now(id).await["status"], "open", "{code}");
    }
    order_refs.sort();
    order_refs.dedup();
    assert_eq!(order_refs.len(), 5, "each attempt has its own reference");
    assert_eq!(app.app.count("payment_attempts").await, 5);

    // A later attempt, in English this time, succeeds and is paid.
    app.provider_api.verify().await;
    app.provider_api.reset().await;
    mount(&app, MOMO_CREATE, momo_accepts, 1).await;
    let retry = start(&app, id, &json!({ "channel": "momo", "locale": "en" })).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    let retry = retry.json();
    assert_eq!(retry["pay_url"], MOMO_PAY_URL);
    assert_eq!(momo_creates(&app).await[0]["lang"], "en");
    let ipn = momo_ipn(
        retry["order_ref"].as_str().unwrap(),
        650_000,
        4088878700,
        0,
        "Successful.",
    );
    momo_ipn_acknowledged(&app, &ipn).await;
    assert_eq!(app.invoice_now(id).await["status"], "paid");
    assert_eq!(app.app.count("payments").await, 1);
}

async fn a_momo_create_that_times_out_fails_the_attempt_but_a_late_ipn_still_pays(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    // The first create is answered well after providers.timeout_secs (2);
    // the next one at once.
    mount(
        &app,
        MOMO_CREATE,
        ResponseTemplate::new(200)
            .set_body_json(json!({ "resultCode": 0, "payUrl": MOMO_PAY_URL }))
            .set_delay(Duration::from_secs(6)),
        1,
    )
    .await;
    mount(&app, MOMO_CREATE, momo_accepts, 1).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let timed_out = app.attempt(id, "momo").await;
    let attempt_id = provider_error(&timed_out, "momo", "timeout");
    let first_ref = assert_not_started(&app, &attempt_id, "timeout").await;
    assert_eq!(app.invoice_now(id).await["status"], "open");

    let retry = started(&app, id, "momo").await;
    assert_eq!(retry["pay_url"], MOMO_PAY_URL);
    assert_ne!(retry["order_ref"], first_ref.as_str());

    // MoMo had in fact created the first payment and the payer paid it:
    // the money is recorded against the invoice all the same.
    let late = momo_ipn(&first_ref, 650_000, 4088878800, 0, "Thành công.");
    momo_ipn_acknowledged(&app, &late).await;
    let now = app.invoice_now(id).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["amount_paid"], 650000);
    assert_eq!(stored_attempt(&app, &attempt_id).await.status, "succeeded");
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

async fn an_unreachable_momo_fails_the_attempt_and_another_channel_still_works(backend: Backend) {
    // A socket bound but not listening: connections to its port are
    // refused, and no other test can take the port while it is held.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = closed.local_addr().unwrap().port();
    let app = spawn_payments_app_with(backend, |s| {
        if let Some(momo) = s.providers.momo.as_mut() {
            momo.endpoint = format!("http://127.0.0.1:{port}");
        }
    })
    .await;
    mount(&app, ZALOPAY_CREATE, zalopay_accepts(), 1).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let refused = app.attempt(id, "momo").await;
    let attempt_id = provider_error(&refused, "momo", "unreachable");
    assert_not_started(&app, &attempt_id, "unreachable").await;
    assert_eq!(app.invoice_now(id).await["status"], "open");
    // The payer picks ZaloPay instead.
    let zalopay = started(&app, id, "zalopay").await;
    assert_eq!(zalopay["pay_url"], ZALOPAY_ORDER_URL);
    assert_eq!(zalopay["amount"], 650000);
}

async fn an_amount_outside_momos_limits_is_refused_without_calling_momo(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let mut body = invoice_body("P.D1", "HS-SMALL");
    body["lines"] = json!([{ "kind": "le_phi", "description": "Lệ phí sao y", "amount": 999 }]);
    let created = app
        .app
        .create_invoice(&app.system_key, "HS-SMALL", &body)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let refused = app.attempt(id_of(&created.json()), "momo").await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.code(), "channel_unavailable");
    assert_eq!(refused.json()["details"]["channel"], "momo");
    assert_eq!(app.app.count("payment_attempts").await, 0);
    assert!(momo_creates(&app).await.is_empty());
}

async fn a_zalopay_attempt_is_signed_as_documented_and_gives_the_order_url(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    mount(&app, ZALOPAY_CREATE, zalopay_accepts(), 1).await;
    let invoice = app.invoice("HS-1").await;
    let day_before = vietnam_yymmdd();
    let attempt = started(&app, id_of(&invoice), "zalopay").await;
    let day_after = vietnam_yymmdd();
    assert_eq!(attempt["channel"], "zalopay");
    assert_eq!(attempt["status"], "pending");
    assert_eq!(attempt["amount"], 650000);
    assert_eq!(attempt["pay_url"], ZALOPAY_ORDER_URL);
    let app_trans_id = attempt["order_ref"].as_str().unwrap();

    let creates = zalopay_creates(&app).await;
    assert_eq!(creates.len(), 1);
    let form = &creates[0];
    let field = |name: &str| form_field(form, name);
    assert_eq!(field("app_id"), creds::ZALOPAY_APP);
    assert_eq!(field("app_trans_id"), app_trans_id);
    // yymmdd_ of the Vietnamese date; across midnight either day will do.
    let (date, rest) = app_trans_id.split_once('_').expect("yymmdd_...");
    assert!(
        date == day_before || date == day_after,
        "{app_trans_id} is not of {day_before} or {day_after}"
    );
    assert!(!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(app_trans_id.len() <= 40);
    assert_eq!(field("app_user"), "lephi");
    assert_eq!(field("amount"), "650000");
    // app_time is the attempt's creation, in Unix milliseconds.
    let created_at = OffsetDateTime::parse(
        attempt["created_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let app_time = (created_at.unix_timestamp_nanos() / 1_000_000).to_string();
    assert_eq!(field("app_time"), app_time);
    assert_eq!(field("item"), "[]");
    let code = invoice["payment_code"].as_str().unwrap();
    let address = &app.app.address;
    let embed_data: Value = serde_json::from_str(field("embed_data")).unwrap();
    assert_eq!(
        embed_data,
        json!({ "redirecturl": format!("{address}/pay/{code}/return/zalopay") })
    );
    let description = field("description");
    assert!(description.contains(code), "{description}");
    assert!(description.is_ascii(), "{description}");
    assert_eq!(
        field("callback_url"),
        format!("{address}/callbacks/zalopay")
    );
    assert!(field("callback_url").ends_with("/callbacks/zalopay"));
    let signed = format!(
        "{}|{app_trans_id}|lephi|650000|{app_time}|{}|[]",
        creds::ZALOPAY_APP,
        field("embed_data"),
    );
    assert_eq!(field("mac"), hmac_sha256_hex(creds::ZALOPAY_KEY1, &signed));
    for (_, value) in form.iter() {
        assert!(!value.contains(creds::ZALOPAY_KEY1) && !value.contains(creds::ZALOPAY_KEY2));
    }

    let stored = stored_attempt(&app, id_of(&attempt)).await;
    assert_eq!(stored.status, "pending");
    assert_eq!(stored.pay_url.as_deref(), Some(ZALOPAY_ORDER_URL));
}

async fn a_signed_zalopay_callback_pays_the_invoice_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    mount(&app, ZALOPAY_CREATE, zalopay_accepts(), 1).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let attempt = started(&app, id, "zalopay").await;
    let app_trans_id = attempt["order_ref"].as_str().unwrap();
    let app_time: i64 = form_field(&zalopay_creates(&app).await[0], "app_time")
        .parse()
        .unwrap();
    let data = zalopay_data(app_trans_id, app_time, 650_000, 261128000000123);

    // A mac under key1 instead of key2: refused, nothing recorded.
    assert_eq!(
        zalopay_return_code(&app, &zalopay_callback(&data, creds::ZALOPAY_KEY1)).await,
        -1
    );
    assert_eq!(app.app.count("payments").await, 0);

    let callback = zalopay_callback(&data, creds::ZALOPAY_KEY2);
    assert_eq!(zalopay_return_code(&app, &callback).await, 1);
    let now = app.invoice_now(id).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["amount_paid"], 650000);
    assert_eq!(
        stored_attempt(&app, id_of(&attempt)).await.status,
        "succeeded"
    );

    // ZaloPay calls back again: acknowledged, nothing new.
    assert_eq!(zalopay_return_code(&app, &callback).await, 1);
    assert_eq!(app.app.count("payments").await, 1);
    let payments = payments_of(&app, id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["channel"], "zalopay");
    assert_eq!(payments[0]["provider_txn_id"], "261128000000123");
    assert_eq!(payments[0]["amount"], 650000);
    assert_eq!(payments[0]["exception"], Value::Null);
}

async fn zalopay_refusals_fail_the_attempt_with_the_most_specific_code(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let id = id_of(&invoice);
    let cases = [
        (
            ResponseTemplate::new(200).set_body_json(json!({
                "return_code": 2,
                "return_message": "Giao dịch thất bại",
                "sub_return_code": -68,
                "sub_return_message": "Mã giao dịch bị trùng",
            })),
            "-68",
        ),
        (
            ResponseTemplate::new(200)
                .set_body_json(json!({ "return_code": 2, "return_message": "Giao dịch thất bại" })),
            "2",
        ),
        (
            ResponseTemplate::new(502).set_body_string("Bad Gateway"),
            "bad_answer",
        ),
    ];
    for (answer, code) in cases {
        app.provider_api.verify().await;
        app.provider_api.reset().await;
        mount(&app, ZALOPAY_CREATE, answer, 1).await;
        let refused = app.attempt(id, "zalopay").await;
        let attempt_id = provider_error(&refused, "zalopay", code);
        assert_not_started(&app, &attempt_id, code).await;
        assert_eq!(zalopay_creates(&app).await.len(), 1, "{code}: one call");
        assert_eq!(app.invoice_now(id).await["status"], "open", "{code}");
    }
    app.provider_api.verify().await;
    app.provider_api.reset().await;
    mount(&app, ZALOPAY_CREATE, zalopay_accepts(), 1).await;
    let retry = started(&app, id, "zalopay").await;
    assert_eq!(retry["pay_url"], ZALOPAY_ORDER_URL);
    assert_eq!(app.app.count("payment_attempts").await, 4);
}

async fn an_unconfigured_channel_is_unavailable_and_has_no_callback(backend: Backend) {
    let app = spawn_payments_app_with(backend, |s| s.providers.momo = None).await;
    let invoice = app.invoice("HS-1").await;
    let refused = app.attempt(id_of(&invoice), "momo").await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.code(), "channel_unavailable");
    assert_eq!(refused.json()["details"]["channel"], "momo");
    assert_eq!(app.app.count("payment_attempts").await, 0);
    let ipn = momo_ipn("261128K7QX2M9PTB4H", 650_000, 4088878653, 0, "Thành công.");
    let callback = app.callback("momo", "", ipn, &[JSON]).await;
    assert_eq!(callback.status, 404, "{}", callback.text);
    assert_eq!(app.app.count("payments").await, 0);
    assert!(momo_creates(&app).await.is_empty());
    // The other gateways are unaffected.
    mount(&app, ZALOPAY_CREATE, zalopay_accepts(), 1).await;
    started(&app, id_of(&invoice), "zalopay").await;
}

async fn bad_attempt_bodies_are_refused_before_any_provider_is_called(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let attempts = format!("/v1/invoices/{}/attempts", id_of(&invoice));
    let send = |body: &'static str, content_type: &'static str| {
        let app = &app;
        let attempts = attempts.clone();
        async move {
            app.app
                .post_raw(
                    &attempts,
                    &app.system_key,
                    body.as_bytes().to_vec(),
                    &[("Content-Type", content_type)],
                )
                .await
        }
    };
    let unprocessable = [
        (r#"{}"#, "no channel"),
        (r#"{"locale":"en"}"#, "no channel, a locale"),
        (r#"{"channel":null}"#, "a null channel"),
        (r#"{"channel":5}"#, "a number for the channel"),
        (r#"{"channel":["momo"]}"#, "a list for the channel"),
        (
            r#"{"channel":{"name":"momo"}}"#,
            "an object for the channel",
        ),
        (r#"{"channel":"paypal"}"#, "an unknown channel"),
        (r#"{"channel":"MOMO"}"#, "a channel in capitals"),
        (r#"{"channel":""}"#, "an empty channel"),
        (r#"{"channel":"cash"}"#, "cash, which is not cashless"),
        (r#"{"channel":"momo","amount":1000}"#, "an unknown field"),
        (
            r#"{"channel":"momo","Locale":"en"}"#,
            "a field in the wrong case",
        ),
        (r#"{"channel":"momo","locale":"fr"}"#, "an unknown locale"),
        (
            r#"{"channel":"momo","locale":"vi"}"#,
            "MoMo's own word for vn",
        ),
        (r#"{"channel":"momo","locale":""}"#, "an empty locale"),
        (
            r#"{"channel":"momo","locale":1}"#,
            "a number for the locale",
        ),
        (
            r#"{"channel":"momo","channel":"zalopay"}"#,
            "the channel twice",
        ),
        ("null", "null"),
        ("\"momo\"", "a string"),
        ("42", "a number"),
        ("[]", "an empty list"),
        (r#"["momo"]"#, "a list"),
        (
            r#"["bank_transfer","en"]"#,
            "a list that would fill the fields in order",
        ),
    ];
    for (body, why) in unprocessable {
        let answer = send(body, "application/json").await;
        assert_eq!(answer.status, 422, "{why}: {}", answer.text);
        assert_eq!(answer.code(), "validation_failed", "{why}");
    }
    let field = |body: &'static str| {
        let send = &send;
        async move { send(body, "application/json").await.json()["details"]["field"].clone() }
    };
    assert_eq!(field(r#"{"channel":"paypal"}"#).await, "channel");
    assert_eq!(field(r#"{"channel":5}"#).await, "channel");
    assert_eq!(field(r#"{"channel":"momo","locale":"fr"}"#).await, "locale");
    assert_eq!(field(r#"{}"#).await, "channel");
    assert_eq!(
        field(r#"{"channel":"momo","channel":"momo"}"#).await,
        "channel"
    );

    let malformed = [
        ("", "an empty body"),
        ("{", "an unfinished object"),
        (r#"{"channel":"momo""#, "an unclosed object"),
        (r#"{"channel":"momo",}"#, "a trailing comma"),
        (r#"{'channel':'momo'}"#, "single quotes"),
        (r#"{channel:"momo"}"#, "a bare key"),
        (r#"{"channel":"momo"} {"channel":"zalopay"}"#, "two objects"),
        (r#"{"channel":"momo"}x"#, "trailing text"),
        ("channel=momo", "a form body sent as JSON"),
    ];
    for (body, why) in malformed {
        let answer = send(body, "application/json").await;
        assert_eq!(answer.status, 400, "{why}: {}", answer.text);
        assert_eq!(answer.code(), "malformed_json", "{why}");
    }
    let form = send("channel=momo", "application/x-www-form-urlencoded").await;
    assert_eq!(form.status, 415, "{}", form.text);
    assert_eq!(form.code(), "unsupported_media_type");

    assert_eq!(app.app.count("payment_attempts").await, 0);
    assert!(
        app.provider_api
            .received_requests()
            .await
            .unwrap()
            .is_empty(),
        "no provider was called"
    );
    // A null locale is the default, and the endpoint still works.
    mount(&app, MOMO_CREATE, momo_accepts, 1).await;
    let fine = send(r#"{"channel":"momo","locale":null}"#, "application/json").await;
    assert_eq!(fine.status, 201, "{}", fine.text);
    assert_eq!(momo_creates(&app).await[0]["lang"], "vi");
}
