//! The bank-transfer page: the VietQR code drawn on the server as inline
//! SVG, and beside it everything to type by hand, each value plain text
//! that one tap selects.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use super::{
    AGENCY, BACK, DUE, Html, Lang, Layout, Text, field, link_button, page, text, vietnam_minute,
};
use crate::domain::Invoice;
use crate::providers::bank_transfer::TransferInstructions;

pub struct TransferPage<'a> {
    pub lang: Lang,
    pub invoice: &'a Invoice,
    pub agency_name: &'a str,
    pub instructions: &'a TransferInstructions,
    /// With the sandbox on, its bank's page that sends this transfer.
    pub sandbox_bank: Option<String>,
}

const TITLE: Text = text!(
    "Chuyển khoản bằng mã VietQR",
    "Pay by bank transfer with VietQR"
);
const SCAN: Text = text!(
    "Mở ứng dụng ngân hàng, chọn quét mã QR và quét mã dưới đây. Số tiền và nội dung đã có sẵn trong mã.",
    "Open your banking app, choose to scan a QR code and scan the code below. The amount and the note are in the code."
);
const BY_HAND: Text = text!("Hoặc chuyển khoản thủ công", "Or transfer by hand");
const BANK: Text = text!("Ngân hàng", "Bank");
const ACCOUNT_NUMBER: Text = text!("Số tài khoản", "Account number");
const ACCOUNT_NAME: Text = text!("Tên tài khoản", "Account name");
const AMOUNT: Text = text!("Số tiền", "Amount");
const NOTE: Text = text!("Nội dung chuyển khoản", "Transfer note");
const EXACT: Text = text!(
    "Vui lòng chuyển đúng số tiền và ghi đúng nội dung để hồ sơ được ghi nhận đã nộp tự động. Sau khi chuyển, trang thanh toán sẽ hiện trạng thái đã nộp.",
    "Please transfer exactly this amount with exactly this note, so that the dossier is marked paid automatically. Once you have transferred, the payment page will show it paid."
);
const QR_FAILED: Text = text!(
    "Không vẽ được mã QR; vui lòng chuyển khoản thủ công.",
    "The QR code could not be drawn; please transfer by hand."
);
const SANDBOX_BANK: Text = text!(
    "SANDBOX: chuyển khoản này từ ngân hàng thử nghiệm",
    "SANDBOX: send this transfer from the test bank"
);

pub fn render(p: &TransferPage<'_>) -> String {
    let lang = p.lang;
    let i = p.instructions;
    let code = p.invoice.payment_code.as_str();
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &TITLE)
        .raw("</h1><section class=\"card\"><p>")
        .t(lang, &SCAN)
        .raw("</p>");
    match qr_svg(&i.vietqr) {
        Some(svg) => {
            html.raw("<div class=\"qr\">").generated(&svg).raw("</div>");
        }
        None => {
            html.raw("<p class=\"failed\">")
                .t(lang, &QR_FAILED)
                .raw("</p>");
        }
    }
    html.raw("</section><section class=\"card\"><h2>")
        .t(lang, &BY_HAND)
        .raw("</h2><dl>");
    let bank = match bank_name(&i.bank_bin) {
        Some(name) => format!("{name} (BIN {})", i.bank_bin),
        None => format!("BIN {}", i.bank_bin),
    };
    field(&mut html, lang, &BANK, &bank);
    copyable(&mut html, lang, &ACCOUNT_NUMBER, &i.account_number);
    field(&mut html, lang, &ACCOUNT_NAME, &i.account_name);
    html.raw("<dt>")
        .t(lang, &AMOUNT)
        .raw("</dt><dd><span class=\"copy\">")
        .text(&i.amount.dong().to_string())
        .raw("</span> (")
        .text(&i.amount.display_vi())
        .raw(")</dd>");
    copyable(&mut html, lang, &NOTE, &i.transfer_note);
    field(&mut html, lang, &AGENCY, p.agency_name);
    field(&mut html, lang, &DUE, &vietnam_minute(p.invoice.expires_at));
    html.raw("</dl><p>").t(lang, &EXACT).raw("</p>");
    if let Some(href) = &p.sandbox_bank {
        link_button(&mut html, lang, href, &SANDBOX_BANK, false);
    }
    link_button(
        &mut html,
        lang,
        &format!("/pay/{code}{}", lang.query()),
        &BACK,
        true,
    );
    html.raw("</section>");
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

fn copyable(html: &mut Html, lang: Lang, label: &Text, value: &str) {
    html.raw("<dt>")
        .t(lang, label)
        .raw("</dt><dd><span class=\"copy\">")
        .text(value)
        .raw("</span></dd>");
}

/// The VietQR payload as an SVG element, without the XML declaration a
/// standalone file would have. The payload is ASCII that lephi built, and
/// the renderer writes only numbers and fixed markup around it.
fn qr_svg(payload: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M).ok()?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg ")?;
    Some(svg[start..].replacen("<svg ", "<svg role=\"img\" aria-label=\"VietQR\" ", 1))
}

/// Names of the banks most agencies bank with, by NAPAS BIN.
fn bank_name(bin: &str) -> Option<&'static str> {
    Some(match bin {
        "970436" => "Vietcombank",
        "970415" => "VietinBank",
        "970418" => "BIDV",
        "970405" => "Agribank",
        "970422" => "MB",
        "970407" => "Techcombank",
        "970416" => "ACB",
        "970432" => "VPBank",
        "970423" => "TPBank",
        "970403" => "Sacombank",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::bank_transfer::instructions;

    #[test]
    fn the_qr_code_is_inline_svg() {
        let i = instructions(
            "970436",
            "0011001234567",
            "UBND HUYEN D1",
            crate::domain::Vnd::new(650_000),
            "LP23456789ABU",
        );
        let svg = qr_svg(&i.vietqr).unwrap();
        assert!(svg.starts_with("<svg role=\"img\""));
        assert!(svg.ends_with("</svg>"));
        assert!(!svg.contains("<?xml"));
    }
}
