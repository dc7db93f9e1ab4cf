//! Plain types and rules of the domain. Nothing here does I/O: a value that
//! exists has been parsed and is valid.

pub mod agency;
pub mod api_key;
pub mod audit;
pub mod dossier;
pub mod idempotency;
pub mod invoice;
pub mod money;
pub mod officer;
pub mod payment;
pub mod payment_code;
pub mod rates;
pub mod receipt;
pub mod refund;
pub mod settlement;
pub mod text;
pub mod timestamp;
pub mod transfer_note;
pub mod webhook;

pub use agency::{Agency, AgencyCode, AgencyLevel, Scope};
pub use api_key::{ApiKeySecret, Role};
pub use idempotency::IdempotencyKey;
pub use invoice::{Invoice, InvoiceStatus, NewInvoice};
pub use money::Vnd;
pub use payment_code::PaymentCode;
pub use timestamp::Timestamp;

/// A field that failed to parse, with why, in words a client developer can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> ValidationError {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }
}
