//! The finance console: sessions, CSRF, idle expiry, revoked keys, scope,
//! the sign-in limit and bad input over plain HTTP; and an officer's day
//! in a real browser (headless Chromium): sign in, read the dashboard (the
//! same figures as the report API), resolve an exception, upload a
//! statement with a bad line, record cash, with an accessibility check of
//! every page. Screenshots of the dashboard and the queue are saved under
//! `target/screenshots/`.

use lephi::domain::audit::Actor;
use lephi::domain::officer::{self, Email, OfficerRole, TotpSecret};
use lephi::domain::{AgencyCode, ApiKeySecret, Role, Scope};
use lephi::store::NewOfficer;
use serde_json::{Value, json};

use crate::browser::{Browser, screenshot_path};
use crate::helpers::{Backend, PaymentsApp, TestApp, spawn_payments_app, spawn_payments_app_with};
use crate::on_both_backends;
use crate::payments::{rsp_code, sepay_auth, sepay_transfer, vnpay_attempt, vnpay_ipn_paid_at};

on_both_backends!(
    signing_in_gives_a_session_and_signing_out_ends_it,
    a_paid_invoices_payment_is_refunded_from_the_invoices_page,
    forms_without_the_sessions_token_or_from_elsewhere_are_refused,
    idle_sessions_and_sessions_of_revoked_keys_end,
    another_agencys_data_is_never_shown,
    wrong_keys_are_rate_limited,
    bad_input_never_gets_a_server_error,
    the_dashboard_shows_the_report_apis_figures_and_exports,
    uploads_import_a_register_or_refuse_its_bad_line,
    uploads_and_sign_out_need_the_session_and_its_token,
    a_statement_upload_is_streamed_kept_only_when_taken_and_followed_to_its_end,
    the_language_toggle_of_a_forms_answer_leads_to_a_page,
    a_refused_resolution_is_shown_again_with_why,
    an_invoices_payments_and_found_invoices_download_as_csv,
    cash_recorded_twice_from_one_form_is_recorded_once,
    an_officer_works_the_console_in_a_browser,
    a_double_payment_is_refunded_from_the_console_by_two_officers,
);

/// A client that keeps redirects for the test to see.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) text: String,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("the app answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap_or_default(),
    }
}

impl Answer {
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// A signed-in console session, as a browser holds it.
pub(crate) struct Session {
    address: String,
    client: reqwest::Client,
    cookie: String,
}

impl Session {
    /// The session of `cookie` (`lephi_console=...`).
    pub(crate) fn of(app: &TestApp, cookie: &str) -> Session {
        Session {
            address: app.address.clone(),
            client: client(),
            cookie: cookie.to_owned(),
        }
    }

    /// The value of the field `name` on the page at `path`.
    pub(crate) async fn field(&self, path: &str, name: &str) -> String {
        field_value(&self.get(path).await.text, name)
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        answer(
            self.client
                .get(format!("{}{path}", self.address))
                .header("cookie", &self.cookie),
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        answer(
            self.client
                .post(format!("{}{path}", self.address))
                .header("cookie", &self.cookie)
                .form(form),
        )
        .await
    }

    /// The CSRF token of the session, read from a page's hidden field.
    pub(crate) async fn csrf(&self) -> String {
        let page = self.get("/console/uploads").await;
        assert_eq!(page.status, 200, "{}", page.text);
        field_value(&page.text, "csrf")
    }
}

/// The value of the first input named `name` on a page.
pub(crate) fn field_value(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no field {name} in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn sign_in_answer(app: &PaymentsApp, key: &str) -> Answer {
    answer(
        client()
            .post(format!("{}/console", app.app.address))
            .form(&[("key", key)]),
    )
    .await
}

/// The password every officer of these tests has.
pub(crate) const PASSWORD: &str = "mây trắng bay qua núi 2026";

static NEXT_OFFICER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Creates an officer of `role` working on `agency` (the whole service
/// when none); returns their email.
pub(crate) async fn new_officer(app: &TestApp, role: OfficerRole, agency: Option<&str>) -> String {
    let n = NEXT_OFFICER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let email = Email::parse("email", &format!("can.bo{n}@stc.example.gov.vn")).unwrap();
    let agency = agency.map(|code| AgencyCode::parse("agency", code).unwrap());
    app.store
        .create_officer(
            &Actor::system("test"),
            &Scope::All,
            &NewOfficer {
                email: &email,
                name: &format!("Nguyễn Thị Hoa {n}"),
                role,
                agency: agency.as_ref(),
                password_hash: &officer::hash_password(PASSWORD),
            },
        )
        .await
        .unwrap();
    email.as_str().to_owned()
}

/// An officer with the role and agency of `key`, a finance or admin key.
async fn officer_like(app: &TestApp, key: &str) -> String {
    let principal = app
        .store
        .authenticate(&ApiKeySecret::from_presented(key).unwrap().hash())
        .await
        .unwrap()
        .expect("a valid key");
    let role = match principal.role {
        Role::Admin => OfficerRole::Admin,
        _ => OfficerRole::Finance,
    };
    let agency = match &principal.scope {
        Scope::Subtree { code, .. } => Some(code.as_str().to_owned()),
        Scope::All => None,
    };
    new_officer(app, role, agency.as_deref()).await
}

/// The answer to signing in with `email` and `password` (and `code`).
pub(crate) async fn officer_sign_in_answer(
    app: &TestApp,
    email: &str,
    password: &str,
    code: &str,
) -> Answer {
    answer(client().post(format!("{}/console", app.address)).form(&[
        ("email", email),
        ("password", password),
        ("code", code),
    ]))
    .await
}

/// The session cookie an answer sets.
pub(crate) fn cookie_of(answer: &Answer) -> String {
    let set_cookie = answer.headers["set-cookie"].to_str().unwrap();
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The code of `secret` (base32) for the time step after the current one:
/// one a first code of the current step has not used yet.
pub(crate) fn next_code(secret: &str) -> String {
    let step = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap() / 30;
    TotpSecret::from_base32(secret)
        .unwrap()
        .code_at_step(step + 1)
}

/// Signs in as officer `email`; one who must set up a second factor does
/// so, from the secret the enrolment page shows. Returns the session and
/// the second factor's secret, if one was set up.
pub(crate) async fn sign_in_as(app: &TestApp, email: &str) -> (Session, Option<String>) {
    sign_in_with(app, email, PASSWORD).await
}

/// As [`sign_in_as`], with `password`.
pub(crate) async fn sign_in_with(
    app: &TestApp,
    email: &str,
    password: &str,
) -> (Session, Option<String>) {
    let signed_in = officer_sign_in_answer(app, email, password, "").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    let session = Session {
        address: app.address.clone(),
        client: client(),
        cookie: cookie_of(&signed_in),
    };
    if signed_in.location() == "/console/dashboard" {
        return (session, None);
    }
    assert_eq!(signed_in.location(), "/console/second-factor");
    let page = session.get("/console/second-factor").await;
    assert_eq!(page.status, 200, "{}", page.text);
    let at = page
        .text
        .find("<code id=\"secret\">")
        .expect("the secret is shown")
        + 18;
    let secret = page.text[at..at + page.text[at..].find('<').unwrap()].to_owned();
    let csrf = field_value(&page.text, "csrf");
    let step = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap() / 30;
    let code = TotpSecret::from_base32(&secret).unwrap().code_at_step(step);
    let confirmed = session
        .post(
            "/console/second-factor",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(confirmed.status, 303, "{}", confirmed.text);
    assert_eq!(confirmed.location(), "/console/dashboard");
    (session, Some(secret))
}

/// Signs in as a new officer with the role and agency of `key`.
pub(crate) async fn sign_in(app: &PaymentsApp, key: &str) -> Session {
    let email = officer_like(&app.app, key).await;
    sign_in_as(&app.app, &email).await.0
}

async fn signing_in_gives_a_session_and_signing_out_ends_it(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let page = answer(client().get(format!("{}/console", app.app.address))).await;
    assert_eq!(page.status, 200);
    assert!(page.text.starts_with("<!doctype html><html lang=\"vi\">"));
    assert!(
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let english = answer(client().get(format!("{}/console?lang=en", app.app.address))).await;
    assert!(english.text.contains("<html lang=\"en\">") && english.text.contains("API key"));

    // Before any officer exists, an admin key signs in (the first run);
    // wrong keys, a finance key and a dossier system's do not.
    assert_eq!(sign_in_answer(&app, "lp_wrong").await.status, 401);
    assert_eq!(sign_in_answer(&app, "").await.status, 401);
    for key in [&app.system_key, &app.finance_key] {
        let refused = sign_in_answer(&app, key).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert!(refused.headers.get("set-cookie").is_none());
    }
    let first_run = sign_in_answer(&app, &app.app.admin_key).await;
    assert_eq!(first_run.status, 303, "{}", first_run.text);
    assert_eq!(first_run.location(), "/console/dashboard");
    let admin = Session {
        address: app.app.address.clone(),
        client: client(),
        cookie: cookie_of(&first_run),
    };
    assert_eq!(admin.get("/console/dashboard").await.status, 200);
    let csrf = admin.csrf().await;
    assert_eq!(
        admin
            .post("/console/sign-out", &[("csrf", &csrf)])
            .await
            .status,
        303
    );
    // Once an officer exists, officers sign in as themselves.
    let email = officer_like(&app.app, &app.finance_key).await;
    let key_now = sign_in_answer(&app, &app.app.admin_key).await;
    assert_eq!(key_now.status, 403, "{}", key_now.text);
    assert!(
        key_now.text.contains("email và mật khẩu"),
        "{}",
        key_now.text
    );
    let wrong = officer_sign_in_answer(&app.app, &email, "not the password at all", "").await;
    assert_eq!(wrong.status, 401, "{}", wrong.text);
    assert!(wrong.headers.get("set-cookie").is_none());

    let signed_in = officer_sign_in_answer(&app.app, &email, PASSWORD, "").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    let cookie = signed_in.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("lephi_console="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // Served over http here: not Secure. The key is nowhere in the cookie,
    // and the database keeps only the token's hash.
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(!cookie.contains(PASSWORD));
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("lephi_console=")
        .to_owned();
    let pool = app.app.raw_pool().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM console_sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], token);
    assert_eq!(stored[0].len(), 64);

    let session = Session {
        address: app.app.address.clone(),
        client: client(),
        cookie: cookie.split(';').next().unwrap().to_owned(),
    };
    let dashboard = session.get("/console/dashboard").await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.text);
    assert_eq!(
        session.get("/console").await.location(),
        "/console/dashboard"
    );
    // Without the cookie: to the sign-in page.
    let anonymous = answer(client().get(format!("{}/console/dashboard", app.app.address))).await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.location(), "/console");

    let csrf = session.csrf().await;
    let out = session.post("/console/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.text);
    assert!(
        out.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(session.get("/console/dashboard").await.status, 303);
    assert_eq!(app.app.count("console_sessions").await, 0);
    // The sign-ins were audited, by name.
    let audit = app
        .app
        .get("/v1/audit?action=console.signed_in", &app.app.admin_key)
        .await
        .json();
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{audit}");
    assert!(
        items[0]["actor"].as_str().unwrap().starts_with("officer:"),
        "{audit}"
    );
    assert_eq!(
        items[0]["actor_name"],
        format!(
            "Nguyễn Thị Hoa {} <{email}>",
            email
                .trim_start_matches("can.bo")
                .split('@')
                .next()
                .unwrap()
        )
    );
    assert!(
        items[1]["actor"].as_str().unwrap().starts_with("key:"),
        "{audit}"
    );
    // Signing in again from a browser that holds a session ends that one:
    // a cookie planted before sign-in is never the one signed in.
    let (first, _) = sign_in_as(&app.app, &email).await;
    let again = answer(
        client()
            .post(format!("{}/console", app.app.address))
            .header("cookie", &first.cookie)
            .form(&[("email", email.as_str()), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(again.status, 303, "{}", again.text);
    let second = again.headers["set-cookie"].to_str().unwrap();
    assert!(!second.starts_with(&first.cookie), "{second}");
    assert_eq!(first.get("/console/dashboard").await.status, 303);
    assert_eq!(app.app.count("console_sessions").await, 1);
}

/// An invoice of P.D1 paid by a transfer over the total: an `overpaid`
/// exception of P.D1 for the 50,000 đồng beyond it. Returns the invoice
/// and the exception's id.
pub(crate) async fn overpaid_transfer(
    app: &PaymentsApp,
    dossier: &str,
    id: i64,
) -> (Value, String) {
    let invoice = app.invoice(dossier).await;
    let code = invoice["payment_code"].as_str().unwrap();
    let sent = app
        .callback(
            "sepay",
            "",
            sepay_transfer(id, 700_000, &format!("NOP PHI {code}")),
            &[("Authorization", &sepay_auth())],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let exceptions = app
        .app
        .get("/v1/exceptions?kind=overpaid", &app.finance_key)
        .await
        .json();
    let exception = exceptions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["invoice_id"] == invoice["id"])
        .expect("the transfer raised an exception")
        .clone();
    (invoice, exception["id"].as_str().unwrap().to_owned())
}

async fn forms_without_the_sessions_token_or_from_elsewhere_are_refused(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, exception) = overpaid_transfer(&app, "HS-CSRF", 9101).await;
    let session = sign_in(&app, &app.finance_key).await;
    let other = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let others_csrf = other.csrf().await;
    assert_ne!(csrf, others_csrf);
    let path = format!("/console/exceptions/{exception}/resolve");
    // No token, an empty one, another session's.
    for token in [None, Some(""), Some(others_csrf.as_str())] {
        let mut fields = vec![("resolution", "confirmed"), ("note", "ok")];
        if let Some(token) = token {
            fields.push(("csrf", token));
        }
        let refused = session.post(&path, &fields).await;
        assert_eq!(refused.status, 403, "{token:?}: {}", refused.text);
    }
    // The right token from another origin.
    let fields = [
        ("resolution", "confirmed"),
        ("note", "ok"),
        ("csrf", csrf.as_str()),
    ];
    for (header, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let refused = answer(
            session
                .client
                .post(format!("{}{path}", app.app.address))
                .header("cookie", &session.cookie)
                .header(header, value)
                .form(&fields),
        )
        .await;
        assert_eq!(refused.status, 403, "{header}: {}", refused.text);
    }
    // Signing in from another origin is refused too.
    let forged = answer(
        client()
            .post(format!("{}/console", app.app.address))
            .header("origin", "https://evil.example")
            .form(&[("key", app.finance_key.as_str())]),
    )
    .await;
    assert_eq!(forged.status, 403);
    let still_open = app
        .app
        .get(&format!("/v1/exceptions/{exception}"), &app.finance_key)
        .await;
    assert_eq!(still_open.json()["status"], "open");
    // With its own token, from its own origin: resolved.
    let resolved = answer(
        session
            .client
            .post(format!("{}{path}", app.app.address))
            .header("cookie", &session.cookie)
            .header("origin", &app.app.address)
            .form(&fields),
    )
    .await;
    assert_eq!(resolved.status, 303, "{}", resolved.text);
    let after = app
        .app
        .get(&format!("/v1/exceptions/{exception}"), &app.finance_key)
        .await
        .json();
    assert_eq!(after["status"], "resolved");
    assert_eq!(after["resolution"]["resolution"], "confirmed");
    // The decision names the officer who made it.
    assert!(
        after["resolution"]["resolved_by"]
            .as_str()
            .unwrap()
            .starts_with("officer:")
    );
    let name = after["resolution"]["resolved_by_name"].as_str().unwrap();
    assert!(
        name.starts_with("Nguyễn Thị Hoa ") && name.ends_with("@stc.example.gov.vn>"),
        "{name}"
    );
    let page = session
        .get(&format!("/console/exceptions/{exception}"))
        .await;
    assert!(
        page.text
            .contains(&name.replace('<', "&lt;").replace('>', "&gt;")),
        "{}",
        page.text
    );
}

async fn idle_sessions_and_sessions_of_revoked_keys_end(backend: Backend) {
    let app = spawn_payments_app_with(backend, |s| {
        s.console.idle_minutes = 1;
        s.server.public_url = Some("https://thanhtoan.example.gov.vn".into());
    })
    .await;
    // Served over https: the cookie is Secure.
    let email = officer_like(&app.app, &app.finance_key).await;
    let secure = officer_sign_in_answer(&app.app, &email, PASSWORD, "").await;
    let cookie = secure.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // And browsers are told to keep to https, on every answer.
    assert_eq!(
        secure.headers["strict-transport-security"],
        "max-age=31536000"
    );
    let health = app
        .app
        .client
        .get(format!("{}/health/live", app.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let session = sign_in(&app, &app.finance_key).await;
    assert_eq!(session.get("/console/dashboard").await.status, 200);
    // Two minutes without use.
    let pool = app.app.raw_pool().await;
    let past = lephi::domain::Timestamp::now()
        .plus(time::Duration::minutes(-2))
        .unwrap()
        .to_stored();
    sqlx::query("UPDATE console_sessions SET last_seen_at = $1")
        .bind(&past)
        .execute(&pool)
        .await
        .unwrap();
    let expired = session.get("/console/dashboard").await;
    assert_eq!(expired.status, 303);
    assert_eq!(expired.location(), "/console");
    // Both sessions were idle; the one used is gone at once, the other
    // when the next officer signs in.
    let left = app.app.count("console_sessions").await;
    assert_eq!(left, 1);

    // Disabling the officer ends their sessions.
    let (session, _) = sign_in_as(&app.app, &email).await;
    assert_eq!(session.get("/console/exceptions").await.status, 200);
    let officer_id: String = sqlx::query_scalar("SELECT officer_id FROM console_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    app.app
        .store
        .disable_officer(&Actor::system("test"), &Scope::All, &officer_id)
        .await
        .unwrap();
    assert_eq!(session.get("/console/exceptions").await.status, 303);
    let disabled = officer_sign_in_answer(&app.app, &email, PASSWORD, "").await;
    assert_eq!(disabled.status, 403, "{}", disabled.text);
    assert!(disabled.text.contains("vô hiệu hoá"), "{}", disabled.text);
}

async fn another_agencys_data_is_never_shown(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, exception) = overpaid_transfer(&app, "HS-SCOPE", 9201).await;
    let code = invoice["payment_code"].as_str().unwrap();
    let id = invoice["id"].as_str().unwrap();
    let q_key = app.app.key(Role::Finance, "Q").await;
    let q = sign_in(&app, &q_key).await;
    let csrf = q.csrf().await;
    for path in [
        format!("/console/exceptions/{exception}"),
        format!("/console/invoices/{id}"),
    ] {
        let hidden = q.get(&path).await;
        assert_eq!(hidden.status, 404, "{path}: {}", hidden.text);
        assert!(!hidden.text.contains(code));
    }
    let resolve = q
        .post(
            &format!("/console/exceptions/{exception}/resolve"),
            &[("resolution", "confirmed"), ("note", "x"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(resolve.status, 404, "{}", resolve.text);
    let cash = q
        .post(
            &format!("/console/invoices/{id}/cash"),
            &[
                ("amount", "650000"),
                ("receipt_number", "R-1"),
                ("received_at", "2026-11-01T09:00"),
                ("idempotency_key", "k-1"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(cash.status, 404, "{}", cash.text);
    let queue = q.get("/console/exceptions?status=all").await;
    assert_eq!(queue.status, 200);
    assert!(!queue.text.contains(&exception) && !queue.text.contains("P.D1"));
    let search = q.get(&format!("/console/payments?q={code}")).await;
    assert!(
        search.text.contains("id=\"found-count\">0<"),
        "{}",
        search.text
    );
    let named = q.get("/console/payments?agency=P.D1").await;
    assert_eq!(named.status, 404, "{}", named.text);
    // P's officer sees them.
    let p = sign_in(&app, &app.finance_key).await;
    assert_eq!(
        p.get(&format!("/console/exceptions/{exception}"))
            .await
            .status,
        200
    );
    let found = p.get(&format!("/console/payments?q={code}")).await;
    assert!(
        found.text.contains("id=\"found-count\">1<"),
        "{}",
        found.text
    );
}

async fn wrong_keys_are_rate_limited(backend: Backend) {
    let app = spawn_payments_app_with(backend, |s| s.console.sign_in_attempts_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(sign_in_answer(&app, "lp_guess").await.status, 401);
    }
    let limited = sign_in_answer(&app, "lp_guess").await;
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert!(limited.headers.contains_key("retry-after"));
    assert!(limited.text.contains("<html lang=\"vi\">"));
    // Until the minute is over, even the right key waits.
    assert_eq!(sign_in_answer(&app, &app.finance_key).await.status, 429);
}

async fn bad_input_never_gets_a_server_error(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let session = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let long = "x".repeat(5000);
    for path in [
        "/console/dashboard?period=custom&from=2026-13-01&to=2026-01-01".to_owned(),
        "/console/dashboard?period=custom&from=2026-02-01".to_owned(),
        "/console/dashboard?period=custom&from=2026-05-01&to=2026-01-01".to_owned(),
        "/console/dashboard?period=custom&from=x&to=%00&format=csv".to_owned(),
        "/console/dashboard?lang=%FF%FE".to_owned(),
        "/console/exceptions?kind=nope&status=maybe".to_owned(),
        "/console/exceptions?from=yesterday&agency=%00".to_owned(),
        "/console/exceptions?cursor=%27%3B--".to_owned(),
        format!("/console/exceptions/{long}"),
        "/console/exceptions/%00".to_owned(),
        "/console/payments?q=%00".to_owned(),
        format!("/console/payments?q={long}"),
        "/console/payments?level=planet&from=9999-99-99".to_owned(),
        "/console/payments?agency=../../etc".to_owned(),
        "/console/invoices/does-not-exist".to_owned(),
    ] {
        let answer = session.get(&path).await;
        assert!(
            answer.status < 500,
            "{path}: {} {}",
            answer.status,
            answer.text
        );
        assert!(
            answer.status != 200 || path.contains("lang=") || path.contains("cursor="),
            "{path}: {}",
            answer.status
        );
        assert!(
            answer.text.contains("<html lang="),
            "{path}: {}",
            answer.text
        );
    }
    let invoice = app.invoice("HS-BAD").await;
    let id = invoice["id"].as_str().unwrap();
    for (path, form) in [
        (
            format!("/console/invoices/{id}/cash"),
            vec![
                ("amount", "-5"),
                ("receipt_number", "R"),
                ("received_at", "2026-11-01T09:00"),
                ("idempotency_key", "k"),
            ],
        ),
        (
            format!("/console/invoices/{id}/cash"),
            vec![
                ("amount", "650000"),
                ("receipt_number", "R"),
                ("received_at", "2099-01-01T00:00"),
                ("idempotency_key", "k2"),
            ],
        ),
        (
            format!("/console/invoices/{id}/cash"),
            vec![
                ("amount", "abc"),
                ("receipt_number", ""),
                ("received_at", "x"),
            ],
        ),
        (
            "/console/exceptions/nope/resolve".to_owned(),
            vec![("resolution", "bribe"), ("note", "")],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let answer = session.post(&path, &form).await;
        assert!(
            (400..500).contains(&answer.status),
            "{path}: {} {}",
            answer.status,
            answer.text
        );
    }
    // Uploads that are not forms, or forms without a file.
    for (content_type, body) in [
        ("text/plain", b"hello".to_vec()),
        (
            "multipart/form-data; boundary=X",
            b"--X\r\nnonsense".to_vec(),
        ),
        (
            "multipart/form-data; boundary=X",
            format!(
                "--X\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--X--\r\n"
            )
            .into_bytes(),
        ),
    ] {
        for path in ["/console/uploads/statement", "/console/uploads/register"] {
            let answer = answer(
                session
                    .client
                    .post(format!("{}{path}", app.app.address))
                    .header("cookie", &session.cookie)
                    .header("content-type", content_type)
                    .body(body.clone()),
            )
            .await;
            assert!(
                (400..500).contains(&answer.status),
                "{path}: {} {}",
                answer.status,
                answer.text
            );
        }
    }
    // An invoice that stays unpaid.
    assert_eq!(app.invoice_now(id).await["status"], "open");
}

/// A multipart form with `fields` and a file `file`, as a browser sends it.
fn multipart(fields: &[(&str, &str)], file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----ConsoleTestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"register.csv\"\r\nContent-Type: text/csv\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn uploads_import_a_register_or_refuse_its_bad_line(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let session = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let upload = |file: &'static str| {
        let (content_type, body) = multipart(&[("csrf", &csrf)], file.as_bytes());
        session
            .client
            .post(format!("{}/console/uploads/register", app.app.address))
            .header("cookie", &session.cookie)
            .header("content-type", content_type)
            .body(body)
    };
    let header = "dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n";
    let bad = format!(
        "{header}HS-R1,P.D1,1.004227,650000,2026-10-01T08:30:00+07:00,received\n\
         HS-R2,P.D1,1.004227,lots,2026-10-01T08:30:00+07:00,received\n"
    );
    let queued = answer(upload(Box::leak(bad.into_boxed_str()))).await;
    let refused = job_page(&session, &queued, "/console/uploads/registers/").await;
    assert!(
        refused.text.contains("data-status=\"refused\""),
        "{}",
        refused.text
    );
    assert_eq!(figure(&refused.text, "refused-line"), "3");
    assert_eq!(app.app.count("dossiers").await, 0);
    let good = format!(
        "{header}HS-R1,P.D1,1.004227,650000,2026-10-01T08:30:00+07:00,received\n\
         HS-R2,P.D1,1.004227,150000,2026-10-02,received\n"
    );
    let queued = answer(upload(Box::leak(good.into_boxed_str()))).await;
    let imported = job_page(&session, &queued, "/console/uploads/registers/").await;
    assert!(
        imported.text.contains("data-status=\"done\""),
        "{}",
        imported.text
    );
    assert!(imported.text.contains("Đã nhập xong."), "{}", imported.text);
    // Outcomes in Vietnamese words, not codes.
    assert!(imported.text.contains("Chưa nộp"), "{}", imported.text);
    assert!(!imported.text.contains("unpaid"), "{}", imported.text);
    assert_eq!(app.app.count("dossiers").await, 2);
    // Another agency's dossiers are refused, as by the API.
    let other = format!("{header}HS-Q1,Q,1.004227,650000,2026-10-02,received\n");
    let queued = answer(upload(Box::leak(other.into_boxed_str()))).await;
    let refused = job_page(&session, &queued, "/console/uploads/registers/").await;
    assert!(
        refused.text.contains("data-status=\"refused\""),
        "{}",
        refused.text
    );
    assert_eq!(app.app.count("dossiers").await, 2);
}

async fn uploads_and_sign_out_need_the_session_and_its_token(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let session = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let file = "dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n\
                HS-U1,P.D1,1.004227,650000,2026-10-01,received\n";
    let post = |cookie: Option<&str>, fields: &[(&str, &str)], origin: Option<&str>| {
        let (content_type, body) = multipart(fields, file.as_bytes());
        let mut request = session
            .client
            .post(format!("{}/console/uploads/register", app.app.address))
            .header("content-type", content_type)
            .body(body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        answer(request)
    };
    // Signed out: sent to sign in, the file unread.
    let signed_out = post(None, &[("csrf", &csrf)], None).await;
    assert_eq!(signed_out.status, 303, "{}", signed_out.text);
    assert_eq!(signed_out.location(), "/console");
    // No token, a wrong one, or another origin: refused.
    let cookie = Some(session.cookie.as_str());
    for (fields, origin) in [
        (vec![], None),
        (vec![("csrf", "0".repeat(64))], None),
        (vec![("csrf", csrf.clone())], Some("https://evil.example")),
    ] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = post(cookie, &fields, origin).await;
        assert_eq!(refused.status, 403, "{fields:?}: {}", refused.text);
    }
    assert_eq!(app.app.count("dossiers").await, 0);
    let queued = post(cookie, &[("csrf", &csrf)], Some(&app.app.address)).await;
    let imported = job_page(&session, &queued, "/console/uploads/registers/").await;
    assert!(
        imported.text.contains("data-status=\"done\""),
        "{}",
        imported.text
    );
    assert_eq!(app.app.count("dossiers").await, 1);
    // Signing out without the token leaves the session open.
    for fields in [vec![], vec![("csrf", "x")]] {
        let refused = session.post("/console/sign-out", &fields).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
    }
    assert_eq!(session.get("/console/uploads").await.status, 200);
}

/// The files in the upload folder, partial ones included.
fn files_in(dir: &std::path::Path) -> usize {
    [dir.to_owned(), dir.join("incoming")]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .count()
}

async fn a_statement_upload_is_streamed_kept_only_when_taken_and_followed_to_its_end(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("uploads");
    let app = spawn_payments_app_with(backend, |s| {
        s.reconciliation.upload_dir = uploads.clone();
        s.reconciliation.max_file_bytes = 2_000;
    })
    .await;
    let session = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let post = |csrf: String, file: Vec<u8>| {
        let (content_type, body) = multipart(&[("csrf", &csrf), ("channel", "vnpay")], &file);
        answer(
            session
                .client
                .post(format!("{}/console/uploads/statement", app.app.address))
                .header("cookie", &session.cookie)
                .header("content-type", content_type)
                .body(body),
        )
    };
    let mut file =
        b"provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date\n".to_vec();
    for i in 0..10 {
        file.extend_from_slice(
            format!(
                "{}, R-{i},650000,0,2026-10-01T10:00:00+07:00,2026-10-02\n",
                7100 + i
            )
            .as_bytes(),
        );
    }
    let mut big = file.clone();
    while big.len() <= 2_000 {
        big.extend_from_slice(b"7999,R-X,650000,0,2026-10-01T10:00:00+07:00,2026-10-02\n");
    }
    // Too large: refused with the form, nothing kept.
    let refused = post(csrf.clone(), big).await;
    assert_eq!(refused.status, 413, "{}", refused.text);
    assert!(refused.text.contains("<form"), "{}", refused.text);
    // A forged form: refused, its file not kept.
    let forged = post("0".repeat(64), file.clone()).await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert_eq!(files_in(&uploads), 0);
    assert_eq!(app.app.count("settlement_files").await, 0);
    // Taken: the officer is sent to the import's page, which follows it.
    let queued = post(csrf.clone(), file.clone()).await;
    assert_eq!(queued.status, 303, "{}", queued.text);
    let page = queued.location().to_owned();
    assert!(page.starts_with("/console/uploads/statements/"), "{page}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let shown = session.get(&page).await;
        assert_eq!(shown.status, 200, "{}", shown.text);
        if shown.text.contains("data-status=\"done\"") {
            assert!(shown.headers.get("refresh").is_none());
            break shown;
        }
        assert_eq!(shown.headers["refresh"], "2", "a page that follows its job");
        assert!(std::time::Instant::now() < deadline, "{}", shown.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(done.text.contains("Đã đối soát xong."), "{}", done.text);
    assert_eq!(files_in(&uploads), 0);
    // The import names the officer who uploaded it.
    let id = page
        .trim_start_matches("/console/uploads/statements/")
        .split('?')
        .next()
        .unwrap();
    let import = app
        .app
        .get(&format!("/v1/settlements/{id}"), &app.finance_key)
        .await
        .json();
    assert!(
        import["imported_by"]
            .as_str()
            .unwrap()
            .starts_with("officer:"),
        "{import}"
    );
    assert!(
        import["imported_by_name"]
            .as_str()
            .unwrap()
            .starts_with("Nguyễn Thị Hoa "),
        "{import}"
    );
    // The same file again: its first import, and nothing kept.
    let again = post(csrf, file).await;
    assert_eq!(again.status, 303, "{}", again.text);
    assert!(again.location().starts_with(&page), "{}", again.location());
    assert!(again.location().contains("again=1"), "{}", again.location());
    assert_eq!(files_in(&uploads), 0);
}

async fn a_refused_resolution_is_shown_again_with_why(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, exception) = overpaid_transfer(&app, "HS-REFUSED", 9401).await;
    let session = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let path = format!("/console/exceptions/{exception}");
    let page = session.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.text);
    // The exception's own payment is shown, found by its id.
    assert!(
        page.text.contains("<h2>Khoản thanh toán</h2><dl>"),
        "{}",
        page.text
    );
    // Matched manually without the payment: refused, said why, and the
    // officer's note kept (escaped) for correcting.
    let note = "<b>checked</b> with the bank";
    let refused = session
        .post(
            &format!("{path}/resolve"),
            &[
                ("resolution", "matched_manually"),
                ("note", note),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("id=\"resolve-refused\""),
        "{}",
        refused.text
    );
    assert!(refused.text.contains("payment_id"), "{}", refused.text);
    assert!(
        refused
            .text
            .contains("&lt;b&gt;checked&lt;/b&gt; with the bank</textarea>"),
        "{}",
        refused.text
    );
    assert!(refused.text.contains("value=\"matched_manually\" selected"));
    // Resolved, then resolved again: the second is refused on the page.
    let fields = [("resolution", "confirmed"), ("note", "ok"), ("csrf", &csrf)];
    let resolved = session.post(&format!("{path}/resolve"), &fields).await;
    assert_eq!(resolved.status, 303, "{}", resolved.text);
    let again = session.post(&format!("{path}/resolve"), &fields).await;
    assert!((400..500).contains(&again.status), "{}", again.text);
    assert!(
        again.text.contains("id=\"resolve-refused\""),
        "{}",
        again.text
    );
}

async fn an_invoices_payments_and_found_invoices_download_as_csv(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (invoice, _) = overpaid_transfer(&app, "HS-CSV", 9501).await;
    overpaid_transfer(&app, "HS-CSV-OTHER", 9502).await;
    let id = invoice["id"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();
    let session = sign_in(&app, &app.finance_key).await;
    let page = session.get(&format!("/console/invoices/{id}")).await;
    let href = format!("/console/payments?invoice={id}&amp;format=csv");
    assert!(page.text.contains(&href), "{}", page.text);
    let file = session.get(&href.replace("&amp;", "&")).await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert!(
        file.text
            .starts_with("\u{feff}Mã khoản thu,Ghi nhận lúc,Kênh,"),
        "{}",
        file.text
    );
    assert_eq!(file.text.lines().count(), 2, "{}", file.text);
    assert!(file.text.contains("sepay-9501") && !file.text.contains("sepay-9502"));

    let found = session.get(&format!("/console/payments?q={code}")).await;
    let href = format!("/console/payments?q={code}&amp;table=invoices&amp;format=csv");
    assert!(found.text.contains(&href), "{}", found.text);
    let file = session.get(&href.replace("&amp;", "&")).await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert!(
        file.text.starts_with("\u{feff}Mã yêu cầu thanh toán,"),
        "{}",
        file.text
    );
    assert_eq!(file.text.lines().count(), 2, "{}", file.text);
    assert!(file.text.contains(code) && file.text.contains("HS-CSV"));
    // The payer's phone, however it is written, finds the invoice and its
    // payments.
    for phone in ["0912%20345%20678", "%2B84%20912.345.678", "84912345678"] {
        let invoices = session
            .get(&format!(
                "/console/payments?q={phone}&table=invoices&format=csv"
            ))
            .await;
        // Both of the test's invoices have that payer.
        assert_eq!(
            invoices.text.lines().count(),
            3,
            "{phone}: {}",
            invoices.text
        );
        assert!(invoices.text.contains(code), "{phone}: {}", invoices.text);
        let payments = session
            .get(&format!("/console/payments?q={phone}&format=csv"))
            .await;
        assert!(
            payments.text.contains("sepay-9501"),
            "{phone}: {}",
            payments.text
        );
    }
}

/// Where the page's language toggle leads.
fn toggle(page: &str) -> String {
    let end = page.find("\" hreflang=").expect("a language toggle");
    let start = page[..end].rfind("href=\"").unwrap() + 6;
    page[start..end].replace("&amp;", "&")
}

async fn the_language_toggle_of_a_forms_answer_leads_to_a_page(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let (_, exception) = overpaid_transfer(&app, "HS-LANG", 9301).await;
    let session = sign_in(&app, &app.finance_key).await;
    let csrf = session.csrf().await;
    let invoice = app.invoice("HS-LANG-CASH").await;
    let invoice = invoice["id"].as_str().unwrap();
    let resolve = format!("/console/exceptions/{exception}/resolve");
    let cash = format!("/console/invoices/{invoice}/cash");
    let (content_type, body) = multipart(&[("csrf", &csrf)], b"");
    let upload = answer(
        session
            .client
            .post(format!(
                "{}/console/uploads/statement?lang=en",
                app.app.address
            ))
            .header("cookie", &session.cookie)
            .header("content-type", content_type)
            .body(body),
    )
    .await;
    assert_eq!(upload.status, 400, "{}", upload.text);
    assert_eq!(toggle(&upload.text), "/console/uploads");
    for (path, fields, page) in [
        (
            format!("{resolve}?lang=en"),
            vec![("resolution", "bribe"), ("note", "x")],
            format!("/console/exceptions/{exception}"),
        ),
        (
            resolve.clone(),
            vec![("resolution", "bribe"), ("note", "x")],
            format!("/console/exceptions/{exception}?lang=en"),
        ),
        (
            cash.clone(),
            vec![("amount", "abc")],
            format!("/console/invoices/{invoice}?lang=en"),
        ),
        (
            "/console".to_owned(),
            vec![("key", "lephi_wrong")],
            "/console?lang=en".to_owned(),
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let answer = session.post(&path, &fields).await;
        assert!(
            (400..500).contains(&answer.status),
            "{path}: {}",
            answer.text
        );
        assert_eq!(toggle(&answer.text), page, "{path}");
        // Signed in, the sign-in page sends on to the dashboard.
        let shown = session.get(&page).await;
        assert!([200, 303].contains(&shown.status), "{page}: {}", shown.text);
    }
}

async fn cash_recorded_twice_from_one_form_is_recorded_once(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-CASH").await;
    let id = invoice["id"].as_str().unwrap();
    let session = sign_in(&app, &app.finance_key).await;
    let page = session.get(&format!("/console/invoices/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let csrf = field_value(&page.text, "csrf");
    let key = field_value(&page.text, "idempotency_key");
    assert!(
        page.text
            .contains("name=\"amount\" inputmode=\"numeric\" required value=\"650000\"")
    );
    let form = [
        ("amount", "650.000"),
        ("receipt_number", "BL-7"),
        ("received_at", "2026-11-01T09:00"),
        ("idempotency_key", key.as_str()),
        ("csrf", csrf.as_str()),
    ];
    let path = format!("/console/invoices/{id}/cash");
    let (first, second) = tokio::join!(session.post(&path, &form), session.post(&path, &form));
    for answer in [&first, &second] {
        assert_eq!(answer.status, 303, "{}", answer.text);
        assert_eq!(
            answer.location(),
            format!("/console/invoices/{id}?recorded=1")
        );
    }
    let payments = app
        .app
        .get(&format!("/v1/invoices/{id}/payments"), &app.finance_key)
        .await
        .json();
    assert_eq!(payments["items"].as_array().unwrap().len(), 1, "{payments}");
    assert_eq!(payments["items"][0]["amount"], 650000);
    assert_eq!(payments["items"][0]["source"], "counter");
    let by = payments["items"][0]["recorded_by_name"].as_str().unwrap();
    assert!(
        by.starts_with("Nguyễn Thị Hoa "),
        "the cash names its officer: {payments}"
    );
    assert_eq!(app.invoice_now(id).await["status"], "paid");
    let audit = app
        .app
        .get(
            &format!("/v1/audit?object_type=invoice&object_id={id}"),
            &app.app.admin_key,
        )
        .await
        .json();
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["action"] == "invoice.paid"),
        "{audit}"
    );
    // A paid invoice offers no cash form (but a refund of its payment);
    // an admin key cannot record cash.
    let paid = session.get(&format!("/console/invoices/{id}")).await;
    assert!(!paid.text.contains("name=\"receipt_number\""));
    assert!(paid.text.contains("/refund"), "{}", paid.text);
    let other = app.invoice("HS-CASH-2").await;
    let admin = sign_in(&app, &app.app.admin_key).await;
    let admin_page = admin
        .get(&format!(
            "/console/invoices/{}",
            other["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(admin_page.status, 200);
    assert!(!admin_page.text.contains("name=\"idempotency_key\""));

    // Cash short of what is owed is held, and the console says so plainly.
    let short_id = other["id"].as_str().unwrap();
    let page = session.get(&format!("/console/invoices/{short_id}")).await;
    let (key, csrf) = (
        field_value(&page.text, "idempotency_key"),
        field_value(&page.text, "csrf"),
    );
    let form = [
        ("amount", "50.000"),
        ("receipt_number", "BL-8"),
        ("received_at", "2026-11-01T09:30"),
        ("idempotency_key", key.as_str()),
        ("csrf", csrf.as_str()),
    ];
    let held = session
        .post(&format!("/console/invoices/{short_id}/cash"), &form)
        .await;
    assert_eq!(held.status, 303, "{}", held.text);
    assert_eq!(
        held.location(),
        format!("/console/invoices/{short_id}?recorded=held").as_str()
    );
    let told = session.get(held.location()).await;
    assert!(
        told.text.contains("class=\"message held\""),
        "{}",
        told.text
    );
    assert!(
        told.text
            .contains("chưa được ghi cho hồ sơ: hồ sơ chưa được nộp"),
        "{}",
        told.text
    );
    assert!(!told.text.contains("Đã ghi nhận khoản tiền mặt cho hồ sơ."));
    assert_eq!(app.invoice_now(short_id).await["status"], "open");
}

/// Pays two invoices of P.D1 through VNPay in October 2026 and one in cash;
/// one transfer of the wrong amount makes an exception.
async fn seed_payments(app: &PaymentsApp) -> Value {
    for (i, day) in [(0, "20261005"), (1, "20261020")] {
        let (_, attempt) = vnpay_attempt(app, &format!("HS-V{i}")).await;
        let order_ref = attempt["order_ref"].as_str().unwrap();
        let ipn = vnpay_ipn_paid_at(
            order_ref,
            650_000,
            &format!("1500{i}"),
            "00",
            &format!("{day}100000"),
        );
        assert_eq!(
            rsp_code(&app.callback("vnpay", &ipn, vec![], &[]).await),
            "00"
        );
    }
    let cash = app.invoice("HS-C").await;
    let recorded = app
        .app
        .request(
            reqwest::Method::POST,
            &format!("/v1/invoices/{}/cash-payments", cash["id"].as_str().unwrap()),
            Some(&app.finance_key),
            Some(&json!({ "amount": 650000, "receipt_number": "BL-1", "received_at": "2026-10-10T09:00:00+07:00" })),
            &[("Idempotency-Key", "cash-1")],
        )
        .await;
    assert_eq!(recorded.status, 201, "{}", recorded.text);
    app.app
        .get(
            "/v1/reports/cashless?from=2026-10-01&to=2026-10-31",
            &app.finance_key,
        )
        .await
        .json()
}

/// The text of the element with `id` on a page (its link's text).
fn figure(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no {id} on the page"));
    let rest = &page[at + id.len() + 6..];
    rest[..rest.find('<').unwrap()].to_owned()
}

fn dong(amount: &Value) -> String {
    // As the pages show amounts: Vietnamese thousands dots and ₫.
    let digits = amount.as_i64().unwrap().to_string();
    let mut shown = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            shown.push('.');
        }
        shown.push(c);
    }
    format!("{shown} ₫")
}

async fn the_dashboard_shows_the_report_apis_figures_and_exports(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let report = seed_payments(&app).await;
    let total = &report["total"];
    assert_eq!(total["total_count"], 3, "{report:#}");
    let session = sign_in(&app, &app.finance_key).await;
    let page = session
        .get("/console/dashboard?period=custom&from=2026-10-01&to=2026-10-31")
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(
        figure(&page.text, "total-rate-by-amount"),
        format!(
            "{} %",
            total["rate_by_amount"].as_str().unwrap().replace('.', ",")
        )
    );
    assert_eq!(
        figure(&page.text, "total-rate-by-count"),
        format!(
            "{} %",
            total["rate_by_count"].as_str().unwrap().replace('.', ",")
        )
    );
    assert_eq!(
        figure(&page.text, "total-cashless-amount"),
        dong(&total["cashless_amount"])
    );
    assert_eq!(
        figure(&page.text, "total-cash-amount"),
        dong(&total["cash_amount"])
    );
    assert_eq!(
        figure(&page.text, "total-total-amount"),
        dong(&total["total_amount"])
    );
    assert_eq!(
        figure(&page.text, "total-cashless-count"),
        total["cashless_count"].to_string()
    );
    assert_eq!(
        figure(&page.text, "total-total-count"),
        total["total_count"].to_string()
    );
    assert!(page.text.contains("role=\"img\""));
    assert!(page.text.contains("<title id=\"chart-month\">"));
    assert!(!page.text.contains("<script") && !page.text.contains("https://"));

    // The payments behind a figure add up to it.
    let href = {
        let at = page.text.find("id=\"total-cashless-amount\"").unwrap();
        let start = page.text[..at].rfind("href=\"").unwrap() + 6;
        page.text[start..at - 2].replace("&amp;", "&")
    };
    let behind = session.get(&href).await;
    assert_eq!(behind.status, 200, "{href}: {}", behind.text);
    assert_eq!(
        figure(&behind.text, "found-count"),
        total["cashless_count"].to_string()
    );
    assert_eq!(
        figure(&behind.text, "found-amount"),
        dong(&total["cashless_amount"])
    );

    // Exports: the report API's own CSV, and the tables', for Excel.
    let csv = session
        .get("/console/dashboard?period=custom&from=2026-10-01&to=2026-10-31&format=csv&group_by=agency")
        .await;
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let api_csv = app
        .app
        .get(
            "/v1/reports/cashless?from=2026-10-01&to=2026-10-31&group_by=agency&format=csv",
            &app.finance_key,
        )
        .await;
    // In Vietnamese its headers, names and rates are the officer's; in
    // English it is the API's file.
    assert_eq!(csv.text.lines().count(), api_csv.text.lines().count());
    assert!(
        csv.text.starts_with("\u{feff}Mã cơ quan,Tên cơ quan,Cấp,"),
        "{}",
        csv.text
    );
    assert!(csv.text.contains("\r\nTổng,"), "{}", csv.text);
    let english = session
        .get("/console/dashboard?period=custom&from=2026-10-01&to=2026-10-31&format=csv&group_by=agency&lang=en")
        .await;
    assert_eq!(english.text, api_csv.text);
    for path in [
        "/console/payments?format=csv",
        "/console/exceptions?format=csv&status=all",
    ] {
        let file = session.get(path).await;
        assert_eq!(file.status, 200, "{path}");
        assert!(file.text.starts_with('\u{feff}'), "{path}");
        assert!(
            file.headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains("attachment")
        );
    }
    let payments = session.get("/console/payments?format=csv").await;
    assert_eq!(payments.text.lines().count(), 4, "{}", payments.text);
}

/// A page's accessibility, checked in the browser: the `lang`, one `h1`
/// and no skipped heading level, a label for every field, every control
/// reached by Tab with a visible focus, and the CSS colours' contrast.
pub(crate) async fn check_accessibility(browser: &Browser, lang: &str) {
    let url = browser.current_url().await;
    let facts = browser
        .execute(
            "const fields = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')];
             const unlabelled = fields.filter(f => !(f.id && document.querySelector(`label[for='${f.id}']`)) && !f.getAttribute('aria-label')).map(f => f.outerHTML);
             const levels = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]);
             const skipped = levels.some((l, i) => i > 0 && l > levels[i - 1] + 1);
             const controls = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')];
             controls.forEach((c, i) => c.setAttribute('data-control', i));
             return { lang: document.documentElement.lang, h1: levels.filter(l => l === 1).length,
                      skipped, unlabelled, controls: controls.length,
                      css: [...document.querySelectorAll('style')].map(s => s.textContent).join('') };",
        )
        .await;
    assert_eq!(facts["lang"], lang, "{url}");
    assert_eq!(facts["h1"], 1, "{url}");
    assert_eq!(facts["skipped"], false, "{url}");
    assert_eq!(facts["unlabelled"], json!([]), "{url}");
    // Tab through the page: every control is reached, each with an outline.
    let controls = facts["controls"].as_u64().unwrap();
    let mut reached = std::collections::BTreeSet::new();
    browser
        .execute("document.activeElement && document.activeElement.blur(); return null;")
        .await;
    // A date field takes a Tab for each of its parts.
    for _ in 0..controls * 3 + 3 {
        if reached.len() as u64 == controls {
            break;
        }
        browser.press_tab().await;
        let focused = browser
            .execute(
                "const a = document.activeElement;
                 if (!a || !a.hasAttribute('data-control')) return null;
                 const s = getComputedStyle(a);
                 return { i: +a.getAttribute('data-control'), outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0, style: s.outlineStyle, width: s.outlineWidth, html: a.outerHTML, focus: a.matches(':focus') };",
            )
            .await;
        if let Some(i) = focused["i"].as_u64() {
            assert_eq!(
                focused["outline"], true,
                "{url}: control {i} has no focus style: {focused}"
            );
            reached.insert(i);
        }
    }
    assert_eq!(
        reached.len() as u64,
        controls,
        "{url}: reached {reached:?} of {controls}"
    );
    check_contrast(facts["css"].as_str().unwrap(), &url);
}

/// Every text colour in the CSS against its own background, or against the
/// page's (white cards on a light grey body): at least 4.5:1.
fn check_contrast(css: &str, url: &str) {
    fn channel(c: u8) -> f64 {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }
    fn luminance(hex: &str) -> f64 {
        let hex = hex.trim_start_matches('#');
        let hex = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect::<String>()
        } else {
            hex.to_owned()
        };
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
        0.2126 * channel(byte(0)) + 0.7152 * channel(byte(2)) + 0.0722 * channel(byte(4))
    }
    fn ratio(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
    fn colour(declarations: &str, property: &str) -> Option<String> {
        declarations.split(';').find_map(|d| {
            let (name, value) = d.split_once(':')?;
            (name.trim() == property && value.trim().starts_with('#'))
                .then(|| value.trim().to_owned())
        })
    }
    let mut checked = 0;
    for rule in css.split('}') {
        let Some((selector, declarations)) = rule.rsplit_once('{') else {
            continue;
        };
        let Some(foreground) = colour(declarations, "color") else {
            continue;
        };
        let backgrounds = match colour(declarations, "background") {
            Some(background) => vec![background],
            None => vec!["#fff".to_owned(), "#f4f5f7".to_owned()],
        };
        for background in backgrounds {
            let r = ratio(&foreground, &background);
            assert!(
                r >= 4.5,
                "{url}: {selector} {foreground} on {background} is {r:.2}:1"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "{url}: only {checked} colours found in {css}");
}

fn shot(backend: Backend, what: &str) -> std::path::PathBuf {
    let backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    screenshot_path(&format!("console-{what}-{backend}.png"))
}

async fn an_officer_works_the_console_in_a_browser(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let report = seed_payments(&app).await;
    let (_, exception) = overpaid_transfer(&app, "HS-X", 9301).await;
    let open = app.invoice("HS-OPEN").await;
    let (_, attempt) = vnpay_attempt(&app, "HS-STMT").await;
    let order_ref = attempt["order_ref"].as_str().unwrap().to_owned();
    let base = &app.app.address;

    let browser = Browser::start(1280, 900).await;
    browser.goto(&format!("{base}/console")).await;
    check_accessibility(&browser, "vi").await;
    let email = officer_like(&app.app, &app.finance_key).await;
    browser.type_into("#email", &email).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for_text("Tỷ lệ thu phí không dùng tiền mặt")
        .await;
    assert!(browser.current_url().await.ends_with("/console/dashboard"));

    // The dashboard for October: the report API's figures.
    browser
        .goto(&format!(
            "{base}/console/dashboard?period=custom&from=2026-10-01&to=2026-10-31"
        ))
        .await;
    let total = &report["total"];
    assert_eq!(
        browser.element_text("#total-rate-by-amount").await,
        format!(
            "{} %",
            total["rate_by_amount"].as_str().unwrap().replace('.', ",")
        )
    );
    assert_eq!(
        browser.element_text("#rate-by-count").await,
        format!(
            "{} %",
            total["rate_by_count"].as_str().unwrap().replace('.', ",")
        )
    );
    assert_eq!(
        browser.element_text("#total-total-amount").await,
        dong(&total["total_amount"])
    );
    browser
        .find("svg[role=img][aria-labelledby=chart-month]")
        .await;
    browser.screenshot(&shot(backend, "dashboard")).await;
    check_accessibility(&browser, "vi").await;
    // The English toggle.
    browser
        .goto(&format!("{base}/console/dashboard?lang=en"))
        .await;
    browser
        .wait_for_text("Share of fees paid without cash")
        .await;
    check_accessibility(&browser, "en").await;

    // The queue, and one exception resolved.
    browser.goto(&format!("{base}/console/exceptions")).await;
    browser.wait_for_text("Sai số tiền").await;
    browser.screenshot(&shot(backend, "exceptions")).await;
    check_accessibility(&browser, "vi").await;
    browser
        .click(&format!("a[href='/console/exceptions/{exception}']"))
        .await;
    browser.wait_for_text("Nhật ký").await;
    check_accessibility(&browser, "vi").await;
    // Money held beyond the fee is the payer's: it is not written off.
    assert_eq!(
        browser
            .execute(
                "return document.querySelector('#resolution option[value=written_off]') === null"
            )
            .await,
        Value::Bool(true)
    );
    browser.click("#resolution option[value=confirmed]").await;
    browser
        .type_into("#note", "Chênh lệch 50.000 đồng, đã xác minh")
        .await;
    browser.click("form[action*='/resolve'] button").await;
    browser.wait_for_text("Đã ghi nhận cách xử lý").await;
    let resolved = app
        .app
        .get(&format!("/v1/exceptions/{exception}"), &app.finance_key)
        .await
        .json();
    assert_eq!(
        resolved["resolution"]["resolution"], "confirmed",
        "{resolved}"
    );
    assert_eq!(
        resolved["resolution"]["note"],
        "Chênh lệch 50.000 đồng, đã xác minh"
    );

    // A statement whose third line is bad: refused whole, with its number.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vnpay-2026-10-02.csv");
    std::fs::write(
        &file,
        format!(
            "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date\n\
             77001,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02\n\
             77002,X,1500.5,0,2026-10-01T10:00:00+07:00,2026-10-02\n"
        ),
    )
    .unwrap();
    browser.goto(&format!("{base}/console/uploads")).await;
    check_accessibility(&browser, "vi").await;
    browser
        .type_into("#statement-file", file.to_str().unwrap())
        .await;
    browser
        .click("form[action='/console/uploads/statement'] button")
        .await;
    browser.wait_for_text("Tệp bị từ chối").await;
    assert_eq!(browser.element_text("#refused-line").await, "3");
    // Fixed, it is imported and its summary shown: the import's page
    // follows the job, refreshing itself until it is done.
    browser.goto(&format!("{base}/console/uploads")).await;
    std::fs::write(
        &file,
        format!(
            "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date\n\
             77001,{order_ref},650000,0,2026-10-01T10:00:00+07:00,2026-10-02\n"
        ),
    )
    .unwrap();
    browser
        .type_into("#statement-file", file.to_str().unwrap())
        .await;
    browser
        .click("form[action='/console/uploads/statement'] button")
        .await;
    let summary = browser.wait_for_text("Đã đối soát xong.").await;
    assert!(
        summary.contains("Giao dịch chưa ghi nhận (đã khôi phục)"),
        "{summary}"
    );

    // Cash at the counter, from the invoice found by its payment code.
    let code = open["payment_code"].as_str().unwrap();
    browser.goto(&format!("{base}/console/payments")).await;
    check_accessibility(&browser, "vi").await;
    browser.type_into("#q", code).await;
    browser.click("form[role=search] button").await;
    browser.wait_for_text("HS-OPEN").await;
    browser
        .click(&format!(
            "a[href='/console/invoices/{}']",
            open["id"].as_str().unwrap()
        ))
        .await;
    browser.wait_for_text("Ghi nhận tiền mặt tại quầy").await;
    check_accessibility(&browser, "vi").await;
    browser.type_into("#receipt_number", "BL-0099").await;
    browser.click("form[action$='/cash'] button").await;
    browser.wait_for_text("Đã ghi nhận khoản tiền mặt").await;
    let paid = app.invoice_now(open["id"].as_str().unwrap()).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    let cash = app
        .app
        .get(
            &format!("/v1/invoices/{}/payments", open["id"].as_str().unwrap()),
            &app.finance_key,
        )
        .await
        .json();
    assert_eq!(cash["items"].as_array().unwrap().len(), 1, "{cash}");
    assert_eq!(cash["items"][0]["channel"], "cash");

    // Signing out ends the session.
    browser.click("nav form button").await;
    browser.wait_for_text("Mật khẩu").await;
    browser.goto(&format!("{base}/console/dashboard")).await;
    browser.wait_for_text("Mật khẩu").await;
    browser.close().await;
}

/// Follows an upload sent to its job's page (under `prefix`) until the
/// job ends, the page refreshing itself until then.
async fn job_page(session: &Session, queued: &Answer, prefix: &str) -> Answer {
    assert_eq!(queued.status, 303, "{}", queued.text);
    let page = queued.location().to_owned();
    assert!(page.starts_with(prefix), "{page}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let shown = session.get(&page).await;
        assert_eq!(shown.status, 200, "{}", shown.text);
        if shown.headers.get("refresh").is_none() {
            return shown;
        }
        assert!(std::time::Instant::now() < deadline, "{}", shown.text);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn a_double_payment_is_refunded_from_the_console_by_two_officers(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let second_key = app.app.key(Role::Finance, "P").await;
    let invoice = app.invoice("HS-CONSOLE-REFUND").await;
    let held = crate::refunds::paid_twice(&app, &invoice, 9_400).await;
    let held_id = held["id"].as_str().unwrap();
    let exceptions = app
        .app
        .get("/v1/exceptions?kind=overpaid", &app.finance_key)
        .await
        .json();
    let exception = exceptions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["payment_id"] == held_id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let asker = sign_in(&app, &app.finance_key).await;
    let page = asker.get(&format!("/console/exceptions/{exception}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    // Refunding is offered; resolving as "refund required" no longer is.
    assert!(
        page.text
            .contains(&format!("/console/exceptions/{exception}/refund")),
        "{}",
        page.text
    );
    assert!(
        !page.text.contains("value=\"refund_required\""),
        "{}",
        page.text
    );
    let (key, csrf) = (
        field_value(&page.text, "idempotency_key"),
        field_value(&page.text, "csrf"),
    );
    let form = [
        ("amount", "650.000"),
        ("reason", "Nộp hai lần"),
        ("idempotency_key", key.as_str()),
        ("csrf", csrf.as_str()),
    ];
    let asked = asker
        .post(&format!("/console/exceptions/{exception}/refund"), &form)
        .await;
    assert_eq!(asked.status, 303, "{}", asked.text);
    let refund_page = asked.location().split('?').next().unwrap().to_owned();
    let refund_id = refund_page.rsplit('/').next().unwrap().to_owned();
    // The same form sent again asks nothing more.
    let again = asker
        .post(&format!("/console/exceptions/{exception}/refund"), &form)
        .await;
    assert_eq!(again.location(), asked.location());
    assert_eq!(app.app.count("refunds").await, 1);
    let shown = asker.get(&refund_page).await;
    assert!(shown.text.contains("Chờ duyệt"), "{}", shown.text);
    assert!(
        shown
            .text
            .contains("Đề nghị này cần một cán bộ khác duyệt."),
        "{}",
        shown.text
    );
    assert!(!shown.text.contains("/approve"), "{}", shown.text);
    // The officer who asked cannot approve, even by posting the form.
    let own = asker
        .post(
            &format!("/console/refunds/{refund_id}/approve"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.text);

    // Another finance officer may not decide it either: approvers do.
    let other = sign_in(&app, &second_key).await;
    let shown = other.get(&refund_page).await;
    assert!(
        shown.text.contains("id=\"needs-approver\""),
        "{}",
        shown.text
    );
    let other_csrf = other.csrf().await;
    let refused = other
        .post(
            &format!("/console/refunds/{refund_id}/approve"),
            &[("csrf", other_csrf.as_str())],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(
        refused.text.contains("quyền duyệt hoàn tiền"),
        "{}",
        refused.text
    );
    let approver_email = new_officer(&app.app, OfficerRole::Approver, Some("P")).await;
    let (approver, _) = sign_in_as(&app.app, &approver_email).await;
    let listed = approver.get("/console/refunds").await;
    assert!(listed.text.contains(&refund_id), "{}", listed.text);
    let shown = approver.get(&refund_page).await;
    assert!(shown.text.contains("/approve"), "{}", shown.text);
    let approver_csrf = approver.csrf().await;
    let approved = approver
        .post(
            &format!("/console/refunds/{refund_id}/approve"),
            &[("note", "Đúng"), ("csrf", approver_csrf.as_str())],
        )
        .await;
    assert_eq!(approved.status, 303, "{}", approved.text);
    // The API and the page name both officers.
    let refund = app
        .app
        .get(&format!("/v1/refunds/{refund_id}"), &app.finance_key)
        .await
        .json();
    let (asked_by, decided_by) = (
        refund["requested_by_name"].as_str().unwrap().to_owned(),
        refund["decided_by_name"].as_str().unwrap().to_owned(),
    );
    assert!(
        asked_by.starts_with("Nguyễn Thị Hoa ") && decided_by.starts_with("Nguyễn Thị Hoa "),
        "{refund}"
    );
    assert_ne!(asked_by, decided_by);
    let shown = asker.get(&refund_page).await;
    for name in [&asked_by, &decided_by] {
        assert!(
            shown
                .text
                .contains(&name.replace('<', "&lt;").replace('>', "&gt;")),
            "{name}: {}",
            shown.text
        );
    }
    // A bank transfer goes back by hand: the first officer records it.
    let shown = asker.get(&refund_page).await;
    assert!(shown.text.contains("Đã duyệt"), "{}", shown.text);
    assert!(shown.text.contains("/complete"), "{}", shown.text);
    let done = asker
        .post(
            &format!("/console/refunds/{refund_id}/complete"),
            &[
                ("reference", "FT2634199999"),
                ("paid_back_at", "2026-11-28T16:00"),
                ("csrf", csrf.as_str()),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.text);
    let refund = app
        .app
        .get(&format!("/v1/refunds/{refund_id}"), &app.finance_key)
        .await
        .json();
    assert_eq!(refund["status"], "succeeded", "{refund}");
    assert_eq!(refund["completed_at"], "2026-11-28T09:00:00.000000Z");
    assert_eq!(refund["exception_id"], exception.as_str());
    let shown = asker.get(&refund_page).await;
    assert!(
        shown.text.contains("Đã hoàn") && shown.text.contains("FT2634199999"),
        "{}",
        shown.text
    );
    let x = app
        .app
        .get(&format!("/v1/exceptions/{exception}"), &app.finance_key)
        .await
        .json();
    assert_eq!(x["status"], "resolved", "{x}");
}

async fn a_paid_invoices_payment_is_refunded_from_the_invoices_page(backend: Backend) {
    let app = spawn_payments_app(backend).await;
    let invoice = app.invoice("HS-INVOICE-REFUND").await;
    let id = invoice["id"].as_str().unwrap();
    let code = invoice["payment_code"].as_str().unwrap();
    let sent = app
        .callback(
            "sepay",
            "",
            sepay_transfer(9_600, 650_000, &format!("NOP PHI {code}")),
            &[("Authorization", &sepay_auth())],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let other = app.invoice("HS-INVOICE-OTHER").await;
    let other_code = other["payment_code"].as_str().unwrap();
    app.callback(
        "sepay",
        "",
        sepay_transfer(9_601, 650_000, &format!("NOP PHI {other_code}")),
        &[("Authorization", &sepay_auth())],
    )
    .await;
    let payments = app
        .app
        .get(&format!("/v1/invoices/{id}/payments"), &app.finance_key)
        .await
        .json();
    let payment_id = payments["items"][0]["id"].as_str().unwrap().to_owned();
    let other_payment = app
        .app
        .get(
            &format!("/v1/invoices/{}/payments", other["id"].as_str().unwrap()),
            &app.finance_key,
        )
        .await
        .json()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let officer = sign_in(&app, &app.finance_key).await;
    let page = officer.get(&format!("/console/invoices/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .contains(&format!("<option value=\"{payment_id}\">")),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("còn có thể hoàn 650.000 ₫"),
        "{}",
        page.text
    );
    let (key, csrf) = (
        field_value(&page.text, "idempotency_key"),
        field_value(&page.text, "csrf"),
    );
    // Another invoice's payment is not refunded from this page.
    let wrong = officer
        .post(
            &format!("/console/invoices/{id}/refund"),
            &[
                ("payment_id", other_payment.as_str()),
                ("amount", "650.000"),
                ("reason", "Hồ sơ bị trả lại"),
                ("idempotency_key", key.as_str()),
                ("csrf", csrf.as_str()),
            ],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text);
    assert_eq!(app.app.count("refunds").await, 0);
    let asked = officer
        .post(
            &format!("/console/invoices/{id}/refund"),
            &[
                ("payment_id", payment_id.as_str()),
                ("amount", "650.000"),
                ("reason", "Hồ sơ bị trả lại"),
                ("idempotency_key", key.as_str()),
                ("csrf", csrf.as_str()),
            ],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.text);
    let refund_id = asked
        .location()
        .split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let refund = app
        .app
        .get(&format!("/v1/refunds/{refund_id}"), &app.finance_key)
        .await
        .json();
    assert_eq!(
        (&refund["payment_id"], &refund["amount"], &refund["status"]),
        (&json!(payment_id), &json!(650_000), &json!("requested")),
        "{refund}"
    );
    assert_eq!(refund["exception_id"], Value::Null);
}
