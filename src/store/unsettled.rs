//! Payments that no statement settles: after an import, each payment of
//! its channel (in its scope) collected more than the channel's days
//! before the latest day a statement settled, and not settled by any line,
//! is raised as `unsettled_payment`, once; a finding that depends on what
//! was imported, not on the order it came in.

use sqlx::Row;
use time::Date;

use super::conn::Conn;
use super::exceptions::{self, Finding};
use super::query::{Filtered, Value};
use super::settlements::{Import, SettlementSummary};
use super::{Store, StoreError};
use crate::domain::payment::{Channel, ExceptionKind};
use crate::domain::settlement::{format_day, parse_day};
use crate::domain::{Timestamp, Vnd};

impl Store {
    /// Raises `unsettled_payment` for each payment of the channel (in
    /// scope) that no line settles and that was collected more than the
    /// channel's days before the latest day a statement settled: a
    /// finding that depends on what was imported, not on the order. A
    /// bank statement covers one account, so for bank transfers the
    /// latest day is each agency's own. Answers the cutoff day before
    /// which every payment in scope has now been checked, when there is
    /// one and it is the channel's (not each agency's).
    pub(super) async fn find_unsettled(
        &self,
        tx: &mut Conn<'_>,
        import: &Import<'_>,
        settled_through: Option<Date>,
        settlement_days: u32,
        summary: &mut SettlementSummary,
    ) -> Result<Option<String>, StoreError> {
        let cutoff_of = |latest: Date| {
            latest
                .checked_sub(time::Duration::days(settlement_days.into()))
                .map(|cutoff| {
                    let why = format!(
                        "in no statement settled up to {}, {settlement_days} days allowed",
                        format_day(latest)
                    );
                    (format_day(cutoff), why)
                })
        };
        if import.channel == Channel::BankTransfer {
            let latest: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT agency_code, max(settlement_date) FROM settlement_lines
                 WHERE channel = $1 AND agency_code IS NOT NULL GROUP BY agency_code",
            )
            .bind(import.channel.as_str())
            .fetch_all(&mut *tx)
            .await?;
            for (agency_code, latest) in latest {
                let Some((cutoff, why)) = latest.as_deref().and_then(parse_day).and_then(cutoff_of)
                else {
                    continue;
                };
                let unchecked = Unchecked::Before(&cutoff);
                let agency = agency_code.as_deref();
                self.raise_unsettled(tx, import, agency, unchecked, &why, summary)
                    .await?;
            }
            return Ok(None);
        }
        // The statements imported before, and this one, whose latest day
        // is written with its summary.
        let before: Option<String> = sqlx::query_scalar(
            "SELECT max(settled_through) FROM settlement_files WHERE channel = $1",
        )
        .bind(import.channel.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let latest = before.as_deref().and_then(parse_day).max(settled_through);
        let Some((cutoff, why)) = latest.and_then(cutoff_of) else {
            return Ok(None);
        };
        // The last import of the channel that saw every agency this one
        // sees checked every payment of theirs collected before its
        // cutoff; what it found settled stays so, what it raised stays
        // raised. Left to check: the payments collected since its cutoff,
        // and those recorded since it ran (a payment can be recorded days
        // after it was collected), with an hour to spare for transactions
        // still open then and for clocks that differ.
        let checked: Option<(String, String)> = sqlx::query_as(
            "SELECT checked_before, imported_at FROM settlement_files
             WHERE channel = $1 AND checked_before IS NOT NULL
               AND substr($2, 1, length(checked_scope)) = checked_scope
             ORDER BY id DESC LIMIT 1",
        )
        .bind(import.channel.as_str())
        .bind(import.scope.path_prefix())
        .fetch_optional(&mut *tx)
        .await?;
        // The latest to start is as good a starting point as any that
        // covers this scope: each one's record holds on its own.
        let since = checked.and_then(|(checked_before, imported_at)| {
            let ran = Timestamp::parse_rfc3339(&imported_at)?;
            let recorded_from = first_id_recorded_at(ran.plus(-RECORDING_SLACK)?);
            Some((checked_before, recorded_from))
        });
        match &since {
            None => {
                let unchecked = Unchecked::Before(&cutoff);
                self.raise_unsettled(tx, import, None, unchecked, &why, summary)
                    .await?;
            }
            Some((checked_before, recorded_from)) => {
                let collected = Unchecked::Between {
                    from: checked_before,
                    before: &cutoff,
                };
                self.raise_unsettled(tx, import, None, collected, &why, summary)
                    .await?;
                // A cutoff earlier than the last (more days allowed now)
                // leaves what lies between them not yet overdue.
                let recorded = Unchecked::RecordedSince {
                    before: checked_before.min(&cutoff),
                    first_id: recorded_from,
                };
                self.raise_unsettled(tx, import, None, recorded, &why, summary)
                    .await?;
            }
        }
        Ok(Some(cutoff))
    }

    /// Raises `unsettled_payment` for the payments of the channel (and of
    /// `agency_code`, if given) among the `unchecked` ones that no line
    /// settles.
    async fn raise_unsettled(
        &self,
        tx: &mut Conn<'_>,
        import: &Import<'_>,
        agency_code: Option<&str>,
        unchecked: Unchecked<'_>,
        why: &str,
        summary: &mut SettlementSummary,
    ) -> Result<(), StoreError> {
        let mut query = Filtered::new(
            "SELECT p.id, p.amount, p.invoice_id, p.agency_code, a.path, p.collected_on
             FROM payments p LEFT JOIN agencies a ON a.code = p.agency_code",
        );
        let channel = Value::Text(import.channel.as_str().to_owned());
        let day = |day: &str| Value::Text(day.to_owned());
        match unchecked {
            Unchecked::Before(cutoff) => {
                query
                    .and("p.channel = {}", channel)
                    .and("p.collected_on < {}", day(cutoff));
            }
            Unchecked::Between { from, before } => {
                query
                    .and("p.channel = {}", channel)
                    .and("p.collected_on >= {}", day(from))
                    .and("p.collected_on < {}", day(before));
            }
            Unchecked::RecordedSince { before, first_id } => {
                // Found by their ids alone, the payments recorded since:
                // the channel and the day (never NULL) are wrapped in
                // `coalesce` only so that no index is used for them, which
                // would read every day before the cutoff.
                query
                    .and("coalesce(p.channel, '') = {}", channel)
                    .and("coalesce(p.collected_on, '') < {}", day(before))
                    .and("p.id >= {}", Value::Text(first_id.to_owned()));
            }
        }
        query
            .and(
                "substr(coalesce(a.path, '/'), 1, length({})) = {}",
                Value::Text(import.scope.path_prefix().to_owned()),
            )
            .and_fixed(
                "NOT EXISTS (SELECT 1 FROM settlement_lines s
                             WHERE s.payment_id = p.id AND s.outcome <> 'duplicate_line')
                 AND NOT EXISTS (SELECT 1 FROM payment_exceptions x
                                 WHERE x.payment_id = p.id AND x.kind = 'unsettled_payment')",
            );
        if let Some(code) = agency_code {
            query.and("p.agency_code = {}", Value::Text(code.to_owned()));
        }
        query.then("ORDER BY p.id");
        let rows = query.build().fetch_all(&mut *tx).await?;
        for row in rows {
            let payment_id: String = row.try_get("id")?;
            let amount = Vnd::new(row.try_get("amount")?);
            let invoice_id: Option<String> = row.try_get("invoice_id")?;
            let agency_code: Option<String> = row.try_get("agency_code")?;
            let path: Option<String> = row.try_get("path")?;
            let collected_on: String = row.try_get("collected_on")?;
            let raised = exceptions::raise(
                tx,
                import.actor,
                &Finding {
                    kind: ExceptionKind::UnsettledPayment,
                    payment_id: Some(&payment_id),
                    invoice_id: invoice_id.as_deref(),
                    agency: agency_code.as_deref().zip(path.as_deref()),
                    amount: Some(amount),
                    detail: format!("{amount} đồng collected on {collected_on} is {why}"),
                    settlement_line: None,
                    dossier_code: None,
                    tell_dossier_system: false,
                },
                import.now,
            )
            .await?;
            if raised.is_some() {
                summary.unsettled_payments += 1;
                summary.exceptions_opened += 1;
            }
        }
        Ok(())
    }
}

/// Which payments of a channel an import checks for being unsettled.
#[derive(Clone, Copy)]
enum Unchecked<'a> {
    /// Every one collected before the cutoff day.
    Before(&'a str),
    /// Those collected from a day (an earlier import's cutoff) until
    /// the cutoff.
    Between { from: &'a str, before: &'a str },
    /// Those collected before a day and recorded since a time, given as
    /// the least id of a payment recorded then.
    RecordedSince { before: &'a str, first_id: &'a str },
}

/// How long before an import ran a payment recorded then may have been
/// given its id: for a transaction still open while the import read, and
/// for the clocks of lephi processes sharing a database. A payment whose
/// transaction stays open longer, or whose process's clock is further
/// behind, is checked only by the next import that checks in full.
const RECORDING_SLACK: time::Duration = time::Duration::hours(1);

/// The least id a payment recorded at `at` or later can have: a payment's
/// id is a UUIDv7, whose text begins with its time in milliseconds.
fn first_id_recorded_at(at: Timestamp) -> String {
    let millis = at.as_datetime().unix_timestamp_nanos() / 1_000_000;
    let millis = u64::try_from(millis).unwrap_or(0) & 0xffff_ffff_ffff;
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        millis >> 16,
        millis & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_of_a_time_is_no_greater_than_any_payment_id_of_then_or_later() {
        let at = Timestamp::parse_rfc3339("2026-11-29T10:00:00.123456Z").unwrap();
        let first = first_id_recorded_at(at);
        let time = at.as_datetime();
        let seconds = u64::try_from(time.unix_timestamp()).unwrap();
        let id_at = |seconds: u64, nanos: u32| {
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, seconds, nanos))
                .to_string()
        };
        // The same millisecond, and later.
        for (s, n) in [
            (seconds, 123_000_000),
            (seconds, 124_000_000),
            (seconds + 86_400, 0),
        ] {
            let id = id_at(s, n);
            assert!(first <= id, "{first} > {id}");
        }
        // A millisecond earlier, and a day earlier.
        for (s, n) in [(seconds, 122_000_000), (seconds - 86_400, 0)] {
            let id = id_at(s, n);
            assert!(first > id, "{first} <= {id}");
        }
    }
}
