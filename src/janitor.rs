//! The pending-payment janitor. A gateway's callback can be lost (ZaloPay
//! sends one only on success, and may not send it at all), so attempts
//! still pending some minutes after they were made are asked about through
//! the provider's status API: a payment found is recorded through the same
//! exactly-once path as a callback, a failure is noted, and an attempt
//! still unknown is asked about again later, with backoff, until the
//! janitor gives up and raises `unconfirmed_attempt` for an officer.
//!
//! Each check is claimed under a lease in the store, so several lephi
//! processes can run the janitor on one database without asking about one
//! attempt twice at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;

use crate::config::{JanitorSettings, ProviderSettings, RefundSettings, Settings};
use crate::domain::Timestamp;
use crate::domain::audit::Actor;
use crate::domain::payment::PaymentSource;
use crate::error::error_chain;
use crate::notify::backoff;
use crate::providers::ProviderError;
use crate::providers::record::record;
use crate::providers::{CallbackEvent, Providers};
use crate::store::{AttemptToCheck, Store, StoreError};
use crate::telemetry::Metrics;
use crate::usecases::refunds::Refunds;
use crate::usecases::refunds::gateway::RefundPass;

/// Status queries under way at once.
const MAX_IN_FLIGHT: usize = 8;

/// How long a claim lasts beyond the queries' own time.
const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// The longest wait between two checks of an attempt (unless the first
/// check's delay is longer).
const MAX_BETWEEN_CHECKS: Duration = Duration::from_secs(3600);

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    /// Attempts claimed and asked about.
    pub checked: usize,
    /// Found paid: a payment recorded now, or found recorded before.
    pub paid: usize,
    /// Found failed: the attempt is failed.
    pub failed: usize,
    /// Still pending, or the provider could not say: checked again later.
    pub later: usize,
    /// Never confirmed in time: `unconfirmed_attempt` raised.
    pub given_up: usize,
}

/// What came of one check.
enum Outcome {
    Paid,
    Failed,
    Later,
    GivenUp,
}

/// Checks pending gateway attempts with their providers.
pub struct Janitor {
    store: Store,
    providers: Providers,
    settings: JanitorSettings,
    lease: time::Duration,
    metrics: Arc<Metrics>,
    actor: Actor,
    refunds: RefundSettings,
}

impl Janitor {
    /// A janitor asking `providers`: those configured in `settings`, or
    /// the sandbox's when it is on (the app's own).
    pub fn new(
        store: Store,
        settings: &Settings,
        providers: &ProviderSettings,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Janitor> {
        let janitor = settings.janitor.clone();
        // A pass's queries run MAX_IN_FLIGHT at a time, each bounded by the
        // providers' timeout: the lease outlasts the slowest pass.
        let rounds = usize::try_from(janitor.batch)
            .unwrap_or(1)
            .div_ceil(MAX_IN_FLIGHT)
            .max(1);
        let queries = Duration::from_secs(providers.timeout_secs)
            .saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX));
        let lease = time::Duration::try_from(queries + LEASE_MARGIN)?;
        Ok(Janitor {
            store,
            providers: Providers::from_settings(providers)?,
            settings: janitor,
            lease,
            metrics,
            actor: Actor::system("janitor"),
            refunds: settings.refunds.clone(),
        })
    }

    /// Runs passes every `interval_secs` until `shutdown` turns true. A
    /// full batch runs the next pass at once. A pass cut short by the
    /// shutdown loses nothing: its claims run out and are checked again.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_secs(self.settings.interval_secs);
        loop {
            let pause = tokio::select! {
                pass = self.run_both(Timestamp::now()) => match pass {
                    Ok(pass) if pass.checked as i64 >= self.settings.batch => Duration::ZERO,
                    Ok(_) => interval,
                    Err(err) => {
                        tracing::warn!(error = %error_chain(&err), "a janitor pass failed");
                        interval
                    }
                },
                _ = shutdown.changed() => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// A pass over pending attempts, then one over refunds to send or ask
    /// about.
    async fn run_both(&self, now: Timestamp) -> Result<Pass, StoreError> {
        let pass = self.run_once(now).await;
        if let Err(err) = self.run_refunds(now).await {
            tracing::warn!(error = %error_chain(&err), "a janitor pass over refunds failed");
        }
        pass
    }

    /// Sends the approved gateway refunds nobody sent, and asks the
    /// providers about the submitted ones that are due (see
    /// [`crate::usecases::refunds::gateway`]).
    pub async fn run_refunds(&self, now: Timestamp) -> Result<RefundPass, StoreError> {
        let refunds = Refunds {
            store: &self.store,
            providers: &self.providers,
            settings: &self.refunds,
        };
        let pass = refunds.advance_due(now, self.settings.batch).await?;
        if pass.sent + pass.checked > 0 {
            tracing::info!(
                sent = pass.sent,
                checked = pass.checked,
                finished = pass.finished,
                "the janitor moved refunds on"
            );
        }
        Ok(pass)
    }

    /// One pass as of `now`: claims the attempts due a check and asks
    /// their providers. An attempt whose outcome could not be stored is
    /// checked again when its claim runs out.
    pub async fn run_once(&self, now: Timestamp) -> Result<Pass, StoreError> {
        let first_check_after = time::Duration::seconds(
            i64::try_from(self.settings.first_check_after_secs).unwrap_or(i64::MAX),
        );
        let claimed = self
            .store
            .claim_attempts_to_check(
                &self.providers.queryable(),
                now,
                (first_check_after, self.give_up_after()),
                self.lease,
                self.settings.batch,
            )
            .await?;
        let outcomes: Vec<Option<Outcome>> = futures_util::stream::iter(claimed)
            .map(|attempt| self.check(attempt, now))
            .buffer_unordered(MAX_IN_FLIGHT)
            .collect()
            .await;
        let mut pass = Pass::default();
        for outcome in outcomes {
            pass.checked += 1;
            match outcome {
                Some(Outcome::Paid) => pass.paid += 1,
                Some(Outcome::Failed) => pass.failed += 1,
                Some(Outcome::Later) | None => pass.later += 1,
                Some(Outcome::GivenUp) => pass.given_up += 1,
            }
        }
        if pass.checked > 0 {
            tracing::info!(
                checked = pass.checked,
                paid = pass.paid,
                failed = pass.failed,
                later = pass.later,
                given_up = pass.given_up,
                "the janitor checked pending attempts"
            );
        }
        Ok(pass)
    }

    /// Asks about one claimed attempt and stores what came of it; `None`
    /// when that could not be stored.
    async fn check(&self, attempt: AttemptToCheck, now: Timestamp) -> Option<Outcome> {
        let (outcome, label) = match self.ask(&attempt, now).await {
            Ok((outcome, label)) => (Some(outcome), label),
            Err(err) => {
                tracing::warn!(
                    attempt = %attempt.id,
                    channel = %attempt.channel,
                    error = %error_chain(&err),
                    "what a provider said of a pending attempt could not be stored"
                );
                (None, "not_stored")
            }
        };
        self.metrics
            .janitor_checks
            .with_label_values(&[attempt.channel.as_str(), label])
            .inc();
        outcome
    }

    /// The outcome of one check, and its metric label.
    async fn ask(
        &self,
        attempt: &AttemptToCheck,
        now: Timestamp,
    ) -> Result<(Outcome, &'static str), StoreError> {
        let answer = self
            .providers
            .query(attempt.channel, &attempt.order_ref, attempt.created_at)
            .await;
        let event = match answer {
            Some(Ok(event)) => event,
            // Past the give-up age the attempt's payment window has long
            // closed: a provider with no transaction for it means the
            // payer never paid, not that nobody knows.
            Some(Err(ProviderError::NotFound { code })) if now >= self.give_up_at(attempt) => {
                tracing::info!(
                    attempt = %attempt.id,
                    invoice = %attempt.invoice_id,
                    channel = %attempt.channel,
                    provider_code = %code,
                    "the provider never saw a pending attempt paid; it is failed"
                );
                record(
                    &self.store,
                    &self.actor,
                    attempt.channel,
                    CallbackEvent::Failed {
                        order_ref: attempt.order_ref.clone(),
                        provider_code: code,
                        message: "the provider has no transaction for this order".into(),
                    },
                    PaymentSource::StatusQuery,
                )
                .await?;
                return Ok((Outcome::Failed, "failed"));
            }
            Some(Err(err)) => {
                tracing::warn!(
                    attempt = %attempt.id,
                    channel = %attempt.channel,
                    provider_code = err.provider_code(),
                    error = %err,
                    check = attempt.check,
                    "a provider could not say where a pending attempt stands"
                );
                return self.later(attempt, now, "error").await;
            }
            // The provider was unconfigured since the claim; its attempts
            // wait for it.
            None => return self.later(attempt, now, "error").await,
        };
        match event {
            CallbackEvent::Paid(received) => {
                let provider_txn_id = received.provider_txn_id.clone();
                let amount = received.amount;
                let verdict = record(
                    &self.store,
                    &self.actor,
                    attempt.channel,
                    CallbackEvent::Paid(received),
                    PaymentSource::StatusQuery,
                )
                .await?;
                tracing::info!(
                    attempt = %attempt.id,
                    invoice = %attempt.invoice_id,
                    channel = %attempt.channel,
                    provider_txn_id = %provider_txn_id,
                    amount = amount.dong(),
                    verdict = verdict.label(),
                    "the provider says a pending attempt was paid"
                );
                Ok((Outcome::Paid, verdict.label()))
            }
            CallbackEvent::Failed {
                order_ref,
                provider_code,
                message,
            } => {
                tracing::info!(
                    attempt = %attempt.id,
                    invoice = %attempt.invoice_id,
                    channel = %attempt.channel,
                    provider_code = %provider_code,
                    "the provider says a pending attempt failed"
                );
                record(
                    &self.store,
                    &self.actor,
                    attempt.channel,
                    CallbackEvent::Failed {
                        order_ref,
                        provider_code,
                        message,
                    },
                    PaymentSource::StatusQuery,
                )
                .await?;
                Ok((Outcome::Failed, "failed"))
            }
            CallbackEvent::Pending { .. } | CallbackEvent::Ignored { .. } => {
                self.later(attempt, now, "pending").await
            }
        }
    }

    /// How long after an attempt began checking it stops.
    fn give_up_after(&self) -> time::Duration {
        time::Duration::hours(i64::try_from(self.settings.give_up_after_hours).unwrap_or(i64::MAX))
    }

    /// When checking `attempt` stops: `give_up_after_hours` after it began.
    fn give_up_at(&self, attempt: &AttemptToCheck) -> Timestamp {
        attempt
            .created_at
            .plus(self.give_up_after())
            .unwrap_or(attempt.created_at)
    }

    /// An attempt still unknown: checked again with backoff, or given up
    /// on once it is older than `give_up_after_hours` (always after one
    /// last check at that age).
    async fn later(
        &self,
        attempt: &AttemptToCheck,
        now: Timestamp,
        label: &'static str,
    ) -> Result<(Outcome, &'static str), StoreError> {
        let give_up_at = self.give_up_at(attempt);
        if now >= give_up_at {
            let raised = self
                .store
                .give_up_on_attempt(&self.actor, &attempt.id, attempt.check)
                .await?;
            let Some(exception) = raised else {
                // A callback settled it meanwhile, or another janitor holds
                // a newer claim: nothing to give up on here.
                return Ok((Outcome::Later, "superseded"));
            };
            tracing::info!(
                attempt = %attempt.id,
                invoice = %attempt.invoice_id,
                channel = %attempt.channel,
                checks = attempt.check,
                exception = %exception,
                "the provider never confirmed a pending attempt; an officer is asked"
            );
            return Ok((Outcome::GivenUp, "gave_up"));
        }
        let first = Duration::from_secs(self.settings.first_check_after_secs);
        let delay = backoff(
            u32::try_from(attempt.check).unwrap_or(u32::MAX),
            first,
            MAX_BETWEEN_CHECKS.max(first),
            &mut rand::rng(),
        );
        let next = time::Duration::try_from(delay)
            .ok()
            .and_then(|delay| now.plus(delay))
            .map_or(give_up_at, |next| next.min(give_up_at));
        self.store
            .check_attempt_again(&attempt.id, attempt.check, next)
            .await?;
        Ok((Outcome::Later, label))
    }
}
