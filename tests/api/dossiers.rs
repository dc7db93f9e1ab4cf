//! The dossier register: imported from CSV, reconciled against the
//! payments made through the API, every outcome computed from them.

use std::collections::BTreeMap;

use lephi::domain::Role;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cli::lephi;
use crate::helpers::{
    Backend, PaymentsApp, Response, database_url, spawn_payments_app, spawn_payments_app_with,
};
use crate::on_both_backends;
use crate::payments::{sepay_auth, sepay_transfer, vnpay_ipn};

on_both_backends!(
    every_outcome_comes_from_the_payments_made,
    reimporting_updates_and_never_duplicates,
    a_payment_for_an_unlisted_dossier_is_one_exception_until_the_dossier_is_listed,
    a_bad_file_is_refused_with_its_line_and_nothing_is_imported,
    the_register_is_scoped,
    the_command_line_imports_a_register,
);

const HEADER: &str = "dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n";

/// Uploads `csv` and follows its import job to its end: answers the
/// job's final view, or the refused upload.
async fn import(app: &PaymentsApp, key: &str, csv: impl Into<Vec<u8>>) -> Response {
    app.app.import_register(key, csv.into()).await
}

/// Imports `csv` and expects it done: answers its summary's counts (the
/// import's fields but those of its job).
async fn imported(app: &PaymentsApp, key: &str, csv: &str) -> Value {
    let response = import(app, key, csv).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.import_status(), "done", "{}", response.text);
    let mut summary = response.json();
    let job = [
        "id",
        "sha256",
        "status",
        "progress",
        "imported_at",
        "imported_by",
        "imported_by_name",
    ];
    for field in job {
        assert!(
            summary.as_object_mut().unwrap().remove(field).is_some(),
            "{field}"
        );
    }
    summary
}

/// Expects `response`, an import's final view, refused at `line`, with a
/// reason that says `reason`.
fn refused_at(response: &Response, line: usize, reason: &str, what: &str) {
    assert_eq!(response.status, 200, "{what}: {}", response.text);
    assert_eq!(
        response.import_status(),
        "refused",
        "{what}: {}",
        response.text
    );
    let refused = &response.json()["refused"];
    assert_eq!(refused["line"], line, "{what}: {refused}");
    assert!(
        refused["reason"].as_str().unwrap().contains(reason),
        "{what}: {refused}"
    );
}

/// Pays invoice `invoice` by VNPay: an attempt and its signed IPN.
async fn pay_by_vnpay(app: &PaymentsApp, invoice: &Value, amount: i64, txn: &str) -> String {
    let attempt = app.attempt(invoice["id"].as_str().unwrap(), "vnpay").await;
    assert_eq!(attempt.status, 201, "{}", attempt.text);
    let ipn = vnpay_ipn(
        attempt.json()["order_ref"].as_str().unwrap(),
        amount,
        txn,
        "00",
    );
    let answer = app.callback("vnpay", &ipn, vec![], &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["RspCode"].as_str().unwrap().to_owned()
}

/// Pays invoice `invoice` by a bank transfer naming its payment code.
async fn pay_by_transfer(app: &PaymentsApp, invoice: &Value, amount: i64, id: i64) {
    let note = format!(
        "NGUYEN VAN A chuyen tien {}",
        invoice["payment_code"].as_str().unwrap()
    );
    let auth = sepay_auth();
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer(id, amount, &note),
            &[("Authorization", auth.as_str())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
}

/// Records cash at the counter for invoice `invoice`.
async fn pay_in_cash(app: &PaymentsApp, invoice: &Value, amount: i64, receipt: &str) {
    let id = invoice["id"].as_str().unwrap();
    let answer = app
        .app
        .request(
            reqwest::Method::POST,
            &format!("/v1/invoices/{id}/cash-payments"),
            Some(&app.finance_key),
            Some(&json!({
                "amount": amount,
                "receipt_number": receipt,
                "received_at": "2026-11-28T08:00:00+07:00",
            })),
            &[("Idempotency-Key", receipt)],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
}

/// Every dossier the key sees, following the cursor `limit` at a time.
async fn all_dossiers(app: &PaymentsApp, key: &str, query: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/dossiers?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!(
                "&cursor={}",
                form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
            ));
        }
        let page = app.app.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn by_code(items: &[Value]) -> BTreeMap<String, Value> {
    items
        .iter()
        .map(|d| (d["dossier_code"].as_str().unwrap().to_owned(), d.clone()))
        .collect()
}

async fn every_outcome_comes_from_the_payments_made(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let cashless = app.invoice("HS-VNPAY").await;
    assert_eq!(pay_by_vnpay(&app, &cashless, 650_000, "9001").await, "00");
    let transfer = app.invoice("HS-CK").await;
    pay_by_transfer(&app, &transfer, 650_000, 1).await;
    let cash = app.invoice("HS-CASH").await;
    pay_in_cash(&app, &cash, 650_000, "0000001").await;
    // Paid by VNPay, then again by transfer: the second is an exception,
    // but it is money received for the dossier all the same.
    let twice = app.invoice("HS-TWICE").await;
    assert_eq!(pay_by_vnpay(&app, &twice, 650_000, "9002").await, "00");
    pay_by_transfer(&app, &twice, 650_000, 2).await;
    let over = app.invoice("HS-OVER").await;
    assert_eq!(pay_by_vnpay(&app, &over, 650_000, "9003").await, "00");
    pay_by_transfer(&app, &over, 100_000, 3).await;
    let under = app.invoice("HS-UNDER").await;
    assert_eq!(pay_by_vnpay(&app, &under, 600_000, "9004").await, "04");
    app.invoice("HS-OPEN").await;
    assert_eq!(app.app.count("payments").await, 8);

    let csv = format!(
        "{HEADER}HS-VNPAY,P.D1,1.004227,650000,2026-11-28T08:30:00+07:00,received\n\
         HS-CK,P.D1,1.004227,\"650.000\",2026-11-28,received\n\
         HS-CASH,P.D1,1.004227,650000,2026-11-28,done\n\
         HS-TWICE,P.D1,1.004227,650000,2026-11-27,done\n\
         HS-OVER,P.D1,1.004227,650000,2026-11-27,done\n\
         HS-UNDER,P.D1,1.004227,650000,2026-11-26,in_progress\n\
         HS-OPEN,P.D1,1.004227,650000,2026-11-26,received\n\
         HS-NO-INVOICE,P.D1,1.004227,650000,2026-11-25,received\n"
    );
    let answer = imported(&app, &app.finance_key, &csv).await;
    assert_eq!(
        answer,
        json!({
            "rows": 8, "created": 8, "updated": 0, "unchanged": 0,
            "outcomes": {
                "paid_cashless": 2, "paid_cash": 1, "unpaid": 2,
                "underpaid": 1, "overpaid": 1, "paid_twice": 1
            },
            "unknown_dossier_exceptions": 0,
            "unknown_dossier_exceptions_cleared": 0
        })
    );

    let items = all_dossiers(&app, &app.finance_key, "", 100).await;
    let dossiers = by_code(&items);
    let expect = |code: &str, outcome: &str, received: i64, count: i64, channels: Value| {
        let d = &dossiers[code];
        assert_eq!(d["outcome"], outcome, "{code}: {d}");
        assert_eq!(d["received_amount"], received, "{code}: {d}");
        assert_eq!(d["payment_count"], count, "{code}: {d}");
        assert_eq!(d["channels"], channels, "{code}: {d}");
        assert_eq!(d["fee_amount"], 650000, "{code}: {d}");
        assert_eq!(d["agency_code"], "P.D1", "{code}: {d}");
    };
    expect("HS-VNPAY", "paid_cashless", 650_000, 1, json!(["vnpay"]));
    expect(
        "HS-CK",
        "paid_cashless",
        650_000,
        1,
        json!(["bank_transfer"]),
    );
    expect("HS-CASH", "paid_cash", 650_000, 1, json!(["cash"]));
    expect(
        "HS-TWICE",
        "paid_twice",
        1_300_000,
        2,
        json!(["vnpay", "bank_transfer"]),
    );
    expect(
        "HS-OVER",
        "overpaid",
        750_000,
        2,
        json!(["vnpay", "bank_transfer"]),
    );
    expect("HS-UNDER", "underpaid", 600_000, 1, json!(["vnpay"]));
    expect("HS-OPEN", "unpaid", 0, 0, json!([]));
    expect("HS-NO-INVOICE", "unpaid", 0, 0, json!([]));
    let first = &dossiers["HS-VNPAY"];
    assert_eq!(first["received_at"], "2026-11-28T01:30:00.000000Z");
    assert_eq!(first["procedure_code"], "1.004227");
    assert_eq!(first["status"], "received");
    assert_eq!(
        dossiers["HS-CK"]["received_at"], "2026-11-27T17:00:00.000000Z",
        "a day is its start in Vietnam"
    );

    // Newest received first; a small page follows the same order.
    let received: Vec<&str> = items
        .iter()
        .map(|d| d["received_at"].as_str().unwrap())
        .collect();
    let mut sorted = received.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(received, sorted);
    let paged = all_dossiers(&app, &app.finance_key, "", 3).await;
    assert_eq!(paged, items);

    // Filtering by outcome keeps exactly the dossiers of that outcome.
    for outcome in [
        "paid_cashless",
        "paid_cash",
        "unpaid",
        "underpaid",
        "overpaid",
        "paid_twice",
    ] {
        let filtered =
            all_dossiers(&app, &app.finance_key, &format!("&outcome={outcome}"), 1).await;
        let expected: Vec<Value> = items
            .iter()
            .filter(|d| d["outcome"] == outcome)
            .cloned()
            .collect();
        assert_eq!(filtered, expected, "{outcome}");
    }
    let window = all_dossiers(
        &app,
        &app.finance_key,
        "&from=2026-11-27&to=2026-11-28",
        100,
    )
    .await;
    // Days are Vietnamese days; `to` is exclusive.
    let mut codes: Vec<&str> = window
        .iter()
        .map(|d| d["dossier_code"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["HS-OVER", "HS-TWICE"]);
    let bad = app
        .app
        .get("/v1/dossiers?outcome=paid", &app.finance_key)
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "invalid_query");
    let bad = app
        .app
        .get("/v1/dossiers?from=yesterday", &app.finance_key)
        .await;
    assert_eq!(bad.status, 400);
}

async fn reimporting_updates_and_never_duplicates(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    assert_eq!(pay_by_vnpay(&app, &invoice, 650_000, "7001").await, "00");
    let first = format!(
        "{HEADER}HS-1,P.D1,1.004227,650000,2026-11-28,received\n\
         HS-2,P.D1,1.004227,150000,2026-11-28,received\n"
    );
    let answer = imported(&app, &app.finance_key, &first).await;
    assert_eq!(
        (answer["created"].as_i64(), answer["unchanged"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(answer["outcomes"]["paid_cashless"], 1);
    let again = imported(&app, &app.finance_key, &first).await;
    assert_eq!(
        (
            &again["rows"],
            &again["created"],
            &again["updated"],
            &again["unchanged"]
        ),
        (&json!(2), &json!(0), &json!(0), &json!(2))
    );
    // The dossier system raised HS-1's fee and moved HS-2 on: the columns
    // may come in another order.
    let changed = "status,dossier_code,agency_code,procedure_code,fee_amount,received_at\n\
                   received,HS-1,P.D1,1.004227,\"700.000\",2026-11-28\n\
                   done,HS-2,P.D1,1.004227,150000,2026-11-28\n\
                   received,HS-3,P.D1,1.004227,150000,2026-11-28\n";
    let answer = imported(&app, &app.finance_key, changed).await;
    assert_eq!(
        (&answer["created"], &answer["updated"], &answer["unchanged"]),
        (&json!(1), &json!(2), &json!(0))
    );
    assert_eq!(answer["outcomes"]["underpaid"], 1);
    assert_eq!(answer["outcomes"]["unpaid"], 2);
    assert_eq!(app.app.count("dossiers").await, 3);
    let dossiers = by_code(&all_dossiers(&app, &app.finance_key, "", 100).await);
    assert_eq!(dossiers["HS-1"]["fee_amount"], 700000);
    assert_eq!(dossiers["HS-1"]["outcome"], "underpaid");
    assert_eq!(dossiers["HS-2"]["status"], "done");

    // One audit record an import, with its counts and the file's SHA-256.
    let audit = app
        .app
        .get("/v1/audit?action=dossiers.imported", &app.finance_key)
        .await;
    let records = audit.json()["items"].as_array().unwrap().clone();
    assert_eq!(records.len(), 3, "{records:?}");
    let newest = &records[0];
    let sha = hex::encode(Sha256::digest(changed.as_bytes()));
    assert_eq!(newest["object_id"], sha);
    assert_eq!(newest["after"]["sha256"], sha);
    assert_eq!(newest["after"]["summary"]["updated"], 2);
    assert_eq!(newest["after"]["summary"]["created"], 1);
    assert_eq!(newest["agency_code"], "P.D1");
}

async fn unknown_dossier_exceptions(app: &PaymentsApp) -> Vec<(String, String, Option<String>)> {
    let pool = app.app.raw_pool().await;
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT payment_id, status, resolution FROM payment_exceptions
         WHERE kind = 'unknown_dossier' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

async fn a_payment_for_an_unlisted_dossier_is_one_exception_until_the_dossier_is_listed(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    let listed = app.invoice("HS-1").await;
    assert_eq!(pay_by_vnpay(&app, &listed, 650_000, "8001").await, "00");
    let unlisted = app.invoice("HS-9").await;
    pay_by_transfer(&app, &unlisted, 650_000, 11).await;
    let payment_id = app
        .app
        .get(
            &format!("/v1/invoices/{}/payments", unlisted["id"].as_str().unwrap()),
            &app.finance_key,
        )
        .await
        .json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A register of one early day does not speak for payments collected later.
    let early = format!("{HEADER}HS-1,P.D1,1.004227,650000,2026-01-01,received\n");
    let answer = imported(&app, &app.finance_key, &early).await;
    assert_eq!(answer["unknown_dossier_exceptions"], 0);
    assert!(unknown_dossier_exceptions(&app).await.is_empty());

    // A register whose days span the payments': HS-9 is not on it.
    let spanning = format!(
        "{HEADER}HS-1,P.D1,1.004227,650000,2026-01-01,received\n\
         HS-2,P.D1,1.004227,650000,2099-12-31,received\n"
    );
    let answer = imported(&app, &app.finance_key, &spanning).await;
    assert_eq!(answer["unknown_dossier_exceptions"], 1, "{answer}");
    let again = imported(&app, &app.finance_key, &spanning).await;
    assert_eq!(again["unknown_dossier_exceptions"], 0, "{again}");
    assert_eq!(
        unknown_dossier_exceptions(&app).await,
        vec![(payment_id.clone(), "open".to_owned(), None)]
    );
    let open = app
        .app
        .get(
            "/v1/exceptions?kind=unknown_dossier&status=open",
            &app.finance_key,
        )
        .await;
    let items = open.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["payment_id"], payment_id);
    assert_eq!(items[0]["agency_code"], "P.D1");
    assert_eq!(items[0]["amount"], 650000);
    assert!(
        items[0]["detail"].as_str().unwrap().contains("HS-9"),
        "{items}"
    );
    // Reconciliation's findings are the officers' alone: no event.
    assert_eq!(
        app.app.get("/v1/events", &app.app.admin_key).await.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "exception.opened")
            .count(),
        0
    );

    // The dossier system lists HS-9 later: the exception is cleared.
    let late = format!("{HEADER}HS-9,P.D1,1.004227,650000,2026-11-28,received\n");
    let answer = imported(&app, &app.finance_key, &late).await;
    assert_eq!(answer["unknown_dossier_exceptions"], 0);
    assert_eq!(answer["unknown_dossier_exceptions_cleared"], 1);
    assert_eq!(answer["outcomes"]["paid_cashless"], 1);
    assert_eq!(
        unknown_dossier_exceptions(&app).await,
        vec![(
            payment_id.clone(),
            "resolved".to_owned(),
            Some("dossier_registered".to_owned())
        )]
    );
    let again = imported(&app, &app.finance_key, &spanning).await;
    assert_eq!(again["unknown_dossier_exceptions"], 0);
    assert_eq!(unknown_dossier_exceptions(&app).await.len(), 1);
}

async fn a_bad_file_is_refused_with_its_line_and_nothing_is_imported(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.reconciliation.max_file_bytes = 4096;
    })
    .await;
    let ok = "HS-1,P.D1,1.004227,650000,2026-11-28,received\n";
    let mut not_utf8 = format!("{HEADER}{ok}").into_bytes();
    not_utf8.extend_from_slice(b"HS-\xC0\xAF2,P.D1,1.004227,650000,2026-11-28,received\n");
    let cases: Vec<(&str, Vec<u8>, usize, &str)> = vec![
        (
            "wrong header",
            format!("dossier,agency,procedure,fee,received,status\n{ok}").into_bytes(),
            1,
            "header",
        ),
        (
            "bad amount",
            format!("{HEADER}{ok}HS-2,P.D1,1.004227,6 50000,2026-11-28,received\n").into_bytes(),
            3,
            "fee_amount",
        ),
        (
            "fractional đồng",
            format!("{HEADER}{ok}HS-2,P.D1,1.004227,\"650.000,50\",2026-11-28,received\n")
                .into_bytes(),
            3,
            "fraction",
        ),
        (
            "bad date",
            format!("{HEADER}{ok}HS-2,P.D1,1.004227,650000,2026-02-30,received\n").into_bytes(),
            3,
            "received_at",
        ),
        (
            "unknown agency",
            format!("{HEADER}{ok}HS-2,ZZ,1.004227,650000,2026-11-28,received\n").into_bytes(),
            3,
            "ZZ",
        ),
        (
            "another agency's dossier",
            format!("{HEADER}{ok}HS-2,Q,1.004227,650000,2026-11-28,received\n").into_bytes(),
            3,
            "Q",
        ),
        (
            "duplicate row",
            format!("{HEADER}{ok}HS-2,P.D1,1.004227,1000,2026-11-28,received\n{ok}").into_bytes(),
            4,
            "twice",
        ),
        ("not UTF-8", not_utf8, 3, "UTF-8"),
    ];
    for (what, csv, line, reason) in cases {
        let refused = import(&app, &app.finance_key, csv).await;
        refused_at(&refused, line, reason, what);
    }
    assert_eq!(app.app.count("dossiers").await, 0);
    let audit = app
        .app
        .get("/v1/audit?action=dossiers.imported", &app.app.admin_key)
        .await;
    assert_eq!(audit.json()["items"], json!([]));

    let good = format!("{HEADER}{ok}");
    let as_json = app
        .app
        .post_raw(
            "/v1/dossiers/import",
            &app.finance_key,
            good.clone().into_bytes(),
            &[("Content-Type", "application/json")],
        )
        .await;
    assert_eq!(as_json.status, 415, "{}", as_json.text);
    let too_big = format!("{HEADER}{}", ok.repeat(100));
    let refused = import(&app, &app.finance_key, too_big).await;
    assert_eq!(refused.status, 413, "{}", refused.text);
    assert_eq!(refused.code(), "payload_too_large");
    let system = import(&app, &app.system_key, good.clone()).await;
    assert_eq!(system.status, 403, "{}", system.text);
    let listing = app.app.get("/v1/dossiers", &app.system_key).await;
    assert_eq!(listing.status, 403);
    assert_eq!(app.app.count("dossiers").await, 0);
    imported(&app, &app.app.admin_key, &good).await;
    assert_eq!(app.app.count("dossiers").await, 1);
}

async fn the_register_is_scoped(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let csv = format!(
        "{HEADER}HS-1,P.D1,1.004227,650000,2026-11-28,received\n\
         HS-1,P.D2,1.004227,650000,2026-11-28,received\n\
         HS-2,P.D1.C1,1.004227,650000,2026-11-27,received\n\
         HS-1,Q,1.004227,650000,2026-11-28,received\n"
    );
    let answer = imported(&app, &app.app.admin_key, &csv).await;
    assert_eq!(answer["created"], 4);
    let seen = |items: Vec<Value>| -> Vec<String> {
        let mut seen: Vec<String> = items
            .iter()
            .map(|d| {
                format!(
                    "{}/{}",
                    d["agency_code"].as_str().unwrap(),
                    d["dossier_code"].as_str().unwrap()
                )
            })
            .collect();
        seen.sort();
        seen
    };
    let district = app.app.key(Role::Finance, "P.D1").await;
    assert_eq!(
        seen(all_dossiers(&app, &district, "", 100).await),
        ["P.D1.C1/HS-2", "P.D1/HS-1"]
    );
    assert_eq!(
        seen(all_dossiers(&app, &app.finance_key, "", 100).await),
        ["P.D1.C1/HS-2", "P.D1/HS-1", "P.D2/HS-1"]
    );
    assert_eq!(
        seen(all_dossiers(&app, &app.finance_key, "&agency_code=P.D2", 100).await),
        ["P.D2/HS-1"]
    );
    assert_eq!(
        seen(all_dossiers(&app, &app.app.admin_key, "", 100).await).len(),
        4
    );
    let other = app
        .app
        .get("/v1/dossiers?agency_code=Q", &app.finance_key)
        .await;
    assert_eq!(other.status, 404, "{}", other.text);
    assert_eq!(other.code(), "agency_not_found");
    // A district's officer cannot import its sibling's dossiers.
    let sibling = format!("{HEADER}HS-3,P.D2,1.004227,650000,2026-11-28,received\n");
    let refused = import(&app, &district, sibling).await;
    refused_at(&refused, 2, "P.D2", "a sibling's dossier");
    assert_eq!(app.app.count("dossiers").await, 4);
}

async fn the_command_line_imports_a_register(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let agencies = dir.path().join("agencies.csv");
    std::fs::write(
        &agencies,
        "code,name,level,parent_code\nH26,Tỉnh Hưng Yên,province,\nH26.01,Huyện Văn Lâm,district,H26\n",
    )
    .unwrap();
    let (ok, _, err) = lephi(&url, &["agencies", "import", agencies.to_str().unwrap()]);
    assert!(ok, "{err}");
    let register = dir.path().join("register.csv");
    let file = register.to_str().unwrap();
    std::fs::write(
        &register,
        format!(
            "\u{feff}{HEADER}HS-1,H26.01,1.004227,650000,2026-11-28,received\n\
             HS-2,H26,2.000001,\"1.200.000\",2026-11-28T09:00:00+07:00,received\n"
        ),
    )
    .unwrap();
    let (ok, out, err) = lephi(&url, &["dossiers", "import", file]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2 rows, 2 created, 0 updated, 0 unchanged"),
        "{out}"
    );
    assert!(out.contains("2 unpaid"), "{out}");
    let (ok, out, err) = lephi(&url, &["dossiers", "import", file]);
    assert!(ok, "{err}");
    assert!(out.contains("0 created, 0 updated, 2 unchanged"), "{out}");
    std::fs::write(
        &register,
        format!(
            "{HEADER}HS-3,H26.01,1.004227,650000,2026-11-28,received\n\
             HS-4,H99,1.004227,650000,2026-11-28,received\n"
        ),
    )
    .unwrap();
    let (ok, _, err) = lephi(&url, &["dossiers", "import", file]);
    assert!(!ok);
    assert!(err.contains("line 3") && err.contains("H99"), "{err}");
    let (ok, _, err) = lephi(&url, &["dossiers", "import", "/no/such/register.csv"]);
    assert!(!ok && err.contains("cannot read"), "{err}");
}
