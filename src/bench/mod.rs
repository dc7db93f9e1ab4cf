//! `lephi bench`: measures lephi under load, on a fresh database it starts
//! itself (SQLite, or PostgreSQL on a throwaway server with durable
//! commits) or against a lephi running at a URL, and checks after each run
//! that no payment was lost or counted twice.
//!
//! Workloads: `baseline` (one callback's database transaction with no
//! lephi in the way), `callbacks`, `invoices` and `reconcile`. Each prints
//! its throughput and latency percentiles, and its ratio to the baseline
//! measured in the same run.

mod baseline;
mod callbacks;
mod during_import;
mod invariants;
mod load;
pub mod postgres;
mod reconcile;
mod target;

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, bail};

use self::load::{Measured, Mode};
pub use self::target::Backend;
use self::target::{Remote, Start, Target};
use crate::config::Settings;
use crate::store::BatchStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Workload {
    Baseline,
    Callbacks,
    Invoices,
    Reconcile,
    /// Callbacks at a fixed rate while lephi imports a statement of
    /// `--lines` lines.
    DuringImport,
    All,
}

/// `lephi bench` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// What to measure; `all` by default. `callbacks` and `invoices` also
    /// run the baseline, to compare with.
    #[arg(value_enum)]
    pub workloads: Vec<Workload>,
    /// The database of the lephi the bench starts.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub backend: Backend,
    /// A PostgreSQL server (`postgres://user@host:port`) to create the
    /// bench's databases on, instead of starting a throwaway one.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// Measure the lephi running at this URL instead of starting one; needs
    /// --admin-key and --database-url.
    #[arg(long, requires_all = ["admin_key", "database_url"])]
    pub url: Option<String>,
    /// An admin key of the lephi at --url.
    #[arg(long)]
    pub admin_key: Option<String>,
    /// The database of the lephi at --url, to check the invariants on.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Requests in flight at once (closed loop: clients).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Send at this fixed rate per second instead of in a closed loop.
    #[arg(long)]
    pub rate: Option<u64>,
    /// Callbacks, invoices and baseline transactions per workload.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Lines of the reconciled statement.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: usize,
    /// HTTP worker threads of the started lephi; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Database connections of the started lephi (and of the baseline).
    #[arg(long, default_value_t = 16)]
    pub pool: u32,
}

/// One workload's result, as printed.
struct Row {
    workload: &'static str,
    measured: Measured,
    /// On SQLite, how its writers' batches went during the workload.
    batches: Option<BatchStats>,
}

/// The SQLite writers' batch counters of the lephi measured, from the
/// `lephi_sqlite_*` series of its `/metrics`; `None` when it shows none
/// (on PostgreSQL).
async fn read_batches(target: &Target) -> Option<BatchStats> {
    let url = format!("{}/metrics", target.base_url);
    let text = target.http.get(url).send().await.ok()?.text().await.ok()?;
    let series = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .map(str::trim)
    };
    let count = |name: &str| series(name)?.parse::<u64>().ok();
    Some(BatchStats {
        batches: count("lephi_sqlite_write_batches_total")?,
        writes: count("lephi_sqlite_batched_writes_total")?,
        log_pages: count("lephi_sqlite_log_pages_total")?,
        commit_seconds: series("lephi_sqlite_commit_seconds_total")?.parse().ok()?,
        checkpoints: count("lephi_sqlite_checkpoints_total")?,
        checkpoints_at_bound: count("lephi_sqlite_checkpoints_at_bound_total")?,
    })
}

/// How much the counters grew from `before` to `after`.
fn batches_since(before: BatchStats, after: BatchStats) -> BatchStats {
    BatchStats {
        batches: after.batches.saturating_sub(before.batches),
        writes: after.writes.saturating_sub(before.writes),
        log_pages: after.log_pages.saturating_sub(before.log_pages),
        commit_seconds: after.commit_seconds - before.commit_seconds,
        checkpoints: after.checkpoints.saturating_sub(before.checkpoints),
        checkpoints_at_bound: after
            .checkpoints_at_bound
            .saturating_sub(before.checkpoints_at_bound),
    }
}

/// Runs `workload`'s load and reads the SQLite writers' batch counters
/// around it.
async fn measured<F>(target: &Target, load: F) -> (Measured, Option<BatchStats>)
where
    F: std::future::Future<Output = Measured>,
{
    let before = read_batches(target).await;
    let measured = load.await;
    let after = read_batches(target).await;
    let batches = before
        .zip(after)
        .map(|(before, after)| batches_since(before, after));
    (measured, batches)
}

pub async fn run(settings: &Settings, options: Options) -> anyhow::Result<()> {
    let mut workloads = options.workloads.clone();
    if workloads.is_empty() || workloads.contains(&Workload::All) {
        workloads = vec![
            Workload::Baseline,
            Workload::Callbacks,
            Workload::Invoices,
            Workload::Reconcile,
            Workload::DuringImport,
        ];
    }
    if workloads.iter().any(|w| {
        matches!(
            w,
            Workload::Callbacks | Workload::Invoices | Workload::DuringImport
        )
    }) {
        workloads.push(Workload::Baseline);
    }
    workloads.sort();
    workloads.dedup();
    let mode = match options.rate {
        Some(per_second) => Mode::FixedRate {
            per_second,
            max_in_flight: options.concurrency.max(1) * 32,
        },
        None => Mode::ClosedLoop {
            concurrency: options.concurrency,
        },
    };

    let target = match &options.url {
        Some(url) => {
            Target::remote(
                Remote {
                    url: url.clone(),
                    admin_key: options.admin_key.clone().unwrap_or_default(),
                    database_url: options.database_url.clone().unwrap_or_default(),
                },
                settings,
            )
            .await?
        }
        None => {
            Target::start(Start {
                backend: options.backend,
                postgres_url: options.postgres_url.clone(),
                workers: options.workers,
                pool_size: options.pool,
            })
            .await?
        }
    };
    let target = Arc::new(target);
    println!("{}", describe(&target, &options, mode).await?);

    // Each run names its dossiers and transactions apart from earlier runs
    // on the same lephi.
    let run = format!(
        "B{}",
        crate::domain::Timestamp::now()
            .as_datetime()
            .unix_timestamp()
    );
    let first_txn = crate::domain::Timestamp::now()
        .as_datetime()
        .unix_timestamp()
        % 1_000_000
        * 1_000_000;
    let database = target.database().await?;
    let before = invariants::counts(&database).await?;
    let mut sent: i64 = 0;
    let mut written: i64 = 0;
    let mut rows = Vec::new();
    let mut imports = Vec::new();
    let setup = options.concurrency.clamp(1, 64);

    for workload in &workloads {
        match workload {
            Workload::Baseline => {
                let measured = baseline::run(
                    &target,
                    &format!("{run}-base"),
                    options.count,
                    mode,
                    setup,
                    first_txn,
                )
                .await?;
                sent += measured.done as i64;
                rows.push(Row {
                    workload: "baseline",
                    measured,
                    batches: None,
                });
            }
            Workload::Callbacks => {
                let prepared = callbacks::prepare(
                    &target,
                    &format!("{run}-cb"),
                    options.count,
                    setup,
                    first_txn + options.count as i64,
                )
                .await?;
                sent += prepared.transactions as i64;
                let all = Arc::new(prepared.callbacks);
                let count = all.len();
                let sending = target.clone();
                let (measured, batches) = measured(
                    &target,
                    load::drive(mode, count, move |i| {
                        let target = sending.clone();
                        let all = all.clone();
                        async move { callbacks::send(&target, &all[i]).await }
                    }),
                )
                .await;
                rows.push(Row {
                    workload: "callbacks",
                    measured,
                    batches,
                });
            }
            Workload::Invoices => {
                let (measured, batches) = measured(
                    &target,
                    invoices(&target, &format!("{run}-inv"), options.count, mode),
                )
                .await;
                rows.push(Row {
                    workload: "invoices",
                    measured,
                    batches,
                });
            }
            Workload::DuringImport => {
                let during = during_import::run(
                    &target,
                    &format!("{run}-imp"),
                    options.count,
                    options.lines,
                    mode,
                    setup,
                    first_txn + 2 * options.count as i64,
                )
                .await?;
                sent += during.transactions as i64;
                written += during.payments_written as i64;
                imports.push(during);
            }
            Workload::Reconcile | Workload::All => {}
        }
    }

    let after = invariants::counts(&database).await?;
    database.close().await;
    let failed: u64 = rows.iter().map(|r| r.measured.failed).sum();
    for during in imports {
        rows.push(Row {
            workload: "during-imp",
            measured: during.measured,
            batches: None,
        });
        println!(
            "during an import: callbacks sent for {:.2} s while lephi imported a statement of {} lines \
             (uploaded through its API), which took {:.2} s{}",
            during.sending.as_secs_f64(),
            during.lines,
            during.import.as_secs_f64(),
            if during.sending > during.import {
                "; the callbacks outlasted it, so only the first of them measure it"
            } else {
                ""
            },
        );
    }
    if !rows.is_empty() {
        print_rows(&rows);
        invariants::check(&before, &after, sent, written)?;
        println!(
            "invariants hold: {} payments for {sent} distinct transactions, none lost or counted \
             twice, no invoice paid twice, one event per payment{}",
            after.payments - before.payments - written,
            if written > 0 {
                format!(" (besides the {written} a statement settles, written by the bench)")
            } else {
                String::new()
            }
        );
    }

    if workloads.contains(&Workload::Reconcile) {
        let imported = reconcile_fresh(&target, &options).await?;
        println!(
            "reconcile   {} lines in {:.2} s ({:.0} lines/s), peak memory {:.0} MiB ({:.0} MiB its own, the rest the database file mapped); every line matched its payment\n            {}\n            the next day's statement on top, {} lines: {:.2} s; every line matched its payment",
            imported.lines,
            imported.elapsed.as_secs_f64(),
            imported.lines as f64 / imported.elapsed.as_secs_f64().max(1e-9),
            imported.peak_memory as f64 / (1024.0 * 1024.0),
            imported.peak_own_memory as f64 / (1024.0 * 1024.0),
            imported.summary.replace('\n', "\n            "),
            reconcile::NEXT_DAY,
            imported.next_day.as_secs_f64(),
        );
        println!(
            "            the floor, lephi's schema and indexes loaded the plain way with one join: {:.2} s; \
             lephi's import is {:.2} × the floor",
            imported.floor.as_secs_f64(),
            imported.elapsed.as_secs_f64() / imported.floor.as_secs_f64().max(1e-9),
        );
    }
    if failed > 0 {
        bail!("{failed} requests failed");
    }
    Ok(())
}

/// The machine, the database and its durability, the mode.
async fn describe(target: &Target, options: &Options, mode: Mode) -> anyhow::Result<String> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let database = target.database().await?;
    let durability = match target.backend {
        Backend::Sqlite => {
            // lephi sets it on each connection; a fresh one reads the file's
            // journal mode, and lephi's code says FULL.
            "journal_mode=WAL, synchronous=FULL".to_owned()
        }
        Backend::Postgres => {
            let sync: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(&database)
                .await?;
            let fsync: String = sqlx::query_scalar("SHOW fsync")
                .fetch_one(&database)
                .await?;
            format!("synchronous_commit={sync}, fsync={fsync}")
        }
    };
    database.close().await;
    let mut text = String::new();
    writeln!(
        text,
        "lephi bench: {} ({durability}), {cores} cores, {mode}, {} requests per workload, pool {}",
        target.backend, options.count, target.pool_size
    )?;
    write!(
        text,
        "lephi at {} {}",
        target.base_url,
        if options.url.is_some() {
            "(running)"
        } else {
            "(started by the bench, load generator in the same process)"
        }
    )?;
    Ok(text)
}

/// Issues `count` invoices, each with its own idempotency key.
async fn invoices(target: &Arc<Target>, run: &str, count: usize, mode: Mode) -> Measured {
    let target = target.clone();
    let run = run.to_owned();
    load::drive(mode, count, move |i| {
        let target = target.clone();
        let run = run.clone();
        async move { callbacks::issue_invoice(&target, &run, i).await.map(drop) }
    })
    .await
}

/// The reconcile workload on a fresh database of the target's kind.
async fn reconcile_fresh(
    target: &Target,
    options: &Options,
) -> anyhow::Result<reconcile::Imported> {
    let dir = tempfile::Builder::new().prefix("lephi-bench-").tempdir()?;
    let database_url = match target.backend {
        Backend::Sqlite => format!("sqlite://{}/reconcile.db?mode=rwc", dir.path().display()),
        Backend::Postgres => {
            let server_url = options
                .postgres_url
                .clone()
                .unwrap_or_else(|| target.database_url.clone());
            postgres::Server::at(&server_url)
                .fresh_database_url("lephi_bench_reconcile")
                .await
                .map_err(anyhow::Error::msg)?
        }
    };
    reconcile::run(&database_url, dir.path(), options.lines)
        .await
        .context("the reconcile workload")
}

/// The share of its rate a fixed-rate workload must have kept to be
/// compared by latency.
const KEPT_RATE: f64 = 0.95;

/// A workload's figures as a ratio to the baseline's: its throughput in a
/// closed loop, its p99 at a fixed rate. A baseline that fell behind the
/// rate has for latency the length of its queue, which grows with the
/// run: then the throughputs are compared, and the line says why.
fn ratio_to_baseline(measured: &Measured, baseline: &Measured) -> String {
    let throughput = measured.per_second() / baseline.per_second().max(1e-9);
    match measured.mode {
        Mode::FixedRate { per_second, .. }
            if baseline.per_second() < KEPT_RATE * per_second as f64 =>
        {
            format!("{throughput:.2} × its throughput (the baseline fell behind the rate)")
        }
        Mode::FixedRate { .. } => format!(
            "{:.2} × its p99",
            measured.ms(0.99) / baseline.ms(0.99).max(1e-9)
        ),
        Mode::ClosedLoop { .. } => format!("{throughput:.2} × its throughput"),
    }
}

fn print_rows(rows: &[Row]) {
    let baseline = rows.iter().find(|r| r.workload == "baseline");
    println!(
        "{:<10} {:>8} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9}  vs baseline",
        "workload", "done", "failed", "per second", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
    );
    for row in rows {
        let m = &row.measured;
        let ratio = baseline
            .map(|base| ratio_to_baseline(m, &base.measured))
            .unwrap_or_default();
        println!(
            "{:<10} {:>8} {:>6} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {}",
            row.workload,
            m.done,
            m.failed,
            m.per_second(),
            m.ms(0.5),
            m.ms(0.99),
            m.ms(0.999),
            m.ms(1.0),
            ratio
        );
        for why in &m.failures {
            println!("           failed: {why}");
        }
    }
    for row in rows {
        let Some(b) = row.batches.filter(|b| b.batches > 0) else {
            continue;
        };
        let (batches, writes) = (b.batches as f64, b.writes as f64);
        println!(
            "{:<10} SQLite commits: {:.0} batches of {:.1} writes, {:.1} log pages per write, \
             {:.2} ms per commit, committing {:.0}% of the time; {} checkpoints, \
             {} by commits at the log's bound",
            row.workload,
            batches,
            writes / batches,
            b.log_pages as f64 / writes.max(1.0),
            b.commit_seconds * 1000.0 / batches,
            b.commit_seconds / row.measured.elapsed.as_secs_f64().max(1e-9) * 100.0,
            b.checkpoints,
            b.checkpoints_at_bound,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// `done` requests over `secs` seconds in `mode`, each taking `ms`.
    fn measured(mode: Mode, done: u64, secs: u64, ms: u64) -> Measured {
        let mut latency = hdrhistogram::Histogram::new(3).unwrap();
        latency.record_n(ms * 1000, done).unwrap();
        Measured {
            mode,
            done,
            failed: 0,
            failures: Vec::new(),
            elapsed: Duration::from_secs(secs),
            latency,
        }
    }

    fn fixed_rate(per_second: u64) -> Mode {
        Mode::FixedRate {
            per_second,
            max_in_flight: 1000,
        }
    }

    #[test]
    fn a_closed_loop_is_compared_by_throughput() {
        let mode = Mode::ClosedLoop { concurrency: 32 };
        let ratio = ratio_to_baseline(&measured(mode, 3000, 1, 10), &measured(mode, 1000, 1, 30));
        assert_eq!(ratio, "3.00 × its throughput");
    }

    #[test]
    fn a_fixed_rate_is_compared_by_p99_when_the_baseline_kept_the_rate() {
        let mode = fixed_rate(1000);
        let ratio = ratio_to_baseline(&measured(mode, 980, 1, 4), &measured(mode, 960, 1, 2));
        assert_eq!(ratio, "2.00 × its p99");
    }

    #[test]
    fn a_fixed_rate_is_compared_by_throughput_when_the_baseline_fell_behind() {
        let mode = fixed_rate(1500);
        // The baseline's queue makes its latency seconds long.
        let ratio = ratio_to_baseline(
            &measured(mode, 1500, 10, 8),
            &measured(mode, 1200, 10, 2400),
        );
        assert_eq!(
            ratio,
            "1.25 × its throughput (the baseline fell behind the rate)"
        );
    }
}
