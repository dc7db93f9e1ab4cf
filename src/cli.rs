//! The command line: serve, migrate, and the administrator's tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::domain::Scope;
use crate::domain::agency::{BankAccount, parse_agency_list};
use crate::domain::audit::Actor;
use crate::domain::dossier::parse_register;
use crate::domain::webhook::{WebhookSecret, WebhookUrl};
use crate::error::error_chain;
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
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage agencies.
    #[command(subcommand)]
    Agencies(AgenciesCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the dossier register.
    #[command(subcommand)]
    Dossiers(DossiersCommand),
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("lephi: {err}");
            return ExitCode::from(2);
        }
    };
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
    Ok(store)
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings).await,
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
        Command::Agencies(AgenciesCommand::Webhook { code, url, secret }) => {
            let url = WebhookUrl::parse(&url, &settings.webhook_policy())?;
            let secret = match secret {
                Some(secret) => WebhookSecret::parse(&secret)?,
                None => WebhookSecret::generate(),
            };
            let store = open_store(&settings).await?;
            let webhook = store
                .set_webhook(&Actor::system("cli"), &Scope::All, &code, &url, &secret)
                .await?;
            println!(
                "webhook of {}: {}",
                webhook.agency_code,
                webhook.url.as_str()
            );
            println!("secret: {}", webhook.secret.expose());
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
        Command::Dossiers(DossiersCommand::Import { file }) => {
            let limit = settings.reconciliation.max_file_bytes;
            let size = std::fs::metadata(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
                .len();
            if size > u64::try_from(limit).unwrap_or(u64::MAX) {
                anyhow::bail!(
                    "{} is over reconciliation.max_file_bytes ({limit} bytes)",
                    file.display()
                );
            }
            let bytes = std::fs::read(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let register = parse_register(&bytes)?;
            let store = open_store(&settings).await?;
            let summary = store
                .import_dossiers(&Actor::system("cli"), &Scope::All, &register)
                .await?;
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
        Command::Keys(KeysCommand::Revoke { id }) => {
            let store = open_store(&settings).await?;
            let record = store
                .revoke_api_key(&Actor::system("cli"), &Scope::All, &id)
                .await?;
            println!("revoked key {} ({})", record.id, record.name);
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
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
    let mut app = Application::build_with_store(settings, store)?;
    app.stop_on_signals()?;
    tracing::info!(address = %app.address(), "lephi is serving");
    println!("lephi is serving on http://{}", app.address());
    app.run_until_stopped().await?;
    Ok(())
}
