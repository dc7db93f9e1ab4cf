//! Matching statement lines to recorded payments: pure functions over a
//! chunk of lines and the payments they might settle, so that the store
//! needs a few queries per chunk and never one per line.
//!
//! A line settles the payment with its transaction id; failing that, an
//! unsettled payment with its reference (a gateway's order reference, or
//! the payment code a transfer's description carries) and its amount.
//! A payment is settled once: any other line for it is a duplicate. A line
//! that settles nothing is a missing payment, recovered from the line.
//! Lines are considered in a fixed order of their content, never their
//! position, so the outcome does not depend on how lines are ordered.

use std::collections::{HashMap, HashSet};

use crate::domain::Vnd;
use crate::domain::settlement::{LineOutcome, StatementLine};

/// A recorded payment that a line may settle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub payment_id: String,
    pub provider_txn_id: String,
    /// What the provider named: an order reference or a transfer note.
    pub reference: String,
    /// The payment code of the invoice the payment is for, if any.
    pub payment_code: Option<String>,
    pub amount: Vnd,
    /// Whether a stored line already settles it.
    pub settled: bool,
}

/// What a line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Settles (or duplicates) a recorded payment: `outcome` is
    /// `matched`, `amount_mismatch` or `duplicate_line`.
    Payment {
        outcome: LineOutcome,
        payment_id: String,
    },
    /// Settles money never recorded: a payment is to be recovered from it.
    Missing,
    /// Repeats the transaction of the line at this index, which recovers
    /// a missing payment.
    DuplicateOf(usize),
}

impl Decision {
    pub fn outcome(&self) -> LineOutcome {
        match self {
            Decision::Payment { outcome, .. } => *outcome,
            Decision::Missing => LineOutcome::MissingPayment,
            Decision::DuplicateOf(_) => LineOutcome::DuplicateLine,
        }
    }
}

/// How a line finds its payment when the transaction ids differ.
fn reference_key(line: &StatementLine) -> &str {
    match &line.payment_code {
        Some(code) => code.as_str(),
        None => &line.reference,
    }
}

/// Decides every line of a chunk. `candidates` are the payments whose
/// transaction id is a line's, and the unsettled payments whose
/// reference or payment code is a line's, each marked settled if a
/// stored line settles it. Returns one decision per line, in the lines'
/// order.
pub fn match_lines(lines: &[StatementLine], candidates: &[Candidate]) -> Vec<Decision> {
    let by_txn: HashMap<&str, &Candidate> = candidates
        .iter()
        .map(|c| (c.provider_txn_id.as_str(), c))
        .collect();
    // Unsettled payments by (reference or code, amount), smallest id first.
    let mut by_reference: HashMap<(&str, Vnd), Vec<&Candidate>> = HashMap::new();
    for candidate in candidates.iter().filter(|c| !c.settled) {
        by_reference
            .entry((candidate.reference.as_str(), candidate.amount))
            .or_default()
            .push(candidate);
        if let Some(code) = &candidate.payment_code
            && *code != candidate.reference
        {
            by_reference
                .entry((code.as_str(), candidate.amount))
                .or_default()
                .push(candidate);
        }
    }
    for list in by_reference.values_mut() {
        list.sort_by(|a, b| a.payment_id.cmp(&b.payment_id));
    }

    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| content_order(&lines[a], &lines[b]).then(a.cmp(&b)));

    let mut taken: HashSet<&str> = candidates
        .iter()
        .filter(|c| c.settled)
        .map(|c| c.payment_id.as_str())
        .collect();
    let mut decisions: Vec<Option<Decision>> = vec![None; lines.len()];

    // First every line whose transaction id names a payment, so that a
    // payment is never taken by reference from the line that names it.
    for &i in &order {
        let line = &lines[i];
        if let Some(candidate) = by_txn.get(line.txn_ref.as_str()) {
            let id = candidate.payment_id.as_str();
            let outcome = if !taken.insert(id) {
                LineOutcome::DuplicateLine
            } else if candidate.amount == line.amount {
                LineOutcome::Matched
            } else {
                LineOutcome::AmountMismatch
            };
            decisions[i] = Some(Decision::Payment {
                outcome,
                payment_id: id.to_owned(),
            });
        }
    }
    // Then by reference and amount; what is left recovers a payment,
    // once per transaction id.
    let mut missing: HashMap<&str, usize> = HashMap::new();
    for &i in &order {
        if decisions[i].is_some() {
            continue;
        }
        let line = &lines[i];
        if let Some(&first) = missing.get(line.txn_ref.as_str()) {
            decisions[i] = Some(Decision::DuplicateOf(first));
            continue;
        }
        let found = by_reference
            .get(&(reference_key(line), line.amount))
            .and_then(|list| list.iter().find(|c| !taken.contains(c.payment_id.as_str())));
        decisions[i] = Some(match found {
            Some(candidate) => {
                taken.insert(&candidate.payment_id);
                Decision::Payment {
                    outcome: LineOutcome::Matched,
                    payment_id: candidate.payment_id.clone(),
                }
            }
            None => {
                missing.insert(&line.txn_ref, i);
                Decision::Missing
            }
        });
    }
    decisions
        .into_iter()
        .map(|d| d.unwrap_or(Decision::Missing))
        .collect()
}

/// The order lines are considered in: by their content alone.
fn content_order(a: &StatementLine, b: &StatementLine) -> std::cmp::Ordering {
    (
        &a.txn_ref,
        a.amount,
        &a.reference,
        a.settlement_date,
        a.transaction_time,
        a.fee,
    )
        .cmp(&(
            &b.txn_ref,
            b.amount,
            &b.reference,
            b.settlement_date,
            b.transaction_time,
            b.fee,
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Timestamp;
    use crate::domain::settlement::parse_day;
    use proptest::prelude::*;

    fn line(n: usize, txn: &str, reference: &str, amount: i64) -> StatementLine {
        StatementLine {
            line_no: n,
            txn_ref: txn.into(),
            reference: reference.into(),
            payment_code: None,
            amount: Vnd::new(amount),
            fee: Vnd::new(0),
            transaction_time: Timestamp::parse_rfc3339("2026-11-02T09:00:00+07:00").unwrap(),
            settlement_date: parse_day("2026-11-03").unwrap(),
        }
    }

    fn payment(id: &str, txn: &str, reference: &str, amount: i64, settled: bool) -> Candidate {
        Candidate {
            payment_id: id.into(),
            provider_txn_id: txn.into(),
            reference: reference.into(),
            payment_code: None,
            amount: Vnd::new(amount),
            settled,
        }
    }

    fn outcomes(decisions: &[Decision]) -> Vec<LineOutcome> {
        decisions.iter().map(Decision::outcome).collect()
    }

    #[test]
    fn each_outcome_is_found() {
        let lines = [
            line(2, "T1", "O1", 150_000),
            line(3, "T2", "O2", 99_000),
            line(4, "T3", "O3", 50_000),
            line(5, "T1", "O1", 150_000),
            line(6, "T9", "O4", 70_000),
            line(7, "T8", "O8", 10_000),
            line(8, "T8", "O8", 10_000),
        ];
        let candidates = [
            payment("p1", "T1", "O1", 150_000, false),
            payment("p2", "T2", "O2", 100_000, false),
            payment("p3", "T3", "O3", 50_000, true),
            // Recorded under another transaction id: found by reference.
            payment("p4", "X4", "O4", 70_000, false),
        ];
        let decisions = match_lines(&lines, &candidates);
        use LineOutcome::*;
        assert_eq!(
            outcomes(&decisions),
            [
                Matched,
                AmountMismatch,
                DuplicateLine,
                DuplicateLine,
                Matched,
                MissingPayment,
                DuplicateLine
            ]
        );
        assert_eq!(decisions[6], Decision::DuplicateOf(5));
        assert_eq!(
            decisions[4],
            Decision::Payment {
                outcome: Matched,
                payment_id: "p4".into()
            }
        );
    }

    #[test]
    fn a_payment_named_by_its_transaction_is_not_taken_by_reference() {
        // Line 2 would match p1 by reference, but line 3 names p1.
        let lines = [line(2, "Z", "O1", 10), line(3, "T1", "O1", 10)];
        let candidates = [payment("p1", "T1", "O1", 10, false)];
        let decisions = match_lines(&lines, &candidates);
        assert_eq!(
            outcomes(&decisions),
            [LineOutcome::MissingPayment, LineOutcome::Matched]
        );
    }

    proptest! {
        #[test]
        fn shuffling_lines_changes_no_line_outcome(
            seed in any::<u64>(),
            picks in proptest::collection::vec((0u8..6, 0u8..3, any::<bool>()), 1..40),
        ) {
            let lines: Vec<StatementLine> = picks
                .iter()
                .enumerate()
                .map(|(n, (txn, reference, odd))| {
                    line(n + 2, &format!("T{txn}"), &format!("O{reference}"),
                         if *odd { 11 } else { 10 })
                })
                .collect();
            let candidates: Vec<Candidate> = (0..4)
                .map(|k| payment(&format!("p{k}"), &format!("T{k}"), &format!("O{}", k % 3), 10, k == 3))
                .collect();
            let mut shuffled: Vec<usize> = (0..lines.len()).collect();
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (state >> 33) as usize % (i + 1));
            }
            let reordered: Vec<StatementLine> = shuffled.iter().map(|&i| lines[i].clone()).collect();
            let mut first = outcomes(&match_lines(&lines, &candidates));
            let mut second = outcomes(&match_lines(&reordered, &candidates));
            first.sort();
            second.sort();
            prop_assert_eq!(first, second);
        }
    }
}
