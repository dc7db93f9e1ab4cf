//! The deployment files in the repository run lephi as they say: the
//! systemd unit's command line with its secrets handed over as
//! credentials, and the Containerfile's command and environment. Each is
//! read from the file itself, so a unit or image that drifts from what
//! lephi accepts fails here.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::helpers::{Backend, database_url};
use crate::on_both_backends;

on_both_backends!(
    the_systemd_unit_runs_lephi_with_its_secrets_from_credentials,
    the_containerfile_runs_lephi_as_its_environment_says,
);

/// A `lephi serve` started from a deployment file, stopped with SIGTERM.
struct Running {
    child: Child,
    port: u16,
}

impl Running {
    fn start(args: &[String], env: &HashMap<String, String>, log: &Path) -> Running {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lephi"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("LEPHI__SERVER__WORKERS", "1")
            .env("LEPHI__LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        let mut child = command.spawn().expect("lephi starts");
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(address) = line.strip_prefix("lephi is serving on http://") {
                let port = address.rsplit(':').next().unwrap().parse().unwrap();
                return Running { child, port };
            }
        }
        let status = child.wait();
        panic!(
            "lephi stopped before serving ({status:?}): {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn assert_ready(&self, client: &reqwest::Client) {
        let ready = client.get(self.url("/health/ready")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
    }

    fn stop(mut self) {
        crate::cli::stop_with_sigterm(&mut self.child);
    }
}

/// `KEY=VALUE` of each `name=` line of a unit file, in order.
fn unit_values<'a>(unit: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}=");
    unit.lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}

async fn the_systemd_unit_runs_lephi_with_its_secrets_from_credentials(backend: Backend) {
    let unit = include_str!("../../deploy/systemd/lephi.service");
    let dir = tempfile::tempdir().unwrap();
    let (state, credentials) = (dir.path().join("state"), dir.path().join("credentials"));
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&credentials).unwrap();
    let here = |text: &str| {
        text.replace("%d", credentials.to_str().unwrap())
            .replace("/var/lib/lephi", state.to_str().unwrap())
            .replace(
                "/etc/lephi/lephi.toml",
                dir.path().join("lephi.toml").to_str().unwrap(),
            )
    };
    // The settings file holds what is not secret; the credentials the rest.
    std::fs::write(
        dir.path().join("lephi.toml"),
        "[server]\nbind = \"127.0.0.1:0\"\n\n[providers.vnpay]\ntmn_code = \"LEPHI001\"\n\
         payment_url = \"https://sandbox.vnpayment.vn/paymentv2/vpcpay.html\"\n\
         api_url = \"https://sandbox.vnpayment.vn/merchant_webapi/api/transaction\"\n",
    )
    .unwrap();
    let url = database_url(backend, &state).await;
    let declared: Vec<&str> = unit_values(unit, "LoadCredential")
        .iter()
        .map(|c| c.split(':').next().unwrap())
        .collect();
    for (name, content) in [
        ("database_url", format!("{url}\n")),
        (
            "vnpay_hash_secret",
            "VNPAYSECRETFROMACREDENTIALFILE01\n".to_owned(),
        ),
        (
            "metrics_token",
            "scrape-token-from-a-credential\n".to_owned(),
        ),
    ] {
        assert!(
            declared.contains(&name),
            "the unit loads {name}: {declared:?}"
        );
        std::fs::write(credentials.join(name), content).unwrap();
    }
    let mut env = HashMap::new();
    for assignment in unit_values(unit, "Environment") {
        let (key, value) = assignment.split_once('=').unwrap();
        if let Some(credential) = value.strip_prefix("%d/") {
            assert!(
                declared.contains(&credential),
                "{key} reads a loaded credential"
            );
        }
        env.insert(key.to_owned(), here(value));
    }
    assert!(env.contains_key("LEPHI__DATABASE__URL_FILE"), "{env:?}");
    let exec = unit_values(unit, "ExecStart");
    assert_eq!(exec.len(), 1);
    let mut args: Vec<String> = here(exec[0])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(args.remove(0), "/usr/local/bin/lephi");

    let running = Running::start(&args, &env, &dir.path().join("serve.log"));
    let client = reqwest::Client::new();
    running.assert_ready(&client).await;
    // The token came from its credential, without its line break.
    let refused = client.get(running.url("/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let scraped = client
        .get(running.url("/metrics"))
        .bearer_auth("scrape-token-from-a-credential")
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    if backend == Backend::Sqlite {
        assert!(
            state.join("lephi.db").exists(),
            "the database is where the credential says"
        );
    }
    running.stop();
}

/// The `ENV` pairs of a Containerfile, continuation lines joined.
fn container_env(file: &str) -> HashMap<String, String> {
    let joined = file.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| line.strip_prefix("ENV "))
        .flat_map(|pairs| pairs.split_whitespace())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// The JSON array of a `NAME [...]` line of a Containerfile.
fn container_exec(file: &str, name: &str) -> Vec<String> {
    let line = file
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("the Containerfile has {name}"));
    serde_json::from_str(line).unwrap()
}

async fn the_containerfile_runs_lephi_as_its_environment_says(backend: Backend) {
    let file = include_str!("../../Containerfile");
    let dir = tempfile::tempdir().unwrap();
    let mut env = container_env(file);
    for value in env.values_mut() {
        *value = value.replace("/var/lib/lephi", dir.path().to_str().unwrap());
    }
    // Port 0 for a free one; the address stays the image's, every interface.
    let bind = env
        .get_mut("LEPHI__SERVER__BIND")
        .expect("the image sets the bind address");
    assert_eq!(bind.as_str(), "0.0.0.0:8080");
    *bind = "0.0.0.0:0".to_owned();
    if backend == Backend::Postgres {
        // As an operator would: the image's SQLite default, overridden.
        env.insert(
            "LEPHI__DATABASE__URL".into(),
            database_url(backend, dir.path()).await,
        );
    }
    let mut args = container_exec(file, "ENTRYPOINT");
    assert_eq!(args.remove(0), "/usr/local/bin/lephi");
    args.extend(container_exec(file, "CMD"));
    let running = Running::start(&args, &env, &dir.path().join("serve.log"));
    running.assert_ready(&reqwest::Client::new()).await;
    // Bound to every interface, the fake-money sandbox stays off: lephi
    // warns at start when it is on.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(!log.contains("sandbox providers are on"), "{log}");

    if backend == Backend::Sqlite {
        assert!(
            dir.path().join("lephi.db").exists(),
            "the database is in the volume"
        );
    }
    running.stop();
}
