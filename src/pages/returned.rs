//! `GET /pay/{code}/return/{channel}`: where a gateway sends the payer
//! back. It only reads: paid, still processing (the page reloads itself),
//! failed, or a return that could not be verified.

use super::{
    BACK, DOSSIER, Html, Lang, Layout, SEE_RECEIPT, Text, channel_name, link_button, page, text,
};
use crate::domain::payment::Channel;
use crate::domain::refund::HeldMoney;
use crate::domain::{Invoice, InvoiceStatus};

/// What the payer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Paid,
    /// The payment is not recorded yet; the page reloads until it is.
    Processing,
    Failed,
    /// The gateway's signed return did not check out.
    Unverified,
    /// The invoice was cancelled or expired.
    Closed(InvoiceStatus),
    /// The money of this payment was received but not applied (paid
    /// twice, after expiry, of the wrong amount): it is held.
    Held,
}

pub struct ReturnPage<'a> {
    pub lang: Lang,
    pub invoice: &'a Invoice,
    pub channel: Channel,
    pub outcome: Outcome,
    pub toggle_href: &'a str,
    /// Money received beyond what paid the invoice, and what was refunded.
    pub held: &'a HeldMoney,
}

/// Seconds between reloads while a payment is processing.
pub const REFRESH_SECS: u32 = 5;

const TITLE: Text = text!("Kết quả thanh toán", "Payment result");
const PAID: Text = text!(
    "Đã thanh toán thành công.",
    "Paid: the payment was recorded."
);
const PROCESSING: Text = text!(
    "Đang xử lý: chúng tôi đang chờ xác nhận từ cổng thanh toán. Trang sẽ tự cập nhật.",
    "Processing: we are waiting for the gateway to confirm. This page updates itself."
);
const FAILED: Text = text!(
    "Thanh toán không thành công. Bạn có thể thử lại.",
    "The payment failed. You can try again."
);
const UNVERIFIED: Text = text!(
    "Không xác minh được kết quả do cổng thanh toán gửi về. Không có gì thay đổi; trạng thái hồ sơ chỉ được cập nhật khi cổng thanh toán xác nhận trực tiếp với chúng tôi.",
    "The result sent back by the gateway could not be verified. Nothing was changed; the dossier is marked paid only when the gateway confirms it to us directly."
);
const CANCELLED: Text = text!(
    "Yêu cầu thanh toán này đã bị hủy.",
    "This payment request was cancelled."
);
const EXPIRED: Text = text!(
    "Yêu cầu thanh toán này đã hết hạn.",
    "This payment request has expired."
);
const HELD: Text = text!(
    "Chúng tôi đã nhận khoản thanh toán này nhưng chưa ghi cho hồ sơ. Tiền của bạn không mất: xem bên dưới điều gì sẽ xảy ra tiếp theo.",
    "We received this payment but did not apply it to the dossier. Your money is not lost: see below what happens next."
);
const CHANNEL: Text = text!("Cách thanh toán", "Paid with");
const TRY_AGAIN: Text = text!("Thử lại", "Try again");

pub fn render(p: &ReturnPage<'_>) -> String {
    let lang = p.lang;
    let code = p.invoice.payment_code.as_str();
    let checkout = format!("/pay/{code}{}", lang.query());
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &TITLE)
        .raw("</h1><section class=\"card\">");
    let (class, message) = match p.outcome {
        Outcome::Paid => ("paid", &PAID),
        Outcome::Processing => ("processing", &PROCESSING),
        Outcome::Failed => ("failed", &FAILED),
        Outcome::Unverified => ("failed", &UNVERIFIED),
        Outcome::Closed(InvoiceStatus::Cancelled) => ("closed", &CANCELLED),
        Outcome::Closed(_) => ("closed", &EXPIRED),
        Outcome::Held => ("held", &HELD),
    };
    html.raw("<p class=\"state ")
        .raw(class)
        .raw("\">")
        .t(lang, message)
        .raw("</p><dl>");
    super::field(&mut html, lang, &DOSSIER, &p.invoice.dossier_code);
    super::field(&mut html, lang, &CHANNEL, channel_name(p.channel, lang));
    html.raw("</dl>");
    match p.outcome {
        Outcome::Paid => link_button(
            &mut html,
            lang,
            &format!("/pay/{code}/receipt{}", lang.query()),
            &SEE_RECEIPT,
            false,
        ),
        Outcome::Failed => link_button(&mut html, lang, &checkout, &TRY_AGAIN, false),
        _ => link_button(&mut html, lang, &checkout, &BACK, true),
    }
    html.raw("</section>");
    super::money::held_section(&mut html, lang, p.held);
    page(
        &Layout {
            lang,
            title: &TITLE,
            toggle_href: p.toggle_href,
            refresh_secs: (p.outcome == Outcome::Processing).then_some(REFRESH_SECS),
        },
        html,
    )
}
