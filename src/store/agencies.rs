//! Agencies and their tree.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;

use super::audit::{self, Change};
use super::{Store, StoreError, parse_time};
use crate::domain::agency::NewAgency;
use crate::domain::audit::Actor;
use crate::domain::{Agency, AgencyCode, AgencyLevel, Scope, Timestamp, ValidationError};

/// The columns that make an [`Agency`], as a literal for `concat!`.
macro_rules! select_agencies {
    () => {
        "SELECT code, name, level, parent_code, path, created_at FROM agencies"
    };
}

fn agency_from_row(row: &AnyRow) -> Result<Agency, StoreError> {
    let level: String = row.try_get("level")?;
    Ok(Agency {
        code: AgencyCode::from_stored(row.try_get("code")?),
        name: row.try_get("name")?,
        level: AgencyLevel::parse("level", &level).map_err(StoreError::corrupt)?,
        parent_code: row
            .try_get::<Option<String>, _>("parent_code")?
            .map(AgencyCode::from_stored),
        path: row.try_get("path")?,
        created_at: parse_time(row, "created_at")?,
    })
}

/// What an import of the agency list did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgencyImportSummary {
    pub created: usize,
    pub renamed: usize,
    pub unchanged: usize,
}

pub(super) async fn find_agency(
    conn: &mut Conn<'_>,
    code: &str,
) -> Result<Option<Agency>, StoreError> {
    let row = sqlx::query(concat!(select_agencies!(), " WHERE code = $1"))
        .bind(code)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(agency_from_row).transpose()
}

/// The agency `code` if it exists and lies in `scope`.
pub(super) async fn find_in_scope(
    conn: &mut Conn<'_>,
    scope: &Scope,
    code: &str,
) -> Result<Agency, StoreError> {
    find_agency(conn, code)
        .await?
        .filter(|agency| scope.contains(agency))
        .ok_or_else(|| StoreError::AgencyNotFound(code.to_owned()))
}

/// Inserts `new` under its parent (which must be in `scope`), with its audit record.
async fn insert_agency(
    conn: &mut Conn<'_>,
    actor: &Actor,
    scope: &Scope,
    new: &NewAgency,
    now: Timestamp,
) -> Result<Agency, StoreError> {
    let parent = match &new.parent_code {
        Some(code) => Some(find_in_scope(conn, scope, code.as_str()).await?),
        None if *scope != Scope::All => {
            return Err(StoreError::Invalid(ValidationError::new(
                "parent_code",
                "a key scoped to an agency can only create agencies below it",
            )));
        }
        None => None,
    };
    if !new.level.may_sit_under(parent.as_ref().map(|p| p.level)) {
        return Err(StoreError::Invalid(ValidationError::new(
            "level",
            format!(
                "a {} cannot sit under {}",
                new.level.as_str(),
                parent.as_ref().map_or("nothing", |p| p.level.as_str())
            ),
        )));
    }
    let agency = Agency {
        code: new.code.clone(),
        name: new.name.clone(),
        level: new.level,
        parent_code: new.parent_code.clone(),
        path: Agency::child_path(parent.as_ref(), &new.code),
        created_at: now,
    };
    let inserted = sqlx::query(
        "INSERT INTO agencies (code, name, level, parent_code, path, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (code) DO NOTHING",
    )
    .bind(agency.code.as_str())
    .bind(&agency.name)
    .bind(agency.level.as_str())
    .bind(agency.parent_code.as_ref().map(AgencyCode::as_str))
    .bind(&agency.path)
    .bind(now.to_stored())
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::AgencyExists(agency.code.to_string()));
    }
    audit::record(
        conn,
        actor,
        Change {
            action: "agency.created",
            object_type: "agency",
            object_id: agency.code.as_str(),
            agency: Some((agency.code.as_str(), &agency.path)),
            before: None,
            after: audit::state(&agency),
            at: now,
        },
    )
    .await?;
    Ok(agency)
}

impl Store {
    pub async fn create_agency(
        &self,
        actor: &Actor,
        scope: &Scope,
        new: &NewAgency,
    ) -> Result<Agency, StoreError> {
        let mut tx = self.begin_write().await?;
        let agency = insert_agency(&mut tx.conn(), actor, scope, new, Timestamp::now()).await?;
        tx.commit().await?;
        Ok(agency)
    }

    /// Imports an agency list in one transaction: new agencies are created
    /// (parents first, whatever the row order), existing ones renamed if
    /// their name changed; a row that contradicts the stored tree refuses
    /// the whole list. Rows are `(line number, agency)`.
    pub async fn import_agencies(
        &self,
        actor: &Actor,
        scope: &Scope,
        rows: &[(usize, NewAgency)],
    ) -> Result<AgencyImportSummary, StoreError> {
        let now = Timestamp::now();
        let mut summary = AgencyImportSummary::default();
        let mut tx = self.begin_large_write().await?;
        let mut pending: Vec<&(usize, NewAgency)> = Vec::new();
        for row @ (line, new) in rows {
            if rows
                .iter()
                .any(|(l, other)| other.code == new.code && l < line)
            {
                return Err(StoreError::ImportRefused {
                    line: *line,
                    message: format!("agency {} appears twice", new.code),
                });
            }
            match find_agency(&mut tx.conn(), new.code.as_str()).await? {
                None => pending.push(row),
                Some(existing) => {
                    if !scope.contains(&existing) {
                        return Err(StoreError::ImportRefused {
                            line: *line,
                            message: format!("agency {} is outside this key's scope", new.code),
                        });
                    }
                    if existing.level != new.level || existing.parent_code != new.parent_code {
                        return Err(StoreError::ImportRefused {
                            line: *line,
                            message: format!(
                                "agency {} exists with another level or parent",
                                new.code
                            ),
                        });
                    }
                    if existing.name == new.name {
                        summary.unchanged += 1;
                        continue;
                    }
                    sqlx::query("UPDATE agencies SET name = $1, updated_at = $2 WHERE code = $3")
                        .bind(&new.name)
                        .bind(now.to_stored())
                        .bind(new.code.as_str())
                        .execute(&mut tx.conn())
                        .await?;
                    let renamed = Agency {
                        name: new.name.clone(),
                        ..existing.clone()
                    };
                    audit::record(
                        &mut tx.conn(),
                        actor,
                        Change {
                            action: "agency.renamed",
                            object_type: "agency",
                            object_id: existing.code.as_str(),
                            agency: Some((existing.code.as_str(), &existing.path)),
                            before: audit::state(&existing),
                            after: audit::state(&renamed),
                            at: now,
                        },
                    )
                    .await?;
                    summary.renamed += 1;
                }
            }
        }
        // Create parents before children: take every row whose parent now
        // exists, until none is left or none can be taken.
        while !pending.is_empty() {
            let mut waiting = Vec::new();
            for row @ (line, new) in pending.iter().copied() {
                let parent_waits = new.parent_code.as_ref().is_some_and(|parent| {
                    rows.iter().any(|(_, other)| &other.code == parent)
                        && pending.iter().any(|(_, p)| &p.code == parent)
                });
                if parent_waits {
                    waiting.push(row);
                    continue;
                }
                insert_agency(&mut tx.conn(), actor, scope, new, now)
                    .await
                    .map_err(|err| StoreError::ImportRefused {
                        line: *line,
                        message: err.to_string(),
                    })?;
                summary.created += 1;
            }
            if waiting.len() == pending.len() {
                let (line, new) = waiting[0];
                return Err(StoreError::ImportRefused {
                    line: *line,
                    message: format!("agency {} is part of a parent cycle", new.code),
                });
            }
            pending = waiting;
        }
        tx.commit().await?;
        Ok(summary)
    }

    /// Agencies in `scope`, each after its parent.
    pub async fn list_agencies(&self, scope: &Scope) -> Result<Vec<Agency>, StoreError> {
        let rows = sqlx::query(concat!(
            select_agencies!(),
            " WHERE substr(path, 1, length($1)) = $1 ORDER BY path"
        ))
        .bind(scope.path_prefix())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(agency_from_row).collect()
    }

    /// The agency `code`, if it lies in `scope`.
    pub async fn get_agency(&self, scope: &Scope, code: &str) -> Result<Agency, StoreError> {
        let mut conn = self.pool.acquire().await?;
        find_in_scope(&mut Conn::from(&mut *conn), scope, code).await
    }
}

/// The path of agency `code`, if it is one.
pub(super) async fn path_of(
    conn: &mut Conn<'_>,
    code: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let Some(code) = code else {
        return Ok(None);
    };
    Ok(
        sqlx::query_scalar("SELECT path FROM agencies WHERE code = $1")
            .bind(code)
            .fetch_optional(conn)
            .await?,
    )
}
