//! What a benchmark runs against: lephi started here on a fresh database
//! (a SQLite file, or a database on a throwaway PostgreSQL server with
//! durable commits), or a lephi already running at a URL. Either way it is
//! seeded through the API, as an administrator would.

use std::time::Duration;

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::postgres::{Durability, Server};
use crate::config::{ProviderSettings, Settings};
use crate::domain::audit::Actor;
use crate::domain::{Role, Scope};
use crate::startup::Application;
use crate::store::{NewApiKey, Store};

/// Which database a started lephi uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        })
    }
}

/// A lephi to measure, seeded with agencies, receiving accounts and a
/// dossier system's key.
pub struct Target {
    pub base_url: String,
    pub database_url: String,
    pub backend: Backend,
    /// The credentials lephi checks callbacks with.
    pub providers: ProviderSettings,
    pub http: reqwest::Client,
    pub admin_key: String,
    /// The dossier system's key, scoped to the province.
    pub system_key: String,
    /// Agencies invoices are issued for; each has a receiving account.
    pub agencies: Vec<Agency>,
    /// The connection pool size lephi uses; the baseline uses the same.
    pub pool_size: u32,
    _server: Option<Server>,
    _dir: Option<tempfile::TempDir>,
    _uploads: Option<tempfile::TempDir>,
}

pub struct Agency {
    pub code: String,
    pub account_number: String,
}

/// How to start lephi here.
pub struct Start {
    pub backend: Backend,
    /// A PostgreSQL server to create the database on, instead of a
    /// throwaway one.
    pub postgres_url: Option<String>,
    pub workers: usize,
    pub pool_size: u32,
}

/// A running lephi named by URL.
pub struct Remote {
    pub url: String,
    pub admin_key: String,
    pub database_url: String,
}

/// The province, districts and communes invoices are spread over. Each
/// agency has its own receipt series, as a province's do.
const DISTRICTS: usize = 4;
const COMMUNES_PER_DISTRICT: usize = 4;
const PROVINCE: &str = "BENCH";

impl Target {
    /// Starts lephi on a fresh database, serving on a free loopback port
    /// with the sandbox providers (their public credentials sign the
    /// callbacks) and no janitor.
    pub async fn start(start: Start) -> anyhow::Result<Target> {
        let (database_url, server, dir) = match start.backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new().prefix("lephi-bench-").tempdir()?;
                let url = format!("sqlite://{}/lephi.db", dir.path().display());
                (url, None, Some(dir))
            }
            Backend::Postgres => {
                let server = match &start.postgres_url {
                    Some(url) => Server::at(url),
                    None => Server::start(Durability::Durable).map_err(anyhow::Error::msg)?,
                };
                let url = server
                    .fresh_database_url("lephi_bench")
                    .await
                    .map_err(anyhow::Error::msg)?;
                (url, Some(server), None)
            }
        };
        let mut settings = Settings::default();
        settings.server.bind = "127.0.0.1:0".parse()?;
        settings.server.workers = start.workers;
        settings.database.url = SecretString::from(database_url.clone());
        settings.database.max_connections = start.pool_size;
        let uploads = tempfile::Builder::new()
            .prefix("lephi-bench-uploads-")
            .tempdir()?;
        settings.reconciliation.upload_dir = uploads.path().to_owned();
        settings.janitor.enabled = false;
        settings.sandbox.enabled = Some(true);
        settings.log.level = "warn".into();
        let app = Application::build(settings.clone())
            .await
            .context("lephi does not start")?;
        let base_url = format!("http://{}", app.address());
        let providers = crate::sandbox::provider_settings(&base_url, 10);
        let store = Store::connect(&settings.database).await?;
        let (new, secret) = NewApiKey::generate(Role::Admin.as_str(), None, Some("bench"))?;
        store
            .create_api_key(&Actor::system("bench"), &Scope::All, &new)
            .await?;
        store.close().await;
        tokio::spawn(app.run_until_stopped());
        let mut target = Target::new(
            base_url,
            database_url,
            start.backend,
            providers,
            secret.expose().to_owned(),
            start.pool_size,
        )?;
        target._server = server;
        target._dir = dir;
        target._uploads = Some(uploads);
        target.seed().await?;
        Ok(target)
    }

    /// A lephi already running at `remote.url`, configured as `settings`
    /// say (its provider credentials sign the callbacks; without any, the
    /// sandbox's).
    pub async fn remote(remote: Remote, settings: &Settings) -> anyhow::Result<Target> {
        let base_url = remote.url.trim_end_matches('/').to_owned();
        let providers = if settings.has_provider_credentials() {
            settings.providers.clone()
        } else {
            crate::sandbox::provider_settings(&base_url, 10)
        };
        let backend = if remote.database_url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut target = Target::new(
            base_url,
            remote.database_url,
            backend,
            providers,
            remote.admin_key,
            settings.database.max_connections,
        )?;
        target.seed().await?;
        Ok(target)
    }

    fn new(
        base_url: String,
        database_url: String,
        backend: Backend,
        providers: ProviderSettings,
        admin_key: String,
        pool_size: u32,
    ) -> anyhow::Result<Target> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Target {
            base_url,
            database_url,
            backend,
            providers,
            http,
            admin_key,
            system_key: String::new(),
            agencies: Vec::new(),
            pool_size,
            _server: None,
            _dir: None,
            _uploads: None,
        })
    }

    /// Creates the agencies (once: a second run on the same lephi finds
    /// them), their accounts and a dossier system key.
    async fn seed(&mut self) -> anyhow::Result<()> {
        let admin = self.admin_key.clone();
        self.ensure_agency(PROVINCE, "province", None).await?;
        let mut agencies = Vec::new();
        for d in 1..=DISTRICTS {
            let district = format!("{PROVINCE}.D{d}");
            self.ensure_agency(&district, "district", Some(PROVINCE))
                .await?;
            agencies.push(district.clone());
            for c in 1..=COMMUNES_PER_DISTRICT {
                let commune = format!("{district}.C{c}");
                self.ensure_agency(&commune, "commune", Some(&district))
                    .await?;
                agencies.push(commune);
            }
        }
        for (n, code) in agencies.iter().enumerate() {
            let account_number = format!("9704{:08}", n + 1);
            let body = json!({
                "bank_bin": "970436",
                "account_number": account_number,
                "account_name": format!("UBND {code}"),
            });
            let path = format!("/v1/agencies/{code}/bank-account");
            self.send(reqwest::Method::PUT, &path, &admin, Some(&body))
                .await?
                .ok_for("a receiving account")?;
            self.agencies.push(Agency {
                code: code.clone(),
                account_number,
            });
        }
        let key = self
            .send(
                reqwest::Method::POST,
                "/v1/keys",
                &admin,
                Some(&json!({ "role": "agency_system", "agency_code": PROVINCE, "name": "bench" })),
            )
            .await?
            .ok_for("the dossier system's key")?;
        self.system_key = key["key"]
            .as_str()
            .context("the key answer has no key")?
            .to_owned();
        Ok(())
    }

    async fn ensure_agency(
        &self,
        code: &str,
        level: &str,
        parent: Option<&str>,
    ) -> anyhow::Result<()> {
        let body = json!({ "code": code, "name": format!("Bench {code}"), "level": level, "parent_code": parent });
        let answer = self
            .send(
                reqwest::Method::POST,
                "/v1/agencies",
                &self.admin_key,
                Some(&body),
            )
            .await?;
        if answer.status == 201 || answer.status == 409 {
            Ok(())
        } else {
            bail!("agency {code}: {} {}", answer.status, answer.text)
        }
    }

    /// Sends a JSON request with `key`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        Answer::read(request.send().await?).await
    }

    /// A connection pool on lephi's database, for checks.
    pub async fn database(&self) -> anyhow::Result<sqlx::AnyPool> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .connect(&self.database_url)
            .await?)
    }

    pub fn secret(secret: &SecretString) -> &str {
        secret.expose_secret()
    }
}

/// An answer's status and text.
pub struct Answer {
    pub status: u16,
    pub text: String,
}

impl Answer {
    pub async fn read(response: reqwest::Response) -> anyhow::Result<Answer> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok(Answer { status, text })
    }

    /// The JSON of a 2xx answer; otherwise an error naming `what`.
    pub fn ok_for(&self, what: &str) -> anyhow::Result<Value> {
        if !(200..300).contains(&self.status) {
            bail!("{what}: {} {}", self.status, self.text);
        }
        Ok(serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }
}
