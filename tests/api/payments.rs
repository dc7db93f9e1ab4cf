//! Paying invoices: attempts on every channel, each payment recorded
//! exactly once, money that cannot be applied held as an exception, cash
//! at the counter.

use serde_json::{Value, json};

use crate::helpers::{
    BANK_ACCOUNT, Backend, PaymentsApp, creds, hmac_sha512_hex, spawn_payments_app,
};
use crate::on_both_backends;

on_both_backends!(
    an_account_is_shared_only_within_one_scope,
    gateway_money_for_no_known_order_is_seen_by_the_provinces_officers,
    a_vnpay_attempt_gives_a_signed_payment_url,
    a_bank_transfer_attempt_gives_the_account_and_a_vietqr_code,
    a_paid_vnpay_callback_pays_the_invoice_once,
    fifty_identical_callbacks_at_once_record_one_payment,
    two_providers_paying_at_once_leave_one_overpaid_exception,
    money_that_cannot_be_applied_is_kept_as_an_exception,
    a_transfer_naming_no_invoice_is_kept_for_the_receiving_agency,
    a_failed_payment_only_fails_the_attempt,
    only_open_invoices_accept_attempts,
    cash_at_the_counter_is_recorded_once_per_key_and_receipt,
    payments_and_exceptions_are_scoped,
    control_characters_in_a_verified_callback_are_cleaned_or_refused,
    a_transfer_to_another_account_is_not_applied,
    a_payment_made_before_expiry_counts_when_its_callback_comes_after,
    receipt_numbers_are_unique_per_agency_and_year,
);

/// A VNPay IPN for `txn_ref`, signed in the test from the sorted,
/// form-encoded `vnp_*` parameters, as DOMAIN.md spells out.
pub fn vnpay_ipn(txn_ref: &str, amount: i64, transaction_no: &str, code: &str) -> String {
    vnpay_ipn_paid_at(txn_ref, amount, transaction_no, code, "20261128143000")
}

/// A VNPay IPN of a payment made at `pay_date` (`yyyyMMddHHmmss`, Vietnam time).
pub fn vnpay_ipn_paid_at(
    txn_ref: &str,
    amount: i64,
    transaction_no: &str,
    code: &str,
    pay_date: &str,
) -> String {
    let signed = format!(
        "vnp_Amount={}&vnp_BankCode=NCB&vnp_BankTranNo=VNP14422574&vnp_CardType=ATM\
         &vnp_OrderInfo=Thanh+toan+phi+ho+so&vnp_PayDate={pay_date}&vnp_ResponseCode={code}\
         &vnp_TmnCode={}&vnp_TransactionNo={transaction_no}&vnp_TransactionStatus={code}\
         &vnp_TxnRef={txn_ref}",
        amount * 100,
        creds::VNPAY_TMN,
    );
    let hash = hmac_sha512_hex(creds::VNPAY_SECRET, &signed);
    format!("{signed}&vnp_SecureHash={hash}")
}

/// A SePay notification of an incoming transfer, with the API key header.
pub fn sepay_transfer(id: i64, amount: i64, content: &str) -> Vec<u8> {
    sepay_transfer_to(BANK_ACCOUNT, id, amount, content)
}

/// A SePay notification of a transfer into `account`.
pub fn sepay_transfer_to(account: &str, id: i64, amount: i64, content: &str) -> Vec<u8> {
    json!({
        "id": id,
        "gateway": "Vietcombank",
        "transactionDate": "2026-11-28 14:30:00",
        "accountNumber": account,
        "code": null,
        "content": content,
        "transferType": "in",
        "transferAmount": amount,
        "accumulated": 19077000,
        "subAccount": null,
        "referenceCode": "MBVCB.3278907687",
        "description": ""
    })
    .to_string()
    .into_bytes()
}

pub fn sepay_auth() -> String {
    format!("Apikey {}", creds::SEPAY_API_KEY)
}

pub fn rsp_code(response: &crate::helpers::Response) -> String {
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()["RspCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub async fn vnpay_attempt(app: &PaymentsApp, dossier: &str) -> (Value, Value) {
    let invoice = app.invoice(dossier).await;
    let attempt = app.attempt(invoice["id"].as_str().unwrap(), "vnpay").await;
    assert_eq!(attempt.status, 201, "{}", attempt.text);
    (invoice, attempt.json())
}

async fn event_types(app: &PaymentsApp) -> Vec<String> {
    let pool = app.app.raw_pool().await;
    let types: Vec<String> = sqlx::query_scalar("SELECT type FROM outbox_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    types
}

async fn a_vnpay_attempt_gives_a_signed_payment_url(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, attempt) = vnpay_attempt(&app, "HS-1").await;
    assert_eq!(attempt["channel"], "vnpay");
    assert_eq!(attempt["status"], "pending");
    assert_eq!(attempt["amount"], 650000);
    let url = attempt["pay_url"].as_str().unwrap();
    let (base, query) = url.split_once('?').unwrap();
    assert_eq!(base, "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html");
    let (signed, hash) = query.split_once("&vnp_SecureHash=").unwrap();
    assert_eq!(hash, hmac_sha512_hex(creds::VNPAY_SECRET, signed));
    let params: Vec<(String, String)> = form_urlencoded::parse(signed.as_bytes())
        .into_owned()
        .collect();
    let keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "parameters are signed in key order");
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("vnp_Amount"), "65000000");
    assert_eq!(get("vnp_Version"), "2.1.0");
    assert_eq!(get("vnp_Command"), "pay");
    assert_eq!(get("vnp_CurrCode"), "VND");
    assert_eq!(get("vnp_TmnCode"), creds::VNPAY_TMN);
    assert_eq!(get("vnp_TxnRef"), attempt["order_ref"].as_str().unwrap());
    assert_eq!(get("vnp_CreateDate").len(), 14);
    let code = invoice["payment_code"].as_str().unwrap();
    assert_eq!(
        get("vnp_ReturnUrl"),
        format!("{}/pay/{code}/return/vnpay", app.app.address)
    );
}

async fn a_bank_transfer_attempt_gives_the_account_and_a_vietqr_code(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let attempt = app
        .attempt(invoice["id"].as_str().unwrap(), "bank_transfer")
        .await;
    assert_eq!(attempt.status, 201, "{}", attempt.text);
    let transfer = &attempt.json()["bank_transfer"];
    let code = invoice["payment_code"].as_str().unwrap();
    assert_eq!(transfer["bank_bin"], "970436");
    assert_eq!(transfer["account_number"], BANK_ACCOUNT);
    assert_eq!(transfer["amount"], 650000);
    assert!(transfer["transfer_note"].as_str().unwrap().contains(code));
    let qr = transfer["vietqr"].as_str().unwrap();
    let expected_start = format!(
        "000201010212\
         38570010A000000727012700069704360113{BANK_ACCOUNT}0208QRIBFTTA\
         530370454066500005802VN62{:02}08{:02}",
        4 + code.len(),
        code.len(),
    );
    assert!(qr.starts_with(&expected_start), "{qr}");
    // CRC-16/CCITT-FALSE over everything up to and including "6304".
    let (body, crc) = qr.split_at(qr.len() - 4);
    assert!(body.ends_with("6304"));
    let mut sum: u16 = 0xFFFF;
    for byte in body.bytes() {
        sum ^= u16::from(byte) << 8;
        for _ in 0..8 {
            sum = if sum & 0x8000 != 0 {
                (sum << 1) ^ 0x1021
            } else {
                sum << 1
            };
        }
    }
    assert_eq!(crc, format!("{sum:04X}"));
}

async fn a_paid_vnpay_callback_pays_the_invoice_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, attempt) = vnpay_attempt(&app, "HS-1").await;
    let ipn = vnpay_ipn(
        attempt["order_ref"].as_str().unwrap(),
        650_000,
        "14422574",
        "00",
    );
    let first = app.callback("vnpay", &ipn, vec![], &[]).await;
    assert_eq!(rsp_code(&first), "00");
    let id = invoice["id"].as_str().unwrap();
    let now = app.invoice_now(id).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["amount_paid"], 650000);
    // The same IPN again, as VNPay retries: "already confirmed", nothing new.
    let again = app.callback("vnpay", &ipn, vec![], &[]).await;
    assert_eq!(rsp_code(&again), "02");
    assert_eq!(app.app.count("payments").await, 1);
    assert_eq!(
        event_types(&app).await,
        vec!["payment.received", "invoice.paid"]
    );
    let payments = app
        .app
        .get(&format!("/v1/invoices/{id}/payments"), &app.finance_key)
        .await;
    assert_eq!(payments.status, 200, "{}", payments.text);
    let items = payments.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["channel"], "vnpay");
    assert_eq!(items[0]["provider_txn_id"], "14422574");
    assert_eq!(items[0]["amount"], 650000);
    assert_eq!(items[0]["exception"], Value::Null);
    let audit = app
        .app
        .get("/v1/audit?object_type=payment", &app.app.admin_key)
        .await;
    assert_eq!(audit.json()["items"][0]["actor"], "system:callback:vnpay");
}

async fn fifty_identical_callbacks_at_once_record_one_payment(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, attempt) = vnpay_attempt(&app, "HS-1").await;
    let ipn = vnpay_ipn(attempt["order_ref"].as_str().unwrap(), 650_000, "777", "00");
    let answers =
        futures_util::future::join_all((0..50).map(|_| app.callback("vnpay", &ipn, vec![], &[])))
            .await;
    let codes: Vec<String> = answers.iter().map(rsp_code).collect();
    assert_eq!(codes.iter().filter(|c| *c == "00").count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "02").count(), 49, "{codes:?}");
    assert_eq!(app.app.count("payments").await, 1);
    assert_eq!(
        event_types(&app).await,
        vec!["payment.received", "invoice.paid"]
    );
    let now = app.invoice_now(invoice["id"].as_str().unwrap()).await;
    assert_eq!(now["amount_paid"], 650000);
}

async fn two_providers_paying_at_once_leave_one_overpaid_exception(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, attempt) = vnpay_attempt(&app, "HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let ipn = vnpay_ipn(attempt["order_ref"].as_str().unwrap(), 650_000, "888", "00");
    let auth = crate::payments::sepay_auth();
    let note = format!("NGUYEN VAN A chuyen tien {code}");
    let transfer = sepay_transfer(92704, 650_000, &note);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (vnpay, sepay) = tokio::join!(
        app.callback("vnpay", &ipn, vec![], &[]),
        app.callback("sepay", "", transfer, &headers),
    );
    assert_eq!(sepay.status, 200, "{}", sepay.text);
    let vnpay_code = rsp_code(&vnpay);
    let now = app.invoice_now(invoice["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "paid");
    assert_eq!(now["amount_paid"], 650000);
    assert_eq!(app.app.count("payments").await, 2);
    let exceptions = app.app.get("/v1/exceptions", &app.finance_key).await;
    let items = exceptions.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["kind"], "overpaid");
    assert_eq!(items[0]["status"], "open");
    assert_eq!(items[0]["amount"], 650000);
    // VNPay hears "confirmed" if it came first, "already confirmed" if not.
    assert!(["00", "02"].contains(&vnpay_code.as_str()), "{vnpay_code}");
    let types = event_types(&app).await;
    assert_eq!(types.iter().filter(|t| *t == "payment.received").count(), 2);
    assert_eq!(types.iter().filter(|t| *t == "invoice.paid").count(), 1);
    assert_eq!(types.iter().filter(|t| *t == "exception.opened").count(), 1);
}

async fn money_that_cannot_be_applied_is_kept_as_an_exception(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    // A wrong amount: VNPay hears 04, the money is kept.
    let (first, attempt) = vnpay_attempt(&app, "HS-1").await;
    let short = vnpay_ipn(
        attempt["order_ref"].as_str().unwrap(),
        600_000,
        "1001",
        "00",
    );
    assert_eq!(
        rsp_code(&app.callback("vnpay", &short, vec![], &[]).await),
        "04"
    );
    assert_eq!(
        rsp_code(&app.callback("vnpay", &short, vec![], &[]).await),
        "04",
        "a replay answers the same"
    );
    assert_eq!(
        app.invoice_now(first["id"].as_str().unwrap()).await["status"],
        "open"
    );
    // An order lephi never issued: VNPay hears 01, the money is kept.
    let unknown = vnpay_ipn("261128NOSUCHORDER", 50_000, "1002", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &unknown, vec![], &[]).await),
        "01"
    );
    // A cancelled invoice paid late.
    let (second, attempt) = vnpay_attempt(&app, "HS-2").await;
    let id = second["id"].as_str().unwrap();
    let cancel = app
        .app
        .post(
            &format!("/v1/invoices/{id}/cancel"),
            &app.system_key,
            &json!({}),
        )
        .await;
    assert_eq!(cancel.status, 200, "{}", cancel.text);
    let late = vnpay_ipn(
        attempt["order_ref"].as_str().unwrap(),
        650_000,
        "1003",
        "00",
    );
    assert_eq!(
        rsp_code(&app.callback("vnpay", &late, vec![], &[]).await),
        "02"
    );
    assert_eq!(app.invoice_now(id).await["status"], "cancelled");

    assert_eq!(app.app.count("payments").await, 3);
    let all = app.app.get("/v1/exceptions", &app.app.admin_key).await;
    let mut kinds: Vec<String> = all.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["amount_mismatch", "late_payment", "unknown_order"]);
    let filtered = app
        .app
        .get(
            "/v1/exceptions?kind=late_payment&status=open",
            &app.finance_key,
        )
        .await;
    assert_eq!(filtered.json()["items"].as_array().unwrap().len(), 1);
    let bad = app
        .app
        .get("/v1/exceptions?kind=lost", &app.finance_key)
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "invalid_query");
}

async fn a_transfer_naming_no_invoice_is_kept_for_the_receiving_agency(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let auth = sepay_auth();
    let headers = [("Authorization", auth.as_str())];
    let transfer = sepay_transfer(5001, 200_000, "ung ho quy");
    let answer = app.callback("sepay", "", transfer, &headers).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["success"], true);
    // The receiving account names P.D1: its officers see the exception.
    let district = app.app.key(lephi::domain::Role::Finance, "P.D1").await;
    let seen = app.app.get("/v1/exceptions", &district).await;
    let items = seen.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["kind"], "unknown_order");
    assert_eq!(items[0]["agency_code"], "P.D1");
    let other = app.app.key(lephi::domain::Role::Finance, "Q").await;
    let unseen = app.app.get("/v1/exceptions", &other).await;
    assert_eq!(unseen.json()["items"].as_array().unwrap().len(), 0);
    // An outgoing transfer is acknowledged and not recorded.
    let mut outgoing: Value = serde_json::from_slice(&sepay_transfer(5002, 10_000, "phi")).unwrap();
    outgoing["transferType"] = json!("out");
    let answer = app
        .callback("sepay", "", outgoing.to_string().into_bytes(), &headers)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.app.count("payments").await, 1);
}

async fn a_failed_payment_only_fails_the_attempt(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, attempt) = vnpay_attempt(&app, "HS-1").await;
    let order_ref = attempt["order_ref"].as_str().unwrap();
    let declined = vnpay_ipn(order_ref, 650_000, "0", "24");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &declined, vec![], &[]).await),
        "00"
    );
    assert_eq!(app.app.count("payments").await, 0);
    let pool = app.app.raw_pool().await;
    let (status, provider_code): (String, String) =
        sqlx::query_as("SELECT status, provider_code FROM payment_attempts WHERE order_ref = $1")
            .bind(order_ref)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!((status.as_str(), provider_code.as_str()), ("failed", "24"));
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
    // The payer tries again and pays.
    let retry = app.attempt(invoice["id"].as_str().unwrap(), "vnpay").await;
    let order_ref = retry.json()["order_ref"].as_str().unwrap().to_owned();
    let paid = vnpay_ipn(&order_ref, 650_000, "5555", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &paid, vec![], &[]).await),
        "00"
    );
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "paid"
    );
}

async fn only_open_invoices_accept_attempts(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let id = invoice["id"].as_str().unwrap();
    app.app
        .post(
            &format!("/v1/invoices/{id}/cancel"),
            &app.system_key,
            &json!({}),
        )
        .await;
    let refused = app.attempt(id, "vnpay").await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.code(), "invalid_state");
    let cash = app.attempt(id, "cash").await;
    assert_eq!(cash.status, 422);
    let bogus = app.attempt(id, "paypal").await;
    assert_eq!(bogus.status, 422);
    let missing = app.attempt("no-such-invoice", "vnpay").await;
    assert_eq!(missing.status, 404);
    // A finance key does not start payments.
    let fresh = app.invoice("HS-2").await;
    let forbidden = app
        .app
        .post(
            &format!("/v1/invoices/{}/attempts", fresh["id"].as_str().unwrap()),
            &app.finance_key,
            &json!({ "channel": "vnpay" }),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    // An agency with no receiving account cannot take transfers.
    let other = app.app.key(lephi::domain::Role::AgencySystem, "P.D2").await;
    let created = app
        .app
        .create_invoice(
            &other,
            "HS-3",
            &crate::helpers::invoice_body("P.D2", "HS-3"),
        )
        .await;
    let no_account = app
        .app
        .post(
            &format!(
                "/v1/invoices/{}/attempts",
                created.json()["id"].as_str().unwrap()
            ),
            &other,
            &json!({ "channel": "bank_transfer" }),
        )
        .await;
    assert_eq!(no_account.status, 422, "{}", no_account.text);
    assert_eq!(no_account.code(), "channel_unavailable");
}

async fn cash_at_the_counter_is_recorded_once_per_key_and_receipt(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let id = invoice["id"].as_str().unwrap();
    let path = format!("/v1/invoices/{id}/cash-payments");
    let body = json!({ "amount": 650000, "receipt_number": "0000123", "received_at": "2026-11-28T08:00:00+07:00" });
    let send = |key: &'static str, body: Value| {
        let app = &app;
        let path = path.clone();
        async move {
            app.app
                .request(
                    reqwest::Method::POST,
                    &path,
                    Some(&app.finance_key),
                    Some(&body),
                    &[("Idempotency-Key", key)],
                )
                .await
        }
    };
    let first = send("cash-1", body.clone()).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json()["channel"], "cash");
    assert_eq!(first.json()["source"], "counter");
    let replay = send("cash-1", body.clone()).await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.text, first.text);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let reused = send("cash-1", json!({ "amount": 1, "receipt_number": "0000124", "received_at": "2026-11-28T08:00:00+07:00" })).await;
    assert_eq!(reused.status, 422);
    assert_eq!(reused.code(), "idempotency_key_reused");
    // The same receipt under another key is the same payment.
    let same_receipt = send("cash-2", body.clone()).await;
    assert_eq!(same_receipt.status, 200, "{}", same_receipt.text);
    assert_eq!(same_receipt.json()["id"], first.json()["id"]);
    assert_eq!(app.app.count("payments").await, 1);
    assert_eq!(app.invoice_now(id).await["status"], "paid");
    // Bad input changes nothing.
    for bad in [
        json!({ "amount": 0, "receipt_number": "9", "received_at": "2026-11-28T08:00:00+07:00" }),
        json!({ "amount": 100, "receipt_number": "a b", "received_at": "2026-11-28T08:00:00+07:00" }),
        json!({ "amount": 100, "receipt_number": "9", "received_at": "2999-01-01T00:00:00Z" }),
    ] {
        let refused = send("cash-bad", bad).await;
        assert_eq!(refused.status, 422, "{}", refused.text);
    }
    let missing_key = app.app.post(&path, &app.finance_key, &body).await;
    assert_eq!(missing_key.status, 400);
    let not_finance = app
        .app
        .request(
            reqwest::Method::POST,
            &path,
            Some(&app.system_key),
            Some(&body),
            &[("Idempotency-Key", "cash-3")],
        )
        .await;
    assert_eq!(not_finance.status, 403);
    assert_eq!(app.app.count("payments").await, 1);
}

async fn payments_and_exceptions_are_scoped(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, attempt) = vnpay_attempt(&app, "HS-1").await;
    let ipn = vnpay_ipn(attempt["order_ref"].as_str().unwrap(), 650_000, "42", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    let unknown = vnpay_ipn("261128UNKNOWN", 1_000, "43", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &unknown, vec![], &[]).await),
        "01"
    );
    let province = app.app.get("/v1/payments", &app.finance_key).await;
    assert_eq!(province.json()["items"].as_array().unwrap().len(), 1);
    let everyone = app.app.get("/v1/payments", &app.app.admin_key).await;
    assert_eq!(everyone.json()["items"].as_array().unwrap().len(), 2);
    let other = app.app.key(lephi::domain::Role::Finance, "Q").await;
    let none = app.app.get("/v1/payments", &other).await;
    assert_eq!(none.json()["items"].as_array().unwrap().len(), 0);
    let elsewhere = app.app.get("/v1/payments?agency_code=P", &other).await;
    assert_eq!(elsewhere.status, 404);
    let by_channel = app
        .app
        .get("/v1/payments?channel=momo", &app.app.admin_key)
        .await;
    assert_eq!(by_channel.json()["items"].as_array().unwrap().len(), 0);
    let paged = app
        .app
        .get("/v1/payments?limit=1", &app.app.admin_key)
        .await
        .json();
    let cursor = paged["next_cursor"].as_str().unwrap();
    let next = app
        .app
        .get(
            &format!("/v1/payments?limit=1&cursor={cursor}"),
            &app.app.admin_key,
        )
        .await
        .json();
    assert_ne!(paged["items"][0]["id"], next["items"][0]["id"]);
    assert_eq!(next["next_cursor"], Value::Null);
}

async fn control_characters_in_a_verified_callback_are_cleaned_or_refused(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    // PostgreSQL refuses NUL in text: the note is cleaned, the money kept.
    let note = format!("chuyen tien\u{0000}{code}\u{0007}");
    let auth = sepay_auth();
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer(31337, 650_000, &note),
            &[("Authorization", auth.as_str())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "paid"
    );
    let payments = app.app.get("/v1/payments", &app.finance_key).await.json();
    let reference = payments["items"][0]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!reference.chars().any(char::is_control), "{reference:?}");
    // A signed order reference with a NUL byte is refused as malformed,
    // not retried forever.
    let ipn = vnpay_ipn("261128ABC%00DEF", 650_000, "9001", "00");
    let refused = app.callback("vnpay", &ipn, vec![], &[]).await;
    assert_eq!(rsp_code(&refused), "99");
    assert_eq!(app.app.count("payments").await, 1);
}

async fn a_transfer_to_another_account_is_not_applied(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let id = invoice["id"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();
    // P.D2 receives on its own account; the payer sends P.D1's invoice there.
    let account = app
        .app
        .request(
            reqwest::Method::PUT,
            "/v1/agencies/P.D2/bank-account",
            Some(&app.app.admin_key),
            Some(&json!({ "bank_bin": "970415", "account_number": "9990001", "account_name": "UBND HUYEN D2" })),
            &[],
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let auth = sepay_auth();
    let headers = [("Authorization", auth.as_str())];
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer_to("9990001", 7001, 650_000, code),
            &headers,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.invoice_now(id).await["status"], "open");
    let exceptions = app.app.get("/v1/exceptions", &app.finance_key).await.json();
    assert_eq!(exceptions["items"][0]["kind"], "wrong_account");
    assert_eq!(exceptions["items"][0]["invoice_id"], id);
    // The money sits with P.D2, whose officers see it.
    assert_eq!(exceptions["items"][0]["agency_code"], "P.D2");
    // An account no agency has is not P.D1's either.
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer_to("123", 7002, 650_000, code),
            &headers,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.invoice_now(id).await["status"], "open");
    // Into P.D1's own account it pays.
    let answer = app
        .callback("sepay", "", sepay_transfer(7003, 650_000, code), &headers)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.invoice_now(id).await["status"], "paid");
    assert_eq!(app.app.count("payments").await, 3);
    assert_eq!(app.app.count("payment_exceptions").await, 2);
}

/// `yyyyMMddHHmmss` in Vietnam time, as VNPay writes it.
pub fn vietnam_clock(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::macros::offset!(+7));
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

async fn a_payment_made_before_expiry_counts_when_its_callback_comes_after(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let issue = |dossier: &'static str| {
        let app = &app;
        async move {
            let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
            let mut body = crate::helpers::invoice_body("P.D1", dossier);
            body["expires_at"] = json!(
                expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap()
            );
            let created = app
                .app
                .create_invoice(&app.system_key, dossier, &body)
                .await;
            assert_eq!(created.status, 201, "{}", created.text);
            let invoice = created.json();
            let attempt = app.attempt(invoice["id"].as_str().unwrap(), "vnpay").await;
            assert_eq!(attempt.status, 201, "{}", attempt.text);
            (
                invoice,
                attempt.json()["order_ref"].as_str().unwrap().to_owned(),
                expires,
            )
        }
    };
    let (in_time, in_time_ref, expires) = issue("HS-1").await;
    let (too_late, too_late_ref, _) = issue("HS-2").await;
    let paid_before = vietnam_clock(time::OffsetDateTime::now_utc());
    // VNPay's clock has whole seconds: wait until a whole second past expiry.
    while time::OffsetDateTime::now_utc() < expires + time::Duration::milliseconds(1200) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let paid_after = vietnam_clock(time::OffsetDateTime::now_utc());
    let ipn = vnpay_ipn_paid_at(&in_time_ref, 650_000, "8801", "00", &paid_before);
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    assert_eq!(
        app.invoice_now(in_time["id"].as_str().unwrap()).await["status"],
        "paid"
    );
    let ipn = vnpay_ipn_paid_at(&too_late_ref, 650_000, "8802", "00", &paid_after);
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "02"
    );
    assert_eq!(
        app.invoice_now(too_late["id"].as_str().unwrap()).await["status"],
        "expired"
    );
    let exceptions = app.app.get("/v1/exceptions", &app.finance_key).await.json();
    assert_eq!(exceptions["items"].as_array().unwrap().len(), 1);
    assert_eq!(exceptions["items"][0]["kind"], "late_payment");
    assert_eq!(exceptions["items"][0]["invoice_id"], too_late["id"]);
}

async fn receipt_numbers_are_unique_per_agency_and_year(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let record = |invoice: Value, key: &'static str, receipt: &'static str, at: &'static str| {
        let app = &app;
        async move {
            let id = invoice["id"].as_str().unwrap().to_owned();
            app.app
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/invoices/{id}/cash-payments"),
                    Some(&app.finance_key),
                    Some(
                        &json!({ "amount": 650000, "receipt_number": receipt, "received_at": at }),
                    ),
                    &[("Idempotency-Key", key)],
                )
                .await
        }
    };
    let first = app.invoice("HS-1").await;
    let second = app.invoice("HS-2").await;
    let recorded = record(first.clone(), "k1", "0000001", "2025-12-30T09:00:00+07:00").await;
    assert_eq!(recorded.status, 201, "{}", recorded.text);
    assert!(
        recorded.json()["provider_txn_id"]
            .as_str()
            .unwrap()
            .ends_with("/2025/0000001")
    );
    // The same number for another invoice in the same year is refused...
    let taken = record(second.clone(), "k2", "0000001", "2025-12-31T09:00:00+07:00").await;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert_eq!(taken.code(), "receipt_number_taken");
    assert_eq!(taken.json()["details"]["payment_id"], recorded.json()["id"]);
    assert_eq!(
        app.invoice_now(second["id"].as_str().unwrap()).await["status"],
        "open"
    );
    // ...and the refused key can be used again once corrected.
    let next_year = record(second.clone(), "k2", "0000001", "2026-01-02T09:00:00+07:00").await;
    assert_eq!(next_year.status, 201, "{}", next_year.text);
    assert_eq!(
        app.invoice_now(second["id"].as_str().unwrap()).await["status"],
        "paid"
    );
    assert_eq!(app.app.count("payments").await, 2);
    // Payments are for officers: a dossier system does not list them.
    let system = app.app.get("/v1/payments", &app.system_key).await;
    assert_eq!(system.status, 403);
    let first_id = first["id"].as_str().unwrap();
    let system = app
        .app
        .get(
            &format!("/v1/invoices/{first_id}/payments"),
            &app.system_key,
        )
        .await;
    assert_eq!(system.status, 403);
}

async fn an_account_is_shared_only_within_one_scope(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let other_admin = app.app.key(lephi::domain::Role::Admin, "Q").await;
    let p_admin = app.app.key(lephi::domain::Role::Admin, "P").await;
    let put = |key: String, code: &'static str, number: &'static str| {
        let app = &app;
        async move {
            app.app
                .request(
                    reqwest::Method::PUT,
                    &format!("/v1/agencies/{code}/bank-account"),
                    Some(&key),
                    Some(&json!({ "bank_bin": "970415", "account_number": number, "account_name": "KHO BAC" })),
                    &[],
                )
                .await
        }
    };
    // Another province's admin cannot take P.D1's account: transfers to it
    // naming no invoice would belong to no one.
    let taken = put(other_admin.clone(), "Q", BANK_ACCOUNT).await;
    assert_eq!(
        (taken.status, taken.code()),
        (409, "bank_account_taken".into()),
        "{}",
        taken.text
    );
    let q = app
        .app
        .get("/v1/agencies/Q/bank-account", &other_admin)
        .await;
    assert_eq!(q.status, 404, "{}", q.text);
    // Within one scope, agencies may share an account (the treasury's).
    let shared = put(p_admin, "P.D2", BANK_ACCOUNT).await;
    assert_eq!(shared.status, 200, "{}", shared.text);
    // And Q keeps its own.
    let own = put(other_admin, "Q", "123000456").await;
    assert_eq!(own.status, 200, "{}", own.text);
}

async fn gateway_money_for_no_known_order_is_seen_by_the_provinces_officers(backend: Backend) {
    let app = crate::helpers::spawn_payments_app_with(backend, |s| {
        s.providers.unattributed_agency = Some("P".into());
    })
    .await;
    let unknown = vnpay_ipn("261128NOSUCHORDER", 50_000, "1102", "00");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &unknown, vec![], &[]).await),
        "01"
    );
    // P's finance officers, who must act on it, see it; Q's do not.
    let province = app.app.key(lephi::domain::Role::Finance, "P").await;
    let seen = app
        .app
        .get("/v1/exceptions?kind=unknown_order", &province)
        .await
        .json();
    let items = seen["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{seen}");
    assert_eq!(items[0]["agency_code"], "P");
    let payments = app.app.get("/v1/payments", &province).await.json();
    assert_eq!(payments["items"].as_array().unwrap().len(), 1, "{payments}");
    let other = app.app.key(lephi::domain::Role::Finance, "Q").await;
    let unseen = app.app.get("/v1/exceptions", &other).await.json();
    assert_eq!(unseen["items"].as_array().unwrap().len(), 0, "{unseen}");
}
