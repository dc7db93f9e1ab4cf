//! Payments: channels, attempts to pay, recorded payments and the
//! exceptions raised for money that cannot simply be applied.

use serde::{Deserialize, Serialize};

use super::{AgencyCode, InvoiceStatus, Timestamp, Vnd};

/// How money reaches an agency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Vnpay,
    Momo,
    Zalopay,
    BankTransfer,
    Cash,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Vnpay,
        Channel::Momo,
        Channel::Zalopay,
        Channel::BankTransfer,
        Channel::Cash,
    ];

    pub fn parse(value: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Vnpay => "vnpay",
            Channel::Momo => "momo",
            Channel::Zalopay => "zalopay",
            Channel::BankTransfer => "bank_transfer",
            Channel::Cash => "cash",
        }
    }

    /// Every channel but cash at the counter.
    pub fn is_cashless(self) -> bool {
        self != Channel::Cash
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an attempt to pay stands. It leaves `pending` once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Pending,
    Succeeded,
    Failed,
}

impl AttemptStatus {
    pub fn parse(value: &str) -> Option<AttemptStatus> {
        [
            AttemptStatus::Pending,
            AttemptStatus::Succeeded,
            AttemptStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Pending => "pending",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
        }
    }
}

/// Why a received payment was not applied to its invoice and waits for a
/// finance officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// No invoice or attempt matches what the provider named.
    UnknownOrder,
    /// The amount differs from what the invoice still owes.
    AmountMismatch,
    /// The invoice was already paid.
    Overpaid,
    /// The invoice was cancelled or had expired.
    LatePayment,
    /// A transfer naming the invoice arrived on an account that is not
    /// its agency's.
    WrongAccount,
    /// A statement settled money for which no payment was recorded; the
    /// payment was recovered from the statement.
    MissingPayment,
    /// A recorded payment no statement settled within the channel's days.
    UnsettledPayment,
    /// A statement line settles a payment another line already settled.
    DuplicateLine,
    /// A payment for a dossier the register does not list.
    UnknownDossier,
    /// A gateway attempt the provider never confirmed as paid or failed,
    /// asked about until the janitor gave up.
    UnconfirmedAttempt,
    /// A provider's answer about a refund could not be trusted (its
    /// signature did not verify): the refund stays submitted.
    RefundUnconfirmed,
}

impl ExceptionKind {
    pub const ALL: [ExceptionKind; 11] = [
        ExceptionKind::UnknownOrder,
        ExceptionKind::AmountMismatch,
        ExceptionKind::Overpaid,
        ExceptionKind::LatePayment,
        ExceptionKind::WrongAccount,
        ExceptionKind::MissingPayment,
        ExceptionKind::UnsettledPayment,
        ExceptionKind::DuplicateLine,
        ExceptionKind::UnknownDossier,
        ExceptionKind::UnconfirmedAttempt,
        ExceptionKind::RefundUnconfirmed,
    ];

    /// The kinds, as a query parameter's allowed values.
    pub fn names() -> String {
        ExceptionKind::ALL.map(ExceptionKind::as_str).join(", ")
    }

    pub fn parse(value: &str) -> Option<ExceptionKind> {
        ExceptionKind::ALL.into_iter().find(|k| k.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::UnknownOrder => "unknown_order",
            ExceptionKind::AmountMismatch => "amount_mismatch",
            ExceptionKind::Overpaid => "overpaid",
            ExceptionKind::LatePayment => "late_payment",
            ExceptionKind::WrongAccount => "wrong_account",
            ExceptionKind::MissingPayment => "missing_payment",
            ExceptionKind::UnsettledPayment => "unsettled_payment",
            ExceptionKind::DuplicateLine => "duplicate_line",
            ExceptionKind::UnknownDossier => "unknown_dossier",
            ExceptionKind::UnconfirmedAttempt => "unconfirmed_attempt",
            ExceptionKind::RefundUnconfirmed => "refund_unconfirmed",
        }
    }
}

/// What a received payment on `channel` does to its invoice: applied
/// (with the excess it brings beyond what is owed, held for refund), or
/// held whole as an exception. A gateway charges the attempt's amount, so
/// its payment must settle exactly what is still owed, as cash must. A
/// bank transfer is applied whatever its amount: short of what is owed,
/// the invoice stays open for the remainder (transfers together pay it);
/// over it, the invoice is paid and the excess held.
pub fn classify(
    invoice: Option<(InvoiceStatus, Vnd, Vnd)>,
    amount: Vnd,
    channel: Channel,
) -> Result<Vnd, ExceptionKind> {
    let Some((status, total, amount_paid)) = invoice else {
        return Err(ExceptionKind::UnknownOrder);
    };
    match status {
        InvoiceStatus::Paid => Err(ExceptionKind::Overpaid),
        InvoiceStatus::Cancelled | InvoiceStatus::Expired => Err(ExceptionKind::LatePayment),
        InvoiceStatus::Open => match total.checked_sub(amount_paid) {
            Some(owed) if owed == amount => Ok(Vnd::new(0)),
            Some(owed) if channel == Channel::BankTransfer && owed.dong() > 0 => {
                Ok(Vnd::new((amount.dong() - owed.dong()).max(0)))
            }
            _ => Err(ExceptionKind::AmountMismatch),
        },
    }
}

/// How lephi learned of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentSource {
    /// The provider's signed callback.
    Callback,
    /// Asked of the provider's status API after a callback never came.
    StatusQuery,
    /// Cash at the counter, recorded by an officer.
    Counter,
    /// Recovered from a settlement statement whose line no payment matched.
    Statement,
}

impl PaymentSource {
    pub fn parse(value: &str) -> Option<PaymentSource> {
        [
            PaymentSource::Callback,
            PaymentSource::StatusQuery,
            PaymentSource::Counter,
            PaymentSource::Statement,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentSource::Callback => "callback",
            PaymentSource::StatusQuery => "status_query",
            PaymentSource::Counter => "counter",
            PaymentSource::Statement => "statement",
        }
    }
}

/// An attempt to pay an invoice on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub id: String,
    pub invoice_id: String,
    pub channel: Channel,
    /// The reference the provider names in its callback.
    pub order_ref: String,
    pub amount: Vnd,
    pub status: AttemptStatus,
    pub pay_url: Option<String>,
    pub provider_code: Option<String>,
    pub message: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Money received, recorded once per `(channel, provider_txn_id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub channel: Channel,
    pub provider_txn_id: String,
    pub amount: Vnd,
    pub invoice_id: Option<String>,
    pub attempt_id: Option<String>,
    pub agency_code: Option<AgencyCode>,
    /// What the provider named: an order reference or a transfer note.
    pub reference: String,
    /// Why the amount was not applied to the invoice, if it was not.
    pub exception: Option<ExceptionKind>,
    /// Of a payment applied to its invoice, what it brought beyond what
    /// the invoice owed (a bank transfer over the total), held for refund.
    pub excess: Vnd,
    pub source: PaymentSource,
    pub paid_at: Option<Timestamp>,
    pub recorded_at: Timestamp,
    /// The officer (name and email) or key (its name) who recorded it, for
    /// cash at the counter; none for what a provider sent.
    pub recorded_by_name: Option<String>,
}

impl Payment {
    /// What of it is held for refund rather than applied to an invoice:
    /// all of a held payment, the excess of an applied one.
    pub fn held_amount(&self) -> Vnd {
        if self.exception.is_some() {
            self.amount
        } else {
            self.excess
        }
    }

    /// Why (some of) its money is held: its exception, or `overpaid` for
    /// the excess of an applied payment; `None` when none of it is.
    pub fn holding_kind(&self) -> Option<ExceptionKind> {
        self.exception
            .or((self.excess.dong() > 0).then_some(ExceptionKind::Overpaid))
    }

    /// What of it paid its invoice.
    pub fn applied_amount(&self) -> Vnd {
        Vnd::new(self.amount.dong() - self.held_amount().dong())
    }

    /// When the money was collected, for reports: when the provider says
    /// it was paid, unless that lies after lephi recorded it.
    pub fn collected_at(&self) -> Timestamp {
        self.paid_at
            .filter(|at| *at <= self.recorded_at)
            .unwrap_or(self.recorded_at)
    }
}

/// Whether an exception still waits for an officer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    Open,
    Resolved,
}

impl ExceptionStatus {
    pub fn parse(value: &str) -> Option<ExceptionStatus> {
        match value {
            "open" => Some(ExceptionStatus::Open),
            "resolved" => Some(ExceptionStatus::Resolved),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionStatus::Open => "open",
            ExceptionStatus::Resolved => "resolved",
        }
    }
}

/// What a finance officer decided about an exception, or how lephi
/// cleared it when what it found no longer holds. Resolving records the
/// decision; it never edits a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The officer matched the money to a payment or invoice by hand.
    MatchedManually,
    /// The money was to be paid back: an officer's resolution before
    /// refunds, kept for the exceptions resolved so. A refund now does it,
    /// and resolves the exception as [`Resolution::Refunded`].
    RefundRequired,
    /// The difference is written off.
    WrittenOff,
    /// The officer confirmed the finding stands as recorded.
    Confirmed,
    /// A statement line settled the payment after it was found unsettled.
    SettledLater,
    /// The register listed the dossier after it was found unknown.
    DossierRegistered,
    /// The money held was paid back by a refund.
    Refunded,
    /// The money held was applied to its invoice, when a refund of the
    /// payment that had paid it left the invoice owing.
    Applied,
}

impl Resolution {
    /// The resolutions an officer may choose.
    pub const BY_OFFICER: [Resolution; 3] = [
        Resolution::MatchedManually,
        Resolution::WrittenOff,
        Resolution::Confirmed,
    ];

    /// What an officer may decide about an exception of `kind`, the
    /// likeliest first: money held that belongs to a payment may be
    /// matched to it; only a difference or a line, not money held, may
    /// be written off; every finding may be confirmed as it stands. Money
    /// held is given back by a refund, which resolves its exception.
    pub fn fitting(kind: ExceptionKind) -> &'static [Resolution] {
        use ExceptionKind as K;
        use Resolution as R;
        match kind {
            K::UnknownOrder | K::LatePayment | K::WrongAccount | K::Overpaid => {
                &[R::MatchedManually, R::Confirmed]
            }
            K::AmountMismatch => &[R::MatchedManually, R::WrittenOff, R::Confirmed],
            K::MissingPayment | K::UnknownDossier | K::UnconfirmedAttempt => {
                &[R::Confirmed, R::MatchedManually]
            }
            K::UnsettledPayment | K::DuplicateLine => &[R::Confirmed, R::WrittenOff],
            K::RefundUnconfirmed => &[R::Confirmed],
        }
    }

    /// Parses an officer's choice.
    pub fn parse_officer(value: &str) -> Option<Resolution> {
        Resolution::BY_OFFICER
            .into_iter()
            .find(|r| r.as_str() == value)
    }

    pub fn parse(value: &str) -> Option<Resolution> {
        Resolution::parse_officer(value).or(match value {
            "refund_required" => Some(Resolution::RefundRequired),
            "settled_later" => Some(Resolution::SettledLater),
            "dossier_registered" => Some(Resolution::DossierRegistered),
            "refunded" => Some(Resolution::Refunded),
            "applied" => Some(Resolution::Applied),
            _ => None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::MatchedManually => "matched_manually",
            Resolution::RefundRequired => "refund_required",
            Resolution::WrittenOff => "written_off",
            Resolution::Confirmed => "confirmed",
            Resolution::SettledLater => "settled_later",
            Resolution::DossierRegistered => "dossier_registered",
            Resolution::Refunded => "refunded",
            Resolution::Applied => "applied",
        }
    }
}

/// A finding that needs a finance officer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentException {
    pub id: String,
    pub kind: ExceptionKind,
    pub status: ExceptionStatus,
    pub payment_id: Option<String>,
    pub invoice_id: Option<String>,
    pub agency_code: Option<AgencyCode>,
    pub amount: Option<Vnd>,
    pub detail: String,
    pub opened_at: Timestamp,
    /// The statement line that raised it, as `(file id, line number)`.
    pub settlement_line: Option<(String, i64)>,
    pub dossier_code: Option<String>,
    pub resolved: Option<Resolved>,
}

/// How an exception was resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub resolution: Resolution,
    pub note: String,
    pub payment_id: Option<String>,
    pub by: String,
    /// Who resolved it, as people read it (see `Actor::display`).
    pub by_name: Option<String>,
    pub at: Timestamp,
}

impl ExceptionKind {
    /// Whether it is a standing finding about a payment, raised once
    /// however often it is found (`unsettled_payment`, `unknown_dossier`).
    pub fn is_standing(self) -> bool {
        matches!(
            self,
            ExceptionKind::UnsettledPayment | ExceptionKind::UnknownDossier
        )
    }

    /// Words for an officer, naming what was expected.
    pub fn describe(self, amount: Vnd, owed: Option<Vnd>) -> String {
        match (self, owed) {
            (ExceptionKind::UnknownOrder, _) => {
                format!("{amount} đồng received for no known invoice")
            }
            (ExceptionKind::AmountMismatch, Some(owed)) => {
                format!("{amount} đồng received where {owed} đồng was owed")
            }
            (ExceptionKind::AmountMismatch, None) => {
                format!("{amount} đồng received, not the amount owed")
            }
            (ExceptionKind::Overpaid, _) => {
                format!("{amount} đồng received for an invoice already paid")
            }
            (ExceptionKind::LatePayment, _) => {
                format!("{amount} đồng received for a cancelled or expired invoice")
            }
            (ExceptionKind::WrongAccount, _) => {
                format!("{amount} đồng received on an account that is not the invoice agency's")
            }
            (ExceptionKind::MissingPayment, _) => {
                format!("{amount} đồng settled by the provider with no payment recorded")
            }
            (ExceptionKind::UnsettledPayment, _) => {
                format!("{amount} đồng recorded but not settled in time")
            }
            (ExceptionKind::DuplicateLine, _) => {
                format!("{amount} đồng settled again for a payment already settled")
            }
            (ExceptionKind::UnknownDossier, _) => {
                format!("{amount} đồng received for a dossier the register does not list")
            }
            (ExceptionKind::UnconfirmedAttempt, _) => {
                format!(
                    "{amount} đồng attempted on a gateway that never confirmed whether it was paid"
                )
            }
            (ExceptionKind::RefundUnconfirmed, _) => {
                format!("a refund of {amount} đồng whose provider answer could not be trusted")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_and_cash_is_not_cashless() {
        for channel in Channel::ALL {
            assert_eq!(Channel::parse(channel.as_str()), Some(channel));
        }
        assert!(!Channel::Cash.is_cashless());
        assert!(Channel::BankTransfer.is_cashless());
        assert_eq!(Channel::parse("VNPAY"), None);
    }

    #[test]
    fn a_gateway_or_cash_payment_is_applied_only_when_it_settles_what_is_owed_exactly() {
        let open = |paid| Some((InvoiceStatus::Open, Vnd::new(150_000), Vnd::new(paid)));
        let none = Ok(Vnd::new(0));
        assert_eq!(classify(open(0), Vnd::new(150_000), Channel::Vnpay), none);
        assert_eq!(
            classify(open(50_000), Vnd::new(100_000), Channel::Vnpay),
            none
        );
        assert_eq!(
            classify(open(0), Vnd::new(149_999), Channel::Cash),
            Err(ExceptionKind::AmountMismatch)
        );
        assert_eq!(
            classify(open(0), Vnd::new(300_000), Channel::Momo),
            Err(ExceptionKind::AmountMismatch)
        );
        let closed = |status| Some((status, Vnd::new(150_000), Vnd::new(150_000)));
        assert_eq!(
            classify(
                closed(InvoiceStatus::Paid),
                Vnd::new(150_000),
                Channel::Vnpay
            ),
            Err(ExceptionKind::Overpaid)
        );
        assert_eq!(
            classify(
                closed(InvoiceStatus::Cancelled),
                Vnd::new(150_000),
                Channel::Vnpay
            ),
            Err(ExceptionKind::LatePayment)
        );
        assert_eq!(
            classify(
                closed(InvoiceStatus::Expired),
                Vnd::new(150_000),
                Channel::Vnpay
            ),
            Err(ExceptionKind::LatePayment)
        );
        assert_eq!(
            classify(None, Vnd::new(1), Channel::BankTransfer),
            Err(ExceptionKind::UnknownOrder)
        );
    }

    #[test]
    fn a_bank_transfer_is_applied_short_of_what_is_owed_and_over_it_with_the_excess_held() {
        let open = |paid| Some((InvoiceStatus::Open, Vnd::new(150_000), Vnd::new(paid)));
        let transfer = Channel::BankTransfer;
        let excess = |dong| Ok(Vnd::new(dong));
        assert_eq!(classify(open(0), Vnd::new(100_000), transfer), excess(0));
        assert_eq!(
            classify(open(100_000), Vnd::new(50_000), transfer),
            excess(0)
        );
        assert_eq!(
            classify(open(100_000), Vnd::new(20_000), transfer),
            excess(0)
        );
        assert_eq!(
            classify(open(100_000), Vnd::new(50_001), transfer),
            excess(1)
        );
        assert_eq!(
            classify(open(0), Vnd::new(300_000), transfer),
            excess(150_000)
        );
        // An open invoice with nothing owed (which lephi never stores)
        // takes no transfer.
        assert_eq!(
            classify(open(150_000), Vnd::new(1), transfer),
            Err(ExceptionKind::AmountMismatch)
        );
        for exact_only in [
            Channel::Vnpay,
            Channel::Momo,
            Channel::Zalopay,
            Channel::Cash,
        ] {
            assert_eq!(
                classify(open(0), Vnd::new(100_000), exact_only),
                Err(ExceptionKind::AmountMismatch)
            );
            assert_eq!(
                classify(open(0), Vnd::new(150_001), exact_only),
                Err(ExceptionKind::AmountMismatch)
            );
        }
    }
}
