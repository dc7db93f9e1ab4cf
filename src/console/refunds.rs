//! `/console/refunds`: money given back. An officer asks for a refund from
//! the exception that holds a payment's money, or from the invoice's page
//! for any of its payments; another officer approves or
//! rejects it; a bank transfer's or cash's refund is recorded once paid
//! back by hand. Every step goes through the refunds' use-cases, as the
//! API's do.

use actix_web::http::StatusCode;

use super::labels::Label;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    AMOUNT, CHANNEL, NOTE, NOTHING, Officer, STATUS, Section, csrf_field, lang_of, link, query_of,
    see_other, session, value,
};
use crate::domain::payment::{Payment, PaymentException};
use crate::domain::refund::{Refund, RefundStatus};
use crate::domain::{IdempotencyKey, Timestamp, Vnd};
use crate::error::{ApiError, ErrorCode};
use crate::pages::{Html, Lang, Text, channel_name, text, vietnam_minute};
use crate::startup::AppState;
use crate::store::RefundFilter;
use crate::usecases::refunds::{PaidBack, RefundAsked};

pub const REFUNDS: Text = text!("Hoàn tiền", "Refunds");
const REFUND: Text = text!("Hoàn tiền", "Refund");
const REASON: Text = text!("Lý do", "Reason");

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::ValidationFailed, message)
}

fn respond(req: &HttpRequest, officer: &Officer, status: StatusCode, body: Html) -> HttpResponse {
    super::officer_page(req, officer, status, &REFUNDS, Section::Refunds, body)
}

fn fact(html: &mut Html, lang: Lang, label: &Text, shown: &str) {
    html.raw("<dt>")
        .t(lang, label)
        .raw("</dt><dd>")
        .text(shown)
        .raw("</dd>");
}

/// The form on an open exception's page that asks for a refund of the
/// money it holds (`left` of it is left to refund).
pub fn ask_form(html: &mut Html, lang: Lang, officer: &Officer, x: &PaymentException, left: Vnd) {
    html.raw("<section class=\"card\"><h2 id=\"refund\">")
        .t(lang, &REFUND)
        .raw("</h2><p>")
        .t(
            lang,
            &text!(
                "Hoàn lại cho người nộp khoản tiền đang giữ, qua chính kênh đã thanh toán. Một cán bộ khác sẽ duyệt trước khi tiền được hoàn.",
                "Give the money held back to the payer, through the channel they paid with. Another officer approves it before it is sent."
            ),
        )
        .raw("</p><form method=\"post\" action=\"")
        .text(&link(lang, &format!("/console/exceptions/{}/refund", x.id), &[]))
        .raw("\">");
    csrf_field(html, officer);
    html.raw("<input type=\"hidden\" name=\"idempotency_key\" value=\"")
        .text(&format!("console-refund-{}", uuid::Uuid::now_v7()))
        .raw("\"><div class=\"field\"><label for=\"refund-amount\">")
        .t(lang, &text!("Số tiền hoàn (đồng)", "Amount to refund (đồng)"))
        .raw("</label><input id=\"refund-amount\" name=\"amount\" inputmode=\"numeric\" required value=\"")
        .text(&left.dong().to_string())
        .raw("\"></div><div class=\"field\"><label for=\"refund-reason\">")
        .t(lang, &REASON)
        .raw("</label><textarea id=\"refund-reason\" name=\"reason\" required maxlength=\"500\"></textarea></div><button type=\"submit\">")
        .t(lang, &text!("Đề nghị hoàn tiền", "Ask for the refund"))
        .raw("</button></form></section>");
}

/// The form on an invoice's page that asks for a refund of one of its
/// payments, `payments` being each with what is left to refund of it.
pub fn invoice_form(
    html: &mut Html,
    lang: Lang,
    officer: &Officer,
    invoice_id: &str,
    payments: &[(&Payment, Vnd)],
) {
    html.raw("<section class=\"card\"><h2 id=\"refund\">")
        .t(lang, &REFUND)
        .raw("</h2><p>")
        .t(
            lang,
            &text!(
                "Hoàn lại cho người nộp một khoản đã thu, qua chính kênh đã thanh toán; khoản đang giữ được hoàn trước. Hoàn khoản đã ghi cho hồ sơ thì hồ sơ không còn được tính là đã nộp, trừ khi một khoản đang giữ của hồ sơ bù đủ. Một cán bộ khác sẽ duyệt trước khi tiền được hoàn.",
                "Give money collected back to the payer, through the channel they paid with; money held goes back first. Refunding money that paid the dossier makes it unpaid again, unless money held for it covers what it then owes. Another officer approves it before it is sent."
            ),
        )
        .raw("</p><form method=\"post\" action=\"")
        .text(&link(lang, &format!("/console/invoices/{invoice_id}/refund"), &[]))
        .raw("\">");
    csrf_field(html, officer);
    html.raw("<input type=\"hidden\" name=\"idempotency_key\" value=\"")
        .text(&format!("console-refund-{}", uuid::Uuid::now_v7()))
        .raw("\"><div class=\"field\"><label for=\"refund-payment\">")
        .t(lang, &text!("Khoản thanh toán", "Payment"))
        .raw("</label><select id=\"refund-payment\" name=\"payment_id\" required>");
    for (payment, left) in payments {
        html.raw("<option value=\"")
            .text(&payment.id)
            .raw("\">")
            .text(&format!(
                "{} · {} · {} {}",
                channel_name(payment.channel, lang),
                payment.amount.display_vi(),
                lang.pick(&text!("còn có thể hoàn", "left to refund")),
                left.display_vi()
            ))
            .raw("</option>");
    }
    html.raw("</select></div><div class=\"field\"><label for=\"refund-amount\">")
        .t(lang, &text!("Số tiền hoàn (đồng)", "Amount to refund (đồng)"))
        .raw("</label><input id=\"refund-amount\" name=\"amount\" inputmode=\"numeric\" required></div><div class=\"field\"><label for=\"refund-reason\">")
        .t(lang, &REASON)
        .raw("</label><textarea id=\"refund-reason\" name=\"reason\" required maxlength=\"500\"></textarea></div><button type=\"submit\">")
        .t(lang, &text!("Đề nghị hoàn tiền", "Ask for the refund"))
        .raw("</button></form></section>");
}

/// Asks for the refund the officer's form describes, of `payment_id`
/// (and from exception `exception_id`): the new refund's id.
async fn ask_for(
    state: &AppState,
    officer: &Officer,
    form: &std::collections::HashMap<String, String>,
    payment_id: &str,
    exception_id: Option<String>,
) -> Result<String, ApiError> {
    let key = value(form, "idempotency_key")
        .and_then(|k| IdempotencyKey::parse(k).ok())
        .ok_or_else(|| invalid("the form is missing its key: open the page again"))?;
    let amount = value(form, "amount")
        .and_then(|a| Vnd::parse_vietnamese(a).ok())
        .ok_or_else(|| invalid("amount: a whole number of đồng"))?;
    let created = state
        .refunds()
        .request(
            officer.principal(),
            &officer.actor(),
            &key,
            payment_id,
            &RefundAsked {
                amount,
                reason: form.get("reason").cloned().unwrap_or_default(),
                exception_id,
            },
        )
        .await?;
    serde_json::from_str::<serde_json::Value>(&created.body)
        .ok()
        .and_then(|refund| refund["id"].as_str().map(str::to_owned))
        .ok_or_else(|| ApiError::internal(&"a refund's answer has no id"))
}

/// `POST /console/exceptions/{id}/refund`.
pub async fn ask(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, form) = match session::posted_form(&req, &state, payload).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let id = id.into_inner();
    let asked = async {
        if id.len() > 200 || id.chars().any(char::is_control) {
            return Err(ApiError::not_found("the exception"));
        }
        let exception = state.store.get_exception(officer.scope(), &id).await?;
        let payment_id = exception.payment_id.ok_or_else(|| {
            invalid("this exception is about no payment: there is nothing to refund")
        })?;
        ask_for(&state, &officer, &form, &payment_id, Some(id.clone())).await
    };
    match asked.await {
        Ok(refund) => see_other(&link(lang, &format!("/console/refunds/{refund}"), &[])),
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

/// `POST /console/invoices/{id}/refund`: a refund of one of the invoice's
/// payments.
pub async fn ask_from_invoice(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, form) = match session::posted_form(&req, &state, payload).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let id = id.into_inner();
    let asked = async {
        if id.len() > 200 || id.chars().any(char::is_control) {
            return Err(ApiError::not_found("the invoice"));
        }
        let payments = state.store.invoice_payments(officer.scope(), &id).await?;
        let payment_id = value(&form, "payment_id")
            .filter(|chosen| payments.iter().any(|p| p.id == *chosen))
            .ok_or_else(|| invalid("payment_id: choose one of the invoice's payments"))?;
        ask_for(&state, &officer, &form, payment_id, None).await
    };
    match asked.await {
        Ok(refund) => see_other(&link(lang, &format!("/console/refunds/{refund}"), &[])),
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

/// `GET /console/refunds`: the refunds in the officer's scope, those
/// waiting for a second officer first by default.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let lang = lang_of(&req);
    let query = query_of(&req);
    let status = match value(&query, "status") {
        None => Some(RefundStatus::Requested),
        Some("all") => None,
        Some(s) => match RefundStatus::parse(s) {
            Some(status) => Some(status),
            None => return super::error_page(&req, Some(&officer), &invalid("unknown status")),
        },
    };
    let filter = RefundFilter {
        status,
        limit: 100,
        ..RefundFilter::default()
    };
    let listed = match state.store.list_refunds(officer.scope(), &filter).await {
        Ok(listed) => listed,
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &REFUNDS)
        .raw("</h1><nav class=\"filters\"><p>");
    let choices = [
        ("requested", RefundStatus::Requested),
        ("approved", RefundStatus::Approved),
        ("submitted", RefundStatus::Submitted),
        ("succeeded", RefundStatus::Succeeded),
        ("failed", RefundStatus::Failed),
        ("rejected", RefundStatus::Rejected),
    ];
    for (name, choice) in choices {
        html.raw("<a href=\"")
            .text(&link(lang, "/console/refunds", &[("status", name)]))
            .raw("\"");
        if status == Some(choice) {
            html.raw(" aria-current=\"page\"");
        }
        html.raw(">").text(choice.label(lang)).raw("</a> · ");
    }
    html.raw("<a href=\"")
        .text(&link(lang, "/console/refunds", &[("status", "all")]))
        .raw("\">")
        .t(lang, &super::ALL)
        .raw("</a></p></nav><section class=\"card\">");
    if listed.items.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p>");
    } else {
        html.raw("<table id=\"refunds\"><thead><tr><th scope=\"col\">")
            .t(lang, &text!("Đề nghị lúc", "Asked"))
            .raw("</th><th scope=\"col\">")
            .t(lang, &CHANNEL)
            .raw("</th><th scope=\"col\" class=\"num\">")
            .t(lang, &AMOUNT)
            .raw("</th><th scope=\"col\">")
            .t(lang, &STATUS)
            .raw("</th><th scope=\"col\">")
            .t(lang, &REASON)
            .raw("</th></tr></thead><tbody>");
        for refund in &listed.items {
            html.raw("<tr><td><a href=\"")
                .text(&link(lang, &format!("/console/refunds/{}", refund.id), &[]))
                .raw("\">")
                .text(&vietnam_minute(refund.requested_at))
                .raw("</a></td><td>")
                .text(channel_name(refund.channel, lang))
                .raw("</td><td class=\"num\">")
                .text(&refund.amount.display_vi())
                .raw("</td><td>")
                .text(refund.status.label(lang))
                .raw("</td><td>")
                .text(&refund.reason)
                .raw("</td></tr>");
        }
        html.raw("</tbody></table>");
    }
    html.raw("</section>");
    respond(&req, &officer, StatusCode::OK, html)
}

/// `GET /console/refunds/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    if id.len() > 200 || id.chars().any(char::is_control) {
        return super::error_page(&req, Some(&officer), &ApiError::not_found("the refund"));
    }
    match state.store.get_refund(officer.scope(), &id).await {
        Ok(refund) => {
            let body = detail(&req, &officer, &refund);
            respond(&req, &officer, StatusCode::OK, body)
        }
        Err(err) => super::error_page(&req, Some(&officer), &err.into()),
    }
}

fn detail(req: &HttpRequest, officer: &Officer, r: &Refund) -> Html {
    let lang = lang_of(req);
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &REFUND)
        .raw(" ")
        .text(&r.amount.display_vi())
        .raw("</h1>");
    if let Some(done) = value(&query_of(req), "done") {
        let message = match done {
            "approved" => &text!("Đã duyệt đề nghị hoàn tiền.", "The refund was approved."),
            "rejected" => &text!("Đã từ chối đề nghị hoàn tiền.", "The refund was rejected."),
            "completed" => &text!("Đã ghi nhận việc hoàn tiền.", "The refund was recorded."),
            _ => &text!("Đã gửi đề nghị hoàn tiền.", "The refund was asked for."),
        };
        html.raw("<p class=\"message\" role=\"status\">")
            .t(lang, message)
            .raw("</p>");
    }
    html.raw("<section class=\"card\"><dl>");
    fact(&mut html, lang, &STATUS, r.status.label(lang));
    fact(&mut html, lang, &CHANNEL, channel_name(r.channel, lang));
    fact(&mut html, lang, &AMOUNT, &r.amount.display_vi());
    fact(&mut html, lang, &REASON, &r.reason);
    fact(
        &mut html,
        lang,
        &text!("Người đề nghị", "Asked by"),
        &format!(
            "{} · {}",
            &super::labels::actor_name(&r.requested_by, r.requested_by_name.as_deref(), lang),
            vietnam_minute(r.requested_at)
        ),
    );
    if let (Some(by), Some(at)) = (&r.decided_by, r.decided_at) {
        let by = super::labels::actor_name(by, r.decided_by_name.as_deref(), lang);
        fact(
            &mut html,
            lang,
            &text!("Người duyệt", "Decided by"),
            &format!("{by} · {}", vietnam_minute(at)),
        );
    }
    if let Some(note) = r.decision_note.as_deref().filter(|n| !n.is_empty()) {
        fact(&mut html, lang, &NOTE, note);
    }
    if let Some(request_id) = &r.request_id {
        fact(
            &mut html,
            lang,
            &text!("Mã yêu cầu gửi cổng", "Gateway request id"),
            request_id,
        );
    }
    if let Some(code) = &r.provider_code {
        let said = match (lephis_own(code), &r.provider_message) {
            (Some(words), _) => lang.pick(words).to_owned(),
            (None, Some(message)) => format!("{code}: {message}"),
            (None, None) => code.clone(),
        };
        fact(
            &mut html,
            lang,
            &text!("Cổng thanh toán trả lời", "The gateway said"),
            &said,
        );
    }
    if let Some(reference) = r.reference.as_ref().or(r.provider_refund_id.as_ref()) {
        fact(
            &mut html,
            lang,
            &text!("Mã tham chiếu hoàn tiền", "Refund reference"),
            reference,
        );
    }
    if let Some(at) = r.completed_at {
        fact(
            &mut html,
            lang,
            &text!("Hoàn lúc", "Refunded at"),
            &vietnam_minute(at),
        );
    }
    html.raw("</dl>");
    if let Some(exception) = &r.exception_id {
        html.raw("<p><a href=\"")
            .text(&link(
                lang,
                &format!("/console/exceptions/{exception}"),
                &[],
            ))
            .raw("\">")
            .t(lang, &text!("Mở ngoại lệ", "Open the exception"))
            .raw("</a></p>");
    }
    html.raw("</section>");
    let action = |name: &str| link(lang, &format!("/console/refunds/{}/{name}", r.id), &[]);
    match r.status {
        RefundStatus::Requested if r.requested_by == officer.actor().name => {
            html.raw("<p class=\"message\">")
                .t(
                    lang,
                    &text!(
                        "Đề nghị này cần một cán bộ khác duyệt.",
                        "Another officer must approve this refund."
                    ),
                )
                .raw("</p>");
        }
        RefundStatus::Requested if !officer.decides_refunds() => {
            html.raw("<p class=\"message\" id=\"needs-approver\">")
                .t(
                    lang,
                    &text!(
                        "Đề nghị này chờ một cán bộ có quyền duyệt hoàn tiền.",
                        "This refund waits for an officer who approves refunds."
                    ),
                )
                .raw("</p>");
        }
        RefundStatus::Requested => {
            html.raw("<section class=\"card\"><h2>")
                .t(lang, &text!("Duyệt", "Decide"))
                .raw("</h2><form method=\"post\" action=\"")
                .text(&action("approve"))
                .raw("\">");
            csrf_field(&mut html, officer);
            html.raw("<div class=\"field\"><label for=\"approve-note\">")
                .t(lang, &NOTE)
                .raw("</label><textarea id=\"approve-note\" name=\"note\" maxlength=\"1000\"></textarea></div><button type=\"submit\" class=\"approve\">")
                .t(lang, &text!("Duyệt và hoàn tiền", "Approve and refund"))
                .raw("</button></form><form method=\"post\" action=\"")
                .text(&action("reject"))
                .raw("\">");
            csrf_field(&mut html, officer);
            html.raw("<div class=\"field\"><label for=\"reject-note\">")
                .t(lang, &text!("Lý do từ chối", "Why it is rejected"))
                .raw("</label><textarea id=\"reject-note\" name=\"note\" required maxlength=\"1000\"></textarea></div><button type=\"submit\" class=\"secondary\">")
                .t(lang, &text!("Từ chối", "Reject"))
                .raw("</button></form></section>");
        }
        RefundStatus::Approved if !r.channel.refunds_through_provider() => {
            html.raw("<section class=\"card\"><h2>")
                .t(lang, &text!("Ghi nhận đã hoàn", "Record the refund"))
                .raw("</h2><p>")
                .t(
                    lang,
                    &text!(
                        "Chuyển khoản trả lại (hoặc trả tiền mặt tại quầy), rồi ghi mã tham chiếu của ngân hàng (hoặc số biên lai) và thời điểm.",
                        "Transfer the money back (or pay it at the counter), then record the bank's reference (or the receipt number) and when."
                    ),
                )
                .raw("</p><form method=\"post\" action=\"")
                .text(&action("complete"))
                .raw("\">");
            csrf_field(&mut html, officer);
            html.raw("<div class=\"field\"><label for=\"reference\">")
                .t(lang, &text!("Mã tham chiếu", "Reference"))
                .raw("</label><input id=\"reference\" name=\"reference\" required maxlength=\"100\"></div><div class=\"field\"><label for=\"paid_back_at\">")
                .t(lang, &text!("Thời điểm hoàn (giờ Việt Nam)", "Paid back at (Vietnam time)"))
                .raw("</label><input id=\"paid_back_at\" name=\"paid_back_at\" type=\"datetime-local\" required></div><button type=\"submit\">")
                .t(lang, &text!("Ghi nhận", "Record"))
                .raw("</button></form></section>");
        }
        _ => {}
    }
    html
}

/// What lephi's own codes for an answer it did not get (or did not trust)
/// mean, in words; `None` for a provider's code.
fn lephis_own(code: &str) -> Option<&'static Text> {
    Some(match code {
        "timeout" => &text!(
            "Cổng thanh toán chưa trả lời kịp; hệ thống sẽ hỏi lại cho đến khi có kết quả.",
            "The gateway did not answer in time; lephi asks again until it knows."
        ),
        "unreachable" => &text!(
            "Chưa kết nối được cổng thanh toán; hệ thống sẽ hỏi lại.",
            "The gateway could not be reached; lephi asks again."
        ),
        "bad_answer" => &text!(
            "Câu trả lời của cổng thanh toán không đọc được; hệ thống sẽ hỏi lại.",
            "The gateway's answer could not be read; lephi asks again."
        ),
        "bad_signature" => &text!(
            "Câu trả lời không có chữ ký hợp lệ nên không được tin; một ngoại lệ đã được mở.",
            "The answer was not validly signed, so it is not trusted; an exception was opened."
        ),
        "not_configured" => &text!(
            "Cổng thanh toán chưa được cấu hình ở tiến trình này; hệ thống sẽ hỏi lại.",
            "The gateway is not configured in this process; lephi asks again."
        ),
        "not_listed" => &text!(
            "Cổng thanh toán chưa ghi nhận lệnh hoàn này; hệ thống sẽ hỏi lại.",
            "The gateway lists no such refund yet; lephi asks again."
        ),
        _ => return None,
    })
}

/// `POST /console/refunds/{id}/approve`.
pub async fn approve(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    decide(req, state, id, payload, true).await
}

/// `POST /console/refunds/{id}/reject`.
pub async fn reject(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    decide(req, state, id, payload, false).await
}

async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
    approve: bool,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, form) = match session::posted_form(&req, &state, payload).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let id = id.into_inner();
    if id.len() > 200 || id.chars().any(char::is_control) {
        return super::error_page(&req, Some(&officer), &ApiError::not_found("the refund"));
    }
    if !officer.decides_refunds() {
        return super::notice(
            &req,
            StatusCode::FORBIDDEN,
            Some(&officer),
            &super::COULD_NOT,
            lang.pick(&text!(
                "Chỉ cán bộ có quyền duyệt hoàn tiền (hoặc quản trị) được duyệt hay từ chối đề nghị hoàn tiền.",
                "Only an officer who approves refunds (or an admin) may approve or reject a refund."
            )),
        );
    }
    let note = form.get("note").map(String::as_str).unwrap_or_default();
    match state
        .refunds()
        .decide(&officer.actor(), officer.scope(), &id, approve, note)
        .await
    {
        Ok(_) => see_other(&link(
            lang,
            &format!("/console/refunds/{id}"),
            &[("done", if approve { "approved" } else { "rejected" })],
        )),
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

/// `POST /console/refunds/{id}/complete`.
pub async fn complete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let lang = lang_of(&req);
    let (officer, form) = match session::posted_form(&req, &state, payload).await {
        Ok(posted) => posted,
        Err(refused) => return refused,
    };
    let id = id.into_inner();
    let recorded = async {
        if id.len() > 200 || id.chars().any(char::is_control) {
            return Err(ApiError::not_found("the refund"));
        }
        let paid_back_at = value(&form, "paid_back_at")
            .and_then(vietnam_local)
            .ok_or_else(|| invalid("paid_back_at: a date and time"))?;
        state
            .refunds()
            .complete(
                &officer.actor(),
                officer.scope(),
                &id,
                &PaidBack {
                    reference: form.get("reference").cloned().unwrap_or_default(),
                    paid_back_at,
                },
            )
            .await
    };
    match recorded.await {
        Ok(_) => see_other(&link(
            lang,
            &format!("/console/refunds/{id}"),
            &[("done", "completed")],
        )),
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

/// A `datetime-local` value (`2026-11-28T09:30`), read as Vietnam time.
fn vietnam_local(text: &str) -> Option<Timestamp> {
    let seconds = if text.len() == 16 { ":00" } else { "" };
    Timestamp::parse_rfc3339(&format!("{text}{seconds}+07:00"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lephis_own_codes_are_told_in_words_and_a_providers_are_shown_as_given() {
        use crate::providers::ProviderError;
        for err in [
            ProviderError::Timeout,
            ProviderError::Unreachable("x".into()),
            ProviderError::BadAnswer("x".into()),
            ProviderError::BadSignature,
        ] {
            let words = lephis_own(err.provider_code()).expect("a code of lephi's own");
            assert!(!words.vi.is_empty() && words.vi != words.en);
        }
        for own in ["not_configured", "not_listed"] {
            assert!(lephis_own(own).is_some(), "{own}");
        }
        for providers in ["00", "94", "7000", "-13"] {
            assert!(lephis_own(providers).is_none(), "{providers}");
        }
    }

    #[test]
    fn a_paid_back_time_is_vietnam_time() {
        assert_eq!(
            vietnam_local("2026-11-28T09:30").map(Timestamp::to_stored),
            Timestamp::parse_rfc3339("2026-11-28T02:30:00Z").map(Timestamp::to_stored)
        );
        assert!(vietnam_local("soon").is_none());
    }
}
