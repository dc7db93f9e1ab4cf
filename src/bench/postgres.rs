//! A throwaway PostgreSQL server, started from the machine's binaries in a
//! temporary folder: the tests' database server, and the one `lephi bench`
//! measures against. Each caller asks it for fresh databases.
//!
//! The server is stopped, and its folder removed, when the process that
//! started it exits: a shell waits on a pipe from this process and, when
//! the pipe closes, shuts the server down.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How the server keeps commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit reaches the disk before it is acknowledged
    /// (`fsync=on`, `synchronous_commit=on`): what production runs, and
    /// what benchmarks measure.
    Durable,
    /// Nothing is flushed: for tests that check behaviour, not crash
    /// safety, and create many databases.
    Relaxed,
}

/// A running throwaway server (or a server named by a URL).
pub struct Server {
    /// `postgres://user@host:port` without a database name.
    base_url: String,
    _stop_when_dropped: Option<Mutex<ChildStdin>>,
}

impl Server {
    /// The server at `url` (a database name in it is ignored).
    pub fn at(url: &str) -> Server {
        let base = match url.rsplit_once('/') {
            Some((base, db)) if !base.ends_with('/') && !db.contains('@') => base.to_owned(),
            _ => url.to_owned(),
        };
        Server {
            base_url: base,
            _stop_when_dropped: None,
        }
    }

    /// Starts a server from the machine's binaries, as the `postgres` user
    /// when running as root. It stops when this process exits.
    pub fn start(durability: Durability) -> Result<Server, String> {
        start(durability)
    }

    /// A URL for a fresh, empty database on this server, named
    /// `{prefix}_{random}`.
    pub async fn fresh_database_url(&self, prefix: &str) -> Result<String, String> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin_url = format!("{}/postgres", self.base_url);
        use sqlx::Connection;
        let mut conn = sqlx::postgres::PgConnection::connect(&admin_url)
            .await
            .map_err(|e| format!("the PostgreSQL server refuses connections: {e}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("cannot create a database: {e}"))?;
        conn.close().await.ok();
        Ok(format!("{}/{name}", self.base_url))
    }
}

fn start(durability: Durability) -> Result<Server, String> {
    let bin = find_binaries().ok_or_else(|| {
        "a throwaway PostgreSQL server needs the server binaries (initdb, postgres) on PATH or under \
         /usr/lib/postgresql/*/bin: install them (Debian: apt-get install postgresql) \
         or name a server to create databases on"
            .to_owned()
    })?;
    let user = server_user()?;
    let dir = tempfile::Builder::new()
        .prefix("lephi-test-pg-")
        .tempdir()
        .map_err(|e| format!("cannot make a folder for PostgreSQL: {e}"))?
        .keep();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("cannot hand {} to the postgres user: {e}", dir.display()))?;
    }
    let data = dir.join("data");
    let initdb = as_user(Command::new(bin.join("initdb")), user)
        .args([
            "-D",
            &data.to_string_lossy(),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let durability = match durability {
        Durability::Durable => "-c fsync=on -c synchronous_commit=on -c full_page_writes=on",
        Durability::Relaxed => "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
    };
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
         -c max_connections=400 {durability} \
         > '{dir}/server.log' 2>&1 & pid=$!; \
         read _ignored; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    let mut watchdog = as_user(Command::new("sh"), user)
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let stdin = watchdog
        .stdin
        .take()
        .ok_or("no pipe to the postgres watchdog")?;
    wait_until_ready(&data, &dir)?;
    Ok(Server {
        base_url: format!("postgres://postgres@127.0.0.1:{port}"),
        _stop_when_dropped: Some(Mutex::new(stdin)),
    })
}

fn find_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// PostgreSQL refuses to run as root: as root, run it as `postgres`.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    let am_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !am_root {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .and_then(|fields| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
        .map(Some)
        .ok_or_else(|| {
            "running as root, a throwaway PostgreSQL server needs a 'postgres' user to run the server as \
             (Debian's postgresql package creates it)"
                .to_owned()
        })
}

fn as_user(mut command: Command, user: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

/// Waits until `postmaster.pid` says the server accepts connections.
fn wait_until_ready(data: &Path, dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(pid_file) = std::fs::read_to_string(data.join("postmaster.pid"))
            && pid_file
                .lines()
                .nth(7)
                .is_some_and(|status| status.trim() == "ready")
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    Err(format!(
        "the throwaway PostgreSQL server did not start within 60 s:\n{log}"
    ))
}
