//! What recording a payment writes beside the payment itself, the same
//! whichever path records it (a callback's, [`super::payments`]; a
//! statement's, [`super::recoveries`]): when it counts as made, the
//! invoice it pays, the finding that holds it, its audit records and its
//! events.

use serde::Serialize;
use serde_json::json;

use super::StoreError;
use super::audit::{self, Change};
use super::conn::Conn;
use super::events::{EventType, NewEvent};
use super::exceptions::Finding;
use super::invoices::{AuditedInvoice, expire_if_due};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, Payment, PaymentSource};
use crate::domain::{Invoice, InvoiceStatus, Timestamp, Vnd};

/// How a payment appears in its audit record and events.
#[derive(Serialize)]
struct PaymentState<'a> {
    channel: Channel,
    provider_txn_id: &'a str,
    amount: Vnd,
    invoice_id: Option<&'a str>,
    exception: Option<ExceptionKind>,
    excess: Vnd,
    source: PaymentSource,
}

/// `invoice` once `payment` is added to what it was paid: paid when
/// covered. Its receipt is the caller's to add.
pub(super) fn applied(
    invoice: &Invoice,
    payment: &Payment,
    now: Timestamp,
) -> Result<Invoice, StoreError> {
    let amount_paid = invoice
        .amount_paid
        .checked_add(payment.applied_amount())
        .ok_or_else(|| StoreError::corrupt("amount paid overflows"))?;
    let status = if amount_paid >= invoice.total {
        invoice.status.pay()?
    } else {
        invoice.status
    };
    Ok(Invoice {
        status,
        amount_paid,
        updated_at: now,
        ..invoice.clone()
    })
}

/// The audit record of `payment` applied to `invoice`, which it made
/// `after`, and when that is paid, the `invoice.paid` event.
pub(super) fn invoice_changed<'a>(
    (invoice, agency_path): (&'a Invoice, &'a str),
    after: &Invoice,
    payment: &Payment,
    now: Timestamp,
) -> (Change<'a>, Option<NewEvent<'a>>) {
    let paid = after.status == InvoiceStatus::Paid;
    let change = Change {
        action: if paid {
            "invoice.paid"
        } else {
            "invoice.part_paid"
        },
        object_type: "invoice",
        object_id: &invoice.id,
        agency: Some((invoice.agency_code.as_str(), agency_path)),
        before: audit::state(&AuditedInvoice::from(invoice)),
        after: audit::state(&AuditedInvoice::from(after)),
        at: now,
    };
    let event = paid.then(|| NewEvent {
        agency_code: Some(invoice.agency_code.as_str()),
        event_type: EventType::InvoicePaid,
        data: json!({
            "invoice_id": invoice.id,
            "payment_code": invoice.payment_code.as_str(),
            "agency_code": invoice.agency_code,
            "dossier_code": invoice.dossier_code,
            "procedure_code": invoice.procedure_code,
            "total": invoice.total,
            "amount_paid": after.amount_paid,
            "channel": payment.channel,
            "payment_id": payment.id,
            "payment_source": payment.source,
            "paid_at": payment.paid_at.unwrap_or(now),
        }),
    });
    (change, event)
}

/// The finding that holds `payment` as a `kind` exception, `owed` being
/// what its invoice still owed; the dossier system hears of it.
pub(super) fn held<'a>(
    payment: &'a Payment,
    kind: ExceptionKind,
    owed: Option<Vnd>,
    agency: Option<(&'a str, &'a str)>,
) -> Finding<'a> {
    Finding {
        kind,
        payment_id: Some(&payment.id),
        invoice_id: payment.invoice_id.as_deref(),
        agency,
        amount: Some(payment.amount),
        detail: kind.describe(payment.amount, owed),
        settlement_line: None,
        dossier_code: None,
        tell_dossier_system: true,
    }
}

/// The finding that holds what applied `payment` brought beyond the
/// `owed` it paid (a bank transfer over the total), for refund.
pub(super) fn excess_held<'a>(
    payment: &'a Payment,
    owed: Vnd,
    agency: Option<(&'a str, &'a str)>,
) -> Finding<'a> {
    Finding {
        kind: ExceptionKind::Overpaid,
        payment_id: Some(&payment.id),
        invoice_id: payment.invoice_id.as_deref(),
        agency,
        amount: Some(payment.excess),
        detail: format!(
            "{} đồng received where {owed} đồng was owed: the invoice is paid and {} đồng beyond it is held",
            payment.amount, payment.excess
        ),
        settlement_line: None,
        dossier_code: None,
        tell_dossier_system: true,
    }
}

/// When a payment counts as made, for whether its invoice was still open:
/// when the provider says it was made, if that was after the invoice was
/// issued (give or take the providers' clocks and whole-second times) and
/// not in the future; otherwise now. So a payment made before the invoice
/// expired counts even when its callback comes after, as long as the
/// invoice is still stored open.
pub(super) fn made_at(invoice: &Invoice, paid_at: Option<Timestamp>, now: Timestamp) -> Timestamp {
    let issued = invoice
        .created_at
        .plus(-time::Duration::minutes(5))
        .unwrap_or(invoice.created_at);
    paid_at
        .filter(|at| *at >= issued && *at <= now)
        .unwrap_or(now)
}

/// The invoice as a payment of `amount` on `channel`, made at `made`,
/// finds it when the invoice was stored `expired` (by the expiry task, or
/// a read) after the payment was made: open for it, if the payment pays
/// what is still owed, so that it becomes paid (never open again). A
/// payment made before the invoice expired counts, however late its
/// callback. `None` when it does not apply.
fn made_before_expiry(
    invoice: &Invoice,
    made: Timestamp,
    amount: Vnd,
    channel: Channel,
) -> Option<Invoice> {
    if invoice.status != InvoiceStatus::Expired || made >= invoice.expires_at {
        return None;
    }
    let owed = invoice.total.checked_sub(invoice.amount_paid)?;
    let pays = amount == owed || (channel == Channel::BankTransfer && amount.dong() > owed.dong());
    pays.then(|| Invoice {
        status: InvoiceStatus::Open,
        ..invoice.clone()
    })
}

/// What a payment of `amount` on `channel`, which the provider says was
/// made at `paid_at`, finds of `invoice` (of agency path `agency_path`):
/// open if it was open when the payment was made ([`made_at`]); open too
/// if it was stored expired after that and the payment pays it, unless
/// `may_revive` is false (money on another agency's account); otherwise as
/// stored, its expiry stored first if it is past due. The one rule both
/// recording paths (a callback's, a statement's) apply.
#[allow(clippy::too_many_arguments)]
pub(super) async fn as_found(
    conn: &mut Conn<'_>,
    actor: &Actor,
    invoice: Invoice,
    agency_path: &str,
    paid_at: Option<Timestamp>,
    (amount, channel): (Vnd, Channel),
    may_revive: bool,
    now: Timestamp,
) -> Result<Invoice, StoreError> {
    let made = made_at(&invoice, paid_at, now);
    if invoice.status_at(made) == InvoiceStatus::Open {
        return Ok(invoice);
    }
    if may_revive && let Some(open) = made_before_expiry(&invoice, made, amount, channel) {
        return Ok(open);
    }
    expire_if_due(conn, actor, invoice, agency_path, now).await
}

/// The `payment.recorded` audit record of `payment`.
pub(super) fn recorded<'a>(
    payment: &'a Payment,
    agency: Option<(&'a str, &'a str)>,
    now: Timestamp,
) -> Change<'a> {
    Change {
        action: "payment.recorded",
        object_type: "payment",
        object_id: &payment.id,
        agency,
        before: None,
        after: audit::state(&PaymentState {
            channel: payment.channel,
            provider_txn_id: &payment.provider_txn_id,
            amount: payment.amount,
            invoice_id: payment.invoice_id.as_deref(),
            exception: payment.exception,
            excess: payment.excess,
            source: payment.source,
        }),
        at: now,
    }
}

/// The `payment.received` event of `payment`, for `invoice`. Money on
/// another agency's account (`wrong_account`) does not tell that agency
/// about the invoice's dossier.
pub(super) fn received<'a>(
    payment: &Payment,
    agency: Option<(&'a str, &'a str)>,
    invoice: Option<&Invoice>,
    wrong_account: bool,
) -> NewEvent<'a> {
    NewEvent {
        agency_code: agency.map(|(code, _)| code),
        event_type: EventType::PaymentReceived,
        data: payment_event_data(payment, invoice.filter(|_| !wrong_account)),
    }
}

/// The `payment.received` event's data.
pub(super) fn payment_event_data(
    payment: &Payment,
    invoice: Option<&Invoice>,
) -> serde_json::Value {
    json!({
        "payment_id": payment.id,
        "invoice_id": payment.invoice_id,
        "dossier_code": invoice.map(|i| i.dossier_code.as_str()),
        "agency_code": payment.agency_code,
        "channel": payment.channel,
        "provider_txn_id": payment.provider_txn_id,
        "amount": payment.amount,
        "paid_at": payment.paid_at,
        "exception": payment.exception,
        "amount_held": payment.held_amount(),
        // `statement` when recovered from a settlement statement's line
        // (no callback came): an officer still has to confirm it.
        "source": payment.source,
    })
}
