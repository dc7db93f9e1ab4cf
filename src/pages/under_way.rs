//! The warning before a second payment: an attempt on another channel is
//! still pending, so the payer may already be paying in another tab or
//! app. One more click goes on; nothing is started before it.

use super::{
    BACK, Html, Lang, Layout, Text, channel_name, link_button, page, text, vietnam_minute,
};
use crate::domain::Invoice;
use crate::domain::payment::{Attempt, Channel};

pub struct UnderWayPage<'a> {
    pub lang: Lang,
    pub invoice: &'a Invoice,
    /// The pending attempt found.
    pub pending: &'a Attempt,
    /// The channel the payer asked to start.
    pub channel: Channel,
    pub toggle_href: &'a str,
}

const TITLE: Text = text!(
    "Có thể bạn đang thanh toán hồ sơ này",
    "You may already be paying for this dossier"
);

pub fn render(p: &UnderWayPage<'_>) -> String {
    let lang = p.lang;
    let code = p.invoice.payment_code.as_str();
    let since = vietnam_minute(p.pending.created_at);
    let pending = channel_name(p.pending.channel, lang);
    let asked = channel_name(p.channel, lang);
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, &TITLE)
        .raw("</h1><section class=\"card\"><p class=\"state processing\">")
        .text(&match lang {
            Lang::Vi => format!(
                "Một lượt thanh toán qua {pending} cho hồ sơ này đã bắt đầu lúc {since} và chưa có kết quả."
            ),
            Lang::En => format!(
                "A payment through {pending} for this dossier started at {since} and has no result yet."
            ),
        })
        .raw("</p><p>")
        .text(&match lang {
            Lang::Vi => format!(
                "Nếu bạn đã thanh toán, hãy chờ vài phút: trang thanh toán sẽ hiện đã nộp. Thanh toán thêm qua {asked} có thể khiến bạn nộp hai lần (khoản thừa sẽ được hoàn lại, nhưng mất thời gian)."
            ),
            Lang::En => format!(
                "If you have paid, please wait a few minutes: the payment page will show it paid. Paying again through {asked} may charge you twice (the extra would be refunded, but that takes time)."
            ),
        })
        .raw("</p><form method=\"post\" action=\"/pay/")
        .text(code)
        .raw("/start/")
        .text(p.channel.as_str())
        .raw(lang.query())
        .raw("\"><input type=\"hidden\" name=\"confirm\" value=\"1\"><button type=\"submit\">")
        .text(&match lang {
            Lang::Vi => format!("Vẫn thanh toán qua {asked}"),
            Lang::En => format!("Pay through {asked} anyway"),
        })
        .raw("</button></form>");
    link_button(
        &mut html,
        lang,
        &format!("/pay/{code}{}", lang.query()),
        &BACK,
        true,
    );
    html.raw("</section>");
    page(
        &Layout {
            lang,
            title: &TITLE,
            toggle_href: p.toggle_href,
            refresh_secs: None,
        },
        html,
    )
}
