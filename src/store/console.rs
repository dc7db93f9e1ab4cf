//! What the finance console needs beyond the API's queries: its sessions,
//! and a search of payments by the codes an officer has at hand.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::api_keys::scope_of;
use super::audit::{self, Change};
use super::conn::Conn;
use super::payments::payment_from_row;
use super::query::{Filtered, Listed, Value, page};
use super::{Principal, Store, StoreError};
use crate::domain::audit::Actor;
use crate::domain::invoice::national_phone;
use crate::domain::officer::OfficerRole;
use crate::domain::payment::Payment;
use crate::domain::{AgencyCode, AgencyLevel, Scope, Timestamp, Vnd};

/// What the console's payments page looks for. Every field narrows.
#[derive(Debug, Clone, Default)]
pub struct PaymentSearch {
    /// A payment code, dossier code, provider transaction id, payer phone
    /// or payment id, matched exactly.
    pub text: Option<String>,
    /// One payment, by its id.
    pub id: Option<String>,
    /// The payments of one invoice.
    pub invoice_id: Option<String>,
    pub agency_code: Option<AgencyCode>,
    /// Only the named agency, not those below it.
    pub agency_only: bool,
    pub level: Option<AgencyLevel>,
    /// Days collected (`YYYY-MM-DD`, Vietnam), both ends included: the day
    /// the cashless report places a payment in its period.
    pub from_day: Option<String>,
    pub to_day: Option<String>,
    /// `Some(true)`: cash only; `Some(false)`: cashless only.
    pub cash: Option<bool>,
    /// Only payments applied to an invoice: those the report counts.
    pub counted: bool,
    pub after_id: Option<String>,
    pub limit: i64,
}

/// A payment with the codes of its invoice.
#[derive(Debug, Clone)]
pub struct FoundPayment {
    pub payment: Payment,
    pub payment_code: Option<String>,
    pub dossier_code: Option<String>,
}

/// How many payments a search finds in all, and their sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTotals {
    pub count: i64,
    pub amount: Vnd,
}

/// An invoice found by a code an officer typed.
#[derive(Debug, Clone)]
pub struct InvoiceHit {
    pub id: String,
    pub payment_code: String,
    pub dossier_code: String,
    pub agency_code: AgencyCode,
    pub status: String,
    pub total: Vnd,
}

const SELECT_FOUND: &str = concat!(
    "SELECT p.id, p.channel, p.provider_txn_id, p.amount, p.invoice_id,
        p.attempt_id, p.agency_code, p.reference, p.exception_kind, p.amount_held, p.source, p.paid_at,
        p.recorded_at, i.payment_code AS invoice_payment_code, i.dossier_code AS invoice_dossier_code, ",
    name_of!("p.recorded_by"),
    " AS recorded_by_name
     FROM payments p LEFT JOIN agencies a ON a.code = p.agency_code
     LEFT JOIN invoices i ON i.id = p.invoice_id"
);

const SELECT_TOTALS: &str =
    "SELECT COUNT(*) AS payments, CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) AS amount
     FROM payments p LEFT JOIN agencies a ON a.code = p.agency_code
     LEFT JOIN invoices i ON i.id = p.invoice_id";

fn found_from_row(row: &AnyRow) -> Result<FoundPayment, StoreError> {
    Ok(FoundPayment {
        payment: payment_from_row(row)?,
        payment_code: row.try_get("invoice_payment_code")?,
        dossier_code: row.try_get("invoice_dossier_code")?,
    })
}

/// The SQL expression of the payer's stored phone in its national form, to
/// compare with [`national_phone`].
const NATIONAL_PHONE_SQL: &str = "CASE WHEN i.payer_phone LIKE '+84%' THEN '0' || substr(i.payer_phone, 4) \
     WHEN i.payer_phone LIKE '84%' AND length(i.payer_phone) = 11 THEN '0' || substr(i.payer_phone, 3) \
     ELSE i.payer_phone END";

/// A console session: whose, and whether it may only enrol the second
/// factor so far.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub principal: Principal,
    pub enrolling: bool,
}

impl Store {
    /// Opens a console session for `principal` (an officer, or an admin
    /// key on the first run): stores `token_hash` and audits the sign-in.
    /// An `enrolling` session opens only the second factor's enrolment.
    pub async fn open_console_session(
        &self,
        principal: &Principal,
        token_hash: &str,
        actor: Actor,
        enrolling: bool,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now();
        let mut tx = self.begin_write().await?;
        let (key, officer) = match principal.officer_role {
            Some(_) => (None, Some(principal.key_id.as_str())),
            None => (Some(principal.key_id.as_str()), None),
        };
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, api_key_id, officer_id, stage, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(token_hash)
        .bind(key)
        .bind(officer)
        .bind(if enrolling { "enrolling" } else { "signed_in" })
        .bind(now.to_stored())
        .execute(&mut tx.conn())
        .await?;
        let agency = match &principal.scope {
            Scope::All => None,
            Scope::Subtree { code, path } => Some((code.as_str(), path.as_str())),
        };
        audit::record(
            &mut tx.conn(),
            &actor,
            Change {
                action: if enrolling {
                    "console.password_accepted"
                } else {
                    "console.signed_in"
                },
                object_type: if officer.is_some() {
                    "officer"
                } else {
                    "api_key"
                },
                object_id: &principal.key_id,
                agency,
                before: None,
                after: None,
                at: now,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session `token_hash`, if it exists, its key is not revoked (or
    /// its officer not disabled) and it was used within `idle`; its use is
    /// recorded. A session found idle, revoked or disabled is deleted.
    pub async fn console_session(
        &self,
        token_hash: &str,
        idle: time::Duration,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let now = Timestamp::now();
        let row = sqlx::query(
            "SELECT s.last_seen_at, s.stage, s.api_key_id, s.officer_id,
                    k.name AS key_name, k.role AS key_role, k.agency_code AS key_agency,
                    ka.path AS key_path, k.revoked_at,
                    o.name AS officer_name, o.email, o.role AS officer_role,
                    o.agency_code AS officer_agency, oa.path AS officer_path, o.disabled_at
             FROM console_sessions s
             LEFT JOIN api_keys k ON k.id = s.api_key_id
             LEFT JOIN agencies ka ON ka.code = k.agency_code
             LEFT JOIN officers o ON o.id = s.officer_id
             LEFT JOIN agencies oa ON oa.code = o.agency_code
             WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let last_seen = super::parse_time(&row, "last_seen_at")?;
        let ended = super::parse_optional_time(&row, "revoked_at")?.is_some()
            || super::parse_optional_time(&row, "disabled_at")?.is_some();
        let expired = last_seen.plus(idle).is_none_or(|until| until <= now);
        if ended || expired {
            self.close_console_session(token_hash).await?;
            return Ok(None);
        }
        let principal = match row.try_get::<Option<String>, _>("officer_id")? {
            Some(id) => {
                let role: String = row.try_get("officer_role")?;
                let role = OfficerRole::parse("role", &role).map_err(StoreError::corrupt)?;
                let email: String = row.try_get("email")?;
                let name: String = row.try_get("officer_name")?;
                let scope = scope_of(row.try_get("officer_agency")?, row.try_get("officer_path")?)?;
                super::officers::officer_principal(id, &email, &name, role, scope)
            }
            None => {
                let id: String = row.try_get("api_key_id")?;
                let role: String = row.try_get("key_role")?;
                Principal {
                    actor_name: format!("key:{id}"),
                    display: row.try_get("key_name")?,
                    key_id: id,
                    role: crate::domain::Role::parse("role", &role).map_err(StoreError::corrupt)?,
                    scope: scope_of(row.try_get("key_agency")?, row.try_get("key_path")?)?,
                    officer_role: None,
                }
            }
        };
        let enrolling = row.try_get::<String, _>("stage")? == "enrolling";
        self.write_one(
            sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE token_hash = $2")
                .bind(now.to_stored())
                .bind(token_hash),
        )
        .await?;
        Ok(Some(ConsoleSession {
            principal,
            enrolling,
        }))
    }

    /// The enrolling session `token_hash` has set up its second factor:
    /// the console opens to it.
    pub async fn finish_enrolment(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query("UPDATE console_sessions SET stage = 'signed_in' WHERE token_hash = $1")
                .bind(token_hash),
        )
        .await?;
        Ok(())
    }

    /// Ends the session `token_hash`.
    pub async fn close_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1").bind(token_hash),
        )
        .await?;
        Ok(())
    }

    /// Deletes sessions unused since `before`: they can no longer be used.
    pub async fn forget_idle_console_sessions(&self, before: Timestamp) -> Result<u64, StoreError> {
        let deleted = self
            .write_one(
                sqlx::query("DELETE FROM console_sessions WHERE last_seen_at < $1")
                    .bind(before.to_stored()),
            )
            .await?;
        Ok(deleted.rows_affected())
    }

    /// Payments in `scope` that `search` finds, newest first, a page at a
    /// time, with the count and sum of all it finds.
    pub async fn search_payments(
        &self,
        scope: &Scope,
        search: &PaymentSearch,
    ) -> Result<(Listed<FoundPayment>, PaymentTotals), StoreError> {
        let mut listed = Filtered::new(SELECT_FOUND);
        let mut totals = Filtered::new(SELECT_TOTALS);
        for query in [&mut listed, &mut totals] {
            self.narrow(query, scope, search).await?;
        }
        listed.newest_first("p.id", search.after_id.as_deref(), search.limit);
        let rows = listed.build().fetch_all(&self.pool).await?;
        let found = page(&rows, search.limit, found_from_row, |f| {
            f.payment.id.clone()
        })?;
        let row = totals.build().fetch_one(&self.pool).await?;
        let sums = PaymentTotals {
            count: row.try_get("payments")?,
            amount: Vnd::new(row.try_get("amount")?),
        };
        Ok((found, sums))
    }

    /// Invoices in `scope` whose payment code, dossier code or payer phone
    /// is `text`, newest first, at most 20.
    pub async fn find_invoices(
        &self,
        scope: &Scope,
        text: &str,
    ) -> Result<Vec<InvoiceHit>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.id, i.payment_code, i.dossier_code, i.agency_code, i.status, i.total
             FROM invoices i JOIN agencies a ON a.code = i.agency_code
             WHERE substr(a.path, 1, length($1)) = $1
               AND (i.payment_code = upper($2) OR i.dossier_code = $2 OR i.payer_phone = $2
                    OR {NATIONAL_PHONE_SQL} = $3)
             ORDER BY i.id DESC LIMIT 20",
        )))
        .bind(scope.path_prefix())
        .bind(text)
        .bind(national_phone(text).unwrap_or_default())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InvoiceHit {
                    id: row.try_get("id")?,
                    payment_code: row.try_get("payment_code")?,
                    dossier_code: row.try_get("dossier_code")?,
                    agency_code: AgencyCode::from_stored(row.try_get("agency_code")?),
                    status: row.try_get("status")?,
                    total: Vnd::new(row.try_get("total")?),
                })
            })
            .collect()
    }

    async fn narrow(
        &self,
        query: &mut Filtered,
        scope: &Scope,
        search: &PaymentSearch,
    ) -> Result<(), StoreError> {
        match &search.agency_code {
            Some(code) if search.agency_only => {
                self.scope_to(query, scope, None).await?;
                let mut conn = self.pool.acquire().await?;
                let agency = super::agencies::find_in_scope(
                    &mut Conn::from(&mut *conn),
                    scope,
                    code.as_str(),
                )
                .await?;
                query.and("p.agency_code = {}", Value::Text(agency.code.to_string()));
            }
            code => self.scope_to(query, scope, code.as_ref()).await?,
        }
        if let Some(text) = &search.text {
            let phone = national_phone(text).unwrap_or_default();
            query.and_each(
                &format!(
                    "(p.id = {{1}} OR i.payment_code = upper({{1}}) OR i.dossier_code = {{1}}
                      OR p.provider_txn_id = {{1}} OR i.payer_phone = {{1}} OR {NATIONAL_PHONE_SQL} = {{2}})"
                ),
                vec![Value::Text(text.clone()), Value::Text(phone)],
            );
        }
        if let Some(id) = &search.id {
            query.and("p.id = {}", Value::Text(id.clone()));
        }
        if let Some(invoice_id) = &search.invoice_id {
            query.and("p.invoice_id = {}", Value::Text(invoice_id.clone()));
        }
        if let Some(level) = search.level {
            query.and("a.level = {}", Value::Text(level.as_str().to_owned()));
        }
        if let Some(from) = &search.from_day {
            query.and("p.collected_on >= {}", Value::Text(from.clone()));
        }
        if let Some(to) = &search.to_day {
            query.and("p.collected_on <= {}", Value::Text(to.clone()));
        }
        match search.cash {
            Some(true) => {
                query.and_fixed("p.channel = 'cash'");
            }
            Some(false) => {
                query.and_fixed("p.channel <> 'cash'");
            }
            None => {}
        }
        if search.counted {
            query.and_fixed("p.exception_kind IS NULL");
        }
        Ok(())
    }
}
