//! Statement import jobs: a file is queued once it is stored, claimed by
//! one worker at a time per channel (across processes, with a try-lock, so
//! that no request waits on it), checked whole, applied in batches of short
//! transactions ([`Store::apply_statement_lines`]), and published when the
//! last batch commits. Each batch records how far the job has come in the
//! same transaction as its lines, so a job taken up again after a crash
//! goes on from there and writes nothing twice.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::{self, Change};
use super::settlements::{SettlementSummary, account_in_scope};
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::Channel;
use crate::domain::settlement::{ImportStatus, LineOutcome};
use crate::domain::{AgencyCode, Scope, Timestamp};

/// A stored statement file to queue for import.
pub struct QueuedStatement<'a> {
    pub channel: Channel,
    pub profile: &'a str,
    /// The file's SHA-256, hex: the same file again is the same import.
    pub sha256: &'a str,
    /// Where the file is stored, for the job to read.
    pub stored_file: &'a str,
    /// Days a payment of this channel may wait for its line.
    pub settlement_days: u32,
    /// The account a bank statement is of.
    pub account_number: Option<&'a str>,
    /// Imports the key may have queued or running at once.
    pub max_queued_per_key: u32,
}

/// A statement import as officers follow it: where its job is, how far it
/// has come, and, once done, its summary.
#[derive(Debug, Clone, Serialize)]
pub struct StatementImport {
    pub id: String,
    pub channel: Channel,
    pub profile: String,
    pub sha256: String,
    pub status: ImportStatus,
    pub progress: ImportProgress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    pub imported_at: Timestamp,
    pub imported_by: String,
    /// Who imported it, as people read it: the officer's name and email,
    /// or the key's name.
    pub imported_by_name: Option<String>,
    /// The published summary, once done.
    #[serde(skip)]
    pub summary: Option<SettlementSummary>,
}

/// How far an import has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportProgress {
    /// Lines read and checked before any is applied.
    pub lines_checked: u64,
    /// The file's lines, once all are checked.
    pub lines_total: Option<u64>,
    /// Lines applied so far.
    pub lines_applied: u64,
    /// Of those, lines that settle a recorded payment of their amount.
    pub lines_matched: u64,
    /// Exceptions opened so far.
    pub exceptions_so_far: u64,
}

/// Why an import was refused: its line (1 is the header) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub line: usize,
    pub reason: String,
}

/// A queued import, and whether this call queued it (false: the same
/// file was queued or imported before, and nothing changed).
pub struct Queued {
    pub import: StatementImport,
    pub new: bool,
}

/// A job a worker has claimed, with what it needs to run it.
pub struct ClaimedImport {
    pub id: String,
    pub channel: Channel,
    pub profile: String,
    pub sha256: String,
    pub stored_file: String,
    pub settlement_days: u32,
    pub account_number: Option<String>,
    /// Who queued it, and the scope their key sees.
    pub actor: Actor,
    pub scope: Scope,
    /// The claiming worker, whose claim every batch renews.
    pub worker: String,
    /// The summary so far once every line has been checked (`None`: the
    /// job is still to be checked), and the last line applied.
    pub checked: Option<SettlementSummary>,
    /// The file's lines, once every one is checked.
    pub lines_checked: u64,
    pub applied_through: i64,
}

const IMPORT_COLUMNS: &str = concat!(
    "id, channel, profile, sha256, status, summary, progress,
     lines_checked, refused_line, refused_reason, imported_at, imported_by, ",
    name_of!("imported_by"),
    " AS imported_by_name"
);

/// A claim that must be renewed within `lease` of now.
pub(super) fn claimed_until(lease: std::time::Duration) -> String {
    let lease = time::Duration::try_from(lease).unwrap_or(time::Duration::MINUTE);
    let now = Timestamp::now();
    now.plus(lease).unwrap_or(now).to_stored()
}

impl Store {
    /// Queues a stored statement for import, or answers with the import
    /// of the same file (by its SHA-256, per channel) queued before. A
    /// refused import leaves nothing behind, so its file may be sent again.
    pub async fn queue_statement(
        &self,
        actor: &Actor,
        scope: &Scope,
        file: &QueuedStatement<'_>,
    ) -> Result<Queued, StoreError> {
        // Two uploads of one file at once: the second to insert finds the
        // first's row once it is committed, on the next try.
        for _ in 0..3 {
            if let Some(queued) = self.try_queue_statement(actor, scope, file).await? {
                return Ok(queued);
            }
        }
        Err(StoreError::Contended)
    }

    async fn try_queue_statement(
        &self,
        actor: &Actor,
        scope: &Scope,
        file: &QueuedStatement<'_>,
    ) -> Result<Option<Queued>, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        if let Some(number) = file.account_number {
            account_in_scope(&mut tx.conn(), scope, number).await?;
        }
        let existing: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, status, imported_scope FROM settlement_files
             WHERE channel = $1 AND sha256 = $2",
        )
        .bind(file.channel.as_str())
        .bind(file.sha256)
        .fetch_optional(&mut tx.conn())
        .await?;
        match existing {
            Some((id, status, _)) if status == ImportStatus::Refused.as_str() => {
                // A refused import applied nothing: it gives way.
                sqlx::query("DELETE FROM settlement_files WHERE id = $1 AND status = 'refused'")
                    .bind(&id)
                    .execute(&mut tx.conn())
                    .await?;
            }
            Some((id, _, imported_scope)) => {
                if !imported_scope.starts_with(scope.path_prefix()) {
                    // Its summary counts lines of agencies this key does not see.
                    return Err(StoreError::ImportedInWiderScope);
                }
                let row = import_row(&mut tx.conn(), &id).await?;
                tx.commit().await?;
                return Ok(Some(Queued {
                    import: import_from_row(&row)?,
                    new: false,
                }));
            }
            None => {}
        }
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM settlement_files
             WHERE status IN ('queued', 'running') AND imported_by = $1",
        )
        .bind(&actor.name)
        .fetch_one(&mut tx.conn())
        .await?;
        if waiting >= i64::from(file.max_queued_per_key) {
            return Err(StoreError::TooManyImports {
                limit: file.max_queued_per_key,
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let inserted = sqlx::query(
            "INSERT INTO settlement_files (id, channel, profile, sha256, account_number,
                 imported_at, imported_by, imported_scope, status, stored_file, scope_code,
                 settlement_days)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9, $10, $11)
             ON CONFLICT (channel, sha256) DO NOTHING",
        )
        .bind(&id)
        .bind(file.channel.as_str())
        .bind(file.profile)
        .bind(file.sha256)
        .bind(file.account_number)
        .bind(now.to_stored())
        .bind(&actor.name)
        .bind(scope.path_prefix())
        .bind(file.stored_file)
        .bind(scope.agency_code().map(AgencyCode::as_str))
        .bind(i64::from(file.settlement_days))
        .execute(&mut tx.conn())
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "settlement.queued",
                object_type: "settlement_file",
                object_id: &id,
                agency: None,
                before: None,
                after: audit::state(&serde_json::json!({
                    "channel": file.channel,
                    "profile": file.profile,
                    "sha256": file.sha256,
                })),
                at: now,
            },
        )
        .await?;
        let row = import_row(&mut tx.conn(), &id).await?;
        tx.commit().await?;
        Ok(Some(Queued {
            import: import_from_row(&row)?,
            new: true,
        }))
    }

    /// An import queued by a key whose scope `scope` covers.
    pub async fn statement_import(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<StatementImport, StoreError> {
        let sql = format!(
            "SELECT {IMPORT_COLUMNS} FROM settlement_files
             WHERE id = $1 AND substr(imported_scope, 1, length($2)) = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(scope.path_prefix())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        import_from_row(&row)
    }

    /// Imports queued by keys whose scope `scope` covers, whatever their
    /// status, newest first: what the console's statements page lists.
    pub async fn list_statement_imports(
        &self,
        scope: &Scope,
        channel: Option<Channel>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<super::Listed<StatementImport>, StoreError> {
        use super::query::{Filtered, Value, page};
        let mut query = Filtered::new(&format!("SELECT {IMPORT_COLUMNS} FROM settlement_files"));
        query.and(
            "substr(imported_scope, 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        if let Some(channel) = channel {
            query.and("channel = {}", Value::Text(channel.as_str().to_owned()));
        }
        query.newest_first("id", after_id, limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, limit, import_from_row, |i| i.id.clone())
    }

    /// Claims the oldest import that is queued, or whose worker's claim
    /// has lapsed, whose file `can_open` says this process can read, and
    /// whose channel has no other import running (`only`: that import
    /// alone). Never waits: a job another worker is claiming is skipped.
    pub async fn claim_statement_import(
        &self,
        worker: &str,
        lease: std::time::Duration,
        only: Option<&str>,
        can_open: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Option<ClaimedImport>, StoreError> {
        let now = Timestamp::now().to_stored();
        let waiting: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, channel, stored_file FROM settlement_files
             WHERE status IN ('queued', 'running')
               AND (status = 'queued' OR claimed_until IS NULL OR claimed_until < $1)
             ORDER BY id LIMIT 100",
        )
        .bind(&now)
        .fetch_all(&self.pool)
        .await?;
        for (id, channel, stored_file) in waiting {
            if only.is_some_and(|only| only != id) || !stored_file.as_deref().is_some_and(can_open)
            {
                continue;
            }
            let channel = Channel::parse(&channel)
                .ok_or_else(|| StoreError::corrupt(format!("statement channel {channel:?}")))?;
            if let Some(claimed) = self.try_claim(worker, lease, &id, channel, &now).await? {
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }

    async fn try_claim(
        &self,
        worker: &str,
        lease: std::time::Duration,
        id: &str,
        channel: Channel,
        now: &str,
    ) -> Result<Option<ClaimedImport>, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Claims of one channel take turns; one that would wait skips.
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(STATEMENT_LOCK + channel_index(channel))
                .fetch_one(&mut tx.conn())
                .await?;
            if !locked {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        // One import of a channel runs at a time: two would each see a
        // payment unsettled and both settle it.
        let busy: Option<String> = sqlx::query_scalar(
            "SELECT id FROM settlement_files
             WHERE channel = $1 AND status = 'running' AND id <> $2 AND claimed_until >= $3
             LIMIT 1",
        )
        .bind(channel.as_str())
        .bind(id)
        .bind(now)
        .fetch_optional(&mut tx.conn())
        .await?;
        let claimed = match busy {
            Some(_) => 0,
            None => sqlx::query(
                "UPDATE settlement_files SET status = 'running', claimed_by = $1,
                         claimed_until = $2
                     WHERE id = $3 AND (status = 'queued' OR (status = 'running'
                         AND (claimed_until IS NULL OR claimed_until < $4)))",
            )
            .bind(worker)
            .bind(claimed_until(lease))
            .bind(id)
            .bind(now)
            .execute(&mut tx.conn())
            .await?
            .rows_affected(),
        };
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT f.id, f.channel, f.profile, f.sha256, f.stored_file, f.settlement_days,
                    f.account_number, f.imported_by, f.scope_code, f.imported_scope,
                    f.progress, f.lines_checked, f.applied_through
             FROM settlement_files f WHERE f.id = $1",
        )
        .bind(id)
        .fetch_one(&mut tx.conn())
        .await?;
        tx.commit().await?;
        let scope_code: Option<String> = row.try_get("scope_code")?;
        let scope = match scope_code {
            None => Scope::All,
            Some(code) => Scope::Subtree {
                code: AgencyCode::from_stored(code),
                path: row.try_get("imported_scope")?,
            },
        };
        let progress: Option<String> = row.try_get("progress")?;
        let days: i64 = row.try_get("settlement_days")?;
        let lines_checked: i64 = row.try_get("lines_checked")?;
        Ok(Some(ClaimedImport {
            id: row.try_get("id")?,
            channel,
            profile: row.try_get("profile")?,
            sha256: row.try_get("sha256")?,
            stored_file: row
                .try_get::<Option<String>, _>("stored_file")?
                .unwrap_or_default(),
            settlement_days: u32::try_from(days).unwrap_or(0),
            account_number: row.try_get("account_number")?,
            actor: Actor {
                name: row.try_get("imported_by")?,
                display: None,
                request_id: None,
                client_addr: None,
            },
            scope,
            worker: worker.to_owned(),
            checked: progress
                .map(|p| serde_json::from_str(&p).map_err(StoreError::corrupt))
                .transpose()?,
            lines_checked: u64::try_from(lines_checked).unwrap_or(0),
            applied_through: row.try_get("applied_through")?,
        }))
    }

    /// Records how many lines a job has checked, renewing its claim; or,
    /// with `summary`, that every line is checked, none yet applied.
    /// Fails with [`StoreError::ClaimLost`] if the job is no longer this
    /// worker's.
    pub async fn statement_checked(
        &self,
        job: &ClaimedImport,
        lines: u64,
        summary: Option<&SettlementSummary>,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        let progress = summary
            .map(|s| serde_json::to_string(s).map_err(StoreError::corrupt))
            .transpose()?;
        let done = self
            .write_one(
                sqlx::query(
                    "UPDATE settlement_files SET lines_checked = $1, claimed_until = $2,
                         progress = coalesce($3, progress)
                     WHERE id = $4 AND claimed_by = $5 AND status = 'running'",
                )
                .bind(i64::try_from(lines).unwrap_or(i64::MAX))
                .bind(claimed_until(lease))
                .bind(progress)
                .bind(&job.id)
                .bind(&job.worker),
            )
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ClaimLost);
        }
        Ok(())
    }

    /// Refuses a job at `refusal`'s line: nothing of it was applied.
    pub async fn refuse_statement_import(
        &self,
        job: &ClaimedImport,
        refusal: &Refusal,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        audit::record(
            &mut tx.conn(),
            &job.actor,
            Change {
                action: "settlement.refused",
                object_type: "settlement_file",
                object_id: &job.id,
                agency: None,
                before: None,
                after: audit::state(refusal),
                at: now,
            },
        )
        .await?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE settlement_files SET status = 'refused', refused_line = $1,
                     refused_reason = $2, claimed_by = NULL, claimed_until = NULL
                 WHERE id = $3 AND claimed_by = $4 AND status = 'running'
                   AND applied_through = 0",
            )
            .bind(i64::try_from(refusal.line).unwrap_or(i64::MAX))
            .bind(&refusal.reason)
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await
    }
}

async fn import_row(conn: &mut super::conn::Conn<'_>, id: &str) -> Result<AnyRow, StoreError> {
    let sql = format!("SELECT {IMPORT_COLUMNS} FROM settlement_files WHERE id = $1");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?)
}

fn import_from_row(row: &AnyRow) -> Result<StatementImport, StoreError> {
    let channel: String = row.try_get("channel")?;
    let status: String = row.try_get("status")?;
    let status = ImportStatus::parse(&status)
        .ok_or_else(|| StoreError::corrupt(format!("import status {status:?}")))?;
    let read_summary = |column: &str| -> Result<Option<SettlementSummary>, StoreError> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|t| serde_json::from_str(&t).map_err(StoreError::corrupt))
            .transpose()
    };
    let summary = read_summary("summary")?;
    let so_far = match &summary {
        Some(summary) => Some(summary.clone()),
        None => read_summary("progress")?,
    };
    let lines_checked: i64 = row.try_get("lines_checked")?;
    let lines_checked = u64::try_from(lines_checked).unwrap_or(0);
    let progress = ImportProgress {
        lines_checked,
        lines_total: so_far.as_ref().map(|_| lines_checked),
        lines_applied: so_far.as_ref().map_or(0, |s| s.lines),
        lines_matched: so_far
            .as_ref()
            .and_then(|s| s.outcomes.get(&LineOutcome::Matched).copied())
            .unwrap_or(0),
        exceptions_so_far: so_far.as_ref().map_or(0, |s| s.exceptions_opened),
    };
    let refused = match status {
        ImportStatus::Refused => {
            let line: Option<i64> = row.try_get("refused_line")?;
            Some(Refusal {
                line: line.and_then(|l| usize::try_from(l).ok()).unwrap_or(0),
                reason: row
                    .try_get::<Option<String>, _>("refused_reason")?
                    .unwrap_or_default(),
            })
        }
        _ => None,
    };
    Ok(StatementImport {
        id: row.try_get("id")?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::corrupt(format!("statement channel {channel:?}")))?,
        profile: row.try_get("profile")?,
        sha256: row.try_get("sha256")?,
        status,
        progress,
        refused,
        imported_at: parse_time(row, "imported_at")?,
        imported_by: row.try_get("imported_by")?,
        imported_by_name: row.try_get("imported_by_name")?,
        summary,
    })
}

/// An arbitrary constant naming the statement claim locks, one per channel.
const STATEMENT_LOCK: i64 = 0x6c65_7068_695f_7300;

fn channel_index(channel: Channel) -> i64 {
    Channel::ALL
        .iter()
        .position(|c| *c == channel)
        .map_or(0, |i| i as i64)
}
