//! Statement imports as jobs: an upload is answered at once and followed
//! to its end; the queue is bounded per key; a file over the limit is
//! refused while it streams, and one cut short keeps nothing; callbacks
//! are answered while an import runs and queued imports hold no
//! connection; an import killed with SIGKILL and taken up again ends as
//! an uninterrupted one does.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lephi::domain::Role;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, PaymentsApp, spawn_payments_app_with};
use crate::on_both_backends;
use crate::payments::{rsp_code, vnpay_attempt, vnpay_ipn_paid_at};
use crate::settlements::{csv, paid_by_vnpay};

on_both_backends!(
    an_upload_is_answered_at_once_and_its_import_followed_to_its_end,
    imports_beyond_a_keys_queue_are_refused,
    a_statement_over_the_limit_is_refused_while_it_streams,
    an_upload_cut_short_keeps_nothing,
    callbacks_are_answered_while_an_import_runs_and_queued_imports_hold_no_connection,
    an_import_killed_mid_job_ends_as_an_uninterrupted_one,
    a_job_whose_stored_file_is_gone_is_refused_on_sqlite_and_left_to_others_on_postgres,
);

/// `n` lines naming VNPay transactions lephi never heard of (each
/// recovers a payment), every seventh the line before it again.
fn unknown_lines(first_txn: u64, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::with_capacity(n);
    for i in 0..n {
        if i % 7 == 6 {
            let again = lines[i - 1].clone();
            lines.push(again);
            continue;
        }
        lines.push(format!(
            "{},R-LOST-{first_txn}-{i},650000,1650,2026-10-01T10:00:00+07:00,2026-10-02",
            first_txn + i as u64
        ));
    }
    lines
}

/// The files left in the upload folder (the partial ones included).
fn stored_uploads(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for folder in [dir.to_owned(), dir.join("incoming")] {
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_file()) {
                    found.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
    }
    found
}

async fn upload(app: &PaymentsApp, key: &str, body: Vec<u8>) -> crate::helpers::Response {
    app.app
        .post_raw(
            "/v1/settlements?channel=vnpay",
            key,
            body,
            &[("Content-Type", "text/csv")],
        )
        .await
}

async fn status_of(app: &PaymentsApp, id: &str) -> String {
    let view = app
        .app
        .get(&format!("/v1/settlements/{id}"), &app.finance_key)
        .await;
    assert_eq!(view.status, 200, "{}", view.text);
    view.json()["status"].as_str().unwrap().to_owned()
}

async fn an_upload_is_answered_at_once_and_its_import_followed_to_its_end(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let app = spawn_payments_app_with(backend, |s| {
        s.reconciliation.upload_dir = uploads.clone();
    })
    .await;
    let order_ref = paid_by_vnpay(&app, "HS-1", "5551").await;
    let mut lines = vec![format!(
        "5551,{order_ref},650000,1650,2026-10-01T10:00:00+07:00,2026-10-02"
    )];
    lines.extend(unknown_lines(90_000, 40));
    let file = csv(&lines);

    let queued = upload(&app, &app.finance_key, file.clone()).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let body = queued.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        queued.headers["location"].to_str().unwrap(),
        format!("/v1/settlements/{id}")
    );
    assert_eq!(body["already_imported"], false, "{body}");
    assert!(
        ["queued", "running", "done"].contains(&body["status"].as_str().unwrap()),
        "{body}"
    );
    // Until it is done, a summary is not shown: no counts.
    if body["status"] != "done" {
        assert!(body.get("outcomes").is_none(), "{body}");
    }

    let done = app.app.finished_import(&id, &app.finance_key).await.json();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["lines"], 41, "{done}");
    assert_eq!(done["outcomes"]["matched"], 1, "{done}");
    assert_eq!(done["outcomes"]["duplicate_line"], 5, "{done}");
    assert_eq!(done["outcomes"]["missing_payment"], 35, "{done}");
    assert_eq!(done["progress"]["lines_total"], 41, "{done}");
    assert_eq!(done["progress"]["lines_applied"], 41, "{done}");
    assert_eq!(done["progress"]["lines_matched"], 1, "{done}");
    assert!(done.get("refused").is_none(), "{done}");
    // The job's file is spent once its outcome is in the database.
    assert_eq!(stored_uploads(&uploads), Vec::<String>::new());

    // The same file again: the first import, and nothing kept.
    let again = upload(&app, &app.finance_key, file).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(again.json()["already_imported"], true);
    assert_eq!(again.json()["status"], "done");
    assert_eq!(stored_uploads(&uploads), Vec::<String>::new());
    let listed = app
        .app
        .get("/v1/settlements?limit=100", &app.finance_key)
        .await
        .json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // A refused file is the job's result, with its line and reason.
    let bad = csv(&["6601,X,12.5,0,2026-10-01T10:00:00+07:00,2026-10-02".to_owned()]);
    let queued = upload(&app, &app.finance_key, bad).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let id = queued.json()["id"].as_str().unwrap().to_owned();
    let refused = app.app.finished_import(&id, &app.finance_key).await.json();
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(refused["refused"]["line"], 2, "{refused}");
    assert!(
        refused["refused"]["reason"]
            .as_str()
            .unwrap()
            .contains("amount"),
        "{refused}"
    );
    assert!(refused.get("outcomes").is_none(), "{refused}");
    // Another key's import is not found, whatever its id.
    let other = app.app.key(Role::Finance, "Q").await;
    let hidden = app.app.get(&format!("/v1/settlements/{id}"), &other).await;
    assert_eq!(hidden.status, 404, "{}", hidden.text);
}

async fn imports_beyond_a_keys_queue_are_refused(backend: Backend) {
    // No worker here: what is queued stays queued.
    let app = spawn_payments_app_with(backend, |s| {
        s.reconciliation.import_workers = 0;
        s.reconciliation.max_queued_per_key = 2;
    })
    .await;
    for first in [1_000, 2_000] {
        let queued = upload(&app, &app.finance_key, csv(&unknown_lines(first, 3))).await;
        assert_eq!(queued.status, 202, "{}", queued.text);
        assert_eq!(queued.json()["status"], "queued");
    }
    let third = upload(&app, &app.finance_key, csv(&unknown_lines(3_000, 3))).await;
    assert_eq!(third.status, 429, "{}", third.text);
    assert_eq!(third.code(), "too_many_imports");
    assert!(third.text.contains('2'), "{}", third.text);
    // A file already queued is still answered with its import.
    let again = upload(&app, &app.finance_key, csv(&unknown_lines(1_000, 3))).await;
    assert_eq!(again.status, 200, "{}", again.text);
    // Another officer's queue is their own.
    let other = app.app.key(Role::Finance, "P").await;
    let theirs = upload(&app, &other, csv(&unknown_lines(3_000, 3))).await;
    assert_eq!(theirs.status, 202, "{}", theirs.text);
    let pool = app.app.raw_pool().await;
    let files: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settlement_files")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(files, 3);
}

/// Sends `body` to `/v1/settlements` in chunks, with no length declared;
/// answers the status line, or `None` when lephi closed the connection
/// before answering.
async fn send_chunked(app: &PaymentsApp, chunks: &[Vec<u8>]) -> Option<String> {
    let address = app.app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/settlements?channel=vnpay HTTP/1.1\r\nHost: {address}\r\n\
         Authorization: Bearer {}\r\nContent-Type: text/csv\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        app.finance_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        let framed = [
            format!("{:x}\r\n", chunk.len()).into_bytes(),
            chunk.clone(),
            b"\r\n".to_vec(),
        ]
        .concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().map(str::to_owned)
}

async fn a_statement_over_the_limit_is_refused_while_it_streams(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let app = spawn_payments_app_with(backend, |s| {
        s.reconciliation.upload_dir = uploads.clone();
        s.reconciliation.max_file_bytes = 20_000;
    })
    .await;
    // Declared too large: refused before a byte is read.
    let declared = upload(&app, &app.finance_key, csv(&unknown_lines(1, 1_000))).await;
    assert_eq!(declared.status, 413, "{}", declared.text);
    assert_eq!(declared.code(), "payload_too_large");
    // Streamed with no length: refused once it passes the limit.
    let file = csv(&unknown_lines(1, 1_000));
    let chunks: Vec<Vec<u8>> = file.chunks(4_096).map(<[u8]>::to_vec).collect();
    let status = send_chunked(&app, &chunks).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 413 ")),
        "{status:?}"
    );
    assert_eq!(stored_uploads(&uploads), Vec::<String>::new());
    assert_eq!(app.app.count("settlement_files").await, 0);
    // Within the limit, the same way: taken.
    let small = csv(&unknown_lines(1, 10));
    let status = send_chunked(&app, &[small[..100].to_vec(), small[100..].to_vec()]).await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 202 ")),
        "{status:?}"
    );
}

async fn an_upload_cut_short_keeps_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let app = spawn_payments_app_with(backend, |s| {
        s.reconciliation.upload_dir = uploads.clone();
    })
    .await;
    let file = csv(&unknown_lines(1, 200));
    let address = app.app.address.trim_start_matches("http://").to_owned();
    {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /v1/settlements?channel=vnpay HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {}\r\nContent-Type: text/csv\r\nConnection: close\r\n\
             Content-Length: {}\r\n\r\n",
            app.finance_key,
            file.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&file[..file.len() / 2]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The client goes away halfway.
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stored_uploads(&uploads).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored_uploads(&uploads), Vec::<String>::new());
    assert_eq!(app.app.count("settlement_files").await, 0);
    // The whole file afterwards is imported as if nothing had happened.
    let whole = app
        .app
        .import_statement("/v1/settlements?channel=vnpay", &app.finance_key, file)
        .await;
    assert_eq!(whole.import_status(), "done", "{}", whole.text);
    assert_eq!(whole.json()["lines"], 200);
}

async fn callbacks_are_answered_while_an_import_runs_and_queued_imports_hold_no_connection(
    backend: Backend,
) {
    // A small pool, one worker, and room in each queue: whatever waits for
    // its turn must wait without a connection.
    let app = spawn_payments_app_with(backend, |s| {
        s.database.max_connections = 4;
        s.reconciliation.import_workers = 1;
        s.reconciliation.max_queued_per_key = 20;
    })
    .await;
    let mut ready = Vec::new();
    for i in 0..40 {
        ready.push(vnpay_attempt(&app, &format!("HS-CB-{i}")).await);
    }
    let big = upload(&app, &app.finance_key, csv(&unknown_lines(100_000, 3_000))).await;
    assert_eq!(big.status, 202, "{}", big.text);
    let big = big.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(&app, &big).await != "running" {
        assert!(Instant::now() < deadline, "the import never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Twelve more imports queue behind it, from several officers at once.
    let keys = [
        app.finance_key.clone(),
        app.app.key(Role::Finance, "P.D1").await,
        app.app.key(Role::Finance, "P").await,
    ];
    let queued = futures_util::future::join_all((0..12).map(|i| {
        let key = keys[i % keys.len()].clone();
        let app = &app;
        async move {
            upload(
                app,
                &key,
                csv(&unknown_lines(200_000 + 1_000 * i as u64, 5)),
            )
            .await
        }
    }))
    .await;
    for answer in &queued {
        assert_eq!(answer.status, 202, "{}", answer.text);
    }
    // Callbacks, invoices and readiness are answered meanwhile.
    let mut answered_while_running = 0;
    for (i, (_, attempt)) in ready.iter().enumerate() {
        let before = status_of(&app, &big).await;
        let order_ref = attempt["order_ref"].as_str().unwrap();
        let ipn = vnpay_ipn_paid_at(
            order_ref,
            650_000,
            &format!("77{i:04}"),
            "00",
            "20261001100000",
        );
        let answer = app.callback("vnpay", &ipn, vec![], &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(rsp_code(&answer), "00", "{}", answer.text);
        let readiness = app.app.get("/health/ready", "").await;
        assert_eq!(readiness.status, 200, "{}", readiness.text);
        let dossier = format!("HS-NEW-{i}");
        let invoice = app
            .app
            .create_invoice(
                &app.system_key,
                &dossier,
                &crate::helpers::invoice_body("P.D1", &dossier),
            )
            .await;
        assert_eq!(invoice.status, 201, "{}", invoice.text);
        if before == "running" && status_of(&app, &big).await == "running" {
            answered_while_running += 1;
        }
    }
    assert!(
        answered_while_running > 0,
        "the import ended before any callback was sent: make it longer"
    );
    // Every payment is recorded once, and every import ends.
    assert_eq!(
        crate::helpers::Response::import_status(
            &app.app.finished_import(&big, &app.finance_key).await
        ),
        "done"
    );
    for answer in &queued {
        let id = answer.json()["id"].as_str().unwrap().to_owned();
        let end = app.app.finished_import(&id, &app.finance_key).await;
        assert_eq!(end.import_status(), "done", "{}", end.text);
    }
    let pool = app.app.raw_pool().await;
    let paid: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payments WHERE provider_txn_id LIKE '77%' AND channel = 'vnpay'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(paid, 40);
}

/// The lines of a statement for a crash: two payments it settles (one for
/// less than was paid) and lines naming transactions never reported.
async fn crash_scene(app: &PaymentsApp) -> Vec<u8> {
    let settled = paid_by_vnpay(app, "HS-1", "5551").await;
    let short = paid_by_vnpay(app, "HS-2", "5552").await;
    let mut lines = vec![
        format!("5551,{settled},650000,1650,2026-10-01T10:00:00+07:00,2026-10-02"),
        format!("5552,{short},600000,1650,2026-10-01T10:00:00+07:00,2026-10-02"),
    ];
    lines.extend(unknown_lines(500_000, 1_400));
    csv(&lines)
}

/// What an import left: its summary's counts and the tables it wrote.
async fn outcome_of(app: &PaymentsApp) -> BTreeMap<String, Value> {
    let pool = app.app.raw_pool().await;
    let mut outcome = BTreeMap::new();
    let summary: Option<String> =
        sqlx::query_scalar("SELECT summary FROM settlement_files WHERE status = 'done'")
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten();
    let summary: Value = serde_json::from_str(&summary.expect("a done import")).unwrap();
    for field in [
        "lines",
        "outcomes",
        "rematched_lines",
        "unsettled_payments",
        "settled_later",
        "exceptions_opened",
    ] {
        outcome.insert(field.to_owned(), summary[field].clone());
    }
    for (name, sql) in [
        ("payments", "SELECT COUNT(*) FROM payments"),
        (
            "paid",
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM payments",
        ),
        ("lines", "SELECT COUNT(*) FROM settlement_lines"),
        (
            "distinct lines",
            "SELECT COUNT(*) FROM (SELECT DISTINCT file_id, line_no FROM settlement_lines) l",
        ),
        ("exceptions", "SELECT COUNT(*) FROM payment_exceptions"),
        (
            "missing exceptions",
            "SELECT COUNT(*) FROM payment_exceptions WHERE kind = 'missing_payment'",
        ),
        ("events", "SELECT COUNT(*) FROM outbox_events"),
        ("receipts", "SELECT COUNT(*) FROM receipts"),
    ] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&pool)
            .await
            .unwrap();
        outcome.insert(format!("table {name}"), Value::from(n));
    }
    pool.close().await;
    outcome
}

/// `lephi settlement import` of `file`, as a child process.
fn import_command(app: &PaymentsApp, uploads: &Path, file: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lephi"));
    command
        .args(["settlement", "import", "--channel", "vnpay"])
        .arg(file)
        .env("LEPHI__DATABASE__URL", &app.app.database_url)
        .env("LEPHI__LOG__LEVEL", "warn")
        .env("LEPHI__RECONCILIATION__UPLOAD_DIR", uploads)
        .env("LEPHI__RECONCILIATION__IMPORT_LEASE_SECS", "1")
        .env("LEPHI__RECONCILIATION__IMPORT_BATCH_LINES", "50")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn an_import_killed_mid_job_ends_as_an_uninterrupted_one(backend: Backend) {
    let mut outcomes = Vec::new();
    for kill in [false, true] {
        // The test's own server leaves imports to the command.
        let app = spawn_payments_app_with(backend, |s| s.reconciliation.import_workers = 0).await;
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("uploads");
        let file = dir.path().join("vnpay.csv");
        std::fs::write(&file, crash_scene(&app).await).unwrap();
        if kill {
            let mut child = import_command(&app, &uploads, &file).spawn().unwrap();
            let pool = app.app.raw_pool().await;
            let deadline = Instant::now() + Duration::from_secs(60);
            // Killed once some batches are applied, before the last.
            loop {
                let applied: Option<i64> = sqlx::query_scalar(
                    "SELECT applied_through FROM settlement_files WHERE status = 'running'",
                )
                .fetch_optional(&pool)
                .await
                .unwrap();
                if applied.is_some_and(|line| line > 200) {
                    break;
                }
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the import ended before it could be killed"
                );
                assert!(Instant::now() < deadline, "the import never got going");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            let status: String = sqlx::query_scalar("SELECT status FROM settlement_files")
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            assert_eq!(status, "running", "killed mid-job");
        }
        // Taken up again (after the dead process's claim lapses) or run
        // whole: the same command.
        let output = import_command(&app, &uploads, &file).output().unwrap();
        let out = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(out.contains("1402 lines"), "{out}");
        if kill {
            assert!(out.contains("following its import"), "{out}");
        }
        assert_eq!(stored_uploads(&uploads), Vec::<String>::new());
        outcomes.push(outcome_of(&app).await);
    }
    assert_eq!(outcomes[0]["table lines"], 1_402);
    assert_eq!(outcomes[0]["table distinct lines"], 1_402);
    assert_eq!(outcomes[0], outcomes[1]);
}

async fn a_job_whose_stored_file_is_gone_is_refused_on_sqlite_and_left_to_others_on_postgres(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    // A process that only queues, and its file lost before any runs it.
    let queuing = spawn_payments_app_with(backend, |s| {
        s.reconciliation.import_workers = 0;
        s.reconciliation.upload_dir = uploads.clone();
    })
    .await;
    let queued = upload(&queuing, &queuing.finance_key, csv(&unknown_lines(1, 5))).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let id = queued.json()["id"].as_str().unwrap().to_owned();
    for name in stored_uploads(&uploads) {
        std::fs::remove_file(uploads.join(name)).unwrap();
    }
    // A process on the same database that runs imports.
    let mut settings = lephi::config::Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.workers = 1;
    settings.database.url = secrecy::SecretString::from(queuing.app.database_url.clone());
    settings.database.max_connections = 2;
    settings.reconciliation.upload_dir = uploads.clone();
    let running = lephi::startup::Application::build(settings).await.unwrap();
    tokio::spawn(running.run_until_stopped());
    match backend {
        Backend::Sqlite => {
            let end = queuing.app.finished_import(&id, &queuing.finance_key).await;
            let end = end.json();
            assert_eq!(end["status"], "refused", "{end}");
            assert!(
                end["refused"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("send the file again"),
                "{end}"
            );
            // The same file sent again takes its place, and is imported.
            let again = queuing
                .app
                .import_statement(
                    "/v1/settlements?channel=vnpay",
                    &queuing.finance_key,
                    csv(&unknown_lines(1, 5)),
                )
                .await;
            assert_eq!(again.import_status(), "done", "{}", again.text);
        }
        Backend::Postgres => {
            // Another process may have it on its disk: this one waits.
            tokio::time::sleep(Duration::from_secs(3)).await;
            assert_eq!(status_of(&queuing, &id).await, "queued");
        }
    }
    // Only the file sent again was applied.
    let applied = if backend == Backend::Sqlite { 5 } else { 0 };
    assert_eq!(queuing.app.count("settlement_lines").await, applied);
}
