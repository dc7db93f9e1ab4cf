//! `serve --demo`: a demo province with a district and a commune, their
//! receiving bank accounts, keys, and a few open invoices, so that a
//! newcomer can pay one through the sandbox providers at once.
//!
//! Seeding is idempotent: agencies are imported (unchanged the second
//! time), accounts and keys are made only when missing, and each invoice
//! is issued under a fixed idempotency key of the demo's dossier-system
//! key, so that a second run finds the same invoices.

use serde_json::json;

use crate::config::Settings;
use crate::domain::agency::{BankAccount, NewAgency};
use crate::domain::audit::Actor;
use crate::domain::invoice::{FeeKind, FeeLine, InvoiceDraft, Payer};
use crate::domain::officer::{self, Email, OfficerRole};
use crate::domain::{AgencyCode, IdempotencyKey, InvoiceStatus, NewInvoice, Scope, Timestamp, Vnd};
use crate::store::{ApiKeyRecord, IdempotentRequest, NewApiKey, NewOfficer, Store};

/// The demo's agencies: code, name, level, parent.
const AGENCIES: [(&str, &str, &str, Option<&str>); 3] = [
    ("DEMO", "Tỉnh Demo (dữ liệu thử)", "province", None),
    ("DEMO.01", "Huyện Văn Lâm (demo)", "district", Some("DEMO")),
    (
        "DEMO.01.01",
        "Xã Lạc Đạo (demo)",
        "commune",
        Some("DEMO.01"),
    ),
];

/// Each agency's receiving account: agency, bank BIN, number, name.
const ACCOUNTS: [(&str, &str, &str, &str); 3] = [
    ("DEMO", "970436", "0011009990001", "SO TAI CHINH TINH DEMO"),
    (
        "DEMO.01",
        "970436",
        "0011009990002",
        "UBND HUYEN VAN LAM DEMO",
    ),
    (
        "DEMO.01.01",
        "970415",
        "0011009990003",
        "UBND XA LAC DAO DEMO",
    ),
];

/// The demo's keys: role, agency, name.
const KEYS: [(&str, Option<&str>, &str); 3] = [
    ("admin", None, "Demo: quản trị"),
    ("finance", Some("DEMO"), "Demo: kế toán tỉnh"),
    ("agency_system", Some("DEMO"), "Demo: hệ thống một cửa"),
];

/// A demo invoice: agency, dossier, procedure code and name, payer, lines.
struct DemoInvoice {
    agency: &'static str,
    dossier: &'static str,
    procedure_code: &'static str,
    procedure_name: &'static str,
    payer: &'static str,
    lines: &'static [(FeeKind, &'static str, i64)],
}

/// Illustrative procedures and fees of each level.
const INVOICES: [DemoInvoice; 4] = [
    DemoInvoice {
        agency: "DEMO.01",
        dossier: "000.00.01.DEMO-260101-0001",
        procedure_code: "1.004227",
        procedure_name: "Cấp giấy phép xây dựng nhà ở riêng lẻ",
        payer: "Nguyễn Văn An",
        lines: &[
            (FeeKind::LePhi, "Lệ phí cấp giấy phép xây dựng", 75_000),
            (FeeKind::Phi, "Phí thẩm định hồ sơ", 500_000),
        ],
    },
    DemoInvoice {
        agency: "DEMO.01",
        dossier: "000.00.01.DEMO-260101-0002",
        procedure_code: "2.000720",
        procedure_name: "Đăng ký thành lập hộ kinh doanh",
        payer: "Trần Thị Bình",
        lines: &[(FeeKind::LePhi, "Lệ phí đăng ký hộ kinh doanh", 100_000)],
    },
    DemoInvoice {
        agency: "DEMO.01.01",
        dossier: "000.00.01.DEMO-260101-0003",
        procedure_code: "2.000635",
        procedure_name: "Cấp bản sao trích lục hộ tịch",
        payer: "Lê Văn Cường",
        lines: &[(
            FeeKind::LePhi,
            "Lệ phí cấp bản sao trích lục (2 bản)",
            16_000,
        )],
    },
    DemoInvoice {
        agency: "DEMO",
        dossier: "000.00.01.DEMO-260101-0004",
        procedure_code: "2.001417",
        procedure_name: "Cấp phiếu lý lịch tư pháp",
        payer: "Phạm Thị Dung",
        lines: &[(
            FeeKind::Phi,
            "Phí cung cấp thông tin lý lịch tư pháp",
            200_000,
        )],
    },
];

/// A demo key: its record, and its secret when it was made by this run.
pub struct DemoKey {
    pub record: ApiKeyRecord,
    pub secret: Option<String>,
}

/// A seeded invoice, as it stands now.
pub struct DemoInvoiceSeeded {
    pub payment_code: String,
    pub procedure_name: &'static str,
    pub agency: &'static str,
    pub total: Vnd,
    pub status: InvoiceStatus,
}

/// What the seeding left in the database.
pub struct Seeded {
    pub keys: Vec<DemoKey>,
    pub invoices: Vec<DemoInvoiceSeeded>,
    /// The demo's finance officer, and their password when made by this run.
    pub officer: (String, Option<String>),
}

/// The demo's finance officer, who signs in to the console.
const OFFICER_EMAIL: &str = "ketoan@demo.lephi.vn";

/// Seeds the demo, or finds what an earlier run seeded.
pub async fn seed(store: &Store, settings: &Settings) -> anyhow::Result<Seeded> {
    let actor = Actor::system("demo");
    let rows = AGENCIES
        .iter()
        .enumerate()
        .map(|(i, (code, name, level, parent))| {
            NewAgency::parse(code, name, level, *parent).map(|agency| (i + 1, agency))
        })
        .collect::<Result<Vec<_>, _>>()?;
    store.import_agencies(&actor, &Scope::All, &rows).await?;
    for (code, bin, number, name) in ACCOUNTS {
        if store.bank_account(&Scope::All, code).await?.is_none() {
            let account = BankAccount::parse(bin, number, name)?;
            store
                .set_bank_account(&actor, &Scope::All, code, &account)
                .await?;
        }
    }
    let existing = store.list_api_keys(&Scope::All).await?;
    let mut keys = Vec::new();
    for (role, agency, name) in KEYS {
        let found = existing
            .iter()
            .find(|k| k.name == name && k.revoked_at.is_none())
            .cloned();
        keys.push(match found {
            Some(record) => DemoKey {
                record,
                secret: None,
            },
            None => {
                let (new, secret) = NewApiKey::generate(role, agency, Some(name))?;
                let record = store.create_api_key(&actor, &Scope::All, &new).await?;
                DemoKey {
                    record,
                    secret: Some(secret.expose().to_owned()),
                }
            }
        });
    }
    let system_key_id = keys
        .iter()
        .find(|k| k.record.role.as_str() == "agency_system")
        .map(|k| k.record.id.clone())
        .ok_or_else(|| anyhow::anyhow!("the demo's dossier-system key is missing"))?;
    let limits = settings.invoice_limits();
    let mut invoices = Vec::new();
    for demo in &INVOICES {
        let now = Timestamp::now();
        let lines = demo
            .lines
            .iter()
            .enumerate()
            .map(|(i, (kind, description, amount))| {
                FeeLine::parse(i, *kind, description, Vnd::new(*amount))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let new = NewInvoice::parse(
            InvoiceDraft {
                dossier_code: demo.dossier,
                procedure_code: demo.procedure_code,
                procedure_name: demo.procedure_name,
                agency_code: demo.agency,
                payer: Payer::parse(demo.payer, None, Some("0912345678"), None)?,
                lines,
                // As long as the service allows, so that the demo stays
                // payable between runs.
                expires_at: now.plus(limits.max_validity - time::Duration::hours(1)),
            },
            &limits,
            now,
        )?;
        let key = IdempotencyKey::parse(&format!("demo-{}", demo.dossier))?;
        let created = store
            .create_invoice(
                &actor,
                &Scope::All,
                &IdempotentRequest {
                    api_key_id: &system_key_id,
                    key: &key,
                    request_hash: "demo-seed",
                },
                &new,
                |invoice| json!({ "id": invoice.id }).to_string(),
            )
            .await?;
        let id = serde_json::from_str::<serde_json::Value>(&created.body)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let invoice = store.get_invoice(&Scope::All, &id).await?;
        invoices.push(DemoInvoiceSeeded {
            payment_code: invoice.payment_code.as_str().to_owned(),
            procedure_name: demo.procedure_name,
            agency: demo.agency,
            total: invoice.total,
            status: invoice.status,
        });
    }
    let email = Email::parse("email", OFFICER_EMAIL)?;
    let password = match store.officer_by_email(&Scope::All, &email).await? {
        Some(_) => None,
        None => {
            let password = officer::made_password();
            let agency = AgencyCode::parse("agency", "DEMO")?;
            store
                .create_officer(
                    &actor,
                    &Scope::All,
                    &NewOfficer {
                        email: &email,
                        name: "Kế toán Demo",
                        role: OfficerRole::Finance,
                        agency: Some(&agency),
                        password_hash: &officer::hash_password(&password),
                    },
                )
                .await?;
            Some(password)
        }
    };
    Ok(Seeded {
        keys,
        invoices,
        officer: (OFFICER_EMAIL.to_owned(), password),
    })
}

/// Prints the keys and each invoice's checkout link.
pub fn print(seeded: &Seeded, public_url: &str) {
    println!("Demo data is ready (agencies DEMO, DEMO.01, DEMO.01.01).");
    println!("Keys:");
    for key in &seeded.keys {
        let scope = key
            .record
            .agency_code
            .as_ref()
            .map_or("every agency".to_owned(), |c| c.as_str().to_owned());
        match &key.secret {
            Some(secret) => println!("    {:<14} ({scope}): {secret}", key.record.role.as_str()),
            None => println!(
                "    {:<14} ({scope}): key {}… was printed by an earlier run (`lephi keys create` makes another)",
                key.record.role.as_str(),
                key.record.prefix
            ),
        }
    }
    let (email, password) = &seeded.officer;
    match password {
        Some(password) => println!(
            "Finance console: {public_url}/console: sign in as {email} with the password {password}"
        ),
        None => println!(
            "Finance console: {public_url}/console: sign in as {email} (its password was printed by an earlier run; `lephi officers reset-password {email}` makes another)"
        ),
    }
    println!("Open the checkout links to pay with the sandbox providers:");
    for invoice in &seeded.invoices {
        let status = match invoice.status {
            InvoiceStatus::Open => String::new(),
            other => format!(" [{}]", other.as_str()),
        };
        println!(
            "    {public_url}/pay/{}  {} — {} ({}){status}",
            invoice.payment_code,
            invoice.procedure_name,
            invoice.total.display_vi(),
            invoice.agency
        );
    }
    println!(
        "The sandbox's bank: {public_url}/sandbox/bank/transfer (a transfer whose note carries a payment code pays it)."
    );
}
