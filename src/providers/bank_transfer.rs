//! Bank transfers over NAPAS 247: the VietQR code a payer scans, and
//! finding the payment code in the free-text note of the transfer that
//! arrives.
//!
//! The payload is EMVCo merchant-presented: fields of a 2-digit id, a
//! 2-digit length and a value, some nested, closed by a CRC-16/CCITT-FALSE.

use serde::Serialize;

use crate::domain::payment_code::PAYMENT_CODE_LEN;
use crate::domain::{PaymentCode, Vnd};

/// NAPAS's application id for VietQR.
const NAPAS_AID: &str = "A000000727";
/// Service code of a transfer to an account (not to a card).
const TO_ACCOUNT: &str = "QRIBFTTA";
/// ISO 4217 numeric code of the đồng.
const VND_CODE: &str = "704";
/// Banks keep at most 25 characters of a QR's transfer note.
pub const NOTE_MAX_CHARS: usize = 25;

/// What a payer needs to pay by bank transfer, shown beside the QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferInstructions {
    pub bank_bin: String,
    pub account_number: String,
    pub account_name: String,
    pub amount: Vnd,
    /// The note to type, exactly as the QR code carries it.
    pub transfer_note: String,
    /// The VietQR payload, to be drawn as a QR code.
    pub vietqr: String,
}

/// Instructions for paying `amount` into an agency's account with `note`
/// (normally the invoice's payment code). The note is made fit for a
/// bank: diacritics removed, ASCII letters, digits and spaces only, at
/// most [`NOTE_MAX_CHARS`] characters; what is shown is what the QR code
/// carries.
pub fn instructions(
    bank_bin: &str,
    account_number: &str,
    account_name: &str,
    amount: Vnd,
    note: &str,
) -> TransferInstructions {
    let transfer_note = transfer_note(note);
    TransferInstructions {
        bank_bin: bank_bin.to_owned(),
        account_number: account_number.to_owned(),
        account_name: account_name.to_owned(),
        amount,
        vietqr: vietqr_payload(bank_bin, account_number, Some(amount), &transfer_note),
        transfer_note,
    }
}

/// The VietQR payload for a transfer to `account_number` at the bank
/// with NAPAS BIN `bank_bin` (6 digits; the account is at most 19
/// characters: both are checked where an agency's account is registered).
/// With a positive `amount` the code is dynamic (`01`=`12`) and carries
/// it; without one it is static (`11`) and the payer types the amount.
/// The note is made fit for a bank as in [`instructions`]; an empty note
/// leaves out field `62`.
pub fn vietqr_payload(
    bank_bin: &str,
    account_number: &str,
    amount: Option<Vnd>,
    note: &str,
) -> String {
    let amount = amount.filter(|a| a.dong() > 0);
    let beneficiary = tlv("00", bank_bin) + &tlv("01", account_number);
    let merchant_account = tlv("00", NAPAS_AID) + &tlv("01", &beneficiary) + &tlv("02", TO_ACCOUNT);
    let mut payload = tlv("00", "01");
    payload += &tlv("01", if amount.is_some() { "12" } else { "11" });
    payload += &tlv("38", &merchant_account);
    payload += &tlv("53", VND_CODE);
    if let Some(amount) = amount {
        payload += &tlv("54", &amount.dong().to_string());
    }
    payload += &tlv("58", "VN");
    let note = transfer_note(note);
    if !note.is_empty() {
        payload += &tlv("62", &tlv("08", &note));
    }
    // The CRC covers its own id and length.
    payload += "6304";
    let crc = crc16_ccitt_false(payload.as_bytes());
    payload += &format!("{crc:04X}");
    payload
}

/// One EMVCo field: id, value length in 2 digits, value. Lengths count
/// bytes; every value here is ASCII.
fn tlv(id: &str, value: &str) -> String {
    format!("{id}{:02}{value}", value.len())
}

/// CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no
/// reflection, no final XOR.
fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

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
pub(crate) fn without_diacritics(c: char) -> Option<char> {
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
    fn crc_is_ccitt_false() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
        assert_eq!(crc16_ccitt_false(b""), 0xFFFF);
    }

    #[test]
    fn a_dynamic_payload_matches_the_spec() {
        let payload = vietqr_payload(
            "970436",
            "0071000888888",
            Some(Vnd::new(150_000)),
            "LP23456789AB3",
        );
        assert_eq!(
            payload,
            "000201010212\
             38570010A0000007270127000697043601130071000888888\
             0208QRIBFTTA\
             5303704\
             5406150000\
             5802VN\
             62170813LP23456789AB3\
             63043461"
        );
    }

    #[test]
    fn a_static_payload_has_no_amount_or_empty_note() {
        let payload = vietqr_payload("970436", "0071000888888", None, "  ");
        assert_eq!(
            payload,
            "00020101021138570010A00000072701270006970436011300710008888880208QRIBFTTA\
             53037045802VN6304F9E4"
        );
        assert_eq!(
            vietqr_payload("970436", "0071000888888", Some(Vnd::new(0)), ""),
            payload
        );
    }

    #[test]
    fn instructions_carry_the_note_as_in_the_code() {
        let i = instructions(
            "970436",
            "0071000888888",
            "UBND XA AN BINH",
            Vnd::new(150_000),
            "Lệ phí LP23456789ABU",
        );
        assert_eq!(i.transfer_note, "Le phi LP23456789ABU");
        assert!(i.vietqr.contains("0820Le phi LP23456789ABU"));
        assert_eq!(find_payment_code(&i.transfer_note).unwrap().as_str(), CODE);
    }

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
        fn never_panics(note in "\\PC*", amount in any::<i64>()) {
            let _ = find_payment_code(&note);
            let _ = transfer_note(&note);
            let _ = vietqr_payload("970436", "0071000888888", Some(Vnd::new(amount)), &note);
        }
    }
}
