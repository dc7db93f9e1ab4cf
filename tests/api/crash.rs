//! kill -9 under load: the real `lephi serve` takes 5,000 signed callbacks
//! (VNPay, MoMo, ZaloPay, SePay and Casso, some sent twice) from a provider
//! that retries each until acknowledged, while the test kills the process
//! with SIGKILL at random moments and restarts it on the same database and
//! port. Afterwards no payment is lost or doubled, no invoice is paid twice,
//! and every event reaches the dossier system at least once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::helpers::{Backend, database_url};
use crate::on_both_backends;
use crate::process::{
    Mix, Receiver, Served, assert_every_event_delivered, assert_ledger,
    port_outside_ephemeral_range, send_all, serve, set_up, try_serve, wait_for_outbox,
};

on_both_backends!(kill_9_loses_and_doubles_nothing);

const MIX: Mix = Mix {
    vnpay: 800,
    momo: 800,
    zalopay: 800,
    sepay: 700,
    casso: 600,
    paid_twice: 200,
    duplicates: 1_100,
};

/// How many times the server is killed while callbacks flow.
const KILLS: usize = 6;

/// Starts lephi again on the killed one's port. Should anything else hold
/// the port for a moment, lephi stops at once, and it is tried again.
async fn restart(url: &str, bind: &str, provider_api: &str, log: &std::path::Path) -> Served {
    let mut last = String::new();
    for _ in 0..20 {
        match try_serve(url, bind, provider_api, log).await {
            Ok(served) => return served,
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("lephi did not start again on {bind}: {last}");
}

async fn kill_9_loses_and_doubles_nothing(backend: Backend) {
    assert_eq!(MIX.callbacks(), 5_000);
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let log = dir.path().join("serve.log");
    let provider_api = wiremock::MockServer::start().await;
    let receiver = Receiver::start(Duration::from_millis(2)).await;

    let bind = format!("127.0.0.1:{}", port_outside_ephemeral_range());
    let first = serve(&url, &bind, &provider_api.uri(), &log).await;
    let address = first.address.clone();
    let admin_key = first
        .admin_key
        .clone()
        .expect("the first start prints an admin key");
    let scene = set_up(&address, &admin_key, &provider_api, &receiver, MIX).await;
    let set_up_in = started.elapsed();

    // The killer waits for random numbers of acknowledged callbacks, so the
    // kills fall while callbacks flow, however fast the machine is.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut marks: Vec<usize> = {
        let mut rng = rand::rng();
        (0..KILLS).map(|_| rng.random_range(200..4_800)).collect()
    };
    marks.sort_unstable();
    let killer = {
        let (acked, url, log, provider_api) =
            (acked.clone(), url.clone(), log.clone(), provider_api.uri());
        tokio::spawn(async move {
            let mut served: Served = first;
            for mark in marks {
                while acked.load(Ordering::SeqCst) < mark {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let jitter = rand::rng().random_range(0..30);
                tokio::time::sleep(Duration::from_millis(jitter)).await;
                served.kill().await;
                served = restart(&url, &bind, &provider_api, &log).await;
            }
            served
        })
    };
    let callbacks = Arc::new(scene.callbacks.clone());
    let sent = send_all(callbacks, vec![address.clone()], 48, acked.clone()).await;
    let sent_in = started.elapsed() - set_up_in;
    let served = killer.await.expect("the killer");
    assert_eq!(sent.acknowledged, 5_000);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    // A claim cut by a kill is retried when its lease (the delivery
    // timeout plus 30 s) runs out.
    let ledger = wait_for_outbox(&pool, Duration::from_secs(180)).await;
    let drained_in = started.elapsed() - set_up_in - sent_in;
    assert_ledger(&pool, &scene).await;
    let redelivered = assert_every_event_delivered(&receiver, &ledger);
    if backend == Backend::Sqlite {
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(check, "ok");
    }
    pool.close().await;
    served.kill().await;
    receiver.stop().await;
    eprintln!(
        "{backend:?}: set up {set_up_in:?}; 5,000 callbacks through {KILLS} kills in {sent_in:?} \
         ({} sendings, {} unanswered, others {:?}); outbox drained in {drained_in:?}, \
         {} events, {redelivered} delivered again",
        sent.sendings,
        sent.no_answer,
        sent.not_yet,
        ledger.events.len(),
    );
}
