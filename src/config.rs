//! Settings: defaults, then an optional TOML file, then `LEPHI__SECTION__KEY`
//! environment variables. A bad value stops the start and names its path.

mod privacy;
mod refunds;
mod secret_files;

pub use privacy::PrivacySettings;
pub use refunds::{AgencyRefundSettings, RefundSettings};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::invoice::InvoiceLimits;
use crate::domain::payment::Channel;
use crate::domain::receipt::{FormNumber, ReceiptForm, ReceiptPolicy, SymbolLetters};
use crate::domain::webhook::UrlPolicy;
use crate::domain::{AgencyCode, Vnd};
use crate::reconcile::{Profile, Profiles};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub invoices: InvoiceSettings,
    pub providers: ProviderSettings,
    pub webhooks: WebhookSettings,
    pub reconciliation: ReconciliationSettings,
    pub janitor: JanitorSettings,
    pub log: LogSettings,
    pub sandbox: SandboxSettings,
    pub checkout: CheckoutSettings,
    pub receipts: ReceiptSettings,
    pub console: ConsoleSettings,
    pub refunds: RefundSettings,
    pub privacy: PrivacySettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// The URL citizens and providers reach lephi at; defaults to `http://{bind}`.
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Lets agencies' webhooks target loopback addresses over http, for
    /// development and tests. Off in production.
    pub allow_loopback_webhooks: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`
    /// (Prometheus' `authorization` setting); otherwise it is open.
    pub metrics_token: Option<SecretString>,
    /// The reverse proxies (CIDRs or addresses) whose word on the client's
    /// address is taken, from `forwarded_header`; any other peer is the
    /// client itself.
    pub trusted_proxies: Vec<String>,
    /// The header the trusted proxies name the client in.
    pub forwarded_header: crate::client_addr::ForwardedHeader,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` (created on first start) or `postgres://...`. Secret:
    /// a PostgreSQL URL may carry a password.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long SQLite waits for a lock before giving up, in milliseconds.
    pub busy_timeout_ms: u64,
    /// How long a request waits for a pooled connection, in seconds.
    pub acquire_timeout_secs: u64,
    /// SQLite: the most the database file may grow to, in MiB (none by
    /// default). Past it, writes are refused with 503 `storage_full` and
    /// nothing is half-written, as on a full disk; it keeps room on a
    /// shared disk for the logs and the backups.
    pub max_size_mib: Option<u64>,
    /// SQLite: `/health/ready` answers 503 `storage_full` when the disk
    /// that holds the database has less free space than this, in MiB.
    pub min_free_mib: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvoiceSettings {
    /// The largest invoice total, in đồng.
    pub max_total: i64,
    pub max_lines: usize,
    /// Validity of an invoice created without `expires_at`, in hours.
    pub default_validity_hours: i64,
    /// The furthest `expires_at` may lie in the future, in days.
    pub max_validity_days: i64,
    /// How often open invoices past their expiry are marked expired, in seconds.
    pub expiry_interval_secs: u64,
}

/// Credentials of the payment providers. A provider without a section is
/// off: its channel cannot be started and its callback answers 404.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// The agency whose finance officers see money a provider sends for no
    /// known order (by default, the only top-level agency, if one).
    pub unattributed_agency: Option<String>,
    pub vnpay: Option<VnpaySettings>,
    pub momo: Option<MomoSettings>,
    pub zalopay: Option<ZalopaySettings>,
    pub sepay: Option<SepaySettings>,
    pub casso: Option<CassoSettings>,
    /// How long a call to a provider's API may take, in seconds.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VnpaySettings {
    pub tmn_code: String,
    pub hash_secret: SecretString,
    /// During a rotation, the secret being replaced: still accepted on
    /// what the provider signs (callbacks, returns, answers) until it is
    /// removed; lephi signs with the new one only.
    #[serde(default)]
    pub previous_hash_secret: Option<SecretString>,
    /// The gateway's `.../paymentv2/vpcpay.html`.
    pub payment_url: String,
    /// The gateway's `.../merchant_webapi/api/transaction`.
    pub api_url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MomoSettings {
    pub partner_code: String,
    pub access_key: String,
    pub secret_key: SecretString,
    /// During a rotation, the secret being replaced: still accepted on
    /// what the provider signs (callbacks, returns, answers) until it is
    /// removed; lephi signs with the new one only.
    #[serde(default)]
    pub previous_secret_key: Option<SecretString>,
    /// Base URL of MoMo's API, e.g. `https://test-payment.momo.vn`.
    pub endpoint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZalopaySettings {
    pub app_id: String,
    pub key1: SecretString,
    /// Signs ZaloPay's callbacks and redirects.
    pub key2: SecretString,
    /// During a rotation, the secret being replaced: still accepted on
    /// what the provider signs (callbacks, returns, answers) until it is
    /// removed; lephi signs with the new one only.
    #[serde(default)]
    pub previous_key2: Option<SecretString>,
    /// Base URL of ZaloPay's API, e.g. `https://sb-openapi.zalopay.vn`.
    pub endpoint: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SepaySettings {
    /// Accepted as `Authorization: Apikey ...`.
    pub api_key: Option<SecretString>,
    /// During a rotation, the secret being replaced: still accepted on
    /// what the provider signs (callbacks, returns, answers) until it is
    /// removed; lephi signs with the new one only.
    #[serde(default)]
    pub previous_api_key: Option<SecretString>,
    /// Accepted as an HMAC-SHA256 signature with a timestamp.
    pub hmac_secret: Option<SecretString>,
    /// During a rotation, the secret being replaced: still accepted on
    /// what the provider signs (callbacks, returns, answers) until it is
    /// removed; lephi signs with the new one only.
    #[serde(default)]
    pub previous_hmac_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassoSettings {
    pub checksum_key: SecretString,
    /// During a rotation, the secret being replaced: still accepted on
    /// what the provider signs (callbacks, returns, answers) until it is
    /// removed; lephi signs with the new one only.
    #[serde(default)]
    pub previous_checksum_key: Option<SecretString>,
}

/// The built-in sandbox providers (`/sandbox/...`): lephi plays VNPay,
/// MoMo, ZaloPay and a SePay-style bank itself, with fixed, public
/// secrets, so that a payment can be tried without any credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// On when unset and no real provider credentials are configured;
    /// never together with real credentials.
    pub enabled: Option<bool>,
}

/// Delivery of events to the dossier systems' webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Hosts that webhook URLs may name (https only).
    pub allowed_hosts: Vec<String>,
    /// Deliveries tried before an event becomes a dead letter.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `max_backoff_ms`.
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// How long a receiver has to answer, in milliseconds.
    pub timeout_ms: u64,
    /// How often the dispatcher looks for due events, in milliseconds.
    pub poll_interval_ms: u64,
}

/// Settlement statements and the dossier register.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconciliationSettings {
    /// The largest statement or register file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Days a channel's payments may wait for their statement line before
    /// they are `unsettled_payment`.
    pub settlement_days: SettlementDays,
    /// Statement profiles added to the shipped ones, by name.
    pub profiles: BTreeMap<String, Profile>,
    /// Where uploaded statements are stored for their import jobs to read
    /// (and to resume from after a restart). Processes sharing a
    /// PostgreSQL database run only the jobs whose file they can open; on
    /// SQLite a job whose file is gone is refused, nothing applied.
    pub upload_dir: PathBuf,
    /// Import jobs one process runs at once (never two of one channel at
    /// once, in any process); 0 leaves them to other lephi processes.
    pub import_workers: usize,
    /// Imports one key may have queued or running; more get 429.
    pub max_queued_per_key: u32,
    /// Lines an import job applies in one transaction.
    pub import_batch_lines: usize,
    /// How long a job's claim holds without being renewed: a job whose
    /// process died is taken up again after this.
    pub import_lease_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SettlementDays {
    pub vnpay: u32,
    pub momo: u32,
    pub zalopay: u32,
    pub bank_transfer: u32,
}

impl SettlementDays {
    /// The days of `channel`; `None` for cash, which no statement settles.
    pub fn of(&self, channel: Channel) -> Option<u32> {
        match channel {
            Channel::Vnpay => Some(self.vnpay),
            Channel::Momo => Some(self.momo),
            Channel::Zalopay => Some(self.zalopay),
            Channel::BankTransfer => Some(self.bank_transfer),
            Channel::Cash => None,
        }
    }
}

/// The janitor: asks the gateways about attempts still pending whose
/// callback never came.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JanitorSettings {
    pub enabled: bool,
    /// How often it looks for attempts to check, in seconds.
    pub interval_secs: u64,
    /// How old a pending attempt must be before its first check, in
    /// seconds; also the first delay between checks, which then doubles.
    pub first_check_after_secs: u64,
    /// How long after an attempt's creation the janitor stops asking and
    /// raises `unconfirmed_attempt`, in hours.
    pub give_up_after_hours: u64,
    /// Attempts checked in one pass at most.
    pub batch: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info` or `lephi=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

/// The citizens' pages under `/pay/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckoutSettings {
    /// Requests one client address may make to `/pay/*` in a minute; more
    /// are answered 429. The payment code in those URLs is the only
    /// credential, so guessing codes must be slow.
    pub requests_per_minute: u32,
}

/// The finance officers' web console under `/console`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Minutes a console session may stay unused before it ends.
    pub idle_minutes: u64,
    /// Sign-in attempts one client address may make in a minute; more are
    /// answered 429, so that keys cannot be guessed.
    pub sign_in_attempts_per_minute: u32,
    /// Finance officers, too, sign in with a second factor (approvers and
    /// admins always do).
    pub second_factor_for_finance: bool,
}

/// What receipts are printed with (Decree 123/2020 art. 32): a form number
/// and symbol letters for every agency, and an agency's own where it has
/// them (`receipts.agencies."H26.01".form_number`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptSettings {
    /// Mẫu số, e.g. `01BLP0-001`.
    pub form_number: String,
    /// The symbol's letters; the symbol adds the year's last two digits (`LP26`).
    pub symbol_letters: String,
    /// Agencies' own forms, by agency code; a value left out is the default.
    pub agencies: BTreeMap<String, AgencyReceiptSettings>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgencyReceiptSettings {
    pub form_number: Option<String>,
    pub symbol_letters: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Pretty,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_body_bytes: 64 * 1024,
            workers: 0,
            shutdown_timeout_secs: 30,
            allow_loopback_webhooks: false,
            metrics_token: None,
            trusted_proxies: Vec::new(),
            forwarded_header: crate::client_addr::ForwardedHeader::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: SecretString::from("sqlite://data/lephi.db"),
            max_connections: 16,
            busy_timeout_ms: 5_000,
            acquire_timeout_secs: 5,
            max_size_mib: None,
            min_free_mib: 64,
        }
    }
}

impl Default for InvoiceSettings {
    fn default() -> Self {
        InvoiceSettings {
            max_total: 1_000_000_000,
            max_lines: 50,
            default_validity_hours: 72,
            max_validity_days: 90,
            expiry_interval_secs: 30,
        }
    }
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            unattributed_agency: None,
            vnpay: None,
            momo: None,
            zalopay: None,
            sepay: None,
            casso: None,
            timeout_secs: 10,
        }
    }
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allowed_hosts: Vec::new(),
            max_attempts: 12,
            initial_backoff_ms: 5_000,
            max_backoff_ms: 3_600_000,
            timeout_ms: 10_000,
            poll_interval_ms: 1_000,
        }
    }
}

impl Default for ReconciliationSettings {
    fn default() -> Self {
        ReconciliationSettings {
            max_file_bytes: 256 * 1024 * 1024,
            settlement_days: SettlementDays::default(),
            profiles: BTreeMap::new(),
            upload_dir: PathBuf::from("data/uploads"),
            import_workers: 2,
            max_queued_per_key: 3,
            import_batch_lines: 4_000,
            import_lease_secs: 15,
        }
    }
}

impl Default for SettlementDays {
    fn default() -> Self {
        SettlementDays {
            vnpay: 2,
            momo: 2,
            zalopay: 2,
            bank_transfer: 1,
        }
    }
}

impl Default for JanitorSettings {
    fn default() -> Self {
        JanitorSettings {
            enabled: true,
            interval_secs: 60,
            first_check_after_secs: 600,
            give_up_after_hours: 24,
            batch: 50,
        }
    }
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        CheckoutSettings {
            requests_per_minute: 60,
        }
    }
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_minutes: 30,
            second_factor_for_finance: false,
            sign_in_attempts_per_minute: 10,
        }
    }
}

impl Default for ReceiptSettings {
    fn default() -> Self {
        ReceiptSettings {
            form_number: "01BLP0-001".into(),
            symbol_letters: "LP".into(),
            agencies: BTreeMap::new(),
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Json,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Source(#[from] Box<config::ConfigError>),
    #[error("configuration: {0}")]
    Value(#[from] Box<serde_path_to_error::Error<config::ConfigError>>),
    #[error("configuration: {path}: {message}")]
    Invalid { path: &'static str, message: String },
    /// A bad value whose path holds a key of a map, such as an agency code.
    #[error("configuration: {path}: {message}")]
    InvalidEntry { path: String, message: String },
}

impl Settings {
    /// Loads the layered settings: defaults, `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(file, env)
    }

    /// As [`Settings::load`], with the environment given explicitly.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env = env
            .into_iter()
            .filter(|(key, _)| key.starts_with("LEPHI__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("LEPHI")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let built = builder.build().map_err(Box::new)?;
        let resolved = secret_files::SecretFiles::read(&built)
            .map_err(|(path, message)| ConfigError::InvalidEntry { path, message })?;
        let built = config::Config::builder()
            .add_source(resolved)
            .build()
            .map_err(Box::new)?;
        let settings: Settings = serde_path_to_error::deserialize(built).map_err(Box::new)?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |path, message: &str| {
            Err(ConfigError::Invalid {
                path,
                message: message.to_owned(),
            })
        };
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("server.public_url", "must start with http:// or https://");
        }
        if self.server.max_body_bytes < 1024 {
            return invalid("server.max_body_bytes", "must be at least 1024");
        }
        if let Err(message) = self.trusted_proxies() {
            return invalid("server.trusted_proxies", &message);
        }
        let url = self.database.url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return invalid(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if self
            .privacy
            .retention_days
            .is_some_and(|days| days < privacy::MIN_RETENTION_DAYS)
        {
            return invalid("privacy.retention_days", "must be at least 30 days");
        }
        if self.privacy.interval_secs == 0 {
            return invalid("privacy.interval_secs", "must be at least 1");
        }
        if self.database.max_size_mib == Some(0) {
            return invalid("database.max_size_mib", "must be at least 1");
        }
        if self.invoices.max_total <= 0 {
            return invalid("invoices.max_total", "must be positive");
        }
        if self.invoices.max_lines == 0 {
            return invalid("invoices.max_lines", "must be at least 1");
        }
        if self.invoices.default_validity_hours <= 0 {
            return invalid("invoices.default_validity_hours", "must be positive");
        }
        if self.invoices.max_validity_days <= 0
            || self.invoices.max_validity_days * 24 < self.invoices.default_validity_hours
        {
            return invalid(
                "invoices.max_validity_days",
                "must be positive and cover default_validity_hours",
            );
        }
        if self.invoices.expiry_interval_secs == 0 {
            return invalid("invoices.expiry_interval_secs", "must be at least 1");
        }
        self.check_credentials()?;
        if self.providers.timeout_secs == 0 {
            return invalid("providers.timeout_secs", "must be at least 1");
        }
        if let Some(sepay) = &self.providers.sepay
            && sepay.api_key.is_none()
            && sepay.hmac_secret.is_none()
        {
            return invalid("providers.sepay", "needs api_key or hmac_secret (or both)");
        }
        if self.webhooks.max_attempts == 0 {
            return invalid("webhooks.max_attempts", "must be at least 1");
        }
        if self.webhooks.initial_backoff_ms == 0
            || self.webhooks.max_backoff_ms < self.webhooks.initial_backoff_ms
        {
            return invalid(
                "webhooks.max_backoff_ms",
                "must be at least initial_backoff_ms, which must be positive",
            );
        }
        if self.webhooks.timeout_ms == 0 || self.webhooks.poll_interval_ms == 0 {
            return invalid(
                "webhooks.timeout_ms",
                "timeout_ms and poll_interval_ms must be positive",
            );
        }
        if let Err(message) = Profiles::new(&self.reconciliation.profiles) {
            return invalid("reconciliation.profiles", &message);
        }
        if self.checkout.requests_per_minute == 0 {
            return invalid("checkout.requests_per_minute", "must be at least 1");
        }
        if !(1..=24 * 60).contains(&self.console.idle_minutes) {
            return invalid("console.idle_minutes", "must be between 1 and 1440");
        }
        if self.console.sign_in_attempts_per_minute == 0 {
            return invalid("console.sign_in_attempts_per_minute", "must be at least 1");
        }
        self.receipt_policy()?;
        self.check_imports()?;
        self.check_janitor()
    }

    fn check_imports(&self) -> Result<(), ConfigError> {
        let invalid = |path, message: &str| {
            Err(ConfigError::Invalid {
                path,
                message: message.to_owned(),
            })
        };
        let r = &self.reconciliation;
        if r.import_workers > 64 {
            return invalid("reconciliation.import_workers", "must be 0 to 64");
        }
        if r.max_queued_per_key == 0 {
            return invalid("reconciliation.max_queued_per_key", "must be at least 1");
        }
        if !(10..=100_000).contains(&r.import_batch_lines) {
            return invalid("reconciliation.import_batch_lines", "must be 10 to 100000");
        }
        if !(1..=3600).contains(&r.import_lease_secs) {
            return invalid("reconciliation.import_lease_secs", "must be 1 to 3600");
        }
        if r.upload_dir.as_os_str().is_empty() {
            return invalid("reconciliation.upload_dir", "must name a folder");
        }
        Ok(())
    }

    fn check_janitor(&self) -> Result<(), ConfigError> {
        let invalid = |path, message: &str| {
            Err(ConfigError::Invalid {
                path,
                message: message.to_owned(),
            })
        };
        let j = &self.janitor;
        if j.interval_secs == 0 || j.interval_secs > 86_400 {
            return invalid("janitor.interval_secs", "must be 1 to 86400");
        }
        if j.first_check_after_secs == 0 || j.first_check_after_secs > 86_400 {
            return invalid("janitor.first_check_after_secs", "must be 1 to 86400");
        }
        if j.give_up_after_hours == 0
            || j.give_up_after_hours > 24 * 90
            || j.give_up_after_hours * 3600 <= j.first_check_after_secs
        {
            return invalid(
                "janitor.give_up_after_hours",
                "must be 1 to 2160, and later than first_check_after_secs",
            );
        }
        if !(1..=1000).contains(&j.batch) {
            return invalid("janitor.batch", "must be 1 to 1000");
        }
        Ok(())
    }

    /// The receipt forms, each value checked; a bad one names its path.
    pub fn receipt_policy(&self) -> Result<ReceiptPolicy, ConfigError> {
        let r = &self.receipts;
        let form = |path: &str, form_number: &str, letters: &str| {
            let named = |e: crate::domain::ValidationError| ConfigError::InvalidEntry {
                path: e.field,
                message: e.message,
            };
            Ok::<_, ConfigError>(ReceiptForm {
                form_number: FormNumber::parse(&format!("{path}.form_number"), form_number)
                    .map_err(named)?,
                symbol_letters: SymbolLetters::parse(&format!("{path}.symbol_letters"), letters)
                    .map_err(named)?,
            })
        };
        let default = form("receipts", &r.form_number, &r.symbol_letters)?;
        let mut agencies = BTreeMap::new();
        for (code, own) in &r.agencies {
            let path = format!("receipts.agencies.{code}");
            let agency = AgencyCode::parse(&path, code).map_err(|e| ConfigError::InvalidEntry {
                path: path.clone(),
                message: format!("is not an agency code: {}", e.message),
            })?;
            let form = form(
                &path,
                own.form_number.as_deref().unwrap_or(&r.form_number),
                own.symbol_letters.as_deref().unwrap_or(&r.symbol_letters),
            )?;
            agencies.insert(agency, form);
        }
        Ok(ReceiptPolicy { default, agencies })
    }

    /// A provider's identifiers must be set and its secrets long enough
    /// that nobody can guess them: an empty key would let anyone sign a
    /// callback.
    fn check_credentials(&self) -> Result<(), ConfigError> {
        const MIN_SECRET: usize = 16;
        let p = &self.providers;
        let mut ids: Vec<(&'static str, &str)> = Vec::new();
        let mut secrets: Vec<(&'static str, &SecretString)> = Vec::new();
        if let Some(v) = &p.vnpay {
            ids.push(("providers.vnpay.tmn_code", &v.tmn_code));
            secrets.push(("providers.vnpay.hash_secret", &v.hash_secret));
        }
        if let Some(m) = &p.momo {
            ids.push(("providers.momo.partner_code", &m.partner_code));
            ids.push(("providers.momo.access_key", &m.access_key));
            secrets.push(("providers.momo.secret_key", &m.secret_key));
        }
        if let Some(z) = &p.zalopay {
            ids.push(("providers.zalopay.app_id", &z.app_id));
            secrets.push(("providers.zalopay.key1", &z.key1));
            secrets.push(("providers.zalopay.key2", &z.key2));
        }
        if let Some(s) = &p.sepay {
            if let Some(key) = &s.api_key {
                secrets.push(("providers.sepay.api_key", key));
            }
            if let Some(key) = &s.hmac_secret {
                secrets.push(("providers.sepay.hmac_secret", key));
            }
        }
        if let Some(c) = &p.casso {
            secrets.push(("providers.casso.checksum_key", &c.checksum_key));
        }
        for (path, id) in ids {
            if id.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    path,
                    message: "must not be empty".into(),
                });
            }
        }
        for (path, secret) in secrets {
            if secret.expose_secret().trim().chars().count() < MIN_SECRET {
                return Err(ConfigError::Invalid {
                    path,
                    message: format!("must be at least {MIN_SECRET} characters"),
                });
            }
        }
        Ok(())
    }

    /// Whether any real provider's credentials are configured.
    pub fn has_provider_credentials(&self) -> bool {
        let p = &self.providers;
        p.vnpay.is_some()
            || p.momo.is_some()
            || p.zalopay.is_some()
            || p.sepay.is_some()
            || p.casso.is_some()
    }

    /// Whether the sandbox providers serve: as configured, or, when
    /// `sandbox.enabled` is unset, when no real provider is and lephi
    /// serves this machine alone. The sandbox's secrets are public: on a
    /// service others can reach, anyone could pay its invoices with them,
    /// so there it must be asked for by name.
    pub fn sandbox_enabled(&self) -> bool {
        self.sandbox
            .enabled
            .unwrap_or_else(|| !self.has_provider_credentials() && self.serves_this_machine_only())
    }

    /// Whether citizens and providers reach lephi on this machine only: a
    /// loopback bind address, and a loopback public URL if one is set. A
    /// loopback public URL on an address others reach (`0.0.0.0` in a
    /// container) is not: the network reaches the sandbox there.
    pub fn serves_this_machine_only(&self) -> bool {
        if !self.server.bind.ip().is_loopback() {
            return false;
        }
        match &self.server.public_url {
            Some(url) => {
                let host = url
                    .split_once("://")
                    .map_or(url.as_str(), |(_, rest)| rest)
                    .split(['/', '?', '#'])
                    .next()
                    .unwrap_or_default();
                let host = match host.strip_prefix('[') {
                    Some(v6) => v6.split(']').next().unwrap_or_default(),
                    None => host.rsplit_once(':').map_or(host, |(h, _)| h),
                };
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            None => self.server.bind.ip().is_loopback(),
        }
    }

    /// Refuses the sandbox beside real credentials: its secrets are
    /// public, and one service must never take both fake and real money.
    pub fn check_sandbox(&self) -> Result<(), ConfigError> {
        if self.sandbox_enabled() && self.has_provider_credentials() {
            return Err(ConfigError::Invalid {
                path: "sandbox.enabled",
                message: "the sandbox cannot run beside real provider credentials \
                          (providers.*): remove them, or set sandbox.enabled = false"
                    .into(),
            });
        }
        Ok(())
    }

    /// The public URL, or one made from the address actually bound.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.server.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// The reverse proxies whose word on the client is taken.
    pub fn trusted_proxies(&self) -> Result<crate::client_addr::TrustedProxies, String> {
        crate::client_addr::TrustedProxies::parse(
            &self.server.trusted_proxies,
            self.server.forwarded_header,
        )
    }

    pub fn webhook_policy(&self) -> UrlPolicy {
        UrlPolicy {
            allowed_hosts: self.webhooks.allowed_hosts.clone(),
            allow_loopback: self.server.allow_loopback_webhooks,
        }
    }

    pub fn invoice_limits(&self) -> InvoiceLimits {
        InvoiceLimits {
            max_total: Vnd::new(self.invoices.max_total),
            max_lines: self.invoices.max_lines,
            default_validity: time::Duration::hours(self.invoices.default_validity_hours),
            max_validity: time::Duration::days(self.invoices.max_validity_days),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_sources() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database.url.expose_secret(), "sqlite://data/lephi.db");
    }

    #[test]
    fn environment_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lephi.toml");
        std::fs::write(
            &file,
            "[server]\nbind = \"0.0.0.0:9000\"\npublic_url = \"https://pay.example.vn\"\n[invoices]\nmax_total = 5000\n",
        )
        .unwrap();
        let s = Settings::load_from(
            Some(&file),
            env(&[
                ("LEPHI__SERVER__BIND", "127.0.0.1:9100"),
                ("LEPHI__DATABASE__URL", "postgres://u:p@localhost/lephi"),
                ("LEPHI_CONFIG", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:9100");
        assert_eq!(
            s.server.public_url.as_deref(),
            Some("https://pay.example.vn")
        );
        assert_eq!(s.invoices.max_total, 5000);
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://u:p@localhost/lephi"
        );
    }

    #[test]
    fn bad_values_name_their_path() {
        let err = Settings::load_from(None, env(&[("LEPHI__SERVER__BIND", "nowhere")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.bind"), "{err}");
        let err = Settings::load_from(None, env(&[("LEPHI__INVOICES__MAX_TOTAL", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("invoices.max_total"), "{err}");
        let err = Settings::load_from(None, env(&[("LEPHI__DATABASE__URL", "mysql://x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url"), "{err}");
        let err = Settings::load_from(None, env(&[("LEPHI__SERVER__COLOUR", "blue")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn provider_secrets_must_be_set_and_long() {
        let vnpay = |secret: &str| {
            env(&[
                ("LEPHI__PROVIDERS__VNPAY__TMN_CODE", "LEPHI001"),
                ("LEPHI__PROVIDERS__VNPAY__HASH_SECRET", secret),
                (
                    "LEPHI__PROVIDERS__VNPAY__PAYMENT_URL",
                    "https://pay.example",
                ),
                ("LEPHI__PROVIDERS__VNPAY__API_URL", "https://api.example"),
            ])
        };
        let err = Settings::load_from(None, vnpay(""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.vnpay.hash_secret"), "{err}");
        let err = Settings::load_from(None, vnpay("short"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 16"), "{err}");
        let s = Settings::load_from(None, vnpay("VNPAYTESTSECRETKEY0123456789ABCD")).unwrap();
        assert!(s.providers.vnpay.is_some());
        assert!(!format!("{s:?}").contains("VNPAYTESTSECRET"));
        let err = Settings::load_from(None, env(&[("LEPHI__PROVIDERS__CASSO__CHECKSUM_KEY", " ")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.casso.checksum_key"), "{err}");
    }

    #[test]
    fn janitor_settings_are_checked() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert!(s.janitor.enabled);
        assert_eq!(s.janitor.first_check_after_secs, 600);
        assert_eq!(s.janitor.give_up_after_hours, 24);
        for (key, value, path) in [
            (
                "LEPHI__JANITOR__INTERVAL_SECS",
                "0",
                "janitor.interval_secs",
            ),
            ("LEPHI__JANITOR__BATCH", "0", "janitor.batch"),
            ("LEPHI__JANITOR__BATCH", "5000", "janitor.batch"),
            (
                "LEPHI__JANITOR__FIRST_CHECK_AFTER_SECS",
                "0",
                "janitor.first_check_after_secs",
            ),
            (
                "LEPHI__JANITOR__GIVE_UP_AFTER_HOURS",
                "0",
                "janitor.give_up_after_hours",
            ),
            ("LEPHI__JANITOR__ENABLED", "maybe", "janitor.enabled"),
        ] {
            let err = Settings::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(path), "{key}={value}: {err}");
        }
        let s = Settings::load_from(None, env(&[("LEPHI__JANITOR__ENABLED", "false")])).unwrap();
        assert!(!s.janitor.enabled);
    }

    #[test]
    fn the_sandbox_is_on_only_without_real_credentials() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert!(s.sandbox_enabled());
        assert!(s.check_sandbox().is_ok());
        let casso = (
            "LEPHI__PROVIDERS__CASSO__CHECKSUM_KEY",
            "casso-checksum-key-0123456789",
        );
        let s = Settings::load_from(None, env(&[casso])).unwrap();
        assert!(!s.sandbox_enabled());
        assert!(s.check_sandbox().is_ok());
        let s =
            Settings::load_from(None, env(&[casso, ("LEPHI__SANDBOX__ENABLED", "true")])).unwrap();
        let err = s.check_sandbox().unwrap_err().to_string();
        assert!(err.contains("sandbox.enabled"), "{err}");
        let s = Settings::load_from(None, env(&[("LEPHI__SANDBOX__ENABLED", "false")])).unwrap();
        assert!(!s.sandbox_enabled());
    }

    #[test]
    fn the_sandbox_is_on_by_default_only_on_this_machine() {
        for (url, alone) in [
            ("http://127.0.0.1:8080", true),
            ("http://localhost:8080/", true),
            ("http://[::1]:8080", true),
            ("https://thanhtoan.example.gov.vn", false),
            ("http://203.0.113.7:8080", false),
        ] {
            let s = Settings::load_from(None, env(&[("LEPHI__SERVER__PUBLIC_URL", url)])).unwrap();
            assert_eq!(s.serves_this_machine_only(), alone, "{url}");
            assert_eq!(s.sandbox_enabled(), alone, "{url}");
        }
        let s = Settings::load_from(None, env(&[("LEPHI__SERVER__BIND", "0.0.0.0:8080")])).unwrap();
        assert!(!s.sandbox_enabled());
        // A container's usual set-up: every address bound, a loopback URL.
        let s = Settings::load_from(
            None,
            env(&[
                ("LEPHI__SERVER__BIND", "0.0.0.0:8080"),
                ("LEPHI__SERVER__PUBLIC_URL", "http://127.0.0.1:8080"),
            ]),
        )
        .unwrap();
        assert!(!s.serves_this_machine_only());
        assert!(!s.sandbox_enabled());
        // Asked for by name, it serves anywhere (a public demo).
        let s = Settings::load_from(
            None,
            env(&[
                ("LEPHI__SERVER__PUBLIC_URL", "https://demo.example.vn"),
                ("LEPHI__SANDBOX__ENABLED", "true"),
            ]),
        )
        .unwrap();
        assert!(s.sandbox_enabled());
    }

    #[test]
    fn receipts_have_defaults_and_agencies_their_own_forms() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        let policy = s.receipt_policy().unwrap();
        assert_eq!(policy.default.form_number.as_str(), "01BLP0-001");
        assert_eq!(policy.default.symbol_letters.symbol(2026), "LP26");
        assert_eq!(s.checkout.requests_per_minute, 60);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lephi.toml");
        std::fs::write(
            &file,
            "[receipts]\nsymbol_letters = \"BL\"\n[receipts.agencies.\"H26.01\"]\nform_number = \"02BLP0-002\"\n",
        )
        .unwrap();
        let s = Settings::load_from(Some(&file), env(&[])).unwrap();
        let policy = s.receipt_policy().unwrap();
        let own = policy.form_for(&AgencyCode::from_stored("H26.01".into()));
        assert_eq!(own.form_number.as_str(), "02BLP0-002");
        assert_eq!(own.symbol_letters.symbol(2026), "BL26");
        let other = policy.form_for(&AgencyCode::from_stored("H26".into()));
        assert_eq!(other.form_number.as_str(), "01BLP0-001");
    }

    #[test]
    fn bad_receipt_settings_name_their_path() {
        let err = Settings::load_from(None, env(&[("LEPHI__RECEIPTS__SYMBOL_LETTERS", "lp")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("receipts.symbol_letters"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lephi.toml");
        std::fs::write(
            &file,
            "[receipts.agencies.\"H26.01\"]\nform_number = \"mẫu 1\"\n",
        )
        .unwrap();
        let err = Settings::load_from(Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("receipts.agencies.H26.01.form_number"),
            "{err}"
        );
        let err = Settings::load_from(None, env(&[("LEPHI__CHECKOUT__REQUESTS_PER_MINUTE", "0")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkout.requests_per_minute"), "{err}");
    }

    #[test]
    fn console_settings_have_defaults_and_are_checked() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.console.idle_minutes, 30);
        assert_eq!(s.console.sign_in_attempts_per_minute, 10);
        for (key, value) in [
            ("LEPHI__CONSOLE__IDLE_MINUTES", "0"),
            ("LEPHI__CONSOLE__IDLE_MINUTES", "1441"),
            ("LEPHI__CONSOLE__SIGN_IN_ATTEMPTS_PER_MINUTE", "0"),
        ] {
            let err = Settings::load_from(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("console."), "{err}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::load_from(
            None,
            env(&[("LEPHI__DATABASE__URL", "postgres://u:hunter2@db/lephi")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
