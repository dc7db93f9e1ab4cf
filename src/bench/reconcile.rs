//! The `reconcile` workload: a month of VNPay payments and the settlement
//! statement that settles them, imported with `lephi settlement import` as
//! a finance officer runs it, in a process of its own so that its time and
//! peak memory are its own.
//!
//! The payments are written straight into a fresh database (setting up a
//! million through callbacks would take the bench minutes), in the order
//! they were collected; the statement is generated in the canonical
//! profile, one line per payment, listed by transaction time as providers
//! list them, each hundred lines shuffled among themselves.

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
    /// Peak resident memory of the importing process, in bytes.
    pub peak_memory: u64,
    pub summary: String,
}

const AGENCY: &str = "RECON";

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
    if database_url.starts_with("postgres") {
        // A month of payments has statistics by the time its statement
        // comes (autovacuum analyzes them); a bulk insert just made has not.
        sqlx::query("ANALYZE").execute(&pool).await?;
    } else {
        // A month of payments is in the database file by the time its
        // statement comes (a running lephi checkpoints its log as it
        // grows); a bulk insert just made is all in the log, which every
        // page the import reads would be looked up in first.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&pool)
            .await?;
    }
    let file = dir.join("statement.csv");
    write_statement(&file, lines)?;

    let started = Instant::now();
    let import = Command::new(&lephi)
        .args([
            "settlement",
            "import",
            "--channel",
            "vnpay",
            "--profile",
            "canonical",
        ])
        .arg(&file)
        .env("LEPHI__DATABASE__URL", database_url)
        .env("LEPHI__LOG__LEVEL", "warn")
        .output()?;
    let elapsed = started.elapsed();
    let peak_memory = peak_memory_of_children();
    if !import.status.success() {
        bail!(
            "lephi settlement import: {}",
            String::from_utf8_lossy(&import.stderr)
        );
    }
    let matched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM settlement_lines WHERE outcome = 'matched' AND payment_id IS NOT NULL",
    )
    .fetch_one(&pool)
    .await?;
    let exceptions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payment_exceptions")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    if matched != lines as i64 || exceptions != 0 {
        bail!(
            "INVARIANTS BROKEN: {matched} of {lines} lines matched their payment, {exceptions} exceptions raised"
        );
    }
    Ok(Imported {
        lines,
        elapsed,
        peak_memory,
        summary: String::from_utf8_lossy(&import.stdout).trim().to_owned(),
    })
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

async fn insert_payments(pool: &sqlx::AnyPool, count: usize) -> anyhow::Result<()> {
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
    const ROWS: usize = 500;
    let mut n = 0;
    while n < count {
        let rows = ROWS.min(count - n);
        let mut sql = String::from(
            "INSERT INTO payments (id, channel, provider_txn_id, amount, invoice_id, attempt_id,
                 agency_code, reference, exception_kind, source, paid_at, recorded_at, recorded_by,
                 collected_on, procedure_code) VALUES ",
        );
        for i in n..n + rows {
            let (day, at) = paid_at(i, count);
            let at = Timestamp::parse_rfc3339(&at)
                .context("a bench payment time")?
                .to_stored();
            if i > n {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('bench-{i:08}', 'vnpay', '{txn}', {OWED}, NULL, NULL, '{AGENCY}', 'REF{i:08}', NULL,
                  'callback', '{at}', '{at}', 'bench', '{day}', '1.004227')",
                txn = 20_000_000 + i
            ));
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await?;
        n += rows;
    }
    tx.commit().await?;
    Ok(())
}

/// The statement of `count` payments, in the order a provider lists its
/// transactions (by time), each hundred lines shuffled among themselves.
fn write_statement(file: &Path, count: usize) -> anyhow::Result<()> {
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
        let (day, at) = paid_at(i, count);
        let settled = (day[8..].parse::<u32>().unwrap_or(1) + rng.random_range(1..=2)).min(30);
        writeln!(
            out,
            "{},REF{i:08},{OWED},1650,{at},2026-11-{settled:02}",
            20_000_000 + i
        )?;
    }
    out.flush()?;
    Ok(())
}

/// The largest peak resident memory of the child processes waited for.
fn peak_memory_of_children() -> u64 {
    // SAFETY: getrusage writes into the struct given, which lives here.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } == 0;
    if ok {
        // Linux reports kilobytes.
        u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024
    } else {
        0
    }
}
