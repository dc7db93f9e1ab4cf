//! The outbox: events for the dossier systems, written in the transaction
//! of their cause and delivered later by the dispatcher, at least once.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;

use super::agencies::path_of;
use super::audit::{self, Change};
use super::batch::Statement;
use super::query::{Filtered, Listed, Value, page};
use super::{Store, StoreError, parse_optional_time, parse_time};
use crate::domain::audit::Actor;
use crate::domain::webhook::{WebhookSecret, WebhookSigners, WebhookUrl};
use crate::domain::{AgencyCode, Scope, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EventType {
    #[serde(rename = "payment.received")]
    PaymentReceived,
    #[serde(rename = "invoice.paid")]
    InvoicePaid,
    #[serde(rename = "exception.opened")]
    ExceptionOpened,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    #[serde(rename = "refund.failed")]
    RefundFailed,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PaymentReceived => "payment.received",
            EventType::InvoicePaid => "invoice.paid",
            EventType::ExceptionOpened => "exception.opened",
            EventType::RefundSucceeded => "refund.succeeded",
            EventType::RefundFailed => "refund.failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Its agency has no webhook yet; pending once one is set.
    Held,
    Pending,
    Delivered,
    /// Every delivery failed; kept until an officer asks to redeliver.
    Dead,
}

impl EventStatus {
    pub fn parse(value: &str) -> Option<EventStatus> {
        match value {
            "held" => Some(EventStatus::Held),
            "pending" => Some(EventStatus::Pending),
            "delivered" => Some(EventStatus::Delivered),
            "dead" => Some(EventStatus::Dead),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Held => "held",
            EventStatus::Pending => "pending",
            EventStatus::Delivered => "delivered",
            EventStatus::Dead => "dead",
        }
    }
}

/// An event as stored; `body` is the exact JSON every delivery sends.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    pub agency_code: Option<AgencyCode>,
    pub status: EventStatus,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub body: String,
}

/// An event claimed for one delivery, with where it goes.
#[derive(Debug, Clone)]
pub struct DueEvent {
    pub id: String,
    pub body: String,
    /// Deliveries tried so far, this one included.
    pub attempt: i64,
    pub url: WebhookUrl,
    pub signers: WebhookSigners,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub status: Option<EventStatus>,
    pub event_type: Option<String>,
    pub after_id: Option<String>,
    pub limit: i64,
}

/// SQL for the status of an event whose agency code is the SQL `agency`:
/// held until the agency has a webhook, so that the dispatcher only ever
/// looks at deliverable events. (A NULL agency is never deliverable.)
fn deliverable(agency: &str) -> String {
    format!(
        "CASE WHEN EXISTS (SELECT 1 FROM agency_webhooks w WHERE w.agency_code = {agency})
         THEN 'pending' ELSE 'held' END"
    )
}

/// An event to write to the outbox.
pub(super) struct NewEvent<'a> {
    pub agency_code: Option<&'a str>,
    pub event_type: EventType,
    pub data: serde_json::Value,
}

/// Writes an event to the outbox, in the caller's transaction. The caller
/// has written a row that references the agency (a payment, an exception),
/// whose foreign key holds a key-share lock on the agency: a webhook set at
/// the same time waits for this transaction (see `Store::set_webhook`).
pub(super) async fn enqueue(
    conn: &mut Conn<'_>,
    agency_code: Option<&str>,
    event_type: EventType,
    data: serde_json::Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    let event = NewEvent {
        agency_code,
        event_type,
        data,
    };
    if let Some(statement) = insert(vec![event], now) {
        statement.execute(conn).await?;
    }
    Ok(())
}

/// The statement that writes `events` to the outbox, their ids growing in
/// the order given, for a caller that writes it with others (see
/// [`Batch`](super::batch::Batch)); `None` when there are none.
pub(super) fn insert(events: Vec<NewEvent<'_>>, now: Timestamp) -> Option<Statement> {
    if events.is_empty() {
        return None;
    }
    let rows: Vec<String> = (0..events.len())
        .map(|row| {
            let n = |c: usize| format!("${}", row * 5 + c);
            format!(
                "({}, {}, {}, {}, {}, {}, 0, {})",
                n(1),
                n(2),
                n(3),
                n(4),
                n(5),
                deliverable(&n(2)),
                n(5)
            )
        })
        .collect();
    let mut statement = Statement::new(format!(
        "INSERT INTO outbox_events (id, agency_code, type, payload, created_at, status, attempts, next_attempt_at)
         VALUES {}",
        rows.join(", ")
    ));
    for event in events {
        let id = format!("evt_{}", uuid::Uuid::now_v7().simple());
        let body = json!({
            "id": id,
            "type": event.event_type,
            "timestamp": now,
            "data": event.data,
        })
        .to_string();
        statement = statement
            .bind(id)
            .bind(event.agency_code)
            .bind(event.event_type.as_str())
            .bind(body)
            .bind(now.to_stored());
    }
    Some(statement)
}

/// The most events one statement of [`insert_all`] writes: five
/// placeholders each, within either database's limit on them.
const EVENTS_PER_STATEMENT: usize = 6_000;

/// The statements that write `events` to the outbox, in order, however
/// many there are.
pub(super) fn insert_all(mut events: Vec<NewEvent<'_>>, now: Timestamp) -> Vec<Statement> {
    let mut statements = Vec::new();
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(EVENTS_PER_STATEMENT));
        statements.extend(insert(events, now));
        events = rest;
    }
    statements
}

/// Releases the held events of an agency that now has a webhook, in the
/// caller's transaction.
pub(super) async fn release_held(conn: &mut Conn<'_>, agency_code: &str) -> Result<(), StoreError> {
    // Each event keeps its creation time as its first due time, so the
    // dispatcher sends them in the order they happened.
    sqlx::query(
        "UPDATE outbox_events SET status = 'pending' WHERE agency_code = $1 AND status = 'held'",
    )
    .bind(agency_code)
    .execute(conn)
    .await?;
    Ok(())
}

const SELECT_EVENTS: &str = "SELECT e.id, e.type, e.agency_code, e.status, e.attempts,
        e.next_attempt_at, e.last_error, e.created_at, e.delivered_at, e.payload
     FROM outbox_events e LEFT JOIN agencies a ON a.code = e.agency_code";

fn event_from_row(row: &AnyRow) -> Result<Event, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Event {
        id: row.try_get("id")?,
        event_type: row.try_get("type")?,
        agency_code: row
            .try_get::<Option<String>, _>("agency_code")?
            .map(AgencyCode::from_stored),
        status: EventStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("event status {status:?}")))?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: parse_time(row, "next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: parse_time(row, "created_at")?,
        delivered_at: parse_optional_time(row, "delivered_at")?,
        body: row.try_get("payload")?,
    })
}

impl Store {
    /// Claims up to `limit` due events (each has an agency with a webhook),
    /// for one delivery each. A claim moves the event's next attempt past `lease`,
    /// so that no other dispatcher (in this process or another) takes it
    /// while this one delivers.
    pub async fn claim_due_events(
        &self,
        lease: time::Duration,
        limit: i64,
    ) -> Result<Vec<DueEvent>, StoreError> {
        let now = Timestamp::now();
        let until = now
            .plus(lease)
            .ok_or_else(|| StoreError::corrupt("lease out of range"))?;
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT e.id, e.payload, e.attempts, w.url, w.secret,
                    CASE WHEN w.previous_until > $1 THEN w.previous_secret END AS previous_secret
             FROM outbox_events e JOIN agency_webhooks w ON w.agency_code = e.agency_code
             WHERE e.status = 'pending' AND e.next_attempt_at <= $1
             ORDER BY e.next_attempt_at LIMIT $2{}",
            self.row_lock(" FOR UPDATE OF e SKIP LOCKED")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.to_stored())
            .bind(limit)
            .fetch_all(&mut tx.conn())
            .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            sqlx::query(
                "UPDATE outbox_events SET attempts = attempts + 1, next_attempt_at = $1 WHERE id = $2",
            )
            .bind(until.to_stored())
            .bind(&id)
            .execute(&mut tx.conn())
            .await?;
            let secret: String = row.try_get("secret")?;
            let previous: Option<String> = row.try_get("previous_secret")?;
            let parse = |secret: &str| WebhookSecret::parse(secret).map_err(StoreError::corrupt);
            due.push(DueEvent {
                id,
                body: row.try_get("payload")?,
                attempt: row.try_get::<i64, _>("attempts")? + 1,
                url: WebhookUrl::from_stored(row.try_get("url")?),
                signers: WebhookSigners {
                    current: parse(&secret)?,
                    previous: previous.as_deref().map(parse).transpose()?,
                },
            });
        }
        tx.commit().await?;
        Ok(due)
    }

    /// Marks a claimed event delivered. `attempt` is the claim's: an outcome
    /// that arrives after the event was claimed again (its lease ran out,
    /// or an officer asked for a redelivery) changes nothing.
    pub async fn event_delivered(&self, id: &str, attempt: i64) -> Result<(), StoreError> {
        let delivered = sqlx::query(
            "UPDATE outbox_events SET status = 'delivered', delivered_at = $1, last_error = NULL
             WHERE id = $2 AND status = 'pending' AND attempts = $3",
        )
        .bind(Timestamp::now().to_stored())
        .bind(id)
        .bind(attempt);
        self.write_one(delivered).await?;
        Ok(())
    }

    /// Records failed delivery number `attempt`: retried at `retry_at`, or
    /// a dead letter when there is none. Stale outcomes change nothing, as
    /// in [`Store::event_delivered`].
    pub async fn event_failed(
        &self,
        id: &str,
        attempt: i64,
        error: &str,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let query = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE outbox_events SET last_error = $1, next_attempt_at = $2
                 WHERE id = $3 AND status = 'pending' AND attempts = $4",
            )
            .bind(error)
            .bind(at.to_stored()),
            None => sqlx::query(
                "UPDATE outbox_events SET last_error = $1, status = 'dead', next_attempt_at = $2
                 WHERE id = $3 AND status = 'pending' AND attempts = $4",
            )
            .bind(error)
            .bind(Timestamp::now().to_stored()),
        };
        self.write_one(query.bind(id).bind(attempt)).await?;
        Ok(())
    }

    /// Queues event `id` (in `scope`) for delivery again, from its first
    /// attempt, whatever its status.
    pub async fn redeliver_event(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
    ) -> Result<Event, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "{SELECT_EVENTS} WHERE e.id = $1 AND substr(coalesce(a.path, '/'), 1, length($2)) = $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(scope.path_prefix())
            .fetch_optional(&mut tx.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let event = event_from_row(&row)?;
        if let Some(code) = &event.agency_code {
            // As an event's insert does through its foreign key, so that a
            // webhook being set now either sees this event held or is seen.
            super::endpoints::lock_agency(&mut tx.conn(), self, code.as_str(), " FOR KEY SHARE")
                .await?;
        }
        // An event being delivered right now keeps its lease: it is sent
        // again when the lease ends, never twice at once.
        let sql = format!(
            "UPDATE outbox_events SET attempts = 0,
                 next_attempt_at = CASE WHEN status = 'pending' AND next_attempt_at > $1
                                        THEN next_attempt_at ELSE $1 END,
                 status = {}
             WHERE id = $2",
            deliverable("outbox_events.agency_code")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.to_stored())
            .bind(id)
            .execute(&mut tx.conn())
            .await?;
        let row = sqlx::query("SELECT status, next_attempt_at FROM outbox_events WHERE id = $1")
            .bind(id)
            .fetch_one(&mut tx.conn())
            .await?;
        let status: String = row.try_get("status")?;
        let status = EventStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("event status {status:?}")))?;
        let next_attempt_at = parse_time(&row, "next_attempt_at")?;
        let path = path_of(
            &mut tx.conn(),
            event.agency_code.as_ref().map(|c| c.as_str()),
        )
        .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "event.redelivery_requested",
                object_type: "event",
                object_id: id,
                agency: event
                    .agency_code
                    .as_ref()
                    .map(AgencyCode::as_str)
                    .zip(path.as_deref()),
                before: Some(json!({ "status": event.status, "attempts": event.attempts })),
                after: Some(json!({ "status": status, "attempts": 0 })),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Event {
            status,
            attempts: 0,
            next_attempt_at,
            ..event
        })
    }

    /// Events in `scope`, newest first.
    pub async fn list_events(
        &self,
        scope: &Scope,
        filter: &EventFilter,
    ) -> Result<Listed<Event>, StoreError> {
        let mut query = Filtered::new(SELECT_EVENTS);
        query.and(
            "substr(coalesce(a.path, '/'), 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        if let Some(status) = filter.status {
            query.and("e.status = {}", Value::Text(status.as_str().to_owned()));
        }
        if let Some(event_type) = &filter.event_type {
            query.and("e.type = {}", Value::Text(event_type.clone()));
        }
        query.newest_first("e.id", filter.after_id.as_deref(), filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, filter.limit, event_from_row, |e| e.id.clone())
    }
}
