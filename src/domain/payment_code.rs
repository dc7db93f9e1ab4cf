//! The payment code a citizen reads aloud, types into a bank transfer note or
//! opens as a checkout link: `LP` then ten random symbols then a check symbol.
//!
//! The alphabet leaves out `0`/`O` and `1`/`I` so that no symbol can be
//! mistaken for another, and the check symbol (Luhn mod 32) catches every
//! single mistyped symbol and most swapped neighbours.

use std::fmt;

use rand::Rng;

const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const PREFIX: &str = "LP";
const BODY_LEN: usize = 10;
/// Length of a payment code as printed: prefix, body and check symbol.
pub const PAYMENT_CODE_LEN: usize = PREFIX.len() + BODY_LEN + 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentCodeError {
    #[error("a payment code is LP followed by 11 letters and digits")]
    Malformed,
    #[error("the payment code's check character does not match; is it mistyped?")]
    BadCheck,
}

fn symbol_value(symbol: u8) -> Option<usize> {
    ALPHABET.iter().position(|&s| s == symbol)
}

/// Luhn mod N over the body's symbol values, as the check symbol's value.
fn check_value(body: &[u8]) -> usize {
    let n = ALPHABET.len();
    let mut factor = 2;
    let mut sum = 0;
    for &symbol in body.iter().rev() {
        let addend = factor * symbol_value(symbol).unwrap_or(0);
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / n + addend % n;
    }
    (n - sum % n) % n
}

impl PaymentCode {
    /// A new random code with 50 bits of randomness.
    pub fn generate(rng: &mut impl Rng) -> PaymentCode {
        let body: Vec<u8> = (0..BODY_LEN)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect();
        let check = ALPHABET[check_value(&body)];
        let mut code = String::with_capacity(PAYMENT_CODE_LEN);
        code.push_str(PREFIX);
        code.extend(body.iter().map(|&b| b as char));
        code.push(check as char);
        PaymentCode(code)
    }

    /// Parses a code as a person may type it: any case, with spaces or
    /// hyphens between groups.
    pub fn parse(text: &str) -> Result<PaymentCode, PaymentCodeError> {
        if text.len() > 4 * PAYMENT_CODE_LEN {
            return Err(PaymentCodeError::Malformed);
        }
        let compact: Vec<u8> = text
            .bytes()
            .filter(|b| !matches!(b, b' ' | b'-'))
            .map(|b| b.to_ascii_uppercase())
            .collect();
        let Some(rest) = compact.strip_prefix(PREFIX.as_bytes()) else {
            return Err(PaymentCodeError::Malformed);
        };
        if rest.len() != BODY_LEN + 1 || !rest.iter().all(|&b| symbol_value(b).is_some()) {
            return Err(PaymentCodeError::Malformed);
        }
        let (body, check) = rest.split_at(BODY_LEN);
        if ALPHABET[check_value(body)] != check[0] {
            return Err(PaymentCodeError::BadCheck);
        }
        // Only ASCII bytes from the alphabet remain.
        Ok(PaymentCode(String::from_utf8_lossy(&compact).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn code(seed: u64) -> PaymentCode {
        PaymentCode::generate(&mut StdRng::seed_from_u64(seed))
    }

    #[test]
    fn generated_codes_have_the_documented_shape() {
        let c = code(7);
        assert_eq!(c.as_str().len(), PAYMENT_CODE_LEN);
        assert!(c.as_str().starts_with("LP"));
        assert!(!c.as_str()[2..].contains(['0', 'O', '1', 'I']));
        assert_eq!(PaymentCode::parse(c.as_str()), Ok(c));
    }

    #[test]
    fn parses_as_typed_by_a_person() {
        let c = code(11);
        let typed = format!(
            " {}-{} {} ",
            &c.as_str()[..2],
            c.as_str()[2..7].to_lowercase(),
            &c.as_str()[7..]
        );
        assert_eq!(PaymentCode::parse(&typed), Ok(c));
    }

    #[test]
    fn refuses_malformed_text() {
        for bad in [
            "",
            "LP",
            "XX23456789ABC",
            "LP23456789AB",
            "LP0000000000A",
            "LP23456789ABCD",
        ] {
            assert_eq!(
                PaymentCode::parse(bad),
                Err(PaymentCodeError::Malformed),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn every_generated_code_parses(seed in any::<u64>()) {
            let c = code(seed);
            prop_assert_eq!(PaymentCode::parse(c.as_str()), Ok(c.clone()));
        }

        #[test]
        fn a_single_mistyped_symbol_is_caught(seed in any::<u64>(), pos in 2usize..PAYMENT_CODE_LEN, sym in 0usize..32) {
            let c = code(seed);
            let mut bytes = c.as_str().as_bytes().to_vec();
            prop_assume!(bytes[pos] != ALPHABET[sym]);
            bytes[pos] = ALPHABET[sym];
            let typo = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(PaymentCode::parse(&typo), Err(PaymentCodeError::BadCheck));
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = PaymentCode::parse(&s);
        }
    }
}
