//! Background work that runs beside the HTTP server.

use std::time::Duration;

use tokio::sync::watch;

use crate::error::error_chain;
use crate::store::Store;

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
