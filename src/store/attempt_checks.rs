//! The janitor's checks of gateway attempts still pending, whose callback
//! may never come: which are due, claimed under a lease so that no two
//! janitors (in one process, or in several on one PostgreSQL database) ask
//! a provider about one attempt at once; when to ask again; giving up.
//!
//! `payment_attempts.next_check_at` is when an attempt may next be checked.
//! An attempt never checked (`checks = 0`) has none: its first check is due
//! once it is old enough. A checked attempt without one was given up on.

use serde_json::json;
use sqlx::Row;

use super::exceptions::{self, Finding};
use super::{Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind};
use crate::domain::{Timestamp, Vnd};

/// A pending attempt claimed for one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptToCheck {
    pub id: String,
    pub invoice_id: String,
    pub channel: Channel,
    pub order_ref: String,
    pub amount: Vnd,
    pub created_at: Timestamp,
    /// Checks made so far, this one included: the claim's token, so that
    /// an outcome arriving after the attempt was claimed again changes
    /// nothing.
    pub check: i64,
}

impl Store {
    /// Claims up to `limit` pending attempts on `channels` that are due a
    /// check at `now`: never checked and created at least
    /// `first_check_after` but less than `give_up_after` before, or due
    /// again. (An attempt already older than the give-up age when the
    /// janitor first sees it, such as one from before there was a janitor,
    /// is left alone rather than raised for an officer.) A claim counts
    /// the check and moves the next one past `lease`.
    pub async fn claim_attempts_to_check(
        &self,
        channels: &[Channel],
        now: Timestamp,
        (first_check_after, give_up_after): (time::Duration, time::Duration),
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<AttemptToCheck>, StoreError> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let out_of_range = || StoreError::corrupt("a janitor's time is out of range");
        let old_enough = now.plus(-first_check_after).ok_or_else(out_of_range)?;
        let too_old = now.plus(-give_up_after).ok_or_else(out_of_range)?;
        let until = now.plus(lease).ok_or_else(out_of_range)?;
        let placeholders: Vec<String> =
            (0..channels.len()).map(|i| format!("${}", i + 5)).collect();
        let sql = format!(
            "SELECT t.id, t.invoice_id, t.channel, t.order_ref, t.amount, t.created_at, t.checks
             FROM payment_attempts t
             WHERE t.status = 'pending' AND t.channel IN ({})
               AND (t.next_check_at <= $1
                    OR (t.next_check_at IS NULL AND t.checks = 0 AND t.created_at <= $2
                        AND t.created_at > $4))
             ORDER BY coalesce(t.next_check_at, t.created_at), t.id LIMIT $3{}",
            placeholders.join(", "),
            self.row_lock(" FOR UPDATE OF t SKIP LOCKED")
        );
        let mut tx = self.begin_write().await?;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.to_stored())
            .bind(old_enough.to_stored())
            .bind(limit)
            .bind(too_old.to_stored());
        for channel in channels {
            query = query.bind(channel.as_str());
        }
        let rows = query.fetch_all(&mut tx.conn()).await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            sqlx::query(
                "UPDATE payment_attempts SET checks = checks + 1, next_check_at = $1 WHERE id = $2",
            )
            .bind(until.to_stored())
            .bind(&id)
            .execute(&mut tx.conn())
            .await?;
            let channel: String = row.try_get("channel")?;
            claimed.push(AttemptToCheck {
                id,
                invoice_id: row.try_get("invoice_id")?,
                channel: Channel::parse(&channel)
                    .ok_or_else(|| StoreError::corrupt(format!("attempt channel {channel:?}")))?,
                order_ref: row.try_get("order_ref")?,
                amount: Vnd::new(row.try_get("amount")?),
                created_at: parse_time(row, "created_at")?,
                check: row.try_get::<i64, _>("checks")? + 1,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Schedules the next check of an attempt still pending after check
    /// number `check`. False when the claim is stale or the attempt has
    /// left `pending` meanwhile.
    pub async fn check_attempt_again(
        &self,
        id: &str,
        check: i64,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let updated = self
            .write_one(
                sqlx::query(
                    "UPDATE payment_attempts SET next_check_at = $1
             WHERE id = $2 AND status = 'pending' AND checks = $3",
                )
                .bind(at.to_stored())
                .bind(id)
                .bind(check),
            )
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Stops checking an attempt the provider never confirmed, after check
    /// number `check`, and raises `unconfirmed_attempt` for the finance
    /// officers (the dossier system is not told), in one transaction.
    /// Returns the exception's id; `None` when the claim is stale or the
    /// attempt has left `pending` meanwhile, so it is raised once.
    pub async fn give_up_on_attempt(
        &self,
        actor: &Actor,
        id: &str,
        check: i64,
    ) -> Result<Option<String>, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let stopped = sqlx::query(
            "UPDATE payment_attempts SET next_check_at = NULL
             WHERE id = $1 AND status = 'pending' AND checks = $2",
        )
        .bind(id)
        .bind(check)
        .execute(&mut tx.conn())
        .await?;
        if stopped.rows_affected() != 1 {
            tx.commit().await?;
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT t.invoice_id, t.channel, t.order_ref, t.amount, i.agency_code, i.dossier_code,
                    a.path
             FROM payment_attempts t JOIN invoices i ON i.id = t.invoice_id
             JOIN agencies a ON a.code = i.agency_code
             WHERE t.id = $1",
        )
        .bind(id)
        .fetch_one(&mut tx.conn())
        .await?;
        let invoice_id: String = row.try_get("invoice_id")?;
        let channel: String = row.try_get("channel")?;
        let order_ref: String = row.try_get("order_ref")?;
        let amount = Vnd::new(row.try_get("amount")?);
        let agency_code: String = row.try_get("agency_code")?;
        let dossier_code: String = row.try_get("dossier_code")?;
        let path: String = row.try_get("path")?;
        let kind = ExceptionKind::UnconfirmedAttempt;
        let raised = exceptions::raise(
            &mut tx.conn(),
            actor,
            &Finding {
                kind,
                payment_id: None,
                invoice_id: Some(&invoice_id),
                agency: Some((&agency_code, &path)),
                amount: Some(amount),
                detail: format!(
                    "{} (attempt {order_ref} on {channel}, checked {check} times)",
                    kind.describe(amount, None)
                ),
                settlement_line: None,
                dossier_code: Some(&dossier_code),
                tell_dossier_system: false,
            },
            now,
        )
        .await?;
        super::audit::record(
            &mut tx.conn(),
            actor,
            super::audit::Change {
                action: "attempt.unconfirmed",
                object_type: "payment_attempt",
                object_id: id,
                agency: Some((&agency_code, &path)),
                before: Some(json!({ "status": "pending", "checks": check })),
                after: Some(json!({ "status": "pending", "checks": check, "next_check_at": null })),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(raised)
    }
}
