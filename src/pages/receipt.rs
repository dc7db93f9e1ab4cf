//! `GET /pay/{code}/receipt`: the receipt (biên lai) of a paid invoice,
//! laid out to print on one page.

use super::{
    AGENCY, BACK, DOSSIER, Html, Lang, Layout, Text, channel_name, fee_table, field, link_button,
    page, text, vietnam_minute,
};
use crate::domain::Invoice;
use crate::domain::payment::Payment;
use crate::domain::receipt::Receipt;
use crate::domain::refund::HeldMoney;

pub struct ReceiptPage<'a> {
    pub lang: Lang,
    pub invoice: &'a Invoice,
    pub agency_name: &'a str,
    pub receipt: &'a Receipt,
    pub payment: &'a Payment,
    /// Money received beyond the receipt's payment, told below it.
    pub held: &'a HeldMoney,
}

const TITLE: Text = text!("Biên lai thu phí, lệ phí", "Receipt for fees");
const FORM_NUMBER: Text = text!("Mẫu số", "Form number (mẫu số)");
const SYMBOL: Text = text!("Ký hiệu", "Symbol (ký hiệu)");
const NUMBER: Text = text!("Số", "Number (số)");
const PAYER: Text = text!("Người nộp", "Payer");
const ID_NUMBER: Text = text!("Số giấy tờ tùy thân", "Identity document number");
const PROCEDURE: Text = text!("Thủ tục hành chính", "Procedure");
const CHANNEL: Text = text!("Hình thức thanh toán", "Paid with");
const TRANSACTION: Text = text!("Mã giao dịch", "Transaction id");
const PAID_AT: Text = text!("Thời điểm thanh toán", "Paid at");
const ISSUED_AT: Text = text!("Ngày lập biên lai", "Receipt issued");
const PAYMENT_CODE: Text = text!("Mã thanh toán", "Payment code");
const PRINT: Text = text!(
    "Để in hoặc lưu thành PDF, dùng chức năng In của trình duyệt.",
    "To print or save as PDF, use your browser's Print."
);

pub fn render(p: &ReceiptPage<'_>) -> String {
    let lang = p.lang;
    let invoice = p.invoice;
    let r = p.receipt;
    let code = invoice.payment_code.as_str();
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &TITLE)
        .raw("</h1><section class=\"card\"><dl>");
    field(&mut html, lang, &FORM_NUMBER, &r.form_number);
    field(&mut html, lang, &SYMBOL, &r.symbol);
    field(&mut html, lang, &NUMBER, &r.number.to_string());
    field(&mut html, lang, &ISSUED_AT, &vietnam_minute(r.issued_at));
    html.raw("</dl></section><section class=\"card\"><dl>");
    field(&mut html, lang, &AGENCY, p.agency_name);
    field(
        &mut html,
        lang,
        &PAYER,
        super::payer_name(lang, &invoice.payer),
    );
    if let Some(id) = invoice.payer.masked_id_number() {
        field(&mut html, lang, &ID_NUMBER, &id);
    }
    field(&mut html, lang, &DOSSIER, &invoice.dossier_code);
    field(
        &mut html,
        lang,
        &PROCEDURE,
        &format!("{} – {}", invoice.procedure_code, invoice.procedure_name),
    );
    field(&mut html, lang, &PAYMENT_CODE, code);
    html.raw("</dl></section><section class=\"card\">");
    fee_table(&mut html, lang, invoice);
    html.raw("<dl>");
    field(
        &mut html,
        lang,
        &CHANNEL,
        channel_name(p.payment.channel, lang),
    );
    field(&mut html, lang, &TRANSACTION, &p.payment.provider_txn_id);
    field(
        &mut html,
        lang,
        &PAID_AT,
        &vietnam_minute(p.payment.collected_at()),
    );
    html.raw("</dl></section>");
    super::money::held_section(&mut html, lang, p.held);
    html.raw("<p class=\"noprint\">")
        .t(lang, &PRINT)
        .raw("</p>");
    link_button(
        &mut html,
        lang,
        &format!("/pay/{code}{}", lang.query()),
        &BACK,
        true,
    );
    let toggle = format!("/pay/{code}/receipt?lang={}", lang.other().code());
    page(
        &Layout {
            lang,
            title: &TITLE,
            toggle_href: &toggle,
            refresh_secs: None,
        },
        html,
    )
}
