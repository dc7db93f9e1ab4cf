//! Notifications to the dossier systems: the dispatcher that delivers the
//! outbox's events to each agency's webhook, signed the Standard Webhooks
//! way, at least once, with capped exponential backoff and jitter.

mod dispatcher;

pub use dispatcher::{backoff, run};
