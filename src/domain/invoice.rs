//! Invoices: a payment request for one dossier's fee lines.

use serde::{Deserialize, Serialize};

use super::receipt::Receipt;
use super::{AgencyCode, PaymentCode, Timestamp, ValidationError, Vnd, text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeeKind {
    /// A charge for a public service (phí).
    Phi,
    /// An administrative fee (lệ phí).
    LePhi,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeLine {
    pub kind: FeeKind,
    pub description: String,
    pub amount: Vnd,
}

impl FeeLine {
    pub const MAX_DESCRIPTION: usize = 500;

    pub fn parse(
        index: usize,
        kind: FeeKind,
        description: &str,
        amount: Vnd,
    ) -> Result<FeeLine, ValidationError> {
        let field = |name: &str| format!("lines[{index}].{name}");
        let description = text::bounded(&field("description"), description, Self::MAX_DESCRIPTION)?;
        if amount.dong() <= 0 {
            return Err(ValidationError::new(
                field("amount"),
                "must be a positive number of đồng",
            ));
        }
        Ok(FeeLine {
            kind,
            description,
            amount,
        })
    }
}

/// Who pays. The id number (CCCD or passport) is kept in full for receipts
/// and shown masked everywhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payer {
    pub name: String,
    pub id_number: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// A phone number as searched, in its national form (`0912345678`):
/// spaces, dots, dashes and brackets dropped, and `+84` or `84` before a
/// 9-digit number read as `0`. None when `text` is no phone number.
pub fn national_phone(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+').unwrap_or(&compact);
    if !(9..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.strip_prefix("84") {
        Some(rest) if rest.len() == 9 => format!("0{rest}"),
        _ => digits.to_owned(),
    })
}

impl Payer {
    pub const MAX_NAME: usize = 200;

    /// Whether the payer's data was erased at the end of its retention
    /// (an invoice is never issued without a name).
    pub fn is_erased(&self) -> bool {
        self.name.is_empty()
    }

    pub fn parse(
        name: &str,
        id_number: Option<&str>,
        phone: Option<&str>,
        email: Option<&str>,
    ) -> Result<Payer, ValidationError> {
        let name = text::bounded("payer.name", name, Self::MAX_NAME)?;
        let id_number = id_number
            .map(|id| {
                let id = id.trim().to_ascii_uppercase();
                let valid =
                    (6..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
                if valid {
                    Ok(id)
                } else {
                    Err(ValidationError::new(
                        "payer.id_number",
                        "must be 6 to 20 letters and digits (CCCD or passport number)",
                    ))
                }
            })
            .transpose()?;
        let phone = phone
            .map(|phone| {
                let compact: String = phone
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '.' | '-'))
                    .collect();
                let digits = compact.strip_prefix('+').unwrap_or(&compact);
                let valid =
                    (9..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
                if valid {
                    Ok(compact)
                } else {
                    Err(ValidationError::new(
                        "payer.phone",
                        "must be a phone number of 9 to 15 digits, optionally starting with +",
                    ))
                }
            })
            .transpose()?;
        let email = email
            .map(|email| {
                let email = email.trim();
                let valid = email.len() <= 254
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                    && email.split_once('@').is_some_and(|(local, domain)| {
                        !local.is_empty() && domain.contains('.') && !domain.contains('@')
                    });
                if valid {
                    Ok(email.to_owned())
                } else {
                    Err(ValidationError::new(
                        "payer.email",
                        "must be an email address",
                    ))
                }
            })
            .transpose()?;
        Ok(Payer {
            name,
            id_number,
            phone,
            email,
        })
    }

    /// The id number with all but its last four characters hidden.
    pub fn masked_id_number(&self) -> Option<String> {
        self.id_number.as_deref().map(mask_id_number)
    }
}

pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    let shown = chars.len().saturating_sub(4);
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < shown { '*' } else { c })
        .collect()
}

/// The limits an invoice must respect, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceLimits {
    pub max_total: Vnd,
    pub max_lines: usize,
    pub default_validity: time::Duration,
    pub max_validity: time::Duration,
}

/// An invoice to issue, fully checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    pub dossier_code: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub agency_code: AgencyCode,
    pub payer: Payer,
    pub lines: Vec<FeeLine>,
    pub total: Vnd,
    /// When the request was accepted: the invoice's creation time, from
    /// which its default expiry counts.
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The fields of an invoice request before they are checked.
pub struct InvoiceDraft<'a> {
    pub dossier_code: &'a str,
    pub procedure_code: &'a str,
    pub procedure_name: &'a str,
    pub agency_code: &'a str,
    pub payer: Payer,
    pub lines: Vec<FeeLine>,
    pub expires_at: Option<Timestamp>,
}

impl NewInvoice {
    pub fn parse(
        draft: InvoiceDraft<'_>,
        limits: &InvoiceLimits,
        now: Timestamp,
    ) -> Result<NewInvoice, ValidationError> {
        let dossier_code = text::bounded("dossier_code", draft.dossier_code, 100)?;
        let procedure_code = text::code("procedure_code", draft.procedure_code, 50)?;
        let procedure_name = text::bounded("procedure_name", draft.procedure_name, 500)?;
        let agency_code = AgencyCode::parse("agency_code", draft.agency_code)?;
        if draft.lines.is_empty() || draft.lines.len() > limits.max_lines {
            return Err(ValidationError::new(
                "lines",
                format!("must have 1 to {} fee lines", limits.max_lines),
            ));
        }
        let total = draft
            .lines
            .iter()
            .try_fold(Vnd::ZERO, |sum, line| sum.checked_add(line.amount))
            .filter(|total| *total <= limits.max_total)
            .ok_or_else(|| {
                ValidationError::new(
                    "lines",
                    format!("the total must be at most {} đồng", limits.max_total),
                )
            })?;
        let latest = now.plus(limits.max_validity);
        let expires_at = match draft.expires_at {
            Some(at) if at <= now => {
                return Err(ValidationError::new("expires_at", "must be in the future"));
            }
            Some(at) if Some(at) > latest => {
                return Err(ValidationError::new(
                    "expires_at",
                    format!("must be within {} days", limits.max_validity.whole_days()),
                ));
            }
            Some(at) => at,
            None => now
                .plus(limits.default_validity)
                .ok_or_else(|| ValidationError::new("expires_at", "is out of range"))?,
        };
        Ok(NewInvoice {
            dossier_code,
            procedure_code,
            procedure_name,
            agency_code,
            payer: draft.payer,
            lines: draft.lines,
            total,
            issued_at: now,
            expires_at,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Paid,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an invoice that is {from} cannot become {to}")]
pub struct IllegalTransition {
    pub from: &'static str,
    pub to: &'static str,
}

impl InvoiceStatus {
    pub fn parse(value: &str) -> Option<InvoiceStatus> {
        match value {
            "open" => Some(InvoiceStatus::Open),
            "paid" => Some(InvoiceStatus::Paid),
            "cancelled" => Some(InvoiceStatus::Cancelled),
            "expired" => Some(InvoiceStatus::Expired),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Cancelled => "cancelled",
            InvoiceStatus::Expired => "expired",
        }
    }

    /// Status only moves forward, and only out of `open`.
    fn leave_open(self, to: InvoiceStatus) -> Result<InvoiceStatus, IllegalTransition> {
        match self {
            InvoiceStatus::Open => Ok(to),
            from => Err(IllegalTransition {
                from: from.as_str(),
                to: to.as_str(),
            }),
        }
    }

    pub fn cancel(self) -> Result<InvoiceStatus, IllegalTransition> {
        self.leave_open(InvoiceStatus::Cancelled)
    }

    pub fn expire(self) -> Result<InvoiceStatus, IllegalTransition> {
        self.leave_open(InvoiceStatus::Expired)
    }

    pub fn pay(self) -> Result<InvoiceStatus, IllegalTransition> {
        self.leave_open(InvoiceStatus::Paid)
    }

    /// The status of an invoice once money that paid it went back and
    /// left it owing, with nothing held to cover it: a paid invoice stops
    /// being paid and is cancelled (it takes no more payment; the dossier
    /// system issues a new invoice if the dossier is to be paid again); an
    /// open one stays open for what it owes again.
    pub fn given_back(self) -> InvoiceStatus {
        match self {
            InvoiceStatus::Paid => InvoiceStatus::Cancelled,
            other => other,
        }
    }
}

/// An issued invoice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: String,
    pub payment_code: PaymentCode,
    pub status: InvoiceStatus,
    pub total: Vnd,
    pub amount_paid: Vnd,
    pub agency_code: AgencyCode,
    pub dossier_code: String,
    pub procedure_code: String,
    pub procedure_name: String,
    pub payer: Payer,
    pub lines: Vec<FeeLine>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub updated_at: Timestamp,
    /// Issued once, in the transaction that makes the invoice paid.
    pub receipt: Option<Receipt>,
}

impl Invoice {
    /// The status as of `now`: an open invoice past its expiry reads as
    /// expired even before the expiry task has stored it.
    pub fn status_at(&self, now: Timestamp) -> InvoiceStatus {
        if self.status == InvoiceStatus::Open && self.expires_at <= now {
            InvoiceStatus::Expired
        } else {
            self.status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> InvoiceLimits {
        InvoiceLimits {
            max_total: Vnd::new(1_000_000),
            max_lines: 3,
            default_validity: time::Duration::days(7),
            max_validity: time::Duration::days(30),
        }
    }

    fn line(amount: i64) -> FeeLine {
        FeeLine {
            kind: FeeKind::LePhi,
            description: "Lệ phí".into(),
            amount: Vnd::new(amount),
        }
    }

    fn draft(lines: Vec<FeeLine>, expires_at: Option<Timestamp>) -> InvoiceDraft<'static> {
        InvoiceDraft {
            dossier_code: "000.00.01.H26-261128-0001",
            procedure_code: "1.004227",
            procedure_name: "Cấp giấy phép",
            agency_code: "H26",
            payer: Payer::parse("Nguyễn Văn A", Some("001099012345"), None, None).unwrap(),
            lines,
            expires_at,
        }
    }

    #[test]
    fn totals_and_default_expiry() {
        let now = Timestamp::now();
        let invoice =
            NewInvoice::parse(draft(vec![line(100), line(250)], None), &limits(), now).unwrap();
        assert_eq!(invoice.total, Vnd::new(350));
        assert_eq!(
            invoice.expires_at,
            now.plus(time::Duration::days(7)).unwrap()
        );
    }

    #[test]
    fn refuses_bad_totals_and_expiries() {
        let now = Timestamp::now();
        let over = NewInvoice::parse(
            draft(vec![line(600_000), line(400_001)], None),
            &limits(),
            now,
        );
        assert_eq!(over.unwrap_err().field, "lines");
        let overflow =
            NewInvoice::parse(draft(vec![line(i64::MAX), line(1)], None), &limits(), now);
        assert_eq!(overflow.unwrap_err().field, "lines");
        let empty = NewInvoice::parse(draft(vec![], None), &limits(), now);
        assert_eq!(empty.unwrap_err().field, "lines");
        let many = NewInvoice::parse(draft(vec![line(1); 4], None), &limits(), now);
        assert_eq!(many.unwrap_err().field, "lines");
        let past = NewInvoice::parse(draft(vec![line(1)], Some(now)), &limits(), now);
        assert_eq!(past.unwrap_err().field, "expires_at");
        let far = now.plus(time::Duration::days(31));
        let far = NewInvoice::parse(draft(vec![line(1)], far), &limits(), now);
        assert_eq!(far.unwrap_err().field, "expires_at");
    }

    #[test]
    fn fee_lines_must_be_positive() {
        assert!(FeeLine::parse(0, FeeKind::Phi, "x", Vnd::new(0)).is_err());
        assert!(FeeLine::parse(0, FeeKind::Phi, "x", Vnd::new(-5)).is_err());
        assert_eq!(
            FeeLine::parse(2, FeeKind::Phi, "", Vnd::new(5))
                .unwrap_err()
                .field,
            "lines[2].description"
        );
    }

    #[test]
    fn status_moves_only_forward_out_of_open() {
        use InvoiceStatus::*;
        assert_eq!(Open.cancel(), Ok(Cancelled));
        assert_eq!(Open.expire(), Ok(Expired));
        assert_eq!(Open.pay(), Ok(Paid));
        for from in [Paid, Cancelled, Expired] {
            assert!(from.cancel().is_err());
            assert!(from.expire().is_err());
            assert!(from.pay().is_err());
        }
    }

    #[test]
    fn id_numbers_are_masked_to_their_last_four() {
        assert_eq!(mask_id_number("001099012345"), "********2345");
        assert_eq!(mask_id_number("1234"), "1234");
        let payer = Payer::parse(
            "A",
            Some(" b1234567 "),
            Some("+84 912 345 678"),
            Some("a@b.vn"),
        )
        .unwrap();
        assert_eq!(payer.masked_id_number().as_deref(), Some("****4567"));
        assert_eq!(payer.phone.as_deref(), Some("+84912345678"));
    }

    #[test]
    fn a_phone_is_searched_however_it_is_written() {
        for written in [
            "0912 345 678",
            "0912.345.678",
            "+84 912 345 678",
            "84912345678",
            "(+84) 912-345-678",
        ] {
            assert_eq!(
                national_phone(written).as_deref(),
                Some("0912345678"),
                "{written}"
            );
        }
        assert_eq!(national_phone("LP23456789AB3"), None);
        assert_eq!(national_phone("12345"), None);
    }

    #[test]
    fn payer_fields_are_checked() {
        assert_eq!(
            Payer::parse("", None, None, None).unwrap_err().field,
            "payer.name"
        );
        assert_eq!(
            Payer::parse("A", Some("12"), None, None).unwrap_err().field,
            "payer.id_number"
        );
        assert_eq!(
            Payer::parse("A", None, Some("call me"), None)
                .unwrap_err()
                .field,
            "payer.phone"
        );
        assert_eq!(
            Payer::parse("A", None, None, Some("nobody"))
                .unwrap_err()
                .field,
            "payer.email"
        );
    }
}
