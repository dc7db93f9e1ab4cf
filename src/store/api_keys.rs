//! API keys: only a key's SHA-256 is stored.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::agencies::find_in_scope;
use super::audit::{self, Change};
use super::{Store, StoreError, parse_optional_time, parse_time};
use crate::domain::api_key::ApiKeyHash;
use crate::domain::audit::Actor;
use crate::domain::{AgencyCode, ApiKeySecret, Role, Scope, Timestamp, ValidationError, text};

/// A key as listed: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub agency_code: Option<AgencyCode>,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A key to store: who holds it and the hash of the secret they were given.
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    pub agency_code: Option<AgencyCode>,
    pub hash: ApiKeyHash,
    pub prefix: String,
}

impl NewApiKey {
    /// Parses who a new key is for and draws its secret, which is returned
    /// to be shown once; only its hash is kept in the `NewApiKey`.
    pub fn generate(
        role: &str,
        agency_code: Option<&str>,
        name: Option<&str>,
    ) -> Result<(NewApiKey, ApiKeySecret), ValidationError> {
        let role = Role::parse("role", role)?;
        let agency_code = agency_code
            .map(|code| AgencyCode::parse("agency_code", code))
            .transpose()?;
        let name = text::bounded("name", name.unwrap_or(role.as_str()), 100)?;
        let secret = ApiKeySecret::generate();
        let new = NewApiKey {
            name,
            role,
            agency_code,
            hash: secret.hash(),
            prefix: secret.display_prefix(),
        };
        Ok((new, secret))
    }
}

/// Who is calling, as established from a valid key or an officer's
/// console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id, or the officer's: what idempotency records are kept
    /// under.
    pub key_id: String,
    pub role: Role,
    pub scope: Scope,
    /// How the audit names the caller: `key:<id>` or `officer:<id>`.
    pub actor_name: String,
    /// How people read it: the key's name, or the officer's name and email.
    pub display: String,
    /// The officer's own role, when the caller is an officer.
    pub officer_role: Option<crate::domain::officer::OfficerRole>,
}

impl Principal {
    /// The caller as the audit records them, for the request `request_id`.
    pub fn actor(&self, request_id: Option<String>) -> Actor {
        Actor {
            name: self.actor_name.clone(),
            display: Some(self.display.clone()),
            request_id,
            client_addr: None,
        }
    }
}

fn key_from_row(row: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    let role: String = row.try_get("role")?;
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        role: Role::parse("role", &role).map_err(StoreError::corrupt)?,
        agency_code: row
            .try_get::<Option<String>, _>("agency_code")?
            .map(AgencyCode::from_stored),
        prefix: row.try_get("key_prefix")?,
        created_at: parse_time(row, "created_at")?,
        revoked_at: parse_optional_time(row, "revoked_at")?,
    })
}

/// The caller of a row with a key's `id`, `role`, `agency_code` and its
/// agency's `path`.
pub(super) fn principal_from_row(row: &AnyRow) -> Result<Principal, StoreError> {
    let role: String = row.try_get("role")?;
    let agency_code: Option<String> = row.try_get("agency_code")?;
    let path: Option<String> = row.try_get("path")?;
    let scope = scope_of(agency_code, path)?;
    let id: String = row.try_get("id")?;
    Ok(Principal {
        actor_name: format!("key:{id}"),
        display: row.try_get("name")?,
        key_id: id,
        role: Role::parse("role", &role).map_err(StoreError::corrupt)?,
        scope,
        officer_role: None,
    })
}

/// The scope of an agency code and its path as a row holds them.
pub(super) fn scope_of(
    agency_code: Option<String>,
    path: Option<String>,
) -> Result<Scope, StoreError> {
    match (agency_code, path) {
        (Some(code), Some(path)) => Ok(Scope::Subtree {
            code: AgencyCode::from_stored(code),
            path,
        }),
        (None, _) => Ok(Scope::All),
        (Some(code), None) => Err(StoreError::corrupt(format!("agency {code} is missing"))),
    }
}

macro_rules! select_keys {
    () => {
        "SELECT k.id, k.name, k.role, k.agency_code, k.key_prefix, k.created_at, k.revoked_at
         FROM api_keys k LEFT JOIN agencies a ON a.code = k.agency_code"
    };
}

impl Store {
    /// Stores a new key for an agency in `scope`. Only an admin key may
    /// span every agency, and only a global caller may make one.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        scope: &Scope,
        new: &NewApiKey,
    ) -> Result<ApiKeyRecord, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let agency = match &new.agency_code {
            Some(code) => Some(find_in_scope(&mut tx.conn(), scope, code.as_str()).await?),
            None if new.role != Role::Admin => {
                return Err(StoreError::Invalid(ValidationError::new(
                    "agency_code",
                    "is required for agency_system and finance keys",
                )));
            }
            None if *scope != Scope::All => {
                return Err(StoreError::Invalid(ValidationError::new(
                    "agency_code",
                    "a key scoped to an agency can only create keys for agencies in its scope",
                )));
            }
            None => None,
        };
        let record = ApiKeyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: new.name.clone(),
            role: new.role,
            agency_code: new.agency_code.clone(),
            prefix: new.prefix.clone(),
            created_at: now,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, agency_code, key_hash, key_prefix, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(record.agency_code.as_ref().map(AgencyCode::as_str))
        .bind(new.hash.as_str())
        .bind(&record.prefix)
        .bind(now.to_stored())
        .execute(&mut tx.conn())
        .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "api_key.created",
                object_type: "api_key",
                object_id: &record.id,
                agency: agency.as_ref().map(|a| (a.code.as_str(), a.path.as_str())),
                before: None,
                after: audit::state(&record),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Revokes a key in `scope`; revoking a revoked key changes nothing.
    pub async fn revoke_api_key(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
    ) -> Result<ApiKeyRecord, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!(
            select_keys!(),
            " WHERE k.id = $1 AND substr(COALESCE(a.path, '/'), 1, length($2)) = $2"
        ))
        .bind(id)
        .bind(scope.path_prefix())
        .fetch_optional(&mut tx.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
        let before = key_from_row(&row)?;
        if before.revoked_at.is_some() {
            // Revoked, perhaps by a batch-mate on SQLite: answer once that
            // revocation is committed.
            tx.rollback().await?;
            return Ok(before);
        }
        let revoked =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now.to_stored())
                .bind(id)
                .execute(&mut tx.conn())
                .await?;
        if revoked.rows_affected() == 0 {
            // Another transaction revoked it first, and recorded it.
            let row = sqlx::query(concat!(select_keys!(), " WHERE k.id = $1"))
                .bind(id)
                .fetch_one(&mut tx.conn())
                .await?;
            tx.rollback().await?;
            return key_from_row(&row);
        }
        let after = ApiKeyRecord {
            revoked_at: Some(now),
            ..before.clone()
        };
        let agency_path: Option<String> =
            sqlx::query_scalar("SELECT path FROM agencies WHERE code = $1")
                .bind(before.agency_code.as_ref().map(AgencyCode::as_str))
                .fetch_optional(&mut tx.conn())
                .await?;
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "api_key.revoked",
                object_type: "api_key",
                object_id: id,
                agency: before
                    .agency_code
                    .as_ref()
                    .zip(agency_path.as_deref())
                    .map(|(code, path)| (code.as_str(), path)),
                before: audit::state(&before),
                after: audit::state(&after),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Keys in `scope`, newest first. Global admin keys only a global caller sees.
    pub async fn list_api_keys(&self, scope: &Scope) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            select_keys!(),
            " WHERE substr(COALESCE(a.path, '/'), 1, length($1)) = $1 ORDER BY k.id DESC"
        ))
        .bind(scope.path_prefix())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// The caller behind a key's hash, if the key exists and is not revoked.
    pub async fn authenticate(&self, hash: &ApiKeyHash) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query(
            "SELECT k.id, k.name, k.role, k.agency_code, a.path
             FROM api_keys k LEFT JOIN agencies a ON a.code = k.agency_code
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(principal_from_row).transpose()
    }

    /// Whether any admin key is still valid.
    pub async fn has_admin_key(&self) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(count > 0)
    }
}
