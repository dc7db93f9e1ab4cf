//! Settlement statements: a file's lines matched to payments, a batch of
//! lines per transaction (the job around them is in
//! [`super::statement_jobs`]). Each batch costs a few queries whatever its
//! size: what its lines are matched against ([`super::settlement_lookups`]),
//! the payments recovered from lines no payment matched
//! ([`super::recoveries`]), the lines themselves in one insert. When the
//! last batch is applied, the payments left unsettled are found
//! ([`super::unsettled`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;

use super::audit::{self, Change};
use super::exceptions::Finding;
use super::query::{Filtered, Listed, Value, page};
use super::recoveries::{Recovering, Unmatched, check_scope};
use super::settlement_lookups::{
    AgencyPaths, Settled, candidates, clear_unsettled, insert_lines, line_number, stored_line,
};
use super::statement_jobs::ClaimedImport;
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind};
use crate::domain::settlement::{ImportStatus, LineOutcome, StatementLine, format_day, parse_day};
use crate::domain::{AgencyCode, Scope, Timestamp, ValidationError, Vnd};
use crate::reconcile::matching::{Decision, match_lines};

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
    /// Lines of earlier statements that had taken, by reference and
    /// amount, a payment a line of this one names by its transaction id:
    /// each now recovers money of its own.
    pub rematched_lines: u64,
    /// Payments found unsettled past the channel's days by this import.
    pub unsettled_payments: u64,
    /// Payments found unsettled before, settled by this import.
    pub settled_later: u64,
    pub exceptions_opened: u64,
    pub imported_at: Timestamp,
    pub imported_by: String,
}

impl SettlementSummary {
    /// The summary of a job none of whose lines is applied yet.
    pub fn starting(job: &ClaimedImport) -> SettlementSummary {
        SettlementSummary {
            id: job.id.clone(),
            channel: job.channel,
            profile: job.profile.clone(),
            sha256: job.sha256.clone(),
            lines: 0,
            outcomes: LineOutcome::ALL.into_iter().map(|o| (o, 0)).collect(),
            rematched_lines: 0,
            unsettled_payments: 0,
            settled_later: 0,
            exceptions_opened: 0,
            imported_at: Timestamp::now(),
            imported_by: job.actor.name.clone(),
        }
    }
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

/// What every step of one import needs.
pub(super) struct Import<'a> {
    pub actor: &'a Actor,
    pub scope: &'a Scope,
    pub channel: Channel,
    pub file_id: &'a str,
    /// The account a bank statement is of, if named.
    pub account_number: Option<&'a str>,
    pub now: Timestamp,
}

impl<'a> Import<'a> {
    /// What a claimed job's batch writes as, at `now`.
    fn of(job: &'a ClaimedImport, now: Timestamp) -> Self {
        Import {
            actor: &job.actor,
            scope: &job.scope,
            channel: job.channel,
            file_id: &job.id,
            account_number: job.account_number.as_deref(),
            now,
        }
    }
}

impl Store {
    /// Checks a job's lines before any is applied: each must settle, or
    /// recover, a payment of an agency in the importer's scope (a line of
    /// no agency is anyone's). Reads only, outside the write path.
    pub async fn check_statement_lines(
        &self,
        job: &ClaimedImport,
        lines: &[StatementLine],
    ) -> Result<(), StoreError> {
        if job.scope == Scope::All || lines.is_empty() {
            return Ok(());
        }
        let prefix = job.scope.path_prefix();
        let mut conn = self.pool.acquire().await?;
        let mut conn = Conn::Any(&mut conn);
        let (found, settled_refs) = candidates(&mut conn, self.backend, job.channel, lines).await?;
        let mut paths = AgencyPaths::default();
        paths.learn(&mut conn, self.backend, &found).await?;
        let decisions = match_lines(lines, &found.candidates, &settled_refs);
        let missing: Vec<Unmatched<'_>> = lines
            .iter()
            .zip(&decisions)
            .filter(|(_, decision)| **decision == Decision::Missing)
            .map(|(line, _)| Unmatched {
                line,
                file_id: &job.id,
                account_number: job.account_number.as_deref(),
            })
            .collect();
        let mut recovered_under = self
            .recovered_under(&mut conn, job.channel, &missing)
            .await?
            .into_iter();
        for (line, decision) in lines.iter().zip(&decisions) {
            let path = match decision {
                Decision::Payment { payment_id, .. } | Decision::Reclaim { payment_id, .. } => {
                    found
                        .settling(payment_id, &paths)?
                        .agency
                        .map(|(_, path)| path)
                }
                Decision::Missing => recovered_under.next().flatten(),
                // The same payment as the line it repeats.
                Decision::DuplicateOf(_) => None,
            };
            if path.is_some_and(|path| !path.starts_with(prefix)) {
                return Err(outside_scope(line));
            }
        }
        Ok(())
    }

    /// Applies one batch of a job's lines in one transaction, with the
    /// job's progress (`summary`, updated only if the batch commits):
    /// after a crash the job goes on after the last batch committed.
    pub async fn apply_statement_lines(
        &self,
        job: &ClaimedImport,
        lines: &[StatementLine],
        summary: &mut SettlementSummary,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        let Some(last) = lines.last() else {
            return Ok(());
        };
        let mut tx = self.begin_write().await?;
        self.plan_for_new_lines(&mut tx).await?;
        let import = Import::of(job, Timestamp::now());
        let mut so_far = summary.clone();
        let mut paths = AgencyPaths::default();
        self.settle_chunk(&mut tx.conn(), &import, lines, &mut paths, &mut so_far)
            .await?;
        let progress = serde_json::to_string(&so_far).map_err(StoreError::corrupt)?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE settlement_files SET applied_through = $1, progress = $2, claimed_until = $3
                 WHERE id = $4 AND claimed_by = $5 AND status = 'running'",
            )
            .bind(line_number(last))
            .bind(progress)
            .bind(super::statement_jobs::claimed_until(lease))
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await?;
        *summary = so_far;
        Ok(())
    }

    /// Ends a job whose every line is applied: finds the payments left
    /// unsettled, and publishes the summary, in one transaction.
    pub async fn finish_statement_import(
        &self,
        job: &ClaimedImport,
        mut summary: SettlementSummary,
    ) -> Result<SettlementSummary, StoreError> {
        let mut tx = self.begin_write().await?;
        self.plan_for_new_lines(&mut tx).await?;
        let now = Timestamp::now();
        let import = Import::of(job, now);
        let settled_through: Option<String> = sqlx::query_scalar(
            "SELECT max(settlement_date) FROM settlement_lines WHERE file_id = $1",
        )
        .bind(&job.id)
        .fetch_one(&mut tx.conn())
        .await?;
        let settled_through = settled_through.as_deref().and_then(parse_day);
        let checked_before = self
            .find_unsettled(
                &mut tx.conn(),
                &import,
                settled_through,
                job.settlement_days,
                &mut summary,
            )
            .await?;
        summary.imported_at = now;
        let summary_json = serde_json::to_string(&summary).map_err(StoreError::corrupt)?;
        audit::record(
            &mut tx.conn(),
            &job.actor,
            Change {
                action: "settlement.imported",
                object_type: "settlement_file",
                object_id: &job.id,
                agency: None,
                before: None,
                after: audit::state(&summary),
                at: now,
            },
        )
        .await?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE settlement_files SET line_count = $1, summary = $2, settled_through = $3,
                     checked_scope = $4, checked_before = $5, status = 'done', progress = NULL,
                     claimed_by = NULL, claimed_until = NULL
                 WHERE id = $6 AND claimed_by = $7 AND status = 'running'",
            )
            .bind(i64::try_from(summary.lines).unwrap_or(i64::MAX))
            .bind(&summary_json)
            .bind(settled_through.map(format_day))
            .bind(checked_before.as_ref().map(|_| job.scope.path_prefix()))
            .bind(checked_before)
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await?;
        Ok(summary)
    }

    /// On PostgreSQL, plans a batch's lookups by their indexes: the lines
    /// an import has just inserted are in no statistics until the job
    /// refreshes them, so the planner takes the growing table for empty
    /// and would scan it whole.
    async fn plan_for_new_lines(&self, tx: &mut super::WriteTx) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::raw_sql(
                "SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
                 SET LOCAL enable_mergejoin = off",
            )
            .execute(&mut tx.conn())
            .await?;
        }
        Ok(())
    }

    /// Matches and stores one batch of lines.
    async fn settle_chunk(
        &self,
        tx: &mut Conn<'_>,
        import: &Import<'_>,
        chunk: &[StatementLine],
        paths: &mut AgencyPaths,
        summary: &mut SettlementSummary,
    ) -> Result<(), StoreError> {
        let (found, settled_refs) = candidates(tx, self.backend, import.channel, chunk).await?;
        paths.learn(tx, self.backend, &found).await?;
        let decisions = match_lines(chunk, &found.candidates, &settled_refs);

        // Stored lines give back the payments these lines name, and
        // recover their own; then the missing payments are recovered
        // (duplicates name them), all together.
        let mut reclaimed = Vec::new();
        for decision in &decisions {
            if let Decision::Reclaim { from, .. } = decision {
                reclaimed.push(stored_line(tx, import.channel, from).await?);
            }
        }
        let mut unmatched: Vec<Unmatched<'_>> = reclaimed
            .iter()
            .map(|(from, line, account_number)| Unmatched {
                line,
                file_id: &from.file_id,
                account_number: account_number.as_deref(),
            })
            .collect();
        let mut missing_at: HashMap<usize, usize> = HashMap::new();
        for (i, (line, decision)) in chunk.iter().zip(&decisions).enumerate() {
            if *decision == Decision::Missing {
                missing_at.insert(i, unmatched.len());
                unmatched.push(Unmatched {
                    line,
                    file_id: import.file_id,
                    account_number: import.account_number,
                });
            }
        }
        let recovering = Recovering {
            actor: import.actor,
            scope: import.scope,
            channel: import.channel,
            now: import.now,
        };
        let recoveries = self.plan_recoveries(tx, &recovering, &unmatched).await?;

        let mut settled = Vec::with_capacity(chunk.len());
        for (i, (line, decision)) in chunk.iter().zip(&decisions).enumerate() {
            let (outcome, settling) = match decision {
                Decision::Payment {
                    outcome,
                    payment_id,
                }
                | Decision::Reclaim {
                    outcome,
                    payment_id,
                    ..
                } => (*outcome, found.settling(payment_id, paths)?),
                Decision::Missing | Decision::DuplicateOf(_) => {
                    let first = match decision {
                        Decision::DuplicateOf(first) => *first,
                        _ => i,
                    };
                    let recovery = missing_at
                        .get(&first)
                        .map(|&at| &recoveries.recovered[at])
                        .ok_or_else(|| StoreError::corrupt("a recovered line was not found"))?;
                    let outcome = if first == i {
                        recovery.outcome
                    } else {
                        LineOutcome::DuplicateLine
                    };
                    (outcome, recovery.settling.clone())
                }
            };
            check_scope(import.scope, settling.agency.as_ref(), line)?;
            settled.push(Settled {
                line,
                outcome,
                settling,
            });
        }

        let mut findings = Vec::new();
        for s in &settled {
            let (kind, detail) = match s.outcome {
                LineOutcome::AmountMismatch => (
                    ExceptionKind::AmountMismatch,
                    format!(
                        "line {} settles {} đồng for a payment of {} đồng",
                        s.line.line_no, s.line.amount, s.settling.amount
                    ),
                ),
                LineOutcome::DuplicateLine => (
                    ExceptionKind::DuplicateLine,
                    format!(
                        "line {} settles {} đồng for a payment another line already settled",
                        s.line.line_no, s.line.amount
                    ),
                ),
                LineOutcome::Matched | LineOutcome::MissingPayment => continue,
            };
            findings.push(Finding {
                kind,
                payment_id: Some(&s.settling.payment_id),
                invoice_id: None,
                agency: s
                    .settling
                    .agency
                    .as_ref()
                    .map(|(code, path)| (code.as_str(), path.as_str())),
                amount: Some(s.line.amount),
                detail,
                settlement_line: Some((import.file_id, line_number(s.line))),
                dossier_code: None,
                tell_dossier_system: false,
            });
        }
        recoveries
            .write(
                tx,
                self.backend,
                import.actor,
                &unmatched,
                &findings,
                import.now,
            )
            .await?;
        summary.exceptions_opened += recoveries.exceptions() + findings.len() as u64;
        drop(findings);

        // The stored lines that gave their payments back now name their own.
        for (at, (from, _, _)) in reclaimed.iter().enumerate() {
            let recovery = &recoveries.recovered[at];
            sqlx::query(
                "UPDATE settlement_lines SET outcome = $1, payment_id = $2, agency_code = $3
                 WHERE file_id = $4 AND line_no = $5",
            )
            .bind(recovery.outcome.as_str())
            .bind(&recovery.settling.payment_id)
            .bind(
                recovery
                    .settling
                    .agency
                    .as_ref()
                    .map(|(code, _)| code.as_str()),
            )
            .bind(&from.file_id)
            .bind(from.line_no)
            .execute(&mut *tx)
            .await?;
            if from.file_id == import.file_id {
                // A line of this very file, counted when its chunk was matched.
                let matched = summary.outcomes.entry(LineOutcome::Matched).or_default();
                *matched = matched.saturating_sub(1);
                *summary.outcomes.entry(recovery.outcome).or_default() += 1;
            }
            summary.rematched_lines += 1;
        }

        insert_lines(tx, self.backend, import.channel, import.file_id, &settled).await?;
        let mut newly_settled = Vec::new();
        for s in &settled {
            *summary.outcomes.entry(s.outcome).or_default() += 1;
            summary.lines += 1;
            if s.outcome.settles() {
                newly_settled.push(s.settling.payment_id.as_str());
            }
        }
        summary.settled_later += clear_unsettled(
            tx,
            self.backend,
            import.actor,
            &newly_settled,
            import.file_id,
            import.now,
        )
        .await?;
        Ok(())
    }

    /// Statements imported by keys in `scope` (whose summaries count
    /// only lines `scope` sees), newest first.
    pub async fn list_settlements(
        &self,
        scope: &Scope,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Listed<SettlementSummary>, StoreError> {
        // Only a finished import has a summary: until its last batch is
        // applied, a statement is in no listing.
        let mut query = Filtered::new("SELECT id, summary FROM settlement_files");
        query
            .and_fixed("summary IS NOT NULL")
            .and(
                "substr(imported_scope, 1, length({})) = {}",
                Value::Text(scope.path_prefix().to_owned()),
            )
            .newest_first("id", after_id, limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, limit, summary_from_row, |s| s.id.clone())
    }

    /// A statement's lines in `scope` (a line of no agency only an
    /// unscoped key sees), in file order.
    pub async fn settlement_lines(
        &self,
        scope: &Scope,
        file_id: &str,
        filter: &SettlementLineFilter,
    ) -> Result<Listed<SettledLine>, StoreError> {
        // Whoever imported it: its lines are shown by their agencies.
        // A statement's lines are shown once its import is done.
        if self.statement_import(&Scope::All, file_id).await?.status != ImportStatus::Done {
            return Err(StoreError::NotFound);
        }
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

pub(super) fn outside_scope(line: &StatementLine) -> StoreError {
    StoreError::ImportRefused {
        line: line.line_no,
        // Said the same whatever the reason, so that a key learns
        // nothing of the transactions of agencies it does not see.
        message: format!("transaction {} is not in your scope", line.txn_ref),
    }
}

/// The account a bank statement is of must be one of an agency in scope.
pub(super) async fn account_in_scope(
    conn: &mut Conn<'_>,
    scope: &Scope,
    account_number: &str,
) -> Result<(), StoreError> {
    let found: Option<String> = sqlx::query_scalar(
        "SELECT b.agency_code FROM agency_bank_accounts b JOIN agencies a ON a.code = b.agency_code
         WHERE b.account_number = $1 AND substr(a.path, 1, length($2)) = $2",
    )
    .bind(account_number)
    .bind(scope.path_prefix())
    .fetch_optional(conn)
    .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(StoreError::Invalid(ValidationError::new(
            "account",
            "is not the receiving account of an agency in your scope",
        ))),
    }
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
