//! Signing in and out. An officer signs in with a finance or admin API
//! key; the key is checked once and never kept in the browser, which gets
//! a random session token in an HttpOnly, SameSite=Strict cookie (Secure
//! when lephi is served over https). Only the token's SHA-256 is stored.
//! A session ends after `console.idle_minutes` without use, on signing
//! out, or when its key is revoked. Sign-in attempts are limited per
//! client address (`console.sign_in_attempts_per_minute`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tracing_actix_web::RequestId;

use crate::domain::audit::Actor;

use super::{
    COULD_NOT, Layout, OFFICERS, csrf, form_fields, html, lang_of, link, notice, page, read_body,
    see_other, toggle_href,
};
use crate::domain::ApiKeySecret;
use crate::domain::Timestamp;
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
    match state.store.console_session(&token_hash, idle(state)).await {
        Ok(Some(principal)) if OFFICERS.contains(&principal.role) => Ok(Officer {
            principal,
            csrf: csrf::token_for(&token),
            request_id: request_id(req),
            client_addr: crate::client_addr::of(req),
            token_hash,
        }),
        Ok(_) => Err(sign_in()),
        Err(err) => Err(super::error_page(req, None, &err.into())),
    }
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
    sign_in_form(&req, StatusCode::OK, None)
}

fn sign_in_form(req: &HttpRequest, status: StatusCode, error: Option<&str>) -> HttpResponse {
    let lang = lang_of(req);
    let title = text!("Đăng nhập", "Sign in");
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &title).raw("</h1>");
    if let Some(error) = error {
        body.raw("<p class=\"message error\" role=\"alert\">")
            .text(error)
            .raw("</p>");
    }
    body.raw("<section class=\"card\"><p>")
        .t(
            lang,
            &text!(
                "Dán khóa API dành cho kế toán (hoặc quản trị) của bạn. Khóa chỉ dùng để đăng nhập và không được lưu trong trình duyệt.",
                "Paste your finance (or admin) API key. It is used only to sign in and is not kept in the browser."
            ),
        )
        .raw("</p><form method=\"post\" action=\"")
        .text(&link(lang, "/console", &[]))
        .raw("\"><div class=\"field\"><label for=\"key\">")
        .t(lang, &text!("Khóa API", "API key"))
        .raw("</label><input id=\"key\" name=\"key\" type=\"password\" autocomplete=\"off\" required maxlength=\"200\"></div>")
        .raw("<button type=\"submit\">")
        .t(lang, &title)
        .raw("</button></form></section>");
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

/// `POST /console`: exchanges an API key for a session.
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
    let Some(body) = read_body(payload, state.settings.server.max_body_bytes).await else {
        return sign_in_form(&req, StatusCode::PAYLOAD_TOO_LARGE, Some(wrong_key(lang)));
    };
    let form = form_fields(&body);
    let Some(secret) = super::value(&form, "key").and_then(ApiKeySecret::from_presented) else {
        return sign_in_form(&req, StatusCode::UNAUTHORIZED, Some(wrong_key(lang)));
    };
    let principal = match state.store.authenticate(&secret.hash()).await {
        Ok(Some(principal)) => principal,
        Ok(None) => return sign_in_form(&req, StatusCode::UNAUTHORIZED, Some(wrong_key(lang))),
        Err(err) => return super::error_page(&req, None, &err.into()),
    };
    if !OFFICERS.contains(&principal.role) {
        return sign_in_form(
            &req,
            StatusCode::FORBIDDEN,
            Some(lang.pick(&text!(
                "Chỉ khóa kế toán hoặc quản trị mới đăng nhập được bàn làm việc.",
                "Only a finance or admin key can sign in to the console."
            ))),
        );
    }
    // A browser that signs in again, or was handed a cookie, starts
    // afresh: the session its cookie names ends.
    if let Some(before) = session_token(&req)
        && let Err(err) = state.store.close_console_session(&hash(&before)).await
    {
        return super::error_page(&req, None, &err.into());
    }
    let mut random = [0u8; 32];
    rand::rng().fill_bytes(&mut random);
    let token = URL_SAFE_NO_PAD.encode(random);
    // Sessions idle past their time can no longer be used: forget them.
    if let Some(before) = Timestamp::now().plus(-idle(&state)) {
        let _ = state.store.forget_idle_console_sessions(before).await;
    }
    if let Err(err) = state
        .store
        .open_console_session(
            &principal,
            &hash(&token),
            Actor::key(&principal.key_id, request_id(&req)).from_addr(crate::client_addr::of(&req)),
        )
        .await
    {
        return super::error_page(&req, None, &err.into());
    }
    let mut response = see_other(&link(lang, "/console/dashboard", &[]));
    let Some(cookie) = session_cookie(&state, Some(&token)) else {
        return super::error_page(
            &req,
            None,
            &crate::error::ApiError::internal(&"the session cookie could not be set"),
        );
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

fn wrong_key(lang: Lang) -> &'static str {
    lang.pick(&text!(
        "Khóa API không đúng hoặc đã bị thu hồi.",
        "The API key is wrong or was revoked."
    ))
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
