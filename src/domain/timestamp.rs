//! Instants in UTC. Stored as fixed-width text (`2026-11-28T06:03:57.123456Z`)
//! so that text order is time order on every backend.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// Vietnam's clock, UTC+7 all year: days, months and years are
/// Vietnamese ones wherever the service counts them.
pub const VIETNAM: UtcOffset = time::macros::offset!(+7);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

const STORED: &[time::format_description::FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

impl Timestamp {
    pub fn now() -> Timestamp {
        let now = OffsetDateTime::now_utc();
        Timestamp(
            now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
                .unwrap_or(now),
        )
    }

    /// Normalises to UTC and to whole microseconds, the stored precision;
    /// `None` when the instant in UTC falls outside years 1 to 9999 (the
    /// fixed-width stored form has four year digits).
    pub fn from_datetime(at: OffsetDateTime) -> Option<Timestamp> {
        let at = at
            .checked_to_offset(UtcOffset::UTC)
            .filter(|at| at.year() >= 1)?;
        let micros = at.nanosecond() / 1_000 * 1_000;
        at.replace_nanosecond(micros).ok().map(Timestamp)
    }

    /// Parses RFC 3339 text with an offset, as clients send it.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .and_then(Timestamp::from_datetime)
    }

    /// The stored text form; also what the API sends.
    pub fn to_stored(self) -> String {
        self.0
            .format(STORED)
            .unwrap_or_else(|_| self.0.unix_timestamp().to_string())
    }

    pub fn as_datetime(self) -> OffsetDateTime {
        self.0
    }

    /// The instant as a Vietnamese wall clock (UTC+7) shows it. At the very
    /// end of year 9999, where UTC+7 would leave the representable range,
    /// the UTC time is returned.
    pub fn in_vietnam(self) -> OffsetDateTime {
        self.0.checked_to_offset(VIETNAM).unwrap_or(self.0)
    }

    pub fn plus(self, duration: time::Duration) -> Option<Timestamp> {
        self.0.checked_add(duration).map(Timestamp)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_stored())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).ok_or_else(|| {
            serde::de::Error::custom(
                "expected an RFC 3339 time with an offset, e.g. 2026-12-01T17:00:00+07:00",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_is_fixed_width_utc() {
        let t = Timestamp::parse_rfc3339("2026-12-01T17:00:00+07:00").unwrap();
        assert_eq!(t.to_stored(), "2026-12-01T10:00:00.000000Z");
        let now = Timestamp::now().to_stored();
        assert_eq!(now.len(), 27);
        assert_eq!(Timestamp::parse_rfc3339(&now).unwrap().to_stored(), now);
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Timestamp::parse_rfc3339("2026-01-01T00:00:00.5Z").unwrap();
        let b = Timestamp::parse_rfc3339("2026-01-01T00:00:01Z").unwrap();
        assert!(a < b);
        assert!(a.to_stored() < b.to_stored());
    }

    #[test]
    fn refuses_times_whose_utc_instant_is_out_of_range() {
        assert!(Timestamp::parse_rfc3339("9999-12-31T23:59:59-01:00").is_none());
        assert!(Timestamp::parse_rfc3339("0000-01-01T00:00:00+01:00").is_none());
        assert!(Timestamp::parse_rfc3339("9999-12-31T22:59:59-01:00").is_some());
    }

    #[test]
    fn refuses_times_without_offset() {
        assert!(Timestamp::parse_rfc3339("2026-12-01T17:00:00").is_none());
        assert!(Timestamp::parse_rfc3339("tomorrow").is_none());
    }
}
