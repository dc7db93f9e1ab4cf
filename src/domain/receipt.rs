//! Receipts (biên lai): the proof of payment a payer gets once an invoice
//! is paid. Per Decree 123/2020 art. 32 a receipt carries a form number
//! (mẫu số), a symbol (ký hiệu: letters, then the last two digits of the
//! year) and a 7-digit number in a series that restarts each year. lephi
//! keeps one series per agency and year (in Vietnam).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};

use super::{AgencyCode, Timestamp, ValidationError};

/// The largest number a yearly series can give: seven digits.
pub const MAX_RECEIPT_NUMBER: i64 = 9_999_999;

/// A receipt's number in its series, 1 to 9,999,999, printed with seven
/// digits (`0000001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReceiptNumber(u32);

impl ReceiptNumber {
    /// The number, if it is one a series can give.
    pub fn new(number: i64) -> Option<ReceiptNumber> {
        if (1..=MAX_RECEIPT_NUMBER).contains(&number) {
            u32::try_from(number).ok().map(ReceiptNumber)
        } else {
            None
        }
    }

    pub fn value(self) -> i64 {
        i64::from(self.0)
    }
}

impl fmt::Display for ReceiptNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:07}", self.0)
    }
}

impl Serialize for ReceiptNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A receipt form number (mẫu số), such as `01BLP0-001`: 1 to 20
/// upper-case ASCII letters, digits, `-` or `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormNumber(String);

impl FormNumber {
    pub fn parse(field: &str, text: &str) -> Result<FormNumber, ValidationError> {
        let ok = (1..=20).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'/');
        if ok {
            Ok(FormNumber(text.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                "must be 1 to 20 upper-case letters, digits, - or /",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The letters of a receipt symbol (ký hiệu), such as `LP`: 1 to 6
/// upper-case ASCII letters. The symbol adds the year's last two digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolLetters(String);

impl SymbolLetters {
    pub fn parse(field: &str, text: &str) -> Result<SymbolLetters, ValidationError> {
        if (1..=6).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(SymbolLetters(text.to_owned()))
        } else {
            Err(ValidationError::new(
                field,
                "must be 1 to 6 upper-case letters A to Z",
            ))
        }
    }

    /// The symbol of `year`'s receipts: the letters, then the year's last
    /// two digits (`LP26` for 2026).
    pub fn symbol(&self, year: i32) -> String {
        format!("{}{:02}", self.0, year.rem_euclid(100))
    }
}

/// What an agency's receipts are printed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptForm {
    pub form_number: FormNumber,
    pub symbol_letters: SymbolLetters,
}

/// The receipt forms in use: one for every agency, unless an agency has
/// its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptPolicy {
    pub default: ReceiptForm,
    pub agencies: BTreeMap<AgencyCode, ReceiptForm>,
}

impl ReceiptPolicy {
    pub fn form_for(&self, agency: &AgencyCode) -> &ReceiptForm {
        self.agencies.get(agency).unwrap_or(&self.default)
    }
}

impl Default for ReceiptPolicy {
    /// Form `01BLP0-001`, symbol letters `LP`, for every agency.
    fn default() -> ReceiptPolicy {
        ReceiptPolicy {
            default: ReceiptForm {
                form_number: FormNumber("01BLP0-001".into()),
                symbol_letters: SymbolLetters("LP".into()),
            },
            agencies: BTreeMap::new(),
        }
    }
}

/// The year (in Vietnam) an instant falls in: the series a payment made
/// then is numbered in.
pub fn vietnam_year(at: Timestamp) -> i32 {
    at.in_vietnam().year()
}

/// A receipt as issued. Its form number and symbol are kept as printed,
/// whatever the configuration says later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    pub form_number: String,
    pub symbol: String,
    pub number: ReceiptNumber,
    #[serde(skip)]
    pub year: i32,
    /// The payment that made the invoice paid.
    #[serde(skip)]
    pub payment_id: String,
    pub issued_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_have_seven_digits_and_a_ceiling() {
        assert_eq!(ReceiptNumber::new(1).unwrap().to_string(), "0000001");
        assert_eq!(ReceiptNumber::new(42).unwrap().to_string(), "0000042");
        assert_eq!(
            ReceiptNumber::new(MAX_RECEIPT_NUMBER).unwrap().to_string(),
            "9999999"
        );
        for bad in [0, -1, MAX_RECEIPT_NUMBER + 1, i64::MAX, i64::MIN] {
            assert_eq!(ReceiptNumber::new(bad), None, "{bad}");
        }
        assert_eq!(
            serde_json::to_value(ReceiptNumber::new(7).unwrap()).unwrap(),
            "0000007"
        );
    }

    #[test]
    fn symbols_end_with_the_year() {
        let letters = SymbolLetters::parse("s", "LP").unwrap();
        assert_eq!(letters.symbol(2026), "LP26");
        assert_eq!(letters.symbol(2100), "LP00");
        assert_eq!(letters.symbol(2009), "LP09");
    }

    #[test]
    fn form_numbers_and_letters_are_checked() {
        assert!(FormNumber::parse("f", "01BLP0-001").is_ok());
        assert!(FormNumber::parse("f", "01/BLP").is_ok());
        for bad in ["", "01blp0-001", "01 BLP", &"1".repeat(21), "Mẫu"] {
            assert!(FormNumber::parse("f", bad).is_err(), "{bad}");
        }
        assert!(SymbolLetters::parse("s", "BLAB").is_ok());
        for bad in ["", "lp", "L1", "ABCDEFG", "Đ"] {
            assert!(SymbolLetters::parse("s", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_agency_uses_its_own_form_or_the_default() {
        let mut policy = ReceiptPolicy::default();
        let own = ReceiptForm {
            form_number: FormNumber::parse("f", "02BLP0-002").unwrap(),
            symbol_letters: SymbolLetters::parse("s", "HY").unwrap(),
        };
        policy
            .agencies
            .insert(AgencyCode::from_stored("H26.01".into()), own.clone());
        assert_eq!(
            policy.form_for(&AgencyCode::from_stored("H26.01".into())),
            &own
        );
        assert_eq!(
            policy.form_for(&AgencyCode::from_stored("H26".into())),
            &ReceiptPolicy::default().default
        );
    }

    #[test]
    fn the_year_is_vietnamese() {
        let new_year_in_hanoi = Timestamp::parse_rfc3339("2025-12-31T17:00:00Z").unwrap();
        assert_eq!(vietnam_year(new_year_in_hanoi), 2026);
        let still_old_year = Timestamp::parse_rfc3339("2025-12-31T16:59:59Z").unwrap();
        assert_eq!(vietnam_year(still_old_year), 2025);
    }

    proptest! {
        #[test]
        fn every_number_in_range_prints_seven_digits(n in 1i64..=MAX_RECEIPT_NUMBER) {
            let printed = ReceiptNumber::new(n).unwrap().to_string();
            prop_assert_eq!(printed.len(), 7);
            prop_assert_eq!(printed.parse::<i64>().unwrap(), n);
        }
    }
}
