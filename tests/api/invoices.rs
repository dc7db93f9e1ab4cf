use lephi::domain::{PaymentCode, Role};
use serde_json::json;

use crate::helpers::{Backend, TestApp, invoice_body, spawn_app, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    issues_an_invoice,
    replays_the_same_request_byte_for_byte,
    refuses_a_reused_key_with_another_body,
    concurrent_requests_with_one_key_issue_one_invoice,
    one_open_invoice_per_dossier,
    requires_an_idempotency_key,
    refuses_bad_bodies_and_changes_nothing,
    refuses_oversized_bodies,
    refuses_agencies_outside_the_scope,
    reads_are_scoped,
    lists_with_filters_and_cursor,
    cancels_only_open_invoices,
    expired_invoices_never_read_as_open,
    a_dossiers_invoice_past_its_expiry_gives_way_to_the_next,
    concurrent_cancels_cancel_once,
    a_dossier_invoiced_while_its_invoice_is_cancelled_gets_one_answer,
    times_out_of_range_are_refused,
    the_background_task_stores_expiries,
);

async fn setup(backend: Backend) -> (TestApp, String) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let key = app.key(Role::AgencySystem, "P.D1").await;
    (app, key)
}

/// An invoice of dossier `dossier_code` at P.D1 that expires `after` now.
fn expiring_in(after: time::Duration, dossier_code: &str) -> serde_json::Value {
    let expires_at = lephi::domain::Timestamp::now().plus(after).unwrap();
    let mut body = invoice_body("P.D1", dossier_code);
    body["expires_at"] = json!(expires_at.to_stored());
    body
}

/// How many audit records of `action` invoice `id` has.
async fn audit_records(app: &TestApp, id: &str, action: &str) -> usize {
    let audit = app
        .get(
            &format!("/v1/audit?object_id={id}&action={action}"),
            &app.admin_key,
        )
        .await
        .json();
    audit["items"].as_array().unwrap().len()
}

async fn issues_an_invoice(backend: Backend) {
    let (app, key) = setup(backend).await;
    let response = app
        .create_invoice(&key, "k-1", &invoice_body("P.D1.C1", "HS-001"))
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    let invoice = response.json();
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["total"], 650_000);
    assert_eq!(invoice["amount_paid"], 0);
    assert_eq!(invoice["agency_code"], "P.D1.C1");
    assert_eq!(invoice["dossier_code"], "HS-001");
    assert_eq!(invoice["procedure_code"], "1.004227");
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 2);
    assert_eq!(invoice["lines"][0]["kind"], "le_phi");
    assert_eq!(invoice["payer"]["id_number"], "********2345");
    assert!(!response.text.contains("001099012345"));
    let code = invoice["payment_code"].as_str().unwrap();
    assert_eq!(PaymentCode::parse(code).unwrap().as_str(), code);
    assert_eq!(
        invoice["checkout_url"],
        format!("{}/pay/{code}", app.address)
    );
    let created =
        lephi::domain::Timestamp::parse_rfc3339(invoice["created_at"].as_str().unwrap()).unwrap();
    let expires =
        lephi::domain::Timestamp::parse_rfc3339(invoice["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(
        Some(expires),
        created.plus(time::Duration::hours(72)),
        "the default validity"
    );
    let id = invoice["id"].as_str().unwrap();
    let read = app.get(&format!("/v1/invoices/{id}"), &key).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), invoice);
    let metrics = app
        .request(reqwest::Method::GET, "/metrics", None, None, &[])
        .await;
    assert!(
        metrics.text.contains("lephi_invoices_created_total 1"),
        "{}",
        metrics.text
    );
}

async fn replays_the_same_request_byte_for_byte(backend: Backend) {
    let (app, key) = setup(backend).await;
    let mut body = invoice_body("P.D1", "HS-002");
    body["lines"][0]["amount"] = json!(150000);
    let first = app.create_invoice(&key, "same-key", &body).await;
    assert_eq!(first.status, 201);
    // The same request, sent with other spacing and key order.
    let mut reordered = serde_json::Map::new();
    for (k, v) in body.as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), v.clone());
    }
    let text = serde_json::to_string_pretty(&reordered).unwrap();
    let again = app
        .post_raw(
            "/v1/invoices",
            &key,
            text.into_bytes(),
            &[
                ("Idempotency-Key", "same-key"),
                ("Content-Type", "application/json"),
            ],
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    // The same amounts, written as text and as a whole float, are the same request.
    body["lines"][0]["amount"] = json!("150000.00");
    body["lines"][1]["amount"] = json!(500000.0);
    let same = app.create_invoice(&key, "same-key", &body).await;
    assert_eq!(same.status, 201);
    assert_eq!(same.text, first.text);
    assert_eq!(app.count("invoices").await, 1);
}

async fn refuses_a_reused_key_with_another_body(backend: Backend) {
    let (app, key) = setup(backend).await;
    let first = app
        .create_invoice(&key, "k", &invoice_body("P.D1", "HS-003"))
        .await;
    assert_eq!(first.status, 201);
    let audit_before = app.count("audit_log").await;
    let other = app
        .create_invoice(&key, "k", &invoice_body("P.D1", "HS-004"))
        .await;
    assert_eq!(other.status, 422);
    assert_eq!(other.code(), "idempotency_key_reused");
    assert_eq!(app.count("invoices").await, 1);
    assert_eq!(app.count("audit_log").await, audit_before);
}

async fn concurrent_requests_with_one_key_issue_one_invoice(backend: Backend) {
    let (app, key) = setup(backend).await;
    let app = std::sync::Arc::new(app);
    let body = invoice_body("P.D1", "HS-005");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, key, body) = (app.clone(), key.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            app.create_invoice(&key, "race", &body).await
        }));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        let response = task.await.unwrap();
        assert_eq!(response.status, 201, "{}", response.text);
        bodies.push(response.text);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(app.count("invoices").await, 1);
}

async fn one_open_invoice_per_dossier(backend: Backend) {
    let (app, key) = setup(backend).await;
    let first = app
        .create_invoice(&key, "a", &invoice_body("P.D1", "HS-006"))
        .await
        .json();
    let second = app
        .create_invoice(&key, "b", &invoice_body("P.D1", "HS-006"))
        .await;
    assert_eq!(second.status, 409);
    assert_eq!(second.code(), "dossier_has_open_invoice");
    assert_eq!(second.json()["details"]["invoice_id"], first["id"]);
    assert_eq!(app.count("invoices").await, 1);
    // The same dossier code at another agency is another dossier.
    let elsewhere = app
        .create_invoice(&key, "c", &invoice_body("P.D1.C1", "HS-006"))
        .await;
    assert_eq!(elsewhere.status, 201);
    // Once cancelled, the dossier may be invoiced again.
    let id = first["id"].as_str().unwrap();
    let cancelled = app
        .post(&format!("/v1/invoices/{id}/cancel"), &key, &json!({}))
        .await;
    assert_eq!(cancelled.status, 200);
    let third = app
        .create_invoice(&key, "d", &invoice_body("P.D1", "HS-006"))
        .await;
    assert_eq!(third.status, 201, "{}", third.text);
}

async fn requires_an_idempotency_key(backend: Backend) {
    let (app, key) = setup(backend).await;
    let missing = app
        .post("/v1/invoices", &key, &invoice_body("P.D1", "HS-007"))
        .await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.code(), "idempotency_key_missing");
    let long = "k".repeat(256);
    let bad = app
        .create_invoice(&key, &long, &invoice_body("P.D1", "HS-007"))
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.code(), "idempotency_key_invalid");
    assert_eq!(app.count("invoices").await, 0);
}

async fn refuses_bad_bodies_and_changes_nothing(backend: Backend) {
    let (app, key) = setup(backend).await;
    let audit_before = app.count("audit_log").await;
    let with = |path: &[&str], value: serde_json::Value| {
        let mut body = invoice_body("P.D1", "HS-008");
        let mut target = &mut body;
        for step in &path[..path.len() - 1] {
            target = match step.parse::<usize>() {
                Ok(i) => &mut target[i],
                Err(_) => &mut target[*step],
            };
        }
        target[path[path.len() - 1]] = value;
        body
    };
    let cases = [
        (
            with(&["lines", "0", "amount"], json!(150000.5)),
            "lines[0].amount",
        ),
        (
            with(&["lines", "0", "amount"], json!("150000.50")),
            "lines[0].amount",
        ),
        (
            with(&["lines", "0", "amount"], json!(-5)),
            "lines[0].amount",
        ),
        (with(&["lines", "0", "amount"], json!(0)), "lines[0].amount"),
        (with(&["lines", "0", "kind"], json!("tip")), "lines[0].kind"),
        (
            with(&["lines", "0", "amount"], json!(999_999_999_999i64)),
            "lines",
        ),
        (with(&["lines"], json!([])), "lines"),
        (with(&["dossier_code"], json!("")), "dossier_code"),
        (
            with(&["dossier_code"], json!("x".repeat(101))),
            "dossier_code",
        ),
        (with(&["procedure_code"], json!("1 004")), "procedure_code"),
        (
            with(&["payer", "id_number"], json!("12")),
            "payer.id_number",
        ),
        (with(&["payer", "email"], json!("nobody")), "payer.email"),
        // Text that would show as something else in the console and on receipts.
        (
            with(&["payer", "name"], json!("Nguyễn \u{202E}aoH")),
            "payer.name",
        ),
        (
            with(&["lines", "0", "description"], json!("Lệ\u{200B}phí")),
            "lines[0].description",
        ),
        (
            with(&["expires_at"], json!("2020-01-01T00:00:00Z")),
            "expires_at",
        ),
        (with(&["expires_at"], json!("next week")), "expires_at"),
        (with(&["surprise"], json!(1)), ""),
        (with(&["payer", "nickname"], json!("A")), "payer"),
    ];
    for (i, (body, field)) in cases.iter().enumerate() {
        let response = app.create_invoice(&key, &format!("bad-{i}"), body).await;
        assert_eq!(response.status, 422, "case {i}: {}", response.text);
        assert_eq!(response.code(), "validation_failed", "case {i}");
        let reported = response.json()["details"]["field"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            reported.starts_with(field),
            "case {i}: field {reported:?}, expected {field:?}"
        );
    }
    let malformed = app
        .post_raw(
            "/v1/invoices",
            &key,
            b"{\"dossier_code\": ".to_vec(),
            &[
                ("Idempotency-Key", "m"),
                ("Content-Type", "application/json"),
            ],
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.code(), "malformed_json");
    let form = app
        .post_raw(
            "/v1/invoices",
            &key,
            b"a=b".to_vec(),
            &[
                ("Idempotency-Key", "f"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
        )
        .await;
    assert_eq!(form.status, 415);
    assert_eq!(form.code(), "unsupported_media_type");
    assert_eq!(app.count("invoices").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
    assert_eq!(app.count("audit_log").await, audit_before);
}

async fn refuses_oversized_bodies(backend: Backend) {
    let (app, key) = setup(backend).await;
    let mut body = invoice_body("P.D1", "HS-009");
    body["procedure_name"] = json!("x".repeat(70 * 1024));
    let response = app.create_invoice(&key, "big", &body).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.code(), "payload_too_large");
    assert_eq!(app.count("invoices").await, 0);
}

async fn refuses_agencies_outside_the_scope(backend: Backend) {
    let (app, key) = setup(backend).await;
    for agency in ["P", "P.D2", "Q", "NOWHERE"] {
        let response = app
            .create_invoice(&key, agency, &invoice_body(agency, "HS-010"))
            .await;
        assert_eq!(response.status, 404, "{agency}: {}", response.text);
        assert_eq!(response.code(), "agency_not_found");
    }
    let finance = app.key(Role::Finance, "P").await;
    let forbidden = app
        .create_invoice(&finance, "f", &invoice_body("P.D1", "HS-010"))
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(forbidden.code(), "forbidden");
    assert_eq!(app.count("invoices").await, 0);
}

async fn reads_are_scoped(backend: Backend) {
    let (app, key) = setup(backend).await;
    let invoice = app
        .create_invoice(&key, "s", &invoice_body("P.D1.C1", "HS-011"))
        .await
        .json();
    let path = format!("/v1/invoices/{}", invoice["id"].as_str().unwrap());
    for (agency, visible) in [
        ("P", true),
        ("P.D1", true),
        ("P.D1.C1", true),
        ("P.D2", false),
        ("Q", false),
    ] {
        let finance = app.key(Role::Finance, agency).await;
        let response = app.get(&path, &finance).await;
        assert_eq!(response.status, if visible { 200 } else { 404 }, "{agency}");
        let list = app.get("/v1/invoices", &finance).await.json();
        assert_eq!(
            list["items"].as_array().unwrap().len(),
            usize::from(visible),
            "{agency}"
        );
    }
    assert_eq!(app.get("/v1/invoices/no-such-id", &key).await.status, 404);
}

async fn lists_with_filters_and_cursor(backend: Backend) {
    let (app, key) = setup(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let agency = if i % 2 == 0 { "P.D1" } else { "P.D1.C1" };
        let invoice = app
            .create_invoice(
                &key,
                &format!("l{i}"),
                &invoice_body(agency, &format!("HS-L{i}")),
            )
            .await
            .json();
        ids.push(invoice["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/invoices?limit=2&cursor={c}"),
            None => "/v1/invoices?limit=2".to_owned(),
        };
        let page = app.get(&path, &key).await.json();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each once");
    let commune = app
        .get("/v1/invoices?agency_code=P.D1.C1", &key)
        .await
        .json();
    assert_eq!(commune["items"].as_array().unwrap().len(), 2);
    let district = app.get("/v1/invoices?agency_code=P.D1", &key).await.json();
    assert_eq!(
        district["items"].as_array().unwrap().len(),
        5,
        "an agency includes its communes"
    );
    let dossier = app
        .get("/v1/invoices?dossier_code=HS-L3", &key)
        .await
        .json();
    assert_eq!(dossier["items"][0]["id"], ids[1]);
    let open = app.get("/v1/invoices?status=open", &key).await.json();
    assert_eq!(open["items"].as_array().unwrap().len(), 5);
    let paid = app.get("/v1/invoices?status=paid", &key).await.json();
    assert_eq!(paid["items"].as_array().unwrap().len(), 0);
    let future = app
        .get("/v1/invoices?created_from=2999-01-01T00:00:00Z", &key)
        .await
        .json();
    assert_eq!(future["items"].as_array().unwrap().len(), 0);
    let past = app
        .get("/v1/invoices?created_to=2999-01-01T00:00:00%2B07:00", &key)
        .await
        .json();
    assert_eq!(past["items"].as_array().unwrap().len(), 5);
    for bad in [
        "/v1/invoices?limit=0",
        "/v1/invoices?limit=1000",
        "/v1/invoices?limit=x",
        "/v1/invoices?status=lost",
        "/v1/invoices?created_from=yesterday",
        "/v1/invoices?colour=red",
    ] {
        let response = app.get(bad, &key).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.text);
        assert_eq!(response.code(), "invalid_query", "{bad}");
    }
    let outside = app.get("/v1/invoices?agency_code=Q", &key).await;
    assert_eq!(outside.status, 404);
}

async fn cancels_only_open_invoices(backend: Backend) {
    let (app, key) = setup(backend).await;
    let invoice = app
        .create_invoice(&key, "c", &invoice_body("P.D1", "HS-012"))
        .await
        .json();
    let path = format!("/v1/invoices/{}/cancel", invoice["id"].as_str().unwrap());
    let finance = app.key(Role::Finance, "P").await;
    let forbidden = app.post(&path, &finance, &json!({})).await;
    assert_eq!(forbidden.status, 403);
    let other = app.key(Role::AgencySystem, "Q").await;
    assert_eq!(app.post(&path, &other, &json!({})).await.status, 404);
    let cancelled = app.post(&path, &key, &json!({})).await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(cancelled.json()["status"], "cancelled");
    let audit_before = app.count("audit_log").await;
    let again = app.post(&path, &key, &json!({})).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.code(), "invalid_state");
    assert_eq!(again.json()["details"]["status"], "cancelled");
    assert_eq!(app.count("audit_log").await, audit_before);
}

async fn expired_invoices_never_read_as_open(backend: Backend) {
    let (app, key) = setup(backend).await;
    let body = expiring_in(time::Duration::milliseconds(1500), "HS-013");
    let invoice = app.create_invoice(&key, "e", &body).await.json();
    assert_eq!(invoice["status"], "open");
    let id = invoice["id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    // Before any background pass has run, reads already say expired.
    let read = app.get(&format!("/v1/invoices/{id}"), &key).await.json();
    assert_eq!(read["status"], "expired");
    let open = app.get("/v1/invoices?status=open", &key).await.json();
    assert_eq!(open["items"].as_array().unwrap().len(), 0);
    let expired = app.get("/v1/invoices?status=expired", &key).await.json();
    assert_eq!(expired["items"][0]["id"], id);
    let cancel = app
        .post(&format!("/v1/invoices/{id}/cancel"), &key, &json!({}))
        .await;
    assert_eq!(cancel.status, 409);
    assert_eq!(cancel.json()["details"]["status"], "expired");
    // The expiry was stored, with its audit record, exactly once.
    assert_eq!(app.store.expire_due_invoices(100).await.unwrap(), 0);
    assert_eq!(audit_records(&app, id, "invoice.expired").await, 1);
    // The dossier can be invoiced again.
    let next = app
        .create_invoice(&key, "e2", &invoice_body("P.D1", "HS-013"))
        .await;
    assert_eq!(next.status, 201);
}

/// An invoice past its expiry, still stored as open (no read, no
/// background pass since), does not block the dossier's next invoice: the
/// next one stores its expiry, once, and is issued. One not yet due does.
async fn a_dossiers_invoice_past_its_expiry_gives_way_to_the_next(backend: Backend) {
    let (app, key) = setup(backend).await;
    let body = expiring_in(time::Duration::seconds(3), "HS-014");
    let first = app.create_invoice(&key, "f1", &body).await.json();
    let first_id = first["id"].as_str().unwrap();
    let early = app
        .create_invoice(&key, "f2", &invoice_body("P.D1", "HS-014"))
        .await;
    assert_eq!(early.status, 409, "{}", early.text);
    assert_eq!(early.json()["details"]["invoice_id"], first_id);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    // The key refused before was not spent: it issues the invoice now.
    let next = app
        .create_invoice(&key, "f2", &invoice_body("P.D1", "HS-014"))
        .await;
    assert_eq!(next.status, 201, "{}", next.text);
    assert_eq!(next.json()["status"], "open");
    assert_eq!(app.count("invoices").await, 2);
    assert_eq!(audit_records(&app, first_id, "invoice.expired").await, 1);
    assert_eq!(app.store.expire_due_invoices(100).await.unwrap(), 0);
    // The new invoice, not due, blocks the one after it.
    let after = app
        .create_invoice(&key, "f3", &invoice_body("P.D1", "HS-014"))
        .await;
    assert_eq!(after.status, 409, "{}", after.text);
    assert_eq!(after.json()["details"]["invoice_id"], next.json()["id"]);
}

async fn concurrent_cancels_cancel_once(backend: Backend) {
    let (app, key) = setup(backend).await;
    let invoice = app
        .create_invoice(&key, "cc", &invoice_body("P.D1", "HS-014"))
        .await
        .json();
    let id = invoice["id"].as_str().unwrap().to_owned();
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (app, key, id) = (app.clone(), key.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            app.post(&format!("/v1/invoices/{id}/cancel"), &key, &json!({}))
                .await
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        let response = task.await.unwrap();
        if response.status == 409 {
            assert_eq!(response.code(), "invalid_state");
        }
        statuses.push(response.status);
    }
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409]);
    assert_eq!(audit_records(&app, &id, "invoice.cancelled").await, 1);
}

/// A dossier's invoice cancelled while the dossier system asks for a new
/// one: each request is answered 201 or 409 with the open invoice (never
/// an error), and the dossier never has two open invoices.
async fn a_dossier_invoiced_while_its_invoice_is_cancelled_gets_one_answer(backend: Backend) {
    let (app, key) = setup(backend).await;
    let app = std::sync::Arc::new(app);
    let body = invoice_body("P.D1", "HS-015");
    let first = app.create_invoice(&key, "r-0", &body).await;
    let mut open_id = first.json()["id"].as_str().unwrap().to_owned();
    for round in 1..=12 {
        let cancel = {
            let (app, key, id) = (app.clone(), key.clone(), open_id.clone());
            tokio::spawn(async move {
                app.post(&format!("/v1/invoices/{id}/cancel"), &key, &json!({}))
                    .await
            })
        };
        let mut creates = Vec::new();
        for n in 0..3 {
            let (app, key, body) = (app.clone(), key.clone(), body.clone());
            creates.push(tokio::spawn(async move {
                app.create_invoice(&key, &format!("r-{round}-{n}"), &body)
                    .await
            }));
        }
        assert_eq!(cancel.await.unwrap().status, 200);
        let mut issued = Vec::new();
        for create in creates {
            let response = create.await.unwrap();
            match response.status {
                201 => issued.push(response.json()["id"].as_str().unwrap().to_owned()),
                409 => assert_eq!(response.code(), "dossier_has_open_invoice"),
                _ => panic!("round {round}: {} {}", response.status, response.text),
            }
        }
        let open = app
            .get("/v1/invoices?dossier_code=HS-015&status=open", &key)
            .await
            .json();
        let open = open["items"].as_array().unwrap();
        assert!(issued.len() <= 1, "round {round}: {issued:?}");
        assert_eq!(open.len(), issued.len(), "round {round}");
        open_id = match issued.pop() {
            Some(id) => id,
            None => app
                .create_invoice(&key, &format!("r-{round}"), &body)
                .await
                .json()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        };
    }
}

async fn times_out_of_range_are_refused(backend: Backend) {
    let (app, key) = setup(backend).await;
    let edge = "9999-12-31T23:59:59-01:00";
    for path in [
        format!("/v1/invoices?created_from={edge}"),
        format!("/v1/audit?from={edge}"),
    ] {
        let response = app.get(&path, &app.admin_key).await;
        assert_eq!(response.status, 400, "{path}: {}", response.text);
    }
    let mut body = invoice_body("P.D1", "HS-015");
    body["expires_at"] = json!(edge);
    let response = app.create_invoice(&key, "far", &body).await;
    assert_eq!(response.status, 422, "{}", response.text);
    assert_eq!(response.json()["details"]["field"], "expires_at");
}

async fn the_background_task_stores_expiries(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.invoices.expiry_interval_secs = 1).await;
    app.seed_agencies().await;
    let key = app.key(Role::AgencySystem, "P.D1").await;
    let body = expiring_in(time::Duration::milliseconds(500), "HS-016");
    let invoice = app.create_invoice(&key, "bg", &body).await.json();
    let id = invoice["id"].as_str().unwrap();
    let path = format!("/v1/audit?object_id={id}&action=invoice.expired");
    // Wait, boundedly, for a pass of the task; nothing else expires it.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = app.get(&path, &app.admin_key).await.json()["items"]
            .as_array()
            .unwrap()
            .clone();
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(records.len(), 1, "the expiry task stored the expiry once");
    assert_eq!(records[0]["actor"], "system:expiry");
    assert_eq!(records[0]["after"]["status"], "expired");
    let pool = app.raw_pool().await;
    let stored: String = sqlx::query_scalar("SELECT status FROM invoices WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, "expired");
}
