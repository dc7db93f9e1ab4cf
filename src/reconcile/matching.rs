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
    /// The stored line that settles it, if one does.
    pub settled_by: Option<StoredLine>,
}

/// A line of an earlier chunk or statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    pub file_id: String,
    pub line_no: i64,
    pub txn_ref: String,
}

impl Candidate {
    /// Whether a stored line settles it by naming its transaction id, as
    /// opposed to by reference and amount.
    fn named_by_its_line(&self) -> bool {
        self.settled_by
            .as_ref()
            .is_some_and(|line| line.txn_ref == self.provider_txn_id)
    }
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
    /// Settles the payment its transaction id names, which a stored line
    /// had taken by reference and amount: that line settles money of its
    /// own, never recorded, and is to recover it.
    Reclaim {
        outcome: LineOutcome,
        payment_id: String,
        from: StoredLine,
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
            Decision::Payment { outcome, .. } | Decision::Reclaim { outcome, .. } => *outcome,
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

/// Decides every line of a chunk.
///
/// `candidates` are the payments whose transaction id is a line's, and
/// the unsettled payments whose reference or payment code is a line's.
/// `settled_refs` maps the transaction ids of stored lines that settled a
/// payment by reference to that payment: the same transaction again is a
/// duplicate. Returns one decision per line, in the lines' order.
pub fn match_lines(
    lines: &[StatementLine],
    candidates: &[Candidate],
    settled_refs: &HashMap<String, String>,
) -> Vec<Decision> {
    let by_txn: HashMap<&str, &Candidate> = candidates
        .iter()
        .map(|c| (c.provider_txn_id.as_str(), c))
        .collect();
    // Unsettled payments by (reference or code, amount), smallest id first.
    let mut by_reference: HashMap<(&str, Vnd), Vec<&Candidate>> = HashMap::new();
    for candidate in candidates.iter().filter(|c| c.settled_by.is_none()) {
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

    // Payments settled by a line naming them are no line's to take.
    let mut taken: HashSet<&str> = candidates
        .iter()
        .filter(|c| c.named_by_its_line())
        .map(|c| c.payment_id.as_str())
        .collect();
    let mut decisions: Vec<Option<Decision>> = vec![None; lines.len()];

    // First every line whose transaction id names a payment: a payment
    // belongs to the line that names it, even one a line matched by
    // reference and amount had taken before.
    for &i in &order {
        let line = &lines[i];
        let Some(candidate) = by_txn.get(line.txn_ref.as_str()) else {
            continue;
        };
        let id = candidate.payment_id.as_str();
        let outcome = if !taken.insert(id) {
            LineOutcome::DuplicateLine
        } else if candidate.amount == line.amount {
            LineOutcome::Matched
        } else {
            LineOutcome::AmountMismatch
        };
        decisions[i] = Some(match (&candidate.settled_by, outcome) {
            (Some(from), LineOutcome::Matched | LineOutcome::AmountMismatch) => Decision::Reclaim {
                outcome,
                payment_id: id.to_owned(),
                from: from.clone(),
            },
            _ => Decision::Payment {
                outcome,
                payment_id: id.to_owned(),
            },
        });
    }
    // Then by reference and amount; what is left recovers a payment. A
    // transaction id decided once decides its repeats.
    let mut seen: HashMap<&str, Decision> = HashMap::new();
    for &i in &order {
        if decisions[i].is_some() {
            continue;
        }
        let line = &lines[i];
        let txn = line.txn_ref.as_str();
        let decision = if let Some(first) = seen.get(txn) {
            match first {
                Decision::Payment { payment_id, .. } => Decision::Payment {
                    outcome: LineOutcome::DuplicateLine,
                    payment_id: payment_id.clone(),
                },
                other => other.clone(),
            }
        } else if let Some(payment_id) = settled_refs.get(txn) {
            Decision::Payment {
                outcome: LineOutcome::DuplicateLine,
                payment_id: payment_id.clone(),
            }
        } else {
            let found = by_reference
                .get(&(reference_key(line), line.amount))
                .and_then(|list| list.iter().find(|c| !taken.contains(c.payment_id.as_str())));
            let decision = match found {
                Some(candidate) => {
                    taken.insert(&candidate.payment_id);
                    Decision::Payment {
                        outcome: LineOutcome::Matched,
                        payment_id: candidate.payment_id.clone(),
                    }
                }
                None => Decision::Missing,
            };
            seen.insert(
                txn,
                match &decision {
                    Decision::Missing => Decision::DuplicateOf(i),
                    other => other.clone(),
                },
            );
            decision
        };
        decisions[i] = Some(decision);
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

    /// A payment; `settled` by a stored line naming it.
    fn payment(id: &str, txn: &str, reference: &str, amount: i64, settled: bool) -> Candidate {
        Candidate {
            payment_id: id.into(),
            provider_txn_id: txn.into(),
            reference: reference.into(),
            payment_code: None,
            amount: Vnd::new(amount),
            settled_by: settled.then(|| StoredLine {
                file_id: "f0".into(),
                line_no: 2,
                txn_ref: txn.into(),
            }),
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
        let decisions = match_lines(&lines, &candidates, &HashMap::new());
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
        let decisions = match_lines(&lines, &candidates, &HashMap::new());
        assert_eq!(
            outcomes(&decisions),
            [LineOutcome::MissingPayment, LineOutcome::Matched]
        );
    }

    #[test]
    fn a_line_naming_a_payment_reclaims_it_from_a_line_that_took_it_by_reference() {
        let mut p1 = payment("p1", "T1", "O1", 10, false);
        p1.settled_by = Some(StoredLine {
            file_id: "f0".into(),
            line_no: 7,
            txn_ref: "Z".into(),
        });
        let decisions = match_lines(&[line(2, "T1", "O1", 10)], &[p1], &HashMap::new());
        assert_eq!(
            decisions,
            [Decision::Reclaim {
                outcome: LineOutcome::Matched,
                payment_id: "p1".into(),
                from: StoredLine {
                    file_id: "f0".into(),
                    line_no: 7,
                    txn_ref: "Z".into()
                },
            }]
        );
    }

    #[test]
    fn a_transaction_settled_by_reference_is_a_duplicate_when_it_comes_again() {
        // Within the chunk...
        let lines = [line(2, "B1", "LP1", 10), line(3, "B1", "LP1", 10)];
        let candidates = [payment("p1", "sepay-1", "LP1", 10, false)];
        let decisions = match_lines(&lines, &candidates, &HashMap::new());
        assert_eq!(
            outcomes(&decisions),
            [LineOutcome::Matched, LineOutcome::DuplicateLine]
        );
        assert_eq!(
            decisions[1],
            Decision::Payment {
                outcome: LineOutcome::DuplicateLine,
                payment_id: "p1".into()
            }
        );
        // ...and after it was stored.
        let stored = HashMap::from([("B1".to_owned(), "p1".to_owned())]);
        let decisions = match_lines(&lines[..1], &[], &stored);
        assert_eq!(outcomes(&decisions), [LineOutcome::DuplicateLine]);
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
            let mut first = outcomes(&match_lines(&lines, &candidates, &HashMap::new()));
            let mut second = outcomes(&match_lines(&reordered, &candidates, &HashMap::new()));
            first.sort();
            second.sort();
            prop_assert_eq!(first, second);
        }
    }
}
