//! What SQLite needs that PostgreSQL does not: a file created on first
//! start, and the pragmas that make it durable and safe to share.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, Executor};

use super::StoreError;
use super::migrate::Migration;

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: include_str!("../../migrations/sqlite/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "payments",
        sql: include_str!("../../migrations/sqlite/0002_payments.sql"),
    },
    Migration {
        version: 3,
        name: "reconciliation",
        sql: include_str!("../../migrations/sqlite/0003_reconciliation.sql"),
    },
    Migration {
        version: 4,
        name: "checkout",
        sql: include_str!("../../migrations/sqlite/0004_checkout.sql"),
    },
    Migration {
        version: 5,
        name: "console",
        sql: include_str!("../../migrations/sqlite/0005_console.sql"),
    },
    Migration {
        version: 6,
        name: "settlement_references",
        sql: include_str!("../../migrations/sqlite/0006_settlement_references.sql"),
    },
    Migration {
        version: 7,
        name: "settled_through",
        sql: include_str!("../../migrations/sqlite/0007_settled_through.sql"),
    },
    Migration {
        version: 8,
        name: "fewer_pages_per_payment",
        sql: include_str!("../../migrations/sqlite/0008_fewer_pages_per_payment.sql"),
    },
    Migration {
        version: 9,
        name: "unsettled_checked",
        sql: include_str!("../../migrations/sqlite/0009_unsettled_checked.sql"),
    },
    Migration {
        version: 10,
        name: "statement_scope",
        sql: include_str!("../../migrations/sqlite/0010_statement_scope.sql"),
    },
    Migration {
        version: 11,
        name: "statement_jobs",
        sql: include_str!("../../migrations/sqlite/0011_statement_jobs.sql"),
    },
    Migration {
        version: 12,
        name: "register_jobs",
        sql: include_str!("../../migrations/sqlite/0012_register_jobs.sql"),
    },
    Migration {
        version: 13,
        name: "refunds",
        sql: include_str!("../../migrations/sqlite/0013_refunds.sql"),
    },
    Migration {
        version: 14,
        name: "applied_refunds",
        sql: include_str!("../../migrations/sqlite/0014_applied_refunds.sql"),
    },
    Migration {
        version: 15,
        name: "operations",
        sql: include_str!("../../migrations/sqlite/0015_operations.sql"),
    },
    Migration {
        version: 16,
        name: "officers",
        sql: include_str!("../../migrations/sqlite/0016_officers.sql"),
    },
];

/// Creates the database file's folder and asks the driver to create the
/// file itself if it is missing.
pub(super) fn prepare_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path.starts_with(':') {
        return Ok(url.to_owned());
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Migration(format!("cannot create {}: {e}", dir.display())))?;
    }
    Ok(if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    })
}

/// The database file a SQLite URL names. Every connection of the store,
/// the writers' own among them, opens the same file: a database in memory
/// would be a different one for each.
pub(super) fn file_of(url: &str) -> Result<PathBuf, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?;
    let path = options.get_filename();
    // sqlx names a database in memory `file:sqlx-in-memory-N`.
    let name = path.to_string_lossy();
    if name.is_empty()
        || name == ":memory:"
        || name.starts_with("file:sqlx-in-memory")
        || url.contains("mode=memory")
    {
        return Err(StoreError::Migration(
            "lephi keeps its SQLite database in a file: name one in the URL".to_owned(),
        ));
    }
    Ok(path.to_path_buf())
}

/// The size of a database page: SQLite's default, which lephi keeps.
pub(super) const PAGE_SIZE: u64 = 4096;

/// Write-ahead logging with a full sync on every commit, foreign keys
/// enforced, and a bounded wait for the write lock. Temporary data stays
/// in memory: above all the statement journal of each writer's savepoint
/// in the group-committed batch, which SQLite would otherwise write to a
/// temporary file, page by page, as the writer changes them. With
/// `max_size_mib`, the file grows no further than that: a write that
/// would fails with `SQLITE_FULL`, as on a full disk.
pub(super) fn settings(busy_timeout_ms: u64, max_size_mib: Option<u64>) -> String {
    let mut pragmas = format!(
        "PRAGMA busy_timeout = {busy_timeout_ms}; \
         PRAGMA journal_mode = WAL; \
         PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; \
         PRAGMA temp_store = MEMORY;"
    );
    if let Some(mib) = max_size_mib {
        let pages = mib.saturating_mul(1024 * 1024) / PAGE_SIZE;
        pragmas.push_str(&format!(" PRAGMA max_page_count = {pages};"));
    }
    pragmas
}

/// Runs [`settings`] on a connection of the pool.
pub(super) async fn configure_connection(
    conn: &mut AnyConnection,
    settings: &str,
) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::AssertSqlSafe(settings.to_owned()))
        .await?;
    Ok(())
}

/// How much more the database can hold, in bytes: the room the disk has
/// left, and the room under `max_size_mib` (pages free inside the file
/// count as room).
pub(super) async fn room(pool: &sqlx::AnyPool, file: &Path) -> Result<Room, StoreError> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let disk = match rustix::fs::statvfs(dir) {
        Ok(fs) => Some(fs.f_bavail.saturating_mul(fs.f_frsize)),
        Err(err) => {
            tracing::warn!(dir = %dir.display(), %err, "cannot read the free space of the database's disk");
            None
        }
    };
    let (pages, free, max): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()), \
                (SELECT freelist_count FROM pragma_freelist_count()), \
                (SELECT max_page_count FROM pragma_max_page_count())",
    )
    .fetch_one(pool)
    .await?;
    let under_cap = (max - pages + free).max(0) as u64 * PAGE_SIZE;
    Ok(Room { disk, under_cap })
}

/// What [`room`] found.
#[derive(Debug, Clone, Copy)]
pub struct Room {
    /// Free space on the disk that holds the database, when it can be read.
    pub disk: Option<u64>,
    /// What the file may still take under its size limit.
    pub under_cap: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_in_memory_is_refused_with_a_reason() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://lephi.db?mode=memory",
        ] {
            let err = file_of(url).unwrap_err();
            assert!(err.to_string().contains("in a file"), "{url}: {err}");
        }
        assert_eq!(
            file_of("sqlite://data/lephi.db?mode=rwc").unwrap(),
            PathBuf::from("data/lephi.db")
        );
    }
}
