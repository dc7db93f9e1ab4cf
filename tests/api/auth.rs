use lephi::domain::Role;
use serde_json::json;

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    v1_needs_a_valid_key,
    revoked_keys_stop_working_at_once,
    roles_are_enforced,
);

async fn v1_needs_a_valid_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let none = app
        .request(reqwest::Method::GET, "/v1/invoices", None, None, &[])
        .await;
    assert_eq!(none.status, 401);
    assert_eq!(none.code(), "unauthorized");
    for header in [
        "Bearer lp_notakey",
        "Bearer sk_live_123",
        "Basic dXNlcjpwYXNz",
        "lp_abc",
        "Bearer ",
    ] {
        let response = app
            .request(
                reqwest::Method::GET,
                "/v1/invoices",
                None,
                None,
                &[("Authorization", header)],
            )
            .await;
        assert_eq!(response.status, 401, "{header}");
        assert_eq!(response.code(), "unauthorized");
    }
}

async fn revoked_keys_stop_working_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let created = app
        .post(
            "/v1/keys",
            &app.admin_key,
            &json!({ "role": "finance", "agency_code": "P" }),
        )
        .await
        .json();
    let key = created["key"].as_str().unwrap();
    assert_eq!(app.get("/v1/invoices", key).await.status, 200);
    let id = created["id"].as_str().unwrap();
    let revoked = app
        .post(&format!("/v1/keys/{id}/revoke"), &app.admin_key, &json!({}))
        .await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.json()["revoked_at"].is_string());
    let refused = app.get("/v1/invoices", key).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.code(), "unauthorized");
}

async fn roles_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let system = app.key(Role::AgencySystem, "P").await;
    let finance = app.key(Role::Finance, "P").await;
    for key in [&system, &finance] {
        let keys = app.get("/v1/keys", key).await;
        assert_eq!(keys.status, 403);
        assert_eq!(keys.code(), "forbidden");
        let create = app.post("/v1/keys", key, &json!({ "role": "admin" })).await;
        assert_eq!(create.status, 403);
    }
    assert_eq!(app.get("/v1/audit", &system).await.status, 403);
    assert_eq!(app.get("/v1/audit", &finance).await.status, 200);
    assert_eq!(app.get("/v1/agencies", &system).await.status, 200);
}
