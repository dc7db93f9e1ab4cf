//! Personal data kept no longer than it is needed: once an invoice has
//! been closed (paid, cancelled or expired) for `privacy.retention_days`
//! and nothing about its money is still open, the payer's name, id number,
//! phone and email are erased, with the transfer notes of its bank
//! transfers (which carry the sender's name) replaced by its payment code.
//! Amounts, codes, receipts, payments and the audit stay; each erasure is
//! audited, and the idempotency records (which keep the answers that
//! showed the payer) older than the period go.

use serde_json::json;
use sqlx::Row;

use super::audit::{self, Change};
use super::{Store, StoreError};
use crate::domain::Timestamp;
use crate::domain::audit::Actor;

/// What one pass erased.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erased {
    pub invoices: u64,
    pub idempotency_records: u64,
}

/// The fields an erasure clears, named in its audit record.
const ERASED_FIELDS: [&str; 5] = [
    "payer_name",
    "payer_id_number",
    "payer_phone",
    "payer_email",
    "transfer_notes",
];

impl Store {
    /// Erases the personal data of at most `limit` invoices closed before
    /// `closed_before` whose money has nothing open (no open exception, no
    /// refund under way), and at most `limit` idempotency records made
    /// before it, in one short transaction.
    pub async fn erase_personal_data(
        &self,
        closed_before: Timestamp,
        limit: i64,
    ) -> Result<Erased, StoreError> {
        let now = Timestamp::now();
        let actor = Actor::system("retention");
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT i.id, i.payment_code, i.agency_code, a.path AS agency_path
             FROM invoices i JOIN agencies a ON a.code = i.agency_code
             WHERE i.personal_data_erased_at IS NULL AND i.status <> 'open'
               AND i.updated_at < $1
               AND NOT EXISTS (SELECT 1 FROM payment_exceptions e
                               WHERE e.invoice_id = i.id AND e.status = 'open')
               AND NOT EXISTS (SELECT 1 FROM payments p JOIN refunds r ON r.payment_id = p.id
                               WHERE p.invoice_id = i.id
                                 AND r.status IN ('requested', 'approved', 'submitted'))
             ORDER BY i.updated_at LIMIT $2{}",
            self.row_lock(" FOR UPDATE OF i SKIP LOCKED")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(closed_before.to_stored())
            .bind(limit)
            .fetch_all(&mut tx.conn())
            .await?;
        let mut erased = Erased::default();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let code: String = row.try_get("payment_code")?;
            let agency: String = row.try_get("agency_code")?;
            let path: String = row.try_get("agency_path")?;
            sqlx::query(
                "UPDATE invoices SET payer_name = '', payer_id_number = NULL, payer_phone = NULL,
                     payer_email = NULL, personal_data_erased_at = $1
                 WHERE id = $2",
            )
            .bind(now.to_stored())
            .bind(&id)
            .execute(&mut tx.conn())
            .await?;
            // A transfer note names its sender: the code it paid stands
            // for it, in the payment and in the statement lines that
            // settled it.
            sqlx::query(
                "UPDATE settlement_lines SET reference = $1
                 WHERE payment_id IN (SELECT id FROM payments
                                      WHERE invoice_id = $2 AND channel = 'bank_transfer')",
            )
            .bind(&code)
            .bind(&id)
            .execute(&mut tx.conn())
            .await?;
            sqlx::query(
                "UPDATE payments SET reference = $1
                 WHERE invoice_id = $2 AND channel = 'bank_transfer'",
            )
            .bind(&code)
            .bind(&id)
            .execute(&mut tx.conn())
            .await?;
            audit::record(
                &mut tx.conn(),
                &actor,
                Change {
                    action: "invoice.personal_data_erased",
                    object_type: "invoice",
                    object_id: &id,
                    agency: Some((&agency, &path)),
                    before: None,
                    after: Some(json!({
                        "erased": ERASED_FIELDS,
                        "closed_before": closed_before,
                    })),
                    at: now,
                },
            )
            .await?;
            erased.invoices += 1;
        }
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE (api_key_id, idempotency_key) IN
                 (SELECT api_key_id, idempotency_key FROM idempotency_keys
                  WHERE created_at < $1 ORDER BY created_at LIMIT $2)",
        )
        .bind(closed_before.to_stored())
        .bind(limit)
        .execute(&mut tx.conn())
        .await?;
        erased.idempotency_records = done.rows_affected();
        tx.commit().await?;
        Ok(erased)
    }
}
