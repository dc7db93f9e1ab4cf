//! Short pages that say why there is nothing else to show: an unknown
//! payment code, too many requests, a channel that cannot start, a problem.

use super::{BACK, Html, Lang, Layout, Text, page, text};

pub const NOT_FOUND: (Text, Text) = (
    text!("Không tìm thấy", "Not found"),
    text!(
        "Không có yêu cầu thanh toán nào với mã này. Hãy kiểm tra lại đường dẫn hoặc mã thanh toán.",
        "There is no payment request with this code. Please check the link or the payment code."
    ),
);

pub const TOO_MANY: (Text, Text) = (
    text!("Quá nhiều yêu cầu", "Too many requests"),
    text!(
        "Bạn đã mở trang quá nhiều lần trong một phút. Vui lòng đợi một chút rồi thử lại.",
        "You have opened pages too often in a minute. Please wait a moment and try again."
    ),
);

pub const CHANNEL_UNAVAILABLE: (Text, Text) = (
    text!(
        "Không dùng được cách thanh toán này",
        "This way of paying is not available"
    ),
    text!(
        "Cách thanh toán này hiện không dùng được cho hồ sơ của bạn. Vui lòng chọn cách khác.",
        "This way of paying cannot be used for your dossier now. Please choose another."
    ),
);

pub const PROVIDER_FAILED: (Text, Text) = (
    text!(
        "Chưa bắt đầu được thanh toán",
        "The payment could not be started"
    ),
    text!(
        "Cổng thanh toán không phản hồi hoặc từ chối. Bạn chưa bị trừ tiền. Vui lòng thử lại hoặc chọn cách khác.",
        "The payment gateway did not answer or refused. You have not been charged. Please try again or choose another way."
    ),
);

pub const ELSEWHERE: (Text, Text) = (
    text!("Chưa bắt đầu thanh toán", "The payment was not started"),
    text!(
        "Yêu cầu này đến từ một trang khác, không phải trang thanh toán của chúng tôi, nên chưa có gì được bắt đầu và bạn chưa bị trừ tiền. Hãy mở trang thanh toán của hồ sơ và chọn cách thanh toán ở đó.",
        "This request came from another site, not our payment page, so nothing was started and you have not been charged. Open your dossier's payment page and choose how to pay there."
    ),
);

pub const PROBLEM: (Text, Text) = (
    text!("Đã có lỗi", "Something went wrong"),
    text!(
        "Đã có lỗi ở phía chúng tôi và lỗi đã được ghi lại. Vui lòng thử lại sau ít phút.",
        "Something went wrong on our side; it has been logged. Please try again in a few minutes."
    ),
);

/// A notice with its title and message, and a link back to `back` if given.
pub fn render(lang: Lang, notice: &(Text, Text), back: Option<&str>, toggle_href: &str) -> String {
    let (title, message) = notice;
    let mut html = Html::new();
    html.raw("<h1>")
        .t(lang, title)
        .raw("</h1><section class=\"card\"><p>")
        .t(lang, message)
        .raw("</p>");
    if let Some(back) = back {
        super::link_button(&mut html, lang, back, &BACK, true);
    }
    html.raw("</section>");
    page(
        &Layout {
            lang,
            title,
            toggle_href,
            refresh_secs: None,
        },
        html,
    )
}
