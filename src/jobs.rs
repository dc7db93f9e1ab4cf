//! Background work that runs beside the HTTP server.

use std::time::Duration;

use tokio::sync::watch;

use crate::domain::Timestamp;
use crate::error::error_chain;
use crate::store::{Erased, Store};

/// How many invoices one expiry pass moves at most; a full batch runs the
/// next pass at once.
const EXPIRY_BATCH: i64 = 500;

/// Marks open invoices past their expiry as expired, every `interval`,
/// until `shutdown` turns true.
pub async fn expire_invoices(
    store: Store,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let pause = match store.expire_due_invoices(EXPIRY_BATCH).await {
            Ok(n) if n as i64 == EXPIRY_BATCH => Duration::ZERO,
            Ok(n) => {
                if n > 0 {
                    tracing::info!(
                        expired = n,
                        "open invoices past their expiry marked expired"
                    );
                }
                interval
            }
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "invoice expiry pass failed");
                interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// How many invoices one erasure pass clears at most: a short transaction;
/// a full batch runs the next pass at once.
const ERASURE_BATCH: i64 = 200;

/// Erases the personal data of invoices closed more than `retention` ago,
/// every `interval`, until `shutdown` turns true.
pub async fn erase_personal_data(
    store: Store,
    retention: time::Duration,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let closed_before = Timestamp::now().plus(-retention);
        let pass = match closed_before {
            Some(before) => store.erase_personal_data(before, ERASURE_BATCH).await,
            None => Ok(Erased::default()),
        };
        let pause = match pass {
            Ok(erased) => {
                if erased.invoices > 0 || erased.idempotency_records > 0 {
                    tracing::info!(
                        invoices = erased.invoices,
                        idempotency_records = erased.idempotency_records,
                        "personal data past its retention erased"
                    );
                }
                let full = |n: u64| n >= ERASURE_BATCH as u64;
                if full(erased.invoices) || full(erased.idempotency_records) {
                    Duration::ZERO
                } else {
                    interval
                }
            }
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "personal data erasure pass failed");
                interval
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
    }
}
