//! `lephi officers ...`: the people who sign in to the console, managed
//! from the command line (the first officer is made this way). A new or
//! reset password is made here and printed once; the officer changes it
//! in the console (`/console/password`).

use clap::Subcommand;

use crate::config::Settings;
use crate::domain::Scope;
use crate::domain::audit::Actor;
use crate::usecases::officers::OfficerForm;

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

pub async fn run(settings: &Settings, command: OfficersCommand) -> anyhow::Result<()> {
    let store = super::open_store(settings).await?;
    let actor = Actor::system("cli");
    let named = |email: &str| {
        let email = email.to_owned();
        let store = store.clone();
        async move {
            crate::usecases::officers::by_email(&store, &Scope::All, &email)
                .await
                .map_err(|err| match err {
                    crate::store::StoreError::NotFound => {
                        anyhow::anyhow!("no officer signs in with {email}")
                    }
                    other => other.into(),
                })
        }
    };
    match command {
        OfficersCommand::Create {
            name,
            email,
            role,
            agency,
        } => {
            let made = crate::usecases::officers::create(
                &store,
                &actor,
                &Scope::All,
                &OfficerForm {
                    name: &name,
                    email: &email,
                    role: &role,
                    agency: agency.as_deref(),
                },
            )
            .await?;
            let record = &made.officer;
            println!("officer:  {} <{}>", record.name, record.email);
            println!("role:     {}", record.role.as_str());
            if let Some(code) = &record.agency_code {
                println!("agency:   {code}");
            }
            println!("password: {}", made.password);
            println!(
                "Give the password to the officer alone; they sign in at /console and change it there.{}",
                if record
                    .role
                    .needs_second_factor(settings.console.second_factor_for_finance)
                {
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
            let record = named(&email).await?;
            let made =
                crate::usecases::officers::reset_password(&store, &actor, &Scope::All, &record.id)
                    .await?;
            println!("new password of {}: {}", record.email, made.password);
        }
        OfficersCommand::ResetSecondFactor { email } => {
            let record = named(&email).await?;
            store
                .reset_second_factor(&actor, &Scope::All, &record.id)
                .await?;
            println!(
                "{} sets up two-step verification again at the next sign-in",
                record.email
            );
        }
        OfficersCommand::Disable { email } => {
            let record = named(&email).await?;
            store
                .disable_officer(&actor, &Scope::All, &record.id)
                .await?;
            println!("disabled {}", record.email);
        }
    }
    store.close().await;
    Ok(())
}
