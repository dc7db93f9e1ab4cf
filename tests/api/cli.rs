//! The `lephi` binary itself, as an administrator runs it.

use std::process::Command;

use crate::helpers::{Backend, database_url};
use crate::on_both_backends;

on_both_backends!(
    a_backup_taken_while_invoices_are_written_is_whole_and_restores,
    administers_from_the_command_line,
    serve_prints_an_admin_key_once,
    a_refused_callback_is_counted_and_logged_without_secrets
);

pub fn lephi(database_url: &str, args: &[&str]) -> (bool, String, String) {
    lephi_with(database_url, args, &[])
}

/// Runs the `lephi` binary on `database_url` with `env` added.
pub fn lephi_with(
    database_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lephi"))
        .args(args)
        .env("LEPHI__DATABASE__URL", database_url)
        .env("LEPHI__LOG__LEVEL", "warn")
        .env(
            "LEPHI__RECONCILIATION__UPLOAD_DIR",
            std::env::temp_dir().join("lephi-test-uploads"),
        )
        .envs(env.iter().copied())
        .output()
        .expect("lephi runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn administers_from_the_command_line(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let (ok, out, err) = lephi(&url, &["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("applied migration 1"), "{out}");
    let (ok, out, _) = lephi(&url, &["migrate"]);
    assert!(ok && out.contains("up to date"), "{out}");

    let list = dir.path().join("agencies.csv");
    std::fs::write(&list, "code,name,level,parent_code\nH26,Tỉnh Hưng Yên,province,\nH26.01,Huyện Văn Lâm,district,H26\n").unwrap();
    let (ok, out, err) = lephi(&url, &["agencies", "import", list.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("2 created"), "{out}");
    std::fs::write(
        &list,
        "code,name,level,parent_code\nH27,Tỉnh,province,\nH27.01,Huyện,ward,H27\n",
    )
    .unwrap();
    let (ok, _, err) = lephi(&url, &["agencies", "import", list.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("line 3"), "{err}");

    let account = [
        "agencies",
        "bank-account",
        "H26.01",
        "--bin",
        "970436",
        "--account",
        "0011001234567",
        "--name",
        "UBND HUYEN VAN LAM",
    ];
    let (ok, out, err) = lephi(&url, &account);
    assert!(ok, "{err}");
    assert!(out.contains("970436 0011001234567"), "{out}");
    let mut bad_bin = account;
    bad_bin[4] = "97043";
    let (ok, _, err) = lephi(&url, &bad_bin);
    assert!(!ok && err.contains("bank_bin"), "{err}");
    let mut unknown = account;
    unknown[2] = "H99";
    let (ok, _, err) = lephi(&url, &unknown);
    assert!(!ok && err.contains("H99"), "{err}");

    let (ok, out, err) = lephi(
        &url,
        &[
            "keys",
            "create",
            "--role",
            "finance",
            "--agency",
            "H26.01",
            "--name",
            "Kế toán",
        ],
    );
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.starts_with("lp_"));
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("key id:"))
        .unwrap()
        .trim()
        .to_owned();
    let (ok, _, err) = lephi(&url, &["keys", "create", "--role", "finance"]);
    assert!(!ok && err.contains("agency_code"), "{err}");
    let (ok, _, err) = lephi(
        &url,
        &["keys", "create", "--role", "boss", "--agency", "H26"],
    );
    assert!(!ok && err.contains("role"), "{err}");
    let (ok, out, err) = lephi(&url, &["keys", "revoke", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked"));

    let (ok, _, err) = Command::new(env!("CARGO_BIN_EXE_lephi"))
        .args(["migrate"])
        .env("LEPHI__DATABASE__URL", &url)
        .env("LEPHI__SERVER__BIND", "not an address")
        .output()
        .map(|o| {
            (
                o.status.success(),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert!(!ok);
    assert!(err.contains("server.bind"), "{err}");
    assert!(!err.contains(&key));
}

struct Served {
    child: std::process::Child,
    address: String,
    admin_key: Option<String>,
}

fn start_serving(url: &str, dir: &std::path::Path) -> Served {
    start_serving_with(url, dir, &[])
}

fn start_serving_with(url: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Served {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_lephi"))
        .arg("serve")
        .envs(env.iter().copied())
        .env("LEPHI__DATABASE__URL", url)
        .env("LEPHI__SERVER__BIND", "127.0.0.1:0")
        .env("LEPHI__SERVER__WORKERS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
        .spawn()
        .expect("lephi serve starts");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut admin_key = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(key) = line.trim().strip_prefix("lp_") {
            admin_key = Some(format!("lp_{key}"));
        }
        if let Some(address) = line.strip_prefix("lephi is serving on ") {
            return Served {
                child,
                address: address.to_owned(),
                admin_key,
            };
        }
    }
    let status = child.wait();
    panic!("lephi serve stopped before serving: {status:?}");
}

fn stop(mut served: Served) {
    stop_with_sigterm(&mut served.child);
}

/// Sends `child` (a `lephi serve`) SIGTERM and checks that it ends cleanly.
pub fn stop_with_sigterm(child: &mut std::process::Child) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends lephi cleanly, not with {status}"
    );
}

/// `lephi serve` on a database without an admin key prints one, once; the
/// key works; logs are JSON lines with the request id; SIGTERM stops it.
async fn serve_prints_an_admin_key_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let served = start_serving(&url, dir.path());
    let key = served.admin_key.clone().expect("an admin key is printed");
    let client = reqwest::Client::new();
    let agencies = client
        .get(format!("{}/v1/agencies", served.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(agencies.status(), 200);
    let request_id = agencies.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Neither a query (a payer's phone searched) nor a path (a payment
    // code, the citizen's credential) reaches the log: the route does.
    let searched = client
        .get(format!("{}/v1/payments?phone=0912345678", served.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_ne!(searched.status(), 500);
    let page = client
        .get(format!("{}/pay/ZQ7K2M9XW4TB?lang=en", served.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    stop(served);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(!log.contains(&key), "the admin key never reaches the log");
    assert!(!log.contains("0912345678"), "{log}");
    assert!(!log.contains("ZQ7K2M9XW4TB"), "{log}");
    assert!(log.contains("/pay/{code}"), "{log}");
    let request_lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|line| line.contains(&request_id))
        .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
        .collect();
    assert!(!request_lines.is_empty(), "{log}");
    assert!(
        request_lines
            .iter()
            .all(|l| l["span"]["request_id"] == request_id.as_str())
    );

    let again = start_serving(&url, dir.path());
    assert_eq!(again.admin_key, None, "the admin key is printed once");
    stop(again);
}

/// A callback with a bad signature is refused, counted in `/metrics` and
/// logged as a warning that names the provider and never a secret.
async fn a_refused_callback_is_counted_and_logged_without_secrets(backend: Backend) {
    const API_KEY: &str = "sepay-api-key-for-the-log-test";
    const HMAC: &str = "sepay-hmac-secret-for-the-log-test";
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let served = start_serving_with(
        &url,
        dir.path(),
        &[
            ("LEPHI__PROVIDERS__SEPAY__API_KEY", API_KEY),
            ("LEPHI__PROVIDERS__SEPAY__HMAC_SECRET", HMAC),
        ],
    );
    let client = reqwest::Client::new();
    let body = r#"{"id":1,"gateway":"VCB","transactionDate":"2026-11-28 14:30:00","accountNumber":"1","code":null,"content":"x","transferType":"in","transferAmount":1000,"accumulated":0,"subAccount":null,"referenceCode":"r"}"#;
    let refused = client
        .post(format!("{}/callbacks/sepay", served.address))
        .header("Authorization", "Apikey not-the-key")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let metrics = client
        .get(format!("{}/metrics", served.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"lephi_callbacks_refused_total{provider="sepay",reason="bad_signature"} 1"#
        ),
        "{metrics}"
    );
    stop(served);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let warning = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "a callback was refused")
        .unwrap_or_else(|| panic!("no warning logged: {log}"));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["provider"], "sepay");
    assert_eq!(warning["reason"], "bad_signature");
    for secret in [API_KEY, HMAC, "not-the-key"] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

/// `lephi backup` copies a SQLite database while lephi serves and writes:
/// the copy is whole (every invoice with its audit record, nothing half
/// written), and lephi serves from it once put in place. On PostgreSQL it
/// points to pg_dump.
async fn a_backup_taken_while_invoices_are_written_is_whole_and_restores(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(backend, dir.path()).await;
    let copy = dir.path().join("backup.db");
    if backend == Backend::Postgres {
        let (ok, _, err) = lephi(&url, &["backup", copy.to_str().unwrap()]);
        assert!(
            !ok && err.contains("pg_dump") && err.contains("pg_restore"),
            "{err}"
        );
        return;
    }
    let (ok, _, err) = lephi(&url, &["migrate"]);
    assert!(ok, "{err}");
    let list = dir.path().join("agencies.csv");
    std::fs::write(
        &list,
        "code,name,level,parent_code\nH26,Tỉnh Hưng Yên,province,\n",
    )
    .unwrap();
    assert!(lephi(&url, &["agencies", "import", list.to_str().unwrap()]).0);
    let (ok, out, err) = lephi(
        &url,
        &[
            "keys",
            "create",
            "--role",
            "agency_system",
            "--agency",
            "H26",
        ],
    );
    assert!(ok, "{err}");
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key:"))
        .unwrap()
        .trim()
        .to_owned();
    let served = start_serving(&url, dir.path());
    let address = served.address.clone();
    // Four writers issue invoices while the backup is taken.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (address, key) = (address.clone(), key.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for n in 0..60 {
                    let dossier = format!("HS-{w}-{n}");
                    let created = client
                        .post(format!("{address}/v1/invoices"))
                        .bearer_auth(&key)
                        .header("Idempotency-Key", &dossier)
                        .json(&crate::helpers::invoice_body("H26", &dossier))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(created.status(), 201);
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let backup = {
        let (url, copy) = (url.clone(), copy.clone());
        tokio::task::spawn_blocking(move || lephi(&url, &["backup", copy.to_str().unwrap()]))
    };
    let (ok, out, err) = backup.await.unwrap();
    assert!(ok, "{err}");
    assert!(out.contains("backed up to"), "{out}");
    for writer in writers {
        writer.await.unwrap();
    }
    // A second backup to the same file is refused, not written over.
    let (ok, _, err) = lephi(&url, &["backup", copy.to_str().unwrap()]);
    assert!(!ok && err.contains("exists"), "{err}");
    stop(served);

    let copy_url = format!("sqlite://{}", copy.display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&copy_url).await.unwrap();
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let invoices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM invoices")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(invoices > 0 && invoices <= 240, "{invoices}");
    let unaudited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM invoices i
         WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.object_id = i.id)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unaudited, 0);
    pool.close().await;
    // Restored: lephi serves from the copy, with what it held.
    let (ok, out, _) = lephi(&copy_url, &["migrate"]);
    assert!(ok && out.contains("up to date"), "{out}");
    let restored = start_serving(&copy_url, dir.path());
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/health/ready", restored.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let listed = client
        .get(format!("{}/v1/invoices?limit=1", restored.address))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    stop(restored);
}
