//! Logs (JSON, one request id on every line of a request) and metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{LogFormat, LogSettings};
use crate::startup::AppState;
use crate::store::{OperationsFigures, PoolUsage, Store};

/// Installs the global log subscriber. Calling it twice is harmless: the
/// second call keeps the first subscriber.
pub fn init_logging<W>(settings: &LogSettings, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The service's metrics, in a registry of its own so that two apps in one
/// process (as in tests) count apart.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub invoices_created: IntCounter,
    /// Verified callbacks by provider and what lephi made of them.
    pub callbacks: IntCounterVec,
    /// Callbacks refused (bad signature, malformed) by provider and reason.
    pub callbacks_refused: IntCounterVec,
    /// Webhook deliveries by outcome.
    pub webhook_deliveries: IntCounterVec,
    /// The janitor's status queries of pending attempts, by channel and
    /// what came of them.
    pub janitor_checks: IntCounterVec,
    /// What the operations team watches, set at each scrape.
    operations: OperationsGauges,
}

/// The gauges of [`OperationsFigures`] and the pool, for the alert rules
/// in `deploy/prometheus/lephi-alerts.yml`.
struct OperationsGauges {
    read_ok: IntGauge,
    pool: IntGaugeVec,
    pool_max: IntGauge,
    dead_letters: IntGauge,
    events_overdue: IntGauge,
    checks_overdue: IntGaugeVec,
    imports: IntGaugeVec,
    imports_oldest: IntGaugeVec,
    receipt_last: IntGaugeVec,
    receipt_max: IntGauge,
}

impl OperationsGauges {
    fn new(registry: &Registry) -> Result<OperationsGauges, prometheus::Error> {
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let gauges =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
                let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(g.clone()))?;
                Ok(g)
            };
        Ok(OperationsGauges {
            read_ok: gauge(
                "lephi_operations_read_ok",
                "1 when the last scrape could read the operations figures from the database",
            )?,
            pool: gauges(
                "lephi_db_pool_connections",
                "Database pool connections by state (open, idle)",
                &["state"],
            )?,
            pool_max: gauge(
                "lephi_db_pool_max_connections",
                "The most connections the pool opens",
            )?,
            dead_letters: gauge(
                "lephi_webhook_dead_letters",
                "Webhook events that gave up, waiting for an officer to redeliver them",
            )?,
            events_overdue: gauge(
                "lephi_webhook_events_overdue",
                "Webhook events due for delivery more than a minute ago",
            )?,
            checks_overdue: gauges(
                "lephi_janitor_checks_overdue",
                "Gateway attempts and refunds whose status check is overdue, by kind",
                &["kind"],
            )?,
            imports: gauges(
                "lephi_import_jobs",
                "Imports not finished, by kind and status",
                &["kind", "status"],
            )?,
            imports_oldest: gauges(
                "lephi_import_oldest_unfinished_seconds",
                "How long ago the oldest unfinished import of a kind was uploaded",
                &["kind"],
            )?,
            receipt_last: gauges(
                "lephi_receipt_series_last_number",
                "The last receipt number given this year, for the fullest series",
                &["agency", "year"],
            )?,
            receipt_max: gauge(
                "lephi_receipt_series_max_number",
                "The largest receipt number a series can give",
            )?,
        })
    }
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route", "method"],
        )?;
        let invoices_created = IntCounter::new("lephi_invoices_created_total", "Invoices issued")?;
        let callbacks = IntCounterVec::new(
            Opts::new(
                "lephi_callbacks_total",
                "Verified provider callbacks by provider and verdict",
            ),
            &["provider", "verdict"],
        )?;
        let callbacks_refused = IntCounterVec::new(
            Opts::new(
                "lephi_callbacks_refused_total",
                "Provider callbacks refused by provider and reason",
            ),
            &["provider", "reason"],
        )?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "lephi_webhook_deliveries_total",
                "Webhook deliveries to dossier systems by outcome",
            ),
            &["outcome"],
        )?;
        let janitor_checks = IntCounterVec::new(
            Opts::new(
                "lephi_janitor_checks_total",
                "The janitor's status queries of pending attempts by channel and outcome",
            ),
            &["channel", "outcome"],
        )?;
        registry.register(Box::new(janitor_checks.clone()))?;
        registry.register(Box::new(callbacks.clone()))?;
        registry.register(Box::new(callbacks_refused.clone()))?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(invoices_created.clone()))?;
        let operations = OperationsGauges::new(&registry)?;
        operations
            .receipt_max
            .set(crate::domain::receipt::MAX_RECEIPT_NUMBER);
        Ok(Metrics {
            registry,
            requests,
            latency,
            invoices_created,
            callbacks,
            callbacks_refused,
            webhook_deliveries,
            janitor_checks,
            operations,
        })
    }

    /// Sets the operations gauges from `figures` (none when they could not
    /// be read) and the pool's `usage`.
    pub fn observe_operations(&self, figures: Option<&OperationsFigures>, usage: PoolUsage) {
        let g = &self.operations;
        g.pool
            .with_label_values(&["open"])
            .set(i64::from(usage.open));
        g.pool
            .with_label_values(&["idle"])
            .set(i64::from(usage.idle));
        g.pool_max.set(i64::from(usage.max));
        let Some(figures) = figures else {
            g.read_ok.set(0);
            return;
        };
        g.read_ok.set(1);
        g.dead_letters.set(figures.dead_letters);
        g.events_overdue.set(figures.events_overdue);
        g.checks_overdue
            .with_label_values(&["attempt"])
            .set(figures.attempt_checks_overdue);
        g.checks_overdue
            .with_label_values(&["refund"])
            .set(figures.refund_checks_overdue);
        for import in &figures.imports {
            g.imports
                .with_label_values(&[import.kind, "queued"])
                .set(import.queued);
            g.imports
                .with_label_values(&[import.kind, "running"])
                .set(import.running);
            g.imports_oldest
                .with_label_values(&[import.kind])
                .set(import.oldest_secs);
        }
        // Only the fullest series now: one that fell out of them goes.
        g.receipt_last.reset();
        for (agency, year, last) in &figures.receipt_series {
            g.receipt_last
                .with_label_values(&[agency.as_str(), &year.to_string()])
                .set(*last);
        }
    }

    /// Counts, on SQLite, the writers' committed batches of `store` (see
    /// [`crate::store::BatchStats`]); nothing on PostgreSQL.
    pub fn watch_writes(&self, store: &Store) -> Result<(), prometheus::Error> {
        if store.write_batches().is_none() {
            return Ok(());
        }
        self.registry.register(Box::new(WriteBatches {
            store: store.clone(),
            batches: IntCounter::new(
                "lephi_sqlite_write_batches_total",
                "SQLite write batches committed, each in one commit",
            )?,
            writes: IntCounter::new(
                "lephi_sqlite_batched_writes_total",
                "Writes (each a savepoint, kept or undone) in the committed SQLite write batches",
            )?,
            log_pages: IntCounter::new(
                "lephi_sqlite_log_pages_total",
                "Pages the SQLite write batches' commits wrote to the write-ahead log",
            )?,
            commit_seconds: Counter::new(
                "lephi_sqlite_commit_seconds_total",
                "Time the SQLite write batches' commits took, writing the log and flushing it",
            )?,
            checkpoints: IntCounter::new(
                "lephi_sqlite_checkpoints_total",
                "Checkpoints of the SQLite write-ahead log by the checkpointer's thread",
            )?,
            checkpoints_at_bound: IntCounter::new(
                "lephi_sqlite_checkpoints_at_bound_total",
                "Checkpoints a commit ran itself, the write-ahead log having reached its bound",
            )?,
            scraping: std::sync::Mutex::new(()),
        }))
    }

    /// The registry's metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(err) = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %err, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The SQLite writers' committed batches, read from the store when the
/// metrics are gathered.
struct WriteBatches {
    store: Store,
    batches: IntCounter,
    writes: IntCounter,
    log_pages: IntCounter,
    commit_seconds: Counter,
    checkpoints: IntCounter,
    checkpoints_at_bound: IntCounter,
    /// Two gatherings at once set the counters one after the other.
    scraping: std::sync::Mutex<()>,
}

impl Collector for WriteBatches {
    fn desc(&self) -> Vec<&Desc> {
        [
            self.batches.desc(),
            self.writes.desc(),
            self.log_pages.desc(),
            self.commit_seconds.desc(),
            self.checkpoints.desc(),
            self.checkpoints_at_bound.desc(),
        ]
        .concat()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Read under the lock, so that a later gathering never shows an
        // earlier count.
        let _scraping = self
            .scraping
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(stats) = self.store.write_batches() else {
            return Vec::new();
        };
        for (counter, value) in [
            (&self.batches, stats.batches),
            (&self.writes, stats.writes),
            (&self.log_pages, stats.log_pages),
            (&self.checkpoints, stats.checkpoints),
            (&self.checkpoints_at_bound, stats.checkpoints_at_bound),
        ] {
            counter.reset();
            counter.inc_by(value);
        }
        self.commit_seconds.reset();
        self.commit_seconds.inc_by(stats.commit_seconds);
        [
            self.batches.collect(),
            self.writes.collect(),
            self.log_pages.collect(),
            self.commit_seconds.collect(),
            self.checkpoints.collect(),
            self.checkpoints_at_bound.collect(),
        ]
        .concat()
    }
}

/// Counts and times each request, logs one line per request, and returns
/// the request id to the client.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let mut res = next.call(req).await?;
    let status = res.status();
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .requests
            .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
            .inc();
        state
            .metrics
            .latency
            .with_label_values(&[route.as_str(), method.as_str()])
            .observe(elapsed.as_secs_f64());
    }
    if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), id);
    }
    tracing::info!(
        status = status.as_u16(),
        route = %route,
        method = %method,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request handled"
    );
    Ok(res)
}

/// The span of each request, on every line it logs: the method, the route
/// as declared (`/pay/{code}`) and the request id, never the path or query
/// as sent. A payment code is the citizen pages' only credential and a
/// console search may name a payer's phone: neither reaches the log.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.to_string())
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
            request_id = %request_id,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
