//! The `baseline` workload: the database transaction of one paying VNPay
//! callback, written out as SQL and run through sqlx's own driver for the
//! database (no HTTP, no lephi code), with lephi's pool size and the same
//! concurrency as the other workloads. It is what the database alone does
//! on this machine, and every result is also shown as a ratio to it.
//!
//! The statements are those lephi runs for such a callback: find the
//! attempt and lock its invoice, insert the payment and take the receipt
//! number (one statement on PostgreSQL, two on SQLite); then mark the attempt, pay the invoice, write the receipt, the
//! payment's and the invoice's audit records (one statement) and events
//! (one statement), which lephi sends PostgreSQL as one statement and
//! SQLite one by one; commit.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;

use super::callbacks::{OWED, issue_invoices, start_attempt};
use super::load::{Measured, Mode, drive};
use super::target::{Backend, Target};

/// The callback's statements in transaction `$tx`, for one backend's
/// driver (the same SQL on both; `$lock` locks the invoice row where the
/// database locks rows; `$fused` sends the last five writes as one statement rather than one
/// text of five).
macro_rules! pay {
    ($tx:ident, $paying:expr, $lock:expr, $fused:expr) => {{
        let paying: &Paying = $paying;
        let e = |e: sqlx::Error| e.to_string();
        let now = crate::bench::baseline::now();
        let invoice = sqlx::query_as::<_, (String, String, String, String, String, String, i64, String)>(
            sqlx::AssertSqlSafe(format!(
                "SELECT t.id, i.id, i.payment_code, i.agency_code, i.dossier_code, i.procedure_code,
                        i.total, a.path
                 FROM invoices i JOIN agencies a ON a.code = i.agency_code
                 LEFT JOIN receipts r ON r.invoice_id = i.id
                 JOIN payment_attempts t ON t.invoice_id = i.id
                 WHERE t.channel = $1 AND t.order_ref = $2{}",
                $lock
            )),
        )
        .bind("vnpay")
        .bind(&paying.order_ref)
        .fetch_one(&mut *$tx)
        .await
        .map_err(e)?;
        let (attempt_id, id, payment_code, agency, dossier, procedure, total, path) = invoice;
        let payment_id = uuid::Uuid::now_v7().to_string();
        // The payment's insert takes the receipt number too: in one
        // statement on PostgreSQL, in one text of two on SQLite.
        let payment_sql = if $fused {
            crate::bench::baseline::INSERT_PAYMENT_TAKING_NUMBER
        } else {
            crate::bench::baseline::INSERT_PAYMENT_THEN_NUMBER
        };
        let insert_payment = sqlx::query(payment_sql)
            .bind(&payment_id)
            .bind("vnpay")
            .bind(&paying.txn)
            .bind(OWED)
            .bind(&id)
            .bind(&attempt_id)
            .bind(&agency)
            .bind(&paying.order_ref)
            .bind(None::<String>)
            .bind("callback")
            .bind(&now)
            .bind(&now)
            .bind("callback:vnpay")
            .bind(&now[..10])
            .bind(&procedure);
        let insert_payment = insert_payment
            .bind(&agency)
            .bind(2026_i64)
            .bind(9_999_999_i64);
        let number: i64 = if $fused {
            use sqlx::Row;
            let row = insert_payment.fetch_one(&mut *$tx).await.map_err(e)?;
            row.try_get(1).map_err(e)?
        } else {
            use futures_util::TryStreamExt;
            use sqlx::{Executor, Row};
            let steps: Vec<_> = (&mut *$tx)
                .fetch_many(insert_payment)
                .try_collect()
                .await
                .map_err(e)?;
            let row = steps
                .into_iter()
                .find_map(|step| step.right())
                .ok_or_else(|| "no receipt number was taken".to_owned())?;
            row.try_get(0).map_err(e)?
        };
        let payment = json!({ "channel": "vnpay", "provider_txn_id": paying.txn, "amount": OWED,
            "invoice_id": id, "exception": null, "source": "callback" })
        .to_string();
        let invoice = json!({ "id": id, "payment_code": payment_code, "status": "paid",
            "total": total, "amount_paid": total, "dossier_code": dossier }).to_string();
        let request_id = uuid::Uuid::new_v4().to_string();
        use crate::bench::baseline::Value::{Int, Text};
        let t = |v: &str| Text(Some(v.to_owned()));
        let mut values = vec![
            // The attempt: updated_at, id.
            t(&now), t(&attempt_id),
            // The invoice: amount_paid, status, updated_at, id.
            Int(total), t("paid"), t(&now), t(&id),
            // The receipt.
            t(&id), t(&payment_id), t(&agency), Int(2026), Int(number), t("01BLP0-001"),
            t("AA-26E"), t(&now),
        ];
        // The payment's and the invoice's audit records.
        for (action, object_type, object_id, before, after) in [
            ("payment.recorded", "payment", &payment_id, None, &payment),
            ("invoice.paid", "invoice", &id, Some(&invoice), &invoice),
        ] {
            values.extend([
                t(&now), t("callback:vnpay"), t(action), t(object_type), t(object_id),
                t(&agency), t(&path), Text(before.cloned()), t(after), t(&request_id),
            ]);
        }
        // The two events.
        for (kind, body) in [("payment.received", &payment), ("invoice.paid", &invoice)] {
            let event_id = format!("evt_{}", uuid::Uuid::now_v7().simple());
            values.extend([t(&event_id), t(&agency), t(kind), t(body), t(&now)]);
        }
        let sql = crate::bench::baseline::writes($fused);
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = match value {
                Int(int) => query.bind(int),
                Text(text) => query.bind(text),
            };
        }
        query.execute(&mut *$tx).await.map_err(e)?;
    }};
}

/// A value bound in the baseline's writes.
enum Value {
    Text(Option<String>),
    Int(i64),
}

/// An invoice and the attempt the transaction pays it through.
#[derive(Clone)]
struct Paying {
    order_ref: String,
    txn: String,
}

/// Issues `count` invoices with a VNPay attempt each (through the API),
/// then pays each in one transaction straight on the database.
pub async fn run(
    target: &Target,
    run: &str,
    count: usize,
    mode: Mode,
    setup_concurrency: usize,
    first_txn: i64,
) -> anyhow::Result<Measured> {
    let invoices = issue_invoices(target, run, count, setup_concurrency).await?;
    let paying: Vec<anyhow::Result<Paying>> =
        futures_util::stream::iter(invoices.into_iter().enumerate())
            .map(|(i, invoice)| async move {
                Ok(Paying {
                    order_ref: start_attempt(target, &invoice.id, "vnpay").await?,
                    txn: (first_txn + i as i64).to_string(),
                })
            })
            .buffer_unordered(setup_concurrency.max(1))
            .collect()
            .await;
    let paying: Arc<Vec<Paying>> = Arc::new(paying.into_iter().collect::<anyhow::Result<_>>()?);
    match target.backend {
        Backend::Sqlite => {
            let options: sqlx::sqlite::SqliteConnectOptions = target
                .database_url
                .parse::<sqlx::sqlite::SqliteConnectOptions>()?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(target.pool_size)
                .connect_with(options)
                .await?;
            // SQLite has one writer at a time: writers take turns in
            // order, rather than polling the busy file.
            let turn = Arc::new(tokio::sync::Mutex::new(()));
            let measured = drive(mode, paying.len(), move |i| {
                let pool = pool.clone();
                let paying = paying.clone();
                let turn = turn.clone();
                async move {
                    let _turn = turn.lock().await;
                    let mut tx = pool
                        .begin_with("BEGIN IMMEDIATE")
                        .await
                        .map_err(|e| e.to_string())?;
                    pay!(tx, &paying[i], "", false);
                    tx.commit().await.map_err(|e| e.to_string())
                }
            })
            .await;
            Ok(measured)
        }
        Backend::Postgres => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(target.pool_size)
                .connect(&target.database_url)
                .await?;
            let measured = drive(mode, paying.len(), move |i| {
                let pool = pool.clone();
                let paying = paying.clone();
                async move {
                    let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
                    pay!(tx, &paying[i], " FOR UPDATE OF i", true);
                    tx.commit().await.map_err(|e| e.to_string())
                }
            })
            .await;
            Ok(measured)
        }
    }
}

/// Now, as lephi stores times.
pub(crate) fn now() -> String {
    crate::domain::Timestamp::now().to_stored()
}

macro_rules! insert_payment {
    () => {
        "INSERT INTO payments (id, channel, provider_txn_id, amount,
         invoice_id, attempt_id, agency_code, reference, exception_kind, source, paid_at,
         recorded_at, recorded_by, collected_on, procedure_code)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (channel, provider_txn_id) DO NOTHING"
    };
}

/// The payment's insert with the receipt number's upsert, as lephi sends
/// them to SQLite: two statements in one text.
const INSERT_PAYMENT_THEN_NUMBER: &str = concat!(
    insert_payment!(),
    ";
     INSERT INTO receipt_series (agency_code, year, last_number)
         SELECT $16, $17, 1 WHERE changes() = 1
         ON CONFLICT (agency_code, year) DO UPDATE
             SET last_number = receipt_series.last_number + 1
             WHERE receipt_series.last_number < $18
         RETURNING last_number"
);
/// The payment's insert with the receipt number's upsert, as lephi sends
/// them to PostgreSQL.
const INSERT_PAYMENT_TAKING_NUMBER: &str = concat!(
    "WITH p AS (",
    insert_payment!(),
    " RETURNING 1),
     n AS (INSERT INTO receipt_series (agency_code, year, last_number)
         SELECT $16, $17, 1 FROM p
         ON CONFLICT (agency_code, year) DO UPDATE
             SET last_number = receipt_series.last_number + 1
             WHERE receipt_series.last_number < $18
         RETURNING last_number)
     SELECT (SELECT count(*) FROM p) AS inserted, (SELECT last_number FROM n) AS number"
);

// The five writes that follow the payment, their placeholders numbered
// through all five, as lephi batches them.
const MARK_ATTEMPT: &str = "UPDATE payment_attempts SET status = 'succeeded', updated_at = $1
     WHERE id = $2 AND status <> 'succeeded'";
const PAY_INVOICE: &str = "UPDATE invoices SET amount_paid = $3, status = $4, updated_at = $5
     WHERE id = $6 AND status = 'open'";
const INSERT_RECEIPT: &str = "INSERT INTO receipts (invoice_id, payment_id, agency_code, year,
         number, form_number, symbol, issued_at)
     VALUES ($7, $8, $9, $10, $11, $12, $13, $14)";
const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, actor, action, object_type, object_id,
         agency_code, agency_path, before_state, after_state, request_id)
     VALUES ($15, $16, $17, $18, $19, $20, $21, $22, $23, $24),
            ($25, $26, $27, $28, $29, $30, $31, $32, $33, $34)";
const INSERT_EVENTS: &str = "INSERT INTO outbox_events (id, agency_code, type, payload,
         created_at, status, attempts, next_attempt_at)
     VALUES ($35, $36, $37, $38, $39,
        CASE WHEN EXISTS (SELECT 1 FROM agency_webhooks w WHERE w.agency_code = $36)
        THEN 'pending' ELSE 'held' END, 0, $39),
            ($40, $41, $42, $43, $44,
        CASE WHEN EXISTS (SELECT 1 FROM agency_webhooks w WHERE w.agency_code = $41)
        THEN 'pending' ELSE 'held' END, 0, $44)";

/// The five writes as lephi sends them: one statement on PostgreSQL (each
/// write a part of its `WITH`), one text of five statements on SQLite.
fn writes(fused: bool) -> String {
    let writes = [
        MARK_ATTEMPT,
        PAY_INVOICE,
        INSERT_RECEIPT,
        INSERT_AUDIT,
        INSERT_EVENTS,
    ];
    if !fused {
        return writes.join(";\n");
    }
    let parts: Vec<String> = writes
        .iter()
        .enumerate()
        .map(|(i, sql)| format!("w{i} AS ({sql} RETURNING 1)"))
        .collect();
    let counts: Vec<String> = (0..writes.len())
        .map(|i| format!("(SELECT count(*) FROM w{i})"))
        .collect();
    format!("WITH {} SELECT {}", parts.join(", "), counts.join(", "))
}
