//! Dossier register imports as jobs, as statement imports are
//! ([`super::statement_jobs`]): a stored file is queued, claimed by one
//! worker at a time (across processes, without waiting), checked whole,
//! applied in batches of short transactions that each record how far the
//! job has come, and finished in one more: the `unknown_dossier` findings
//! over the file's days, the summary and the audit record.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::agencies::find_in_scope;
use super::audit::{self, Change};
use super::dossiers::{DossierImportSummary, Span, apply_register_rows, finish_register};
use super::statement_jobs::{Refusal, claimed_until};
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::dossier::{Dossier, DossierOutcome, Register};
use crate::domain::settlement::ImportStatus;
use crate::domain::{AgencyCode, Scope, Timestamp};

/// A register import as officers follow it.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterImport {
    pub id: String,
    pub sha256: String,
    pub status: ImportStatus,
    pub progress: RegisterProgress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    pub imported_at: Timestamp,
    pub imported_by: String,
    /// Who imported it, as people read it.
    pub imported_by_name: Option<String>,
    /// The summary, once done.
    #[serde(skip)]
    pub summary: Option<DossierImportSummary>,
}

/// How far a register import has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RegisterProgress {
    /// The file's rows, once read and checked.
    pub rows_total: Option<u64>,
    pub rows_applied: u64,
}

/// A queued register import, and whether this call queued it (false: the
/// same file is queued or being imported already).
pub struct QueuedRegister {
    pub import: RegisterImport,
    pub new: bool,
}

/// What a job has applied so far: the summary's counts, and each agency's
/// days of received dossiers, for the findings at the end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterSoFar {
    pub summary: DossierImportSummary,
    pub spans: Vec<Span>,
}

/// A register job a worker has claimed.
pub struct ClaimedRegister {
    pub id: String,
    pub sha256: String,
    pub stored_file: String,
    /// Who queued it, and the scope their key sees.
    pub actor: Actor,
    pub scope: Scope,
    pub worker: String,
    /// The file's rows once checked (`None`: still to be checked).
    pub rows_total: Option<u64>,
    pub so_far: RegisterSoFar,
}

const COLUMNS: &str = concat!(
    "id, sha256, status, rows_total, rows_applied, summary, refused_line,
     refused_reason, imported_at, imported_by, ",
    name_of!("imported_by"),
    " AS imported_by_name"
);

/// An arbitrary constant naming the register claim lock.
const REGISTER_LOCK: i64 = 0x6c65_7068_695f_7200;

impl RegisterSoFar {
    fn starting() -> RegisterSoFar {
        RegisterSoFar {
            summary: DossierImportSummary {
                rows: 0,
                created: 0,
                updated: 0,
                unchanged: 0,
                outcomes: DossierOutcome::ALL.into_iter().map(|o| (o, 0)).collect(),
                unknown_dossier_exceptions: 0,
                unknown_dossier_exceptions_cleared: 0,
            },
            spans: Vec::new(),
        }
    }
}

impl Store {
    /// Queues a stored register file for import by `actor`, or answers
    /// with the import of the same file already queued or running in the
    /// same scope. A file imported before is imported again: what it finds
    /// depends on the payments recorded since.
    pub async fn queue_register(
        &self,
        actor: &Actor,
        scope: &Scope,
        sha256: &str,
        stored_file: &str,
        max_queued_per_key: u32,
    ) -> Result<QueuedRegister, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM register_imports
             WHERE sha256 = $1 AND imported_scope = $2 AND status IN ('queued', 'running')
             ORDER BY id LIMIT 1",
        )
        .bind(sha256)
        .bind(scope.path_prefix())
        .fetch_optional(&mut tx.conn())
        .await?;
        if let Some(id) = existing {
            let row = row_of(&mut tx.conn(), &id).await?;
            tx.commit().await?;
            return Ok(QueuedRegister {
                import: import_from_row(&row)?,
                new: false,
            });
        }
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM register_imports
             WHERE status IN ('queued', 'running') AND imported_by = $1",
        )
        .bind(&actor.name)
        .fetch_one(&mut tx.conn())
        .await?;
        if waiting >= i64::from(max_queued_per_key) {
            return Err(StoreError::TooManyImports {
                limit: max_queued_per_key,
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO register_imports (id, sha256, status, stored_file, imported_at,
                 imported_by, imported_scope, scope_code)
             VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(sha256)
        .bind(stored_file)
        .bind(now.to_stored())
        .bind(&actor.name)
        .bind(scope.path_prefix())
        .bind(scope.agency_code().map(AgencyCode::as_str))
        .execute(&mut tx.conn())
        .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "dossiers.queued",
                object_type: "register_import",
                object_id: &id,
                agency: None,
                before: None,
                after: Some(serde_json::json!({ "sha256": sha256 })),
                at: now,
            },
        )
        .await?;
        let row = row_of(&mut tx.conn(), &id).await?;
        tx.commit().await?;
        Ok(QueuedRegister {
            import: import_from_row(&row)?,
            new: true,
        })
    }

    /// A register import queued by a key whose scope `scope` covers.
    pub async fn register_import(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<RegisterImport, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM register_imports
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

    /// Claims the oldest register import that is queued, or whose worker's
    /// claim has lapsed, if no other is running (`only`: that import
    /// alone) and `can_open` says this process can read its file. Never
    /// waits: on PostgreSQL a claim another process is making is skipped.
    pub async fn claim_register_import(
        &self,
        worker: &str,
        lease: std::time::Duration,
        only: Option<&str>,
        can_open: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Option<ClaimedRegister>, StoreError> {
        let now = Timestamp::now().to_stored();
        let waiting: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, stored_file FROM register_imports
             WHERE status IN ('queued', 'running')
               AND (status = 'queued' OR claimed_until IS NULL OR claimed_until < $1)
             ORDER BY id LIMIT 100",
        )
        .bind(&now)
        .fetch_all(&self.pool)
        .await?;
        let Some(id) = waiting
            .into_iter()
            .find(|(id, file)| only.is_none_or(|only| only == id) && can_open(file))
            .map(|(id, _)| id)
        else {
            return Ok(None);
        };
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(REGISTER_LOCK)
                .fetch_one(&mut tx.conn())
                .await?;
            if !locked {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        // One register import runs at a time: two would each find the
        // other's dossiers unknown.
        let claimed = sqlx::query(
            "UPDATE register_imports SET status = 'running', claimed_by = $1, claimed_until = $2
             WHERE id = $3 AND (status = 'queued' OR (status = 'running'
                   AND (claimed_until IS NULL OR claimed_until < $4)))
               AND NOT EXISTS (SELECT 1 FROM register_imports o
                   WHERE o.status = 'running' AND o.id <> $3 AND o.claimed_until >= $4)",
        )
        .bind(worker)
        .bind(claimed_until(lease))
        .bind(&id)
        .bind(&now)
        .execute(&mut tx.conn())
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, sha256, stored_file, imported_by, imported_scope, scope_code, rows_total,
                    progress
             FROM register_imports WHERE id = $1",
        )
        .bind(&id)
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
        let rows_total: Option<i64> = row.try_get("rows_total")?;
        Ok(Some(ClaimedRegister {
            id: row.try_get("id")?,
            sha256: row.try_get("sha256")?,
            stored_file: row.try_get("stored_file")?,
            actor: Actor {
                name: row.try_get("imported_by")?,
                display: None,
                request_id: None,
                client_addr: None,
            },
            scope,
            worker: worker.to_owned(),
            rows_total: rows_total.and_then(|n| u64::try_from(n).ok()),
            so_far: match progress {
                Some(p) => serde_json::from_str(&p).map_err(StoreError::corrupt)?,
                None => RegisterSoFar::starting(),
            },
        }))
    }

    /// Checks a register's rows before any is applied: each names an
    /// agency in the job's scope. Reads only. The first refused is on the
    /// first line naming an agency out of reach.
    pub async fn check_register(
        &self,
        job: &ClaimedRegister,
        register: &Register,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut conn = super::conn::Conn::Any(&mut conn);
        let mut seen = std::collections::HashSet::new();
        for (line, dossier) in &register.rows {
            let code = dossier.agency_code.as_str();
            if !seen.insert(code) {
                continue;
            }
            match find_in_scope(&mut conn, &job.scope, code).await {
                Ok(_) => {}
                Err(StoreError::AgencyNotFound(_)) => {
                    return Err(StoreError::ImportRefused {
                        line: *line,
                        message: format!("agency {code} was not found in this key's scope"),
                    });
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Records that every row of a job is checked, renewing its claim.
    pub async fn register_checked(
        &self,
        job: &mut ClaimedRegister,
        rows: u64,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE register_imports SET rows_total = $1, claimed_until = $2
                 WHERE id = $3 AND claimed_by = $4 AND status = 'running'",
            )
            .bind(i64::try_from(rows).unwrap_or(i64::MAX))
            .bind(claimed_until(lease))
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await?;
        job.rows_total = Some(rows);
        Ok(())
    }

    /// Applies one batch of a job's rows in one transaction, with how far
    /// the job has come (updated only if the batch commits).
    pub async fn apply_register_batch(
        &self,
        job: &mut ClaimedRegister,
        rows: &[(usize, Dossier)],
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let mut so_far = job.so_far.clone();
        let mut tx = self.begin_write().await?;
        apply_register_rows(&mut tx.conn(), self.backend, rows, &mut so_far, now).await?;
        let progress = serde_json::to_string(&so_far).map_err(StoreError::corrupt)?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE register_imports SET rows_applied = $1, progress = $2, claimed_until = $3
                 WHERE id = $4 AND claimed_by = $5 AND status = 'running'",
            )
            .bind(i64::try_from(so_far.summary.rows).unwrap_or(i64::MAX))
            .bind(progress)
            .bind(claimed_until(lease))
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await?;
        job.so_far = so_far;
        Ok(())
    }

    /// Ends a job whose every row is applied: clears the findings of the
    /// dossiers now listed, raises those of payments whose dossier is
    /// not, and publishes the summary, in one transaction.
    pub async fn finish_register_import(
        &self,
        job: &ClaimedRegister,
    ) -> Result<DossierImportSummary, StoreError> {
        let now = Timestamp::now();
        let mut summary = job.so_far.summary.clone();
        let mut tx = self.begin_write().await?;
        finish_register(
            &mut tx.conn(),
            self.backend,
            &job.actor,
            &job.sha256,
            &job.so_far.spans,
            &mut summary,
            now,
        )
        .await?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE register_imports SET status = 'done', summary = $1, progress = NULL,
                     claimed_by = NULL, claimed_until = NULL
                 WHERE id = $2 AND claimed_by = $3 AND status = 'running'",
            )
            .bind(serde_json::to_string(&summary).map_err(StoreError::corrupt)?)
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await?;
        Ok(summary)
    }

    /// Refuses a job none of whose rows is applied.
    pub async fn refuse_register_import(
        &self,
        job: &ClaimedRegister,
        refusal: &Refusal,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        audit::record(
            &mut tx.conn(),
            &job.actor,
            Change {
                action: "dossiers.refused",
                object_type: "register_import",
                object_id: &job.id,
                agency: None,
                before: None,
                after: audit::state(refusal),
                at: Timestamp::now(),
            },
        )
        .await?;
        tx.commit_claimed(
            sqlx::query(
                "UPDATE register_imports SET status = 'refused', refused_line = $1,
                     refused_reason = $2, progress = NULL, claimed_by = NULL, claimed_until = NULL
                 WHERE id = $3 AND claimed_by = $4 AND status = 'running' AND rows_applied = 0",
            )
            .bind(i64::try_from(refusal.line).unwrap_or(i64::MAX))
            .bind(&refusal.reason)
            .bind(&job.id)
            .bind(&job.worker),
        )
        .await?;
        Ok(())
    }
}

async fn row_of(conn: &mut super::conn::Conn<'_>, id: &str) -> Result<AnyRow, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM register_imports WHERE id = $1");
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(conn)
        .await?)
}

fn import_from_row(row: &AnyRow) -> Result<RegisterImport, StoreError> {
    let status: String = row.try_get("status")?;
    let status = ImportStatus::parse(&status)
        .ok_or_else(|| StoreError::corrupt(format!("import status {status:?}")))?;
    let summary: Option<String> = row.try_get("summary")?;
    let summary: Option<DossierImportSummary> = summary
        .map(|s| serde_json::from_str(&s).map_err(StoreError::corrupt))
        .transpose()?;
    let rows_total: Option<i64> = row.try_get("rows_total")?;
    let rows_applied: i64 = row.try_get("rows_applied")?;
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
    Ok(RegisterImport {
        id: row.try_get("id")?,
        sha256: row.try_get("sha256")?,
        status,
        progress: RegisterProgress {
            rows_total: rows_total.and_then(|n| u64::try_from(n).ok()),
            rows_applied: u64::try_from(rows_applied).unwrap_or(0),
        },
        refused,
        imported_at: parse_time(row, "imported_at")?,
        imported_by: row.try_get("imported_by")?,
        imported_by_name: row.try_get("imported_by_name")?,
        summary,
    })
}
