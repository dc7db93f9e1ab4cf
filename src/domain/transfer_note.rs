//! Transfer notes: what a payer types in a bank transfer's free-text
//! note, and finding the payment code in it. Domain rules, whichever bank
//! or notifier carried the transfer.

use crate::domain::PaymentCode;
use crate::domain::payment_code::PAYMENT_CODE_LEN;

/// Banks keep at most 25 characters of a QR's transfer note.
pub const NOTE_MAX_CHARS: usize = 25;

/// Vietnamese letters with diacritics, by the letter they are written on.
const VIETNAMESE: [(char, &str); 7] = [
    ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
    ('d', "đ"),
    ('e', "èéẻẽẹêềếểễệ"),
    ('i', "ìíỉĩị"),
    ('o', "òóỏõọôồốổỗộơờớởỡợ"),
    ('u', "ùúủũụưừứửữự"),
    ('y', "ỳýỷỹỵ"),
];

/// The ASCII letter or character `c` is written as without diacritics,
/// in its case; `None` for combining accents (dropped: the letter they
/// follow stands for both) and other non-ASCII characters.
pub fn without_diacritics(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c);
    }
    let mut lower = c.to_lowercase();
    let (Some(l), None) = (lower.next(), lower.next()) else {
        return None;
    };
    let base = VIETNAMESE
        .iter()
        .find(|(_, marked)| marked.contains(l))
        .map(|(base, _)| *base)?;
    Some(if l == c {
        base
    } else {
        base.to_ascii_uppercase()
    })
}

/// A note fit for a bank transfer: diacritics removed, other characters
/// but ASCII letters and digits turned into single spaces, trimmed, and
/// at most [`NOTE_MAX_CHARS`] characters.
pub fn transfer_note(note: &str) -> String {
    let mut out = String::with_capacity(NOTE_MAX_CHARS);
    let mut space = false;
    for c in note.chars() {
        match without_diacritics(c) {
            Some(c) if c.is_ascii_alphanumeric() => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push(c);
            }
            // Combining accents belong to the letter before them.
            None if ('\u{300}'..='\u{36F}').contains(&c) => {}
            _ => space = true,
        }
        if out.len() >= NOTE_MAX_CHARS {
            break;
        }
    }
    out.truncate(NOTE_MAX_CHARS);
    let kept = out.trim_end().len();
    out.truncate(kept);
    out
}

/// Finds a payment code in a transfer's free-text note, as payers and
/// banks mangle it: any case, diacritics added or removed, and spaces,
/// hyphens, dots or other punctuation anywhere inside it (some banks
/// also prepend their own references). Every place where `LP` starts in
/// the note's letters and digits is tried; the first code whose check
/// symbol is right wins, so a stray `LP` (as in "HELP") costs nothing.
pub fn find_payment_code(note: &str) -> Option<PaymentCode> {
    let symbols: Vec<u8> = note
        .chars()
        .filter_map(without_diacritics)
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase() as u8)
        .collect();
    symbols
        .windows(PAYMENT_CODE_LEN)
        .filter(|window| window.starts_with(b"LP"))
        .find_map(|window| {
            let text = std::str::from_utf8(window).ok()?;
            PaymentCode::parse(text).ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Valid codes, their check symbols computed by hand.
    const CODE: &str = "LP23456789ABU";
    const OTHER_CODE: &str = "LPK7QX2M9PTBJ";

    #[test]
    fn notes_lose_diacritics_and_punctuation() {
        assert_eq!(
            transfer_note("  Đóng lệ phí: hộ tịch!  "),
            "Dong le phi ho tich"
        );
        assert_eq!(transfer_note("Nguye\u{0302}\u{0303}n"), "Nguyen");
        assert_eq!(transfer_note(&"a".repeat(40)).len(), NOTE_MAX_CHARS);
        assert_eq!(transfer_note("日本"), "");
        assert_eq!(
            transfer_note(&format!("{} b", "a".repeat(24))),
            "a".repeat(24)
        );
    }

    #[test]
    fn finds_codes_however_they_were_typed() {
        for note in [
            "LP23456789ABU",
            "lp23456789abu",
            "NGUYEN VAN A chuyen tien LP23456789ABU",
            "LP-2345-6789-ABU le phi",
            "MBVCB.3278907687.LP.2345.6789.ABU.CT tu 0071000888888",
            "Nộp lệ phí: lp 2345 6789 abu",
            "HELP me LP23456789ABU",
        ] {
            let found = find_payment_code(note);
            assert_eq!(
                found.map(|c| c.as_str().to_owned()),
                Some(CODE.into()),
                "{note}"
            );
        }
        // Not a Vietnamese letter: it is dropped, not read as L.
        assert_eq!(find_payment_code("ĹP23456789ABU"), None);
    }

    #[test]
    fn the_first_valid_code_wins_and_mistyped_codes_are_not_found() {
        let note = format!("LP23456789ABV {OTHER_CODE} {CODE}");
        assert_eq!(find_payment_code(&note).unwrap().as_str(), OTHER_CODE);
        for note in ["LP23456789ABV", "LP23456789AB", "", "LP", "chuyen tien"] {
            assert_eq!(find_payment_code(note), None, "{note}");
        }
    }

    #[test]
    fn vietnamese_letters_fold_to_ascii() {
        // Đ folds to D, which is in the alphabet.
        let code = PaymentCode::generate(&mut StdRng::seed_from_u64(4));
        let with_d = code.as_str().replace('D', "Đ");
        assert_eq!(find_payment_code(&with_d), Some(code));
    }

    proptest! {
        #[test]
        fn generated_codes_are_found_in_noisy_notes(
            seed in any::<u64>(),
            before in "[ a-zA-Zàđệ.,:-]{0,30}",
            after in "[ a-zA-Zàđệ.,:-]{0,30}",
        ) {
            let code = PaymentCode::generate(&mut StdRng::seed_from_u64(seed));
            let spaced: String = code
                .as_str()
                .chars()
                .enumerate()
                .flat_map(|(i, c)| if i % 4 == 3 { vec![c, '.'] } else { vec![c] })
                .collect();
            let note = format!("{before} {} {after}", spaced.to_lowercase());
            let found = find_payment_code(&note);
            // Noise before the code may, rarely, form another valid code first.
            prop_assert!(found.is_some());
            if !before.to_uppercase().contains('L') {
                prop_assert_eq!(found, Some(code));
            }
        }

        #[test]
        fn never_panics(note in "\\PC*") {
            let _ = find_payment_code(&note);
            let _ = transfer_note(&note);
        }
    }
}
