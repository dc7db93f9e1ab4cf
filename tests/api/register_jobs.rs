//! The dossier register imported as a job: answered at once, queued once
//! per file while it waits, bounded per key, hidden from other scopes, and
//! taken up by another process when the one running it has gone.

use lephi::domain::Role;
use lephi::startup::Application;
use secrecy::SecretString;

use std::time::{Duration, Instant};

use crate::helpers::{Backend, PaymentsApp, Response, spawn_payments_app_with, with_providers};
use crate::on_both_backends;
use crate::payments::{rsp_code, vnpay_attempt, vnpay_ipn_paid_at};

on_both_backends!(
    a_register_is_queued_once_per_file_and_each_key_waits_for_few,
    a_register_job_whose_process_went_away_is_finished_by_another,
    callbacks_are_answered_while_a_register_import_runs,
);

const HEADER: &str = "dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n";

fn register(first: usize, rows: usize) -> Vec<u8> {
    let mut file = String::from(HEADER);
    for i in first..first + rows {
        file.push_str(&format!(
            "HS-{i},P.D1,1.004227,650000,2026-11-28,received\n"
        ));
    }
    file.into_bytes()
}

async fn upload(app: &PaymentsApp, key: &str, body: Vec<u8>) -> Response {
    app.app
        .post_raw(
            "/v1/dossiers/import",
            key,
            body,
            &[("Content-Type", "text/csv")],
        )
        .await
}

async fn a_register_is_queued_once_per_file_and_each_key_waits_for_few(backend: Backend) {
    // No worker here: what is queued stays queued.
    let app = spawn_payments_app_with(backend, |s| {
        s.reconciliation.import_workers = 0;
        s.reconciliation.max_queued_per_key = 2;
    })
    .await;
    let queued = upload(&app, &app.finance_key, register(1, 3)).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let body = queued.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        queued.headers["location"].to_str().unwrap(),
        format!("/v1/dossiers/imports/{id}")
    );
    assert_eq!(body["status"], "queued", "{body}");
    assert_eq!(body["already_queued"], false, "{body}");
    assert!(
        body.get("created").is_none(),
        "no counts before done: {body}"
    );
    // The same file while it waits: that import, nothing more queued.
    let again = upload(&app, &app.finance_key, register(1, 3)).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(again.json()["already_queued"], true);
    let second = upload(&app, &app.finance_key, register(10, 3)).await;
    assert_eq!(second.status, 202, "{}", second.text);
    let third = upload(&app, &app.finance_key, register(20, 3)).await;
    assert_eq!(third.status, 429, "{}", third.text);
    assert_eq!(third.code(), "too_many_imports");
    assert_eq!(app.app.count("register_imports").await, 2);
    // Nothing is applied until a worker runs it.
    assert_eq!(app.app.count("dossiers").await, 0);
    let shown = app
        .app
        .get(&format!("/v1/dossiers/imports/{id}"), &app.finance_key)
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.json()["progress"]["rows_applied"], 0);
    // Another scope's key does not see it, whatever its id.
    let other = app.app.key(Role::Finance, "Q").await;
    let hidden = app
        .app
        .get(&format!("/v1/dossiers/imports/{id}"), &other)
        .await;
    assert_eq!(hidden.status, 404, "{}", hidden.text);
}

async fn a_register_job_whose_process_went_away_is_finished_by_another(backend: Backend) {
    let app = spawn_payments_app_with(backend, |s| s.reconciliation.import_workers = 0).await;
    let queued = upload(&app, &app.finance_key, register(1, 250)).await;
    assert_eq!(queued.status, 202, "{}", queued.text);
    let id = queued.json()["id"].as_str().unwrap().to_owned();
    // A process claimed it and went away: its claim has lapsed.
    let pool = app.app.raw_pool().await;
    sqlx::query(
        "UPDATE register_imports SET status = 'running', claimed_by = 'gone',
             claimed_until = '2026-01-01T00:00:00.000000Z' WHERE id = $1",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    // A second process on the same database, with a worker, takes it up.
    let mut settings = lephi::config::Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.workers = 1;
    settings.database.url = SecretString::from(app.app.database_url.clone());
    settings.database.max_connections = 4;
    settings.reconciliation.import_workers = 1;
    settings.reconciliation.upload_dir = app.app.upload_dir();
    with_providers(&mut settings, &app.provider_api.uri());
    let second = Application::build(settings)
        .await
        .expect("a second app builds on the same database");
    tokio::spawn(second.run_until_stopped());

    let done = app
        .app
        .finished_job(&format!("/v1/dossiers/imports/{id}"), &app.finance_key)
        .await
        .json();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["rows"], 250, "{done}");
    assert_eq!(done["created"], 250, "{done}");
    assert_eq!(done["outcomes"]["unpaid"], 250, "{done}");
    assert_eq!(done["progress"]["rows_applied"], 250, "{done}");
    assert_eq!(app.app.count("dossiers").await, 250);
}

async fn status_of(app: &PaymentsApp, id: &str) -> String {
    let view = app
        .app
        .get(&format!("/v1/dossiers/imports/{id}"), &app.finance_key)
        .await;
    assert_eq!(view.status, 200, "{}", view.text);
    view.import_status()
}

async fn callbacks_are_answered_while_a_register_import_runs(backend: Backend) {
    let app = spawn_payments_app_with(backend, |s| {
        s.database.max_connections = 4;
        s.reconciliation.import_workers = 1;
    })
    .await;
    let mut ready = Vec::new();
    for i in 0..20 {
        ready.push(vnpay_attempt(&app, &format!("HS-CB-{i}")).await);
    }
    let big = upload(&app, &app.finance_key, register(100_000, 30_000)).await;
    assert_eq!(big.status, 202, "{}", big.text);
    let big = big.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while status_of(&app, &big).await == "queued" {
        assert!(Instant::now() < deadline, "the import never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Callbacks are answered meanwhile, and the import goes on.
    let mut answered_while_running = 0;
    for (i, (_, attempt)) in ready.iter().enumerate() {
        let before = status_of(&app, &big).await;
        let order_ref = attempt["order_ref"].as_str().unwrap();
        let ipn = vnpay_ipn_paid_at(
            order_ref,
            650_000,
            &format!("88{i:04}"),
            "00",
            "20261001100000",
        );
        let answer = app.callback("vnpay", &ipn, vec![], &[]).await;
        assert_eq!(rsp_code(&answer), "00", "{}", answer.text);
        if before == "running" && status_of(&app, &big).await == "running" {
            answered_while_running += 1;
        }
    }
    let done = app
        .app
        .finished_job(&format!("/v1/dossiers/imports/{big}"), &app.finance_key)
        .await
        .json();
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["created"], 30_000, "{done}");
    assert!(
        answered_while_running > 0,
        "no callback was answered while the import ran: it ended first"
    );
}
