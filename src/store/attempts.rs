//! Attempts to pay: opened for what an invoice still owes, on a channel
//! whose limits allow it; started once the gateway answers with its page,
//! failed with the provider's word.

use serde_json::json;
use sqlx::Row;

use super::audit::{self, Change};
use super::endpoints::bank_account_of;
use super::invoices::{expire_if_due, invoice_in_scope};
use super::{Store, StoreError};
use crate::domain::agency::BankAccount;
use crate::domain::audit::Actor;
use crate::domain::payment::{Attempt, AttemptStatus, Channel};
use crate::domain::{Invoice, InvoiceStatus, Scope, Timestamp, Vnd};

/// A new attempt, with what its answer needs.
pub struct OpenedAttempt {
    pub attempt: Attempt,
    pub invoice: Invoice,
    /// The agency's receiving account, for a bank transfer.
    pub bank_account: Option<BankAccount>,
}

impl Store {
    /// Opens an attempt to pay invoice `invoice_id` (in `scope`) on
    /// `channel`, for what the invoice still owes, which must lie within
    /// the channel's `amount_limits` if it has any. Only an open invoice
    /// accepts one. `order_ref` is the gateway's reference; a bank
    /// transfer's attempt is referenced by its own id.
    pub async fn open_attempt(
        &self,
        actor: &Actor,
        scope: &Scope,
        invoice_id: &str,
        channel: Channel,
        order_ref: Option<String>,
        amount_limits: Option<(Vnd, Vnd)>,
    ) -> Result<OpenedAttempt, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let row = invoice_in_scope(
            &mut tx.conn(),
            scope,
            invoice_id,
            self.row_lock(" FOR UPDATE OF i"),
        )
        .await?;
        let agency_path: String = row.try_get("agency_path")?;
        let invoice = super::invoices::invoice_from_row(&row)?;
        let invoice = expire_if_due(&mut tx.conn(), actor, invoice, &agency_path, now).await?;
        if invoice.status != InvoiceStatus::Open {
            tx.commit().await?;
            return Err(StoreError::InvoiceNotOpen(invoice.status));
        }
        let bank_account = match channel {
            Channel::BankTransfer => Some(
                bank_account_of(&mut tx.conn(), invoice.agency_code.as_str())
                    .await?
                    .ok_or_else(|| StoreError::ChannelUnavailable {
                        channel,
                        message: format!(
                            "agency {} has no receiving bank account",
                            invoice.agency_code
                        ),
                    })?,
            ),
            _ => None,
        };
        let amount = invoice
            .total
            .checked_sub(invoice.amount_paid)
            .filter(|owed| owed.dong() > 0)
            .ok_or_else(|| StoreError::corrupt("an open invoice owes nothing"))?;
        if let Some((least, most)) = amount_limits
            && (amount < least || amount > most)
        {
            return Err(StoreError::ChannelUnavailable {
                channel,
                message: format!(
                    "{channel} takes {} to {} đồng; use another channel",
                    least.display_vi(),
                    most.display_vi()
                ),
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let attempt = Attempt {
            order_ref: order_ref.unwrap_or_else(|| id.clone()),
            id,
            invoice_id: invoice.id.clone(),
            channel,
            amount,
            status: AttemptStatus::Pending,
            pay_url: None,
            provider_code: None,
            message: None,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO payment_attempts (id, invoice_id, channel, order_ref, amount, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
        )
        .bind(&attempt.id)
        .bind(&attempt.invoice_id)
        .bind(channel.as_str())
        .bind(&attempt.order_ref)
        .bind(amount.dong())
        .bind(now.to_stored())
        .execute(&mut tx.conn())
        .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "attempt.opened",
                object_type: "payment_attempt",
                object_id: &attempt.id,
                agency: Some((invoice.agency_code.as_str(), &agency_path)),
                before: None,
                after: Some(json!({
                    "invoice_id": attempt.invoice_id,
                    "channel": channel,
                    "order_ref": attempt.order_ref,
                    "amount": amount,
                })),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(OpenedAttempt {
            attempt,
            invoice,
            bank_account,
        })
    }

    /// Stores where the gateway sends the payer.
    pub async fn attempt_started(&self, id: &str, pay_url: &str) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query("UPDATE payment_attempts SET pay_url = $1, updated_at = $2 WHERE id = $3")
                .bind(pay_url)
                .bind(Timestamp::now().to_stored())
                .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Marks a pending attempt failed, with the provider's code. Returns
    /// whether an attempt with this reference exists.
    pub async fn attempt_failed(
        &self,
        actor: &Actor,
        channel: Channel,
        order_ref: &str,
        provider_code: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "SELECT t.id, t.status, i.agency_code, a.path FROM payment_attempts t
             JOIN invoices i ON i.id = t.invoice_id JOIN agencies a ON a.code = i.agency_code
             WHERE t.channel = $1 AND t.order_ref = $2",
        )
        .bind(channel.as_str())
        .bind(order_ref)
        .fetch_optional(&mut tx.conn())
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let attempt_id: String = row.try_get("id")?;
        let status: String = row.try_get("status")?;
        let agency_code: String = row.try_get("agency_code")?;
        let agency_path: String = row.try_get("path")?;
        let failed = sqlx::query(
            "UPDATE payment_attempts SET status = 'failed', provider_code = $1, message = $2, updated_at = $3
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(provider_code)
        .bind(message)
        .bind(now.to_stored())
        .bind(&attempt_id)
        .execute(&mut tx.conn())
        .await?;
        if failed.rows_affected() == 1 {
            audit::record(
                &mut tx.conn(),
                actor,
                Change {
                    action: "attempt.failed",
                    object_type: "payment_attempt",
                    object_id: &attempt_id,
                    agency: Some((&agency_code, &agency_path)),
                    before: Some(json!({ "status": status })),
                    after: Some(json!({ "status": "failed", "provider_code": provider_code })),
                    at: now,
                },
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Whether an attempt with this reference exists on `channel`.
    pub async fn attempt_exists(
        &self,
        channel: Channel,
        order_ref: &str,
    ) -> Result<bool, StoreError> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM payment_attempts WHERE channel = $1 AND order_ref = $2",
        )
        .bind(channel.as_str())
        .bind(order_ref)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }
}

/// Which attempts to list.
#[derive(Default)]
pub struct AttemptFilter {
    pub status: Option<AttemptStatus>,
    pub channel: Option<Channel>,
    pub agency_code: Option<crate::domain::AgencyCode>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    /// Only attempts older than this id: the cursor of the previous page.
    pub after_id: Option<String>,
    pub limit: i64,
}

/// An attempt as listed, with its invoice's codes.
pub struct ListedAttempt {
    pub attempt: Attempt,
    pub payment_code: String,
    pub dossier_code: String,
    pub agency_code: String,
}

const SELECT_ATTEMPTS: &str = "SELECT pa.id, pa.invoice_id, pa.channel, pa.order_ref, pa.amount, \
     pa.status, pa.pay_url, pa.provider_code, pa.message, pa.created_at, pa.updated_at, \
     i.payment_code, i.dossier_code, i.agency_code \
     FROM payment_attempts pa JOIN invoices i ON i.id = pa.invoice_id \
     JOIN agencies a ON a.code = i.agency_code";

impl Store {
    /// Attempts to pay invoices in `scope`, newest first.
    pub async fn list_attempts(
        &self,
        scope: &Scope,
        filter: &AttemptFilter,
    ) -> Result<super::Listed<ListedAttempt>, StoreError> {
        use super::query::{Filtered, Value, page};
        let mut query = Filtered::new(SELECT_ATTEMPTS);
        self.scope_to(&mut query, scope, filter.agency_code.as_ref())
            .await?;
        if let Some(status) = filter.status {
            query.and("pa.status = {}", Value::Text(status.as_str().to_owned()));
        }
        if let Some(channel) = filter.channel {
            query.and("pa.channel = {}", Value::Text(channel.as_str().to_owned()));
        }
        query
            .during("pa.created_at", filter.created_from, filter.created_to)
            .newest_first("pa.id", filter.after_id.as_deref(), filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(
            &rows,
            filter.limit,
            |row| {
                Ok(ListedAttempt {
                    attempt: super::checkout::attempt_from_row(row)?,
                    payment_code: row.try_get("payment_code")?,
                    dossier_code: row.try_get("dossier_code")?,
                    agency_code: row.try_get("agency_code")?,
                })
            },
            |a| a.attempt.id.clone(),
        )
    }
}
