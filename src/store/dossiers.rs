//! The dossier register, and payments reconciled against it. A register
//! file is imported as a job ([`super::register_jobs`]), a batch of rows
//! per transaction, its findings in one more at the end; each
//! dossier's payments are summed by one aggregate query, and its outcome
//! computed from the sums whenever it is asked for.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::conn::Conn;

use super::agencies::find_in_scope;
use super::audit::{self, Change};
use super::exceptions::{self, Finding};
use super::query::{Filtered, Listed, Placeholders, Value, page};
use super::register_jobs::RegisterSoFar;
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::dossier::{Dossier, DossierOutcome, DossierPayments, outcome};
use crate::domain::payment::{Channel, ExceptionKind, Resolution};
use crate::domain::settlement::local_day;
use crate::domain::{Agency, AgencyCode, Scope, Timestamp, Vnd};

/// Rows written by one statement, and dossier codes looked up by one: well
/// below either backend's limit on bound values (SQLite 32,766;
/// PostgreSQL 65,535).
const BATCH: usize = 1_000;

/// What an import of a register did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DossierImportSummary {
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// The outcomes of the file's dossiers, each outcome named.
    pub outcomes: BTreeMap<DossierOutcome, usize>,
    /// `unknown_dossier` exceptions this import raised.
    pub unknown_dossier_exceptions: usize,
    /// `unknown_dossier` exceptions this import cleared, their dossier now listed.
    pub unknown_dossier_exceptions_cleared: usize,
}

/// A registered dossier with its payments summed and their outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconciledDossier {
    pub dossier: Dossier,
    pub payments: DossierPayments,
    pub outcome: DossierOutcome,
}

#[derive(Debug, Clone, Default)]
pub struct DossierFilter {
    pub agency_code: Option<AgencyCode>,
    pub outcome: Option<DossierOutcome>,
    pub received_from: Option<Timestamp>,
    pub received_to: Option<Timestamp>,
    /// The cursor of the previous page: the last dossier's [`sort_key`].
    pub after: Option<String>,
    pub limit: i64,
}

// The sums of a dossier's payments, over the rows of `STANDINGS_FROM`.
const PAYMENT_COUNT: &str = "COUNT(p.id)";
const RECEIVED: &str = "COALESCE(SUM(p.amount), 0)";
const FEE_SIZED: &str = "COALESCE(SUM(CASE WHEN p.amount = d.fee_amount THEN 1 ELSE 0 END), 0)";

/// How many of a dossier's payments came through `channel`.
fn paid_through(channel: Channel) -> String {
    format!(
        "COALESCE(SUM(CASE WHEN p.channel = '{}' THEN 1 ELSE 0 END), 0)",
        channel.as_str()
    )
}

/// The dossiers, each joined to the payments of its invoices: those of
/// its agency and dossier code, whether applied or not.
const STANDINGS_FROM: &str = " FROM dossiers d JOIN agencies a ON a.code = d.agency_code
     LEFT JOIN invoices i ON i.agency_code = d.agency_code AND i.dossier_code = d.dossier_code
     LEFT JOIN payments p ON p.invoice_id = i.id";

const STANDINGS_GROUP: &str = "GROUP BY d.agency_code, d.dossier_code, d.procedure_code,
     d.fee_amount, d.received_at, d.status";

/// A total order of dossiers, newest received first, that a single
/// cursor can resume: the received time is fixed-width and agency codes
/// hold no `|`, so the key is unique. Ordering by the expression itself
/// keeps the order and the cursor's comparison under one collation.
const SORT_KEY: &str = "(d.received_at || '|' || d.agency_code || '|' || d.dossier_code)";

/// The cursor that follows `dossier`, matching [`SORT_KEY`].
fn sort_key(dossier: &Dossier) -> String {
    format!(
        "{}|{}|{}",
        dossier.received_at.to_stored(),
        dossier.agency_code,
        dossier.dossier_code
    )
}

/// `SELECT` with the sums, without `WHERE` or `GROUP BY`.
static SELECT_STANDINGS: LazyLock<String> = LazyLock::new(|| {
    let mut select = format!(
        "SELECT d.agency_code, d.dossier_code, d.procedure_code, d.fee_amount, d.received_at,
            d.status, CAST({PAYMENT_COUNT} AS BIGINT) AS payment_count,
            CAST({RECEIVED} AS BIGINT) AS received, CAST({FEE_SIZED} AS BIGINT) AS fee_sized"
    );
    for channel in Channel::ALL {
        select.push_str(&format!(
            ", CAST({} AS BIGINT) AS paid_{}",
            paid_through(channel),
            channel.as_str()
        ));
    }
    select.push_str(STANDINGS_FROM);
    select
});

/// The `HAVING` condition that keeps dossiers of `outcome`: the rule of
/// [`crate::domain::dossier::outcome`], over the same sums.
fn outcome_condition(outcome: DossierOutcome) -> String {
    let cash = paid_through(Channel::Cash);
    match outcome {
        DossierOutcome::Unpaid => format!("{PAYMENT_COUNT} = 0"),
        DossierOutcome::Underpaid => {
            format!("{PAYMENT_COUNT} > 0 AND {RECEIVED} < d.fee_amount")
        }
        DossierOutcome::PaidCash => format!("{RECEIVED} = d.fee_amount AND {cash} > 0"),
        DossierOutcome::PaidCashless => format!("{RECEIVED} = d.fee_amount AND {cash} = 0"),
        DossierOutcome::Overpaid => format!("{RECEIVED} > d.fee_amount AND {FEE_SIZED} < 2"),
        DossierOutcome::PaidTwice => format!("{RECEIVED} > d.fee_amount AND {FEE_SIZED} >= 2"),
    }
}

fn dossier_from_row(row: &AnyRow) -> Result<Dossier, StoreError> {
    Ok(Dossier {
        agency_code: AgencyCode::from_stored(row.try_get("agency_code")?),
        dossier_code: row.try_get("dossier_code")?,
        procedure_code: row.try_get("procedure_code")?,
        fee_amount: Vnd::new(row.try_get("fee_amount")?),
        received_at: parse_time(row, "received_at")?,
        status: row.try_get("status")?,
    })
}

fn reconciled_from_row(row: &AnyRow) -> Result<ReconciledDossier, StoreError> {
    let dossier = dossier_from_row(row)?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column)?;
        u64::try_from(n).map_err(StoreError::corrupt)
    };
    let mut channels = Vec::new();
    for channel in Channel::ALL {
        if count(&format!("paid_{}", channel.as_str()))? > 0 {
            channels.push(channel);
        }
    }
    let payments = DossierPayments {
        count: count("payment_count")?,
        received: Vnd::new(row.try_get("received")?),
        channels,
        fee_sized: count("fee_sized")?,
    };
    let outcome = outcome(dossier.fee_amount, &payments);
    Ok(ReconciledDossier {
        dossier,
        payments,
        outcome,
    })
}

/// The dossiers of `agency` with the codes `codes`, as stored, one query per batch.
async fn stored_dossiers(
    conn: &mut Conn<'_>,
    backend: Backend,
    agency: &str,
    codes: &[&str],
) -> Result<Vec<Dossier>, StoreError> {
    let mut stored = Vec::new();
    for chunk in codes.chunks(BATCH) {
        let mut placeholders = Placeholders::new(backend);
        let sql = format!(
            "SELECT agency_code, dossier_code, procedure_code, fee_amount, received_at, status
             FROM dossiers WHERE agency_code = {} AND dossier_code IN ({})",
            placeholders.next(),
            placeholders.list(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(agency);
        for code in chunk {
            query = query.bind(*code);
        }
        for row in query.fetch_all(&mut *conn).await? {
            stored.push(dossier_from_row(&row)?);
        }
    }
    Ok(stored)
}

/// Inserts `dossiers`, or updates them where listed before, in batches.
async fn upsert(
    conn: &mut Conn<'_>,
    backend: Backend,
    dossiers: &[&Dossier],
    now: Timestamp,
) -> Result<(), StoreError> {
    for chunk in dossiers.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO dossiers (agency_code, dossier_code, procedure_code, fee_amount,
                 received_at, status, imported_at, updated_at)
             VALUES {}
             ON CONFLICT (agency_code, dossier_code) DO UPDATE SET
                 procedure_code = excluded.procedure_code, fee_amount = excluded.fee_amount,
                 received_at = excluded.received_at, status = excluded.status,
                 updated_at = excluded.updated_at",
            Placeholders::new(backend).rows(chunk.len(), 8)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for dossier in chunk {
            query = query
                .bind(dossier.agency_code.as_str())
                .bind(dossier.dossier_code.as_str())
                .bind(dossier.procedure_code.as_str())
                .bind(dossier.fee_amount.dong())
                .bind(dossier.received_at.to_stored())
                .bind(dossier.status.as_str())
                .bind(now.to_stored())
                .bind(now.to_stored());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The outcomes of the dossiers of `agency` with the codes `codes`.
async fn count_outcomes(
    conn: &mut Conn<'_>,
    backend: Backend,
    agency: &str,
    codes: &[&str],
    counts: &mut BTreeMap<DossierOutcome, usize>,
) -> Result<(), StoreError> {
    for chunk in codes.chunks(BATCH) {
        let mut placeholders = Placeholders::new(backend);
        let sql = format!(
            "{} WHERE d.agency_code = {} AND d.dossier_code IN ({}) {STANDINGS_GROUP}",
            *SELECT_STANDINGS,
            placeholders.next(),
            placeholders.list(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(agency);
        for code in chunk {
            query = query.bind(*code);
        }
        for row in query.fetch_all(&mut *conn).await? {
            *counts
                .entry(reconciled_from_row(&row)?.outcome)
                .or_default() += 1;
        }
    }
    Ok(())
}

/// Clears the open `unknown_dossier` exceptions whose dossier the
/// register now lists; returns how many.
async fn clear_registered(
    conn: &mut Conn<'_>,
    actor: &Actor,
    now: Timestamp,
) -> Result<usize, StoreError> {
    let payment_ids: Vec<String> = sqlx::query_scalar(
        "SELECT x.payment_id FROM payment_exceptions x
         WHERE x.kind = $1 AND x.status = 'open' AND x.payment_id IS NOT NULL
           AND EXISTS (SELECT 1 FROM dossiers d
                       WHERE d.agency_code = x.agency_code AND d.dossier_code = x.dossier_code)
         ORDER BY x.id",
    )
    .bind(ExceptionKind::UnknownDossier.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let mut cleared = 0;
    for payment_id in &payment_ids {
        let note = "the dossier register now lists the dossier";
        if exceptions::clear(
            conn,
            actor,
            ExceptionKind::UnknownDossier,
            payment_id,
            Resolution::DossierRegistered,
            note,
            now,
        )
        .await?
        {
            cleared += 1;
        }
    }
    Ok(cleared)
}

/// The days (in Vietnam) an agency's dossiers in a file were received on:
/// `(agency, first day, last day)`.
pub(super) type Span = (String, String, String);

/// Raises an `unknown_dossier` exception for each payment applied to an
/// invoice of an agency in `spans`, collected within its span, whose
/// dossier the register does not list and that has not been raised
/// before; returns how many were raised.
async fn raise_unknown(
    conn: &mut Conn<'_>,
    backend: Backend,
    actor: &Actor,
    spans: &[Span],
    now: Timestamp,
) -> Result<usize, StoreError> {
    let mut raised = 0;
    // Three values an agency: a few hundred agencies a query.
    for chunk in spans.chunks(BATCH / 3) {
        let mut placeholders = Placeholders::new(backend);
        let within = (0..chunk.len())
            .map(|_| {
                format!(
                    "(p.agency_code = {} AND p.collected_on >= {} AND p.collected_on <= {})",
                    placeholders.next(),
                    placeholders.next(),
                    placeholders.next()
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!(
            "SELECT p.id, p.amount, p.invoice_id, p.agency_code, a.path, i.dossier_code
             FROM payments p
             JOIN invoices i ON i.id = p.invoice_id
             JOIN agencies a ON a.code = p.agency_code
             WHERE p.exception_kind IS NULL AND ({within})
               AND NOT EXISTS (SELECT 1 FROM dossiers d
                               WHERE d.agency_code = i.agency_code AND d.dossier_code = i.dossier_code)
               AND NOT EXISTS (SELECT 1 FROM payment_exceptions x
                               WHERE x.kind = 'unknown_dossier' AND x.payment_id = p.id)
             ORDER BY p.id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (agency, first, last) in chunk {
            query = query
                .bind(agency.as_str())
                .bind(first.as_str())
                .bind(last.as_str());
        }
        let found = query.fetch_all(&mut *conn).await?;
        for row in &found {
            let payment_id: String = row.try_get("id")?;
            let invoice_id: String = row.try_get("invoice_id")?;
            let agency_code: String = row.try_get("agency_code")?;
            let path: String = row.try_get("path")?;
            let dossier_code: String = row.try_get("dossier_code")?;
            let amount = Vnd::new(row.try_get("amount")?);
            let kind = ExceptionKind::UnknownDossier;
            let finding = Finding {
                kind,
                payment_id: Some(&payment_id),
                invoice_id: Some(&invoice_id),
                agency: Some((&agency_code, &path)),
                amount: Some(amount),
                detail: format!(
                    "{}: dossier {dossier_code} of agency {agency_code}",
                    kind.describe(amount, None)
                ),
                settlement_line: None,
                dossier_code: Some(&dossier_code),
                tell_dossier_system: false,
            };
            if exceptions::raise(conn, actor, &finding, now)
                .await?
                .is_some()
            {
                raised += 1;
            }
        }
    }
    Ok(raised)
}

/// The deepest agency above or at every one of `agencies`, as `(code,
/// path)`: whose audit readers see an import. `None` when they share none.
fn common_ancestor<'a>(agencies: impl IntoIterator<Item = &'a Agency>) -> Option<(String, String)> {
    let mut common: Option<Vec<&str>> = None;
    for agency in agencies {
        let segments: Vec<&str> = agency.path.split('/').filter(|s| !s.is_empty()).collect();
        common = Some(match common {
            None => segments,
            Some(common) => common
                .into_iter()
                .zip(segments)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    let common = common?;
    let code = common.last()?;
    Some((code.to_string(), format!("/{}/", common.join("/"))))
}

/// Applies a batch of a register's rows, in the caller's transaction:
/// every row's agency is in the importer's scope (checked before); a
/// dossier listed before is updated, never duplicated. Adds to `so_far`
/// what they came to: created, updated or unchanged, their outcomes, and
/// each agency's days of received dossiers.
pub(super) async fn apply_register_rows(
    conn: &mut Conn<'_>,
    backend: Backend,
    rows: &[(usize, Dossier)],
    so_far: &mut RegisterSoFar,
    now: Timestamp,
) -> Result<(), StoreError> {
    // The rows by agency, in the order agencies first appear.
    let mut by_agency: Vec<(&str, Vec<&Dossier>)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (_, dossier) in rows {
        let code = dossier.agency_code.as_str();
        let i = *index.entry(code).or_insert_with(|| {
            by_agency.push((code, Vec::new()));
            by_agency.len() - 1
        });
        by_agency[i].1.push(dossier);
    }
    let summary = &mut so_far.summary;
    for (agency, dossiers) in &by_agency {
        let codes: Vec<&str> = dossiers.iter().map(|d| d.dossier_code.as_str()).collect();
        let stored: HashMap<String, Dossier> = stored_dossiers(conn, backend, agency, &codes)
            .await?
            .into_iter()
            .map(|d| (d.dossier_code.clone(), d))
            .collect();
        let mut changed = Vec::new();
        for dossier in dossiers {
            match stored.get(&dossier.dossier_code) {
                None => {
                    summary.created += 1;
                    changed.push(*dossier);
                }
                Some(before) if before.same_as(dossier) => summary.unchanged += 1,
                Some(_) => {
                    summary.updated += 1;
                    changed.push(*dossier);
                }
            }
        }
        upsert(conn, backend, &changed, now).await?;
        count_outcomes(conn, backend, agency, &codes, &mut summary.outcomes).await?;
        let days = dossiers.iter().map(|d| local_day(d.received_at));
        let first = days.clone().min().unwrap_or_default();
        let last = days.max().unwrap_or_default();
        match so_far.spans.iter_mut().find(|(code, _, _)| code == agency) {
            Some((_, from, to)) => {
                if first < *from {
                    *from = first;
                }
                if last > *to {
                    *to = last;
                }
            }
            None => so_far.spans.push((agency.to_string(), first, last)),
        }
    }
    summary.rows += rows.len();
    Ok(())
}

/// Ends a register's import, in the caller's transaction: for each agency
/// in `spans`, the payments applied to its invoices within its span whose
/// dossier the register does not list become `unknown_dossier` exceptions
/// (once a payment), and those whose dossier it now lists are cleared.
/// One audit record tells the import, with `summary`.
pub(super) async fn finish_register(
    conn: &mut Conn<'_>,
    backend: Backend,
    actor: &Actor,
    sha256: &str,
    spans: &[Span],
    summary: &mut DossierImportSummary,
    now: Timestamp,
) -> Result<(), StoreError> {
    summary.unknown_dossier_exceptions_cleared = clear_registered(conn, actor, now).await?;
    summary.unknown_dossier_exceptions = raise_unknown(conn, backend, actor, spans, now).await?;
    let mut agencies = Vec::with_capacity(spans.len());
    for (code, _, _) in spans {
        agencies.push(find_in_scope(conn, &Scope::All, code).await?);
    }
    let codes: Vec<&str> = spans.iter().map(|(code, _, _)| code.as_str()).collect();
    let ancestor = common_ancestor(&agencies);
    audit::record(
        conn,
        actor,
        Change {
            action: "dossiers.imported",
            object_type: "dossier_register",
            object_id: sha256,
            agency: ancestor
                .as_ref()
                .map(|(code, path)| (code.as_str(), path.as_str())),
            before: None,
            after: Some(json!({
                "sha256": sha256,
                "agencies": codes,
                "summary": summary,
            })),
            at: now,
        },
    )
    .await?;
    Ok(())
}

impl Store {
    /// Registered dossiers in `scope` with their payments and outcomes,
    /// newest received first.
    pub async fn list_dossiers(
        &self,
        scope: &Scope,
        filter: &DossierFilter,
    ) -> Result<Listed<ReconciledDossier>, StoreError> {
        let mut query = Filtered::new(&SELECT_STANDINGS);
        query.and(
            "substr(a.path, 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        if let Some(code) = &filter.agency_code {
            let mut conn = self.pool.acquire().await?;
            let agency = find_in_scope(&mut Conn::from(&mut *conn), scope, code.as_str()).await?;
            query.and(
                "substr(a.path, 1, length({})) = {}",
                Value::Text(agency.path),
            );
        }
        query.during("d.received_at", filter.received_from, filter.received_to);
        if let Some(after) = &filter.after {
            query.and(&format!("{SORT_KEY} < {{}}"), Value::Text(after.clone()));
        }
        query.then(STANDINGS_GROUP);
        if let Some(outcome) = filter.outcome {
            query.then(&format!("HAVING {}", outcome_condition(outcome)));
        }
        query
            .then(&format!("ORDER BY {SORT_KEY} DESC"))
            .then_bind("LIMIT {}", Value::Int(filter.limit + 1));
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, filter.limit, reconciled_from_row, |r| {
            sort_key(&r.dossier)
        })
    }
}

impl Store {
    /// How many dossiers with a fee, received in `[from, to)` by agencies
    /// in `scope`, came to each outcome: what the dashboard's online
    /// payment rate is made of. One query: each dossier's outcome is the
    /// first of the (exclusive) `HAVING` conditions its sums meet.
    pub async fn dossier_outcome_counts(
        &self,
        scope: &Scope,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<std::collections::BTreeMap<DossierOutcome, u64>, StoreError> {
        let outcome = DossierOutcome::ALL
            .into_iter()
            .map(|o| format!("WHEN {} THEN '{}'", outcome_condition(o), o.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut query = Filtered::new(&format!(
            "SELECT CASE {outcome} END AS outcome{STANDINGS_FROM}"
        ));
        query.and(
            "substr(a.path, 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        query.and_fixed("d.fee_amount > 0");
        query.during("d.received_at", from, to);
        query.then(STANDINGS_GROUP);
        let rows = query
            .wrapped(
                "SELECT outcome, CAST(COUNT(*) AS BIGINT) AS n FROM (",
                ") standing GROUP BY outcome",
            )
            .build()
            .fetch_all(&self.pool)
            .await?;
        let mut counts: std::collections::BTreeMap<DossierOutcome, u64> =
            DossierOutcome::ALL.into_iter().map(|o| (o, 0)).collect();
        for row in rows {
            let outcome: Option<String> = row.try_get("outcome")?;
            let outcome = outcome
                .as_deref()
                .and_then(DossierOutcome::parse)
                .ok_or_else(|| StoreError::corrupt(format!("a dossier of outcome {outcome:?}")))?;
            let n: i64 = row.try_get("n")?;
            counts.insert(outcome, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AgencyLevel;

    fn agency(path: &str) -> Agency {
        let code = path.trim_end_matches('/').rsplit('/').next().unwrap();
        Agency {
            code: AgencyCode::from_stored(code.into()),
            name: code.into(),
            level: AgencyLevel::Commune,
            parent_code: None,
            path: path.into(),
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn an_import_is_seen_from_the_deepest_common_agency() {
        let [p, d1, c1, d2, q] = ["/P/", "/P/P.D1/", "/P/P.D1/C1/", "/P/P.D2/", "/Q/"].map(agency);
        assert_eq!(
            common_ancestor([&c1]),
            Some(("C1".into(), "/P/P.D1/C1/".into()))
        );
        assert_eq!(
            common_ancestor([&c1, &d1]),
            Some(("P.D1".into(), "/P/P.D1/".into()))
        );
        assert_eq!(
            common_ancestor([&c1, &d2]),
            Some(("P".into(), "/P/".into()))
        );
        assert_eq!(common_ancestor([&p, &q]), None);
        assert_eq!(common_ancestor([]), None);
    }
}
