//! Driving a workload and timing it.
//!
//! - **Closed loop**: `concurrency` clients, each sending its next request
//!   when the last is answered. Each latency is recorded corrected for
//!   coordinated omission: a request that took longer than the run's mean
//!   time per request also counts the requests a client on a schedule
//!   would have sent while it waited (`Histogram::record_correct`).
//! - **Fixed rate**: request `i` is due at `start + i / rate`, whatever
//!   happened before, and is timed from when it was due, not from when it
//!   went out: a stall counts against every request it delays.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

/// How requests are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ClosedLoop {
        concurrency: usize,
    },
    FixedRate {
        per_second: u64,
        max_in_flight: usize,
    },
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::ClosedLoop { concurrency } => write!(f, "closed loop, {concurrency} clients"),
            Mode::FixedRate { per_second, .. } => write!(f, "fixed rate, {per_second}/s"),
        }
    }
}

/// What a run measured. Latencies are in microseconds.
pub struct Measured {
    pub mode: Mode,
    pub done: u64,
    pub failed: u64,
    /// The first few failures, to show.
    pub failures: Vec<String>,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `quantile`, in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant figures.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

const FAILURES_KEPT: usize = 5;

/// Runs `request(i)` for every `i` in `0..count`, as `mode` says. A
/// request that returns `Err` counts as failed (and is not retried).
pub async fn drive<F, Fut>(mode: Mode, count: usize, request: F) -> Measured
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    match mode {
        Mode::ClosedLoop { concurrency } => closed_loop(concurrency, count, request).await,
        Mode::FixedRate {
            per_second,
            max_in_flight,
        } => fixed_rate(per_second, max_in_flight, count, request).await,
    }
    .with_mode(mode)
}

struct Collected {
    latencies: Vec<u64>,
    failed: u64,
    failures: Vec<String>,
    elapsed: Duration,
    /// The interval a scheduled client would have sent at, for the
    /// closed loop's correction.
    expected_interval: Option<u64>,
}

impl Collected {
    fn with_mode(self, mode: Mode) -> Measured {
        let mut latency = histogram();
        for &us in &self.latencies {
            let us = us.clamp(1, 600_000_000);
            match self.expected_interval {
                Some(interval) => latency.record_correct(us, interval).ok(),
                None => latency.record(us).ok(),
            };
        }
        Measured {
            mode,
            done: self.latencies.len() as u64,
            failed: self.failed,
            failures: self.failures,
            elapsed: self.elapsed,
            latency,
        }
    }
}

struct Tally {
    latencies: Vec<u64>,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    fn new(capacity: usize) -> Tally {
        Tally {
            latencies: Vec::with_capacity(capacity),
            failed: 0,
            failures: Vec::new(),
        }
    }

    fn add(&mut self, result: Result<(), String>, took: Duration) {
        match result {
            Ok(()) => self
                .latencies
                .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            Err(why) => {
                self.failed += 1;
                if self.failures.len() < FAILURES_KEPT {
                    self.failures.push(why);
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.failed += other.failed;
        for why in other.failures {
            if self.failures.len() < FAILURES_KEPT {
                self.failures.push(why);
            }
        }
    }
}

async fn closed_loop<F, Fut>(concurrency: usize, count: usize, request: F) -> Collected
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let request = request.clone();
            let next = next.clone();
            tokio::spawn(async move {
                let mut tally = Tally::new(count / concurrency.max(1) + 1);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break tally;
                    }
                    let sent = Instant::now();
                    let result = request(i).await;
                    tally.add(result, sent.elapsed());
                }
            })
        })
        .collect();
    let mut all = Tally::new(count);
    for client in clients {
        match client.await {
            Ok(tally) => all.merge(tally),
            Err(err) => all.add(Err(format!("a client stopped: {err}")), Duration::ZERO),
        }
    }
    let elapsed = started.elapsed();
    // Each client sent one request per mean interval.
    let expected_interval = (!all.latencies.is_empty()).then(|| {
        let per_client =
            elapsed.as_micros() as f64 * concurrency.max(1) as f64 / all.latencies.len() as f64;
        (per_client as u64).max(1)
    });
    Collected {
        latencies: all.latencies,
        failed: all.failed,
        failures: all.failures,
        elapsed,
        expected_interval,
    }
}

async fn fixed_rate<F, Fut>(
    per_second: u64,
    max_in_flight: usize,
    count: usize,
    request: F,
) -> Collected
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let request = Arc::new(request);
    let in_flight = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let interval = Duration::from_secs_f64(1.0 / per_second.max(1) as f64);
    let started = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        // Waiting for a free slot delays the request, and the delay counts:
        // its time runs from `due`.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let request = request.clone();
        sent.push(tokio::spawn(async move {
            let result = request(i).await;
            drop(permit);
            (result, due.elapsed())
        }));
    }
    let mut all = Tally::new(count);
    for task in sent {
        match task.await {
            Ok((result, took)) => all.add(result, took),
            Err(err) => all.add(Err(format!("a request stopped: {err}")), Duration::ZERO),
        }
    }
    Collected {
        latencies: all.latencies,
        failed: all.failed,
        failures: all.failures,
        elapsed: started.elapsed(),
        expected_interval: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_loop_runs_every_request_once_and_counts_failures() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let measured = drive(Mode::ClosedLoop { concurrency: 4 }, 100, move |i| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(i);
                if i % 10 == 0 {
                    Err(format!("request {i}"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!((measured.done, measured.failed), (90, 10));
        assert_eq!(measured.failures.len(), FAILURES_KEPT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_rate_times_each_request_from_when_it_was_due() {
        // One slot and requests that take 10 ms, due every 1 ms: each
        // waits for the ones before it, and that wait is its latency.
        let measured = drive(
            Mode::FixedRate {
                per_second: 1000,
                max_in_flight: 1,
            },
            20,
            |_| async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(())
            },
        )
        .await;
        assert_eq!(measured.done, 20);
        // The last request was due at 19 ms and done at 200 ms.
        assert!(measured.ms(1.0) >= 180.0, "{}", measured.ms(1.0));
        assert!(measured.ms(0.0) >= 10.0);
    }

    #[test]
    fn the_closed_loop_correction_adds_the_requests_a_stall_held_back() {
        let collected = Collected {
            latencies: vec![1_000, 1_000, 1_000, 10_000],
            failed: 0,
            failures: vec![],
            elapsed: Duration::from_millis(13),
            expected_interval: Some(1_000),
        };
        let measured = collected.with_mode(Mode::ClosedLoop { concurrency: 1 });
        // 10 ms at a 1 ms interval also stands for 9, 8, ... 1 ms.
        assert_eq!(measured.latency.len(), 3 + 10);
        assert_eq!(measured.done, 4);
    }
}
