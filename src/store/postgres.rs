//! What PostgreSQL needs that SQLite does not: a lock so that several lephi
//! processes starting together migrate once.

use sqlx::AnyConnection;

use super::migrate::Migration;

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sql: include_str!("../../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "payments",
        sql: include_str!("../../migrations/postgres/0002_payments.sql"),
    },
    Migration {
        version: 3,
        name: "reconciliation",
        sql: include_str!("../../migrations/postgres/0003_reconciliation.sql"),
    },
    Migration {
        version: 4,
        name: "checkout",
        sql: include_str!("../../migrations/postgres/0004_checkout.sql"),
    },
    Migration {
        version: 5,
        name: "console",
        sql: include_str!("../../migrations/postgres/0005_console.sql"),
    },
    Migration {
        version: 6,
        name: "settlement_references",
        sql: include_str!("../../migrations/postgres/0006_settlement_references.sql"),
    },
    Migration {
        version: 7,
        name: "settled_through",
        sql: include_str!("../../migrations/postgres/0007_settled_through.sql"),
    },
    Migration {
        version: 8,
        name: "fewer_pages_per_payment",
        sql: include_str!("../../migrations/postgres/0008_fewer_pages_per_payment.sql"),
    },
    Migration {
        version: 9,
        name: "unsettled_checked",
        sql: include_str!("../../migrations/postgres/0009_unsettled_checked.sql"),
    },
    Migration {
        version: 10,
        name: "statement_scope",
        sql: include_str!("../../migrations/postgres/0010_statement_scope.sql"),
    },
    Migration {
        version: 11,
        name: "statement_jobs",
        sql: include_str!("../../migrations/postgres/0011_statement_jobs.sql"),
    },
    Migration {
        version: 12,
        name: "register_jobs",
        sql: include_str!("../../migrations/postgres/0012_register_jobs.sql"),
    },
    Migration {
        version: 13,
        name: "refunds",
        sql: include_str!("../../migrations/postgres/0013_refunds.sql"),
    },
    Migration {
        version: 14,
        name: "applied_refunds",
        sql: include_str!("../../migrations/postgres/0014_applied_refunds.sql"),
    },
    Migration {
        version: 15,
        name: "operations",
        sql: include_str!("../../migrations/postgres/0015_operations.sql"),
    },
    Migration {
        version: 16,
        name: "officers",
        sql: include_str!("../../migrations/postgres/0016_officers.sql"),
    },
];

/// An arbitrary constant naming lephi's migration lock.
const MIGRATION_LOCK: i64 = 0x6c65_7068_695f_6d67;

pub(super) async fn lock_migrations(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}

pub(super) async fn unlock_migrations(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(conn)
        .await?;
    Ok(())
}
