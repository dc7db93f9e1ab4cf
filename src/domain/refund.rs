//! Refunds: money paid back to the citizen who paid it, through the
//! payment's own channel. A gateway's refund goes through its refund API;
//! a bank transfer or cash goes back by hand, and the officer records how.

use serde::Serialize;

use super::payment::{Channel, ExceptionKind, Payment};
use super::{AgencyCode, Timestamp, Vnd};

/// Where a refund stands. It only moves forward:
/// `requested → approved → submitted → succeeded | failed`, or
/// `requested → rejected`. A refund paid back by hand goes from
/// `approved` to `succeeded` when the officer records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Requested,
    Approved,
    Rejected,
    Submitted,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a refund that is {} cannot become {}", .from.as_str(), .to.as_str())]
pub struct IllegalRefundMove {
    pub from: RefundStatus,
    pub to: RefundStatus,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 6] = [
        RefundStatus::Requested,
        RefundStatus::Approved,
        RefundStatus::Rejected,
        RefundStatus::Submitted,
        RefundStatus::Succeeded,
        RefundStatus::Failed,
    ];

    pub fn parse(value: &str) -> Option<RefundStatus> {
        RefundStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "requested",
            RefundStatus::Approved => "approved",
            RefundStatus::Rejected => "rejected",
            RefundStatus::Submitted => "submitted",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    /// The statuses, as a query parameter's allowed values.
    pub fn names() -> String {
        RefundStatus::ALL.map(RefundStatus::as_str).join(", ")
    }

    /// Whether the refund has ended: nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RefundStatus::Rejected | RefundStatus::Succeeded | RefundStatus::Failed
        )
    }

    /// Checks the move to `to`; a refund paid back by hand (`by_hand`)
    /// goes from approved to succeeded, a gateway's only through
    /// `submitted`.
    pub fn move_to(
        self,
        to: RefundStatus,
        by_hand: bool,
    ) -> Result<RefundStatus, IllegalRefundMove> {
        use RefundStatus::*;
        let allowed = match (self, to) {
            (Requested, Approved | Rejected) => true,
            (Approved, Submitted) => !by_hand,
            (Approved, Succeeded) => by_hand,
            (Submitted, Succeeded | Failed) => !by_hand,
            _ => false,
        };
        if allowed {
            Ok(to)
        } else {
            Err(IllegalRefundMove { from: self, to })
        }
    }
}

impl std::fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Channel {
    /// Whether the money goes back through the provider's refund API;
    /// otherwise an officer pays it back and records how.
    pub fn refunds_through_provider(self) -> bool {
        matches!(self, Channel::Vnpay | Channel::Momo | Channel::Zalopay)
    }
}

/// A refund of (part of) one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub agency_code: Option<AgencyCode>,
    pub channel: Channel,
    pub amount: Vnd,
    pub reason: String,
    pub exception_id: Option<String>,
    pub status: RefundStatus,
    pub requested_by: String,
    /// Who asked, decided and completed it, as people read it.
    pub requested_by_name: Option<String>,
    pub decided_by_name: Option<String>,
    pub completed_by_name: Option<String>,
    pub requested_at: Timestamp,
    pub decided_by: Option<String>,
    pub decided_at: Option<Timestamp>,
    pub decision_note: Option<String>,
    /// The id lephi named it by at the provider, once submitted.
    pub request_id: Option<String>,
    pub submitted_at: Option<Timestamp>,
    pub provider_refund_id: Option<String>,
    pub provider_code: Option<String>,
    pub provider_message: Option<String>,
    /// The bank's reference or the counter's receipt, for money paid back by hand.
    pub reference: Option<String>,
    pub completed_by: Option<String>,
    pub completed_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// Why a payment's money cannot be refunded (now, or by this much).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotRefundable {
    #[error(
        "the payment is still being checked ({}): refund it once the exception is resolved",
        .0.as_str()
    )]
    StillChecked(ExceptionKind),
    #[error("only {left} đồng of the payment is left to refund")]
    OverWhatIsLeft { left: Vnd },
}

/// The exceptions that mean a payment's money may not be where lephi
/// thinks it is yet, so none of it is refunded while they are open.
pub const HOLDS_REFUNDS: [ExceptionKind; 2] = [
    ExceptionKind::UnsettledPayment,
    ExceptionKind::DuplicateLine,
];

/// How much of `payment` is left to refund, with `spoken_for` already
/// refunded or on its way, given the payment's open exceptions `open`;
/// `amount` must fit in it. Any of a payment's money may be refunded:
/// what it holds first, then what paid its invoice (see
/// [`from_applied`]).
pub fn check_refund(
    payment: &Payment,
    spoken_for: Vnd,
    open: &[ExceptionKind],
    amount: Vnd,
) -> Result<Vnd, NotRefundable> {
    if let Some(kind) = open.iter().find(|k| HOLDS_REFUNDS.contains(k)) {
        return Err(NotRefundable::StillChecked(*kind));
    }
    let left = Vnd::new((payment.amount.dong() - spoken_for.dong()).max(0));
    if amount.dong() > left.dong() {
        return Err(NotRefundable::OverWhatIsLeft { left });
    }
    Ok(left)
}

/// Of a refund of `amount` from `payment`, after `refunded` was given
/// back of it before, the part that comes out of the money that paid its
/// invoice: a payment's held money goes back first.
pub fn from_applied(payment: &Payment, refunded: Vnd, amount: Vnd) -> Vnd {
    let held = payment.held_amount().dong();
    let beyond = |given: i64| (given - held).max(0);
    Vnd::new(beyond(refunded.dong() + amount.dong()) - beyond(refunded.dong()))
}

/// Which of an invoice's held money covers the `owed` a refund of money
/// that paid it left: the first of `held` (payment id and what of it is
/// held and not spoken for by a refund, oldest first) that covers it
/// whole; none, and the invoice stops being paid.
pub fn covering(owed: Vnd, held: &[(String, Vnd)]) -> Option<&str> {
    held.iter()
        .find(|(_, available)| available.dong() >= owed.dong())
        .map(|(id, _)| id.as_str())
}

/// Money received for an invoice that is held (all of a payment not
/// applied; the excess of a bank transfer over the total) or was refunded,
/// with what was given back of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPayment {
    pub payment_id: String,
    pub attempt_id: Option<String>,
    pub channel: Channel,
    /// All the payment brought.
    pub amount: Vnd,
    /// What of it paid the invoice.
    pub applied: Vnd,
    /// Why (some of) it is held: `None` when all of it paid the invoice
    /// (and it is here for its refunds).
    pub kind: Option<ExceptionKind>,
    pub received_at: Timestamp,
    /// Its refunds that were not rejected, oldest first.
    pub refunds: Vec<Refund>,
}

impl HeldPayment {
    pub fn of(payment: &Payment, refunds: Vec<Refund>) -> HeldPayment {
        HeldPayment {
            payment_id: payment.id.clone(),
            attempt_id: payment.attempt_id.clone(),
            channel: payment.channel,
            amount: payment.amount,
            applied: payment.applied_amount(),
            kind: payment.holding_kind(),
            received_at: payment.collected_at(),
            refunds,
        }
    }

    /// What of it was held when it came.
    pub fn held(&self) -> Vnd {
        Vnd::new(self.amount.dong() - self.applied.dong())
    }

    /// What was paid back of it.
    pub fn refunded(&self) -> Vnd {
        sum(self
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Succeeded))
    }

    /// What is on its way back: asked for, approved or sent, not yet done.
    pub fn refunding(&self) -> Vnd {
        sum(self.refunds.iter().filter(|r| !r.status.is_final()))
    }

    /// What is still held of it (held money goes back first).
    pub fn still_held(&self) -> Vnd {
        Vnd::new((self.held().dong() - self.refunded().dong()).max(0))
    }
}

fn sum<'a>(refunds: impl Iterator<Item = &'a Refund>) -> Vnd {
    Vnd::new(refunds.map(|r| r.amount.dong()).sum())
}

/// The money of one invoice beyond what paid it, and what was refunded:
/// its payments that hold money or have refunds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldMoney {
    pub payments: Vec<HeldPayment>,
}

impl HeldMoney {
    /// Money received and neither applied nor paid back yet.
    pub fn amount_held(&self) -> Vnd {
        Vnd::new(self.payments.iter().map(|p| p.still_held().dong()).sum())
    }

    /// Money paid back.
    pub fn amount_refunded(&self) -> Vnd {
        Vnd::new(self.payments.iter().map(|p| p.refunded().dong()).sum())
    }

    /// The held payment made through attempt `attempt_id`, if it is held.
    pub fn of_attempt(&self, attempt_id: &str) -> Option<&HeldPayment> {
        self.payments
            .iter()
            .find(|p| p.attempt_id.as_deref() == Some(attempt_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::payment::PaymentSource;

    fn held(amount: i64) -> Payment {
        Payment {
            id: "p".into(),
            channel: Channel::Vnpay,
            provider_txn_id: "t".into(),
            amount: Vnd::new(amount),
            invoice_id: Some("i".into()),
            attempt_id: None,
            agency_code: None,
            reference: "r".into(),
            exception: Some(ExceptionKind::Overpaid),
            excess: Vnd::new(0),
            source: PaymentSource::Callback,
            paid_at: None,
            recorded_at: Timestamp::now(),
            recorded_by_name: None,
        }
    }

    #[test]
    fn a_refund_moves_only_forward() {
        use RefundStatus::*;
        assert_eq!(Requested.move_to(Approved, false), Ok(Approved));
        assert_eq!(Requested.move_to(Rejected, true), Ok(Rejected));
        assert_eq!(Approved.move_to(Submitted, false), Ok(Submitted));
        assert_eq!(Submitted.move_to(Succeeded, false), Ok(Succeeded));
        assert_eq!(Submitted.move_to(Failed, false), Ok(Failed));
        assert_eq!(Approved.move_to(Succeeded, true), Ok(Succeeded));
        for (from, to, by_hand) in [
            (Approved, Succeeded, false),
            (Approved, Submitted, true),
            (Requested, Submitted, false),
            (Requested, Succeeded, true),
            (Rejected, Approved, false),
            (Succeeded, Failed, false),
            (Failed, Submitted, false),
            (Approved, Approved, false),
            (Approved, Rejected, false),
        ] {
            assert!(from.move_to(to, by_hand).is_err(), "{from} -> {to}");
        }
    }

    #[test]
    fn only_held_money_not_under_check_is_refunded_up_to_what_is_left() {
        let payment = held(150_000);
        assert_eq!(
            check_refund(&payment, Vnd::new(0), &[], Vnd::new(150_000)),
            Ok(Vnd::new(150_000))
        );
        assert_eq!(
            check_refund(&payment, Vnd::new(100_000), &[], Vnd::new(50_001)),
            Err(NotRefundable::OverWhatIsLeft {
                left: Vnd::new(50_000)
            })
        );
        assert_eq!(
            check_refund(
                &payment,
                Vnd::new(0),
                &[ExceptionKind::Overpaid, ExceptionKind::UnsettledPayment],
                Vnd::new(1)
            ),
            Err(NotRefundable::StillChecked(ExceptionKind::UnsettledPayment))
        );
        let applied = Payment {
            exception: None,
            ..held(150_000)
        };
        assert_eq!(
            check_refund(&applied, Vnd::new(0), &[], Vnd::new(150_000)),
            Ok(Vnd::new(150_000))
        );
    }

    #[test]
    fn held_money_goes_back_before_money_that_paid_the_invoice() {
        let dong = Vnd::new;
        // Paid twice: all of the second payment is held.
        let twice = held(150_000);
        assert_eq!(from_applied(&twice, dong(0), dong(150_000)), dong(0));
        // A transfer of 200,000 paid 150,000 owed: 50,000 is held.
        let over = Payment {
            exception: None,
            excess: dong(50_000),
            ..held(200_000)
        };
        assert_eq!(over.applied_amount(), dong(150_000));
        assert_eq!(from_applied(&over, dong(0), dong(50_000)), dong(0));
        assert_eq!(from_applied(&over, dong(0), dong(60_000)), dong(10_000));
        assert_eq!(
            from_applied(&over, dong(50_000), dong(150_000)),
            dong(150_000)
        );
        assert_eq!(
            from_applied(&over, dong(40_000), dong(20_000)),
            dong(10_000)
        );
        // A payment that paid its invoice exactly.
        let paid = Payment {
            exception: None,
            ..held(150_000)
        };
        assert_eq!(from_applied(&paid, dong(0), dong(150_000)), dong(150_000));
    }

    #[test]
    fn the_first_held_payment_that_covers_what_is_owed_whole_covers_it() {
        let held = vec![
            ("a".to_owned(), Vnd::new(100_000)),
            ("b".to_owned(), Vnd::new(150_000)),
            ("c".to_owned(), Vnd::new(200_000)),
        ];
        assert_eq!(covering(Vnd::new(150_000), &held), Some("b"));
        assert_eq!(covering(Vnd::new(90_000), &held), Some("a"));
        assert_eq!(covering(Vnd::new(200_001), &held), None);
        assert_eq!(covering(Vnd::new(1), &[]), None);
    }
}
