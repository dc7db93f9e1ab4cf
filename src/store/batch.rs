//! Writes sent together. A transaction's last writes (a payment's attempt,
//! invoice, receipt, audit records and events; an invoice's audit record and
//! idempotent answer) need back only how many rows each changed. On
//! PostgreSQL they go as one statement, each a data-modifying `WITH` part,
//! so they cost one round trip rather than one each. On SQLite they go as
//! one text of several statements, which its driver runs in turn.
//!
//! The parts of one statement all see the database as it was before it,
//! so a batch must not hold two writes to the same row, nor a write that
//! depends on another's effect. Foreign keys are checked at the end of the
//! statement, so a part may refer to a row another part inserts.

use super::conn::Conn;
use sqlx::any::AnyArguments;

use super::{Backend, StoreError};

/// A value bound to a placeholder. A NULL keeps its type, which
/// PostgreSQL needs to bind it.
pub(super) enum Bound {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Bound {
    fn from(value: &str) -> Bound {
        Bound::Text(Some(value.to_owned()))
    }
}

impl From<String> for Bound {
    fn from(value: String) -> Bound {
        Bound::Text(Some(value))
    }
}

impl From<&String> for Bound {
    fn from(value: &String) -> Bound {
        Bound::Text(Some(value.clone()))
    }
}

impl From<Option<&str>> for Bound {
    fn from(value: Option<&str>) -> Bound {
        Bound::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for Bound {
    fn from(value: Option<String>) -> Bound {
        Bound::Text(value)
    }
}

impl From<i64> for Bound {
    fn from(value: i64) -> Bound {
        Bound::Int(Some(value))
    }
}

impl From<Option<i64>> for Bound {
    fn from(value: Option<i64>) -> Bound {
        Bound::Int(value)
    }
}

/// One writing statement with placeholders `$1`, `$2`, … (a number may
/// recur), bound in order.
pub(super) struct Statement {
    sql: String,
    values: Vec<Bound>,
}

impl Statement {
    pub fn new(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    pub fn bind(mut self, value: impl Into<Bound>) -> Statement {
        self.values.push(value.into());
        self
    }

    /// Runs the statement alone; returns the rows it changed.
    pub async fn execute(self, conn: &mut Conn<'_>) -> Result<u64, StoreError> {
        let done = query(self.sql, self.values).execute(conn).await?;
        Ok(done.rows_affected())
    }
}

fn query(sql: String, values: Vec<Bound>) -> sqlx::query::Query<'static, sqlx::Any, AnyArguments> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for value in values {
        query = match value {
            Bound::Text(text) => query.bind(text),
            Bound::Int(int) => query.bind(int),
        };
    }
    query
}

/// Writes to run together, in the order pushed.
#[derive(Default)]
pub(super) struct Batch {
    statements: Vec<Statement>,
}

/// Where a statement stands in its batch, to read its row count back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Part(usize);

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, statement: Statement) -> Part {
        self.statements.push(statement);
        Part(self.statements.len() - 1)
    }

    /// Adds statements, if there are any (a statement that may have
    /// nothing to write is an `Option`).
    pub fn extend(&mut self, statements: impl IntoIterator<Item = Statement>) {
        self.statements.extend(statements);
    }

    /// Runs the batch in the caller's transaction; returns the rows each
    /// statement changed.
    pub async fn execute(
        self,
        conn: &mut Conn<'_>,
        backend: Backend,
    ) -> Result<Changed, StoreError> {
        use futures_util::TryStreamExt;
        use sqlx::{Executor, Row};
        let expected = self.statements.len();
        if expected <= 1 {
            let mut rows = Vec::with_capacity(expected);
            for statement in self.statements {
                rows.push(statement.execute(conn).await?);
            }
            return Ok(Changed(rows));
        }
        let rows: Vec<u64> = match backend {
            Backend::Postgres => {
                let (sql, values) = combined(self.statements);
                let row = query(sql, values).fetch_one(conn).await?;
                (0..row.len())
                    .map(|i| row.try_get::<i64, _>(i).map(|n| n.unsigned_abs()))
                    .collect::<Result<_, _>>()?
            }
            Backend::Sqlite => {
                let (sql, values) = joined(self.statements);
                conn.fetch_many(query(sql, values))
                    .try_filter_map(|step| async move { Ok(step.left()) })
                    .map_ok(|done| done.rows_affected())
                    .try_collect()
                    .await?
            }
        };
        if rows.len() != expected {
            return Err(StoreError::corrupt(format!(
                "a batch of {expected} writes answered for {}",
                rows.len()
            )));
        }
        Ok(Changed(rows))
    }
}

/// The rows each statement of a batch changed.
pub(super) struct Changed(Vec<u64>);

impl Changed {
    pub fn rows(&self, part: Part) -> u64 {
        self.0.get(part.0).copied().unwrap_or(0)
    }
}

/// The statements as one: `WITH w0 AS (… RETURNING 1), w1 AS (…) SELECT
/// (SELECT count(*) FROM w0), …`, each part's placeholders numbered after
/// the parts before it.
fn combined(statements: Vec<Statement>) -> (String, Vec<Bound>) {
    let mut parts = Vec::with_capacity(statements.len());
    let mut counts = Vec::with_capacity(statements.len());
    let mut values = Vec::new();
    for (i, statement) in statements.into_iter().enumerate() {
        let sql = renumbered(&statement.sql, values.len());
        parts.push(format!("w{i} AS ({sql} RETURNING 1)"));
        counts.push(format!("(SELECT count(*) FROM w{i})"));
        values.extend(statement.values);
    }
    (
        format!("WITH {} SELECT {}", parts.join(", "), counts.join(", ")),
        values,
    )
}

/// The statements one after another in one text, for SQLite, whose
/// driver runs them in turn on the connection's thread (one hand-off to
/// it rather than one each) and reports each one's changes; numbered
/// placeholders index the values of the whole text.
fn joined(statements: Vec<Statement>) -> (String, Vec<Bound>) {
    let mut parts = Vec::with_capacity(statements.len());
    let mut values = Vec::new();
    for statement in statements {
        parts.push(renumbered(&statement.sql, values.len()));
        values.extend(statement.values);
    }
    (parts.join(";\n"), values)
}

/// `sql` with each placeholder `$n` written `$(n + offset)`; text in
/// single quotes is left as it is.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c != '$' || quoted {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&format!("${}", n + offset)),
            Err(_) => {
                out.push('$');
                out.push_str(&digits);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_after_the_parts_before() {
        assert_eq!(
            renumbered("UPDATE t SET a = $1, b = $12 WHERE c = '$1' AND d = $2", 3),
            "UPDATE t SET a = $4, b = $15 WHERE c = '$1' AND d = $5"
        );
        assert_eq!(renumbered("SELECT $", 3), "SELECT $");
    }

    #[test]
    fn statements_combine_into_one_with_a_count_each() {
        let (sql, values) = combined(vec![
            Statement::new("UPDATE a SET x = $1 WHERE id = $2")
                .bind(1_i64)
                .bind("a1"),
            Statement::new("INSERT INTO b (y) VALUES ($1)").bind(None::<String>),
        ]);
        assert_eq!(
            sql,
            "WITH w0 AS (UPDATE a SET x = $1 WHERE id = $2 RETURNING 1), \
             w1 AS (INSERT INTO b (y) VALUES ($3) RETURNING 1) \
             SELECT (SELECT count(*) FROM w0), (SELECT count(*) FROM w1)"
        );
        assert_eq!(values.len(), 3);
    }

    /// A batch on a real database: each statement's row count comes back
    /// in order, and a statement that fails fails the batch, whose
    /// transaction then writes nothing.
    async fn batch_counts_and_failure(conn: &mut Conn<'_>, backend: Backend) {
        use sqlx::Executor;
        sqlx::raw_sql(
            "CREATE TABLE notes (id TEXT PRIMARY KEY, n BIGINT NOT NULL, memo TEXT);
             INSERT INTO notes (id, n) VALUES ('a', 1), ('b', 1), ('c', 2)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        conn.execute("BEGIN").await.unwrap();
        let mut writes = Batch::new();
        let updated = writes.push(
            Statement::new("UPDATE notes SET n = $1, memo = $2 WHERE n = $3")
                .bind(5_i64)
                .bind(None::<String>)
                .bind(1_i64),
        );
        let none = writes.push(Statement::new("UPDATE notes SET n = 0 WHERE id = $1").bind("z"));
        let taken = writes.push(
            Statement::new("INSERT INTO notes (id, n) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                .bind("c")
                .bind(9_i64),
        );
        let added = writes.push(
            Statement::new("INSERT INTO notes (id, n, memo) VALUES ($1, $2, '$1'), ($3, $2, $4)")
                .bind("d")
                .bind(7_i64)
                .bind("e")
                .bind(Some("memo")),
        );
        let changed = writes.execute(conn, backend).await.unwrap();
        assert_eq!(
            [updated, none, taken, added].map(|part| changed.rows(part)),
            [2, 0, 0, 2]
        );
        conn.execute("COMMIT").await.unwrap();
        let rows: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT id, n, memo FROM notes ORDER BY id")
                .fetch_all(&mut *conn)
                .await
                .unwrap();
        let memo = |m: &str| Some(m.to_owned());
        assert_eq!(
            rows,
            [
                ("a".into(), 5, None),
                ("b".into(), 5, None),
                ("c".into(), 2, None),
                ("d".into(), 7, memo("$1")),
                ("e".into(), 7, memo("memo")),
            ]
        );

        conn.execute("BEGIN").await.unwrap();
        let mut writes = Batch::new();
        writes.push(Statement::new("UPDATE notes SET n = 8 WHERE id = $1").bind("a"));
        writes.push(Statement::new("INSERT INTO notes (id, n) VALUES ($1, 1)").bind("b"));
        let refused = writes.execute(conn, backend).await;
        assert!(
            matches!(&refused, Err(StoreError::Database(e))
                if e.as_database_error().is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)),
            "{:?}",
            refused.err()
        );
        conn.execute("ROLLBACK").await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM notes WHERE id = 'a'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(n, 5);
    }

    async fn connect(url: &str) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(url).await.unwrap()
    }

    #[tokio::test]
    async fn a_batch_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/batch.db?mode=rwc", dir.path().display());
        let mut conn = connect(&url).await;
        batch_counts_and_failure(&mut Conn::from(&mut conn), Backend::Sqlite).await;
    }

    /// The same on the SQLite writers' own connection.
    #[tokio::test]
    async fn a_batch_on_the_sqlite_writers_connection() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn =
            super::super::direct::DirectSqlite::open(&dir.path().join("batch.db"), "").unwrap();
        batch_counts_and_failure(&mut Conn::Direct(&mut conn), Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_batch_on_postgres() {
        use crate::bench::postgres::{Durability, Server};
        let server = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => Server::at(&url),
            Err(_) => Server::start(Durability::Relaxed).unwrap(),
        };
        let url = server.fresh_database_url("lephi_batch").await.unwrap();
        let mut conn = connect(&url).await;
        batch_counts_and_failure(&mut Conn::from(&mut conn), Backend::Postgres).await;
    }
}
