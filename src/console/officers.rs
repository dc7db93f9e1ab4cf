//! The officers page, for admins: who signs in to the console in their
//! scope, with their role, agency, second factor and state; an admin
//! creates an officer (the first password is shown once), makes a new
//! password, resets the second factor or disables them. Every change is
//! audited under the admin's name, as from the command line.

use actix_web::http::StatusCode;

use super::labels::Label;
use actix_web::{HttpRequest, HttpResponse, web};

use super::session::{Officer, officer, posted_form};
use super::{Section, csrf_field, lang_of, link, notice, officer_page, see_other};
use crate::domain::Role;
use crate::domain::officer::OfficerRole;
use crate::pages::{Html, Lang, Text, text};
use crate::startup::AppState;
use crate::store::StoreError;
use crate::usecases::officers::{OfficerForm, WithPassword};

pub const OFFICERS: Text = text!("Cán bộ", "Officers");

/// The admin of the request, or the page that says only admins come here.
async fn admin(req: &HttpRequest, state: &AppState) -> Result<Officer, HttpResponse> {
    let officer = officer(req, state).await?;
    if officer.principal.role == Role::Admin {
        Ok(officer)
    } else {
        Err(only_admins(req, &officer))
    }
}

fn only_admins(req: &HttpRequest, officer: &Officer) -> HttpResponse {
    notice(
        req,
        StatusCode::FORBIDDEN,
        Some(officer),
        &OFFICERS,
        lang_of(req).pick(&text!(
            "Chỉ quản trị mới quản lý được cán bộ.",
            "Only an admin manages officers."
        )),
    )
}

/// `GET /console/officers`.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match admin(&req, &state).await {
        Ok(officer) => page(&req, &state, &officer, StatusCode::OK, None).await,
        Err(answer) => answer,
    }
}

async fn page(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    status: StatusCode,
    message: Option<(&str, bool)>,
) -> HttpResponse {
    let lang = lang_of(req);
    let officers = match state.store.officers(officer.scope()).await {
        Ok(officers) => officers,
        Err(err) => return super::error_page(req, Some(officer), &err.into()),
    };
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &OFFICERS).raw("</h1>");
    if let Some((message, error)) = message {
        body.raw(if error {
            "<p class=\"message error\" role=\"alert\">"
        } else {
            "<p class=\"message\" role=\"status\">"
        })
        .text(message)
        .raw("</p>");
    }
    body.raw("<section class=\"card\"><table><caption>")
        .t(lang, &OFFICERS)
        .raw("</caption><thead><tr>");
    for heading in [
        text!("Họ tên", "Name"),
        text!("Email", "Email"),
        text!("Vai trò", "Role"),
        text!("Cơ quan", "Agency"),
        text!("Xác thực hai lớp", "Two-step verification"),
        text!("Trạng thái", "State"),
        text!("Thao tác", "Actions"),
    ] {
        body.raw("<th scope=\"col\">")
            .t(lang, &heading)
            .raw("</th>");
    }
    body.raw("</tr></thead><tbody>");
    for o in &officers {
        body.raw("<tr><td>")
            .text(&o.name)
            .raw("</td><td>")
            .text(&o.email)
            .raw("</td><td>")
            .text(o.role.label(lang))
            .raw("</td><td>")
            .text(
                o.agency_code
                    .as_deref()
                    .unwrap_or(lang.pick(&text!("Toàn hệ thống", "The whole service"))),
            )
            .raw("</td><td>")
            .t(
                lang,
                &if o.second_factor {
                    text!("Đã cài", "Set up")
                } else {
                    text!("Chưa cài", "Not set up")
                },
            )
            .raw("</td><td>")
            .t(
                lang,
                &if o.disabled_at.is_some() {
                    text!("Đã vô hiệu hoá", "Disabled")
                } else {
                    text!("Đang hoạt động", "Active")
                },
            )
            .raw("</td><td>");
        if o.disabled_at.is_none() {
            for (action, label) in [
                ("reset-password", text!("Cấp mật khẩu mới", "New password")),
                (
                    "reset-second-factor",
                    text!("Đặt lại xác thực hai lớp", "Reset two-step verification"),
                ),
                ("disable", text!("Vô hiệu hoá", "Disable")),
            ] {
                body.raw("<form method=\"post\" action=\"")
                    .text(&link(
                        lang,
                        &format!("/console/officers/{}/{action}", o.id),
                        &[],
                    ))
                    .raw("\">");
                csrf_field(&mut body, officer);
                body.raw("<button class=\"secondary\" type=\"submit\">")
                    .t(lang, &label)
                    .raw("</button></form>");
            }
        }
        body.raw("</td></tr>");
    }
    body.raw("</tbody></table></section>");
    // The form for a new officer.
    body.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Thêm cán bộ", "Add an officer"))
        .raw("</h2><form method=\"post\" action=\"")
        .text(&link(lang, "/console/officers", &[]))
        .raw("\">");
    csrf_field(&mut body, officer);
    for (id, label, kind) in [
        ("name", text!("Họ tên", "Name"), "text"),
        ("email", text!("Email", "Email"), "email"),
        (
            "agency",
            text!(
                "Mã cơ quan (để trống: toàn hệ thống, chỉ cho quản trị)",
                "Agency code (empty: the whole service, admins only)"
            ),
            "text",
        ),
    ] {
        body.raw("<div class=\"field\"><label for=\"")
            .raw(id)
            .raw("\">")
            .t(lang, &label)
            .raw("</label><input id=\"")
            .raw(id)
            .raw("\" name=\"")
            .raw(id)
            .raw("\" type=\"")
            .raw(kind)
            .raw("\" maxlength=\"254\"></div>");
    }
    body.raw("<div class=\"field\"><label for=\"role\">")
        .t(lang, &text!("Vai trò", "Role"))
        .raw("</label><select id=\"role\" name=\"role\">");
    for role in OfficerRole::ALL {
        body.raw("<option value=\"")
            .raw(role.as_str())
            .raw("\">")
            .text(role.label(lang))
            .raw("</option>");
    }
    body.raw("</select></div><button type=\"submit\">")
        .t(lang, &text!("Thêm cán bộ", "Add an officer"))
        .raw("</button></form></section>");
    officer_page(req, officer, status, &OFFICERS, Section::Officers, body)
}

/// Why a change of an officer was refused, in the admin's language.
fn refusal(err: &StoreError, lang: Lang) -> Option<&'static str> {
    Some(lang.pick(&match err {
        StoreError::Invalid(invalid) => match invalid.field.as_str() {
            "email" => text!(
                "Email không hợp lệ, hoặc đã có cán bộ đăng nhập bằng email này.",
                "The email is not valid, or another officer signs in with it."
            ),
            "role" => text!("Vai trò không hợp lệ.", "The role is not valid."),
            "name" => text!(
                "Họ tên cần có, tối đa 200 ký tự, không có ký tự ẩn.",
                "The name is needed, at most 200 characters, without invisible characters."
            ),
            _ => text!(
                "Cán bộ làm việc cho một cơ quan; chỉ quản trị của toàn hệ thống mới để trống.",
                "An officer works for an agency; only an admin of the whole service has none."
            ),
        },
        StoreError::AgencyNotFound(_) | StoreError::NotFound => text!(
            "Không có cơ quan hoặc cán bộ này trong phạm vi của bạn.",
            "No such agency or officer in your scope."
        ),
        _ => return None,
    }))
}

/// The page after a change: the list again, with what happened.
async fn after(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    done: Result<String, StoreError>,
) -> HttpResponse {
    let lang = lang_of(req);
    match done {
        Ok(message) => page(req, state, officer, StatusCode::OK, Some((&message, false))).await,
        Err(err) => match refusal(&err, lang) {
            Some(why) => {
                page(
                    req,
                    state,
                    officer,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Some((why, true)),
                )
                .await
            }
            None => super::error_page(req, Some(officer), &err.into()),
        },
    }
}

fn shown_once(made: &WithPassword, lang: Lang) -> String {
    format!(
        "{} {} <{}>: {}. {}",
        lang.pick(&text!("Mật khẩu của", "The password of")),
        made.officer.name,
        made.officer.email,
        made.password,
        lang.pick(&text!(
            "Mật khẩu chỉ hiện lần này: hãy trao riêng cho cán bộ; họ đổi lại sau khi đăng nhập.",
            "It is shown this once: give it to the officer alone; they change it after signing in."
        ))
    )
}

/// `POST /console/officers`: creates an officer.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, form) = match posted_form(&req, &state, payload).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    if officer.principal.role != Role::Admin {
        return only_admins(&req, &officer);
    }
    let value = |name| super::value(&form, name).unwrap_or_default();
    let done = crate::usecases::officers::create(
        &state.store,
        &officer.actor(),
        officer.scope(),
        &OfficerForm {
            name: value("name"),
            email: value("email"),
            role: value("role"),
            agency: super::value(&form, "agency"),
        },
    )
    .await
    .map(|made| shown_once(&made, lang));
    after(&req, &state, &officer, done).await
}

/// `POST /console/officers/{id}/{action}`: a new password, the second
/// factor reset, or the officer disabled.
pub async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, _) = match posted_form(&req, &state, payload).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    if officer.principal.role != Role::Admin {
        return only_admins(&req, &officer);
    }
    let (id, action) = path.into_inner();
    let store = &state.store;
    let (actor, scope) = (officer.actor(), officer.scope().clone());
    let done = match action.as_str() {
        "reset-password" => crate::usecases::officers::reset_password(store, &actor, &scope, &id)
            .await
            .map(|made| shown_once(&made, lang)),
        "reset-second-factor" => store
            .reset_second_factor(&actor, &scope, &id)
            .await
            .map(|()| {
                lang.pick(&text!(
                "Đã đặt lại xác thực hai lớp: cán bộ cài lại ở lần đăng nhập sau.",
                "Two-step verification is reset: the officer sets it up again at the next sign-in."
            ))
            .to_owned()
            }),
        "disable" => store.disable_officer(&actor, &scope, &id).await.map(|()| {
            lang.pick(&text!(
                "Đã vô hiệu hoá: cán bộ không đăng nhập được nữa, các phiên của họ đã kết thúc.",
                "Disabled: the officer can no longer sign in, and their sessions have ended."
            ))
            .to_owned()
        }),
        _ => return see_other(&link(lang, "/console/officers", &[])),
    };
    after(&req, &state, &officer, done).await
}
