//! Settlement statements: a month of payments reconciled against the
//! providers' statements, with every kind of discrepancy planted and
//! counted independently; shuffled and re-split statements give the same
//! result; a file imported twice adds nothing; bad files are refused whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lephi::domain::Role;
use serde_json::{Value, json};

use crate::cli::{lephi, lephi_with};
use crate::helpers::{Backend, PaymentsApp, spawn_payments_app};
use crate::on_both_backends;
use crate::payments::{rsp_code, sepay_auth, sepay_transfer, vnpay_attempt, vnpay_ipn_paid_at};

on_both_backends!(
    a_month_of_statements_finds_every_planted_discrepancy,
    shuffled_and_resplit_statements_give_the_same_result,
    a_bad_statement_is_refused_whole_with_its_line_number,
    a_bank_statement_matches_transfers_by_payment_code_and_amount,
    a_payment_found_unsettled_is_cleared_when_a_later_import_settles_it,
    a_payment_recorded_after_an_import_is_still_checked_by_the_next,
    an_import_for_fewer_agencies_leaves_the_others_to_be_checked,
    a_payment_checked_too_early_is_checked_again_once_overdue,
    more_days_allowed_leave_a_payment_recorded_since_for_later,
    a_statement_settling_another_agencys_payments_is_refused,
    a_statements_summary_is_seen_only_by_keys_whose_scope_covers_its_importers,
    officers_resolve_exceptions_once_and_in_scope,
    a_statement_is_imported_from_the_command_line,
    a_line_names_only_what_exists_and_nothing_it_names_goes_away,
    a_finance_officer_closes_the_month,
);

pub(crate) const CANONICAL: &str =
    "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date";
const FEE: i64 = 650_000;

/// How each planted payment of the month is meant to turn out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Called back and settled.
    Settled,
    /// Called back; settled for 10,000 đồng less.
    Mismatched,
    /// Called back; in no statement.
    NeverSettled,
    /// Never called back; the statement settles it.
    CallbackLost,
}

/// One invoice paid through VNPay in October 2026.
struct Planted {
    order_ref: String,
    txn: String,
    day: u32,
    plan: Plan,
}

/// Pays the month: 36 VNPay attempts on days 1 to 28 of October, each
/// with its plan. Returns them in order.
async fn pay_the_month(app: &PaymentsApp) -> Vec<Planted> {
    let mut planted = Vec::new();
    for i in 0..36u32 {
        let plan = match i {
            0..24 => Plan::Settled,
            24..26 => Plan::Mismatched,
            26..32 => Plan::NeverSettled,
            _ => Plan::CallbackLost,
        };
        let (_, attempt) = vnpay_attempt(app, &format!("HS-{i}")).await;
        let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
        let txn = format!("{}", 14_000_000 + i);
        // The last never-settled payment is too recent to be overdue.
        let day = if i == 31 { 28 } else { 1 + (i * 5) % 28 };
        if plan != Plan::CallbackLost {
            let ipn = vnpay_ipn_paid_at(
                &order_ref,
                FEE,
                &txn,
                "00",
                &format!("202610{day:02}100000"),
            );
            assert_eq!(
                rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
                "00"
            );
        }
        planted.push(Planted {
            order_ref,
            txn,
            day,
            plan,
        });
    }
    planted
}

/// The month's statement lines by settlement day (the day after payment):
/// every planted payment but the never-settled ones, line 0's and line
/// 5's transactions settled again two days later, line 10's twice in its
/// own file, and one transaction for an order lephi never issued.
fn statement_days(planted: &[Planted]) -> BTreeMap<u32, Vec<String>> {
    let line = |p: &Planted, amount: i64, day: u32| {
        format!(
            "{},{},{amount},1650,2026-10-{:02}T10:00:00+07:00,2026-10-{day:02}",
            p.txn, p.order_ref, p.day
        )
    };
    let mut days: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (i, p) in planted.iter().enumerate() {
        let amount = match p.plan {
            Plan::NeverSettled => continue,
            Plan::Mismatched => FEE - 10_000,
            Plan::Settled | Plan::CallbackLost => FEE,
        };
        days.entry(p.day + 1)
            .or_default()
            .push(line(p, amount, p.day + 1));
        if i == 0 || i == 5 {
            days.entry(p.day + 2)
                .or_default()
                .push(line(p, FEE, p.day + 2));
        }
        if i == 10 {
            days.entry(p.day + 1)
                .or_default()
                .push(line(p, FEE, p.day + 1));
        }
    }
    days.entry(20)
        .or_default()
        .push("99000001,NO-SUCH-ORDER,120000,0,2026-10-19T08:00:00+07:00,2026-10-20".to_owned());
    days
}

/// Pays dossier `dossier`'s invoice through VNPay, as transaction `txn`
/// on 1 October 2026; returns the attempt's order reference.
pub async fn paid_by_vnpay(app: &PaymentsApp, dossier: &str, txn: &str) -> String {
    let (_, attempt) = vnpay_attempt(app, dossier).await;
    let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
    let ipn = vnpay_ipn_paid_at(&order_ref, FEE, txn, "00", "20261001100000");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    order_ref
}

/// A VNPay statement in the canonical profile of `lines`.
pub fn csv(lines: &[String]) -> Vec<u8> {
    let mut text = String::from(CANONICAL);
    for line in lines {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    text.into_bytes()
}

async fn import(app: &PaymentsApp, channel: &str, file: Vec<u8>) -> crate::helpers::Response {
    app.app
        .import_statement(
            &format!("/v1/settlements?channel={channel}"),
            &app.finance_key,
            file,
        )
        .await
}

/// Open exceptions by kind, as an officer lists them.
async fn open_exceptions(app: &PaymentsApp) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    let mut cursor = String::new();
    loop {
        let page = app
            .app
            .get(
                &format!("/v1/exceptions?status=open&limit=100{cursor}"),
                &app.app.admin_key,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let body = page.json();
        for item in body["items"].as_array().unwrap() {
            *kinds
                .entry(item["kind"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return kinds,
        }
    }
}

/// Every stored line's transaction and outcome, sorted.
async fn line_outcomes(app: &PaymentsApp) -> Vec<(String, String)> {
    let pool = app.app.raw_pool().await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT txn_ref, outcome FROM settlement_lines ORDER BY txn_ref, outcome")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    rows
}

fn add_outcomes(total: &mut BTreeMap<String, i64>, summary: &Value) {
    for (outcome, count) in summary["outcomes"].as_object().unwrap() {
        *total.entry(outcome.clone()).or_default() += count.as_i64().unwrap();
    }
}

async fn a_month_of_statements_finds_every_planted_discrepancy(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let planted = pay_the_month(&app).await;
    let days = statement_days(&planted);

    let mut outcomes = BTreeMap::new();
    for lines in days.values() {
        let answer = import(&app, "vnpay", csv(lines)).await;
        assert_eq!(answer.import_status(), "done", "{}", answer.text);
        let summary = answer.json();
        assert_ne!(summary["already_imported"], true);
        assert_eq!(summary["lines"], lines.len());
        add_outcomes(&mut outcomes, &summary);
    }

    // The independent count, from the plan alone.
    let count = |plan| planted.iter().filter(|p| p.plan == plan).count() as i64;
    let latest_day = *days.keys().max().unwrap();
    let unsettled = planted
        .iter()
        .filter(|p| p.plan == Plan::NeverSettled && p.day + 2 < latest_day)
        .count();
    assert!(unsettled > 0 && unsettled < count(Plan::NeverSettled) as usize);
    let expected: BTreeMap<String, i64> = [
        ("matched", count(Plan::Settled)),
        ("amount_mismatch", count(Plan::Mismatched)),
        // The lost callbacks, and the order lephi never issued.
        ("missing_payment", count(Plan::CallbackLost) + 1),
        ("duplicate_line", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(outcomes, expected);

    let expected_exceptions: BTreeMap<String, usize> = [
        ("amount_mismatch", count(Plan::Mismatched) as usize),
        // The order lephi never issued is an unknown order alone.
        ("missing_payment", count(Plan::CallbackLost) as usize),
        ("duplicate_line", 3),
        ("unsettled_payment", unsettled),
        // The recovered payment for no known order.
        ("unknown_order", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(open_exceptions(&app).await, expected_exceptions);

    // No money goes uncounted: the lost callbacks' payments were recovered
    // and paid their invoices, each once.
    let called_back = planted
        .iter()
        .filter(|p| p.plan != Plan::CallbackLost)
        .count() as i64;
    assert_eq!(
        app.app.count("payments").await,
        called_back + count(Plan::CallbackLost) + 1
    );
    let pool = app.app.raw_pool().await;
    let recovered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM payments WHERE source = 'statement'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recovered, count(Plan::CallbackLost) + 1);
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE status = 'paid'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(paid, planted.len() as i64);
    pool.close().await;

    // Every file again: nothing changes, and each says so.
    let before = (
        app.app.count("payments").await,
        app.app.count("settlement_lines").await,
        app.app.count("payment_exceptions").await,
        app.app.count("audit_log").await,
    );
    for lines in days.values() {
        let answer = import(&app, "vnpay", csv(lines)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json()["already_imported"], true);
    }
    let after = (
        app.app.count("payments").await,
        app.app.count("settlement_lines").await,
        app.app.count("payment_exceptions").await,
        app.app.count("audit_log").await,
    );
    assert_eq!(before, after);

    // The lines of a statement, filtered by outcome, in file order.
    let list = app
        .app
        .get("/v1/settlements?limit=100", &app.finance_key)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let files = list.json()["items"].as_array().unwrap().clone();
    assert_eq!(files.len(), days.len());
    let with_duplicate = files
        .iter()
        .find(|f| {
            f["outcomes"]["duplicate_line"].as_i64() == Some(1) && f["lines"].as_i64() > Some(1)
        })
        .unwrap_or(&files[0]);
    let id = with_duplicate["id"].as_str().unwrap();
    let lines = app
        .app
        .get(&format!("/v1/settlements/{id}/lines"), &app.finance_key)
        .await;
    assert_eq!(lines.status, 200, "{}", lines.text);
    let numbers: Vec<i64> = lines.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["line_no"].as_i64().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert_eq!(numbers[0], 2);
}

async fn shuffled_and_resplit_statements_give_the_same_result(backend: Backend) {
    // The same month on two databases: day by day on one; on the other,
    // every line shuffled and cut into three files at random places.
    let in_order = spawn_payments_app(backend).await;
    let shuffled = spawn_payments_app(backend).await;
    let planted = pay_the_month(&in_order).await;
    let planted_again = pay_the_month(&shuffled).await;
    // The order references differ between the databases: map them.
    let days = statement_days(&planted);
    let days_again = statement_days(&planted_again);
    for lines in days.values() {
        assert_eq!(
            import(&in_order, "vnpay", csv(lines)).await.import_status(),
            "done"
        );
    }
    let mut all: Vec<String> = days_again.into_values().flatten().collect();
    let mut seed = rand::random::<u64>();
    println!("shuffle seed {seed}");
    for i in (1..all.len()).rev() {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        all.swap(i, (seed >> 33) as usize % (i + 1));
    }
    let first_cut = 1 + (seed as usize % (all.len() / 2));
    let second_cut = first_cut + 1 + ((seed >> 16) as usize % (all.len() - first_cut - 1));
    for part in [
        &all[..first_cut],
        &all[first_cut..second_cut],
        &all[second_cut..],
    ] {
        let answer = import(&shuffled, "vnpay", csv(part)).await;
        assert_eq!(answer.import_status(), "done", "{}", answer.text);
    }
    assert_eq!(
        line_outcomes(&in_order).await,
        line_outcomes(&shuffled).await
    );
    assert_eq!(
        open_exceptions(&in_order).await,
        open_exceptions(&shuffled).await
    );
    assert_eq!(
        in_order.app.count("payments").await,
        shuffled.app.count("payments").await
    );
}

async fn a_bad_statement_is_refused_whole_with_its_line_number(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, attempt) = vnpay_attempt(&app, "HS-1").await;
    let order_ref = attempt["order_ref"].as_str().unwrap();
    // Line 2 would recover a payment; line 3 is bad: nothing may stay.
    let good = format!("77001,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02");
    let cases: Vec<(Vec<u8>, usize, &str)> = vec![
        (
            csv(&[
                good.clone(),
                "77002,X,1500.5,0,2026-10-01T10:00:00+07:00,2026-10-02".into(),
            ]),
            3,
            "đồng",
        ),
        (
            csv(&[
                good.clone(),
                "77002,X,abc,0,2026-10-01T10:00:00+07:00,2026-10-02".into(),
            ]),
            3,
            "amount",
        ),
        (
            csv(&[good.clone(), "77002,X,1000,0,yesterday,2026-10-02".into()]),
            3,
            "",
        ),
        (
            csv(&[
                good.clone(),
                "77002,X,1000,0,2026-10-01T10:00:00+07:00".into(),
            ]),
            3,
            "",
        ),
        (b"txn,order,amount\n1,2,3\n".to_vec(), 1, ""),
        (
            {
                let mut bytes = csv(std::slice::from_ref(&good));
                bytes.extend_from_slice(
                    b"77003,caf\xe9,1000,0,2026-10-01T10:00:00+07:00,2026-10-02\n",
                );
                bytes
            },
            3,
            "UTF-8",
        ),
        (
            csv(&[
                good.clone(),
                format!(
                    "77004,{},1000,0,2026-10-01T10:00:00+07:00,2026-10-02",
                    "x".repeat(5_000)
                ),
            ]),
            3,
            "",
        ),
        // A bad line past the first thousand, read while the lines before
        // it are being stored.
        (
            csv(&(0..1_200)
                .map(|n| format!("8{n:05},R-{n},1000,0,2026-10-01T10:00:00+07:00,2026-10-02"))
                .chain(["88888,X,abc,0,2026-10-01T10:00:00+07:00,2026-10-02".to_owned()])
                .collect::<Vec<_>>()),
            1_202,
            "amount",
        ),
    ];
    for (file, line, words) in cases {
        let answer = import(&app, "vnpay", file).await;
        assert_eq!(answer.import_status(), "refused", "{}", answer.text);
        let body = answer.json();
        assert_eq!(body["refused"]["line"], line, "{body}");
        assert!(
            body["refused"]["reason"].as_str().unwrap().contains(words),
            "{body} should say {words}"
        );
    }
    for table in ["payments", "settlement_lines", "payment_exceptions"] {
        assert_eq!(app.app.count(table).await, 0, "{table}");
    }
    // Each refused file is kept as its job's result, and only that.
    let pool = app.app.raw_pool().await;
    let kept: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT status, summary FROM settlement_files")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert!(
        kept.iter()
            .all(|(status, summary)| status == "refused" && summary.is_none()),
        "{kept:?}"
    );
    // The good line alone is taken, and it recovers the lost payment.
    let answer = import(&app, "vnpay", csv(&[good])).await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(answer.json()["outcomes"]["missing_payment"], 1);
    // A channel that no statement settles, or a profile of another layout.
    let cash = import(&app, "cash", csv(&[])).await;
    assert_eq!(cash.status, 400, "{}", cash.text);
    let wrong = app
        .app
        .import_statement(
            "/v1/settlements?channel=vnpay&profile=canonical_bank",
            &app.finance_key,
            csv(&[]),
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    let system = app
        .app
        .import_statement("/v1/settlements?channel=vnpay", &app.system_key, csv(&[]))
        .await;
    assert_eq!(system.status, 403, "{}", system.text);
    let not_csv = app
        .app
        .post_raw(
            "/v1/settlements?channel=vnpay",
            &app.finance_key,
            csv(&[]),
            &[("Content-Type", "application/json")],
        )
        .await;
    assert_eq!(not_csv.status, 415, "{}", not_csv.text);
}

async fn a_bank_statement_matches_transfers_by_payment_code_and_amount(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let auth = sepay_auth();
    let headers = [("Authorization", auth.as_str())];
    let mut codes = Vec::new();
    for i in 0..3 {
        let invoice = app.invoice(&format!("HS-{i}")).await;
        codes.push(invoice["payment_code"].as_str().unwrap().to_owned());
    }
    // Two transfers were notified; the third's notification never came.
    for (i, code) in codes.iter().take(2).enumerate() {
        let note = format!("CT TU 0123 {code} nop phi");
        let answer = app
            .callback(
                "sepay",
                "",
                sepay_transfer(9000 + i as i64, FEE, &note),
                &headers,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let statement = format!(
        "\u{feff}bank_ref,description,amount,transaction_time\n\
         FT2630101,CT TU 0123 {} nop phi,650000,2026-11-28T14:30:00+07:00\n\
         FT2630102,\"MBVCB.1234.{} nop phi, ho so HS-1\",650000,2026-11-28T14:31:00+07:00\n\
         FT2630103,{} chuyen khoan,650000,2026-11-28T14:32:00+07:00\n\
         FT2630104,ung ho,50000,2026-11-28T14:33:00+07:00\n",
        codes[0], codes[1], codes[2]
    );
    let answer = import(&app, "bank_transfer", statement.into_bytes()).await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    let summary = answer.json();
    assert_eq!(summary["profile"], "canonical_bank");
    assert_eq!(summary["outcomes"]["matched"], 2, "{summary}");
    assert_eq!(summary["outcomes"]["missing_payment"], 2, "{summary}");
    // The lost transfer paid its invoice; the donation is an unknown order,
    // its one exception.
    let pool = app.app.raw_pool().await;
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM invoices WHERE status = 'paid'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(paid, 3);
    let kinds = open_exceptions(&app).await;
    assert_eq!(kinds.get("missing_payment"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("unknown_order"), Some(&1), "{kinds:?}");

    // The dossier system can tell a payment recovered from a line...
    let events = app
        .app
        .get("/v1/events?type=payment.received", &app.app.admin_key)
        .await
        .json();
    let sources: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["data"]["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources.iter().filter(|s| **s == "statement").count(),
        2,
        "{sources:?}"
    );
    assert_eq!(sources.iter().filter(|s| **s == "callback").count(), 2);
    // ...and it is confirmed by another officer than the importer.
    let listed = app
        .app
        .get("/v1/exceptions?kind=missing_payment", &app.finance_key)
        .await
        .json();
    let missing = listed["items"][0]["id"].as_str().unwrap().to_owned();
    let confirm = json!({ "resolution": "confirmed", "note": "Đã đối chiếu sao kê" });
    let own = app
        .app
        .post(
            &format!("/v1/exceptions/{missing}/resolve"),
            &app.finance_key,
            &confirm,
        )
        .await;
    assert_eq!(
        (own.status, own.code()),
        (403, "same_officer".into()),
        "{}",
        own.text
    );
    let second = app.app.key(lephi::domain::Role::Finance, "P").await;
    let other = app
        .app
        .post(
            &format!("/v1/exceptions/{missing}/resolve"),
            &second,
            &confirm,
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.text);
}

async fn a_payment_found_unsettled_is_cleared_when_a_later_import_settles_it(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let planted = pay_the_month(&app).await;
    let early = &planted[0];
    assert_eq!(early.day, 1);
    let late = &planted[1];
    // A statement two weeks on finds the first payment unsettled...
    let later = csv(&[format!(
        "{},{},650000,0,2026-10-{:02}T10:00:00+07:00,2026-10-{:02}",
        late.txn,
        late.order_ref,
        late.day,
        late.day + 1
    )]);
    let answer = import(&app, "vnpay", later).await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert!(answer.json()["unsettled_payments"].as_i64().unwrap() >= 1);
    assert!(!unsettled_payments(&app).await.is_empty());
    // ...then its own day's statement, imported late, settles it.
    let own = csv(&[format!(
        "{},{},650000,0,2026-10-01T10:00:00+07:00,2026-10-02",
        early.txn, early.order_ref
    )]);
    let answer = import(&app, "vnpay", own).await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(answer.json()["settled_later"], 1, "{}", answer.text);
    let resolved = app
        .app
        .get(
            "/v1/exceptions?kind=unsettled_payment&status=resolved",
            &app.finance_key,
        )
        .await
        .json();
    let items = resolved["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{resolved}");
    assert_eq!(items[0]["resolution"]["resolution"], "settled_later");
}

/// A line settling `txn` (order `order_ref`, paid on 1 October) on
/// October's day `day`.
fn settled_on(txn: &str, order_ref: &str, day: u32) -> String {
    format!("{txn},{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-{day:02}")
}

/// The open `unsettled_payment` findings, by payment id.
async fn unsettled_payments(app: &PaymentsApp) -> Vec<String> {
    let listed = app
        .app
        .get(
            "/v1/exceptions?kind=unsettled_payment&status=open&limit=100",
            &app.finance_key,
        )
        .await
        .json();
    let mut ids: Vec<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["payment_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn payment_of_txn(app: &PaymentsApp, txn: &str) -> String {
    let pool = app.app.raw_pool().await;
    let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE provider_txn_id = $1")
        .bind(txn)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    id
}

/// Imports `file` with `key` and checks that it found `unsettled`
/// payments unsettled.
async fn imported_finding(app: &PaymentsApp, key: &str, file: Vec<u8>, unsettled: i64) {
    let answer = app
        .app
        .import_statement("/v1/settlements?channel=vnpay", key, file)
        .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(
        answer.json()["unsettled_payments"],
        unsettled,
        "{}",
        answer.text
    );
}

async fn a_payment_recorded_after_an_import_is_still_checked_by_the_next(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let key = &app.finance_key;
    let settled = paid_by_vnpay(&app, "HS-1", "5551").await;
    // Settled through 20 October: every payment collected before the 18th
    // is checked, and this one is settled.
    imported_finding(&app, key, csv(&[settled_on("5551", &settled, 20)]), 0).await;
    // Recorded only now, though collected on 1 October (its callback came
    // late, or a status query found it): long before the first
    // statement's cutoff, and after that statement was checked.
    paid_by_vnpay(&app, "HS-2", "5552").await;
    let next = paid_by_vnpay(&app, "HS-3", "5553").await;
    imported_finding(&app, key, csv(&[settled_on("5553", &next, 21)]), 1).await;
    assert_eq!(
        unsettled_payments(&app).await,
        vec![payment_of_txn(&app, "5552").await]
    );
    // The next statement finds nothing new to raise.
    imported_finding(&app, key, csv(&[settled_on("5553", &next, 22)]), 0).await;
}

async fn an_import_for_fewer_agencies_leaves_the_others_to_be_checked(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let own = paid_by_vnpay(&app, "HS-1", "6661").await;
    // A P.D2 payment recorded in October (as of a month of callbacks), so
    // long before the imports that no hour to spare takes it in.
    let id = recorded_long_ago(&app, "P.D2", "6662", 1).await;
    // A P.D1 officer's statement checks P.D1's payments only.
    let district = app.app.key(Role::Finance, "P.D1").await;
    imported_finding(&app, &district, csv(&[settled_on("6661", &own, 20)]), 0).await;
    // The province's next statement checks P.D2's, which no statement
    // settled.
    let next = paid_by_vnpay(&app, "HS-2", "6663").await;
    let file = csv(&[settled_on("6663", &next, 21)]);
    imported_finding(&app, &app.finance_key, file, 1).await;
    assert_eq!(unsettled_payments(&app).await, vec![id]);
}

async fn a_payment_checked_too_early_is_checked_again_once_overdue(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let key = &app.finance_key;
    // Collected and recorded on 19 October, long before the imports.
    let id = recorded_long_ago(&app, "P.D1", "7772", 19).await;
    let first = paid_by_vnpay(&app, "HS-1", "7771").await;
    // Settled through the 20th, with two days allowed: the 19th's
    // payment is not overdue yet.
    imported_finding(&app, key, csv(&[settled_on("7771", &first, 20)]), 0).await;
    // Settled through the 23rd: now it is.
    let next = paid_by_vnpay(&app, "HS-2", "7773").await;
    imported_finding(&app, key, csv(&[settled_on("7773", &next, 23)]), 1).await;
    assert_eq!(unsettled_payments(&app).await, vec![id]);
}

/// Allowed more days than the import before, an import leaves the
/// payments collected between the two cutoffs to a later one, though they
/// were recorded since the import before: they are not overdue yet.
async fn more_days_allowed_leave_a_payment_recorded_since_for_later(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let first = paid_by_vnpay(&app, "HS-1", "8881").await;
    // Settled through the 20th, two days allowed: checked before the 18th.
    imported_allowing(&app, dir.path(), 2, &[settled_on("8881", &first, 20)]);
    // Collected on the 17th; its callback comes only now.
    let (_, attempt) = vnpay_attempt(&app, "HS-2").await;
    let late = attempt["order_ref"].as_str().unwrap();
    let ipn = vnpay_ipn_paid_at(late, FEE, "8882", "00", "20261017100000");
    assert_eq!(
        rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    // Settled through the 21st, five days allowed: the 17th's payment has
    // until the 22nd.
    let next = paid_by_vnpay(&app, "HS-3", "8883").await;
    imported_allowing(&app, dir.path(), 5, &[settled_on("8883", &next, 21)]);
    assert_eq!(unsettled_payments(&app).await, Vec::<String>::new());
    // Settled through the 23rd: now it is overdue.
    imported_allowing(&app, dir.path(), 5, &[settled_on("8883", &next, 23)]);
    assert_eq!(
        unsettled_payments(&app).await,
        vec![payment_of_txn(&app, "8882").await]
    );
}

/// Imports a VNPay statement of `lines` from the command line, with
/// `days` allowed for settling.
fn imported_allowing(app: &PaymentsApp, dir: &std::path::Path, days: u32, lines: &[String]) {
    let days = days.to_string();
    let env = [(
        "LEPHI__RECONCILIATION__SETTLEMENT_DAYS__VNPAY",
        days.as_str(),
    )];
    imported_from_command_line(app, &dir.join("vnpay.csv"), lines, &env);
}

/// Writes a VNPay statement of `lines` to `file` and imports it from the
/// command line, with `env` added.
fn imported_from_command_line(
    app: &PaymentsApp,
    file: &std::path::Path,
    lines: &[String],
    env: &[(&str, &str)],
) {
    std::fs::write(file, csv(lines)).unwrap();
    let args = [
        "settlement",
        "import",
        "--channel",
        "vnpay",
        file.to_str().unwrap(),
    ];
    let (ok, _, err) = lephi_with(&app.app.database_url, &args, env);
    assert!(ok, "{err}");
}

/// Writes a VNPay payment of `agency`'s, transaction `txn`, collected and
/// recorded on October's day `day` (its id of that time, as lephi's own
/// ids are); answers its id.
async fn recorded_long_ago(app: &PaymentsApp, agency: &str, txn: &str, day: u8) -> String {
    let at = time::Date::from_calendar_date(2026, time::Month::October, day)
        .unwrap()
        .with_hms(3, 0, 0)
        .unwrap()
        .assume_utc();
    let seconds = u64::try_from(at.unix_timestamp()).unwrap();
    let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, 0));
    let stored = format!("2026-10-{day:02}T03:00:00.000000Z");
    let pool = app.app.raw_pool().await;
    sqlx::query(
        "INSERT INTO payments (id, channel, provider_txn_id, amount, agency_code, reference,
             source, paid_at, recorded_at, recorded_by, collected_on)
         VALUES ($1, 'vnpay', $2, 650000, $3, $4, 'callback', $5, $5, 'callback:vnpay', $6)",
    )
    .bind(id.to_string())
    .bind(txn)
    .bind(agency)
    .bind(format!("ORDER-{txn}"))
    .bind(&stored)
    .bind(&stored[..10])
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    id.to_string()
}

async fn a_statement_settling_another_agencys_payments_is_refused(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let order_ref = &paid_by_vnpay(&app, "HS-1", "5551").await;
    // The payment is P.D1's: a P.D2 officer may not settle it.
    let other = app.app.key(Role::Finance, "P.D2").await;
    let file = csv(&[format!(
        "5551,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02"
    )]);
    let answer = app
        .app
        .import_statement("/v1/settlements?channel=vnpay", &other, file.clone())
        .await;
    assert_eq!(answer.import_status(), "refused", "{}", answer.text);
    assert_eq!(answer.json()["refused"]["line"], 2);
    assert_eq!(app.app.count("settlement_lines").await, 0);
    // Lines of no agency (each recovers a payment nobody reported) are
    // the P.D2 officer's to import; P.D1's payment is refused wherever it
    // comes: first met past the first thousand lines, or first, ahead of
    // a bad line in a later chunk.
    let unknown = |n: usize| format!("9{n:05},R-{n},1000,0,2026-10-01T10:00:00+07:00,2026-10-02");
    let paid = format!("5551,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02");
    let late: Vec<String> = (0..1_050).map(unknown).chain([paid.clone()]).collect();
    let early: Vec<String> = [paid.clone()]
        .into_iter()
        .chain((0..1_100).map(unknown))
        .chain(["99999,X,abc,0,2026-10-01T10:00:00+07:00,2026-10-02".to_owned()])
        .collect();
    for (lines, line) in [(late, 1_052), (early, 2)] {
        let answer = app
            .app
            .import_statement("/v1/settlements?channel=vnpay", &other, csv(&lines))
            .await;
        assert_eq!(answer.import_status(), "refused", "{}", answer.text);
        assert_eq!(answer.json()["refused"]["line"], line, "{}", answer.text);
        assert!(answer.text.contains("not in your scope"), "{}", answer.text);
        assert_eq!(app.app.count("settlement_lines").await, 0);
        assert_eq!(app.app.count("payments").await, 1);
    }
    // P.D1's officer may.
    let own = app.app.key(Role::Finance, "P.D1").await;
    let answer = app
        .app
        .import_statement("/v1/settlements?channel=vnpay", &own, file)
        .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(answer.json()["outcomes"]["matched"], 1);
    // Its lines are P.D1's: the other district sees none of them.
    let id = answer.json()["id"].as_str().unwrap().to_owned();
    let seen = app
        .app
        .get(&format!("/v1/settlements/{id}/lines"), &other)
        .await;
    assert_eq!(seen.json()["items"].as_array().unwrap().len(), 0);
}

/// The ids of the statements `key` lists.
async fn listed_statements(app: &PaymentsApp, key: &str) -> Vec<String> {
    let listed = app.app.get("/v1/settlements?limit=100", key).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn import_as(app: &PaymentsApp, key: &str, file: Vec<u8>) -> crate::helpers::Response {
    app.app
        .import_statement("/v1/settlements?channel=vnpay", key, file)
        .await
}

/// A summary counts every line of its file: a key sees it only when its
/// scope covers the scope of the key that imported it. Each line is
/// still shown to the keys that see its agency.
async fn a_statements_summary_is_seen_only_by_keys_whose_scope_covers_its_importers(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    let d1_ref = paid_by_vnpay(&app, "HS-1", "5551").await;
    let d1 = app.app.key(Role::Finance, "P.D1").await;
    let d2 = app.app.key(Role::Finance, "P.D2").await;
    let other_province = app.app.key(Role::Finance, "Q").await;
    let province = &app.finance_key;
    let admin = &app.app.admin_key;

    // Imported by P.D1's officer: seen by P.D1, P and the admin.
    let own = csv(&[settled_on("5551", &d1_ref, 2)]);
    let imported = import_as(&app, &d1, own.clone()).await;
    assert_eq!(imported.import_status(), "done", "{}", imported.text);
    let id = imported.json()["id"].as_str().unwrap().to_owned();
    for key in [&d1, province, admin] {
        assert_eq!(listed_statements(&app, key).await, vec![id.clone()]);
        let got = app.app.get(&format!("/v1/settlements/{id}"), key).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.json()["outcomes"]["matched"], 1, "{}", got.text);
    }
    // Not by the other district, nor the other province: not listed, not
    // found, and the same file sent again is refused, changing nothing.
    for key in [&d2, &other_province] {
        assert!(listed_statements(&app, key).await.is_empty());
        let got = app.app.get(&format!("/v1/settlements/{id}"), key).await;
        assert_eq!(got.status, 404, "{}", got.text);
        assert_eq!(got.json()["code"], "not_found");
        let again = import_as(&app, key, own.clone()).await;
        assert_eq!(again.status, 403, "{}", again.text);
        assert_eq!(again.json()["code"], "forbidden", "{}", again.text);
        assert!(again.text.contains("wider scope"), "{}", again.text);
    }
    assert_eq!(app.app.count("settlement_files").await, 1);
    // Its importer gets the first import's summary back.
    let again = import_as(&app, &d1, own).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["already_imported"], true);

    // Imported by the province's officer: P.D1's officer does not see the
    // summary, which counts a line that is not P.D1's (one naming no
    // invoice), but sees its own line.
    let d1_again = paid_by_vnpay(&app, "HS-3", "5553").await;
    let both = csv(&[
        settled_on("5553", &d1_again, 3),
        "5552,R-UNKNOWN,1000,0,2026-10-01T10:00:00+07:00,2026-10-03".to_owned(),
    ]);
    let imported = import_as(&app, province, both).await;
    assert_eq!(imported.import_status(), "done", "{}", imported.text);
    let wide = imported.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(imported.json()["lines"], 2, "{}", imported.text);
    assert_eq!(listed_statements(&app, &d1).await, vec![id.clone()]);
    let got = app.app.get(&format!("/v1/settlements/{wide}"), &d1).await;
    assert_eq!(got.status, 404, "{}", got.text);
    let lines = app
        .app
        .get(&format!("/v1/settlements/{wide}/lines"), &d1)
        .await;
    assert_eq!(lines.status, 200, "{}", lines.text);
    let lines = lines.json()["items"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["txn_ref"], "5553");
    assert_eq!(listed_statements(&app, province).await, vec![wide, id]);
}

async fn officers_resolve_exceptions_once_and_in_scope(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, attempt) = vnpay_attempt(&app, "HS-1").await;
    let order_ref = attempt["order_ref"].as_str().unwrap();
    let file = csv(&[format!(
        "8801,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02"
    )]);
    assert_eq!(import(&app, "vnpay", file).await.import_status(), "done");
    let listed = app
        .app
        .get("/v1/exceptions?kind=missing_payment", &app.finance_key)
        .await
        .json();
    let exception = listed["items"][0].clone();
    let id = exception["id"].as_str().unwrap();
    assert_eq!(exception["settlement_line"]["line_no"], 2);
    assert_eq!(exception["status"], "open");
    let payment_id = exception["payment_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/exceptions/{id}/resolve");

    // Not a dossier system, not another agency's officer, not a made-up choice.
    let body = json!({ "resolution": "confirmed", "note": "callback lost; bank confirmed" });
    assert_eq!(
        app.app.post(&path, &app.system_key, &body).await.status,
        403
    );
    let other = app.app.key(Role::Finance, "Q").await;
    assert_eq!(app.app.post(&path, &other, &body).await.status, 404);
    let bad = app
        .app
        .post(
            &path,
            &app.finance_key,
            &json!({ "resolution": "deleted", "note": "x" }),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let unmatched = app
        .app
        .post(
            &path,
            &app.finance_key,
            &json!({ "resolution": "matched_manually", "note": "x" }),
        )
        .await;
    assert_eq!(unmatched.status, 422, "{}", unmatched.text);

    // Not the officer who imported the statement that recovered it.
    let own = app.app.post(&path, &app.finance_key, &body).await;
    assert_eq!(own.status, 403, "{}", own.text);
    let second = app.app.key(Role::Finance, "P").await;
    let resolved = app.app.post(&path, &second, &body).await;
    assert_eq!(resolved.status, 200, "{}", resolved.text);
    let resolved = resolved.json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution"]["resolution"], "confirmed");
    assert_eq!(
        resolved["resolution"]["note"],
        "callback lost; bank confirmed"
    );
    let again = app.app.post(&path, &second, &body).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.json()["code"], "exception_resolved");

    // The payment is untouched; the decision is audited.
    let payments = app.app.get("/v1/payments", &app.finance_key).await.json();
    assert_eq!(payments["items"][0]["id"], payment_id.as_str());
    assert_eq!(payments["items"][0]["exception"], Value::Null);
    let shown = app
        .app
        .get(&format!("/v1/exceptions/{id}"), &app.finance_key)
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(
        shown.json()["resolution"]["resolved_by"]
            .as_str()
            .map(|s| s.is_empty()),
        Some(false)
    );
    let audit = app
        .app
        .get(
            &format!("/v1/audit?object_type=exception&object_id={id}"),
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
    assert_eq!(actions, ["exception.resolved", "exception.opened"]);
}

/// Pays one invoice through VNPay (transaction 6601) and writes its
/// statement, of one line, to `dir`.
async fn one_paid_and_its_statement(app: &PaymentsApp, dir: &std::path::Path) -> PathBuf {
    let order_ref = &paid_by_vnpay(app, "HS-1", "6601").await;
    let file = dir.join("vnpay-2026-10-02.csv");
    std::fs::write(
        &file,
        csv(&[format!(
            "6601,{order_ref},650000,3575,2026-10-01T10:00:00+07:00,2026-10-02"
        )]),
    )
    .unwrap();
    file
}

async fn a_statement_is_imported_from_the_command_line(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = one_paid_and_its_statement(&app, dir.path()).await;
    let path = file.to_str().unwrap();
    let args = ["settlement", "import", "--channel", "vnpay", path];
    let (ok, out, err) = lephi(&app.app.database_url, &args);
    assert!(ok, "{err}");
    assert!(out.contains("1 lines"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["matched", "1"]),
        "{out}"
    );
    let (ok, out, err) = lephi(&app.app.database_url, &args);
    assert!(ok, "{err}");
    assert!(out.contains("nothing changed"), "{out}");
    assert_eq!(app.app.count("settlement_files").await, 1);

    std::fs::write(
        &file,
        format!("{CANONICAL}\n6602,X,12.5,0,2026-10-01T10:00:00+07:00,2026-10-02\n"),
    )
    .unwrap();
    let (ok, _, err) = lephi(&app.app.database_url, &args);
    assert!(!ok);
    assert!(err.contains("line 2"), "{err}");
    let unknown = ["settlement", "import", "--channel", "cash", path];
    let (ok, _, err) = lephi(&app.app.database_url, &unknown);
    assert!(!ok && err.contains("--channel"), "{err}");
}

/// A stored line names its statement, its payment and the payment's
/// agency: a line naming any that does not exist is refused, inserted or
/// changed, and none of them can be deleted or take another key.
async fn a_line_names_only_what_exists_and_nothing_it_names_goes_away(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = one_paid_and_its_statement(&app, dir.path()).await;
    let args = ["settlement", "import", "--channel", "vnpay"];
    let (ok, _, err) = lephi(
        &app.app.database_url,
        &[&args[..], &[file.to_str().unwrap()]].concat(),
    );
    assert!(ok, "{err}");
    let pool = app.app.raw_pool().await;
    let (file_id, payment_id, agency): (String, String, String) =
        sqlx::query_as("SELECT file_id, payment_id, agency_code FROM settlement_lines")
            .fetch_one(&pool)
            .await
            .unwrap();
    let line = |file: &str, payment: &str, agency: &str| {
        format!(
            "INSERT INTO settlement_lines (file_id, line_no, channel, txn_ref, reference, amount,
                 fee, transaction_time, settlement_date, outcome, payment_id, agency_code)
             VALUES ('{file}', 9, 'vnpay', '6609', 'X', 1, 0, '2026-10-01T03:00:00Z',
                 '2026-10-02', 'duplicate_line', '{payment}', '{agency}')"
        )
    };
    // Each refused, with the reason the rule gives: a line's references
    // by a foreign key (SQLite) or the statement's check (PostgreSQL);
    // the rest by the rule itself, whatever else names the row.
    let reference = match backend {
        Backend::Sqlite => "FOREIGN KEY constraint failed",
        Backend::Postgres => "does not exist",
    };
    let refused = [
        (line("no-such-file", &payment_id, &agency), reference),
        (line(&file_id, "no-such-payment", &agency), reference),
        (line(&file_id, &payment_id, "NO.SUCH"), reference),
        (
            "UPDATE settlement_lines SET payment_id = 'no-such-payment'".to_owned(),
            reference,
        ),
        (
            "UPDATE settlement_lines SET agency_code = 'NO.SUCH'".to_owned(),
            reference,
        ),
        (
            "UPDATE settlement_lines SET file_id = 'no-such-file'".to_owned(),
            reference,
        ),
        (
            format!("DELETE FROM payments WHERE id = '{payment_id}'"),
            "payments are never deleted",
        ),
        (
            format!("DELETE FROM agencies WHERE code = '{agency}'"),
            "agencies are never deleted",
        ),
        (
            format!("DELETE FROM settlement_files WHERE id = '{file_id}'"),
            "settlement_files are never deleted",
        ),
        (
            format!("UPDATE payments SET id = 'another' WHERE id = '{payment_id}'"),
            "payments keep their key",
        ),
        (
            format!("UPDATE agencies SET code = 'ANOTHER' WHERE code = '{agency}'"),
            "agencies keep their key",
        ),
        (
            format!("UPDATE settlement_files SET id = 'another' WHERE id = '{file_id}'"),
            "settlement_files keep their key",
        ),
    ];
    for (sql, reason) in &refused {
        let done = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .execute(&pool)
            .await;
        let err = done.expect_err(sql).to_string();
        assert!(err.contains(reason), "{sql}: {err}");
    }
    // A line naming what exists is taken, as the import writes them.
    sqlx::query(sqlx::AssertSqlSafe(line(&file_id, &payment_id, &agency)))
        .execute(&pool)
        .await
        .unwrap();
    let kept: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM settlement_lines l
                 JOIN settlement_files f ON f.id = l.file_id
                 JOIN payments p ON p.id = l.payment_id
                 JOIN agencies a ON a.code = l.agency_code),
                (SELECT COUNT(*) FROM payments), (SELECT COUNT(*) FROM settlement_files),
                (SELECT COUNT(*) FROM agencies WHERE code = $1)",
    )
    .bind(&agency)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kept, (2, 1, 1, 1));
}

/// The whole month, as a finance officer does it: the statements, the
/// dossier register, every exception cleared, then the cashless rate by
/// level and by agency, which must count exactly the money applied to
/// dossiers.
async fn a_finance_officer_closes_the_month(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let planted = pay_the_month(&app).await;
    // Two dossiers paid in cash at the counter, one left unpaid.
    for (i, dossier) in ["HS-C1", "HS-C2"].iter().enumerate() {
        let invoice = app.invoice(dossier).await;
        let id = invoice["id"].as_str().unwrap();
        let paid = app
            .app
            .request(
                reqwest::Method::POST,
                &format!("/v1/invoices/{id}/cash-payments"),
                Some(&app.finance_key),
                Some(&json!({
                    "amount": FEE,
                    "receipt_number": format!("000010{i}"),
                    "received_at": "2026-10-15T09:00:00+07:00",
                })),
                &[("Idempotency-Key", &format!("quay-{i}"))],
            )
            .await;
        assert_eq!(paid.status, 201, "{}", paid.text);
    }
    app.invoice("HS-U1").await;

    // The statements, a file a day, from the command line.
    let dir = tempfile::tempdir().unwrap();
    for (day, lines) in statement_days(&planted) {
        let file = dir.path().join(format!("vnpay-2026-10-{day:02}.csv"));
        imported_from_command_line(&app, &file, &lines, &[]);
    }

    // The register: every dossier of the month, from the API.
    let mut register =
        String::from("dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n");
    let dossiers: Vec<String> = (0..planted.len())
        .map(|i| format!("HS-{i}"))
        .chain(["HS-C1", "HS-C2", "HS-U1"].map(String::from))
        .collect();
    for dossier in &dossiers {
        register.push_str(&format!(
            "{dossier},P.D1,1.004227,650.000,2026-10-01,received\n"
        ));
    }
    let imported = app
        .app
        .import_register(&app.finance_key, register.into_bytes())
        .await;
    assert_eq!(imported.import_status(), "done", "{}", imported.text);
    let outcomes = imported.json()["outcomes"].clone();
    assert_eq!(outcomes["paid_cashless"], planted.len(), "{outcomes}");
    assert_eq!(outcomes["paid_cash"], 2, "{outcomes}");
    assert_eq!(outcomes["unpaid"], 1, "{outcomes}");

    // Every exception cleared: a province officer's, and the admin's for
    // the money that named no order.
    let open = open_exceptions(&app).await;
    assert!(open.values().sum::<usize>() > 0);
    loop {
        let page = app
            .app
            .get("/v1/exceptions?status=open&limit=100", &app.app.admin_key)
            .await
            .json();
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        for item in items {
            let (key, resolution) = match item["agency_code"].as_str() {
                Some(_) => (&app.finance_key, "confirmed"),
                // Money held is the payer's: it is never written off.
                None => (&app.app.admin_key, "confirmed"),
            };
            let id = item["id"].as_str().unwrap();
            let resolved = app
                .app
                .post(
                    &format!("/v1/exceptions/{id}/resolve"),
                    key,
                    &json!({ "resolution": resolution, "note": "checked against the bank" }),
                )
                .await;
            assert_eq!(resolved.status, 200, "{}", resolved.text);
        }
    }
    assert!(open_exceptions(&app).await.is_empty());

    // The report counts the money applied to dossiers: every VNPay
    // payment (called back or recovered), and the cash; the unknown
    // order's money is not a dossier's.
    let cashless = planted.len() as i64;
    let report = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-10-01&to=2026-10-31&group_by=level",
            &app.finance_key,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let report = report.json();
    let total = &report["total"];
    assert_eq!(total["cashless_count"], cashless, "{report}");
    assert_eq!(total["cashless_amount"], cashless * FEE, "{report}");
    assert_eq!(total["cash_count"], 2, "{report}");
    assert_eq!(total["total_amount"], (cashless + 2) * FEE, "{report}");
    assert_eq!(total["rate_by_count"], "94.74", "{report}");
    assert_eq!(report["groups"][0]["level"], "district", "{report}");
    let by_agency = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-10-01&to=2026-10-31&group_by=agency",
            &app.finance_key,
        )
        .await
        .json();
    assert_eq!(by_agency["groups"][0]["agency_code"], "P.D1", "{by_agency}");
    assert_eq!(by_agency["total"], report["total"]);
}
