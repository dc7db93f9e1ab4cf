//! The SQLite writers' own connection, driven directly: its statements run
//! on the calling thread. sqlx's SQLite driver runs each statement on a
//! thread of the connection's own and hands the answer back; on a busy
//! two-core machine a hand-off there and back costs more than the statement
//! itself, and a paying callback made four of them while every other writer
//! waited for its turn. This connection speaks sqlx's `Any` types
//! (arguments in, rows and row counts out), so that the store's SQL and
//! code run on it unchanged, through [`super::Conn`].
//!
//! Only the writers' turns run here: short statements inside the open
//! batch. What can wait on the disk or on another process (opening a batch,
//! committing it) is run by the caller on a blocking thread.

use std::collections::HashMap;
use std::ffi::{CStr, c_int};
use std::fmt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::Arc;

use libsqlite3_sys as ffi;
use sqlx::Either;
use sqlx::any::{AnyArguments, AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue};
use sqlx::error::{DatabaseError, ErrorKind};
use sqlx_core::any::{AnyColumn, AnyValueKind};
use sqlx_core::ext::ustr::UStr;

/// Texts whose prepared statements are kept; past this the cache starts
/// again (the writers' texts are a few dozen, so it never fills in use).
const CACHED_TEXTS: usize = 256;

/// One step of a text's answer: a statement's row count, or a row.
pub(super) type Step = Either<AnyQueryResult, AnyRow>;

pub(super) struct DirectSqlite {
    db: NonNull<ffi::sqlite3>,
    /// Each text's statements, prepared once.
    cache: HashMap<String, Vec<Prepared>>,
    /// The frames in the write-ahead log after this connection's last
    /// commit, when it keeps count (see [`DirectSqlite::count_wal_frames`]).
    wal_frames: Option<NonNull<c_int>>,
}

// SAFETY: SQLite is built thread-safe (SQLITE_THREADSAFE=1), and the
// connection is opened in multi-thread mode (`SQLITE_OPEN_NOMUTEX`): it may
// move between threads as long as two never use it at once, which `&mut`
// (and the type not being `Sync`) guarantees.
unsafe impl Send for DirectSqlite {}

impl fmt::Debug for DirectSqlite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectSqlite")
            .field("cached_texts", &self.cache.len())
            .finish()
    }
}

/// One prepared statement of a text, with its columns' names.
struct Prepared {
    stmt: NonNull<ffi::sqlite3_stmt>,
    names: Arc<sqlx_core::HashMap<UStr, usize>>,
    columns: Vec<AnyColumn>,
    /// For each placeholder (1-based, in order), the argument it takes:
    /// `$N` and `?N` take the Nth, a bare `?` the next after the last.
    params: Vec<Param>,
}

#[derive(Clone, Copy)]
enum Param {
    Numbered(usize),
    Next,
}

impl DirectSqlite {
    /// Opens the database file at `path` (creating it if missing) with the
    /// same settings as every other connection of the store.
    pub(super) fn open(path: &Path, settings: &str) -> Result<DirectSqlite, sqlx::Error> {
        let name = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| sqlx::Error::Configuration("the database path holds a NUL".into()))?;
        let mut db = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: `name` is a valid C string; `db` receives the handle, which
        // SQLite allocates even when opening fails (and must then be closed).
        let status = unsafe { ffi::sqlite3_open_v2(name.as_ptr(), &mut db, flags, ptr::null()) };
        let Some(db) = NonNull::new(db) else {
            return Err(sqlx::Error::Protocol(
                "SQLite could not allocate a connection".into(),
            ));
        };
        let mut conn = DirectSqlite {
            db,
            cache: HashMap::new(),
            wal_frames: None,
        };
        if status != ffi::SQLITE_OK {
            return Err(conn.error(status));
        }
        // SAFETY: `db` is open.
        unsafe { ffi::sqlite3_extended_result_codes(db.as_ptr(), 1) };
        conn.run(settings, None)?;
        Ok(conn)
    }

    /// Keeps count of the frames in the write-ahead log after each commit
    /// instead of checkpointing it: the log is then left to be
    /// checkpointed by another connection (the commit that crosses SQLite's
    /// threshold would otherwise copy the log into the database, and wait
    /// for the disk, before it returns).
    pub(super) fn count_wal_frames(&mut self) {
        if self.wal_frames.is_some() {
            return;
        }
        let at = NonNull::from(Box::leak(Box::new(0)));
        self.wal_frames = Some(at);
        // SAFETY: the hook writes through `at`, which is freed only after
        // the connection is closed (see `Drop`); the hook is called only by
        // this connection's commits, which `&mut self` keeps to one thread.
        unsafe {
            ffi::sqlite3_wal_hook(
                self.db.as_ptr(),
                Some(frames_after_commit),
                at.as_ptr().cast(),
            )
        };
    }

    /// The frames in the write-ahead log after this connection's last
    /// commit, if it counts them.
    pub(super) fn wal_frames(&self) -> Option<c_int> {
        // SAFETY: the count lives as long as the connection; the hook that
        // writes it runs only inside this connection's calls.
        self.wal_frames.map(|at| unsafe { *at.as_ptr() })
    }

    /// The pages this connection has written to the write-ahead log since
    /// it was last asked (SQLite's `SQLITE_DBSTATUS_CACHE_WRITE`, which
    /// this resets).
    pub(super) fn take_pages_written(&mut self) -> u64 {
        let (mut current, mut highest) = (0, 0);
        // SAFETY: `db` is open; SQLite writes the two counts.
        let status = unsafe {
            ffi::sqlite3_db_status(
                self.db.as_ptr(),
                ffi::SQLITE_DBSTATUS_CACHE_WRITE,
                &mut current,
                &mut highest,
                1,
            )
        };
        if status == ffi::SQLITE_OK {
            u64::try_from(current).unwrap_or(0)
        } else {
            0
        }
    }

    /// Runs every statement of `sql`, binding `arguments` to their
    /// placeholders, and returns each one's rows and then its row count, as
    /// sqlx's own SQLite driver does. Each statement is prepared once it
    /// is its turn to run (it may use a table the one before it made), and
    /// kept for the next time the same text runs.
    pub(super) fn run(
        &mut self,
        sql: &str,
        arguments: Option<AnyArguments>,
    ) -> Result<Vec<Step>, sqlx::Error> {
        if sql.contains('\0') {
            // SQLite would stop reading there, and the rest run apart.
            return Err(sqlx::Error::Protocol("the SQL text holds a NUL".into()));
        }
        let values = arguments.map(|a| a.values.0).unwrap_or_default();
        let mut steps = Vec::new();
        let mut next = 0;
        if let Some(statements) = self.cache.remove(sql) {
            let mut outcome = Ok(());
            for statement in &statements {
                outcome = self.step_through(statement, &values, &mut next, &mut steps);
                if outcome.is_err() {
                    break;
                }
            }
            self.cache.insert(sql.to_owned(), statements);
            return outcome.map(|()| steps);
        }
        let mut statements = Vec::new();
        let mut at = 0;
        while at < sql.len() {
            let (statement, used) = match self.prepare(&sql.as_bytes()[at..]) {
                Ok(prepared) => prepared,
                Err(error) => {
                    drop(statements);
                    return Err(error);
                }
            };
            at += used;
            // Nothing but blanks or a comment: no statement.
            let Some(statement) = statement else { continue };
            let outcome = self.step_through(&statement, &values, &mut next, &mut steps);
            statements.push(statement);
            if let Err(error) = outcome {
                drop(statements);
                return Err(error);
            }
        }
        if self.cache.len() >= CACHED_TEXTS {
            self.cache.clear();
        }
        self.cache.insert(sql.to_owned(), statements);
        Ok(steps)
    }

    /// Prepares the first statement of `sql`; returns it (none if there is
    /// only a blank or comment) and how many bytes of `sql` it took.
    fn prepare(&mut self, sql: &[u8]) -> Result<(Option<Prepared>, usize), sqlx::Error> {
        let length = c_int::try_from(sql.len())
            .map_err(|_| sqlx::Error::Protocol("the SQL text is too long".into()))?;
        let mut stmt = ptr::null_mut();
        let mut tail = ptr::null();
        // SAFETY: `sql` is valid for `length` bytes; SQLite reads no further
        // and points `tail` inside it, or at its end.
        let status = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                length,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                &mut tail,
            )
        };
        if status != ffi::SQLITE_OK {
            return Err(self.error(status));
        }
        // SAFETY: `tail` points into `sql`, or at its end.
        let used = unsafe { tail.cast::<u8>().offset_from(sql.as_ptr()) };
        let used = usize::try_from(used).unwrap_or(sql.len()).max(1);
        Ok((NonNull::new(stmt).map(Prepared::new), used))
    }

    /// Binds, steps and resets one statement.
    fn step_through(
        &mut self,
        statement: &Prepared,
        values: &[AnyValueKind],
        next: &mut usize,
        steps: &mut Vec<Step>,
    ) -> Result<(), sqlx::Error> {
        let stmt = statement.stmt.as_ptr();
        // SAFETY: `stmt` is a live statement of this connection.
        unsafe {
            ffi::sqlite3_reset(stmt);
            ffi::sqlite3_clear_bindings(stmt);
        }
        for (i, param) in statement.params.iter().enumerate() {
            let n = match param {
                Param::Numbered(n) => *n,
                Param::Next => {
                    *next += 1;
                    *next
                }
            };
            // SQLite takes an unbound placeholder as NULL, as sqlx's driver
            // lets it.
            let Some(value) = n.checked_sub(1).and_then(|n| values.get(n)) else {
                break;
            };
            let index = c_int::try_from(i + 1).unwrap_or(c_int::MAX);
            let status = bind(stmt, index, value)?;
            if status != ffi::SQLITE_OK {
                return Err(self.error(status));
            }
        }
        loop {
            // SAFETY: as above.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => match statement.row() {
                    Ok(row) => steps.push(Either::Right(row)),
                    Err(error) => {
                        // SAFETY: as above; a reset statement holds no
                        // snapshot of the database.
                        unsafe { ffi::sqlite3_reset(stmt) };
                        return Err(error);
                    }
                },
                ffi::SQLITE_DONE => {
                    // SAFETY: the connection is open.
                    let (changes, last) = unsafe {
                        (
                            ffi::sqlite3_changes64(self.db.as_ptr()),
                            ffi::sqlite3_last_insert_rowid(self.db.as_ptr()),
                        )
                    };
                    // SAFETY: as above; a reset statement holds no lock.
                    unsafe { ffi::sqlite3_reset(stmt) };
                    steps.push(Either::Left(AnyQueryResult {
                        rows_affected: changes.unsigned_abs(),
                        last_insert_id: Some(last),
                    }));
                    return Ok(());
                }
                status => {
                    let error = self.error(status);
                    // SAFETY: as above.
                    unsafe { ffi::sqlite3_reset(stmt) };
                    return Err(error);
                }
            }
        }
    }

    /// The error SQLite reports for `status`, with its message.
    fn error(&self, status: c_int) -> sqlx::Error {
        // SAFETY: the connection is allocated; SQLite's message is a C
        // string that lives until the next call, and is copied at once.
        let (code, message) = unsafe {
            let code = ffi::sqlite3_extended_errcode(self.db.as_ptr());
            let message = ffi::sqlite3_errmsg(self.db.as_ptr());
            let message = if message.is_null() {
                String::new()
            } else {
                CStr::from_ptr(message).to_string_lossy().into_owned()
            };
            (if code == ffi::SQLITE_OK { status } else { code }, message)
        };
        sqlx::Error::Database(Box::new(SqliteFailure { code, message }))
    }
}

/// SQLite's write-ahead log hook: keeps the count of frames in the log.
unsafe extern "C" fn frames_after_commit(
    at: *mut std::ffi::c_void,
    _db: *mut ffi::sqlite3,
    _name: *const std::ffi::c_char,
    frames: c_int,
) -> c_int {
    // SAFETY: `at` is the connection's boxed count (see `count_wal_frames`).
    unsafe { *at.cast::<c_int>() = frames };
    ffi::SQLITE_OK
}

impl Drop for DirectSqlite {
    fn drop(&mut self) {
        // Every statement is finalized first, or the connection would not
        // close.
        self.cache.clear();
        // SAFETY: no statement is left; an open transaction is rolled back
        // as the connection closes.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
        if let Some(at) = self.wal_frames.take() {
            // SAFETY: leaked in `count_wal_frames`; the connection that
            // wrote through it is closed.
            drop(unsafe { Box::from_raw(at.as_ptr()) });
        }
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: the statement is live and used no more.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

impl Prepared {
    fn new(stmt: NonNull<ffi::sqlite3_stmt>) -> Prepared {
        let raw = stmt.as_ptr();
        // SAFETY: `raw` is a live statement; the names SQLite returns are C
        // strings that live as long as it, and are copied at once.
        let (names, params) = unsafe {
            let count = ffi::sqlite3_column_count(raw);
            let names: Vec<String> = (0..count)
                .map(|i| text_of(ffi::sqlite3_column_name(raw, i)))
                .collect();
            let params = (1..=ffi::sqlite3_bind_parameter_count(raw))
                .map(|i| {
                    let name = text_of(ffi::sqlite3_bind_parameter_name(raw, i));
                    name.get(1..)
                        .and_then(|n| n.parse().ok())
                        .map_or(Param::Next, Param::Numbered)
                })
                .collect();
            (names, params)
        };
        let columns = names
            .iter()
            .enumerate()
            .map(|(ordinal, name)| AnyColumn {
                ordinal,
                name: UStr::new(name),
                type_info: AnyTypeInfo {
                    kind: AnyTypeInfoKind::Null,
                },
            })
            .collect();
        let mut by_name = sqlx_core::HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            by_name.entry(UStr::new(name)).or_insert(i);
        }
        Prepared {
            stmt,
            names: Arc::new(by_name),
            columns,
            params,
        }
    }

    /// The row the statement stands on, its values typed as SQLite stored
    /// them (as sqlx's driver maps them for `Any`).
    fn row(&self) -> Result<AnyRow, sqlx::Error> {
        let stmt = self.stmt.as_ptr();
        let mut values = Vec::with_capacity(self.columns.len());
        for i in 0..self.columns.len() {
            let i = c_int::try_from(i).unwrap_or(c_int::MAX);
            // SAFETY: the statement stands on a row with these columns; a
            // text or blob pointer lives until the next step, and is copied
            // at once.
            let kind = unsafe {
                match ffi::sqlite3_column_type(stmt, i) {
                    ffi::SQLITE_INTEGER => AnyValueKind::BigInt(ffi::sqlite3_column_int64(stmt, i)),
                    ffi::SQLITE_FLOAT => AnyValueKind::Double(ffi::sqlite3_column_double(stmt, i)),
                    ffi::SQLITE_TEXT => {
                        let bytes = column_bytes(stmt, i, ffi::sqlite3_column_text(stmt, i));
                        let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
                            sqlx::Error::Decode(format!("column {i} is not UTF-8: {e}").into())
                        })?;
                        AnyValueKind::Text(Arc::new(text))
                    }
                    ffi::SQLITE_BLOB => {
                        let bytes = column_bytes(stmt, i, ffi::sqlite3_column_blob(stmt, i).cast());
                        AnyValueKind::Blob(Arc::new(bytes.to_vec()))
                    }
                    _ => AnyValueKind::Null(AnyTypeInfoKind::Null),
                }
            };
            values.push(AnyValue { kind });
        }
        Ok(AnyRow {
            column_names: self.names.clone(),
            columns: self.columns.clone(),
            values,
        })
    }
}

/// A column's bytes, as SQLite gives them.
///
/// # Safety
/// `data` is the column's text or blob pointer, fetched just before.
unsafe fn column_bytes<'a>(stmt: *mut ffi::sqlite3_stmt, i: c_int, data: *const u8) -> &'a [u8] {
    // SAFETY: the caller's; `sqlite3_column_bytes` is called after the
    // pointer was fetched, as SQLite asks.
    unsafe {
        let length = usize::try_from(ffi::sqlite3_column_bytes(stmt, i)).unwrap_or(0);
        if data.is_null() || length == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(data, length)
        }
    }
}

/// # Safety
/// `text` is null or a C string.
unsafe fn text_of(text: *const std::ffi::c_char) -> String {
    if text.is_null() {
        String::new()
    } else {
        // SAFETY: the caller's.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Binds `value` to placeholder `index`; SQLite copies texts and blobs.
fn bind(
    stmt: *mut ffi::sqlite3_stmt,
    index: c_int,
    value: &AnyValueKind,
) -> Result<c_int, sqlx::Error> {
    let too_long = || sqlx::Error::Protocol("a bound value is too long".into());
    // SAFETY: `stmt` is live; each pointer is valid for the length given,
    // and SQLite copies what it points to (`SQLITE_TRANSIENT`).
    let status = unsafe {
        match value {
            AnyValueKind::Null(_) => ffi::sqlite3_bind_null(stmt, index),
            AnyValueKind::Bool(b) => ffi::sqlite3_bind_int64(stmt, index, i64::from(*b)),
            AnyValueKind::SmallInt(i) => ffi::sqlite3_bind_int64(stmt, index, i64::from(*i)),
            AnyValueKind::Integer(i) => ffi::sqlite3_bind_int64(stmt, index, i64::from(*i)),
            AnyValueKind::BigInt(i) => ffi::sqlite3_bind_int64(stmt, index, *i),
            AnyValueKind::Real(r) => ffi::sqlite3_bind_double(stmt, index, f64::from(*r)),
            AnyValueKind::Double(d) => ffi::sqlite3_bind_double(stmt, index, *d),
            AnyValueKind::Text(t) => bind_text(stmt, index, t.as_bytes()).ok_or_else(too_long)?,
            AnyValueKind::TextSlice(t) => {
                bind_text(stmt, index, t.as_bytes()).ok_or_else(too_long)?
            }
            AnyValueKind::Blob(b) => {
                let length = c_int::try_from(b.len()).map_err(|_| too_long())?;
                ffi::sqlite3_bind_blob(
                    stmt,
                    index,
                    b.as_ptr().cast(),
                    length,
                    ffi::SQLITE_TRANSIENT(),
                )
            }
            other => {
                return Err(sqlx::Error::Encode(
                    format!("SQLite cannot bind {other:?}").into(),
                ));
            }
        }
    };
    Ok(status)
}

/// # Safety
/// `stmt` is live.
unsafe fn bind_text(stmt: *mut ffi::sqlite3_stmt, index: c_int, text: &[u8]) -> Option<c_int> {
    let length = c_int::try_from(text.len()).ok()?;
    // SAFETY: the caller's; `text` is valid for `length` bytes and copied.
    Some(unsafe {
        ffi::sqlite3_bind_text(
            stmt,
            index,
            text.as_ptr().cast(),
            length,
            ffi::SQLITE_TRANSIENT(),
        )
    })
}

/// An error SQLite reported, with its extended result code; a constraint
/// it names is told apart as sqlx's own driver does.
#[derive(Debug)]
struct SqliteFailure {
    code: c_int,
    message: String,
}

impl fmt::Display for SqliteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for SqliteFailure {}

impl DatabaseError for SqliteFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::TryStreamExt;
    use sqlx::any::AnyArguments;
    use sqlx::{Arguments, Connection, Executor, Row};

    /// What a run answered, in a form two drivers can be compared in.
    fn seen(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|step| match step {
                Either::Left(done) => format!("changed {}", done.rows_affected()),
                Either::Right(row) => {
                    let columns = (0..row.len())
                        .map(|i| {
                            let name = sqlx::Column::name(&row.columns()[i]).to_owned();
                            let index = row.column_names.get(name.as_str()).copied();
                            // A NULL's type is never read (a NULL decodes
                            // to `None` whatever it is): sqlx gives the
                            // column's declared one, the direct connection
                            // none.
                            let value = match &row.values[i].kind {
                                AnyValueKind::Null(_) => "NULL".to_owned(),
                                value => format!("{value:?}"),
                            };
                            format!("{name}#{index:?}={value}")
                        })
                        .collect::<Vec<_>>();
                    format!("row {}", columns.join(", "))
                }
            })
            .collect()
    }

    fn arguments(values: &[AnyValueKind]) -> AnyArguments {
        let mut arguments = AnyArguments::default();
        for value in values {
            match value {
                AnyValueKind::Null(_) => arguments.add(None::<String>),
                AnyValueKind::BigInt(i) => arguments.add(*i),
                AnyValueKind::Double(d) => arguments.add(*d),
                AnyValueKind::Text(t) => arguments.add(t.as_str().to_owned()),
                AnyValueKind::Blob(b) => arguments.add(b.to_vec()),
                other => panic!("no case for {other:?}"),
            }
            .unwrap();
        }
        arguments
    }

    /// Every text runs on sqlx's own SQLite driver and on the direct
    /// connection, each on a database of its own: both answer alike,
    /// rows, values, row counts and failures.
    #[tokio::test]
    async fn answers_as_sqlx_own_sqlite_driver_does() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sqlx.db?mode=rwc", dir.path().display());
        let mut sqlx_conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut direct = DirectSqlite::open(&dir.path().join("direct.db"), "").unwrap();
        let text = |s: &str| AnyValueKind::Text(Arc::new(s.to_owned()));
        let cases: Vec<(&str, Vec<AnyValueKind>)> = vec![
            (
                "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, x REAL, b BLOB, memo TEXT)",
                vec![],
            ),
            (
                "INSERT INTO t (id, n, x, b, memo) VALUES ($1, $2, $3, $4, $5)",
                vec![
                    text("a"),
                    AnyValueKind::BigInt(-7),
                    AnyValueKind::Double(1.5),
                    AnyValueKind::Blob(Arc::new(vec![0, 1, 255])),
                    AnyValueKind::Null(AnyTypeInfoKind::Text),
                ],
            ),
            // Numbers out of order and used twice.
            (
                "INSERT INTO t (memo, id, n) VALUES ($2, $1, $3), ($2 || 'x', $1 || '2', $3 + 1)",
                vec![
                    text("b"),
                    text("Hà Nội"),
                    AnyValueKind::BigInt(i64::MAX - 1),
                ],
            ),
            // Bare placeholders take the arguments in turn.
            (
                "UPDATE t SET n = ? WHERE id = ?",
                vec![AnyValueKind::BigInt(3), text("a")],
            ),
            // Several statements: each one's rows, then its count; the
            // numbers count through the whole text.
            (
                "UPDATE t SET n = n + $1 WHERE id <> $2; \
                 SELECT id, n, x, b, memo, n * 2 AS twice FROM t ORDER BY id; \
                 INSERT INTO t (id) VALUES ($3) ON CONFLICT (id) DO NOTHING; -- the end\n  ",
                vec![AnyValueKind::BigInt(1), text("zz"), text("a")],
            ),
            // A placeholder with no argument is NULL.
            ("SELECT $1 AS one, $2 AS two", vec![AnyValueKind::BigInt(1)]),
            (
                "SELECT count(*) AS c, max(n) FROM t WHERE id = $1",
                vec![text("none")],
            ),
            (
                "INSERT INTO t (id, n) VALUES ($1, 1) RETURNING id, n",
                vec![text("c")],
            ),
        ];
        // Each text twice, the second time from the cache, with the same
        // answers (the inserts' second run aside, which both refuse).
        for round in 0..2 {
            for (sql, values) in &cases {
                let expected = sqlx_conn
                    .fetch_many(sqlx::query_with(
                        sqlx::AssertSqlSafe(*sql),
                        arguments(values),
                    ))
                    .try_collect::<Vec<_>>()
                    .await;
                let got = direct.run(sql, Some(arguments(values)));
                match (expected, got) {
                    (Ok(expected), Ok(got)) => {
                        assert_eq!(seen(&got), seen(&expected), "{sql} (round {round})")
                    }
                    (Err(expected), Err(got)) => {
                        let (expected, got) = (
                            expected.as_database_error().unwrap(),
                            got.as_database_error().unwrap(),
                        );
                        assert_eq!(got.code(), expected.code(), "{sql}");
                        assert_eq!(got.kind(), expected.kind(), "{sql}");
                        assert_eq!(got.message(), expected.message(), "{sql}");
                    }
                    (expected, got) => panic!(
                        "{sql}: sqlx {:?}, direct {:?}",
                        expected.map(|steps| seen(&steps)),
                        got.map(|steps| seen(&steps))
                    ),
                }
            }
        }
    }

    #[test]
    fn a_failed_statement_leaves_the_connection_usable_and_tells_a_unique_violation() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = DirectSqlite::open(&dir.path().join("t.db"), "").unwrap();
        conn.run("CREATE TABLE t (id TEXT PRIMARY KEY)", None)
            .unwrap();
        conn.run("BEGIN IMMEDIATE; INSERT INTO t VALUES ('a')", None)
            .unwrap();
        let Err(err) = conn.run(
            "INSERT INTO t VALUES ('b'); INSERT INTO t VALUES ('a')",
            None,
        ) else {
            panic!("a duplicate was inserted");
        };
        assert_eq!(
            err.as_database_error().map(|e| e.kind()),
            Some(ErrorKind::UniqueViolation)
        );
        // The failing text's first statement ran; the transaction goes on.
        let steps = conn.run("SELECT id FROM t ORDER BY id", None).unwrap();
        assert_eq!(steps.len(), 3);
        conn.run("COMMIT", None).unwrap();
        let Err(err) = conn.run("SELEC 1", None) else {
            panic!("a syntax error ran");
        };
        assert!(err.to_string().contains("syntax error"), "{err}");
        assert!(conn.run("SELECT 1", None).is_ok());
        // A text SQLite would read only up to a NUL is refused whole.
        assert!(conn.run("SELECT 1;\0DELETE FROM t", None).is_err());
        assert_eq!(conn.run("SELECT id FROM t", None).unwrap().len(), 3);
    }
}
