//! `[refunds]`: when a refund needs a second officer, and how often a
//! provider is asked about one it has not finished.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::{AgencyCode, Vnd};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefundSettings {
    /// A refund of less than this needs no second officer's approval; 0
    /// (the default) means every refund needs one.
    pub approval_free_below: Vnd,
    /// Agencies' own thresholds, by agency code
    /// (`refunds.agencies."H26.01".approval_free_below`).
    pub agencies: BTreeMap<String, AgencyRefundSettings>,
    /// How long after a gateway refund is sent it is first asked about, in
    /// seconds; the delay then doubles, up to an hour.
    pub check_after_secs: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgencyRefundSettings {
    pub approval_free_below: Option<Vnd>,
}

impl Default for RefundSettings {
    fn default() -> Self {
        RefundSettings {
            approval_free_below: Vnd::new(0),
            agencies: BTreeMap::new(),
            check_after_secs: 60,
        }
    }
}

impl RefundSettings {
    /// Under what amount a refund of `agency`'s money needs no second officer.
    pub fn approval_free_below(&self, agency: Option<&AgencyCode>) -> Vnd {
        agency
            .and_then(|code| self.agencies.get(code.as_str()))
            .and_then(|own| own.approval_free_below)
            .unwrap_or(self.approval_free_below)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agency_may_have_its_own_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lephi.toml");
        std::fs::write(
            &file,
            "[refunds]\napproval_free_below = 50000\n[refunds.agencies.\"H26.01\"]\napproval_free_below = 200000\n",
        )
        .unwrap();
        let settings = crate::config::Settings::load_from(Some(&file), Vec::new())
            .unwrap()
            .refunds;
        let own = AgencyCode::from_stored("H26.01".into());
        let other = AgencyCode::from_stored("H26.02".into());
        assert_eq!(settings.approval_free_below(Some(&own)), Vnd::new(200_000));
        assert_eq!(settings.approval_free_below(Some(&other)), Vnd::new(50_000));
        assert_eq!(settings.approval_free_below(None), Vnd::new(50_000));
        assert_eq!(
            RefundSettings::default().approval_free_below(Some(&own)),
            Vnd::new(0)
        );
    }
}
