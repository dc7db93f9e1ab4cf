//! `lephi officers ...`: the people who sign in to the console, managed
//! from the command line (the first officer is made this way). A new or
//! reset password is made here and printed once; the officer changes it
//! in the console (`/console/password`).

use clap::Subcommand;

use crate::config::Settings;
use crate::domain::audit::Actor;
use crate::domain::officer::{self, Email, OfficerRole};
use crate::domain::{AgencyCode, Scope};
use crate::store::{NewOfficer, OfficerRecord, Store};

#[derive(Subcommand)]
pub enum OfficersCommand {
    /// Create an officer; prints a first password, once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// finance, approver (a finance officer who also approves refunds)
        /// or admin.
        #[arg(long)]
        role: String,
        /// The agency whose subtree they work on; none only for an admin of
        /// the whole service.
        #[arg(long)]
        agency: Option<String>,
    },
    /// List the officers.
    List,
    /// Make a new password for an officer (printed once); their sessions end.
    ResetPassword { email: String },
    /// Clear an officer's second factor: they set it up again at sign-in.
    ResetSecondFactor { email: String },
    /// Disable an officer: they can no longer sign in; their sessions end.
    Disable { email: String },
}

async fn officer_by(store: &Store, email: &str) -> anyhow::Result<OfficerRecord> {
    let email = Email::parse("email", email)?;
    store
        .officer_by_email(&Scope::All, &email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no officer signs in with {}", email.as_str()))
}

pub async fn run(settings: &Settings, command: OfficersCommand) -> anyhow::Result<()> {
    let store = super::open_store(settings).await?;
    let actor = Actor::system("cli");
    match command {
        OfficersCommand::Create {
            name,
            email,
            role,
            agency,
        } => {
            let email = Email::parse("email", &email)?;
            let role = OfficerRole::parse("role", &role)?;
            let name = crate::domain::text::bounded("name", &name, 200)?;
            let agency = agency
                .map(|code| AgencyCode::parse("agency", &code))
                .transpose()?;
            let password = officer::made_password();
            let hash = officer::hash_password(&password);
            let record = store
                .create_officer(
                    &actor,
                    &Scope::All,
                    &NewOfficer {
                        email: &email,
                        name: &name,
                        role,
                        agency: agency.as_ref(),
                        password_hash: &hash,
                    },
                )
                .await?;
            println!("officer:  {} <{}>", record.name, record.email);
            println!("role:     {}", record.role.as_str());
            if let Some(code) = &record.agency_code {
                println!("agency:   {code}");
            }
            println!("password: {password}");
            println!(
                "Give the password to the officer alone; they sign in at /console and change it there.{}",
                if role.needs_second_factor(settings.console.second_factor_for_finance) {
                    " At the first sign-in they set up two-step verification with an authenticator app."
                } else {
                    ""
                }
            );
        }
        OfficersCommand::List => {
            for officer in store.officers(&Scope::All).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    officer.email,
                    officer.name,
                    officer.role.as_str(),
                    officer.agency_code.as_deref().unwrap_or("-"),
                    if officer.second_factor { "2fa" } else { "-" },
                    if officer.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    },
                );
            }
        }
        OfficersCommand::ResetPassword { email } => {
            let record = officer_by(&store, &email).await?;
            let password = officer::made_password();
            store
                .set_officer_password(
                    &actor,
                    &Scope::All,
                    &record.id,
                    &officer::hash_password(&password),
                    None,
                )
                .await?;
            println!("new password of {}: {password}", record.email);
        }
        OfficersCommand::ResetSecondFactor { email } => {
            let record = officer_by(&store, &email).await?;
            store
                .reset_second_factor(&actor, &Scope::All, &record.id)
                .await?;
            println!(
                "{} sets up two-step verification again at the next sign-in",
                record.email
            );
        }
        OfficersCommand::Disable { email } => {
            let record = officer_by(&store, &email).await?;
            store
                .disable_officer(&actor, &Scope::All, &record.id)
                .await?;
            println!("disabled {}", record.email);
        }
    }
    store.close().await;
    Ok(())
}
