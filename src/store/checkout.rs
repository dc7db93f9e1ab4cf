//! What the citizens' pages read: an invoice by its payment code, with its
//! agency's name, and where its latest attempt on a channel stands. Nothing
//! here writes.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;
use super::invoices::invoice_where;
use super::{Store, StoreError, parse_time};
use crate::domain::payment::{Attempt, AttemptStatus, Channel};
use crate::domain::refund::HeldMoney;
use crate::domain::{Invoice, PaymentCode, Timestamp, Vnd};

/// An invoice as a citizen sees it.
pub struct CheckoutInvoice {
    /// Its status as of now: an open invoice past its expiry reads expired.
    pub invoice: Invoice,
    pub agency_name: String,
    /// Whether the agency has an account to receive bank transfers.
    pub has_bank_account: bool,
    /// What it received beyond what paid it, and what was given back.
    pub held: HeldMoney,
}

pub(super) fn attempt_from_row(row: &AnyRow) -> Result<Attempt, StoreError> {
    let channel: String = row.try_get("channel")?;
    let status: String = row.try_get("status")?;
    Ok(Attempt {
        id: row.try_get("id")?,
        invoice_id: row.try_get("invoice_id")?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::corrupt(format!("attempt channel {channel:?}")))?,
        order_ref: row.try_get("order_ref")?,
        amount: Vnd::new(row.try_get("amount")?),
        status: AttemptStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("attempt status {status:?}")))?,
        pay_url: row.try_get("pay_url")?,
        provider_code: row.try_get("provider_code")?,
        message: row.try_get("message")?,
        created_at: parse_time(row, "created_at")?,
        updated_at: parse_time(row, "updated_at")?,
    })
}

impl Store {
    /// The invoice whose payment code is `code`, if any.
    pub async fn checkout_invoice(
        &self,
        code: &PaymentCode,
    ) -> Result<Option<CheckoutInvoice>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let Some((invoice, _)) = invoice_where(
            &mut Conn::from(&mut *conn),
            "payment_code",
            code.as_str(),
            "",
        )
        .await?
        else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT a.name, b.agency_code AS account_of FROM agencies a
             LEFT JOIN agency_bank_accounts b ON b.agency_code = a.code WHERE a.code = $1",
        )
        .bind(invoice.agency_code.as_str())
        .fetch_one(&mut *conn)
        .await?;
        let account_of: Option<String> = row.try_get("account_of")?;
        let now = Timestamp::now();
        drop(conn);
        let held = self.held_money(&invoice.id).await?;
        Ok(Some(CheckoutInvoice {
            agency_name: row.try_get("name")?,
            has_bank_account: account_of.is_some(),
            held,
            invoice: Invoice {
                status: invoice.status_at(now),
                ..invoice
            },
        }))
    }

    /// The invoice's latest attempt on `channel`, with the order reference
    /// `order_ref` if one is given.
    pub async fn latest_attempt(
        &self,
        invoice: &Invoice,
        channel: Channel,
        order_ref: Option<&str>,
    ) -> Result<Option<Attempt>, StoreError> {
        let row = sqlx::query(
            "SELECT id, invoice_id, channel, order_ref, amount, status, pay_url, provider_code,
                 message, created_at, updated_at
             FROM payment_attempts
             WHERE invoice_id = $1 AND channel = $2 AND ($3 IS NULL OR order_ref = $3)
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(&invoice.id)
        .bind(channel.as_str())
        .bind(order_ref)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(attempt_from_row).transpose()
    }

    /// The invoice's attempts still pending that were started since
    /// `since`, newest first.
    pub async fn pending_attempts(
        &self,
        invoice: &Invoice,
        since: Timestamp,
    ) -> Result<Vec<Attempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, invoice_id, channel, order_ref, amount, status, pay_url, provider_code,
                 message, created_at, updated_at
             FROM payment_attempts
             WHERE invoice_id = $1 AND status = 'pending' AND created_at >= $2
             ORDER BY created_at DESC, id DESC",
        )
        .bind(&invoice.id)
        .bind(since.to_stored())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }
}
