//! A small builder for queries whose filters depend on the request: it
//! numbers `$n` placeholders (which both backends accept) and keeps each
//! value beside its placeholder. Values are always bound, never spliced.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

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
