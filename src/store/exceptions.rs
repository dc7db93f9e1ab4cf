//! Exceptions: findings that wait for a finance officer. Raised inside the
//! transaction of what found them; resolved by an officer's decision, or
//! cleared by lephi when what was found no longer holds. Resolving records
//! the decision and never edits a payment.

use serde_json::json;
use sqlx::Row;

use super::conn::Conn;

use super::agencies::path_of;
use super::audit::{self, Change};
use super::batch::Statement;
use super::bulk::json_rows;
use super::events::{self, EventType, NewEvent};
use super::payments::{SELECT_EXCEPTIONS, exception_from_row};
use super::{Backend, Store, StoreError};
use crate::domain::audit::Actor;
use crate::domain::payment::{ExceptionKind, PaymentException, Resolution};
use crate::domain::{Scope, Timestamp, ValidationError, Vnd};

/// A finding to raise.
pub(super) struct Finding<'a> {
    pub kind: ExceptionKind,
    pub payment_id: Option<&'a str>,
    pub invoice_id: Option<&'a str>,
    /// The agency it concerns, and that agency's path.
    pub agency: Option<(&'a str, &'a str)>,
    pub amount: Option<Vnd>,
    pub detail: String,
    /// The statement line that found it: `(file id, line number)`.
    pub settlement_line: Option<(&'a str, i64)>,
    pub dossier_code: Option<&'a str>,
    /// Whether the dossier system hears of it (an `exception.opened`
    /// event): a payment's own exceptions, found when it is recorded, yes;
    /// reconciliation's findings are the finance officers' alone.
    pub tell_dossier_system: bool,
}

/// Raises `finding` with its audit record, and its `exception.opened`
/// event if the dossier system is to hear of it. A standing finding about a payment
/// (`unsettled_payment`, `unknown_dossier`) is raised once: returns
/// `None` when it was raised before.
pub(super) async fn raise(
    conn: &mut Conn<'_>,
    actor: &Actor,
    finding: &Finding<'_>,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let id = uuid::Uuid::now_v7().to_string();
    let inserted = sqlx::query(
        "INSERT INTO payment_exceptions (id, kind, status, payment_id, invoice_id, agency_code,
             amount, detail, opened_at, settlement_file_id, settlement_line_no, dossier_code)
         VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (kind, payment_id) WHERE kind IN ('unsettled_payment', 'unknown_dossier')
         DO NOTHING",
    )
    .bind(&id)
    .bind(finding.kind.as_str())
    .bind(finding.payment_id)
    .bind(finding.invoice_id)
    .bind(finding.agency.map(|(code, _)| code))
    .bind(finding.amount.map(Vnd::dong))
    .bind(&finding.detail)
    .bind(now.to_stored())
    .bind(finding.settlement_line.map(|(file, _)| file))
    .bind(finding.settlement_line.map(|(_, line)| line))
    .bind(finding.dossier_code)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(None);
    }
    audit::record(conn, actor, opened(&id, finding, now)).await?;
    if let Some(event) = told(&id, finding) {
        events::enqueue(conn, event.agency_code, event.event_type, event.data, now).await?;
    }
    Ok(Some(id))
}

/// The `exception.opened` audit record of finding `finding`, raised as `id`.
fn opened<'a>(id: &'a str, finding: &Finding<'a>, now: Timestamp) -> Change<'a> {
    Change {
        action: "exception.opened",
        object_type: "exception",
        object_id: id,
        agency: finding.agency,
        before: None,
        after: Some(json!({
            "kind": finding.kind,
            "payment_id": finding.payment_id,
            "detail": finding.detail,
            "settlement_file_id": finding.settlement_line.map(|(file, _)| file),
            "settlement_line_no": finding.settlement_line.map(|(_, line)| line),
            "dossier_code": finding.dossier_code,
        })),
        at: now,
    }
}

/// The `exception.opened` event of finding `finding`, raised as `id`, if
/// the dossier system is to hear of it.
fn told<'a>(id: &str, finding: &Finding<'a>) -> Option<NewEvent<'a>> {
    finding.tell_dossier_system.then(|| NewEvent {
        agency_code: finding.agency.map(|(code, _)| code),
        event_type: EventType::ExceptionOpened,
        data: json!({
            "exception_id": id,
            "kind": finding.kind,
            "payment_id": finding.payment_id,
            "invoice_id": finding.invoice_id,
            "amount": finding.amount,
            "detail": finding.detail,
        }),
    })
}

/// Findings raised together, none of them a standing one (which
/// [`raise`] raises once): written with one statement, their audit
/// records and events left to the caller to write with its own.
pub(super) struct Raising<'a> {
    findings: Vec<&'a Finding<'a>>,
    ids: Vec<String>,
}

impl<'a> Raising<'a> {
    pub fn new(findings: Vec<&'a Finding<'a>>) -> Result<Raising<'a>, StoreError> {
        if let Some(standing) = findings.iter().find(|f| f.kind.is_standing()) {
            return Err(StoreError::corrupt(format!(
                "a standing {} finding is raised one at a time",
                standing.kind.as_str()
            )));
        }
        let ids = findings
            .iter()
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        Ok(Raising { findings, ids })
    }

    /// The statement that inserts them, `None` when there are none.
    pub fn insert(
        &self,
        backend: Backend,
        now: Timestamp,
    ) -> Result<Option<Statement>, StoreError> {
        if self.findings.is_empty() {
            return Ok(None);
        }
        let rows: Vec<serde_json::Value> = self
            .findings
            .iter()
            .zip(&self.ids)
            .map(|(f, id)| {
                json!([
                    id,
                    f.kind.as_str(),
                    f.payment_id,
                    f.invoice_id,
                    f.agency.map(|(code, _)| code),
                    f.amount.map(Vnd::dong),
                    f.detail,
                    f.settlement_line.map(|(file, _)| file),
                    f.settlement_line.map(|(_, line)| line),
                    f.dossier_code,
                ])
            })
            .collect();
        let sql = format!(
            "INSERT INTO payment_exceptions (id, kind, status, payment_id, invoice_id, agency_code,
                 amount, detail, opened_at, settlement_file_id, settlement_line_no, dossier_code)
             SELECT e.value->>0, e.value->>1, 'open', e.value->>2, e.value->>3, e.value->>4,
                 CAST(e.value->>5 AS BIGINT), e.value->>6, $1, e.value->>7,
                 CAST(e.value->>8 AS BIGINT), e.value->>9
             FROM {}",
            json_rows(backend, "$2")
        );
        let rows = serde_json::to_string(&rows).map_err(StoreError::corrupt)?;
        Ok(Some(Statement::new(sql).bind(now.to_stored()).bind(rows)))
    }

    /// Their audit records, in order.
    pub fn changes(&self, now: Timestamp) -> impl Iterator<Item = Change<'_>> {
        self.findings
            .iter()
            .zip(&self.ids)
            .map(move |(f, id)| opened(id, f, now))
    }

    /// The events of those the dossier system hears of, in order.
    pub fn events(&self) -> impl Iterator<Item = NewEvent<'_>> {
        self.findings
            .iter()
            .zip(&self.ids)
            .filter_map(|(f, id)| told(id, f))
    }
}

/// Clears the open `kind` finding about payment `payment_id`, if any, as
/// `resolution`: what it found no longer holds.
pub(super) async fn clear(
    conn: &mut Conn<'_>,
    actor: &Actor,
    kind: ExceptionKind,
    payment_id: &str,
    resolution: Resolution,
    note: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT x.id, x.agency_code, a.path FROM payment_exceptions x
         LEFT JOIN agencies a ON a.code = x.agency_code
         WHERE x.kind = $1 AND x.payment_id = $2 AND x.status = 'open'",
    )
    .bind(kind.as_str())
    .bind(payment_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let id: String = row.try_get("id")?;
    let agency_code: Option<String> = row.try_get("agency_code")?;
    let path: Option<String> = row.try_get("path")?;
    if !mark_resolved(conn, actor, &id, resolution, note, None, now).await? {
        // An officer resolved it meanwhile; the decision stands.
        return Ok(false);
    }
    audit::record(
        conn,
        actor,
        Change {
            action: "exception.cleared",
            object_type: "exception",
            object_id: &id,
            agency: agency_code.as_deref().zip(path.as_deref()),
            before: Some(json!({ "status": "open" })),
            after: Some(json!({ "status": "resolved", "resolution": resolution, "note": note })),
            at: now,
        },
    )
    .await?;
    Ok(true)
}

/// Resolves open exception `id` as `resolution` (lephi's, not an
/// officer's decision), with its audit record; nothing when it was not open.
pub(super) async fn resolve_by(
    conn: &mut Conn<'_>,
    actor: &Actor,
    id: &str,
    resolution: Resolution,
    note: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    if !mark_resolved(conn, actor, id, resolution, note, None, now).await? {
        return Ok(());
    }
    let agency_code: Option<String> =
        sqlx::query_scalar("SELECT agency_code FROM payment_exceptions WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let path = path_of(conn, agency_code.as_deref()).await?;
    audit::record(
        conn,
        actor,
        Change {
            action: "exception.cleared",
            object_type: "exception",
            object_id: id,
            agency: agency_code.as_deref().zip(path.as_deref()),
            before: Some(json!({ "status": "open" })),
            after: Some(json!({ "status": "resolved", "resolution": resolution, "note": note })),
            at: now,
        },
    )
    .await
}

/// Resolves open exception `id`; false when it was not open.
async fn mark_resolved(
    conn: &mut Conn<'_>,
    actor: &Actor,
    id: &str,
    resolution: Resolution,
    note: &str,
    payment_id: Option<&str>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE payment_exceptions SET status = 'resolved', resolution = $1, resolution_note = $2,
             resolved_payment_id = $3, resolved_by = $4, resolved_at = $5
         WHERE id = $6 AND status = 'open'",
    )
    .bind(resolution.as_str())
    .bind(note)
    .bind(payment_id)
    .bind(&actor.name)
    .bind(now.to_stored())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// An officer's decision on an exception.
pub struct Decision<'a> {
    pub resolution: Resolution,
    pub note: &'a str,
    /// The payment the money was matched to, for `matched_manually`.
    pub payment_id: Option<&'a str>,
}

impl Store {
    /// Exception `id`, which must be in `scope`.
    pub async fn get_exception(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<PaymentException, StoreError> {
        let mut conn = self.pool.acquire().await?;
        exception_in_scope(&mut Conn::from(&mut *conn), scope, id, "").await
    }

    /// Records an officer's decision on open exception `id` (in `scope`),
    /// with its audit record. A resolved exception stays as resolved.
    pub async fn resolve_exception(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        decision: &Decision<'_>,
    ) -> Result<PaymentException, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let lock = self.row_lock(" FOR UPDATE OF x");
        let before = exception_in_scope(&mut tx.conn(), scope, id, lock).await?;
        if before.resolved.is_some() {
            // Perhaps by a batch-mate on SQLite: say so once it is committed.
            tx.rollback().await?;
            return Err(StoreError::ExceptionResolved);
        }
        // A payment recovered from a statement line paid an invoice on the
        // importer's word alone: someone else confirms it.
        if before.kind == ExceptionKind::MissingPayment
            && let Some((file_id, _)) = &before.settlement_line
        {
            let imported_by: Option<String> =
                sqlx::query_scalar("SELECT imported_by FROM settlement_files WHERE id = $1")
                    .bind(file_id)
                    .fetch_optional(&mut tx.conn())
                    .await?;
            if imported_by.as_deref() == Some(actor.name.as_str()) {
                tx.rollback().await?;
                return Err(StoreError::ImporterResolves);
            }
        }
        if let Some(payment_id) = decision.payment_id {
            let in_scope: Option<String> = sqlx::query_scalar(
                "SELECT p.id FROM payments p LEFT JOIN agencies a ON a.code = p.agency_code
                 WHERE p.id = $1 AND substr(coalesce(a.path, '/'), 1, length($2)) = $2",
            )
            .bind(payment_id)
            .bind(scope.path_prefix())
            .fetch_optional(&mut tx.conn())
            .await?;
            if in_scope.is_none() {
                return Err(StoreError::Invalid(ValidationError::new(
                    "payment_id",
                    "no payment with this id is in your scope",
                )));
            }
        }
        let resolved = mark_resolved(
            &mut tx.conn(),
            actor,
            id,
            decision.resolution,
            decision.note,
            decision.payment_id,
            now,
        )
        .await?;
        if !resolved {
            tx.rollback().await?;
            return Err(StoreError::ExceptionResolved);
        }
        let agency_path = path_of(
            &mut tx.conn(),
            before.agency_code.as_ref().map(|c| c.as_str()),
        )
        .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "exception.resolved",
                object_type: "exception",
                object_id: id,
                agency: before
                    .agency_code
                    .as_ref()
                    .map(|c| c.as_str())
                    .zip(agency_path.as_deref()),
                before: Some(json!({ "status": "open", "kind": before.kind })),
                after: Some(json!({
                    "status": "resolved",
                    "resolution": decision.resolution,
                    "note": decision.note,
                    "payment_id": decision.payment_id,
                })),
                at: now,
            },
        )
        .await?;
        let after = exception_in_scope(&mut tx.conn(), scope, id, "").await?;
        tx.commit().await?;
        Ok(after)
    }
}

async fn exception_in_scope(
    conn: &mut Conn<'_>,
    scope: &Scope,
    id: &str,
    lock: &str,
) -> Result<PaymentException, StoreError> {
    let sql = format!(
        "{SELECT_EXCEPTIONS} WHERE x.id = $1 AND substr(coalesce(a.path, '/'), 1, length($2)) = $2{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(scope.path_prefix())
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    exception_from_row(&row)
}
