//! What must hold after any run, read straight from the database: every
//! distinct transaction sent is one payment, no invoice is paid twice, and
//! each payment (and each paid invoice) has exactly one event.

use anyhow::bail;
use sqlx::AnyPool;

/// The database's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub payments: i64,
    distinct: i64,
    paid_twice: i64,
    overpaid: i64,
    pub paid_invoices: i64,
    applied: i64,
    exceptions: i64,
    payment_events: i64,
    paid_events: i64,
    receipts: i64,
}

async fn count(pool: &AnyPool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await?)
}

/// Reads the counts the invariants are about.
pub async fn counts(pool: &AnyPool) -> anyhow::Result<Counts> {
    Ok(Counts {
        payments: count(pool, "SELECT COUNT(*) FROM payments").await?,
        distinct: count(
            pool,
            "SELECT COUNT(*) FROM (SELECT DISTINCT channel, provider_txn_id FROM payments) t",
        )
        .await?,
        paid_twice: count(
            pool,
            "SELECT COUNT(*) FROM (SELECT invoice_id FROM payments
                 WHERE invoice_id IS NOT NULL AND exception_kind IS NULL
                 GROUP BY invoice_id HAVING COUNT(*) > 1) t",
        )
        .await?,
        overpaid: count(
            pool,
            "SELECT COUNT(*) FROM invoices WHERE amount_paid > total",
        )
        .await?,
        paid_invoices: count(pool, "SELECT COUNT(*) FROM invoices WHERE status = 'paid'").await?,
        applied: count(
            pool,
            "SELECT COUNT(*) FROM payments WHERE invoice_id IS NOT NULL AND exception_kind IS NULL",
        )
        .await?,
        exceptions: count(
            pool,
            "SELECT COUNT(*) FROM payments WHERE exception_kind IS NOT NULL",
        )
        .await?,
        payment_events: count(
            pool,
            "SELECT COUNT(*) FROM outbox_events WHERE type = 'payment.received'",
        )
        .await?,
        paid_events: count(
            pool,
            "SELECT COUNT(*) FROM outbox_events WHERE type = 'invoice.paid'",
        )
        .await?,
        receipts: count(pool, "SELECT COUNT(*) FROM receipts").await?,
    })
}

/// Checks the invariants over what changed since `before`, given how many
/// distinct transactions were sent since, each exactly paying an open
/// invoice, and how many payments the bench wrote itself (a statement's,
/// straight into the database); fails naming each one broken.
pub fn check(
    before: &Counts,
    after: &Counts,
    transactions_sent: i64,
    written: i64,
) -> anyhow::Result<()> {
    let payments = after.payments - before.payments - written;
    let paid_invoices = after.paid_invoices - before.paid_invoices;
    let mut broken = Vec::new();
    if payments != transactions_sent {
        broken.push(format!(
            "{payments} payments for {transactions_sent} distinct transactions sent"
        ));
    }
    if after.distinct != after.payments {
        broken.push(format!(
            "{} payments but {} distinct transactions",
            after.payments, after.distinct
        ));
    }
    if after.paid_twice > 0 {
        broken.push(format!(
            "{} invoices have two applied payments",
            after.paid_twice
        ));
    }
    if after.overpaid > 0 {
        broken.push(format!(
            "{} invoices record more paid than owed",
            after.overpaid
        ));
    }
    let exceptions = after.exceptions - before.exceptions;
    if exceptions > 0 {
        broken.push(format!(
            "{exceptions} payments were held as exceptions, though each paid an open invoice exactly"
        ));
    }
    let applied = after.applied - before.applied;
    if applied != paid_invoices {
        broken.push(format!(
            "{applied} applied payments but {paid_invoices} newly paid invoices"
        ));
    }
    let payment_events = after.payment_events - before.payment_events;
    if payment_events != payments {
        broken.push(format!(
            "{payment_events} payment.received events for {payments} payments"
        ));
    }
    let paid_events = after.paid_events - before.paid_events;
    let receipts = after.receipts - before.receipts;
    if paid_events != paid_invoices || receipts != paid_invoices {
        broken.push(format!(
            "{paid_invoices} paid invoices, {paid_events} invoice.paid events, {receipts} receipts"
        ));
    }
    if broken.is_empty() {
        Ok(())
    } else {
        bail!("INVARIANTS BROKEN: {}", broken.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(payments: i64) -> Counts {
        Counts {
            payments,
            distinct: payments,
            paid_invoices: payments,
            applied: payments,
            payment_events: payments,
            paid_events: payments,
            receipts: payments,
            ..Counts::default()
        }
    }

    #[test]
    fn a_clean_run_passes_and_each_broken_invariant_is_named() {
        let before = clean(10);
        assert!(check(&before, &clean(30), 20, 0).is_ok());
        let lost = check(&before, &clean(29), 20, 0).unwrap_err().to_string();
        assert!(lost.contains("19 payments for 20"), "{lost}");
        let twice = Counts {
            paid_twice: 1,
            ..clean(30)
        };
        assert!(
            check(&before, &twice, 20, 0)
                .unwrap_err()
                .to_string()
                .contains("two applied")
        );
        let events = Counts {
            payment_events: 31,
            ..clean(30)
        };
        let why = check(&before, &events, 20, 0).unwrap_err().to_string();
        assert!(why.contains("21 payment.received events"), "{why}");
    }
}
