//! The one error type at the HTTP edge: a stable `code`, a message for
//! people, optional `details`, and the HTTP status. Causes of server-side
//! failures are logged in full and never sent to clients.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::json;

use crate::domain::ValidationError;
use crate::store::StoreError;

/// Declares the error codes with their wire names.
macro_rules! error_codes {
    ($($variant:ident => $name:literal,)+) => {
        /// The stable codes clients can rely on; `openapi.yaml` lists the same.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }
        }
    };
}

error_codes! {
    Unauthorized => "unauthorized",
    Forbidden => "forbidden",
    NotFound => "not_found",
    RouteNotFound => "route_not_found",
    MethodNotAllowed => "method_not_allowed",
    ValidationFailed => "validation_failed",
    MalformedJson => "malformed_json",
    InvalidQuery => "invalid_query",
    InvalidBody => "invalid_body",
    PayloadTooLarge => "payload_too_large",
    UnsupportedMediaType => "unsupported_media_type",
    IdempotencyKeyMissing => "idempotency_key_missing",
    IdempotencyKeyInvalid => "idempotency_key_invalid",
    IdempotencyKeyReused => "idempotency_key_reused",
    DossierHasOpenInvoice => "dossier_has_open_invoice",
    InvalidState => "invalid_state",
    AgencyNotFound => "agency_not_found",
    AgencyExists => "agency_exists",
    ImportRefused => "import_refused",
    TooManyImports => "too_many_imports",
    StorageFull => "storage_full",
    ChannelUnavailable => "channel_unavailable",
    ProviderError => "provider_error",
    ReceiptNumberTaken => "receipt_number_taken",
    ExceptionResolved => "exception_resolved",
    NotRefundable => "not_refundable",
    RefundOverLeft => "refund_over_left",
    SameOfficer => "same_officer",
    BankAccountTaken => "bank_account_taken",
    NotReady => "not_ready",
    Unavailable => "unavailable",
    InternalError => "internal_error",
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub details: serde_json::Value,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'static str,
    message: &'a str,
    details: &'a serde_json::Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = details;
        self
    }

    pub fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this key's role may not do this",
        )
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("{what} was not found"),
        )
    }

    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn validation(err: ValidationError) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            err.to_string(),
        )
        .with_details(json!({ "field": err.field }))
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge,
            format!("the request body is over {limit} bytes"),
        )
        .with_details(json!({ "limit_bytes": limit }))
    }

    /// A failure that is ours, not the client's: the cause goes to the log.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            "something went wrong on our side; it has been logged",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(Body {
            code: self.code.as_str(),
            message: &self.message,
            details: &self.details,
        })
    }
}

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        ApiError::validation(err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => ApiError::not_found("the object"),
            StoreError::AgencyNotFound(code) => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::AgencyNotFound,
                format!("agency {code} was not found"),
            )
            .with_details(json!({ "agency_code": code })),
            StoreError::AgencyExists(code) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AgencyExists,
                format!("agency {code} already exists"),
            )
            .with_details(json!({ "agency_code": code })),
            StoreError::DossierHasOpenInvoice { invoice_id } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::DossierHasOpenInvoice,
                format!("the dossier already has an open invoice, {invoice_id}"),
            )
            .with_details(json!({ "invoice_id": invoice_id })),
            StoreError::IdempotencyKeyReused => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was already used with a different request body",
            ),
            StoreError::IllegalTransition(transition) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidState,
                transition.to_string(),
            )
            .with_details(json!({ "status": transition.from })),
            StoreError::InvoiceNotOpen(status) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidState,
                format!(
                    "the invoice is {}: only an open invoice accepts payment",
                    status.as_str()
                ),
            )
            .with_details(json!({ "status": status.as_str() })),
            StoreError::ChannelUnavailable { channel, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ChannelUnavailable,
                message,
            )
            .with_details(json!({ "channel": channel })),
            StoreError::ReceiptNumberTaken { payment_id } => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ReceiptNumberTaken,
                format!(
                    "this receipt number was already recorded this year for another payment, {payment_id}"
                ),
            )
            .with_details(json!({ "payment_id": payment_id })),
            StoreError::ExceptionResolved => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ExceptionResolved,
                "the exception is already resolved; its resolution stands",
            ),
            StoreError::NotRefundable(refused) => {
                use crate::domain::refund::NotRefundable;
                let message = refused.to_string();
                match refused {
                    NotRefundable::OverWhatIsLeft { left } => ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        ErrorCode::RefundOverLeft,
                        message,
                    )
                    .with_details(json!({ "left": left })),
                    NotRefundable::StillChecked(kind) => ApiError::new(
                        StatusCode::CONFLICT,
                        ErrorCode::NotRefundable,
                        message,
                    )
                    .with_details(json!({ "reason": "still_checked", "exception_kind": kind })),
                }
            }
            StoreError::RefundMove(illegal) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidState,
                illegal.to_string(),
            )
            .with_details(json!({ "status": illegal.from })),
            StoreError::ImporterResolves => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::SameOfficer,
                "a payment recovered from a statement is confirmed by another officer than the one who imported it",
            ),
            StoreError::BankAccountTaken => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::BankAccountTaken,
                "the account already receives for an agency outside this key's scope: one account is shared only within one scope",
            ),
            StoreError::SameOfficer => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::SameOfficer,
                "a refund is approved or rejected by another officer than the one who asked for it",
            ),
            StoreError::RefundThroughProvider(channel) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::InvalidState,
                format!("a {channel} refund goes back through the provider, not by hand"),
            )
            .with_details(json!({ "channel": channel })),
            StoreError::Invalid(err) => ApiError::validation(err),
            StoreError::ImportRefused { line, message } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ImportRefused,
                format!("line {line}: {message}; nothing was imported"),
            )
            .with_details(json!({ "line": line, "reason": message })),
            StoreError::ImportedInWiderScope => ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "this statement was imported before by a key of a wider scope than this one; \
                 only such a key sees its summary",
            ),
            StoreError::TooManyImports { limit } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::TooManyImports,
                format!(
                    "this key already has {limit} imports queued or running; \
                     send this file when one of them has ended"
                ),
            )
            .with_details(json!({ "limit": limit })),
            StoreError::Contended => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "what this request depends on kept changing under it; retry shortly",
            ),
            err if err.is_storage_full() => {
                tracing::error!(error = %error_chain(&err), "the database has no room to write");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageFull,
                    "the service has no room to store this request; nothing was changed: retry later",
                )
            }
            StoreError::Database(sqlx::Error::PoolTimedOut) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the service is busy; retry shortly",
            ),
            err @ (StoreError::Corrupt(_)
            | StoreError::ClaimLost
            | StoreError::Migration(_)
            | StoreError::Database(_)
            | StoreError::ReceiptSeriesFull { .. }) => {
                ApiError::internal(&error_chain(&err))
            }
        }
    }
}

/// An error and all its causes on one line, for the log.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(err: StoreError) -> (StatusCode, &'static str) {
        let api = ApiError::from(err);
        (api.status, api.code.as_str())
    }

    #[test]
    fn a_request_the_store_could_not_complete_for_now_is_asked_to_retry() {
        assert_eq!(
            answered(StoreError::Contended),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(
            answered(StoreError::Database(sqlx::Error::PoolTimedOut)),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        );
        assert_eq!(
            answered(StoreError::Corrupt("a row".into())),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        );
    }

    /// A database error with `code`, as the drivers report one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "(code: {})", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "refused"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn a_write_refused_for_want_of_room_is_storage_full_on_either_backend() {
        let refused = |code| StoreError::Database(sqlx::Error::Database(Box::new(Coded(code))));
        // SQLite's SQLITE_FULL, and PostgreSQL's disk_full.
        for code in ["13", "53100"] {
            assert_eq!(
                answered(refused(code)),
                (StatusCode::SERVICE_UNAVAILABLE, "storage_full"),
                "{code}"
            );
        }
        // A unique violation, SQLITE_BUSY: not a matter of room.
        for code in ["23505", "5", "2067"] {
            assert_eq!(
                answered(refused(code)),
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
                "{code}"
            );
        }
    }
}
