//! Payments recovered from a statement follow the rules of a callback: a
//! statement of payments nobody notified leaves what the same payments,
//! notified one by one, leave: the same invoices paid, receipts numbered
//! alike, the same payments held for the same reasons, the same events for
//! the dossier system; plus one `missing_payment` per line for officers.

use std::collections::BTreeMap;

use lephi::domain::Role;
use serde_json::{Value, json};

use crate::helpers::{BANK_ACCOUNT, Backend, PaymentsApp, spawn_payments_app};
use crate::on_both_backends;
use crate::payments::{rsp_code, sepay_auth, sepay_transfer, vnpay_attempt, vnpay_ipn_paid_at};

on_both_backends!(payments_recovered_from_statements_are_recorded_as_their_callbacks_would_be);

const FEE: i64 = 650_000;

/// One transfer into P.D1's account: its id, amount and note.
struct Transfer {
    id: i64,
    amount: i64,
    note: String,
}

/// The invoices of one app, by dossier, and the transfers and VNPay
/// payments that come for them.
struct World {
    dossiers: BTreeMap<String, String>,
    transfers: Vec<Transfer>,
    /// Transaction id and order reference.
    gateway: Vec<(String, String)>,
}

/// Issues the same invoices on `app`: five of P.D1 (the fourth
/// cancelled), one of P.D2, two paid through VNPay attempts.
async fn world(app: &PaymentsApp) -> World {
    let mut dossiers = BTreeMap::new();
    let mut codes = Vec::new();
    for i in 0..5 {
        let invoice = app.invoice(&format!("HS-{i}")).await;
        dossiers.insert(
            invoice["id"].as_str().unwrap().to_owned(),
            format!("HS-{i}"),
        );
        codes.push(invoice["payment_code"].as_str().unwrap().to_owned());
    }
    let cancelled = dossiers
        .iter()
        .find(|(_, dossier)| *dossier == "HS-3")
        .map(|(id, _)| id.clone())
        .unwrap();
    let answer = app
        .app
        .post(
            &format!("/v1/invoices/{cancelled}/cancel"),
            &app.system_key,
            &json!({}),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = crate::helpers::invoice_body("P.D2", "HS-9");
    let other = app.app.key(Role::AgencySystem, "P.D2").await;
    let invoice = app.app.create_invoice(&other, "HS-9", &body).await.json();
    dossiers.insert(invoice["id"].as_str().unwrap().to_owned(), "HS-9".into());
    let foreign = invoice["payment_code"].as_str().unwrap().to_owned();

    let note = |code: &str| format!("CT TU 0123 {code} nop phi");
    let transfers = vec![
        // Pays HS-0.
        (FEE, note(&codes[0])),
        // Pays HS-1, then pays it again.
        (FEE, note(&codes[1])),
        (FEE, note(&codes[1])),
        // More than HS-2 owes: pays it, 10,000 held.
        (FEE + 10_000, note(&codes[2])),
        // For HS-3, cancelled.
        (FEE, note(&codes[3])),
        // Names no invoice.
        (50_000, "ung ho".to_owned()),
        // P.D2's invoice, paid into P.D1's account.
        (FEE, note(&foreign)),
        // Pays HS-4.
        (FEE, note(&codes[4])),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (amount, note))| Transfer {
        id: 7000 + i as i64,
        amount,
        note,
    })
    .collect();

    let mut gateway = Vec::new();
    for (i, dossier) in ["HS-V0", "HS-V1", "HS-V1"].into_iter().enumerate() {
        let order_ref = match gateway.last() {
            Some((_, last)) if i == 2 => String::clone(last),
            _ => {
                let (invoice, attempt) = vnpay_attempt(app, dossier).await;
                dossiers.insert(
                    invoice["id"].as_str().unwrap().to_owned(),
                    dossier.to_owned(),
                );
                attempt["order_ref"].as_str().unwrap().to_owned()
            }
        };
        gateway.push((format!("1450{i}"), order_ref));
    }
    World {
        dossiers,
        transfers,
        gateway,
    }
}

/// What a test compares: the invoices' states and receipt numbers, the
/// payments and exceptions (by dossier, not id), and the events.
#[derive(Debug, PartialEq)]
struct Outcome {
    invoices: Vec<(String, String, i64, Option<String>)>,
    payments: Vec<(Option<String>, i64, Value, Value, Value)>,
    exceptions: Vec<(Option<String>, Value, i64, Value, Value)>,
    events: BTreeMap<String, usize>,
    audited: BTreeMap<String, usize>,
}

async fn outcome(app: &PaymentsApp, world: &World) -> Outcome {
    let dossier = |id: &Value| id.as_str().map(|id| world.dossiers[id].clone());
    let mut invoices = Vec::new();
    for (id, dossier) in &world.dossiers {
        let invoice = app
            .app
            .get(&format!("/v1/invoices/{id}"), &app.app.admin_key)
            .await
            .json();
        invoices.push((
            dossier.clone(),
            invoice["status"].as_str().unwrap().to_owned(),
            invoice["amount_paid"].as_i64().unwrap(),
            invoice["receipt"]["number"].as_str().map(str::to_owned),
        ));
    }
    invoices.sort();
    let listed = app
        .app
        .get("/v1/payments?limit=100", &app.finance_key)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let mut payments: Vec<_> = listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                dossier(&p["invoice_id"]),
                p["amount"].as_i64().unwrap(),
                p["exception"].clone(),
                p["agency_code"].clone(),
                p["channel"].clone(),
            )
        })
        .collect();
    payments.sort_by_key(|p| format!("{p:?}"));
    let listed = app
        .app
        .get("/v1/exceptions?limit=100", &app.finance_key)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let mut exceptions: Vec<_> = listed.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] != "missing_payment")
        .map(|x| {
            (
                dossier(&x["invoice_id"]),
                x["kind"].clone(),
                x["amount"].as_i64().unwrap_or_default(),
                x["agency_code"].clone(),
                // A recovered payment's own exception names its line too.
                x["detail"]
                    .as_str()
                    .unwrap()
                    .split("; recovered from statement line")
                    .next()
                    .map(|d| Value::String(d.to_owned()))
                    .unwrap(),
            )
        })
        .collect();
    exceptions.sort_by_key(|x| format!("{x:?}"));
    let pool = app.app.raw_pool().await;
    let counted = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(sql)
                .fetch_all(&pool)
                .await
                .unwrap()
                .into_iter()
                .map(|(kind, n)| (kind, n as usize))
                .collect::<BTreeMap<_, _>>()
        }
    };
    let events = counted("SELECT type, count(*) FROM outbox_events GROUP BY type").await;
    let audited = counted(
        "SELECT action, count(*) FROM audit_log
         WHERE action IN ('payment.recorded', 'invoice.paid', 'invoice.part_paid', 'invoice.expired')
         GROUP BY action",
    )
    .await;
    pool.close().await;
    Outcome {
        invoices,
        payments,
        exceptions,
        events,
        audited,
    }
}

async fn payments_recovered_from_statements_are_recorded_as_their_callbacks_would_be(
    backend: Backend,
) {
    let recovered = spawn_payments_app(backend).await;
    let notified = spawn_payments_app(backend).await;
    let (lost, told) = (world(&recovered).await, world(&notified).await);

    // Notified: each payment's callback, one by one.
    let auth = sepay_auth();
    for t in &told.transfers {
        let answer = notified
            .callback(
                "sepay",
                "",
                sepay_transfer(t.id, t.amount, &t.note),
                &[("Authorization", auth.as_str())],
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    for (txn, order_ref) in &told.gateway {
        let ipn = vnpay_ipn_paid_at(order_ref, FEE, txn, "00", "20261128143000");
        let code = rsp_code(&notified.callback("vnpay", &ipn, vec![], &[]).await);
        assert!(code == "00" || code == "02", "{code}");
    }

    // Recovered: no callback came; the statements have every payment.
    let mut bank = String::from("bank_ref,description,amount,transaction_time\n");
    for t in &lost.transfers {
        bank.push_str(&format!(
            "{},{},{},2026-11-28T14:30:00+07:00\n",
            t.id, t.note, t.amount
        ));
    }
    let path = format!("/v1/settlements?channel=bank_transfer&account={BANK_ACCOUNT}");
    let answer = recovered
        .app
        .import_statement(&path, &recovered.finance_key, bank.into_bytes())
        .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(
        answer.json()["outcomes"]["missing_payment"],
        lost.transfers.len(),
        "{}",
        answer.text
    );
    let mut vnpay =
        String::from("provider_txn_id,order_ref,amount,fee,transaction_time,settlement_date\n");
    for (txn, order_ref) in &lost.gateway {
        vnpay.push_str(&format!(
            "{txn},{order_ref},{FEE},0,2026-11-28T14:30:00+07:00,2026-11-29\n"
        ));
    }
    let answer = recovered
        .app
        .import_statement(
            "/v1/settlements?channel=vnpay",
            &recovered.finance_key,
            vnpay.into_bytes(),
        )
        .await;
    assert_eq!(answer.import_status(), "done", "{}", answer.text);
    assert_eq!(
        answer.json()["outcomes"]["missing_payment"],
        3,
        "{}",
        answer.text
    );

    let (from_statements, from_callbacks) = (
        outcome(&recovered, &lost).await,
        outcome(&notified, &told).await,
    );
    assert_eq!(from_statements, from_callbacks);
    // And the outcome is the one the rules give, not merely the same twice.
    let kinds: Vec<&str> = from_statements
        .exceptions
        .iter()
        .map(|x| x.1.as_str().unwrap())
        .collect();
    for kind in ["overpaid", "late_payment", "unknown_order", "wrong_account"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let paid: Vec<_> = from_statements
        .invoices
        .iter()
        .filter(|i| i.1 == "paid")
        .map(|i| (i.0.as_str(), i.3.as_deref()))
        .collect();
    assert_eq!(
        paid,
        [
            ("HS-0", Some("0000001")),
            ("HS-1", Some("0000002")),
            ("HS-2", Some("0000003")),
            ("HS-4", Some("0000004")),
            ("HS-V0", Some("0000005")),
            ("HS-V1", Some("0000006"))
        ],
        "{from_statements:?}"
    );
    // HS-2's transfer over its total holds the excess only.
    assert!(
        from_statements
            .exceptions
            .iter()
            .any(|x| x.0.as_deref() == Some("HS-2") && x.1 == "overpaid" && x.2 == 10_000),
        "{from_statements:?}"
    );
    // Officers, not the dossier system, hear of what was missing: each of
    // the 11 recovered payments opens one exception, its own (held, or
    // holding an excess) when it has one, else a missing_payment.
    let pool = recovered.app.raw_pool().await;
    let missing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_exceptions WHERE kind = 'missing_payment'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let own: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment_exceptions WHERE kind <> 'missing_payment' AND detail LIKE '%recovered from statement line%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!((missing, own), (5, 6));
}
