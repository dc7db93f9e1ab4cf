//! `lephi bench` itself, at a small size: it starts lephi on a fresh
//! database, runs every workload, prints its figures and checks the
//! invariants, on both backends.

use std::process::Command;

use crate::helpers::Backend;
use crate::on_both_backends;
use crate::postgres_server;

on_both_backends!(the_bench_runs_every_workload_and_checks_the_invariants);

async fn the_bench_runs_every_workload_and_checks_the_invariants(backend: Backend) {
    let mut bench = Command::new(env!("CARGO_BIN_EXE_lephi"));
    bench.args([
        "bench",
        "all",
        "--count",
        "200",
        "--lines",
        "3000",
        "--concurrency",
        "8",
        "--pool",
        "4",
        "--workers",
        "1",
    ]);
    match backend {
        Backend::Sqlite => bench.args(["--backend", "sqlite"]),
        Backend::Postgres => {
            let url = postgres_server::fresh_database_url().await;
            bench.args(["--backend", "postgres", "--postgres-url", &url])
        }
    };
    let output = bench.output().expect("lephi bench runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{out}\n{err}");
    for workload in ["baseline", "callbacks", "invoices", "during-imp"] {
        let row = out
            .lines()
            .find(|line| line.starts_with(workload))
            .unwrap_or_else(|| panic!("no {workload} row:\n{out}"));
        let fields: Vec<&str> = row.split_whitespace().collect();
        // workload, done, failed, per second, p50, p99, p99.9, max, ratio
        let done: u64 = fields[1].parse().unwrap();
        assert!(done >= 200, "{row}");
        assert_eq!(fields[2], "0", "{row}");
        let p50: f64 = fields[4].parse().unwrap();
        let p999: f64 = fields[6].parse().unwrap();
        assert!(p50 > 0.0 && p50 <= p999, "{row}");
        // Callbacks during an import go at a fixed rate whatever the run's.
        assert!(
            row.contains("× its throughput") || workload == "during-imp",
            "{row}"
        );
    }
    // A tenth of the callbacks are sent twice: 220 requests, 200 payments,
    // with the baseline's 200 and the 200 sent during an import.
    assert!(
        out.contains("invariants hold: 600 payments for 600 distinct transactions"),
        "{out}"
    );
    assert!(out.contains("3000 lines in"), "{out}");
    assert!(out.contains("every line matched its payment"), "{out}");
    // The import's own peak memory, read while it ran.
    let peak: f64 = out
        .split("peak memory ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|mib| mib.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory:\n{out}"));
    assert!(peak > 1.0, "{out}");
    assert!(
        out.contains("the next day's statement on top, 1000 lines:"),
        "{out}"
    );
    // The floor, measured in the same run, and lephi's ratio to it.
    let ratio: f64 = out
        .split("lephi's import is ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ratio| ratio.parse().ok())
        .unwrap_or_else(|| panic!("no ratio to the floor:\n{out}"));
    assert!(ratio > 0.0, "{out}");
    assert!(
        out.contains("while lephi imported a statement of 3000 lines"),
        "{out}"
    );
}
