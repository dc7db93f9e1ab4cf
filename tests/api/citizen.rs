//! The citizen's path in a real browser (headless Chromium): open the
//! checkout link, pay with the VNPay sandbox or by a bank transfer that
//! the sandbox bank notifies, come back, see "paid", open the receipt;
//! and where their money is when it did not simply pay the invoice (paid
//! twice, short, late, refunded). Screenshots of these pages on a phone
//! (and the checkout page on a desktop) are saved under
//! `target/screenshots/` for review.

use lephi::config::Settings;
use lephi::domain::Role;
use serde_json::{Value, json};

use crate::browser::{Browser, screenshot_path};
use crate::helpers::{Backend, TestApp, invoice_body, spawn_app_with};
use crate::on_both_backends;
use crate::payments::sepay_transfer_to;

on_both_backends!(
    a_citizen_pays_with_the_vnpay_sandbox_and_gets_a_receipt,
    a_citizen_pays_by_bank_transfer_and_gets_a_receipt,
    a_citizen_sees_where_their_money_is,
);

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 900);

/// The app with the sandbox on (no real credentials), P.D1 receiving
/// transfers, and a dossier system's key.
async fn citizen_app(backend: Backend) -> (TestApp, String) {
    citizen_app_with(backend, |_| {}).await
}

async fn citizen_app_with(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
) -> (TestApp, String) {
    let app = spawn_app_with(backend, adjust).await;
    app.seed_agencies().await;
    let account = app
        .request(
            reqwest::Method::PUT,
            "/v1/agencies/P.D1/bank-account",
            Some(&app.admin_key),
            Some(&json!({ "bank_bin": "970436", "account_number": "0011001234567", "account_name": "UBND HUYEN D1" })),
            &[],
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let key = app.key(Role::AgencySystem, "P.D1").await;
    (app, key)
}

async fn invoice(app: &TestApp, key: &str, dossier: &str) -> Value {
    let created = app
        .create_invoice(key, dossier, &invoice_body("P.D1", dossier))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()
}

fn name(backend: Backend, what: &str) -> String {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    format!("{what}-{backend}.png")
}

async fn a_citizen_pays_with_the_vnpay_sandbox_and_gets_a_receipt(backend: Backend) {
    let (app, key) = citizen_app(backend).await;
    let invoice = invoice(&app, &key, "HS-1").await;
    let checkout = invoice["checkout_url"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();

    let mut browser = Browser::start(PHONE.0, PHONE.1).await;
    browser.goto(checkout).await;
    let page = browser.text().await;
    assert!(
        page.contains(invoice["dossier_code"].as_str().unwrap()),
        "{page}"
    );
    assert!(page.contains("650.000 ₫"), "{page}");
    browser
        .screenshot(&screenshot_path(&name(backend, "checkout-phone")))
        .await;
    browser.resize(DESKTOP.0, DESKTOP.1).await;
    browser
        .screenshot(&screenshot_path(&name(backend, "checkout-desktop")))
        .await;

    // Pay with VNPay: the sandbox's page, approve, and back to lephi.
    browser
        .click(&format!("form[action$='/pay/{code}/start/vnpay'] button"))
        .await;
    browser.wait_for_text("SANDBOX").await;
    browser.click("button.approve").await;
    browser.wait_for_text("Đã thanh toán thành công").await;
    assert!(
        browser
            .current_url()
            .await
            .contains(&format!("/pay/{code}/return/vnpay")),
        "{}",
        browser.current_url().await
    );
    let paid = app
        .get(
            &format!("/v1/invoices/{}", invoice["id"].as_str().unwrap()),
            &key,
        )
        .await;
    assert_eq!(paid.json()["status"], "paid", "{}", paid.text);

    browser
        .click(&format!("a[href^='/pay/{code}/receipt']"))
        .await;
    let receipt = browser.wait_for_text("0000001").await;
    assert!(
        receipt.contains(invoice["dossier_code"].as_str().unwrap()),
        "{receipt}"
    );
    assert!(receipt.contains("650.000"), "{receipt}");
    browser.close().await;
}

async fn a_citizen_pays_by_bank_transfer_and_gets_a_receipt(backend: Backend) {
    let (app, key) = citizen_app(backend).await;
    let invoice = invoice(&app, &key, "HS-2").await;
    let checkout = invoice["checkout_url"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();

    let browser = Browser::start(PHONE.0, PHONE.1).await;
    browser.goto(checkout).await;
    browser
        .click(&format!(
            "form[action$='/pay/{code}/start/bank_transfer'] button"
        ))
        .await;
    let transfer = browser.wait_for_text("0011001234567").await;
    assert!(transfer.contains(code), "{transfer}");
    browser.find(".qr svg").await;

    // The payer's bank (the sandbox's) sends the transfer; its
    // notification reaches lephi, which records the payment.
    browser.click("a[href*='/sandbox/bank/transfer']").await;
    browser.click("button.approve").await;
    browser.wait_for_text(code).await;
    browser.click(&format!("a[href$='/pay/{code}']")).await;
    browser.wait_for_text("Xem biên lai").await;
    browser
        .click(&format!("a[href^='/pay/{code}/receipt']"))
        .await;
    let receipt = browser.wait_for_text("0000001").await;
    assert!(receipt.contains("650.000"), "{receipt}");
    browser.close().await;
}

/// What the return page says of a payment received but not applied.
const HELD_ON_RETURN: &str = "Chúng tôi đã nhận khoản thanh toán này nhưng chưa ghi cho hồ sơ";

/// Starts VNPay from the checkout page at `checkout`; returns the
/// sandbox's payment page the browser lands on.
async fn start_vnpay(browser: &Browser, checkout: &str, code: &str) -> String {
    browser.goto(checkout).await;
    browser
        .click(&format!("form[action$='/pay/{code}/start/vnpay'] button"))
        .await;
    browser.wait_for_text("SANDBOX").await;
    browser.current_url().await
}

/// Scrolls the element `css` into view, to the viewport's `block`
/// (`start` or `end`), and saves the screenshot `what`: on a phone the
/// money is told below the invoice.
async fn screenshot_at(browser: &Browser, backend: Backend, what: &str, css: &str, block: &str) {
    browser.find(css).await;
    browser
        .execute(&format!(
            "document.querySelector({css:?}).scrollIntoView({{block: {block:?}}});"
        ))
        .await;
    browser
        .screenshot(&screenshot_path(&name(backend, what)))
        .await;
}

/// The card that tells of held and refunded money, at the bottom.
async fn screenshot_money(browser: &Browser, backend: Backend, what: &str) {
    screenshot_at(browser, backend, what, "section.held", "end").await;
}

async fn a_citizen_sees_where_their_money_is(backend: Backend) {
    let (app, key) = citizen_app_with(backend, |s| s.refunds.check_after_secs = 0).await;
    let browser = Browser::start(PHONE.0, PHONE.1).await;

    // 1. Paid twice: VNPay opened from the checkout page (opened again,
    // it goes back to the same order), then MoMo, past the warning that a
    // payment may be under way; both approved.
    let twice = invoice(&app, &key, "HS-TWICE").await;
    let code = twice["payment_code"].as_str().unwrap();
    let checkout = twice["checkout_url"].as_str().unwrap();
    let first = start_vnpay(&browser, checkout, code).await;
    assert_eq!(start_vnpay(&browser, checkout, code).await, first);
    browser.goto(checkout).await;
    browser
        .click(&format!("form[action$='/pay/{code}/start/momo'] button"))
        .await;
    browser
        .wait_for_text("Có thể bạn đang thanh toán hồ sơ này")
        .await;
    browser.click("input[name='confirm'] + button").await;
    browser.wait_for_text("Approve").await;
    let second = browser.current_url().await;
    assert_ne!(first, second);
    browser.goto(&first).await;
    browser.click("button.approve").await;
    browser.wait_for_text("Đã thanh toán thành công").await;
    browser.goto(&second).await;
    browser.click("button.approve").await;
    let returned = browser.wait_for_text(HELD_ON_RETURN).await;
    assert!(returned.contains("hồ sơ đã được nộp hai lần"), "{returned}");
    screenshot_money(&browser, backend, "money-paid-twice-return").await;
    browser.goto(checkout).await;
    let page = browser.wait_for_text("hồ sơ đã được nộp hai lần").await;
    assert!(page.contains("Hồ sơ đã được thanh toán."), "{page}");
    assert!(
        page.contains("Khoản 650.000 ₫ nộp thừa đang được giữ và sẽ được hoàn lại cho bạn."),
        "{page}"
    );
    screenshot_money(&browser, backend, "money-paid-twice").await;

    // 2. Underpaid: a transfer of 400.000 ₫ naming the payment code is
    // applied; the checkout asks for the rest, and the transfer page
    // draws a QR code for it.
    let short = invoice(&app, &key, "HS-SHORT").await;
    let short_code = short["payment_code"].as_str().unwrap();
    let now = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+7));
    let mut transfer: Value = serde_json::from_slice(&sepay_transfer_to(
        "0011001234567",
        7001,
        400_000,
        &format!("{short_code} NGUYEN VAN A CHUYEN TIEN"),
    ))
    .unwrap();
    transfer["transactionDate"] = json!(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    ));
    let notified = app
        .client
        .post(format!("{}/callbacks/sepay", app.address))
        .header(
            "Authorization",
            format!("Apikey {}", lephi::sandbox::SEPAY_API_KEY),
        )
        .json(&transfer)
        .send()
        .await
        .unwrap();
    assert_eq!(notified.status(), 200);
    assert_eq!(
        notified.json::<Value>().await.unwrap(),
        json!({ "success": true })
    );
    browser.goto(short["checkout_url"].as_str().unwrap()).await;
    let page = browser.wait_for_text("Còn thiếu").await;
    assert!(page.contains("400.000 ₫"), "{page}");
    assert!(page.contains("250.000 ₫"), "{page}");
    // What is owed, and the ways to pay it.
    screenshot_at(
        &browser,
        backend,
        "money-underpaid-checkout",
        "main section.card:last-of-type",
        "end",
    )
    .await;
    browser
        .click(&format!(
            "form[action$='/pay/{short_code}/start/bank_transfer'] button"
        ))
        .await;
    let transfer_page = browser.wait_for_text("0011001234567").await;
    assert!(
        browser
            .current_url()
            .await
            .ends_with(&format!("/pay/{short_code}/transfer")),
        "{}",
        browser.current_url().await
    );
    assert!(transfer_page.contains("250.000 ₫"), "{transfer_page}");
    assert!(!transfer_page.contains("650.000 ₫"), "{transfer_page}");
    // The QR code and, below it, the amount.
    screenshot_at(&browser, backend, "money-underpaid", ".qr svg", "start").await;

    // 3. Late: the invoice is cancelled while the payer is on VNPay's
    // page, and the payer pays anyway.
    let late = invoice(&app, &key, "HS-LATE").await;
    let late_code = late["payment_code"].as_str().unwrap();
    let late_checkout = late["checkout_url"].as_str().unwrap();
    start_vnpay(&browser, late_checkout, late_code).await;
    let cancelled = app
        .post(
            &format!("/v1/invoices/{}/cancel", late["id"].as_str().unwrap()),
            &key,
            &json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    browser.click("button.approve").await;
    let returned = browser.wait_for_text(HELD_ON_RETURN).await;
    assert!(returned.contains("Tiền của bạn không mất"), "{returned}");
    assert!(returned.contains("đang được giữ"), "{returned}");
    screenshot_money(&browser, backend, "money-late-return").await;
    browser.goto(late_checkout).await;
    let page = browser
        .wait_for_text("khi yêu cầu thanh toán đã hết hạn hoặc đã bị hủy")
        .await;
    assert!(page.contains("Yêu cầu thanh toán này đã bị hủy."), "{page}");
    screenshot_money(&browser, backend, "money-late").await;

    // 4. Refunded: the second payment of case 1, asked for by one
    // finance officer and approved by another; MoMo takes it back.
    let asker = app.key(Role::Finance, "P").await;
    let approver = app.key(Role::Finance, "P").await;
    let twice_id = twice["id"].as_str().unwrap();
    let shown = app
        .get(&format!("/v1/invoices/{twice_id}"), &key)
        .await
        .json();
    assert_eq!(shown["held_payments"][0]["reason"], "overpaid", "{shown}");
    let held = shown["held_payments"][0]["payment_id"].as_str().unwrap();
    let asked = app
        .request(
            reqwest::Method::POST,
            &format!("/v1/payments/{held}/refunds"),
            Some(&asker),
            Some(&json!({ "amount": 650000, "reason": "Nộp hai lần" })),
            &[("Idempotency-Key", "money-refund-twice")],
        )
        .await;
    assert_eq!(asked.status, 201, "{}", asked.text);
    let refund = asked.json()["id"].as_str().unwrap().to_owned();
    let approved = app
        .post(
            &format!("/v1/refunds/{refund}/approve"),
            &approver,
            &json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    // MoMo's sandbox answers at once that it is refunded.
    assert_eq!(approved.json()["status"], "succeeded", "{}", approved.text);
    browser.goto(checkout).await;
    let page = browser.wait_for_text("Đã hoàn 650.000 ₫").await;
    assert!(!page.contains("nộp thừa đang được giữ"), "{page}");
    screenshot_money(&browser, backend, "money-refunded").await;
    browser.close().await;
}
