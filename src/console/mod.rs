//! The finance officers' web console under `/console`: sign in with a
//! finance or admin API key, then see the cashless rates, work the
//! exceptions queue, upload statements and registers, find payments and
//! record cash, and download every table as CSV.
//!
//! Pages are built the way [`crate::pages`] builds the citizens' pages:
//! on the server, escaped, in Vietnamese or (`?lang=en`) English, needing
//! no script and loading nothing from elsewhere. Every page acts through
//! the same store functions as the API, with the signed-in key's scope.

pub mod attempts;
pub mod audit;
pub mod chart;
pub mod csrf;
pub mod dashboard;
pub mod exceptions;
pub mod export;
pub mod invoices;
pub mod labels;
pub mod officers;
pub mod password;
pub mod payments;
pub mod refunds;
pub mod register;
pub mod second_factor;
pub mod session;
pub mod statements;
pub mod table;
pub mod uploads;
pub mod webhooks;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::domain::audit::Actor;
use crate::domain::{Role, Scope, Timestamp};
use crate::error::ApiError;
use crate::pages::{Html, Lang, Text, text};
use crate::store::Principal;

pub use session::Officer;

/// The console's sections, in the order the menu lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Dashboard,
    Exceptions,
    Uploads,
    Payments,
    Invoices,
    Register,
    Statements,
    Attempts,
    Webhooks,
    Refunds,
    Audit,
    /// For admins only.
    Officers,
}

impl Section {
    const ALL: [Section; 12] = [
        Section::Dashboard,
        Section::Exceptions,
        Section::Uploads,
        Section::Payments,
        Section::Invoices,
        Section::Register,
        Section::Statements,
        Section::Attempts,
        Section::Webhooks,
        Section::Refunds,
        Section::Audit,
        Section::Officers,
    ];

    fn path(self) -> &'static str {
        match self {
            Section::Dashboard => "/console/dashboard",
            Section::Exceptions => "/console/exceptions",
            Section::Uploads => "/console/uploads",
            Section::Payments => "/console/payments",
            Section::Invoices => "/console/invoices",
            Section::Register => "/console/register",
            Section::Statements => "/console/statements",
            Section::Attempts => "/console/attempts",
            Section::Webhooks => "/console/webhooks",
            Section::Refunds => "/console/refunds",
            Section::Audit => "/console/audit",
            Section::Officers => "/console/officers",
        }
    }

    fn name(self) -> &'static Text {
        match self {
            Section::Dashboard => &DASHBOARD,
            Section::Exceptions => &EXCEPTIONS,
            Section::Uploads => &UPLOADS,
            Section::Payments => &PAYMENTS,
            Section::Invoices => &invoices::INVOICES,
            Section::Register => &register::REGISTER,
            Section::Statements => &statements::STATEMENTS,
            Section::Attempts => &attempts::ATTEMPTS,
            Section::Webhooks => &webhooks::WEBHOOKS,
            Section::Refunds => &refunds::REFUNDS,
            Section::Audit => &audit::AUDIT,
            Section::Officers => &officers::OFFICERS,
        }
    }
}

// Words more than one console page uses.
pub const CONSOLE: Text = text!("Bàn làm việc kế toán", "Finance console");
pub const DASHBOARD: Text = text!("Tổng quan", "Dashboard");
pub const EXCEPTIONS: Text = text!("Ngoại lệ", "Exceptions");
pub const UPLOADS: Text = text!("Tải tệp lên", "Uploads");
pub const PAYMENTS: Text = text!("Thanh toán", "Payments");
pub const SIGN_OUT: Text = text!("Đăng xuất", "Sign out");
pub const OTHER_LANGUAGE: Text = text!("English", "Tiếng Việt");
pub const AGENCY: Text = text!("Cơ quan", "Agency");
pub const LEVEL: Text = text!("Cấp", "Level");
pub const FROM: Text = text!("Từ ngày", "From");
pub const TO: Text = text!("Đến ngày", "To");
pub const AMOUNT: Text = text!("Số tiền", "Amount");
pub const CHANNEL: Text = text!("Kênh", "Channel");
pub const STATUS: Text = text!("Trạng thái", "Status");
pub const KIND: Text = text!("Loại", "Kind");
pub const ALL: Text = text!("Tất cả", "All");
pub const FILTER: Text = text!("Lọc", "Filter");
pub const DOWNLOAD_CSV: Text = text!("Tải về CSV (Excel)", "Download CSV (Excel)");
pub const NEXT_PAGE: Text = text!("Trang sau", "Next page");
pub const NOTHING: Text = text!("Không có dữ liệu.", "Nothing to show.");
pub const DOSSIER: Text = text!("Mã hồ sơ", "Dossier code");
pub const PAYMENT_CODE: Text = text!("Mã thanh toán", "Payment code");
pub const OPENED: Text = text!("Ngày mở", "Opened");
pub const NOTE: Text = text!("Ghi chú", "Note");
pub const COULD_NOT: Text = text!("Không thực hiện được", "This could not be done");

const STYLE: &str = "*{box-sizing:border-box}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,Arial,sans-serif;color:#1a1a1a;background:#f4f5f7}\
main{max-width:72rem;margin:0 auto;padding:1rem}\
header{background:#fff;border-bottom:1px solid #d0d4da}\
header nav{max-width:72rem;margin:0 auto;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem}\
header .site{font-weight:700;color:#1a1a1a;margin-right:auto}\
nav a{color:#0b5cad;padding:.5rem .25rem}nav a[aria-current]{font-weight:700;color:#1a1a1a}\
a{color:#0b5cad}\
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:1}\
:focus-visible,input:focus,input:focus-within,select:focus,textarea:focus{outline:3px solid #b35c00;outline-offset:2px}\
.card{background:#fff;border-radius:.5rem;padding:1rem;margin:1rem 0;box-shadow:0 1px 2px rgba(0,0,0,.12);overflow-x:auto}\
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.15rem;margin:0 0 .5rem}h3{font-size:1rem;margin:1rem 0 .5rem}\
table{width:100%;border-collapse:collapse;font-size:.95rem}\
caption{text-align:left;font-weight:600;padding:.25rem 0}\
td,th{padding:.4rem .35rem;border-bottom:1px solid #d0d4da;text-align:left;vertical-align:top}\
.num{text-align:right;white-space:nowrap}tfoot td,tfoot th{font-weight:700;border-bottom:0}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{color:#4a4f57}dd{margin:0;overflow-wrap:anywhere}\
form.filters{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}\
label{display:block;font-weight:600;font-size:.9rem;color:#1a1a1a}\
input,select,textarea{display:block;font:inherit;padding:.45rem;border:1px solid #6b7280;border-radius:.3rem;background:#fff;color:#1a1a1a;min-width:10rem}\
textarea{width:100%;min-height:5rem}\
.field{margin:.5rem 0}\
button,.button{display:inline-block;padding:.55rem 1rem;font:inherit;font-weight:600;border:0;border-radius:.4rem;background:#0b5cad;color:#fff;text-decoration:none;cursor:pointer}\
.button.secondary,button.secondary{background:#e8eef5;color:#0b4a8c}\
nav form{margin:0}nav button{padding:.35rem .75rem}td form{margin:0}td button{white-space:nowrap;padding:.35rem .75rem}\
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:1rem}\
.figure{background:#fff;border-radius:.5rem;padding:1rem;box-shadow:0 1px 2px rgba(0,0,0,.12)}\
.figure .value{font-size:1.6rem;font-weight:700}.figure .label{color:#4a4f57;font-size:.9rem}\
.note{color:#4a4f57;font-size:.9rem}\
.ok{color:#17803d;font-weight:600}.bad{color:#b42318;font-weight:600}\
.message{border-left:4px solid #17803d;background:#fff;padding:.75rem 1rem;margin:1rem 0}\
.message.error{border-left-color:#b42318}\
.message.held{border-left-color:#b54708;background:#fffaeb}\
.chart svg{display:block;width:100%;height:auto;max-width:48rem}\
.legend span{display:inline-block;margin-right:1rem}.swatch{display:inline-block;width:.9rem;height:.9rem;vertical-align:middle;margin-right:.3rem}\
@media (max-width:40rem){dl{grid-template-columns:1fr}input,select{min-width:0;width:100%}}";

/// The frame every console page shares.
pub struct Layout<'a> {
    pub lang: Lang,
    pub title: &'a Text,
    /// The same page in the other language.
    pub toggle_href: String,
    /// The signed-in officer, whose menu and sign-out button are shown.
    pub officer: Option<&'a Officer>,
    pub section: Option<Section>,
}

/// A whole console page: `body` inside the shared frame.
pub fn page(layout: &Layout<'_>, body: Html) -> String {
    let lang = layout.lang;
    let mut html = Html::new();
    html.raw("<!doctype html><html lang=\"")
        .raw(lang.code())
        .raw("\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta name=\"referrer\" content=\"same-origin\"><title>")
        .t(lang, layout.title)
        .raw(" · ")
        .t(lang, &CONSOLE)
        .raw("</title><style>")
        .raw(STYLE)
        .raw("</style></head><body><a class=\"skip\" href=\"#content\">")
        .t(lang, &text!("Bỏ qua đến nội dung", "Skip to content"))
        .raw("</a><header><nav aria-label=\"")
        .t(lang, &text!("Menu chính", "Main menu"))
        .raw("\"><span class=\"site\">")
        .t(lang, &CONSOLE)
        .raw("</span>");
    if let Some(officer) = layout.officer {
        let admin = officer.principal.role == crate::domain::Role::Admin;
        for section in Section::ALL
            .into_iter()
            .filter(|s| admin || *s != Section::Officers)
        {
            html.raw("<a href=\"")
                .text(&link(lang, section.path(), &[]))
                .raw("\"");
            if layout.section == Some(section) {
                html.raw(" aria-current=\"page\"");
            }
            html.raw(">").t(lang, section.name()).raw("</a>");
        }
        if officer.principal.officer_role.is_some() {
            html.raw("<a href=\"")
                .text(&link(lang, "/console/password", &[]))
                .raw("\">")
                .t(lang, &text!("Đổi mật khẩu", "Change password"))
                .raw("</a>");
        }
        html.raw("<form method=\"post\" action=\"")
            .text(&link(lang, "/console/sign-out", &[]))
            .raw("\">");
        csrf_field(&mut html, officer);
        html.raw("<button class=\"secondary\" type=\"submit\">")
            .t(lang, &SIGN_OUT)
            .raw("</button></form>");
    }
    html.raw("<a href=\"")
        .text(&layout.toggle_href)
        .raw("\" hreflang=\"")
        .raw(lang.other().code())
        .raw("\" lang=\"")
        .raw(lang.other().code())
        .raw("\">")
        .t(lang, &OTHER_LANGUAGE)
        .raw("</a></nav></header><main id=\"content\">");
    html.append(body);
    html.raw("</main></body></html>");
    html.into_string()
}

/// The hidden field that carries the session's CSRF token.
pub fn csrf_field(html: &mut Html, officer: &Officer) {
    html.raw("<input type=\"hidden\" name=\"csrf\" value=\"")
        .text(&officer.csrf)
        .raw("\">");
}

/// The first-day and last-day fields of a filter form, as sent.
pub fn day_fields(html: &mut Html, lang: Lang, from: Option<&str>, to: Option<&str>) {
    for (id, label, value) in [("from", &FROM, from), ("to", &TO, to)] {
        html.raw("<div><label for=\"")
            .raw(id)
            .raw("\">")
            .t(lang, label)
            .raw("</label><input type=\"date\" id=\"")
            .raw(id)
            .raw("\" name=\"")
            .raw(id)
            .raw("\" value=\"")
            .text(value.unwrap_or_default())
            .raw("\"></div>");
    }
}

/// A signed-in officer's page of `section`: `body` in the shared frame.
pub fn officer_page(
    req: &HttpRequest,
    officer: &Officer,
    status: StatusCode,
    title: &Text,
    section: Section,
    body: Html,
) -> HttpResponse {
    let lang = lang_of(req);
    html(
        status,
        page(
            &Layout {
                lang,
                title,
                toggle_href: toggle_href(req, lang),
                officer: Some(officer),
                section: Some(section),
            },
            body,
        ),
    )
}

/// The hidden field that keeps a GET form in the page's language.
pub fn lang_field(html: &mut Html, lang: Lang) {
    if lang == Lang::En {
        html.raw("<input type=\"hidden\" name=\"lang\" value=\"en\">");
    }
}

/// A console URL: `path` with `params` (empty ones left out) and the
/// page's language.
pub fn link(lang: Lang, path: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (key, value) in params {
        if !value.is_empty() {
            query.append_pair(key, value);
            any = true;
        }
    }
    if lang == Lang::En {
        query.append_pair("lang", "en");
        any = true;
    }
    if any {
        format!("{path}?{}", query.finish())
    } else {
        path.to_owned()
    }
}

/// The request's query parameters; the last of a repeated name wins.
pub fn query_of(req: &HttpRequest) -> HashMap<String, String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// The page's language, from `?lang=`.
pub fn lang_of(req: &HttpRequest) -> Lang {
    Lang::from_query(query_of(req).get("lang").map(String::as_str))
}

/// The request's own URL with `lang` set to the other language. A form's
/// answer has no URL of its own to show again (`/console/uploads/register`
/// is POST only): its toggle leads to the page the form is on.
pub fn toggle_href(req: &HttpRequest, lang: Lang) -> String {
    if req.method() != actix_web::http::Method::GET {
        let form_page = match req.path().rsplit_once('/') {
            Some((parent, _)) if parent.starts_with("/console") => parent,
            _ => "/console",
        };
        return link(lang.other(), form_page, &[]);
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        if key != "lang" {
            query.append_pair(&key, &value);
        }
    }
    query.append_pair("lang", lang.other().code());
    format!("{}?{}", req.path(), query.finish())
}

/// A non-empty, trimmed query or form value.
pub fn value<'a>(values: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    values.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Security headers every console answer carries: never cached, never
/// framed, no script, forms only to the console itself.
fn secure(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Same-origin: forms then carry an `Origin` that can be checked.
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    builder
}

pub fn html(status: StatusCode, body: String) -> HttpResponse {
    secure(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// `303 See Other` to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    secure(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, location))
        .finish()
}

/// A CSV file named `name` for a spreadsheet.
pub fn csv_file(name: &str, body: String) -> HttpResponse {
    secure(HttpResponse::Ok())
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body)
}

/// A page that says why nothing else is shown, with `detail` if any.
pub fn notice(
    req: &HttpRequest,
    status: StatusCode,
    officer: Option<&Officer>,
    title: &Text,
    detail: &str,
) -> HttpResponse {
    let lang = lang_of(req);
    let mut body = Html::new();
    body.raw("<h1>").t(lang, title).raw("</h1>");
    body.raw("<section class=\"card\"><p>")
        .text(detail)
        .raw("</p>");
    body.raw("<p><a href=\"")
        .text(&link(
            lang,
            if officer.is_some() {
                "/console/dashboard"
            } else {
                "/console"
            },
            &[],
        ))
        .raw("\">")
        .t(lang, &text!("Về trang đầu", "Back to the start"))
        .raw("</a></p></section>");
    html(
        status,
        page(
            &Layout {
                lang,
                title,
                toggle_href: toggle_href(req, lang),
                officer,
                section: None,
            },
            body,
        ),
    )
}

/// The page for an error of the shared API functions: what the officer
/// can fix is said; a failure on our side is logged and said to be ours.
pub fn error_page(req: &HttpRequest, officer: Option<&Officer>, err: &ApiError) -> HttpResponse {
    let lang = lang_of(req);
    if err.status.is_server_error() {
        tracing::error!(error = %err.message, "a console page failed");
        let (title, message) = &crate::pages::notice::PROBLEM;
        return notice(req, err.status, officer, title, lang.pick(message));
    }
    if err.status == StatusCode::NOT_FOUND {
        return notice(
            req,
            StatusCode::NOT_FOUND,
            officer,
            &text!("Không tìm thấy", "Not found"),
            lang.pick(&text!(
                "Không có mục này, hoặc mục này không thuộc phạm vi của bạn.",
                "There is no such item, or it is not in your scope."
            )),
        );
    }
    notice(req, err.status, officer, &COULD_NOT, &said(err, lang))
}

/// What an error of the shared use-cases says to the officer: in English
/// the API's message; in Vietnamese what its code means, and the field of
/// the form it is about.
pub fn said(err: &ApiError, lang: Lang) -> String {
    if lang == Lang::En {
        return err.message.clone();
    }
    let meaning = labels::error_text(err.code);
    match err.details.get("field").and_then(|f| f.as_str()) {
        Some(field) => match labels::field_name(field, lang) {
            Some(name) => format!("{meaning} Mục cần sửa: {name}."),
            None => meaning.to_owned(),
        },
        None => meaning.to_owned(),
    }
}

/// The answer for too many requests, with `Retry-After`.
pub fn too_many(req: &HttpRequest, retry_after: u64) -> HttpResponse {
    let lang = lang_of(req);
    let mut response = notice(
        req,
        StatusCode::TOO_MANY_REQUESTS,
        None,
        &text!("Quá nhiều lần thử", "Too many attempts"),
        lang.pick(&text!(
            "Đã thử đăng nhập quá nhiều lần trong một phút. Vui lòng đợi rồi thử lại.",
            "Too many sign-in attempts in a minute. Please wait and try again."
        )),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// Reads a request body up to `limit` bytes; `None` when it is larger or
/// cannot be read.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Option<web::BytesMut> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// An `application/x-www-form-urlencoded` body's fields.
pub fn form_fields(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Today in Vietnam.
pub fn today() -> time::Date {
    Timestamp::now().in_vietnam().date()
}

/// The roles that may use the console.
pub const OFFICERS: &[Role] = &[Role::Finance, Role::Admin];

impl Officer {
    pub fn scope(&self) -> &Scope {
        &self.principal.scope
    }

    pub fn actor(&self) -> Actor {
        self.principal
            .actor(self.request_id.clone())
            .from_addr(self.client_addr)
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Whether the officer may approve or reject a refund: an approver or
    /// an admin (or the first run's admin key), not a finance officer.
    pub fn decides_refunds(&self) -> bool {
        self.principal.officer_role != Some(crate::domain::officer::OfficerRole::Finance)
    }
}
