//! Officers: created, listed, disabled and reset by an admin (or the CLI),
//! and what their sign-in reads and records: failures in a row and the
//! lock they lead to, and the second factor's time step, used once.

use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::api_keys::{Principal, scope_of};
use super::audit::{self, Change};
use super::batch::Statement;
use super::{Store, StoreError};
use crate::domain::audit::Actor;
use crate::domain::officer::{Email, OfficerRole};
use crate::domain::{AgencyCode, Scope, Timestamp, ValidationError};

/// An officer as an admin sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerRecord {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: OfficerRole,
    pub agency_code: Option<String>,
    /// The agency's path, for the audit records of changes to the officer.
    pub agency_path: Option<String>,
    /// Whether the second factor is set up.
    pub second_factor: bool,
    pub disabled_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// An officer to create; the password already hashed.
pub struct NewOfficer<'a> {
    pub email: &'a Email,
    pub name: &'a str,
    pub role: OfficerRole,
    pub agency: Option<&'a AgencyCode>,
    pub password_hash: &'a str,
}

/// What signing in as an officer reads.
#[derive(Debug, Clone)]
pub struct SignInCandidate {
    pub principal: Principal,
    pub role: OfficerRole,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// The second factor's secret (base32), and whether it is confirmed.
    pub totp_secret: Option<String>,
    pub totp_confirmed: bool,
    pub totp_last_step: Option<u64>,
    pub locked_until: Option<Timestamp>,
    pub disabled: bool,
}

/// Failed sign-ins in a row before the officer is locked out for a while.
pub const FAILURES_BEFORE_LOCK: i64 = 5;

/// How long the lock after `failures` failures in a row lasts: a minute
/// at the fifth, doubling with each one after, at most an hour.
pub fn lock_for(failures: i64) -> Option<time::Duration> {
    (failures >= FAILURES_BEFORE_LOCK).then(|| {
        let doublings = u32::try_from(failures - FAILURES_BEFORE_LOCK)
            .unwrap_or(u32::MAX)
            .min(6);
        time::Duration::minutes((1_i64 << doublings).min(60))
    })
}

const SELECT_OFFICERS: &str = "SELECT o.id, o.email, o.name, o.role, o.agency_code, a.path,
        o.password_hash, o.totp_secret, o.totp_confirmed_at, o.totp_last_step,
        o.locked_until, o.disabled_at, o.created_at
     FROM officers o LEFT JOIN agencies a ON a.code = o.agency_code";

/// The principal an officer's row stands for.
pub(super) fn officer_principal(
    id: String,
    email: &str,
    name: &str,
    role: OfficerRole,
    scope: Scope,
) -> Principal {
    Principal {
        actor_name: format!("officer:{id}"),
        display: format!("{name} <{email}>"),
        key_id: id,
        role: role.role(),
        scope,
        officer_role: Some(role),
    }
}

fn role_of(row: &AnyRow) -> Result<OfficerRole, StoreError> {
    let role: String = row.try_get("role")?;
    OfficerRole::parse("role", &role).map_err(StoreError::corrupt)
}

fn record_from_row(row: &AnyRow) -> Result<OfficerRecord, StoreError> {
    Ok(OfficerRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role_of(row)?,
        agency_code: row.try_get("agency_code")?,
        agency_path: row.try_get("path")?,
        second_factor: row
            .try_get::<Option<String>, _>("totp_confirmed_at")?
            .is_some(),
        disabled_at: super::parse_optional_time(row, "disabled_at")?,
        created_at: super::parse_time(row, "created_at")?,
    })
}

fn candidate_from_row(row: &AnyRow) -> Result<SignInCandidate, StoreError> {
    let role = role_of(row)?;
    let email: String = row.try_get("email")?;
    let name: String = row.try_get("name")?;
    let scope = scope_of(row.try_get("agency_code")?, row.try_get("path")?)?;
    let last_step: Option<i64> = row.try_get("totp_last_step")?;
    Ok(SignInCandidate {
        principal: officer_principal(row.try_get("id")?, &email, &name, role, scope),
        role,
        email,
        name,
        password_hash: row.try_get("password_hash")?,
        totp_secret: row.try_get("totp_secret")?,
        totp_confirmed: row
            .try_get::<Option<String>, _>("totp_confirmed_at")?
            .is_some(),
        totp_last_step: last_step.and_then(|step| u64::try_from(step).ok()),
        locked_until: super::parse_optional_time(row, "locked_until")?,
        disabled: row.try_get::<Option<String>, _>("disabled_at")?.is_some(),
    })
}

/// The agency and path an officer's audit records are kept under.
fn agency_of(record: &OfficerRecord) -> Option<(String, String)> {
    record.agency_code.clone().zip(record.agency_path.clone())
}

impl Store {
    /// Whether any officer exists: until one does, an admin key may sign
    /// in to the console (the first run).
    pub async fn has_officers(&self) -> Result<bool, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM officers")
            .fetch_one(&self.pool)
            .await?;
        Ok(count > 0)
    }

    /// Creates an officer in `scope`: their agency must be in it, and only
    /// an admin may work on the whole service. Audited.
    pub async fn create_officer(
        &self,
        actor: &Actor,
        scope: &Scope,
        new: &NewOfficer<'_>,
    ) -> Result<OfficerRecord, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let path = match new.agency {
            Some(code) => Some(
                super::agencies::find_in_scope(&mut tx.conn(), scope, code.as_str())
                    .await?
                    .path,
            ),
            None if new.role == OfficerRole::Admin && *scope == Scope::All => None,
            None => {
                return Err(StoreError::Invalid(ValidationError::new(
                    "agency",
                    "an officer works for an agency; only an admin of the whole service has none",
                )));
            }
        };
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM officers WHERE email = $1")
            .bind(new.email.as_str())
            .fetch_optional(&mut tx.conn())
            .await?;
        if taken.is_some() {
            return Err(StoreError::Invalid(ValidationError::new(
                "email",
                "another officer already signs in with this email",
            )));
        }
        let record = OfficerRecord {
            id: uuid::Uuid::now_v7().to_string(),
            email: new.email.as_str().to_owned(),
            name: new.name.to_owned(),
            role: new.role,
            agency_code: new.agency.map(|code| code.as_str().to_owned()),
            agency_path: path,
            second_factor: false,
            disabled_at: None,
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO officers (id, email, name, role, agency_code, password_hash,
                 password_changed_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)",
        )
        .bind(&record.id)
        .bind(&record.email)
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(record.agency_code.as_deref())
        .bind(new.password_hash)
        .bind(now.to_stored())
        .execute(&mut tx.conn())
        .await?;
        let agency = agency_of(&record);
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "officer.created",
                object_type: "officer",
                object_id: &record.id,
                agency: agency.as_ref().map(|(c, p)| (c.as_str(), p.as_str())),
                before: None,
                after: Some(json!({
                    "email": record.email,
                    "name": record.name,
                    "role": record.role.as_str(),
                    "agency_code": record.agency_code,
                })),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The officers in `scope`, by email.
    pub async fn officers(&self, scope: &Scope) -> Result<Vec<OfficerRecord>, StoreError> {
        self.officers_where(scope, "", None).await
    }

    /// The officers in `scope` (by their agency's path) that `condition`
    /// (on `$2`, `value`) also picks, by email.
    async fn officers_where(
        &self,
        scope: &Scope,
        condition: &'static str,
        value: Option<&str>,
    ) -> Result<Vec<OfficerRecord>, StoreError> {
        let sql = format!(
            "{SELECT_OFFICERS} WHERE substr(coalesce(a.path, '/'), 1, length($1)) = $1{condition}
             ORDER BY o.email"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(scope.path_prefix());
        if let Some(value) = value {
            query = query.bind(value.to_owned());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    /// The officer who signs in with `email`, in `scope`.
    pub async fn officer_by_email(
        &self,
        scope: &Scope,
        email: &Email,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        let found = self
            .officers_where(scope, " AND o.email = $2", Some(email.as_str()))
            .await?;
        Ok(found.into_iter().next())
    }

    /// Officer `id`, in `scope`.
    pub async fn officer_in_scope(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<OfficerRecord>, StoreError> {
        let found = self
            .officers_where(scope, " AND o.id = $2", Some(id))
            .await?;
        Ok(found.into_iter().next())
    }

    /// What signing in with `email` needs to know.
    pub async fn officer_for_sign_in(
        &self,
        email: &Email,
    ) -> Result<Option<SignInCandidate>, StoreError> {
        self.candidate_where("o.email = $1", email.as_str()).await
    }

    /// The same of officer `id`, for their own pages (their password,
    /// their second factor).
    pub async fn officer_signing_in(
        &self,
        id: &str,
    ) -> Result<Option<SignInCandidate>, StoreError> {
        self.candidate_where("o.id = $1", id).await
    }

    async fn candidate_where(
        &self,
        condition: &'static str,
        value: &str,
    ) -> Result<Option<SignInCandidate>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT_OFFICERS} WHERE {condition}"
        )))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(candidate_from_row).transpose()
    }

    /// Counts a failed sign-in of officer `id` (a wrong password or
    /// code); from the fifth in a row, locks sign-in for a while (see
    /// [`lock_for`]). Audited. Returns until when sign-in is locked.
    pub async fn record_failed_sign_in(
        &self,
        actor: &Actor,
        id: &str,
        what: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let failures: Option<i64> = sqlx::query_scalar(
            "UPDATE officers SET failed_sign_ins = failed_sign_ins + 1, updated_at = $1
             WHERE id = $2 RETURNING failed_sign_ins",
        )
        .bind(now.to_stored())
        .bind(id)
        .fetch_optional(&mut tx.conn())
        .await?;
        let Some(failures) = failures else {
            tx.rollback().await?;
            return Ok(None);
        };
        let locked_until = lock_for(failures).and_then(|lock| now.plus(lock));
        if let Some(until) = locked_until {
            sqlx::query("UPDATE officers SET locked_until = $1 WHERE id = $2")
                .bind(until.to_stored())
                .bind(id)
                .execute(&mut tx.conn())
                .await?;
        }
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "officer.sign_in_failed",
                object_type: "officer",
                object_id: id,
                agency: None,
                before: None,
                after: Some(json!({
                    "reason": what,
                    "failures_in_a_row": failures,
                    "locked_until": locked_until,
                })),
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(locked_until)
    }

    /// Takes time step `step` of officer `id`'s second factor, unless a
    /// code of it or of a later step was taken already (a code is used
    /// once, whichever process sees it).
    pub async fn take_second_factor_step(&self, id: &str, step: u64) -> Result<bool, StoreError> {
        let step = i64::try_from(step).map_err(StoreError::corrupt)?;
        let done = self
            .write_one(
                sqlx::query(
                    "UPDATE officers SET totp_last_step = $1, failed_sign_ins = 0, locked_until = NULL
                     WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)",
                )
                .bind(step)
                .bind(id),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A sign-in that needed no code succeeded: failures in a row start
    /// again from none.
    pub async fn clear_failed_sign_ins(&self, id: &str) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query(
                "UPDATE officers SET failed_sign_ins = 0, locked_until = NULL WHERE id = $1",
            )
            .bind(id),
        )
        .await?;
        Ok(())
    }

    /// The secret officer `id` is enrolling with: the one kept since the
    /// enrolment began, or `fresh` (base32) from now on. None once the
    /// second factor is confirmed (an admin resets it first).
    pub async fn second_factor_to_enrol(
        &self,
        id: &str,
        fresh: &str,
    ) -> Result<Option<String>, StoreError> {
        self.write_one(
            sqlx::query(
                "UPDATE officers SET totp_secret = $1
                 WHERE id = $2 AND totp_secret IS NULL AND totp_confirmed_at IS NULL",
            )
            .bind(fresh)
            .bind(id),
        )
        .await?;
        let row = sqlx::query("SELECT totp_secret, totp_confirmed_at FROM officers WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(row)
                if row
                    .try_get::<Option<String>, _>("totp_confirmed_at")?
                    .is_none() =>
            {
                row.try_get("totp_secret")?
            }
            _ => None,
        })
    }

    /// Confirms officer `id`'s second factor with the time step of its
    /// first code. Audited.
    pub async fn confirm_second_factor(
        &self,
        actor: &Actor,
        id: &str,
        step: u64,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::now();
        let step = i64::try_from(step).map_err(StoreError::corrupt)?;
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE officers SET totp_confirmed_at = $1, totp_last_step = $2, updated_at = $1
             WHERE id = $3 AND totp_secret IS NOT NULL AND totp_confirmed_at IS NULL",
        )
        .bind(now.to_stored())
        .bind(step)
        .bind(id)
        .execute(&mut tx.conn())
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action: "officer.second_factor_enrolled",
                object_type: "officer",
                object_id: id,
                agency: None,
                before: None,
                after: None,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sets officer `id`'s password (its hash) and ends their other
    /// sessions: `reset` when an admin sets it, not the officer. Audited.
    pub async fn set_officer_password(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let action = if keep_session.is_some() {
            "officer.password_changed"
        } else {
            "officer.password_reset"
        };
        let update = Statement::new(
            "UPDATE officers SET password_hash = $1, password_changed_at = $2,
                 failed_sign_ins = 0, locked_until = NULL, updated_at = $2
             WHERE id = $3",
        )
        .bind(password_hash)
        .bind(Timestamp::now().to_stored())
        .bind(id);
        self.change_officer(actor, scope, id, action, update, keep_session)
            .await
    }

    /// Clears officer `id`'s second factor: they enrol again at their next
    /// sign-in. Ends their sessions. Audited.
    pub async fn reset_second_factor(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
    ) -> Result<(), StoreError> {
        let update = Statement::new(
            "UPDATE officers SET totp_secret = NULL, totp_confirmed_at = NULL,
                 totp_last_step = NULL, updated_at = $1
             WHERE id = $2",
        )
        .bind(Timestamp::now().to_stored())
        .bind(id);
        self.change_officer(
            actor,
            scope,
            id,
            "officer.second_factor_reset",
            update,
            None,
        )
        .await
    }

    /// Disables officer `id`: they can no longer sign in, and their
    /// sessions end. Audited.
    pub async fn disable_officer(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
    ) -> Result<(), StoreError> {
        let update = Statement::new(
            "UPDATE officers SET disabled_at = $1, updated_at = $1
             WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(Timestamp::now().to_stored())
        .bind(id);
        self.change_officer(actor, scope, id, "officer.disabled", update, None)
            .await
    }

    /// Runs `update` on officer `id` (in `scope`), ends their sessions but
    /// `keep_session`, and audits `action`, in one transaction.
    async fn change_officer(
        &self,
        actor: &Actor,
        scope: &Scope,
        id: &str,
        action: &str,
        update: Statement,
        keep_session: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let record = self
            .officer_in_scope(scope, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.begin_write().await?;
        update.execute(&mut tx.conn()).await?;
        sqlx::query("DELETE FROM console_sessions WHERE officer_id = $1 AND token_hash <> $2")
            .bind(id)
            .bind(keep_session.unwrap_or_default())
            .execute(&mut tx.conn())
            .await?;
        let agency = agency_of(&record);
        audit::record(
            &mut tx.conn(),
            actor,
            Change {
                action,
                object_type: "officer",
                object_id: id,
                agency: agency.as_ref().map(|(c, p)| (c.as_str(), p.as_str())),
                before: None,
                after: None,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
