//! What the citizen is told of money received beyond what paid the
//! invoice, and of money given back: each held payment (paid twice, after
//! expiry or cancellation, of the wrong amount, more than was owed), why it
//! is held, what happens next, and what was refunded of it (or of a payment
//! that had paid the invoice), with the date and the refund's reference.

use super::{Html, Lang, channel_name, vietnam_minute};
use crate::domain::payment::ExceptionKind;
use crate::domain::refund::{HeldMoney, HeldPayment, RefundStatus};

/// The card that tells of `held`, if it holds anything to tell.
pub fn held_section(html: &mut Html, lang: Lang, held: &HeldMoney) {
    if held.payments.is_empty() {
        return;
    }
    html.raw("<section class=\"card held\"><h2>")
        .text(match lang {
            Lang::Vi => "Khoản tiền chúng tôi đang giữ hoặc đã hoàn",
            Lang::En => "Money we hold or have refunded",
        })
        .raw("</h2>");
    for payment in &held.payments {
        // Bold at the body's size: the card's heading stays above it, and
        // on a return page the one status line above it stays the largest.
        html.raw("<p><strong>")
            .text(&received(payment, lang))
            .raw("</strong></p>");
        for line in next(payment, lang) {
            html.raw("<p>").text(&line).raw("</p>");
        }
    }
    html.raw("</section>");
}

/// What was received, when, and why it was not applied.
pub fn received(payment: &HeldPayment, lang: Lang) -> String {
    let amount = payment.amount.display_vi();
    let channel = channel_name(payment.channel, lang);
    let at = vietnam_minute(payment.received_at);
    let applied = payment.applied.display_vi();
    let beyond = payment.held().display_vi();
    if payment.applied.dong() > 0 {
        return match (payment.kind, lang) {
            (None, Lang::Vi) => format!(
                "Chúng tôi đã nhận {amount} qua {channel} lúc {at}; khoản này đã được ghi cho hồ sơ."
            ),
            (None, Lang::En) => format!(
                "We received {amount} through {channel} at {at}; it paid the dossier's fees."
            ),
            (Some(_), Lang::Vi) => format!(
                "Chúng tôi đã nhận {amount} qua {channel} lúc {at}: {applied} đã được ghi cho hồ sơ, {beyond} là số tiền nộp thừa."
            ),
            (Some(_), Lang::En) => format!(
                "We received {amount} through {channel} at {at}: {applied} paid the dossier's fees and {beyond} was more than was owed."
            ),
        };
    }
    match (payment.kind, lang) {
        (Some(ExceptionKind::Overpaid), Lang::Vi) => format!(
            "Chúng tôi đã nhận {amount} qua {channel} lúc {at}, khi hồ sơ đã được thanh toán: hồ sơ đã được nộp hai lần."
        ),
        (Some(ExceptionKind::Overpaid), Lang::En) => format!(
            "We received {amount} through {channel} at {at}, after the dossier had been paid: it was paid twice."
        ),
        (Some(ExceptionKind::LatePayment), Lang::Vi) => format!(
            "Chúng tôi đã nhận {amount} qua {channel} lúc {at}, khi yêu cầu thanh toán đã hết hạn hoặc đã bị hủy."
        ),
        (Some(ExceptionKind::LatePayment), Lang::En) => format!(
            "We received {amount} through {channel} at {at}, after the payment request had expired or been cancelled."
        ),
        (Some(ExceptionKind::AmountMismatch), Lang::Vi) => format!(
            "Chúng tôi đã nhận {amount} qua {channel} lúc {at}, không đúng số tiền phải nộp."
        ),
        (Some(ExceptionKind::AmountMismatch), Lang::En) => {
            format!("We received {amount} through {channel} at {at}, which is not the amount owed.")
        }
        (_, Lang::Vi) => format!(
            "Chúng tôi đã nhận {amount} qua {channel} lúc {at}; khoản này chưa được ghi cho hồ sơ."
        ),
        (_, Lang::En) => format!(
            "We received {amount} through {channel} at {at}; it was not applied to the dossier."
        ),
    }
}

/// What became of it, or what happens next.
fn next(payment: &HeldPayment, lang: Lang) -> Vec<String> {
    let mut lines: Vec<String> = payment
        .refunds
        .iter()
        .map(|refund| {
            let amount = refund.amount.display_vi();
            match (refund.status, lang) {
                (RefundStatus::Succeeded, _) => {
                    let on = vietnam_minute(refund.completed_at.unwrap_or(refund.updated_at));
                    let reference = refund
                        .reference
                        .as_deref()
                        .or(refund.provider_refund_id.as_deref())
                        .or(refund.request_id.as_deref())
                        .unwrap_or(&refund.id);
                    match lang {
                        Lang::Vi => {
                            format!("Đã hoàn {amount} lúc {on}, mã tham chiếu {reference}.")
                        }
                        Lang::En => {
                            format!("{amount} was refunded at {on}, reference {reference}.")
                        }
                    }
                }
                (RefundStatus::Failed, Lang::Vi) => format!(
                    "Lần hoàn {amount} chưa thành công; cơ quan thu sẽ hoàn lại theo cách khác."
                ),
                (RefundStatus::Failed, Lang::En) => format!(
                    "Refunding {amount} did not succeed; the agency will return it another way."
                ),
                (_, Lang::Vi) => format!("Đang hoàn {amount} cho bạn; chưa cần làm gì thêm."),
                (_, Lang::En) => {
                    format!("{amount} is being refunded to you; nothing more is needed from you.")
                }
            }
        })
        .collect();
    let covered = payment.refunded().dong() + payment.refunding().dong();
    if covered < payment.held().dong() {
        let left = crate::domain::Vnd::new(payment.held().dong() - covered).display_vi();
        lines.push(match (payment.kind, lang) {
            (Some(ExceptionKind::Overpaid), Lang::Vi) => {
                format!("Khoản {left} nộp thừa đang được giữ và sẽ được hoàn lại cho bạn.")
            }
            (Some(ExceptionKind::Overpaid), Lang::En) if payment.applied.dong() > 0 => {
                format!("The {left} paid beyond what was owed is held and will be refunded to you.")
            }
            (Some(ExceptionKind::Overpaid), Lang::En) => {
                format!("The second {left} is held and will be refunded to you.")
            }
            (_, Lang::Vi) => format!(
                "Khoản {left} đang được giữ; cơ quan thu sẽ hoàn lại cho bạn hoặc ghi cho hồ sơ, và sẽ liên hệ nếu cần."
            ),
            (_, Lang::En) => format!(
                "{left} is held; the agency will refund it or apply it to your dossier, and will contact you if needed."
            ),
        });
    }
    lines
}
