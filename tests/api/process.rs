//! The real `lephi serve` binary as a child process, the dossier system's
//! webhook receiver, and a provider that sends signed callbacks until lephi
//! acknowledges them: what the crash and multi-process tests share.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::callbacks::{
    casso_body, casso_canonical, casso_signature, gateways_accept_on, momo_ipn, now_ms, sepay_raw,
    zalopay_data,
};
use crate::helpers::{BANK_ACCOUNT, creds, hmac_sha256_hex, invoice_body};
use crate::payments::{sepay_auth, vnpay_ipn};

/// The agency whose invoices are paid, and its parent.
pub const AGENCY: &str = "P.D1";

/// A running `lephi serve`.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// The admin key, printed by the first start on a database only.
    pub admin_key: Option<String>,
}

/// How every `lephi serve` of these tests is configured: every provider
/// with the test credentials (MoMo's and ZaloPay's APIs at `provider_api`),
/// webhooks to loopback retried quickly, no janitor and no sandbox.
fn settings_env(database_url: &str, bind: &str, provider_api: &str) -> Vec<(String, String)> {
    let pairs = [
        ("DATABASE__URL", database_url),
        ("DATABASE__MAX_CONNECTIONS", "8"),
        ("SERVER__BIND", bind),
        ("SERVER__WORKERS", "2"),
        ("SERVER__ALLOW_LOOPBACK_WEBHOOKS", "true"),
        ("LOG__LEVEL", "warn"),
        ("SANDBOX__ENABLED", "false"),
        ("JANITOR__ENABLED", "false"),
        ("PROVIDERS__TIMEOUT_SECS", "5"),
        ("PROVIDERS__VNPAY__TMN_CODE", creds::VNPAY_TMN),
        ("PROVIDERS__VNPAY__HASH_SECRET", creds::VNPAY_SECRET),
        (
            "PROVIDERS__VNPAY__PAYMENT_URL",
            "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html",
        ),
        ("PROVIDERS__VNPAY__API_URL", provider_api),
        ("PROVIDERS__MOMO__PARTNER_CODE", creds::MOMO_PARTNER),
        ("PROVIDERS__MOMO__ACCESS_KEY", creds::MOMO_ACCESS),
        ("PROVIDERS__MOMO__SECRET_KEY", creds::MOMO_SECRET),
        ("PROVIDERS__MOMO__ENDPOINT", provider_api),
        ("PROVIDERS__ZALOPAY__APP_ID", creds::ZALOPAY_APP),
        ("PROVIDERS__ZALOPAY__KEY1", creds::ZALOPAY_KEY1),
        ("PROVIDERS__ZALOPAY__KEY2", creds::ZALOPAY_KEY2),
        ("PROVIDERS__ZALOPAY__ENDPOINT", provider_api),
        ("PROVIDERS__SEPAY__API_KEY", creds::SEPAY_API_KEY),
        ("PROVIDERS__CASSO__CHECKSUM_KEY", creds::CASSO_KEY),
        ("WEBHOOKS__INITIAL_BACKOFF_MS", "100"),
        ("WEBHOOKS__MAX_BACKOFF_MS", "1000"),
        ("WEBHOOKS__POLL_INTERVAL_MS", "50"),
        ("WEBHOOKS__TIMEOUT_MS", "2000"),
    ];
    pairs
        .iter()
        .map(|(key, value)| (format!("LEPHI__{key}"), (*value).to_owned()))
        .collect()
}

/// Starts `lephi serve` on `bind` and waits until it serves; its log is
/// appended to `log`. Gives up (panics) if it stops before serving.
pub async fn serve(database_url: &str, bind: &str, provider_api: &str, log: &Path) -> Served {
    match try_serve(database_url, bind, provider_api, log).await {
        Ok(served) => served,
        Err(why) => panic!("{why}"),
    }
}

/// Starts `lephi serve` as [`serve`] does; says why if it stopped before
/// serving.
pub async fn try_serve(
    database_url: &str,
    bind: &str,
    provider_api: &str,
    log: &Path,
) -> Result<Served, String> {
    try_serve_with(database_url, bind, provider_api, log, &[]).await
}

/// [`try_serve`] with `extra` settings (`("JANITOR__ENABLED", "true")`)
/// over the tests' own.
pub async fn try_serve_with(
    database_url: &str,
    bind: &str,
    provider_api: &str,
    log: &Path,
    extra: &[(&str, &str)],
) -> Result<Served, String> {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lephi"))
        .arg("serve")
        .envs(settings_env(database_url, bind, provider_api))
        .envs(
            extra
                .iter()
                .map(|(key, value)| (format!("LEPHI__{key}"), (*value).to_owned())),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("lephi serve starts");
    let mut lines = BufReader::new(child.stdout.take().expect("a stdout pipe")).lines();
    let mut admin_key = None;
    while let Some(line) = lines.next_line().await.expect("lephi's stdout") {
        if let Some(key) = line.trim().strip_prefix("lp_") {
            admin_key = Some(format!("lp_{key}"));
        }
        if let Some(address) = line.strip_prefix("lephi is serving on ") {
            let address = address.trim().to_owned();
            // Keep reading, so that lephi never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(Served {
                child,
                address,
                admin_key,
            });
        }
    }
    let status = child.wait().await;
    let log = std::fs::read_to_string(log).unwrap_or_default();
    Err(format!(
        "lephi serve stopped before serving ({status:?}):\n{log}"
    ))
}

/// A free port below the kernel's ephemeral range, so that no outgoing
/// connection (of the tests or of lephi itself) can take it while the
/// server that listens on it is down.
pub fn port_outside_ephemeral_range() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let mut rng = rand::rng();
    for _ in 0..1_000 {
        let port = rng.random_range(10_000..low.max(10_001));
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below {low}");
}

impl Served {
    /// kill -9: no shutdown, no flush, transactions cut wherever they are.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL is sent");
        self.child
            .wait()
            .await
            .expect("the killed process is reaped");
    }
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub started: Instant,
    pub ended: Instant,
}

/// The dossier system's webhook endpoint: checks each delivery's signature
/// and records when each event id arrived, holding every delivery for
/// `hold` so that two deliveries of one event at once would overlap.
pub struct Receiver {
    pub url: String,
    state: web::Data<ReceiverState>,
    handle: actix_web::dev::ServerHandle,
}

struct ReceiverState {
    hold: Duration,
    /// The signing key, once the webhook is set.
    key: Mutex<Option<Vec<u8>>>,
    deliveries: Mutex<HashMap<String, Vec<Delivery>>>,
    /// Deliveries whose signature or body did not check out.
    bad: Mutex<Vec<String>>,
}

impl Receiver {
    pub async fn start(hold: Duration) -> Receiver {
        let state = web::Data::new(ReceiverState {
            hold,
            key: Mutex::new(None),
            deliveries: Mutex::new(HashMap::new()),
            bad: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/hooks/lephi", web::post().to(receive))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks/lephi"),
            state,
            handle,
        }
    }

    /// Takes the secret lephi showed when the webhook was set.
    pub fn set_secret(&self, secret: &str) {
        let encoded = secret.strip_prefix("whsec_").expect("a whsec_ secret");
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("a base64 secret");
        *self.state.key.lock().unwrap() = Some(key);
    }

    /// Every delivery so far, by event id.
    pub fn deliveries(&self) -> HashMap<String, Vec<Delivery>> {
        self.state.deliveries.lock().unwrap().clone()
    }

    /// Deliveries that were not signed right, or whose id was not the body's.
    pub fn bad(&self) -> Vec<String> {
        self.state.bad.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let started = Instant::now();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let timestamp = header("webhook-timestamp");
    let signatures = header("webhook-signature");
    let signed_right = state.key.lock().unwrap().as_ref().is_some_and(|key| {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&body);
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        signatures.split(' ').any(|given| given == expected)
    });
    let body_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b["id"].as_str().map(str::to_owned));
    if !signed_right || body_id.as_deref() != Some(id.as_str()) {
        state.bad.lock().unwrap().push(id.clone());
    }
    tokio::time::sleep(state.hold).await;
    let ended = Instant::now();
    state
        .deliveries
        .lock()
        .unwrap()
        .entry(id)
        .or_default()
        .push(Delivery { started, ended });
    HttpResponse::NoContent().finish()
}

/// A callback as a provider sends it, ready to be sent again and again.
#[derive(Debug, Clone)]
pub struct Callback {
    pub provider: &'static str,
    /// VNPay's IPN is a GET with this query; the others POST `body`.
    pub query: String,
    pub body: String,
    /// Casso signs each sending with its time: the canonical text it signs.
    pub casso_canonical: Option<String>,
}

/// What lephi answered, as the provider reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged: the provider stops sending.
    Acknowledged,
    /// Anything else (a refusal, "retry later", a 5xx): sent again.
    NotYet { status: u16 },
    /// No answer: the connection was refused or cut.
    Unanswered,
}

impl Callback {
    pub async fn send(&self, client: &reqwest::Client, address: &str) -> Outcome {
        let url = format!("{address}/callbacks/{}", self.provider);
        let request = match self.provider {
            "vnpay" => client.get(format!("{url}?{}", self.query)),
            "sepay" => client
                .post(url)
                .header("Authorization", sepay_auth())
                .body(self.body.clone()),
            "casso" => {
                let canonical = self.casso_canonical.as_deref().unwrap_or_default();
                client
                    .post(url)
                    .header(
                        "X-Casso-Signature",
                        casso_signature(now_ms(), canonical, creds::CASSO_KEY),
                    )
                    .body(self.body.clone())
            }
            _ => client.post(url).body(self.body.clone()),
        };
        let Ok(response) = request.send().await else {
            return Outcome::Unanswered;
        };
        let status = response.status().as_u16();
        let Ok(text) = response.text().await else {
            return Outcome::Unanswered;
        };
        let json: Value = serde_json::from_str(&text).unwrap_or_default();
        let acknowledged = match self.provider {
            "vnpay" => status == 200 && matches!(json["RspCode"].as_str(), Some("00" | "02")),
            "momo" => status == 204,
            "zalopay" => status == 200 && json["return_code"] == 1,
            _ => status == 200 && json["success"] == true,
        };
        if acknowledged {
            Outcome::Acknowledged
        } else {
            Outcome::NotYet { status }
        }
    }
}

/// How the callbacks fared, for the report.
#[derive(Debug, Default)]
pub struct Sent {
    /// Callbacks acknowledged (by every process they were sent to).
    pub acknowledged: usize,
    pub sendings: usize,
    pub no_answer: usize,
    /// Answers that were neither an acknowledgement nor no answer, by status.
    pub not_yet: HashMap<u16, usize>,
}

impl Sent {
    fn add(&mut self, other: Sent) {
        self.acknowledged += other.acknowledged;
        self.sendings += other.sendings;
        self.no_answer += other.no_answer;
        for (status, n) in other.not_yet {
            *self.not_yet.entry(status).or_default() += n;
        }
    }
}

/// Sends `callback` to `address` until it is acknowledged.
async fn until_acknowledged(client: &reqwest::Client, callback: &Callback, address: &str) -> Sent {
    let mut sent = Sent::default();
    loop {
        sent.sendings += 1;
        match callback.send(client, address).await {
            Outcome::Acknowledged => return sent,
            Outcome::Unanswered => sent.no_answer += 1,
            Outcome::NotYet { status } => *sent.not_yet.entry(status).or_default() += 1,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends every callback, `concurrency` at a time, each until acknowledged,
/// to every one of `addresses` at once (as a provider whose retries reach
/// two nodes would). `acked` counts acknowledged callbacks as they come.
pub async fn send_all(
    callbacks: Arc<Vec<Callback>>,
    addresses: Vec<String>,
    concurrency: usize,
    acked: Arc<AtomicUsize>,
) -> Sent {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (callbacks, next, acked, client, addresses) = (
            callbacks.clone(),
            next.clone(),
            acked.clone(),
            client.clone(),
            addresses.clone(),
        );
        workers.spawn(async move {
            let mut sent = Sent::default();
            while let Some(callback) = callbacks.get(next.fetch_add(1, Ordering::SeqCst)) {
                let each = futures_util::future::join_all(
                    addresses
                        .iter()
                        .map(|address| until_acknowledged(&client, callback, address)),
                )
                .await;
                for one in each {
                    sent.add(one);
                }
                sent.acknowledged += 1;
                acked.fetch_add(1, Ordering::SeqCst);
            }
            sent
        });
    }
    let mut total = Sent::default();
    while let Some(sent) = workers.join_next().await {
        total.add(sent.expect("a sender"));
    }
    total
}

/// A client of lephi's API over HTTP.
pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(address: &str) -> Api {
        Api {
            address: address.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends `body` with `method` to `path`; the status and JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
            .json(body);
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        let response = request.send().await.expect("lephi answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a readable answer");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// How many distinct payments of each kind a scene has.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub vnpay: usize,
    pub momo: usize,
    pub zalopay: usize,
    pub sepay: usize,
    pub casso: usize,
    /// SePay transfers for invoices that VNPay pays too: whichever comes
    /// second is held as an exception, never applied.
    pub paid_twice: usize,
    /// Callbacks sent again on top of the distinct ones.
    pub duplicates: usize,
}

impl Mix {
    pub fn invoices(&self) -> usize {
        self.vnpay + self.momo + self.zalopay + self.sepay + self.casso
    }

    pub fn callbacks(&self) -> usize {
        self.invoices() + self.paid_twice + self.duplicates
    }
}

/// Everything a test needs to send the callbacks and check the ledger.
pub struct Scene {
    /// Invoice ids, each of 650,000 đồng, each to be paid exactly once.
    pub invoices: Vec<String>,
    /// `(channel, provider transaction id)` of every distinct payment.
    pub payments: Vec<(String, String)>,
    /// The callbacks in the order they are sent, duplicates mixed in.
    pub callbacks: Vec<Callback>,
}

/// Agencies P and P.D1, P.D1's bank account and webhook (to `receiver`),
/// a key for P.D1's dossier system, the invoices (with attempts for the
/// gateways, whose create API `provider_api` accepts), and the callbacks.
pub async fn set_up(
    address: &str,
    admin_key: &str,
    provider_api: &wiremock::MockServer,
    receiver: &Receiver,
    mix: Mix,
) -> Scene {
    use reqwest::Method;
    let api = Api::new(address);
    gateways_accept_on(provider_api).await;
    for (code, level, parent) in [("P", "province", None), (AGENCY, "district", Some("P"))] {
        let body = json!({ "code": code, "name": format!("Agency {code}"), "level": level, "parent_code": parent });
        let (status, answer) = api
            .call(Method::POST, "/v1/agencies", admin_key, &body, None)
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let account = json!({ "bank_bin": "970436", "account_number": BANK_ACCOUNT, "account_name": "UBND HUYEN D1" });
    let path = format!("/v1/agencies/{AGENCY}/bank-account");
    let (status, answer) = api
        .call(Method::PUT, &path, admin_key, &account, None)
        .await;
    assert_eq!(status, 200, "{answer}");
    let path = format!("/v1/agencies/{AGENCY}/webhook");
    let (status, answer) = api
        .call(
            Method::PUT,
            &path,
            admin_key,
            &json!({ "url": receiver.url }),
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    receiver.set_secret(answer["secret"].as_str().expect("the webhook's secret"));
    let body = json!({ "role": "agency_system", "agency_code": AGENCY, "name": "Một cửa" });
    let (status, answer) = api
        .call(Method::POST, "/v1/keys", admin_key, &body, None)
        .await;
    assert_eq!(status, 201, "{answer}");
    let system_key = answer["key"].as_str().expect("a key").to_owned();

    // Which channel pays each invoice, in order.
    let channels: Vec<&'static str> = [
        ("vnpay", mix.vnpay),
        ("momo", mix.momo),
        ("zalopay", mix.zalopay),
        ("sepay", mix.sepay),
        ("casso", mix.casso),
    ]
    .iter()
    .flat_map(|(channel, n)| std::iter::repeat_n(*channel, *n))
    .collect();
    // Invoices (and attempts) are made a few at a time.
    let api = Arc::new(api);
    let system_key = Arc::new(system_key);
    let mut made = Vec::with_capacity(channels.len());
    for chunk in channels.chunks(16).enumerate() {
        let (chunk_no, chunk) = chunk;
        let mut tasks = tokio::task::JoinSet::new();
        for (k, channel) in chunk.iter().copied().enumerate() {
            let (api, key) = (api.clone(), system_key.clone());
            let n = chunk_no * 16 + k;
            tasks.spawn(async move {
                let dossier = format!("HS-{n:05}");
                let (status, invoice) = api
                    .call(
                        Method::POST,
                        "/v1/invoices",
                        &key,
                        &invoice_body(AGENCY, &dossier),
                        Some(&dossier),
                    )
                    .await;
                assert_eq!(status, 201, "{invoice}");
                let id = invoice["id"].as_str().unwrap().to_owned();
                let code = invoice["payment_code"].as_str().unwrap().to_owned();
                let order_ref = if matches!(channel, "vnpay" | "momo" | "zalopay") {
                    let (status, attempt) = api
                        .call(
                            Method::POST,
                            &format!("/v1/invoices/{id}/attempts"),
                            &key,
                            &json!({ "channel": channel }),
                            None,
                        )
                        .await;
                    assert_eq!(status, 201, "{attempt}");
                    attempt["order_ref"].as_str().unwrap().to_owned()
                } else {
                    String::new()
                };
                (n, channel, id, code, order_ref)
            });
        }
        while let Some(one) = tasks.join_next().await {
            made.push(one.expect("an invoice is made"));
        }
    }
    made.sort_by_key(|(n, ..)| *n);

    let mut payments = Vec::new();
    let mut callbacks = Vec::new();
    let mut vnpay_codes = Vec::new();
    for (n, channel, _, code, order_ref) in &made {
        let n = i64::try_from(*n).unwrap();
        let (channel_name, txn, callback) = match *channel {
            "vnpay" => {
                vnpay_codes.push(code.clone());
                let txn = (14_000_000 + n).to_string();
                let query = vnpay_ipn(order_ref, 650_000, &txn, "00");
                ("vnpay", txn, Callback::get("vnpay", query))
            }
            "momo" => {
                let trans_id = 4_088_000_000 + n;
                let (mut body, signed) = momo_ipn(order_ref, trans_id);
                body["signature"] = json!(hmac_sha256_hex(creds::MOMO_SECRET, &signed));
                (
                    "momo",
                    trans_id.to_string(),
                    Callback::post("momo", body.to_string()),
                )
            }
            "zalopay" => {
                let zp_trans_id = 261_128_000_000_000 + n;
                let data = zalopay_data(order_ref, zp_trans_id, now_ms());
                let body = json!({ "data": data, "mac": hmac_sha256_hex(creds::ZALOPAY_KEY2, &data), "type": 1 });
                (
                    "zalopay",
                    zp_trans_id.to_string(),
                    Callback::post("zalopay", body.to_string()),
                )
            }
            "sepay" => {
                let id = 900_000 + n;
                let body = sepay_raw(id, code);
                (
                    "bank_transfer",
                    format!("sepay-{id}"),
                    Callback::post("sepay", body),
                )
            }
            _ => {
                let id = 2_150_000 + n;
                let mut callback = Callback::post("casso", casso_body(id, code));
                callback.casso_canonical = Some(casso_canonical(id, code));
                ("bank_transfer", format!("casso-{id}"), callback)
            }
        };
        payments.push((channel_name.to_owned(), txn));
        callbacks.push(callback);
    }
    for (k, code) in vnpay_codes.iter().take(mix.paid_twice).enumerate() {
        let id = 800_000 + i64::try_from(k).unwrap();
        payments.push(("bank_transfer".to_owned(), format!("sepay-{id}")));
        callbacks.push(Callback::post("sepay", sepay_raw(id, code)));
    }
    let mut rng = rand::rng();
    let distinct = callbacks.len();
    for _ in 0..mix.duplicates {
        let again = callbacks[rng.random_range(0..distinct)].clone();
        callbacks.push(again);
    }
    callbacks.shuffle(&mut rng);
    Scene {
        invoices: made.into_iter().map(|(_, _, id, ..)| id).collect(),
        payments,
        callbacks,
    }
}

impl Callback {
    fn get(provider: &'static str, query: String) -> Callback {
        Callback {
            provider,
            query,
            body: String::new(),
            casso_canonical: None,
        }
    }

    fn post(provider: &'static str, body: String) -> Callback {
        Callback {
            provider,
            query: String::new(),
            body,
            casso_canonical: None,
        }
    }
}

/// What the ledger holds, as read straight from the database.
pub struct Ledger {
    /// Every outbox event id.
    pub events: Vec<String>,
    /// Events not yet delivered.
    pub undelivered: usize,
}

/// Reads the outbox.
pub async fn outbox(pool: &sqlx::AnyPool) -> Ledger {
    use sqlx::Row;
    let rows = sqlx::query("SELECT id, status FROM outbox_events")
        .fetch_all(pool)
        .await
        .expect("the outbox can be read");
    let mut events = Vec::with_capacity(rows.len());
    let mut undelivered = 0;
    for row in rows {
        events.push(row.get::<String, _>("id"));
        if row.get::<String, _>("status") != "delivered" {
            undelivered += 1;
        }
    }
    Ledger {
        events,
        undelivered,
    }
}

/// Waits until every event in the outbox is delivered; panics after
/// `patience` (a claim cut by a kill waits out its lease first).
pub async fn wait_for_outbox(pool: &sqlx::AnyPool, patience: Duration) -> Ledger {
    let deadline = Instant::now() + patience;
    loop {
        let ledger = outbox(pool).await;
        if ledger.undelivered == 0 {
            return ledger;
        }
        assert!(
            Instant::now() < deadline,
            "{} events still undelivered after {patience:?}",
            ledger.undelivered
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Checks the invariants over the whole ledger: exactly the scene's
/// payments, once each; every invoice paid once, by one applied payment;
/// one `payment.received` per payment and one `invoice.paid` per invoice.
pub async fn assert_ledger(pool: &sqlx::AnyPool, scene: &Scene) {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT id, channel, provider_txn_id, invoice_id, exception_kind FROM payments",
    )
    .fetch_all(pool)
    .await
    .expect("the payments can be read");
    let mut recorded: HashMap<(String, String), usize> = HashMap::new();
    let mut applied: HashMap<String, usize> = HashMap::new();
    let mut payment_ids = Vec::new();
    for row in &rows {
        let key = (
            row.get::<String, _>("channel"),
            row.get::<String, _>("provider_txn_id"),
        );
        *recorded.entry(key).or_default() += 1;
        payment_ids.push(row.get::<String, _>("id"));
        let invoice: Option<String> = row.get("invoice_id");
        if row.get::<Option<String>, _>("exception_kind").is_none() {
            *applied
                .entry(invoice.expect("an applied payment has its invoice"))
                .or_default() += 1;
        }
    }
    let lost: Vec<_> = scene
        .payments
        .iter()
        .filter(|p| !recorded.contains_key(*p))
        .collect();
    assert!(
        lost.is_empty(),
        "{} payments lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let twice: Vec<_> = recorded.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "payments recorded twice: {twice:?}");
    assert_eq!(
        rows.len(),
        scene.payments.len(),
        "payments nobody sent were recorded"
    );
    // The second payment of an invoice paid twice is held for an officer.
    let held = rows.len() - applied.values().sum::<usize>();
    let exceptions: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT payment_id) FROM payment_exceptions WHERE payment_id IS NOT NULL",
    )
    .fetch_one(pool)
    .await
    .expect("the exceptions can be counted");
    assert_eq!(
        usize::try_from(exceptions).unwrap(),
        held,
        "each held payment is an exception"
    );

    let invoices = sqlx::query("SELECT id, status, amount_paid, total FROM invoices")
        .fetch_all(pool)
        .await
        .expect("the invoices can be read");
    assert_eq!(invoices.len(), scene.invoices.len());
    for invoice in &invoices {
        let id: String = invoice.get("id");
        let status: String = invoice.get("status");
        let (paid, total): (i64, i64) = (invoice.get("amount_paid"), invoice.get("total"));
        assert_eq!((status.as_str(), paid), ("paid", total), "invoice {id}");
        assert_eq!(
            applied.get(&id),
            Some(&1),
            "invoice {id} is paid by one payment"
        );
    }

    let events = sqlx::query("SELECT type, payload FROM outbox_events")
        .fetch_all(pool)
        .await
        .expect("the outbox can be read");
    let mut received: HashMap<String, usize> = HashMap::new();
    let mut paid: HashMap<String, usize> = HashMap::new();
    for event in &events {
        let payload: Value = serde_json::from_str(&event.get::<String, _>("payload")).unwrap();
        match event.get::<String, _>("type").as_str() {
            "payment.received" => {
                *received
                    .entry(payload["data"]["payment_id"].as_str().unwrap().to_owned())
                    .or_default() += 1
            }
            "invoice.paid" => {
                *paid
                    .entry(payload["data"]["invoice_id"].as_str().unwrap().to_owned())
                    .or_default() += 1
            }
            _ => {}
        }
    }
    assert_eq!(
        received.len(),
        payment_ids.len(),
        "one payment.received per payment"
    );
    assert!(payment_ids.iter().all(|id| received.get(id) == Some(&1)));
    assert_eq!(
        paid.len(),
        scene.invoices.len(),
        "one invoice.paid per invoice"
    );
    assert!(paid.values().all(|n| *n == 1));
}

/// Every event in `ledger` reached the receiver, signed, under its own id.
pub fn assert_every_event_delivered(receiver: &Receiver, ledger: &Ledger) -> usize {
    let deliveries = receiver.deliveries();
    let missing: Vec<_> = ledger
        .events
        .iter()
        .filter(|id| !deliveries.contains_key(*id))
        .collect();
    assert!(missing.is_empty(), "events never delivered: {missing:?}");
    assert!(
        receiver.bad().is_empty(),
        "badly signed deliveries: {:?}",
        receiver.bad()
    );
    let known: std::collections::HashSet<&String> = ledger.events.iter().collect();
    let unknown: Vec<_> = deliveries.keys().filter(|id| !known.contains(id)).collect();
    assert!(
        unknown.is_empty(),
        "deliveries of events not in the outbox: {unknown:?}"
    );
    // Deliveries beyond the first: a kill between sending and marking.
    deliveries.values().map(|d| d.len() - 1).sum()
}
