//! Setting up the second factor: the officer scans a QR code (or types
//! the secret) into an authenticator app and confirms with a first code.
//! Approvers and admins must before anything else of the console opens;
//! a finance officer may.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::session::{Officer, enrolling_officer};
use super::{
    COULD_NOT, Layout, csrf, csrf_field, form_fields, html, lang_of, link, notice, page, read_body,
    see_other, toggle_href,
};
use crate::domain::Timestamp;
use crate::domain::officer::TotpSecret;
use crate::pages::{Html, text};
use crate::startup::AppState;

/// The issuer the authenticator app shows beside the code.
const ISSUER: &str = "lephi";

const TITLE: crate::pages::Text = text!("Xác thực hai lớp", "Two-step verification");

/// `GET /console/second-factor`: the QR code and the form for a first code.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let (officer, enrolling) = match enrolling_officer(&req, &state).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    form_page(&req, &state, &officer, enrolling, StatusCode::OK, None).await
}

async fn form_page(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    enrolling: bool,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let lang = lang_of(req);
    let Some(_) = officer.principal.officer_role else {
        return notice(
            req,
            StatusCode::FORBIDDEN,
            Some(officer),
            &COULD_NOT,
            lang.pick(&text!(
                "Xác thực hai lớp dành cho cán bộ; phiên này đăng nhập bằng khóa API.",
                "Two-step verification is for officers; this session signed in with an API key."
            )),
        );
    };
    let secret = match state
        .store
        .second_factor_to_enrol(&officer.principal.key_id, &TotpSecret::generate().base32())
        .await
    {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return notice(
                req,
                StatusCode::CONFLICT,
                Some(officer),
                &TITLE,
                lang.pick(&text!(
                    "Xác thực hai lớp đã được cài. Muốn đổi thiết bị, hãy nhờ quản trị đặt lại.",
                    "Two-step verification is set up already. To move it to another device, ask an admin to reset it."
                )),
            );
        }
        Err(err) => return super::error_page(req, Some(officer), &err.into()),
    };
    let Some(secret) = TotpSecret::from_base32(&secret) else {
        return super::error_page(
            req,
            Some(officer),
            &crate::error::ApiError::internal(&"a stored second factor is not base32"),
        );
    };
    let account = match state
        .store
        .officer_signing_in(&officer.principal.key_id)
        .await
    {
        Ok(Some(found)) => found.email,
        Ok(None) => {
            return super::error_page(
                req,
                Some(officer),
                &crate::store::StoreError::NotFound.into(),
            );
        }
        Err(err) => return super::error_page(req, Some(officer), &err.into()),
    };
    let url = secret.otpauth_url(ISSUER, &account);
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &TITLE).raw("</h1>");
    if let Some(error) = error {
        body.raw("<p class=\"message error\" role=\"alert\">")
            .text(error)
            .raw("</p>");
    }
    body.raw("<section class=\"card\"><p>").t(
        lang,
        &text!(
            "Mở ứng dụng xác thực (Google Authenticator, Microsoft Authenticator, FreeOTP…), quét mã QR này, rồi nhập mã 6 chữ số ứng dụng hiện ra.",
            "Open an authenticator app (Google Authenticator, Microsoft Authenticator, FreeOTP…), scan this QR code, then enter the 6-digit code the app shows."
        ),
    );
    body.raw("</p>");
    body.raw("<div class=\"qr\">");
    body.qr(
        &url,
        lang.pick(&text!(
            "Mã QR để cài xác thực hai lớp",
            "QR code to set up two-step verification"
        )),
        220,
    );
    body.raw("</div>");
    body.raw("<p>")
        .t(
            lang,
            &text!(
                "Không quét được? Nhập khoá này: ",
                "Cannot scan? Enter this key: "
            ),
        )
        .raw("<code id=\"secret\">")
        .text(&secret.base32())
        .raw("</code></p><form method=\"post\" action=\"")
        .text(&link(lang, "/console/second-factor", &[]))
        .raw("\">");
    csrf_field(&mut body, officer);
    body.raw("<div class=\"field\"><label for=\"code\">")
        .t(lang, &text!("Mã 6 chữ số", "6-digit code"))
        .raw("</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required maxlength=\"8\"></div><button type=\"submit\">")
        .t(lang, &text!("Xác nhận", "Confirm"))
        .raw("</button></form></section>");
    html(
        status,
        page(
            &Layout {
                lang,
                title: &TITLE,
                toggle_href: toggle_href(req, lang),
                // Until it is set up, nothing else of the console opens.
                officer: (!enrolling).then_some(officer),
                section: None,
            },
            body,
        ),
    )
}

/// `POST /console/second-factor`: the first code confirms the set-up.
pub async fn confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    if !csrf::same_origin(&req, &state) {
        return super::session::forged(&req, None);
    }
    let (officer, enrolling) = match enrolling_officer(&req, &state).await {
        Ok(found) => found,
        Err(answer) => return answer,
    };
    let Some(body) = read_body(payload, state.settings.server.max_body_bytes).await else {
        return super::session::forged(&req, Some(&officer));
    };
    let form = form_fields(&body);
    if !csrf::token_matches(&officer.csrf, super::value(&form, "csrf")) {
        return super::session::forged(&req, Some(&officer));
    }
    let id = officer.principal.key_id.clone();
    let pending = match state
        .store
        .second_factor_to_enrol(&id, &TotpSecret::generate().base32())
        .await
    {
        Ok(pending) => pending.as_deref().and_then(TotpSecret::from_base32),
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    let Some(secret) = pending else {
        return see_other(&link(lang, "/console/dashboard", &[]));
    };
    let unix = u64::try_from(Timestamp::now().as_datetime().unix_timestamp()).unwrap_or(0);
    let code = super::value(&form, "code").unwrap_or_default();
    let confirmed = match secret.accepts(code, unix, None) {
        Some(step) => {
            state
                .store
                .confirm_second_factor(&officer.actor(), &id, step)
                .await
        }
        None => Ok(false),
    };
    match confirmed {
        Ok(true) => {}
        Ok(false) => {
            let wrong = lang.pick(&text!(
                "Mã không đúng. Hãy kiểm tra giờ trên điện thoại và nhập mã đang hiện.",
                "The code is wrong. Check the time on the phone and enter the code it shows now."
            ));
            return form_page(
                &req,
                &state,
                &officer,
                enrolling,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(wrong),
            )
            .await;
        }
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    }
    if enrolling && let Err(err) = state.store.finish_enrolment(officer.token_hash()).await {
        return super::error_page(&req, Some(&officer), &err.into());
    }
    see_other(&link(lang, "/console/dashboard", &[]))
}
