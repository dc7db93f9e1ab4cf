//! Refunds: requested by a finance officer from a payment's held money,
//! approved by a second one (or at once under the agency's threshold),
//! sent to the gateway at most once, and finished by the provider's answer
//! or by the officer who paid the money back by hand. Each move is one
//! short transaction with its audit record; a finished refund resolves the
//! exception it came from and tells the dossier system.

use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::agencies::path_of;
use super::audit::{self, Change};
use super::conn::Conn;
use super::events::{self, EventType};
use super::exceptions::{self, Finding};
use super::held_money;
use super::idempotency::{self, Created, IdempotentRequest};
use super::payments::{SELECT_PAYMENTS, payment_from_row};
use super::query::{Filtered, Value, page};
use super::{Listed, Store, StoreError, parse_optional_time, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, Payment, Resolution};
use crate::domain::refund::{NotRefundable, Refund, RefundStatus, check_refund, from_applied};
use crate::domain::{AgencyCode, Scope, Timestamp, ValidationError, Vnd};

pub(super) const SELECT_REFUNDS: &str = concat!(
    "SELECT r.id, r.payment_id, r.agency_code, r.channel, r.amount,
        r.reason, r.exception_id, r.status, r.requested_by, r.requested_at, r.decided_by,
        r.decided_at, r.decision_note, r.request_id, r.submitted_at, r.provider_refund_id,
        r.provider_code, r.provider_message, r.reference, r.completed_by, r.completed_at,
        r.updated_at, ",
    name_of!("r.requested_by"),
    " AS requested_by_name, ",
    name_of!("r.decided_by"),
    " AS decided_by_name, ",
    name_of!("r.completed_by"),
    " AS completed_by_name
     FROM refunds r LEFT JOIN agencies a ON a.code = r.agency_code"
);

pub(super) fn refund_from_row(row: &AnyRow) -> Result<Refund, StoreError> {
    let channel: String = row.try_get("channel")?;
    let status: String = row.try_get("status")?;
    Ok(Refund {
        id: row.try_get("id")?,
        payment_id: row.try_get("payment_id")?,
        agency_code: row
            .try_get::<Option<String>, _>("agency_code")?
            .map(AgencyCode::from_stored),
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::corrupt(format!("refund channel {channel:?}")))?,
        amount: Vnd::new(row.try_get("amount")?),
        reason: row.try_get("reason")?,
        exception_id: row.try_get("exception_id")?,
        status: RefundStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("refund status {status:?}")))?,
        requested_by: row.try_get("requested_by")?,
        requested_by_name: row.try_get("requested_by_name")?,
        decided_by_name: row.try_get("decided_by_name")?,
        completed_by_name: row.try_get("completed_by_name")?,
        requested_at: parse_time(row, "requested_at")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: parse_optional_time(row, "decided_at")?,
        decision_note: row.try_get("decision_note")?,
        request_id: row.try_get("request_id")?,
        submitted_at: parse_optional_time(row, "submitted_at")?,
        provider_refund_id: row.try_get("provider_refund_id")?,
        provider_code: row.try_get("provider_code")?,
        provider_message: row.try_get("provider_message")?,
        reference: row.try_get("reference")?,
        completed_by: row.try_get("completed_by")?,
        completed_at: parse_optional_time(row, "completed_at")?,
        updated_at: parse_time(row, "updated_at")?,
    })
}

/// A refund an officer asks for.
pub struct NewRefund<'a> {
    pub payment_id: &'a str,
    pub amount: Vnd,
    pub reason: &'a str,
    /// The exception it settles; when not given, the open exception that
    /// holds the payment's money, if any.
    pub exception_id: Option<&'a str>,
    /// Under what amount a refund of the agency's money needs no second
    /// officer, by the payment's agency.
    pub approval_free_below: &'a (dyn Fn(Option<&AgencyCode>) -> Vnd + Sync),
}

/// Which refunds to list.
#[derive(Debug, Default)]
pub struct RefundFilter {
    pub payment_id: Option<String>,
    pub status: Option<RefundStatus>,
    pub agency_code: Option<AgencyCode>,
    pub after_id: Option<String>,
    pub limit: i64,
}

/// What the provider said of a submitted refund, or what an officer
/// recorded of one paid back by hand.
pub struct RefundOutcome<'a> {
    /// `Submitted` while it is not final yet.
    pub status: RefundStatus,
    pub provider_refund_id: Option<&'a str>,
    pub provider_code: &'a str,
    pub message: &'a str,
    /// When to ask again, while it is not final.
    pub next_check_at: Option<Timestamp>,
    /// Why the answer was not trusted, raised as an exception once.
    pub distrusted: Option<&'a str>,
}

/// What is left to refund of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundLeft {
    /// Any of its money: what it holds, then what paid its invoice.
    pub any: Vnd,
    /// Of the money it holds.
    pub held: Vnd,
}

/// A gateway refund this process claimed to send: it alone sends it.
pub struct ClaimedRefund {
    pub refund: Refund,
    pub payment: Payment,
}

/// Payment `id`, if it is in `scope`, read with `lock`.
async fn payment_in(
    conn: &mut Conn<'_>,
    scope: &Scope,
    id: &str,
    lock: &str,
) -> Result<Option<Payment>, StoreError> {
    let sql = format!(
        "{SELECT_PAYMENTS} WHERE p.id = $1 AND substr(coalesce(a.path, '/'), 1, length($2)) = $2{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(scope.path_prefix())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(payment_from_row).transpose()
}

/// What stands against refunding `payment`: its open exceptions and what
/// its refunds already hold.
struct Standing {
    open: Vec<(String, ExceptionKind)>,
    spoken_for: Vnd,
}

impl Standing {
    async fn of(conn: &mut Conn<'_>, payment: &Payment) -> Result<Standing, StoreError> {
        Ok(Standing {
            open: open_exceptions(conn, &payment.id).await?,
            spoken_for: spoken_for(conn, &payment.id).await?,
        })
    }

    /// How much of `payment` is left to refund, if `amount` fits in it.
    fn check(&self, payment: &Payment, amount: Vnd) -> Result<Vnd, NotRefundable> {
        let kinds: Vec<ExceptionKind> = self.open.iter().map(|(_, kind)| *kind).collect();
        check_refund(payment, self.spoken_for, &kinds, amount)
    }
}

/// The sum of `payment_id`'s refunds that hold their amount.
pub(super) async fn spoken_for(conn: &mut Conn<'_>, payment_id: &str) -> Result<Vnd, StoreError> {
    let sum: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM refunds
         WHERE payment_id = $1 AND status NOT IN ('rejected', 'failed')",
    )
    .bind(payment_id)
    .fetch_one(conn)
    .await?;
    Ok(Vnd::new(sum.unwrap_or(0)))
}

/// What succeeded refunds of `payment_id` other than `except` gave back.
async fn refunded(conn: &mut Conn<'_>, payment_id: &str, except: &str) -> Result<Vnd, StoreError> {
    let sum: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(amount) AS BIGINT) FROM refunds
         WHERE payment_id = $1 AND status = 'succeeded' AND id <> $2",
    )
    .bind(payment_id)
    .bind(except)
    .fetch_one(conn)
    .await?;
    Ok(Vnd::new(sum.unwrap_or(0)))
}

/// The open exceptions of `payment_id`: `(id, kind)`.
pub(super) async fn open_exceptions(
    conn: &mut Conn<'_>,
    payment_id: &str,
) -> Result<Vec<(String, ExceptionKind)>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, kind FROM payment_exceptions WHERE payment_id = $1 AND status = 'open' ORDER BY id",
    )
    .bind(payment_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok((
                row.try_get("id")?,
                ExceptionKind::parse(&kind)
                    .ok_or_else(|| StoreError::corrupt(format!("exception kind {kind:?}")))?,
            ))
        })
        .collect()
}

async fn refund_by_id(conn: &mut Conn<'_>, id: &str, lock: &str) -> Result<Refund, StoreError> {
    let sql = format!("{SELECT_REFUNDS} WHERE r.id = $1{lock}");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    refund_from_row(&row)
}

async fn refund_in_scope(
    conn: &mut Conn<'_>,
    scope: &Scope,
    id: &str,
    lock: &str,
) -> Result<Refund, StoreError> {
    let sql = format!(
        "{SELECT_REFUNDS} WHERE r.id = $1 AND substr(coalesce(a.path, '/'), 1, length($2)) = $2{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(scope.path_prefix())
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    refund_from_row(&row)
}

/// The audit record of `refund` moving from `before` to its status now.
async fn audited(
    conn: &mut Conn<'_>,
    actor: &Actor,
    action: &str,
    refund: &Refund,
    before: Option<RefundStatus>,
    now: Timestamp,
) -> Result<(), StoreError> {
    let code = refund.agency_code.as_ref().map(AgencyCode::as_str);
    let path = path_of(conn, code).await?;
    audit::record(
        conn,
        actor,
        Change {
            action,
            object_type: "refund",
            object_id: &refund.id,
            agency: code.zip(path.as_deref()),
            before: before.map(|status| json!({ "status": status })),
            after: Some(json!({
                "status": refund.status,
                "payment_id": refund.payment_id,
                "amount": refund.amount,
                "reason": refund.reason,
                "decision_note": refund.decision_note,
                "request_id": refund.request_id,
                "provider_refund_id": refund.provider_refund_id,
                "provider_code": refund.provider_code,
                "reference": refund.reference,
            })),
            at: now,
        },
    )
    .await
}

impl Store {
    /// Asks for a refund of (part of) payment `new.payment_id` (in
    /// `scope`), once per idempotency key: the key, the refund, its audit
    /// record and the stored answer (made by `render`) in one transaction.
    /// The payment is locked so that two requests cannot together refund
    /// more than it holds.
    pub async fn request_refund(
        &self,
        actor: &Actor,
        request: &IdempotentRequest<'_>,
        scope: &Scope,
        new: &NewRefund<'_>,
        render: impl FnOnce(&Refund) -> String,
    ) -> Result<Created, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        if !idempotency::claim(&mut tx.conn(), request, now).await? {
            tx.rollback().await?;
            return self.replay_taken(request).await;
        }
        let lock = self.row_lock(" FOR UPDATE OF p");
        let Some(payment) = payment_in(&mut tx.conn(), scope, new.payment_id, lock).await? else {
            tx.rollback().await?;
            return Err(StoreError::NotFound);
        };
        let standing = Standing::of(&mut tx.conn(), &payment).await?;
        if let Err(refused) = standing.check(&payment, new.amount) {
            tx.rollback().await?;
            return Err(StoreError::NotRefundable(refused));
        }
        let open = &standing.open;
        let exception_id = match new.exception_id {
            Some(id) => match open.iter().find(|(open_id, _)| open_id == id) {
                Some((id, _)) => Some(id.clone()),
                None => {
                    tx.rollback().await?;
                    return Err(StoreError::Invalid(ValidationError::new(
                        "exception_id",
                        "no open exception with this id is about this payment",
                    )));
                }
            },
            None => {
                // The exception that holds its money: all of a held
                // payment, the excess of a transfer over the total.
                let holds = payment.holding_kind();
                open.iter()
                    .find(|(_, kind)| Some(*kind) == holds)
                    .map(|(id, _)| id.clone())
            }
        };
        let approval_free_below = (new.approval_free_below)(payment.agency_code.as_ref());
        let approved = new.amount.dong() < approval_free_below.dong();
        let id = format!("rf_{}", uuid::Uuid::now_v7().simple());
        sqlx::query(
            "INSERT INTO refunds (id, payment_id, agency_code, channel, amount, reason,
                 exception_id, status, requested_by, requested_at, decided_by, decided_at,
                 decision_note, next_check_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $10)",
        )
        .bind(&id)
        .bind(&payment.id)
        .bind(payment.agency_code.as_ref().map(AgencyCode::as_str))
        .bind(payment.channel.as_str())
        .bind(new.amount.dong())
        .bind(new.reason)
        .bind(exception_id.as_deref())
        .bind(if approved { "approved" } else { "requested" })
        .bind(&actor.name)
        .bind(now.to_stored())
        .bind(approved.then_some("system:approval-threshold"))
        .bind(approved.then(|| now.to_stored()))
        .bind(
            approved
                .then(|| format!("under {approval_free_below} đồng, no second officer is needed")),
        )
        .bind(approved.then(|| now.to_stored()))
        .execute(&mut tx.conn())
        .await?;
        let refund = refund_by_id(&mut tx.conn(), &id, "").await?;
        audited(
            &mut tx.conn(),
            actor,
            "refund.requested",
            &refund,
            None,
            now,
        )
        .await?;
        let body = render(&refund);
        idempotency::answer(request, 201, &body)
            .execute(&mut tx.conn())
            .await?;
        tx.commit().await?;
        Ok(Created {
            status: 201,
            body,
            created: true,
        })
    }

    /// A second officer's decision on requested refund `id` (in `scope`):
    /// approved or rejected, never by the officer who asked for it.
    pub async fn decide_refund(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        approve: bool,
        note: &str,
    ) -> Result<Refund, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let lock = self.row_lock(" FOR UPDATE OF r");
        let before = refund_in_scope(&mut tx.conn(), scope, id, lock).await?;
        let to = if approve {
            RefundStatus::Approved
        } else {
            RefundStatus::Rejected
        };
        if let Err(illegal) = before.status.move_to(to, false) {
            tx.rollback().await?;
            return Err(StoreError::RefundMove(illegal));
        }
        if before.requested_by == actor.name {
            tx.rollback().await?;
            return Err(StoreError::SameOfficer);
        }
        sqlx::query(
            "UPDATE refunds SET status = $1, decided_by = $2, decided_at = $3, decision_note = $4,
                 next_check_at = $5, updated_at = $3
             WHERE id = $6 AND status = 'requested'",
        )
        .bind(to.as_str())
        .bind(&actor.name)
        .bind(now.to_stored())
        .bind(note)
        .bind(approve.then(|| now.to_stored()))
        .bind(id)
        .execute(&mut tx.conn())
        .await?;
        let after = refund_by_id(&mut tx.conn(), id, "").await?;
        let action = if approve {
            "refund.approved"
        } else {
            "refund.rejected"
        };
        audited(
            &mut tx.conn(),
            actor,
            action,
            &after,
            Some(before.status),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Claims approved gateway refund `id` for sending, naming it
    /// `request_id` at the provider: the one process whose claim commits
    /// sends it, once. `None` when it is not an approved gateway refund
    /// (any more).
    pub async fn claim_refund(
        &self,
        id: &str,
        request_id: &str,
        check_at: Timestamp,
    ) -> Result<Option<ClaimedRefund>, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "UPDATE refunds SET status = 'submitted', request_id = $1, submitted_at = $2,
                 next_check_at = $3, updated_at = $2
             WHERE id = $4 AND status = 'approved' AND channel IN ('vnpay', 'momo', 'zalopay')",
        )
        .bind(request_id)
        .bind(now.to_stored())
        .bind(check_at.to_stored())
        .bind(id)
        .execute(&mut tx.conn())
        .await?;
        if claimed.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let refund = refund_by_id(&mut tx.conn(), id, "").await?;
        let payment = super::payments::payment_by_id(&mut tx.conn(), &refund.payment_id).await?;
        audited(
            &mut tx.conn(),
            &Actor::system("refunds"),
            "refund.submitted",
            &refund,
            Some(RefundStatus::Approved),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(ClaimedRefund { refund, payment }))
    }

    /// Records what the provider answered of submitted refund `id`.
    pub async fn record_refund_answer(
        &self,
        id: &str,
        outcome: &RefundOutcome<'_>,
    ) -> Result<Refund, StoreError> {
        let now = Timestamp::now();
        let actor = Actor::system("refunds");
        let mut tx = self.begin_write().await?;
        let lock = self.row_lock(" FOR UPDATE OF r");
        let before = refund_by_id(&mut tx.conn(), id, lock).await?;
        if before.status != RefundStatus::Submitted {
            // Finished meanwhile (by another process's answer): it stands.
            tx.rollback().await?;
            return Ok(before);
        }
        if outcome.status != RefundStatus::Submitted
            && let Err(illegal) = before.status.move_to(outcome.status, false)
        {
            tx.rollback().await?;
            return Err(StoreError::RefundMove(illegal));
        }
        sqlx::query(
            "UPDATE refunds SET status = $1, provider_refund_id = coalesce($2, provider_refund_id),
                 provider_code = $3, provider_message = $4, next_check_at = $5,
                 checks = checks + 1, completed_at = $6, updated_at = $7
             WHERE id = $8",
        )
        .bind(outcome.status.as_str())
        .bind(outcome.provider_refund_id)
        .bind(outcome.provider_code)
        .bind(outcome.message)
        .bind(outcome.next_check_at.map(|at| at.to_stored()))
        .bind(outcome.status.is_final().then(|| now.to_stored()))
        .bind(now.to_stored())
        .bind(id)
        .execute(&mut tx.conn())
        .await?;
        let after = refund_by_id(&mut tx.conn(), id, "").await?;
        if let Some(why) = outcome.distrusted {
            distrusted(&mut tx.conn(), &actor, &after, why, now).await?;
        }
        if after.status.is_final() {
            self.finished(&mut tx.conn(), &actor, &after, before.status, now)
                .await?;
        }
        tx.commit().await?;
        Ok(after)
    }

    /// Records how approved refund `id` (a bank transfer's or cash's) was
    /// paid back by hand: the bank's reference, or the counter's receipt.
    pub async fn complete_refund(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        reference: &str,
        paid_back_at: Timestamp,
    ) -> Result<Refund, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let lock = self.row_lock(" FOR UPDATE OF r");
        let before = refund_in_scope(&mut tx.conn(), scope, id, lock).await?;
        if before.channel.refunds_through_provider() {
            tx.rollback().await?;
            return Err(StoreError::RefundThroughProvider(before.channel));
        }
        if let Err(illegal) = before.status.move_to(RefundStatus::Succeeded, true) {
            tx.rollback().await?;
            return Err(StoreError::RefundMove(illegal));
        }
        sqlx::query(
            "UPDATE refunds SET status = 'succeeded', reference = $1, completed_by = $2,
                 completed_at = $3, next_check_at = NULL, updated_at = $4
             WHERE id = $5 AND status = 'approved'",
        )
        .bind(reference)
        .bind(&actor.name)
        .bind(paid_back_at.to_stored())
        .bind(now.to_stored())
        .bind(id)
        .execute(&mut tx.conn())
        .await?;
        let after = refund_by_id(&mut tx.conn(), id, "").await?;
        self.finished(&mut tx.conn(), actor, &after, before.status, now)
            .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// What follows a refund's end (from `before`), in its transaction:
    /// its audit record; a succeeded one gives back what it took of the
    /// money that paid the invoice ([`held_money::give_back`]) and
    /// resolves the exception it came from once nothing of the payment
    /// stays held; either tells the dossier system.
    async fn finished(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        refund: &Refund,
        before: RefundStatus,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let succeeded = refund.status == RefundStatus::Succeeded;
        let action = if succeeded {
            "refund.succeeded"
        } else {
            "refund.failed"
        };
        audited(conn, actor, action, refund, Some(before), now).await?;
        let payment = super::payments::payment_by_id(conn, &refund.payment_id).await?;
        let lock = self.row_lock(" FOR UPDATE OF i");
        let invoice = if succeeded {
            let refunded_before = refunded(conn, &payment.id, &refund.id).await?;
            let taken = from_applied(&payment, refunded_before, refund.amount);
            sqlx::query("UPDATE refunds SET from_applied = $1 WHERE id = $2")
                .bind(taken.dong())
                .bind(&refund.id)
                .execute(&mut *conn)
                .await?;
            let returned = refunded_before.dong() + refund.amount.dong();
            if let Some(exception_id) = &refund.exception_id
                && returned >= payment.held_amount().dong()
            {
                let note = format!("refund {}: {} đồng paid back", refund.id, refund.amount);
                exceptions::resolve_by(conn, actor, exception_id, Resolution::Refunded, &note, now)
                    .await?;
            }
            held_money::give_back(conn, lock, actor, refund, &payment, taken, now).await?
        } else {
            None
        };
        events::enqueue(
            conn,
            refund.agency_code.as_ref().map(AgencyCode::as_str),
            if succeeded {
                EventType::RefundSucceeded
            } else {
                EventType::RefundFailed
            },
            json!({
                "refund_id": refund.id,
                "payment_id": refund.payment_id,
                "invoice_id": payment.invoice_id,
                "channel": refund.channel,
                "amount": refund.amount,
                "status": refund.status,
                "provider_refund_id": refund.provider_refund_id,
                "reference": refund.reference,
                "completed_at": refund.completed_at,
                "invoice_status": invoice.map(|i| i.status),
                "invoice_amount_paid": invoice.map(|i| i.amount_paid),
            }),
            now,
        )
        .await
    }

    /// Refund `id`, which must be in `scope`.
    pub async fn get_refund(&self, scope: &Scope, id: &str) -> Result<Refund, StoreError> {
        let mut conn = self.pool.acquire().await?;
        refund_in_scope(&mut Conn::from(&mut *conn), scope, id, "").await
    }

    /// Refunds in `scope`, newest first.
    pub async fn list_refunds(
        &self,
        scope: &Scope,
        filter: &RefundFilter,
    ) -> Result<Listed<Refund>, StoreError> {
        let mut query = Filtered::new(SELECT_REFUNDS);
        self.scope_to(&mut query, scope, filter.agency_code.as_ref())
            .await?;
        if let Some(payment_id) = &filter.payment_id {
            query.and("r.payment_id = {}", Value::Text(payment_id.clone()));
        }
        if let Some(status) = filter.status {
            query.and("r.status = {}", Value::Text(status.as_str().to_owned()));
        }
        query.newest_first("r.id", filter.after_id.as_deref(), filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, filter.limit, refund_from_row, |r| r.id.clone())
    }

    /// Refunds for the janitor to move on, oldest first: approved gateway
    /// refunds nobody sent (their approver's process stopped), and
    /// submitted ones due to be asked about.
    pub async fn due_refunds(&self, now: Timestamp, limit: i64) -> Result<Vec<Refund>, StoreError> {
        let sql = format!(
            "{SELECT_REFUNDS} WHERE r.status IN ('approved', 'submitted')
                 AND r.channel IN ('vnpay', 'momo', 'zalopay') AND r.next_check_at <= $1
             ORDER BY r.next_check_at LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.to_stored())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(refund_from_row).collect()
    }
}

/// Raises, once per refund, that an answer about it was not trusted.
async fn distrusted(
    conn: &mut Conn<'_>,
    actor: &Actor,
    refund: &Refund,
    why: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let raised: Option<String> = sqlx::query_scalar(
        "SELECT id FROM payment_exceptions WHERE kind = 'refund_unconfirmed' AND payment_id = $1
             AND status = 'open'",
    )
    .bind(&refund.payment_id)
    .fetch_optional(&mut *conn)
    .await?;
    if raised.is_some() {
        return Ok(());
    }
    let code = refund.agency_code.as_ref().map(AgencyCode::as_str);
    let path = path_of(conn, code).await?;
    exceptions::raise(
        conn,
        actor,
        &Finding {
            kind: ExceptionKind::RefundUnconfirmed,
            payment_id: Some(&refund.payment_id),
            invoice_id: None,
            agency: code.zip(path.as_deref()),
            amount: Some(refund.amount),
            detail: format!(
                "refund {} of {} đồng: the provider's answer was not trusted ({why}); it stays submitted",
                refund.id, refund.amount
            ),
            settlement_line: None,
            dossier_code: None,
            tell_dossier_system: false,
        },
        now,
    )
    .await?;
    Ok(())
}

impl Store {
    /// How much of payment `payment_id` (in `scope`) may still be asked
    /// back (nothing while it is still being checked), in all and of the
    /// money it holds.
    pub async fn refund_left(
        &self,
        scope: &Scope,
        payment_id: &str,
    ) -> Result<RefundLeft, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut conn = Conn::from(&mut *conn);
        let payment = payment_in(&mut conn, scope, payment_id, "")
            .await?
            .ok_or(StoreError::NotFound)?;
        let standing = Standing::of(&mut conn, &payment).await?;
        let any = standing.check(&payment, Vnd::new(0)).unwrap_or(Vnd::new(0));
        let held = (payment.held_amount().dong() - standing.spoken_for.dong()).max(0);
        Ok(RefundLeft {
            any,
            held: Vnd::new(held.min(any.dong())),
        })
    }

    /// Refund `id`, whatever its scope: for lephi's own tasks.
    pub async fn refund(&self, id: &str) -> Result<Refund, StoreError> {
        let mut conn = self.pool.acquire().await?;
        refund_by_id(&mut Conn::from(&mut *conn), id, "").await
    }

    /// The payment `refund` gives money back from.
    pub async fn refunded_payment(&self, refund: &Refund) -> Result<Payment, StoreError> {
        let mut conn = self.pool.acquire().await?;
        super::payments::payment_by_id(&mut Conn::from(&mut *conn), &refund.payment_id).await
    }
}
