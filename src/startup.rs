//! Wires the application: connects and migrates the store, binds the
//! listener (port 0 picks a free one, as tests do) and builds the app.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tracing_actix_web::TracingLogger;

use crate::config::Settings;
use crate::domain::invoice::InvoiceLimits;
use crate::domain::webhook::UrlPolicy;
use crate::imports::Importer;
use crate::janitor::Janitor;
use crate::providers::Providers;
use crate::reconcile::Profiles;
use crate::routes;
use crate::routes::RateLimiter;
use crate::sandbox::{self, Sandbox};
use crate::store::Store;
use crate::telemetry::{self, Metrics};

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub settings: Settings,
    /// Where citizens and providers reach lephi, without a trailing slash.
    pub public_url: String,
    pub metrics: Arc<Metrics>,
    pub invoice_limits: InvoiceLimits,
    pub providers: Providers,
    /// What agencies' webhook URLs may name.
    pub webhook_policy: UrlPolicy,
    /// The statement profiles, shipped and configured.
    pub profiles: Profiles,
    /// Queues statement imports and runs their jobs.
    pub importer: Importer,
    /// The built-in sandbox providers, when `sandbox.enabled`.
    pub sandbox: Option<Sandbox>,
    /// How often one client may open the citizens' pages under `/pay/`.
    pub pay_limiter: RateLimiter,
    /// How often one client may try to sign in to the finance console.
    pub console_limiter: RateLimiter,
    /// The reverse proxies whose word on the client's address is taken.
    pub trusted_proxies: crate::client_addr::TrustedProxies,
}

impl AppState {
    /// The refunds' use-cases, as the API and the console call them.
    pub fn refunds(&self) -> crate::usecases::refunds::Refunds<'_> {
        crate::usecases::refunds::Refunds {
            store: &self.store,
            providers: &self.providers,
            settings: &self.settings.refunds,
        }
    }
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    store: Store,
    settings: Settings,
    metrics: Arc<Metrics>,
    webhook_policy: UrlPolicy,
    /// Off when `janitor.enabled` is false.
    janitor: Option<Janitor>,
    importer: Importer,
    signals: Option<Signals>,
}

/// SIGTERM and SIGINT, listened for from the moment they are made.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Application {
    /// Connects to the configured database, migrates it, and binds.
    /// Refuses the sandbox beside real provider credentials.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        settings.check_sandbox()?;
        let store = Store::connect(&settings.database).await?;
        store.migrate().await?;
        Self::build_with_store(settings, store)
    }

    /// Binds and builds the app on a store that is already migrated.
    pub fn build_with_store(settings: Settings, store: Store) -> anyhow::Result<Application> {
        settings.check_sandbox()?;
        let store = store
            .with_receipts(settings.receipt_policy()?)
            .with_unattributed_agency(settings.providers.unattributed_agency.as_deref());
        let listener = TcpListener::bind(settings.server.bind)?;
        let address = listener.local_addr()?;
        let metrics = Arc::new(Metrics::new()?);
        metrics.watch_writes(&store)?;
        let webhook_policy = settings.webhook_policy();
        let public_url = settings.public_url(address);
        // With the sandbox on, lephi's own providers talk to the sandbox at
        // lephi's own address, through their normal code.
        let (provider_settings, sandbox) = if settings.sandbox_enabled() {
            tracing::warn!(
                %public_url,
                "the sandbox providers are on: payments are simulated with public secrets; \
                 configure real providers or set sandbox.enabled = false in production"
            );
            (
                sandbox::provider_settings(&public_url, settings.providers.timeout_secs),
                Some(Sandbox::new(&public_url, settings.providers.timeout_secs)?),
            )
        } else {
            (settings.providers.clone(), None)
        };
        let profiles = Profiles::new(&settings.reconciliation.profiles).map_err(|message| {
            anyhow::anyhow!("configuration: reconciliation.profiles: {message}")
        })?;
        let importer = Importer::new(store.clone(), &settings.reconciliation, profiles.clone());
        let state = web::Data::new(AppState {
            store: store.clone(),
            public_url,
            metrics: metrics.clone(),
            invoice_limits: settings.invoice_limits(),
            providers: Providers::from_settings(&provider_settings)?,
            sandbox,
            webhook_policy: webhook_policy.clone(),
            profiles,
            importer: importer.clone(),
            pay_limiter: RateLimiter::per_minute(settings.checkout.requests_per_minute),
            console_limiter: RateLimiter::per_minute(settings.console.sign_in_attempts_per_minute),
            trusted_proxies: settings.trusted_proxies().map_err(|message| {
                anyhow::anyhow!("configuration: server.trusted_proxies: {message}")
            })?,
            settings: settings.clone(),
        });
        // Browsers that reached lephi over https keep to it.
        let https = state.public_url.starts_with("https://");
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::Condition::new(
                    https,
                    actix_web::middleware::DefaultHeaders::new().add((
                        actix_web::http::header::STRICT_TRANSPORT_SECURITY,
                        "max-age=31536000",
                    )),
                ))
                .app_data(state.clone())
                .app_data(routes::query_config())
                .configure(crate::http::configure)
                .default_service(web::to(routes::route_not_found))
                .wrap(from_fn(crate::client_addr::resolve))
                .wrap(from_fn(telemetry::observe))
                .wrap(TracingLogger::<telemetry::RequestSpan>::new())
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .disable_signals()
        .listen(listener)?;
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let janitor = if settings.janitor.enabled {
            Some(Janitor::new(
                store.clone(),
                &settings,
                &provider_settings,
                metrics.clone(),
            )?)
        } else {
            None
        };
        Ok(Application {
            address,
            server: server.run(),
            store,
            settings,
            metrics,
            webhook_policy,
            janitor,
            importer,
            signals: None,
        })
    }

    /// Stops gracefully on SIGTERM or SIGINT: in-flight requests finish.
    /// The handlers are in place when this returns, so a signal sent after
    /// it can never kill the process outright.
    pub fn stop_on_signals(&mut self) -> std::io::Result<()> {
        self.signals = Some(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        });
        Ok(())
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Serves until the server stops, with the background tasks beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Some(mut signals) = self.signals {
            let handle = self.server.handle();
            tokio::spawn(async move {
                tokio::select! {
                    _ = signals.terminate.recv() => {}
                    _ = signals.interrupt.recv() => {}
                }
                tracing::info!("stopping: finishing requests in flight");
                handle.stop(true).await;
            });
        }
        let (stop, stopped) = watch::channel(false);
        let expiry = tokio::spawn(crate::jobs::expire_invoices(
            self.store.clone(),
            Duration::from_secs(self.settings.invoices.expiry_interval_secs),
            stopped,
        ));
        let retention = self.settings.privacy.retention_days.map(|days| {
            tokio::spawn(crate::jobs::erase_personal_data(
                self.store.clone(),
                time::Duration::days(i64::from(days)),
                Duration::from_secs(self.settings.privacy.interval_secs),
                stop.subscribe(),
            ))
        });
        let dispatcher = tokio::spawn(crate::notify::run(
            self.store.clone(),
            self.settings.webhooks.clone(),
            self.webhook_policy,
            self.metrics,
            stop.subscribe(),
        ));
        let janitor = self
            .janitor
            .map(|janitor| tokio::spawn(janitor.run(stop.subscribe())));
        let importer = tokio::spawn(self.importer.run(stop.subscribe()));
        let served = self.server.await;
        let _ = stop.send(true);
        let _ = importer.await;
        let _ = expiry.await;
        let _ = dispatcher.await;
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        if let Some(janitor) = janitor {
            let _ = janitor.await;
        }
        self.store.close().await;
        served
    }
}
