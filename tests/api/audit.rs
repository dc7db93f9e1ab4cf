use lephi::domain::Role;
use serde_json::json;

use crate::helpers::{Backend, invoice_body, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    every_change_is_audited,
    audit_records_cannot_be_changed,
    audit_is_scoped
);

async fn every_change_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let key = app.key(Role::AgencySystem, "P.D1").await;
    let created = app
        .create_invoice(&key, "a1", &invoice_body("P.D1", "HS-A1"))
        .await;
    let request_id = created.headers["x-request-id"].to_str().unwrap().to_owned();
    let invoice = created.json();
    let id = invoice["id"].as_str().unwrap();
    app.post(&format!("/v1/invoices/{id}/cancel"), &key, &json!({}))
        .await;
    let audit = app
        .get(
            &format!("/v1/audit?object_type=invoice&object_id={id}"),
            &app.admin_key,
        )
        .await
        .json();
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "invoice.cancelled");
    assert_eq!(items[0]["before"]["status"], "open");
    assert_eq!(items[0]["after"]["status"], "cancelled");
    assert_eq!(items[1]["action"], "invoice.created");
    assert_eq!(items[1]["request_id"], request_id);
    assert!(items[1]["actor"].as_str().unwrap().starts_with("key:"));
    assert!(items[1]["before"].is_null());
    assert_eq!(items[1]["after"]["total"], 650_000);
    assert!(
        !audit.to_string().contains("001099012345"),
        "no personal data in the audit log"
    );
    // Paging by cursor.
    let first = app.get("/v1/audit?limit=2", &app.admin_key).await.json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/v1/audit?limit=2&cursor={cursor}"),
            &app.admin_key,
        )
        .await
        .json();
    assert!(second["items"][0]["id"].as_i64().unwrap() < first["items"][1]["id"].as_i64().unwrap());
    assert_eq!(
        app.get("/v1/audit?cursor=abc", &app.admin_key).await.status,
        400
    );
}

async fn audit_records_cannot_be_changed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let before = app.count("audit_log").await;
    assert!(before > 0);
    let pool = app.raw_pool().await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'someone else'")
        .execute(&pool)
        .await;
    assert!(update.is_err(), "an audit record was changed");
    let delete = sqlx::query("DELETE FROM audit_log").execute(&pool).await;
    assert!(delete.is_err(), "an audit record was deleted");
    assert_eq!(app.count("audit_log").await, before);
}

async fn audit_is_scoped(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let finance = app.key(Role::Finance, "P.D1").await;
    let audit = app
        .get("/v1/audit?object_type=agency", &finance)
        .await
        .json();
    let mut codes: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["object_id"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["P.D1", "P.D1.C1"]);
}
