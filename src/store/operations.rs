//! What the operations team watches, read when Prometheus scrapes
//! `/metrics`: work that waits (dead letters, webhook events due, gateway
//! attempts and refunds whose check is overdue, imports not finished), the
//! receipt series closest to their last number, and the connection pool.
//! Each is a count over a partial index, or a handful of rows.

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::Timestamp;

/// The figures of one scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperationsFigures {
    /// Webhook events that gave up (`dead`), waiting for an officer.
    pub dead_letters: i64,
    /// Webhook events due for delivery more than a minute ago.
    pub events_overdue: i64,
    /// Pending gateway attempts whose check is due more than `grace` ago:
    /// the janitor is behind, or not running.
    pub attempt_checks_overdue: i64,
    /// Gateway refunds whose status check is due more than `grace` ago.
    pub refund_checks_overdue: i64,
    /// Imports not finished, by kind (`statement`, `register`): how many
    /// are queued, how many running, and how long ago the oldest of them
    /// was uploaded, in seconds.
    pub imports: Vec<ImportFigures>,
    /// This year's receipt series with the most numbers given:
    /// (agency, year, last number).
    pub receipt_series: Vec<(String, i32, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImportFigures {
    pub kind: &'static str,
    pub queued: i64,
    pub running: i64,
    pub oldest_secs: i64,
}

/// The pool's connections now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// The receipt series shown, the fullest first.
const SERIES_SHOWN: i64 = 20;

impl Store {
    /// The figures of [`OperationsFigures`] as of `now`. A check counts as
    /// overdue once it was due `grace` ago; an attempt never checked is due
    /// `first_check_after` after it was made (and never after
    /// `give_up_after`, when the janitor no longer asks).
    pub async fn operations_figures(
        &self,
        now: Timestamp,
        grace: time::Duration,
        (first_check_after, give_up_after): (time::Duration, time::Duration),
    ) -> Result<OperationsFigures, StoreError> {
        let out_of_range = || StoreError::corrupt("a time out of range");
        let due_before = now.plus(-grace).ok_or_else(out_of_range)?;
        let made_before = due_before
            .plus(-first_check_after)
            .ok_or_else(out_of_range)?;
        let too_old = now.plus(-give_up_after).ok_or_else(out_of_range)?;
        let event_due_before = now
            .plus(-time::Duration::minutes(1))
            .ok_or_else(out_of_range)?;
        let mut conn = self.pool.acquire().await?;
        let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        let dead_letters = count("SELECT COUNT(*) FROM outbox_events WHERE status = 'dead'")
            .fetch_one(&mut *conn)
            .await?;
        let events_overdue = count(
            "SELECT COUNT(*) FROM outbox_events WHERE status = 'pending' AND next_attempt_at <= $1",
        )
        .bind(event_due_before.to_stored())
        .fetch_one(&mut *conn)
        .await?;
        let attempt_checks_overdue = count(
            "SELECT
                (SELECT COUNT(*) FROM payment_attempts
                 WHERE status = 'pending' AND next_check_at <= $1)
              + (SELECT COUNT(*) FROM payment_attempts
                 WHERE status = 'pending' AND next_check_at IS NULL AND checks = 0
                   AND created_at <= $2 AND created_at > $3)",
        )
        .bind(due_before.to_stored())
        .bind(made_before.to_stored())
        .bind(too_old.to_stored())
        .fetch_one(&mut *conn)
        .await?;
        let refund_checks_overdue = count(
            "SELECT COUNT(*) FROM refunds
             WHERE status IN ('approved', 'submitted') AND channel IN ('vnpay', 'momo', 'zalopay')
               AND next_check_at <= $1",
        )
        .bind(due_before.to_stored())
        .fetch_one(&mut *conn)
        .await?;
        let mut imports = Vec::new();
        for (kind, sql) in [
            (
                "statement",
                "SELECT status, COUNT(*) AS n, MIN(imported_at) AS oldest FROM settlement_files
                 WHERE status IN ('queued', 'running') GROUP BY status",
            ),
            (
                "register",
                "SELECT status, COUNT(*) AS n, MIN(imported_at) AS oldest FROM register_imports
                 WHERE status IN ('queued', 'running') GROUP BY status",
            ),
        ] {
            let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
            let mut figures = ImportFigures {
                kind,
                queued: 0,
                running: 0,
                oldest_secs: 0,
            };
            for row in &rows {
                let n: i64 = row.try_get("n")?;
                match row.try_get::<String, _>("status")?.as_str() {
                    "queued" => figures.queued = n,
                    _ => figures.running = n,
                }
                let oldest = super::parse_time(row, "oldest")?;
                let age = (now.as_datetime() - oldest.as_datetime()).whole_seconds();
                figures.oldest_secs = figures.oldest_secs.max(age);
            }
            imports.push(figures);
        }
        let year = now.in_vietnam().year();
        let series = sqlx::query(
            "SELECT agency_code, year, last_number FROM receipt_series
             WHERE year = $1 ORDER BY last_number DESC, agency_code LIMIT $2",
        )
        .bind(i64::from(year))
        .bind(SERIES_SHOWN)
        .fetch_all(&mut *conn)
        .await?;
        let receipt_series = series
            .iter()
            .map(|row| {
                let year: i64 = row.try_get("year")?;
                Ok((
                    row.try_get("agency_code")?,
                    i32::try_from(year).map_err(StoreError::corrupt)?,
                    row.try_get("last_number")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(OperationsFigures {
            dead_letters,
            events_overdue,
            attempt_checks_overdue,
            refund_checks_overdue,
            imports,
            receipt_series,
        })
    }

    /// The pool's connections: open, idle among them, and the most it opens.
    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
