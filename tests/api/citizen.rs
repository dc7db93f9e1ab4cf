//! The citizen's path in a real browser (headless Chromium): open the
//! checkout link, pay with the VNPay sandbox or by a bank transfer that
//! the sandbox bank notifies, come back, see "paid", open the receipt.
//! Screenshots of the checkout page on a phone and on a desktop are saved
//! under `target/screenshots/` for review.

use lephi::domain::Role;
use serde_json::{Value, json};

use crate::browser::{Browser, screenshot_path};
use crate::helpers::{Backend, TestApp, invoice_body, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    a_citizen_pays_with_the_vnpay_sandbox_and_gets_a_receipt,
    a_citizen_pays_by_bank_transfer_and_gets_a_receipt,
);

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 900);

/// The app with the sandbox on (no real credentials), P.D1 receiving
/// transfers, and a dossier system's key.
async fn citizen_app(backend: Backend) -> (TestApp, String) {
    let app = spawn_app(backend).await;
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
    format!("checkout-{what}-{backend}.png")
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
        .screenshot(&screenshot_path(&name(backend, "phone")))
        .await;
    browser.resize(DESKTOP.0, DESKTOP.1).await;
    browser
        .screenshot(&screenshot_path(&name(backend, "desktop")))
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
