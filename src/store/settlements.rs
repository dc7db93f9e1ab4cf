//! Settlement statements: a file's lines matched to payments, a batch of
//! lines per transaction (the job around them is in
//! [`super::statement_jobs`]). Each batch costs a few queries
//! whatever its size (the payments its lines name, the lines themselves in
//! one insert); only what needs an officer (a recovered payment, a
//! mismatch, a duplicate) costs more.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::Date;

use super::conn::Conn;

use super::audit::{self, Change};
use super::bulk::{distinct, json_agg, json_in, json_list, json_rows};
use super::exceptions::{self, Finding};
use super::query::{Filtered, Listed, Value, page};
use super::recoveries::{Recovering, Settling, Unmatched};
use super::statement_jobs::ClaimedImport;
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, Resolution};
use crate::domain::settlement::{ImportStatus, LineOutcome, StatementLine, format_day, parse_day};
use crate::domain::transfer_note::find_payment_code;
use crate::domain::{AgencyCode, Scope, Timestamp, ValidationError, Vnd};
use crate::reconcile::matching::{Candidate, Decision, StoredLine, match_lines};

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

/// The payments a chunk's lines may settle, each once, with whose each
/// is: the candidates side by side, as matching reads them.
#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    /// The agency code of each candidate.
    agencies: Vec<Option<String>>,
    /// Each candidate's place, by payment id.
    by_id: HashMap<String, usize>,
}

impl Found {
    fn add(&mut self, candidate: Candidate, agency: Option<String>) {
        match self.by_id.get(&candidate.payment_id) {
            Some(&at) => {
                self.candidates[at] = candidate;
                self.agencies[at] = agency;
            }
            None => {
                self.by_id
                    .insert(candidate.payment_id.clone(), self.candidates.len());
                self.candidates.push(candidate);
                self.agencies.push(agency);
            }
        }
    }

    /// The payment `payment_id` a line settles, with its agency's path.
    fn settling(&self, payment_id: &str, paths: &AgencyPaths) -> Result<Settling, StoreError> {
        let at = *self
            .by_id
            .get(payment_id)
            .ok_or_else(|| StoreError::corrupt("a matched payment was not found"))?;
        let candidate = &self.candidates[at];
        let agency = match &self.agencies[at] {
            Some(code) => {
                let path = paths.0.get(code).ok_or_else(|| {
                    StoreError::corrupt(format!("payment {payment_id}'s agency was not found"))
                })?;
                Some((code.clone(), path.clone()))
            }
            None => None,
        };
        Ok(Settling {
            payment_id: candidate.payment_id.clone(),
            amount: candidate.amount,
            agency,
        })
    }
}

/// The path of each agency an import's payments belong to, read once per
/// agency: a statement's lines are of a few agencies, and joining each
/// candidate to its agency read the same row for every line.
#[derive(Default)]
struct AgencyPaths(HashMap<String, String>);

impl AgencyPaths {
    /// Reads, in one query, the paths of the agencies of `found` not read
    /// before.
    async fn learn(
        &mut self,
        conn: &mut Conn<'_>,
        backend: Backend,
        found: &Found,
    ) -> Result<(), StoreError> {
        let codes = distinct(
            found
                .agencies
                .iter()
                .flatten()
                .map(String::as_str)
                .filter(|code| !self.0.contains_key(*code)),
        );
        if codes.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT code, path FROM agencies WHERE code {}",
            json_in(backend, "$1")
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(json_list(&codes)?)
            .fetch_all(&mut *conn)
            .await?;
        self.0.extend(rows);
        Ok(())
    }
}

/// What a chunk's lines turned out to be, to insert and to count.
struct Settled<'a> {
    line: &'a StatementLine,
    outcome: LineOutcome,
    settling: Settling,
}

/// What every step of one import needs.
struct Import<'a> {
    actor: &'a Actor,
    scope: &'a Scope,
    channel: Channel,
    file_id: &'a str,
    /// The account a bank statement is of, if named.
    account_number: Option<&'a str>,
    now: Timestamp,
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
    /// an import has just inserted are in no statistics, so the planner
    /// takes the growing table for empty and would scan it whole; and each
    /// statement is planned for its batch, since a plan kept from when the
    /// table was nearly empty reads the index by its first column only.
    async fn plan_for_new_lines(&self, tx: &mut super::WriteTx) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            sqlx::raw_sql(
                "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
                 SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; \
                 SET LOCAL plan_cache_mode = force_custom_plan",
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
            if let Some((_, path)) = &settling.agency
                && !path.starts_with(import.scope.path_prefix())
            {
                return Err(outside_scope(line));
            }
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

    /// Raises `unsettled_payment` for each payment of the channel (in
    /// scope) that no line settles and that was collected more than the
    /// channel's days before the latest day a statement settled: a
    /// finding that depends on what was imported, not on the order. A
    /// bank statement covers one account, so for bank transfers the
    /// latest day is each agency's own. Answers the cutoff day before
    /// which every payment in scope has now been checked, when there is
    /// one and it is the channel's (not each agency's).
    async fn find_unsettled(
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

/// A stored line that a line of this import reclaims its payment from,
/// read back as a statement line, with its statement's account.
async fn stored_line<'a>(
    conn: &mut Conn<'_>,
    channel: Channel,
    from: &'a StoredLine,
) -> Result<(&'a StoredLine, StatementLine, Option<String>), StoreError> {
    let row = sqlx::query(
        "SELECT l.txn_ref, l.reference, l.amount, l.fee, l.transaction_time,
                l.settlement_date, f.account_number
         FROM settlement_lines l JOIN settlement_files f ON f.id = l.file_id
         WHERE l.file_id = $1 AND l.line_no = $2",
    )
    .bind(&from.file_id)
    .bind(from.line_no)
    .fetch_one(conn)
    .await?;
    let reference: String = row.try_get("reference")?;
    let settlement_date: String = row.try_get("settlement_date")?;
    let line = StatementLine {
        line_no: usize::try_from(from.line_no).unwrap_or(usize::MAX),
        txn_ref: row.try_get("txn_ref")?,
        payment_code: match channel {
            Channel::BankTransfer => find_payment_code(&reference),
            _ => None,
        },
        reference,
        amount: Vnd::new(row.try_get("amount")?),
        fee: Vnd::new(row.try_get("fee")?),
        transaction_time: parse_time(&row, "transaction_time")?,
        settlement_date: parse_day(&settlement_date)
            .ok_or_else(|| StoreError::corrupt("a stored line's settlement date"))?,
    };
    Ok((from, line, row.try_get("account_number")?))
}

fn line_number(line: &StatementLine) -> i64 {
    i64::try_from(line.line_no).unwrap_or(i64::MAX)
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

/// The columns of a candidate, in the order [`CandidateRow`] reads them,
/// with its invoice's payment code in the middle.
const CANDIDATE_COLUMNS: (&str, &str) = (
    "p.id, p.provider_txn_id, p.reference, p.amount, p.agency_code",
    "s.file_id, s.line_no, s.txn_ref",
);

const CANDIDATES_FROM: &str = "FROM payments p
     LEFT JOIN settlement_lines s ON s.payment_id = p.id AND s.outcome <> 'duplicate_line'";

/// A candidate's payment code, and the join that finds it: only a bank
/// transfer's line names an invoice by its payment code, so for any other
/// channel there is no invoice to look up.
fn payment_code_of(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::BankTransfer => (
            "i.payment_code",
            "LEFT JOIN invoices i ON i.id = p.invoice_id",
        ),
        _ => ("NULL", ""),
    }
}

/// A candidate as its query answers it: the payment's id, transaction id,
/// reference, amount, agency code, invoice payment code, and the file,
/// line number and transaction id of the line settling it.
type CandidateRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The payments a chunk's lines may settle: those with a line's
/// transaction id; those stored lines settled under a line's transaction
/// id (by reference), with those transaction ids; and the unsettled ones
/// with the reference (or, for a bank line, the payment code) of a line
/// that named none. A few queries, whatever the chunk's size.
async fn candidates(
    conn: &mut Conn<'_>,
    backend: Backend,
    channel: Channel,
    chunk: &[StatementLine],
) -> Result<(Found, HashMap<String, String>), StoreError> {
    let txn_refs: Vec<&str> = distinct(chunk.iter().map(|l| l.txn_ref.as_str()));
    let mut found = Found::default();
    fetch_candidates(
        conn,
        backend,
        "p.provider_txn_id",
        "",
        channel,
        &txn_refs,
        &mut found,
    )
    .await?;
    let named: HashSet<&str> = found
        .candidates
        .iter()
        .map(|c| c.provider_txn_id.as_str())
        .collect();
    let unnamed: Vec<&StatementLine> = chunk
        .iter()
        .filter(|l| !named.contains(l.txn_ref.as_str()))
        .collect();

    // Transactions settled before under their own id, by reference.
    let keys = distinct(unnamed.iter().map(|l| l.txn_ref.as_str()));
    let mut settled_refs = HashMap::new();
    if !keys.is_empty() {
        let sql = format!(
            "SELECT l.txn_ref, l.payment_id FROM settlement_lines l
             WHERE l.channel = $1 AND l.txn_ref {}
               AND l.outcome <> 'duplicate_line'",
            json_in(backend, "$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(json_list(&keys)?)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let payment_id: Option<String> = row.try_get("payment_id")?;
            if let Some(payment_id) = payment_id {
                settled_refs.insert(row.try_get("txn_ref")?, payment_id);
            }
        }
        let ids = distinct(settled_refs.values().map(String::as_str));
        fetch_candidates(conn, backend, "p.id", "", channel, &ids, &mut found).await?;
    }

    let unnamed = unnamed
        .into_iter()
        .filter(|l| !settled_refs.contains_key(&l.txn_ref));
    let unsettled = " AND s.file_id IS NULL";
    match channel {
        Channel::BankTransfer => {
            // By the payment code in the description; a transfer whose
            // note named no invoice, by the note itself.
            let (coded, uncoded): (Vec<&StatementLine>, Vec<&StatementLine>) =
                unnamed.partition(|l| l.payment_code.is_some());
            let codes = distinct(
                coded
                    .iter()
                    .filter_map(|l| l.payment_code.as_ref().map(|c| c.as_str())),
            );
            fetch_candidates(
                conn,
                backend,
                "i.payment_code",
                unsettled,
                channel,
                &codes,
                &mut found,
            )
            .await?;
            let notes = distinct(uncoded.iter().map(|l| l.reference.as_str()));
            fetch_candidates(
                conn,
                backend,
                "p.reference",
                unsettled,
                channel,
                &notes,
                &mut found,
            )
            .await?;
        }
        _ => {
            let references = distinct(unnamed.map(|l| l.reference.as_str()));
            fetch_candidates(
                conn,
                backend,
                "p.reference",
                unsettled,
                channel,
                &references,
                &mut found,
            )
            .await?;
        }
    }
    Ok((found, settled_refs))
}

/// Adds to `found` the payments of `channel` whose `column` is one of
/// `keys` and that meet the further condition `and`.
async fn fetch_candidates(
    conn: &mut Conn<'_>,
    backend: Backend,
    column: &str,
    and: &str,
    channel: Channel,
    keys: &[&str],
    found: &mut Found,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    // By id, the primary key alone finds them: SQLite, keeping no
    // statistics, would rather read all the channel's payments by its
    // index, so the channel is compared as an expression no index has.
    let channel_is = match column {
        "p.id" => "coalesce(p.channel, '') = $1",
        _ => "p.channel = $1",
    };
    let (payment_code, invoices) = payment_code_of(channel);
    let (before, after) = CANDIDATE_COLUMNS;
    let sql = format!(
        "SELECT {} {CANDIDATES_FROM} {invoices}
         WHERE {channel_is} AND {column} {}{and}",
        json_agg(backend, &format!("{before}, {payment_code}, {after}")),
        json_in(backend, "$2")
    );
    let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(channel.as_str())
        .bind(json_list(keys)?)
        .fetch_one(&mut *conn)
        .await?;
    let Some(rows) = rows else {
        // PostgreSQL aggregates no rows to NULL.
        return Ok(());
    };
    let rows: Vec<CandidateRow> = serde_json::from_str(&rows).map_err(StoreError::corrupt)?;
    for row in rows {
        let (id, provider_txn_id, reference, amount, agency_code, payment_code) =
            (row.0, row.1, row.2, row.3, row.4, row.5);
        let settled_by = match (row.6, row.7, row.8) {
            (Some(file_id), Some(line_no), Some(txn_ref)) => Some(StoredLine {
                file_id,
                line_no,
                txn_ref,
            }),
            _ => None,
        };
        let candidate = Candidate {
            payment_id: id,
            provider_txn_id,
            reference,
            payment_code,
            amount: Vnd::new(amount),
            settled_by,
        };
        found.add(candidate, agency_code);
    }
    Ok(())
}

/// A stored line's fields after its file and channel, as [`insert_lines`]
/// binds them.
type LineRow<'a> = (
    i64,
    &'a str,
    &'a str,
    i64,
    i64,
    String,
    String,
    &'a str,
    &'a str,
    Option<&'a str>,
);

/// Inserts a chunk's lines in one statement, bound as one JSON value.
async fn insert_lines(
    conn: &mut Conn<'_>,
    backend: Backend,
    channel: Channel,
    file_id: &str,
    settled: &[Settled<'_>],
) -> Result<(), StoreError> {
    if settled.is_empty() {
        return Ok(());
    }
    let rows: Vec<LineRow<'_>> = settled
        .iter()
        .map(|s| {
            (
                line_number(s.line),
                s.line.txn_ref.as_str(),
                s.line.reference.as_str(),
                s.line.amount.dong(),
                s.line.fee.dong(),
                s.line.transaction_time.to_stored(),
                format_day(s.line.settlement_date),
                s.outcome.as_str(),
                s.settling.payment_id.as_str(),
                s.settling.agency.as_ref().map(|(code, _)| code.as_str()),
            )
        })
        .collect();
    let rows = serde_json::to_string(&rows).map_err(StoreError::corrupt)?;
    let sql = format!(
        "INSERT INTO settlement_lines (file_id, line_no, channel, txn_ref, reference, amount, fee,
             transaction_time, settlement_date, outcome, payment_id, agency_code)
         SELECT $1, CAST(e.value->>0 AS BIGINT), $2, e.value->>1, e.value->>2,
             CAST(e.value->>3 AS BIGINT), CAST(e.value->>4 AS BIGINT), e.value->>5, e.value->>6,
             e.value->>7, e.value->>8, e.value->>9
         FROM {}",
        json_rows(backend, "$3")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(file_id)
        .bind(channel.as_str())
        .bind(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Clears the `unsettled_payment` findings of payments a line now
/// settles. One query finds them.
async fn clear_unsettled(
    conn: &mut Conn<'_>,
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
         WHERE kind = 'unsettled_payment' AND status = 'open'
           AND payment_id {}",
        json_in(backend, "$1")
    );
    let query =
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(json_list(payment_ids)?);
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
