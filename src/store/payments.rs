//! Payments: money recorded exactly once. A payment, its effect on the
//! invoice, its exception, its events and its audit records are written in
//! one transaction (what they hold: [`super::recording`]; attempts to pay:
//! [`super::attempts`]).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;

use super::audit::{self, Change};
use super::batch::{Batch, Part, Statement};
use super::endpoints::bank_account_of;
use super::events::{self, NewEvent};
use super::exceptions;
use super::idempotency::{self, Created, IdempotentRequest};
use super::invoices::{invoice_in_scope, invoice_of_attempt, invoice_where};
use super::query::{Filtered, Listed, Value, page};
use super::receipts::take_receipt_number;
use super::recording::{applied, as_found, excess_held, held, invoice_changed, received, recorded};
use super::{Backend, Store, StoreError, parse_optional_time, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{
    Channel, ExceptionKind, ExceptionStatus, Payment, PaymentException, PaymentSource, Resolution,
    Resolved, classify,
};
use crate::domain::receipt::{MAX_RECEIPT_NUMBER, ReceiptPolicy, vietnam_year};
use crate::domain::settlement::local_day;
use crate::domain::{AgencyCode, Invoice, InvoiceStatus, PaymentCode, Scope, Timestamp, Vnd};

/// What a received payment was for.
pub enum PaymentFor<'a> {
    /// The reference of an attempt on the payment's channel.
    Order(&'a str),
    /// A bank transfer: the payment code found in its note, if any, and
    /// the receiving account.
    Transfer {
        note: &'a str,
        code: Option<&'a PaymentCode>,
        account_number: Option<&'a str>,
    },
    /// An invoice named directly, by an officer in `scope`.
    Invoice { scope: &'a Scope, id: &'a str },
}

/// Money received, as a provider or an officer reports it.
pub struct IncomingPayment<'a> {
    pub channel: Channel,
    pub provider_txn_id: &'a str,
    pub amount: Vnd,
    pub paid_for: PaymentFor<'a>,
    pub paid_at: Option<Timestamp>,
    pub source: PaymentSource,
}

/// A payment as stored, and whether this call stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub payment: Payment,
    /// False when the same transaction was recorded before.
    pub new: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub invoice_id: Option<String>,
    pub channel: Option<Channel>,
    pub agency_code: Option<AgencyCode>,
    pub recorded_from: Option<Timestamp>,
    pub recorded_to: Option<Timestamp>,
    pub after_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ExceptionFilter {
    pub kind: Option<ExceptionKind>,
    pub status: Option<ExceptionStatus>,
    pub agency_code: Option<AgencyCode>,
    pub opened_from: Option<Timestamp>,
    pub opened_to: Option<Timestamp>,
    pub after_id: Option<String>,
    pub limit: i64,
}

pub(super) const SELECT_PAYMENTS: &str = concat!(
    "SELECT p.id, p.channel, p.provider_txn_id, p.amount, p.invoice_id,
        p.attempt_id, p.agency_code, p.reference, p.exception_kind, p.amount_held, p.source,
        p.paid_at, p.recorded_at, ",
    name_of!("p.recorded_by"),
    " AS recorded_by_name
     FROM payments p LEFT JOIN agencies a ON a.code = p.agency_code"
);

pub(super) fn payment_from_row(row: &AnyRow) -> Result<Payment, StoreError> {
    let channel: String = row.try_get("channel")?;
    let source: String = row.try_get("source")?;
    let exception: Option<String> = row.try_get("exception_kind")?;
    Ok(Payment {
        id: row.try_get("id")?,
        channel: Channel::parse(&channel)
            .ok_or_else(|| StoreError::corrupt(format!("payment channel {channel:?}")))?,
        provider_txn_id: row.try_get("provider_txn_id")?,
        amount: Vnd::new(row.try_get("amount")?),
        invoice_id: row.try_get("invoice_id")?,
        attempt_id: row.try_get("attempt_id")?,
        agency_code: row
            .try_get::<Option<String>, _>("agency_code")?
            .map(AgencyCode::from_stored),
        reference: row.try_get("reference")?,
        exception: exception
            .map(|kind| {
                ExceptionKind::parse(&kind)
                    .ok_or_else(|| StoreError::corrupt(format!("exception kind {kind:?}")))
            })
            .transpose()?,
        excess: Vnd::new(row.try_get("amount_held")?),
        source: PaymentSource::parse(&source)
            .ok_or_else(|| StoreError::corrupt(format!("payment source {source:?}")))?,
        paid_at: parse_optional_time(row, "paid_at")?,
        recorded_at: parse_time(row, "recorded_at")?,
        recorded_by_name: row.try_get("recorded_by_name")?,
    })
}

pub(super) const SELECT_EXCEPTIONS: &str = concat!(
    "SELECT x.id, x.kind, x.status, x.payment_id, x.invoice_id,
        x.agency_code, x.amount, x.detail, x.opened_at, x.settlement_file_id, x.settlement_line_no,
        x.dossier_code, x.resolution, x.resolution_note, x.resolved_payment_id, x.resolved_by,
        x.resolved_at, ",
    name_of!("x.resolved_by"),
    " AS resolved_by_name
     FROM payment_exceptions x LEFT JOIN agencies a ON a.code = x.agency_code"
);

pub(super) fn exception_from_row(row: &AnyRow) -> Result<PaymentException, StoreError> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let file_id: Option<String> = row.try_get("settlement_file_id")?;
    let line_no: Option<i64> = row.try_get("settlement_line_no")?;
    let resolution: Option<String> = row.try_get("resolution")?;
    let resolved = match resolution {
        Some(resolution) => Some(Resolved {
            resolution: Resolution::parse(&resolution)
                .ok_or_else(|| StoreError::corrupt(format!("resolution {resolution:?}")))?,
            note: row
                .try_get::<Option<String>, _>("resolution_note")?
                .unwrap_or_default(),
            payment_id: row.try_get("resolved_payment_id")?,
            by: row
                .try_get::<Option<String>, _>("resolved_by")?
                .unwrap_or_default(),
            by_name: row.try_get("resolved_by_name")?,
            at: parse_optional_time(row, "resolved_at")?
                .ok_or_else(|| StoreError::corrupt("a resolution without its time"))?,
        }),
        None => None,
    };
    Ok(PaymentException {
        id: row.try_get("id")?,
        kind: ExceptionKind::parse(&kind)
            .ok_or_else(|| StoreError::corrupt(format!("exception kind {kind:?}")))?,
        status: ExceptionStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("exception status {status:?}")))?,
        payment_id: row.try_get("payment_id")?,
        invoice_id: row.try_get("invoice_id")?,
        agency_code: row
            .try_get::<Option<String>, _>("agency_code")?
            .map(AgencyCode::from_stored),
        amount: row.try_get::<Option<i64>, _>("amount")?.map(Vnd::new),
        detail: row.try_get("detail")?,
        opened_at: parse_time(row, "opened_at")?,
        settlement_line: file_id.zip(line_no),
        dossier_code: row.try_get("dossier_code")?,
        resolved,
    })
}

/// What a payment was matched to inside its transaction.
struct Matched {
    invoice: Option<(Invoice, String)>,
    attempt_id: Option<String>,
    /// The agency, even when no invoice matched (from a bank account).
    agency: Option<(AgencyCode, String)>,
    /// A transfer naming the invoice that arrived on another account.
    wrong_account: bool,
}

/// Finds, and on PostgreSQL locks, the invoice a payment is for. Locking
/// the invoice serialises every payment for it, so that two providers
/// paying at once see each other.
async fn match_payment(
    conn: &mut Conn<'_>,
    lock: &str,
    channel: Channel,
    paid_for: &PaymentFor<'_>,
    unattributed: Option<&str>,
) -> Result<Matched, StoreError> {
    let unmatched = Matched {
        invoice: None,
        attempt_id: None,
        agency: None,
        wrong_account: false,
    };
    let (invoice, attempt_id) = match paid_for {
        PaymentFor::Order(order_ref) => {
            match invoice_of_attempt(conn, channel.as_str(), order_ref, lock).await? {
                Some((attempt_id, invoice, path)) => (Some((invoice, path)), Some(attempt_id)),
                None => {
                    return Ok(Matched {
                        agency: unattributed_agency(conn, unattributed).await?,
                        ..unmatched
                    });
                }
            }
        }
        PaymentFor::Transfer {
            code,
            account_number,
            ..
        } => {
            let invoice = match code {
                Some(code) => invoice_where(conn, "payment_code", code.as_str(), lock).await?,
                None => None,
            };
            // The receiving account says whose money it is, even when the
            // note names no invoice or another agency's.
            let receiver = match account_number {
                Some(number) => agency_of_account(conn, number).await?,
                None => None,
            };
            let Some((invoice, path)) = invoice else {
                let agency = match receiver {
                    Some(receiver) => Some(receiver),
                    None => unattributed_agency(conn, unattributed).await?,
                };
                return Ok(Matched {
                    agency,
                    ..unmatched
                });
            };
            let wrong_account = match account_number {
                Some(number) => bank_account_of(conn, invoice.agency_code.as_str())
                    .await?
                    .is_none_or(|account| account.account_number != *number),
                None => false,
            };
            if wrong_account {
                let agency = receiver.or_else(|| Some((invoice.agency_code.clone(), path.clone())));
                return Ok(Matched {
                    invoice: Some((invoice, path)),
                    attempt_id: None,
                    agency,
                    wrong_account: true,
                });
            }
            (Some((invoice, path)), None)
        }
        PaymentFor::Invoice { scope, id } => {
            let row = invoice_in_scope(conn, scope, id, lock).await?;
            let invoice = super::invoices::invoice_from_row(&row)?;
            (Some((invoice, row.try_get("agency_path")?)), None)
        }
    };
    let agency = invoice
        .as_ref()
        .map(|(invoice, path)| (invoice.agency_code.clone(), path.clone()));
    Ok(Matched {
        invoice,
        attempt_id,
        agency,
        wrong_account: false,
    })
}

/// The one agency that receives transfers on `account_number`, if exactly one does.
/// Whose officers see money that names no invoice and came on no account
/// of an agency (a gateway's payment for an unknown order): the agency
/// `configured` (`providers.unattributed_agency`), or else the only
/// top-level agency, the province the service runs for; none when there
/// are several (then only an unscoped admin sees it).
async fn unattributed_agency(
    conn: &mut Conn<'_>,
    configured: Option<&str>,
) -> Result<Option<(AgencyCode, String)>, StoreError> {
    let rows = match configured {
        Some(code) => {
            sqlx::query("SELECT code, path FROM agencies WHERE code = $1")
                .bind(code)
                .fetch_all(&mut *conn)
                .await?
        }
        None => {
            sqlx::query("SELECT code, path FROM agencies WHERE parent_code IS NULL LIMIT 2")
                .fetch_all(&mut *conn)
                .await?
        }
    };
    match rows.as_slice() {
        [row] => Ok(Some((
            AgencyCode::from_stored(row.try_get("code")?),
            row.try_get("path")?,
        ))),
        _ => Ok(None),
    }
}

async fn agency_of_account(
    conn: &mut Conn<'_>,
    account_number: &str,
) -> Result<Option<(AgencyCode, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT b.agency_code, a.path FROM agency_bank_accounts b
         JOIN agencies a ON a.code = b.agency_code WHERE b.account_number = $1 LIMIT 2",
    )
    .bind(account_number)
    .fetch_all(conn)
    .await?;
    match rows.as_slice() {
        [row] => Ok(Some((
            AgencyCode::from_stored(row.try_get("agency_code")?),
            row.try_get("path")?,
        ))),
        _ => Ok(None),
    }
}

async fn find_payment(
    conn: &mut Conn<'_>,
    channel: Channel,
    provider_txn_id: &str,
) -> Result<Payment, StoreError> {
    let sql = format!("{SELECT_PAYMENTS} WHERE p.channel = $1 AND p.provider_txn_id = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(channel.as_str())
        .bind(provider_txn_id)
        .fetch_one(conn)
        .await?;
    payment_from_row(&row)
}

/// The payment with id `id`.
pub(super) async fn payment_by_id(conn: &mut Conn<'_>, id: &str) -> Result<Payment, StoreError> {
    let sql = format!("{SELECT_PAYMENTS} WHERE p.id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    payment_from_row(&row)
}

macro_rules! insert_payment {
    () => {
        "INSERT INTO payments (id, channel, provider_txn_id, amount,
         invoice_id, attempt_id, agency_code, reference, exception_kind, source, paid_at,
         recorded_at, recorded_by, collected_on, procedure_code, amount_held)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
     ON CONFLICT (channel, provider_txn_id) DO NOTHING"
    };
}

const INSERT_PAYMENT: &str = insert_payment!();

/// On PostgreSQL: [`INSERT_PAYMENT`], and when it inserts, the next number
/// of the receipt series of agency `$17` for year `$18` (none when the
/// series has given `$19`), by the upsert `receipts::take_number` runs.
const INSERT_PAYMENT_TAKING_RECEIPT_NUMBER: &str = concat!(
    "WITH p AS (",
    insert_payment!(),
    " RETURNING 1), n AS (",
    take_receipt_number!("SELECT $17, $18, 1 FROM p", "$19"),
    ") SELECT (SELECT count(*) FROM p) AS inserted, (SELECT last_number FROM n) AS number"
);

/// On SQLite, the same as two statements sent together: the second takes
/// the number only if the first inserted the payment (`changes()` counts
/// the rows the statement before it changed).
const INSERT_PAYMENT_THEN_RECEIPT_NUMBER: &str = concat!(
    insert_payment!(),
    ";\n",
    take_receipt_number!("SELECT $17, $18, 1 WHERE changes() = 1", "$19"),
);

/// Runs [`INSERT_PAYMENT_THEN_RECEIPT_NUMBER`]: whether the payment was
/// inserted, and the number it took.
async fn inserted_then_number(
    tx: &mut Conn<'_>,
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
) -> Result<(bool, Option<i64>), StoreError> {
    use futures_util::TryStreamExt;
    use sqlx::Executor;
    let mut steps = tx.fetch_many(query);
    let mut counts = Vec::with_capacity(2);
    let mut number = None;
    while let Some(step) = steps.try_next().await? {
        match step {
            sqlx::Either::Left(done) => counts.push(done.rows_affected()),
            sqlx::Either::Right(row) => number = Some(row.try_get::<i64, _>("last_number")?),
        }
    }
    match counts.as_slice() {
        [inserted, _] => Ok((*inserted == 1, number)),
        _ => Err(StoreError::corrupt(format!(
            "a payment insert and its receipt number answered for {} statements",
            counts.len()
        ))),
    }
}

/// A payment's row, as [`INSERT_PAYMENT`] binds it.
struct PaymentRow<'a> {
    payment: &'a Payment,
    recorded_by: &'a str,
    collected_on: &'a str,
    procedure_code: Option<&'a str>,
}

impl<'a> PaymentRow<'a> {
    fn bind(
        &self,
        query: sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'a, sqlx::Any, sqlx::any::AnyArguments> {
        let payment = self.payment;
        query
            .bind(payment.id.as_str())
            .bind(payment.channel.as_str())
            .bind(payment.provider_txn_id.as_str())
            .bind(payment.amount.dong())
            .bind(payment.invoice_id.as_deref())
            .bind(payment.attempt_id.as_deref())
            .bind(payment.agency_code.as_ref().map(AgencyCode::as_str))
            .bind(payment.reference.as_str())
            .bind(payment.exception.map(ExceptionKind::as_str))
            .bind(payment.source.as_str())
            .bind(payment.paid_at.map(Timestamp::to_stored))
            .bind(payment.recorded_at.to_stored())
            .bind(self.recorded_by)
            .bind(self.collected_on)
            .bind(self.procedure_code)
            .bind(payment.excess.dong())
    }
}

fn reference_of(paid_for: &PaymentFor<'_>) -> String {
    match paid_for {
        PaymentFor::Order(order_ref) => (*order_ref).to_owned(),
        PaymentFor::Transfer { note, .. } => (*note).to_owned(),
        PaymentFor::Invoice { id, .. } => (*id).to_owned(),
    }
}

impl Store {
    /// Records a payment exactly once per `(channel, provider_txn_id)`. In
    /// one transaction: the payment; if it settles an open invoice exactly,
    /// the invoice's new amount and status; otherwise an open exception;
    /// the events for the dossier system; the audit records. The same
    /// transaction reported again changes nothing and returns the payment
    /// as first recorded.
    pub async fn record_payment(
        &self,
        actor: &Actor,
        incoming: &IncomingPayment<'_>,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.begin_write().await?;
        let recorded = self.record_in(&mut tx.conn(), actor, incoming).await?;
        if recorded.new {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(recorded)
    }

    /// [`Store::record_payment`] inside the caller's transaction. When the
    /// payment was recorded before, nothing is written.
    pub(super) async fn record_in(
        &self,
        tx: &mut Conn<'_>,
        actor: &Actor,
        incoming: &IncomingPayment<'_>,
    ) -> Result<Recorded, StoreError> {
        let now = Timestamp::now();
        let lock = self.row_lock(" FOR UPDATE OF i");
        let matched = match_payment(
            tx,
            lock,
            incoming.channel,
            &incoming.paid_for,
            self.unattributed.as_deref(),
        )
        .await?;
        let invoice = match matched.invoice {
            Some((invoice, path)) => {
                let found = as_found(
                    tx,
                    actor,
                    invoice,
                    &path,
                    incoming.paid_at,
                    (incoming.amount, incoming.channel),
                    !matched.wrong_account,
                    now,
                )
                .await?;
                Some((found, path))
            }
            None => None,
        };
        let verdict = if matched.wrong_account {
            Err(ExceptionKind::WrongAccount)
        } else {
            classify(
                invoice
                    .as_ref()
                    .map(|(i, _)| (i.status, i.total, i.amount_paid)),
                incoming.amount,
                incoming.channel,
            )
        };
        let payment = Payment {
            id: uuid::Uuid::now_v7().to_string(),
            channel: incoming.channel,
            provider_txn_id: incoming.provider_txn_id.to_owned(),
            amount: incoming.amount,
            invoice_id: invoice.as_ref().map(|(i, _)| i.id.clone()),
            attempt_id: matched.attempt_id.clone(),
            agency_code: matched.agency.as_ref().map(|(code, _)| code.clone()),
            reference: reference_of(&incoming.paid_for),
            exception: verdict.err(),
            excess: verdict.unwrap_or(Vnd::new(0)),
            source: incoming.source,
            paid_at: incoming.paid_at,
            recorded_at: now,
            recorded_by_name: actor.display.clone(),
        };
        // A payment that settles its invoice takes the invoice's receipt
        // number with the statement that inserts it, and only if it does.
        let receipt_series = match (&verdict, &invoice) {
            (Ok(_), Some((invoice, _)))
                if invoice.total.checked_sub(invoice.amount_paid)
                    == Some(payment.applied_amount()) =>
            {
                Some(invoice.agency_code.as_str())
            }
            _ => None,
        };
        let collected_on = local_day(payment.collected_at());
        let procedure_code = invoice.as_ref().map(|(i, _)| i.procedure_code.as_str());
        let values = PaymentRow {
            payment: &payment,
            recorded_by: &actor.name,
            collected_on: &collected_on,
            procedure_code,
        };
        let (inserted, taken) = match receipt_series {
            Some(agency_code) => {
                let query = |sql| {
                    values
                        .bind(sqlx::query(sql))
                        .bind(agency_code)
                        .bind(i64::from(vietnam_year(now)))
                        .bind(MAX_RECEIPT_NUMBER)
                };
                let (inserted, number) = match self.backend {
                    Backend::Postgres => {
                        let row = query(INSERT_PAYMENT_TAKING_RECEIPT_NUMBER)
                            .fetch_one(&mut *tx)
                            .await?;
                        let inserted: i64 = row.try_get("inserted")?;
                        (inserted == 1, row.try_get("number")?)
                    }
                    Backend::Sqlite => {
                        inserted_then_number(tx, query(INSERT_PAYMENT_THEN_RECEIPT_NUMBER)).await?
                    }
                };
                (inserted, Some(super::receipts::Taken(number)))
            }
            None => {
                let done = values
                    .bind(sqlx::query(INSERT_PAYMENT))
                    .execute(&mut *tx)
                    .await?;
                (done.rows_affected() == 1, None)
            }
        };
        if !inserted {
            // Recorded before: answer with the payment as it was recorded.
            let existing = find_payment(tx, incoming.channel, incoming.provider_txn_id).await?;
            return Ok(Recorded {
                payment: existing,
                new: false,
            });
        }
        let agency = matched
            .agency
            .as_ref()
            .map(|(code, path)| (code.as_str(), path.as_str()));
        // The payment's audit record and event, with the invoice's when it
        // is applied, are written together at the end: one statement each.
        let recorded_change = recorded(&payment, agency, now);
        let received_event = received(
            &payment,
            agency,
            invoice.as_ref().map(|(i, _)| i),
            matched.wrong_account,
        );
        // What is left to write needs back only row counts: one batch.
        let mut writes = Batch::new();
        if let Some(attempt_id) = &payment.attempt_id {
            writes.push(
                Statement::new(
                    "UPDATE payment_attempts SET status = 'succeeded', updated_at = $1
                     WHERE id = $2 AND status <> 'succeeded'",
                )
                .bind(now.to_stored())
                .bind(attempt_id),
            );
        }
        match (verdict, invoice) {
            (Ok(excess), Some((invoice, path))) => {
                let applied = apply_to_invoice(
                    tx,
                    &mut writes,
                    &self.receipts,
                    (&invoice, &path),
                    &payment,
                    taken,
                    now,
                )
                .await?;
                writes.extend(audit::insert(actor, &[recorded_change, applied.change]));
                let events = std::iter::once(received_event)
                    .chain(applied.event)
                    .collect();
                writes.extend(events::insert(events, now));
                let changed = writes.execute(tx, self.backend).await?;
                if changed.rows(applied.invoice_updated) != 1 {
                    // The invoice is locked and was open: this cannot
                    // happen, and if it does the whole transaction is
                    // abandoned.
                    return Err(StoreError::corrupt("a locked open invoice was not open"));
                }
                if excess.dong() > 0 {
                    let owed = payment.applied_amount();
                    exceptions::raise(tx, actor, &excess_held(&payment, owed, agency), now).await?;
                }
            }
            (Err(kind), invoice) => {
                writes.extend(audit::insert(actor, &[recorded_change]));
                writes.extend(events::insert(vec![received_event], now));
                writes.execute(tx, self.backend).await?;
                let owed = invoice
                    .as_ref()
                    .and_then(|(i, _)| i.total.checked_sub(i.amount_paid));
                open_exception(tx, actor, &payment, kind, owed, agency, now).await?;
            }
            (Ok(_), None) => {
                return Err(StoreError::corrupt("a payment was applied to no invoice"));
            }
        }
        Ok(Recorded { payment, new: true })
    }

    /// Records cash received at the counter, once per idempotency key: the
    /// key, the payment and the stored answer (made by `render`) are
    /// written in one transaction. The same receipt recorded before under
    /// another key answers with the payment as first recorded; the receipt
    /// number recorded for another invoice or amount is refused.
    pub async fn record_cash_payment(
        &self,
        actor: &Actor,
        request: &IdempotentRequest<'_>,
        incoming: &IncomingPayment<'_>,
        render: impl FnOnce(&Payment) -> String,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        if !idempotency::claim(&mut tx.conn(), request, Timestamp::now()).await? {
            // Wait for the write that took the key to be committed.
            tx.rollback().await?;
            return self.replay_taken(request).await;
        }
        let recorded = self.record_in(&mut tx.conn(), actor, incoming).await?;
        let same_receipt = match incoming.paid_for {
            PaymentFor::Invoice { id, .. } => {
                recorded.payment.invoice_id.as_deref() == Some(id)
                    && recorded.payment.amount == incoming.amount
                    && recorded.payment.paid_at == incoming.paid_at
            }
            _ => false,
        };
        if !recorded.new && !same_receipt {
            // The payment that has the receipt number may be a batch-mate's:
            // refuse once it is committed.
            tx.rollback().await?;
            return Err(StoreError::ReceiptNumberTaken {
                payment_id: recorded.payment.id,
            });
        }
        let status = if recorded.new { 201 } else { 200 };
        let body = render(&recorded.payment);
        idempotency::answer(request, status, &body)
            .execute(&mut tx.conn())
            .await?;
        tx.commit().await?;
        Ok(Created {
            status,
            body,
            created: recorded.new,
        })
    }

    /// Payments in `scope` (a payment whose agency is unknown is seen only
    /// by an unscoped key), newest first.
    pub async fn list_payments(
        &self,
        scope: &Scope,
        filter: &PaymentFilter,
    ) -> Result<Listed<Payment>, StoreError> {
        let mut query = Filtered::new(SELECT_PAYMENTS);
        self.scope_to(&mut query, scope, filter.agency_code.as_ref())
            .await?;
        if let Some(invoice_id) = &filter.invoice_id {
            query.and("p.invoice_id = {}", Value::Text(invoice_id.clone()));
        }
        if let Some(channel) = filter.channel {
            query.and("p.channel = {}", Value::Text(channel.as_str().to_owned()));
        }
        query
            .during("p.recorded_at", filter.recorded_from, filter.recorded_to)
            .newest_first("p.id", filter.after_id.as_deref(), filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, filter.limit, payment_from_row, |p| p.id.clone())
    }

    /// The payments of invoice `id`, which must be in `scope`.
    pub async fn invoice_payments(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        invoice_in_scope(&mut Conn::from(&mut *conn), scope, id, "").await?;
        let sql = format!("{SELECT_PAYMENTS} WHERE p.invoice_id = $1 ORDER BY p.id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Exceptions in `scope`, newest first.
    pub async fn list_exceptions(
        &self,
        scope: &Scope,
        filter: &ExceptionFilter,
    ) -> Result<Listed<PaymentException>, StoreError> {
        let mut query = Filtered::new(SELECT_EXCEPTIONS);
        self.scope_to(&mut query, scope, filter.agency_code.as_ref())
            .await?;
        if let Some(kind) = filter.kind {
            query.and("x.kind = {}", Value::Text(kind.as_str().to_owned()));
        }
        if let Some(status) = filter.status {
            query.and("x.status = {}", Value::Text(status.as_str().to_owned()));
        }
        query
            .during("x.opened_at", filter.opened_from, filter.opened_to)
            .newest_first("x.id", filter.after_id.as_deref(), filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        page(&rows, filter.limit, exception_from_row, |x| x.id.clone())
    }

    /// Limits `query` (over a table joined to agencies as `a`) to `scope`,
    /// and to the subtree of `agency_code` if given.
    pub(super) async fn scope_to(
        &self,
        query: &mut Filtered,
        scope: &Scope,
        agency_code: Option<&AgencyCode>,
    ) -> Result<(), StoreError> {
        // Rows without an agency have the root's path: only an unscoped
        // key sees them.
        query.and(
            "substr(coalesce(a.path, '/'), 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        if let Some(code) = agency_code {
            let mut conn = self.pool.acquire().await?;
            let agency =
                super::agencies::find_in_scope(&mut Conn::from(&mut *conn), scope, code.as_str())
                    .await?;
            query.and(
                "substr(a.path, 1, length({})) = {}",
                Value::Text(agency.path),
            );
        }
        Ok(())
    }
}

/// What applying a payment to its invoice leaves to write: the invoice's
/// audit record and, when paid, its `invoice.paid` event.
struct Applied<'a> {
    change: Change<'a>,
    event: Option<NewEvent<'a>>,
    /// The invoice's update in the batch, which must change one row.
    invoice_updated: Part,
}

/// Adds a payment that settles what `invoice` owes, and marks it paid when
/// covered, with its receipt (on `receipts`' forms, numbered `taken` if the
/// payment's insert took the number): the writes go to `writes`, and what
/// the caller writes with the payment's comes back.
async fn apply_to_invoice<'a>(
    conn: &mut Conn<'_>,
    writes: &mut Batch,
    receipts: &ReceiptPolicy,
    (invoice, agency_path): (&'a Invoice, &'a str),
    payment: &Payment,
    taken: Option<super::receipts::Taken>,
    now: Timestamp,
) -> Result<Applied<'a>, StoreError> {
    let mut after = applied(invoice, payment, now)?;
    let invoice_updated = writes.push(
        Statement::new(
            "UPDATE invoices SET amount_paid = $1, status = $2, updated_at = $3
             WHERE id = $4 AND status IN ('open', 'expired')",
        )
        .bind(after.amount_paid.dong())
        .bind(after.status.as_str())
        .bind(now.to_stored())
        .bind(&invoice.id),
    );
    if after.status == InvoiceStatus::Paid {
        let taken = match taken {
            Some(taken) => taken,
            None => super::receipts::take_number(conn, invoice, now).await?,
        };
        after.receipt = Some(super::receipts::issue(
            writes, receipts, invoice, payment, taken, now,
        )?);
    }
    let (change, event) = invoice_changed((invoice, agency_path), &after, payment, now);
    Ok(Applied {
        change,
        event,
        invoice_updated,
    })
}

/// Opens an exception for a payment that was not applied, with its event.
async fn open_exception(
    conn: &mut Conn<'_>,
    actor: &Actor,
    payment: &Payment,
    kind: ExceptionKind,
    owed: Option<Vnd>,
    agency: Option<(&str, &str)>,
    now: Timestamp,
) -> Result<(), StoreError> {
    exceptions::raise(conn, actor, &held(payment, kind, owed, agency), now).await?;
    Ok(())
}
