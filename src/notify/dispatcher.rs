//! Delivers due events. Each claim holds an event for a lease longer than
//! a delivery can take, so that several dispatchers (in one process or
//! several on one PostgreSQL database) never deliver one event at once.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::WebhookSettings;
use crate::domain::Timestamp;
use crate::domain::webhook::{UrlPolicy, WebhookUrl};
use crate::error::error_chain;
use crate::store::{DueEvent, Store};
use crate::telemetry::Metrics;

/// Deliveries under way at once.
const MAX_IN_FLIGHT: usize = 16;

/// How long a claim lasts beyond the delivery's own timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The delay before retry number `attempt` (1 for the first retry):
/// doubling from `initial`, capped at `cap`, with "equal jitter" (between
/// half the delay and the whole of it) so that receivers recovering from
/// an outage are not hit by every event at once.
pub fn backoff(attempt: u32, initial: Duration, cap: Duration, rng: &mut impl Rng) -> Duration {
    let doubling = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    let delay = initial.saturating_mul(doubling).min(cap);
    let half = delay / 2;
    half + half.mul_f64(rng.random::<f64>())
}

/// Delivers due events until `shutdown` turns true.
pub async fn run(
    store: Store,
    settings: WebhookSettings,
    policy: UrlPolicy,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "the webhook client could not be built; no events will be delivered");
            return;
        }
    };
    let lease = time::Duration::try_from(timeout + LEASE_MARGIN).unwrap_or(time::Duration::MINUTE);
    let poll = Duration::from_millis(settings.poll_interval_ms);
    let delivery = Arc::new(Delivery {
        store: store.clone(),
        client,
        settings,
        policy,
        metrics,
    });
    // Deliveries run as tasks of their own, up to MAX_IN_FLIGHT; a slot
    // freed by a finished delivery is filled at once, so one slow receiver
    // holds up only its own events. (As tasks, they keep running while this
    // loop waits for the database, and so return their connections.)
    let mut in_flight = JoinSet::new();
    loop {
        let room = MAX_IN_FLIGHT - in_flight.len();
        let mut filled = false;
        if room > 0 {
            match store.claim_due_events(lease, room as i64).await {
                Ok(events) => {
                    filled = events.len() == room;
                    for event in events {
                        let delivery = delivery.clone();
                        in_flight.spawn(async move { delivery.deliver(event).await });
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %error_chain(&err), "claiming due events failed");
                }
            }
        }
        let pause = if filled { Duration::ZERO } else { poll };
        tokio::select! {
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = tokio::time::sleep(pause) => {}
            // Unfinished deliveries are retried when their lease ends.
            _ = shutdown.changed() => return,
        }
    }
}

struct Delivery {
    store: Store,
    client: reqwest::Client,
    settings: WebhookSettings,
    policy: UrlPolicy,
    metrics: Arc<Metrics>,
}

impl Delivery {
    async fn deliver(&self, event: DueEvent) {
        let outcome = self.send(&event).await;
        let stored = match &outcome {
            Ok(()) => self.store.event_delivered(&event.id, event.attempt).await,
            Err(error) => {
                let retry_at = self.retry_at(event.attempt);
                if retry_at.is_none() {
                    tracing::warn!(event = %event.id, error = %error, attempts = event.attempt, "an event became a dead letter");
                }
                self.store
                    .event_failed(&event.id, event.attempt, error, retry_at)
                    .await
            }
        };
        let label = match (&outcome, self.retry_at(event.attempt)) {
            (Ok(()), _) => "delivered",
            (Err(_), Some(_)) => "failed",
            (Err(_), None) => "dead",
        };
        self.metrics
            .webhook_deliveries
            .with_label_values(&[label])
            .inc();
        if let Err(err) = stored {
            // The lease ends and the event is delivered again: at least once.
            tracing::warn!(event = %event.id, error = %error_chain(&err), "a delivery's outcome could not be stored");
        }
    }

    /// When to try again after failed delivery number `attempt`, if ever.
    fn retry_at(&self, attempt: i64) -> Option<Timestamp> {
        if attempt >= i64::from(self.settings.max_attempts) {
            return None;
        }
        let delay = backoff(
            u32::try_from(attempt).unwrap_or(u32::MAX),
            Duration::from_millis(self.settings.initial_backoff_ms),
            Duration::from_millis(self.settings.max_backoff_ms),
            &mut rand::rng(),
        );
        Timestamp::now().plus(time::Duration::try_from(delay).ok()?)
    }

    /// One signed POST; only a 2xx answer counts as delivered.
    async fn send(&self, event: &DueEvent) -> Result<(), String> {
        // The allow-list may have changed since the URL was set.
        WebhookUrl::parse(event.url.as_str(), &self.policy).map_err(|err| err.to_string())?;
        let timestamp = Timestamp::now().as_datetime().unix_timestamp();
        let signature = event.signers.sign(&event.id, timestamp, &event.body);
        let response = self
            .client
            .post(event.url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(event.body.clone())
            .send()
            .await
            .map_err(|err| {
                if err.is_timeout() {
                    "the receiver did not answer in time".to_owned()
                } else {
                    format!("the receiver could not be reached: {}", err.without_url())
                }
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let mut rng = rand::rng();
        let initial = Duration::from_secs(5);
        let cap = Duration::from_secs(3600);
        for attempt in 1..40 {
            let full = initial
                .saturating_mul(2u32.saturating_pow(attempt - 1))
                .min(cap);
            for _ in 0..50 {
                let delay = backoff(attempt, initial, cap, &mut rng);
                assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
            }
        }
        assert!(backoff(1, initial, cap, &mut rng) <= Duration::from_secs(5));
        assert!(backoff(30, initial, cap, &mut rng) >= Duration::from_secs(1800));
    }
}
