//! The `during-import` workload: callbacks sent at a fixed rate to the
//! lephi measured while it imports a statement of `--lines` lines,
//! uploaded through its API as a finance officer would. Its latencies are
//! the callbacks' while the import job runs; the import's own time is
//! printed beside them, with how much of the callbacks it overlapped.
//!
//! The statement's payments are written straight into the lephi's
//! database first, as the reconcile workload writes them, so that the
//! import matches every line.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::load::{self, Measured, Mode};
use super::target::Target;
use super::{callbacks, reconcile};

/// What the workload measured.
pub struct DuringImport {
    /// The callbacks', sent while the import ran.
    pub measured: Measured,
    /// Distinct transactions the callbacks carry.
    pub transactions: usize,
    /// Payments written for the statement, to count with those sent.
    pub payments_written: usize,
    /// From the upload's answer to the import's end.
    pub import: Duration,
    /// How long the callbacks took to send; past the import's end, they
    /// no longer measure anything but themselves.
    pub sending: Duration,
    /// Lines of the statement.
    pub lines: usize,
}

/// The rate callbacks are sent at when the bench is not given one.
const DEFAULT_RATE: u64 = 200;

pub async fn run(
    target: &Arc<Target>,
    run: &str,
    count: usize,
    lines: usize,
    mode: Mode,
    setup: usize,
    first_txn: i64,
) -> anyhow::Result<DuringImport> {
    let mode = match mode {
        Mode::FixedRate { .. } => mode,
        Mode::ClosedLoop { concurrency } => Mode::FixedRate {
            per_second: DEFAULT_RATE,
            max_in_flight: concurrency.max(1) * 32,
        },
    };
    let pool = target.database().await?;
    reconcile::insert_payments(&pool, lines).await?;
    reconcile::settle_in(&pool, &target.database_url).await?;
    pool.close().await;
    let dir = tempfile::Builder::new()
        .prefix("lephi-bench-import-")
        .tempdir()?;
    let file = dir.path().join("statement.csv");
    reconcile::write_statement(&file, lines)?;
    let prepared = callbacks::prepare(target, run, count, setup, first_txn).await?;
    let transactions = prepared.transactions;
    let all = Arc::new(prepared.callbacks);

    let body = tokio::fs::read(&file).await?;
    let started = Instant::now();
    let queued = target
        .http
        .post(format!(
            "{}/v1/settlements?channel=vnpay&profile=canonical",
            target.base_url
        ))
        .bearer_auth(&target.admin_key)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .context("the statement's upload")?;
    let status = queued.status();
    let answer: serde_json::Value = queued.json().await.context("the upload's answer")?;
    if status.as_u16() != 202 {
        bail!("the statement's upload was answered {status}: {answer}");
    }
    let id = answer["id"].as_str().unwrap_or_default().to_owned();
    // The import runs in lephi from here; the callbacks go meanwhile.
    let watching = {
        let target = target.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let end = wait_for(&target, &id).await;
            end.map(|status| (status, started.elapsed()))
        })
    };
    let sending = Instant::now();
    let count = all.len();
    let sender = target.clone();
    let measured = load::drive(mode, count, move |i| {
        let target = sender.clone();
        let all = all.clone();
        async move { callbacks::send(&target, &all[i]).await }
    })
    .await;
    let sending = sending.elapsed();
    let (end, import) = watching.await.context("the import's watch")??;
    if end != "done" {
        bail!("the statement's import ended {end}");
    }
    Ok(DuringImport {
        measured,
        transactions,
        payments_written: lines + reconcile::NEXT_DAY,
        import,
        sending,
        lines,
    })
}

/// Waits for import `id` to end; answers its status.
async fn wait_for(target: &Target, id: &str) -> anyhow::Result<String> {
    loop {
        let view: serde_json::Value = target
            .http
            .get(format!("{}/v1/settlements/{id}", target.base_url))
            .bearer_auth(&target.admin_key)
            .send()
            .await?
            .json()
            .await?;
        match view["status"].as_str() {
            Some(status @ ("done" | "refused")) => return Ok(status.to_owned()),
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            None => bail!("the import's view: {view}"),
        }
    }
}
