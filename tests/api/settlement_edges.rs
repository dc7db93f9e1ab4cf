//! Settlement statements at their edges: lines matched by reference that
//! come again, a payment named by one line and taken by another, splits
//! and chunk boundaries, amounts and dates no statement can mean, bank
//! statements of one account.

use std::str::FromStr;

use lephi::domain::Role;
use serde_json::Value;

use crate::helpers::{Backend, PaymentsApp, Response, spawn_payments_app};
use crate::on_both_backends;
use crate::payments::{sepay_auth, sepay_transfer, vnpay_attempt};
use crate::settlements::paid_by_vnpay;

on_both_backends!(
    an_overlapping_bank_statement_records_no_second_payment,
    a_bank_line_repeated_in_one_file_is_a_duplicate,
    file_splitting_does_not_change_outcomes,
    a_huge_statement_amount_is_refused,
    a_duplicate_of_a_recovered_payment_keeps_its_agency,
    a_far_future_settlement_date_does_not_flag_every_payment,
    a_statement_amount_mismatch_is_not_sent_to_the_dossier_system,
    line_order_across_a_chunk_boundary_does_not_change_outcomes,
    a_bank_statement_of_one_account_keeps_another_agencys_invoice_as_wrong_account,
    payments_recorded_before_reconciliation_get_their_day_and_procedure,
    statements_imported_before_scopes_were_kept_get_the_scope_their_import_checked,
);

/// One file, two orders: the 1,000-line chunks make line order matter.
async fn line_order_across_a_chunk_boundary_does_not_change_outcomes(backend: Backend) {
    let mut results = Vec::new();
    for unknown_first in [false, true] {
        let app = spawn_payments_app(backend).await;
        let order_ref = paid_by_vnpay(&app, "HS-1", "5551").await;
        let named = format!("5551,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02");
        let unknown = format!("7777,{order_ref},650000,0,2026-10-01T10:05:00+07:00,2026-10-02");
        let (a, b) = if unknown_first {
            (unknown, named)
        } else {
            (named, unknown)
        };
        let mut lines = vec![a];
        for _ in 0..1_000 {
            lines.push("9999,NO-SUCH-ORDER,1000,0,2026-10-01T10:00:00+07:00,2026-10-02".to_owned());
        }
        lines.push(b);
        let answer = import(&app, &app.finance_key, "vnpay", file(CANONICAL, &lines)).await;
        assert_eq!(answer.import_status(), "done", "{}", answer.text);
        let pool = app.app.raw_pool().await;
        let outcomes: Vec<(String, String)> = sqlx::query_as(
            "SELECT txn_ref, outcome FROM settlement_lines WHERE txn_ref <> '9999' ORDER BY txn_ref",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        // The file's summary counts its lines as they ended.
        let summary = answer.json()["outcomes"].clone();
        results.push((outcomes, app.app.count("payments").await, summary));
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0].2["matched"], 1, "{:?}", results[0]);
}

/// A statement line settling a payment for another amount is a
/// reconciliation finding; the dossier system is not told about it.
async fn a_statement_amount_mismatch_is_not_sent_to_the_dossier_system(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let order_ref = paid_by_vnpay(&app, "HS-1", "5551").await;
    let before = scalar(
        &app,
        "SELECT count(*) FROM outbox_events WHERE type = 'exception.opened'",
    )
    .await;
    let line = format!("5551,{order_ref},640000,0,2026-10-01T10:00:00+07:00,2026-10-02");
    let answer = import(&app, &app.finance_key, "vnpay", file(CANONICAL, &[line])).await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(answer.json()["outcomes"]["amount_mismatch"], 1);
    let after = scalar(
        &app,
        "SELECT count(*) FROM outbox_events WHERE type = 'exception.opened'",
    )
    .await;
    assert_eq!(before, after);
}

const CANONICAL: &str = "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date";
const BANK: &str = "bank_ref,description,amount,transaction_time";

fn file(header: &str, lines: &[String]) -> Vec<u8> {
    let mut text = String::from(header);
    for line in lines {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    text.into_bytes()
}

async fn import(app: &PaymentsApp, key: &str, channel: &str, body: Vec<u8>) -> Response {
    app.app
        .import_statement(&format!("/v1/settlements?channel={channel}"), key, body)
        .await
}

async fn scalar(app: &PaymentsApp, sql: &str) -> i64 {
    let pool = app.app.raw_pool().await;
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

async fn transfer_paid(app: &PaymentsApp, dossier: &str, sepay_id: i64) -> String {
    let invoice = app.invoice(dossier).await;
    let code = invoice["payment_code"].as_str().unwrap().to_owned();
    let auth = sepay_auth();
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer(sepay_id, 650_000, &format!("CT TU 0123 {code} nop phi")),
            &[("Authorization", auth.as_str())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    code
}

/// A bank statement line never carries SePay's id, so every bank line is
/// matched by payment code. A second statement that repeats a line (a
/// monthly export after the daily ones, the same export re-saved with
/// CRLF, ...) must make it a duplicate, not a new payment.
async fn an_overlapping_bank_statement_records_no_second_payment(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let code = transfer_paid(&app, "HS-1", 9001).await;
    let line = format!("FT2630101,CT TU 0123 {code} nop phi,650000,2026-11-28T14:30:00+07:00");
    let first = import(
        &app,
        &app.finance_key,
        "bank_transfer",
        file(BANK, std::slice::from_ref(&line)),
    )
    .await;
    assert_eq!(first.import_status(), "done", "{}", first.text);
    assert_eq!(first.json()["outcomes"]["matched"], 1);
    // The same line in a file that also lists another day's credit.
    let other = "FT2630199,ung ho,50000,2026-11-29T09:00:00+07:00".to_owned();
    let second = import(
        &app,
        &app.finance_key,
        "bank_transfer",
        file(BANK, &[line, other]),
    )
    .await;
    assert_eq!(second.import_status(), "done", "{}", second.text);
    let outcomes = &second.json()["outcomes"];
    // Expected: FT2630101 is a duplicate_line; found: missing_payment and
    // a second 650,000 payment recorded for the same invoice.
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM payments WHERE amount = 650000").await,
        1,
        "outcomes {outcomes}"
    );
    assert_eq!(outcomes["duplicate_line"], 1, "{outcomes}");
}

/// The same bank line twice in one file (banks do repeat lines): one
/// settles the payment, the other is a duplicate.
async fn a_bank_line_repeated_in_one_file_is_a_duplicate(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let code = transfer_paid(&app, "HS-1", 9001).await;
    let line = format!("FT2630101,CT TU 0123 {code} nop phi,650000,2026-11-28T14:30:00+07:00");
    let answer = import(
        &app,
        &app.finance_key,
        "bank_transfer",
        file(BANK, &[line.clone(), line]),
    )
    .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    let outcomes = answer.json()["outcomes"].clone();
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM payments").await,
        1,
        "outcomes {outcomes}"
    );
    assert_eq!(outcomes["duplicate_line"], 1, "{outcomes}");
}

/// One VNPay payment (txn 5551) and two statement lines for its order:
/// one naming 5551, one naming an unknown txn 7777. In one file, 5551
/// matches and 7777 recovers a payment; split into two files, the result
/// depends on which file comes first.
async fn file_splitting_does_not_change_outcomes(backend: Backend) {
    let mut results = Vec::new();
    for unknown_first in [false, true] {
        let app = spawn_payments_app(backend).await;
        let order_ref = paid_by_vnpay(&app, "HS-1", "5551").await;
        let named = format!("5551,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02");
        let unknown = format!("7777,{order_ref},650000,0,2026-10-01T10:05:00+07:00,2026-10-02");
        let files = if unknown_first {
            [unknown, named]
        } else {
            [named, unknown]
        };
        for line in files {
            let answer = import(&app, &app.finance_key, "vnpay", file(CANONICAL, &[line])).await;
            assert_eq!(answer.import_status(), "done", "{}", answer.text);
        }
        let pool = app.app.raw_pool().await;
        let outcomes: Vec<(String, String)> =
            sqlx::query_as("SELECT txn_ref, outcome FROM settlement_lines ORDER BY txn_ref")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        let payments = app.app.count("payments").await;
        results.push((outcomes, payments));
    }
    assert_eq!(results[0], results[1]);
}

/// A line's amount is bounded, so that no sum over a dossier or a report
/// can overflow.
async fn a_huge_statement_amount_is_refused(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, attempt) = vnpay_attempt(&app, "HS-1").await;
    let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
    let huge = "5000000000000000000";
    let lines = [
        format!("8001,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02"),
        format!("8002,{order_ref},{huge},0,2026-10-01T10:00:00+07:00,2026-10-02"),
    ];
    let answer = import(&app, &app.finance_key, "vnpay", file(CANONICAL, &lines)).await;
    assert_eq!(answer.import_status(), "refused", "{}", answer.text);
    assert_eq!(answer.json()["refused"]["line"], 3, "{}", answer.text);
    assert_eq!(app.app.count("payments").await, 0);
}

/// A line repeated in one file for a payment that the statement recovers:
/// the duplicate_line exception must carry the payment's agency, so that
/// the agency's officers see it.
async fn a_duplicate_of_a_recovered_payment_keeps_its_agency(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, attempt) = vnpay_attempt(&app, "HS-1").await;
    let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
    let line = format!("8801,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02");
    let answer = import(
        &app,
        &app.finance_key,
        "vnpay",
        file(CANONICAL, &[line.clone(), line]),
    )
    .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    let all = app
        .app
        .get("/v1/exceptions?kind=duplicate_line", &app.app.admin_key)
        .await
        .json();
    let items: &Vec<Value> = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{all}");
    assert_eq!(items[0]["agency_code"], "P.D1", "{all}");
    let district = app.app.key(Role::Finance, "P.D1").await;
    let seen = app
        .app
        .get("/v1/exceptions?kind=duplicate_line", &district)
        .await
        .json();
    assert_eq!(seen["items"].as_array().unwrap().len(), 1, "{seen}");
}

/// A typo in one line's settlement date (2062 for 2026) makes the latest
/// settlement day decades away: every payment of the channel is then
/// "unsettled", now and for every later import.
async fn a_far_future_settlement_date_does_not_flag_every_payment(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let mut orders = Vec::new();
    for i in 0..3 {
        let order_ref = paid_by_vnpay(&app, &format!("HS-{i}"), &format!("555{i}")).await;
        orders.push(order_ref);
    }
    // Settles payment 0 only, with a mistyped year.
    let line = format!(
        "5550,{},650000,0,2026-10-01T10:00:00+07:00,2062-10-02",
        orders[0]
    );
    let answer = import(&app, &app.finance_key, "vnpay", file(CANONICAL, &[line])).await;
    assert_eq!(
        answer.import_status(),
        "refused",
        "a settlement date 36 years after its transaction: {}",
        answer.text
    );
}

/// A bank statement names its account: a transfer it recovers that names
/// another agency's invoice stays with the account's agency as
/// `wrong_account`, as it would from a notification, and the account's
/// officer may import it.
async fn a_bank_statement_of_one_account_keeps_another_agencys_invoice_as_wrong_account(
    backend: Backend,
) {
    let app = spawn_payments_app(backend).await;
    // An invoice of P.D2; the transfer arrived on P.D1's account.
    let body = crate::helpers::invoice_body("P.D2", "HS-9");
    let system = app.app.key(Role::AgencySystem, "P.D2").await;
    let invoice = app.app.create_invoice(&system, "HS-9", &body).await.json();
    let code = invoice["payment_code"].as_str().unwrap();
    let line = format!("FT2630301,{code} nop phi,650000,2026-11-28T14:30:00+07:00");
    let district = app.app.key(Role::Finance, "P.D1").await;
    let path = format!(
        "/v1/settlements?channel=bank_transfer&account={}",
        crate::helpers::BANK_ACCOUNT
    );
    let answer = app
        .app
        .import_statement(&path, &district, file(BANK, &[line]))
        .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(answer.json()["outcomes"]["missing_payment"], 1);
    let invoice_now = app
        .app
        .get(
            &format!("/v1/invoices/{}", invoice["id"].as_str().unwrap()),
            &system,
        )
        .await
        .json();
    assert_eq!(invoice_now["status"], "open");
    let kinds = app
        .app
        .get("/v1/exceptions?kind=wrong_account", &district)
        .await
        .json();
    assert_eq!(kinds["items"][0]["agency_code"], "P.D1", "{kinds}");
    // An account that is no agency's in scope is refused.
    let other = app.app.key(Role::Finance, "P.D2").await;
    let refused = app
        .app
        .post_raw(
            &path,
            &other,
            file(BANK, &[]),
            &[("Content-Type", "text/csv")],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let gateway = app
        .app
        .post_raw(
            "/v1/settlements?channel=vnpay&account=123",
            &app.finance_key,
            file(CANONICAL, &[]),
            &[("Content-Type", "text/csv")],
        )
        .await;
    assert_eq!(gateway.status, 400, "{}", gateway.text);
}

/// A database at `last` of the migrations in this tree, as a deployment
/// of that version left it, holding the rows `data` inserts: its URL.
async fn database_migrated_through(
    backend: Backend,
    dir: &std::path::Path,
    last: i64,
    data: String,
) -> String {
    let url = crate::helpers::database_url(backend, dir).await;
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    sqlx::any::install_default_drivers();
    let options = sqlx::any::AnyConnectOptions::from_str(&format!(
        "{url}{}",
        if backend == Backend::Sqlite {
            "?mode=rwc"
        } else {
            ""
        }
    ))
    .unwrap();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE lephi_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,
             checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let folder = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    for file in files {
        let (version, name) = file.trim_end_matches(".sql").split_once('_').unwrap();
        let version: i64 = version.parse().unwrap();
        if version > last {
            break;
        }
        let sql = std::fs::read_to_string(format!("{folder}/{file}")).unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&pool)
            .await
            .unwrap();
        let checksum = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(sql.as_bytes()));
        sqlx::query(
            "INSERT INTO lephi_migrations VALUES ($1, $2, $3, '2026-11-01T00:00:00.000000Z')",
        )
        .bind(version)
        .bind(name)
        .bind(checksum)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(data))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    url
}

/// Migrates the database at `url` with lephi's own runner: the first
/// migration it applied, and the rows `query` reads after.
async fn migrate_and_read<T>(url: &str, query: &'static str) -> (Option<i64>, Vec<T>)
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    let store = lephi::store::Store::connect(&lephi::config::DatabaseSettings {
        url: secrecy::SecretString::from(url.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap();
    let applied = store.migrate().await.unwrap();
    store.close().await;
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let rows = sqlx::query_as(query).fetch_all(&pool).await.unwrap();
    pool.close().await;
    (applied.first().map(|m| m.version), rows)
}

/// A database from before reconciliation, with payments in it: migrating
/// gives each payment the Vietnamese day it was collected on (its paid
/// time, unless after it was recorded) and its invoice's procedure.
async fn payments_recorded_before_reconciliation_get_their_day_and_procedure(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let at = "2026-11-01T00:00:00.000000Z";
    let data = format!(
        "INSERT INTO agencies VALUES ('P', 'Tinh', 'province', NULL, '/P/', '{at}', '{at}');
         INSERT INTO invoices (id, payment_code, status, total, amount_paid, agency_code, dossier_code,
             procedure_code, procedure_name, payer_name, lines, created_at, expires_at, updated_at)
         VALUES ('i1', 'LP23456789ABU', 'paid', 650000, 650000, 'P', 'HS-1', '1.004227', 'Cap phep',
             'Nguyen Van A', '[]', '{at}', '{at}', '{at}');
         INSERT INTO payments (id, channel, provider_txn_id, amount, invoice_id, agency_code, reference,
             source, paid_at, recorded_at, recorded_by)
         VALUES ('p1', 'vnpay', 't1', 650000, 'i1', 'P', 'o1', 'callback',
                 '2026-11-30T16:59:59.999999Z', '2026-11-30T17:00:02.000000Z', 'x'),
                ('p2', 'vnpay', 't2', 650000, NULL, NULL, 'o2', 'callback',
                 '2026-12-05T00:00:00.000000Z', '2026-11-30T17:00:02.000000Z', 'x');"
    );
    let url = database_migrated_through(backend, dir.path(), 2, data).await;
    let (first, rows): (_, Vec<(String, String, Option<String>)>) = migrate_and_read(
        &url,
        "SELECT id, collected_on, procedure_code FROM payments ORDER BY id",
    )
    .await;
    // 0003 fills in what this test is about; later migrations follow it.
    assert_eq!(first, Some(3));
    assert_eq!(
        rows,
        [
            // Paid a moment before midnight in Vietnam.
            ("p1".into(), "2026-11-30".into(), Some("1.004227".into())),
            // A paid time after the recording is not believed.
            ("p2".into(), "2026-12-01".into(), None),
        ]
    );
}

/// Statements imported before each import's scope was kept: migrating
/// gives each the scope its import checked, and the others the whole
/// service's (seen by unscoped keys only).
async fn statements_imported_before_scopes_were_kept_get_the_scope_their_import_checked(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let at = "2026-11-01T00:00:00.000000Z";
    let data = format!(
        "INSERT INTO settlement_files (id, channel, profile, sha256, line_count, summary,
             imported_at, imported_by, checked_scope, checked_before)
         VALUES ('by-district', 'vnpay', 'vnpay', 'a', 0, '{{}}', '{at}', 'k1', '/P/D1/', '{at}'),
                ('unscoped', 'momo', 'momo', 'b', 0, '{{}}', '{at}', 'cli', NULL, NULL);"
    );
    let url = database_migrated_through(backend, dir.path(), 9, data).await;
    let (first, rows): (_, Vec<(String, String)>) = migrate_and_read(
        &url,
        "SELECT id, imported_scope FROM settlement_files ORDER BY id",
    )
    .await;
    assert_eq!(first, Some(10));
    assert_eq!(
        rows,
        [
            ("by-district".into(), "/P/D1/".into()),
            ("unscoped".into(), "/".into()),
        ]
    );
}
