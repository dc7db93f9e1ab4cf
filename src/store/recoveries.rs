//! Payments recovered from a statement, a batch of lines at a time. A line
//! that no recorded payment matches is money no callback reported: it is
//! recorded by the rules a callback's payment is ([`Store::record_payment`]):
//! once per provider transaction, applied to the invoice it names when it
//! pays exactly what is owed and the invoice is open, held as an exception
//! otherwise, with the receipt, events and audit records of either. Here
//! the whole batch is read and decided in memory first (each line seeing
//! what the lines before it did), then written with one statement per
//! table, however many lines recover payments.

use std::collections::HashMap;

use serde_json::json;
use sqlx::Row;

use super::agencies::path_of;
use super::audit::{self, Change};
use super::batch::{Batch, Statement};
use super::bulk::{distinct, json_in, json_list, json_rows};
use super::conn::Conn;
use super::events;
use super::exceptions::{Finding, Raising};
use super::invoices::invoice_from_row;
use super::payments::{SELECT_PAYMENTS, payment_from_row};
use super::receipts::{self, Taken};
use super::recording::{applied, as_found, excess_held, held, invoice_changed, received, recorded};
use super::{Backend, Store, StoreError};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, Payment, PaymentSource, classify};
use crate::domain::receipt::{MAX_RECEIPT_NUMBER, vietnam_year};
use crate::domain::settlement::{LineOutcome, StatementLine, local_day};
use crate::domain::{AgencyCode, Invoice, InvoiceStatus, Scope, Timestamp, Vnd};

/// A line whose money no recorded payment matched.
pub(super) struct Unmatched<'a> {
    pub line: &'a StatementLine,
    /// The statement it is a line of.
    pub file_id: &'a str,
    /// The account that statement is of, if it names one.
    pub account_number: Option<&'a str>,
}

/// The payment a line settles, with its amount and agency.
#[derive(Clone)]
pub(super) struct Settling {
    pub payment_id: String,
    pub amount: Vnd,
    /// The agency's code and path.
    pub agency: Option<(String, String)>,
}

/// A payment recovered from a line, and what the line turned out to be:
/// `missing_payment`, or, when the payment was recorded meanwhile (its
/// callback came while the statement was being matched, or a line before
/// it in the batch named the same transaction), what matching it makes of
/// the line.
pub(super) struct Recovery {
    pub settling: Settling,
    pub outcome: LineOutcome,
}

/// Who recovers, for whom, when.
pub(super) struct Recovering<'a> {
    pub actor: &'a Actor,
    pub scope: &'a Scope,
    pub channel: Channel,
    pub now: Timestamp,
}

/// A payment to record.
struct NewPayment {
    payment: Payment,
    /// The agency it is recorded under, with its path.
    agency: Option<(String, String)>,
    collected_on: String,
    procedure_code: Option<String>,
    /// The invoice it names (a key of [`Recoveries::invoices`]).
    invoice_id: Option<String>,
    /// Paid to another agency's account than the invoice's.
    wrong_account: bool,
    /// Why it is held, with what its invoice still owed then; `None` when
    /// it paid its invoice.
    held: Option<(ExceptionKind, Option<Vnd>)>,
    /// The line it was recovered from.
    line: usize,
}

/// An invoice a recovered payment pays.
struct Paid {
    before: Invoice,
    after: Invoice,
    path: String,
    /// The payment that pays it, in [`Recoveries::payments`].
    payment: usize,
}

/// What a batch's recoveries come to, decided and not yet written.
pub(super) struct Recoveries {
    /// One per line given, in order.
    pub recovered: Vec<Recovery>,
    payments: Vec<NewPayment>,
    paid: Vec<Paid>,
    /// Each invoice a line names, as the lines before leave it, with its
    /// agency's path.
    invoices: HashMap<String, (Invoice, String)>,
}

/// What the lines name, read (and on PostgreSQL, their invoices locked)
/// in a few queries.
#[derive(Default)]
struct Named {
    invoices: HashMap<String, (Invoice, String)>,
    /// Attempt id and invoice id, by order reference.
    attempts: HashMap<String, (String, String)>,
    /// Invoice id, by payment code.
    codes: HashMap<String, String>,
    /// The one agency receiving on each account number that has one.
    receivers: HashMap<String, (String, String)>,
    /// Each invoice's agency's account number.
    accounts: HashMap<String, String>,
    /// Payments recorded before, by provider transaction id.
    recorded: HashMap<String, Payment>,
}

/// What a line's payment is for, as a callback's would be matched.
struct Aimed {
    invoice_id: Option<String>,
    attempt_id: Option<String>,
    /// The agency it is recorded under, with its path.
    agency: Option<(String, String)>,
    /// Paid to another agency's account than the invoice's.
    wrong_account: bool,
}

impl Named {
    /// What `unmatched`'s payment is for: on a gateway, the invoice of the
    /// attempt its reference names; by transfer, the invoice of the
    /// payment code in its note, under the agency receiving on the
    /// statement's account, which must be the invoice's own.
    fn aim(&self, channel: Channel, unmatched: &Unmatched<'_>) -> Aimed {
        let line = unmatched.line;
        let own = |id: &String| {
            self.invoices
                .get(id)
                .map(|(invoice, path)| (invoice.agency_code.as_str().to_owned(), path.clone()))
        };
        if channel != Channel::BankTransfer {
            return match self.attempts.get(&line.reference) {
                Some((attempt_id, invoice_id)) => Aimed {
                    agency: own(invoice_id),
                    invoice_id: Some(invoice_id.clone()),
                    attempt_id: Some(attempt_id.clone()),
                    wrong_account: false,
                },
                None => Aimed {
                    invoice_id: None,
                    attempt_id: None,
                    agency: None,
                    wrong_account: false,
                },
            };
        }
        let invoice_id = line
            .payment_code
            .as_ref()
            .and_then(|code| self.codes.get(code.as_str()));
        // The receiving account says whose money it is, even when the
        // note names no invoice or another agency's.
        let receiver = unmatched
            .account_number
            .and_then(|number| self.receivers.get(number))
            .cloned();
        let Some(invoice_id) = invoice_id else {
            return Aimed {
                invoice_id: None,
                attempt_id: None,
                agency: receiver,
                wrong_account: false,
            };
        };
        let wrong_account = unmatched.account_number.is_some_and(|number| {
            let agency = self
                .invoices
                .get(invoice_id)
                .map(|(i, _)| i.agency_code.as_str());
            agency
                .and_then(|code| self.accounts.get(code))
                .map(String::as_str)
                != Some(number)
        });
        Aimed {
            invoice_id: Some(invoice_id.clone()),
            attempt_id: None,
            agency: if wrong_account {
                receiver.or_else(|| own(invoice_id))
            } else {
                own(invoice_id)
            },
            wrong_account,
        }
    }
}

impl Store {
    /// Decides what recovering each of `lines` records, in order, reading
    /// what they name and locking the invoices they pay; writes only what
    /// the rules of a callback write before the payment (an invoice found
    /// past its expiry is stored expired) and takes the receipt numbers.
    /// Nothing else is written until [`Recoveries::write`].
    pub(super) async fn plan_recoveries(
        &self,
        tx: &mut Conn<'_>,
        with: &Recovering<'_>,
        lines: &[Unmatched<'_>],
    ) -> Result<Recoveries, StoreError> {
        let now = with.now;
        let named = self
            .named(tx, with.channel, lines, self.row_lock(" FOR UPDATE OF i"))
            .await?;
        let mut plan = Recoveries {
            recovered: Vec::with_capacity(lines.len()),
            payments: Vec::new(),
            paid: Vec::new(),
            invoices: named.invoices.clone(),
        };
        // Each transaction id once: a later line naming it settles it.
        let mut planned: HashMap<&str, usize> = HashMap::new();
        for (at, unmatched) in lines.iter().enumerate() {
            let line = unmatched.line;
            let before = match named.recorded.get(&line.txn_ref) {
                Some(payment) => {
                    let code = payment.agency_code.as_ref().map(AgencyCode::as_str);
                    let agency = code.zip(path_of(tx, code).await?);
                    Some(settling_of(payment, agency.map(|(c, p)| (c.to_owned(), p))))
                }
                None => planned.get(line.txn_ref.as_str()).map(|&p| {
                    let new = &plan.payments[p];
                    settling_of(&new.payment, new.agency.clone())
                }),
            };
            if let Some(settling) = before {
                let outcome = if settling.amount == line.amount {
                    LineOutcome::Matched
                } else {
                    LineOutcome::AmountMismatch
                };
                check_scope(with.scope, settling.agency.as_ref(), line)?;
                plan.recovered.push(Recovery { settling, outcome });
                continue;
            }

            let Aimed {
                invoice_id,
                attempt_id,
                agency,
                wrong_account,
            } = named.aim(with.channel, unmatched);
            check_scope(with.scope, agency.as_ref(), line)?;

            // The invoice as the lines before left it, stored expired if
            // this payment finds it past its expiry.
            let invoice = match &invoice_id {
                Some(id) => {
                    let (invoice, path) = plan.invoices[id].clone();
                    let invoice = as_found(
                        tx,
                        with.actor,
                        invoice,
                        &path,
                        Some(line.transaction_time),
                        (line.amount, with.channel),
                        !wrong_account,
                        now,
                    )
                    .await?;
                    plan.invoices.insert(id.clone(), (invoice.clone(), path));
                    Some(invoice)
                }
                None => None,
            };
            let verdict = if wrong_account {
                Err(ExceptionKind::WrongAccount)
            } else {
                classify(
                    invoice.as_ref().map(|i| (i.status, i.total, i.amount_paid)),
                    line.amount,
                    with.channel,
                )
            };
            let payment = Payment {
                id: uuid::Uuid::now_v7().to_string(),
                channel: with.channel,
                provider_txn_id: line.txn_ref.clone(),
                amount: line.amount,
                invoice_id: invoice_id.clone(),
                attempt_id,
                agency_code: agency
                    .as_ref()
                    .map(|(code, _)| AgencyCode::from_stored(code.clone())),
                reference: line.reference.clone(),
                exception: verdict.err(),
                excess: verdict.unwrap_or(Vnd::new(0)),
                source: PaymentSource::Statement,
                paid_at: Some(line.transaction_time),
                recorded_at: now,
                recorded_by_name: None,
            };
            let index = plan.payments.len();
            let held = match (verdict, &invoice) {
                (Ok(_), Some(invoice)) => {
                    let after = applied(invoice, &payment, now)?;
                    let path = plan.invoices[&invoice.id].1.clone();
                    plan.invoices
                        .insert(invoice.id.clone(), (after.clone(), path.clone()));
                    plan.paid.push(Paid {
                        before: invoice.clone(),
                        after,
                        path,
                        payment: index,
                    });
                    None
                }
                (Ok(_), None) => {
                    return Err(StoreError::corrupt("a payment was applied to no invoice"));
                }
                (Err(kind), invoice) => Some((
                    kind,
                    invoice
                        .as_ref()
                        .and_then(|i| i.total.checked_sub(i.amount_paid)),
                )),
            };
            let settling = settling_of(&payment, agency.clone());
            planned.insert(line.txn_ref.as_str(), index);
            plan.payments.push(NewPayment {
                collected_on: local_day(payment.collected_at()),
                procedure_code: invoice.as_ref().map(|i| i.procedure_code.clone()),
                payment,
                agency,
                invoice_id,
                wrong_account,
                held,
                line: at,
            });
            plan.recovered.push(Recovery {
                settling,
                outcome: LineOutcome::MissingPayment,
            });
        }
        self.take_receipts(tx, &mut plan, now).await?;
        Ok(plan)
    }

    /// The path of the agency each of `lines`' payments would be recovered
    /// under, if any; reads only, locking nothing.
    pub(super) async fn recovered_under(
        &self,
        conn: &mut Conn<'_>,
        channel: Channel,
        lines: &[Unmatched<'_>],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let named = self.named(conn, channel, lines, "").await?;
        Ok(lines
            .iter()
            .map(|u| named.aim(channel, u).agency.map(|(_, path)| path))
            .collect())
    }

    /// Reads what `lines` name: the invoices (locked on PostgreSQL, in
    /// one order, so that two batches never wait on each other), their
    /// attempts or payment codes, the agencies receiving on the accounts
    /// named, and the payments already recorded under the lines'
    /// transaction ids, read once the invoices are locked (a callback for
    /// one of them waits for this batch).
    async fn named(
        &self,
        tx: &mut Conn<'_>,
        channel: Channel,
        lines: &[Unmatched<'_>],
        lock: &str,
    ) -> Result<Named, StoreError> {
        let backend = self.backend;
        let mut named = Named::default();
        if lines.is_empty() {
            return Ok(named);
        }
        let columns = super::invoices::select_invoices!();
        if channel == Channel::BankTransfer {
            let codes = distinct(
                lines
                    .iter()
                    .filter_map(|u| u.line.payment_code.as_ref().map(|c| c.as_str())),
            );
            if !codes.is_empty() {
                let sql = format!(
                    "{columns} WHERE i.payment_code {} ORDER BY i.id{lock}",
                    json_in(backend, "$1")
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(json_list(&codes)?)
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    let invoice = invoice_from_row(&row)?;
                    let path: String = row.try_get("agency_path")?;
                    named
                        .codes
                        .insert(invoice.payment_code.as_str().to_owned(), invoice.id.clone());
                    named.invoices.insert(invoice.id.clone(), (invoice, path));
                }
            }
            let numbers = distinct(lines.iter().filter_map(|u| u.account_number));
            if !numbers.is_empty() {
                let sql = format!(
                    "SELECT b.account_number, b.agency_code, a.path FROM agency_bank_accounts b
                     JOIN agencies a ON a.code = b.agency_code
                     WHERE b.account_number {}",
                    json_in(backend, "$1")
                );
                let rows: Vec<(String, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(json_list(&numbers)?)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut receiving: HashMap<String, Vec<(String, String)>> = HashMap::new();
                for (number, code, path) in rows {
                    receiving.entry(number).or_default().push((code, path));
                }
                named.receivers = receiving
                    .into_iter()
                    .filter_map(|(number, mut agencies)| {
                        (agencies.len() == 1).then(|| (number, agencies.remove(0)))
                    })
                    .collect();
                let agencies = distinct(
                    named
                        .invoices
                        .values()
                        .map(|(invoice, _)| invoice.agency_code.as_str()),
                );
                if !agencies.is_empty() {
                    let sql = format!(
                        "SELECT agency_code, account_number FROM agency_bank_accounts
                         WHERE agency_code {}",
                        json_in(backend, "$1")
                    );
                    named.accounts =
                        sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql))
                            .bind(json_list(&agencies)?)
                            .fetch_all(&mut *tx)
                            .await?
                            .into_iter()
                            .collect();
                }
            }
        } else {
            let refs = distinct(lines.iter().map(|u| u.line.reference.as_str()));
            let columns = columns.strip_prefix("SELECT ").unwrap_or(columns);
            let sql = format!(
                "SELECT t.id AS attempt_id, t.order_ref, {columns}
                 JOIN payment_attempts t ON t.invoice_id = i.id
                 WHERE t.channel = $1 AND t.order_ref {}
                 ORDER BY i.id{lock}",
                json_in(backend, "$2")
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(channel.as_str())
                .bind(json_list(&refs)?)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let invoice = invoice_from_row(&row)?;
                let path: String = row.try_get("agency_path")?;
                named.attempts.insert(
                    row.try_get("order_ref")?,
                    (row.try_get("attempt_id")?, invoice.id.clone()),
                );
                named.invoices.insert(invoice.id.clone(), (invoice, path));
            }
        }
        let txn_ids = distinct(lines.iter().map(|u| u.line.txn_ref.as_str()));
        let sql = format!(
            "{SELECT_PAYMENTS} WHERE p.channel = $1 AND p.provider_txn_id {}",
            json_in(backend, "$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(json_list(&txn_ids)?)
            .fetch_all(&mut *tx)
            .await?;
        for row in rows {
            let payment = payment_from_row(&row)?;
            named
                .recorded
                .insert(payment.provider_txn_id.clone(), payment);
        }
        Ok(named)
    }

    /// Takes the receipt numbers of the invoices `plan` pays, in the order
    /// they are paid: one upsert advances every series concerned by as
    /// many numbers as it gives. A series that cannot give them all
    /// refuses the batch, as it refuses a callback's payment.
    async fn take_receipts(
        &self,
        tx: &mut Conn<'_>,
        plan: &mut Recoveries,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if !plan
            .paid
            .iter()
            .any(|p| p.after.status == InvoiceStatus::Paid)
        {
            return Ok(());
        }
        let mut wanted: Vec<(String, i64)> = Vec::new();
        // A transfer short of what is owed pays part of it: no receipt yet.
        for paid in plan
            .paid
            .iter()
            .filter(|p| p.after.status == InvoiceStatus::Paid)
        {
            let agency = paid.before.agency_code.as_str();
            match wanted.iter_mut().find(|(code, _)| code == agency) {
                Some((_, n)) => *n += 1,
                None => wanted.push((agency.to_owned(), 1)),
            }
        }
        let sql = format!(
            "INSERT INTO receipt_series (agency_code, year, last_number)
             SELECT e.value->>0, $1, CAST(e.value->>1 AS BIGINT) FROM {}
             WHERE CAST(e.value->>1 AS BIGINT) <= $2
             ON CONFLICT (agency_code, year) DO UPDATE
                 SET last_number = receipt_series.last_number + excluded.last_number
                 WHERE receipt_series.last_number + excluded.last_number <= $2
             RETURNING agency_code, last_number",
            json_rows(self.backend, "$3")
        );
        let rows = serde_json::to_string(&wanted).map_err(StoreError::corrupt)?;
        let last: HashMap<String, i64> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(vietnam_year(now)))
            .bind(MAX_RECEIPT_NUMBER)
            .bind(rows)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        // Each series' numbers, from the first this batch takes.
        let mut next: HashMap<String, i64> = wanted
            .into_iter()
            .filter_map(|(code, n)| last.get(&code).map(|last| (code.clone(), last - n + 1)))
            .collect();
        for paid in plan
            .paid
            .iter_mut()
            .filter(|p| p.after.status == InvoiceStatus::Paid)
        {
            let number = next.get_mut(paid.before.agency_code.as_str()).map(|n| {
                *n += 1;
                *n - 1
            });
            let payment = &plan.payments[paid.payment].payment;
            paid.after.receipt = Some(receipts::make(
                &self.receipts,
                &paid.before,
                payment,
                Taken(number),
                now,
            )?);
        }
        Ok(())
    }
}

impl Recoveries {
    /// How many exceptions the recovered payments open.
    pub fn exceptions(&self) -> u64 {
        let held = self
            .payments
            .iter()
            .filter(|new| new.held.is_some() || new.payment.excess.dong() > 0)
            .count();
        (self.payments.len() + held) as u64
    }

    /// Writes what was planned for `lines` and what `line_findings` (the
    /// batch's other lines) found: one statement per table, in one batch.
    /// Each payment's records come as a callback's would, its own
    /// exception (which the dossier system hears of) and its
    /// `missing_payment` (which only officers do) after them.
    pub async fn write(
        &self,
        tx: &mut Conn<'_>,
        backend: Backend,
        actor: &Actor,
        lines: &[Unmatched<'_>],
        line_findings: &[Finding<'_>],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let own = self.own_findings(lines);
        let raising = Raising::new(own.iter().chain(line_findings).collect())?;
        let mut writes = Batch::new();
        let inserted = (!self.payments.is_empty())
            .then(|| Ok::<_, StoreError>(writes.push(self.insert_payments(backend, actor)?)))
            .transpose()?;
        let attempts: Vec<&str> = self
            .payments
            .iter()
            .filter_map(|new| new.payment.attempt_id.as_deref())
            .collect();
        if !attempts.is_empty() {
            writes.push(
                Statement::new(format!(
                    "UPDATE payment_attempts SET status = 'succeeded', updated_at = $1
                     WHERE id {} AND status <> 'succeeded'",
                    json_in(backend, "$2")
                ))
                .bind(now.to_stored())
                .bind(json_list(&attempts)?),
            );
        }
        let updated = (!self.paid.is_empty())
            .then(|| Ok::<_, StoreError>(writes.push(self.update_invoices(backend, now)?)))
            .transpose()?;
        if self
            .paid
            .iter()
            .any(|p| p.after.status == InvoiceStatus::Paid)
        {
            writes.push(self.insert_receipts(backend)?);
        }
        writes.extend(raising.insert(backend, now)?);

        let paid_by: HashMap<usize, &Paid> = self.paid.iter().map(|p| (p.payment, p)).collect();
        let mut changes: Vec<Change<'_>> = Vec::new();
        let mut events = Vec::new();
        for (at, new) in self.payments.iter().enumerate() {
            let payment = &new.payment;
            let agency = new.agency.as_ref().map(|(c, p)| (c.as_str(), p.as_str()));
            let invoice = new
                .invoice_id
                .as_ref()
                .and_then(|id| self.invoices.get(id))
                .map(|(invoice, _)| invoice);
            changes.push(recorded(payment, agency, now));
            events.push(received(payment, agency, invoice, new.wrong_account));
            if let Some(paid) = paid_by.get(&at) {
                let (change, event) =
                    invoice_changed((&paid.before, &paid.path), &paid.after, payment, now);
                changes.push(change);
                events.extend(event);
            }
        }
        changes.extend(raising.changes(now));
        events.extend(raising.events());
        writes.extend(audit::insert_all(actor, &changes));
        writes.extend(events::insert_all(events, now));

        let changed = writes.execute(tx, backend).await?;
        if let Some(part) = inserted
            && changed.rows(part) != self.payments.len() as u64
        {
            // A callback recorded one of them meanwhile, past the locks
            // (it named no invoice): the batch is matched again.
            return Err(StoreError::corrupt(
                "a payment recovered from the statement was recorded meanwhile",
            ));
        }
        if let Some(part) = updated
            && changed.rows(part) != self.paid.len() as u64
        {
            return Err(StoreError::corrupt("a locked open invoice was not open"));
        }
        Ok(())
    }

    /// The findings each payment raises: its own exception if it is held
    /// (or holds an excess), naming the statement line it was recovered
    /// from; otherwise a `missing_payment` that says it was recovered. One
    /// line recovers one payment and opens one exception.
    fn own_findings<'a>(&'a self, lines: &[Unmatched<'a>]) -> Vec<Finding<'a>> {
        let mut findings = Vec::new();
        for new in &self.payments {
            let payment = &new.payment;
            let agency = new.agency.as_ref().map(|(c, p)| (c.as_str(), p.as_str()));
            let Unmatched { line, file_id, .. } = lines[new.line];
            let settlement_line = Some((file_id, i64::try_from(line.line_no).unwrap_or(i64::MAX)));
            let recovered = format!(
                "; recovered from statement line {}, which no callback reported",
                line.line_no
            );
            let own = if let Some((kind, owed)) = new.held {
                Some(held(payment, kind, owed, agency))
            } else if payment.excess.dong() > 0 {
                Some(excess_held(payment, payment.applied_amount(), agency))
            } else {
                None
            };
            findings.push(match own {
                Some(mut finding) => {
                    finding.settlement_line = settlement_line;
                    finding.detail.push_str(&recovered);
                    finding
                }
                None => Finding {
                    kind: ExceptionKind::MissingPayment,
                    payment_id: Some(&payment.id),
                    invoice_id: payment.invoice_id.as_deref(),
                    agency,
                    amount: Some(line.amount),
                    detail: format!(
                        "line {} settles {} đồng that no callback reported; the payment was recovered from the statement",
                        line.line_no, line.amount
                    ),
                    settlement_line,
                    dossier_code: None,
                    tell_dossier_system: false,
                },
            });
        }
        findings
    }

    fn insert_payments(&self, backend: Backend, actor: &Actor) -> Result<Statement, StoreError> {
        let rows: Vec<serde_json::Value> = self
            .payments
            .iter()
            .map(|new| {
                let p = &new.payment;
                json!([
                    p.id,
                    p.channel.as_str(),
                    p.provider_txn_id,
                    p.amount.dong(),
                    p.invoice_id,
                    p.attempt_id,
                    p.agency_code.as_ref().map(AgencyCode::as_str),
                    p.reference,
                    p.exception.map(ExceptionKind::as_str),
                    p.source.as_str(),
                    p.paid_at.map(Timestamp::to_stored),
                    p.recorded_at.to_stored(),
                    new.collected_on,
                    new.procedure_code,
                    p.excess.dong(),
                ])
            })
            .collect();
        Ok(Statement::new(format!(
            "INSERT INTO payments (id, channel, provider_txn_id, amount, invoice_id, attempt_id,
                 agency_code, reference, exception_kind, source, paid_at, recorded_at, recorded_by,
                 collected_on, procedure_code, amount_held)
             SELECT e.value->>0, e.value->>1, e.value->>2, CAST(e.value->>3 AS BIGINT),
                 e.value->>4, e.value->>5, e.value->>6, e.value->>7, e.value->>8, e.value->>9,
                 e.value->>10, e.value->>11, $1, e.value->>12, e.value->>13,
                 CAST(e.value->>14 AS BIGINT)
             FROM {} WHERE true
             ON CONFLICT (channel, provider_txn_id) DO NOTHING",
            json_rows(backend, "$2")
        ))
        .bind(actor.name.as_str())
        .bind(to_json(&rows)?))
    }

    fn update_invoices(&self, backend: Backend, now: Timestamp) -> Result<Statement, StoreError> {
        let rows: Vec<serde_json::Value> = self
            .paid
            .iter()
            .map(|paid| {
                json!([
                    paid.after.id,
                    paid.after.amount_paid.dong(),
                    paid.after.status.as_str()
                ])
            })
            .collect();
        Ok(Statement::new(format!(
            "UPDATE invoices SET amount_paid = CAST(e.value->>1 AS BIGINT), status = e.value->>2,
                 updated_at = $1
             FROM {} WHERE invoices.id = e.value->>0 AND invoices.status IN ('open', 'expired')",
            json_rows(backend, "$2")
        ))
        .bind(now.to_stored())
        .bind(to_json(&rows)?))
    }

    fn insert_receipts(&self, backend: Backend) -> Result<Statement, StoreError> {
        let mut rows = Vec::with_capacity(self.paid.len());
        for paid in self
            .paid
            .iter()
            .filter(|p| p.after.status == InvoiceStatus::Paid)
        {
            let receipt = paid
                .after
                .receipt
                .as_ref()
                .ok_or_else(|| StoreError::corrupt("a paid invoice was given no receipt"))?;
            rows.push(json!([
                paid.after.id,
                receipt.payment_id,
                paid.after.agency_code.as_str(),
                receipt.year,
                receipt.number.value(),
                receipt.form_number,
                receipt.symbol,
                receipt.issued_at.to_stored(),
            ]));
        }
        Ok(Statement::new(format!(
            "INSERT INTO receipts (invoice_id, payment_id, agency_code, year, number, form_number,
                 symbol, issued_at)
             SELECT e.value->>0, e.value->>1, e.value->>2, CAST(e.value->>3 AS BIGINT),
                 CAST(e.value->>4 AS BIGINT), e.value->>5, e.value->>6, e.value->>7
             FROM {}",
            json_rows(backend, "$1")
        ))
        .bind(to_json(&rows)?))
    }
}

fn to_json(rows: &[serde_json::Value]) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(StoreError::corrupt)
}

fn settling_of(payment: &Payment, agency: Option<(String, String)>) -> Settling {
    Settling {
        payment_id: payment.id.clone(),
        amount: payment.amount,
        agency,
    }
}

/// Refuses a line whose payment belongs to an agency (code and path)
/// outside `scope`.
pub(super) fn check_scope(
    scope: &Scope,
    agency: Option<&(String, String)>,
    line: &StatementLine,
) -> Result<(), StoreError> {
    match agency {
        Some((_, path)) if !path.starts_with(scope.path_prefix()) => {
            Err(super::settlements::outside_scope(line))
        }
        _ => Ok(()),
    }
}
