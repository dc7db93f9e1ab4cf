//! An invoice's money beyond what paid it, and what a refund of money that
//! paid it does: the invoice counts that much less, and either held money
//! of the same invoice covers what it then owes (it stays paid) or it
//! stops being paid. Read for the citizen's pages and the API; written in
//! the refund's own transaction.

use std::collections::HashMap;

use serde_json::json;

use super::audit::{self, Change};
use super::conn::Conn;
use super::exceptions;
use super::invoices::{AuditedInvoice, invoice_where};
use super::payments::{SELECT_PAYMENTS, payment_from_row};
use super::query::Placeholders;
use super::refunds::{SELECT_REFUNDS, refund_from_row};
use super::{Store, StoreError};
use crate::domain::audit::Actor;
use crate::domain::payment::{ExceptionKind, Payment, Resolution};
use crate::domain::refund::{HOLDS_REFUNDS, HeldMoney, HeldPayment, Refund, covering};
use crate::domain::{Invoice, InvoiceStatus, Timestamp, Vnd};

impl Store {
    /// What invoice `invoice_id` received beyond what paid it, and what
    /// was refunded: its payments that hold money or have refunds, each
    /// with its refunds (but rejected ones), oldest first.
    pub async fn held_money(&self, invoice_id: &str) -> Result<HeldMoney, StoreError> {
        let mut of = self.held_money_of(&[invoice_id.to_owned()]).await?;
        Ok(of.remove(invoice_id).unwrap_or_default())
    }

    /// [`Store::held_money`] of each of `invoice_ids` (at most a page of
    /// them), read together; an invoice with nothing to tell is left out.
    pub async fn held_money_of(
        &self,
        invoice_ids: &[String],
    ) -> Result<HashMap<String, HeldMoney>, StoreError> {
        let mut of: HashMap<String, HeldMoney> = HashMap::new();
        if invoice_ids.is_empty() {
            return Ok(of);
        }
        let mut placeholders = Placeholders::new(self.backend);
        let sql = format!(
            "{SELECT_PAYMENTS} WHERE p.invoice_id IN ({})
                 AND (p.exception_kind IS NOT NULL OR p.amount_held > 0 OR EXISTS
                     (SELECT 1 FROM refunds f WHERE f.payment_id = p.id AND f.status <> 'rejected'))
             ORDER BY p.id",
            placeholders.list(invoice_ids.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in invoice_ids {
            query = query.bind(id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let held: Vec<Payment> = rows
            .iter()
            .map(payment_from_row)
            .collect::<Result<_, _>>()?;
        if held.is_empty() {
            return Ok(of);
        }
        let mut placeholders = Placeholders::new(self.backend);
        let sql = format!(
            "{SELECT_REFUNDS} WHERE r.payment_id IN ({}) AND r.status <> 'rejected' ORDER BY r.id",
            placeholders.list(held.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for payment in &held {
            query = query.bind(&payment.id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        let refunds: Vec<Refund> = rows.iter().map(refund_from_row).collect::<Result<_, _>>()?;
        for payment in held {
            let Some(invoice_id) = payment.invoice_id.clone() else {
                continue;
            };
            let its = refunds
                .iter()
                .filter(|r| r.payment_id == payment.id)
                .cloned()
                .collect();
            of.entry(invoice_id)
                .or_default()
                .payments
                .push(HeldPayment::of(&payment, its));
        }
        Ok(of)
    }
}

/// Where a refund left the invoice of its payment.
#[derive(Debug, Clone, Copy)]
pub(super) struct InvoiceAfter {
    pub status: InvoiceStatus,
    pub amount_paid: Vnd,
}

/// What succeeded refund `refund` does to the invoice of `payment` when
/// `from_applied` of it had paid the invoice (read locked with `lock`):
/// the invoice counts that much less; if it was paid and then owes, the
/// first of its other payments whose held money (not spoken for by a
/// refund) covers what it owes is applied to it and it stays paid;
/// otherwise it stops being paid ([`InvoiceStatus::given_back`]).
pub(super) async fn give_back(
    conn: &mut Conn<'_>,
    lock: &str,
    actor: &Actor,
    refund: &Refund,
    payment: &Payment,
    from_applied: Vnd,
    now: Timestamp,
) -> Result<Option<InvoiceAfter>, StoreError> {
    let Some(invoice_id) = &payment.invoice_id else {
        return Ok(None);
    };
    let (invoice, path) = invoice_where(conn, "id", invoice_id, lock)
        .await?
        .ok_or(StoreError::NotFound)?;
    if from_applied.dong() == 0 {
        return Ok(Some(InvoiceAfter {
            status: invoice.status,
            amount_paid: invoice.amount_paid,
        }));
    }
    let reduced = Vnd::new((invoice.amount_paid.dong() - from_applied.dong()).max(0));
    let owed = Vnd::new(invoice.total.dong() - reduced.dong());
    let covered = if invoice.status == InvoiceStatus::Paid && owed.dong() > 0 {
        cover(conn, actor, &invoice, &path, refund, owed, now).await?
    } else {
        false
    };
    let after = Invoice {
        amount_paid: if covered { invoice.total } else { reduced },
        status: if covered || owed.dong() <= 0 {
            invoice.status
        } else {
            invoice.status.given_back()
        },
        updated_at: now,
        ..invoice.clone()
    };
    sqlx::query("UPDATE invoices SET amount_paid = $1, status = $2, updated_at = $3 WHERE id = $4")
        .bind(after.amount_paid.dong())
        .bind(after.status.as_str())
        .bind(now.to_stored())
        .bind(&invoice.id)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        actor,
        Change {
            action: "invoice.given_back",
            object_type: "invoice",
            object_id: &invoice.id,
            agency: Some((invoice.agency_code.as_str(), &path)),
            before: audit::state(&AuditedInvoice::from(&invoice)),
            after: audit::state(&AuditedInvoice::from(&after)),
            at: now,
        },
    )
    .await?;
    Ok(Some(InvoiceAfter {
        status: after.status,
        amount_paid: after.amount_paid,
    }))
}

/// Applies `owed` of the first of `invoice`'s held money that covers it
/// whole (after `refund` gave back money that had paid it), with the
/// payment's audit record; its exception is resolved as applied when
/// nothing of it stays held. False when nothing covers it.
async fn cover(
    conn: &mut Conn<'_>,
    actor: &Actor,
    invoice: &Invoice,
    agency_path: &str,
    refund: &Refund,
    owed: Vnd,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let sql = format!(
        "{SELECT_PAYMENTS} WHERE p.invoice_id = $1 AND p.id <> $2
             AND (p.exception_kind = 'overpaid' OR (p.exception_kind IS NULL AND p.amount_held > 0))
         ORDER BY p.id"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&invoice.id)
        .bind(&refund.payment_id)
        .fetch_all(&mut *conn)
        .await?;
    let candidates: Vec<Payment> = rows
        .iter()
        .map(payment_from_row)
        .collect::<Result<_, _>>()?;
    let mut available = Vec::new();
    let mut overpaid: HashMap<String, String> = HashMap::new();
    for candidate in &candidates {
        let open = super::refunds::open_exceptions(conn, &candidate.id).await?;
        if open.iter().any(|(_, kind)| HOLDS_REFUNDS.contains(kind)) {
            continue;
        }
        let Some((exception_id, _)) = open
            .iter()
            .find(|(_, kind)| *kind == ExceptionKind::Overpaid)
        else {
            // Its held money was dealt with (written off, confirmed).
            continue;
        };
        overpaid.insert(candidate.id.clone(), exception_id.clone());
        let spoken_for = super::refunds::spoken_for(conn, &candidate.id).await?;
        available.push((
            candidate.id.clone(),
            Vnd::new(candidate.held_amount().dong() - spoken_for.dong()),
        ));
    }
    let Some(chosen) = covering(owed, &available) else {
        return Ok(false);
    };
    let Some(payment) = candidates.iter().find(|p| p.id == chosen) else {
        return Ok(false);
    };
    let still_held = Vnd::new(payment.held_amount().dong() - owed.dong());
    sqlx::query("UPDATE payments SET exception_kind = NULL, amount_held = $1 WHERE id = $2")
        .bind(still_held.dong())
        .bind(&payment.id)
        .execute(&mut *conn)
        .await?;
    let exception_id = &overpaid[&payment.id];
    let note = format!(
        "{owed} đồng applied to invoice {} after refund {} gave back money that had paid it",
        invoice.id, refund.id
    );
    if still_held.dong() == 0 {
        exceptions::resolve_by(conn, actor, exception_id, Resolution::Applied, &note, now).await?;
    } else {
        sqlx::query("UPDATE payment_exceptions SET amount = $1 WHERE id = $2")
            .bind(still_held.dong())
            .bind(exception_id)
            .execute(&mut *conn)
            .await?;
    }
    audit::record(
        conn,
        actor,
        Change {
            action: "payment.applied",
            object_type: "payment",
            object_id: &payment.id,
            agency: Some((invoice.agency_code.as_str(), agency_path)),
            before: Some(json!({ "exception": payment.exception, "amount_held": payment.held_amount() })),
            after: Some(json!({ "exception": null, "applied": owed, "amount_held": still_held, "note": note })),
            at: now,
        },
    )
    .await?;
    Ok(true)
}
