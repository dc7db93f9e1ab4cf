//! `/console/payments`: payments found by payment code, dossier code,
//! provider transaction id or payer phone, or those behind a dashboard
//! figure; `/console/invoices/{id}`: an invoice with its payments, where
//! cash received at the counter is recorded with the API's own function
//! (audited, and idempotent: the form carries a key made when the page
//! was shown, so a double submit records once).

use actix_web::http::StatusCode;

use super::labels::Label;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{
    AGENCY, AMOUNT, CHANNEL, DOSSIER, DOWNLOAD_CSV, FILTER, LEVEL, NEXT_PAGE, NOTHING, Officer,
    PAYMENT_CODE, Section, csrf_field, csv_file, lang_field, lang_of, link, query_of, see_other,
    session, value,
};
use crate::domain::rates::Period;
use crate::domain::{AgencyCode, AgencyLevel, IdempotencyKey, InvoiceStatus, Role, Timestamp, Vnd};
use crate::error::ApiError;
use crate::pages::{Html, Lang, Text, channel_name, fee_kind_name, text, vietnam_minute};
use crate::startup::AppState;
use crate::store::{FoundPayment, InvoiceHit, PaymentSearch, PaymentTotals};
use crate::usecases::cash::{self, CashPayment};

const SEARCH: Text = text!(
    "Mã thanh toán, mã hồ sơ, mã giao dịch hoặc số điện thoại",
    "Payment code, dossier code, transaction id or phone"
);
const TXN: Text = text!("Mã giao dịch", "Transaction id");
const RECORDED: Text = text!("Ghi nhận lúc", "Recorded");
const EXCEPTION: Text = text!("Ngoại lệ", "Exception");
const RECORDED_BY: Text = text!("Người ghi nhận", "Recorded by");
const CASH_ONLY: Text = text!("Chỉ tiền mặt", "Cash only");
const CASHLESS_ONLY: Text = text!("Chỉ không dùng tiền mặt", "Cashless only");
/// The most rows a CSV download holds.
const CSV_ROWS: i64 = 50_000;

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request(crate::error::ErrorCode::InvalidQuery, message)
}

/// A day `YYYY-MM-DD` from the query.
fn day(field: &str, text: Option<&str>) -> Result<Option<String>, ApiError> {
    text.map(|d| {
        Period::parse(d, d)
            .map(|p| p.from())
            .map_err(|_| invalid(&format!("{field} must be a day as YYYY-MM-DD")))
    })
    .transpose()
}

fn search_of(query: &std::collections::HashMap<String, String>) -> Result<PaymentSearch, ApiError> {
    let text = value(query, "q")
        .map(|q| {
            if q.chars().count() > 200 || q.chars().any(char::is_control) {
                Err(invalid("the search must be at most 200 characters"))
            } else {
                Ok(q.to_owned())
            }
        })
        .transpose()?;
    Ok(PaymentSearch {
        text,
        agency_code: value(query, "agency")
            .map(|code| AgencyCode::parse("agency", code))
            .transpose()?,
        agency_only: value(query, "agency_only") == Some("1"),
        level: value(query, "level")
            .map(|level| AgencyLevel::parse("level", level))
            .transpose()?,
        from_day: day("from", value(query, "from"))?,
        to_day: day("to", value(query, "to"))?,
        cash: match value(query, "cash") {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        },
        counted: value(query, "counted") == Some("1"),
        invoice_id: value(query, "invoice")
            .filter(|id| id.len() <= 200)
            .map(str::to_owned),
        after_id: value(query, "cursor")
            .filter(|c| c.len() <= 64)
            .map(str::to_owned),
        limit: 50,
        ..PaymentSearch::default()
    })
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let lang = lang_of(&req);
    let query = query_of(&req);
    let mut search = match search_of(&query) {
        Ok(search) => search,
        Err(err) => return super::error_page(&req, Some(&officer), &err),
    };
    let csv = value(&query, "format") == Some("csv");
    if csv && value(&query, "table") == Some("invoices") {
        let text = search.text.as_deref().unwrap_or_default();
        return match state.store.find_invoices(officer.scope(), text).await {
            Ok(invoices) => csv_file("yeu-cau-thanh-toan.csv", invoices_csv(&invoices, lang)),
            Err(err) => super::error_page(&req, Some(&officer), &err.into()),
        };
    }
    if csv {
        search.limit = CSV_ROWS;
        search.after_id = None;
    }
    let (found, totals) = match state.store.search_payments(officer.scope(), &search).await {
        Ok(found) => found,
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    if csv {
        return csv_file("thanh-toan.csv", payments_csv(&found.items, lang));
    }
    let invoices = match &search.text {
        Some(text) => match state.store.find_invoices(officer.scope(), text).await {
            Ok(invoices) => invoices,
            Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
        },
        None => Vec::new(),
    };
    let mut body = Html::new();
    body.raw("<h1>").t(lang, &super::PAYMENTS).raw("</h1>");
    search_form(&mut body, lang, &query);
    if let Some(text) = search.text.as_deref().filter(|_| !invoices.is_empty()) {
        invoices_table(&mut body, lang, &invoices, text);
    }
    body.raw("<section class=\"card\"><p id=\"payment-totals\">")
        .t(lang, &text!("Tìm thấy", "Found"))
        .raw(" <strong id=\"found-count\">")
        .text(&totals.count.to_string())
        .raw("</strong> ")
        .t(lang, &text!("khoản, tổng", "payments, in all"))
        .raw(" <strong id=\"found-amount\">")
        .text(&totals.amount.display_vi())
        .raw("</strong>")
        .raw("</p>");
    payments_table(&mut body, lang, &found.items, &totals);
    if let Some(cursor) = &found.next_cursor {
        let mut params: Vec<(&str, &str)> = query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "lang"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        params.push(("cursor", cursor));
        body.raw("<p><a href=\"")
            .text(&link(lang, "/console/payments", &params))
            .raw("\">")
            .t(lang, &NEXT_PAGE)
            .raw("</a></p>");
    }
    let mut params: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "cursor" | "lang" | "format"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    params.push(("format", "csv"));
    csv_link(&mut body, lang, &params);
    body.raw("</section>");
    super::officer_page(
        &req,
        &officer,
        StatusCode::OK,
        &super::PAYMENTS,
        Section::Payments,
        body,
    )
}

fn search_form(html: &mut Html, lang: Lang, query: &std::collections::HashMap<String, String>) {
    let get = |name: &str| value(query, name).unwrap_or_default().to_owned();
    html.raw("<section class=\"card\"><form class=\"filters\" method=\"get\" action=\"/console/payments\" role=\"search\">");
    lang_field(html, lang);
    html.raw("<div><label for=\"q\">")
        .t(lang, &SEARCH)
        .raw("</label><input id=\"q\" name=\"q\" type=\"search\" maxlength=\"200\" value=\"")
        .text(&get("q"))
        .raw("\"></div>");
    super::day_fields(html, lang, value(query, "from"), value(query, "to"));
    html.raw("<div><label for=\"cash\">")
        .t(lang, &CHANNEL)
        .raw("</label><select id=\"cash\" name=\"cash\"><option value=\"\">")
        .t(lang, &super::ALL)
        .raw("</option>");
    for (v, label) in [("0", &CASHLESS_ONLY), ("1", &CASH_ONLY)] {
        html.raw("<option value=\"").raw(v).raw("\"");
        if get("cash") == v {
            html.raw(" selected");
        }
        html.raw(">").t(lang, label).raw("</option>");
    }
    html.raw("</select></div>");
    // What a dashboard link narrowed to stays narrowed.
    for name in ["agency", "agency_only", "level", "counted", "invoice"] {
        if let Some(v) = value(query, name) {
            html.raw("<input type=\"hidden\" name=\"")
                .raw(name)
                .raw("\" value=\"")
                .text(v)
                .raw("\">");
        }
    }
    html.raw("<div><button type=\"submit\">")
        .t(lang, &FILTER)
        .raw("</button></div></form>");
    let mut narrowed = Vec::new();
    if let Some(agency) = value(query, "agency") {
        narrowed.push(format!("{}: {agency}", lang.pick(&AGENCY)));
    }
    if let Some(level) = value(query, "level").and_then(|l| AgencyLevel::parse("level", l).ok()) {
        narrowed.push(format!("{}: {}", lang.pick(&LEVEL), level.label(lang)));
    }
    if value(query, "counted") == Some("1") {
        narrowed.push(
            lang.pick(&text!(
                "chỉ các khoản được tính trong báo cáo",
                "only payments the report counts"
            ))
            .to_owned(),
        );
    }
    if !narrowed.is_empty() {
        html.raw("<p class=\"note\">")
            .text(&narrowed.join(" · "))
            .raw("</p>");
    }
    html.raw("</section>");
}

fn payments_table(html: &mut Html, lang: Lang, items: &[FoundPayment], totals: &PaymentTotals) {
    if items.is_empty() {
        html.raw("<p>").t(lang, &NOTHING).raw("</p>");
        return;
    }
    html.raw("<table id=\"payments\"><caption>")
        .t(lang, &super::PAYMENTS)
        .raw("</caption><thead><tr>");
    for label in [
        &RECORDED,
        &CHANNEL,
        &PAYMENT_CODE,
        &DOSSIER,
        &TXN,
        &AGENCY,
        &EXCEPTION,
        &RECORDED_BY,
    ] {
        html.raw("<th scope=\"col\">").t(lang, label).raw("</th>");
    }
    html.raw("<th scope=\"col\" class=\"num\">")
        .t(lang, &AMOUNT)
        .raw("</th></tr></thead><tbody>");
    for found in items {
        let p = &found.payment;
        html.raw("<tr><td>")
            .text(&vietnam_minute(p.recorded_at))
            .raw("</td><td>")
            .text(channel_name(p.channel, lang))
            .raw("</td><td>");
        match (&p.invoice_id, &found.payment_code) {
            (Some(id), Some(code)) => {
                html.raw("<a href=\"")
                    .text(&link(lang, &format!("/console/invoices/{id}"), &[]))
                    .raw("\">")
                    .text(code)
                    .raw("</a>");
            }
            _ => {
                html.raw("—");
            }
        }
        html.raw("</td><td>")
            .text(found.dossier_code.as_deref().unwrap_or("—"))
            .raw("</td><td>")
            .text(&p.provider_txn_id)
            .raw("</td><td>")
            .text(p.agency_code.as_ref().map_or("—", |c| c.as_str()))
            .raw("</td><td>")
            .text(p.exception.map_or("", |k| k.label(lang)))
            .raw("</td><td>")
            .text(&match &p.recorded_by_name {
                Some(name) => name.clone(),
                None => p.source.label(lang).to_owned(),
            })
            .raw("</td><td class=\"num\">")
            .text(&p.amount.display_vi())
            .raw("</td></tr>");
    }
    html.raw("</tbody><tfoot><tr><td colspan=\"8\">")
        .t(lang, &text!("Tổng (mọi trang)", "Total (all pages)"))
        .raw("</td><td class=\"num\">")
        .text(&totals.amount.display_vi())
        .raw("</td></tr></tfoot></table>");
}

fn invoices_table(html: &mut Html, lang: Lang, invoices: &[InvoiceHit], text: &str) {
    html.raw("<section class=\"card\"><table id=\"invoices\"><caption>")
        .t(lang, &text!("Yêu cầu thanh toán", "Invoices"))
        .raw("</caption><thead><tr>");
    for label in [&PAYMENT_CODE, &DOSSIER, &AGENCY, &STATUS_LABEL] {
        html.raw("<th scope=\"col\">").t(lang, label).raw("</th>");
    }
    html.raw("<th scope=\"col\" class=\"num\">")
        .t(lang, &AMOUNT)
        .raw("</th></tr></thead><tbody>");
    for invoice in invoices {
        let status = InvoiceStatus::parse(&invoice.status)
            .map_or(invoice.status.as_str(), |s| s.label(lang));
        html.raw("<tr><td><a href=\"")
            .text(&link(
                lang,
                &format!("/console/invoices/{}", invoice.id),
                &[],
            ))
            .raw("\">")
            .text(&invoice.payment_code)
            .raw("</a></td><td>")
            .text(&invoice.dossier_code)
            .raw("</td><td>")
            .text(invoice.agency_code.as_str())
            .raw("</td><td>")
            .text(status)
            .raw("</td><td class=\"num\">")
            .text(&invoice.total.display_vi())
            .raw("</td></tr>");
    }
    html.raw("</tbody></table>");
    csv_link(
        html,
        lang,
        &[("q", text), ("table", "invoices"), ("format", "csv")],
    );
    html.raw("</section>");
}

/// The button that downloads the payments list with `params` as CSV.
fn csv_link(html: &mut Html, lang: Lang, params: &[(&str, &str)]) {
    html.raw("<p><a class=\"button secondary\" download href=\"")
        .text(&link(lang, "/console/payments", params))
        .raw("\">")
        .t(lang, &DOWNLOAD_CSV)
        .raw("</a></p>");
}

fn invoices_csv(invoices: &[InvoiceHit], lang: Lang) -> String {
    use super::table::{Cell, Table};
    Table {
        id: "invoices",
        caption: &super::invoices::INVOICES,
        columns: &[
            &text!("Mã yêu cầu thanh toán", "Invoice id"),
            &PAYMENT_CODE,
            &DOSSIER,
            &AGENCY,
            &STATUS_LABEL,
            &AMOUNT,
        ],
        rows: invoices
            .iter()
            .map(|i| {
                vec![
                    Cell::text(&i.id),
                    Cell::text(&i.payment_code),
                    Cell::text(&i.dossier_code),
                    Cell::text(i.agency_code.as_str()),
                    Cell::text(
                        InvoiceStatus::parse(&i.status)
                            .map_or(i.status.as_str(), |s| s.label(lang)),
                    ),
                    Cell::Money(i.total),
                ]
            })
            .collect(),
    }
    .csv(lang)
}

fn payments_csv(items: &[FoundPayment], lang: Lang) -> String {
    use super::table::{Cell, Table};
    Table {
        id: "payments",
        caption: &super::PAYMENTS,
        columns: &[
            &text!("Mã khoản thu", "Payment id"),
            &RECORDED,
            &CHANNEL,
            &AMOUNT,
            &PAYMENT_CODE,
            &DOSSIER,
            &TXN,
            &AGENCY,
            &EXCEPTION,
            &text!("Nguồn ghi nhận", "Source"),
            &RECORDED_BY,
        ],
        rows: items
            .iter()
            .map(|f| {
                let p = &f.payment;
                vec![
                    Cell::text(&p.id),
                    Cell::Time(p.recorded_at),
                    Cell::text(channel_name(p.channel, lang)),
                    Cell::Money(p.amount),
                    Cell::maybe(f.payment_code.clone()),
                    Cell::maybe(f.dossier_code.clone()),
                    Cell::text(&p.provider_txn_id),
                    Cell::maybe(p.agency_code.as_ref().map(|c| c.to_string())),
                    Cell::maybe(p.exception.map(|k| k.label(lang))),
                    Cell::text(p.source.label(lang)),
                    Cell::maybe(p.recorded_by_name.clone()),
                ]
            })
            .collect(),
    }
    .csv(lang)
}

const INVOICE: Text = text!("Yêu cầu thanh toán", "Invoice");
const RECORD_CASH: Text = text!("Ghi nhận tiền mặt tại quầy", "Record cash at the counter");

/// `GET /console/invoices/{id}`.
pub async fn invoice(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let officer = match session::officer(&req, &state).await {
        Ok(officer) => officer,
        Err(answer) => return answer,
    };
    let lang = lang_of(&req);
    let id = id.into_inner();
    if id.len() > 200 || id.chars().any(char::is_control) {
        return super::error_page(&req, Some(&officer), &ApiError::not_found("the invoice"));
    }
    let invoice = match state.store.get_invoice(officer.scope(), &id).await {
        Ok(invoice) => invoice,
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    let payments = match state.store.invoice_payments(officer.scope(), &id).await {
        Ok(payments) => payments,
        Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
    };
    let mut body = Html::new();
    body.raw("<h1>")
        .t(lang, &INVOICE)
        .raw(" ")
        .text(invoice.payment_code.as_str())
        .raw("</h1>");
    match value(&query_of(&req), "recorded") {
        Some("1") => {
            body.raw("<p class=\"message\" role=\"status\">")
                .t(
                    lang,
                    &text!(
                        "Đã ghi nhận khoản tiền mặt cho hồ sơ.",
                        "The cash payment was recorded and applied to the dossier."
                    ),
                )
                .raw("</p>");
        }
        Some("held") => {
            body.raw("<p class=\"message held\" role=\"alert\">")
                .t(
                    lang,
                    &text!(
                        "Đã ghi nhận khoản tiền mặt, nhưng khoản này không khớp số tiền hồ sơ còn phải nộp nên chưa được ghi cho hồ sơ: hồ sơ chưa được nộp, tiền đang được giữ và một ngoại lệ đã được mở để hoàn lại hoặc đối chiếu.",
                        "The cash was recorded, but it is not what the dossier still owes, so it was not applied: the dossier is not paid, the money is held, and an exception was opened to refund or match it."
                    ),
                )
                .raw("</p>");
        }
        _ => {}
    }
    body.raw("<section class=\"card\"><dl>");
    let facts: [(&Text, String); 8] = [
        (&STATUS_LABEL, invoice.status.label(lang).to_owned()),
        (&AGENCY, invoice.agency_code.to_string()),
        (&DOSSIER, invoice.dossier_code.clone()),
        (
            &text!("Thủ tục", "Procedure"),
            format!("{} – {}", invoice.procedure_code, invoice.procedure_name),
        ),
        (
            &text!("Người nộp", "Payer"),
            crate::pages::payer_name(lang, &invoice.payer).to_owned(),
        ),
        (&text!("Tổng phải nộp", "Total"), invoice.total.display_vi()),
        (&text!("Đã nộp", "Paid"), invoice.amount_paid.display_vi()),
        (
            &text!("Biên lai", "Receipt"),
            invoice.receipt.as_ref().map_or_else(
                || "—".to_owned(),
                |r| {
                    serde_json::to_value(r)
                        .map(|v| receipt_text(&v))
                        .unwrap_or_default()
                },
            ),
        ),
    ];
    for (label, shown) in facts {
        body.raw("<dt>")
            .t(lang, label)
            .raw("</dt><dd>")
            .text(&shown)
            .raw("</dd>");
    }
    body.raw("</dl><h2>")
        .t(lang, &text!("Các khoản thu", "Fees"))
        .raw("</h2><table><thead><tr><th scope=\"col\">")
        .t(lang, &text!("Khoản thu", "Fee"))
        .raw("</th><th scope=\"col\" class=\"num\">")
        .t(lang, &AMOUNT)
        .raw("</th></tr></thead><tbody>");
    for line in &invoice.lines {
        body.raw("<tr><td>")
            .text(fee_kind_name(line.kind, lang))
            .raw(": ")
            .text(&line.description)
            .raw("</td><td class=\"num\">")
            .text(&line.amount.display_vi())
            .raw("</td></tr>");
    }
    body.raw("</tbody></table></section><section class=\"card\"><h2>")
        .t(lang, &super::PAYMENTS)
        .raw("</h2>");
    let found: Vec<FoundPayment> = payments
        .into_iter()
        .map(|payment| FoundPayment {
            payment,
            payment_code: Some(invoice.payment_code.to_string()),
            dossier_code: Some(invoice.dossier_code.clone()),
        })
        .collect();
    let total = found
        .iter()
        .try_fold(Vnd::ZERO, |sum, f| sum.checked_add(f.payment.amount))
        .unwrap_or(Vnd::ZERO);
    payments_table(
        &mut body,
        lang,
        &found,
        &PaymentTotals {
            count: i64::try_from(found.len()).unwrap_or(i64::MAX),
            amount: total,
        },
    );
    csv_link(
        &mut body,
        lang,
        &[("invoice", invoice.id.as_str()), ("format", "csv")],
    );
    body.raw("</section>");
    if invoice.status == InvoiceStatus::Open && officer.principal.role == Role::Finance {
        cash_form(&mut body, lang, &officer, &invoice);
    }
    if officer.principal.role == Role::Finance {
        let mut refundable = Vec::new();
        for found in &found {
            match state
                .store
                .refund_left(officer.scope(), &found.payment.id)
                .await
            {
                Ok(left) if left.any.dong() > 0 => refundable.push((&found.payment, left.any)),
                Ok(_) => {}
                Err(err) => return super::error_page(&req, Some(&officer), &err.into()),
            }
        }
        if !refundable.is_empty() {
            super::refunds::invoice_form(&mut body, lang, &officer, &invoice.id, &refundable);
        }
    }
    super::officer_page(
        &req,
        &officer,
        StatusCode::OK,
        &INVOICE,
        Section::Payments,
        body,
    )
}

const STATUS_LABEL: Text = text!("Trạng thái", "Status");

fn receipt_text(receipt: &serde_json::Value) -> String {
    ["form_number", "symbol", "number"]
        .iter()
        .filter_map(|k| receipt[k].as_str())
        .collect::<Vec<_>>()
        .join(" · ")
}

fn cash_form(html: &mut Html, lang: Lang, officer: &Officer, invoice: &crate::domain::Invoice) {
    let owed = invoice
        .total
        .checked_sub(invoice.amount_paid)
        .unwrap_or(invoice.total);
    let now = Timestamp::now().in_vietnam();
    let now = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute()
    );
    html.raw("<section class=\"card\"><h2>")
        .t(lang, &RECORD_CASH)
        .raw("</h2><form method=\"post\" action=\"")
        .text(&link(
            lang,
            &format!("/console/invoices/{}/cash", invoice.id),
            &[],
        ))
        .raw("\">");
    csrf_field(html, officer);
    html.raw("<input type=\"hidden\" name=\"idempotency_key\" value=\"")
        .text(&format!("console-cash-{}", uuid::Uuid::now_v7()))
        .raw("\"><div class=\"field\"><label for=\"amount\">")
        .t(lang, &text!("Số tiền (đồng)", "Amount (đồng)"))
        .raw("</label><input id=\"amount\" name=\"amount\" inputmode=\"numeric\" required value=\"")
        .text(&owed.dong().to_string())
        .raw("\"></div><div class=\"field\"><label for=\"receipt_number\">")
        .t(lang, &text!("Số biên lai giấy", "Paper receipt number"))
        .raw("</label><input id=\"receipt_number\" name=\"receipt_number\" required maxlength=\"50\"></div>")
        .raw("<div class=\"field\"><label for=\"received_at\">")
        .t(lang, &text!("Thời điểm nhận tiền (giờ Việt Nam)", "Received at (Vietnam time)"))
        .raw("</label><input id=\"received_at\" name=\"received_at\" type=\"datetime-local\" required value=\"")
        .text(&now)
        .raw("\"></div><button type=\"submit\">")
        .t(lang, &RECORD_CASH)
        .raw("</button></form></section>");
}

/// A `datetime-local` value (Vietnam time) or an RFC 3339 time.
fn received_at(text: &str) -> Option<Timestamp> {
    Timestamp::parse_rfc3339(text).or_else(|| match text.len() {
        16 => Timestamp::parse_rfc3339(&format!("{text}:00+07:00")),
        19 => Timestamp::parse_rfc3339(&format!("{text}+07:00")),
        _ => None,
    })
}

/// `POST /console/invoices/{id}/cash`.
pub async fn record_cash(
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
    let answer = async {
        if officer.principal.role != Role::Finance {
            return Err(ApiError::forbidden());
        }
        if id.len() > 200 || id.chars().any(char::is_control) {
            return Err(ApiError::not_found("the invoice"));
        }
        let key = value(&form, "idempotency_key")
            .and_then(|k| IdempotencyKey::parse(k).ok())
            .ok_or_else(|| invalid("the form is missing its key: open the invoice again"))?;
        let amount = value(&form, "amount")
            .and_then(|a| Vnd::parse_vietnamese(a).ok())
            .ok_or_else(|| invalid("amount: a whole number of đồng"))?;
        let received_at = value(&form, "received_at")
            .and_then(received_at)
            .ok_or_else(|| invalid("received_at: a date and time"))?;
        cash::record(
            &state.store,
            officer.principal(),
            &officer.actor(),
            &key,
            &id,
            CashPayment {
                amount,
                receipt_number: value(&form, "receipt_number")
                    .unwrap_or_default()
                    .to_owned(),
                received_at,
            },
            // What the page needs again on a replay: whether it was held.
            |payment| serde_json::json!({ "exception": payment.exception }).to_string(),
        )
        .await
    };
    match answer.await {
        Ok(created) => {
            // The answer says whether the payment was held, on a replay too.
            let held = serde_json::from_str::<serde_json::Value>(&created.body)
                .ok()
                .is_some_and(|payment| !payment["exception"].is_null());
            see_other(&link(
                lang,
                &format!("/console/invoices/{id}"),
                &[("recorded", if held { "held" } else { "1" })],
            ))
        }
        Err(err) => super::error_page(&req, Some(&officer), &err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_time_is_vietnam_time() {
        assert_eq!(
            received_at("2026-11-28T09:30").map(Timestamp::to_stored),
            Timestamp::parse_rfc3339("2026-11-28T02:30:00Z").map(Timestamp::to_stored)
        );
        assert!(received_at("yesterday").is_none());
        assert!(received_at("2026-11-28T09:3é").is_none());
    }
}
