//! The audit log: written inside the transaction of the change it records,
//! never updated or deleted (triggers refuse both on either backend).

use serde::Serialize;
use sqlx::Row;

use super::conn::Conn;

use super::batch::Statement;
use super::query::{Filtered, Value};
use super::{Store, StoreError, json_column};
use crate::domain::audit::{Actor, AuditRecord};
use crate::domain::{Scope, Timestamp};

/// One change to record: what happened to which object, from what to what.
pub(super) struct Change<'a> {
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    /// The agency the object belongs to, and that agency's path.
    pub agency: Option<(&'a str, &'a str)>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub at: Timestamp,
}

/// The JSON form of a state for `before` or `after`.
pub(super) fn state(value: &impl Serialize) -> Option<serde_json::Value> {
    serde_json::to_value(value).ok()
}

/// Records one change, in the caller's transaction.
pub(super) async fn record(
    conn: &mut Conn<'_>,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), StoreError> {
    if let Some(statement) = insert(actor, &[change]) {
        statement.execute(conn).await?;
    }
    Ok(())
}

/// The statement that records `changes`, in order, for a caller that
/// writes it with others (see [`Batch`](super::batch::Batch)); `None` when
/// there is nothing to record.
pub(super) fn insert(actor: &Actor, changes: &[Change<'_>]) -> Option<Statement> {
    if changes.is_empty() {
        return None;
    }
    let rows: Vec<String> = (0..changes.len())
        .map(|row| {
            let columns: Vec<String> = (1..=12).map(|c| format!("${}", row * 12 + c)).collect();
            format!("({})", columns.join(", "))
        })
        .collect();
    let mut statement = Statement::new(format!(
        "INSERT INTO audit_log (at, actor, action, object_type, object_id, agency_code, agency_path, before_state, after_state, request_id, client_addr, actor_name)
         VALUES {}",
        rows.join(", ")
    ));
    for change in changes {
        statement = statement
            .bind(change.at.to_stored())
            .bind(actor.name.as_str())
            .bind(change.action)
            .bind(change.object_type)
            .bind(change.object_id)
            .bind(change.agency.map(|(code, _)| code))
            .bind(change.agency.map(|(_, path)| path))
            .bind(change.before.as_ref().map(|v| v.to_string()))
            .bind(change.after.as_ref().map(|v| v.to_string()))
            .bind(actor.request_id.as_deref())
            .bind(actor.client_addr.map(|addr| addr.to_string()))
            .bind(actor.display.as_deref());
    }
    Some(statement)
}

/// The most records one statement of [`insert_all`] writes: twelve
/// placeholders each, within either database's limit on them.
const RECORDS_PER_STATEMENT: usize = 2_700;

/// The statements that record `changes`, in order, however many there are.
pub(super) fn insert_all(actor: &Actor, changes: &[Change<'_>]) -> Vec<Statement> {
    changes
        .chunks(RECORDS_PER_STATEMENT)
        .filter_map(|chunk| insert(actor, chunk))
        .collect()
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub action: Option<String>,
    /// Only what this actor (`officer:<id>` or `key:<id>`) did.
    pub actor: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Only records older than this id: the cursor of the previous page.
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// Audit records in `scope`, newest first. A scoped reader sees the
    /// records of its agencies; records of no agency only a global one does.
    pub async fn list_audit(
        &self,
        scope: &Scope,
        filter: &AuditFilter,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query = Filtered::new(
            "SELECT id, at, actor, action, object_type, object_id, agency_code, before_state, after_state, request_id, client_addr, actor_name FROM audit_log",
        );
        if let Scope::Subtree { path, .. } = scope {
            query.and(
                "substr(agency_path, 1, length({})) = {}",
                Value::Text(path.clone()),
            );
        }
        if let Some(object_type) = &filter.object_type {
            query.and("object_type = {}", Value::Text(object_type.clone()));
        }
        if let Some(object_id) = &filter.object_id {
            query.and("object_id = {}", Value::Text(object_id.clone()));
        }
        if let Some(action) = &filter.action {
            query.and("action = {}", Value::Text(action.clone()));
        }
        if let Some(actor) = &filter.actor {
            query.and("actor = {}", Value::Text(actor.clone()));
        }
        if let Some(from) = filter.from {
            query.and("at >= {}", Value::Text(from.to_stored()));
        }
        if let Some(to) = filter.to {
            query.and("at < {}", Value::Text(to.to_stored()));
        }
        if let Some(before_id) = filter.before_id {
            query.and("id < {}", Value::Int(before_id));
        }
        query
            .then("ORDER BY id DESC")
            .then_bind("LIMIT {}", Value::Int(filter.limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    at: super::parse_time(row, "at")?,
                    actor: row.try_get("actor")?,
                    actor_name: row.try_get("actor_name")?,
                    action: row.try_get("action")?,
                    object_type: row.try_get("object_type")?,
                    object_id: row.try_get("object_id")?,
                    agency_code: row.try_get("agency_code")?,
                    before: json_column(row, "before_state")?,
                    after: json_column(row, "after_state")?,
                    request_id: row.try_get("request_id")?,
                    client_addr: row.try_get("client_addr")?,
                })
            })
            .collect()
    }
}
