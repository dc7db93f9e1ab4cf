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
    let (new, secret) = NewApiKey::generate(role.as_str(), agency, None).expect("a valid key");
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

    pub async fn create_agency(&self, code: &str, level: &str, parent: Option<&str>) -> Response {
        let body = json!({ "code": code, "name": format!("Agency {code}"), "level": level, "parent_code": parent });
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
