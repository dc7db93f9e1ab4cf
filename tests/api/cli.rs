//! The `lephi` binary itself, as an administrator runs it.

use std::process::Command;

use crate::helpers::{Backend, database_url};
use crate::on_both_backends;

on_both_backends!(administers_from_the_command_line);

fn lephi(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lephi"))
        .args(args)
        .env("LEPHI__DATABASE__URL", database_url)
        .env("LEPHI__LOG__LEVEL", "warn")
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
    assert!(!ok && err.contains("--role"), "{err}");
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
