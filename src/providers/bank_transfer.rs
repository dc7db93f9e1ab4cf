//! Bank transfers over NAPAS 247: the VietQR code a payer scans, with the
//! note it carries ([`crate::domain::transfer_note`] has the rules of
//! notes, and of finding a payment code in one).
//!
//! The payload is EMVCo merchant-presented: fields of a 2-digit id, a
//! 2-digit length and a value, some nested, closed by a CRC-16/CCITT-FALSE.

use serde::Serialize;

use crate::domain::Vnd;
use crate::domain::transfer_note::transfer_note;

/// NAPAS's application id for VietQR.
const NAPAS_AID: &str = "A000000727";
/// Service code of a transfer to an account (not to a card).
const TO_ACCOUNT: &str = "QRIBFTTA";
/// ISO 4217 numeric code of the đồng.
const VND_CODE: &str = "704";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::transfer_note::find_payment_code;
    use proptest::prelude::*;

    /// A valid code, its check symbol computed by hand.
    const CODE: &str = "LP23456789ABU";

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

    proptest! {
        #[test]
        fn never_panics(note in "\\PC*", amount in any::<i64>()) {
            let _ = vietqr_payload("970436", "0071000888888", Some(Vnd::new(amount)), &note);
        }
    }
}
