//! Starts the real app on port 0 with a fresh database, and talks to it.

use std::sync::Once;

use lephi::config::{LogFormat, Settings};
use lephi::domain::audit::Actor;
use lephi::domain::{Role, Scope};
use lephi::startup::Application;
use lephi::store::{NewApiKey, Store};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::postgres_server;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named test once per backend: `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )+
        }
    };
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub database_url: String,
    /// A global admin key.
    pub admin_key: String,
    _dir: tempfile::TempDir,
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Where a statement import stands: `done`, `refused`, ..., or
    /// `http <status>` for an answer that is not an import.
    pub fn import_status(&self) -> String {
        match serde_json::from_str::<Value>(&self.text) {
            Ok(body) if body["status"].is_string() && body["sha256"].is_string() => {
                body["status"].as_str().unwrap().to_owned()
            }
            _ => format!("http {}", self.status),
        }
    }

    /// The stable error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let settings = lephi::config::LogSettings {
                level: "debug".into(),
                format: LogFormat::Pretty,
            };
            lephi::telemetry::init_logging(&settings, std::io::stdout);
        }
    });
}

pub async fn database_url(backend: Backend, dir: &std::path::Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}/lephi.db", dir.display()),
        Backend::Postgres => postgres_server::fresh_database_url().await,
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the app with settings changed by `adjust`.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    init_logging();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let database_url = database_url(backend, dir.path()).await;
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.workers = 1;
    settings.database.url = SecretString::from(database_url.clone());
    settings.database.max_connections = 4;
    settings.reconciliation.upload_dir = dir.path().join("uploads");
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://{}", app.address());
    let store = Store::connect(&lephi::config::DatabaseSettings {
        url: SecretString::from(database_url.clone()),
        max_connections: 2,
        ..Default::default()
    })
    .await
    .expect("a second connection to the test database");
    tokio::spawn(app.run_until_stopped());
    let admin_key = create_key(&store, Role::Admin, None).await;
    TestApp {
        address,
        client: reqwest::Client::new(),
        store,
        database_url,
        admin_key,
        _dir: dir,
    }
}

/// Creates a key directly in the store, as `lephi keys create` does.
pub async fn create_key(store: &Store, role: Role, agency: Option<&str>) -> String {
    let name = match role {
        Role::AgencySystem => "Hệ thống một cửa",
        Role::Finance => "Phần mềm kế toán",
        Role::Admin => "Quản trị hệ thống",
    };
    let (new, secret) =
        NewApiKey::generate(role.as_str(), agency, Some(name)).expect("a valid key");
    store
        .create_api_key(&Actor::system("test"), &Scope::All, &new)
        .await
        .expect("the key is stored");
    secret.expose().to_owned()
}

async fn send(mut request: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Response {
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the app answers");
    Response {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("a readable body"),
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request, headers).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Response {
        self.request(reqwest::Method::GET, path, Some(key), None, &[])
            .await
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, Some(key), Some(body), &[])
            .await
    }

    /// Sends raw bytes with the given content type.
    pub async fn post_raw(
        &self,
        path: &str,
        key: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Response {
        let request = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(key)
            .body(body);
        send(request, headers).await
    }

    /// Sends a statement to `path` (`/v1/settlements?...`) as `key` and
    /// follows its import to the end: the import's last view (`done` or
    /// `refused`), the first import's view for a file sent before, or the
    /// answer that refused the upload itself.
    /// The upload folder the app was given (unless a test gave another).
    pub fn upload_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("uploads")
    }

    pub async fn import_statement(&self, path: &str, key: &str, body: Vec<u8>) -> Response {
        let queued = self
            .post_raw(path, key, body, &[("Content-Type", "text/csv")])
            .await;
        if queued.status != 202 {
            return queued;
        }
        let id = queued.json()["id"].as_str().unwrap().to_owned();
        self.finished_import(&id, key).await
    }

    /// Uploads a dossier register and, once queued, waits for its import
    /// to end: answers the import's final view (or the refused upload).
    pub async fn import_register(&self, key: &str, body: Vec<u8>) -> Response {
        let queued = self
            .post_raw(
                "/v1/dossiers/import",
                key,
                body,
                &[("Content-Type", "text/csv")],
            )
            .await;
        if queued.status != 202 {
            return queued;
        }
        let id = queued.json()["id"].as_str().unwrap().to_owned();
        self.finished_job(&format!("/v1/dossiers/imports/{id}"), key)
            .await
    }

    /// Waits for import `id` to be done or refused, and answers its view.
    pub async fn finished_import(&self, id: &str, key: &str) -> Response {
        self.finished_job(&format!("/v1/settlements/{id}"), key)
            .await
    }

    /// Waits for the import job at `path` to be done or refused.
    pub async fn finished_job(&self, path: &str, key: &str) -> Response {
        let id = path;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let view = self.get(path, key).await;
            assert_eq!(view.status, 200, "{}", view.text);
            if matches!(view.import_status().as_str(), "done" | "refused") {
                return view;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "import {id} never ended: {}",
                view.text
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn create_agency(&self, code: &str, level: &str, parent: Option<&str>) -> Response {
        let body = json!({ "code": code, "name": format!("Cơ quan {code}"), "level": level, "parent_code": parent });
        self.post("/v1/agencies", &self.admin_key, &body).await
    }

    /// A province P, its district P.D1 with commune P.D1.C1, district P.D2,
    /// and another province Q.
    pub async fn seed_agencies(&self) {
        for (code, level, parent) in [
            ("P", "province", None),
            ("P.D1", "district", Some("P")),
            ("P.D1.C1", "commune", Some("P.D1")),
            ("P.D2", "district", Some("P")),
            ("Q", "province", None),
        ] {
            let response = self.create_agency(code, level, parent).await;
            assert_eq!(response.status, 201, "{}", response.text);
        }
    }

    pub async fn key(&self, role: Role, agency: &str) -> String {
        create_key(&self.store, role, Some(agency)).await
    }

    pub async fn create_invoice(&self, key: &str, idempotency_key: &str, body: &Value) -> Response {
        self.request(
            reqwest::Method::POST,
            "/v1/invoices",
            Some(key),
            Some(body),
            &[("Idempotency-Key", idempotency_key)],
        )
        .await
    }

    /// How many rows `table` holds, read straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        let pool = self.raw_pool().await;
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&pool)
                .await
                .expect("the table can be counted");
        pool.close().await;
        n
    }

    /// A plain connection pool to the test database, bypassing lephi.
    pub async fn raw_pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url)
            .await
            .expect("the test database accepts connections")
    }
}

/// A valid invoice request for `agency` and `dossier`.
pub fn invoice_body(agency: &str, dossier: &str) -> Value {
    json!({
        "dossier_code": dossier,
        "procedure_code": "1.004227",
        "procedure_name": "Cấp giấy phép xây dựng",
        "agency_code": agency,
        "payer": {
            "name": "Nguyễn Văn A",
            "id_number": "001099012345",
            "phone": "0912345678",
            "email": "a@example.vn"
        },
        "lines": [
            { "kind": "le_phi", "description": "Lệ phí cấp phép", "amount": 150000 },
            { "kind": "phi", "description": "Phí thẩm định", "amount": 500000 }
        ]
    })
}

/// Test credentials of every provider, as their sandboxes publish them or
/// made up; tests sign callbacks with these.
pub mod creds {
    pub const VNPAY_TMN: &str = "LEPHI001";
    pub const VNPAY_SECRET: &str = "VNPAYTESTSECRETKEY0123456789ABCD";
    pub const MOMO_PARTNER: &str = "MOMOLEPHI2026";
    pub const MOMO_ACCESS: &str = "F8BBA842ECF85";
    pub const MOMO_SECRET: &str = "K951B6PE1waDMi640xX08PD3vg6EkVlz";
    pub const ZALOPAY_APP: &str = "2553";
    pub const ZALOPAY_KEY1: &str = "PcY4iZIKFCIdgZvA6ueMcMHHUbRLYjPL";
    pub const ZALOPAY_KEY2: &str = "kLtgPl8HHhfvMuDHPwKfgfsY4Ydm9eIz";
    pub const SEPAY_API_KEY: &str = "sepay-test-api-key-0123456789";
    pub const SEPAY_HMAC: &str = "sepay-test-hmac-secret-0123456789";
    pub const CASSO_KEY: &str = "casso-test-checksum-key-0123456789";
}

/// Configures every provider with the test credentials; MoMo's and
/// ZaloPay's APIs live at `provider_api` (a fake server).
pub fn with_providers(settings: &mut Settings, provider_api: &str) {
    use lephi::config::*;
    settings.providers.vnpay = Some(VnpaySettings {
        tmn_code: creds::VNPAY_TMN.into(),
        hash_secret: SecretString::from(creds::VNPAY_SECRET),
        previous_hash_secret: None,
        payment_url: "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html".into(),
        api_url: format!("{provider_api}/merchant_webapi/api/transaction"),
    });
    settings.providers.momo = Some(MomoSettings {
        partner_code: creds::MOMO_PARTNER.into(),
        access_key: creds::MOMO_ACCESS.into(),
        secret_key: SecretString::from(creds::MOMO_SECRET),
        previous_secret_key: None,
        endpoint: provider_api.into(),
    });
    settings.providers.zalopay = Some(ZalopaySettings {
        app_id: creds::ZALOPAY_APP.into(),
        key1: SecretString::from(creds::ZALOPAY_KEY1),
        key2: SecretString::from(creds::ZALOPAY_KEY2),
        previous_key2: None,
        endpoint: provider_api.into(),
    });
    settings.providers.sepay = Some(SepaySettings {
        api_key: Some(SecretString::from(creds::SEPAY_API_KEY)),
        previous_api_key: None,
        hmac_secret: Some(SecretString::from(creds::SEPAY_HMAC)),
        previous_hmac_secret: None,
    });
    settings.providers.casso = Some(CassoSettings {
        checksum_key: SecretString::from(creds::CASSO_KEY),
        previous_checksum_key: None,
    });
    settings.providers.timeout_secs = 2;
    settings.server.allow_loopback_webhooks = true;
    settings.webhooks.initial_backoff_ms = 50;
    settings.webhooks.max_backoff_ms = 200;
    settings.webhooks.poll_interval_ms = 50;
    settings.webhooks.timeout_ms = 1_000;
}

/// HMAC-SHA256 of `message`, lowercase hex.
pub fn hmac_sha256_hex(key: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// HMAC-SHA512 of `message`, lowercase hex.
pub fn hmac_sha512_hex(key: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// An app with every provider configured (MoMo and ZaloPay APIs on a fake
/// server that answers nothing unless a test mounts answers), three
/// agencies seeded, a bank account on P.D1, and keys.
pub struct PaymentsApp {
    pub app: TestApp,
    pub provider_api: wiremock::MockServer,
    /// agency_system key of P.D1.
    pub system_key: String,
    /// finance key of P.
    pub finance_key: String,
}

pub const BANK_ACCOUNT: &str = "0011001234567";

pub async fn spawn_payments_app(backend: Backend) -> PaymentsApp {
    spawn_payments_app_with(backend, |_| {}).await
}

pub async fn spawn_payments_app_with(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
) -> PaymentsApp {
    let provider_api = wiremock::MockServer::start().await;
    let uri = provider_api.uri();
    let app = spawn_app_with(backend, |settings| {
        with_providers(settings, &uri);
        adjust(settings);
    })
    .await;
    app.seed_agencies().await;
    let account = app
        .request(
            reqwest::Method::PUT,
            "/v1/agencies/P.D1/bank-account",
            Some(&app.admin_key),
            Some(&json!({ "bank_bin": "970436", "account_number": BANK_ACCOUNT, "account_name": "UBND HUYEN D1" })),
            &[],
        )
        .await;
    assert_eq!(account.status, 200, "{}", account.text);
    let system_key = app.key(Role::AgencySystem, "P.D1").await;
    let finance_key = app.key(Role::Finance, "P").await;
    PaymentsApp {
        app,
        provider_api,
        system_key,
        finance_key,
    }
}

impl PaymentsApp {
    /// Issues an invoice of 650,000 đồng on P.D1; returns its JSON.
    pub async fn invoice(&self, dossier: &str) -> Value {
        let response = self
            .app
            .create_invoice(&self.system_key, dossier, &invoice_body("P.D1", dossier))
            .await;
        assert_eq!(response.status, 201, "{}", response.text);
        response.json()
    }

    /// Starts an attempt on `channel` for invoice `id`; returns the answer.
    pub async fn attempt(&self, id: &str, channel: &str) -> Response {
        self.app
            .post(
                &format!("/v1/invoices/{id}/attempts"),
                &self.system_key,
                &json!({ "channel": channel }),
            )
            .await
    }

    /// The invoice as the API shows it now.
    pub async fn invoice_now(&self, id: &str) -> Value {
        self.app
            .get(&format!("/v1/invoices/{id}"), &self.system_key)
            .await
            .json()
    }

    /// A raw callback: `method` with `query` and `body` to `/callbacks/{provider}`.
    pub async fn callback(
        &self,
        provider: &str,
        query: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Response {
        let url = if query.is_empty() {
            format!("{}/callbacks/{provider}", self.app.address)
        } else {
            format!("{}/callbacks/{provider}?{query}", self.app.address)
        };
        let request = if provider == "vnpay" {
            self.app.client.get(url)
        } else {
            self.app.client.post(url).body(body)
        };
        send(request, headers).await
    }
}
