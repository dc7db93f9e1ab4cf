use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    health_and_metrics,
    unknown_routes_and_methods_answer_json,
    migrations_are_idempotent
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
    assert!(
        metrics
            .text
            .contains(r#"http_requests_total{method="GET",route="/health/ready",status="200"} 1"#),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains(r#"http_requests_total{method="GET",route="/v1/invoices",status="401"} 1"#),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("http_request_duration_seconds_bucket")
    );
    assert!(metrics.text.contains("lephi_invoices_created_total 0"));
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
