//! The dossier register: every dossier that owed a fee, as the agencies'
//! dossier systems list it, and what each dossier's payments make of it.
//! A dossier's outcome is computed from its payments whenever it is asked
//! for, never stored, so that it is always current.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::Time;

use super::payment::Channel;
use super::settlement::{VIETNAM, parse_day};
use super::{AgencyCode, Timestamp, ValidationError, Vnd, text};

/// A dossier as the register lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dossier {
    pub agency_code: AgencyCode,
    /// Checked as an invoice's dossier code is, so that the two meet.
    pub dossier_code: String,
    pub procedure_code: String,
    pub fee_amount: Vnd,
    pub received_at: Timestamp,
    /// The dossier system's own status, a lowercase token.
    pub status: String,
}

impl Dossier {
    /// Whether `other` says the same about the dossier (its key aside).
    pub fn same_as(&self, other: &Dossier) -> bool {
        self.procedure_code == other.procedure_code
            && self.fee_amount == other.fee_amount
            && self.received_at == other.received_at
            && self.status == other.status
    }
}

/// The register's columns, named exactly so, in any order.
pub const REGISTER_COLUMNS: [&str; 6] = [
    "dossier_code",
    "agency_code",
    "procedure_code",
    "fee_amount",
    "received_at",
    "status",
];

/// A parsed register file: its rows with their line numbers (the header
/// being line 1), and the file's SHA-256 for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub rows: Vec<(usize, Dossier)>,
    pub sha256: String,
}

/// Why a register file cannot be taken, with the line at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RegisterError {
    pub line: usize,
    pub message: String,
}

/// Parses a register: UTF-8 CSV (an optional byte order mark is skipped),
/// comma-delimited, with a header naming each of [`REGISTER_COLUMNS`]
/// exactly once, in any order. Fields are trimmed. The first bad row, or
/// a dossier listed twice, refuses the whole file.
pub fn parse_register(bytes: &[u8]) -> Result<Register, RegisterError> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let columns: Option<Vec<usize>> = REGISTER_COLUMNS.iter().map(|name| column(name)).collect();
    let columns = match columns {
        Some(columns) if headers.len() == REGISTER_COLUMNS.len() => columns,
        _ => {
            return Err(RegisterError {
                line: 1,
                message: format!(
                    "the header must name the columns {}, each once, in any order",
                    REGISTER_COLUMNS.join(",")
                ),
            });
        }
    };
    let mut rows = Vec::new();
    let mut first_line: HashMap<(AgencyCode, String), usize> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let field = |i: usize| record.get(columns[i]).unwrap_or_default();
        let dossier = parse_row([field(0), field(1), field(2), field(3), field(4), field(5)])
            .map_err(|e| RegisterError {
                line,
                message: e.to_string(),
            })?;
        let key = (dossier.agency_code.clone(), dossier.dossier_code.clone());
        if let Some(first) = first_line.insert(key, line) {
            return Err(RegisterError {
                line,
                message: format!(
                    "dossier {} of agency {} is listed twice (first on line {first})",
                    dossier.dossier_code, dossier.agency_code
                ),
            });
        }
        rows.push((line, dossier));
    }
    Ok(Register { rows, sha256 })
}

fn csv_error(err: csv::Error) -> RegisterError {
    let line = err.position().map_or(1, |p| p.line() as usize);
    let message = match err.kind() {
        csv::ErrorKind::Utf8 { .. } => "the file must be UTF-8 text".to_owned(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields where the header has {expected_len}"),
        _ => err.to_string(),
    };
    RegisterError { line, message }
}

/// One row's fields, in [`REGISTER_COLUMNS`] order.
fn parse_row(fields: [&str; 6]) -> Result<Dossier, ValidationError> {
    let [
        dossier_code,
        agency_code,
        procedure_code,
        fee_amount,
        received_at,
        status,
    ] = fields;
    // The rules an invoice's dossier and procedure codes follow.
    let dossier_code = text::bounded("dossier_code", dossier_code, 100)?;
    let procedure_code = text::code("procedure_code", procedure_code, 50)?;
    let agency_code = AgencyCode::parse("agency_code", agency_code)?;
    let fee_amount = Vnd::parse_vietnamese(fee_amount)
        .and_then(|fee| Vnd::positive(fee.dong()))
        .map_err(|e| {
            ValidationError::new(
                "fee_amount",
                format!("{e}: write whole đồng above zero, e.g. 150000 or 150.000"),
            )
        })?;
    let received_at = parse_received_at(received_at)?;
    let status = parse_status(status)?;
    Ok(Dossier {
        agency_code,
        dossier_code,
        procedure_code,
        fee_amount,
        received_at,
        status,
    })
}

/// An RFC 3339 time with its offset, or a day `YYYY-MM-DD`, which stands
/// for that day's start in Vietnam.
pub fn parse_received_at(text: &str) -> Result<Timestamp, ValidationError> {
    let at = match parse_day(text) {
        Some(day) => Timestamp::from_datetime(day.with_time(Time::MIDNIGHT).assume_offset(VIETNAM)),
        None => Timestamp::parse_rfc3339(text),
    };
    at.ok_or_else(|| {
        ValidationError::new(
            "received_at",
            "must be an RFC 3339 time with an offset (2026-11-28T08:30:00+07:00) or a day (2026-11-28)",
        )
    })
}

fn parse_status(text: &str) -> Result<String, ValidationError> {
    let valid =
        (1..=32).contains(&text.len()) && text.bytes().all(|b| matches!(b, b'a'..=b'z' | b'_'));
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ValidationError::new(
            "status",
            "must be 1 to 32 lowercase letters or '_'",
        ))
    }
}

/// What a dossier's payments make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DossierOutcome {
    /// The fee was received exactly, none of it in cash.
    PaidCashless,
    /// The fee was received exactly, some of it in cash.
    PaidCash,
    /// Nothing was received.
    Unpaid,
    /// Less than the fee was received.
    Underpaid,
    /// More than the fee was received, not as the fee paid twice.
    Overpaid,
    /// The fee was paid in full at least twice, by separate payments.
    PaidTwice,
}

impl DossierOutcome {
    pub const ALL: [DossierOutcome; 6] = [
        DossierOutcome::PaidCashless,
        DossierOutcome::PaidCash,
        DossierOutcome::Unpaid,
        DossierOutcome::Underpaid,
        DossierOutcome::Overpaid,
        DossierOutcome::PaidTwice,
    ];

    pub fn parse(value: &str) -> Option<DossierOutcome> {
        DossierOutcome::ALL
            .into_iter()
            .find(|o| o.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DossierOutcome::PaidCashless => "paid_cashless",
            DossierOutcome::PaidCash => "paid_cash",
            DossierOutcome::Unpaid => "unpaid",
            DossierOutcome::Underpaid => "underpaid",
            DossierOutcome::Overpaid => "overpaid",
            DossierOutcome::PaidTwice => "paid_twice",
        }
    }

    /// The outcomes' names, for messages.
    pub fn names() -> String {
        DossierOutcome::ALL.map(DossierOutcome::as_str).join(", ")
    }
}

/// A dossier's payments, summed: every payment for an invoice of the
/// dossier, whether it was applied to the invoice or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DossierPayments {
    pub count: u64,
    pub received: Vnd,
    /// The channels the payments came through, each once, in
    /// [`Channel::ALL`] order.
    pub channels: Vec<Channel>,
    /// How many of the payments were each exactly the fee.
    pub fee_sized: u64,
}

impl DossierPayments {
    /// Sums `payments` against `fee`; `None` if the sum overflows.
    pub fn tally(
        fee: Vnd,
        payments: impl IntoIterator<Item = (Channel, Vnd)>,
    ) -> Option<DossierPayments> {
        let mut tally = DossierPayments::default();
        let mut seen = [false; Channel::ALL.len()];
        for (channel, amount) in payments {
            tally.count += 1;
            tally.received = tally.received.checked_add(amount)?;
            if amount == fee {
                tally.fee_sized += 1;
            }
            if let Some(i) = Channel::ALL.iter().position(|c| *c == channel) {
                seen[i] = true;
            }
        }
        tally.channels = Channel::ALL
            .into_iter()
            .zip(seen)
            .filter_map(|(channel, seen)| seen.then_some(channel))
            .collect();
        Some(tally)
    }
}

/// The outcome of a dossier owing `fee` that received `paid`.
pub fn outcome(fee: Vnd, paid: &DossierPayments) -> DossierOutcome {
    use std::cmp::Ordering;
    if paid.count == 0 {
        return DossierOutcome::Unpaid;
    }
    match paid.received.cmp(&fee) {
        Ordering::Less => DossierOutcome::Underpaid,
        Ordering::Equal if paid.channels.contains(&Channel::Cash) => DossierOutcome::PaidCash,
        Ordering::Equal => DossierOutcome::PaidCashless,
        Ordering::Greater if paid.fee_sized >= 2 => DossierOutcome::PaidTwice,
        Ordering::Greater => DossierOutcome::Overpaid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FEE: Vnd = Vnd::new(650_000);

    fn outcome_of(payments: &[(Channel, i64)]) -> DossierOutcome {
        let tally = DossierPayments::tally(FEE, payments.iter().map(|(c, a)| (*c, Vnd::new(*a))))
            .expect("no overflow");
        outcome(FEE, &tally)
    }

    #[test]
    fn each_outcome_from_its_payments() {
        use Channel::*;
        assert_eq!(outcome_of(&[]), DossierOutcome::Unpaid);
        assert_eq!(outcome_of(&[(Vnpay, 600_000)]), DossierOutcome::Underpaid);
        assert_eq!(
            outcome_of(&[(Vnpay, 650_000)]),
            DossierOutcome::PaidCashless
        );
        assert_eq!(
            outcome_of(&[(BankTransfer, 150_000), (Momo, 500_000)]),
            DossierOutcome::PaidCashless
        );
        assert_eq!(outcome_of(&[(Cash, 650_000)]), DossierOutcome::PaidCash);
        assert_eq!(
            outcome_of(&[(Cash, 150_000), (Zalopay, 500_000)]),
            DossierOutcome::PaidCash
        );
        assert_eq!(
            outcome_of(&[(Vnpay, 650_000), (BankTransfer, 650_000)]),
            DossierOutcome::PaidTwice
        );
        assert_eq!(
            outcome_of(&[(Vnpay, 650_000), (BankTransfer, 10_000)]),
            DossierOutcome::Overpaid
        );
        assert_eq!(outcome_of(&[(Cash, 1_300_000)]), DossierOutcome::Overpaid);
    }

    #[test]
    fn tally_lists_each_channel_once_in_order() {
        let tally = DossierPayments::tally(
            FEE,
            [
                (Channel::Cash, Vnd::new(1)),
                (Channel::Vnpay, Vnd::new(2)),
                (Channel::Cash, Vnd::new(3)),
            ],
        )
        .unwrap();
        assert_eq!(tally.channels, vec![Channel::Vnpay, Channel::Cash]);
        assert_eq!(tally.count, 3);
        assert_eq!(tally.received, Vnd::new(6));
        assert_eq!(
            DossierPayments::tally(FEE, [(Channel::Cash, Vnd::new(i64::MAX)); 2]),
            None
        );
    }

    #[test]
    fn outcomes_round_trip() {
        for o in DossierOutcome::ALL {
            assert_eq!(DossierOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert_eq!(DossierOutcome::parse("paid"), None);
    }

    const HEADER: &str = "dossier_code,agency_code,procedure_code,fee_amount,received_at,status\n";

    #[test]
    fn parses_a_register_with_bom_dots_and_days() {
        let csv = format!(
            "\u{feff}{HEADER}HS-1,P.D1,1.004227,650000,2026-11-28T08:30:00+07:00,received\n\
             HS-2 , P.D1 ,1.004227,\"1.500.000\",2026-11-28,done\n"
        );
        let register = parse_register(csv.as_bytes()).unwrap();
        assert_eq!(register.sha256.len(), 64);
        let [(l1, first), (l2, second)] = register.rows.as_slice() else {
            panic!("two rows");
        };
        assert_eq!((*l1, *l2), (2, 3));
        assert_eq!(first.fee_amount, Vnd::new(650_000));
        assert_eq!(first.received_at.to_stored(), "2026-11-28T01:30:00.000000Z");
        assert_eq!(second.dossier_code, "HS-2");
        assert_eq!(second.agency_code.as_str(), "P.D1");
        assert_eq!(second.fee_amount, Vnd::new(1_500_000));
        assert_eq!(
            second.received_at.to_stored(),
            "2026-11-27T17:00:00.000000Z"
        );
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let csv = "status,fee_amount,received_at,agency_code,procedure_code,dossier_code\n\
                   received,650000,2026-11-28,P,1.004227,HS-1\n";
        let register = parse_register(csv.as_bytes()).unwrap();
        assert_eq!(register.rows[0].1.dossier_code, "HS-1");
        assert_eq!(register.rows[0].1.status, "received");
    }

    fn refusal(csv: &str) -> RegisterError {
        parse_register(csv.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_bad_row_refuses_the_file_with_its_line() {
        let ok = "HS-1,P,1.004227,650000,2026-11-28,received\n";
        for (bad, field) in [
            ("HS-2,P,1.004227,650.000,50,2026-11-28,received\n", "fields"),
            (
                "HS-2,P,1.004227,\"650.000,50\",2026-11-28,received\n",
                "fraction",
            ),
            ("HS-2,P,1.004227,0,2026-11-28,received\n", "fee_amount"),
            ("HS-2,P,1.004227,-5,2026-11-28,received\n", "fee_amount"),
            ("HS-2,P,1.004227,abc,2026-11-28,received\n", "fee_amount"),
            (
                "HS-2,P,1.004227,650000,2026-11-31,received\n",
                "received_at",
            ),
            (
                "HS-2,P,1.004227,650000,2026-11-28T08:00:00,received\n",
                "received_at",
            ),
            ("HS-2,P,1.004227,650000,2026-11-28,Received\n", "status"),
            (
                "HS-2,P,1 004227,650000,2026-11-28,received\n",
                "procedure_code",
            ),
            (
                "HS-2,P Q,1.004227,650000,2026-11-28,received\n",
                "agency_code",
            ),
            (",P,1.004227,650000,2026-11-28,received\n", "dossier_code"),
            ("HS-1,P,1.004227,650000,2026-11-28,received\n", "twice"),
        ] {
            let err = refusal(&format!("{HEADER}{ok}{bad}"));
            assert_eq!(err.line, 3, "{bad}: {err}");
            assert!(err.message.contains(field), "{bad}: {err}");
        }
        let same_code_other_agency =
            format!("{HEADER}{ok}HS-1,Q,1.004227,650000,2026-11-28,received\n");
        assert!(parse_register(same_code_other_agency.as_bytes()).is_ok());
    }

    #[test]
    fn the_header_must_name_each_column_once() {
        for header in [
            "dossier,agency_code,procedure_code,fee_amount,received_at,status\n",
            "dossier_code,agency_code,procedure_code,fee_amount,received_at\n",
            "dossier_code,agency_code,procedure_code,fee_amount,received_at,status,note\n",
            "dossier_code;agency_code;procedure_code;fee_amount;received_at;status\n",
            "",
        ] {
            assert_eq!(refusal(header).line, 1, "{header}");
        }
    }

    #[test]
    fn a_file_that_is_not_utf8_is_refused_at_its_line() {
        let mut bytes = HEADER.as_bytes().to_vec();
        bytes.extend_from_slice(b"HS-1,P,1.004227,650000,2026-11-28,received\n");
        bytes.extend_from_slice(b"HS-\xC0\xAF2,P,1.004227,650000,2026-11-28,received\n");
        let err = parse_register(&bytes).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("UTF-8"), "{err}");
    }

    fn channel() -> impl Strategy<Value = Channel> {
        prop::sample::select(Channel::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn outcome_follows_the_sum_and_not_the_order(
            fee in 1i64..10_000_000,
            mut payments in prop::collection::vec((channel(), 1i64..20_000_000), 0..6),
        ) {
            let fee = Vnd::new(fee);
            let tally = |list: &[(Channel, i64)]| {
                DossierPayments::tally(fee, list.iter().map(|(c, a)| (*c, Vnd::new(*a)))).unwrap()
            };
            let got = outcome(fee, &tally(&payments));
            let sum: i64 = payments.iter().map(|(_, a)| a).sum();
            let expected_class = match sum.cmp(&fee.dong()) {
                _ if payments.is_empty() => "unpaid",
                std::cmp::Ordering::Less => "underpaid",
                std::cmp::Ordering::Equal => "paid",
                std::cmp::Ordering::Greater => "over",
            };
            let class = match got {
                DossierOutcome::Unpaid => "unpaid",
                DossierOutcome::Underpaid => "underpaid",
                DossierOutcome::PaidCash | DossierOutcome::PaidCashless => "paid",
                DossierOutcome::Overpaid | DossierOutcome::PaidTwice => "over",
            };
            prop_assert_eq!(class, expected_class);
            let any_cash = payments.iter().any(|(c, _)| *c == Channel::Cash);
            if class == "paid" {
                prop_assert_eq!(got == DossierOutcome::PaidCash, any_cash);
            }
            payments.reverse();
            prop_assert_eq!(outcome(fee, &tally(&payments)), got);
        }

        #[test]
        fn the_fee_paid_through_n_channels_is_paid_once_or_twice(
            fee in 1i64..10_000_000,
            channels in prop::collection::vec(channel(), 1..5),
        ) {
            let fee = Vnd::new(fee);
            let paid = DossierPayments::tally(fee, channels.iter().map(|c| (*c, fee))).unwrap();
            let expected = match channels.len() {
                1 if channels[0] == Channel::Cash => DossierOutcome::PaidCash,
                1 => DossierOutcome::PaidCashless,
                _ => DossierOutcome::PaidTwice,
            };
            prop_assert_eq!(outcome(fee, &paid), expected);
        }

        #[test]
        fn the_register_parser_never_panics(s in "\\PC*") {
            let _ = parse_register(format!("{HEADER}{s}").as_bytes());
        }
    }
}
