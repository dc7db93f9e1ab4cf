use lephi::domain::Role;
use serde_json::json;

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    keys_are_shown_once_and_stored_as_hashes,
    key_creation_is_checked
);

async fn keys_are_shown_once_and_stored_as_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let created = app
        .post(
            "/v1/keys",
            &app.admin_key,
            &json!({ "role": "agency_system", "agency_code": "P.D1", "name": "Hệ thống một cửa" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("lp_") && key.len() >= 3 + 22, "{key}");
    assert_eq!(created["role"], "agency_system");
    assert_eq!(created["agency_code"], "P.D1");
    assert_eq!(created["prefix"], key[..10]);
    let list = app.get("/v1/keys", &app.admin_key).await;
    assert!(!list.text.contains(&key));
    assert!(
        list.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == created["id"])
    );
    let pool = app.raw_pool().await;
    let stored: String = sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE id = $1")
        .bind(created["id"].as_str().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    use sha2::Digest;
    assert_eq!(stored, hex::encode(sha2::Sha256::digest(key.as_bytes())));
    // The new key works for its role and scope.
    assert_eq!(app.get("/v1/agencies/P.D1.C1", &key).await.status, 200);
    assert_eq!(app.get("/v1/agencies/P.D2", &key).await.status, 404);
}

async fn key_creation_is_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let before = (app.count("api_keys").await, app.count("audit_log").await);
    for (body, status) in [
        (json!({ "role": "janitor", "agency_code": "P" }), 422),
        (json!({ "role": "finance" }), 422),
        (json!({ "role": "finance", "agency_code": "NOPE" }), 404),
        (
            json!({ "role": "finance", "agency_code": "P", "secret": "x" }),
            422,
        ),
    ] {
        let response = app.post("/v1/keys", &app.admin_key, &body).await;
        assert_eq!(response.status, status, "{body}: {}", response.text);
    }
    let district_admin = app.key(Role::Admin, "P.D1").await;
    let before = (before.0 + 1, before.1 + 1);
    let global = app
        .post("/v1/keys", &district_admin, &json!({ "role": "admin" }))
        .await;
    assert_eq!(global.status, 422);
    let outside = app
        .post(
            "/v1/keys",
            &district_admin,
            &json!({ "role": "finance", "agency_code": "P" }),
        )
        .await;
    assert_eq!(outside.status, 404);
    assert_eq!(
        before,
        (app.count("api_keys").await, app.count("audit_log").await)
    );
    let unknown = app
        .post("/v1/keys/no-such-key/revoke", &app.admin_key, &json!({}))
        .await;
    assert_eq!(unknown.status, 404);
}
