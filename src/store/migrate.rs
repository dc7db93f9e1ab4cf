//! A small migration runner: each backend has its own ordered list of SQL
//! files, embedded in the binary, applied once each and checked by hash.

use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use super::{Backend, Store, StoreError, postgres, sqlite};
use crate::domain::Timestamp;

pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub name: String,
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS lephi_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

pub(super) async fn run(store: &Store) -> Result<Vec<AppliedMigration>, StoreError> {
    let mut conn = store.pool.acquire().await?;
    let migrations = match store.backend {
        Backend::Sqlite => sqlite::MIGRATIONS,
        Backend::Postgres => {
            postgres::lock_migrations(&mut conn).await?;
            postgres::MIGRATIONS
        }
    };
    let applied = apply_pending(store.backend, &mut conn, migrations).await;
    if store.backend == Backend::Postgres {
        postgres::unlock_migrations(&mut conn).await?;
    }
    applied
}

async fn apply_pending(
    backend: Backend,
    conn: &mut sqlx::AnyConnection,
    migrations: &[Migration],
) -> Result<Vec<AppliedMigration>, StoreError> {
    sqlx::query(CREATE_TABLE).execute(&mut *conn).await?;
    let done: Vec<(i64, String)> =
        sqlx::query("SELECT version, checksum FROM lephi_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("version")?, row.try_get("checksum")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    let mut applied = Vec::new();
    for migration in migrations {
        if let Some((_, checksum)) = done.iter().find(|(v, _)| *v == migration.version) {
            if *checksum != migration.checksum() {
                return Err(StoreError::Migration(format!(
                    "migration {} ({}) was changed after it was applied",
                    migration.version, migration.name
                )));
            }
            continue;
        }
        let mut tx = match backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        sqlx::raw_sql(migration.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                StoreError::Migration(format!(
                    "migration {} ({}): {e}",
                    migration.version, migration.name
                ))
            })?;
        sqlx::query(
            "INSERT INTO lephi_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(migration.checksum())
        .bind(Timestamp::now().to_stored())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        applied.push(AppliedMigration {
            version: migration.version,
            name: migration.name.to_owned(),
        });
    }
    Ok(applied)
}
