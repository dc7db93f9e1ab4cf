//! Statement and dossier register imports, as jobs that never stand in a
//! payment's way. What the API, the finance console and the command line
//! share: a stored upload is queued ([`Importer::queue_statement`],
//! [`Importer::queue_register`]), and workers beside the server claim
//! queued jobs, check every line, then apply them in batches of short
//! transactions, each on the same writer as callbacks.

pub mod upload;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};

use crate::config::ReconciliationSettings;
use crate::domain::Scope;
use crate::domain::audit::Actor;
use crate::domain::dossier::parse_register;
use crate::domain::payment::Channel;
use crate::domain::settlement::{StatementLine, statement_account};
use crate::error::{ApiError, ErrorCode, error_chain};
use crate::reconcile::Profiles;
use crate::store::{
    Backend, ClaimedImport, ClaimedRegister, DossierImportSummary, ImportTables, Queued,
    QueuedRegister, QueuedStatement, Refusal, SettlementSummary, Store, StoreError,
};
use upload::StoredUpload;

/// How long a part file must have gone unwritten before it is taken for
/// an upload a crash cut off.
const STALE_PART: Duration = Duration::from_secs(3_600);

/// How a batch's size follows its time: halved past this, grown below half.
const BATCH_TARGET: Duration = Duration::from_millis(25);
/// The fewest lines a batch applies.
const MIN_BATCH: usize = 20;
/// How often a job that is checking its lines renews its claim and shows
/// how far it has come.
const CHECK_REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often workers look for jobs when nothing woke them.
const POLL: Duration = Duration::from_secs(2);

/// Where a running job is, for whoever watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Lines read and checked so far.
    Checking(u64),
    /// Lines applied so far, of all the file's lines.
    Applying { applied: u64, total: u64 },
}

/// How a job ended in this worker's hands: a statement's, or (with its
/// summary) a dossier register's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnd<S = SettlementSummary> {
    Done(S),
    Refused(Refusal),
    /// Stopped before the end (shutting down, or its claim lapsed): the
    /// job is taken up again from its last batch.
    Stopped,
}

/// A claimed job of either kind.
enum Job {
    Statement(ClaimedImport),
    Register(ClaimedRegister),
}

/// Queues statements and runs their jobs.
#[derive(Clone)]
pub struct Importer {
    store: Store,
    settings: Arc<ReconciliationSettings>,
    profiles: Profiles,
    /// Rung when a job is queued, so an idle worker starts it at once.
    wake: Arc<Notify>,
    /// This process's name on the jobs it claims.
    worker: Arc<str>,
}

impl Importer {
    pub fn new(store: Store, settings: &ReconciliationSettings, profiles: Profiles) -> Importer {
        Importer {
            store,
            settings: Arc::new(settings.clone()),
            profiles,
            wake: Arc::new(Notify::new()),
            worker: format!("{}:{}", std::process::id(), uuid::Uuid::now_v7()).into(),
        }
    }

    pub fn upload_dir(&self) -> &Path {
        &self.settings.upload_dir
    }

    /// The largest file accepted, in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        u64::try_from(self.settings.max_file_bytes).unwrap_or(u64::MAX)
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.settings.import_lease_secs)
    }

    /// Queues a stored statement of `channel` read with `profile` (the
    /// channel's default if none): what the API, the console and the
    /// command line do. The same file again answers with its first import.
    pub async fn queue_statement(
        &self,
        actor: &Actor,
        scope: &Scope,
        channel: Option<&str>,
        profile: Option<&str>,
        account: Option<&str>,
        upload: &StoredUpload,
    ) -> Result<Queued, ApiError> {
        let channel = channel
            .map(|c| {
                Channel::parse(c)
                    .filter(|c| c.is_cashless())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            ErrorCode::InvalidQuery,
                            "channel must be one of vnpay, momo, zalopay, bank_transfer",
                        )
                    })
            })
            .transpose()?
            .ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    "channel is required: vnpay, momo, zalopay or bank_transfer",
                )
            })?;
        let profile_name = profile.unwrap_or_else(|| Profiles::default_for(channel));
        let profile = self.profiles.get(profile_name).ok_or_else(|| {
            ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!(
                    "profile must be one of {}",
                    self.profiles.names().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        if !profile.fits(channel) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("profile {profile_name} does not read {channel} statements"),
            ));
        }
        let account = statement_account(channel, account)
            .map_err(|message| ApiError::bad_request(ErrorCode::InvalidQuery, message))?;
        let stored_file = upload.path.to_string_lossy();
        let queued = self
            .store
            .queue_statement(
                actor,
                scope,
                &QueuedStatement {
                    channel,
                    profile: profile_name,
                    sha256: &upload.sha256,
                    stored_file: &stored_file,
                    settlement_days: self.settings.settlement_days.of(channel).unwrap_or(0),
                    account_number: account,
                    max_queued_per_key: self.settings.max_queued_per_key,
                },
            )
            .await;
        match &queued {
            Ok(queued) if queued.new => self.wake.notify_one(),
            // The file was sent before, or is not taken: its copy goes.
            _ => upload::forget(&upload.path).await,
        }
        Ok(queued?)
    }

    /// Queues a stored dossier register: what the API, the console and
    /// the command line do. The same file already queued or running in
    /// the same scope answers with that import.
    pub async fn queue_register(
        &self,
        actor: &Actor,
        scope: &Scope,
        upload: &StoredUpload,
    ) -> Result<QueuedRegister, ApiError> {
        let queued = self
            .store
            .queue_register(
                actor,
                scope,
                &upload.sha256,
                &upload.path.to_string_lossy(),
                self.settings.max_queued_per_key,
            )
            .await;
        match &queued {
            Ok(queued) if queued.new => self.wake.notify_one(),
            _ => upload::forget(&upload.path).await,
        }
        Ok(queued?)
    }

    /// Claims the next job: a statement's, else a register's.
    async fn claim_next(&self) -> Result<Option<Job>, StoreError> {
        let can_open = |path: &str| self.can_open(path);
        let lease = self.lease();
        if let Some(job) = self
            .store
            .claim_statement_import(&self.worker, lease, None, &can_open)
            .await?
        {
            return Ok(Some(Job::Statement(job)));
        }
        Ok(self
            .store
            .claim_register_import(&self.worker, lease, None, &can_open)
            .await?
            .map(Job::Register))
    }

    /// Runs jobs, at most `import_workers` at once, until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.settings.import_workers == 0 {
            tracing::info!(
                "statement imports are left to other lephi processes (reconciliation.import_workers = 0)"
            );
            return;
        }
        let swept = upload::sweep_partial(&self.settings.upload_dir, STALE_PART).await;
        if swept > 0 {
            tracing::info!(swept, "removed uploads a crash had cut off");
        }
        let permits = Arc::new(Semaphore::new(self.settings.import_workers));
        let mut running = tokio::task::JoinSet::new();
        loop {
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                let job = match self.claim_next().await {
                    Ok(Some(job)) => job,
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(error = %error_chain(&err), "claiming an import failed");
                        break;
                    }
                };
                let importer = self.clone();
                let stop = shutdown.clone();
                running.spawn(async move {
                    let (id, ended) = match job {
                        Job::Statement(job) => {
                            let id = job.id.clone();
                            let end = importer.run_job(job, stop, &|_| {}).await;
                            (id, end.map(|end| format!("{end:?}")))
                        }
                        Job::Register(job) => {
                            let id = job.id.clone();
                            let end = importer.run_register_job(job, stop, &|_| {}).await;
                            (id, end.map(|end| format!("{end:?}")))
                        }
                    };
                    match ended {
                        Ok(end) => tracing::info!(import = %id, end, "import job ended"),
                        Err(err) => {
                            tracing::error!(import = %id, error = %error_chain(&err), "import job failed; it is taken up again once its claim lapses")
                        }
                    }
                    drop(permit);
                    importer.wake.notify_one();
                });
            }
            while running.try_join_next().is_some() {}
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = shutdown.changed() => break,
            }
        }
        // Jobs stop between batches; what they committed stands.
        while running.join_next().await.is_some() {}
    }

    /// Runs the job `id` in this process if no other worker has it,
    /// reporting its progress, until it ends; `None` when another worker
    /// has it (or it is not waiting).
    pub async fn run_claimed(
        &self,
        id: &str,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<Option<JobEnd>, StoreError> {
        let claimed = self
            .store
            .claim_statement_import(&self.worker, self.lease(), Some(id), &|path| {
                self.can_open(path)
            })
            .await?;
        let Some(job) = claimed else {
            return Ok(None);
        };
        let (_keep, never) = watch::channel(false);
        self.run_job(job, never, on_progress).await.map(Some)
    }

    /// Runs the register import `id` in this process if no other worker
    /// has it, reporting its progress, until it ends; `None` when another
    /// worker has it (or it is not waiting).
    pub async fn run_claimed_register(
        &self,
        id: &str,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<Option<JobEnd<DossierImportSummary>>, StoreError> {
        let claimed = self
            .store
            .claim_register_import(&self.worker, self.lease(), Some(id), &|path| {
                self.can_open(path)
            })
            .await?;
        let Some(job) = claimed else {
            return Ok(None);
        };
        let (_keep, never) = watch::channel(false);
        self.run_register_job(job, never, on_progress)
            .await
            .map(Some)
    }

    /// Whether this process takes a job whose file is stored at `path`:
    /// one it can read. On SQLite every process is on the database's own
    /// machine, so a file this one cannot find is gone for all, and the
    /// job is taken to be refused; on PostgreSQL another process may have
    /// it on its disk.
    fn can_open(&self, path: &str) -> bool {
        self.store.backend() == Backend::Sqlite || Path::new(path).is_file()
    }

    /// Checks every line of a claimed job (unless a run before did), then
    /// applies the lines not yet applied, batch by batch, and publishes.
    async fn run_job(
        &self,
        job: ClaimedImport,
        shutdown: watch::Receiver<bool>,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<JobEnd, StoreError> {
        let end = self.run_lines(&job, shutdown, on_progress).await?;
        if matches!(end, JobEnd::Done(_) | JobEnd::Refused(_)) {
            // The job's outcome is in the database now; its file is spent.
            upload::forget(Path::new(&job.stored_file)).await;
        }
        Ok(end)
    }

    async fn run_lines(
        &self,
        job: &ClaimedImport,
        shutdown: watch::Receiver<bool>,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<JobEnd, StoreError> {
        let Some(profile) = self.profiles.get(&job.profile) else {
            let refusal = Refusal {
                line: 1,
                reason: format!("profile {} is no longer configured", job.profile),
            };
            self.store.refuse_statement_import(job, &refusal).await?;
            return Ok(JobEnd::Refused(refusal));
        };
        if job.applied_through == 0 && !Path::new(&job.stored_file).exists() {
            // Nothing of it is applied: refusing it leaves nothing half done.
            let refusal = Refusal {
                line: 1,
                reason: "the stored file is gone; nothing was imported; send the file again"
                    .to_owned(),
            };
            self.store.refuse_statement_import(job, &refusal).await?;
            return Ok(JobEnd::Refused(refusal));
        }
        let open = || {
            std::fs::File::open(&job.stored_file).map_err(|e| {
                StoreError::Corrupt(format!(
                    "the stored file {} cannot be read: {e}",
                    job.stored_file
                ))
            })
        };
        let (mut summary, total) = match job.checked.clone() {
            Some(summary) => (summary, job.lines_checked),
            None => match self.check(job, profile, open()?, on_progress).await? {
                Err(refusal) => {
                    self.store.refuse_statement_import(job, &refusal).await?;
                    return Ok(JobEnd::Refused(refusal));
                }
                Ok(lines) => {
                    let summary = SettlementSummary::starting(job);
                    self.store
                        .statement_checked(job, lines, Some(&summary), self.lease())
                        .await?;
                    (summary, lines)
                }
            },
        };
        let mut lines = profile
            .read(open()?)
            .map_err(|e| StoreError::Corrupt(format!("line {}: {}", e.line, e.reason)))?;
        let mut batch_size = self.settings.import_batch_lines.min(100);
        let mut batch: Vec<StatementLine> = Vec::with_capacity(self.settings.import_batch_lines);
        let mut statistics = Statistics::default();
        loop {
            batch.clear();
            for line in lines.by_ref() {
                let line = line
                    .map_err(|e| StoreError::Corrupt(format!("line {}: {}", e.line, e.reason)))?;
                if i64::try_from(line.line_no).unwrap_or(i64::MAX) <= job.applied_through {
                    continue;
                }
                batch.push(line);
                if batch.len() >= batch_size {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            if *shutdown.borrow() {
                return Ok(JobEnd::Stopped);
            }
            let started = Instant::now();
            match self
                .store
                .apply_statement_lines(job, &batch, &mut summary, self.lease())
                .await
            {
                Err(StoreError::ClaimLost) => return Ok(JobEnd::Stopped),
                other => other?,
            }
            batch_size = next_batch_size(
                batch_size,
                started.elapsed(),
                self.settings.import_batch_lines,
            );
            statistics
                .after(summary.lines, &self.store, ImportTables::Statement)
                .await;
            on_progress(Stage::Applying {
                applied: summary.lines,
                total,
            });
            // Callbacks and everyone else have their turn between batches.
            tokio::task::yield_now().await;
        }
        match self.store.finish_statement_import(job, summary).await {
            Ok(summary) => Ok(JobEnd::Done(summary)),
            Err(StoreError::ClaimLost) => Ok(JobEnd::Stopped),
            Err(err) => Err(err),
        }
    }

    /// Reads and checks a claimed register (unless a run before did),
    /// then applies the rows not yet applied, batch by batch, and finishes.
    async fn run_register_job(
        &self,
        mut job: ClaimedRegister,
        shutdown: watch::Receiver<bool>,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<JobEnd<DossierImportSummary>, StoreError> {
        let end = self.run_rows(&mut job, shutdown, on_progress).await?;
        if matches!(end, JobEnd::Done(_) | JobEnd::Refused(_)) {
            upload::forget(Path::new(&job.stored_file)).await;
        }
        Ok(end)
    }

    async fn run_rows(
        &self,
        job: &mut ClaimedRegister,
        shutdown: watch::Receiver<bool>,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<JobEnd<DossierImportSummary>, StoreError> {
        let applied = job.so_far.summary.rows;
        let refuse = async |job: &ClaimedRegister, line: usize, reason: String| {
            let refusal = Refusal { line, reason };
            match self.store.refuse_register_import(job, &refusal).await {
                Ok(()) => Ok(JobEnd::Refused(refusal)),
                Err(StoreError::ClaimLost) => Ok(JobEnd::Stopped),
                Err(err) => Err(err),
            }
        };
        let bytes = match tokio::fs::read(&job.stored_file).await {
            Ok(bytes) => bytes,
            Err(_) if applied == 0 => {
                let reason = "the stored file is gone; nothing was imported; send the file again";
                return refuse(job, 1, reason.to_owned()).await;
            }
            Err(e) => {
                return Err(StoreError::Corrupt(format!(
                    "the stored file {} cannot be read: {e}",
                    job.stored_file
                )));
            }
        };
        // A large file takes a while to parse: off the server's threads.
        let parsed = tokio::task::spawn_blocking(move || parse_register(&bytes))
            .await
            .map_err(|e| StoreError::Corrupt(format!("reading the register: {e}")))?;
        let register = match parsed {
            Ok(register) => register,
            // Nothing of a file that cannot be read is applied.
            Err(e) => return refuse(job, e.line, e.message).await,
        };
        let total = register.rows.len();
        if job.rows_total.is_none() {
            match self.store.check_register(job, &register).await {
                Err(StoreError::ImportRefused { line, message }) => {
                    return refuse(job, line, message).await;
                }
                other => other?,
            }
            match self
                .store
                .register_checked(job, total as u64, self.lease())
                .await
            {
                Err(StoreError::ClaimLost) => return Ok(JobEnd::Stopped),
                other => other?,
            }
        }
        let mut at = applied.min(total);
        let mut batch_size = self.settings.import_batch_lines.min(100);
        let mut statistics = Statistics::default();
        while at < total {
            if *shutdown.borrow() {
                return Ok(JobEnd::Stopped);
            }
            let end = (at + batch_size).min(total);
            let started = Instant::now();
            match self
                .store
                .apply_register_batch(job, &register.rows[at..end], self.lease())
                .await
            {
                Err(StoreError::ClaimLost) => return Ok(JobEnd::Stopped),
                other => other?,
            }
            at = end;
            batch_size = next_batch_size(
                batch_size,
                started.elapsed(),
                self.settings.import_batch_lines,
            );
            statistics
                .after(at as u64, &self.store, ImportTables::Register)
                .await;
            on_progress(Stage::Applying {
                applied: at as u64,
                total: total as u64,
            });
            tokio::task::yield_now().await;
        }
        match self.store.finish_register_import(job).await {
            Ok(summary) => Ok(JobEnd::Done(summary)),
            Err(StoreError::ClaimLost) => Ok(JobEnd::Stopped),
            Err(err) => Err(err),
        }
    }

    /// Reads and checks every line: answers how many there are, or the
    /// first refused, in file order.
    async fn check(
        &self,
        job: &ClaimedImport,
        profile: &crate::reconcile::Profile,
        file: std::fs::File,
        on_progress: &(dyn Fn(Stage) + Sync),
    ) -> Result<Result<u64, Refusal>, StoreError> {
        let refused = |line: usize, reason: String| Ok(Err(Refusal { line, reason }));
        let mut lines = match profile.read(file) {
            Ok(lines) => lines,
            Err(e) => return refused(e.line, e.reason),
        };
        let mut checked = 0u64;
        let mut reported = Instant::now();
        let mut batch = Vec::with_capacity(self.settings.import_batch_lines);
        loop {
            batch.clear();
            let mut unreadable = None;
            for line in lines.by_ref().take(self.settings.import_batch_lines) {
                match line {
                    Ok(line) => batch.push(line),
                    Err(e) => {
                        unreadable = Some(e);
                        break;
                    }
                }
            }
            if batch.is_empty() && unreadable.is_none() {
                return Ok(Ok(checked));
            }
            // The first refused line in file order: one outside the scope
            // before the unreadable one, if any, is.
            match self.store.check_statement_lines(job, &batch).await {
                Err(StoreError::ImportRefused { line, message }) => return refused(line, message),
                other => other?,
            }
            if let Some(e) = unreadable {
                return refused(e.line, e.reason);
            }
            checked += batch.len() as u64;
            if reported.elapsed() >= CHECK_REPORT_EVERY {
                self.store
                    .statement_checked(job, checked, None, self.lease())
                    .await?;
                on_progress(Stage::Checking(checked));
                reported = Instant::now();
            }
        }
    }
}

/// When a job has the planner's statistics refreshed: once it has
/// applied a few thousand lines, then each time it has doubled them, so a
/// job of any size refreshes a few times and never waits long on it.
#[derive(Default)]
struct Statistics {
    refreshed_at: u64,
}

/// Lines applied before the first refresh.
const FIRST_REFRESH: u64 = 2_000;

impl Statistics {
    async fn after(&mut self, applied: u64, store: &Store, tables: ImportTables) {
        if applied < FIRST_REFRESH.max(self.refreshed_at * 2) {
            return;
        }
        self.refreshed_at = applied;
        if let Err(err) = store.refresh_statistics(tables).await {
            // Only the plans suffer: the job goes on.
            tracing::warn!(error = %error_chain(&err), "refreshing the planner's statistics failed");
        }
    }
}

/// The next batch's size: halved when a batch took past the target,
/// grown by a quarter when it took under half of it.
fn next_batch_size(size: usize, took: Duration, most: usize) -> usize {
    if took > BATCH_TARGET {
        (size / 2).max(MIN_BATCH)
    } else if took < BATCH_TARGET / 2 {
        (size + size / 4 + 1).min(most)
    } else {
        size
    }
    .min(most)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_shrinks_when_slow_and_grows_when_quick_within_its_bounds() {
        let (slow, quick, steady) = (BATCH_TARGET * 2, BATCH_TARGET / 10, BATCH_TARGET * 3 / 4);
        assert_eq!(next_batch_size(400, slow, 500), 200);
        assert_eq!(next_batch_size(30, slow, 500), MIN_BATCH);
        assert_eq!(next_batch_size(100, quick, 500), 126);
        assert_eq!(next_batch_size(480, quick, 500), 500);
        assert_eq!(next_batch_size(300, steady, 500), 300);
    }
}
