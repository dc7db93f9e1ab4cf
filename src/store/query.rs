//! A small builder for queries whose filters depend on the request: it
//! numbers `$n` placeholders (which both backends accept) and keeps each
//! value beside its placeholder. Values are always bound, never spliced.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use super::{Backend, StoreError};
use crate::domain::Timestamp;

pub(super) enum Value {
    Text(String),
    Int(i64),
}

pub(super) struct Filtered {
    sql: String,
    values: Vec<Value>,
    has_where: bool,
}

impl Filtered {
    pub fn new(select: &str) -> Filtered {
        Filtered {
            sql: select.to_owned(),
            values: Vec::new(),
            has_where: false,
        }
    }

    /// Adds `condition`, in which `{}` stands for the next placeholder.
    pub fn and(&mut self, condition: &str, value: Value) -> &mut Self {
        self.values.push(value);
        let placeholder = format!("${}", self.values.len());
        self.sql
            .push_str(if self.has_where { " AND " } else { " WHERE " });
        self.sql.push_str(&condition.replace("{}", &placeholder));
        self.has_where = true;
        self
    }

    /// Adds `condition`, in which `{1}`, `{2}`, … stand for `values` in order.
    pub fn and_each(&mut self, condition: &str, values: Vec<Value>) -> &mut Self {
        let mut condition = condition.to_owned();
        for (n, value) in values.into_iter().enumerate() {
            self.values.push(value);
            condition = condition.replace(
                &format!("{{{}}}", n + 1),
                &format!("${}", self.values.len()),
            );
        }
        self.sql
            .push_str(if self.has_where { " AND " } else { " WHERE " });
        self.sql.push_str(&condition);
        self.has_where = true;
        self
    }

    /// Adds `condition`, which takes no value.
    pub fn and_fixed(&mut self, condition: &str) -> &mut Self {
        self.sql
            .push_str(if self.has_where { " AND " } else { " WHERE " });
        self.sql.push_str(condition);
        self.has_where = true;
        self
    }

    /// Appends text without a value, such as `ORDER BY`.
    pub fn then(&mut self, text: &str) -> &mut Self {
        self.sql.push(' ');
        self.sql.push_str(text);
        self
    }

    /// Appends text in which `{}` stands for the next placeholder, such as `LIMIT {}`.
    pub fn then_bind(&mut self, text: &str, value: Value) -> &mut Self {
        self.values.push(value);
        let placeholder = format!("${}", self.values.len());
        self.sql.push(' ');
        self.sql.push_str(&text.replace("{}", &placeholder));
        self
    }

    /// Rows whose `column` lies in `[from, to)`, for the bounds given.
    pub fn during(
        &mut self,
        column: &str,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> &mut Self {
        if let Some(from) = from {
            self.and(&format!("{column} >= {{}}"), Value::Text(from.to_stored()));
        }
        if let Some(to) = to {
            self.and(&format!("{column} < {{}}"), Value::Text(to.to_stored()));
        }
        self
    }

    /// Newest first by `id` (time-ordered ids), after the previous page's
    /// cursor, one row more than `limit` to tell whether a next page exists.
    pub fn newest_first(&mut self, id: &str, after_id: Option<&str>, limit: i64) -> &mut Self {
        if let Some(after_id) = after_id {
            self.and(&format!("{id} < {{}}"), Value::Text(after_id.to_owned()));
        }
        self.then(&format!("ORDER BY {id} DESC"))
            .then_bind("LIMIT {}", Value::Int(limit + 1))
    }

    /// The query so far inside `before` and `after`, as a subquery of
    /// another with the same values.
    pub fn wrapped(mut self, before: &str, after: &str) -> Self {
        self.sql = format!("{before}{}{after}", self.sql);
        self
    }

    pub fn build(self) -> Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql));
        for value in self.values {
            query = match value {
                Value::Text(text) => query.bind(text),
                Value::Int(int) => query.bind(int),
            };
        }
        query
    }
}

/// Placeholders for a statement that binds many values, each once and in
/// order: `$1, $2, …` on PostgreSQL; on SQLite anonymous `?`, bound by
/// position. SQLite finds a numbered placeholder by searching all of the
/// statement's names, so a statement with thousands of them costs time
/// that grows with the square of their count.
pub(super) struct Placeholders {
    backend: Backend,
    count: usize,
}

impl Placeholders {
    pub fn new(backend: Backend) -> Placeholders {
        Placeholders { backend, count: 0 }
    }

    /// The next placeholder.
    pub fn next(&mut self) -> String {
        self.count += 1;
        match self.backend {
            Backend::Sqlite => "?".to_owned(),
            Backend::Postgres => format!("${}", self.count),
        }
    }

    /// `n` placeholders, comma-separated: an `IN (...)` list.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }

    /// `rows` parenthesised rows of `columns` placeholders: a `VALUES` list.
    pub fn rows(&mut self, rows: usize, columns: usize) -> String {
        (0..rows)
            .map(|_| format!("({})", self.list(columns)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One page of a list, with the cursor of the next page if there may be one.
pub struct Listed<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Turns rows of a [`Filtered::newest_first`] query into a page.
pub(super) fn page<T>(
    rows: &[AnyRow],
    limit: i64,
    parse: impl Fn(&AnyRow) -> Result<T, StoreError>,
    cursor: impl Fn(&T) -> String,
) -> Result<Listed<T>, StoreError> {
    let mut items = rows.iter().map(parse).collect::<Result<Vec<_>, _>>()?;
    let limit = usize::try_from(limit).unwrap_or(0);
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    };
    Ok(Listed { items, next_cursor })
}
