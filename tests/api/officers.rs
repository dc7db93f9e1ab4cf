//! Officers as people: created from the command line, signing in with a
//! password and (for approvers and admins) a second factor set up from a
//! QR code, locked out for a while after failures in a row, changing their
//! own password, reset and disabled by an admin; and named in the audit.

use lephi::domain::officer::OfficerRole;
use serde_json::Value;

use crate::cli::lephi;
use crate::console::{
    PASSWORD, Session, new_officer, next_code, officer_sign_in_answer, sign_in_as, sign_in_with,
};
use crate::helpers::{Backend, TestApp, spawn_app_with};
use crate::on_both_backends;

on_both_backends!(
    an_admin_sets_up_a_second_factor_and_each_code_signs_in_once,
    failures_in_a_row_lock_the_officer_out_for_a_while,
    officers_change_their_password_and_an_admin_resets_or_disables_them,
    the_command_line_refuses_a_bad_officer_and_changes_nothing,
    an_admin_manages_the_officers_of_their_scope_from_the_console,
);

async fn app(backend: Backend) -> TestApp {
    let app = spawn_app_with(backend, |s| s.console.sign_in_attempts_per_minute = 1000).await;
    app.seed_agencies().await;
    app
}

/// The audit records of `action`, newest first.
async fn audited(app: &TestApp, action: &str) -> Vec<Value> {
    app.get(&format!("/v1/audit?action={action}"), &app.admin_key)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// Creates an officer with the command line; returns the printed password.
fn create(app: &TestApp, args: &[&str]) -> String {
    let mut all = vec!["officers", "create"];
    all.extend_from_slice(args);
    let (ok, out, err) = lephi(&app.database_url, &all);
    assert!(ok, "{out}{err}");
    out.lines()
        .find_map(|line| line.strip_prefix("password: "))
        .expect("a password is printed")
        .trim()
        .to_owned()
}

async fn an_admin_sets_up_a_second_factor_and_each_code_signs_in_once(backend: Backend) {
    let app = app(backend).await;
    let password = create(
        &app,
        &[
            "--name",
            "Trần Văn Bình",
            "--email",
            "Binh.Tran@STC.example.gov.vn",
            "--role",
            "admin",
        ],
    );
    let email = "binh.tran@stc.example.gov.vn";
    // The password alone opens only the set-up of the second factor.
    let first = officer_sign_in_answer(&app, email, &password, "").await;
    assert_eq!(first.status, 303, "{}", first.text);
    assert_eq!(first.location(), "/console/second-factor");
    let cookie = first.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session = Session::of(&app, &cookie);
    let dashboard = session.get("/console/dashboard").await;
    assert_eq!(dashboard.status, 303);
    assert_eq!(dashboard.location(), "/console/second-factor");
    let page = session.get("/console/second-factor").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("<svg role=\"img\""),
        "the QR code is shown"
    );
    let wrong = session
        .post(
            "/console/second-factor",
            &[
                (
                    "csrf",
                    &session.field("/console/second-factor", "csrf").await,
                ),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.text);
    assert!(wrong.text.contains("Mã không đúng"), "{}", wrong.text);
    drop(session);
    // Set up as a person would, from the page.
    let (session, secret) = sign_in_with(&app, email, &password).await;
    let secret = secret.expect("a second factor was set up");
    assert_eq!(session.get("/console/dashboard").await.status, 200);
    let enrolled = audited(&app, "officer.second_factor_enrolled").await;
    assert_eq!(
        enrolled[0]["actor_name"],
        format!("Trần Văn Bình <{email}>")
    );

    // From now on the password needs the code, and each code serves once.
    let without = officer_sign_in_answer(&app, email, &password, "").await;
    assert_eq!(without.status, 401, "{}", without.text);
    assert!(
        without.text.contains("Mã xác thực không đúng"),
        "{}",
        without.text
    );
    let code = next_code(&secret);
    let with = officer_sign_in_answer(&app, email, &password, &code).await;
    assert_eq!(with.status, 303, "{}", with.text);
    assert_eq!(with.location(), "/console/dashboard");
    let replayed = officer_sign_in_answer(&app, email, &password, &code).await;
    assert_eq!(replayed.status, 401, "{}", replayed.text);
    let signed_in = audited(&app, "console.signed_in").await;
    assert!(
        signed_in
            .iter()
            .all(|r| r["actor"].as_str().unwrap().starts_with("officer:"))
    );
    assert!(
        !format!("{signed_in:?}").contains(&password),
        "no password in the audit"
    );
}

async fn failures_in_a_row_lock_the_officer_out_for_a_while(backend: Backend) {
    let app = app(backend).await;
    let email = new_officer(&app, OfficerRole::Finance, Some("P")).await;
    for n in 1..=4 {
        let wrong = officer_sign_in_answer(&app, &email, "a wrong password here", "").await;
        assert_eq!(wrong.status, 401, "attempt {n}: {}", wrong.text);
    }
    let fifth = officer_sign_in_answer(&app, &email, "a wrong password here", "").await;
    assert_eq!(fifth.status, 429, "{}", fifth.text);
    assert!(fifth.text.contains("tạm khoá"), "{}", fifth.text);
    // Locked: even the right password waits.
    let right = officer_sign_in_answer(&app, &email, PASSWORD, "").await;
    assert_eq!(right.status, 429, "{}", right.text);
    assert!(right.headers.get("set-cookie").is_none());
    assert_eq!(audited(&app, "officer.sign_in_failed").await.len(), 5);
    // A minute later the right password signs in, and the count restarts.
    let pool = app.raw_pool().await;
    let past = lephi::domain::Timestamp::now()
        .plus(time::Duration::minutes(-1))
        .unwrap()
        .to_stored();
    sqlx::query("UPDATE officers SET locked_until = $1")
        .bind(&past)
        .execute(&pool)
        .await
        .unwrap();
    let after = officer_sign_in_answer(&app, &email, PASSWORD, "").await;
    assert_eq!(after.status, 303, "{}", after.text);
    let failures: i64 = sqlx::query_scalar("SELECT failed_sign_ins FROM officers")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failures, 0);
    pool.close().await;
    // An unknown email is told no more than a wrong password.
    let unknown = officer_sign_in_answer(&app, "nobody@stc.example.gov.vn", PASSWORD, "").await;
    assert_eq!(unknown.status, 401);
    assert!(
        unknown.text.contains("Email hoặc mật khẩu không đúng"),
        "{}",
        unknown.text
    );
}

async fn officers_change_their_password_and_an_admin_resets_or_disables_them(backend: Backend) {
    let app = app(backend).await;
    let email = new_officer(&app, OfficerRole::Finance, Some("P.D1")).await;
    let (session, _) = sign_in_as(&app, &email).await;
    let (other, _) = sign_in_as(&app, &email).await;
    let csrf = session.csrf().await;
    let new = "một con vịt xoè ra hai cái cánh";
    for (current, first, again, why) in [
        (
            "not the password at all",
            new,
            new,
            "Mật khẩu hiện tại không đúng",
        ),
        (PASSWORD, new, "another one entirely", "không giống nhau"),
        (PASSWORD, "password1234", "password1234", "ít nhất 12 ký tự"),
    ] {
        let refused = session
            .post(
                "/console/password",
                &[
                    ("csrf", &csrf),
                    ("current", current),
                    ("new", first),
                    ("again", again),
                ],
            )
            .await;
        assert_eq!(refused.status, 422, "{why}: {}", refused.text);
        assert!(refused.text.contains(why), "{why}: {}", refused.text);
    }
    let changed = session
        .post(
            "/console/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", new),
                ("again", new),
            ],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    // This session stays; the officer's other one ended.
    assert_eq!(session.get("/console/dashboard").await.status, 200);
    assert_eq!(other.get("/console/dashboard").await.status, 303);
    assert_eq!(
        officer_sign_in_answer(&app, &email, PASSWORD, "")
            .await
            .status,
        401
    );
    assert_eq!(
        officer_sign_in_answer(&app, &email, new, "").await.status,
        303
    );

    // An admin resets the password from the command line: the sessions end.
    let (ok, out, err) = lephi(&app.database_url, &["officers", "reset-password", &email]);
    assert!(ok, "{out}{err}");
    let made = out.rsplit(": ").next().unwrap().trim().to_owned();
    assert_eq!(session.get("/console/dashboard").await.status, 303);
    assert_eq!(
        officer_sign_in_answer(&app, &email, new, "").await.status,
        401
    );
    assert_eq!(
        officer_sign_in_answer(&app, &email, &made, "").await.status,
        303
    );
    let (ok, list, _) = lephi(&app.database_url, &["officers", "list"]);
    assert!(
        ok && list.contains(&email) && list.contains("active"),
        "{list}"
    );
    // Disabled: no sign-in, with a message that says so.
    let (ok, out, err) = lephi(&app.database_url, &["officers", "disable", &email]);
    assert!(ok, "{out}{err}");
    let refused = officer_sign_in_answer(&app, &email, &made, "").await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    for action in [
        "officer.password_changed",
        "officer.password_reset",
        "officer.disabled",
    ] {
        assert_eq!(audited(&app, action).await.len(), 1, "{action}");
    }
}

async fn the_command_line_refuses_a_bad_officer_and_changes_nothing(backend: Backend) {
    let app = app(backend).await;
    create(
        &app,
        &[
            "--name",
            "Lê Thị Cúc",
            "--email",
            "cuc@stc.vn",
            "--role",
            "finance",
            "--agency",
            "P",
        ],
    );
    for (args, why) in [
        (
            vec![
                "--name",
                "A",
                "--email",
                "cuc@stc.vn",
                "--role",
                "finance",
                "--agency",
                "P",
            ],
            "already",
        ),
        (
            vec![
                "--name",
                "A",
                "--email",
                "not-an-email",
                "--role",
                "finance",
                "--agency",
                "P",
            ],
            "email",
        ),
        (
            vec![
                "--name", "A", "--email", "a@stc.vn", "--role", "chief", "--agency", "P",
            ],
            "role",
        ),
        (
            vec!["--name", "A", "--email", "a@stc.vn", "--role", "finance"],
            "agency",
        ),
        (
            vec![
                "--name", "A", "--email", "a@stc.vn", "--role", "finance", "--agency", "NOPE",
            ],
            "NOPE",
        ),
        (
            vec![
                "--name",
                "A\u{202e}B",
                "--email",
                "a@stc.vn",
                "--role",
                "admin",
            ],
            "invisible",
        ),
    ] {
        let mut all = vec!["officers", "create"];
        all.extend_from_slice(&args);
        let (ok, out, err) = lephi(&app.database_url, &all);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    let (ok, list, _) = lephi(&app.database_url, &["officers", "list"]);
    assert!(ok);
    assert_eq!(list.lines().count(), 1, "{list}");
    let (ok, _, err) = lephi(&app.database_url, &["officers", "disable", "nobody@stc.vn"]);
    assert!(!ok && err.contains("nobody@stc.vn"), "{err}");
}

/// The password a page shows once, after "<email>: ".
fn shown_password(page: &str, email: &str) -> String {
    let marker = format!("{email}&gt;: ");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no password for {email} in {page}"))
        + marker.len();
    page[at..at + page[at..].find('.').unwrap()].to_owned()
}

async fn an_admin_manages_the_officers_of_their_scope_from_the_console(backend: Backend) {
    let app = app(backend).await;
    let admin_email = new_officer(&app, OfficerRole::Admin, Some("P")).await;
    let (admin, _) = sign_in_as(&app, &admin_email).await;
    let list = admin.get("/console/officers").await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(list.text.contains(&admin_email), "{}", list.text);
    let csrf = admin.csrf().await;
    let email = "dung.pham@stc.example.gov.vn";
    let created = admin
        .post(
            "/console/officers",
            &[
                ("csrf", &csrf),
                ("name", "Phạm Văn Dũng"),
                ("email", email),
                ("role", "finance"),
                ("agency", "P.D1"),
            ],
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let password = shown_password(&created.text, email);
    let signed_in = officer_sign_in_answer(&app, email, &password, "").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    assert_eq!(signed_in.location(), "/console/dashboard");
    let made = audited(&app, "officer.created").await;
    assert!(
        made[0]["actor_name"]
            .as_str()
            .unwrap()
            .ends_with(&format!("<{admin_email}>")),
        "{made:?}"
    );

    // Outside the admin's scope, twice the same email, no agency for a
    // finance officer: refused in Vietnamese, nothing made.
    let before = app.count("officers").await;
    for (fields, why) in [
        (
            vec![
                ("name", "A"),
                ("email", "a@stc.vn"),
                ("role", "finance"),
                ("agency", "Q"),
            ],
            "phạm vi",
        ),
        (
            vec![
                ("name", "A"),
                ("email", email),
                ("role", "finance"),
                ("agency", "P"),
            ],
            "Email",
        ),
        (
            vec![("name", "A"), ("email", "b@stc.vn"), ("role", "finance")],
            "cơ quan",
        ),
        (
            vec![
                ("name", "A"),
                ("email", "c@stc.vn"),
                ("role", "chief"),
                ("agency", "P"),
            ],
            "Vai trò",
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let refused = admin.post("/console/officers", &fields).await;
        assert_eq!(refused.status, 422, "{why}: {}", refused.text);
        assert!(refused.text.contains(why), "{why}: {}", refused.text);
    }
    assert_eq!(app.count("officers").await, before);

    let id: String = {
        let pool = app.raw_pool().await;
        let id = sqlx::query_scalar("SELECT id FROM officers WHERE email = $1")
            .bind(email)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        id
    };
    let reset = admin
        .post(
            &format!("/console/officers/{id}/reset-password"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let new = shown_password(&reset.text, email);
    assert_eq!(
        officer_sign_in_answer(&app, email, &password, "")
            .await
            .status,
        401
    );
    assert_eq!(
        officer_sign_in_answer(&app, email, &new, "").await.status,
        303
    );
    let disabled = admin
        .post(
            &format!("/console/officers/{id}/disable"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(
        officer_sign_in_answer(&app, email, &new, "").await.status,
        403
    );

    // A finance officer neither sees nor uses the page.
    let finance = new_officer(&app, OfficerRole::Finance, Some("P")).await;
    let (finance, _) = sign_in_as(&app, &finance).await;
    let dashboard = finance.get("/console/dashboard").await;
    assert!(
        !dashboard.text.contains("/console/officers"),
        "{}",
        dashboard.text
    );
    assert_eq!(finance.get("/console/officers").await.status, 403);
    let finance_csrf = finance.csrf().await;
    let refused = finance
        .post(
            "/console/officers",
            &[
                ("csrf", &finance_csrf),
                ("name", "X"),
                ("email", "x@stc.vn"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(app.count("officers").await, before + 1);
}
