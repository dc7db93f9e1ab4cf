//! Statement profiles: how one provider's or bank's file is laid out
//! (delimiter, column names, amount, time and date formats). lephi ships
//! a canonical profile for each layout and one per channel; more can be
//! added in configuration without code.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::Timestamp;
use crate::domain::Vnd;
use crate::domain::payment::Channel;
use crate::domain::settlement::{StatementLayout, StatementLine, parse_day};
use crate::providers::bank_transfer::find_payment_code;

/// A line of a file that cannot be taken, with its number (the header is
/// line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// How a statement file is laid out.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub layout: StatementLayout,
}

/// The shipped profiles and those configured.
#[derive(Debug, Clone)]
pub struct Profiles {
    profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    pub fn new(configured: &BTreeMap<String, Profile>) -> Result<Profiles, String> {
        let mut profiles = BTreeMap::new();
        profiles.insert(
            "canonical".to_owned(),
            Profile {
                layout: StatementLayout::Gateway,
            },
        );
        profiles.insert(
            "canonical_bank".to_owned(),
            Profile {
                layout: StatementLayout::Bank,
            },
        );
        profiles.extend(configured.clone());
        Ok(Profiles { profiles })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// The profile used for `channel` when none is named.
    pub fn default_for(channel: Channel) -> &'static str {
        match channel {
            Channel::BankTransfer => "canonical_bank",
            _ => "canonical",
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

impl Profile {
    /// Whether this profile reads statements of `channel`.
    pub fn fits(&self, channel: Channel) -> bool {
        match self.layout {
            StatementLayout::Bank => channel == Channel::BankTransfer,
            StatementLayout::Gateway => channel.is_cashless() && channel != Channel::BankTransfer,
        }
    }

    /// Reads a whole file's lines, refusing the header if its columns are
    /// not the profile's.
    pub fn read<'a>(
        &'a self,
        file: &'a [u8],
    ) -> Result<impl Iterator<Item = Result<StatementLine, LineError>> + 'a, LineError> {
        let file = file.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(file);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(file);
        let _ = reader.byte_headers().map_err(|e| LineError {
            line: 1,
            reason: e.to_string(),
        })?;
        let layout = self.layout;
        Ok(reader
            .into_byte_records()
            .enumerate()
            .map(move |(i, record)| {
                let line = i + 2;
                let bad = |reason: String| LineError { line, reason };
                let record = record.map_err(|e| bad(e.to_string()))?;
                let field = |n: usize| {
                    std::str::from_utf8(record.get(n).unwrap_or_default())
                        .map(str::to_owned)
                        .map_err(|_| bad("not UTF-8".into()))
                };
                let amount = Vnd::parse_decimal(&field(2)?).map_err(|e| bad(e.to_string()))?;
                match layout {
                    StatementLayout::Gateway => Ok(StatementLine {
                        line_no: line,
                        txn_ref: field(0)?,
                        reference: field(1)?,
                        payment_code: None,
                        amount,
                        fee: Vnd::parse_decimal(&field(3)?).map_err(|e| bad(e.to_string()))?,
                        transaction_time: Timestamp::parse_rfc3339(&field(4)?)
                            .ok_or_else(|| bad("bad time".into()))?,
                        settlement_date: parse_day(&field(5)?)
                            .ok_or_else(|| bad("bad date".into()))?,
                    }),
                    StatementLayout::Bank => {
                        let at = Timestamp::parse_rfc3339(&field(3)?)
                            .ok_or_else(|| bad("bad time".into()))?;
                        let description = field(1)?;
                        Ok(StatementLine {
                            line_no: line,
                            txn_ref: field(0)?,
                            payment_code: find_payment_code(&description),
                            reference: description,
                            amount,
                            fee: Vnd::new(0),
                            transaction_time: at,
                            settlement_date: at
                                .as_datetime()
                                .to_offset(crate::domain::settlement::VIETNAM)
                                .date(),
                        })
                    }
                }
            }))
    }
}
