//! Refunds: a payment's held money given back, asked for by one finance
//! officer and approved by another; a bank transfer's paid back by hand
//! and recorded, a gateway's sent to the provider once and asked about
//! until final. Bad requests change nothing.

use futures_util::StreamExt;
use lephi::domain::Role;
use serde_json::{Value, json};

use crate::helpers::{PaymentsApp, Response, spawn_payments_app, spawn_payments_app_with};
use crate::on_both_backends;
use crate::payments::sepay_auth;
use crate::payments::sepay_transfer;

on_both_backends!(
    a_double_transfer_is_refunded_by_hand_with_four_eyes,
    refunds_refuse_what_they_may_not_do_and_change_nothing,
    transfers_short_of_the_total_add_up_and_more_is_held,
    a_refund_answer_not_signed_with_the_gateways_key_is_not_trusted,
    a_refund_under_the_agencys_threshold_needs_no_second_officer,
    a_refund_of_money_that_paid_the_invoice_is_covered_by_money_held_for_it,
    an_invoice_whose_money_went_back_with_nothing_to_cover_it_stops_being_paid,
);

const FEE: i64 = 650_000;

/// Pays `invoice` twice by bank transfer (ids `first` and `first + 1`);
/// returns the held payment.
pub async fn paid_twice(app: &PaymentsApp, invoice: &Value, first: i64) -> Value {
    for id in [first, first + 1] {
        transfer(app, invoice, id, FEE).await;
    }
    let invoice_id = invoice["id"].as_str().unwrap();
    let payments = app
        .app
        .get(
            &format!("/v1/invoices/{invoice_id}/payments"),
            &app.finance_key,
        )
        .await
        .json();
    let held: Vec<&Value> = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["exception"] == "overpaid")
        .collect();
    assert_eq!(held.len(), 1, "{payments}");
    held[0].clone()
}

/// Posts `body` to `path` with an idempotency key.
pub async fn post_once(
    app: &PaymentsApp,
    path: &str,
    key: &str,
    idem: &str,
    body: &Value,
) -> Response {
    app.app
        .request(
            reqwest::Method::POST,
            path,
            Some(key),
            Some(body),
            &[("Idempotency-Key", idem)],
        )
        .await
}

/// Asks for a refund of `amount` of payment `payment_id`.
pub async fn ask(
    app: &PaymentsApp,
    key: &str,
    payment_id: &str,
    amount: i64,
    idem: &str,
) -> Response {
    post_once(
        app,
        &format!("/v1/payments/{payment_id}/refunds"),
        key,
        idem,
        &json!({ "amount": amount, "reason": "Nộp hai lần" }),
    )
    .await
}

async fn a_double_transfer_is_refunded_by_hand_with_four_eyes(backend: crate::helpers::Backend) {
    let app = spawn_payments_app(backend).await;
    let second_officer = app.app.key(Role::Finance, "P").await;
    let invoice = app.invoice("HS-REFUND").await;
    let held = paid_twice(&app, &invoice, 9_100).await;
    let payment_id = held["id"].as_str().unwrap();
    let invoice_id = invoice["id"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();
    let now = app.invoice_now(invoice_id).await;
    assert_eq!(
        (now["status"].as_str(), now["amount_paid"].as_i64()),
        (Some("paid"), Some(FEE))
    );
    assert_eq!(
        (now["amount_held"].as_i64(), now["amount_refunded"].as_i64()),
        (Some(FEE), Some(0))
    );
    assert_eq!(now["held_payments"][0]["payment_id"], payment_id);
    assert_eq!(now["held_payments"][0]["reason"], "overpaid");
    // The citizen is told the second payment is held and will come back.
    let page = app
        .app
        .client
        .get(format!("{}/pay/{code}", app.app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("hồ sơ đã được nộp hai lần"), "{page}");
    assert!(
        page.contains("Khoản 650.000 ₫ nộp thừa đang được giữ và sẽ được hoàn lại cho bạn."),
        "{page}"
    );

    let asked = ask(&app, &app.finance_key, payment_id, FEE, "refund-1").await;
    assert_eq!(asked.status, 201, "{}", asked.text);
    let refund = asked.json();
    assert_eq!(refund["status"], "requested");
    assert_eq!(refund["channel"], "bank_transfer");
    assert_eq!(refund["amount"], FEE);
    let exception_id = refund["exception_id"]
        .as_str()
        .expect("linked to the overpaid exception")
        .to_owned();
    let id = refund["id"].as_str().unwrap().to_owned();

    // The same request again answers the same; another body under the key is refused.
    let again = ask(&app, &app.finance_key, payment_id, FEE, "refund-1").await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json(), refund);
    assert_eq!(again.headers.get("idempotent-replayed").unwrap(), "true");
    let other = ask(&app, &app.finance_key, payment_id, 1_000, "refund-1").await;
    assert_eq!(
        (other.status, other.code()),
        (422, "idempotency_key_reused".into())
    );

    // Four eyes: not approved by the officer who asked.
    let own = app
        .app
        .post(
            &format!("/v1/refunds/{id}/approve"),
            &app.finance_key,
            &json!({}),
        )
        .await;
    assert_eq!(
        (own.status, own.code()),
        (403, "same_officer".into()),
        "{}",
        own.text
    );
    // Nothing is paid back by hand before approval.
    let early = app
        .app
        .post(
            &format!("/v1/refunds/{id}/complete"),
            &second_officer,
            &json!({ "reference": "FT2634100001", "paid_back_at": "2026-11-28T09:00:00Z" }),
        )
        .await;
    assert_eq!(
        (early.status, early.code()),
        (409, "invalid_state".into()),
        "{}",
        early.text
    );

    let approved = app
        .app
        .post(
            &format!("/v1/refunds/{id}/approve"),
            &second_officer,
            &json!({ "note": "Đúng, nộp hai lần" }),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    assert_eq!(approved.json()["status"], "approved");
    let twice = app
        .app
        .post(
            &format!("/v1/refunds/{id}/approve"),
            &second_officer,
            &json!({}),
        )
        .await;
    assert_eq!((twice.status, twice.code()), (409, "invalid_state".into()));

    let done = app
        .app
        .post(
            &format!("/v1/refunds/{id}/complete"),
            &app.finance_key,
            &json!({ "reference": "FT2634100001", "paid_back_at": "2026-11-28T09:00:00Z" }),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let done = done.json();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["reference"], "FT2634100001");
    assert_eq!(done["completed_at"], "2026-11-28T09:00:00.000000Z");

    let now = app.invoice_now(invoice_id).await;
    assert_eq!(
        (now["amount_held"].as_i64(), now["amount_refunded"].as_i64()),
        (Some(0), Some(FEE))
    );
    assert_eq!(now["status"], "paid");
    let page = app
        .app
        .client
        .get(format!("{}/pay/{code}?lang=en", app.app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("650.000 ₫ was refunded at 28/11/2026 16:00, reference FT2634100001."),
        "{page}"
    );
    assert!(!page.contains("is held"), "{page}");

    // The exception it came from is resolved; nothing more is left to refund.
    let exception = app
        .app
        .get(&format!("/v1/exceptions/{exception_id}"), &app.finance_key)
        .await
        .json();
    assert_eq!(exception["status"], "resolved", "{exception}");
    assert_eq!(exception["resolution"]["resolution"], "refunded");
    let more = ask(&app, &app.finance_key, payment_id, 1, "refund-2").await;
    assert_eq!(
        (more.status, more.code()),
        (422, "refund_over_left".into()),
        "{}",
        more.text
    );
    assert_eq!(more.json()["details"]["left"], 0);

    // Listed, shown, audited with who did what, and told to the dossier system.
    let listed = app
        .app
        .get(
            &format!("/v1/refunds?payment_id={payment_id}"),
            &app.finance_key,
        )
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0], done);
    let shown = app
        .app
        .get(&format!("/v1/refunds/{id}"), &second_officer)
        .await
        .json();
    assert_eq!(shown, done);
    let audit = app
        .app
        .get(
            &format!("/v1/audit?object_type=refund&object_id={id}"),
            &app.app.admin_key,
        )
        .await
        .json();
    let mut actions: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    actions.reverse();
    let actions: Vec<(&str, bool)> = actions
        .iter()
        .map(|(a, who)| (a.as_str(), *who == done["requested_by"]))
        .collect();
    assert_eq!(
        actions,
        [
            ("refund.requested", true),
            ("refund.approved", false),
            ("refund.succeeded", true)
        ]
    );
    assert_eq!(done["decided_by"], shown["decided_by"]);
    assert_ne!(done["decided_by"], done["requested_by"]);
    let events = app
        .app
        .get("/v1/events?type=refund.succeeded", &app.app.admin_key)
        .await
        .json();
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["payload"]["data"]["refund_id"], id.as_str());
    assert_eq!(events[0]["payload"]["data"]["amount"], FEE);
}

async fn refunds_refuse_what_they_may_not_do_and_change_nothing(backend: crate::helpers::Backend) {
    let app = spawn_payments_app(backend).await;
    let second_officer = app.app.key(Role::Finance, "P").await;
    let other_province = app.app.key(Role::Finance, "Q").await;
    let dossier_system = app.app.key(Role::AgencySystem, "P.D1").await;
    let invoice = app.invoice("HS-BAD").await;
    let held = paid_twice(&app, &invoice, 9_200).await;
    let held_id = held["id"].as_str().unwrap();
    let invoice_id = invoice["id"].as_str().unwrap();
    let payments = app
        .app
        .get(
            &format!("/v1/invoices/{invoice_id}/payments"),
            &app.finance_key,
        )
        .await
        .json();
    let applied = payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exception"].is_null())
        .unwrap();
    let applied_id = applied["id"].as_str().unwrap();
    let before = app.app.count("refunds").await;

    for (key, payment, amount, body_extra, status, code) in [
        // More than the payment that paid the invoice.
        (
            &app.finance_key,
            applied_id,
            FEE + 1,
            json!({}),
            422,
            "refund_over_left",
        ),
        // More than the payment.
        (
            &app.finance_key,
            held_id,
            FEE + 1,
            json!({}),
            422,
            "refund_over_left",
        ),
        (
            &app.finance_key,
            held_id,
            0,
            json!({}),
            422,
            "validation_failed",
        ),
        (
            &app.finance_key,
            held_id,
            -5,
            json!({}),
            422,
            "validation_failed",
        ),
        // Another province's officer does not learn that the payment exists.
        (&other_province, held_id, 1_000, json!({}), 404, "not_found"),
        (
            &app.finance_key,
            "no-such-payment",
            1_000,
            json!({}),
            404,
            "not_found",
        ),
        // A dossier system does not refund.
        (&dossier_system, held_id, 1_000, json!({}), 403, "forbidden"),
        (
            &app.finance_key,
            held_id,
            1_000,
            json!({ "exception_id": "nope" }),
            422,
            "validation_failed",
        ),
        (
            &app.finance_key,
            held_id,
            1_000,
            json!({ "surprise": true }),
            422,
            "validation_failed",
        ),
    ] {
        let mut body = json!({ "amount": amount, "reason": "Hoàn" });
        for (k, v) in body_extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let answer = post_once(
            &app,
            &format!("/v1/payments/{payment}/refunds"),
            key,
            &format!("bad-{amount}-{code}-{payment}"),
            &body,
        )
        .await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code.to_owned()),
            "{body}: {}",
            answer.text
        );
    }
    let no_key = app
        .app
        .post(
            &format!("/v1/payments/{held_id}/refunds"),
            &app.finance_key,
            &json!({ "amount": 1000, "reason": "x" }),
        )
        .await;
    assert_eq!(
        (no_key.status, no_key.code()),
        (400, "idempotency_key_missing".into())
    );
    assert_eq!(app.app.count("refunds").await, before);

    // Two partial refunds may hold the whole payment, no more.
    let first = ask(&app, &app.finance_key, held_id, 400_000, "part-1").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let over = ask(&app, &app.finance_key, held_id, 250_001, "part-2").await;
    assert_eq!(
        (over.status, over.json()["details"]["left"].as_i64()),
        (422, Some(250_000))
    );
    // A rejected refund gives its amount back to what can be refunded.
    let first_id = first.json()["id"].as_str().unwrap().to_owned();
    let rejected = app
        .app
        .post(
            &format!("/v1/refunds/{first_id}/reject"),
            &second_officer,
            &json!({ "note": "Công dân nhận lại hồ sơ" }),
        )
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    assert_eq!(rejected.json()["status"], "rejected");
    let whole = ask(&app, &app.finance_key, held_id, FEE, "whole").await;
    assert_eq!(whole.status, 201, "{}", whole.text);
    let whole_id = whole.json()["id"].as_str().unwrap().to_owned();

    // Another province's officer can neither see nor decide it.
    let hidden = app
        .app
        .get(&format!("/v1/refunds/{whole_id}"), &other_province)
        .await;
    assert_eq!(hidden.status, 404);
    let foreign = app
        .app
        .post(
            &format!("/v1/refunds/{whole_id}/approve"),
            &other_province,
            &json!({}),
        )
        .await;
    assert_eq!(foreign.status, 404);
    let listed = app.app.get("/v1/refunds", &other_province).await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
    for bad in [
        "/v1/refunds?status=lost",
        "/v1/refunds?limit=0",
        "/v1/refunds?agency_code=%00",
    ] {
        let answer = app.app.get(bad, &app.finance_key).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.text);
    }
    // A rejected refund stays rejected.
    let revived = app
        .app
        .post(
            &format!("/v1/refunds/{first_id}/approve"),
            &second_officer,
            &json!({}),
        )
        .await;
    assert_eq!(
        (revived.status, revived.code()),
        (409, "invalid_state".into())
    );
    // A paid-back time in the future, or an empty reference, is refused.
    let approved = app
        .app
        .post(
            &format!("/v1/refunds/{whole_id}/approve"),
            &second_officer,
            &json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    for body in [
        json!({ "reference": "FT1", "paid_back_at": "2099-01-01T00:00:00Z" }),
        json!({ "reference": "  ", "paid_back_at": "2026-11-28T09:00:00Z" }),
    ] {
        let answer = app
            .app
            .post(
                &format!("/v1/refunds/{whole_id}/complete"),
                &app.finance_key,
                &body,
            )
            .await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
    }
    let still = app
        .app
        .get(&format!("/v1/refunds/{whole_id}"), &app.finance_key)
        .await
        .json();
    assert_eq!(still["status"], "approved");
}

/// A SePay transfer of `amount` naming `invoice`'s payment code.
async fn transfer(app: &PaymentsApp, invoice: &Value, id: i64, amount: i64) {
    let code = invoice["payment_code"].as_str().unwrap();
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer(id, amount, &format!("NOP PHI {code}")),
            &[
                ("Authorization", &sepay_auth()),
                ("Content-Type", "application/json"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

async fn page(app: &PaymentsApp, path: &str) -> String {
    app.app
        .client
        .get(format!("{}{path}", app.app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn transfers_short_of_the_total_add_up_and_more_is_held(backend: crate::helpers::Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-SHORT").await;
    let id = invoice["id"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();
    transfer(&app, &invoice, 9_300, 400_000).await;
    let now = app.invoice_now(id).await;
    assert_eq!(
        (now["status"].as_str(), now["amount_paid"].as_i64()),
        (Some("open"), Some(400_000))
    );
    assert_eq!(now["amount_held"], 0);
    let exceptions = app
        .app
        .get("/v1/exceptions?status=open", &app.finance_key)
        .await
        .json();
    assert!(
        exceptions["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["invoice_id"] != id),
        "{exceptions}"
    );
    // The citizen sees what was received and what is still owed, and the
    // transfer page (reachable again by GET) asks for the remainder.
    let checkout = page(&app, &format!("/pay/{code}")).await;
    assert!(
        checkout.contains("400.000 ₫")
            && checkout.contains("Còn thiếu")
            && checkout.contains("250.000 ₫"),
        "{checkout}"
    );
    let started = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!(
            "{}/pay/{code}/start/bank_transfer",
            app.app.address
        ))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    assert_eq!(
        started.headers()["location"],
        format!("/pay/{code}/transfer").as_str()
    );
    for _ in 0..2 {
        let remainder = page(&app, &format!("/pay/{code}/transfer")).await;
        assert!(remainder.contains("250.000 ₫"), "{remainder}");
        assert!(!remainder.contains("650.000 ₫"), "{remainder}");
    }
    // The rest pays it: one receipt, both transfers applied.
    transfer(&app, &invoice, 9_301, 250_000).await;
    let now = app.invoice_now(id).await;
    assert_eq!(
        (now["status"].as_str(), now["amount_paid"].as_i64()),
        (Some("paid"), Some(FEE))
    );
    assert_eq!(now["receipt"]["number"], "0000001", "{now}");
    let payments = app
        .app
        .get(&format!("/v1/invoices/{id}/payments"), &app.finance_key)
        .await
        .json();
    assert!(
        payments["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["exception"].is_null()),
        "{payments}"
    );
    // Nothing more to transfer: the transfer page leads back to the checkout.
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/pay/{code}/transfer", app.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], format!("/pay/{code}").as_str());

    // More than is owed pays the invoice, and the excess is held for
    // refund; the citizen is told, and it goes back with four eyes.
    let over = app.invoice("HS-OVER").await;
    let over_id = over["id"].as_str().unwrap();
    transfer(&app, &over, 9_302, 700_000).await;
    let now = app.invoice_now(over_id).await;
    assert_eq!(
        (
            now["status"].as_str(),
            now["amount_paid"].as_i64(),
            now["amount_held"].as_i64()
        ),
        (Some("paid"), Some(FEE), Some(50_000))
    );
    assert_eq!(now["receipt"]["number"], "0000002", "{now}");
    let held = &now["held_payments"][0];
    assert_eq!(
        (
            &held["reason"],
            &held["amount"],
            &held["applied"],
            &held["held"]
        ),
        (
            &json!("overpaid"),
            &json!(700_000),
            &json!(FEE),
            &json!(50_000)
        ),
        "{now}"
    );
    let exceptions = app
        .app
        .get("/v1/exceptions?status=open&kind=overpaid", &app.finance_key)
        .await
        .json();
    let excess: Vec<&Value> = exceptions["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["invoice_id"] == over_id)
        .collect();
    assert_eq!(excess.len(), 1, "{exceptions}");
    assert_eq!(excess[0]["amount"], 50_000);
    let told = page(
        &app,
        &format!("/pay/{}", over["payment_code"].as_str().unwrap()),
    )
    .await;
    assert!(
        told.contains("650.000 ₫ đã được ghi cho hồ sơ, 50.000 ₫ là số tiền nộp thừa"),
        "{told}"
    );
    assert!(
        told.contains("Khoản 50.000 ₫ nộp thừa đang được giữ và sẽ được hoàn lại cho bạn."),
        "{told}"
    );
    let approver = app.app.key(Role::Finance, "P").await;
    let payment_id = held["payment_id"].as_str().unwrap();
    let refund = refund_by_hand(&app, &approver, payment_id, 50_000, "over-1").await;
    assert_eq!(refund["exception_id"], excess[0]["id"]);
    let now = app.invoice_now(over_id).await;
    assert_eq!(
        (
            now["status"].as_str(),
            now["amount_paid"].as_i64(),
            now["amount_held"].as_i64(),
            now["amount_refunded"].as_i64()
        ),
        (Some("paid"), Some(FEE), Some(0), Some(50_000))
    );
    let exception = app
        .app
        .get(
            &format!("/v1/exceptions/{}", excess[0]["id"].as_str().unwrap()),
            &app.finance_key,
        )
        .await
        .json();
    assert_eq!(exception["resolution"]["resolution"], "refunded");
    // The money that paid the invoice was not counted as refunded.
    let report = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-11-01&to=2026-11-30&group_by=channel",
            &app.finance_key,
        )
        .await
        .json();
    assert_eq!(report["total"]["total_amount"], 2 * FEE, "{report}");
    assert_eq!(report["total"]["total_refunded"], 0, "{report}");
}

/// Asks for a refund of `amount` of `payment_id` (as the app's finance
/// officer), has `approver` approve it and records it paid back by hand:
/// the succeeded refund.
async fn refund_by_hand(
    app: &PaymentsApp,
    approver: &str,
    payment_id: &str,
    amount: i64,
    idem: &str,
) -> Value {
    let asked = ask(app, &app.finance_key, payment_id, amount, idem).await;
    assert_eq!(asked.status, 201, "{}", asked.text);
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    let approved = app
        .app
        .post(&format!("/v1/refunds/{id}/approve"), approver, &json!({}))
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let done = app
        .app
        .post(
            &format!("/v1/refunds/{id}/complete"),
            &app.finance_key,
            &json!({ "reference": format!("FT-{idem}"), "paid_back_at": "2026-11-29T09:00:00Z" }),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let done = done.json();
    assert_eq!(done["status"], "succeeded");
    done
}

/// The invoice's payments: `(applied, held)`.
async fn payments_of(app: &PaymentsApp, invoice_id: &str) -> (Vec<Value>, Vec<Value>) {
    let payments = app
        .app
        .get(
            &format!("/v1/invoices/{invoice_id}/payments"),
            &app.finance_key,
        )
        .await
        .json();
    payments["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|p| p["exception"].is_null())
}

async fn a_refund_of_money_that_paid_the_invoice_is_covered_by_money_held_for_it(
    backend: crate::helpers::Backend,
) {
    let app = spawn_payments_app(backend).await;
    let approver = app.app.key(Role::Finance, "P").await;
    let invoice = app.invoice("HS-COVER").await;
    let invoice_id = invoice["id"].as_str().unwrap();
    let held = paid_twice(&app, &invoice, 9_400).await;
    let (applied, _) = payments_of(&app, invoice_id).await;
    let first = applied[0]["id"].as_str().unwrap();
    // The officer gives back the payment that paid the invoice, not the
    // one held: the second payment then pays it, and it stays paid.
    let refund = refund_by_hand(&app, &approver, first, FEE, "cover-1").await;
    assert_eq!(refund["exception_id"], Value::Null);
    let now = app.invoice_now(invoice_id).await;
    assert_eq!(
        (
            now["status"].as_str(),
            now["amount_paid"].as_i64(),
            now["amount_held"].as_i64(),
            now["amount_refunded"].as_i64()
        ),
        (Some("paid"), Some(FEE), Some(0), Some(FEE)),
        "{now}"
    );
    let (applied, still_held) = payments_of(&app, invoice_id).await;
    assert_eq!((applied.len(), still_held.len()), (2, 0));
    let exceptions = app
        .app
        .get("/v1/exceptions?kind=overpaid", &app.finance_key)
        .await
        .json();
    let overpaid = exceptions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["payment_id"] == held["id"])
        .cloned()
        .expect("the second payment's exception");
    assert_eq!(overpaid["status"], "resolved", "{overpaid}");
    assert_eq!(overpaid["resolution"]["resolution"], "applied");
    // Nothing is left to refund of the first; the dossier system hears
    // the invoice is still paid.
    let more = ask(&app, &app.finance_key, first, 1, "cover-2").await;
    assert_eq!(more.code(), "refund_over_left", "{}", more.text);
    let events = app
        .app
        .get("/v1/events?type=refund.succeeded", &app.app.admin_key)
        .await
        .json();
    let data = &events["items"][0]["payload"]["data"];
    assert_eq!(
        (&data["invoice_status"], &data["invoice_amount_paid"]),
        (&json!("paid"), &json!(FEE)),
        "{events}"
    );
    // Reports count both payments as collected, the first as refunded,
    // and the rate on what was kept.
    let report = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-11-01&to=2026-11-30&group_by=channel",
            &app.finance_key,
        )
        .await
        .json();
    let total = &report["total"];
    assert_eq!(
        (
            &total["total_amount"],
            &total["total_refunded"],
            &total["cashless_refunded"]
        ),
        (&json!(2 * FEE), &json!(FEE), &json!(FEE)),
        "{report}"
    );
    assert_eq!(total["rate_by_amount"], "100.00");
    let csv = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-11-01&to=2026-11-30&group_by=channel&format=csv",
            &app.finance_key,
        )
        .await
        .text;
    assert!(csv.contains("rate_by_amount_kept"), "{csv}");
    assert!(csv.contains(&format!(",{FEE},0,{FEE}\r\n")), "{csv}");
}

async fn an_invoice_whose_money_went_back_with_nothing_to_cover_it_stops_being_paid(
    backend: crate::helpers::Backend,
) {
    let app = spawn_payments_app(backend).await;
    let approver = app.app.key(Role::Finance, "P").await;
    let invoice = app.invoice("HS-BACK").await;
    let invoice_id = invoice["id"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();
    transfer(&app, &invoice, 9_500, FEE).await;
    let (applied, _) = payments_of(&app, invoice_id).await;
    let payment_id = applied[0]["id"].as_str().unwrap();
    // Part of it first: the invoice owes again and nothing covers it.
    refund_by_hand(&app, &approver, payment_id, 150_000, "back-1").await;
    let now = app.invoice_now(invoice_id).await;
    assert_eq!(
        (
            now["status"].as_str(),
            now["amount_paid"].as_i64(),
            now["amount_refunded"].as_i64()
        ),
        (Some("cancelled"), Some(FEE - 150_000), Some(150_000)),
        "{now}"
    );
    refund_by_hand(&app, &approver, payment_id, FEE - 150_000, "back-2").await;
    let now = app.invoice_now(invoice_id).await;
    assert_eq!(
        (
            now["status"].as_str(),
            now["amount_paid"].as_i64(),
            now["amount_refunded"].as_i64()
        ),
        (Some("cancelled"), Some(0), Some(FEE)),
        "{now}"
    );
    let events = app
        .app
        .get("/v1/events?type=refund.succeeded", &app.app.admin_key)
        .await
        .json();
    let data = &events["items"][0]["payload"]["data"];
    assert_eq!(
        (&data["invoice_status"], &data["invoice_amount_paid"]),
        (&json!("cancelled"), &json!(0)),
        "{events}"
    );
    // The citizen is told the fees went back, and when.
    let told = page(&app, &format!("/pay/{code}")).await;
    assert!(
        told.contains("Khoản phí đã nộp đã được hoàn lại cho bạn"),
        "{told}"
    );
    assert!(
        told.contains("Đã hoàn 150.000 ₫ lúc 29/11/2026 16:00, mã tham chiếu FT-back-1."),
        "{told}"
    );
    assert!(!told.contains("đang được giữ"), "{told}");
    // Money paid to it afterwards is held as late, not applied.
    transfer(&app, &invoice, 9_501, FEE).await;
    let (_, held) = payments_of(&app, invoice_id).await;
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["exception"], "late_payment");
    // The report counts it collected and refunded: nothing kept, no rate.
    let report = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-11-01&to=2026-11-30&group_by=channel",
            &app.finance_key,
        )
        .await
        .json();
    let total = &report["total"];
    assert_eq!(
        (
            &total["total_amount"],
            &total["total_refunded"],
            &total["rate_by_amount"]
        ),
        (&json!(FEE), &json!(FEE), &Value::Null),
        "{report}"
    );
    // The audit tells the invoice's story.
    let audit = app
        .app
        .get(
            &format!("/v1/audit?object_type=invoice&object_id={invoice_id}"),
            &app.app.admin_key,
        )
        .await
        .json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "invoice.given_back")
            .count(),
        2,
        "{actions:?}"
    );
}

async fn a_refund_answer_not_signed_with_the_gateways_key_is_not_trusted(
    backend: crate::helpers::Backend,
) {
    use wiremock::matchers::{method, path};
    let app = spawn_payments_app(backend).await;
    let approver = app.app.key(Role::Finance, "P").await;
    // Paid twice through VNPay: two attempts, two signed IPNs.
    let invoice = app.invoice("HS-FORGED").await;
    let id = invoice["id"].as_str().unwrap();
    let orders: Vec<String> = [0, 1]
        .iter()
        .map(|_| async {
            let attempt = app.attempt(id, "vnpay").await;
            assert_eq!(attempt.status, 201, "{}", attempt.text);
            attempt.json()["order_ref"].as_str().unwrap().to_owned()
        })
        .collect::<futures_util::stream::FuturesOrdered<_>>()
        .collect()
        .await;
    // The second is recorded and held; VNPay hears "already confirmed".
    for ((order_ref, txn), heard) in orders.iter().zip(["7101", "7102"]).zip(["00", "02"]) {
        let ipn = crate::payments::vnpay_ipn(order_ref, FEE, txn, "00");
        assert_eq!(
            crate::payments::rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
            heard
        );
    }
    let held = app.invoice_now(id).await["held_payments"][0]["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // VNPay's answers come back signed with another key.
    wiremock::Mock::given(method("POST"))
        .and(path("/merchant_webapi/api/transaction"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({
            "vnp_ResponseId": "R1", "vnp_Command": "refund", "vnp_ResponseCode": "00",
            "vnp_Message": "Yeu cau thanh cong", "vnp_TmnCode": crate::helpers::creds::VNPAY_TMN,
            "vnp_TxnRef": orders[1], "vnp_Amount": "65000000", "vnp_BankCode": "NCB",
            "vnp_PayDate": "20261128093000", "vnp_TransactionNo": "7102",
            "vnp_TransactionType": "02", "vnp_TransactionStatus": "00",
            "vnp_OrderInfo": "Hoan tien", "vnp_SecureHash": "00".repeat(64),
        })))
        .mount(&app.provider_api)
        .await;
    let asked = ask(&app, &app.finance_key, &held, FEE, "forged").await;
    assert_eq!(asked.status, 201, "{}", asked.text);
    let refund_id = asked.json()["id"].as_str().unwrap().to_owned();
    let approved = app
        .app
        .post(
            &format!("/v1/refunds/{refund_id}/approve"),
            &approver,
            &json!({}),
        )
        .await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let approved = approved.json();
    assert_eq!(
        approved["status"], "submitted",
        "never taken for done: {approved}"
    );
    assert_eq!(approved["provider_code"], "bad_signature", "{approved}");
    let unconfirmed = app
        .app
        .get("/v1/exceptions?kind=refund_unconfirmed", &app.finance_key)
        .await
        .json();
    let unconfirmed = unconfirmed["items"].as_array().unwrap();
    assert_eq!(unconfirmed.len(), 1, "{unconfirmed:?}");
    assert_eq!(unconfirmed[0]["payment_id"], held.as_str());
    assert_eq!(unconfirmed[0]["status"], "open");
    // The overpaid exception stays open; the money is not counted refunded.
    let now = app.invoice_now(id).await;
    assert_eq!(
        (now["amount_held"].as_i64(), now["amount_refunded"].as_i64()),
        (Some(FEE), Some(0))
    );
    assert_eq!(now["held_payments"][0]["refunding"], FEE);
}

async fn a_refund_under_the_agencys_threshold_needs_no_second_officer(
    backend: crate::helpers::Backend,
) {
    let app = spawn_payments_app_with(backend, |s| {
        s.refunds.approval_free_below = lephi::domain::Vnd::new(100_000);
    })
    .await;
    let invoice = app.invoice("HS-SMALL").await;
    let held = paid_twice(&app, &invoice, 9_500).await;
    let held_id = held["id"].as_str().unwrap();
    let small = ask(&app, &app.finance_key, held_id, 99_999, "small").await;
    assert_eq!(small.status, 201, "{}", small.text);
    let small = small.json();
    assert_eq!(small["status"], "approved", "{small}");
    assert_eq!(small["decided_by"], "system:approval-threshold");
    // At the threshold, a second officer is needed again.
    let large = ask(&app, &app.finance_key, held_id, 100_000, "large").await;
    assert_eq!(large.json()["status"], "requested", "{}", large.text);
    // The approved one waits for the officer who pays it back by hand.
    let done = app
        .app
        .post(
            &format!("/v1/refunds/{}/complete", small["id"].as_str().unwrap()),
            &app.finance_key,
            &json!({ "reference": "FT1", "paid_back_at": "2026-11-28T09:00:00Z" }),
        )
        .await;
    assert_eq!(done.json()["status"], "succeeded", "{}", done.text);
}
