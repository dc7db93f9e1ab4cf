//! Settlement statements: the lines a provider or bank says it settled,
//! and what each line turned out to be when matched to the payments.

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use super::payment::Channel;
use super::{PaymentCode, Timestamp, Vnd};

/// The day a payment was collected and the months reports group by are
/// Vietnamese days and months.
pub use super::timestamp::VIETNAM;

const DATE: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

/// The day (in Vietnam) an instant falls on, as `YYYY-MM-DD`.
pub fn local_day(at: Timestamp) -> String {
    format_day(at.in_vietnam().date())
}

/// A day as `YYYY-MM-DD`.
pub fn format_day(day: Date) -> String {
    day.format(DATE).unwrap_or_default()
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Option<Date> {
    Date::parse(text, DATE).ok()
}

/// The account a statement is of: named only for a bank statement, as an
/// account number (up to 19 letters and digits).
pub fn statement_account(channel: Channel, account: Option<&str>) -> Result<Option<&str>, String> {
    match account {
        None => Ok(None),
        Some(_) if channel != Channel::BankTransfer => {
            Err("account names the account of a bank_transfer statement only".to_owned())
        }
        Some(number)
            if (1..=19).contains(&number.len())
                && number.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            Ok(Some(number))
        }
        Some(_) => Err("account must be 1 to 19 letters and digits".to_owned()),
    }
}

/// What a statement lists: a gateway's settled transactions, or a bank
/// account's credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementLayout {
    /// `provider_txn_id, order_ref, amount, fee, transaction_time, settlement_date`.
    Gateway,
    /// `bank_ref, description, amount, transaction_time`: the payment code
    /// is found in the description, and the day of the transaction is its
    /// settlement day.
    Bank,
}

/// One parsed line of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// The line's number in the file, the header being line 1.
    pub line_no: usize,
    /// The provider's transaction id, or the bank's reference.
    pub txn_ref: String,
    /// The order reference, or the transfer's description.
    pub reference: String,
    /// For a bank line, the payment code its description carries.
    pub payment_code: Option<PaymentCode>,
    pub amount: Vnd,
    pub fee: Vnd,
    pub transaction_time: Timestamp,
    pub settlement_date: Date,
}

/// What matching made of a statement line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineOutcome {
    /// Settles a recorded payment of the same amount.
    Matched,
    /// Settles a recorded payment, for another amount.
    AmountMismatch,
    /// Settled, but no payment was recorded: the callback never came. The
    /// payment is recovered from the line.
    MissingPayment,
    /// Settles a payment another line already settled.
    DuplicateLine,
}

impl LineOutcome {
    pub const ALL: [LineOutcome; 4] = [
        LineOutcome::Matched,
        LineOutcome::AmountMismatch,
        LineOutcome::MissingPayment,
        LineOutcome::DuplicateLine,
    ];

    pub fn parse(value: &str) -> Option<LineOutcome> {
        LineOutcome::ALL.into_iter().find(|o| o.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LineOutcome::Matched => "matched",
            LineOutcome::AmountMismatch => "amount_mismatch",
            LineOutcome::MissingPayment => "missing_payment",
            LineOutcome::DuplicateLine => "duplicate_line",
        }
    }

    /// Whether the line settles its payment (every outcome but a duplicate).
    pub fn settles(self) -> bool {
        self != LineOutcome::DuplicateLine
    }
}

/// Where a statement's import job is. A job is checked whole (every
/// line read, every line's agency in the importer's scope) before any
/// line is applied, so a refused file changes nothing; once applying, it
/// only goes on, after a restart too, until it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Stored, waiting for a worker.
    Queued,
    /// Being checked, then applied in batches.
    Running,
    /// Every line applied; the summary is published.
    Done,
    /// A line could not be read or is not the importer's to apply:
    /// nothing was applied.
    Refused,
}

impl ImportStatus {
    pub const ALL: [ImportStatus; 4] = [
        ImportStatus::Queued,
        ImportStatus::Running,
        ImportStatus::Done,
        ImportStatus::Refused,
    ];

    pub fn parse(value: &str) -> Option<ImportStatus> {
        ImportStatus::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Queued => "queued",
            ImportStatus::Running => "running",
            ImportStatus::Done => "done",
            ImportStatus::Refused => "refused",
        }
    }

    /// Whether the job has ended, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, ImportStatus::Done | ImportStatus::Refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_evening_payment_in_utc_falls_on_the_next_vietnamese_day() {
        let at = Timestamp::parse_rfc3339("2026-11-30T17:30:00Z").unwrap();
        assert_eq!(local_day(at), "2026-12-01");
        let at = Timestamp::parse_rfc3339("2026-11-30T16:59:59Z").unwrap();
        assert_eq!(local_day(at), "2026-11-30");
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in LineOutcome::ALL {
            assert_eq!(LineOutcome::parse(outcome.as_str()), Some(outcome));
        }
        assert!(!LineOutcome::DuplicateLine.settles());
        assert_eq!(parse_day("2026-02-30"), None);
        assert_eq!(format_day(parse_day("2026-02-28").unwrap()), "2026-02-28");
    }
}
