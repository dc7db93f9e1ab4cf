//! `GET /pay/{code}`: what the invoice is for, and a button per channel
//! the citizen can pay it on; or, once it is no longer open, its state.

use super::{
    DUE, Html, Lang, Layout, SEE_RECEIPT, Text, channel_name, fee_table, invoice_facts, page, text,
    vietnam_minute,
};
use crate::domain::payment::Channel;
use crate::domain::refund::HeldMoney;
use crate::domain::{Invoice, InvoiceStatus};

pub struct CheckoutPage<'a> {
    pub lang: Lang,
    pub invoice: &'a Invoice,
    pub agency_name: &'a str,
    /// The channels the invoice can be paid on now, in the order shown.
    pub channels: &'a [Channel],
    /// Money received beyond what paid it, and what was refunded.
    pub held: &'a HeldMoney,
}

const TITLE: Text = text!("Thanh toán hồ sơ", "Pay for a dossier");
const CHOOSE: Text = text!("Chọn cách thanh toán", "Choose how to pay");
const PAY_WITH: Text = text!("Thanh toán qua", "Pay with");
const NO_CHANNEL: Text = text!(
    "Hiện chưa có cách thanh toán trực tuyến nào cho hồ sơ này. Vui lòng nộp tại quầy.",
    "No online payment is available for this dossier now. Please pay at the counter."
);
const ALREADY_PAID: Text = text!("Đã nộp", "Already paid");
const STILL_OWED: Text = text!("Còn thiếu", "Still owed");
const PAID: Text = text!("Hồ sơ đã được thanh toán.", "This dossier has been paid.");
const CANCELLED: Text = text!(
    "Yêu cầu thanh toán này đã bị hủy. Vui lòng liên hệ cơ quan thu.",
    "This payment request was cancelled. Please contact the agency."
);
const GIVEN_BACK: Text = text!(
    "Khoản phí đã nộp đã được hoàn lại cho bạn, nên hồ sơ không còn được tính là đã nộp. Nếu hồ sơ cần nộp lại, cơ quan thu sẽ gửi yêu cầu thanh toán mới.",
    "The fees you paid were refunded to you, so the dossier no longer counts as paid. If it is to be paid again, the agency will send a new payment request."
);
const EXPIRED: Text = text!(
    "Yêu cầu thanh toán này đã hết hạn. Vui lòng liên hệ cơ quan thu để được cấp yêu cầu mới.",
    "This payment request has expired. Please ask the agency for a new one."
);

pub fn render(p: &CheckoutPage<'_>) -> String {
    let lang = p.lang;
    let invoice = p.invoice;
    let code = invoice.payment_code.as_str();
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &TITLE)
        .raw("</h1><section class=\"card\">");
    invoice_facts(&mut html, lang, invoice, p.agency_name);
    html.raw("</section><section class=\"card\">");
    fee_table(&mut html, lang, invoice);
    html.raw("<dl>");
    if invoice.amount_paid.dong() > 0 && invoice.status == InvoiceStatus::Open {
        super::field(
            &mut html,
            lang,
            &ALREADY_PAID,
            &invoice.amount_paid.display_vi(),
        );
        let owed = invoice
            .total
            .checked_sub(invoice.amount_paid)
            .unwrap_or(invoice.total);
        super::field(&mut html, lang, &STILL_OWED, &owed.display_vi());
    }
    super::field(&mut html, lang, &DUE, &vietnam_minute(invoice.expires_at));
    html.raw("</dl></section><section class=\"card\">");
    match invoice.status {
        InvoiceStatus::Open => {
            html.raw("<h2>").t(lang, &CHOOSE).raw("</h2>");
            if p.channels.is_empty() {
                html.raw("<p>").t(lang, &NO_CHANNEL).raw("</p>");
            }
            for &channel in p.channels {
                html.raw("<form method=\"post\" action=\"/pay/")
                    .text(code)
                    .raw("/start/")
                    .text(channel.as_str())
                    .raw(lang.query())
                    .raw("\"><button type=\"submit\">")
                    .t(lang, &PAY_WITH)
                    .raw(" ")
                    .text(channel_name(channel, lang))
                    .raw("</button></form>");
            }
        }
        InvoiceStatus::Paid => {
            html.raw("<p class=\"state paid\">")
                .t(lang, &PAID)
                .raw("</p>");
            super::link_button(
                &mut html,
                lang,
                &format!("/pay/{code}/receipt{}", lang.query()),
                &SEE_RECEIPT,
                false,
            );
        }
        // Paid once (it has a receipt), then its money went back.
        InvoiceStatus::Cancelled if invoice.receipt.is_some() => {
            html.raw("<p class=\"state closed\">")
                .t(lang, &GIVEN_BACK)
                .raw("</p>");
        }
        InvoiceStatus::Cancelled => {
            html.raw("<p class=\"state closed\">")
                .t(lang, &CANCELLED)
                .raw("</p>");
        }
        InvoiceStatus::Expired => {
            html.raw("<p class=\"state closed\">")
                .t(lang, &EXPIRED)
                .raw("</p>");
        }
    }
    html.raw("</section>");
    super::money::held_section(&mut html, lang, p.held);
    let toggle = format!("/pay/{code}?lang={}", lang.other().code());
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
