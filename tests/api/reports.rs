//! Cashless-rate reports, made from real payments (signed VNPay IPNs,
//! SePay transfers, cash at the counter) and checked against sums the
//! test keeps of what it paid.

use std::collections::BTreeMap;

use lephi::domain::Role;
use serde_json::{Value, json};

use crate::cli::lephi;
use crate::helpers::{BANK_ACCOUNT, Backend, PaymentsApp, creds, hmac_sha512_hex};
use crate::on_both_backends;
use crate::payments::sepay_auth;

on_both_backends!(
    every_grouping_adds_up_to_the_payments_made,
    the_settled_basis_counts_cashless_payments_once_settled,
    reports_stay_in_the_keys_scope,
    reports_come_as_csv_for_spreadsheets,
    bad_report_queries_are_refused,
    the_command_line_prints_the_report_as_a_table,
);

const FROM: &str = "2025-10-01";
const TO: &str = "2025-11-30";

const BUILDING: (&str, &str) = ("1.004227", "Cấp giấy phép xây dựng");
const BUSINESS: (&str, &str) = ("2.000001", "Đăng ký hộ kinh doanh");

/// A payment the test makes, applied to its invoice, with what reports
/// group it by.
#[derive(Debug, Clone)]
struct Paid {
    agency: &'static str,
    level: &'static str,
    procedure: (&'static str, &'static str),
    channel: &'static str,
    amount: i64,
    /// When it was paid, Vietnam time, `YYYY-MM-DDTHH:MM:SS`.
    at: &'static str,
    /// The day a statement line settles it, if one does.
    settled_on: Option<&'static str>,
}

impl Paid {
    /// The Vietnamese day it was collected.
    fn day(&self) -> &'static str {
        &self.at[..10]
    }

    fn cashless(&self) -> bool {
        self.channel != "cash"
    }

    /// The day that places it in a period on `basis`, if any.
    fn counted_on(&self, basis: &str) -> Option<&'static str> {
        match basis {
            "settled" if self.cashless() => self.settled_on,
            _ => Some(self.day()),
        }
    }
}

const fn paid(
    agency: &'static str,
    level: &'static str,
    procedure: (&'static str, &'static str),
    channel: &'static str,
    amount: i64,
    at: &'static str,
    settled_on: Option<&'static str>,
) -> Paid {
    Paid {
        agency,
        level,
        procedure,
        channel,
        amount,
        at,
        settled_on,
    }
}

/// Payments at the three levels, in P and in another province Q, on
/// both sides of the period's edges.
const PLAN: [Paid; 12] = [
    paid(
        "P",
        "province",
        BUILDING,
        "vnpay",
        300_000,
        "2025-10-15T09:00:00",
        Some("2025-10-16"),
    ),
    paid(
        "P",
        "province",
        BUSINESS,
        "cash",
        100_000,
        "2025-11-20T10:00:00",
        None,
    ),
    paid(
        "P.D1",
        "district",
        BUILDING,
        "bank_transfer",
        650_000,
        "2025-11-20T11:00:00",
        Some("2025-11-21"),
    ),
    paid(
        "P.D1",
        "district",
        BUSINESS,
        "vnpay",
        200_000,
        "2025-11-03T08:00:00",
        None,
    ),
    paid(
        "P.D1.C1",
        "commune",
        BUILDING,
        "cash",
        50_000,
        "2025-10-20T15:00:00",
        None,
    ),
    paid(
        "P.D1.C1",
        "commune",
        BUSINESS,
        "vnpay",
        120_000,
        "2025-11-25T16:00:00",
        Some("2025-12-02"),
    ),
    paid(
        "P.D1.C1",
        "commune",
        BUILDING,
        "vnpay",
        80_000,
        "2025-09-28T10:00:00",
        Some("2025-10-01"),
    ),
    paid(
        "P.D2",
        "district",
        BUILDING,
        "vnpay",
        400_000,
        "2025-10-01T00:05:00",
        Some("2025-10-02"),
    ),
    paid(
        "P.D2",
        "district",
        BUSINESS,
        "cash",
        30_000,
        "2025-11-30T23:30:00",
        None,
    ),
    paid(
        "P.D2",
        "district",
        BUILDING,
        "vnpay",
        90_000,
        "2025-09-30T23:59:00",
        None,
    ),
    paid(
        "Q",
        "province",
        BUILDING,
        "cash",
        70_000,
        "2025-11-10T10:00:00",
        None,
    ),
    paid(
        "Q",
        "province",
        BUSINESS,
        "vnpay",
        250_000,
        "2025-11-11T10:00:00",
        Some("2025-11-12"),
    ),
];

struct Scenario {
    app: PaymentsApp,
    /// Each planned payment with its recorded id.
    paid: Vec<(Paid, String)>,
}

/// A VNPay IPN paid at `at` (Vietnam time), signed as DOMAIN.md spells out.
fn vnpay_ipn_at(txn_ref: &str, amount: i64, transaction_no: &str, at: &str) -> String {
    let pay_date: String = at.chars().filter(char::is_ascii_digit).collect();
    let signed = format!(
        "vnp_Amount={}&vnp_BankCode=NCB&vnp_BankTranNo=VNP1&vnp_CardType=ATM\
         &vnp_OrderInfo=Thanh+toan&vnp_PayDate={pay_date}&vnp_ResponseCode=00\
         &vnp_TmnCode={}&vnp_TransactionNo={transaction_no}&vnp_TransactionStatus=00\
         &vnp_TxnRef={txn_ref}",
        amount * 100,
        creds::VNPAY_TMN,
    );
    let hash = hmac_sha512_hex(creds::VNPAY_SECRET, &signed);
    format!("{signed}&vnp_SecureHash={hash}")
}

/// A SePay notification of a transfer into P.D1's account at `at`.
fn sepay_transfer_at(id: i64, amount: i64, note: &str, at: &str) -> Vec<u8> {
    json!({
        "id": id,
        "gateway": "Vietcombank",
        "transactionDate": at.replace('T', " "),
        "accountNumber": BANK_ACCOUNT,
        "code": null,
        "content": note,
        "transferType": "in",
        "transferAmount": amount,
        "accumulated": 19077000,
        "subAccount": null,
        "referenceCode": format!("MBVCB.{id}"),
        "description": ""
    })
    .to_string()
    .into_bytes()
}

/// Issues an invoice of `amount` for `procedure` on `agency`.
async fn issue(
    app: &PaymentsApp,
    key: &str,
    agency: &str,
    procedure: (&str, &str),
    amount: i64,
    dossier: &str,
) -> Value {
    let body = json!({
        "dossier_code": dossier,
        "procedure_code": procedure.0,
        "procedure_name": procedure.1,
        "agency_code": agency,
        "payer": { "name": "Trần Thị B" },
        "lines": [{ "kind": "le_phi", "description": "Lệ phí", "amount": amount }]
    });
    let created = app.app.create_invoice(key, dossier, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()
}

/// Pays `invoice` as `paid` says, through the channel's real entry point.
async fn pay(
    app: &PaymentsApp,
    system_key: &str,
    finance_key: &str,
    invoice: &Value,
    paid: &Paid,
    n: usize,
) {
    let id = invoice["id"].as_str().unwrap();
    match paid.channel {
        "vnpay" => {
            let attempt = app
                .app
                .post(
                    &format!("/v1/invoices/{id}/attempts"),
                    system_key,
                    &json!({ "channel": "vnpay" }),
                )
                .await;
            assert_eq!(attempt.status, 201, "{}", attempt.text);
            let order_ref = attempt.json()["order_ref"].as_str().unwrap().to_owned();
            let ipn = vnpay_ipn_at(&order_ref, paid.amount, &format!("7700{n}"), paid.at);
            let answer = app.callback("vnpay", &ipn, vec![], &[]).await;
            assert_eq!(answer.json()["RspCode"], "00", "{}", answer.text);
        }
        "bank_transfer" => {
            let note = format!(
                "NGUYEN VAN A chuyen tien {}",
                invoice["payment_code"].as_str().unwrap()
            );
            let transfer = sepay_transfer_at(8800 + n as i64, paid.amount, &note, paid.at);
            let auth = sepay_auth();
            let answer = app
                .callback("sepay", "", transfer, &[("Authorization", auth.as_str())])
                .await;
            assert_eq!(answer.status, 200, "{}", answer.text);
        }
        "cash" => {
            let body = json!({
                "amount": paid.amount,
                "receipt_number": format!("000{n}"),
                "received_at": format!("{}+07:00", paid.at),
            });
            let answer = app
                .app
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/invoices/{id}/cash-payments"),
                    Some(finance_key),
                    Some(&body),
                    &[("Idempotency-Key", &format!("cash-{n}"))],
                )
                .await;
            assert_eq!(answer.status, 201, "{}", answer.text);
        }
        other => panic!("no way to pay by {other}"),
    }
    let now = app.app.get(&format!("/v1/invoices/{id}"), system_key).await;
    assert_eq!(now.json()["status"], "paid", "{paid:?}");
}

/// Inserts a statement file of `channel` with `lines` of
/// `(payment id, settlement day, outcome)`, as the settlement import would.
async fn settle(app: &PaymentsApp, file: &str, channel: &str, lines: &[(&str, &str, &str)]) {
    let pool = app.app.raw_pool().await;
    sqlx::query(
        "INSERT INTO settlement_files (id, channel, profile, sha256, line_count, settled_through,
             imported_at, imported_by)
         VALUES ($1, $2, 'test', $3, $4, $5, '2025-12-03T01:00:00.000000Z', 'test')",
    )
    .bind(file)
    .bind(channel)
    .bind(format!("sha-{file}"))
    .bind(lines.len() as i64)
    .bind(lines.iter().map(|(_, day, _)| *day).max())
    .execute(&pool)
    .await
    .unwrap();
    for (n, (payment_id, day, outcome)) in lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO settlement_lines (file_id, line_no, channel, txn_ref, reference, amount, fee,
                 transaction_time, settlement_date, outcome, payment_id, agency_code)
             SELECT $1, $2, p.channel, p.provider_txn_id, p.reference, p.amount, 0, p.recorded_at,
                 $3, $4, p.id, p.agency_code
             FROM payments p WHERE p.id = $5",
        )
        .bind(file)
        .bind(n as i64 + 2)
        .bind(*day)
        .bind(*outcome)
        .bind(*payment_id)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

/// Makes every payment of the plan, one that cannot be applied, and the
/// statement lines that settle some of them.
async fn seed(backend: Backend) -> Scenario {
    let app = crate::helpers::spawn_payments_app(backend).await;
    let p_system = app.app.key(Role::AgencySystem, "P").await;
    let q_system = app.app.key(Role::AgencySystem, "Q").await;
    let q_finance = app.app.key(Role::Finance, "Q").await;
    let pool = app.app.raw_pool().await;
    let mut made = Vec::new();
    for (n, paid) in PLAN.iter().enumerate() {
        let (system, finance) = if paid.agency == "Q" {
            (&q_system, &q_finance)
        } else {
            (&p_system, &app.finance_key)
        };
        let invoice = issue(
            &app,
            system,
            paid.agency,
            paid.procedure,
            paid.amount,
            &format!("HS-{n}"),
        )
        .await;
        pay(&app, system, finance, &invoice, paid, n).await;
        let id: String = sqlx::query_scalar("SELECT id FROM payments WHERE invoice_id = $1")
            .bind(invoice["id"].as_str().unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
        made.push((paid.clone(), id));
    }
    // A transfer to a cancelled invoice is kept as an exception: recorded,
    // in the period, settled even, and never counted.
    let invoice = issue(&app, &p_system, "P.D1", BUILDING, 500_000, "HS-X").await;
    let cancelled = app
        .app
        .post(
            &format!("/v1/invoices/{}/cancel", invoice["id"].as_str().unwrap()),
            &p_system,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    let note = format!("chuyen tien {}", invoice["payment_code"].as_str().unwrap());
    let auth = sepay_auth();
    let answer = app
        .callback(
            "sepay",
            "",
            sepay_transfer_at(9999, 600_000, &note, "2025-11-20T12:00:00"),
            &[("Authorization", auth.as_str())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let exception: String =
        sqlx::query_scalar("SELECT id FROM payments WHERE exception_kind IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;

    let id_of = |at: &str| made.iter().find(|(p, _)| p.at == at).unwrap().1.as_str();
    let mut gateway: Vec<(&str, &str, &str)> = made
        .iter()
        .filter(|(p, _)| p.channel == "vnpay")
        .filter_map(|(p, id)| p.settled_on.map(|day| (id.as_str(), day, "matched")))
        .collect();
    // A duplicate line settles nothing: that payment stays unsettled.
    gateway.push((id_of("2025-11-03T08:00:00"), "2025-11-04", "duplicate_line"));
    settle(&app, "F-VNPAY", "vnpay", &gateway).await;
    let bank: Vec<(&str, &str, &str)> = made
        .iter()
        .filter(|(p, _)| p.channel == "bank_transfer")
        .filter_map(|(p, id)| p.settled_on.map(|day| (id.as_str(), day, "matched")))
        .chain([(exception.as_str(), "2025-11-21", "amount_mismatch")])
        .collect();
    settle(&app, "F-BANK", "bank_transfer", &bank).await;
    Scenario { app, paid: made }
}

/// `[cashless_amount, cashless_count, cash_amount, cash_count, total_amount, total_count]`.
type Sums = [i64; 6];

fn add(sums: &mut Sums, paid: &Paid) {
    let (amount, count) = if paid.cashless() { (0, 1) } else { (2, 3) };
    sums[amount] += paid.amount;
    sums[count] += 1;
    sums[4] += paid.amount;
    sums[5] += 1;
}

/// What the test expects per group, from what it paid.
fn expected<'a>(
    paid: impl IntoIterator<Item = &'a Paid>,
    basis: &str,
    key: impl Fn(&Paid, &str) -> String,
) -> BTreeMap<String, Sums> {
    let mut groups = BTreeMap::new();
    for p in paid {
        let Some(day) = p.counted_on(basis).filter(|d| (FROM..=TO).contains(d)) else {
            continue;
        };
        add(groups.entry(key(p, day)).or_insert([0; 6]), p);
    }
    groups
}

fn sums_of(figures: &Value) -> Sums {
    [
        "cashless_amount",
        "cashless_count",
        "cash_amount",
        "cash_count",
        "total_amount",
        "total_count",
    ]
    .map(|f| {
        figures[f]
            .as_i64()
            .unwrap_or_else(|| panic!("{f} in {figures}"))
    })
}

/// `part / whole` in percent, rounded half-even to 2 places, in integers.
fn rate(part: i64, whole: i64) -> Value {
    if whole == 0 {
        return Value::Null;
    }
    let scaled = i128::from(part) * 10_000;
    let (q, r) = (scaled / i128::from(whole), scaled % i128::from(whole));
    let hundredths = match (2 * r).cmp(&i128::from(whole)) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 1 => q + 1,
        _ => q,
    };
    json!(format!("{}.{:02}", hundredths / 100, hundredths % 100))
}

/// Checks a report's groups (named by `column`, in `order`) and total
/// against what the test expects.
fn check(report: &Value, column: &str, expected: &BTreeMap<String, Sums>, order: &[&str]) {
    let groups = report["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g[column].as_str().unwrap()).collect();
    assert_eq!(names, order, "{report:#}");
    let got: BTreeMap<String, Sums> = groups
        .iter()
        .map(|g| (g[column].as_str().unwrap().to_owned(), sums_of(g)))
        .collect();
    assert_eq!(&got, expected, "{report:#}");
    let mut total = [0; 6];
    for sums in expected.values() {
        for (t, s) in total.iter_mut().zip(sums) {
            *t += s;
        }
    }
    assert_eq!(sums_of(&report["total"]), total, "{report:#}");
    for figures in groups.iter().chain([&report["total"]]) {
        let s = sums_of(figures);
        assert_eq!(figures["rate_by_amount"], rate(s[0], s[4]), "{figures}");
        assert_eq!(figures["rate_by_count"], rate(s[1], s[5]), "{figures}");
    }
}

async fn report(app: &PaymentsApp, key: &str, query: &str) -> Value {
    let answer = app
        .app
        .get(&format!("/v1/reports/cashless?{query}"), key)
        .await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.text);
    answer.json()
}

fn in_p(paid: &[(Paid, String)]) -> impl Iterator<Item = &Paid> {
    paid.iter().map(|(p, _)| p).filter(|p| p.agency != "Q")
}

async fn every_grouping_adds_up_to_the_payments_made(backend: Backend) {
    let Scenario { app, paid } = seed(backend).await;
    let period = format!("from={FROM}&to={TO}");
    // The province's finance officer sees the province's payments.
    let key = &app.finance_key;
    let by_level = report(&app, key, &period).await;
    assert_eq!(by_level["basis"], "recorded");
    assert_eq!(by_level["group_by"], "level");
    assert_eq!(
        (by_level["from"].as_str(), by_level["to"].as_str()),
        (Some(FROM), Some(TO))
    );
    assert_eq!(by_level["agency_code"], Value::Null);
    assert_eq!(by_level["include_descendants"], true);
    let levels = expected(in_p(&paid), "recorded", |p, _| p.level.to_owned());
    check(
        &by_level,
        "level",
        &levels,
        &["province", "district", "commune"],
    );
    // The commune paid 50,000 in cash and 120,000 by VNPay in the period.
    let commune = &by_level["groups"][2];
    assert_eq!(commune["rate_by_amount"], "70.59");
    assert_eq!(commune["rate_by_count"], "50.00");

    let by_agency = report(&app, key, &format!("{period}&group_by=agency")).await;
    let agencies = expected(in_p(&paid), "recorded", |p, _| p.agency.to_owned());
    check(
        &by_agency,
        "agency_code",
        &agencies,
        &["P", "P.D1", "P.D1.C1", "P.D2"],
    );
    assert_eq!(by_agency["groups"][1]["agency_name"], "Cơ quan P.D1");
    assert_eq!(by_agency["groups"][2]["level"], "commune");

    let by_procedure = report(&app, key, &format!("{period}&group_by=procedure")).await;
    let procedures = expected(in_p(&paid), "recorded", |p, _| p.procedure.0.to_owned());
    check(
        &by_procedure,
        "procedure_code",
        &procedures,
        &[BUILDING.0, BUSINESS.0],
    );
    assert_eq!(by_procedure["groups"][1]["procedure_name"], BUSINESS.1);

    let by_channel = report(&app, key, &format!("{period}&group_by=channel")).await;
    let channels = expected(in_p(&paid), "recorded", |p, _| p.channel.to_owned());
    check(
        &by_channel,
        "channel",
        &channels,
        &["vnpay", "bank_transfer", "cash"],
    );
    assert_eq!(by_channel["groups"][0]["rate_by_amount"], "100.00");
    assert_eq!(by_channel["groups"][2]["rate_by_amount"], "0.00");

    let by_month = report(&app, key, &format!("{period}&group_by=month")).await;
    let months = expected(in_p(&paid), "recorded", |_, day| day[..7].to_owned());
    check(&by_month, "month", &months, &["2025-10", "2025-11"]);

    // An admin key over every agency sees both provinces.
    let everything = report(
        &app,
        &app.app.admin_key,
        &format!("{period}&group_by=agency"),
    )
    .await;
    let all = expected(paid.iter().map(|(p, _)| p), "recorded", |p, _| {
        p.agency.to_owned()
    });
    check(
        &everything,
        "agency_code",
        &all,
        &["P", "P.D1", "P.D1.C1", "P.D2", "Q"],
    );

    // A period with nothing in it has no groups and no rates.
    let empty = report(&app, key, "from=2024-01-01&to=2024-12-31").await;
    assert_eq!(empty["groups"], json!([]));
    assert_eq!(empty["total"]["total_count"], 0);
    assert_eq!(empty["total"]["rate_by_amount"], Value::Null);
    // One day: the first minutes of the first day count, the last minute
    // of the day before does not.
    let first_day = report(&app, key, &format!("from={FROM}&to={FROM}&group_by=agency")).await;
    check(
        &first_day,
        "agency_code",
        &expected(
            in_p(&paid).filter(|p| p.day() == FROM),
            "recorded",
            |p, _| p.agency.to_owned(),
        ),
        &["P.D2"],
    );
    assert_eq!(first_day["total"]["total_amount"], 400_000);
}

async fn the_settled_basis_counts_cashless_payments_once_settled(backend: Backend) {
    let Scenario { app, paid } = seed(backend).await;
    let key = &app.finance_key;
    for (group_by, column, order) in [
        ("level", "level", &["province", "district", "commune"][..]),
        (
            "agency",
            "agency_code",
            &["P", "P.D1", "P.D1.C1", "P.D2"][..],
        ),
        (
            "channel",
            "channel",
            &["vnpay", "bank_transfer", "cash"][..],
        ),
        ("month", "month", &["2025-10", "2025-11"][..]),
    ] {
        let settled = report(
            &app,
            key,
            &format!("from={FROM}&to={TO}&basis=settled&group_by={group_by}"),
        )
        .await;
        assert_eq!(settled["basis"], "settled");
        let groups = expected(in_p(&paid), "settled", |p, day| match group_by {
            "level" => p.level.to_owned(),
            "agency" => p.agency.to_owned(),
            "channel" => p.channel.to_owned(),
            _ => day[..7].to_owned(),
        });
        check(&settled, column, &groups, order);
    }
    let settled = report(&app, key, &format!("from={FROM}&to={TO}&basis=settled")).await;
    // Settled in the period: 300,000 + 650,000 + 80,000 (collected in
    // September) + 400,000; not the 200,000 with only a duplicate line,
    // nor the 120,000 settled in December. Cash as recorded.
    assert_eq!(settled["total"]["cashless_amount"], 1_430_000);
    assert_eq!(settled["total"]["cashless_count"], 4);
    assert_eq!(settled["total"]["cash_amount"], 180_000);
    let recorded = report(&app, key, &format!("from={FROM}&to={TO}")).await;
    assert_eq!(recorded["total"]["cashless_amount"], 1_670_000);
    assert_eq!(recorded["total"]["cash_amount"], 180_000);
    // December holds the commune's late settlement.
    let december = report(
        &app,
        key,
        "from=2025-12-01&to=2025-12-31&basis=settled&group_by=agency",
    )
    .await;
    check(
        &december,
        "agency_code",
        &BTreeMap::from([("P.D1.C1".to_owned(), [120_000, 1, 0, 0, 120_000, 1])]),
        &["P.D1.C1"],
    );
}

async fn reports_stay_in_the_keys_scope(backend: Backend) {
    let Scenario { app, paid } = seed(backend).await;
    let period = format!("from={FROM}&to={TO}&group_by=agency");
    let district = app.app.key(Role::Finance, "P.D1").await;
    let seen = report(&app, &district, &period).await;
    let subtree = expected(
        paid.iter()
            .map(|(p, _)| p)
            .filter(|p| p.agency.starts_with("P.D1")),
        "recorded",
        |p, _| p.agency.to_owned(),
    );
    check(&seen, "agency_code", &subtree, &["P.D1", "P.D1.C1"]);
    // Other agencies do not exist for it, whether a neighbour, its
    // parent or another province.
    for outside in ["P.D2", "P", "Q", "NOWHERE"] {
        let refused = app
            .app
            .get(
                &format!("/v1/reports/cashless?{period}&agency_code={outside}"),
                &district,
            )
            .await;
        assert_eq!(refused.status, 404, "{outside}: {}", refused.text);
        assert_eq!(refused.code(), "agency_not_found");
    }
    // That agency alone, without the commune below it.
    let alone = report(
        &app,
        &district,
        &format!("{period}&agency_code=P.D1&include_descendants=false"),
    )
    .await;
    assert_eq!(alone["agency_code"], "P.D1");
    assert_eq!(alone["include_descendants"], false);
    let only = expected(
        paid.iter().map(|(p, _)| p).filter(|p| p.agency == "P.D1"),
        "recorded",
        |p, _| p.agency.to_owned(),
    );
    check(&alone, "agency_code", &only, &["P.D1"]);
    // The province's officer may name a district and its subtree.
    let named = report(
        &app,
        &app.finance_key,
        &format!("{period}&agency_code=P.D1"),
    )
    .await;
    check(&named, "agency_code", &subtree, &["P.D1", "P.D1.C1"]);
    // Another province's key sees its own only.
    let q = app.app.key(Role::Finance, "Q").await;
    let theirs = report(&app, &q, &format!("from={FROM}&to={TO}")).await;
    check(
        &theirs,
        "level",
        &expected(
            paid.iter().map(|(p, _)| p).filter(|p| p.agency == "Q"),
            "recorded",
            |p, _| p.level.to_owned(),
        ),
        &["province"],
    );
    // Reports are for finance officers and administrators.
    let system = app.app.key(Role::AgencySystem, "P").await;
    let forbidden = app
        .app
        .get(&format!("/v1/reports/cashless?{period}"), &system)
        .await;
    assert_eq!(forbidden.status, 403);
    let anonymous = app
        .app
        .request(
            reqwest::Method::GET,
            &format!("/v1/reports/cashless?{period}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(anonymous.status, 401);
}

async fn reports_come_as_csv_for_spreadsheets(backend: Backend) {
    let Scenario { app, paid } = seed(backend).await;
    let key = &app.finance_key;
    let json = report(&app, key, &format!("from={FROM}&to={TO}&group_by=agency")).await;
    let by_format = app
        .app
        .get(
            &format!("/v1/reports/cashless?from={FROM}&to={TO}&group_by=agency&format=csv"),
            key,
        )
        .await;
    let by_accept = app
        .app
        .request(
            reqwest::Method::GET,
            &format!("/v1/reports/cashless?from={FROM}&to={TO}&group_by=agency"),
            Some(key),
            None,
            &[("Accept", "text/csv")],
        )
        .await;
    for answer in [&by_format, &by_accept] {
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.headers["content-type"], "text/csv; charset=utf-8");
        let disposition = answer.headers["content-disposition"].to_str().unwrap();
        assert!(
            disposition.contains("recorded") && disposition.contains(FROM),
            "{disposition}"
        );
        assert!(
            answer.text.starts_with('\u{feff}'),
            "{:?}",
            &answer.text[..10]
        );
    }
    assert_eq!(by_format.text, by_accept.text);
    let mut reader =
        csv::Reader::from_reader(by_format.text.trim_start_matches('\u{feff}').as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header,
        [
            "agency_code",
            "agency_name",
            "level",
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
            "total_refunded"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(rows.len(), groups.len() + 1);
    // Each row says what the JSON says.
    for (row, figures) in rows.iter().zip(groups.iter().chain([&json["total"]])) {
        let numbers: Vec<i64> = (3..9).map(|i| row[i].parse().unwrap()).collect();
        assert_eq!(numbers, sums_of(figures));
        assert_eq!(json!(&row[9]), figures["rate_by_amount"]);
        assert_eq!(json!(&row[10]), figures["rate_by_count"]);
    }
    assert_eq!(&rows[0][0], "P");
    assert_eq!(&rows[0][1], "Cơ quan P");
    let total = rows.last().unwrap();
    assert_eq!((&total[0], &total[1], &total[2]), ("total", "", ""));
    let in_period = in_p(&paid).filter(|p| (FROM..=TO).contains(&p.day()));
    assert_eq!(
        total[7].parse::<i64>().unwrap(),
        in_period.map(|p| p.amount).sum::<i64>()
    );
    // An explicit format wins over Accept; a JSON Accept gets JSON.
    let explicit = app
        .app
        .request(
            reqwest::Method::GET,
            &format!("/v1/reports/cashless?from={FROM}&to={TO}&format=json"),
            Some(key),
            None,
            &[("Accept", "text/csv")],
        )
        .await;
    assert_eq!(explicit.headers["content-type"], "application/json");
    assert_eq!(explicit.json()["group_by"], "level");
    assert_eq!(explicit.headers["vary"], "Accept");
}

async fn bad_report_queries_are_refused(backend: Backend) {
    let app = crate::helpers::spawn_payments_app(backend).await;
    let key = &app.finance_key;
    for query in [
        "",
        "from=2025-10-01",
        "to=2025-10-01",
        "from=2025-10-01&to=2025-13-01",
        "from=2025-10-1&to=2025-11-30",
        "from=2025-10-01T00:00:00Z&to=2025-11-30",
        "from=2025-11-30&to=2025-10-01",
        "from=2025-10-01&to=2025-11-30&group_by=year",
        "from=2025-10-01&to=2025-11-30&basis=paid",
        "from=2025-10-01&to=2025-11-30&format=xlsx",
        "from=2025-10-01&to=2025-11-30&include_descendants=yes",
        "from=2025-10-01&to=2025-11-30&include_descendants=false",
        "from=2025-10-01&to=2025-11-30&agency_code=not%20a%20code",
        "from=2025-10-01&to=2025-11-30&colour=blue",
    ] {
        let refused = app
            .app
            .get(&format!("/v1/reports/cashless?{query}"), key)
            .await;
        assert_eq!(refused.status, 400, "{query}: {}", refused.text);
        assert_eq!(refused.code(), "invalid_query", "{query}");
        assert!(refused.json()["message"].is_string());
    }
    let wrong_method = app.app.post("/v1/reports/cashless", key, &json!({})).await;
    assert_eq!(wrong_method.status, 405);
}

async fn the_command_line_prints_the_report_as_a_table(backend: Backend) {
    let Scenario { app, paid } = seed(backend).await;
    let url = app.app.database_url.clone();
    let (ok, out, err) = lephi(
        &url,
        &[
            "report",
            "cashless",
            "--from",
            FROM,
            "--to",
            TO,
            "--group-by",
            "agency",
        ],
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("payments applied to invoices")
            && lines[0].contains("money held or refunded is not counted"),
        "{out}"
    );
    assert!(lines[0].contains(&format!("{FROM} to {TO}")), "{out}");
    assert!(lines[2].starts_with("agency code"), "{out}");
    // Every agency of both provinces, in tree order, then the total.
    let firsts: Vec<&str> = lines[4..]
        .iter()
        .filter(|l| !l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        firsts,
        ["P", "P.D1", "P.D1.C1", "P.D2", "Q", "total"],
        "{out}"
    );
    let total: i64 = paid
        .iter()
        .map(|(p, _)| p)
        .filter(|p| (FROM..=TO).contains(&p.day()))
        .map(|p| p.amount)
        .sum();
    let dotted = lephi::domain::Vnd::new(total)
        .display_vi()
        .replace(" ₫", "");
    assert!(lines.last().unwrap().contains(&dotted), "{dotted}: {out}");
    // Columns line up: every row is as wide as the header.
    let width = lines[2].chars().count();
    assert!(
        lines[3..].iter().all(|l| l.chars().count() == width),
        "{out}"
    );

    let (ok, csv, err) = lephi(
        &url,
        &[
            "report", "cashless", "--from", FROM, "--to", TO, "--agency", "P.D1", "--basis",
            "settled", "--format", "csv",
        ],
    );
    assert!(ok, "{err}");
    assert!(csv.starts_with("\u{feff}level,cashless_amount"), "{csv}");
    assert!(
        csv.contains("\r\ndistrict,650000,1,0,0,650000,1,100.00,100.00,0,0,0\r\n"),
        "{csv}"
    );
    let (ok, _, err) = lephi(&url, &["report", "cashless", "--from", TO, "--to", FROM]);
    assert!(!ok && err.contains("from"), "{err}");
    let (ok, _, err) = lephi(
        &url,
        &[
            "report", "cashless", "--from", FROM, "--to", TO, "--agency", "NOWHERE",
        ],
    );
    assert!(!ok && err.contains("NOWHERE"), "{err}");
}
