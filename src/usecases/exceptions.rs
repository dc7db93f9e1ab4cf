//! An officer's decision on an exception.

use crate::domain::audit::Actor;
use crate::domain::payment::{ExceptionStatus, PaymentException, Resolution};
use crate::domain::{Scope, ValidationError, text};
use crate::error::ApiError;
use crate::store::{Decision, Store};

/// Checks an officer's decision on exception `id` and records it: what
/// both the API and the finance console do.
pub async fn resolve(
    store: &Store,
    actor: &Actor,
    scope: &Scope,
    id: &str,
    resolution: &str,
    note: &str,
    payment_id: Option<&str>,
) -> Result<PaymentException, ApiError> {
    if resolution == Resolution::RefundRequired.as_str() {
        return Err(ValidationError::new(
            "resolution",
            "money is given back by a refund: POST /v1/payments/{payment_id}/refunds, which resolves the exception when it succeeds",
        )
        .into());
    }
    let resolution = Resolution::parse_officer(resolution).ok_or_else(|| {
        ValidationError::new(
            "resolution",
            "must be one of matched_manually, written_off, confirmed",
        )
    })?;
    let note = text::bounded("note", note, 1_000)?;
    let payment_id = payment_id
        .map(|id| text::code("payment_id", id, 64))
        .transpose()?;
    // An exception's kind never changes: what fits it is checked before
    // the write, which checks that it is still open.
    let found = store.get_exception(scope, id).await?;
    let fitting = Resolution::fitting(found.kind);
    if found.status == ExceptionStatus::Open && !fitting.contains(&resolution) {
        let names: Vec<&str> = fitting.iter().map(|r| r.as_str()).collect();
        return Err(ValidationError::new(
            "resolution",
            format!(
                "does not fit a {} exception: one of {}",
                found.kind.as_str(),
                names.join(", ")
            ),
        )
        .into());
    }
    if resolution == Resolution::MatchedManually && payment_id.is_none() {
        return Err(ValidationError::new(
            "payment_id",
            "name the payment the money was matched to",
        )
        .into());
    }
    Ok(store
        .resolve_exception(
            actor,
            scope,
            id,
            &Decision {
                resolution,
                note: &note,
                payment_id: payment_id.as_deref(),
            },
        )
        .await?)
}
