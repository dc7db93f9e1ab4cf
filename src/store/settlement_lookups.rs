//! What a batch of statement lines is matched against, read in a few
//! queries whatever the batch's size: the payments its lines may settle
//! (by transaction id, by reference or payment code), the paths of their
//! agencies, and the stored lines they may reclaim payments from; and the
//! batch's own lines, written in one statement.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::bulk::{distinct, json_agg, json_in, json_list, json_rows};
use super::conn::Conn;
use super::exceptions;
use super::recoveries::Settling;
use super::{Backend, StoreError, parse_time};
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, ExceptionKind, Resolution};
use crate::domain::settlement::{LineOutcome, StatementLine, format_day, parse_day};
use crate::domain::transfer_note::find_payment_code;
use crate::domain::{Timestamp, Vnd};
use crate::reconcile::matching::{Candidate, StoredLine};

/// The payments a chunk's lines may settle, each once, with whose each
/// is: the candidates side by side, as matching reads them.
#[derive(Default)]
pub(super) struct Found {
    pub candidates: Vec<Candidate>,
    /// The agency code of each candidate.
    agencies: Vec<Option<String>>,
    /// Each candidate's place, by payment id.
    by_id: HashMap<String, usize>,
}

impl Found {
    pub(super) fn add(&mut self, candidate: Candidate, agency: Option<String>) {
        match self.by_id.get(&candidate.payment_id) {
            Some(&at) => {
                self.candidates[at] = candidate;
                self.agencies[at] = agency;
            }
            None => {
                self.by_id
                    .insert(candidate.payment_id.clone(), self.candidates.len());
                self.candidates.push(candidate);
                self.agencies.push(agency);
            }
        }
    }

    /// The payment `payment_id` a line settles, with its agency's path.
    pub(super) fn settling(
        &self,
        payment_id: &str,
        paths: &AgencyPaths,
    ) -> Result<Settling, StoreError> {
        let at = *self
            .by_id
            .get(payment_id)
            .ok_or_else(|| StoreError::corrupt("a matched payment was not found"))?;
        let candidate = &self.candidates[at];
        let agency = match &self.agencies[at] {
            Some(code) => {
                let path = paths.0.get(code).ok_or_else(|| {
                    StoreError::corrupt(format!("payment {payment_id}'s agency was not found"))
                })?;
                Some((code.clone(), path.clone()))
            }
            None => None,
        };
        Ok(Settling {
            payment_id: candidate.payment_id.clone(),
            amount: candidate.amount,
            agency,
        })
    }
}

/// The path of each agency an import's payments belong to, read once per
/// agency: a statement's lines are of a few agencies, and joining each
/// candidate to its agency read the same row for every line.
#[derive(Default)]
pub(super) struct AgencyPaths(HashMap<String, String>);

impl AgencyPaths {
    /// Reads, in one query, the paths of the agencies of `found` not read
    /// before.
    pub(super) async fn learn(
        &mut self,
        conn: &mut Conn<'_>,
        backend: Backend,
        found: &Found,
    ) -> Result<(), StoreError> {
        let codes = distinct(
            found
                .agencies
                .iter()
                .flatten()
                .map(String::as_str)
                .filter(|code| !self.0.contains_key(*code)),
        );
        if codes.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT code, path FROM agencies WHERE code {}",
            json_in(backend, "$1")
        );
        let rows: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(json_list(&codes)?)
            .fetch_all(&mut *conn)
            .await?;
        self.0.extend(rows);
        Ok(())
    }
}

/// What a chunk's lines turned out to be, to insert and to count.
pub(super) struct Settled<'a> {
    pub line: &'a StatementLine,
    pub outcome: LineOutcome,
    pub settling: Settling,
}

/// A stored line that a line of this import reclaims its payment from,
/// read back as a statement line, with its statement's account.
pub(super) async fn stored_line<'a>(
    conn: &mut Conn<'_>,
    channel: Channel,
    from: &'a StoredLine,
) -> Result<(&'a StoredLine, StatementLine, Option<String>), StoreError> {
    let row = sqlx::query(
        "SELECT l.txn_ref, l.reference, l.amount, l.fee, l.transaction_time,
                l.settlement_date, f.account_number
         FROM settlement_lines l JOIN settlement_files f ON f.id = l.file_id
         WHERE l.file_id = $1 AND l.line_no = $2",
    )
    .bind(&from.file_id)
    .bind(from.line_no)
    .fetch_one(conn)
    .await?;
    let reference: String = row.try_get("reference")?;
    let settlement_date: String = row.try_get("settlement_date")?;
    let line = StatementLine {
        line_no: usize::try_from(from.line_no).unwrap_or(usize::MAX),
        txn_ref: row.try_get("txn_ref")?,
        payment_code: match channel {
            Channel::BankTransfer => find_payment_code(&reference),
            _ => None,
        },
        reference,
        amount: Vnd::new(row.try_get("amount")?),
        fee: Vnd::new(row.try_get("fee")?),
        transaction_time: parse_time(&row, "transaction_time")?,
        settlement_date: parse_day(&settlement_date)
            .ok_or_else(|| StoreError::corrupt("a stored line's settlement date"))?,
    };
    Ok((from, line, row.try_get("account_number")?))
}

pub(super) fn line_number(line: &StatementLine) -> i64 {
    i64::try_from(line.line_no).unwrap_or(i64::MAX)
}

/// The columns of a candidate, in the order [`CandidateRow`] reads them,
/// with its invoice's payment code in the middle.
pub(super) const CANDIDATE_COLUMNS: (&str, &str) = (
    "p.id, p.provider_txn_id, p.reference, p.amount, p.agency_code",
    "s.file_id, s.line_no, s.txn_ref",
);

pub(super) const CANDIDATES_FROM: &str = "FROM payments p
     LEFT JOIN settlement_lines s ON s.payment_id = p.id AND s.outcome <> 'duplicate_line'";

/// A candidate's payment code, and the join that finds it: only a bank
/// transfer's line names an invoice by its payment code, so for any other
/// channel there is no invoice to look up.
pub(super) fn payment_code_of(channel: Channel) -> (&'static str, &'static str) {
    match channel {
        Channel::BankTransfer => (
            "i.payment_code",
            "LEFT JOIN invoices i ON i.id = p.invoice_id",
        ),
        _ => ("NULL", ""),
    }
}

/// A candidate as its query answers it: the payment's id, transaction id,
/// reference, amount, agency code, invoice payment code, and the file,
/// line number and transaction id of the line settling it.
pub(super) type CandidateRow = (
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
);

/// The payments a chunk's lines may settle: those with a line's
/// transaction id; those stored lines settled under a line's transaction
/// id (by reference), with those transaction ids; and the unsettled ones
/// with the reference (or, for a bank line, the payment code) of a line
/// that named none. A few queries, whatever the chunk's size.
pub(super) async fn candidates(
    conn: &mut Conn<'_>,
    backend: Backend,
    channel: Channel,
    chunk: &[StatementLine],
) -> Result<(Found, HashMap<String, String>), StoreError> {
    let txn_refs: Vec<&str> = distinct(chunk.iter().map(|l| l.txn_ref.as_str()));
    let mut found = Found::default();
    fetch_candidates(
        conn,
        backend,
        "p.provider_txn_id",
        "",
        channel,
        &txn_refs,
        &mut found,
    )
    .await?;
    let named: HashSet<&str> = found
        .candidates
        .iter()
        .map(|c| c.provider_txn_id.as_str())
        .collect();
    let unnamed: Vec<&StatementLine> = chunk
        .iter()
        .filter(|l| !named.contains(l.txn_ref.as_str()))
        .collect();

    // Transactions settled before under their own id, by reference.
    let keys = distinct(unnamed.iter().map(|l| l.txn_ref.as_str()));
    let mut settled_refs = HashMap::new();
    if !keys.is_empty() {
        let sql = format!(
            "SELECT l.txn_ref, l.payment_id FROM settlement_lines l
             WHERE l.channel = $1 AND l.txn_ref {}
               AND l.outcome <> 'duplicate_line'",
            json_in(backend, "$2")
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(channel.as_str())
            .bind(json_list(&keys)?)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let payment_id: Option<String> = row.try_get("payment_id")?;
            if let Some(payment_id) = payment_id {
                settled_refs.insert(row.try_get("txn_ref")?, payment_id);
            }
        }
        let ids = distinct(settled_refs.values().map(String::as_str));
        fetch_candidates(conn, backend, "p.id", "", channel, &ids, &mut found).await?;
    }

    let unnamed = unnamed
        .into_iter()
        .filter(|l| !settled_refs.contains_key(&l.txn_ref));
    let unsettled = " AND s.file_id IS NULL";
    match channel {
        Channel::BankTransfer => {
            // By the payment code in the description; a transfer whose
            // note named no invoice, by the note itself.
            let (coded, uncoded): (Vec<&StatementLine>, Vec<&StatementLine>) =
                unnamed.partition(|l| l.payment_code.is_some());
            let codes = distinct(
                coded
                    .iter()
                    .filter_map(|l| l.payment_code.as_ref().map(|c| c.as_str())),
            );
            fetch_candidates(
                conn,
                backend,
                "i.payment_code",
                unsettled,
                channel,
                &codes,
                &mut found,
            )
            .await?;
            let notes = distinct(uncoded.iter().map(|l| l.reference.as_str()));
            fetch_candidates(
                conn,
                backend,
                "p.reference",
                unsettled,
                channel,
                &notes,
                &mut found,
            )
            .await?;
        }
        _ => {
            let references = distinct(unnamed.map(|l| l.reference.as_str()));
            fetch_candidates(
                conn,
                backend,
                "p.reference",
                unsettled,
                channel,
                &references,
                &mut found,
            )
            .await?;
        }
    }
    Ok((found, settled_refs))
}

/// Adds to `found` the payments of `channel` whose `column` is one of
/// `keys` and that meet the further condition `and`.
pub(super) async fn fetch_candidates(
    conn: &mut Conn<'_>,
    backend: Backend,
    column: &str,
    and: &str,
    channel: Channel,
    keys: &[&str],
    found: &mut Found,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    // By id, the primary key alone finds them: SQLite, keeping no
    // statistics, would rather read all the channel's payments by its
    // index, so the channel is compared as an expression no index has.
    let channel_is = match column {
        "p.id" => "coalesce(p.channel, '') = $1",
        _ => "p.channel = $1",
    };
    let (payment_code, invoices) = payment_code_of(channel);
    let (before, after) = CANDIDATE_COLUMNS;
    let sql = format!(
        "SELECT {} {CANDIDATES_FROM} {invoices}
         WHERE {channel_is} AND {column} {}{and}",
        json_agg(backend, &format!("{before}, {payment_code}, {after}")),
        json_in(backend, "$2")
    );
    let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(channel.as_str())
        .bind(json_list(keys)?)
        .fetch_one(&mut *conn)
        .await?;
    let Some(rows) = rows else {
        // PostgreSQL aggregates no rows to NULL.
        return Ok(());
    };
    let rows: Vec<CandidateRow> = serde_json::from_str(&rows).map_err(StoreError::corrupt)?;
    for row in rows {
        let (id, provider_txn_id, reference, amount, agency_code, payment_code) =
            (row.0, row.1, row.2, row.3, row.4, row.5);
        let settled_by = match (row.6, row.7, row.8) {
            (Some(file_id), Some(line_no), Some(txn_ref)) => Some(StoredLine {
                file_id,
                line_no,
                txn_ref,
            }),
            _ => None,
        };
        let candidate = Candidate {
            payment_id: id,
            provider_txn_id,
            reference,
            payment_code,
            amount: Vnd::new(amount),
            settled_by,
        };
        found.add(candidate, agency_code);
    }
    Ok(())
}

/// A stored line's fields after its file and channel, as [`insert_lines`]
/// binds them.
pub(super) type LineRow<'a> = (
    i64,
    &'a str,
    &'a str,
    i64,
    i64,
    String,
    String,
    &'a str,
    &'a str,
    Option<&'a str>,
);

/// Inserts a chunk's lines in one statement, bound as one JSON value.
pub(super) async fn insert_lines(
    conn: &mut Conn<'_>,
    backend: Backend,
    channel: Channel,
    file_id: &str,
    settled: &[Settled<'_>],
) -> Result<(), StoreError> {
    if settled.is_empty() {
        return Ok(());
    }
    let rows: Vec<LineRow<'_>> = settled
        .iter()
        .map(|s| {
            (
                line_number(s.line),
                s.line.txn_ref.as_str(),
                s.line.reference.as_str(),
                s.line.amount.dong(),
                s.line.fee.dong(),
                s.line.transaction_time.to_stored(),
                format_day(s.line.settlement_date),
                s.outcome.as_str(),
                s.settling.payment_id.as_str(),
                s.settling.agency.as_ref().map(|(code, _)| code.as_str()),
            )
        })
        .collect();
    let rows = serde_json::to_string(&rows).map_err(StoreError::corrupt)?;
    let sql = format!(
        "INSERT INTO settlement_lines (file_id, line_no, channel, txn_ref, reference, amount, fee,
             transaction_time, settlement_date, outcome, payment_id, agency_code)
         SELECT $1, CAST(e.value->>0 AS BIGINT), $2, e.value->>1, e.value->>2,
             CAST(e.value->>3 AS BIGINT), CAST(e.value->>4 AS BIGINT), e.value->>5, e.value->>6,
             e.value->>7, e.value->>8, e.value->>9
         FROM {}",
        json_rows(backend, "$3")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(file_id)
        .bind(channel.as_str())
        .bind(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Clears the `unsettled_payment` findings of payments a line now
/// settles. One query finds them.
pub(super) async fn clear_unsettled(
    conn: &mut Conn<'_>,
    backend: Backend,
    actor: &Actor,
    payment_ids: &[&str],
    file_id: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    if payment_ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "SELECT payment_id FROM payment_exceptions
         WHERE kind = 'unsettled_payment' AND status = 'open'
           AND payment_id {}",
        json_in(backend, "$1")
    );
    let query =
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(json_list(payment_ids)?);
    let unsettled = query.fetch_all(&mut *conn).await?;
    let note = format!("settled by statement {file_id}");
    for payment_id in &unsettled {
        exceptions::clear(
            conn,
            actor,
            ExceptionKind::UnsettledPayment,
            payment_id,
            Resolution::SettledLater,
            &note,
            now,
        )
        .await?;
    }
    Ok(unsettled.len() as u64)
}
