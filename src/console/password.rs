//! An officer changes their own password: the current one, then the new
//! one twice. Their other sessions end; this one stays.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::session::{Officer, officer, posted_form};
use super::{Section, csrf_field, lang_of, link, notice, officer_page};
use crate::domain::officer::{self, Email};
use crate::pages::{Html, text};
use crate::startup::AppState;

const TITLE: crate::pages::Text = text!("Đổi mật khẩu", "Change password");

/// `GET /console/password`.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match officer(&req, &state).await {
        Ok(officer) => form(&req, &officer, StatusCode::OK, None),
        Err(answer) => answer,
    }
}

fn form(
    req: &HttpRequest,
    officer: &Officer,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let lang = lang_of(req);
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &TITLE).raw("</h1>");
    if let Some(error) = error {
        body.raw("<p class=\"message error\" role=\"alert\">")
            .text(error)
            .raw("</p>");
    }
    body.raw("<section class=\"card\"><form method=\"post\" action=\"")
        .text(&link(lang, "/console/password", &[]))
        .raw("\">");
    csrf_field(&mut body, officer);
    for (id, label, autocomplete) in [
        (
            "current",
            text!("Mật khẩu hiện tại", "Current password"),
            "current-password",
        ),
        (
            "new",
            text!(
                "Mật khẩu mới (ít nhất 12 ký tự)",
                "New password (at least 12 characters)"
            ),
            "new-password",
        ),
        (
            "again",
            text!("Nhập lại mật khẩu mới", "New password again"),
            "new-password",
        ),
    ] {
        body.raw("<div class=\"field\"><label for=\"")
            .raw(id)
            .raw("\">")
            .t(lang, &label)
            .raw("</label><input type=\"password\" required maxlength=\"128\" id=\"")
            .raw(id)
            .raw("\" name=\"")
            .raw(id)
            .raw("\" autocomplete=\"")
            .raw(autocomplete)
            .raw("\"></div>");
    }
    body.raw("<button type=\"submit\">")
        .t(lang, &TITLE)
        .raw("</button></form></section>");
    officer_page(req, officer, status, &TITLE, Section::Dashboard, body)
}

/// `POST /console/password`.
pub async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, fields) = match posted_form(&req, &state, payload).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let refuse = |message: &str| {
        form(
            &req,
            &officer,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(message),
        )
    };
    if officer.principal.officer_role.is_none() {
        return notice(
            &req,
            StatusCode::FORBIDDEN,
            Some(&officer),
            &TITLE,
            lang.pick(&text!(
                "Phiên này đăng nhập bằng khóa API: không có mật khẩu để đổi.",
                "This session signed in with an API key: there is no password to change."
            )),
        );
    }
    let value = |name| super::value(&fields, name).unwrap_or_default();
    let candidate = match state
        .store
        .officer_signing_in(&officer.principal.key_id)
        .await
    {
        Ok(Some(candidate)) => candidate,
        Ok(None) => {
            return refuse(lang.pick(&text!(
                "Không tìm thấy cán bộ.",
                "The officer was not found."
            )));
        }
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    if !officer::password_matches(&candidate.password_hash, value("current")) {
        return refuse(lang.pick(&text!(
            "Mật khẩu hiện tại không đúng.",
            "The current password is wrong."
        )));
    }
    if value("new") != value("again") {
        return refuse(lang.pick(&text!(
            "Hai lần nhập mật khẩu mới không giống nhau.",
            "The two new passwords differ."
        )));
    }
    let own = Email::parse("email", &candidate.email).is_ok_and(|email| {
        officer::check_password("new", value("new"), &email, &candidate.name).is_ok()
    });
    if !own {
        return refuse(lang.pick(&text!(
            "Mật khẩu mới cần ít nhất 12 ký tự, không phải mật khẩu phổ biến, và không chứa email hay tên của bạn.",
            "The new password needs at least 12 characters, must not be a common password, and must not contain your email or name."
        )));
    }
    let hash = officer::hash_password(value("new"));
    if let Err(err) = state
        .store
        .set_officer_password(
            &officer.actor(),
            &crate::domain::Scope::All,
            &officer.principal.key_id,
            &hash,
            Some(officer.token_hash()),
        )
        .await
    {
        return super::error_page(&req, Some(&officer), &err.into());
    }
    notice(
        &req,
        StatusCode::OK,
        Some(&officer),
        &TITLE,
        lang.pick(&text!(
            "Đã đổi mật khẩu. Các phiên đăng nhập khác của bạn đã kết thúc.",
            "The password is changed. Your other sessions have ended."
        )),
    )
}
