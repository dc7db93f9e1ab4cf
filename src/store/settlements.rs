//! Settlement statements: a file's lines matched to payments, in one
//! transaction, a chunk of lines at a time. Each chunk costs a few queries
//! whatever its size (the payments its lines name, the lines themselves in
//! one insert); only what needs an officer (a recovered payment, a
//! mismatch, a duplicate) costs more.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::agencies::path_of;
use super::audit::{self, Change};
use super::exceptions::{self, Finding};
use super::payments::{IncomingPayment, PaymentFor};
use super::query::{Filtered, Listed, Placeholders, Value, page};
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, PaymentSource, Resolution};
use crate::domain::settlement::{LineOutcome, StatementLine, format_day, parse_day};
use crate::domain::{AgencyCode, Scope, Timestamp, Vnd};
use crate::reconcile::Profile;
use crate::reconcile::matching::{Candidate, Decision, match_lines};

/// Lines matched per round: bounds memory and the placeholders of one
/// insert (12 per line) below SQLite's and PostgreSQL's limits.
const CHUNK: usize = 1_000;

/// A statement file to import.
pub struct StatementFile<'a> {
    pub channel: Channel,
    /// The profile's name, and the profile.
    pub profile: (&'a str, &'a Profile),
    pub bytes: &'a [u8],
    /// Days a payment of this channel may wait for its line.
    pub settlement_days: u32,
}

/// What an import did; answered again, unchanged, for the same file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementSummary {
    pub id: String,
    pub channel: Channel,
    pub profile: String,
    pub sha256: String,
    pub lines: u64,
    /// Lines per outcome; every outcome is listed.
    pub outcomes: BTreeMap<LineOutcome, u64>,
    /// Payments found unsettled past the channel's days by this import.
    pub unsettled_payments: u64,
    /// Payments found unsettled before, settled by this import.
    pub settled_later: u64,
    pub exceptions_opened: u64,
    pub imported_at: Timestamp,
    pub imported_by: String,
}

/// An import's summary, and whether this call imported the file.
pub struct Imported {
    pub summary: SettlementSummary,
    /// False when the same file was imported before.
    pub new: bool,
}

/// A stored statement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledLine {
    pub file_id: String,
    pub line_no: i64,
    pub channel: Channel,
    pub txn_ref: String,
    pub reference: String,
    pub amount: Vnd,
    pub fee: Vnd,
    pub transaction_time: Timestamp,
    pub settlement_date: String,
    pub outcome: LineOutcome,
    pub payment_id: Option<String>,
    pub agency_code: Option<AgencyCode>,
}

#[derive(Debug, Clone, Default)]
pub struct SettlementLineFilter {
    pub outcome: Option<LineOutcome>,
    /// Lines after this line number: the cursor of the previous page.
    pub after_line: Option<i64>,
    pub limit: i64,
}

/// A payment a chunk's lines may settle, with whose it is.
struct Found {
    candidate: Candidate,
    agency: Option<(String, String)>,
}

/// What a chunk's lines turned out to be, to insert and to count.
struct Settled<'a> {
    line: &'a StatementLine,
    outcome: LineOutcome,
    payment_id: String,
    agency_code: Option<String>,
}

impl Store {
    /// Imports a statement: every line is parsed and matched, or none is.
    /// The same file imported again (by its SHA-256, per channel) changes
    /// nothing and answers with the first import's summary. Lines are
    /// refused when they settle payments of agencies outside `scope`.
    pub async fn import_statement(
        &self,
        actor: &Actor,
        scope: &Scope,
        file: &StatementFile<'_>,
    ) -> Result<Imported, StoreError> {
        let now = Timestamp::now();
        let (profile_name, profile) = file.profile;
        let sha256 = hex::encode(Sha256::digest(file.bytes));
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // One import per channel at a time: two would each see a
            // payment unsettled and both settle it.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(STATEMENT_LOCK + channel_index(file.channel))
                .execute(&mut *tx)
                .await?;
            // The lines this transaction inserts are in no statistics, so
            // the planner takes the growing table for empty and would scan
            // it whole for every chunk. Every lookup here has its index.
            sqlx::raw_sql(
                "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
                 SET LOCAL enable_mergejoin = off",
            )
            .execute(&mut *tx)
            .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO settlement_files (id, channel, profile, sha256, imported_at, imported_by)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, sha256) DO NOTHING",
        )
        .bind(&id)
        .bind(file.channel.as_str())
        .bind(profile_name)
        .bind(&sha256)
        .bind(now.to_stored())
        .bind(&actor.name)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let summary: Option<String> = sqlx::query_scalar(
                "SELECT summary FROM settlement_files WHERE channel = $1 AND sha256 = $2",
            )
            .bind(file.channel.as_str())
            .bind(&sha256)
            .fetch_one(&mut *tx)
            .await?;
            let summary = summary
                .ok_or_else(|| StoreError::corrupt("an imported statement has no summary"))?;
            return Ok(Imported {
                summary: serde_json::from_str(&summary).map_err(StoreError::corrupt)?,
                new: false,
            });
        }
        let mut summary = SettlementSummary {
            id: id.clone(),
            channel: file.channel,
            profile: profile_name.to_owned(),
            sha256,
            lines: 0,
            outcomes: LineOutcome::ALL.into_iter().map(|o| (o, 0)).collect(),
            unsettled_payments: 0,
            settled_later: 0,
            exceptions_opened: 0,
            imported_at: now,
            imported_by: actor.name.clone(),
        };
        let refused = |err: crate::reconcile::LineError| StoreError::ImportRefused {
            line: err.line,
            message: err.reason,
        };
        let mut lines = profile.read(file.bytes).map_err(refused)?;
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            chunk.clear();
            for line in lines.by_ref().take(CHUNK) {
                chunk.push(line.map_err(refused)?);
            }
            if chunk.is_empty() {
                break;
            }
            self.settle_chunk(
                &mut tx,
                actor,
                scope,
                file.channel,
                &id,
                &chunk,
                &mut summary,
                now,
            )
            .await?;
        }
        self.find_unsettled(&mut tx, actor, scope, file, &mut summary, now)
            .await?;
        let summary_json = serde_json::to_string(&summary).map_err(StoreError::corrupt)?;
        sqlx::query("UPDATE settlement_files SET line_count = $1, summary = $2 WHERE id = $3")
            .bind(i64::try_from(summary.lines).unwrap_or(i64::MAX))
            .bind(&summary_json)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            actor,
            Change {
                action: "settlement.imported",
                object_type: "settlement_file",
                object_id: &id,
                agency: None,
                before: None,
                after: audit::state(&summary),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Imported { summary, new: true })
    }

    /// Matches and stores one chunk of lines.
    #[allow(clippy::too_many_arguments)]
    async fn settle_chunk(
        &self,
        tx: &mut AnyConnection,
        actor: &Actor,
        scope: &Scope,
        channel: Channel,
        file_id: &str,
        chunk: &[StatementLine],
        summary: &mut SettlementSummary,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let found = candidates(tx, self.backend, channel, chunk).await?;
        let candidates: Vec<Candidate> = found.values().map(|f| f.candidate.clone()).collect();
        let decisions = match_lines(chunk, &candidates);

        // Recover the missing payments first: their duplicates name them.
        let mut recovered: HashMap<usize, (String, Option<(String, String)>)> = HashMap::new();
        for (i, (line, decision)) in chunk.iter().zip(&decisions).enumerate() {
            if *decision == Decision::Missing {
                let (payment_id, agency) = self
                    .recover_payment(tx, actor, scope, channel, file_id, line, now)
                    .await?;
                summary.exceptions_opened += 1;
                recovered.insert(i, (payment_id, agency));
            }
        }
        let mut settled = Vec::with_capacity(chunk.len());
        for (i, (line, decision)) in chunk.iter().zip(&decisions).enumerate() {
            let (payment_id, agency) = match decision {
                Decision::Payment { payment_id, .. } => {
                    let agency = found.get(payment_id).and_then(|f| f.agency.clone());
                    (payment_id.clone(), agency)
                }
                Decision::Missing => recovered[&i].clone(),
                Decision::DuplicateOf(first) => recovered[first].clone(),
            };
            if let Some((_, path)) = &agency
                && !path.starts_with(scope.path_prefix())
            {
                return Err(outside_scope(line));
            }
            settled.push(Settled {
                line,
                outcome: decision.outcome(),
                payment_id,
                agency_code: agency.map(|(code, _)| code),
            });
        }
        insert_lines(tx, self.backend, channel, file_id, &settled).await?;

        let mut newly_settled = Vec::new();
        for s in &settled {
            *summary.outcomes.entry(s.outcome).or_default() += 1;
            summary.lines += 1;
            if matches!(
                s.outcome,
                LineOutcome::Matched | LineOutcome::AmountMismatch
            ) {
                newly_settled.push(s.payment_id.as_str());
            }
            let kind = match s.outcome {
                LineOutcome::AmountMismatch => ExceptionKind::AmountMismatch,
                LineOutcome::DuplicateLine => ExceptionKind::DuplicateLine,
                LineOutcome::Matched | LineOutcome::MissingPayment => continue,
            };
            let recorded_amount = found.get(&s.payment_id).map(|f| f.candidate.amount);
            let path = found
                .get(&s.payment_id)
                .and_then(|f| f.agency.as_ref())
                .map(|(_, path)| path.as_str());
            let detail = match (kind, recorded_amount) {
                (ExceptionKind::AmountMismatch, Some(recorded)) => format!(
                    "line {} settles {} đồng for a payment of {recorded} đồng",
                    s.line.line_no, s.line.amount
                ),
                _ => format!(
                    "line {} settles {} đồng for a payment another line already settled",
                    s.line.line_no, s.line.amount
                ),
            };
            exceptions::raise(
                tx,
                actor,
                &Finding {
                    kind,
                    payment_id: Some(&s.payment_id),
                    invoice_id: None,
                    agency: s.agency_code.as_deref().zip(path),
                    amount: Some(s.line.amount),
                    detail,
                    settlement_line: Some((file_id, line_number(s.line))),
                    dossier_code: None,
                },
                now,
            )
            .await?;
            summary.exceptions_opened += 1;
        }
        summary.settled_later +=
            clear_unsettled(tx, self.backend, actor, &newly_settled, file_id, now).await?;
        Ok(())
    }

    /// Records the payment a line settles that no callback reported,
    /// through the same exactly-once path as a callback, and raises
    /// `missing_payment` for it. Returns its id and agency.
    #[allow(clippy::too_many_arguments)]
    async fn recover_payment(
        &self,
        tx: &mut AnyConnection,
        actor: &Actor,
        scope: &Scope,
        channel: Channel,
        file_id: &str,
        line: &StatementLine,
        now: Timestamp,
    ) -> Result<(String, Option<(String, String)>), StoreError> {
        let paid_for = match channel {
            Channel::BankTransfer => PaymentFor::Transfer {
                note: &line.reference,
                code: line.payment_code.as_ref(),
                account_number: None,
            },
            _ => PaymentFor::Order(&line.reference),
        };
        let recorded = self
            .record_in(
                tx,
                actor,
                &IncomingPayment {
                    channel,
                    provider_txn_id: &line.txn_ref,
                    amount: line.amount,
                    paid_for,
                    paid_at: Some(line.transaction_time),
                    source: PaymentSource::Statement,
                },
            )
            .await?;
        let payment = recorded.payment;
        let code = payment.agency_code.as_ref().map(|c| c.as_str());
        let agency = code.zip(path_of(tx, code).await?);
        if let Some((_, path)) = &agency
            && !path.starts_with(scope.path_prefix())
        {
            return Err(outside_scope(line));
        }
        let agency = agency.map(|(code, path)| (code.to_owned(), path));
        exceptions::raise(
            tx,
            actor,
            &Finding {
                kind: ExceptionKind::MissingPayment,
                payment_id: Some(&payment.id),
                invoice_id: payment.invoice_id.as_deref(),
                agency: agency.as_ref().map(|(c, p)| (c.as_str(), p.as_str())),
                amount: Some(line.amount),
                detail: format!(
                    "line {} settles {} đồng that no callback reported; the payment was recovered from the statement",
                    line.line_no, line.amount
                ),
                settlement_line: Some((file_id, line_number(line))),
                dossier_code: None,
            },
            now,
        )
        .await?;
        Ok((payment.id, agency))
    }

    /// Raises `unsettled_payment` for each payment of the channel (in
    /// `scope`) that no line settles and that was collected more than the
    /// channel's days before the latest day any statement settled: a
    /// finding that depends on what was imported, not on the order.
    async fn find_unsettled(
        &self,
        tx: &mut AnyConnection,
        actor: &Actor,
        scope: &Scope,
        file: &StatementFile<'_>,
        summary: &mut SettlementSummary,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT max(settlement_date) FROM settlement_lines WHERE channel = $1",
        )
        .bind(file.channel.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let Some(latest) = latest.as_deref().and_then(parse_day) else {
            return Ok(());
        };
        let Some(cutoff) = latest.checked_sub(time::Duration::days(file.settlement_days.into()))
        else {
            return Ok(());
        };
        let rows = sqlx::query(
            "SELECT p.id, p.amount, p.invoice_id, p.agency_code, a.path, p.collected_on
             FROM payments p LEFT JOIN agencies a ON a.code = p.agency_code
             WHERE p.channel = $1 AND p.collected_on < $2
               AND substr(coalesce(a.path, '/'), 1, length($3)) = $3
               AND NOT EXISTS (SELECT 1 FROM settlement_lines s
                               WHERE s.payment_id = p.id AND s.outcome <> 'duplicate_line')
               AND NOT EXISTS (SELECT 1 FROM payment_exceptions x
                               WHERE x.payment_id = p.id AND x.kind = 'unsettled_payment')
             ORDER BY p.id",
        )
        .bind(file.channel.as_str())
        .bind(format_day(cutoff))
        .bind(scope.path_prefix())
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let payment_id: String = row.try_get("id")?;
            let amount = Vnd::new(row.try_get("amount")?);
            let invoice_id: Option<String> = row.try_get("invoice_id")?;
            let agency_code: Option<String> = row.try_get("agency_code")?;
            let path: Option<String> = row.try_get("path")?;
            let collected_on: String = row.try_get("collected_on")?;
            let raised = exceptions::raise(
                tx,
                actor,
                &Finding {
                    kind: ExceptionKind::UnsettledPayment,
                    payment_id: Some(&payment_id),
                    invoice_id: invoice_id.as_deref(),
                    agency: agency_code.as_deref().zip(path.as_deref()),
                    amount: Some(amount),
                    detail: format!(
                        "{amount} đồng collected on {collected_on} is in no statement settled up to {}, {} days allowed",
                        format_day(latest),
                        file.settlement_days
                    ),
                    settlement_line: None,
                    dossier_code: None,
                },
                now,
            )
            .await?;
            if raised.is_some() {
                summary.unsettled_payments += 1;
                summary.exceptions_opened += 1;
            }
        }
        Ok(())
    }

    /// Imported statements, newest first.
    pub async fn list_settlements(
        &self,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Listed<SettlementSummary>, StoreError> {
        // Only a finished import has a summary; an unfinished one is
        // invisible outside its transaction anyway.
        let mut query = Filtered::new("SELECT id, summary FROM settlement_files");
        query
            .and_fixed("summary IS NOT NULL")
            .newest_first("id", after_id, limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, limit, summary_from_row, |s| s.id.clone())
    }

    /// An imported statement's summary.
    pub async fn get_settlement(&self, id: &str) -> Result<SettlementSummary, StoreError> {
        let row = sqlx::query("SELECT id, summary FROM settlement_files WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        summary_from_row(&row)
    }

    /// A statement's lines in `scope` (a line of no agency only an
    /// unscoped key sees), in file order.
    pub async fn settlement_lines(
        &self,
        scope: &Scope,
        file_id: &str,
        filter: &SettlementLineFilter,
    ) -> Result<Listed<SettledLine>, StoreError> {
        self.get_settlement(file_id).await?;
        let mut query = Filtered::new(
            "SELECT l.file_id, l.line_no, l.channel, l.txn_ref, l.reference, l.amount, l.fee,
                    l.transaction_time, l.settlement_date, l.outcome, l.payment_id, l.agency_code
             FROM settlement_lines l LEFT JOIN agencies a ON a.code = l.agency_code",
        );
        query.and("l.file_id = {}", Value::Text(file_id.to_owned()));
        query.and(
            "substr(coalesce(a.path, '/'), 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        if let Some(outcome) = filter.outcome {
            query.and("l.outcome = {}", Value::Text(outcome.as_str().to_owned()));
        }
        if let Some(after) = filter.after_line {
            query.and("l.line_no > {}", Value::Int(after));
        }
        query
            .then("ORDER BY l.line_no")
            .then_bind("LIMIT {}", Value::Int(filter.limit + 1));
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, filter.limit, line_from_row, |l| {
            l.line_no.to_string()
        })
    }
}

/// An arbitrary constant naming the statement import locks, one per channel.
const STATEMENT_LOCK: i64 = 0x6c65_7068_695f_7300;

fn channel_index(channel: Channel) -> i64 {
    Channel::ALL
        .iter()
        .position(|c| *c == channel)
        .map_or(0, |i| i as i64)
}

fn line_number(line: &StatementLine) -> i64 {
    i64::try_from(line.line_no).unwrap_or(i64::MAX)
}

fn outside_scope(line: &StatementLine) -> StoreError {
    StoreError::ImportRefused {
        line: line.line_no,
        message: format!(
            "transaction {} belongs to an agency outside your scope",
            line.txn_ref
        ),
    }
}

const SELECT_CANDIDATES: &str = "SELECT p.id, p.provider_txn_id, p.reference, p.amount,
        p.agency_code, a.path, i.payment_code, s.file_id AS settled_by
     FROM payments p
     LEFT JOIN invoices i ON i.id = p.invoice_id
     LEFT JOIN agencies a ON a.code = p.agency_code
     LEFT JOIN settlement_lines s ON s.payment_id = p.id AND s.outcome <> 'duplicate_line'";

/// The payments a chunk's lines may settle: those with a line's
/// transaction id, then the unsettled ones with the reference (or, for a
/// bank line, the payment code) of a line that named none. Two queries.
async fn candidates(
    conn: &mut AnyConnection,
    backend: Backend,
    channel: Channel,
    chunk: &[StatementLine],
) -> Result<HashMap<String, Found>, StoreError> {
    let txn_refs: Vec<&str> = distinct(chunk.iter().map(|l| l.txn_ref.as_str()));
    let mut found = HashMap::new();
    fetch_candidates(
        conn,
        backend,
        channel,
        "p.provider_txn_id",
        &txn_refs,
        "",
        &mut found,
    )
    .await?;
    let named: HashSet<&str> = found
        .values()
        .map(|f| f.candidate.provider_txn_id.as_str())
        .collect();
    let unnamed = chunk.iter().filter(|l| !named.contains(l.txn_ref.as_str()));
    let (column, keys) = match channel {
        Channel::BankTransfer => (
            "i.payment_code",
            distinct(unnamed.filter_map(|l| l.payment_code.as_ref().map(|c| c.as_str()))),
        ),
        _ => (
            "p.reference",
            distinct(unnamed.map(|l| l.reference.as_str())),
        ),
    };
    fetch_candidates(
        conn,
        backend,
        channel,
        column,
        &keys,
        " AND s.file_id IS NULL",
        &mut found,
    )
    .await?;
    Ok(found)
}

fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

async fn fetch_candidates(
    conn: &mut AnyConnection,
    backend: Backend,
    channel: Channel,
    column: &str,
    keys: &[&str],
    and: &str,
    found: &mut HashMap<String, Found>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut placeholders = Placeholders::new(backend);
    let sql = format!(
        "{SELECT_CANDIDATES} WHERE p.channel = {} AND {column} IN ({}){and}",
        placeholders.next(),
        placeholders.list(keys.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(channel.as_str());
    for key in keys {
        query = query.bind(*key);
    }
    for row in query.fetch_all(&mut *conn).await? {
        let id: String = row.try_get("id")?;
        let agency_code: Option<String> = row.try_get("agency_code")?;
        let path: Option<String> = row.try_get("path")?;
        let settled_by: Option<String> = row.try_get("settled_by")?;
        let candidate = Candidate {
            payment_id: id.clone(),
            provider_txn_id: row.try_get("provider_txn_id")?,
            reference: row.try_get("reference")?,
            payment_code: row.try_get("payment_code")?,
            amount: Vnd::new(row.try_get("amount")?),
            settled: settled_by.is_some(),
        };
        found.insert(
            id,
            Found {
                candidate,
                agency: agency_code.zip(path),
            },
        );
    }
    Ok(())
}

/// Inserts a chunk's lines in one statement.
async fn insert_lines(
    conn: &mut AnyConnection,
    backend: Backend,
    channel: Channel,
    file_id: &str,
    settled: &[Settled<'_>],
) -> Result<(), StoreError> {
    if settled.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO settlement_lines (file_id, line_no, channel, txn_ref, reference, amount, fee,
             transaction_time, settlement_date, outcome, payment_id, agency_code) VALUES {}",
        Placeholders::new(backend).rows(settled.len(), 12)
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in settled {
        query = query
            .bind(file_id)
            .bind(line_number(s.line))
            .bind(channel.as_str())
            .bind(&s.line.txn_ref)
            .bind(&s.line.reference)
            .bind(s.line.amount.dong())
            .bind(s.line.fee.dong())
            .bind(s.line.transaction_time.to_stored())
            .bind(format_day(s.line.settlement_date))
            .bind(s.outcome.as_str())
            .bind(&s.payment_id)
            .bind(s.agency_code.as_deref());
    }
    query.execute(conn).await?;
    Ok(())
}

/// Clears the `unsettled_payment` findings of payments a line now
/// settles. One query finds them.
async fn clear_unsettled(
    conn: &mut AnyConnection,
    backend: Backend,
    actor: &Actor,
    payment_ids: &[&str],
    file_id: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    if payment_ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT payment_id FROM payment_exceptions
         WHERE kind = 'unsettled_payment' AND status = 'open' AND payment_id IN ({})",
        Placeholders::new(backend).list(payment_ids.len())
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
    for id in payment_ids {
        query = query.bind(*id);
    }
    let unsettled = query.fetch_all(&mut *conn).await?;
    let note = format!("settled by statement {file_id}");
    for payment_id in &unsettled {
        exceptions::clear(
            conn,
            actor,
            ExceptionKind::UnsettledPayment,
            payment_id,
            Resolution::SettledLater,
            &note,
            now,
        )
        .await?;
    }
    Ok(unsettled.len() as u64)
}

fn summary_from_row(row: &AnyRow) -> Result<SettlementSummary, StoreError> {
    let summary: Option<String> = row.try_get("summary")?;
    let summary = summary.ok_or_else(|| StoreError::corrupt("a statement without its summary"))?;
    serde_json::from_str(&summary).map_err(StoreError::corrupt)
}

fn line_from_row(row: &AnyRow) -> Result<SettledLine, StoreError> {
    let channel: String = row.try_get("channel")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(SettledLine {
        file_id: row.try_get("file_id")?,
        line_no: row.try_get("line_no")?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::corrupt(format!("line channel {channel:?}")))?,
        txn_ref: row.try_get("txn_ref")?,
        reference: row.try_get("reference")?,
        amount: Vnd::new(row.try_get("amount")?),
        fee: Vnd::new(row.try_get("fee")?),
        transaction_time: parse_time(row, "transaction_time")?,
        settlement_date: row.try_get("settlement_date")?,
        outcome: LineOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::corrupt(format!("line outcome {outcome:?}")))?,
        payment_id: row.try_get("payment_id")?,
        agency_code: row
            .try_get::<Option<String>, _>("agency_code")?
            .map(AgencyCode::from_stored),
    })
}
