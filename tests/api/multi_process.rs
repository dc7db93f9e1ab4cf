//! Two `lephi serve` processes on one PostgreSQL database, as behind a load
//! balancer: each signed callback goes to both at once, and both dispatch
//! the outbox. Each payment is still recorded once, and no event is ever
//! delivered by both at the same time.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use crate::helpers::{Backend, database_url};
use crate::process::{
    Mix, Receiver, assert_every_event_delivered, assert_ledger, send_all, serve, set_up,
    wait_for_outbox,
};

const MIX: Mix = Mix {
    vnpay: 800,
    momo: 800,
    zalopay: 800,
    sepay: 700,
    casso: 600,
    paid_twice: 200,
    duplicates: 1_100,
};

/// Webhook deliveries a process made, as its `/metrics` counts them.
async fn delivered_by(address: &str) -> u64 {
    let metrics = reqwest::get(format!("{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix(r#"lephi_webhook_deliveries_total{outcome="delivered"} "#)
        })
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_record_once_and_never_deliver_an_event_twice_at_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(Backend::Postgres, dir.path()).await;
    let provider_api = wiremock::MockServer::start().await;
    // Each delivery is held a while, so that two at once would overlap.
    let receiver = Receiver::start(Duration::from_millis(20)).await;
    let one = serve(
        &url,
        "127.0.0.1:0",
        &provider_api.uri(),
        &dir.path().join("one.log"),
    )
    .await;
    let two = serve(
        &url,
        "127.0.0.1:0",
        &provider_api.uri(),
        &dir.path().join("two.log"),
    )
    .await;
    let admin_key = one.admin_key.clone().expect("an admin key");
    assert_eq!(two.admin_key, None, "one admin key for the database");
    let scene = set_up(&one.address, &admin_key, &provider_api, &receiver, MIX).await;
    let set_up_in = started.elapsed();

    let addresses = vec![one.address.clone(), two.address.clone()];
    let callbacks = Arc::new(scene.callbacks.clone());
    let sent = send_all(callbacks, addresses, 32, Arc::new(AtomicUsize::new(0))).await;
    assert_eq!(sent.acknowledged, MIX.callbacks());

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let ledger = wait_for_outbox(&pool, Duration::from_secs(120)).await;
    let done_in = started.elapsed() - set_up_in;
    assert_ledger(&pool, &scene).await;
    let again = assert_every_event_delivered(&receiver, &ledger);
    let mut overlaps = Vec::new();
    for (id, mut deliveries) in receiver.deliveries() {
        deliveries.sort_by_key(|d| d.started);
        for pair in deliveries.windows(2) {
            if pair[1].started < pair[0].ended {
                overlaps.push(id.clone());
            }
        }
    }
    assert!(
        overlaps.is_empty(),
        "events delivered twice at once: {overlaps:?}"
    );
    let (by_one, by_two) = (
        delivered_by(&one.address).await,
        delivered_by(&two.address).await,
    );
    assert!(
        by_one > 0 && by_two > 0,
        "both dispatch: {by_one} and {by_two}"
    );
    pool.close().await;
    one.kill().await;
    two.kill().await;
    receiver.stop().await;
    eprintln!(
        "two processes: set up {set_up_in:?}; {} callbacks to both and {} events in {done_in:?} \
         ({} sendings, others {:?}); delivered {by_one} + {by_two}, {again} delivered again",
        MIX.callbacks(),
        ledger.events.len(),
        sent.sendings,
        sent.not_yet,
    );
}
