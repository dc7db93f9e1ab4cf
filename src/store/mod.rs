//! The one storage interface. [`Store`] speaks to SQLite (the embedded
//! default) or PostgreSQL (production) through one set of methods; each
//! method owns its transaction. SQL text is shared wherever it is portable;
//! what must differ per backend lives in [`sqlite`] and [`postgres`].

/// The name people read for the actor a `$column` holds (`officer:<id>`
/// or `key:<id>`): the officer's name and email, or the key's name; NULL
/// for lephi's own tasks.
macro_rules! name_of {
    ($column:literal) => {
        concat!(
            "COALESCE((SELECT o.name || ' <' || o.email || '>' FROM officers o WHERE ",
            $column,
            " LIKE 'officer:%' AND o.id = substr(",
            $column,
            ", 9)), (SELECT k.name FROM api_keys k WHERE ",
            $column,
            " LIKE 'key:%' AND k.id = substr(",
            $column,
            ", 5)))"
        )
    };
}

mod agencies;
mod api_keys;
mod attempt_checks;
mod attempts;
mod audit;
mod batch;
mod bulk;
mod checkout;
mod conn;
mod console;
mod direct;
mod dossiers;
mod endpoints;
mod events;
mod exceptions;
mod group_commit;
mod held_money;
mod idempotency;
mod invoices;
mod migrate;
mod officers;
mod operations;
mod payments;
pub mod postgres;
mod query;
mod receipts;
mod recording;
mod recoveries;
mod refunds;
mod register_jobs;
mod reports;
mod retention;
mod settlement_lookups;
mod settlements;
pub mod sqlite;
mod statement_jobs;
mod unsettled;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Transaction};

use conn::Conn;

pub use agencies::AgencyImportSummary;
pub use api_keys::{ApiKeyRecord, NewApiKey, Principal};
pub use attempt_checks::AttemptToCheck;
pub use attempts::{AttemptFilter, ListedAttempt, OpenedAttempt};
pub use audit::AuditFilter;
pub use checkout::CheckoutInvoice;
pub use console::{ConsoleSession, FoundPayment, InvoiceHit, PaymentSearch, PaymentTotals};
pub use dossiers::{DossierFilter, DossierImportSummary, ReconciledDossier};
pub use endpoints::Webhook;
pub use events::{DueEvent, Event, EventFilter, EventStatus, EventType};
pub use exceptions::Decision;
pub use group_commit::BatchStats;
pub use idempotency::{Created, IdempotentRequest};
pub use invoices::InvoiceFilter;
pub use migrate::AppliedMigration;
pub use officers::{FAILURES_BEFORE_LOCK, NewOfficer, OfficerRecord, SignInCandidate, lock_for};
pub use operations::{ImportFigures, OperationsFigures, PoolUsage};
pub use payments::{ExceptionFilter, IncomingPayment, PaymentFilter, PaymentFor, Recorded};
pub use query::Listed;
pub use refunds::{ClaimedRefund, NewRefund, RefundFilter, RefundLeft, RefundOutcome};
pub use register_jobs::{ClaimedRegister, QueuedRegister, RegisterImport, RegisterProgress};
pub use retention::Erased;
pub use settlements::{SettledLine, SettlementLineFilter, SettlementSummary};
pub use statement_jobs::{
    ClaimedImport, ImportProgress, Queued, QueuedStatement, Refusal, StatementImport,
};

use crate::config::DatabaseSettings;
use crate::domain::invoice::IllegalTransition;
use crate::domain::payment::Channel;
use crate::domain::receipt::ReceiptPolicy;
use crate::domain::{InvoiceStatus, ValidationError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("agency {0} was not found")]
    AgencyNotFound(String),
    #[error("agency {0} already exists")]
    AgencyExists(String),
    #[error("dossier already has an open invoice {invoice_id}")]
    DossierHasOpenInvoice { invoice_id: String },
    #[error("the idempotency key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("the invoice is {}: only an open invoice accepts payment", .0.as_str())]
    InvoiceNotOpen(InvoiceStatus),
    #[error("{message}")]
    ChannelUnavailable { channel: Channel, message: String },
    #[error("the exception is already resolved")]
    ExceptionResolved,
    #[error(transparent)]
    NotRefundable(#[from] crate::domain::refund::NotRefundable),
    #[error(transparent)]
    RefundMove(#[from] crate::domain::refund::IllegalRefundMove),
    #[error("a refund is approved or rejected by another officer than the one who asked for it")]
    SameOfficer,
    /// The officer who imported a statement resolves what its lines
    /// recovered.
    #[error(
        "a payment recovered from a statement is confirmed by another officer than the one who imported it"
    )]
    ImporterResolves,
    /// The account number receives for an agency outside the caller's scope.
    #[error("the account already receives for an agency outside this key's scope")]
    BankAccountTaken,
    #[error("a {0} refund goes back through the provider, not by hand")]
    RefundThroughProvider(Channel),
    #[error("the receipt number was recorded for another payment, {payment_id}")]
    ReceiptNumberTaken { payment_id: String },
    #[error("agency {agency_code} has given every receipt number of {year}")]
    ReceiptSeriesFull { agency_code: String, year: i32 },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("line {line}: {message}")]
    ImportRefused { line: usize, message: String },
    #[error("the statement was imported by a key of a wider scope than this one")]
    ImportedInWiderScope,
    #[error("this key already has {limit} imports queued or running")]
    TooManyImports { limit: u32 },
    #[error("the import job is no longer this worker's")]
    ClaimLost,
    #[error("the rows this write depends on changed under every try")]
    Contended,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// The database refused a write for want of room: SQLite's
    /// `SQLITE_FULL` (a full disk, or the file at `database.max_size_mib`)
    /// or PostgreSQL's `disk_full`. Nothing of the write was kept.
    pub fn is_storage_full(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(err)) = self else {
            return false;
        };
        let code = err.code();
        let code = code.as_deref().unwrap_or_default();
        // SQLite reports the primary code (13) or an extended one with the
        // same low byte; PostgreSQL the SQLSTATE.
        code == "53100" || code.parse::<i32>().is_ok_and(|c| c & 0xff == 13)
    }

    fn corrupt(what: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt(what.to_string())
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The forms receipts are issued on, when a payment makes an invoice paid.
    receipts: Arc<ReceiptPolicy>,
    /// The agency whose officers see money for no known invoice, if set
    /// (see `payments::unattributed_agency`).
    unattributed: Option<Arc<str>>,
    /// On SQLite: its writers, taking turns and committing together.
    writer: Option<group_commit::Writer>,
    /// On SQLite: the database file, whose disk readiness watches.
    sqlite_file: Option<Arc<std::path::Path>>,
    /// The free space under which the store is no longer ready.
    min_free_bytes: u64,
}

/// Whether the store can take writes, for the readiness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The disk or the database's size limit leaves no room to write.
    StorageFull {
        room_bytes: u64,
    },
}

/// What a write needs at the least to be sure of room: a payment with its
/// receipt, event and audit rows takes a few pages.
const WRITE_ROOM: u64 = 64 * sqlite::PAGE_SIZE;

/// The tables a kind of import writes, for [`Store::refresh_statistics`].
#[derive(Debug, Clone, Copy)]
pub enum ImportTables {
    Statement,
    Register,
}

/// A transaction that will write: on PostgreSQL a [`sqlx::Transaction`];
/// on SQLite a turn in the group-committed batch, whose `commit` (and
/// `rollback`) return once the batch is committed.
pub(crate) struct WriteTx(Write);

enum Write {
    Postgres(Transaction<'static, sqlx::Any>),
    Sqlite(group_commit::Turn),
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Write::Postgres(tx) => tx.commit().await,
            Write::Sqlite(turn) => turn.finish(true).await,
        }
    }

    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.0 {
            Write::Postgres(tx) => tx.rollback().await,
            Write::Sqlite(turn) => turn.finish(false).await,
        }
    }

    /// Runs `update`, a write that only the worker holding a job's claim
    /// may make (it names the worker and matches no row otherwise), and
    /// commits it with what the transaction wrote before. When the job is
    /// no longer this worker's, nothing is written: [`StoreError::ClaimLost`].
    async fn commit_claimed(
        mut self,
        update: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<(), StoreError> {
        let done = update.execute(&mut self.conn()).await?;
        if done.rows_affected() == 0 {
            self.rollback().await?;
            return Err(StoreError::ClaimLost);
        }
        self.commit().await?;
        Ok(())
    }

    /// The connection the transaction's statements run on.
    fn conn(&mut self) -> Conn<'_> {
        match &mut self.0 {
            Write::Postgres(tx) => Conn::Any(tx),
            Write::Sqlite(turn) => turn.conn(),
        }
    }
}

impl Store {
    /// Connects to the configured database; a SQLite file and its folder are
    /// created on first start. Does not migrate: see [`Store::migrate`].
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose_secret();
        let backend = Backend::of_url(url);
        let url = match backend {
            Backend::Sqlite => sqlite::prepare_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pragmas: Arc<str> =
            sqlite::settings(settings.busy_timeout_ms, settings.max_size_mib).into();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(Duration::from_secs(settings.acquire_timeout_secs))
            .after_connect({
                let pragmas = pragmas.clone();
                move |conn, _| {
                    let pragmas = pragmas.clone();
                    Box::pin(async move {
                        match backend {
                            Backend::Sqlite => sqlite::configure_connection(conn, &pragmas).await,
                            Backend::Postgres => Ok(()),
                        }
                    })
                }
            })
            .connect_with(options)
            .await?;
        let file = match backend {
            Backend::Sqlite => Some(sqlite::file_of(&url)?),
            Backend::Postgres => None,
        };
        let writer = file
            .clone()
            .map(|file| group_commit::Writer::new(pool.clone(), file, pragmas.to_string()));
        Ok(Store {
            pool,
            backend,
            receipts: Arc::new(ReceiptPolicy::default()),
            unattributed: None,
            writer,
            sqlite_file: file.map(Arc::from),
            min_free_bytes: settings.min_free_mib.saturating_mul(1024 * 1024),
        })
    }

    /// Issues receipts on `policy`'s forms from now on (the default forms
    /// until this is called).
    pub fn with_receipts(self, policy: ReceiptPolicy) -> Store {
        Store {
            receipts: Arc::new(policy),
            ..self
        }
    }

    /// Writes a consistent copy of the whole database to the new file
    /// `path`, while others read and write: SQLite's `VACUUM INTO`, one
    /// read transaction that writers (in WAL mode) never wait for. A
    /// PostgreSQL database is backed up with `pg_dump`.
    pub async fn back_up(&self, path: &str) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::query("VACUUM INTO $1")
                    .bind(path)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            Backend::Postgres => Err(StoreError::Invalid(ValidationError::new(
                "database",
                "a PostgreSQL database is backed up with pg_dump: \
                 pg_dump --format=custom --file=lephi.dump \"$DATABASE_URL\", \
                 and restored with pg_restore --clean --if-exists --dbname=\"$DATABASE_URL\" lephi.dump",
            ))),
        }
    }

    /// Shows money that names no known invoice to the officers of agency
    /// `code` (by default: the only top-level agency, if there is one).
    pub fn with_unattributed_agency(self, code: Option<&str>) -> Store {
        Store {
            unattributed: code.map(Arc::from),
            ..self
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// On PostgreSQL, brings the planner's statistics of the tables an
    /// import writes up to date: rows it has just written are in none
    /// until autovacuum comes, and a table taken for nearly empty is read
    /// by the first column of its index, each batch reading every row the
    /// batches before it wrote. Reads a sample, blocks no writer; nothing
    /// on SQLite, whose plans keep no statistics.
    pub async fn refresh_statistics(&self, tables: ImportTables) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            let sql = match tables {
                ImportTables::Statement => "ANALYZE settlement_lines, payments, payment_exceptions",
                ImportTables::Register => "ANALYZE dossiers",
            };
            sqlx::raw_sql(sql).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<Vec<AppliedMigration>, StoreError> {
        migrate::run(self).await
    }

    /// On SQLite, what its writers' committed batches have done since the
    /// store opened; nothing on PostgreSQL.
    pub fn write_batches(&self) -> Option<BatchStats> {
        self.writer.as_ref().map(group_commit::Writer::stats)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Checks that the database answers and, on SQLite, that it has room
    /// to write: the disk's free space above `database.min_free_mib`, and
    /// the file below `database.max_size_mib`. (A PostgreSQL server's disk
    /// is its own to watch; a write it refuses for want of space answers
    /// 503 `storage_full` like SQLite's.)
    pub async fn readiness(&self) -> Result<Readiness, StoreError> {
        self.ping().await?;
        let Some(file) = &self.sqlite_file else {
            return Ok(Readiness::Ready);
        };
        let room = sqlite::room(&self.pool, file).await?;
        if let Some(disk) = room
            .disk
            .filter(|&free| free < self.min_free_bytes.max(WRITE_ROOM))
        {
            return Ok(Readiness::StorageFull { room_bytes: disk });
        }
        if room.under_cap < WRITE_ROOM {
            return Ok(Readiness::StorageFull {
                room_bytes: room.under_cap,
            });
        }
        Ok(Readiness::Ready)
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close().await;
        }
        self.pool.close().await;
    }

    /// `clause` (`FOR UPDATE ...`) on PostgreSQL; nothing on SQLite, where a
    /// writing transaction already holds the database's write lock.
    fn row_lock(&self, clause: &'static str) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => clause,
        }
    }

    /// Begins a transaction that will write. On SQLite it is a turn in
    /// the batch of group-committed writers (see [`group_commit`]), whose
    /// transaction takes the write lock up front (`BEGIN IMMEDIATE`), so
    /// that a transaction that reads before it writes cannot fail to
    /// upgrade its lock half way. Another process writing the same file is
    /// waited for by SQLite.
    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        Ok(WriteTx(match &self.writer {
            Some(writer) => Write::Sqlite(writer.begin().await?),
            None => Write::Postgres(self.pool.begin().await?),
        }))
    }

    /// Runs one writing statement on its own. On SQLite it takes its turn
    /// in the batch like any write of this process: straight on the pool it
    /// would poll for the lock the open batch holds, and under steady load
    /// give up with "database is locked".
    async fn write_one(
        &self,
        query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        if self.writer.is_none() {
            return Ok(query.execute(&self.pool).await?);
        }
        let mut tx = self.begin_write().await?;
        let done = query.execute(&mut tx.conn()).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Begins a large write (an import): on SQLite a transaction of its
    /// own rather than a savepoint in the batch, which would copy every
    /// page it changes to SQLite's statement journal.
    async fn begin_large_write(&self) -> Result<WriteTx, StoreError> {
        Ok(WriteTx(match &self.writer {
            Some(writer) => Write::Sqlite(writer.begin_alone().await?),
            None => Write::Postgres(self.pool.begin().await?),
        }))
    }
}

/// Reads a stored time column.
fn parse_time(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<crate::domain::Timestamp, StoreError> {
    use sqlx::Row;
    let text: String = row.try_get(column)?;
    crate::domain::Timestamp::parse_rfc3339(&text)
        .ok_or_else(|| StoreError::corrupt(format!("{column} = {text:?} is not a time")))
}

/// Reads an optional stored time column.
fn parse_optional_time(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<Option<crate::domain::Timestamp>, StoreError> {
    use sqlx::Row;
    let text: Option<String> = row.try_get(column)?;
    match text {
        Some(_) => parse_time(row, column).map(Some),
        None => Ok(None),
    }
}

/// Reads an optional JSON text column.
fn json_column(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    use sqlx::Row;
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(StoreError::corrupt))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated store on a SQLite file that waits `busy_timeout_ms` for
    /// the lock.
    async fn sqlite_store(busy_timeout_ms: u64) -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: format!("sqlite://{}/lephi.db", dir.path().display()).into(),
            busy_timeout_ms,
            ..DatabaseSettings::default()
        };
        let store = Store::connect(&settings).await.unwrap();
        store.migrate().await.unwrap();
        (store, dir)
    }

    /// Every write of the process takes its turn: a single-statement write
    /// that went straight to the pool would poll for the lock the open
    /// batch holds, and under steady load give up with "database is
    /// locked".
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_single_statement_write_waits_for_its_turn_rather_than_the_lock() {
        let (store, _dir) = sqlite_store(200).await;
        // A batch stays open (the turn comes round slowly under load).
        let batch = store.begin_write().await.unwrap();
        let writes = {
            let store = store.clone();
            tokio::spawn(async move {
                store.event_delivered("evt_x", 1).await?;
                store.event_failed("evt_x", 1, "503", None).await?;
                store
                    .check_attempt_again("att_x", 1, crate::domain::Timestamp::now())
                    .await?;
                store
                    .attempt_started("att_x", "https://pay.example/x")
                    .await?;
                store.close_console_session("token").await?;
                store
                    .forget_idle_console_sessions(crate::domain::Timestamp::now())
                    .await?;
                Ok::<(), StoreError>(())
            })
        };
        tokio::time::sleep(Duration::from_millis(600)).await;
        batch.commit().await.unwrap();
        writes.await.unwrap().unwrap();
    }
}
