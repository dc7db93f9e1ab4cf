//! The tests' PostgreSQL server: a throwaway server started once per test
//! run (`lephi::bench::postgres`, with commits not flushed), unless
//! `TEST_DATABASE_URL` names a server to use instead. Each test gets a
//! database of its own.

use std::sync::OnceLock;

use lephi::bench::postgres::{Durability, Server};

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// A URL for a fresh, empty database on the test server.
pub async fn fresh_database_url() -> String {
    let server = SERVER.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => Ok(Server::at(&url)),
        Err(_) => Server::start(Durability::Relaxed).map_err(|why| {
            format!(
                "{why} (or set TEST_DATABASE_URL to a server the tests may create databases on)"
            )
        }),
    });
    match server {
        Ok(server) => server
            .fresh_database_url("lephi_test")
            .await
            .unwrap_or_else(|why| panic!("{why}")),
        Err(why) => panic!("{why}"),
    }
}
