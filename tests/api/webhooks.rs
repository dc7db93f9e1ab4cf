//! Notifying the dossier systems: each event of the outbox delivered to its
//! agency's webhook, signed the Standard Webhooks way and checked here as a
//! receiver would check it; retried until acknowledged; kept as a dead
//! letter that an officer can redeliver; and webhooks only where the policy
//! allows them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use lephi::config::Settings;
use lephi::domain::Role;
use lephi::startup::Application;
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::cli::lephi_with;
use crate::helpers::{
    Backend, PaymentsApp, Response, TestApp, database_url, invoice_body, spawn_payments_app,
    spawn_payments_app_with, with_providers,
};
use crate::on_both_backends;
use crate::payments::vnpay_ipn;

on_both_backends!(
    a_paid_invoice_is_announced_in_signed_deliveries,
    each_event_is_retried_until_the_receiver_acknowledges_it,
    dead_letters_are_kept_until_an_officer_redelivers_them,
    webhooks_are_set_by_admins_within_the_url_policy,
    the_settings_decide_loopback_and_allowed_hosts,
    events_wait_for_their_agency_to_have_a_webhook,
    a_slow_receiver_holds_up_only_its_own_events,
    the_command_line_sets_a_webhook_and_prints_its_secret,
    a_webhook_secret_rotates_without_a_missed_delivery,
);

/// The example secret of the Standard Webhooks specification (24 bytes).
pub(crate) const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Another valid secret: the base64 of 32 bytes.
const OTHER_SECRET: &str = "whsec_bGVwaGktd2ViaG9vay10ZXN0LXNlY3JldC0zMmJ5dGU=";

/// Makes each VNPay transaction number unique within a test's database.
static NEXT_TXN: AtomicU64 = AtomicU64::new(70_000_000);

/// Issues an invoice of 650,000 đồng on `agency` and pays it in full by a
/// signed VNPay IPN; returns the invoice.
async fn pay(app: &PaymentsApp, system_key: &str, agency: &str) -> Value {
    let n = NEXT_TXN.fetch_add(1, Ordering::Relaxed);
    let dossier = format!("HS-{n}");
    let created = app
        .app
        .create_invoice(system_key, &dossier, &invoice_body(agency, &dossier))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let invoice = created.json();
    let id = invoice["id"].as_str().unwrap();
    let attempt = app
        .app
        .post(
            &format!("/v1/invoices/{id}/attempts"),
            system_key,
            &json!({ "channel": "vnpay" }),
        )
        .await;
    assert_eq!(attempt.status, 201, "{}", attempt.text);
    let order_ref = attempt.json()["order_ref"].as_str().unwrap().to_owned();
    let ipn = vnpay_ipn(&order_ref, 650_000, &n.to_string(), "00");
    let answer = app.callback("vnpay", &ipn, vec![], &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["RspCode"], "00", "{}", answer.text);
    invoice
}

async fn put_webhook(app: &TestApp, key: &str, agency: &str, body: &Value) -> Response {
    app.request(
        reqwest::Method::PUT,
        &format!("/v1/agencies/{agency}/webhook"),
        Some(key),
        Some(body),
        &[],
    )
    .await
}

/// Points `agency`'s webhook at `url`, signed with `secret`.
pub(crate) async fn set_webhook(app: &TestApp, agency: &str, url: &str, secret: &str) {
    let response = put_webhook(
        app,
        &app.admin_key,
        agency,
        &json!({ "url": url, "secret": secret }),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

/// The events `key` sees, newest first; `query` adds to `?limit=100`.
async fn events(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/v1/events?limit=100{query}"), key).await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()["items"].as_array().unwrap().clone()
}

/// Every request the receiver got, in order.
async fn deliveries(receiver: &MockServer) -> Vec<Request> {
    receiver
        .received_requests()
        .await
        .expect("the receiver records requests")
}

fn header<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("a delivery without {name}"))
        .to_str()
        .unwrap()
}

fn webhook_id(request: &Request) -> String {
    header(request, "webhook-id").to_owned()
}

/// Checks one delivery as the dossier system must: the signature, recomputed
/// here over "{webhook-id}.{webhook-timestamp}.{body}" with the secret's
/// key; a timestamp near now; the body's id equal to the webhook-id.
/// Returns the body.
fn verified(request: &Request, secret: &str) -> Value {
    let id = header(request, "webhook-id");
    let timestamp = header(request, "webhook-timestamp");
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signatures = header(request, "webhook-signature");
    let valid = signatures.split(' ').any(|signature| {
        let Some(Ok(sent)) = signature.strip_prefix("v1,").map(|s| STANDARD.decode(s)) else {
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        mac.verify_slice(&sent).is_ok()
    });
    assert!(valid, "a bad signature {signatures:?} on {id}");
    let sent_at: i64 = timestamp.parse().expect("unix seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - sent_at).abs() <= 300,
        "timestamp {sent_at}, now {now}"
    );
    assert!(
        header(request, "content-type").starts_with("application/json"),
        "{:?}",
        request.headers
    );
    let body: Value = serde_json::from_slice(&request.body).expect("a JSON body");
    assert_eq!(body["id"], id, "the body names its webhook-id");
    body
}

/// Runs `check` every 50 ms until it gives a value, for at most 20 seconds;
/// its error says what it last saw.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..400 {
        match check().await {
            Ok(value) => return value,
            Err(seen) => last = seen,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited in vain for {what}; last saw {last}");
}

/// Waits until `key` sees exactly `n` events with `status`; returns them.
pub(crate) async fn wait_for_status(
    app: &TestApp,
    key: &str,
    status: &str,
    n: usize,
) -> Vec<Value> {
    eventually(&format!("{n} events {status}"), async || {
        let found = events(app, key, &format!("&status={status}")).await;
        if found.len() == n {
            Ok(found)
        } else {
            Err(format!("{found:#?}"))
        }
    })
    .await
}

/// A receiver that answers every POST on `/hooks/lephi` with `template`.
pub(crate) async fn receiver_answering(template: ResponseTemplate) -> MockServer {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/lephi"))
        .respond_with(template)
        .mount(&receiver)
        .await;
    receiver
}

pub(crate) fn hook_url(receiver: &MockServer) -> String {
    format!("{}/hooks/lephi", receiver.uri())
}

async fn a_paid_invoice_is_announced_in_signed_deliveries(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let receiver = receiver_answering(ResponseTemplate::new(200)).await;
    let url = hook_url(&receiver);
    // Without a secret, lephi makes one and shows it once.
    let set = put_webhook(&app.app, &app.app.admin_key, "P.D1", &json!({ "url": url })).await;
    assert_eq!(set.status, 200, "{}", set.text);
    let set = set.json();
    assert_eq!(set["agency_code"], "P.D1");
    assert_eq!(set["url"], url.as_str());
    assert!(set["updated_at"].is_string(), "{set}");
    let secret = set["secret"].as_str().unwrap().to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64");
    assert!((24..=64).contains(&key.len()), "{secret}");

    let invoice = pay(&app, &app.system_key, "P.D1").await;
    let delivered = wait_for_status(&app.app, &app.finance_key, "delivered", 2).await;
    let requests = deliveries(&receiver).await;
    assert_eq!(requests.len(), 2, "one delivery per event");
    let mut bodies: HashMap<String, Value> = HashMap::new();
    for request in &requests {
        assert_eq!(request.method.as_str(), "POST");
        let body = verified(request, &secret);
        bodies.insert(body["type"].as_str().unwrap().to_owned(), body);
    }
    let invoice_id = invoice["id"].as_str().unwrap();
    let received = &bodies["payment.received"];
    assert_eq!(received["data"]["invoice_id"], invoice_id);
    assert_eq!(received["data"]["amount"], 650000);
    assert_eq!(received["data"]["channel"], "vnpay");
    assert_eq!(received["data"]["agency_code"], "P.D1");
    let paid = &bodies["invoice.paid"];
    assert_eq!(paid["data"]["invoice_id"], invoice_id);
    assert_eq!(paid["data"]["total"], 650000);
    assert_eq!(paid["data"]["amount_paid"], 650000);
    assert_eq!(paid["data"]["payment_code"], invoice["payment_code"]);
    assert_eq!(
        paid["data"]["payment_id"], received["data"]["payment_id"],
        "both events name the one payment"
    );
    // The list shows what was sent, byte for byte the same JSON.
    for event in &delivered {
        let body = &bodies[event["type"].as_str().unwrap()];
        assert_eq!(event["id"], body["id"]);
        assert_eq!(&event["payload"], body);
        assert_eq!(event["agency_code"], "P.D1");
        assert_eq!(event["attempts"], 1);
        assert_eq!(event["last_error"], Value::Null);
        assert!(event["delivered_at"].is_string(), "{event}");
    }
    // The audit log records the webhook, never its secret.
    let audit = app
        .app
        .get("/v1/audit?action=agency.webhook_set", &app.app.admin_key)
        .await;
    assert_eq!(audit.json()["items"].as_array().unwrap().len(), 1);
    assert!(
        !audit.text.contains(&secret["whsec_".len()..]),
        "{}",
        audit.text
    );
}

/// Answers each event's first delivery 500 and its second later than lephi
/// waits; 200 from the third on.
struct FailsThenStalls {
    seen: Mutex<HashMap<String, u32>>,
    stall: Duration,
}

impl Respond for FailsThenStalls {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = webhook_id(request);
        let mut seen = self.seen.lock().unwrap();
        let count = seen.entry(id).or_default();
        *count += 1;
        match *count {
            1 => ResponseTemplate::new(500),
            2 => ResponseTemplate::new(200).set_delay(self.stall),
            _ => ResponseTemplate::new(200),
        }
    }
}

async fn each_event_is_retried_until_the_receiver_acknowledges_it(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.webhooks.timeout_ms = 300;
    })
    .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/lephi"))
        .respond_with(FailsThenStalls {
            seen: Mutex::new(HashMap::new()),
            stall: Duration::from_secs(3),
        })
        .mount(&receiver)
        .await;
    set_webhook(&app.app, "P.D1", &hook_url(&receiver), SECRET).await;
    pay(&app, &app.system_key, "P.D1").await;
    pay(&app, &app.system_key, "P.D1").await;

    let delivered = wait_for_status(&app.app, &app.finance_key, "delivered", 4).await;
    let requests = deliveries(&receiver).await;
    let mut by_id: HashMap<String, Vec<&Request>> = HashMap::new();
    for request in &requests {
        verified(request, SECRET);
        by_id.entry(webhook_id(request)).or_default().push(request);
    }
    let ids: HashSet<&str> = delivered
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        by_id.keys().map(String::as_str).collect::<HashSet<_>>(),
        "every event reached the receiver, and nothing else did"
    );
    for event in &delivered {
        let tries = &by_id[event["id"].as_str().unwrap()];
        // A 500, a timeout, then the acknowledgement (more if an answer came late).
        assert!(tries.len() >= 3, "{event}: {} deliveries", tries.len());
        assert_eq!(event["attempts"], tries.len(), "{event}");
        assert!(
            tries.iter().all(|r| r.body == tries[0].body),
            "every retry sends the same bytes"
        );
        let body: Value = serde_json::from_slice(&tries[0].body).unwrap();
        assert_eq!(event["payload"], body);
        assert_eq!(event["last_error"], Value::Null, "{event}");
    }
    assert!(
        events(&app.app, &app.finance_key, "&status=pending")
            .await
            .is_empty()
    );
    assert!(
        events(&app.app, &app.finance_key, "&status=dead")
            .await
            .is_empty()
    );
}

async fn dead_letters_are_kept_until_an_officer_redelivers_them(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.webhooks.max_attempts = 2;
    })
    .await;
    let receiver = receiver_answering(ResponseTemplate::new(500)).await;
    set_webhook(&app.app, "P.D1", &hook_url(&receiver), SECRET).await;
    pay(&app, &app.system_key, "P.D1").await;

    let dead = wait_for_status(&app.app, &app.finance_key, "dead", 2).await;
    // The operations team sees them too, for the LephiDeadLetters alert.
    let metrics = app.app.get("/metrics", "").await.text;
    assert!(
        metrics.contains("\nlephi_webhook_dead_letters 2\n"),
        "{metrics}"
    );
    for event in &dead {
        assert_eq!(event["attempts"], 2, "{event}");
        assert_eq!(event["next_attempt_at"], Value::Null, "{event}");
        let why = event["last_error"].as_str().unwrap_or_default();
        assert!(why.contains("HTTP 500"), "{event}");
    }
    assert_eq!(deliveries(&receiver).await.len(), 4);
    let chosen = dead
        .iter()
        .find(|e| e["type"] == "payment.received")
        .unwrap();
    let id = chosen["id"].as_str().unwrap();
    let other = dead.iter().find(|e| e["type"] == "invoice.paid").unwrap();

    // The receiver is fixed; an officer of another agency cannot touch P.D1's event.
    receiver.reset().await;
    Mock::given(method("POST"))
        .and(path("/hooks/lephi"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let redeliver = |key: String, id: String| {
        let app = &app;
        async move {
            app.app
                .post(&format!("/v1/events/{id}/redeliver"), &key, &json!({}))
                .await
        }
    };
    for agency in ["Q", "P.D2"] {
        let outsider = app.app.key(Role::Finance, agency).await;
        let refused = redeliver(outsider, id.to_owned()).await;
        assert_eq!(refused.status, 404, "{agency}: {}", refused.text);
    }
    let unknown = redeliver(app.finance_key.clone(), "evt_nosuchevent".into()).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    // Replaying is an officer's decision, not the dossier system's.
    let system = redeliver(app.system_key.clone(), id.to_owned()).await;
    assert_eq!(system.status, 403, "{}", system.text);
    assert_eq!(
        events(&app.app, &app.finance_key, "&status=dead")
            .await
            .len(),
        2,
        "a refused redelivery changes nothing"
    );

    let accepted = redeliver(app.finance_key.clone(), id.to_owned()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let accepted = accepted.json();
    assert_eq!(accepted["id"], id);
    assert_eq!(accepted["status"], "pending");
    assert_eq!(accepted["attempts"], 0);
    let delivered = wait_for_status(&app.app, &app.finance_key, "delivered", 1).await;
    assert_eq!(delivered[0]["id"], id);
    assert_eq!(delivered[0]["attempts"], 1);
    assert_eq!(delivered[0]["last_error"], Value::Null);
    let requests = deliveries(&receiver).await;
    assert_eq!(requests.len(), 1, "only the redelivered event is sent");
    let body = verified(&requests[0], SECRET);
    assert_eq!(body, chosen["payload"], "the same event, the same body");
    // The other dead letter stays dead.
    let still_dead = events(&app.app, &app.finance_key, "&status=dead").await;
    assert_eq!(still_dead.len(), 1);
    assert_eq!(still_dead[0]["id"], other["id"]);

    let audit = app
        .app
        .get("/v1/audit?object_type=event", &app.finance_key)
        .await;
    assert_eq!(audit.status, 200, "{}", audit.text);
    let items = audit.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:#?}");
    assert_eq!(items[0]["action"], "event.redelivery_requested");
    assert_eq!(items[0]["object_id"], id);
    assert_eq!(items[0]["agency_code"], "P.D1");
    assert!(
        items[0]["actor"].as_str().unwrap().starts_with("key:"),
        "{}",
        items[0]
    );
    assert_eq!(items[0]["before"]["status"], "dead");
    assert_eq!(items[0]["before"]["attempts"], 2);
    assert_eq!(items[0]["after"]["status"], "pending");
}

/// The stored webhook of `agency`, straight from the database.
async fn stored_webhook(app: &TestApp, agency: &str) -> Option<(String, String)> {
    let pool = app.raw_pool().await;
    let row = sqlx::query_as("SELECT url, secret FROM agency_webhooks WHERE agency_code = $1")
        .bind(agency)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    row
}

async fn webhooks_are_set_by_admins_within_the_url_policy(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let admin = &app.app.admin_key;
    let good_url = "http://127.0.0.1:9/hooks/lephi";
    let refused = [
        json!({ "url": "http://hoso.example.gov.vn/hooks" }),
        json!({ "url": "https://hoso.example.gov.vn/hooks" }),
        json!({ "url": "http://user:pass@127.0.0.1:9/hooks" }),
        json!({ "url": "https://hoso.example.gov.vn@127.0.0.1:9/hooks" }),
        json!({ "url": "ftp://127.0.0.1/hooks" }),
        json!({ "url": "127.0.0.1:9/hooks" }),
        json!({ "url": good_url, "secret": "whsec_short" }),
        json!({ "url": good_url, "secret": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }),
        json!({ "url": good_url, "secret": "whsec_not base64!" }),
    ];
    for body in &refused {
        let answer = put_webhook(&app.app, admin, "P.D1", body).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
        assert_eq!(answer.code(), "validation_failed", "{body}");
    }
    assert_eq!(app.app.count("agency_webhooks").await, 0);
    let audit = app
        .app
        .get("/v1/audit?action=agency.webhook_set", admin)
        .await;
    assert_eq!(audit.json()["items"].as_array().unwrap().len(), 0);

    set_webhook(&app.app, "P.D1", good_url, SECRET).await;
    for body in &refused {
        let answer = put_webhook(&app.app, admin, "P.D1", body).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.text);
    }
    assert_eq!(
        stored_webhook(&app.app, "P.D1").await,
        Some((good_url.to_owned(), SECRET.to_owned())),
        "a refused change leaves the webhook as it was"
    );

    let change = json!({ "url": "http://localhost:9/other", "secret": OTHER_SECRET });
    for (role, agency) in [(Role::Finance, "P"), (Role::AgencySystem, "P.D1")] {
        let key = app.app.key(role, agency).await;
        let forbidden = put_webhook(&app.app, &key, "P.D1", &change).await;
        assert_eq!(forbidden.status, 403, "{role:?}: {}", forbidden.text);
        assert_eq!(forbidden.code(), "forbidden");
    }
    let outside = app.app.key(Role::Admin, "Q").await;
    let hidden = put_webhook(&app.app, &outside, "P.D1", &change).await;
    assert_eq!(hidden.status, 404, "{}", hidden.text);
    let missing = put_webhook(&app.app, admin, "NOPE", &change).await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(
        stored_webhook(&app.app, "P.D1").await,
        Some((good_url.to_owned(), SECRET.to_owned()))
    );
    // An admin of the province may set its district's webhook.
    let province = app.app.key(Role::Admin, "P").await;
    let changed = put_webhook(&app.app, &province, "P.D1", &change).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json()["secret"], OTHER_SECRET);
    assert_eq!(
        stored_webhook(&app.app, "P.D1").await,
        Some((
            "http://localhost:9/other".to_owned(),
            OTHER_SECRET.to_owned()
        ))
    );
    assert_eq!(app.app.count("agency_webhooks").await, 1);
}

async fn the_settings_decide_loopback_and_allowed_hosts(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.server.allow_loopback_webhooks = false;
        settings.webhooks.allowed_hosts = vec!["hoso.example.gov.vn".into()];
    })
    .await;
    let admin = &app.app.admin_key;
    for url in [
        "http://127.0.0.1:9/hooks",
        "https://127.0.0.1:9/hooks",
        "http://localhost:9/hooks",
        "http://[::1]:9/hooks",
        "http://hoso.example.gov.vn/hooks",
        "https://other.example.gov.vn/hooks",
    ] {
        let answer = put_webhook(&app.app, admin, "P.D1", &json!({ "url": url })).await;
        assert_eq!(answer.status, 422, "{url}: {}", answer.text);
        assert_eq!(answer.code(), "validation_failed", "{url}");
    }
    assert_eq!(app.app.count("agency_webhooks").await, 0);
    let url = "https://hoso.example.gov.vn/hooks/lephi";
    let accepted = put_webhook(
        &app.app,
        admin,
        "P.D1",
        &json!({ "url": url, "secret": SECRET }),
    )
    .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json()["url"], url);
    assert_eq!(
        stored_webhook(&app.app, "P.D1").await,
        Some((url.to_owned(), SECRET.to_owned()))
    );
}

async fn events_wait_for_their_agency_to_have_a_webhook(backend: Backend) {
    // One failed delivery would make a dead letter.
    let app = spawn_payments_app_with(backend, |settings| {
        settings.webhooks.max_attempts = 1;
    })
    .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let d1_url = format!("{}/hooks/d1", receiver.uri());
    let d2_url = format!("{}/hooks/d2", receiver.uri());
    let d1 = pay(&app, &app.system_key, "P.D1").await;
    // P.D2's events, written later and delivered, show that the dispatcher
    // has run past P.D1's.
    set_webhook(&app.app, "P.D2", &d2_url, OTHER_SECRET).await;
    let d2_key = app.app.key(Role::AgencySystem, "P.D2").await;
    let d2 = pay(&app, &d2_key, "P.D2").await;
    let delivered = wait_for_status(&app.app, &app.finance_key, "delivered", 2).await;
    assert!(delivered.iter().all(|e| e["agency_code"] == "P.D2"));
    // Held, not pending: the dispatcher never looks at them.
    assert!(
        events(&app.app, &app.finance_key, "&status=pending")
            .await
            .is_empty()
    );
    let waiting = events(&app.app, &app.finance_key, "&status=held").await;
    assert_eq!(waiting.len(), 2, "{waiting:#?}");
    for event in &waiting {
        assert_eq!(event["agency_code"], "P.D1");
        assert_eq!(event["attempts"], 0, "{event}");
        assert_eq!(event["last_error"], Value::Null, "{event}");
        assert_eq!(event["payload"]["data"]["invoice_id"], d1["id"]);
    }
    assert!(
        events(&app.app, &app.finance_key, "&status=dead")
            .await
            .is_empty()
    );

    set_webhook(&app.app, "P.D1", &d1_url, SECRET).await;
    wait_for_status(&app.app, &app.finance_key, "delivered", 4).await;
    let requests = deliveries(&receiver).await;
    assert_eq!(requests.len(), 4);
    for request in &requests {
        let (secret, invoice) = match request.url.path() {
            "/hooks/d1" => (SECRET, &d1),
            "/hooks/d2" => (OTHER_SECRET, &d2),
            other => panic!("a delivery to {other}"),
        };
        let body = verified(request, secret);
        assert_eq!(body["data"]["invoice_id"], invoice["id"], "{body}");
    }
}

async fn a_slow_receiver_holds_up_only_its_own_events(backend: Backend) {
    let app = spawn_payments_app_with(backend, |settings| {
        settings.webhooks.timeout_ms = 60_000;
    })
    .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/slow"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/hooks/fast"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    set_webhook(
        &app.app,
        "P.D1",
        &format!("{}/hooks/slow", receiver.uri()),
        SECRET,
    )
    .await;
    set_webhook(
        &app.app,
        "P.D2",
        &format!("{}/hooks/fast", receiver.uri()),
        OTHER_SECRET,
    )
    .await;
    pay(&app, &app.system_key, "P.D1").await;
    // Wait until P.D1's receiver holds its deliveries, then pay on P.D2.
    for _ in 0..400 {
        if deliveries(&receiver).await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        deliveries(&receiver).await.len(),
        2,
        "P.D1's deliveries started"
    );
    let d2_key = app.app.key(Role::AgencySystem, "P.D2").await;
    pay(&app, &d2_key, "P.D2").await;
    let delivered = wait_for_status(&app.app, &app.finance_key, "delivered", 2).await;
    assert!(delivered.iter().all(|e| e["agency_code"] == "P.D2"));
    let held = events(&app.app, &app.finance_key, "&status=pending").await;
    assert_eq!(held.len(), 2, "P.D1's events are still being delivered");
}

async fn the_command_line_sets_a_webhook_and_prints_its_secret(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let (ok, _, err) = lephi_with(&url, &["migrate"], &[]);
    assert!(ok, "{err}");
    let list = dir.path().join("agencies.csv");
    std::fs::write(
        &list,
        "code,name,level,parent_code\nH26,Tỉnh Hưng Yên,province,\n",
    )
    .unwrap();
    let (ok, _, err) = lephi_with(&url, &["agencies", "import", list.to_str().unwrap()], &[]);
    assert!(ok, "{err}");

    let hook = "http://127.0.0.1:9/hooks/lephi";
    let loopback = [("LEPHI__SERVER__ALLOW_LOOPBACK_WEBHOOKS", "true")];
    let (ok, out, err) = lephi_with(
        &url,
        &["agencies", "webhook", "H26", "--url", hook],
        &loopback,
    );
    assert!(ok, "{err}");
    assert!(out.contains(hook), "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .expect("the secret is printed")
        .trim()
        .to_owned();
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_"))
        .expect("base64");
    assert!((24..=64).contains(&key.len()), "{secret}");

    let (ok, out, err) = lephi_with(
        &url,
        &[
            "agencies", "webhook", "H26", "--url", hook, "--secret", SECRET,
        ],
        &loopback,
    );
    assert!(ok, "{err}");
    assert!(out.contains(&format!("secret: {SECRET}")), "{out}");
    // Loopback is off unless the settings allow it; unknown agencies and bad secrets fail.
    let (ok, _, err) = lephi_with(&url, &["agencies", "webhook", "H26", "--url", hook], &[]);
    assert!(!ok && err.contains("url"), "{err}");
    let (ok, _, _) = lephi_with(
        &url,
        &["agencies", "webhook", "NOPE", "--url", hook],
        &loopback,
    );
    assert!(!ok);
    let (ok, _, err) = lephi_with(
        &url,
        &[
            "agencies", "webhook", "H26", "--url", hook, "--secret", "whsec_x",
        ],
        &loopback,
    );
    assert!(!ok && err.contains("secret"), "{err}");

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT url, secret FROM agency_webhooks WHERE agency_code = 'H26'")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(stored, [(hook.to_owned(), SECRET.to_owned())]);
}

/// Two lephi processes on one PostgreSQL database dispatch one outbox to one
/// slow receiver: every event arrives, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_on_one_database_deliver_each_event_once() {
    // Dispatchers that claim without pause make their claims collide.
    let eager = |settings: &mut Settings| settings.webhooks.poll_interval_ms = 1;
    let app = spawn_payments_app_with(Backend::Postgres, eager).await;
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.workers = 1;
    settings.database.url = SecretString::from(app.app.database_url.clone());
    settings.database.max_connections = 4;
    with_providers(&mut settings, &app.provider_api.uri());
    eager(&mut settings);
    let second = Application::build(settings)
        .await
        .expect("a second app builds on the same database");
    tokio::spawn(second.run_until_stopped());

    // The events wait, unclaimed, until the webhook is set: then both
    // dispatchers reach for all of them at once.
    let invoices = 20;
    for _ in 0..invoices {
        pay(&app, &app.system_key, "P.D1").await;
    }
    let receiver =
        receiver_answering(ResponseTemplate::new(200).set_delay(Duration::from_millis(200))).await;
    set_webhook(&app.app, "P.D1", &hook_url(&receiver), SECRET).await;

    let delivered = wait_for_status(&app.app, &app.finance_key, "delivered", 2 * invoices).await;
    let requests = deliveries(&receiver).await;
    let mut seen = HashSet::new();
    for request in &requests {
        verified(request, SECRET);
        let id = webhook_id(request);
        assert!(seen.insert(id.clone()), "{id} was delivered twice");
    }
    let ids: HashSet<String> = delivered
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids);
    assert!(
        delivered.iter().all(|e| e["attempts"] == 1),
        "no event was claimed twice: {delivered:#?}"
    );
}

/// Whether some `v1` signature of `request` verifies under `secret`.
fn signed_under(request: &Request, secret: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let signed = format!(
        "{}.{}.",
        header(request, "webhook-id"),
        header(request, "webhook-timestamp")
    );
    header(request, "webhook-signature")
        .split(' ')
        .any(|signature| {
            let Some(Ok(sent)) = signature.strip_prefix("v1,").map(|s| STANDARD.decode(s)) else {
                return false;
            };
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
            mac.update(signed.as_bytes());
            mac.update(&request.body);
            mac.verify_slice(&sent).is_ok()
        })
}

/// A rotation: the new secret is set with `keep_previous_secret_hours`, and
/// for that long each delivery carries both signatures (Standard Webhooks'
/// space-separated list), so the dossier system verifies under whichever
/// secret it holds while it switches; setting the webhook again without it
/// ends the old secret at once.
async fn a_webhook_secret_rotates_without_a_missed_delivery(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let receiver = receiver_answering(ResponseTemplate::new(200)).await;
    let url = hook_url(&receiver);
    set_webhook(&app.app, "P.D1", &url, SECRET).await;
    let refused = put_webhook(
        &app.app,
        &app.app.admin_key,
        "P.D1",
        &json!({ "url": url, "secret": OTHER_SECRET, "keep_previous_secret_hours": 0 }),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let rotated = put_webhook(
        &app.app,
        &app.app.admin_key,
        "P.D1",
        &json!({ "url": url, "secret": OTHER_SECRET, "keep_previous_secret_hours": 24 }),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert!(
        rotated.json()["previous_secret_until"].is_string(),
        "{}",
        rotated.text
    );

    pay(&app, &app.system_key, "P.D1").await;
    wait_for_status(&app.app, &app.finance_key, "delivered", 2).await;
    let during = deliveries(&receiver).await;
    assert_eq!(during.len(), 2);
    for delivery in &during {
        assert_eq!(header(delivery, "webhook-signature").split(' ').count(), 2);
        assert!(
            signed_under(delivery, SECRET),
            "the old secret still verifies"
        );
        assert!(signed_under(delivery, OTHER_SECRET), "the new one verifies");
        verified(delivery, OTHER_SECRET);
    }

    let ended = put_webhook(
        &app.app,
        &app.app.admin_key,
        "P.D1",
        &json!({ "url": url, "secret": OTHER_SECRET }),
    )
    .await;
    assert_eq!(ended.status, 200, "{}", ended.text);
    assert!(
        ended.json()["previous_secret_until"].is_null(),
        "{}",
        ended.text
    );
    pay(&app, &app.system_key, "P.D1").await;
    wait_for_status(&app.app, &app.finance_key, "delivered", 4).await;
    let after = deliveries(&receiver).await;
    for delivery in &after[2..] {
        assert!(!signed_under(delivery, SECRET), "the old secret has ended");
        verified(delivery, OTHER_SECRET);
    }
}
