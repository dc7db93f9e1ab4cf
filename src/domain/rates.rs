//! Cashless rates: the share of the fees collected that was paid without
//! cash, by level, agency, procedure, channel or month, over a period of
//! Vietnamese days.
//!
//! What counts, on every backend (the store's one aggregate query follows
//! these definitions, and this module adds its rows up):
//! - A payment counts when it was applied to an invoice (it carries no
//!   exception). An applied payment settles exactly what its invoice still
//!   owed, so there is one per paid dossier: "dossiers paid" is the number
//!   of counted payments.
//! - Cashless is every channel but `cash`.
//! - [`Basis::Recorded`]: a payment falls in the period by the day it was
//!   collected. [`Basis::Settled`]: a cashless payment counts only once a
//!   statement line settles it, on that line's settlement day; cash counts
//!   by the day it was collected, since it is in hand when recorded.
//! - Rates are exact decimals, rounded half-even to two places only to be
//!   shown; the groups add up exactly to the total.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};
use time::Date;

use super::payment::Channel;
use super::settlement::{format_day, parse_day};
use super::{AgencyCode, AgencyLevel, ValidationError, Vnd};

/// What a report's rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Province, district, commune, in that order.
    Level,
    /// Each agency, in the order of the agency tree (by path).
    Agency,
    /// Each procedure code, in code order.
    Procedure,
    /// Each channel: vnpay, momo, zalopay, bank_transfer, cash.
    Channel,
    /// Each month (`YYYY-MM`) of the day that places a payment in the period.
    Month,
}

impl GroupBy {
    pub const ALL: [GroupBy; 5] = [
        GroupBy::Level,
        GroupBy::Agency,
        GroupBy::Procedure,
        GroupBy::Channel,
        GroupBy::Month,
    ];

    pub fn parse(value: &str) -> Option<GroupBy> {
        GroupBy::ALL.into_iter().find(|g| g.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Level => "level",
            GroupBy::Agency => "agency",
            GroupBy::Procedure => "procedure",
            GroupBy::Channel => "channel",
            GroupBy::Month => "month",
        }
    }

    /// The values, as a parameter's allowed values.
    pub fn names() -> String {
        GroupBy::ALL.map(GroupBy::as_str).join(", ")
    }

    /// The columns that name a group, in CSV and table order.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            GroupBy::Level => &["level"],
            GroupBy::Agency => &["agency_code", "agency_name", "level"],
            GroupBy::Procedure => &["procedure_code", "procedure_name"],
            GroupBy::Channel => &["channel"],
            GroupBy::Month => &["month"],
        }
    }
}

/// Which payments a report counts, and by which day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// Payments as recorded, by the day they were collected.
    Recorded,
    /// Cashless payments once a statement settles them, by the settlement
    /// day; cash by the day it was collected.
    Settled,
}

impl Basis {
    pub const ALL: [Basis; 2] = [Basis::Recorded, Basis::Settled];

    /// The values, as a parameter's allowed values.
    pub fn names() -> String {
        Basis::ALL.map(Basis::as_str).join(", ")
    }

    pub fn parse(value: &str) -> Option<Basis> {
        Basis::ALL.into_iter().find(|b| b.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Recorded => "recorded",
            Basis::Settled => "settled",
        }
    }

    /// What the basis counts, in words for a report's title.
    pub fn describe(self) -> &'static str {
        match self {
            Basis::Recorded => {
                "payments applied to invoices, by the day collected (money held or refunded is not counted)"
            }
            Basis::Settled => {
                "cashless payments applied to invoices and settled, by the settlement day; cash by the day collected (money held or refunded is not counted)"
            }
        }
    }
}

/// A period of whole Vietnamese days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: Date,
    to: Date,
}

impl Period {
    /// Parses `from` and `to` as `YYYY-MM-DD`; `from` may not be after `to`.
    pub fn parse(from: &str, to: &str) -> Result<Period, ValidationError> {
        let from_day = day("from", from)?;
        let to_day = day("to", to)?;
        if from_day > to_day {
            return Err(ValidationError::new("from", "must not be after to"));
        }
        Ok(Period {
            from: from_day,
            to: to_day,
        })
    }

    /// The first day, as `YYYY-MM-DD` (how days are stored).
    pub fn from(&self) -> String {
        format_day(self.from)
    }

    /// The last day, as `YYYY-MM-DD`.
    pub fn to(&self) -> String {
        format_day(self.to)
    }

    /// The period of as many days that ends the day before this one
    /// starts: what a period is compared with.
    pub fn previous(&self) -> Option<Period> {
        let days = (self.to - self.from).whole_days();
        let to = self.from.previous_day()?;
        let from = to.checked_sub(time::Duration::days(days))?;
        Some(Period { from, to })
    }
}

/// A day written exactly as `YYYY-MM-DD`, the form days are stored and
/// compared in.
fn day(field: &str, text: &str) -> Result<Date, ValidationError> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| parse_day(text))
        .flatten()
        .ok_or_else(|| ValidationError::new(field, "must be a day as YYYY-MM-DD"))
}

/// What a report is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportQuery {
    pub period: Period,
    pub basis: Basis,
    pub group_by: GroupBy,
    /// Only this agency and, with `include_descendants`, every agency
    /// below it; otherwise every agency in the caller's scope.
    pub agency_code: Option<AgencyCode>,
    pub include_descendants: bool,
}

impl ReportQuery {
    /// A report query; `include_descendants` is true unless said, and
    /// false only makes sense for a named agency.
    pub fn new(
        period: Period,
        basis: Basis,
        group_by: GroupBy,
        agency_code: Option<AgencyCode>,
        include_descendants: Option<bool>,
    ) -> Result<ReportQuery, ValidationError> {
        if include_descendants == Some(false) && agency_code.is_none() {
            return Err(ValidationError::new(
                "include_descendants",
                "can only be false when an agency is named",
            ));
        }
        Ok(ReportQuery {
            period,
            basis,
            group_by,
            agency_code,
            include_descendants: include_descendants.unwrap_or(true),
        })
    }
}

/// What names a group. Serialised as the group's key columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum GroupKey {
    Level {
        level: AgencyLevel,
    },
    Agency {
        agency_code: AgencyCode,
        agency_name: String,
        level: AgencyLevel,
        /// The agency's place in the tree, which orders agencies.
        #[serde(skip)]
        path: String,
    },
    Procedure {
        procedure_code: String,
        /// When invoices of one procedure carry different names, the
        /// greatest in text order stands for them all.
        procedure_name: String,
    },
    Channel {
        channel: Channel,
    },
    Month {
        /// `YYYY-MM`.
        month: String,
    },
}

impl GroupKey {
    /// Both what makes two keys one group and the order groups are shown in.
    fn order(&self) -> (u8, &str) {
        match self {
            GroupKey::Level { level } => (*level as u8, ""),
            GroupKey::Agency { path, .. } => (0, path),
            GroupKey::Procedure { procedure_code, .. } => (0, procedure_code),
            GroupKey::Channel { channel } => (
                Channel::ALL
                    .iter()
                    .position(|c| c == channel)
                    .and_then(|i| u8::try_from(i).ok())
                    .unwrap_or(u8::MAX),
                "",
            ),
            GroupKey::Month { month } => (0, month),
        }
    }

    /// The key columns' values, in [`GroupBy::key_columns`] order.
    fn values(&self) -> Vec<&str> {
        match self {
            GroupKey::Level { level } => vec![level.as_str()],
            GroupKey::Agency {
                agency_code,
                agency_name,
                level,
                ..
            } => vec![agency_code.as_str(), agency_name, level.as_str()],
            GroupKey::Procedure {
                procedure_code,
                procedure_name,
            } => vec![procedure_code, procedure_name],
            GroupKey::Channel { channel } => vec![channel.as_str()],
            GroupKey::Month { month } => vec![month],
        }
    }

    /// Folds `other`, a key of the same group, into this one.
    fn merge(&mut self, other: GroupKey) {
        if let (
            GroupKey::Procedure { procedure_name, .. },
            GroupKey::Procedure {
                procedure_name: other,
                ..
            },
        ) = (self, other)
            && other > *procedure_name
        {
            *procedure_name = other;
        }
    }
}

/// One row of the store's aggregate: what one channel collected in one
/// group, in counted payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub key: GroupKey,
    pub channel: Channel,
    /// What the payments collected for their invoices.
    pub amount: Vnd,
    /// Of it, what succeeded refunds gave back.
    pub refunded: Vnd,
    pub count: i64,
}

/// The sums would not fit in 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a cashless report's sums overflow")]
pub struct Overflow;

/// What a group (or the whole report) collected and what of it was
/// refunded, split cashless / cash. The rate by amount is computed on what
/// was kept: collected less refunded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    cashless_amount: Vnd,
    cashless_refunded: Vnd,
    cashless_count: i64,
    cash_amount: Vnd,
    cash_refunded: Vnd,
    cash_count: i64,
    total_amount: Vnd,
    total_refunded: Vnd,
    total_count: i64,
}

fn add_amount(a: Vnd, b: Vnd) -> Result<Vnd, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

fn add_count(a: i64, b: i64) -> Result<i64, Overflow> {
    a.checked_add(b).ok_or(Overflow)
}

impl Figures {
    /// Figures of `count` payments of `amount` in all on `channel`, of
    /// which `refunded` was given back.
    pub fn of(channel: Channel, amount: Vnd, refunded: Vnd, count: i64) -> Figures {
        if channel.is_cashless() {
            Figures {
                cashless_amount: amount,
                cashless_refunded: refunded,
                cashless_count: count,
                total_amount: amount,
                total_refunded: refunded,
                total_count: count,
                ..Figures::default()
            }
        } else {
            Figures {
                cash_amount: amount,
                cash_refunded: refunded,
                cash_count: count,
                total_amount: amount,
                total_refunded: refunded,
                total_count: count,
                ..Figures::default()
            }
        }
    }

    /// The sum of these figures and `other`.
    pub fn plus(&self, other: &Figures) -> Result<Figures, Overflow> {
        Ok(Figures {
            cashless_amount: add_amount(self.cashless_amount, other.cashless_amount)?,
            cashless_refunded: add_amount(self.cashless_refunded, other.cashless_refunded)?,
            cashless_count: add_count(self.cashless_count, other.cashless_count)?,
            cash_amount: add_amount(self.cash_amount, other.cash_amount)?,
            cash_refunded: add_amount(self.cash_refunded, other.cash_refunded)?,
            cash_count: add_count(self.cash_count, other.cash_count)?,
            total_amount: add_amount(self.total_amount, other.total_amount)?,
            total_refunded: add_amount(self.total_refunded, other.total_refunded)?,
            total_count: add_count(self.total_count, other.total_count)?,
        })
    }

    pub fn cashless_refunded(&self) -> Vnd {
        self.cashless_refunded
    }

    pub fn cash_refunded(&self) -> Vnd {
        self.cash_refunded
    }

    pub fn total_refunded(&self) -> Vnd {
        self.total_refunded
    }

    /// What was collected and not refunded, cashless.
    pub fn cashless_kept(&self) -> Vnd {
        Vnd::new(self.cashless_amount.dong() - self.cashless_refunded.dong())
    }

    /// What was collected and not refunded, in all.
    pub fn total_kept(&self) -> Vnd {
        Vnd::new(self.total_amount.dong() - self.total_refunded.dong())
    }

    pub fn cashless_amount(&self) -> Vnd {
        self.cashless_amount
    }

    pub fn cashless_count(&self) -> i64 {
        self.cashless_count
    }

    pub fn cash_amount(&self) -> Vnd {
        self.cash_amount
    }

    pub fn cash_count(&self) -> i64 {
        self.cash_count
    }

    pub fn total_amount(&self) -> Vnd {
        self.total_amount
    }

    pub fn total_count(&self) -> i64 {
        self.total_count
    }

    /// Cashless amount kept / all amount kept (collected less refunded);
    /// `None` when nothing was kept.
    pub fn rate_by_amount(&self) -> Option<Rate> {
        Rate::of(self.cashless_kept().dong(), self.total_kept().dong())
    }

    /// Dossiers paid cashless / dossiers paid; `None` when none was.
    pub fn rate_by_count(&self) -> Option<Rate> {
        Rate::of(self.cashless_count, self.total_count)
    }
}

impl Serialize for Figures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown {
            cashless_amount: Vnd,
            cashless_count: i64,
            cash_amount: Vnd,
            cash_count: i64,
            total_amount: Vnd,
            total_count: i64,
            rate_by_amount: Option<Rate>,
            rate_by_count: Option<Rate>,
            cashless_refunded: Vnd,
            cash_refunded: Vnd,
            total_refunded: Vnd,
        }
        Shown {
            cashless_amount: self.cashless_amount,
            cashless_count: self.cashless_count,
            cash_amount: self.cash_amount,
            cash_count: self.cash_count,
            total_amount: self.total_amount,
            total_count: self.total_count,
            cashless_refunded: self.cashless_refunded,
            cash_refunded: self.cash_refunded,
            total_refunded: self.total_refunded,
            rate_by_amount: self.rate_by_amount(),
            rate_by_count: self.rate_by_count(),
        }
        .serialize(serializer)
    }
}

/// A cashless share in percent, exact; shown rounded half-even to two
/// places (`"89.32"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(Decimal);

impl Rate {
    /// `part` of `whole` in percent; `None` when `whole` is not positive.
    pub fn of(part: i64, whole: i64) -> Option<Rate> {
        if whole <= 0 {
            return None;
        }
        // Exact when the quotient terminates within 28 digits; otherwise
        // its error (below 1e-25) is far smaller than the distance from
        // any fraction of i64s to a rounding midpoint (above 1e-22), so
        // the rounding shown is exact either way.
        (Decimal::from(part) * Decimal::ONE_HUNDRED)
            .checked_div(Decimal::from(whole))
            .map(Rate)
    }

    /// The exact share in percent.
    pub fn exact(self) -> Decimal {
        self.0
    }

    /// Rounded half-even to two places, always with two decimals.
    pub fn display(self) -> String {
        let mut shown = self
            .0
            .round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
        shown.rescale(2);
        shown.to_string()
    }
}

impl Rate {
    /// How far this rate is from `earlier`, in percentage points.
    pub fn change_from(self, earlier: Rate) -> Rate {
        Rate(self.0 - earlier.0)
    }

    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.display())
    }
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    #[serde(flatten)]
    pub key: GroupKey,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A cashless-rate report: its groups in order, and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CashlessReport {
    pub query: ReportQuery,
    pub groups: Vec<Group>,
    /// The sum of the groups.
    pub total: Figures,
}

/// The columns after a group's key columns. Amounts are what was
/// collected; the refunded columns say what of it was given back, and the
/// rate by amount is on what was kept, as its name says.
const FIGURE_COLUMNS: [&str; 11] = [
    "cashless_amount",
    "cashless_count",
    "cash_amount",
    "cash_count",
    "total_amount",
    "total_count",
    "rate_by_amount_kept",
    "rate_by_count",
    "cashless_refunded",
    "cash_refunded",
    "total_refunded",
];

impl CashlessReport {
    /// Adds the store's tallies up into groups, ordered as `GroupBy` says,
    /// and the groups into the total, so that they always agree.
    pub fn from_tallies(
        query: ReportQuery,
        tallies: impl IntoIterator<Item = Tally>,
    ) -> Result<CashlessReport, Overflow> {
        let mut groups: BTreeMap<(u8, String), Group> = BTreeMap::new();
        for tally in tallies {
            let figures = Figures::of(tally.channel, tally.amount, tally.refunded, tally.count);
            let (rank, name) = tally.key.order();
            let order = (rank, name.to_owned());
            match groups.get_mut(&order) {
                Some(group) => {
                    group.figures = group.figures.plus(&figures)?;
                    group.key.merge(tally.key);
                }
                None => {
                    groups.insert(
                        order,
                        Group {
                            key: tally.key,
                            figures,
                        },
                    );
                }
            }
        }
        let groups: Vec<Group> = groups.into_values().collect();
        let total = groups
            .iter()
            .try_fold(Figures::default(), |sum, g| sum.plus(&g.figures))?;
        Ok(CashlessReport {
            query,
            groups,
            total,
        })
    }

    /// The header row: the key columns, then the figures.
    pub fn header(&self) -> Vec<&'static str> {
        let mut header = self.query.group_by.key_columns().to_vec();
        header.extend(FIGURE_COLUMNS);
        header
    }

    /// The groups' rows and the total's, as text cells; a rate with
    /// nothing to divide by is an empty cell.
    pub fn rows(&self, show_amount: impl Fn(Vnd) -> String) -> (Vec<Vec<String>>, Vec<String>) {
        let figures = |f: &Figures| {
            let rate = |r: Option<Rate>| r.map(Rate::display).unwrap_or_default();
            [
                show_amount(f.cashless_amount),
                f.cashless_count.to_string(),
                show_amount(f.cash_amount),
                f.cash_count.to_string(),
                show_amount(f.total_amount),
                f.total_count.to_string(),
                rate(f.rate_by_amount()),
                rate(f.rate_by_count()),
                show_amount(f.cashless_refunded),
                show_amount(f.cash_refunded),
                show_amount(f.total_refunded),
            ]
        };
        let groups = self
            .groups
            .iter()
            .map(|group| {
                let mut row: Vec<String> =
                    group.key.values().into_iter().map(str::to_owned).collect();
                row.extend(figures(&group.figures));
                row
            })
            .collect();
        let mut total = vec![String::new(); self.query.group_by.key_columns().len()];
        total[0] = "total".to_owned();
        total.extend(figures(&self.total));
        (groups, total)
    }

    /// The report as CSV for a spreadsheet: a UTF-8 byte order mark (so
    /// that Excel reads the Vietnamese names right), a header row, one row
    /// per group, and a last `total` row. Amounts are whole đồng; rates
    /// are the shown strings. A text cell that a spreadsheet would take
    /// for a formula is prefixed with `'`.
    pub fn to_csv(&self) -> String {
        let (groups, total) = self.rows(|amount| amount.dong().to_string());
        let mut writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        let written = std::iter::once(self.header().iter().map(|h| h.to_string()).collect())
            .chain(groups)
            .chain([total])
            .try_for_each(|row: Vec<String>| {
                writer.write_record(row.iter().map(|cell| defuse_formula(cell)))
            });
        // Writing rows of one length into memory cannot fail.
        debug_assert!(written.is_ok(), "{written:?}");
        let body = writer.into_inner().unwrap_or_default();
        format!("\u{feff}{}", String::from_utf8_lossy(&body))
    }

    /// The report as an aligned text table for a terminal, under a title
    /// that says the period, the basis and the agencies covered. Amounts
    /// show Vietnamese thousands dots.
    pub fn to_table(&self) -> String {
        let query = &self.query;
        let agencies = match &query.agency_code {
            None => "every agency".to_owned(),
            Some(code) if query.include_descendants => format!("agency {code} and those below it"),
            Some(code) => format!("agency {code} alone"),
        };
        let mut out = format!(
            "Cashless rate by {}, {} to {}, {}; {}\n\n",
            query.group_by.as_str(),
            query.period.from(),
            query.period.to(),
            query.basis.describe(),
            agencies,
        );
        let header: Vec<String> = self.header().iter().map(|h| h.replace('_', " ")).collect();
        let (groups, total) =
            self.rows(|amount| amount.display_vi().trim_end_matches(" ₫").to_owned());
        let keys = query.group_by.key_columns().len();
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                groups
                    .iter()
                    .chain([&total])
                    .map(|row| row[i].chars().count())
                    .chain([header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |out: &mut String, cells: &[String]| {
            let mut text = String::new();
            for (i, cell) in cells.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                // Names to the left, numbers to the right.
                if i < keys {
                    let _ = write!(text, "{cell}{}", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{}{cell}", " ".repeat(pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut out, &header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&mut out, &rule);
        for row in &groups {
            line(&mut out, row);
        }
        if !groups.is_empty() {
            line(&mut out, &rule);
        }
        line(&mut out, &total);
        out
    }
}

/// A cell a spreadsheet would run as a formula gets a leading `'`: one
/// whose first character, after any whitespace (tab, carriage return,
/// line feed, spaces), is `=`, `+`, `-` or `@`, or their fullwidth forms
/// `＝ ＋ － ＠`, which spreadsheets also read as such. Only names and
/// codes can start so: amounts and rates are never negative.
pub fn defuse_formula(cell: &str) -> String {
    let first = cell.trim_start().chars().next();
    let formula = matches!(
        first,
        Some('=' | '+' | '-' | '@' | '＝' | '＋' | '－' | '＠')
    ) || cell.starts_with(['\t', '\r', '\n']);
    if formula {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_defused() {
        for cell in [
            "=HYPERLINK(\"x\")",
            "+1",
            "-1",
            "@SUM(A1)",
            "＝1+1",
            "＋1",
            "－1",
            "＠SUM(A1)",
            " =1",
            "\t=1",
            "\r1",
            "\n=1",
        ] {
            assert_eq!(defuse_formula(cell), format!("'{cell}"), "{cell:?}");
        }
        for cell in ["Nguyễn Thị Hoa", "1.004227", "650000", "a=b", ""] {
            assert_eq!(defuse_formula(cell), cell);
        }
    }

    fn query(group_by: GroupBy) -> ReportQuery {
        ReportQuery {
            period: Period::parse("2026-01-01", "2026-12-31").unwrap(),
            basis: Basis::Recorded,
            group_by,
            agency_code: None,
            include_descendants: true,
        }
    }

    fn level(level: AgencyLevel, channel: Channel, amount: i64, count: i64) -> Tally {
        Tally {
            key: GroupKey::Level { level },
            channel,
            amount: Vnd::new(amount),
            refunded: Vnd::new(0),
            count,
        }
    }

    #[test]
    fn rates_round_half_even_for_display_only() {
        let shown = |part, whole| Rate::of(part, whole).map(Rate::display);
        assert_eq!(shown(2, 3), Some("66.67".into()));
        assert_eq!(shown(1, 8), Some("12.50".into()));
        assert_eq!(shown(1, 1), Some("100.00".into()));
        assert_eq!(shown(0, 5), Some("0.00".into()));
        assert_eq!(shown(0, 0), None);
        // 12.345 and 12.355 are midpoints: to the even neighbour.
        assert_eq!(shown(2469, 20000), Some("12.34".into()));
        assert_eq!(shown(2471, 20000), Some("12.36".into()));
        // Just above a midpoint is not a midpoint.
        assert_eq!(shown(24_690_001, 200_000_000), Some("12.35".into()));
        // The exact share is kept.
        assert_eq!(
            Rate::of(2469, 20000).unwrap().exact(),
            Decimal::new(12345, 3)
        );
        // A hair either side of a midpoint, with the largest denominators.
        let k = 400_000_000_000_000;
        assert_eq!(shown(2469 * k, 20000 * k), Some("12.34".into()));
        assert_eq!(shown(2469 * k + 1, 20000 * k), Some("12.35".into()));
        assert_eq!(shown(2471 * k - 1, 20000 * k), Some("12.35".into()));
        assert_eq!(shown(2471 * k, 20000 * k), Some("12.36".into()));
        // The largest amounts do not overflow.
        assert_eq!(shown(i64::MAX, i64::MAX), Some("100.00".into()));
        assert_eq!(shown(1, i64::MAX), Some("0.00".into()));
    }

    #[test]
    fn a_province_report_by_level() {
        use AgencyLevel::*;
        let report = CashlessReport::from_tallies(
            query(GroupBy::Level),
            [
                level(Commune, Channel::Cash, 3_300_000, 11),
                level(Province, Channel::Vnpay, 8_000_000, 10),
                level(District, Channel::BankTransfer, 6_100_000, 20),
                level(Province, Channel::Momo, 900_000, 3),
                level(Province, Channel::Cash, 1_000_000, 2),
                level(Commune, Channel::Zalopay, 2_700_000, 9),
            ],
        )
        .unwrap();
        let levels: Vec<&GroupKey> = report.groups.iter().map(|g| &g.key).collect();
        assert_eq!(
            levels,
            [
                &GroupKey::Level { level: Province },
                &GroupKey::Level { level: District },
                &GroupKey::Level { level: Commune },
            ]
        );
        let province = &report.groups[0].figures;
        assert_eq!(province.cashless_amount(), Vnd::new(8_900_000));
        assert_eq!(province.cashless_count(), 13);
        assert_eq!(province.cash_amount(), Vnd::new(1_000_000));
        assert_eq!(province.total_count(), 15);
        assert_eq!(province.rate_by_amount().unwrap().display(), "89.90");
        assert_eq!(province.rate_by_count().unwrap().display(), "86.67");
        assert_eq!(
            report.groups[1].figures.rate_by_amount().unwrap().display(),
            "100.00"
        );
        assert_eq!(
            report.groups[2].figures.rate_by_amount().unwrap().display(),
            "45.00"
        );
        assert_eq!(report.total.total_amount(), Vnd::new(22_000_000));
        assert_eq!(report.total.total_count(), 55);
        let json = serde_json::to_value(&report.groups[2]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "level": "commune",
                "cashless_amount": 2_700_000, "cashless_count": 9,
                "cash_amount": 3_300_000, "cash_count": 11,
                "total_amount": 6_000_000, "total_count": 20,
                "rate_by_amount": "45.00", "rate_by_count": "45.00",
                "cashless_refunded": 0, "cash_refunded": 0, "total_refunded": 0,
            })
        );
    }

    #[test]
    fn the_rate_by_amount_is_on_what_was_kept() {
        let tally = |channel, amount, refunded| Tally {
            key: GroupKey::Level {
                level: AgencyLevel::Commune,
            },
            channel,
            amount: Vnd::new(amount),
            refunded: Vnd::new(refunded),
            count: 1,
        };
        let report = CashlessReport::from_tallies(
            query(GroupBy::Level),
            [
                tally(Channel::Vnpay, 300_000, 150_000),
                tally(Channel::Cash, 150_000, 0),
            ],
        )
        .unwrap();
        let total = &report.total;
        assert_eq!(total.cashless_amount(), Vnd::new(300_000));
        assert_eq!(total.cashless_refunded(), Vnd::new(150_000));
        assert_eq!(total.total_refunded(), Vnd::new(150_000));
        assert_eq!(total.total_kept(), Vnd::new(300_000));
        // 150,000 kept cashless of 300,000 kept, not 300,000 of 450,000.
        assert_eq!(total.rate_by_amount().unwrap().display(), "50.00");
        let csv = report.to_csv();
        assert!(csv.contains("rate_by_amount_kept"), "{csv}");
        assert!(
            csv.ends_with("total,300000,1,150000,1,450000,2,50.00,50.00,150000,0,150000\r\n"),
            "{csv}"
        );
    }

    #[test]
    fn an_empty_report_has_a_zero_total_without_rates() {
        let report = CashlessReport::from_tallies(query(GroupBy::Month), []).unwrap();
        assert!(report.groups.is_empty());
        let json = serde_json::to_value(report.total).unwrap();
        assert_eq!(json["total_amount"], 0);
        assert_eq!(json["rate_by_amount"], serde_json::Value::Null);
        assert_eq!(json["rate_by_count"], serde_json::Value::Null);
        assert_eq!(
            report.to_csv(),
            "\u{feff}month,cashless_amount,cashless_count,cash_amount,cash_count,total_amount,total_count,rate_by_amount_kept,rate_by_count,cashless_refunded,cash_refunded,total_refunded\r\ntotal,0,0,0,0,0,0,,,0,0,0\r\n"
        );
    }

    #[test]
    fn one_procedure_is_one_group_whatever_its_invoices_call_it() {
        let procedure = |name: &str, channel, amount| Tally {
            key: GroupKey::Procedure {
                procedure_code: "1.004227".into(),
                procedure_name: name.into(),
            },
            channel,
            amount: Vnd::new(amount),
            refunded: Vnd::new(0),
            count: 1,
        };
        let report = CashlessReport::from_tallies(
            query(GroupBy::Procedure),
            [
                procedure("Cấp giấy phép xây dựng", Channel::Cash, 100),
                procedure("Cấp phép xây dựng", Channel::Vnpay, 300),
            ],
        )
        .unwrap();
        assert_eq!(report.groups.len(), 1);
        assert_eq!(
            report.groups[0].key,
            GroupKey::Procedure {
                procedure_code: "1.004227".into(),
                procedure_name: "Cấp phép xây dựng".into(),
            }
        );
        assert_eq!(report.total.rate_by_amount().unwrap().display(), "75.00");
    }

    #[test]
    fn a_period_is_compared_with_as_many_days_before_it() {
        let october = Period::parse("2026-10-01", "2026-10-31").unwrap();
        let before = october.previous().unwrap();
        assert_eq!(
            (before.from(), before.to()),
            ("2026-08-31".into(), "2026-09-30".into())
        );
        let day = Period::parse("2026-03-01", "2026-03-01")
            .unwrap()
            .previous()
            .unwrap();
        assert_eq!(
            (day.from(), day.to()),
            ("2026-02-28".into(), "2026-02-28".into())
        );
        let up = Rate::of(9, 10)
            .unwrap()
            .change_from(Rate::of(3, 4).unwrap());
        assert_eq!(up.display(), "15.00");
        assert!(
            Rate::of(1, 2)
                .unwrap()
                .change_from(Rate::of(3, 4).unwrap())
                .is_negative()
        );
    }

    #[test]
    fn csv_has_a_bom_a_header_the_groups_and_the_total() {
        let agency = |code: &str, name: &str, path: &str, channel, amount, count| Tally {
            key: GroupKey::Agency {
                agency_code: AgencyCode::parse("code", code).unwrap(),
                agency_name: name.into(),
                level: AgencyLevel::District,
                path: path.into(),
            },
            channel,
            amount: Vnd::new(amount),
            refunded: Vnd::new(0),
            count,
        };
        let report = CashlessReport::from_tallies(
            query(GroupBy::Agency),
            [
                agency("H.2", "=HYPERLINK(\"x\")", "/H/H.2/", Channel::Cash, 50, 1),
                agency(
                    "H.1",
                    "Huyện Văn Lâm, Hưng Yên",
                    "/H/H.1/",
                    Channel::Momo,
                    150,
                    1,
                ),
                agency(
                    "H.1",
                    "Huyện Văn Lâm, Hưng Yên",
                    "/H/H.1/",
                    Channel::Cash,
                    50,
                    2,
                ),
            ],
        )
        .unwrap();
        let csv = report.to_csv();
        assert!(csv.starts_with('\u{feff}'));
        let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header[..4],
            ["agency_code", "agency_name", "level", "cashless_amount"]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0].iter().collect::<Vec<_>>(),
            [
                "H.1",
                "Huyện Văn Lâm, Hưng Yên",
                "district",
                "150",
                "1",
                "50",
                "2",
                "200",
                "3",
                "75.00",
                "33.33",
                "0",
                "0",
                "0"
            ]
        );
        assert_eq!(&rows[1][1], "'=HYPERLINK(\"x\")");
        assert_eq!(&rows[1][9], "0.00");
        assert_eq!(
            rows[2].iter().collect::<Vec<_>>(),
            [
                "total", "", "", "150", "1", "100", "3", "250", "4", "60.00", "25.00", "0", "0",
                "0"
            ]
        );
    }

    #[test]
    fn the_table_is_aligned_and_says_what_it_counts() {
        let mut query = query(GroupBy::Channel);
        query.basis = Basis::Settled;
        query.agency_code = Some(AgencyCode::parse("code", "P").unwrap());
        let channel = |channel, amount, count| Tally {
            key: GroupKey::Channel { channel },
            channel,
            amount: Vnd::new(amount),
            refunded: Vnd::new(0),
            count,
        };
        let report = CashlessReport::from_tallies(
            query,
            [
                channel(Channel::Cash, 650_000, 1),
                channel(Channel::Vnpay, 1_300_000, 2),
            ],
        )
        .unwrap();
        let table = report.to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].contains("by channel, 2026-01-01 to 2026-12-31"),
            "{table}"
        );
        assert!(lines[0].contains("settled"), "{table}");
        assert!(lines[0].contains("agency P and those below it"), "{table}");
        assert!(lines[2].starts_with("channel  cashless amount"), "{table}");
        assert_eq!(lines[4].split_whitespace().next(), Some("vnpay"));
        assert_eq!(lines[5].split_whitespace().next(), Some("cash"));
        assert!(lines[4].contains("1.300.000"), "{table}");
        assert!(lines[7].starts_with("total"), "{table}");
        assert!(lines[7].contains("66.67          66.67"), "{table}");
        assert!(lines[2].ends_with("total refunded"), "{table}");
        // Every row is as wide as the header: the columns line up.
        let width = lines[2].chars().count();
        assert!(
            lines[4..].iter().all(|l| l.chars().count() == width),
            "{table}"
        );
    }

    #[test]
    fn periods_are_whole_days_in_order() {
        let period = Period::parse("2026-01-01", "2026-01-01").unwrap();
        assert_eq!(
            (period.from(), period.to()),
            ("2026-01-01".into(), "2026-01-01".into())
        );
        for (from, to) in [
            ("2026-1-01", "2026-12-31"),
            ("2026-02-30", "2026-12-31"),
            ("+02026-01-01", "2026-12-31"),
            ("2026-01-01T00:00", "2026-12-31"),
            ("2026-01-01", ""),
            ("２０２６-01-01", "2026-12-31"),
        ] {
            assert!(Period::parse(from, to).is_err(), "{from} {to}");
        }
        let err = Period::parse("2026-12-31", "2026-01-01").unwrap_err();
        assert_eq!(err.field, "from");
        for group_by in GroupBy::ALL {
            assert_eq!(GroupBy::parse(group_by.as_str()), Some(group_by));
        }
        for basis in Basis::ALL {
            assert_eq!(Basis::parse(basis.as_str()), Some(basis));
        }
        assert_eq!(GroupBy::parse("year"), None);
        let query = |agency: Option<&str>, descendants| {
            ReportQuery::new(
                period,
                Basis::Recorded,
                GroupBy::Level,
                agency.map(|code| AgencyCode::parse("agency_code", code).unwrap()),
                descendants,
            )
        };
        assert!(query(None, None).unwrap().include_descendants);
        assert!(query(None, Some(true)).is_ok());
        assert!(query(None, Some(false)).is_err());
        assert!(!query(Some("P"), Some(false)).unwrap().include_descendants);
    }

    #[test]
    fn sums_that_overflow_are_refused() {
        let result = CashlessReport::from_tallies(
            query(GroupBy::Level),
            [
                level(AgencyLevel::Province, Channel::Cash, i64::MAX, 1),
                level(AgencyLevel::District, Channel::Cash, 1, 1),
            ],
        );
        assert_eq!(result, Err(Overflow));
    }

    /// A key of the kind `group_by` makes, from a few of each.
    fn any_key(group_by: GroupBy) -> BoxedStrategy<GroupKey> {
        use AgencyLevel::*;
        match group_by {
            GroupBy::Level => prop::sample::select(vec![Province, District, Commune])
                .prop_map(|level| GroupKey::Level { level })
                .boxed(),
            GroupBy::Agency => (0usize..4)
                .prop_map(|i| GroupKey::Agency {
                    agency_code: AgencyCode::parse("code", &format!("A{i}")).unwrap(),
                    agency_name: format!("Agency {i}"),
                    level: District,
                    path: format!("/A/A{i}/"),
                })
                .boxed(),
            GroupBy::Procedure => ("[A-C]", "[a-c]{1,3}")
                .prop_map(|(procedure_code, procedure_name)| GroupKey::Procedure {
                    procedure_code,
                    procedure_name,
                })
                .boxed(),
            GroupBy::Channel => prop::sample::select(Channel::ALL.to_vec())
                .prop_map(|channel| GroupKey::Channel { channel })
                .boxed(),
            GroupBy::Month => (1u8..13)
                .prop_map(|m| GroupKey::Month {
                    month: format!("2026-{m:02}"),
                })
                .boxed(),
        }
    }

    /// A grouping and tallies of its kind, as the store would return.
    fn any_tallies() -> impl Strategy<Value = (GroupBy, Vec<Tally>)> {
        prop::sample::select(GroupBy::ALL.to_vec()).prop_flat_map(|group_by| {
            let tally = (
                any_key(group_by),
                prop::sample::select(Channel::ALL.to_vec()),
                1i64..1_000_000_000_000,
                1i64..100_000,
            )
                .prop_map(move |(key, channel, amount, count)| {
                    // A channel's group is its own channel.
                    let channel = match &key {
                        GroupKey::Channel { channel } => *channel,
                        _ => channel,
                    };
                    Tally {
                        key,
                        channel,
                        amount: Vnd::new(amount),
                        refunded: Vnd::new(0),
                        count,
                    }
                });
            (Just(group_by), proptest::collection::vec(tally, 0..60))
        })
    }

    proptest! {
        #[test]
        fn groups_add_up_to_the_total((group_by, tallies) in any_tallies()) {
            let report = CashlessReport::from_tallies(query(group_by), tallies.clone()).unwrap();
            let summed = report
                .groups
                .iter()
                .try_fold(Figures::default(), |sum, g| sum.plus(&g.figures))
                .unwrap();
            prop_assert_eq!(summed, report.total);
            // ...and the total is every tally, each counted once.
            let amount: i64 = tallies.iter().map(|t| t.amount.dong()).sum();
            let count: i64 = tallies.iter().map(|t| t.count).sum();
            let cash: i64 = tallies
                .iter()
                .filter(|t| t.channel == Channel::Cash)
                .map(|t| t.amount.dong())
                .sum();
            prop_assert_eq!(report.total.total_amount().dong(), amount);
            prop_assert_eq!(report.total.total_count(), count);
            prop_assert_eq!(report.total.cash_amount().dong(), cash);
            prop_assert_eq!(
                report.total.cashless_amount().dong() + report.total.cash_amount().dong(),
                amount
            );
            // Groups are distinct and in order; every rate is a share.
            let orders: Vec<(u8, &str)> = report.groups.iter().map(|g| g.key.order()).collect();
            prop_assert!(orders.windows(2).all(|w| w[0] < w[1]));
            for figures in report.groups.iter().map(|g| &g.figures).chain([&report.total]) {
                for rate in [figures.rate_by_amount(), figures.rate_by_count()].into_iter().flatten() {
                    prop_assert!(rate.exact() >= Decimal::ZERO && rate.exact() <= Decimal::ONE_HUNDRED);
                }
            }
            // The CSV's total row is the total, and its groups sum to it.
            let csv = report.to_csv();
            let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
            let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            let column = |row: &csv::StringRecord, i: usize| row[i].parse::<i64>().unwrap();
            let keys = report.query.group_by.key_columns().len();
            let (total, groups) = rows.split_last().unwrap();
            for i in 0..6 {
                let sum: i64 = groups.iter().map(|row| column(row, keys + i)).sum();
                prop_assert_eq!(sum, column(total, keys + i));
            }
        }

        #[test]
        fn the_rate_shown_is_the_exact_share_rounded_half_even(
            part in prop_oneof![0i64..1_000_000, 0i64..i64::MAX / 2],
            extra in prop_oneof![0i64..1_000_000, 0i64..i64::MAX / 2],
        ) {
            let whole = part + extra;
            prop_assume!(whole > 0);
            // In integers: round(part * 10000 / whole) half to even, in hundredths.
            let scaled = i128::from(part) * 10_000;
            let (q, r) = (scaled / i128::from(whole), scaled % i128::from(whole));
            let twice = 2 * r;
            let hundredths = if twice > i128::from(whole) || (twice == i128::from(whole) && q % 2 == 1) { q + 1 } else { q };
            let expected = format!("{}.{:02}", hundredths / 100, hundredths % 100);
            prop_assert_eq!(Rate::of(part, whole).unwrap().display(), expected);
        }
    }
}
