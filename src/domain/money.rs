//! Money in Vietnamese đồng. VND has no minor unit: every amount is a whole
//! number of đồng, held as `i64` and never as a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount of money in whole đồng. Arithmetic is checked: an overflow is
/// an error, never a wrapped value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vnd(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is not a number")]
    NotANumber,
    #[error("amount has a fraction of a đồng")]
    Fractional,
    #[error("amount is out of range")]
    OutOfRange,
    #[error("amount must be positive")]
    NotPositive,
}

impl Vnd {
    pub const ZERO: Vnd = Vnd(0);

    pub const fn new(dong: i64) -> Vnd {
        Vnd(dong)
    }

    /// A positive amount, as fees and payments must be.
    pub fn positive(dong: i64) -> Result<Vnd, MoneyError> {
        if dong > 0 {
            Ok(Vnd(dong))
        } else {
            Err(MoneyError::NotPositive)
        }
    }

    pub const fn dong(self) -> i64 {
        self.0
    }

    pub fn checked_add(self, other: Vnd) -> Option<Vnd> {
        self.0.checked_add(other.0).map(Vnd)
    }

    pub fn checked_sub(self, other: Vnd) -> Option<Vnd> {
        self.0.checked_sub(other.0).map(Vnd)
    }

    /// Parses plain decimal text such as `150000` or `"150000.00"`; refuses
    /// any fraction of a đồng instead of rounding it away.
    pub fn parse_decimal(text: &str) -> Result<Vnd, MoneyError> {
        let text = text.trim();
        if text.is_empty() || text.contains(['e', 'E']) {
            return Err(MoneyError::NotANumber);
        }
        let decimal = Decimal::from_str(text).map_err(|_| MoneyError::NotANumber)?;
        // `Decimal::from_str` rounds digits past its 28 places away, which
        // would turn "1.00000000000000000000000000001" into a whole 1.
        // Read again exactly, without the zeros that end a fraction (they
        // are exact however many): a digit it cannot hold is a fraction.
        let significant = match text.split_once('.') {
            Some((whole, fraction)) => match fraction.trim_end_matches('0') {
                "" => whole.to_owned(),
                fraction => format!("{whole}.{fraction}"),
            },
            None => text.to_owned(),
        };
        if Decimal::from_str_exact(&significant).is_err() {
            return Err(if significant.contains('.') {
                MoneyError::Fractional
            } else {
                MoneyError::OutOfRange
            });
        }
        Self::from_decimal(decimal)
    }

    /// Parses text with Vietnamese thousands dots, such as `1.500.000`, and an
    /// optional decimal comma (`1.500.000,00`).
    pub fn parse_vietnamese(text: &str) -> Result<Vnd, MoneyError> {
        let text = text.trim();
        let (whole, fraction) = match text.split_once(',') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (text, None),
        };
        let mut groups = whole.split('.');
        let first = groups.next().unwrap_or_default();
        let first_digits = first.strip_prefix('-').unwrap_or(first);
        if first_digits.is_empty()
            || first_digits.len() > 3 && whole.contains('.')
            || !first_digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(MoneyError::NotANumber);
        }
        let mut plain = first.to_owned();
        for group in groups {
            if group.len() != 3 || !group.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MoneyError::NotANumber);
            }
            plain.push_str(group);
        }
        if let Some(fraction) = fraction {
            if fraction.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MoneyError::NotANumber);
            }
            plain.push('.');
            plain.push_str(fraction);
        }
        Self::parse_decimal(&plain)
    }

    /// Converts an exact decimal, refusing fractions of a đồng.
    pub fn from_decimal(decimal: Decimal) -> Result<Vnd, MoneyError> {
        if !decimal.fract().is_zero() {
            return Err(MoneyError::Fractional);
        }
        let whole = decimal.trunc();
        i64::try_from(whole)
            .map(Vnd)
            .map_err(|_| MoneyError::OutOfRange)
    }

    /// Formats the amount the Vietnamese way: `1.500.000 ₫`.
    pub fn display_vi(self) -> String {
        let digits = self.0.unsigned_abs().to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 4);
        if self.0 < 0 {
            grouped.push('-');
        }
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push('.');
            }
            grouped.push(digit);
        }
        grouped.push_str(" ₫");
        grouped
    }
}

impl fmt::Display for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Vnd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

/// Accepts a JSON integer, or decimal text that is a whole number of đồng.
/// A JSON float is refused: it may already have lost precision.
impl<'de> Deserialize<'de> for Vnd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Vnd;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of đồng")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Vnd, E> {
                Ok(Vnd(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Vnd, E> {
                i64::try_from(v)
                    .map(Vnd)
                    .map_err(|_| E::custom(MoneyError::OutOfRange))
            }

            /// A JSON number written with a fraction or an exponent arrives
            /// as a float: taken only when it is a whole number small enough
            /// that no other whole number shares its float (below 2^53).
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Vnd, E> {
                const EXACT: f64 = 9_007_199_254_740_992.0;
                if v.fract() != 0.0 || !v.is_finite() {
                    Err(E::custom(MoneyError::Fractional))
                } else if v.abs() >= EXACT {
                    Err(E::custom(MoneyError::OutOfRange))
                } else {
                    Ok(Vnd(v as i64))
                }
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vnd, E> {
                Vnd::parse_decimal(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_whole_decimal_text() {
        assert_eq!(Vnd::parse_decimal("150000"), Ok(Vnd(150_000)));
        assert_eq!(Vnd::parse_decimal("150000.00"), Ok(Vnd(150_000)));
        assert_eq!(Vnd::parse_decimal(" 42 "), Ok(Vnd(42)));
    }

    #[test]
    fn refuses_fractions_and_garbage() {
        assert_eq!(Vnd::parse_decimal("150000.5"), Err(MoneyError::Fractional));
        assert_eq!(Vnd::parse_decimal("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Vnd::parse_decimal(""), Err(MoneyError::NotANumber));
        assert_eq!(Vnd::parse_decimal("1e5"), Err(MoneyError::NotANumber));
        assert_eq!(
            Vnd::parse_decimal("99999999999999999999"),
            Err(MoneyError::OutOfRange)
        );
    }

    #[test]
    fn a_fraction_too_fine_for_a_decimal_is_still_refused() {
        let tiny = format!("1.{}1", "0".repeat(28));
        assert_eq!(Vnd::parse_decimal(&tiny), Err(MoneyError::Fractional));
        let tiny = format!("1,{}1", "0".repeat(30));
        assert_eq!(Vnd::parse_vietnamese(&tiny), Err(MoneyError::Fractional));
        let zeros = format!("150000.{}", "0".repeat(40));
        assert_eq!(Vnd::parse_decimal(&zeros), Ok(Vnd(150_000)));
    }

    #[test]
    fn parses_vietnamese_thousands() {
        assert_eq!(Vnd::parse_vietnamese("1.500.000"), Ok(Vnd(1_500_000)));
        assert_eq!(Vnd::parse_vietnamese("500"), Ok(Vnd(500)));
        assert_eq!(Vnd::parse_vietnamese("1.500.000,00"), Ok(Vnd(1_500_000)));
        assert_eq!(
            Vnd::parse_vietnamese("1.500.000,50"),
            Err(MoneyError::Fractional)
        );
        assert_eq!(
            Vnd::parse_vietnamese("1.50.000"),
            Err(MoneyError::NotANumber)
        );
        assert_eq!(
            Vnd::parse_vietnamese("1500.000"),
            Err(MoneyError::NotANumber)
        );
        assert_eq!(Vnd::parse_vietnamese("1.500."), Err(MoneyError::NotANumber));
    }

    #[test]
    fn displays_with_dots() {
        assert_eq!(Vnd(1_500_000).display_vi(), "1.500.000 ₫");
        assert_eq!(Vnd(0).display_vi(), "0 ₫");
        assert_eq!(Vnd(999).display_vi(), "999 ₫");
        assert_eq!(Vnd(-1000).display_vi(), "-1.000 ₫");
    }

    #[test]
    fn json_refuses_floats_and_accepts_integers() {
        assert_eq!(serde_json::from_str::<Vnd>("150000").unwrap(), Vnd(150_000));
        assert_eq!(
            serde_json::from_str::<Vnd>("\"150000.00\"").unwrap(),
            Vnd(150_000)
        );
        assert!(serde_json::from_str::<Vnd>("150000.5").is_err());
        assert_eq!(
            serde_json::from_str::<Vnd>("150000.0").unwrap(),
            Vnd(150_000)
        );
        assert_eq!(serde_json::from_str::<Vnd>("1.5e5").unwrap(), Vnd(150_000));
        assert!(serde_json::from_str::<Vnd>("1e300").is_err());
        assert!(serde_json::from_str::<Vnd>("9007199254740993.0").is_err());
        assert!(serde_json::from_str::<Vnd>("18446744073709551615").is_err());
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Vnd(i64::MAX).checked_add(Vnd(1)), None);
        assert_eq!(Vnd(5).checked_sub(Vnd(3)), Some(Vnd(2)));
    }

    proptest! {
        #[test]
        fn decimal_round_trips(n in any::<i64>()) {
            prop_assert_eq!(Vnd::parse_decimal(&n.to_string()), Ok(Vnd(n)));
            prop_assert_eq!(Vnd::parse_decimal(&format!("{n}.000")), Ok(Vnd(n)));
        }

        #[test]
        fn vietnamese_display_round_trips(n in 0i64..i64::MAX) {
            let shown = Vnd(n).display_vi();
            let text = shown.trim_end_matches(" ₫");
            prop_assert_eq!(Vnd::parse_vietnamese(text), Ok(Vnd(n)));
        }

        #[test]
        fn any_fraction_is_refused(n in -1_000_000_000i64..1_000_000_000, f in 1u32..100) {
            let text = format!("{n}.{f:02}");
            prop_assert_eq!(Vnd::parse_decimal(&text), Err(MoneyError::Fractional));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC*") {
            let _ = Vnd::parse_decimal(&s);
            let _ = Vnd::parse_vietnamese(&s);
        }
    }
}
