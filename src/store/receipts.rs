//! Receipts: a paid invoice's number in its agency's series for the year
//! (in Vietnam) it is receipted, given once, in the transaction of the
//! payment that makes the invoice paid.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;

use super::batch::{Batch, Statement};
use super::{Store, StoreError, parse_time};
use crate::domain::payment::Payment;
use crate::domain::receipt::{
    MAX_RECEIPT_NUMBER, Receipt, ReceiptNumber, ReceiptPolicy, vietnam_year,
};
use crate::domain::{Invoice, Timestamp};

/// Reads a receipt from columns named `{prefix}form_number` and so on;
/// `None` when the row has none (a left join found no receipt).
pub(super) fn receipt_from_row(row: &AnyRow, prefix: &str) -> Result<Option<Receipt>, StoreError> {
    let column = |name: &str| format!("{prefix}{name}");
    let number: Option<i64> = row.try_get(column("number").as_str())?;
    let Some(number) = number else {
        return Ok(None);
    };
    let year: i64 = row.try_get(column("year").as_str())?;
    Ok(Some(Receipt {
        form_number: row.try_get(column("form_number").as_str())?,
        symbol: row.try_get(column("symbol").as_str())?,
        number: ReceiptNumber::new(number)
            .ok_or_else(|| StoreError::corrupt(format!("receipt number {number}")))?,
        year: i32::try_from(year).map_err(StoreError::corrupt)?,
        payment_id: row.try_get(column("payment_id").as_str())?,
        issued_at: parse_time(row, &column("issued_at"))?,
    }))
}

/// A number taken from an agency's receipt series for the year: `None`
/// when the series has given every number.
pub(super) struct Taken(pub Option<i64>);

/// The upsert that takes the next number of a receipt series: `$row`
/// gives the series' agency code, year and 1 (its first number), `$most`
/// the placeholder of the last number a series may give. It returns no
/// row once the series has given `$most`.
macro_rules! take_receipt_number {
    ($row:literal, $most:literal) => {
        concat!(
            "INSERT INTO receipt_series (agency_code, year, last_number) ",
            $row,
            " ON CONFLICT (agency_code, year) DO UPDATE
                 SET last_number = receipt_series.last_number + 1
                 WHERE receipt_series.last_number < ",
            $most,
            " RETURNING last_number"
        )
    };
}
pub(super) use take_receipt_number;

/// Takes the next number of the agency's series for the year (in Vietnam)
/// the receipt of `invoice` is made at `now`. Decree 123/2020 ties the
/// symbol's year to the receipt's, so a late callback of a 31 December
/// payment never reopens a closed year's series.
///
/// The series row is created or incremented by one upsert, which on
/// PostgreSQL locks it until the transaction ends (so concurrent payments
/// take consecutive numbers) and on SQLite runs under the write lock the
/// transaction already holds. A series that has given 9,999,999 numbers
/// gives no more: the update's condition fails and no row comes back.
/// (A paying callback takes its number with the same upsert, sent with the
/// statement that inserts the payment: see `payments.rs`.)
pub(super) async fn take_number(
    conn: &mut Conn<'_>,
    invoice: &Invoice,
    now: Timestamp,
) -> Result<Taken, StoreError> {
    let taken: Option<i64> = sqlx::query_scalar(take_receipt_number!("VALUES ($1, $2, 1)", "$3"))
        .bind(invoice.agency_code.as_str())
        .bind(i64::from(vietnam_year(now)))
        .bind(MAX_RECEIPT_NUMBER)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(Taken(taken))
}

/// Issues the receipt of `invoice`, which `payment` has just made paid,
/// numbered `taken` (by [`take_number`] or with the payment's insert), on
/// the agency's form: adds it to `writes`. A full series refuses the
/// payment's whole transaction rather than a number wrapping.
pub(super) fn issue(
    writes: &mut Batch,
    policy: &ReceiptPolicy,
    invoice: &Invoice,
    payment: &Payment,
    taken: Taken,
    now: Timestamp,
) -> Result<Receipt, StoreError> {
    let receipt = make(policy, invoice, payment, taken, now)?;
    let agency_code = invoice.agency_code.as_str();
    let (year, number) = (receipt.year, receipt.number);
    writes.push(
        Statement::new(
            "INSERT INTO receipts (invoice_id, payment_id, agency_code, year, number, form_number,
                 symbol, issued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&invoice.id)
        .bind(&receipt.payment_id)
        .bind(agency_code)
        .bind(i64::from(year))
        .bind(number.value())
        .bind(&receipt.form_number)
        .bind(&receipt.symbol)
        .bind(now.to_stored()),
    );
    Ok(receipt)
}

/// The receipt of `invoice`, which `payment` has just made paid, numbered
/// `taken`, on the agency's form for the year (in Vietnam) of `now`.
pub(super) fn make(
    policy: &ReceiptPolicy,
    invoice: &Invoice,
    payment: &Payment,
    taken: Taken,
    now: Timestamp,
) -> Result<Receipt, StoreError> {
    let year = vietnam_year(now);
    let number =
        taken
            .0
            .and_then(ReceiptNumber::new)
            .ok_or_else(|| StoreError::ReceiptSeriesFull {
                agency_code: invoice.agency_code.as_str().to_owned(),
                year,
            })?;
    let form = policy.form_for(&invoice.agency_code);
    Ok(Receipt {
        form_number: form.form_number.as_str().to_owned(),
        symbol: form.symbol_letters.symbol(year),
        number,
        year,
        payment_id: payment.id.clone(),
        issued_at: now,
    })
}

impl Store {
    /// The forms receipts are issued on.
    pub fn receipt_policy(&self) -> &ReceiptPolicy {
        &self.receipts
    }

    /// The payment that made a receipted invoice paid.
    pub async fn receipt_payment(&self, receipt: &Receipt) -> Result<Payment, StoreError> {
        let mut conn = self.pool.acquire().await?;
        super::payments::payment_by_id(&mut Conn::from(&mut *conn), &receipt.payment_id).await
    }
}
