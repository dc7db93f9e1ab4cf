//! Statement profiles: how one provider's or bank's settlement file is laid
//! out (delimiter, column names, amount, time and date formats), and
//! reading such a file into [`StatementLine`]s.
//!
//! lephi ships a canonical profile for each layout and one per channel,
//! modelled on what the providers' merchant portals and a bank's internet
//! banking export. Portals change their exports and provinces use other
//! banks: a province adjusts or adds profiles in configuration, without
//! code, under `[reconciliation.profiles.NAME]`:
//!
//! ```toml
//! [reconciliation.profiles.bidv]
//! layout = "bank"                 # or "gateway"
//! delimiter = ","                 # one ASCII character; default ","
//! amount_format = "vietnamese"    # "plain" (150000, 150000.00; the default) or "vietnamese" (1.500.000,00)
//! time_format = "[day]/[month]/[year] [hour]:[minute]:[second]"  # default "rfc3339"
//! utc_offset = "+07:00"           # the clock of times without an offset; default +07:00
//! # date_format = "[day]/[month]/[year]"  # gateway only; default "[year]-[month]-[day]"
//!
//! [reconciliation.profiles.bidv.columns]
//! bank_ref = "Số bút toán"
//! description = "Nội dung"
//! amount = "Số tiền có"
//! transaction_time = "Thời gian"
//! ```
//!
//! Columns are found by their header name (trimmed), in any order; other
//! columns are ignored. A gateway profile names `provider_txn_id`,
//! `order_ref`, `amount`, `transaction_time`, `settlement_date` and, if the
//! file has one, `fee` (without it every fee is 0). A bank profile names
//! `bank_ref`, `description`, `amount` and `transaction_time`; a bank
//! line's settlement date is the Vietnamese day of its transaction time,
//! and its payment code is looked for in its description.
//!
//! Reading streams: a file of a million lines is never held as lines, and
//! one record buffer serves every line.

use std::collections::BTreeMap;

use csv::ByteRecord;
use serde::Deserialize;
use time::format_description::{self, FormatDescriptionV3};
use time::macros::{datetime, format_description as description};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::domain::money::MoneyError;
use crate::domain::payment::Channel;
use crate::domain::settlement::{StatementLayout, StatementLine};
use crate::domain::text::bounded;
use crate::domain::transfer_note::find_payment_code;
use crate::domain::{Timestamp, Vnd};

/// The longest record taken, in bytes: a real statement line is a few
/// hundred; anything longer is a broken file (an unclosed quote swallowing
/// the rest), not a payment.
const MAX_RECORD_BYTES: usize = 4_096;
/// The longest provider transaction id or bank reference, in characters.
const MAX_ID_CHARS: usize = 64;
/// The longest order reference or transfer description, in characters.
const MAX_REFERENCE_CHARS: usize = 255;
/// The largest amount one line may carry: a trillion đồng, far above any
/// fee, and small enough that no sum of them overflows.
const MAX_AMOUNT: Vnd = Vnd::new(1_000_000_000_000);
/// The longest a settlement may come after its transaction, in days.
const MAX_SETTLEMENT_DAYS: i64 = 62;
/// How much of a refused value a reason quotes, in characters.
const QUOTED_CHARS: usize = 40;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Shown in reasons, formatted in a profile's own formats, so that an
/// officer sees what a good value looks like.
const EXAMPLE_TIME: OffsetDateTime = datetime!(2026-11-28 13:03:57 +7);

/// A line of a file that cannot be taken, with its number (the header is
/// line 1) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

/// How a statement file is laid out. Shipped profiles come from
/// [`Profiles::new`]; configured ones are checked there too.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub layout: StatementLayout,
    /// One ASCII character.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Which header names hold which fields.
    pub columns: Columns,
    #[serde(default)]
    pub amount_format: AmountFormat,
    /// `rfc3339` (an offset required), or a `time` format description
    /// read in `utc_offset` unless it has an offset of its own.
    #[serde(default = "rfc3339")]
    pub time_format: String,
    /// `+HH:MM`.
    #[serde(default = "vietnam")]
    pub utc_offset: String,
    /// A `time` format description; gateway profiles only. `None` means
    /// `[year]-[month]-[day]`.
    #[serde(default)]
    pub date_format: Option<String>,
    /// The profile's name, for reasons; set by [`Profiles::new`].
    #[serde(skip)]
    pub(super) name: String,
}

/// The header names of a profile's fields. Both layouts name `amount`
/// and `transaction_time`; a gateway profile also names `provider_txn_id`,
/// `order_ref`, `settlement_date` and, optionally, `fee`; a bank profile
/// `bank_ref` and `description`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub amount: Option<String>,
    pub transaction_time: Option<String>,
    pub provider_txn_id: Option<String>,
    pub order_ref: Option<String>,
    pub fee: Option<String>,
    pub settlement_date: Option<String>,
    pub bank_ref: Option<String>,
    pub description: Option<String>,
}

/// How amounts are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmountFormat {
    /// `150000`, or an exact decimal such as `150000.00`.
    #[default]
    Plain,
    /// Thousands dots and an optional decimal comma: `1.500.000,00`.
    Vietnamese,
}

fn comma() -> String {
    ",".into()
}

fn rfc3339() -> String {
    "rfc3339".into()
}

pub(super) fn vietnam() -> String {
    "+07:00".into()
}

/// The shipped profiles and those configured.
#[derive(Debug, Clone)]
pub struct Profiles {
    profiles: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The shipped profiles and `configured`, each configured one checked:
    /// a bad one is refused with a reason naming it, as is one that would
    /// shadow a shipped profile.
    pub fn new(configured: &BTreeMap<String, Profile>) -> Result<Profiles, String> {
        let mut profiles: BTreeMap<String, Profile> = super::shipped::shipped()
            .into_iter()
            .map(|profile| (profile.name.clone(), profile))
            .collect();
        for (name, profile) in configured {
            if profiles.contains_key(name) {
                return Err(format!(
                    "profile {name:?}: a shipped profile has this name; give the configured one another name"
                ));
            }
            let mut profile = profile.clone();
            profile.name.clone_from(name);
            profile
                .compile()
                .map_err(|reason| format!("profile {name:?}: {reason}"))?;
            profiles.insert(name.clone(), profile);
        }
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
    /// The name it has among [`Profiles`]; empty for one that was never
    /// added there.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this profile's layout suits the channel: a bank statement
    /// for bank transfers, a gateway's for VNPay, MoMo and ZaloPay; none
    /// for cash, which no statement settles.
    pub fn fits(&self, channel: Channel) -> bool {
        match channel {
            Channel::BankTransfer => self.layout == StatementLayout::Bank,
            Channel::Vnpay | Channel::Momo | Channel::Zalopay => {
                self.layout == StatementLayout::Gateway
            }
            Channel::Cash => false,
        }
    }

    /// Reads a file line by line, lazily. The header is checked first: a
    /// missing column (or an empty file) is refused at once, as line 1.
    /// Each later line is a [`StatementLine`] or the reason it is refused;
    /// blank lines are skipped. A UTF-8 byte order mark is accepted.
    pub fn read<'a, R: std::io::Read + 'a>(
        &'a self,
        file: R,
    ) -> Result<impl Iterator<Item = Result<StatementLine, LineError>> + 'a, LineError> {
        let at_header = |reason: String| LineError { line: 1, reason };
        let reading = self
            .compile()
            .map_err(|reason| at_header(format!("{}: {reason}", self.called())))?;
        let mut file = std::io::BufReader::with_capacity(64 * 1024, file);
        let starts = std::io::BufRead::fill_buf(&mut file)
            .map_err(|e| at_header(format!("the file cannot be read: {e}")))?;
        if starts.starts_with(UTF8_BOM) {
            std::io::BufRead::consume(&mut file, UTF8_BOM.len());
        }
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(reading.delimiter)
            // Only a line feed ends a record, so that each record's line
            // number (which counts line feeds) is its own; the carriage
            // return of a CRLF is trimmed with the last field.
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(file);
        let mut header = ByteRecord::new();
        let found = csv
            .read_byte_record(&mut header)
            .map_err(|e| at_header(e.to_string()))?;
        if !found {
            return Err(at_header(format!(
                "the file is empty: {} expects a header such as {:?}",
                self.called(),
                reading.header()
            )));
        }
        let line = line_of(&header);
        let positions = self
            .locate(&reading, &header)
            .map_err(|reason| LineError { line, reason })?;
        Ok(StatementLines {
            csv,
            record: ByteRecord::new(),
            reading,
            positions,
            done: false,
        })
    }

    /// "profile \"vnpay\"", or "the profile" for one without a name.
    fn called(&self) -> String {
        if self.name.is_empty() {
            "the profile".into()
        } else {
            format!("profile {:?}", self.name)
        }
    }

    /// Checks the profile and makes it ready to read: the delimiter one
    /// byte, the formats parsed, the columns those of its layout.
    fn compile(&self) -> Result<Reading<'_>, String> {
        let delimiter = match self.delimiter.as_bytes() {
            [b] if b.is_ascii() && !matches!(b, b'"' | b'\n' | b'\r') => *b,
            _ => {
                return Err(format!(
                    "delimiter {:?}: must be one ASCII character other than a quote or a line break",
                    self.delimiter
                ));
            }
        };
        let offset = UtcOffset::parse(
            &self.utc_offset,
            description!("[offset_hour sign:mandatory]:[offset_minute]"),
        )
        .map_err(|_| {
            format!(
                "utc_offset {:?}: not an offset like +07:00",
                self.utc_offset
            )
        })?;
        let times = Times::new(&self.time_format, offset)?;
        let c = &self.columns;
        let (slots, dates) = match self.layout {
            StatementLayout::Gateway => {
                unwanted(
                    "gateway",
                    [("bank_ref", &c.bank_ref), ("description", &c.description)],
                )?;
                let dates = Dates::new(
                    self.date_format
                        .as_deref()
                        .unwrap_or("[year]-[month]-[day]"),
                )?;
                let slots = Slots {
                    txn_ref: wanted("provider_txn_id", &c.provider_txn_id)?,
                    reference: wanted("order_ref", &c.order_ref)?,
                    amount: wanted("amount", &c.amount)?,
                    fee: optional("fee", &c.fee)?,
                    time: wanted("transaction_time", &c.transaction_time)?,
                    date: Some(wanted("settlement_date", &c.settlement_date)?),
                };
                (slots, Some(dates))
            }
            StatementLayout::Bank => {
                unwanted(
                    "bank",
                    [
                        ("provider_txn_id", &c.provider_txn_id),
                        ("order_ref", &c.order_ref),
                        ("fee", &c.fee),
                        ("settlement_date", &c.settlement_date),
                    ],
                )?;
                if self.date_format.is_some() {
                    return Err("date_format: a bank profile has none; a bank line settles on the day of its transaction_time".into());
                }
                let slots = Slots {
                    txn_ref: wanted("bank_ref", &c.bank_ref)?,
                    reference: wanted("description", &c.description)?,
                    amount: wanted("amount", &c.amount)?,
                    fee: None,
                    time: wanted("transaction_time", &c.transaction_time)?,
                    date: None,
                };
                (slots, None)
            }
        };
        Ok(Reading {
            layout: self.layout,
            delimiter,
            amounts: self.amount_format,
            times,
            dates,
            slots,
        })
    }

    /// Finds each wanted column in the header.
    fn locate<'a>(
        &self,
        reading: &Reading<'a>,
        header: &ByteRecord,
    ) -> Result<Positions<'a>, String> {
        let mut names = Vec::with_capacity(header.len());
        for field in header {
            let name = std::str::from_utf8(field)
                .map_err(|_| "the header is not UTF-8: save the file as UTF-8".to_owned())?
                .trim();
            if name.contains('\r') {
                return Err("lines end in a lone carriage return (an old Mac format): \
                     save the file with Windows (CRLF) or Unix (LF) line endings"
                    .into());
            }
            names.push(name);
        }
        let mut missing = Vec::new();
        let mut find = |name: &'a str| -> Result<Column<'a>, String> {
            let mut found = names.iter().enumerate().filter(|(_, n)| **n == name);
            match (found.next(), found.next()) {
                (Some((at, _)), None) => Ok(Column { at, name }),
                (Some(_), Some(_)) => Err(format!("column {name:?} appears twice in the header")),
                (None, _) => {
                    missing.push(format!("{name:?}"));
                    Ok(Column { at: 0, name })
                }
            }
        };
        let s = &reading.slots;
        let positions = Positions {
            width: header.len(),
            txn_ref: find(s.txn_ref)?,
            reference: find(s.reference)?,
            amount: find(s.amount)?,
            fee: s.fee.map(&mut find).transpose()?,
            time: find(s.time)?,
            date: s.date.map(&mut find).transpose()?,
        };
        if missing.is_empty() {
            Ok(positions)
        } else {
            let has: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
            let has = has.join(", ");
            let (has, cut) = shortened(&has, 300);
            Err(format!(
                "missing column(s) {} that {} needs; the header has {has}{cut}",
                missing.join(", "),
                self.called(),
            ))
        }
    }
}

/// A profile's column name for `field`, which its layout needs.
fn wanted<'a>(field: &str, column: &'a Option<String>) -> Result<&'a str, String> {
    optional(field, column)?
        .ok_or_else(|| format!("columns.{field}: missing; this layout needs it"))
}

fn optional<'a>(field: &str, column: &'a Option<String>) -> Result<Option<&'a str>, String> {
    match column.as_deref().map(str::trim) {
        Some("") => Err(format!("columns.{field}: must name a column")),
        name => Ok(name),
    }
}

/// Refuses columns of the other layout, a sign of a mistaken `layout`.
fn unwanted<const N: usize>(
    layout: &str,
    columns: [(&str, &Option<String>); N],
) -> Result<(), String> {
    match columns.iter().find(|(_, column)| column.is_some()) {
        Some((field, _)) => Err(format!(
            "columns.{field}: a {layout} profile has no such column"
        )),
        None => Ok(()),
    }
}

/// A profile made ready to read.
struct Reading<'a> {
    layout: StatementLayout,
    delimiter: u8,
    amounts: AmountFormat,
    times: Times,
    dates: Option<Dates>,
    slots: Slots<'a>,
}

impl Reading<'_> {
    /// A header the profile would take: its columns.
    fn header(&self) -> String {
        let s = &self.slots;
        let columns = [
            Some(s.txn_ref),
            Some(s.reference),
            Some(s.amount),
            s.fee,
            Some(s.time),
            s.date,
        ];
        columns
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(&char::from(self.delimiter).to_string())
    }
}

/// The column names a profile reads, by the field of a statement line
/// they fill.
struct Slots<'a> {
    txn_ref: &'a str,
    reference: &'a str,
    amount: &'a str,
    fee: Option<&'a str>,
    time: &'a str,
    date: Option<&'a str>,
}

/// Where a profile's columns are in one file.
struct Positions<'a> {
    /// The header's number of fields, which every line must have.
    width: usize,
    txn_ref: Column<'a>,
    reference: Column<'a>,
    amount: Column<'a>,
    fee: Option<Column<'a>>,
    time: Column<'a>,
    date: Option<Column<'a>>,
}

#[derive(Clone, Copy)]
struct Column<'a> {
    at: usize,
    name: &'a str,
}

impl Column<'_> {
    /// The column's trimmed text in `record`.
    fn text(self, record: &ByteRecord) -> Result<&str, String> {
        std::str::from_utf8(record.get(self.at).unwrap_or_default())
            .map(str::trim)
            .map_err(|_| format!("{}: not UTF-8: save the file as UTF-8", self.name))
    }

    /// A reason about one of the column's values.
    fn refuse(self, value: &str, problem: &str) -> String {
        format!("{} {}: {problem}", self.name, quoted(value, QUOTED_CHARS))
    }
}

/// `value` in quotes, escaped, cut to `max` characters.
fn quoted(value: &str, max: usize) -> String {
    let (value, cut) = shortened(value, max);
    format!("{value:?}{cut}")
}

/// `text` cut to `max` characters, and an ellipsis if it was cut.
fn shortened(text: &str, max: usize) -> (&str, &'static str) {
    match text.char_indices().nth(max) {
        Some((end, _)) => (&text[..end], "…"),
        None => (text, ""),
    }
}

/// How a profile's times are written.
enum Times {
    Rfc3339,
    /// A wall-clock time, in the profile's offset.
    Local {
        format: FormatDescriptionV3<'static>,
        offset: UtcOffset,
        example: String,
    },
    /// A time with its own offset.
    WithOffset {
        format: FormatDescriptionV3<'static>,
        example: String,
    },
}

impl Times {
    fn new(text: &str, offset: UtcOffset) -> Result<Times, String> {
        if text == "rfc3339" {
            return Ok(Times::Rfc3339);
        }
        let format = parse_format(text).map_err(|e| format!("time_format {text:?}: {e}"))?;
        let cannot = |e: &dyn std::fmt::Display| {
            format!("time_format {text:?}: cannot read a date and time with it ({e})")
        };
        let local = PrimitiveDateTime::new(EXAMPLE_TIME.date(), EXAMPLE_TIME.time());
        // Formatting a wall-clock time fails only when the format wants an
        // offset: then the times carry their own.
        match local.format(&format) {
            Ok(example) => {
                PrimitiveDateTime::parse(&example, &format).map_err(|e| cannot(&e))?;
                Ok(Times::Local {
                    format,
                    offset,
                    example,
                })
            }
            Err(_) => {
                let example = EXAMPLE_TIME.format(&format).map_err(|e| cannot(&e))?;
                OffsetDateTime::parse(&example, &format).map_err(|e| cannot(&e))?;
                Ok(Times::WithOffset { format, example })
            }
        }
    }

    fn parse(&self, text: &str) -> Option<Timestamp> {
        let at = match self {
            Times::Rfc3339 => return Timestamp::parse_rfc3339(text),
            Times::Local { format, offset, .. } => PrimitiveDateTime::parse(text, format)
                .ok()?
                .assume_offset(*offset),
            Times::WithOffset { format, .. } => OffsetDateTime::parse(text, format).ok()?,
        };
        Timestamp::from_datetime(at)
    }

    fn example(&self) -> &str {
        match self {
            Times::Rfc3339 => "2026-11-28T13:03:57+07:00",
            Times::Local { example, .. } | Times::WithOffset { example, .. } => example,
        }
    }
}

/// A `time` format description (version 3). time 0.3.55's parser trips
/// a debug assertion (a panic in debug builds) on some malformed ones,
/// such as `[a[\-` or `[:[\ ]]`, where a release build refuses them; a
/// panic there is taken as the refusal it should have been, so that a bad
/// profile is always a message naming it.
fn parse_format(text: &str) -> Result<FormatDescriptionV3<'static>, String> {
    std::panic::catch_unwind(|| format_description::parse_owned::<3>(text))
        .map_err(|_| "not a format description that can be read".to_owned())?
        .map_err(|e| e.to_string())
}

/// How a gateway profile's settlement dates are written.
struct Dates {
    format: FormatDescriptionV3<'static>,
    example: String,
}

impl Dates {
    fn new(text: &str) -> Result<Dates, String> {
        let format = parse_format(text).map_err(|e| format!("date_format {text:?}: {e}"))?;
        let cannot = |e: &dyn std::fmt::Display| {
            format!("date_format {text:?}: cannot read a date with it ({e})")
        };
        let example = EXAMPLE_TIME
            .date()
            .format(&format)
            .map_err(|e| cannot(&e))?;
        Date::parse(&example, &format).map_err(|e| cannot(&e))?;
        Ok(Dates { format, example })
    }
}

/// The lines of one file, read one record at a time into one buffer.
struct StatementLines<'a, R> {
    csv: csv::Reader<std::io::BufReader<R>>,
    record: ByteRecord,
    reading: Reading<'a>,
    positions: Positions<'a>,
    /// Set after an error of the CSV reader itself, which it may not
    /// recover from.
    done: bool,
}

impl<R: std::io::Read> Iterator for StatementLines<'_, R> {
    type Item = Result<StatementLine, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(false) => self.done = true,
                Ok(true) if is_blank(&self.record) => {}
                Ok(true) => {
                    let line = line_of(&self.record);
                    return Some(self.line(line).map_err(|reason| LineError { line, reason }));
                }
                Err(e) => {
                    self.done = true;
                    let line = e.position().map_or(0, |p| to_usize(p.line()));
                    return Some(Err(LineError {
                        line,
                        reason: e.to_string(),
                    }));
                }
            }
        }
        None
    }
}

impl<R> StatementLines<'_, R> {
    fn line(&self, line_no: usize) -> Result<StatementLine, String> {
        let record = &self.record;
        let bytes = record.as_slice().len() + record.len().saturating_sub(1);
        if bytes > MAX_RECORD_BYTES {
            return Err(format!(
                "line too long: {bytes} bytes, at most {MAX_RECORD_BYTES}"
            ));
        }
        let p = &self.positions;
        if record.len() != p.width {
            return Err(format!(
                "{} fields where the header has {}",
                record.len(),
                p.width
            ));
        }
        let r = &self.reading;
        let txn_ref = bounded(p.txn_ref.name, p.txn_ref.text(record)?, MAX_ID_CHARS)
            .map_err(|e| e.to_string())?;
        let reference = p.reference.text(record)?;
        let reference = match r.layout {
            StatementLayout::Gateway => bounded(p.reference.name, reference, MAX_REFERENCE_CHARS),
            // A transfer's note is free text a payer typed: a stray tab or
            // line break in it is no reason to refuse the money.
            StatementLayout::Bank if reference.contains(char::is_control) => {
                let spaced: String = reference
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                bounded(p.reference.name, &spaced, MAX_REFERENCE_CHARS)
            }
            StatementLayout::Bank => bounded(p.reference.name, reference, MAX_REFERENCE_CHARS),
        }
        .map_err(|e| e.to_string())?;
        let amount = self.amount(p.amount, record)?;
        if amount <= Vnd::ZERO {
            return Err(p
                .amount
                .refuse(p.amount.text(record)?, "must be more than 0"));
        }
        let fee = match p.fee {
            Some(column) => {
                let fee = self.amount(column, record)?;
                if fee < Vnd::ZERO {
                    return Err(column.refuse(column.text(record)?, "must not be negative"));
                }
                fee
            }
            None => Vnd::ZERO,
        };
        let time = p.time.text(record)?;
        let transaction_time = r.times.parse(time).ok_or_else(|| {
            p.time
                .refuse(time, &format!("not a time like {}", r.times.example()))
        })?;
        let settlement_date = match (p.date, &r.dates) {
            (Some(column), Some(dates)) => {
                let text = column.text(record)?;
                Date::parse(text, &dates.format).map_err(|_| {
                    column.refuse(text, &format!("not a date like {}", dates.example))
                })?
            }
            _ => transaction_time.in_vietnam().date(),
        };
        // A mistyped year would stand as the latest settlement day for
        // good and find every payment unsettled.
        let transaction_day = transaction_time.in_vietnam().date();
        let settled_after = (settlement_date - transaction_day).whole_days();
        if !(-1..=MAX_SETTLEMENT_DAYS).contains(&settled_after) {
            let (column, text) = match p.date {
                Some(column) => (column, column.text(record)?),
                None => (p.time, time),
            };
            return Err(column.refuse(
                text,
                &format!(
                    "settles {settled_after} days after the transaction; at most {MAX_SETTLEMENT_DAYS} are taken"
                ),
            ));
        }
        if transaction_time
            > Timestamp::now()
                .plus(time::Duration::days(1))
                .unwrap_or(transaction_time)
        {
            return Err(p.time.refuse(time, "in the future"));
        }
        let payment_code = match r.layout {
            StatementLayout::Gateway => None,
            StatementLayout::Bank => find_payment_code(&reference),
        };
        Ok(StatementLine {
            line_no,
            txn_ref,
            reference,
            payment_code,
            amount,
            fee,
            transaction_time,
            settlement_date,
        })
    }

    fn amount(&self, column: Column<'_>, record: &ByteRecord) -> Result<Vnd, String> {
        let text = column.text(record)?;
        let (parsed, example) = match self.reading.amounts {
            AmountFormat::Plain => (Vnd::parse_decimal(text), "150000"),
            AmountFormat::Vietnamese => (Vnd::parse_vietnamese(text), "1.500.000"),
        };
        let amount = parsed.map_err(|e| {
            let problem = match e {
                MoneyError::NotANumber => format!("not an amount like {example}"),
                MoneyError::Fractional => "fractional đồng".into(),
                MoneyError::OutOfRange => "out of range".into(),
                MoneyError::NotPositive => "must be more than 0".into(),
            };
            column.refuse(text, &problem)
        })?;
        if amount > MAX_AMOUNT {
            return Err(column.refuse(text, &format!("more than {} đồng", MAX_AMOUNT.display_vi())));
        }
        Ok(amount)
    }
}

/// A record of nothing but blanks: an empty line, or a spreadsheet's row
/// of empty cells.
fn is_blank(record: &ByteRecord) -> bool {
    record.as_slice().iter().all(u8::is_ascii_whitespace)
}

/// The line a record starts on, the header being line 1.
fn line_of(record: &ByteRecord) -> usize {
    record.position().map_or(0, |p| to_usize(p.line()))
}

fn to_usize(line: u64) -> usize {
    usize::try_from(line).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests;
