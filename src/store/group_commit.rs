//! SQLite's writers, one at a time, committing together.
//!
//! A SQLite file has one writer at a time, and with `synchronous = FULL`
//! every commit waits for the disk. So this process's write transactions
//! take turns (a fair queue, not SQLite's sleep-and-poll busy wait), and
//! run as savepoints inside one open transaction, a **batch**: each writer
//! does its work, releases its savepoint and gives the turn to the next.
//! The next one's savepoint is started with the release (or is the one an
//! undone writer rolled back to, which stays open). A batch runs on the
//! writers' own connection, whose statements run on the writer's thread
//! (see [`super::direct`]): a turn waits for nothing but the turn itself.
//! When the turn comes round to a member of the open batch again, no one
//! who was waiting when it wrote is left, and it commits the batch: one
//! disk flush for everyone who wrote meanwhile.
//!
//! Nobody hears that their write succeeded (or acts on what they read in
//! the batch) until the batch is committed: `commit` and `rollback` both
//! wait for the batch and fail if it failed. A transaction dropped without
//! either is rolled back to its savepoint and leaves the batch to the
//! others. The batch is ended by a task of its own, so a caller that stops
//! waiting never leaves it open.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Executor};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::conn::Conn;
use super::direct::DirectSqlite;

/// How a batch ended: `None` while it is open.
type Outcome = Option<Result<(), String>>;

/// The open batch, if any, behind the turn to write.
pub(super) struct Batch {
    conn: Option<Open>,
    /// The writers' own connection while no batch is open. No other
    /// connection writes through it, so its page cache stays valid from
    /// one batch to the next (a connection that sees another's commit in
    /// the WAL drops its whole cache).
    home: Option<DirectSqlite>,
    /// Counts batches, so that a member knows whether its batch has ended.
    generation: u64,
    outcome: Option<watch::Sender<Outcome>>,
    /// A turn began and has not yet ended its savepoint (or transaction
    /// of its own). Seen by the next one to take the turn, it means the
    /// holder vanished half way (its task dropped with its runtime): the
    /// batch holds half a write and must be rolled back, never committed.
    unfinished: bool,
    /// When a batch last failed to open because another process held the
    /// write lock past SQLite's busy timeout: the writers who were already
    /// waiting for their turn then fail at once, as each would have on its
    /// own, rather than each waiting the timeout out in turn.
    locked_out_at: Option<Instant>,
    /// The database file, and who checkpoints its log.
    file: Arc<Database>,
    /// Writers who have taken a turn in the open batch.
    writes: u64,
}

impl Batch {
    /// Marks a turn taken, unfinished until it ends, and counts it as one
    /// of the open batch's writes unless it has a transaction of its own.
    fn take_turn(&mut self, alone: bool) {
        self.unfinished = true;
        if !alone {
            self.writes += 1;
        }
    }
}

/// What the open transaction runs on.
enum Open {
    /// A batch: the writers' own connection, whose statements run on the
    /// writer's thread (short ones, in turn).
    Batch(DirectSqlite),
    /// A transaction of a writer's own (an import): a pool connection,
    /// whose long statements run on its own thread.
    Alone(PoolConnection<Any>),
}

impl Open {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Open::Batch(conn) => Conn::Direct(conn),
            Open::Alone(conn) => Conn::Any(conn),
        }
    }
}

/// Where the writers' own connection opens its file, and how; and the
/// connection that checkpoints the file's write-ahead log.
struct Database {
    path: PathBuf,
    /// The pragmas every connection of the store runs first.
    settings: String,
    /// Copies the log into the database off the writers' turn (see
    /// [`checkpoint_if_due`]).
    checkpointer: std::sync::Mutex<Option<DirectSqlite>>,
    checkpointing: std::sync::atomic::AtomicBool,
    /// Wakes the checkpointer's thread, once it is started.
    checkpoint_due: std::sync::OnceLock<std::sync::mpsc::Sender<()>>,
    /// Set when the writers close: the checkpointer then opens no
    /// connection to the file again.
    closed: std::sync::atomic::AtomicBool,
    /// What the committed batches have done.
    committed: Committed,
}

/// What the committed batches have done since the writers started.
#[derive(Default)]
struct Committed {
    batches: AtomicU64,
    writes: AtomicU64,
    log_pages: AtomicU64,
    nanos: AtomicU64,
    checkpoints: AtomicU64,
    checkpoints_at_bound: AtomicU64,
}

/// What the SQLite writers' committed batches have done since the store
/// opened: how many writers share a commit, how many pages of the log each
/// write costs, and how long the commits (which every writer waits for)
/// take. Shown by `/metrics` and by `lephi bench`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchStats {
    /// Batches committed.
    pub batches: u64,
    /// Writes (each writer's savepoint, kept or undone) in those batches.
    pub writes: u64,
    /// Pages their commits wrote to the write-ahead log.
    pub log_pages: u64,
    /// Time spent committing them: writing the log and flushing it to disk.
    pub commit_seconds: f64,
    /// Checkpoints of the log by the checkpointer's thread.
    pub checkpoints: u64,
    /// Checkpoints a commit ran itself, the log having reached its bound
    /// with the checkpointer behind.
    pub checkpoints_at_bound: u64,
}

impl Database {
    /// A new connection to the file, with the store's settings and the
    /// writers' own (see [`WRITER_SETTINGS`]).
    fn connect(&self) -> Result<DirectSqlite, sqlx::Error> {
        let settings = self.settings.trim_end().trim_end_matches(';');
        DirectSqlite::open(&self.path, &format!("{settings}; {WRITER_SETTINGS}"))
    }
}

/// The writers' connection (and the checkpointer's) keeps a small page
/// cache and reads the database file through a memory map. A commit that
/// follows a B-tree page split scans its connection's whole page cache
/// (SQLite renumbers split pages through the page at the 1 GiB mark, and
/// then drops every cached page past the database's end, scanning for
/// them): with 64 MiB cached that scan took about a quarter of every
/// batch's commit, which all its writers wait for. Pages the smaller
/// cache no longer holds are read from the map, without a copy.
const WRITER_SETTINGS: &str = "PRAGMA cache_size = -4096; PRAGMA mmap_size = 2147418112;";

/// The log's length, in frames (pages), past which a commit has it
/// checkpointed. A quarter of SQLite's default: each checkpoint's pages
/// reach the disk when it flushes the database file, and a commit's flush
/// of the log waits behind them. With 1,000 pages (4 MiB) a checkpoint's
/// flush held commits up long enough to put the p99 of callbacks at a
/// fixed 1,500/s at 6–7 ms; with 250, 4–4.5 ms (BENCHMARKS.md).
const CHECKPOINT_FRAMES: std::ffi::c_int = 250;
/// How many times [`CHECKPOINT_FRAMES`] the log may grow to while the
/// checkpointer is behind, before a commit checkpoints it itself: 4,000
/// frames (see [`checkpoint_at_bound`]).
const LOG_BOUND: std::ffi::c_int = 16;
/// The checkpointer's thread's nice value: the lowest CPU priority. No
/// request waits for its copying (only for its flush, which a smaller
/// checkpoint keeps short), and the requests it shares the cores with
/// do; a checkpointer left behind lets the log grow only to its
/// bound, where a commit checkpoints it itself.
#[cfg(target_os = "linux")]
const CHECKPOINTER_NICE: libc::c_int = 19;
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

#[derive(Clone)]
pub(super) struct Writer {
    pool: AnyPool,
    batch: Arc<Mutex<Batch>>,
    /// The database file, shared with the batch.
    file: Arc<Database>,
}

/// A writer's turn: its savepoint in the open batch, or a transaction of
/// its own.
pub(super) struct Turn {
    guard: Option<OwnedMutexGuard<Batch>>,
    batch: Arc<Mutex<Batch>>,
    /// A transaction of its own, committed when it finishes.
    alone: bool,
}

/// Opens a batch with the first writer's savepoint.
const BEGIN_WITH_SAVEPOINT: &str = "BEGIN IMMEDIATE; SAVEPOINT lephi_write";
/// Ends a writer's savepoint, keeping its work, and starts the next one's.
const RELEASE_AND_RESTART: &str = "RELEASE lephi_write; SAVEPOINT lephi_write";
const ROLLBACK_TO: &str = "ROLLBACK TO lephi_write";

impl Writer {
    /// Writers on the database file at `path`, whose own connection runs
    /// `settings` (the pragmas of every connection of the store) first;
    /// transactions of their own take a connection of `pool`.
    pub(super) fn new(pool: AnyPool, path: PathBuf, settings: String) -> Writer {
        let file = Arc::new(Database {
            path,
            settings,
            checkpointer: std::sync::Mutex::new(None),
            checkpointing: std::sync::atomic::AtomicBool::new(false),
            checkpoint_due: std::sync::OnceLock::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            committed: Committed::default(),
        });
        Writer {
            pool,
            file: file.clone(),
            batch: Arc::new(Mutex::new(Batch {
                conn: None,
                home: None,
                generation: 0,
                outcome: None,
                unfinished: false,
                locked_out_at: None,
                file,
                writes: 0,
            })),
        }
    }

    /// Ends the open batch, if any, before the pool closes (which would
    /// otherwise wait for its connection for good): what was left by a
    /// writer that vanished half way is rolled back, the rest committed.
    /// Writers still running are waited for, as they take their turns. A
    /// checkpoint running is waited for too, and its connection closed;
    /// the checkpointer's thread opens none again, and ends when the
    /// file's last holder drops it.
    pub(super) async fn close(&self) {
        let mut guard = self.batch.lock().await;
        recover(&mut guard).await;
        if guard.conn.is_some() {
            drop(end(&mut guard, true).await);
        }
        guard.home.take();
        // A checkpoint still running is waited for; none after it opens
        // the file again.
        guard.file.closed.store(true, Ordering::Release);
        let file = guard.file.clone();
        let closed = tokio::task::spawn_blocking(move || {
            file.checkpointer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        });
        drop(closed.await);
    }

    /// What the committed batches have done so far.
    pub(super) fn stats(&self) -> BatchStats {
        let committed = &self.file.committed;
        BatchStats {
            batches: committed.batches.load(Ordering::Relaxed),
            writes: committed.writes.load(Ordering::Relaxed),
            log_pages: committed.log_pages.load(Ordering::Relaxed),
            commit_seconds: committed.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            checkpoints: committed.checkpoints.load(Ordering::Relaxed),
            checkpoints_at_bound: committed.checkpoints_at_bound.load(Ordering::Relaxed),
        }
    }

    /// Waits for the turn to write, opens a batch if none is open, and
    /// starts this writer's savepoint in it.
    pub(super) async fn begin(&self) -> Result<Turn, sqlx::Error> {
        self.take_turn(false).await
    }

    /// Waits for the turn to write, commits the open batch if any, and
    /// begins a transaction of this writer's own, which holds the turn
    /// until it ends: for a large write (a statement or register import),
    /// which as a savepoint would copy every page it changes to SQLite's
    /// statement journal.
    pub(super) async fn begin_alone(&self) -> Result<Turn, sqlx::Error> {
        self.take_turn(true).await
    }

    async fn take_turn(&self, alone: bool) -> Result<Turn, sqlx::Error> {
        let since = Instant::now();
        let mut guard = self.batch.clone().lock_owned().await;
        // Most turns find a batch open, with a savepoint ready for them,
        // and nothing to wait for: the turn is taken at once, with no await
        // between the lock and the turn that a caller who stops waiting
        // could leave it half taken at.
        if !alone && !guard.unfinished && matches!(guard.conn, Some(Open::Batch(_))) {
            guard.take_turn(alone);
            return Ok(Turn {
                guard: Some(guard),
                batch: self.batch.clone(),
                alone,
            });
        }
        let writer = self.clone();
        // Done by a task of its own, which a caller that stops waiting
        // cannot cut short between a statement and its bookkeeping (a
        // connection with `BEGIN IMMEDIATE` open would hold the write lock
        // for good); a turn no one takes is dropped, which undoes it and
        // leaves the batch to the others.
        handed_over(tokio::spawn(async move {
            let mut guard = guard;
            recover(&mut guard).await;
            if alone && guard.conn.is_some() {
                // Its members hear how it ended.
                drop(end(&mut guard, true).await);
            }
            // Between turns an open batch always has a savepoint open that
            // nothing has written in, for the next writer: started with the
            // batch, or by the writer before.
            if guard.conn.is_none() {
                writer.open(&mut guard, since, alone).await?;
            }
            guard.take_turn(alone);
            Ok(Turn {
                guard: Some(guard),
                batch: writer.batch,
                alone,
            })
        }))
        .await
    }

    /// Opens a batch, with the first writer's savepoint, on the writers'
    /// own connection; or a transaction of a writer's own on a connection
    /// of the pool. For a writer waiting for its turn `since` then.
    async fn open(
        &self,
        guard: &mut Batch,
        since: Instant,
        alone: bool,
    ) -> Result<(), sqlx::Error> {
        if guard.locked_out_at.is_some_and(|at| since < at) {
            return Err(sqlx::Error::Protocol(
                "the database is locked by another process".into(),
            ));
        }
        let opened = if alone {
            let mut conn = self.pool.acquire().await?;
            match conn.execute("BEGIN IMMEDIATE").await {
                Ok(_) => Ok(Open::Alone(conn)),
                Err(err) => Err(err),
            }
        } else {
            // Opening the file and waiting for the write lock may take a
            // while: not on the writer's thread.
            let home = guard.home.take();
            let file = guard.file.clone();
            let begun = tokio::task::spawn_blocking(move || {
                let mut conn = match home {
                    Some(conn) => conn,
                    None => {
                        let mut conn = file.connect().map_err(|e| (e, None))?;
                        conn.count_wal_frames();
                        conn
                    }
                };
                match conn.run(BEGIN_WITH_SAVEPOINT, None) {
                    Ok(_) => Ok(conn),
                    Err(err) => Err((err, Some(conn))),
                }
            })
            .await
            .unwrap_or_else(|_| {
                Err((
                    sqlx::Error::Protocol("the batch could not be opened".into()),
                    None,
                ))
            });
            match begun {
                Ok(conn) => Ok(Open::Batch(conn)),
                Err((err, conn)) => {
                    if let Some(mut conn) = conn {
                        // Only the savepoint can have failed after the
                        // lock was taken: give the lock back.
                        if conn.run("ROLLBACK", None).is_ok() || is_busy(&err) {
                            guard.home = Some(conn);
                        }
                    }
                    Err(err)
                }
            }
        };
        match opened {
            Ok(open) => {
                guard.locked_out_at = None;
                guard.conn = Some(open);
                guard.generation += 1;
                guard.outcome = Some(watch::channel(None).0);
                guard.unfinished = false;
                guard.writes = 0;
                Ok(())
            }
            Err(err) => {
                if is_busy(&err) {
                    guard.locked_out_at = Some(Instant::now());
                }
                Err(err)
            }
        }
    }
}

/// True when SQLite gave up waiting for a lock (`SQLITE_BUSY`, or one of
/// its extended codes).
fn is_busy(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|e| e.code())
        .and_then(|code| code.parse::<i64>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// Rolls the open batch back if the last turn's holder vanished half way
/// (see [`Batch::unfinished`]); its members hear so.
async fn recover(guard: &mut Batch) {
    if guard.unfinished && guard.conn.is_some() {
        tracing::warn!("a write vanished half way: its batch is rolled back");
        drop(end(guard, false).await);
    }
    guard.unfinished = false;
}

/// What a task that starts a turn handed over.
async fn handed_over(
    task: tokio::task::JoinHandle<Result<Turn, sqlx::Error>>,
) -> Result<Turn, sqlx::Error> {
    task.await.unwrap_or_else(|_| {
        Err(sqlx::Error::Protocol(
            "the write could not be started".into(),
        ))
    })
}

impl Turn {
    /// The connection this turn's statements run on.
    pub(super) fn conn(&mut self) -> Conn<'_> {
        self.guard
            .as_mut()
            .and_then(|guard| guard.conn.as_mut())
            .expect("a turn holds the open batch until it ends")
            .conn()
    }

    /// Keeps (`keep`) or undoes this writer's work, gives up the turn, and
    /// waits until the batch is committed: the result is the batch's.
    ///
    /// The savepoint (or transaction) is ended by a task of its own, so a
    /// caller that stops waiting (a client gone away) cannot leave it, and
    /// the write lock with it, open.
    pub(super) async fn finish(mut self, keep: bool) -> Result<(), sqlx::Error> {
        let Some(mut guard) = self.guard.take() else {
            return Err(sqlx::Error::PoolClosed);
        };
        if self.alone {
            let ended = tokio::spawn(async move { end(&mut guard, keep).await }).await;
            return match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) if !keep => Ok(()),
                Ok(Err(why)) => Err(sqlx::Error::Protocol(format!(
                    "the transaction was not committed: {why}"
                ))),
                Err(_) => Err(sqlx::Error::Protocol(
                    "the transaction was abandoned".into(),
                )),
            };
        }
        // The savepoint ends, and the turn passes on, before the first
        // await (the batch's connection answers at once), so a caller who
        // stops waiting for the batch to commit leaves nothing half done.
        let outcome = leave(guard, self.batch.clone(), keep).await;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(sqlx::Error::Protocol(format!(
                "the write batch was not committed: {why}"
            ))),
            Err(_) => Err(sqlx::Error::Protocol(
                "the write batch was abandoned".into(),
            )),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if self.alone => {
                runtime.spawn(async move {
                    drop(end(&mut guard, false).await);
                });
            }
            Ok(runtime) => {
                let batch = self.batch.clone();
                // The batch is ended by the task `leave` starts; no one
                // waits for its outcome here.
                runtime.spawn(async move {
                    drop(leave(guard, batch, false).await);
                });
            }
            Err(_) => {
                // No runtime to undo the savepoint on: close the connection,
                // which rolls the whole batch back; its members hear so.
                match guard.conn.take() {
                    Some(Open::Alone(conn)) => drop(conn.detach()),
                    Some(Open::Batch(conn)) => drop(conn),
                    None => {}
                }
                guard.outcome.take();
            }
        }
    }
}

/// Ends this writer's savepoint (kept or undone) and hands the turn on;
/// the batch is ended by a task of its own once the turn comes round
/// again. Returns the batch's outcome, to be awaited.
async fn leave(
    mut guard: OwnedMutexGuard<Batch>,
    batch: Arc<Mutex<Batch>>,
    keep: bool,
) -> tokio::task::JoinHandle<Result<(), String>> {
    // Either way a savepoint is left open for the next writer: a new one,
    // or this one rolled back to, which stays open and holds nothing.
    let ended = match guard.conn.as_mut() {
        Some(Open::Batch(conn)) => conn
            .run(
                if keep {
                    RELEASE_AND_RESTART
                } else {
                    ROLLBACK_TO
                },
                None,
            )
            .map(drop),
        Some(Open::Alone(_)) | None => Err(sqlx::Error::PoolClosed),
    };
    if let Err(err) = ended {
        // The batch is in a state no one can vouch for: undo it all, in a
        // task of its own, so that its members hear so even if this
        // caller stops waiting.
        let why = err.to_string();
        return tokio::spawn(async move {
            drop(end(&mut guard, false).await);
            Err(why)
        });
    }
    guard.unfinished = false;
    let generation = guard.generation;
    let mut outcome = match &guard.outcome {
        Some(sender) => sender.subscribe(),
        None => watch::channel(Some(Err("no open batch".to_owned()))).1,
    };
    drop(guard);
    tokio::spawn(async move {
        {
            let mut guard = batch.lock_owned().await;
            recover(&mut guard).await;
            if guard.generation == generation && guard.conn.is_some() {
                drop(end(&mut guard, true).await);
            }
        }
        match outcome.wait_for(Option::is_some).await {
            Ok(result) => result.clone().unwrap_or(Ok(())),
            Err(_) => Err("the write batch was abandoned".to_owned()),
        }
    })
}

/// Checkpoints the log, passively and on a connection and thread of its
/// own, once it holds `frames` past [`CHECKPOINT_FRAMES`]: the writers go
/// on while it copies the log into the database and waits for the disk,
/// instead of waiting for the commit that crossed the threshold to do it.
/// The next writer after a full checkpoint starts the log again from its
/// beginning.
fn checkpoint_if_due(file: &Arc<Database>, frames: std::ffi::c_int) {
    if frames < CHECKPOINT_FRAMES || file.checkpointing.swap(true, Ordering::AcqRel) {
        return;
    }
    let due = file
        .checkpoint_due
        .get_or_init(|| start_checkpointer(Arc::downgrade(file)));
    if due.send(()).is_err() {
        // No thread to checkpoint: the commits do, at the log's bound.
        file.checkpointing.store(false, Ordering::Release);
    }
}

/// Starts the thread that checkpoints `file`'s log each time it is woken,
/// at the lowest CPU priority; it ends when the file's last holder drops
/// it, and with it the sender answered here.
fn start_checkpointer(file: std::sync::Weak<Database>) -> std::sync::mpsc::Sender<()> {
    let (due, woken) = std::sync::mpsc::channel::<()>();
    let started = std::thread::Builder::new()
        .name("wal-checkpoint".to_owned())
        .spawn(move || {
            /// Lets the next commit past the threshold wake the thread
            /// however its checkpoint ends, a panic included (the thread
            /// is then gone, and the wake-up fails and says so).
            struct Done(Arc<Database>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.checkpointing.store(false, Ordering::Release);
                }
            }
            lower_this_threads_priority();
            while woken.recv().is_ok() {
                let Some(file) = file.upgrade() else { break };
                let done = Done(file);
                checkpoint(&done.0);
            }
        });
    if let Err(err) = started {
        // The sender's receiver is gone with the closure: every wake-up
        // fails, and the commits checkpoint at the log's bound.
        tracing::warn!(error = %err, "the checkpointer's thread could not start");
    }
    due
}

/// Gives the calling thread (only) the checkpointer's nice value. Linux
/// keeps a nice value per thread, and any thread may lower its own
/// priority; elsewhere, where it would lower the whole process's, the
/// thread keeps its priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `setpriority` only reads its arguments; `0` names the
        // calling thread.
        let lowered = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, CHECKPOINTER_NICE) };
        if lowered != 0 {
            let err = std::io::Error::last_os_error();
            tracing::warn!(error = %err, "the checkpointer keeps its priority");
        }
    }
}

/// Checkpoints `file`'s log passively on the checkpointer's connection,
/// opening it first if need be; once the writers have closed, only
/// closes the connection.
fn checkpoint(file: &Database) {
    let mut checkpointer = file
        .checkpointer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if file.closed.load(Ordering::Acquire) {
        checkpointer.take();
        return;
    }
    let checkpointed = match checkpointer.as_mut() {
        Some(conn) => checkpoint_on(conn),
        None => file.connect().and_then(|mut conn| {
            let checkpointed = checkpoint_on(&mut conn);
            *checkpointer = Some(conn);
            checkpointed
        }),
    };
    match checkpointed {
        Ok(Checkpoint::Done) => {
            file.committed.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
        // Another process's checkpoint: the next commit past the
        // threshold wakes this one again.
        Ok(Checkpoint::Busy) => {}
        Err(err) => {
            // The next commit past the threshold tries again.
            tracing::warn!(error = %err, "the write-ahead log could not be checkpointed");
            checkpointer.take();
        }
    }
}

/// The log has reached its bound: unless the checkpointer's thread is
/// checkpointing it, the commit that found it there checkpoints it itself,
/// on its own connection, before the writers go on (as SQLite's own
/// checkpoint would), so that the log can start again.
///
/// While the thread is checkpointing, the commit leaves the log to it and
/// the bound is passed. SQLite lets one connection checkpoint at a time
/// (the others are told "busy", having copied nothing), and waiting for
/// the thread would put the work of the lowest CPU priority in front of
/// every writer: callbacks at a fixed 1,500/s then had a p99 of 5–30 ms
/// instead of 4–4.5 ms (BENCHMARKS.md). The thread is working on it, and
/// the log is not lost, only longer.
fn checkpoint_at_bound(file: &Database, conn: &mut DirectSqlite) {
    // Held while this commit checkpoints, so that the thread, woken
    // meanwhile, waits for it rather than being told "busy".
    let _checkpointer = match file.checkpointer.try_lock() {
        Ok(checkpointer) => checkpointer,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    match checkpoint_on(conn) {
        Ok(Checkpoint::Done) => {
            file.committed
                .checkpoints_at_bound
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(Checkpoint::Busy) => {
            tracing::debug!("another process is checkpointing the write-ahead log");
        }
        Err(err) => {
            tracing::warn!(error = %err, "the write-ahead log could not be checkpointed");
        }
    }
}

/// How a passive checkpoint went.
#[derive(Debug, PartialEq)]
enum Checkpoint {
    /// It copied what it could into the database: every frame, unless a
    /// reader still needed some.
    Done,
    /// Another connection was checkpointing, and it copied nothing.
    Busy,
}

/// Checkpoints the log passively on `conn`. SQLite answers a row of three
/// numbers, the first of which says whether another connection's
/// checkpoint kept this one from running.
fn checkpoint_on(conn: &mut DirectSqlite) -> Result<Checkpoint, sqlx::Error> {
    let steps = conn.run(CHECKPOINT, None)?;
    let busy = steps.iter().find_map(|step| match step {
        sqlx::Either::Right(row) => sqlx::Row::try_get::<i64, _>(row, 0).ok(),
        sqlx::Either::Left(_) => None,
    });
    match busy {
        Some(0) => Ok(Checkpoint::Done),
        Some(_) => Ok(Checkpoint::Busy),
        None => Err(sqlx::Error::Protocol(
            "the checkpoint answered no row".into(),
        )),
    }
}

/// Commits (or rolls back) the open batch and tells its members; returns
/// what it told them.
async fn end(guard: &mut Batch, commit: bool) -> Result<(), String> {
    guard.unfinished = false;
    let verb = if commit { "COMMIT" } else { "ROLLBACK" };
    let result = match guard.conn.take() {
        None => return Err("no open batch".to_owned()),
        Some(Open::Alone(mut conn)) => {
            let result = conn
                .execute(verb)
                .await
                .map(drop)
                .map_err(|e| e.to_string());
            if result.is_err() && conn.execute("ROLLBACK").await.is_err() {
                drop(conn.detach());
            }
            result
        }
        Some(Open::Batch(mut conn)) => {
            let file = guard.file.clone();
            // The commit waits for the disk: not on the writer's thread.
            let ended = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let result = conn.run(verb, None).map(drop).map_err(|e| e.to_string());
                let took = started.elapsed();
                // Counted here whether kept or not, so that the next batch
                // starts from nothing.
                let log_pages = conn.take_pages_written();
                if result.is_ok()
                    && conn
                        .wal_frames()
                        .is_some_and(|frames| frames >= CHECKPOINT_FRAMES * LOG_BOUND)
                {
                    checkpoint_at_bound(&file, &mut conn);
                }
                // A connection that cannot roll back is closed, which does.
                let reusable = result.is_ok() || conn.run("ROLLBACK", None).is_ok();
                (reusable.then_some(conn), result, took, log_pages)
            })
            .await;
            match ended {
                Ok((conn, result, took, log_pages)) => {
                    if commit && result.is_ok() {
                        let committed = &guard.file.committed;
                        committed.batches.fetch_add(1, Ordering::Relaxed);
                        committed.writes.fetch_add(guard.writes, Ordering::Relaxed);
                        committed.log_pages.fetch_add(log_pages, Ordering::Relaxed);
                        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
                        committed.nanos.fetch_add(nanos, Ordering::Relaxed);
                    }
                    let frames = conn.as_ref().and_then(DirectSqlite::wal_frames);
                    if let Some(frames) = frames {
                        checkpoint_if_due(&guard.file, frames);
                    }
                    guard.home = conn;
                    result
                }
                Err(_) => Err("the batch's connection was lost".to_owned()),
            }
        }
    };
    let result = match (commit, result) {
        (true, result) => result,
        (false, Ok(())) => Err("the write batch was rolled back".to_owned()),
        (false, Err(why)) => Err(why),
    };
    if let Some(sender) = guard.outcome.take() {
        sender.send_replace(Some(result.clone()));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn writer() -> (Writer, tempfile::TempDir) {
        writer_with("", "").await
    }

    /// A writer on a new file with table `t`, `schema` and the writers'
    /// connection `settings`.
    async fn writer_with(schema: &str, settings: &str) -> (Writer, tempfile::TempDir) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY); {schema}"
        )))
        .execute(&pool)
        .await
        .unwrap();
        let writer = Writer::new(pool, dir.path().join("t.db"), settings.to_owned());
        (writer, dir)
    }

    async fn rows(writer: &Writer) -> Vec<i64> {
        sqlx::query_scalar("SELECT n FROM t ORDER BY n")
            .fetch_all(&writer.pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_keep_exactly_what_they_commit() {
        let (writer, _dir) = writer().await;
        let tasks: Vec<_> = (0..200_i64)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut turn = writer.begin().await.unwrap();
                    sqlx::query("INSERT INTO t (n) VALUES ($1)")
                        .bind(n)
                        .execute(&mut turn.conn())
                        .await
                        .unwrap();
                    match n % 3 {
                        0 => turn.finish(true).await.unwrap(),
                        1 => turn.finish(false).await.unwrap(),
                        _ => drop(turn),
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // Dropped turns are undone by a task of their own: one more write
        // waits for them.
        writer.begin().await.unwrap().finish(false).await.unwrap();
        let kept: Vec<i64> = (0..200).filter(|n| n % 3 == 0).collect();
        assert_eq!(rows(&writer).await, kept);
    }

    async fn insert(turn: &mut Turn, n: i64) {
        sqlx::query("INSERT INTO t (n) VALUES ($1)")
            .bind(n)
            .execute(&mut turn.conn())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_batches_are_counted_with_their_writes_log_pages_and_time() {
        let (writer, _dir) = writer().await;
        assert_eq!(writer.stats(), BatchStats::default());
        // One writer at a time: a batch each, kept or undone.
        for n in 0..6_i64 {
            let mut turn = writer.begin().await.unwrap();
            insert(&mut turn, n).await;
            turn.finish(n % 2 == 0).await.unwrap();
        }
        // A transaction of its own is no batch.
        let mut alone = writer.begin_alone().await.unwrap();
        insert(&mut alone, 100).await;
        alone.finish(true).await.unwrap();
        let one_by_one = writer.stats();
        assert_eq!((one_by_one.batches, one_by_one.writes), (6, 6));
        // Each kept insert changed a page, which its commit wrote.
        assert!(one_by_one.log_pages >= 3, "{one_by_one:?}");
        assert!(one_by_one.commit_seconds > 0.0, "{one_by_one:?}");

        let tasks: Vec<_> = (0..100_i64)
            .map(|n| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut turn = writer.begin().await.unwrap();
                    insert(&mut turn, 1000 + n).await;
                    turn.finish(true).await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let together = writer.stats();
        assert_eq!(together.writes - one_by_one.writes, 100);
        let batches = together.batches - one_by_one.batches;
        assert!((1..=100).contains(&batches), "{together:?}");
        assert!(together.log_pages > one_by_one.log_pages, "{together:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_commit_fails_is_undone_told_and_not_counted() {
        // A reference checked at commit fails the commit itself.
        let (writer, _dir) = writer_with(
            "CREATE TABLE child (n INTEGER REFERENCES t (n) DEFERRABLE INITIALLY DEFERRED)",
            "PRAGMA foreign_keys = ON",
        )
        .await;
        let mut turn = writer.begin().await.unwrap();
        insert(&mut turn, 1).await;
        sqlx::query("INSERT INTO child (n) VALUES (2)")
            .execute(&mut turn.conn())
            .await
            .unwrap();
        let failed = turn.finish(true).await.unwrap_err();
        assert!(failed.to_string().contains("FOREIGN KEY"), "{failed}");
        assert_eq!(rows(&writer).await, Vec::<i64>::new());
        assert_eq!(writer.stats(), BatchStats::default());
        // The writers go on, and what they keep is counted.
        let mut turn = writer.begin().await.unwrap();
        insert(&mut turn, 3).await;
        turn.finish(true).await.unwrap();
        assert_eq!(rows(&writer).await, vec![3]);
        assert_eq!((writer.stats().batches, writer.stats().writes), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_committed_write_is_visible_to_other_connections_when_commit_returns() {
        let (writer, _dir) = writer().await;
        for n in 0..20_i64 {
            let mut turn = writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                .bind(n)
                .execute(&mut turn.conn())
                .await
                .unwrap();
            turn.finish(true).await.unwrap();
            assert_eq!(rows(&writer).await.len() as i64, n + 1);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_statement_undoes_only_its_writer() {
        let (writer, _dir) = writer().await;
        let mut first = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut first.conn())
            .await
            .unwrap();
        let committed = tokio::spawn(first.finish(true));
        let mut second = writer.begin().await.unwrap();
        let duplicate = sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut second.conn())
            .await;
        assert!(duplicate.is_err());
        second.finish(false).await.unwrap();
        committed.await.unwrap().unwrap();
        assert_eq!(rows(&writer).await, vec![1]);
    }

    /// A second connection to the same file, as another process (the CLI
    /// importing) would have, waiting at most `busy_ms` for the lock.
    async fn other_process(dir: &tempfile::TempDir, busy_ms: u64) -> sqlx::AnyConnection {
        use sqlx::Connection;
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!(
            "PRAGMA busy_timeout = {busy_ms}"
        )))
        .await
        .unwrap();
        conn
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_dropped_while_waiting_for_the_lock_leaves_no_transaction_open() {
        let (writer, dir) = writer().await;
        let mut cli = other_process(&dir, 1_000).await;
        cli.execute("BEGIN IMMEDIATE").await.unwrap();
        // A request waits for the lock the import holds, and its client
        // goes away.
        let waiting = {
            let writer = writer.clone();
            tokio::spawn(async move { writer.begin().await.map(drop) })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        waiting.abort();
        let _ = waiting.await;
        cli.execute("COMMIT").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // No pooled connection was left holding the write lock.
        cli.execute("BEGIN IMMEDIATE").await.unwrap();
        cli.execute("COMMIT").await.unwrap();
        for n in 0..8_i64 {
            let mut turn = writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                .bind(n)
                .execute(&mut turn.conn())
                .await
                .unwrap();
            turn.finish(true).await.unwrap();
        }
        assert_eq!(rows(&writer).await, (0..8).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_or_rollback_its_caller_stops_waiting_for_still_ends_the_batch() {
        use futures_util::FutureExt;
        let (writer, dir) = writer().await;
        for (n, keep) in [(1_i64, true), (2, false)] {
            let mut turn = writer.begin().await.unwrap();
            sqlx::query("INSERT INTO t (n) VALUES ($1)")
                .bind(n)
                .execute(&mut turn.conn())
                .await
                .unwrap();
            // The client goes away while its request commits.
            assert!(turn.finish(keep).now_or_never().is_none());
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            // The batch was ended: another process can write.
            let mut cli = other_process(&dir, 1_000).await;
            cli.execute("BEGIN IMMEDIATE").await.unwrap();
            cli.execute("COMMIT").await.unwrap();
        }
        assert_eq!(rows(&writer).await, vec![1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_turn_whose_holder_vanished_half_way_is_never_committed() {
        let (writer, _dir) = writer().await;
        let mut kept = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut kept.conn())
            .await
            .unwrap();
        // The next writer is waiting for its turn when the first one
        // finishes, so it writes in the same batch.
        let next = tokio::spawn({
            let writer = writer.clone();
            async move { writer.begin().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let kept = tokio::spawn(kept.finish(true));
        let mut vanished = next.await.unwrap().unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (2)")
            .execute(&mut vanished.conn())
            .await
            .unwrap();
        // Its task was dropped with its runtime (an actix worker stopped at
        // shutdown): the turn goes, its savepoint is neither released nor
        // rolled back, and no task is left to do it.
        drop(vanished.guard.take());
        drop(vanished);
        // Half a write is never committed: the batch is rolled back, and
        // its members hear so.
        assert!(kept.await.unwrap().is_err());
        let mut next = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (3)")
            .execute(&mut next.conn())
            .await
            .unwrap();
        next.finish(true).await.unwrap();
        assert_eq!(rows(&writer).await, vec![3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_ends_a_batch_no_task_is_left_to_commit() {
        let (writer, dir) = writer().await;
        let mut turn = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut turn.conn())
            .await
            .unwrap();
        // Released, but its commit task was dropped with its runtime.
        let guard = turn.guard.take().unwrap();
        drop(turn);
        let mut guard = guard;
        guard
            .conn
            .as_mut()
            .unwrap()
            .conn()
            .execute(RELEASE_AND_RESTART)
            .await
            .unwrap();
        guard.unfinished = false;
        drop(guard);
        let pool = writer.pool.clone();
        tokio::time::timeout(std::time::Duration::from_secs(2), async {
            writer.close().await;
            pool.close().await;
        })
        .await
        .expect("the pool closes");
        let mut cli = other_process(&dir, 1_000).await;
        let n: Vec<i64> = sqlx::query_scalar("SELECT n FROM t")
            .fetch_all(&mut cli)
            .await
            .unwrap();
        assert_eq!(n, vec![1]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_queued_behind_another_process_holding_the_lock_fail_together() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 400").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        let writer = Writer::new(
            pool,
            dir.path().join("t.db"),
            "PRAGMA busy_timeout = 400".to_owned(),
        );
        // The CLI imports a long statement.
        let mut cli = other_process(&dir, 1_000).await;
        cli.execute("BEGIN IMMEDIATE").await.unwrap();
        let started = std::time::Instant::now();
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.begin().await.map(drop) })
            })
            .collect();
        for writer in writers {
            assert!(writer.await.unwrap().is_err());
        }
        // Each waits about as long as SQLite's busy timeout, as each would
        // on its own, not for every writer ahead of it to time out in turn.
        let waited = started.elapsed();
        assert!(
            waited < std::time::Duration::from_millis(1_500),
            "{waited:?}"
        );
        cli.execute("COMMIT").await.unwrap();
        let mut turn = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (1)")
            .execute(&mut turn.conn())
            .await
            .unwrap();
        turn.finish(true).await.unwrap();
        assert_eq!(rows(&writer).await, vec![1]);
    }

    /// Writers fill the log well past the checkpoint threshold: it is
    /// copied into the database by the checkpointer as they go, and never
    /// grows much past its bound.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_as_writers_go_and_stays_bounded() {
        let (writer, dir) = writer().await;
        sqlx::raw_sql("CREATE TABLE pages (n INTEGER PRIMARY KEY, page BLOB NOT NULL)")
            .execute(&writer.pool)
            .await
            .unwrap();
        let most = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let tasks: Vec<_> = (0..8_i64)
            .map(|task| {
                let writer = writer.clone();
                let most = most.clone();
                tokio::spawn(async move {
                    for n in 0..300 {
                        let mut turn = writer.begin().await.unwrap();
                        // About a page each.
                        sqlx::query("INSERT INTO pages (n, page) VALUES ($1, randomblob(3000))")
                            .bind(task * 1_000 + n)
                            .execute(&mut turn.conn())
                            .await
                            .unwrap();
                        turn.finish(true).await.unwrap();
                        let frames = writer
                            .batch
                            .lock()
                            .await
                            .home
                            .as_ref()
                            .and_then(DirectSqlite::wal_frames);
                        most.fetch_max(frames.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM pages")
            .fetch_one(&writer.pool)
            .await
            .unwrap();
        assert_eq!(count, 2_400);
        let most = most.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            most > 0 && most < CHECKPOINT_FRAMES * LOG_BOUND + 200,
            "{most} frames"
        );
        // The checkpointer's thread did checkpoint (at the lowest priority
        // it may only get round to it once the writers are done).
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        while writer.stats().checkpoints == 0 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(writer.stats().checkpoints > 0, "{:?}", writer.stats());
        // The pages are in the database file itself, not only in its log.
        let size = std::fs::metadata(dir.path().join("t.db")).unwrap().len();
        assert!(size > 1_000 * 4_096, "{size} bytes");
    }

    /// Appends about `pages` pages to the log in one write.
    async fn write_pages(writer: &Writer, n: i64, pages: i64) {
        let mut turn = writer.begin().await.unwrap();
        sqlx::query("INSERT INTO pages (n, page) VALUES ($1, randomblob($2))")
            .bind(n)
            .bind(pages * 4_096)
            .execute(&mut turn.conn())
            .await
            .unwrap();
        turn.finish(true).await.unwrap();
    }

    async fn log_frames(writer: &Writer) -> std::ffi::c_int {
        let batch = writer.batch.lock().await;
        batch
            .home
            .as_ref()
            .and_then(DirectSqlite::wal_frames)
            .unwrap()
    }

    /// A commit that finds the log at its bound checkpoints it itself,
    /// and everything is copied: the next write starts the log again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_at_the_log_bound_checkpoints_it_itself() {
        let (writer, _dir) =
            writer_with("CREATE TABLE pages (n INTEGER PRIMARY KEY, page BLOB)", "").await;
        write_pages(&writer, 1, i64::from(CHECKPOINT_FRAMES * LOG_BOUND)).await;
        assert_eq!(
            writer.stats().checkpoints_at_bound,
            1,
            "{:?}",
            writer.stats()
        );
        write_pages(&writer, 2, 1).await;
        let frames = log_frames(&writer).await;
        assert!(frames < 10, "{frames} frames");
    }

    /// A commit that finds the log at its bound while the checkpointer's
    /// thread is checkpointing leaves the log to the thread: it neither
    /// waits for it nor checkpoints.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_at_the_log_bound_leaves_it_to_a_running_checkpoint() {
        let (writer, _dir) =
            writer_with("CREATE TABLE pages (n INTEGER PRIMARY KEY, page BLOB)", "").await;
        // As if the thread were mid-checkpoint, until told to end.
        let (locked, end_it) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
        let running = std::thread::spawn({
            let file = writer.file.clone();
            move || {
                let _checkpointer = file.checkpointer.lock().unwrap();
                locked.0.send(()).unwrap();
                end_it.1.recv().unwrap();
            }
        });
        locked.1.recv().unwrap();
        write_pages(&writer, 1, i64::from(CHECKPOINT_FRAMES * LOG_BOUND)).await;
        assert_eq!(
            writer.stats().checkpoints_at_bound,
            0,
            "{:?}",
            writer.stats()
        );
        end_it.0.send(()).unwrap();
        running.join().unwrap();
    }

    /// Once the writers are closed, a checkpointer woken late (its thread
    /// at the lowest priority) closes its connection instead of opening
    /// the file again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_after_the_writers_close_leaves_no_connection_open() {
        let (writer, _dir) =
            writer_with("CREATE TABLE pages (n INTEGER PRIMARY KEY, page BLOB)", "").await;
        write_pages(&writer, 1, i64::from(CHECKPOINT_FRAMES)).await;
        checkpoint(&writer.file);
        assert!(writer.file.checkpointer.lock().unwrap().is_some());
        assert!(writer.stats().checkpoints >= 1, "{:?}", writer.stats());

        // The thread, woken by the write, may checkpoint until the close.
        writer.close().await;
        let checkpoints = writer.stats().checkpoints;
        assert!(writer.file.checkpointer.lock().unwrap().is_none());
        checkpoint(&writer.file);
        assert!(writer.file.checkpointer.lock().unwrap().is_none());
        assert_eq!(writer.stats().checkpoints, checkpoints);
    }
}
