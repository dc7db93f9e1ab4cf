//! The command line: serve, migrate, and the administrator's tools.

use std::path::PathBuf;
use std::process::ExitCode;

mod officers;

use clap::builder::PossibleValuesParser;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::domain::agency::{BankAccount, parse_agency_list};
use crate::domain::audit::Actor;
use crate::domain::payment::Channel;
use crate::domain::rates::{Basis, GroupBy, Period, ReportQuery};
use crate::domain::webhook::{WebhookSecret, WebhookUrl};
use crate::domain::{AgencyCode, Scope};
use crate::error::error_chain;
use crate::reconcile::Profiles;
use crate::startup::Application;
use crate::store::{NewApiKey, Store};

#[derive(Parser)]
#[command(
    name = "lephi",
    version,
    about = "Cashless fee payment service for public administrative procedures"
)]
struct Cli {
    /// A TOML settings file; environment variables LEPHI__SECTION__KEY override it.
    #[arg(long, global = true, env = "LEPHI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrates the database first).
    Serve {
        /// Seed a demo province, keys and open invoices (once), print the
        /// checkout links, and serve with the sandbox providers.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Copy the SQLite database, consistent and whole, to FILE (a new
    /// file) while lephi serves; restore by putting the copy in place of
    /// the database with lephi stopped. PostgreSQL is backed up with
    /// `pg_dump`, which this command points to.
    Backup { file: PathBuf },
    /// Manage agencies.
    #[command(subcommand)]
    Agencies(AgenciesCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the officers who sign in to the console.
    #[command(subcommand)]
    Officers(officers::OfficersCommand),
    /// Import providers' and banks' settlement statements.
    #[command(subcommand)]
    Settlement(SettlementCommand),
    /// Manage the dossier register.
    #[command(subcommand)]
    Dossiers(DossiersCommand),
    /// Reports for finance officers, over every agency.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Measure throughput and latency (callbacks, invoices, statement
    /// import, and the database alone), then check that no payment was
    /// lost or counted twice.
    Bench(crate::bench::Options),
}

#[derive(Subcommand)]
enum SettlementCommand {
    /// Import a statement and match its lines to payments; the same file
    /// imported again changes nothing.
    Import {
        /// vnpay, momo, zalopay or bank_transfer.
        #[arg(long)]
        channel: String,
        /// The file's profile; the channel's canonical one when absent.
        #[arg(long)]
        profile: Option<String>,
        /// The account a bank statement is of.
        #[arg(long)]
        account: Option<String>,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum DossiersCommand {
    /// Import a register from CSV with the columns dossier_code, agency_code,
    /// procedure_code, fee_amount, received_at, status (in any order).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum AgenciesCommand {
    /// Import agencies from CSV with the header code,name,level,parent_code.
    Import { file: PathBuf },
    /// Set where an agency's events are delivered; prints the signing secret.
    Webhook {
        code: String,
        #[arg(long)]
        url: String,
        /// `whsec_...`; a new one is made when absent.
        #[arg(long)]
        secret: Option<String>,
        /// Keep the secret this one replaces signing beside it for this
        /// many hours (1 to 168): a rotation without missed deliveries.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=168))]
        keep_previous_hours: Option<u32>,
    },
    /// Set the account an agency receives bank transfers on.
    BankAccount {
        code: String,
        /// The bank's 6-digit BIN.
        #[arg(long)]
        bin: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key and print it once.
    Create {
        /// agency_system, finance or admin.
        #[arg(long)]
        role: String,
        /// The agency whose subtree the key sees; only an admin key may omit it.
        #[arg(long)]
        agency: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a key by its id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The cashless rate over a period, as `GET /v1/reports/cashless` answers it.
    Cashless {
        /// The first day, YYYY-MM-DD (a Vietnamese day).
        #[arg(long)]
        from: String,
        /// The last day, YYYY-MM-DD, included.
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "level", value_parser = PossibleValuesParser::new(GroupBy::ALL.map(GroupBy::as_str)))]
        group_by: String,
        /// recorded: by the day collected; settled: cashless by the day a
        /// statement settled it, cash by the day collected.
        #[arg(long, default_value = "recorded", value_parser = PossibleValuesParser::new(Basis::ALL.map(Basis::as_str)))]
        basis: String,
        /// Only this agency and, unless --include-descendants false, those below it.
        #[arg(long)]
        agency: Option<String>,
        /// false: the agency named by --agency alone (true unless said).
        #[arg(long, action = clap::ArgAction::Set)]
        include_descendants: Option<bool>,
        #[arg(long, default_value = "table", value_parser = ["table", "csv"])]
        format: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("lephi: {err}");
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Command::Bench(_)) && std::env::var_os("LEPHI__LOG__LEVEL").is_none() {
        // A line per request would be what the bench measures, and the
        // sandbox it runs lephi with warns at every start.
        settings.log.level = "error".into();
    }
    crate::telemetry::init_logging(&settings.log, std::io::stderr);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("lephi: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lephi: {}", error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    Ok(store
        .with_receipts(settings.receipt_policy()?)
        .with_unattributed_agency(settings.providers.unattributed_agency.as_deref()))
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => serve(settings, demo).await,
        Command::Bench(options) => crate::bench::run(&settings, options).await,
        Command::Officers(command) => officers::run(&settings, command).await,
        Command::Migrate => {
            let store = Store::connect(&settings.database).await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("the database is up to date");
            }
            for migration in applied {
                println!(
                    "applied migration {} ({})",
                    migration.version, migration.name
                );
            }
            Ok(())
        }
        Command::Backup { file } => {
            if file.exists() {
                anyhow::bail!("{} exists: back up to a new file", file.display());
            }
            let store = Store::connect(&settings.database).await?;
            let path = file
                .to_str()
                .ok_or_else(|| anyhow::anyhow!("the backup's path must be UTF-8"))?;
            store.back_up(path).await?;
            println!("backed up to {}", file.display());
            Ok(())
        }
        Command::Agencies(AgenciesCommand::Import { file }) => {
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let rows = parse_agency_list(&bytes)?;
            let store = open_store(&settings).await?;
            let summary = store
                .import_agencies(&Actor::system("cli"), &Scope::All, &rows)
                .await?;
            println!(
                "agencies: {} created, {} renamed, {} unchanged",
                summary.created, summary.renamed, summary.unchanged
            );
            Ok(())
        }
        Command::Agencies(AgenciesCommand::Webhook {
            code,
            url,
            secret,
            keep_previous_hours,
        }) => {
            let url = WebhookUrl::parse(&url, &settings.webhook_policy())?;
            let secret = match secret {
                Some(secret) => WebhookSecret::parse(&secret)?,
                None => WebhookSecret::generate(),
            };
            let store = open_store(&settings).await?;
            let webhook = store
                .set_webhook(
                    &Actor::system("cli"),
                    &Scope::All,
                    &code,
                    &url,
                    &secret,
                    keep_previous_hours.map(|hours| time::Duration::hours(i64::from(hours))),
                )
                .await?;
            println!(
                "webhook of {}: {}",
                webhook.agency_code,
                webhook.url.as_str()
            );
            println!("secret: {}", webhook.secret.expose());
            if let Some(until) = webhook.previous_until {
                println!("the previous secret signs beside it until {until}");
            }
            Ok(())
        }
        Command::Agencies(AgenciesCommand::BankAccount {
            code,
            bin,
            account,
            name,
        }) => {
            let account = BankAccount::parse(&bin, &account, &name)?;
            let store = open_store(&settings).await?;
            store
                .set_bank_account(&Actor::system("cli"), &Scope::All, &code, &account)
                .await?;
            println!(
                "bank account of {code}: {} {} ({})",
                account.bank_bin, account.account_number, account.account_name
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Create { role, agency, name }) => {
            let (new, secret) = NewApiKey::generate(&role, agency.as_deref(), name.as_deref())?;
            let store = open_store(&settings).await?;
            let record = store
                .create_api_key(&Actor::system("cli"), &Scope::All, &new)
                .await?;
            println!("key id: {}", record.id);
            println!("role:   {}", record.role);
            if let Some(code) = &record.agency_code {
                println!("agency: {code}");
            }
            println!("key:    {}", secret.expose());
            println!("Store the key now: lephi keeps only its hash and cannot show it again.");
            Ok(())
        }
        Command::Settlement(SettlementCommand::Import {
            channel,
            profile,
            account,
            file,
        }) => import_statement(&settings, &channel, profile, account.as_deref(), &file).await,
        Command::Dossiers(DossiersCommand::Import { file }) => {
            import_register(&settings, &file).await
        }
        Command::Keys(KeysCommand::Revoke { id }) => {
            let store = open_store(&settings).await?;
            let record = store
                .revoke_api_key(&Actor::system("cli"), &Scope::All, &id)
                .await?;
            println!("revoked key {} ({})", record.id, record.name);
            Ok(())
        }
        Command::Report(ReportCommand::Cashless {
            from,
            to,
            group_by,
            basis,
            agency,
            include_descendants,
            format,
        }) => {
            let query = ReportQuery::new(
                Period::parse(&from, &to)?,
                Basis::parse(&basis).ok_or_else(|| anyhow::anyhow!("unknown basis {basis}"))?,
                GroupBy::parse(&group_by)
                    .ok_or_else(|| anyhow::anyhow!("unknown grouping {group_by}"))?,
                agency
                    .map(|code| AgencyCode::parse("agency", &code))
                    .transpose()?,
                include_descendants,
            )?;
            let store = open_store(&settings).await?;
            let report = store.cashless_report(&Scope::All, &query).await?;
            if format == "csv" {
                print!("{}", report.to_csv());
            } else {
                print!("{}", report.to_table());
            }
            Ok(())
        }
    }
}

/// Reads a statement or register, refusing one larger than the API would take.
/// Imports a dossier register as the console does, as a job this process
/// runs unless a serving one has taken it, printing its progress on a
/// terminal.
async fn import_register(settings: &Settings, file: &std::path::Path) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    use crate::imports::{Importer, Stage};

    std::fs::metadata(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let profiles = Profiles::new(&settings.reconciliation.profiles)
        .map_err(|message| anyhow::anyhow!("configuration: reconciliation.profiles: {message}"))?;
    let store = open_store(settings).await?;
    let importer = Importer::new(store.clone(), &settings.reconciliation, profiles);
    let upload =
        crate::imports::upload::store_file(importer.upload_dir(), file, importer.max_file_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let queued = importer
        .queue_register(&Actor::system("cli"), &Scope::All, &upload)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let id = queued.import.id.clone();
    if !queued.new {
        println!(
            "this file was queued on {} as register import {id}: following its import",
            queued.import.imported_at
        );
    }
    let terminal = std::io::stderr().is_terminal();
    let show = |stage: Stage| {
        if let (true, Stage::Applying { applied, total }) = (terminal, stage) {
            eprint!("\rimporting: {applied} of {total} dossiers          ");
        }
    };
    let import = loop {
        importer.run_claimed_register(&id, &show).await?;
        let import = store.register_import(&Scope::All, &id).await?;
        if import.status.is_final() {
            break import;
        }
        show(Stage::Applying {
            applied: import.progress.rows_applied,
            total: import.progress.rows_total.unwrap_or(0),
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    if terminal {
        eprintln!();
    }
    if let Some(refusal) = &import.refused {
        anyhow::bail!(
            "line {}: {}; nothing was imported",
            refusal.line,
            refusal.reason
        );
    }
    let summary = import
        .summary
        .ok_or_else(|| anyhow::anyhow!("register import {id} is done without its summary"))?;
    println!(
        "dossiers: {} rows, {} created, {} updated, {} unchanged",
        summary.rows, summary.created, summary.updated, summary.unchanged
    );
    let outcomes: Vec<String> = summary
        .outcomes
        .iter()
        .map(|(outcome, n)| format!("{n} {}", outcome.as_str()))
        .collect();
    println!("outcomes: {}", outcomes.join(", "));
    println!(
        "unknown_dossier exceptions: {} raised, {} cleared",
        summary.unknown_dossier_exceptions, summary.unknown_dossier_exceptions_cleared
    );
    Ok(())
}

async fn import_statement(
    settings: &Settings,
    channel: &str,
    profile: Option<String>,
    account: Option<&str>,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;

    use crate::imports::{Importer, JobEnd, Stage};

    if !Channel::parse(channel).is_some_and(|c| c.is_cashless()) {
        anyhow::bail!("--channel must be vnpay, momo, zalopay or bank_transfer");
    }
    let profiles = Profiles::new(&settings.reconciliation.profiles)
        .map_err(|message| anyhow::anyhow!("configuration: reconciliation.profiles: {message}"))?;
    let store = open_store(settings).await?;
    let importer = Importer::new(store.clone(), &settings.reconciliation, profiles);
    let upload =
        crate::imports::upload::store_file(importer.upload_dir(), file, importer.max_file_bytes())
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let queued = importer
        .queue_statement(
            &Actor::system("cli"),
            &Scope::All,
            Some(channel),
            profile.as_deref(),
            account,
            &upload,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let id = queued.import.id.clone();
    if !queued.new && queued.import.status.is_final() {
        println!(
            "this file was imported on {} as statement {id}: nothing changed",
            queued.import.imported_at
        );
    } else if !queued.new {
        println!(
            "this file was queued on {} as statement {id}: following its import",
            queued.import.imported_at
        );
    }
    // Progress on a terminal only, on one line that is rewritten.
    let terminal = std::io::stderr().is_terminal();
    let show = |stage: Stage| {
        if !terminal {
            return;
        }
        match stage {
            Stage::Checking(lines) => eprint!("\rchecking: {lines} lines read          "),
            Stage::Applying { applied, total } => {
                eprint!("\rreconciling: {applied} of {total} lines          ")
            }
        }
    };
    // Run here unless a serving process has taken the job; then follow it.
    let import = loop {
        match importer.run_claimed(&id, &show).await? {
            Some(JobEnd::Stopped) | None => {}
            Some(JobEnd::Done(_) | JobEnd::Refused(_)) => {}
        }
        let import = store.statement_import(&Scope::All, &id).await?;
        if import.status.is_final() {
            break import;
        }
        show(match import.progress.lines_total {
            None => Stage::Checking(import.progress.lines_checked),
            Some(total) => Stage::Applying {
                applied: import.progress.lines_applied,
                total,
            },
        });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    if terminal {
        eprintln!();
    }
    if let Some(refusal) = &import.refused {
        anyhow::bail!(
            "line {}: {}; nothing was imported",
            refusal.line,
            refusal.reason
        );
    }
    let summary = import
        .summary
        .ok_or_else(|| anyhow::anyhow!("statement {id} is done without its summary"))?;
    println!(
        "statement {} ({}, profile {}): {} lines",
        summary.id, summary.channel, summary.profile, summary.lines
    );
    for (outcome, count) in &summary.outcomes {
        println!("  {:<18}{count:>10}", outcome.as_str());
    }
    println!("  unsettled payments found: {}", summary.unsettled_payments);
    println!(
        "  settled after being found unsettled: {}",
        summary.settled_later
    );
    println!("  exceptions opened: {}", summary.exceptions_opened);
    Ok(())
}

async fn serve(mut settings: Settings, demo: bool) -> anyhow::Result<()> {
    if demo {
        if settings.has_provider_credentials() {
            anyhow::bail!(
                "--demo runs with the sandbox providers only, and real provider credentials \
                 are configured (providers.*): remove them to run the demo"
            );
        }
        settings.sandbox.enabled = Some(true);
    }
    settings.check_sandbox()?;
    let store = open_store(&settings).await?;
    let configured = settings.clone();
    // Bound first: on a port already taken nothing is made (no key whose
    // one printing would be lost). Seeded before serving, so that a
    // seeding error stops the start.
    let mut app = Application::build_with_store(settings, store.clone())?;
    let seeded = if demo {
        Some(crate::demo::seed(&store, &configured).await?)
    } else {
        None
    };
    if !store.has_admin_key().await? {
        let (new, secret) = NewApiKey::generate("admin", None, Some("first admin"))?;
        let record = store
            .create_api_key(&Actor::system("serve"), &Scope::All, &new)
            .await?;
        println!(
            "No admin key existed, so lephi created one (id {}):",
            record.id
        );
        println!("    {}", secret.expose());
        println!("Store it now: it is shown this once.");
    }
    if let Some(seeded) = &seeded {
        crate::demo::print(seeded, &configured.public_url(app.address()));
    }
    app.stop_on_signals()?;
    tracing::info!(address = %app.address(), "lephi is serving");
    println!("lephi is serving on http://{}", app.address());
    app.run_until_stopped().await?;
    Ok(())
}
