//! The citizens' pages under `/pay/`: checkout, starting a payment from
//! it, the return from a gateway, the receipt, and receipt numbering.

use std::collections::BTreeSet;

use lephi::domain::Role;
use serde_json::{Value, json};

use crate::callbacks::gateways_accept;
use crate::helpers::{
    BANK_ACCOUNT, Backend, PaymentsApp, Response, TestApp, creds, hmac_sha256_hex, hmac_sha512_hex,
    invoice_body, spawn_app_with, spawn_payments_app, spawn_payments_app_with,
};
use crate::on_both_backends;
use crate::payments::{rsp_code, vietnam_clock, vnpay_ipn_paid_at};

on_both_backends!(
    the_checkout_page_shows_the_invoice_in_both_languages,
    only_channels_that_can_start_are_offered,
    text_from_outside_is_escaped,
    paid_cancelled_and_expired_invoices_show_their_state,
    unknown_codes_get_a_not_found_page,
    too_many_requests_from_one_address_get_429,
    a_client_cannot_name_its_own_address_past_the_proxy,
    the_client_a_trusted_proxy_names_is_limited_sent_to_vnpay_and_audited,
    starting_vnpay_from_the_page_redirects_to_a_signed_url,
    the_bank_transfer_page_draws_the_vietqr_code,
    a_second_channel_while_one_is_pending_asks_first,
    the_return_page_shows_processing_until_the_ipn_then_paid,
    a_return_that_fails_its_signature_changes_nothing,
    a_signed_failed_zalopay_return_shows_failed_at_once,
    a_zalopay_return_that_fails_its_checksum_is_unverified,
    a_zalopay_return_naming_another_invoices_order_is_unverified,
    receipts_are_numbered_per_agency_and_year,
    concurrent_payments_get_consecutive_receipt_numbers,
    a_full_receipt_series_refuses_the_payment_cleanly,
    a_payment_made_before_expiry_counts_after_the_expiry_is_stored,
);

/// A page: status, content type and body.
async fn page(app: &TestApp, path: &str) -> Response {
    let response = app
        .request(reqwest::Method::GET, path, None, None, &[])
        .await;
    if response.status != 429 {
        assert_html(&response);
    }
    response
}

fn assert_html(response: &Response) {
    assert_eq!(
        response.headers["content-type"], "text/html; charset=utf-8",
        "{}",
        response.text
    );
    assert!(response.text.starts_with("<!doctype html>"));
    assert!(!response.text.contains("<script"), "{}", response.text);
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts the checkout page's form for `channel`.
async fn start(app: &TestApp, code: &str, channel: &str, lang: &str) -> Response {
    let response = no_redirects()
        .post(format!("{}/pay/{code}/start/{channel}{lang}", app.address))
        .send()
        .await
        .unwrap();
    Response {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

/// The forms a page offers, as their actions.
fn forms(html: &str) -> Vec<String> {
    html.split("<form method=\"post\" action=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

fn vietnam_year_now() -> i32 {
    time::OffsetDateTime::now_utc()
        .to_offset(time::macros::offset!(+7))
        .year()
}

/// A signed VNPay IPN (or return) of a payment made now.
fn vnpay_paid_now(order_ref: &str, amount: i64, transaction_no: &str, code: &str) -> String {
    let now = vietnam_clock(time::OffsetDateTime::now_utc());
    vnpay_ipn_paid_at(order_ref, amount, transaction_no, code, &now)
}

/// Issues an invoice on `agency` with `key`; returns its JSON.
async fn issue(
    app: &TestApp,
    key: &str,
    agency: &str,
    dossier: &str,
    body: Option<Value>,
) -> Value {
    let body = body.unwrap_or_else(|| invoice_body(agency, dossier));
    let created = app.create_invoice(key, dossier, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()
}

/// Starts VNPay from the checkout page; returns the order reference.
async fn vnpay_from_page(app: &TestApp, code: &str) -> String {
    let started = start(app, code, "vnpay", "").await;
    assert_eq!(started.status, 303, "{}", started.text);
    let location = started.headers["location"].to_str().unwrap();
    let (_, query) = location.split_once('?').unwrap();
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "vnp_TxnRef")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// Pays `invoice` (650,000 đồng) through the page and a VNPay IPN made at
/// `pay_date`; returns the invoice as the API then shows it.
async fn pay_with_vnpay(app: &PaymentsApp, invoice: &Value, txn: &str, pay_date: &str) -> Value {
    let code = invoice["payment_code"].as_str().unwrap();
    let order_ref = vnpay_from_page(&app.app, code).await;
    let ipn = vnpay_ipn_paid_at(&order_ref, 650_000, txn, "00", pay_date);
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    // Read with the province's finance key: the invoice may be any agency's.
    let id = invoice["id"].as_str().unwrap();
    app.app
        .get(&format!("/v1/invoices/{id}"), &app.finance_key)
        .await
        .json()
}

async fn the_checkout_page_shows_the_invoice_in_both_languages(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let mut body = invoice_body("P.D1", "000.00.01.H26-261128-0001");
    body["lines"] = json!([
        { "kind": "le_phi", "description": "Lệ phí cấp giấy phép", "amount": 1000000 },
        { "kind": "phi", "description": "Phí thẩm định hồ sơ", "amount": 500000 }
    ]);
    let invoice = issue(&app.app, &app.system_key, "P.D1", "HS", Some(body)).await;
    let code = invoice["payment_code"].as_str().unwrap();
    let expires_at = time::OffsetDateTime::parse(
        invoice["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .to_offset(time::macros::offset!(+7));
    let due = format!(
        "{:02}/{:02}/{:04} {:02}:{:02}",
        expires_at.day(),
        u8::from(expires_at.month()),
        expires_at.year(),
        expires_at.hour(),
        expires_at.minute()
    );
    let vi = page(&app.app, &format!("/pay/{code}")).await;
    assert_eq!(vi.status, 200);
    let en = page(&app.app, &format!("/pay/{code}?lang=en")).await;
    assert_eq!(en.status, 200);
    for (response, lang) in [(&vi, "vi"), (&en, "en")] {
        let html = &response.text;
        assert!(html.contains(&format!("<html lang=\"{lang}\">")));
        assert!(html.contains("name=\"viewport\""));
        for expected in [
            "Cơ quan P.D1",
            "1.004227",
            "Cấp giấy phép xây dựng",
            "000.00.01.H26-261128-0001",
            "Nguyễn Văn A",
            "Lệ phí cấp giấy phép",
            "Phí thẩm định hồ sơ",
            "1.000.000 ₫",
            "500.000 ₫",
            "1.500.000 ₫",
            code,
            &due,
        ] {
            assert!(html.contains(expected), "{lang}: no {expected} in {html}");
        }
        // Nothing is loaded from elsewhere.
        assert!(!html.contains("src=\""), "{html}");
        assert!(!html.contains("<link"), "{html}");
    }
    for expected in ["Thanh toán qua VNPay", "Lệ phí", "Hạn thanh toán"] {
        assert!(vi.text.contains(expected), "{expected}");
    }
    assert!(vi.text.contains(&format!("href=\"/pay/{code}?lang=en\"")));
    for expected in ["Pay with VNPay", "Administrative fee (lệ phí)", "Pay by"] {
        assert!(en.text.contains(expected), "{expected}");
    }
    assert!(en.text.contains(&format!("href=\"/pay/{code}?lang=vi\"")));
    let channels = ["vnpay", "momo", "zalopay", "bank_transfer"];
    assert_eq!(
        forms(&vi.text),
        channels.map(|c| format!("/pay/{code}/start/{c}"))
    );
    assert_eq!(
        forms(&en.text),
        channels.map(|c| format!("/pay/{code}/start/{c}?lang=en"))
    );
    assert_eq!(vi.headers["cache-control"], "no-store");
    let csp = vi.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self' https:"), "{csp}");
    // Served on a loopback http address: no HSTS.
    assert!(vi.headers.get("strict-transport-security").is_none());
}

async fn only_channels_that_can_start_are_offered(backend: Backend) {
    // No provider is configured (nor the sandbox): only bank transfers,
    // once the agency has an account to receive them.
    let app = spawn_app_with(backend, |settings| settings.sandbox.enabled = Some(false)).await;
    app.seed_agencies().await;
    let key = app.key(Role::AgencySystem, "P").await;
    let d1 = issue(&app, &key, "P.D1", "HS-1", None).await;
    let d2 = issue(&app, &key, "P.D2", "HS-2", None).await;
    let account = app
        .request(
            reqwest::Method::PUT,
            "/v1/agencies/P.D1/bank-account",
            Some(&app.admin_key),
            Some(&json!({ "bank_bin": "970436", "account_number": BANK_ACCOUNT, "account_name": "UBND HUYEN D1" })),
            &[],
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let code = d1["payment_code"].as_str().unwrap();
    let with_account = page(&app, &format!("/pay/{code}")).await;
    assert_eq!(
        forms(&with_account.text),
        vec![format!("/pay/{code}/start/bank_transfer")]
    );
    let without = page(
        &app,
        &format!("/pay/{}", d2["payment_code"].as_str().unwrap()),
    )
    .await;
    assert_eq!(forms(&without.text), Vec::<String>::new());
    assert!(without.text.contains("nộp tại quầy"), "{}", without.text);
    // A channel that is not configured cannot be started by posting anyway.
    let refused = start(&app, code, "vnpay", "").await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_html(&refused);
    assert_eq!(app.count("payment_attempts").await, 0);
}

async fn text_from_outside_is_escaped(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let mut body = invoice_body("P.D1", "HS-1");
    body["payer"]["name"] = json!("<script>alert('payer')</script>");
    body["lines"][0]["description"] = json!("Lệ phí <script>alert(\"line\")</script> & co");
    let invoice = issue(&app.app, &app.system_key, "P.D1", "HS-1", Some(body)).await;
    let code = invoice["payment_code"].as_str().unwrap();
    let checkout = page(&app.app, &format!("/pay/{code}")).await;
    assert!(
        checkout
            .text
            .contains("&lt;script&gt;alert(&#39;payer&#39;)&lt;/script&gt;")
    );
    assert!(
        checkout
            .text
            .contains("Lệ phí &lt;script&gt;alert(&quot;line&quot;)&lt;/script&gt; &amp; co")
    );
    // A hostile query string is escaped in the language toggle too.
    let toggled = page(
        &app.app,
        &format!("/pay/{code}/return/momo?x=%22%3E%3Cscript%3E"),
    )
    .await;
    assert!(!toggled.text.contains("\"><script>"));
    // And on the receipt.
    pay_with_vnpay(
        &app,
        &invoice,
        "5001",
        &vietnam_clock(time::OffsetDateTime::now_utc()),
    )
    .await;
    let receipt = page(&app.app, &format!("/pay/{code}/receipt")).await;
    assert_eq!(receipt.status, 200);
    assert!(
        receipt
            .text
            .contains("&lt;script&gt;alert(&#39;payer&#39;)")
    );
}

async fn paid_cancelled_and_expired_invoices_show_their_state(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let paid = app.invoice("HS-1").await;
    let paid_code = paid["payment_code"].as_str().unwrap();
    pay_with_vnpay(
        &app,
        &paid,
        "6001",
        &vietnam_clock(time::OffsetDateTime::now_utc()),
    )
    .await;
    let shown = page(&app.app, &format!("/pay/{paid_code}")).await;
    assert!(forms(&shown.text).is_empty());
    assert!(shown.text.contains("Hồ sơ đã được thanh toán."));
    assert!(
        shown
            .text
            .contains(&format!("href=\"/pay/{paid_code}/receipt\""))
    );
    let shown = page(&app.app, &format!("/pay/{paid_code}?lang=en")).await;
    assert!(shown.text.contains("This dossier has been paid."));
    assert!(
        shown
            .text
            .contains(&format!("href=\"/pay/{paid_code}/receipt?lang=en\""))
    );

    let cancelled = app.invoice("HS-2").await;
    let id = cancelled["id"].as_str().unwrap();
    let answer = app
        .app
        .post(
            &format!("/v1/invoices/{id}/cancel"),
            &app.system_key,
            &json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let code = cancelled["payment_code"].as_str().unwrap();
    let shown = page(&app.app, &format!("/pay/{code}")).await;
    assert!(forms(&shown.text).is_empty());
    assert!(shown.text.contains("đã bị hủy"), "{}", shown.text);
    // Posting the form anyway goes back to the page that says so.
    let again = start(&app.app, code, "vnpay", "").await;
    assert_eq!(again.status, 303);
    assert_eq!(again.headers["location"], format!("/pay/{code}").as_str());
    let receipt = page(&app.app, &format!("/pay/{code}/receipt")).await;
    assert_eq!(receipt.status, 404);

    let mut body = invoice_body("P.D1", "HS-3");
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    body["expires_at"] = json!(
        expires
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    );
    let expiring = issue(&app.app, &app.system_key, "P.D1", "HS-3", Some(body)).await;
    let code = expiring["payment_code"].as_str().unwrap();
    assert_eq!(
        forms(&page(&app.app, &format!("/pay/{code}")).await.text).len(),
        4
    );
    while time::OffsetDateTime::now_utc() < expires + time::Duration::milliseconds(200) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let shown = page(&app.app, &format!("/pay/{code}?lang=en")).await;
    assert!(forms(&shown.text).is_empty());
    assert!(shown.text.contains("has expired"), "{}", shown.text);
}

async fn unknown_codes_get_a_not_found_page(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let unissued = lephi::domain::PaymentCode::generate(&mut rand::rng());
    let unissued = unissued.as_str();
    for path in [
        format!("/pay/{unissued}"),
        format!("/pay/{unissued}/receipt"),
        format!("/pay/{unissued}/return/vnpay"),
        "/pay/LP23456789ABV".to_owned(),
        "/pay/nothing-like-a-code".to_owned(),
        "/pay/%3Cscript%3E?lang=en".to_owned(),
    ] {
        let response = page(&app.app, &path).await;
        assert_eq!(response.status, 404, "{path}");
        assert!(
            response.text.contains("Không tìm thấy") || response.text.contains("Not found"),
            "{path}: {}",
            response.text
        );
    }
    let started = start(&app.app, unissued, "vnpay", "").await;
    assert_eq!(started.status, 404);
    assert_html(&started);
    // An issued code with an unknown channel, and an unpaid invoice's receipt.
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    assert_eq!(start(&app.app, code, "cash", "").await.status, 404);
    assert_eq!(
        page(&app.app, &format!("/pay/{code}/return/paypal"))
            .await
            .status,
        404
    );
    assert_eq!(
        page(&app.app, &format!("/pay/{code}/receipt")).await.status,
        404
    );
    assert_eq!(app.app.count("payment_attempts").await, 0);
}

async fn too_many_requests_from_one_address_get_429(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.checkout.requests_per_minute = 3;
    })
    .await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    for path in [
        format!("/pay/{code}"),
        "/pay/LP23456789ABV".to_owned(),
        format!("/pay/{code}/receipt"),
    ] {
        assert_ne!(page(&app.app, &path).await.status, 429);
    }
    let limited = page(&app.app, &format!("/pay/{code}")).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["content-type"], "text/html; charset=utf-8");
    let retry_after: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(limited.text.contains("Quá nhiều yêu cầu"));
    assert_eq!(start(&app.app, code, "vnpay", "").await.status, 429);
    assert_eq!(app.app.count("payment_attempts").await, 0);
    // The API is not limited.
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
}

async fn starting_vnpay_from_the_page_redirects_to_a_signed_url(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let started = start(&app.app, code, "vnpay", "?lang=en").await;
    assert_eq!(started.status, 303, "{}", started.text);
    let location = started.headers["location"].to_str().unwrap();
    let (base, query) = location.split_once('?').unwrap();
    assert_eq!(base, "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html");
    let (signed, hash) = query.split_once("&vnp_SecureHash=").unwrap();
    assert_eq!(hash, hmac_sha512_hex(creds::VNPAY_SECRET, signed));
    let params: Vec<(String, String)> = form_urlencoded::parse(signed.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        get("vnp_ReturnUrl"),
        format!("{}/pay/{code}/return/vnpay", app.app.address)
    );
    assert_eq!(get("vnp_Amount"), "65000000");
    assert_eq!(get("vnp_Locale"), "en");
    // The attempt is the API's, opened by the checkout.
    let audit = app
        .app
        .get("/v1/audit?object_type=payment_attempt", &app.app.admin_key)
        .await
        .json();
    let records = audit["items"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["actor"], "system:checkout");
    assert_eq!(records[0]["after"]["order_ref"], get("vnp_TxnRef").as_str());

    // Starting VNPay again soon after goes back to the same order.
    let again = start(&app.app, code, "vnpay", "?lang=en").await;
    assert_eq!(again.status, 303, "{}", again.text);
    assert_eq!(again.headers["location"].to_str().unwrap(), location);
    assert_eq!(app.app.count("payment_attempts").await, 1);

    // Another site's form starts nothing: no gateway order, no attempt.
    for (header, value) in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        let refused = no_redirects()
            .post(format!("{}/pay/{code}/start/momo", app.app.address))
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 403, "{header}: {value}");
        let text = refused.text().await.unwrap();
        assert!(text.contains("đến từ một trang khác"), "{text}");
    }
    assert_eq!(app.app.count("payment_attempts").await, 1);
    // The page's own form (same origin) still starts one.
    let own = no_redirects()
        .post(format!(
            "{}/pay/{code}/start/bank_transfer?lang=en",
            app.app.address
        ))
        .header("Origin", app.app.address.as_str())
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("confirm", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 303);
    assert_eq!(app.app.count("payment_attempts").await, 2);
}

async fn a_second_channel_while_one_is_pending_asks_first(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-TWO-TABS").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let vnpay = start(&app.app, code, "vnpay", "").await;
    assert_eq!(vnpay.status, 303, "{}", vnpay.text);
    // The VNPay attempt is pending: a bank transfer is not started at once.
    let asked = start(&app.app, code, "bank_transfer", "").await;
    assert_eq!(asked.status, 200, "{}", asked.text);
    assert_html(&asked);
    assert!(
        asked
            .text
            .contains("Một lượt thanh toán qua VNPay cho hồ sơ này đã bắt đầu lúc"),
        "{}",
        asked.text
    );
    assert!(
        asked.text.contains("name=\"confirm\" value=\"1\""),
        "{}",
        asked.text
    );
    assert_eq!(
        forms(&asked.text),
        [format!("/pay/{code}/start/bank_transfer")]
    );
    assert_eq!(app.app.count("payment_attempts").await, 1);
    // One more click goes on.
    let confirmed = no_redirects()
        .post(format!(
            "{}/pay/{code}/start/bank_transfer",
            app.app.address
        ))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("confirm=1")
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 303);
    assert_eq!(
        confirmed.headers()["location"],
        format!("/pay/{code}/transfer").as_str()
    );
    assert_eq!(app.app.count("payment_attempts").await, 2);
}

async fn the_bank_transfer_page_draws_the_vietqr_code(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    // Post, redirect, get: the transfer page is reloaded by GET.
    let started = start(&app.app, code, "bank_transfer", "").await;
    assert_eq!(started.status, 303, "{}", started.text);
    assert_eq!(
        started.headers["location"],
        format!("/pay/{code}/transfer").as_str()
    );
    let shown = page(&app.app, &format!("/pay/{code}/transfer")).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_html(&shown);
    let html = &shown.text;
    assert!(
        html.contains("<svg role=\"img\" aria-label=\"VietQR\""),
        "{html}"
    );
    assert!(html.contains("</svg>"));
    for expected in [
        format!("<span class=\"copy\">{code}</span>"),
        "<span class=\"copy\">650000</span>".to_owned(),
        "650.000 ₫".to_owned(),
        format!("<span class=\"copy\">{BANK_ACCOUNT}</span>"),
        "UBND HUYEN D1".to_owned(),
        "Vietcombank".to_owned(),
        format!("href=\"/pay/{code}\""),
    ] {
        assert!(html.contains(&expected), "no {expected} in {html}");
    }
    let en = start(&app.app, code, "bank_transfer", "?lang=en").await;
    assert_eq!(
        en.headers["location"],
        format!("/pay/{code}/transfer?lang=en").as_str()
    );
    let en = page(&app.app, &format!("/pay/{code}/transfer?lang=en")).await;
    assert!(en.text.contains("Transfer note"));
    assert_eq!(app.app.count("payment_attempts").await, 2);
    // Reloading it starts nothing.
    assert_eq!(
        page(&app.app, &format!("/pay/{code}/transfer"))
            .await
            .status,
        200
    );
    assert_eq!(app.app.count("payment_attempts").await, 2);
}

async fn the_return_page_shows_processing_until_the_ipn_then_paid(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let order_ref = vnpay_from_page(&app.app, code).await;
    // VNPay sends the payer back with the same signed fields as its IPN.
    let signed = vnpay_paid_now(&order_ref, 650_000, "7001", "00");
    let back = format!("/pay/{code}/return/vnpay?{signed}");
    let processing = page(&app.app, &back).await;
    assert_eq!(processing.status, 200, "{}", processing.text);
    assert!(
        processing
            .text
            .contains("<meta http-equiv=\"refresh\" content=\"5\">")
    );
    assert!(
        processing.text.contains("Đang xử lý"),
        "{}",
        processing.text
    );
    // The return page recorded nothing.
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
    // The toggle keeps the signed fields.
    assert!(processing.text.contains("vnp_SecureHash="));
    let en = page(&app.app, &format!("{back}&lang=en")).await;
    assert!(en.text.contains("Processing"), "{}", en.text);

    assert_eq!(
        rsp_code(&app.callback("vnpay", &signed, vec![], &[]).await),
        "00"
    );
    let paid = page(&app.app, &back).await;
    assert_eq!(paid.status, 200);
    assert!(!paid.text.contains("http-equiv=\"refresh\""));
    assert!(paid.text.contains("Đã thanh toán thành công."));
    assert!(paid.text.contains(&format!("href=\"/pay/{code}/receipt\"")));

    // A gateway that signs nothing: the stored state alone.
    let other = app.invoice("HS-2").await;
    let other_code = other["payment_code"].as_str().unwrap();
    let nothing_started = page(&app.app, &format!("/pay/{other_code}/return/momo")).await;
    assert!(nothing_started.text.contains("Thanh toán không thành công"));
    assert!(
        nothing_started
            .text
            .contains(&format!("href=\"/pay/{other_code}\""))
    );
    // VNPay signs a declined payment: failed, before any IPN.
    let order_ref = vnpay_from_page(&app.app, other_code).await;
    let declined = vnpay_paid_now(&order_ref, 650_000, "0", "24");
    let failed = page(
        &app.app,
        &format!("/pay/{other_code}/return/vnpay?{declined}&lang=en"),
    )
    .await;
    assert_eq!(failed.status, 200);
    assert!(
        failed.text.contains("The payment failed"),
        "{}",
        failed.text
    );
    assert!(failed.text.contains("Try again"));
}

async fn a_return_that_fails_its_signature_changes_nothing(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let order_ref = vnpay_from_page(&app.app, code).await;
    let signed = vnpay_paid_now(&order_ref, 650_000, "8001", "00");
    let forged = signed.replace("vnp_Amount=65000000", "vnp_Amount=100");
    let other = app.invoice("HS-2").await;
    let other_ref = vnpay_from_page(&app.app, other["payment_code"].as_str().unwrap()).await;
    let audits = app.app.count("audit_log").await;
    for query in [
        forged,
        signed.replace("&vnp_SecureHash=", "&vnp_SecureHash=00"),
        "vnp_ResponseCode=00&vnp_TxnRef=x".to_owned(),
        // Rightly signed, but for another invoice's order.
        vnpay_paid_now(&other_ref, 650_000, "8002", "00"),
    ] {
        let refused = page(&app.app, &format!("/pay/{code}/return/vnpay?{query}")).await;
        assert_eq!(refused.status, 400, "{query}");
        assert!(
            refused.text.contains("Không xác minh được"),
            "{}",
            refused.text
        );
        let en = page(
            &app.app,
            &format!("/pay/{code}/return/vnpay?{query}&lang=en"),
        )
        .await;
        assert!(en.text.contains("could not be verified"), "{}", en.text);
    }
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("audit_log").await, audits);
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
}

async fn receipts_are_numbered_per_agency_and_year(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.receipts.agencies.insert(
            "P.D2".into(),
            lephi::config::AgencyReceiptSettings {
                form_number: Some("02BLP0-002".into()),
                symbol_letters: Some("HY".into()),
            },
        );
    })
    .await;
    let province_key = app.app.key(Role::AgencySystem, "P").await;
    let now = time::OffsetDateTime::now_utc();
    let this_year = vietnam_year_now();
    let yy = this_year.rem_euclid(100);
    let today = vietnam_clock(now);
    let last_year = format!("{}1231233000", this_year - 1);
    // Last year's series had reached 41: this year's starts again at 1.
    let pool = app.app.raw_pool().await;
    sqlx::query(
        "INSERT INTO receipt_series (agency_code, year, last_number) VALUES ('P.D1', $1, 41)",
    )
    .bind(i64::from(this_year - 1))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let mut numbers = Vec::new();
    for (n, dossier) in ["HS-1", "HS-2"].into_iter().enumerate() {
        let invoice = app.invoice(dossier).await;
        let paid = pay_with_vnpay(&app, &invoice, &format!("900{n}"), &today).await;
        assert_eq!(paid["status"], "paid");
        numbers.push(paid["receipt"].clone());
    }
    assert_eq!(numbers[0]["number"], "0000001");
    assert_eq!(numbers[1]["number"], "0000002");
    assert_eq!(numbers[0]["form_number"], "01BLP0-001");
    assert_eq!(numbers[0]["symbol"], format!("LP{yy:02}").as_str());
    assert!(numbers[0]["issued_at"].is_string());

    // Another agency has its own series, on its own form.
    let elsewhere = issue(&app.app, &province_key, "P.D2", "HS-3", None).await;
    let paid = pay_with_vnpay(&app, &elsewhere, "9010", &today).await;
    assert_eq!(paid["receipt"]["number"], "0000001");
    assert_eq!(paid["receipt"]["form_number"], "02BLP0-002");
    assert_eq!(paid["receipt"]["symbol"], format!("HY{yy:02}").as_str());

    // A payment made late last year, whose callback comes now, is
    // receipted now: this year's series, never last year's closed one.
    let old = app.invoice("HS-4").await;
    let paid = pay_with_vnpay(&app, &old, "9020", &last_year).await;
    assert_eq!(paid["receipt"]["number"], "0000003");
    assert_eq!(paid["receipt"]["symbol"], format!("LP{yy:02}").as_str());

    // The same IPN again changes nothing.
    let again = app.invoice("HS-5").await;
    let code = again["payment_code"].as_str().unwrap();
    let order_ref = vnpay_from_page(&app.app, code).await;
    let ipn = vnpay_ipn_paid_at(&order_ref, 650_000, "9030", "00", &today);
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "02"
    );
    let paid = app.invoice_now(again["id"].as_str().unwrap()).await;
    assert_eq!(paid["receipt"]["number"], "0000004");
    assert_eq!(app.app.count("receipts").await, 5);
    // An open invoice has none yet; a listed invoice shows its receipt.
    let open = app.invoice("HS-6").await;
    assert_eq!(open["receipt"], Value::Null);
    let listed = app
        .app
        .get("/v1/invoices?dossier_code=HS-5", &app.system_key)
        .await
        .json();
    assert_eq!(listed["items"][0]["receipt"], paid["receipt"]);

    // The receipt page.
    let receipt = page(&app.app, &format!("/pay/{code}/receipt")).await;
    assert_eq!(receipt.status, 200, "{}", receipt.text);
    for expected in [
        "Biên lai thu phí, lệ phí",
        "01BLP0-001",
        &format!("LP{yy:02}"),
        "0000004",
        "Cơ quan P.D1",
        "Nguyễn Văn A",
        "********2345",
        "HS-5",
        "1.004227",
        "Lệ phí cấp phép",
        "150.000 ₫",
        "Phí thẩm định",
        "500.000 ₫",
        "650.000 ₫",
        "VNPay",
        "9030",
        "@media print",
    ] {
        assert!(
            receipt.text.contains(expected),
            "no {expected} in {}",
            receipt.text
        );
    }
    assert!(!receipt.text.contains("001099012345"));
    let en = page(&app.app, &format!("/pay/{code}/receipt?lang=en")).await;
    assert!(en.text.contains("Receipt for fees"));
    assert!(en.text.contains("Form number (mẫu số)"));
}

async fn concurrent_payments_get_consecutive_receipt_numbers(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let today = vietnam_clock(time::OffsetDateTime::now_utc());
    let mut ipns = Vec::new();
    for n in 0..20 {
        let invoice = app.invoice(&format!("HS-{n}")).await;
        let attempt = app.attempt(invoice["id"].as_str().unwrap(), "vnpay").await;
        assert_eq!(attempt.status, 201, "{}", attempt.text);
        let order_ref = attempt.json()["order_ref"].as_str().unwrap().to_owned();
        ipns.push(vnpay_ipn_paid_at(
            &order_ref,
            650_000,
            &format!("{}", 10_000 + n),
            "00",
            &today,
        ));
    }
    // Each callback comes twice, at once: a repeat takes no number.
    let answers = futures_util::future::join_all(
        ipns.iter()
            .chain(ipns.iter())
            .map(|ipn| app.callback("vnpay", ipn, vec![], &[])),
    )
    .await;
    let mut codes: Vec<String> = answers.iter().map(rsp_code).collect();
    codes.sort();
    let expected: Vec<&str> = ["00"; 20].into_iter().chain(["02"; 20]).collect();
    assert_eq!(codes, expected);
    let pool = app.app.raw_pool().await;
    let numbers: Vec<i64> = sqlx::query_scalar("SELECT number FROM receipts ORDER BY number")
        .fetch_all(&pool)
        .await
        .unwrap();
    let invoices: BTreeSet<String> = sqlx::query_scalar("SELECT invoice_id FROM receipts")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let last: i64 = sqlx::query_scalar("SELECT last_number FROM receipt_series")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(numbers, (1..=20).collect::<Vec<i64>>());
    assert_eq!(invoices.len(), 20);
    assert_eq!(last, 20);
}

async fn a_full_receipt_series_refuses_the_payment_cleanly(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let pool = app.app.raw_pool().await;
    sqlx::query("INSERT INTO receipt_series (agency_code, year, last_number) VALUES ($1, $2, $3)")
        .bind("P.D1")
        .bind(i64::from(vietnam_year_now()))
        .bind(9_999_999_i64)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let order_ref = vnpay_from_page(&app.app, code).await;
    let ipn = vnpay_paid_now(&order_ref, 650_000, "9901", "00");
    // VNPay is asked to call again; nothing was half written.
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "99"
    );
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("receipts").await, 0);
    // Other agencies and years are untouched: P.D2 still starts at 1.
    let province_key = app.app.key(Role::AgencySystem, "P").await;
    let elsewhere = issue(&app.app, &province_key, "P.D2", "HS-2", None).await;
    let today = vietnam_clock(time::OffsetDateTime::now_utc());
    let paid = pay_with_vnpay(&app, &elsewhere, "9902", &today).await;
    assert_eq!(paid["receipt"]["number"], "0000001");
}

/// Behind a trusted proxy, the client is the address the proxy appended
/// last: what the client itself wrote earlier in `X-Forwarded-For`, or in
/// a `Forwarded` header, does not give it a fresh count.
async fn a_client_cannot_name_its_own_address_past_the_proxy(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        settings.checkout.requests_per_minute = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let answer = app
            .client
            .get(format!("{}/pay/LP23456789ABU", app.address))
            .header("Forwarded", format!("for=198.51.100.{n}"))
            .header("X-Forwarded-For", format!("198.51.100.{n}, 203.0.113.9"))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 429, 429, 429]);
}

/// Starts ZaloPay from the checkout page of `invoice`; returns the
/// attempt's `app_trans_id`.
async fn zalopay_from_page(app: &PaymentsApp, invoice: &Value) -> String {
    let code = invoice["payment_code"].as_str().unwrap();
    let started = start(&app.app, code, "zalopay", "").await;
    assert_eq!(started.status, 303, "{}", started.text);
    zalopay_attempt(app, invoice).await.0
}

/// The order reference and status of `invoice`'s ZaloPay attempt.
async fn zalopay_attempt(app: &PaymentsApp, invoice: &Value) -> (String, String) {
    let pool = app.app.raw_pool().await;
    let attempt: (String, String) = sqlx::query_as(
        "SELECT order_ref, status FROM payment_attempts WHERE invoice_id = $1 AND channel = 'zalopay'",
    )
    .bind(invoice["id"].as_str().unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    attempt
}

/// The query ZaloPay sends the payer back with: its redirect fields and
/// `checksum` = HMAC-SHA256 under `key` over
/// `appid|apptransid|pmcid|bankcode|amount|discountamount|status`.
fn zalopay_redirect(app_trans_id: &str, amount: i64, status: i64, key: &str) -> String {
    let signed = format!(
        "{}|{app_trans_id}|38||{amount}|0|{status}",
        creds::ZALOPAY_APP
    );
    form_urlencoded::Serializer::new(String::new())
        .append_pair("appid", creds::ZALOPAY_APP)
        .append_pair("apptransid", app_trans_id)
        .append_pair("pmcid", "38")
        .append_pair("bankcode", "")
        .append_pair("amount", &amount.to_string())
        .append_pair("discountamount", "0")
        .append_pair("status", &status.to_string())
        .append_pair("checksum", &hmac_sha256_hex(key, &signed))
        .finish()
}

/// Checks a return page says "could not be verified", in both languages,
/// with status 400.
async fn assert_unverified(app: &TestApp, path: &str) {
    let refused = page(app, path).await;
    assert_eq!(refused.status, 400, "{path}: {}", refused.text);
    assert!(
        refused.text.contains("Không xác minh được"),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("Thử lại"), "{}", refused.text);
    let en = page(app, &format!("{path}&lang=en")).await;
    assert_eq!(en.status, 400);
    assert!(en.text.contains("could not be verified"), "{}", en.text);
}

async fn a_signed_failed_zalopay_return_shows_failed_at_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let app_trans_id = zalopay_from_page(&app, &invoice).await;
    let back = format!("/pay/{code}/return/zalopay");

    // Paid, as ZaloPay's redirect says: that decides nothing before the
    // callback, so the page waits.
    let paid = zalopay_redirect(&app_trans_id, 650_000, 1, creds::ZALOPAY_KEY2);
    let processing = page(&app.app, &format!("{back}?{paid}")).await;
    assert_eq!(processing.status, 200, "{}", processing.text);
    assert!(
        processing.text.contains("Đang xử lý"),
        "{}",
        processing.text
    );

    // Declined or cancelled (-49): failed at once, with a way to try
    // again, before any status query.
    let cancelled = zalopay_redirect(&app_trans_id, 650_000, -49, creds::ZALOPAY_KEY2);
    let failed = page(&app.app, &format!("{back}?{cancelled}")).await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    assert!(
        failed.text.contains("Thanh toán không thành công"),
        "{}",
        failed.text
    );
    assert!(!failed.text.contains("http-equiv=\"refresh\""));
    assert!(
        failed.text.contains(&format!(
            "<a class=\"button\" href=\"/pay/{code}\">Thử lại</a>"
        )),
        "{}",
        failed.text
    );
    let en = page(&app.app, &format!("{back}?{cancelled}&lang=en")).await;
    assert!(en.text.contains("The payment failed"), "{}", en.text);
    assert!(
        en.text
            .contains(&format!("href=\"/pay/{code}?lang=en\">Try again</a>")),
        "{}",
        en.text
    );
    // The return page recorded nothing: the attempt waits for ZaloPay.
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(zalopay_attempt(&app, &invoice).await.1, "pending");
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
}

async fn a_zalopay_return_that_fails_its_checksum_is_unverified(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let app_trans_id = zalopay_from_page(&app, &invoice).await;
    let cancelled = zalopay_redirect(&app_trans_id, 650_000, -49, creds::ZALOPAY_KEY2);
    let audits = app.app.count("audit_log").await;
    for query in [
        // A success turned into a failure, or the other way round.
        cancelled.replace("status=-49", "status=1"),
        zalopay_redirect(&app_trans_id, 650_000, 1, creds::ZALOPAY_KEY2)
            .replace("status=1", "status=-49"),
        cancelled.replace("amount=650000", "amount=100"),
        // Signed with key1, or not at all.
        zalopay_redirect(&app_trans_id, 650_000, -49, creds::ZALOPAY_KEY1),
        cancelled.split("&checksum=").next().unwrap().to_owned(),
        format!("apptransid={app_trans_id}&status=-49"),
    ] {
        assert_unverified(&app.app, &format!("/pay/{code}/return/zalopay?{query}")).await;
    }
    assert_eq!(app.app.count("payments").await, 0);
    assert_eq!(app.app.count("audit_log").await, audits);
    assert_eq!(
        app.invoice_now(invoice["id"].as_str().unwrap()).await["status"],
        "open"
    );
}

async fn a_zalopay_return_naming_another_invoices_order_is_unverified(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    gateways_accept(&app).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    zalopay_from_page(&app, &invoice).await;
    let other = app.invoice("HS-2").await;
    let other_trans_id = zalopay_from_page(&app, &other).await;
    // Rightly signed, but for the other invoice's order: it says nothing
    // of this one.
    let cancelled = zalopay_redirect(&other_trans_id, 650_000, -49, creds::ZALOPAY_KEY2);
    assert_unverified(&app.app, &format!("/pay/{code}/return/zalopay?{cancelled}")).await;
    // And a signed order no invoice has, likewise.
    let unknown = zalopay_redirect("261128_NOSUCHORDER", 650_000, -49, creds::ZALOPAY_KEY2);
    assert_unverified(&app.app, &format!("/pay/{code}/return/zalopay?{unknown}")).await;
    // On its own invoice's page the same return shows failed.
    let other_code = other["payment_code"].as_str().unwrap();
    let failed = page(
        &app.app,
        &format!("/pay/{other_code}/return/zalopay?{cancelled}"),
    )
    .await;
    assert_eq!(failed.status, 200, "{}", failed.text);
    assert!(failed.text.contains("Thanh toán không thành công"));
}

/// A VNPay payment made before the invoice expired, whose IPN comes after
/// the expiry task stored the invoice expired, pays it: it is not late.
async fn a_payment_made_before_expiry_counts_after_the_expiry_is_stored(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let mut body = invoice_body("P.D1", "HS-EXPIRY");
    let expires_at = lephi::domain::Timestamp::now()
        .plus(time::Duration::seconds(3))
        .unwrap();
    body["expires_at"] = json!(expires_at.to_stored());
    let invoice = issue(&app.app, &app.system_key, "P.D1", "HS-EXPIRY", Some(body)).await;
    let code = invoice["payment_code"].as_str().unwrap();
    let id = invoice["id"].as_str().unwrap();
    let order_ref = vnpay_from_page(&app.app, code).await;
    let paid_at = vietnam_clock(time::OffsetDateTime::now_utc());
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert_eq!(app.app.store.expire_due_invoices(100).await.unwrap(), 1);
    assert_eq!(app.invoice_now(id).await["status"], "expired");
    let ipn = vnpay_ipn_paid_at(&order_ref, 650_000, "9700", "00", &paid_at);
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    let now = app.invoice_now(id).await;
    assert_eq!(
        (now["status"].as_str(), now["amount_paid"].as_i64()),
        (Some("paid"), Some(650_000)),
        "{now}"
    );
    assert!(now["receipt"]["number"].is_string(), "{now}");
    let exceptions = app.app.get("/v1/exceptions", &app.finance_key).await.json();
    assert_eq!(
        exceptions["items"].as_array().unwrap().len(),
        0,
        "{exceptions}"
    );
    // One paid after it expired is still late.
    let mut body = invoice_body("P.D1", "HS-EXPIRY-2");
    let expires_at = lephi::domain::Timestamp::now()
        .plus(time::Duration::seconds(2))
        .unwrap();
    body["expires_at"] = json!(expires_at.to_stored());
    let late = issue(&app.app, &app.system_key, "P.D1", "HS-EXPIRY-2", Some(body)).await;
    let order_ref = vnpay_from_page(&app.app, late["payment_code"].as_str().unwrap()).await;
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    assert_eq!(app.app.store.expire_due_invoices(100).await.unwrap(), 1);
    let paid_at = vietnam_clock(time::OffsetDateTime::now_utc());
    let ipn = vnpay_ipn_paid_at(&order_ref, 650_000, "9701", "00", &paid_at);
    app.callback("vnpay", &ipn, vec![], &[]).await;
    let now = app.invoice_now(late["id"].as_str().unwrap()).await;
    assert_eq!(now["status"], "expired", "{now}");
    let exceptions = app.app.get("/v1/exceptions", &app.finance_key).await.json();
    assert_eq!(
        exceptions["items"][0]["kind"], "late_payment",
        "{exceptions}"
    );
}

/// With `server.trusted_proxies` naming the proxy in front, the client it
/// names in `X-Forwarded-For` is the one counted, sent to VNPay as
/// `vnp_IpAddr` and written in the audit; from any other peer the header
/// is ignored and the peer is the client.
async fn the_client_a_trusted_proxy_names_is_limited_sent_to_vnpay_and_audited(backend: Backend) {
    for (trusted, client) in [(true, "203.0.113.77"), (false, "127.0.0.1")] {
        let app = spawn_payments_app_with(backend, |settings| {
            if trusted {
                settings.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
            }
        })
        .await;
        // The client wrote 198.51.100.1 itself; the outer proxy appended
        // the client it saw, the inner (trusted) one the outer proxy.
        let chain = [("X-Forwarded-For", "198.51.100.1, 203.0.113.77, 10.1.2.3")];
        let created = app
            .app
            .request(
                reqwest::Method::POST,
                "/v1/invoices",
                Some(&app.system_key),
                Some(&invoice_body("P.D1", "HS-PROXY")),
                &[chain[0], ("Idempotency-Key", "proxy-1")],
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json()["id"].as_str().unwrap().to_owned();
        let attempt = app
            .app
            .request(
                reqwest::Method::POST,
                &format!("/v1/invoices/{id}/attempts"),
                Some(&app.system_key),
                Some(&json!({ "channel": "vnpay" })),
                &chain,
            )
            .await;
        assert_eq!(attempt.status, 201, "{}", attempt.text);
        assert!(
            attempt.text.contains(&format!("vnp_IpAddr={client}&")),
            "{trusted}: {}",
            attempt.text
        );
        let audit = app
            .app
            .get(
                &format!("/v1/audit?object_type=invoice&object_id={id}"),
                &app.app.admin_key,
            )
            .await
            .json();
        assert_eq!(audit["items"][0]["action"], "invoice.created", "{audit}");
        assert_eq!(audit["items"][0]["client_addr"], client, "{audit}");
    }
}
