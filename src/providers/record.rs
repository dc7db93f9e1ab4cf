//! What a provider reports, stored: the one path by which a verified
//! callback and a status query's answer reach the store, so that a payment
//! is recorded exactly once however lephi heard of it.

use super::{CallbackEvent, PaymentTarget, Verdict};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, PaymentSource};
use crate::domain::transfer_note::find_payment_code;
use crate::store::{IncomingPayment, PaymentFor, Store, StoreError};

/// Stores what `channel`'s provider reports, verified: a payment through
/// [`Store::record_payment`] (a transaction recorded before is
/// [`Verdict::AlreadyRecorded`]), a failure through
/// [`Store::attempt_failed`]. `source` says how lephi heard of a payment.
pub async fn record(
    store: &Store,
    actor: &Actor,
    channel: Channel,
    event: CallbackEvent,
    source: PaymentSource,
) -> Result<Verdict, StoreError> {
    match event {
        CallbackEvent::Paid(received) => {
            let code = match &received.target {
                PaymentTarget::TransferNote(note) => find_payment_code(note),
                PaymentTarget::Order(_) => None,
            };
            let paid_for = match &received.target {
                PaymentTarget::Order(order_ref) => PaymentFor::Order(order_ref),
                PaymentTarget::TransferNote(note) => PaymentFor::Transfer {
                    note,
                    code: code.as_ref(),
                    account_number: received.account_number.as_deref(),
                },
            };
            let recorded = store
                .record_payment(
                    actor,
                    &IncomingPayment {
                        channel: received.channel,
                        provider_txn_id: &received.provider_txn_id,
                        amount: received.amount,
                        paid_for,
                        paid_at: received.paid_at,
                        source,
                    },
                )
                .await?;
            Ok(match (recorded.payment.exception, recorded.new) {
                (None, true) => Verdict::Recorded,
                (None, false) => Verdict::AlreadyRecorded,
                (Some(ExceptionKind::UnknownOrder | ExceptionKind::WrongAccount), _) => {
                    Verdict::UnknownOrder
                }
                (Some(ExceptionKind::AmountMismatch), _) => Verdict::AmountMismatch,
                (Some(ExceptionKind::Overpaid | ExceptionKind::LatePayment), _) => {
                    Verdict::InvoiceClosed
                }
                // Reconciliation's and the janitor's findings are never a
                // payment's own exception; a payment stored with one was
                // recorded before.
                (
                    Some(
                        ExceptionKind::MissingPayment
                        | ExceptionKind::UnsettledPayment
                        | ExceptionKind::DuplicateLine
                        | ExceptionKind::UnknownDossier
                        | ExceptionKind::UnconfirmedAttempt
                        | ExceptionKind::RefundUnconfirmed,
                    ),
                    _,
                ) => Verdict::AlreadyRecorded,
            })
        }
        CallbackEvent::Failed {
            order_ref,
            provider_code,
            message,
        } => {
            let found = store
                .attempt_failed(actor, channel, &order_ref, &provider_code, &message)
                .await?;
            Ok(if found {
                Verdict::Noted
            } else {
                Verdict::UnknownOrder
            })
        }
        CallbackEvent::Pending { order_ref, .. } => {
            let found = store.attempt_exists(channel, &order_ref).await?;
            Ok(if found {
                Verdict::Noted
            } else {
                Verdict::UnknownOrder
            })
        }
        CallbackEvent::Ignored { .. } => Ok(Verdict::Noted),
    }
}
