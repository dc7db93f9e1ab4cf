//! The `reconcile` workload: a month of VNPay payments and the settlement
//! statement that settles them, imported with `lephi settlement import` as
//! a finance officer runs it, in a process of its own so that its time and
//! peak memory are its own.
//!
//! The payments are written straight into a fresh database (setting up a
//! million through callbacks would take the bench minutes), in the order
//! they were collected; the statement is generated in the canonical
//! profile, one line per payment, listed by transaction time as providers
//! list them, each hundred lines shuffled among themselves. Then the next
//! day's statement, of the next day's payments, is imported on top: its
//! time shows what a month of history costs each later import.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::callbacks::OWED;
use crate::domain::Timestamp;

/// What one import measured.
pub struct Imported {
    pub lines: usize,
    pub elapsed: Duration,
    /// How long the next day's statement took, on top of it.
    pub next_day: Duration,
    /// Peak resident memory of the importing process, in bytes.
    pub peak_memory: u64,
    /// Of it, the most that was the process's own (anonymous) memory; the
    /// rest is the database file, mapped (SQLite's writer maps it).
    pub peak_own_memory: u64,
    pub summary: String,
    /// The same statement into a table of lephi's own schema and
    /// indexes, loaded the fastest plain way, then matched with one join.
    pub floor: Duration,
}

const AGENCY: &str = "RECON";
/// Payments collected the day after the month, and the lines of their
/// statement.
pub const NEXT_DAY: usize = 1_000;

/// Fills a fresh database at `database_url` with `lines` payments, writes
/// their statement to `dir`, imports it, and checks that every line
/// matched its payment.
pub async fn run(database_url: &str, dir: &Path, lines: usize) -> anyhow::Result<Imported> {
    let lephi = std::env::current_exe().context("the bench finds its own program")?;
    let migrate = Command::new(&lephi)
        .arg("migrate")
        .env("LEPHI__DATABASE__URL", database_url)
        .env("LEPHI__LOG__LEVEL", "warn")
        .output()?;
    if !migrate.status.success() {
        bail!(
            "lephi migrate: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    insert_payments(&pool, lines).await?;
    settle_in(&pool, database_url).await?;
    let file = dir.join("statement.csv");
    write_statement(&file, lines)?;
    let (elapsed, (peak_memory, peak_own_memory), summary) = import(&lephi, database_url, &file)?;
    check(&pool, lines).await?;

    let next = dir.join("next-day.csv");
    write_next_day(&next)?;
    let (next_day, _, _) = import(&lephi, database_url, &next)?;
    check(&pool, lines + NEXT_DAY).await?;
    pool.close().await;
    let floor = floor(database_url, &file, lines).await?;
    Ok(Imported {
        lines,
        elapsed,
        next_day,
        peak_memory,
        peak_own_memory,
        summary,
        floor,
    })
}

/// The floor for the statement `file` on the database at `database_url`,
/// where its payments are: a table of `settlement_lines`' own columns,
/// checks and indexes, into which the statement is loaded the fastest
/// plain way (one transaction: multi-row prepared inserts on SQLite, COPY
/// on PostgreSQL, into a bare staging table) and matched with one join
/// against the payments. Checks that every line matched; drops its tables.
async fn floor(database_url: &str, file: &Path, lines: usize) -> anyhow::Result<Duration> {
    let elapsed = if database_url.starts_with("postgres") {
        floor_postgres(database_url, file).await?
    } else {
        floor_sqlite(database_url, file).await?
    };
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(database_url)
        .await?;
    let matched: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM floor_lines WHERE outcome = 'matched'")
            .fetch_one(&pool)
            .await?;
    for table in ["floor_lines", "floor_staging"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(&pool)
            .await?;
    }
    pool.close().await;
    if matched != lines as i64 {
        bail!("the floor matched {matched} of {lines} lines");
    }
    Ok(elapsed)
}

/// The one join of the floor: each staged line with the payment of its
/// transaction id, its outcome by amount.
const FLOOR_JOIN: &str =
    "INSERT INTO floor_lines (file_id, line_no, channel, txn_ref, reference, amount,
         fee, transaction_time, settlement_date, outcome, payment_id, agency_code)
     SELECT (SELECT MIN(id) FROM settlement_files), s.line_no, 'vnpay', s.txn_ref, s.reference,
         s.amount, s.fee, s.transaction_time, s.settlement_date,
         CASE WHEN p.id IS NULL THEN 'missing_payment'
              WHEN p.amount = s.amount THEN 'matched' ELSE 'amount_mismatch' END,
         p.id, p.agency_code
     FROM floor_staging s
     LEFT JOIN payments p ON p.channel = 'vnpay' AND p.provider_txn_id = s.txn_ref";

async fn floor_sqlite(database_url: &str, file: &Path) -> anyhow::Result<Duration> {
    use sqlx::Connection;
    let mut conn = sqlx::sqlite::SqliteConnection::connect(database_url).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    // lephi's own table and indexes, under another name.
    let schema: Vec<String> = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master
         WHERE tbl_name = 'settlement_lines' AND type IN ('table', 'index') AND sql IS NOT NULL
         ORDER BY type = 'index'",
    )
    .fetch_all(&mut conn)
    .await?;
    for sql in schema {
        sqlx::query(sqlx::AssertSqlSafe(
            sql.replace("settlement_lines", "floor_lines"),
        ))
        .execute(&mut conn)
        .await?;
    }
    sqlx::query(
        "CREATE TABLE floor_staging (line_no INTEGER NOT NULL, txn_ref TEXT NOT NULL,
             reference TEXT NOT NULL, amount INTEGER NOT NULL, fee INTEGER NOT NULL,
             transaction_time TEXT NOT NULL, settlement_date TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    const ROWS: usize = 100;
    let insert = |rows: usize| {
        let mut sql = String::from("INSERT INTO floor_staging VALUES ");
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?, ?, ?, ?, ?, ?)");
        }
        sql
    };
    let full = insert(ROWS);
    let text = std::fs::read_to_string(file)?;
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    let mut rows: Vec<(i64, Vec<&str>)> = Vec::with_capacity(ROWS);
    for (n, line) in text.lines().enumerate().skip(1) {
        rows.push((n as i64 + 1, line.split(',').collect()));
        if rows.len() == ROWS {
            bind_rows(sqlx::query(sqlx::AssertSqlSafe(full.as_str())), &rows)?
                .execute(&mut *tx)
                .await?;
            rows.clear();
        }
    }
    if !rows.is_empty() {
        bind_rows(sqlx::query(sqlx::AssertSqlSafe(insert(rows.len()))), &rows)?
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(FLOOR_JOIN).execute(&mut *tx).await?;
    tx.commit().await?;
    let elapsed = started.elapsed();
    conn.close().await?;
    Ok(elapsed)
}

/// Binds the staged rows' values, in the canonical profile's order.
fn bind_rows<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    rows: &'q [(i64, Vec<&'q str>)],
) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>> {
    for (line_no, fields) in rows {
        let [txn, reference, amount, fee, at, day] = fields[..] else {
            bail!(
                "line {line_no} of the statement has {} fields",
                fields.len()
            );
        };
        query = query
            .bind(*line_no)
            .bind(txn)
            .bind(reference)
            .bind(amount.parse::<i64>()?)
            .bind(fee.parse::<i64>()?)
            .bind(at)
            .bind(day);
    }
    Ok(query)
}

async fn floor_postgres(database_url: &str, file: &Path) -> anyhow::Result<Duration> {
    use sqlx::Connection;
    let mut conn = sqlx::postgres::PgConnection::connect(database_url).await?;
    sqlx::query("CREATE TABLE floor_lines (LIKE settlement_lines INCLUDING ALL)")
        .execute(&mut conn)
        .await?;
    sqlx::query(
        "CREATE TABLE floor_staging (line_no BIGINT GENERATED ALWAYS AS IDENTITY (START 2),
             txn_ref TEXT NOT NULL, reference TEXT NOT NULL, amount BIGINT NOT NULL,
             fee BIGINT NOT NULL, transaction_time TEXT NOT NULL, settlement_date TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    let started = Instant::now();
    let mut tx = conn.begin().await?;
    let mut copy = tx
        .copy_in_raw(
            "COPY floor_staging (txn_ref, reference, amount, fee, transaction_time, settlement_date)
             FROM STDIN (FORMAT csv, HEADER true)",
        )
        .await?;
    copy.read_from(tokio::fs::File::open(file).await?).await?;
    copy.finish().await?;
    sqlx::query("ANALYZE floor_staging")
        .execute(&mut *tx)
        .await?;
    sqlx::query(FLOOR_JOIN).execute(&mut *tx).await?;
    tx.commit().await?;
    let elapsed = started.elapsed();
    conn.close().await?;
    Ok(elapsed)
}

/// Leaves payments just written as a month of them would be by the time
/// their statement comes.
pub(super) async fn settle_in(pool: &sqlx::AnyPool, database_url: &str) -> anyhow::Result<()> {
    if database_url.starts_with("postgres") {
        // A month of payments has statistics by then (autovacuum analyzes
        // them); a bulk insert just made has not.
        sqlx::query("ANALYZE").execute(pool).await?;
    } else {
        // A month of payments is in the database file by then (a running
        // lephi checkpoints its log as it grows); a bulk insert just made
        // is all in the log, which every page the import reads would be
        // looked up in first.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Imports the VNPay statement `file` as a finance officer does, in a
/// process of its own; answers how long it took, its peak resident
/// memory (and the most of it that was its own), and the summary it printed.
///
/// The peak is the process's own high-water mark, read from `/proc`
/// while it runs: what `getrusage` says of a child includes the bench's
/// own peak, which a child started by `vfork` inherits.
fn import(
    lephi: &Path,
    database_url: &str,
    file: &Path,
) -> anyhow::Result<(Duration, (u64, u64), String)> {
    use std::process::Stdio;
    let started = Instant::now();
    let mut child = Command::new(lephi)
        .args([
            "settlement",
            "import",
            "--channel",
            "vnpay",
            "--profile",
            "canonical",
        ])
        .arg(file)
        .env("LEPHI__DATABASE__URL", database_url)
        .env("LEPHI__LOG__LEVEL", "warn")
        .env(
            "LEPHI__RECONCILIATION__UPLOAD_DIR",
            file.with_file_name("uploads"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status_file = format!("/proc/{}/status", child.id());
    let (mut peak_memory, mut own) = (0, 0);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        peak_memory = peak_memory.max(status_bytes(&status_file, "VmHWM:").unwrap_or(0));
        own = own.max(status_bytes(&status_file, "RssAnon:").unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        bail!(
            "lephi settlement import: {}",
            String::from_utf8_lossy(&stderr)
        );
    }
    let summary = String::from_utf8_lossy(&stdout).trim().to_owned();
    Ok((elapsed, (peak_memory, own), summary))
}

/// Reads `pipe` to its end on a thread of its own, as it is written, so
/// that a child with much to say never waits on a full pipe.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            drop(pipe.read_to_end(&mut text));
        }
        text
    })
}

/// A figure of a running process's `/proc/PID/status` (`VmHWM:`, its peak
/// resident memory so far; `RssAnon:`, its own memory now), in bytes.
fn status_bytes(status_file: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Checks that `lines` lines matched their payments, and nothing else was
/// found.
async fn check(pool: &sqlx::AnyPool, lines: usize) -> anyhow::Result<()> {
    let matched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM settlement_lines WHERE outcome = 'matched' AND payment_id IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    let exceptions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payment_exceptions")
        .fetch_one(pool)
        .await?;
    if matched != lines as i64 || exceptions != 0 {
        bail!(
            "INVARIANTS BROKEN: {matched} of {lines} lines matched their payment, {exceptions} exceptions raised"
        );
    }
    Ok(())
}

/// The day and time payment `n` of `count` was collected: in order, spread
/// over November 2026 (UTC), as a month's callbacks arrive.
fn paid_at(n: usize, count: usize) -> (String, String) {
    let second = (n as u64 * 28 * 86_400 / count.max(1) as u64) as usize;
    let day = 1 + second / 86_400;
    let second = second % 86_400;
    (
        format!("2026-11-{day:02}"),
        format!(
            "2026-11-{day:02}T{:02}:{:02}:{:02}Z",
            second / 3600,
            second / 60 % 60,
            second % 60
        ),
    )
}

/// Payment `n` of the month's `count`: its day, time, transaction id and
/// order reference.
fn month_payment(n: usize, count: usize) -> (String, String, usize, String) {
    let (day, at) = paid_at(n, count);
    (day, at, 20_000_000 + n, format!("REF{n:08}"))
}

/// Payment `n` of the next day's (29 November).
fn next_day_payment(n: usize) -> (String, String, usize, String) {
    let second = n * 86_400 / NEXT_DAY;
    let at = format!(
        "2026-11-29T{:02}:{:02}:{:02}Z",
        second / 3600,
        second / 60 % 60,
        second % 60
    );
    (
        "2026-11-29".to_owned(),
        at,
        30_000_000 + n,
        format!("NEXT{n:08}"),
    )
}

pub(super) async fn insert_payments(pool: &sqlx::AnyPool, count: usize) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO agencies (code, name, level, parent_code, path, created_at, updated_at)
         VALUES ($1, 'Reconciliation bench', 'province', NULL, $2, $3, $3)",
    )
    .bind(AGENCY)
    .bind(format!("/{AGENCY}/"))
    .bind("2026-11-01T00:00:00Z")
    .execute(&mut *tx)
    .await
    .context("the bench agency")?;
    let payments: Vec<_> = (0..count)
        .map(|n| month_payment(n, count))
        .chain((0..NEXT_DAY).map(next_day_payment))
        .collect();
    for rows in payments.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO payments (id, channel, provider_txn_id, amount, invoice_id, attempt_id,
                 agency_code, reference, exception_kind, source, paid_at, recorded_at, recorded_by,
                 collected_on, procedure_code) VALUES ",
        );
        for (i, (day, at, txn, reference)) in rows.iter().enumerate() {
            let at = Timestamp::parse_rfc3339(at).context("a bench payment time")?;
            // Recorded as it was paid: its id is of that time, as lephi's.
            let time = at.as_datetime();
            let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(time.unix_timestamp()).context("a bench payment time")?,
                time.nanosecond(),
            ));
            let at = at.to_stored();
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{id}', 'vnpay', '{txn}', {OWED}, NULL, NULL, '{AGENCY}', '{reference}', NULL,
                  'callback', '{at}', '{at}', 'bench', '{day}', '1.004227')"
            ));
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The statement of `count` payments, in the order a provider lists its
/// transactions (by time), each hundred lines shuffled among themselves.
pub(super) fn write_statement(file: &Path, count: usize) -> anyhow::Result<()> {
    let mut order: Vec<usize> = (0..count).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for block in order.chunks_mut(100) {
        block.shuffle(&mut rng);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    writeln!(
        out,
        "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date"
    )?;
    for i in order {
        let (day, at, txn, reference) = month_payment(i, count);
        let settled = (day[8..].parse::<u32>().unwrap_or(1) + rng.random_range(1..=2)).min(30);
        writeln!(
            out,
            "{txn},{reference},{OWED},1650,{at},2026-11-{settled:02}"
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The next day's statement: its payments, settled on 1 December.
fn write_next_day(file: &Path) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(file)?);
    writeln!(
        out,
        "provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date"
    )?;
    for n in 0..NEXT_DAY {
        let (_, at, txn, reference) = next_day_payment(n);
        writeln!(out, "{txn},{reference},{OWED},1650,{at},2026-12-01")?;
    }
    out.flush()?;
    Ok(())
}
