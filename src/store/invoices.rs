//! Invoices: issued once per idempotency key, at most one open per dossier,
//! status only moving forward.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;

use super::agencies::find_in_scope;
use super::audit::{self, Change};
use super::batch::{Batch, Statement};
use super::idempotency::{self, Created, IdempotentRequest};
use super::query::{Filtered, Listed, Value, page};
use super::{Backend, Store, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::invoice::{FeeLine, Payer};
use crate::domain::receipt::Receipt;
use crate::domain::{
    Agency, AgencyCode, Invoice, InvoiceStatus, NewInvoice, PaymentCode, Scope, Timestamp, Vnd,
};

#[derive(Debug, Clone, Default)]
pub struct InvoiceFilter {
    pub dossier_code: Option<String>,
    pub status: Option<InvoiceStatus>,
    pub agency_code: Option<AgencyCode>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    /// Only invoices older than this id: the cursor of the previous page.
    pub after_id: Option<String>,
    pub limit: i64,
}

/// How an invoice appears in its audit records: amounts and status, not
/// the payer's personal data.
#[derive(Serialize)]
pub(super) struct AuditedInvoice<'a> {
    status: InvoiceStatus,
    total: Vnd,
    amount_paid: Vnd,
    dossier_code: &'a str,
    payment_code: &'a str,
    expires_at: Timestamp,
    /// Once issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    receipt: Option<&'a Receipt>,
}

impl<'a> From<&'a Invoice> for AuditedInvoice<'a> {
    fn from(invoice: &'a Invoice) -> Self {
        AuditedInvoice {
            status: invoice.status,
            total: invoice.total,
            amount_paid: invoice.amount_paid,
            dossier_code: &invoice.dossier_code,
            payment_code: invoice.payment_code.as_str(),
            expires_at: invoice.expires_at,
            receipt: invoice.receipt.as_ref(),
        }
    }
}

macro_rules! select_invoices {
    () => {
        "SELECT i.id, i.payment_code, i.status, i.total, i.amount_paid, i.agency_code,
                i.dossier_code, i.procedure_code, i.procedure_name, i.payer_name,
                i.payer_id_number, i.payer_phone, i.payer_email, i.lines,
                i.created_at, i.expires_at, i.updated_at, a.path AS agency_path,
                r.form_number AS receipt_form_number, r.symbol AS receipt_symbol,
                r.number AS receipt_number, r.year AS receipt_year,
                r.payment_id AS receipt_payment_id, r.issued_at AS receipt_issued_at
         FROM invoices i JOIN agencies a ON a.code = i.agency_code
         LEFT JOIN receipts r ON r.invoice_id = i.id"
    };
}
pub(super) use select_invoices;

pub(super) fn invoice_from_row(row: &AnyRow) -> Result<Invoice, StoreError> {
    let status: String = row.try_get("status")?;
    let code: String = row.try_get("payment_code")?;
    let lines: String = row.try_get("lines")?;
    Ok(Invoice {
        id: row.try_get("id")?,
        payment_code: PaymentCode::parse(&code).map_err(StoreError::corrupt)?,
        status: InvoiceStatus::parse(&status)
            .ok_or_else(|| StoreError::corrupt(format!("invoice status {status:?}")))?,
        total: Vnd::new(row.try_get("total")?),
        amount_paid: Vnd::new(row.try_get("amount_paid")?),
        agency_code: AgencyCode::from_stored(row.try_get("agency_code")?),
        dossier_code: row.try_get("dossier_code")?,
        procedure_code: row.try_get("procedure_code")?,
        procedure_name: row.try_get("procedure_name")?,
        payer: Payer {
            name: row.try_get("payer_name")?,
            id_number: row.try_get("payer_id_number")?,
            phone: row.try_get("payer_phone")?,
            email: row.try_get("payer_email")?,
        },
        lines: serde_json::from_str::<Vec<FeeLine>>(&lines).map_err(StoreError::corrupt)?,
        created_at: parse_time(row, "created_at")?,
        expires_at: parse_time(row, "expires_at")?,
        updated_at: parse_time(row, "updated_at")?,
        receipt: super::receipts::receipt_from_row(row, "receipt_")?,
    })
}

/// Moves an open invoice to `to` if it is still open; records the change.
/// Returns the invoice as it now is, or `None` if another transaction moved
/// it first.
async fn leave_open(
    conn: &mut Conn<'_>,
    actor: &Actor,
    invoice: &Invoice,
    agency_path: &str,
    to: InvoiceStatus,
    now: Timestamp,
) -> Result<Option<Invoice>, StoreError> {
    let moved = sqlx::query(
        "UPDATE invoices SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'open'",
    )
    .bind(to.as_str())
    .bind(now.to_stored())
    .bind(&invoice.id)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok(None);
    }
    let after = Invoice {
        status: to,
        updated_at: now,
        ..invoice.clone()
    };
    audit::record(
        conn,
        actor,
        Change {
            action: match to {
                InvoiceStatus::Cancelled => "invoice.cancelled",
                InvoiceStatus::Expired => "invoice.expired",
                InvoiceStatus::Paid => "invoice.paid",
                InvoiceStatus::Open => "invoice.opened",
            },
            object_type: "invoice",
            object_id: &invoice.id,
            agency: Some((invoice.agency_code.as_str(), agency_path)),
            before: audit::state(&AuditedInvoice::from(invoice)),
            after: audit::state(&AuditedInvoice::from(&after)),
            at: now,
        },
    )
    .await?;
    Ok(Some(after))
}

/// Stores the invoice's expiry if it is open and past it, so that no
/// reader or writer acts on a stale `open`.
pub(super) async fn expire_if_due(
    conn: &mut Conn<'_>,
    actor: &Actor,
    invoice: Invoice,
    agency_path: &str,
    now: Timestamp,
) -> Result<Invoice, StoreError> {
    if invoice.status_at(now) != InvoiceStatus::Expired || invoice.status != InvoiceStatus::Open {
        return Ok(invoice);
    }
    match leave_open(
        conn,
        actor,
        &invoice,
        agency_path,
        InvoiceStatus::Expired,
        now,
    )
    .await?
    {
        Some(expired) => Ok(expired),
        None => current_status(conn, invoice).await,
    }
}

/// The invoice with its status as now stored, after another transaction
/// moved it out of `open` first.
async fn current_status(conn: &mut Conn<'_>, invoice: Invoice) -> Result<Invoice, StoreError> {
    let status: String = sqlx::query_scalar("SELECT status FROM invoices WHERE id = $1")
        .bind(&invoice.id)
        .fetch_one(conn)
        .await?;
    let status = InvoiceStatus::parse(&status)
        .ok_or_else(|| StoreError::corrupt(format!("invoice status {status:?}")))?;
    Ok(Invoice { status, ..invoice })
}

/// The row of invoice `id` if it lies in `scope`; `lock` is appended as the
/// row-locking clause (empty on SQLite, where the write lock is already held).
pub(super) async fn invoice_in_scope(
    conn: &mut Conn<'_>,
    scope: &Scope,
    id: &str,
    lock: &str,
) -> Result<AnyRow, StoreError> {
    let sql = format!(
        "{} WHERE i.id = $1 AND substr(a.path, 1, length($2)) = $2{lock}",
        select_invoices!()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(scope.path_prefix())
        .fetch_optional(conn)
        .await?
        .ok_or(StoreError::NotFound)
}

/// The invoice whose `column` equals `value`, with its agency's path;
/// `lock` is appended as the row-locking clause.
pub(super) async fn invoice_where(
    conn: &mut Conn<'_>,
    column: &'static str,
    value: &str,
    lock: &str,
) -> Result<Option<(Invoice, String)>, StoreError> {
    let sql = format!("{} WHERE i.{column} = $1{lock}", select_invoices!());
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(conn)
        .await?;
    row.map(|row| Ok((invoice_from_row(&row)?, row.try_get("agency_path")?)))
        .transpose()
}

/// The invoice of the attempt `order_ref` on `channel`, with the attempt's
/// id and the agency's path, in one query (a callback's first read).
pub(super) async fn invoice_of_attempt(
    conn: &mut Conn<'_>,
    channel: &str,
    order_ref: &str,
    lock: &str,
) -> Result<Option<(String, Invoice, String)>, StoreError> {
    let columns = select_invoices!()
        .strip_prefix("SELECT ")
        .unwrap_or(select_invoices!());
    let sql = format!(
        "SELECT t.id AS attempt_id, {columns}
         JOIN payment_attempts t ON t.invoice_id = i.id
         WHERE t.channel = $1 AND t.order_ref = $2{lock}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(channel)
        .bind(order_ref)
        .fetch_optional(conn)
        .await?;
    row.map(|row| {
        Ok((
            row.try_get("attempt_id")?,
            invoice_from_row(&row)?,
            row.try_get("agency_path")?,
        ))
    })
    .transpose()
}

/// What one try at issuing an invoice came to.
enum Issued {
    /// Issued now, or answered again for a key already used.
    Created(Created),
    /// Not inserted: the payment code drawn was taken, or the dossier had
    /// an open invoice at this agency when the insert ran.
    NotInserted(Agency),
}

impl Store {
    /// Issues an invoice, once per idempotency key. `render` makes the
    /// response body from the stored invoice; it is kept with the key so
    /// that a replay answers the same bytes.
    pub async fn create_invoice(
        &self,
        actor: &Actor,
        scope: &Scope,
        request: &IdempotentRequest<'_>,
        new: &NewInvoice,
        render: impl Fn(&Invoice) -> String,
    ) -> Result<Created, StoreError> {
        // The invoice is written with the batch that ends its transaction.
        // Its insert does nothing when a unique index has its row already:
        // the payment code drawn is taken (a chance of the codes in use in
        // 32^8), or the dossier had an open invoice when it ran. The
        // transaction is then abandoned and the dossier's open invoice
        // read: one past its expiry is expired, and the next try may issue
        // the invoice; one not due refuses the request with its id; with
        // none (the code was taken, or the open invoice was paid,
        // cancelled or expired since), the next try draws a new code.
        for _ in 0..8 {
            match self
                .try_create_invoice(actor, scope, request, new, &render)
                .await?
            {
                Issued::Created(created) => return Ok(created),
                Issued::NotInserted(agency) => {
                    self.close_stale_invoice(actor, &agency, &new.dossier_code)
                        .await?;
                }
            }
        }
        // The dossier's invoices changed under every try.
        Err(StoreError::Contended)
    }

    /// [`Store::create_invoice`] with one draw of the payment code. Nothing
    /// is kept unless the invoice is created.
    async fn try_create_invoice(
        &self,
        actor: &Actor,
        scope: &Scope,
        request: &IdempotentRequest<'_>,
        new: &NewInvoice,
        render: &impl Fn(&Invoice) -> String,
    ) -> Result<Issued, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        if !idempotency::claim(&mut tx.conn(), request, now).await? {
            // Wait for the write that took the key to be committed.
            tx.rollback().await?;
            return self.replay_taken(request).await.map(Issued::Created);
        }
        let agency = find_in_scope(&mut tx.conn(), scope, new.agency_code.as_str()).await?;
        let invoice = invoice_to_issue(new, &agency);
        let body = render(&invoice);
        let mut writes = Batch::new();
        let inserted = writes.push(insert_invoice(&invoice)?);
        writes.extend(audit::insert(
            actor,
            &[Change {
                action: "invoice.created",
                object_type: "invoice",
                object_id: &invoice.id,
                agency: Some((agency.code.as_str(), &agency.path)),
                before: None,
                after: audit::state(&AuditedInvoice::from(&invoice)),
                at: now,
            }],
        ));
        writes.push(idempotency::answer(request, 201, &body));
        match writes.execute(&mut tx.conn(), self.backend).await {
            Err(err) => Err(err),
            Ok(changed) if changed.rows(inserted) == 0 => {
                tx.rollback().await?;
                Ok(Issued::NotInserted(agency))
            }
            Ok(_) => {
                tx.commit().await?;
                Ok(Issued::Created(Created {
                    status: 201,
                    body,
                    created: true,
                }))
            }
        }
    }

    /// Expires the dossier's open invoice if it is past its expiry; refuses
    /// with its id if it is not. With none open, does nothing.
    async fn close_stale_invoice(
        &self,
        actor: &Actor,
        agency: &Agency,
        dossier_code: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Planned for this dossier each time: a plan cached while the
            // table was small scans every invoice of the agency.
            sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan")
                .execute(&mut tx.conn())
                .await?;
        }
        let row = sqlx::query(concat!(
            select_invoices!(),
            " WHERE i.agency_code = $1 AND i.dossier_code = $2 AND i.status = 'open'"
        ))
        .bind(agency.code.as_str())
        .bind(dossier_code)
        .fetch_optional(&mut tx.conn())
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(());
        };
        let invoice = invoice_from_row(&row)?;
        let now = Timestamp::now();
        let open = expire_if_due(&mut tx.conn(), actor, invoice, &agency.path, now).await?;
        if open.status == InvoiceStatus::Open {
            // On SQLite the open invoice may be another writer's in this
            // batch: the refusal waits for the batch to be committed.
            tx.rollback().await?;
            return Err(StoreError::DossierHasOpenInvoice {
                invoice_id: open.id,
            });
        }
        tx.commit().await?;
        Ok(())
    }

    /// The invoice `id`, if it lies in `scope`; an open invoice past its
    /// expiry reads as expired.
    pub async fn get_invoice(&self, scope: &Scope, id: &str) -> Result<Invoice, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row = invoice_in_scope(&mut Conn::from(&mut *conn), scope, id, "").await?;
        let invoice = invoice_from_row(&row)?;
        let now = Timestamp::now();
        Ok(Invoice {
            status: invoice.status_at(now),
            ..invoice
        })
    }

    /// Invoices in `scope` matching `filter`, newest first.
    pub async fn list_invoices(
        &self,
        scope: &Scope,
        filter: &InvoiceFilter,
    ) -> Result<Listed<Invoice>, StoreError> {
        let now = Timestamp::now();
        let mut query = Filtered::new(select_invoices!());
        query.and(
            "substr(a.path, 1, length({})) = {}",
            Value::Text(scope.path_prefix().to_owned()),
        );
        if let Some(agency_code) = &filter.agency_code {
            let mut conn = self.pool.acquire().await?;
            let agency =
                find_in_scope(&mut Conn::from(&mut *conn), scope, agency_code.as_str()).await?;
            query.and(
                "substr(a.path, 1, length({})) = {}",
                Value::Text(agency.path),
            );
        }
        if let Some(dossier_code) = &filter.dossier_code {
            query.and("i.dossier_code = {}", Value::Text(dossier_code.clone()));
        }
        match filter.status {
            None => {}
            Some(InvoiceStatus::Open) => {
                query.and(
                    "i.status = 'open' AND i.expires_at > {}",
                    Value::Text(now.to_stored()),
                );
            }
            Some(InvoiceStatus::Expired) => {
                query.and(
                    "(i.status = 'expired' OR (i.status = 'open' AND i.expires_at <= {}))",
                    Value::Text(now.to_stored()),
                );
            }
            Some(status) => {
                query.and("i.status = {}", Value::Text(status.as_str().to_owned()));
            }
        }
        query
            .during("i.created_at", filter.created_from, filter.created_to)
            .newest_first("i.id", filter.after_id.as_deref(), filter.limit);
        let rows = query.build().fetch_all(&self.pool).await?;
        let read = |row: &AnyRow| {
            invoice_from_row(row).map(|invoice| Invoice {
                status: invoice.status_at(now),
                ..invoice
            })
        };
        page(&rows, filter.limit, read, |invoice| invoice.id.clone())
    }

    /// Cancels an open invoice in `scope`.
    pub async fn cancel_invoice(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
    ) -> Result<Invoice, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        // On PostgreSQL, lock the row so that concurrent cancels (or the
        // expiry task) wait and then see the status this one leaves.
        let lock = self.row_lock(" FOR UPDATE OF i");
        let row = invoice_in_scope(&mut tx.conn(), scope, id, lock).await?;
        let agency_path: String = row.try_get("agency_path")?;
        let invoice = invoice_from_row(&row)?;
        let invoice = expire_if_due(&mut tx.conn(), actor, invoice, &agency_path, now).await?;
        if let Err(refused) = invoice.status.cancel() {
            // Keep a stored expiry even though the cancel is refused.
            tx.commit().await?;
            return Err(refused.into());
        }
        match leave_open(
            &mut tx.conn(),
            actor,
            &invoice,
            &agency_path,
            InvoiceStatus::Cancelled,
            now,
        )
        .await?
        {
            Some(cancelled) => {
                tx.commit().await?;
                Ok(cancelled)
            }
            None => {
                let moved = current_status(&mut tx.conn(), invoice).await?;
                Err(match moved.status.cancel() {
                    Err(refused) => refused.into(),
                    Ok(_) => StoreError::corrupt("an open invoice could not be cancelled"),
                })
            }
        }
    }

    /// Marks up to `limit` open invoices past their expiry as expired, each
    /// with its audit record. Safe to run in several processes at once: an
    /// invoice moves out of `open` exactly once.
    pub async fn expire_due_invoices(&self, limit: i64) -> Result<usize, StoreError> {
        let now = Timestamp::now();
        let actor = Actor::system("expiry");
        let mut tx = self.begin_write().await?;
        let lock = self.row_lock(" FOR UPDATE OF i SKIP LOCKED");
        let sql = format!(
            "{} WHERE i.status = 'open' AND i.expires_at <= $1 ORDER BY i.expires_at LIMIT $2{lock}",
            select_invoices!()
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now.to_stored())
            .bind(limit)
            .fetch_all(&mut tx.conn())
            .await?;
        let mut expired = 0;
        for row in &rows {
            let agency_path: String = row.try_get("agency_path")?;
            let invoice = invoice_from_row(row)?;
            if leave_open(
                &mut tx.conn(),
                &actor,
                &invoice,
                &agency_path,
                InvoiceStatus::Expired,
                now,
            )
            .await?
            .is_some()
            {
                expired += 1;
            }
        }
        tx.commit().await?;
        Ok(expired)
    }
}

/// The invoice `new` asks for, with a fresh id and payment code.
fn invoice_to_issue(new: &NewInvoice, agency: &Agency) -> Invoice {
    let now = new.issued_at;
    Invoice {
        id: uuid::Uuid::now_v7().to_string(),
        payment_code: PaymentCode::generate(&mut rand::rng()),
        status: InvoiceStatus::Open,
        total: new.total,
        amount_paid: Vnd::ZERO,
        agency_code: agency.code.clone(),
        dossier_code: new.dossier_code.clone(),
        procedure_code: new.procedure_code.clone(),
        procedure_name: new.procedure_name.clone(),
        payer: new.payer.clone(),
        lines: new.lines.clone(),
        created_at: now,
        expires_at: new.expires_at,
        updated_at: now,
        receipt: None,
    }
}

/// The statement that inserts `invoice`, which changes no row when a
/// unique index of `invoices` has its row already: its payment code is
/// taken, or its dossier has an open invoice.
fn insert_invoice(invoice: &Invoice) -> Result<Statement, StoreError> {
    let lines = serde_json::to_string(&invoice.lines).map_err(StoreError::corrupt)?;
    Ok(Statement::new(
        "INSERT INTO invoices (id, payment_code, status, total, amount_paid, agency_code,
             dossier_code, procedure_code, procedure_name, payer_name, payer_id_number,
             payer_phone, payer_email, lines, created_at, expires_at, updated_at)
         VALUES ($1, $2, 'open', $3, 0, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13)
         ON CONFLICT DO NOTHING",
    )
    .bind(&invoice.id)
    .bind(invoice.payment_code.as_str())
    .bind(invoice.total.dong())
    .bind(invoice.agency_code.as_str())
    .bind(&invoice.dossier_code)
    .bind(&invoice.procedure_code)
    .bind(&invoice.procedure_name)
    .bind(&invoice.payer.name)
    .bind(invoice.payer.id_number.as_deref())
    .bind(invoice.payer.phone.as_deref())
    .bind(invoice.payer.email.as_deref())
    .bind(lines)
    .bind(invoice.created_at.to_stored())
    .bind(invoice.expires_at.to_stored()))
}
