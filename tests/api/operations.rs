use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    health_and_metrics,
    metrics_behind_a_token_answer_only_with_it,
    unknown_routes_and_methods_answer_json,
    migrations_are_idempotent,
    hostile_text_never_causes_a_server_error,
    the_shipped_alerts_and_dashboard_read_only_metrics_lephi_serves,
);

async fn health_and_metrics(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app
        .request(reqwest::Method::GET, "/health/live", None, None, &[])
        .await;
    assert_eq!(live.status, 200);
    let ready = app
        .request(reqwest::Method::GET, "/health/ready", None, None, &[])
        .await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["database"], "ok");
    assert!(ready.headers.contains_key("x-request-id"));
    app.get("/v1/invoices", "lp_wrong").await;
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert_eq!(metrics.status, 200);
    for expected in [
        r#"http_requests_total{method="GET",route="/health/ready",status="200"} 1"#,
        r#"http_requests_total{method="GET",route="/v1/invoices",status="401"} 1"#,
        "http_request_duration_seconds_bucket",
        "lephi_invoices_created_total 0",
    ] {
        assert!(
            metrics.text.contains(expected),
            "{expected} in {}",
            metrics.text
        );
    }
}

async fn unknown_routes_and_methods_answer_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app
        .request(reqwest::Method::GET, "/v2/nothing", None, None, &[])
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.code(), "route_not_found");
    let wrong = app
        .request(
            reqwest::Method::DELETE,
            "/v1/invoices",
            Some(&app.admin_key),
            None,
            &[],
        )
        .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.code(), "method_not_allowed");
    assert_eq!(wrong.headers["allow"], "POST, GET");
}

async fn migrations_are_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    // The app migrated at start; another run applies nothing.
    assert!(app.store.migrate().await.unwrap().is_empty());
    if backend == Backend::Sqlite {
        let pool = app.raw_pool().await;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }
}

/// NUL bytes, control characters and oversized values in paths, query
/// strings and bodies get a 4xx, never a 5xx.
async fn hostile_text_never_causes_a_server_error(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    app.seed_agencies().await;
    let key = app.key(lephi::domain::Role::AgencySystem, "P").await;
    let long = "x".repeat(5000);
    let paths = [
        "/v1/invoices/%00".to_owned(),
        "/v1/invoices/a%00b/cancel".to_owned(),
        "/v1/agencies/%00".to_owned(),
        "/v1/keys/%00/revoke".to_owned(),
        "/v1/invoices?dossier_code=%00".to_owned(),
        "/v1/invoices?cursor=%00".to_owned(),
        "/v1/invoices?agency_code=%00".to_owned(),
        "/v1/audit?object_id=%00&object_type=%01&action=%02".to_owned(),
        format!("/v1/invoices?dossier_code={long}"),
        format!("/v1/invoices/{long}"),
        "/v1/invoices?limit=99999999999999999999999".to_owned(),
        "/v1/audit?cursor=99999999999999999999999".to_owned(),
    ];
    for path in &paths {
        for (method, key) in [
            (reqwest::Method::GET, &key),
            (reqwest::Method::POST, &app.admin_key),
        ] {
            let response = app.request(method, path, Some(key), None, &[]).await;
            assert!(
                (400..500).contains(&response.status),
                "{path}: {} {}",
                response.status,
                response.text
            );
        }
    }
    // serde_json sends NUL as the escape \u0000, which parses back to NUL.
    let mut body = crate::helpers::invoice_body("P", "HS");
    body["dossier_code"] = serde_json::json!("HS\u{0}X");
    body["payer"]["name"] = serde_json::json!("A\u{0}");
    let response = app.create_invoice(&key, "nul", &body).await;
    assert_eq!(response.status, 422, "{}", response.text);
    assert_eq!(app.count("invoices").await, 0);
}

async fn metrics_behind_a_token_answer_only_with_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.server.metrics_token = Some("scrape-token-0123456789".to_owned().into());
    })
    .await;
    for given in [None, Some("Bearer wrong"), Some("scrape-token-0123456789")] {
        let headers: Vec<(&str, &str)> = given.map(|g| ("Authorization", g)).into_iter().collect();
        let refused = app
            .request(reqwest::Method::GET, "/metrics", None, None, &headers)
            .await;
        assert_eq!(refused.status, 401, "{given:?}");
        assert_eq!(refused.code(), "unauthorized");
    }
    let scraped = app
        .request(
            reqwest::Method::GET,
            "/metrics",
            None,
            None,
            &[("Authorization", "Bearer scrape-token-0123456789")],
        )
        .await;
    assert_eq!(scraped.status, 200);
    assert!(
        scraped.text.contains("http_requests_total"),
        "{}",
        scraped.text
    );
}

/// A full disk as SQLite meets it (`SQLITE_FULL`), made here by the
/// database's size limit: a write that finds no room answers 503
/// `storage_full` and keeps nothing, a callback is asked to come again,
/// and readiness says so. (PostgreSQL's disk is its server's: a write it
/// refuses for want of room takes the same path, `disk_full`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_room_refuses_writes_with_503_and_is_not_ready() {
    let app = crate::helpers::spawn_payments_app_with(Backend::Sqlite, |s| {
        s.database.max_size_mib = Some(2);
    })
    .await;
    let mut codes = vec![
        app.invoice("HS-ROOM-0").await["payment_code"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    let mut refused = None;
    for n in 1..50_000 {
        let dossier = format!("HS-ROOM-{n}");
        let answer = app
            .app
            .create_invoice(
                &app.system_key,
                &dossier,
                &crate::helpers::invoice_body("P.D1", &dossier),
            )
            .await;
        match answer.status {
            201 => codes.push(answer.json()["payment_code"].as_str().unwrap().to_owned()),
            503 => {
                refused = Some(answer);
                break;
            }
            other => panic!("invoice {n}: {other} {}", answer.text),
        }
    }
    let refused = refused.expect("the database reached its size limit");
    assert!(
        codes.len() > 100,
        "the limit is reached by writing: {}",
        codes.len()
    );
    assert_eq!(refused.code(), "storage_full", "{}", refused.text);
    assert_eq!(app.app.count("invoices").await, codes.len() as i64);

    let ready = app.app.get("/health/ready", "").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.code(), "storage_full");

    // A payment takes fewer pages than an invoice: the first few may still
    // fit. Each is kept whole or not at all, and the provider is asked to
    // come again once none fits.
    let auth = crate::payments::sepay_auth();
    let mut paid = 0;
    let mut again = None;
    for (n, code) in codes.iter().enumerate() {
        let transfer = crate::payments::sepay_transfer(
            777_000 + n as i64,
            650_000,
            &format!("NOP PHI {code}"),
        );
        let answer = app
            .callback(
                "sepay",
                "",
                transfer,
                &[
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/json"),
                ],
            )
            .await;
        match answer.status {
            200 => paid += 1,
            503 => {
                again = Some(code.clone());
                break;
            }
            other => panic!("transfer {n}: {other} {}", answer.text),
        }
    }
    let unpaid = again.expect("a callback finds no room either");
    assert_eq!(app.app.count("payments").await, paid);
    let pool = app.app.raw_pool().await;
    let status: String = sqlx::query_scalar("SELECT status FROM invoices WHERE payment_code = $1")
        .bind(&unpaid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "open");
    pool.close().await;
}

/// Readiness watches the free space of the disk that holds the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_below_its_free_space_floor_is_not_ready() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        // More than any disk here has free.
        s.database.min_free_mib = 1 << 40;
    })
    .await;
    let ready = app.get("/health/ready", "").await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.code(), "storage_full");
    assert!(ready.json()["details"]["room_bytes"].as_u64().is_some());
}

/// The metric names an expression of the shipped monitoring reads.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let starts = (rest.starts_with("lephi_")
            || rest.starts_with("http_requests")
            || rest.starts_with("http_request_duration"))
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.insert(rest[..len].to_owned());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

/// The alert rules and the Grafana dashboard in `deploy/` read metrics
/// that `/metrics` serves once lephi has worked a little: a rule on a
/// misspelt or vanished metric would never fire.
async fn the_shipped_alerts_and_dashboard_read_only_metrics_lephi_serves(backend: Backend) {
    let rules = include_str!("../../deploy/prometheus/lephi-alerts.yml");
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/lephi-dashboard.json")).unwrap();
    let _: serde_yaml::Value = serde_yaml::from_str(rules).unwrap();
    let mut wanted = metric_names(rules);
    wanted.extend(metric_names(&dashboard.to_string()));
    if backend == Backend::Postgres {
        wanted.retain(|name| !name.starts_with("lephi_sqlite_"));
    }
    assert!(wanted.len() >= 15, "{wanted:?}");

    let app = crate::helpers::spawn_payments_app_with(backend, |s| {
        s.janitor.interval_secs = 1;
        s.janitor.first_check_after_secs = 1;
    })
    .await;
    crate::callbacks::gateways_accept(&app).await;
    crate::janitor::providers_answer(&app, crate::janitor::Status::Paid).await;
    // A payment the janitor finds, one a callback brings, one forged
    // callback, and a webhook delivery.
    crate::janitor::pending_attempt(&app, "HS-OPS-1", "zalopay").await;
    let invoice = app.invoice("HS-OPS-2").await;
    let attempt = app
        .attempt(invoice["id"].as_str().unwrap(), "vnpay")
        .await
        .json();
    let now = crate::payments::vietnam_clock(time::OffsetDateTime::now_utc());
    let order = attempt["order_ref"].as_str().unwrap();
    let ipn = crate::payments::vnpay_ipn_paid_at(order, 650_000, "61001", "00", &now);
    assert_eq!(
        crate::payments::rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
        "00"
    );
    let forged = ipn.replace("vnp_Amount=65000000", "vnp_Amount=100");
    assert_eq!(
        crate::payments::rsp_code(&app.callback("vnpay", &forged, vec![], &[]).await),
        "97"
    );
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let hook = app
        .app
        .request(
            reqwest::Method::PUT,
            "/v1/agencies/P.D1/webhook",
            Some(&app.app.admin_key),
            Some(&serde_json::json!({ "url": format!("{}/hooks", receiver.uri()) })),
            &[],
        )
        .await;
    assert_eq!(hook.status, 200, "{}", hook.text);

    let mut missing = wanted.clone();
    for _ in 0..200 {
        let served = app.app.get("/metrics", "").await.text;
        missing.retain(|name| {
            !served.contains(&format!("\n{name}")) && !served.contains(&format!("\n{name}{{"))
        });
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(missing.is_empty(), "not served: {missing:?}");
}
