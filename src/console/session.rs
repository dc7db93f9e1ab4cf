//! Signing in and out. An officer signs in with their email, password and
//! (for approvers and admins, or anyone who set one up) the code of their
//! second factor; one who must have a second factor and has none sets it
//! up first (`second_factor.rs`). Until the first officer exists, an admin
//! API key signs in instead (the first run). The browser gets a random
//! session token in an HttpOnly, SameSite=Strict cookie (Secure when lephi
//! is served over https); only the token's SHA-256 is stored. A session
//! ends after `console.idle_minutes` without use, on signing out, or when
//! its officer is disabled (or its key revoked). Sign-in attempts are
//! limited per client address (`console.sign_in_attempts_per_minute`) and
//! an officer is locked out for a while after failures in a row.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tracing_actix_web::RequestId;

use super::{
    COULD_NOT, Layout, OFFICERS, csrf, form_fields, html, lang_of, link, notice, page, read_body,
    see_other, toggle_href,
};
use crate::domain::officer::{self, Email, TotpSecret};
use crate::domain::{ApiKeySecret, Role, Timestamp};
use crate::pages::{Html, Lang, text};
use crate::startup::AppState;
use crate::store::Principal;

const COOKIE: &str = "lephi_console";

/// A signed-in finance officer (or administrator).
pub struct Officer {
    pub principal: Principal,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    pub request_id: Option<String>,
    /// Where the request came from (see [`crate::client_addr`]).
    pub client_addr: Option<std::net::IpAddr>,
    token_hash: String,
}

impl Officer {
    /// The hash of the session's token, as the store keeps it.
    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn idle(state: &AppState) -> time::Duration {
    let minutes = i64::try_from(state.settings.console.idle_minutes).unwrap_or(30);
    time::Duration::minutes(minutes)
}

fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.to_string())
}

/// The officer of the request's session; otherwise the answer that sends
/// the browser to sign in.
pub async fn officer(req: &HttpRequest, state: &AppState) -> Result<Officer, HttpResponse> {
    let lang = lang_of(req);
    let sign_in = || see_other(&link(lang, "/console", &[]));
    let Some(token) = session_token(req) else {
        return Err(sign_in());
    };
    let token_hash = hash(&token);
    match session_of(req, state, &token, &token_hash).await {
        Ok(Some((officer, false))) => Ok(officer),
        Ok(Some((_, true))) => Err(see_other(&link(lang, "/console/second-factor", &[]))),
        Ok(None) => Err(sign_in()),
        Err(err) => Err(super::error_page(req, None, &err.into())),
    }
}

/// The officer of the request's session and whether it is still setting
/// up its second factor; otherwise the answer that sends the browser to
/// sign in.
pub async fn enrolling_officer(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(Officer, bool), HttpResponse> {
    let lang = lang_of(req);
    let sign_in = || see_other(&link(lang, "/console", &[]));
    let Some(token) = session_token(req) else {
        return Err(sign_in());
    };
    let token_hash = hash(&token);
    match session_of(req, state, &token, &token_hash).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(sign_in()),
        Err(err) => Err(super::error_page(req, None, &err.into())),
    }
}

async fn session_of(
    req: &HttpRequest,
    state: &AppState,
    token: &str,
    token_hash: &str,
) -> Result<Option<(Officer, bool)>, crate::store::StoreError> {
    Ok(state
        .store
        .console_session(token_hash, idle(state))
        .await?
        .filter(|session| OFFICERS.contains(&session.principal.role))
        .map(|session| {
            (
                Officer {
                    principal: session.principal,
                    csrf: csrf::token_for(token),
                    request_id: request_id(req),
                    client_addr: crate::client_addr::of(req),
                    token_hash: token_hash.to_owned(),
                },
                session.enrolling,
            )
        }))
}

/// The officer of a form's POST, whose CSRF token and origin are checked;
/// otherwise the refusal.
pub async fn officer_posting(
    req: &HttpRequest,
    state: &AppState,
    token: Option<&str>,
) -> Result<Officer, HttpResponse> {
    if !csrf::same_origin(req, state) {
        return Err(forged(req, None));
    }
    let officer = officer(req, state).await?;
    if !csrf::token_matches(&officer.csrf, token) {
        return Err(forged(req, Some(&officer)));
    }
    Ok(officer)
}

/// The officer of a url-encoded form's POST, with the form's fields; its
/// CSRF token and origin checked. Otherwise the refusal.
pub async fn posted_form(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<(Officer, HashMap<String, String>), HttpResponse> {
    let Some(body) = read_body(payload, state.settings.server.max_body_bytes).await else {
        return Err(forged(req, None));
    };
    let form = form_fields(&body);
    let officer = officer_posting(req, state, super::value(&form, "csrf")).await?;
    Ok((officer, form))
}

/// The refusal of a form that did not come from the officer's own page.
pub fn forged(req: &HttpRequest, officer: Option<&Officer>) -> HttpResponse {
    let lang = lang_of(req);
    notice(
        req,
        StatusCode::FORBIDDEN,
        officer,
        &COULD_NOT,
        lang.pick(&text!(
            "Biểu mẫu này không gửi từ trang của bàn làm việc, hoặc đã cũ. Hãy mở lại trang và thử lại.",
            "This form was not sent from the console's own page, or it is out of date. Open the page again and retry."
        )),
    )
}

/// The session token the request's cookie holds, if any.
fn session_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|t| !t.is_empty() && t.len() <= 100)
}

/// The `Set-Cookie` value that gives the browser `token`, or with `None`
/// takes it away. The token is URL-safe base64: nothing to quote.
fn session_cookie(state: &AppState, token: Option<&str>) -> Option<HeaderValue> {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = match token {
        Some(token) => {
            format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict{secure}")
        }
        None => format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict{secure}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        ),
    };
    HeaderValue::from_str(&cookie).ok()
}

/// `GET /console`: the sign-in page, or the dashboard when signed in.
pub async fn sign_in_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let lang = lang_of(&req);
    if session_token(&req).is_some() && officer(&req, &state).await.is_ok() {
        return see_other(&link(lang, "/console/dashboard", &[]));
    }
    match state.store.has_officers().await {
        Ok(has) => sign_in_form(&req, StatusCode::OK, None, !has),
        Err(err) => super::error_page(&req, None, &err.into()),
    }
}

/// The sign-in form; on the first run (no officer yet) with the admin
/// key's field as well.
fn sign_in_form(
    req: &HttpRequest,
    status: StatusCode,
    error: Option<&str>,
    first_run: bool,
) -> HttpResponse {
    let lang = lang_of(req);
    let title = text!("Đăng nhập", "Sign in");
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &title).raw("</h1>");
    if let Some(error) = error {
        body.raw("<p class=\"message error\" role=\"alert\">")
            .text(error)
            .raw("</p>");
    }
    body.raw("<section class=\"card\"><form method=\"post\" action=\"")
        .text(&link(lang, "/console", &[]))
        .raw("\"><div class=\"field\"><label for=\"email\">")
        .t(lang, &text!("Email", "Email"))
        .raw("</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required maxlength=\"254\"></div>")
        .raw("<div class=\"field\"><label for=\"password\">")
        .t(lang, &text!("Mật khẩu", "Password"))
        .raw("</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required maxlength=\"128\"></div>")
        .raw("<div class=\"field\"><label for=\"code\">")
        .t(lang, &text!("Mã xác thực (6 chữ số, nếu đã cài)", "Authentication code (6 digits, if set up)"))
        .raw("</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"8\" pattern=\"[0-9 ]*\"></div>")
        .raw("<button type=\"submit\">")
        .t(lang, &title)
        .raw("</button></form></section>");
    if first_run {
        body.raw("<section class=\"card\"><h2>")
            .t(lang, &text!("Lần chạy đầu tiên", "First run"))
            .raw("</h2><p>")
            .t(
                lang,
                &text!(
                    "Chưa có cán bộ nào. Dán khóa API quản trị để đăng nhập và tạo cán bộ đầu tiên (hoặc dùng lệnh lephi officers create). Khóa chỉ dùng để đăng nhập và không được lưu trong trình duyệt.",
                    "No officer exists yet. Paste the admin API key to sign in and create the first officer (or use lephi officers create). The key is used only to sign in and is not kept in the browser."
                ),
            )
            .raw("</p><form method=\"post\" action=\"")
            .text(&link(lang, "/console", &[]))
            .raw("\"><div class=\"field\"><label for=\"key\">")
            .t(lang, &text!("Khóa API quản trị", "Admin API key"))
            .raw("</label><input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required maxlength=\"200\"></div>")
            .raw("<button type=\"submit\">")
            .t(lang, &title)
            .raw("</button></form></section>");
    }
    html(
        status,
        page(
            &Layout {
                lang,
                title: &title,
                toggle_href: toggle_href(req, lang),
                officer: None,
                section: None,
            },
            body,
        ),
    )
}

/// Why a sign-in was refused, in the officer's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    WrongPassword,
    WrongCode,
    Locked,
    Disabled,
    KeyNotAllowed,
    WrongKey,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::Locked => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Disabled | Refusal::KeyNotAllowed => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    fn message(self, lang: Lang) -> &'static str {
        lang.pick(&match self {
            Refusal::WrongPassword => text!(
                "Email hoặc mật khẩu không đúng.",
                "The email or the password is wrong."
            ),
            Refusal::WrongCode => text!(
                "Mã xác thực không đúng, đã hết hạn hoặc đã được dùng. Hãy nhập mã đang hiện trên ứng dụng xác thực.",
                "The authentication code is wrong, expired or already used. Enter the code your authenticator app shows now."
            ),
            Refusal::Locked => text!(
                "Đăng nhập sai nhiều lần liên tiếp: tài khoản tạm khoá ít phút. Hãy thử lại sau, hoặc nhờ quản trị đặt lại mật khẩu.",
                "Too many failed sign-ins in a row: the account is locked for a few minutes. Try again later, or ask an admin to reset the password."
            ),
            Refusal::Disabled => text!(
                "Tài khoản này đã bị vô hiệu hoá. Hãy liên hệ quản trị.",
                "This account is disabled. Contact an admin."
            ),
            Refusal::KeyNotAllowed => text!(
                "Cán bộ đăng nhập bằng email và mật khẩu. Khóa API chỉ dùng được khi chưa có cán bộ nào, và chỉ khóa quản trị.",
                "Officers sign in with their email and password. An API key signs in only while no officer exists, and only an admin key."
            ),
            Refusal::WrongKey => text!(
                "Khóa API không đúng hoặc đã bị thu hồi.",
                "The API key is wrong or was revoked."
            ),
        })
    }
}

/// A hash to check a password against when the email names no officer,
/// so that the answer takes as long either way.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| officer::hash_password("no officer signs in with this"))
}

/// `POST /console`: an officer's email, password and code (or, on the
/// first run, an admin key) for a session.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    if let Some(client) = crate::client_addr::of(&req)
        && let Err(retry_after) = state.console_limiter.check(client)
    {
        return super::too_many(&req, retry_after);
    }
    if !csrf::same_origin(&req, &state) {
        return forged(&req, None);
    }
    let first_run = match state.store.has_officers().await {
        Ok(has) => !has,
        Err(err) => return super::error_page(&req, None, &err.into()),
    };
    let refuse = |refusal: Refusal| {
        sign_in_form(
            &req,
            refusal.status(),
            Some(refusal.message(lang)),
            first_run,
        )
    };
    let Some(body) = read_body(payload, state.settings.server.max_body_bytes).await else {
        return sign_in_form(
            &req,
            StatusCode::PAYLOAD_TOO_LARGE,
            Some(Refusal::WrongPassword.message(lang)),
            first_run,
        );
    };
    let form = form_fields(&body);
    let signed_in = if let Some(key) = super::value(&form, "key") {
        signed_in_with_key(&state, key, first_run).await
    } else {
        signed_in_as_officer(&req, &state, &form).await
    };
    let (principal, enrolling) = match signed_in {
        Ok(Ok(found)) => found,
        Ok(Err(refusal)) => return refuse(refusal),
        Err(err) => return super::error_page(&req, None, &err.into()),
    };
    start_session(&req, &state, &principal, enrolling).await
}

/// The admin key's principal, on the first run only.
async fn signed_in_with_key(
    state: &AppState,
    key: &str,
    first_run: bool,
) -> Result<Result<(Principal, bool), Refusal>, crate::store::StoreError> {
    let Some(secret) = ApiKeySecret::from_presented(key) else {
        return Ok(Err(Refusal::WrongKey));
    };
    let Some(principal) = state.store.authenticate(&secret.hash()).await? else {
        return Ok(Err(Refusal::WrongKey));
    };
    if !first_run || principal.role != Role::Admin {
        return Ok(Err(Refusal::KeyNotAllowed));
    }
    Ok(Ok((principal, false)))
}

/// The officer the form's email, password and code sign in; the session
/// is an enrolling one when they must set up a second factor first.
async fn signed_in_as_officer(
    req: &HttpRequest,
    state: &AppState,
    form: &HashMap<String, String>,
) -> Result<Result<(Principal, bool), Refusal>, crate::store::StoreError> {
    let password = super::value(form, "password").unwrap_or_default();
    let candidate = match Email::parse("email", super::value(form, "email").unwrap_or_default()) {
        Ok(email) => state.store.officer_for_sign_in(&email).await?,
        Err(_) => None,
    };
    let Some(candidate) = candidate else {
        officer::password_matches(decoy_hash(), password);
        return Ok(Err(Refusal::WrongPassword));
    };
    let id = candidate.principal.key_id.clone();
    let actor = candidate
        .principal
        .actor(request_id(req))
        .from_addr(crate::client_addr::of(req));
    let now = Timestamp::now();
    if candidate.locked_until.is_some_and(|until| until > now) {
        return Ok(Err(Refusal::Locked));
    }
    if !officer::password_matches(&candidate.password_hash, password) {
        return failed(state, &actor, &id, "password", Refusal::WrongPassword).await;
    }
    // Only one who knows the password learns that the account is disabled.
    if candidate.disabled {
        return Ok(Err(Refusal::Disabled));
    }
    let needs = candidate
        .role
        .needs_second_factor(state.settings.console.second_factor_for_finance);
    let secret = candidate
        .totp_secret
        .as_deref()
        .filter(|_| candidate.totp_confirmed)
        .and_then(TotpSecret::from_base32);
    match secret {
        Some(secret) => {
            let code = super::value(form, "code").unwrap_or_default();
            // No code is no guess: it is asked for, not counted.
            if code.trim().is_empty() {
                return Ok(Err(Refusal::WrongCode));
            }
            let unix = u64::try_from(now.as_datetime().unix_timestamp()).unwrap_or(0);
            let step = secret.accepts(code, unix, candidate.totp_last_step);
            let taken = match step {
                Some(step) => state.store.take_second_factor_step(&id, step).await?,
                None => false,
            };
            if !taken {
                return failed(state, &actor, &id, "code", Refusal::WrongCode).await;
            }
            Ok(Ok((candidate.principal, false)))
        }
        None => {
            state.store.clear_failed_sign_ins(&id).await?;
            Ok(Ok((candidate.principal, needs)))
        }
    }
}

/// Records officer `id`'s failed sign-in (`what` was wrong) and refuses
/// with `refusal`, or as locked when this failure locked them out.
async fn failed(
    state: &AppState,
    actor: &crate::domain::audit::Actor,
    id: &str,
    what: &str,
    refusal: Refusal,
) -> Result<Result<(Principal, bool), Refusal>, crate::store::StoreError> {
    let locked = state.store.record_failed_sign_in(actor, id, what).await?;
    Ok(Err(if locked.is_some() {
        Refusal::Locked
    } else {
        refusal
    }))
}

/// Opens the session of `principal` and sends the browser on: to the
/// dashboard, or to set up the second factor when `enrolling`.
async fn start_session(
    req: &HttpRequest,
    state: &AppState,
    principal: &Principal,
    enrolling: bool,
) -> HttpResponse {
    let lang = lang_of(req);
    // A browser that signs in again, or was handed a cookie, starts
    // afresh: the session its cookie names ends.
    if let Some(before) = session_token(req)
        && let Err(err) = state.store.close_console_session(&hash(&before)).await
    {
        return super::error_page(req, None, &err.into());
    }
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let token = URL_SAFE_NO_PAD.encode(random);
    // Sessions idle past their time can no longer be used: forget them.
    if let Some(before) = Timestamp::now().plus(-idle(state)) {
        let _ = state.store.forget_idle_console_sessions(before).await;
    }
    let actor = principal
        .actor(request_id(req))
        .from_addr(crate::client_addr::of(req));
    if let Err(err) = state
        .store
        .open_console_session(principal, &hash(&token), actor, enrolling)
        .await
    {
        return super::error_page(req, None, &err.into());
    }
    let next = if enrolling {
        "/console/second-factor"
    } else {
        "/console/dashboard"
    };
    let mut response = see_other(&link(lang, next, &[]));
    let Some(cookie) = session_cookie(state, Some(&token)) else {
        return super::error_page(
            req,
            None,
            &crate::error::ApiError::internal(&"the session cookie could not be set"),
        );
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// `POST /console/sign-out`: ends the session.
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let officer = match posted_form(&req, &state, payload).await {
        Ok((officer, _)) => officer,
        Err(refused) => return refused,
    };
    if let Err(err) = state.store.close_console_session(&officer.token_hash).await {
        return super::error_page(&req, Some(&officer), &err.into());
    }
    let mut response = see_other(&link(lang, "/console", &[]));
    if let Some(gone) = session_cookie(&state, None) {
        response.headers_mut().insert(header::SET_COOKIE, gone);
    }
    response
}
