//! `/console/exceptions`: the queue of findings that wait for an officer,
//! filtered by kind, status, agency and the day opened; one exception with
//! its payment, invoice, statement line and audit trail; and its
//! resolution, recorded with the API's own function.

use std::collections::HashMap;

use actix_web::http::StatusCode;

use super::labels::Label;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    AGENCY, AMOUNT, COULD_NOT, DOWNLOAD_CSV, FILTER, KIND, NEXT_PAGE, NOTE, NOTHING, OPENED,
    Officer, STATUS, Section, csrf_field, csv_file, lang_field, lang_of, link, query_of, see_other,
    session, value,
};
use crate::domain::AgencyCode;
use crate::domain::payment::{ExceptionKind, ExceptionStatus, PaymentException, Resolution};
use crate::error::{ApiError, ErrorCode};
use crate::pages::{Html, Lang, Text, channel_name, text, vietnam_minute};
use crate::startup::AppState;
use crate::store::{
    AuditFilter, ExceptionFilter, FoundPayment, PaymentSearch, SettlementLineFilter,
};
use crate::usecases::exceptions;

const EXCEPTION: Text = text!("Ngoại lệ", "Exception");
const RESOLVE: Text = text!("Xử lý", "Resolve");
const CSV_ROWS: i64 = 10_000;

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidQuery, message)
}

fn filter_of(query: &HashMap<String, String>, limit: i64) -> Result<ExceptionFilter, ApiError> {
    Ok(ExceptionFilter {
        kind: value(query, "kind")
            .map(|k| ExceptionKind::parse(k).ok_or_else(|| invalid("unknown kind")))
            .transpose()?,
        status: match value(query, "status") {
            None => Some(ExceptionStatus::Open),
            Some("all") => None,
            Some(s) => Some(ExceptionStatus::parse(s).ok_or_else(|| invalid("unknown status"))?),
        },
        agency_code: value(query, "agency")
            .map(|code| AgencyCode::parse("agency", code))
            .transpose()?,
        opened_from: super::table::day_start(value(query, "from"), "from", 0)?,
        opened_to: super::table::day_start(value(query, "to"), "to", 1)?,
        after_id: value(query, "cursor")
            .filter(|c| c.len() <= 64)
            .map(str::to_owned),
        limit,
    })
}

fn respond(req: &HttpRequest, officer: &Officer, status: StatusCode, body: Html) -> HttpResponse {
    super::officer_page(
        req,
        officer,
        status,
        &super::EXCEPTIONS,
        Section::Exceptions,
        body,
    )
}

/// `GET /console/exceptions`.
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let lang = lang_of(&req);
    let query = query_of(&req);
    let csv = value(&query, "format") == Some("csv");
    let filter = match filter_of(&query, if csv { CSV_ROWS } else { 50 }) {
        Ok(filter) => filter,
        Err(err) => return super::error_page(&req, Some(&officer), &err),
    };
    let listed = match state.store.list_exceptions(officer.scope(), &filter).await {
        Ok(listed) => listed,
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    if csv {
        return csv_file("ngoai-le.csv", exceptions_csv(&listed.items, lang));
    }
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &super::EXCEPTIONS).raw("</h1>");
    filters(&mut body, lang, &query);
    body.raw("<section class=\"card\">");
    if listed.items.is_empty() {
        body.raw("<p>").t(lang, &NOTHING).raw("</p>");
    } else {
        body.raw("<table id=\"exceptions\"><caption>")
            .t(lang, &super::EXCEPTIONS)
            .raw("</caption><thead><tr>");
        for label in [&OPENED, &KIND, &STATUS, &AGENCY] {
            body.raw("<th scope=\"col\">").t(lang, label).raw("</th>");
        }
        body.raw("<th scope=\"col\" class=\"num\">")
            .t(lang, &AMOUNT)
            .raw("</th><th scope=\"col\">")
            .t(lang, &text!("Chi tiết", "Detail"))
            .raw("</th></tr></thead><tbody>");
        for x in &listed.items {
            body.raw("<tr><td><a href=\"")
                .text(&link(lang, &format!("/console/exceptions/{}", x.id), &[]))
                .raw("\">")
                .text(&vietnam_minute(x.opened_at))
                .raw("</a></td><td>")
                .text(x.kind.label(lang))
                .raw("</td><td>")
                .text(x.status.label(lang))
                .raw("</td><td>")
                .text(x.agency_code.as_ref().map_or("—", |c| c.as_str()))
                .raw("</td><td class=\"num\">")
                .text(&x.amount.map_or_else(|| "—".to_owned(), |a| a.display_vi()))
                .raw("</td><td>")
                .text(&super::labels::exception_detail(x, lang))
                .raw("</td></tr>");
        }
        body.raw("</tbody></table>");
    }
    let kept: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "lang" | "format"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Some(cursor) = &listed.next_cursor {
        let mut params = kept.clone();
        params.push(("cursor", cursor));
        body.raw("<p><a href=\"")
            .text(&link(lang, "/console/exceptions", &params))
            .raw("\">")
            .t(lang, &NEXT_PAGE)
            .raw("</a></p>");
    }
    let mut params = kept;
    params.push(("format", "csv"));
    body.raw("<p><a class=\"button secondary\" download href=\"")
        .text(&link(lang, "/console/exceptions", &params))
        .raw("\">")
        .t(lang, &DOWNLOAD_CSV)
        .raw("</a></p></section>");
    respond(&req, &officer, StatusCode::OK, body)
}

fn filters(html: &mut Html, lang: Lang, query: &HashMap<String, String>) {
    let get = |name: &str| value(query, name).unwrap_or_default().to_owned();
    html.raw("<section class=\"card\"><form class=\"filters\" method=\"get\" action=\"/console/exceptions\">");
    lang_field(html, lang);
    html.raw("<div><label for=\"kind\">")
        .t(lang, &KIND)
        .raw("</label><select id=\"kind\" name=\"kind\"><option value=\"\">")
        .t(lang, &super::ALL)
        .raw("</option>");
    for kind in ExceptionKind::ALL {
        html.raw("<option value=\"").raw(kind.as_str()).raw("\"");
        if get("kind") == kind.as_str() {
            html.raw(" selected");
        }
        html.raw(">").text(kind.label(lang)).raw("</option>");
    }
    html.raw("</select></div><div><label for=\"status\">")
        .t(lang, &STATUS)
        .raw("</label><select id=\"status\" name=\"status\">");
    let status = get("status");
    for (v, label) in [
        ("open", ExceptionStatus::Open.label(lang)),
        ("resolved", ExceptionStatus::Resolved.label(lang)),
        ("all", lang.pick(&super::ALL)),
    ] {
        html.raw("<option value=\"").raw(v).raw("\"");
        if status == v || (status.is_empty() && v == "open") {
            html.raw(" selected");
        }
        html.raw(">").text(label).raw("</option>");
    }
    html.raw("</select></div><div><label for=\"agency\">")
        .t(lang, &text!("Mã cơ quan", "Agency code"))
        .raw("</label><input id=\"agency\" name=\"agency\" maxlength=\"64\" value=\"")
        .text(&get("agency"))
        .raw("\"></div>");
    super::day_fields(html, lang, value(query, "from"), value(query, "to"));
    html.raw("<div><button type=\"submit\">")
        .t(lang, &FILTER)
        .raw("</button></div></form></section>");
}

fn exceptions_csv(items: &[PaymentException], lang: Lang) -> String {
    use super::table::{Cell, Table};
    Table {
        id: "exceptions",
        caption: &super::EXCEPTIONS,
        columns: &[
            &text!("Mã ngoại lệ", "Exception id"),
            &OPENED,
            &KIND,
            &STATUS,
            &AGENCY,
            &AMOUNT,
            &text!("Mã khoản thu", "Payment id"),
            &text!("Mã yêu cầu thanh toán", "Invoice id"),
            &super::DOSSIER,
            &text!("Chi tiết", "Detail"),
            &text!("Cách xử lý", "Resolution"),
            &text!("Ghi chú xử lý", "Resolution note"),
            &text!("Người xử lý", "Resolved by"),
        ],
        rows: items
            .iter()
            .map(|x| {
                vec![
                    Cell::text(&x.id),
                    Cell::Time(x.opened_at),
                    Cell::text(x.kind.label(lang)),
                    Cell::text(x.status.label(lang)),
                    Cell::maybe(x.agency_code.as_ref().map(|c| c.to_string())),
                    x.amount.map_or(Cell::Empty, Cell::Money),
                    Cell::maybe(x.payment_id.clone()),
                    Cell::maybe(x.invoice_id.clone()),
                    Cell::maybe(x.dossier_code.clone()),
                    Cell::text(super::labels::exception_detail(x, lang)),
                    Cell::maybe(x.resolved.as_ref().map(|r| r.resolution.label(lang))),
                    Cell::maybe(x.resolved.as_ref().map(|r| r.note.clone())),
                    Cell::maybe(
                        x.resolved
                            .as_ref()
                            .map(|r| super::labels::actor_name(&r.by, r.by_name.as_deref(), lang)),
                    ),
                ]
            })
            .collect(),
    }
    .csv(lang)
}

fn fact(html: &mut Html, lang: Lang, label: &Text, shown: &str) {
    html.raw("<dt>")
        .t(lang, label)
        .raw("</dt><dd>")
        .text(shown)
        .raw("</dd>");
}

/// `GET /console/exceptions/{id}`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    match detail(&req, &state, &officer, &id, None).await {
        Ok(body) => respond(&req, &officer, StatusCode::OK, body),
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

/// A resolution the store refused: why, and the form as the officer sent
/// it, to be shown again for correcting.
struct Refused<'a> {
    why: &'a str,
    form: &'a HashMap<String, String>,
}

async fn detail(
    req: &HttpRequest,
    state: &AppState,
    officer: &Officer,
    id: &str,
    refused: Option<Refused<'_>>,
) -> Result<Html, ApiError> {
    let lang = lang_of(req);
    if id.len() > 200 || id.chars().any(char::is_control) {
        return Err(ApiError::not_found("the exception"));
    }
    let scope = officer.scope();
    let x = state.store.get_exception(scope, id).await?;
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &EXCEPTION)
        .raw(": ")
        .text(x.kind.label(lang))
        .raw("</h1>");
    if value(&query_of(req), "resolved") == Some("1") {
        html.raw("<p class=\"message\" role=\"status\">")
            .t(
                lang,
                &text!("Đã ghi nhận cách xử lý.", "The resolution was recorded."),
            )
            .raw("</p>");
    }
    html.raw("<section class=\"card\"><dl>");
    fact(&mut html, lang, &STATUS, x.status.label(lang));
    fact(&mut html, lang, &OPENED, &vietnam_minute(x.opened_at));
    fact(
        &mut html,
        lang,
        &AGENCY,
        x.agency_code.as_ref().map_or("—", |c| c.as_str()),
    );
    fact(
        &mut html,
        lang,
        &AMOUNT,
        &x.amount.map_or_else(|| "—".to_owned(), |a| a.display_vi()),
    );
    fact(
        &mut html,
        lang,
        &text!("Chi tiết", "Detail"),
        &super::labels::exception_detail(&x, lang),
    );
    if let Some(dossier) = &x.dossier_code {
        fact(&mut html, lang, &super::DOSSIER, dossier);
    }
    if let Some(resolved) = &x.resolved {
        fact(&mut html, lang, &RESOLVE, resolved.resolution.label(lang));
        fact(&mut html, lang, &NOTE, &resolved.note);
        fact(
            &mut html,
            lang,
            &text!("Người xử lý", "Resolved by"),
            &super::labels::actor_name(&resolved.by, resolved.by_name.as_deref(), lang),
        );
    }
    html.raw("</dl></section>");

    // The payment.
    if let Some(payment_id) = &x.payment_id {
        let search = PaymentSearch {
            id: Some(payment_id.clone()),
            limit: 1,
            ..PaymentSearch::default()
        };
        let (found, _) = state.store.search_payments(scope, &search).await?;
        if let Some(found) = found.items.first() {
            let p = &found.payment;
            html.raw("<section class=\"card\"><h2>")
                .t(lang, &text!("Khoản thanh toán", "Payment"))
                .raw("</h2><dl>");
            fact(
                &mut html,
                lang,
                &super::CHANNEL,
                channel_name(p.channel, lang),
            );
            fact(&mut html, lang, &AMOUNT, &p.amount.display_vi());
            fact(
                &mut html,
                lang,
                &text!("Mã giao dịch", "Transaction id"),
                &p.provider_txn_id,
            );
            fact(
                &mut html,
                lang,
                &text!("Nội dung", "Reference"),
                &p.reference,
            );
            fact(
                &mut html,
                lang,
                &text!("Ghi nhận lúc", "Recorded"),
                &vietnam_minute(p.recorded_at),
            );
            html.raw("</dl></section>");
        }
    }
    // The invoice.
    if let Some(invoice_id) = &x.invoice_id
        && let Ok(invoice) = state.store.get_invoice(scope, invoice_id).await
    {
        html.raw("<section class=\"card\"><h2>")
            .t(lang, &text!("Yêu cầu thanh toán", "Invoice"))
            .raw("</h2><dl>");
        fact(
            &mut html,
            lang,
            &super::PAYMENT_CODE,
            invoice.payment_code.as_str(),
        );
        fact(&mut html, lang, &super::DOSSIER, &invoice.dossier_code);
        fact(
            &mut html,
            lang,
            &text!("Tổng phải nộp", "Total"),
            &invoice.total.display_vi(),
        );
        fact(
            &mut html,
            lang,
            &text!("Đã nộp", "Paid"),
            &invoice.amount_paid.display_vi(),
        );
        html.raw("</dl><p><a href=\"")
            .text(&link(
                lang,
                &format!("/console/invoices/{}", invoice.id),
                &[],
            ))
            .raw("\">")
            .t(lang, &text!("Mở yêu cầu thanh toán", "Open the invoice"))
            .raw("</a></p></section>");
    }
    // The statement line.
    if let Some((file_id, line_no)) = &x.settlement_line {
        let filter = SettlementLineFilter {
            outcome: None,
            after_line: Some(line_no - 1),
            limit: 1,
        };
        if let Ok(lines) = state.store.settlement_lines(scope, file_id, &filter).await
            && let Some(line) = lines.items.iter().find(|l| l.line_no == *line_no)
        {
            html.raw("<section class=\"card\"><h2>")
                .t(lang, &text!("Dòng sao kê", "Statement line"))
                .raw("</h2><dl>");
            fact(
                &mut html,
                lang,
                &text!("Dòng số", "Line"),
                &line.line_no.to_string(),
            );
            fact(
                &mut html,
                lang,
                &text!("Mã giao dịch", "Transaction id"),
                &line.txn_ref,
            );
            fact(
                &mut html,
                lang,
                &text!("Nội dung", "Reference"),
                &line.reference,
            );
            fact(&mut html, lang, &AMOUNT, &line.amount.display_vi());
            fact(
                &mut html,
                lang,
                &text!("Ngày quyết toán", "Settled on"),
                &line.settlement_date,
            );
            fact(
                &mut html,
                lang,
                &text!("Kết quả", "Outcome"),
                line.outcome.as_str(),
            );
            html.raw("</dl></section>");
        }
    }
    // The audit trail: the exception's records and its payment's.
    let mut records = Vec::new();
    for (object_type, object_id) in [
        ("exception", Some(x.id.as_str())),
        ("payment", x.payment_id.as_deref()),
    ] {
        let Some(object_id) = object_id else { continue };
        let filter = AuditFilter {
            object_type: Some(object_type.to_owned()),
            object_id: Some(object_id.to_owned()),
            limit: 50,
            ..AuditFilter::default()
        };
        records.extend(state.store.list_audit(scope, &filter).await?);
    }
    records.sort_by_key(|r| r.id);
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &text!("Nhật ký", "Audit trail"))
        .raw("</h2>");
    if records.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p>");
    } else {
        html.raw("<table id=\"audit\"><thead><tr><th scope=\"col\">")
            .t(lang, &text!("Lúc", "When"))
            .raw("</th><th scope=\"col\">")
            .t(lang, &text!("Ai", "Who"))
            .raw("</th><th scope=\"col\">")
            .t(lang, &text!("Việc", "What"))
            .raw("</th></tr></thead><tbody>");
        for record in &records {
            html.raw("<tr><td>")
                .text(&vietnam_minute(record.at))
                .raw("</td><td>")
                .text(&super::labels::actor_name(
                    &record.actor,
                    record.actor_name.as_deref(),
                    lang,
                ))
                .raw("</td><td>")
                .text(&super::labels::action_name(&record.action, lang))
                .raw("</td></tr>");
        }
        html.raw("</tbody></table>");
    }
    html.raw("</section>");
    if x.status == ExceptionStatus::Open {
        if let Some(payment_id) = &x.payment_id {
            // The money this exception holds: what paid an invoice is
            // refunded from the invoice's page.
            let left = state.store.refund_left(scope, payment_id).await?;
            if left.held.dong() > 0 {
                super::refunds::ask_form(&mut html, lang, officer, &x, left.held);
            }
        }
        let candidates = if Resolution::fitting(x.kind).contains(&Resolution::MatchedManually) {
            candidates(state, officer, &x).await?
        } else {
            Vec::new()
        };
        resolve_form(&mut html, lang, officer, &x, &candidates, refused.as_ref());
    } else if let Some(refused) = &refused {
        html.raw("<p class=\"message error\" role=\"alert\" id=\"resolve-refused\">")
            .text(refused.why)
            .raw("</p>");
    }
    Ok(html)
}

/// The payments exception `x`'s money could be matched to: those of its
/// agency of the same amount, collected within two weeks of it, but its
/// own, newest first.
async fn candidates(
    state: &AppState,
    officer: &Officer,
    x: &PaymentException,
) -> Result<Vec<FoundPayment>, ApiError> {
    let (Some(agency), Some(amount)) = (&x.agency_code, x.amount) else {
        return Ok(Vec::new());
    };
    let day = |days: i64| {
        x.opened_at
            .plus(time::Duration::days(days))
            .map(|t| crate::domain::settlement::format_day(t.in_vietnam().date()))
    };
    let search = PaymentSearch {
        agency_code: Some(agency.clone()),
        from_day: day(-14),
        to_day: day(14),
        limit: 500,
        ..PaymentSearch::default()
    };
    let (found, _) = state
        .store
        .search_payments(officer.scope(), &search)
        .await?;
    Ok(found
        .items
        .into_iter()
        .filter(|f| f.payment.amount == amount && Some(&f.payment.id) != x.payment_id.as_ref())
        .take(10)
        .collect())
}

fn resolve_form(
    html: &mut Html,
    lang: Lang,
    officer: &Officer,
    x: &PaymentException,
    candidates: &[FoundPayment],
    refused: Option<&Refused<'_>>,
) {
    let sent = |name: &str| {
        refused
            .and_then(|r| r.form.get(name))
            .map_or("", String::as_str)
    };
    let fitting = Resolution::fitting(x.kind);
    html.raw("<section class=\"card\"><h2 id=\"resolve\">")
        .t(lang, &RESOLVE)
        .raw("</h2>");
    if let Some(refused) = refused {
        html.raw("<p class=\"message error\" role=\"alert\" id=\"resolve-refused\">")
            .t(lang, &COULD_NOT)
            .raw(": ")
            .text(refused.why)
            .raw("</p>");
    }
    html.raw("<form method=\"post\" action=\"")
        .text(&link(
            lang,
            &format!("/console/exceptions/{}/resolve", x.id),
            &[],
        ))
        .raw("\">");
    csrf_field(html, officer);
    html.raw("<div class=\"field\"><label for=\"resolution\">")
        .t(lang, &text!("Cách xử lý", "Resolution"))
        .raw("</label><select id=\"resolution\" name=\"resolution\" required>");
    // Matching by hand needs a payment: without one to offer, it is not
    // what the form starts on.
    let first = fitting
        .iter()
        .copied()
        .find(|r| *r != Resolution::MatchedManually || !candidates.is_empty())
        .unwrap_or(Resolution::Confirmed);
    for resolution in fitting {
        html.raw("<option value=\"")
            .raw(resolution.as_str())
            .raw("\"");
        let chosen = match sent("resolution") {
            "" => *resolution == first,
            sent => sent == resolution.as_str(),
        };
        if chosen {
            html.raw(" selected");
        }
        html.raw(">").text(resolution.label(lang)).raw("</option>");
    }
    html.raw("</select></div><div class=\"field\"><label for=\"note\">")
        .t(lang, &NOTE)
        .raw("</label><textarea id=\"note\" name=\"note\" required maxlength=\"1000\">")
        .text(sent("note"))
        .raw("</textarea></div>");
    if fitting.contains(&Resolution::MatchedManually) {
        html.raw("<fieldset class=\"field\" id=\"candidates\"><legend>")
            .t(
                lang,
                &text!(
                    "Khoản thanh toán để đối chiếu (khi đối chiếu thủ công)",
                    "The payment it is matched to (for matched manually)"
                ),
            )
            .raw("</legend>");
        if candidates.is_empty() {
            html.raw("<p class=\"note\">").t(
                lang,
                &text!(
                    "Không có khoản nào cùng số tiền của cơ quan này trong hai tuần quanh ngày mở.",
                    "No payment of this agency of the same amount within two weeks of the day it opened."
                ),
            );
            html.raw("</p>");
        }
        for (i, found) in candidates.iter().enumerate() {
            let p = &found.payment;
            let id = format!("candidate-{i}");
            html.raw("<div><input type=\"radio\" name=\"payment_id\" id=\"")
                .text(&id)
                .raw("\" value=\"")
                .text(&p.id)
                .raw("\"");
            if sent("payment_id") == p.id {
                html.raw(" checked");
            }
            html.raw("><label for=\"")
                .text(&id)
                .raw("\" style=\"display:inline;font-weight:400\">")
                .text(&format!(
                    "{} · {} · {} · {} · {}",
                    vietnam_minute(p.recorded_at),
                    channel_name(p.channel, lang),
                    p.amount.display_vi(),
                    found.payment_code.as_deref().unwrap_or("—"),
                    p.provider_txn_id
                ))
                .raw("</label></div>");
        }
        html.raw("<label for=\"payment_id_other\">")
            .t(
                lang,
                &text!(
                    "Hoặc mã một khoản thanh toán khác",
                    "Or the id of another payment"
                ),
            )
            .raw("</label><input id=\"payment_id_other\" name=\"payment_id_other\" maxlength=\"64\" value=\"")
            .text(sent("payment_id_other"))
            .raw("\"></fieldset>");
    }
    html.raw("<button type=\"submit\">")
        .t(lang, &RESOLVE)
        .raw("</button></form></section>");
}

/// `POST /console/exceptions/{id}/resolve`.
pub async fn resolve(
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
    if id.len() > 200 || id.chars().any(char::is_control) {
        return super::error_page(&req, Some(&officer), &ApiError::not_found("the exception"));
    }
    let resolved = exceptions::resolve(
        &state.store,
        &officer.actor(),
        officer.scope(),
        &id,
        value(&form, "resolution").unwrap_or_default(),
        form.get("note").map(String::as_str).unwrap_or_default(),
        value(&form, "payment_id_other").or(value(&form, "payment_id")),
    )
    .await;
    match resolved {
        Ok(_) => see_other(&link(
            lang,
            &format!("/console/exceptions/{id}"),
            &[("resolved", "1")],
        )),
        // A decision the officer can correct is shown with its form.
        Err(err) if err.status.is_client_error() && err.status != StatusCode::NOT_FOUND => {
            let why = super::said(&err, lang);
            let refused = Refused {
                why: &why,
                form: &form,
            };
            match detail(&req, &state, &officer, &id, Some(refused)).await {
                Ok(body) => respond(&req, &officer, err.status, body),
                Err(_) => super::error_page(&req, Some(&officer), &err),
            }
        }
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}
