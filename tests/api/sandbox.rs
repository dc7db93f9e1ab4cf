//! The built-in sandbox providers: lephi pays its own invoices through
//! pages and APIs that speak each provider's wire format, over real HTTP,
//! with the normal provider code on lephi's side.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use lephi::domain::payment::Channel;
use lephi::domain::{Role, Timestamp, Vnd};
use lephi::providers::momo::Momo;
use lephi::providers::vnpay::Vnpay;
use lephi::providers::zalopay::Zalopay;
use lephi::providers::{CallbackEvent, ProviderError, Providers, RefundAnswer, RefundRequest};
use lephi::sandbox;
use lephi::startup::Application;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, database_url, invoice_body, spawn_app_with, spawn_payments_app,
    with_providers,
};
use crate::on_both_backends;

on_both_backends!(
    an_approved_gateway_payment_is_recorded_once_and_queries_follow_it,
    a_declined_gateway_payment_fails_only_its_attempt,
    a_sandbox_bank_transfer_pays_the_invoice_once,
    sandbox_pages_and_apis_refuse_forged_unknown_and_malformed_input,
    the_sandbox_is_off_beside_real_credentials_and_then_answers_404,
    serve_demo_seeds_once_and_prints_keys_and_checkout_links,
    a_double_payment_is_refunded_through_every_gateway_with_four_eyes,
);

const ACCOUNT: &str = "0011001234567";

struct SandboxApp {
    app: TestApp,
    system_key: String,
    /// A client that does not follow redirects, to see where they go.
    browser: reqwest::Client,
    providers: lephi::config::ProviderSettings,
}

async fn spawn_sandbox_app(backend: Backend) -> SandboxApp {
    spawn_sandbox_app_with(backend, |_| {}).await
}

async fn spawn_sandbox_app_with(
    backend: Backend,
    adjust: impl FnOnce(&mut lephi::config::Settings),
) -> SandboxApp {
    let app = spawn_app_with(backend, adjust).await;
    app.seed_agencies().await;
    let account = app
        .request(
            reqwest::Method::PUT,
            "/v1/agencies/P.D1/bank-account",
            Some(&app.admin_key),
            Some(&json!({ "bank_bin": "970436", "account_number": ACCOUNT, "account_name": "UBND HUYEN D1" })),
            &[],
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let system_key = app.key(Role::AgencySystem, "P.D1").await;
    let providers = sandbox::provider_settings(&app.address, 5);
    SandboxApp {
        app,
        system_key,
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        providers,
    }
}

struct Page {
    status: u16,
    location: Option<String>,
    text: String,
}

impl SandboxApp {
    async fn invoice(&self, dossier: &str) -> Value {
        let created = self
            .app
            .create_invoice(&self.system_key, dossier, &invoice_body("P.D1", dossier))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        created.json()
    }

    async fn attempt(&self, invoice: &Value, channel: &str) -> Value {
        let started = self
            .app
            .post(
                &format!("/v1/invoices/{}/attempts", invoice["id"].as_str().unwrap()),
                &self.system_key,
                &json!({ "channel": channel }),
            )
            .await;
        assert_eq!(started.status, 201, "{}", started.text);
        started.json()
    }

    async fn invoice_now(&self, invoice: &Value) -> Value {
        self.app
            .get(
                &format!("/v1/invoices/{}", invoice["id"].as_str().unwrap()),
                &self.system_key,
            )
            .await
            .json()
    }

    async fn payments_of(&self, invoice: &Value) -> usize {
        let listed = self
            .app
            .get(
                &format!("/v1/invoices/{}/payments", invoice["id"].as_str().unwrap()),
                &self.app.admin_key,
            )
            .await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        listed.json()["items"].as_array().unwrap().len()
    }

    async fn attempt_status(&self, order_ref: &str) -> String {
        let pool = self.app.raw_pool().await;
        let status: String =
            sqlx::query_scalar("SELECT status FROM payment_attempts WHERE order_ref = $1")
                .bind(order_ref)
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        status
    }

    async fn page(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            text: response.text().await.unwrap(),
        }
    }

    async fn get(&self, url: &str) -> Page {
        self.page(self.browser.get(url)).await
    }

    async fn post_form(&self, path: &str, form: &str) -> Page {
        self.page(
            self.browser
                .post(format!("{}{path}", self.app.address))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form.to_owned()),
        )
        .await
    }

    async fn post_json(&self, path: &str, body: &str) -> Page {
        self.page(
            self.browser
                .post(format!("{}{path}", self.app.address))
                .header("Content-Type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    /// Where the attempt stands, asked through lephi's own status-query
    /// code, which checks the answer's format and signature.
    async fn query(&self, channel: &str, attempt: &Value) -> CallbackEvent {
        let http = reqwest::Client::new();
        let order_ref = attempt["order_ref"].as_str().unwrap();
        let answer = match channel {
            "vnpay" => {
                let created =
                    Timestamp::parse_rfc3339(attempt["created_at"].as_str().unwrap()).unwrap();
                Vnpay::new(self.providers.vnpay.clone().unwrap())
                    .query(&http, order_ref, created)
                    .await
            }
            "momo" => {
                Momo::new(self.providers.momo.clone().unwrap())
                    .query(&http, order_ref)
                    .await
            }
            _ => {
                Zalopay::new(self.providers.zalopay.clone().unwrap())
                    .query(&http, order_ref)
                    .await
            }
        };
        answer.unwrap_or_else(|e| panic!("{channel} query: {e}"))
    }
}

/// The path a decision form posts to.
fn decide_path(channel: &str) -> String {
    format!("/sandbox/{channel}/pay")
}

async fn an_approved_gateway_payment_is_recorded_once_and_queries_follow_it(backend: Backend) {
    let app = spawn_sandbox_app(backend).await;
    for channel in ["vnpay", "momo", "zalopay"] {
        let invoice = app.invoice(&format!("HS-{channel}")).await;
        let code = invoice["payment_code"].as_str().unwrap();
        let attempt = app.attempt(&invoice, channel).await;
        let order_ref = attempt["order_ref"].as_str().unwrap();
        let pay_url = attempt["pay_url"].as_str().unwrap();
        assert!(
            pay_url.starts_with(&format!("{}/sandbox/{channel}/", app.app.address)),
            "{pay_url}"
        );
        let page = app.get(pay_url).await;
        assert_eq!(page.status, 200, "{channel}: {}", page.text);
        for shown in [
            "SANDBOX",
            order_ref,
            "650.000 ₫",
            "approve",
            "decline",
            "twice",
        ] {
            assert!(
                page.text.contains(shown),
                "{channel}: {shown} in {}",
                page.text
            );
        }
        assert!(!page.text.contains("<script"), "{channel}");
        assert!(
            matches!(
                app.query(channel, &attempt).await,
                CallbackEvent::Pending { .. }
            ),
            "{channel}"
        );

        let decided = app
            .post_form(
                &decide_path(channel),
                &format!("order={order_ref}&decision=approve&twice=1"),
            )
            .await;
        assert_eq!(decided.status, 303, "{channel}: {}", decided.text);
        let location = decided.location.unwrap();
        let return_url = format!("{}/pay/{code}/return/{channel}", app.app.address);
        assert!(location.starts_with(&return_url), "{location}");
        // The return URL carries VNPay's and ZaloPay's signed parameters.
        let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
        match channel {
            "vnpay" => {
                let event = Vnpay::new(app.providers.vnpay.clone().unwrap())
                    .verify_return(query)
                    .unwrap();
                assert!(matches!(event, CallbackEvent::Paid(_)), "{event:?}");
            }
            "zalopay" => {
                // Paid, which the redirect leaves to the callback to record.
                let event = Zalopay::new(app.providers.zalopay.clone().unwrap())
                    .verify_redirect(query)
                    .unwrap();
                assert_eq!(
                    event,
                    CallbackEvent::Pending {
                        order_ref: order_ref.to_owned(),
                        provider_code: "1".into()
                    }
                );
            }
            _ => {}
        }
        let returned = app.get(&location).await;
        assert_eq!(returned.status, 200, "{channel}: {}", returned.text);
        assert!(
            returned.text.contains("Đã thanh toán thành công."),
            "{channel}: {}",
            returned.text
        );

        let now = app.invoice_now(&invoice).await;
        assert_eq!(now["status"], "paid", "{channel}: {now}");
        assert_eq!(now["amount_paid"], 650000);
        assert_eq!(app.payments_of(&invoice).await, 1, "{channel}");
        assert_eq!(app.attempt_status(order_ref).await, "succeeded");
        match app.query(channel, &attempt).await {
            CallbackEvent::Paid(paid) => assert_eq!(paid.amount.dong(), 650_000),
            other => panic!("{channel}: {other:?}"),
        }
        // A second decision on the same order is refused.
        let again = app
            .post_form(
                &decide_path(channel),
                &format!("order={order_ref}&decision=decline"),
            )
            .await;
        assert_eq!(again.status, 409, "{channel}");
    }
    assert_eq!(app.app.count("payments").await, 3);
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

async fn a_declined_gateway_payment_fails_only_its_attempt(backend: Backend) {
    let app = spawn_sandbox_app(backend).await;
    for channel in ["vnpay", "momo", "zalopay"] {
        let invoice = app.invoice(&format!("HS-{channel}")).await;
        let attempt = app.attempt(&invoice, channel).await;
        let order_ref = attempt["order_ref"].as_str().unwrap();
        assert_eq!(
            app.get(attempt["pay_url"].as_str().unwrap()).await.status,
            200
        );
        let decided = app
            .post_form(
                &decide_path(channel),
                &format!("order={order_ref}&decision=decline"),
            )
            .await;
        assert_eq!(decided.status, 303, "{channel}: {}", decided.text);
        let location = decided.location.unwrap();
        if channel == "zalopay" {
            let query = location.split_once('?').unwrap().1;
            let event = Zalopay::new(app.providers.zalopay.clone().unwrap())
                .verify_redirect(query)
                .unwrap();
            assert!(
                matches!(&event, CallbackEvent::Failed { order_ref: o, .. } if o == order_ref),
                "{event:?}"
            );
        }
        // The payer's return page says so at once, ZaloPay's too, though
        // ZaloPay sent no callback: its redirect is signed.
        let returned = app.get(&location).await;
        assert_eq!(returned.status, 200, "{channel}: {}", returned.text);
        assert!(
            returned.text.contains("Thanh toán không thành công"),
            "{channel}: {}",
            returned.text
        );
        assert!(returned.text.contains("Thử lại"), "{channel}");
        let now = app.invoice_now(&invoice).await;
        assert_eq!(now["status"], "open", "{channel}");
        assert_eq!(app.payments_of(&invoice).await, 0);
        let failed = app.query(channel, &attempt).await;
        assert!(
            matches!(failed, CallbackEvent::Failed { .. }),
            "{channel}: {failed:?}"
        );
        // ZaloPay sends nothing when a payment fails: the attempt waits
        // for a status query to find out.
        let expected = if channel == "zalopay" {
            "pending"
        } else {
            "failed"
        };
        assert_eq!(app.attempt_status(order_ref).await, expected, "{channel}");
    }
    assert_eq!(app.app.count("payments").await, 0);
}

async fn a_sandbox_bank_transfer_pays_the_invoice_once(backend: Backend) {
    let app = spawn_sandbox_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let code = invoice["payment_code"].as_str().unwrap();
    let attempt = app.attempt(&invoice, "bank_transfer").await;
    let instructions: lephi::providers::bank_transfer::TransferInstructions =
        lephi::providers::bank_transfer::instructions(
            attempt["bank_transfer"]["bank_bin"].as_str().unwrap(),
            attempt["bank_transfer"]["account_number"].as_str().unwrap(),
            attempt["bank_transfer"]["account_name"].as_str().unwrap(),
            lephi::domain::Vnd::new(attempt["bank_transfer"]["amount"].as_i64().unwrap()),
            attempt["bank_transfer"]["transfer_note"].as_str().unwrap(),
        );
    let url = sandbox::bank::transfer_page_url(&app.app.address, &instructions);
    let page = app.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for shown in ["SANDBOX", ACCOUNT, "650000", code] {
        assert!(page.text.contains(shown), "{shown} in {}", page.text);
    }
    let note = instructions.transfer_note.replace(' ', "+");
    let sent = app
        .post_form(
            "/sandbox/bank/transfer",
            &format!("account={ACCOUNT}&amount=650000&note={note}&twice=1"),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert!(sent.text.contains(&format!("/pay/{code}")), "{}", sent.text);
    let now = app.invoice_now(&invoice).await;
    assert_eq!(now["status"], "paid", "{now}");
    assert_eq!(app.payments_of(&invoice).await, 1);
    assert_eq!(app.app.count("payments").await, 1);
}

async fn sandbox_pages_and_apis_refuse_forged_unknown_and_malformed_input(backend: Backend) {
    let app = spawn_sandbox_app(backend).await;
    let invoice = app.invoice("HS-1").await;
    let vnpay = app.attempt(&invoice, "vnpay").await;
    let pay_url = vnpay["pay_url"].as_str().unwrap();
    // A VNPay link whose amount was changed, or whose hash is missing.
    let forged = pay_url.replace("vnp_Amount=65000000", "vnp_Amount=1000000");
    assert_ne!(forged, pay_url);
    assert_eq!(app.get(&forged).await.status, 403);
    let unsigned = pay_url.split("&vnp_SecureHash").next().unwrap();
    assert_eq!(app.get(unsigned).await.status, 403);
    let base = &app.app.address;
    for (url, status) in [
        (format!("{base}/sandbox/momo/pay?t=261128NOSUCHORDER1"), 404),
        (
            format!("{base}/sandbox/zalopay/pay?order=261128_NOSUCH"),
            404,
        ),
        (format!("{base}/sandbox/momo/pay"), 400),
        (format!("{base}/sandbox/momo/pay?t=a&t=b"), 400),
        (format!("{base}/sandbox/zalopay/pay?order=%00"), 400),
        (format!("{base}/sandbox/bank/transfer?amount=-5"), 400),
        (
            format!("{base}/sandbox/bank/transfer?account=no%20such"),
            400,
        ),
        (format!("{base}/sandbox/bank/transfer"), 200),
    ] {
        let page = app.get(&url).await;
        assert_eq!(page.status, status, "{url}: {}", page.text);
        assert!(page.text.contains("SANDBOX"), "{url}");
    }
    for channel in ["vnpay", "momo", "zalopay"] {
        for (form, status) in [
            ("order=261128NOSUCHORDER1&decision=approve", 404),
            ("order=261128NOSUCHORDER1&decision=perhaps", 400),
            ("decision=approve", 400),
            ("", 400),
        ] {
            let page = app.post_form(&decide_path(channel), form).await;
            assert_eq!(page.status, status, "{channel} {form}: {}", page.text);
        }
    }
    for form in [
        "account=&amount=1000&note=x",
        "account=0011&amount=0&note=x",
        "account=0011&amount=1.5&note=x",
        "account=0011&amount=abc&note=x",
    ] {
        let page = app.post_form("/sandbox/bank/transfer", form).await;
        assert_eq!(page.status, 400, "{form}: {}", page.text);
    }
    assert_eq!(app.app.count("payments").await, 0);

    // The APIs refuse in their provider's format.
    let querydr = "/sandbox/vnpay/merchant_webapi/api/transaction";
    let bad_hash = Vnpay::new(lephi::config::VnpaySettings {
        hash_secret: secrecy::SecretString::from("not the sandbox secret at all"),
        previous_hash_secret: None,
        ..app.providers.vnpay.clone().unwrap()
    })
    .querydr_request(
        vnpay["order_ref"].as_str().unwrap(),
        Timestamp::now(),
        Timestamp::now(),
        "R1",
        "127.0.0.1",
    );
    let refused = app.post_json(querydr, &bad_hash.to_string()).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    assert_eq!(
        serde_json::from_str::<Value>(&refused.text).unwrap()["vnp_ResponseCode"],
        "97"
    );
    for body in ["", "[]", "{\"vnp_TxnRef\":5}"] {
        let refused = app.post_json(querydr, body).await;
        assert_eq!(refused.status, 400, "{body}: {}", refused.text);
        assert_eq!(
            serde_json::from_str::<Value>(&refused.text).unwrap()["vnp_ResponseCode"],
            "03"
        );
    }
    for path in [
        "/sandbox/momo/v2/gateway/api/create",
        "/sandbox/momo/v2/gateway/api/query",
    ] {
        let refused = app.post_json(path, "{\"partnerCode\":1}").await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.text);
        assert_eq!(
            serde_json::from_str::<Value>(&refused.text).unwrap()["resultCode"],
            20
        );
    }
    let momo_forged = json!({
        "partnerCode": sandbox::MOMO_PARTNER_CODE, "accessKey": sandbox::MOMO_ACCESS_KEY,
        "requestId": "R1", "amount": 650000, "orderId": "R1", "orderInfo": "x",
        "redirectUrl": format!("{base}/pay/x"), "ipnUrl": format!("{base}/callbacks/momo"),
        "extraData": "", "requestType": "captureWallet", "lang": "vi", "signature": "00",
    });
    let refused = app
        .post_json(
            "/sandbox/momo/v2/gateway/api/create",
            &momo_forged.to_string(),
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    for path in ["/sandbox/zalopay/v2/create", "/sandbox/zalopay/v2/query"] {
        let refused = app.post_form(path, "app_id=9999&mac=00").await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.text);
        let answer: Value = serde_json::from_str(&refused.text).unwrap();
        assert_eq!(answer["return_code"], 2, "{path}");
    }
    let refused = app
        .post_form(
            "/sandbox/zalopay/v2/query",
            "app_id=9999&app_trans_id=261128_X&mac=00",
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);
    // A signed query about an order the sandbox does not know.
    let unknown = Momo::new(app.providers.momo.clone().unwrap())
        .query(&reqwest::Client::new(), "261128NOSUCHORDER1")
        .await;
    assert!(
        matches!(&unknown, Err(lephi::providers::ProviderError::Refused { code, .. }) if code == "42"),
        "{unknown:?}"
    );
}

async fn the_sandbox_is_off_beside_real_credentials_and_then_answers_404(backend: Backend) {
    // Asked for beside real credentials, the app does not start.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = lephi::config::Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.database.url = secrecy::SecretString::from(database_url(backend, dir.path()).await);
    with_providers(&mut settings, "http://127.0.0.1:9");
    settings.sandbox.enabled = Some(true);
    let refused = Application::build(settings).await.err().expect("refused");
    let message = lephi::error::error_chain(refused.as_ref());
    assert!(message.contains("sandbox.enabled"), "{message}");
    assert!(message.contains("real provider credentials"), "{message}");

    // With real credentials it is off by default; off, every sandbox
    // route is not found.
    let real = spawn_payments_app(backend).await;
    let off = spawn_app_with(backend, |s| s.sandbox.enabled = Some(false)).await;
    for app in [&real.app, &off] {
        for (method, path) in lephi::http::ROUTES {
            if !path.starts_with("/sandbox/") {
                continue;
            }
            let answer = app
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    path,
                    None,
                    None,
                    &[],
                )
                .await;
            assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
            assert_eq!(answer.code(), "route_not_found");
        }
    }
    // Off, no gateway can start (nothing is configured).
    off.seed_agencies().await;
    let key = off.key(Role::AgencySystem, "P.D1").await;
    let invoice = off
        .create_invoice(&key, "HS-1", &invoice_body("P.D1", "HS-1"))
        .await
        .json();
    let refused = off
        .post(
            &format!("/v1/invoices/{}/attempts", invoice["id"].as_str().unwrap()),
            &key,
            &json!({ "channel": "momo" }),
        )
        .await;
    assert_eq!(refused.code(), "channel_unavailable", "{}", refused.text);
}

/// Runs `lephi serve --demo` until it serves, then stops it; returns
/// what it printed.
fn serve_demo(database_url: &str, extra_env: &[(&str, &str)]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lephi"))
        .args(["serve", "--demo"])
        .env("LEPHI__DATABASE__URL", database_url)
        .env("LEPHI__SERVER__BIND", "127.0.0.1:0")
        .env("LEPHI__LOG__LEVEL", "error")
        .envs(extra_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lephi starts");
    let mut printed = String::new();
    let mut serving = false;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("lephi is serving on") {
            serving = true;
            break;
        }
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    printed.push_str(&String::from_utf8_lossy(&output.stderr));
    (serving, printed)
}

async fn serve_demo_seeds_once_and_prints_keys_and_checkout_links(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    // On a port already taken the demo says so and makes nothing: the keys
    // it prints once are made by the run that serves.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (serving, refused) = serve_demo(&url, &[("LEPHI__SERVER__BIND", bind.as_str())]);
    assert!(!serving, "{refused}");
    assert!(!refused.contains(": lp_"), "no key is made: {refused}");
    assert!(refused.to_lowercase().contains("address"), "{refused}");
    drop(taken);
    let (serving, first) = serve_demo(&url, &[]);
    assert!(serving, "{first}");
    for role in ["admin", "finance", "agency_system"] {
        let line = first
            .lines()
            .find(|l| l.trim_start().starts_with(role))
            .unwrap_or_else(|| panic!("{role} in {first}"));
        assert!(line.contains(": lp_"), "{line}");
    }
    let links: Vec<&str> = first
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.contains("/pay/LP")))
        .collect();
    assert!(links.len() >= 3, "{first}");
    assert!(first.contains("phí") || first.contains("Lệ phí") || first.contains("₫"));
    // No other admin key is made beside the demo's.
    assert!(!first.contains("No admin key existed"), "{first}");
    // A finance officer for the console, with a password printed once.
    let console = first
        .lines()
        .find(|l| l.starts_with("Finance console: "))
        .unwrap_or_else(|| panic!("the console in {first}"));
    assert!(
        console.contains("/console: sign in as ketoan@demo.lephi.vn with the password "),
        "{console}"
    );

    sqlx::any::install_default_drivers();
    let counts = || async {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let mut counts = Vec::new();
        for table in [
            "agencies",
            "agency_bank_accounts",
            "api_keys",
            "invoices",
            "officers",
        ] {
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            counts.push(n);
        }
        pool.close().await;
        counts
    };
    let seeded = counts().await;
    assert_eq!(seeded[..3], [3, 3, 3], "{seeded:?}");
    assert_eq!(seeded[3] as usize, links.len());
    assert_eq!(seeded[4], 1, "one demo officer");

    let (serving, second) = serve_demo(&url, &[]);
    assert!(serving, "{second}");
    assert_eq!(counts().await, seeded);
    let again: Vec<&str> = second
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.contains("/pay/LP")))
        .collect();
    let path = |link: &str| link.split_once("/pay/").unwrap().1.to_owned();
    assert_eq!(
        again.iter().map(|l| path(l)).collect::<Vec<_>>(),
        links.iter().map(|l| path(l)).collect::<Vec<_>>()
    );
    assert!(!second.contains(": lp_"), "keys print only once: {second}");
    assert!(
        second.contains("printed by an earlier run; `lephi officers reset-password"),
        "{second}"
    );

    // The demo refuses to run beside real credentials.
    let (serving, refused) = serve_demo(
        &url,
        &[(
            "LEPHI__PROVIDERS__CASSO__CHECKSUM_KEY",
            "casso-test-checksum-key-0123456789",
        )],
    );
    assert!(!serving);
    assert!(refused.contains("--demo"), "{refused}");
    assert!(refused.contains("real provider credentials"), "{refused}");
}

/// A payment approved at a sandbox gateway, as lephi recorded it.
struct Paid {
    channel: Channel,
    order_ref: String,
    provider_txn_id: String,
    amount: Vnd,
    paid_at: Timestamp,
}

impl SandboxApp {
    /// Pays a new invoice for `dossier` on `channel` through the sandbox's
    /// payment page.
    async fn pay(&self, channel: &str, dossier: &str) -> Paid {
        let invoice = self.invoice(dossier).await;
        let attempt = self.attempt(&invoice, channel).await;
        let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
        assert_eq!(
            self.get(attempt["pay_url"].as_str().unwrap()).await.status,
            200
        );
        let decided = self
            .post_form(
                &decide_path(channel),
                &format!("order={order_ref}&decision=approve"),
            )
            .await;
        assert_eq!(decided.status, 303, "{channel}: {}", decided.text);
        assert_eq!(self.invoice_now(&invoice).await["status"], "paid");
        let listed = self
            .app
            .get(
                &format!("/v1/invoices/{}/payments", invoice["id"].as_str().unwrap()),
                &self.app.admin_key,
            )
            .await
            .json();
        let payment = &listed["items"][0];
        Paid {
            channel: match channel {
                "vnpay" => Channel::Vnpay,
                "momo" => Channel::Momo,
                _ => Channel::Zalopay,
            },
            order_ref,
            provider_txn_id: payment["provider_txn_id"].as_str().unwrap().to_owned(),
            amount: Vnd::new(payment["amount"].as_i64().unwrap()),
            paid_at: Timestamp::parse_rfc3339(payment["paid_at"].as_str().unwrap()).unwrap(),
        }
    }
}

/// A refund of `amount` of `paid` under the id `request_id`.
fn refund_of<'a>(paid: &'a Paid, request_id: &'a str, amount: i64) -> RefundRequest<'a> {
    RefundRequest {
        request_id,
        order_ref: &paid.order_ref,
        provider_txn_id: &paid.provider_txn_id,
        payment_amount: paid.amount,
        amount: Vnd::new(amount),
        paid_at: paid.paid_at,
        submitted_at: Timestamp::now(),
        created_by: "officer1",
        description: "Hoan le phi",
        client_ip: "127.0.0.1",
    }
}

/// Where a refund stands and the provider's code, for comparing.
fn state(answer: Option<Result<RefundAnswer, ProviderError>>) -> (String, String) {
    match answer.expect("a configured gateway") {
        Ok(RefundAnswer::Succeeded { provider_code, .. }) => ("succeeded".into(), provider_code),
        Ok(RefundAnswer::Pending { provider_code, .. }) => ("pending".into(), provider_code),
        Ok(RefundAnswer::Failed { provider_code, .. }) => ("failed".into(), provider_code),
        Err(err) => ("error".into(), err.provider_code().to_owned()),
    }
}

/// `(state, code)` as [`state`] gives it.
fn expect(state: &str, code: &str) -> (String, String) {
    (state.to_owned(), code.to_owned())
}

/// Refunds one payment made on `channel` through `providers` (lephi's
/// provider code) against the sandbox, along every path the sandbox's
/// amount rules open.
async fn refund_every_way(app: &SandboxApp, providers: &Providers, channel: &str) {
    let paid = app.pay(channel, &format!("HS-REFUND-{channel}")).await;
    let c = paid.channel;
    let vnpay = channel == "vnpay";
    let new_id = || providers.refund_request_id(c, Timestamp::now());
    // What each gateway answers a refund it took, and a first status query
    // of one in progress.
    let (accepted, in_progress) = match channel {
        "vnpay" => (expect("pending", "00"), expect("pending", "05")),
        "momo" => (expect("succeeded", "0"), expect("pending", "7000")),
        _ => (expect("succeeded", "1"), expect("pending", "2")),
    };
    let succeeded = match channel {
        "vnpay" => expect("succeeded", "00"),
        "momo" => expect("succeeded", "0"),
        _ => expect("succeeded", "1"),
    };

    // An amount ending in another digit: done at once (VNPay: at its
    // first query).
    let id = new_id();
    let normal = refund_of(&paid, &id, 100_000);
    assert_eq!(
        state(providers.refund(c, &normal).await),
        accepted,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &normal).await),
        succeeded,
        "{channel}"
    );

    // …1: in progress at the first query, done at the second.
    let id = new_id();
    let slow = refund_of(&paid, &id, 50_001);
    let answered = if vnpay {
        accepted.clone()
    } else {
        in_progress.clone()
    };
    assert_eq!(
        state(providers.refund(c, &slow).await),
        answered,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &slow).await),
        in_progress,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &slow).await),
        succeeded,
        "{channel}"
    );

    // …2: answered too late for lephi, yet taken: the query finds it
    // done, and sending it again is answered as a repeat.
    let id = new_id();
    let late = refund_of(&paid, &id, 50_002);
    assert_eq!(
        state(providers.refund(c, &late).await),
        expect("error", "timeout"),
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &late).await),
        succeeded,
        "{channel}"
    );
    let again = if vnpay {
        expect("pending", "94")
    } else {
        succeeded.clone()
    };
    assert_eq!(state(providers.refund(c, &late).await), again, "{channel}");

    // …3: the refund fails (VNPay takes it, then its query says rejected).
    let id = new_id();
    let failing = refund_of(&paid, &id, 50_003);
    let (refused, queried) = match channel {
        "vnpay" => (accepted.clone(), expect("failed", "09")),
        "momo" => (expect("failed", "1080"), expect("failed", "1080")),
        _ => (expect("failed", "-3"), expect("failed", "-3")),
    };
    assert_eq!(
        state(providers.refund(c, &failing).await),
        refused,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &failing).await),
        queried,
        "{channel}"
    );

    // 650,000 paid, 200,003 refunded: a part, then more than is left,
    // then exactly what is left.
    let id = new_id();
    let part = refund_of(&paid, &id, 400_000);
    assert_eq!(
        state(providers.refund(c, &part).await),
        accepted,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &part).await),
        succeeded,
        "{channel}"
    );
    let id = new_id();
    let over = refund_of(&paid, &id, 49_998);
    let too_much = match channel {
        "vnpay" => expect("failed", "02"),
        "momo" => expect("failed", "1081"),
        _ => expect("failed", "-13"),
    };
    assert_eq!(
        state(providers.refund(c, &over).await),
        too_much,
        "{channel}"
    );
    let id = new_id();
    let rest = refund_of(&paid, &id, 49_997);
    assert_eq!(
        state(providers.refund(c, &rest).await),
        accepted,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &rest).await),
        succeeded,
        "{channel}"
    );

    // A whole payment refunded at once (VNPay: type 02).
    let whole = app.pay(channel, &format!("HS-WHOLE-{channel}")).await;
    let id = new_id();
    let full = refund_of(&whole, &id, 650_000);
    assert_eq!(
        state(providers.refund(c, &full).await),
        accepted,
        "{channel}"
    );
    assert_eq!(
        state(providers.query_refund(c, &full).await),
        succeeded,
        "{channel}"
    );

    // A payment the gateway never made.
    let id = new_id();
    let unknown = Paid {
        provider_txn_id: "12345".into(),
        ..whole
    };
    let not_found = match channel {
        "vnpay" => expect("failed", "91"),
        "momo" => expect("failed", "1080"),
        _ => expect("failed", "-101"),
    };
    assert_eq!(
        state(providers.refund(c, &refund_of(&unknown, &id, 1_000)).await),
        not_found,
        "{channel}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_run_through_every_sandbox_gateway() {
    // The sandbox answers a refund whose amount ends in 2 after the
    // provider timeout and a second: lephi gives up after 2 s, the
    // sandbox answers after 3 s.
    const TIMEOUT_SECS: u64 = 2;
    let app =
        spawn_sandbox_app_with(Backend::Sqlite, |s| s.providers.timeout_secs = TIMEOUT_SECS).await;
    let providers =
        Providers::from_settings(&sandbox::provider_settings(&app.app.address, TIMEOUT_SECS))
            .unwrap();
    tokio::join!(
        refund_every_way(&app, &providers, "vnpay"),
        refund_every_way(&app, &providers, "momo"),
        refund_every_way(&app, &providers, "zalopay"),
    );
    assert_eq!(app.app.count("payment_exceptions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_refunds_refuse_requests_not_signed_with_the_sandbox_keys() {
    let app = spawn_sandbox_app(Backend::Sqlite).await;
    let mut settings = sandbox::provider_settings(&app.app.address, 5);
    let wrong = || secrecy::SecretString::from("not the sandbox's key at all".to_owned());
    if let Some(vnpay) = settings.vnpay.as_mut() {
        vnpay.hash_secret = wrong();
    }
    if let Some(momo) = settings.momo.as_mut() {
        momo.secret_key = wrong();
    }
    if let Some(zalopay) = settings.zalopay.as_mut() {
        zalopay.key1 = wrong();
    }
    let forger = Providers::from_settings(&settings).unwrap();
    let providers =
        Providers::from_settings(&sandbox::provider_settings(&app.app.address, 5)).unwrap();
    for (channel, refused, whole) in [
        // VNPay answers 97, signed with the sandbox's secret, which lephi
        // does not hold here: the answer itself fails its check.
        (
            "vnpay",
            expect("error", "bad_signature"),
            expect("pending", "00"),
        ),
        ("momo", expect("failed", "13"), expect("succeeded", "0")),
        (
            "zalopay",
            expect("failed", "-402"),
            expect("succeeded", "1"),
        ),
    ] {
        let paid = app.pay(channel, &format!("HS-FORGED-{channel}")).await;
        let id = forger.refund_request_id(paid.channel, Timestamp::now());
        let request = refund_of(&paid, &id, 10_000);
        assert_eq!(
            state(forger.refund(paid.channel, &request).await),
            refused,
            "{channel}"
        );
        // Nothing was taken: the whole payment can still be refunded.
        let id = providers.refund_request_id(paid.channel, Timestamp::now());
        let request = refund_of(&paid, &id, 650_000);
        assert_eq!(
            state(providers.refund(paid.channel, &request).await),
            whole,
            "{channel}"
        );
    }
    // The refund APIs refuse unreadable requests in their provider's words.
    for (path, field, value) in [
        (
            "/sandbox/vnpay/merchant_webapi/api/transaction",
            "vnp_ResponseCode",
            json!("03"),
        ),
        (
            "/sandbox/momo/v2/gateway/api/refund",
            "resultCode",
            json!(20),
        ),
    ] {
        let refused = app
            .post_json(path, r#"{"vnp_Command":"refund","amount":"x"}"#)
            .await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.text);
        assert_eq!(
            serde_json::from_str::<Value>(&refused.text).unwrap()[field],
            value,
            "{path}"
        );
    }
    for path in [
        "/sandbox/zalopay/v2/refund",
        "/sandbox/zalopay/v2/query_refund",
    ] {
        let refused = app.post_form(path, "app_id=9999").await;
        assert_eq!(refused.status, 400, "{path}: {}", refused.text);
        assert_eq!(
            serde_json::from_str::<Value>(&refused.text).unwrap()["return_code"],
            2
        );
    }
}

impl SandboxApp {
    /// Pays a new invoice for `dossier` twice on `channel` (two attempts,
    /// both approved in the sandbox); returns it and the held payment's id.
    async fn pay_twice(&self, channel: &str, dossier: &str) -> (Value, String) {
        let invoice = self.invoice(dossier).await;
        let attempts = [
            self.attempt(&invoice, channel).await,
            self.attempt(&invoice, channel).await,
        ];
        for attempt in &attempts {
            let order_ref = attempt["order_ref"].as_str().unwrap();
            assert_eq!(
                self.get(attempt["pay_url"].as_str().unwrap()).await.status,
                200
            );
            let decided = self
                .post_form(
                    &decide_path(channel),
                    &format!("order={order_ref}&decision=approve"),
                )
                .await;
            assert_eq!(decided.status, 303, "{channel}: {}", decided.text);
        }
        let now = self.invoice_now(&invoice).await;
        assert_eq!(now["status"], "paid");
        assert_eq!(now["held_payments"][0]["reason"], "overpaid", "{now}");
        let held = now["held_payments"][0]["payment_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (invoice, held)
    }
}

async fn a_double_payment_is_refunded_through_every_gateway_with_four_eyes(backend: Backend) {
    let app = spawn_sandbox_app_with(backend, |s| s.refunds.check_after_secs = 0).await;
    let asker = app.app.key(Role::Finance, "P").await;
    let approver = app.app.key(Role::Finance, "P").await;
    let mut settings = lephi::config::Settings::default();
    settings.refunds.check_after_secs = 0;
    let janitor = lephi::janitor::Janitor::new(
        app.app.store.clone(),
        &settings,
        &sandbox::provider_settings(&app.app.address, 5),
        std::sync::Arc::new(lephi::telemetry::Metrics::new().unwrap()),
    )
    .unwrap();
    let later = || Timestamp::now().plus(time::Duration::minutes(1)).unwrap();
    let ask = |payment: String, amount: i64, idem: String| {
        let app = &app;
        let asker = asker.clone();
        async move {
            app.app
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/payments/{payment}/refunds"),
                    Some(&asker),
                    Some(&json!({ "amount": amount, "reason": "Nộp hai lần" })),
                    &[("Idempotency-Key", idem.as_str())],
                )
                .await
        }
    };
    for (channel, after_approval) in [
        ("vnpay", "submitted"),
        ("momo", "succeeded"),
        ("zalopay", "succeeded"),
    ] {
        let (invoice, held) = app.pay_twice(channel, &format!("HS-RF-{channel}")).await;
        let asked = ask(held.clone(), 650_000, format!("rf-{channel}")).await;
        assert_eq!(asked.status, 201, "{channel}: {}", asked.text);
        let id = asked.json()["id"].as_str().unwrap().to_owned();
        assert_eq!(asked.json()["status"], "requested");
        // Nothing is sent before a second officer approves.
        let own = app
            .app
            .post(&format!("/v1/refunds/{id}/approve"), &asker, &json!({}))
            .await;
        assert_eq!(own.status, 403, "{}", own.text);
        let approved = app
            .app
            .post(&format!("/v1/refunds/{id}/approve"), &approver, &json!({}))
            .await;
        assert_eq!(approved.status, 200, "{channel}: {}", approved.text);
        let approved = approved.json();
        assert_eq!(approved["status"], after_approval, "{channel}: {approved}");
        assert!(
            approved["request_id"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{approved}"
        );
        if after_approval == "submitted" {
            // VNPay takes the refund and settles it later: the janitor asks.
            let pass = janitor.run_refunds(later()).await.unwrap();
            assert_eq!((pass.checked, pass.finished), (1, 1), "{channel}");
        }
        let done = app
            .app
            .get(&format!("/v1/refunds/{id}"), &asker)
            .await
            .json();
        assert_eq!(done["status"], "succeeded", "{channel}: {done}");
        assert_eq!(
            done["request_id"], approved["request_id"],
            "sent under one request id"
        );
        let now = app.invoice_now(&invoice).await;
        assert_eq!(
            (now["amount_held"].as_i64(), now["amount_refunded"].as_i64()),
            (Some(0), Some(650_000))
        );
        assert_eq!(now["status"], "paid");
        let exceptions = app
            .app
            .get("/v1/exceptions?kind=overpaid", &app.app.admin_key)
            .await
            .json();
        let exception = exceptions["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["payment_id"] == held.as_str())
            .unwrap()
            .clone();
        assert_eq!(exception["status"], "resolved", "{exception}");
        let page = app
            .get(&format!(
                "{}/pay/{}",
                app.app.address,
                invoice["payment_code"].as_str().unwrap()
            ))
            .await;
        assert!(page.text.contains("Đã hoàn 650.000 ₫"), "{}", page.text);
    }
    let events = app
        .app
        .get("/v1/events?type=refund.succeeded", &app.app.admin_key)
        .await
        .json();
    assert_eq!(events["items"].as_array().unwrap().len(), 3, "{events}");

    // In progress at first (an amount ending in 1): submitted until the
    // provider says it is done, and never sent twice.
    let (_, held) = app.pay_twice("momo", "HS-RF-SLOW").await;
    let asked = ask(held.clone(), 50_001, "rf-slow".into()).await;
    let id = asked.json()["id"].as_str().unwrap().to_owned();
    let approved = app
        .app
        .post(&format!("/v1/refunds/{id}/approve"), &approver, &json!({}))
        .await
        .json();
    assert_eq!(approved["status"], "submitted", "{approved}");
    let pass = janitor.run_refunds(later()).await.unwrap();
    assert_eq!((pass.sent, pass.checked, pass.finished), (0, 1, 0));
    assert_eq!(
        app.app
            .get(&format!("/v1/refunds/{id}"), &asker)
            .await
            .json()["status"],
        "submitted"
    );
    let pass = janitor.run_refunds(later()).await.unwrap();
    assert_eq!((pass.checked, pass.finished), (1, 1));
    let done = app
        .app
        .get(&format!("/v1/refunds/{id}"), &asker)
        .await
        .json();
    assert_eq!(done["status"], "succeeded", "{done}");
    // The provider refusing (an amount ending in 3) fails it, and gives its amount back.
    let failing = ask(held.clone(), 100_003, "rf-fail".into()).await;
    let failing_id = failing.json()["id"].as_str().unwrap().to_owned();
    let failed = app
        .app
        .post(
            &format!("/v1/refunds/{failing_id}/approve"),
            &approver,
            &json!({}),
        )
        .await
        .json();
    assert_eq!(failed["status"], "failed", "{failed}");
    let rest = ask(held, 650_000 - 50_001, "rf-rest".into()).await;
    assert_eq!(rest.status, 201, "{}", rest.text);
    assert_eq!(
        app.app.count("payment_exceptions").await,
        4,
        "the four overpaid ones"
    );
}
