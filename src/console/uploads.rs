//! `/console/uploads`: a provider's or bank's settlement statement, and
//! the dossier register, uploaded as a form with a file (streamed to the
//! upload folder as it comes, within
//! `reconciliation.max_file_bytes`). A statement is queued as an import job
//! through the same use-case as the API's ([`crate::imports`]), and the
//! officer is sent to its page, which refreshes itself while the job runs
//! and then shows what it did, or the line that made it refuse the file.

use std::collections::HashMap;

use actix_web::http::StatusCode;

use super::labels::Label;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use futures_util::StreamExt;

use super::{COULD_NOT, Officer, Section, csrf_field, lang_of, link, session};
use crate::domain::payment::Channel;
use crate::domain::settlement::ImportStatus;
use crate::error::ApiError;
use crate::imports::upload::{self, StoredUpload};
use crate::pages::{Html, Lang, Text, channel_name, count, text};
use crate::startup::AppState;
use crate::store::{RegisterImport, StatementImport, StoreError};

const STATEMENT: Text = text!("Sao kê đối soát", "Settlement statement");
const REGISTER: Text = text!("Sổ hồ sơ", "Dossier register");
const FILE: Text = text!("Tệp CSV", "CSV file");
const UPLOAD: Text = text!("Tải lên và đối soát", "Upload and reconcile");

/// What the page says after an upload.
enum Outcome {
    /// A statement queued (or queued before): its page follows it.
    Statement {
        id: String,
        new: bool,
    },
    /// A register queued (or being imported already): its page follows it.
    Register {
        id: String,
        new: bool,
    },
    Refused(ApiError),
}

/// `GET /console/uploads`.
pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    render(&req, &state, &officer, StatusCode::OK, None)
}

fn render(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    status: StatusCode,
    outcome: Option<Outcome>,
) -> HttpResponse {
    let lang = lang_of(req);
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &super::UPLOADS).raw("</h1>");
    match outcome {
        // Shown on the import's own page, which `upload` redirects to.
        Some(Outcome::Statement { .. } | Outcome::Register { .. }) => {}
        Some(Outcome::Refused(err)) => refused(&mut body, lang, &err),
        None => {}
    }
    statement_form(&mut body, lang, state, officer);
    register_form(&mut body, lang, officer);
    super::officer_page(
        req,
        officer,
        status,
        &super::UPLOADS,
        Section::Uploads,
        body,
    )
}

fn file_field(html: &mut Html, lang: Lang, id: &'static str) {
    html.raw("<div class=\"field\"><label for=\"")
        .raw(id)
        .raw("\">")
        .t(lang, &FILE)
        .raw("</label><input type=\"file\" id=\"")
        .raw(id)
        .raw("\" name=\"file\" accept=\".csv,text/csv\" required></div>");
}

fn statement_form(html: &mut Html, lang: Lang, state: &AppState, officer: &Officer) {
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &STATEMENT)
        .raw("</h2><form method=\"post\" enctype=\"multipart/form-data\" action=\"")
        .text(&link(lang, "/console/uploads/statement", &[]))
        .raw("\">");
    csrf_field(html, officer);
    html.raw("<div class=\"field\"><label for=\"channel\">")
        .t(lang, &super::CHANNEL)
        .raw("</label><select id=\"channel\" name=\"channel\" required>");
    for channel in Channel::ALL.into_iter().filter(|c| c.is_cashless()) {
        html.raw("<option value=\"")
            .raw(channel.as_str())
            .raw("\">")
            .text(channel_name(channel, lang))
            .raw("</option>");
    }
    html.raw("</select></div><div class=\"field\"><label for=\"profile\">")
        .t(lang, &text!("Mẫu tệp", "File profile"))
        .raw("</label><select id=\"profile\" name=\"profile\"><option value=\"\">")
        .t(lang, &text!("Mặc định của kênh", "The channel's default"))
        .raw("</option>");
    for name in state.profiles.names() {
        html.raw("<option value=\"")
            .text(name)
            .raw("\">")
            .text(super::labels::profile_name(name, lang))
            .raw("</option>");
    }
    html.raw("</select></div><div class=\"field\"><label for=\"account\">")
        .t(
            lang,
            &text!(
                "Số tài khoản (sao kê ngân hàng)",
                "Account number (bank statements)"
            ),
        )
        .raw("</label><input id=\"account\" name=\"account\" maxlength=\"19\" inputmode=\"numeric\"></div>");
    file_field(html, lang, "statement-file");
    html.raw("<button type=\"submit\">")
        .t(lang, &UPLOAD)
        .raw("</button></form></section>");
}

fn register_form(html: &mut Html, lang: Lang, officer: &Officer) {
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &REGISTER)
        .raw("</h2><form method=\"post\" enctype=\"multipart/form-data\" action=\"")
        .text(&link(lang, "/console/uploads/register", &[]))
        .raw("\">");
    csrf_field(html, officer);
    file_field(html, lang, "register-file");
    html.raw("<button type=\"submit\">")
        .t(lang, &UPLOAD)
        .raw("</button></form></section>");
}

fn row(html: &mut Html, label: &str, count: &str) {
    html.raw("<tr><th scope=\"row\">")
        .text(label)
        .raw("</th><td class=\"num\">")
        .text(count)
        .raw("</td></tr>");
}

/// `GET /console/uploads/statements/{id}`: an import's page. While its
/// job runs the page refreshes itself every two seconds (no script), with
/// a progress bar; then it shows the summary, or the refused line.
pub async fn statement_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    job_page(
        req,
        state,
        text!("Lần nhập sao kê", "The import"),
        |state, scope| async move { state.store.statement_import(&scope, &id).await },
        |import| import.status.is_final(),
        import_status,
    )
    .await
}

/// An import's page: the job `find` finds in the officer's scope, drawn by
/// `draw` (told whether the officer sent the same file again), refreshing
/// itself every two seconds while `ended` says it has not.
async fn job_page<T, Find, Fut>(
    req: HttpRequest,
    state: web::Data<AppState>,
    what: Text,
    find: Find,
    ended: impl FnOnce(&T) -> bool,
    draw: impl FnOnce(&mut Html, Lang, &T, bool),
) -> HttpResponse
where
    Find: FnOnce(web::Data<AppState>, crate::domain::Scope) -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let lang = lang_of(&req);
    let import = match find(state.clone(), officer.scope().clone()).await {
        Ok(import) => import,
        Err(StoreError::NotFound) => {
            let err = ApiError::not_found(lang.pick(&what));
            return render(
                &req,
                &state,
                &officer,
                err.status,
                Some(Outcome::Refused(err)),
            );
        }
        Err(err) => return super::error_page(&req, Some(&officer), &ApiError::from(err)),
    };
    let again = req.query_string().contains("again=1");
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &super::UPLOADS).raw("</h1>");
    let ended = ended(&import);
    draw(&mut body, lang, &import, again);
    body.raw("<p><a href=\"")
        .text(&link(lang, "/console/uploads", &[]))
        .raw("\">")
        .t(lang, &text!("Tải lên tệp khác", "Upload another file"))
        .raw("</a></p>");
    let mut page = super::officer_page(
        &req,
        &officer,
        StatusCode::OK,
        &super::UPLOADS,
        Section::Uploads,
        body,
    );
    if !ended {
        page.headers_mut().insert(
            header::HeaderName::from_static("refresh"),
            header::HeaderValue::from_static("2"),
        );
    }
    page
}

/// Who sent the file, and when.
fn imported_by(
    html: &mut Html,
    lang: Lang,
    at: crate::domain::Timestamp,
    by: &str,
    name: Option<&str>,
) {
    html.raw("<p class=\"note\" id=\"imported-by\">")
        .t(lang, &text!("Người nhập", "Imported by"))
        .raw(": ")
        .text(&super::labels::actor_name(by, name, lang))
        .raw(" · ")
        .text(&crate::pages::vietnam_minute(at))
        .raw("</p>");
}

fn import_status(html: &mut Html, lang: Lang, import: &StatementImport, again: bool) {
    let p = &import.progress;
    html.raw("<section class=\"card\" id=\"import-summary\" role=\"status\" data-status=\"")
        .raw(import.status.as_str())
        .raw("\"><h2>")
        .t(lang, &text!("Sao kê", "Statement"))
        .raw(" ")
        .text(channel_name(import.channel, lang))
        .raw("</h2>");
    imported_by(
        html,
        lang,
        import.imported_at,
        &import.imported_by,
        import.imported_by_name.as_deref(),
    );
    if again {
        html.raw("<p class=\"note\">")
            .t(
                lang,
                &text!(
                    "Tệp này đã được tải lên trước đây; không có gì thay đổi.",
                    "This file was imported before; nothing changed."
                ),
            )
            .raw("</p>");
    }
    match import.status {
        ImportStatus::Queued => {
            html.raw("<p>")
                .t(
                    lang,
                    &text!(
                        "Đang chờ đến lượt đối soát. Trang tự cập nhật.",
                        "Waiting for its turn. This page updates itself."
                    ),
                )
                .raw("</p><progress max=\"100\"></progress>");
        }
        ImportStatus::Running => match p.lines_total {
            None => {
                html.raw("<p>")
                    .t(
                        lang,
                        &text!("Đang kiểm tra các dòng:", "Checking the lines:"),
                    )
                    .raw(" <strong>")
                    .text(&count(p.lines_checked, lang))
                    .raw("</strong>. ")
                    .t(
                        lang,
                        &text!("Trang tự cập nhật.", "This page updates itself."),
                    )
                    .raw("</p><progress max=\"100\"></progress>");
            }
            Some(total) => {
                html.raw("<p>")
                    .t(lang, &text!("Đang đối soát:", "Reconciling:"))
                    .raw(" <strong>")
                    .text(&count(p.lines_applied, lang))
                    .raw(" / ")
                    .text(&count(total, lang))
                    .raw("</strong> ")
                    .t(lang, &text!("dòng", "lines"))
                    .raw(", ")
                    .text(&count(p.exceptions_so_far, lang))
                    .raw(" ")
                    .t(lang, &text!("ngoại lệ", "exceptions"))
                    .raw(". ")
                    .t(
                        lang,
                        &text!("Trang tự cập nhật.", "This page updates itself."),
                    )
                    .raw("</p><progress id=\"import-progress\" max=\"")
                    .text(&total.max(1).to_string())
                    .raw("\" value=\"")
                    .text(&p.lines_applied.to_string())
                    .raw("\"></progress>");
            }
        },
        ImportStatus::Refused => {
            refused_job(html, lang, import.refused.as_ref());
        }
        ImportStatus::Done => {
            let Some(summary) = &import.summary else {
                html.raw("</section>");
                return;
            };
            html.raw("<p>")
                .t(lang, &text!("Đã đối soát xong.", "Reconciled."))
                .raw("</p><table><tbody>");
            row(
                html,
                lang.pick(&text!("Số dòng", "Lines")),
                &count(summary.lines, lang),
            );
            for (outcome, n) in &summary.outcomes {
                row(html, outcome.label(lang), &count(*n, lang));
            }
            row(
                html,
                lang.pick(&text!("Ngoại lệ mới", "Exceptions opened")),
                &count(summary.exceptions_opened, lang),
            );
            row(
                html,
                lang.pick(&text!("Chưa được quyết toán", "Unsettled payments")),
                &count(summary.unsettled_payments, lang),
            );
            html.raw("</tbody></table>");
        }
    }
    html.raw("</section>");
}

/// Ends a job's status card and shows why its file was refused, at which
/// line.
fn refused_job(html: &mut Html, lang: Lang, refusal: Option<&crate::store::Refusal>) {
    let (line, reason) = refusal.map_or((0, ""), |r| (r.line, r.reason.as_str()));
    html.raw(
        "</section><section class=\"card message error\" id=\"import-refused\" role=\"alert\"><h2>",
    )
    .t(lang, &COULD_NOT)
    .raw("</h2><p>")
    .t(
        lang,
        &text!(
            "Tệp bị từ chối toàn bộ, không có gì được nhập. Dòng",
            "The whole file was refused; nothing was imported. Line"
        ),
    )
    .raw(" <strong id=\"refused-line\">")
    .text(&line.to_string())
    .raw("</strong>: ")
    .text(&super::labels::refusal_reason(reason, lang))
    .raw("</p>");
}

/// `GET /console/uploads/registers/{id}`: a register import's page,
/// refreshing itself every two seconds (no script) while its job runs,
/// then its summary or the refused line.
pub async fn register_import(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    job_page(
        req,
        state,
        text!("Lần nhập sổ hồ sơ", "The import"),
        |state, scope| async move { state.store.register_import(&scope, &id).await },
        |import| import.status.is_final(),
        register_status,
    )
    .await
}

fn register_status(html: &mut Html, lang: Lang, import: &RegisterImport, again: bool) {
    html.raw("<section class=\"card\" id=\"import-summary\" role=\"status\" data-status=\"")
        .raw(import.status.as_str())
        .raw("\"><h2>")
        .t(lang, &REGISTER)
        .raw("</h2>");
    imported_by(
        html,
        lang,
        import.imported_at,
        &import.imported_by,
        import.imported_by_name.as_deref(),
    );
    if again {
        html.raw("<p class=\"note\">")
            .t(
                lang,
                &text!(
                    "Tệp này đang được nhập; đây là lần nhập đó.",
                    "This file is being imported already; this is that import."
                ),
            )
            .raw("</p>");
    }
    let p = &import.progress;
    match (import.status, &import.summary) {
        (ImportStatus::Queued, _) => {
            html.raw("<p>")
                .t(
                    lang,
                    &text!(
                        "Đang chờ đến lượt nhập. Trang tự cập nhật.",
                        "Waiting for its turn. This page updates itself."
                    ),
                )
                .raw("</p><progress max=\"100\"></progress>");
        }
        (ImportStatus::Running, _) => {
            let total = p.rows_total.unwrap_or(0);
            html.raw("<p>")
                .t(lang, &text!("Đang nhập:", "Importing:"))
                .raw(" <strong>")
                .text(&count(p.rows_applied, lang))
                .raw(" / ")
                .text(&count(total, lang))
                .raw("</strong> ")
                .t(lang, &text!("hồ sơ", "dossiers"))
                .raw(". ")
                .t(
                    lang,
                    &text!("Trang tự cập nhật.", "This page updates itself."),
                )
                .raw("</p><progress id=\"import-progress\" max=\"")
                .text(&total.max(1).to_string())
                .raw("\" value=\"")
                .text(&p.rows_applied.to_string())
                .raw("\"></progress>");
        }
        (ImportStatus::Refused, _) => {
            refused_job(html, lang, import.refused.as_ref());
        }
        (ImportStatus::Done, None) => {}
        (ImportStatus::Done, Some(summary)) => {
            html.raw("<p>")
                .t(lang, &text!("Đã nhập xong.", "Imported."))
                .raw("</p><table><tbody>");
            let n = |n: usize| count(n as u64, lang);
            row(html, lang.pick(&text!("Số dòng", "Rows")), &n(summary.rows));
            row(
                html,
                lang.pick(&text!("Mới", "Created")),
                &n(summary.created),
            );
            row(
                html,
                lang.pick(&text!("Cập nhật", "Updated")),
                &n(summary.updated),
            );
            row(
                html,
                lang.pick(&text!("Không đổi", "Unchanged")),
                &n(summary.unchanged),
            );
            for (outcome, number) in &summary.outcomes {
                row(html, outcome.label(lang), &n(*number));
            }
            row(
                html,
                lang.pick(&text!("Ngoại lệ hồ sơ lạ", "Unknown-dossier exceptions")),
                &n(summary.unknown_dossier_exceptions),
            );
            row(
                html,
                lang.pick(&text!(
                    "Ngoại lệ hồ sơ lạ đã gỡ",
                    "Unknown-dossier exceptions cleared"
                )),
                &n(summary.unknown_dossier_exceptions_cleared),
            );
            html.raw("</tbody></table>");
        }
    }
    html.raw("</section>");
}

fn refused(html: &mut Html, lang: Lang, err: &ApiError) {
    html.raw("<section class=\"card message error\" id=\"import-refused\" role=\"alert\"><h2>")
        .t(lang, &COULD_NOT)
        .raw("</h2>");
    if let Some(line) = err.details.get("line").and_then(|l| l.as_u64()) {
        html.raw("<p>")
            .t(
                lang,
                &text!(
                    "Tệp bị từ chối toàn bộ, không có gì được nhập. Dòng",
                    "The whole file was refused; nothing was imported. Line"
                ),
            )
            .raw(" <strong id=\"refused-line\">")
            .text(&line.to_string())
            .raw("</strong>: ")
            .text(&match err.details.get("reason").and_then(|r| r.as_str()) {
                Some(reason) => super::labels::refusal_reason(reason, lang),
                None => super::said(err, lang),
            })
            .raw("</p>");
    } else {
        html.raw("<p>").text(&super::said(err, lang)).raw("</p>");
    }
    html.raw("</section>");
}

/// The form's text fields: how many, and how long each, at most.
const MOST_FIELDS: usize = 16;
const FIELD_BYTES: usize = 4 * 1024;

/// A form as read: its text fields, and its file, streamed to the upload
/// folder as it came (never held whole).
struct Form {
    fields: HashMap<String, String>,
    file: Option<StoredUpload>,
}

/// Reads the multipart form, storing its `file` part within
/// `reconciliation.max_file_bytes` (refused once it passes, nothing kept).
async fn read_form(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<Form, ApiError> {
    let mut form = Form {
        fields: HashMap::new(),
        file: None,
    };
    match read_parts(req, state, payload, &mut form).await {
        Ok(()) => Ok(form),
        Err(err) => {
            if let Some(file) = form.file.take() {
                upload::forget(&file.path).await;
            }
            Err(err)
        }
    }
}

async fn read_parts(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
    form: &mut Form,
) -> Result<(), ApiError> {
    let unreadable = || {
        ApiError::bad_request(
            crate::error::ErrorCode::InvalidBody,
            "send the form as multipart/form-data",
        )
    };
    let mut parts = actix_multipart::Multipart::new(req.headers(), payload);
    while let Some(part) = parts.next().await {
        let mut part = part.map_err(|_| unreadable())?;
        let name = part.name().unwrap_or_default().to_owned();
        let is_file = part
            .content_disposition()
            .is_some_and(|d| d.get_filename().is_some());
        if is_file && name == "file" && form.file.is_none() {
            let stored = upload::store_stream(
                state.importer.upload_dir(),
                part,
                state.importer.max_file_bytes(),
            )
            .await?;
            form.file = Some(stored);
            continue;
        }
        if form.fields.len() >= MOST_FIELDS {
            return Err(unreadable());
        }
        let value = match part.bytes(FIELD_BYTES).await {
            Ok(Ok(value)) => value,
            Ok(Err(_)) | Err(_) => return Err(unreadable()),
        };
        if let Ok(text) = String::from_utf8(value.to_vec()) {
            form.fields.insert(name, text);
        }
    }
    Ok(())
}

/// Reads the form, checks its officer, and runs `import` on its file.
async fn upload<F, Fut>(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
    import: F,
) -> HttpResponse
where
    F: FnOnce(web::Data<AppState>, Officer, HashMap<String, String>, StoredUpload) -> Fut,
    Fut: std::future::Future<Output = (Officer, Result<Outcome, ApiError>)>,
{
    if !super::csrf::same_origin(&req, &state) {
        return session::forged(&req, None);
    }
    // The session first: no one signed out gets a file read and stored.
    // Its form's token is checked once the form is read.
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let Form { fields, file } = match read_form(&req, &state, payload).await {
        Ok(form) => form,
        Err(err) => {
            return render(
                &req,
                &state,
                &officer,
                err.status,
                Some(Outcome::Refused(err)),
            );
        }
    };
    if !super::csrf::token_matches(&officer.csrf, fields.get("csrf").map(String::as_str)) {
        if let Some(file) = &file {
            upload::forget(&file.path).await;
        }
        return session::forged(&req, Some(&officer));
    }
    let file = match file {
        Some(file) if file.bytes > 0 => file,
        empty => {
            if let Some(file) = &empty {
                upload::forget(&file.path).await;
            }
            let err = ApiError::bad_request(
                crate::error::ErrorCode::InvalidBody,
                lang_of(&req).pick(&text!("Hãy chọn một tệp CSV.", "Choose a CSV file.")),
            );
            return render(
                &req,
                &state,
                &officer,
                err.status,
                Some(Outcome::Refused(err)),
            );
        }
    };
    let (officer, outcome) = import(state.clone(), officer, fields, file).await;
    match outcome {
        Ok(Outcome::Statement { id, new }) => {
            let again = if new { "" } else { "1" };
            super::see_other(&link(
                lang_of(&req),
                &format!("/console/uploads/statements/{id}"),
                &[("again", again)],
            ))
        }
        Ok(Outcome::Register { id, new }) => {
            let again = if new { "" } else { "1" };
            super::see_other(&link(
                lang_of(&req),
                &format!("/console/uploads/registers/{id}"),
                &[("again", again)],
            ))
        }
        Ok(outcome) => render(&req, &state, &officer, StatusCode::OK, Some(outcome)),
        Err(err) if err.status.is_server_error() => super::error_page(&req, Some(&officer), &err),
        Err(err) => render(
            &req,
            &state,
            &officer,
            err.status,
            Some(Outcome::Refused(err)),
        ),
    }
}

/// `POST /console/uploads/statement`.
pub async fn statement(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    upload(
        req,
        state,
        payload,
        |state, officer, fields, stored| async move {
            let field = |name: &str| fields.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
            let queued = state
                .importer
                .queue_statement(
                    &officer.actor(),
                    officer.scope(),
                    field("channel"),
                    field("profile"),
                    field("account"),
                    &stored,
                )
                .await
                .map(|queued| Outcome::Statement {
                    id: queued.import.id,
                    new: queued.new,
                });
            (officer, queued)
        },
    )
    .await
}

/// `POST /console/uploads/register`.
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    upload(
        req,
        state,
        payload,
        |state, officer, _, stored| async move {
            let queued = state
                .importer
                .queue_register(&officer.actor(), officer.scope(), &stored)
                .await
                .map(|queued| Outcome::Register {
                    id: queued.import.id,
                    new: queued.new,
                });
            (officer, queued)
        },
    )
    .await
}
