//! Personal data past its retention: the background job erases the payer
//! of invoices closed for `privacy.retention_days` with nothing of their
//! money open, keeps everything else, and audits each erasure.

use std::time::Duration;

use lephi::domain::Timestamp;
use serde_json::Value;

use crate::helpers::{Backend, PaymentsApp, spawn_payments_app_with};
use crate::on_both_backends;
use crate::payments::{sepay_auth, sepay_transfer};

on_both_backends!(the_payer_of_an_invoice_closed_past_its_retention_is_erased_and_nothing_else);

/// Pays `invoice` by a bank transfer of `amount` whose note names its sender.
async fn transfer(app: &PaymentsApp, invoice: &Value, id: i64, amount: i64) {
    let code = invoice["payment_code"].as_str().unwrap();
    let auth = sepay_auth();
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer(id, amount, &format!("NGUYEN VAN A chuyen tien {code}")),
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

async fn the_payer_of_an_invoice_closed_past_its_retention_is_erased_and_nothing_else(
    backend: Backend,
) {
    let app = spawn_payments_app_with(backend, |s| {
        s.privacy.retention_days = Some(30);
        s.privacy.interval_secs = 1;
    })
    .await;
    let closed = app.invoice("HS-RET-1").await;
    transfer(&app, &closed, 990_001, 650_000).await;
    let open = app.invoice("HS-RET-2").await;
    // Paid, but 50,000 đồng over: its overpaid exception is still open.
    let held = app.invoice("HS-RET-3").await;
    transfer(&app, &held, 990_002, 700_000).await;
    let recent = app.invoice("HS-RET-4").await;
    transfer(&app, &recent, 990_003, 650_000).await;
    let id = |invoice: &Value| invoice["id"].as_str().unwrap().to_owned();
    let receipt_before = app.invoice_now(&id(&closed)).await["receipt"].clone();
    assert!(receipt_before.is_object(), "{receipt_before}");

    // Forty days pass for all but the recent one.
    let long_ago = Timestamp::now()
        .plus(time::Duration::days(-40))
        .unwrap()
        .to_stored();
    let pool = app.app.raw_pool().await;
    for invoice in [&closed, &open, &held] {
        sqlx::query("UPDATE invoices SET updated_at = $1 WHERE id = $2")
            .bind(&long_ago)
            .bind(id(invoice))
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("UPDATE idempotency_keys SET created_at = $1 WHERE idempotency_key IN ('HS-RET-1', 'HS-RET-2', 'HS-RET-3')")
        .bind(&long_ago)
        .execute(&pool)
        .await
        .unwrap();
    let keys_before = app.app.count("idempotency_keys").await;

    let mut waited = 0;
    while app.invoice_now(&id(&closed)).await["payer"]["name"] != "" {
        assert!(waited < 100, "the payer was never erased");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    let erased = app.invoice_now(&id(&closed)).await;
    assert_eq!(erased["status"], "paid");
    assert_eq!(erased["amount_paid"], 650000);
    assert_eq!(erased["receipt"], receipt_before, "the receipt stays");
    let (phone, id_number, email, erased_at): (Option<String>, Option<String>, Option<String>, Option<String>) =
        sqlx::query_as("SELECT payer_phone, payer_id_number, payer_email, personal_data_erased_at FROM invoices WHERE id = $1")
            .bind(id(&closed))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((phone, id_number, email), (None, None, None));
    assert!(erased_at.is_some());
    let note: String = sqlx::query_scalar("SELECT reference FROM payments WHERE invoice_id = $1")
        .bind(id(&closed))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        note,
        closed["payment_code"].as_str().unwrap(),
        "the sender's name is gone from the note"
    );
    // The open invoice, the one whose money is still held, and the recent
    // one keep their payer.
    for kept in [&open, &held, &recent] {
        assert_eq!(
            app.invoice_now(&id(kept)).await["payer"]["name"],
            "Nguyễn Văn A",
            "{kept}"
        );
    }
    let held_note: String =
        sqlx::query_scalar("SELECT reference FROM payments WHERE invoice_id = $1")
            .bind(id(&held))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(held_note.contains("NGUYEN VAN A"), "{held_note}");
    // The idempotency records of forty days ago went, the others stay.
    assert_eq!(app.app.count("idempotency_keys").await, keys_before - 3);
    pool.close().await;

    let audit = app
        .app
        .get(
            &format!(
                "/v1/audit?object_type=invoice&object_id={}&action=invoice.personal_data_erased",
                id(&closed)
            ),
            &app.app.admin_key,
        )
        .await
        .json();
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(items[0]["actor"], "system:retention");
    assert!(
        !audit.to_string().contains("0912345678"),
        "the audit names no personal data"
    );

    // The receipt page says the name was erased, in Vietnamese.
    let code = closed["payment_code"].as_str().unwrap();
    let page = app
        .app
        .client
        .get(format!("{}/pay/{code}/receipt", app.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("đã xoá khi hết thời hạn lưu giữ dữ liệu cá nhân"),
        "{page}"
    );
    assert!(!page.contains("Nguyễn Văn A"), "{page}");
}
