//! Where an agency's money arrives (its receiving bank account) and where
//! its events go (its webhook).

use serde_json::json;
use sqlx::Row;

use super::conn::Conn;

use super::agencies::find_in_scope;
use super::audit::{self, Change};
use super::{Store, StoreError};
use crate::domain::agency::BankAccount;
use crate::domain::audit::Actor;
use crate::domain::webhook::{WebhookSecret, WebhookUrl};
use crate::domain::{Scope, Timestamp};

/// An agency's webhook: where its events are delivered, signed with `secret`.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub agency_code: String,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    /// Until when the secret it replaced still signs beside it, if it does.
    pub previous_until: Option<Timestamp>,
    pub updated_at: Timestamp,
}

pub(super) async fn bank_account_of(
    conn: &mut Conn<'_>,
    agency_code: &str,
) -> Result<Option<BankAccount>, StoreError> {
    let row = sqlx::query(
        "SELECT bank_bin, account_number, account_name FROM agency_bank_accounts WHERE agency_code = $1",
    )
    .bind(agency_code)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(BankAccount {
            bank_bin: row.try_get("bank_bin")?,
            account_number: row.try_get("account_number")?,
            account_name: row.try_get("account_name")?,
        })
    })
    .transpose()
}

/// Takes a row lock on agency `code` on PostgreSQL (`clause` is the
/// `FOR ...` strength); nothing on SQLite, whose writers are serialised.
pub(super) async fn lock_agency(
    conn: &mut Conn<'_>,
    store: &Store,
    code: &str,
    clause: &'static str,
) -> Result<(), StoreError> {
    let lock = store.row_lock(clause);
    if !lock.is_empty() {
        let sql = format!("SELECT code FROM agencies WHERE code = $1{lock}");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(code)
            .fetch_optional(conn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Sets the receiving account of agency `code` (in `scope`).
    pub async fn set_bank_account(
        &self,
        actor: &Actor,
        scope: &Scope,
        code: &str,
        account: &BankAccount,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let agency = find_in_scope(&mut tx.conn(), scope, code).await?;
        // One account may receive for several agencies of one scope (a
        // province's shared treasury account), never for another scope's:
        // transfers to it naming no invoice would then belong to no one.
        let elsewhere: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM agency_bank_accounts b JOIN agencies a ON a.code = b.agency_code
             WHERE b.account_number = $1 AND b.agency_code <> $2
                 AND substr(a.path, 1, length($3)) <> $3",
        )
        .bind(&account.account_number)
        .bind(code)
        .bind(scope.path_prefix())
        .fetch_one(&mut tx.conn())
        .await?;
        if elsewhere > 0 {
            tx.rollback().await?;
            return Err(StoreError::BankAccountTaken);
        }
        let before = bank_account_of(&mut tx.conn(), code).await?;
        sqlx::query(
            "INSERT INTO agency_bank_accounts (agency_code, bank_bin, account_number, account_name, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (agency_code) DO UPDATE SET bank_bin = excluded.bank_bin,
                 account_number = excluded.account_number, account_name = excluded.account_name,
                 updated_at = excluded.updated_at",
        )
        .bind(code)
        .bind(&account.bank_bin)
        .bind(&account.account_number)
        .bind(&account.account_name)
        .bind(now.to_stored())
        .execute(&mut tx.conn())
        .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "agency.bank_account_set",
                object_type: "agency",
                object_id: code,
                agency: Some((code, &agency.path)),
                before: before.as_ref().and_then(audit::state),
                after: audit::state(account),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The receiving account of agency `code` (in `scope`), if set.
    pub async fn bank_account(
        &self,
        scope: &Scope,
        code: &str,
    ) -> Result<Option<BankAccount>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_in_scope(&mut Conn::from(&mut *conn), scope, code).await?;
        bank_account_of(&mut Conn::from(&mut *conn), code).await
    }

    /// Sets the webhook of agency `code` (in `scope`). With `keep_previous`,
    /// a secret it replaces keeps signing deliveries beside the new one for
    /// that long (a rotation); otherwise it stops at once. The secret is
    /// never written to the audit log.
    pub async fn set_webhook(
        &self,
        actor: &Actor,
        scope: &Scope,
        code: &str,
        url: &WebhookUrl,
        secret: &WebhookSecret,
        keep_previous: Option<time::Duration>,
    ) -> Result<Webhook, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let agency = find_in_scope(&mut tx.conn(), scope, code).await?;
        // Lock the agency, so that no transaction writing one of its events
        // (which holds a key-share lock on it, through the event's or the
        // payment's foreign key) runs between our release of its held
        // events and our commit: such an event is either seen by the
        // release or sees the webhook. SQLite's write lock does the same.
        lock_agency(&mut tx.conn(), self, code, " FOR UPDATE").await?;
        let before: Option<(String, String)> =
            sqlx::query_as("SELECT url, secret FROM agency_webhooks WHERE agency_code = $1")
                .bind(code)
                .fetch_optional(&mut tx.conn())
                .await?;
        let replaced = before
            .as_ref()
            .map(|(_, old)| old.clone())
            .filter(|old| old != secret.expose());
        let kept = match (&replaced, keep_previous) {
            (Some(old), Some(window)) => Some((
                old.clone(),
                now.plus(window)
                    .ok_or_else(|| StoreError::corrupt("rotation window out of range"))?,
            )),
            _ => None,
        };
        sqlx::query(
            "INSERT INTO agency_webhooks (agency_code, url, secret, updated_at, previous_secret, previous_until)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (agency_code) DO UPDATE SET url = excluded.url, secret = excluded.secret,
                 updated_at = excluded.updated_at, previous_secret = excluded.previous_secret,
                 previous_until = excluded.previous_until",
        )
        .bind(code)
        .bind(url.as_str())
        .bind(secret.expose())
        .bind(now.to_stored())
        .bind(kept.as_ref().map(|(old, _)| old.as_str()))
        .bind(kept.as_ref().map(|(_, until)| until.to_stored()))
        .execute(&mut tx.conn())
        .await?;
        // Events kept while the agency had no webhook go out now.
        super::events::release_held(&mut tx.conn(), code).await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "agency.webhook_set",
                object_type: "agency",
                object_id: code,
                agency: Some((code, &agency.path)),
                before: before.map(|(url, _)| json!({ "url": url })),
                after: Some(json!({
                    "url": url.as_str(),
                    "secret": "whsec_***",
                    "secret_replaced": replaced.is_some(),
                    "previous_secret_until": kept.as_ref().map(|(_, until)| *until),
                })),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Webhook {
            agency_code: code.to_owned(),
            url: url.clone(),
            secret: secret.clone(),
            previous_until: kept.map(|(_, until)| until),
            updated_at: now,
        })
    }
}
