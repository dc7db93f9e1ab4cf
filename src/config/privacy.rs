//! `[privacy]`: how long the payers' personal data of closed invoices is
//! kept before the background jobs erase it (see `store::retention`).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// Days after an invoice was closed (paid, cancelled, expired) with
    /// nothing of its money still open, after which the payer's name, id
    /// number, phone and email are erased. None (the default) keeps them.
    pub retention_days: Option<u32>,
    /// How often the erasure runs, in seconds.
    pub interval_secs: u64,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            retention_days: None,
            interval_secs: 3600,
        }
    }
}

/// The shortest retention allowed: a closed invoice's payer may still be
/// asked about a refund or a complaint for a month.
pub const MIN_RETENTION_DAYS: u32 = 30;
