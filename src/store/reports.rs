//! Reports: one aggregate query per report, grouped in the database, whose
//! rows the domain adds up (see [`crate::domain::rates`] for what counts).

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::conn::Conn;
use super::query::Placeholders;
use super::{Backend, Store, StoreError};
use crate::domain::payment::Channel;
use crate::domain::rates::{Basis, CashlessReport, GroupBy, GroupKey, ReportQuery, Tally};
use crate::domain::{AgencyCode, AgencyLevel, Scope, Vnd};

/// The day that places a payment in a report's period, by basis. A
/// cashless payment no statement line settles has no settlement day, so
/// it falls in no period on the settled basis.
fn period_day(basis: Basis) -> &'static str {
    match basis {
        Basis::Recorded => "p.collected_on",
        Basis::Settled => {
            "CASE WHEN p.channel = 'cash' THEN p.collected_on ELSE s.settlement_date END"
        }
    }
}

/// The aggregate query: counted payments in the period, in the agencies
/// chosen by `$3`, summed per group and channel: what they paid of their
/// invoices (not what they brought beyond), and what succeeded refunds
/// gave back of that, counted under the payment. `$1` and `$2` are the
/// first and last days; the text is made of fixed pieces only.
fn cashless_sql(query: &ReportQuery, agency_condition: &str) -> String {
    let day = period_day(query.basis);
    let month = format!("substr({day}, 1, 7)");
    let (keys, grouped) = match query.group_by {
        GroupBy::Level => ("a.level AS level, ".to_owned(), "a.level, ".to_owned()),
        GroupBy::Agency => (
            "a.code AS agency_code, a.name AS agency_name, a.level AS level, a.path AS path, "
                .to_owned(),
            "a.code, a.name, a.level, a.path, ".to_owned(),
        ),
        GroupBy::Procedure => (
            "p.procedure_code AS procedure_code, ".to_owned(),
            "p.procedure_code, ".to_owned(),
        ),
        GroupBy::Channel => (String::new(), String::new()),
        GroupBy::Month => (format!("{month} AS month, "), format!("{month}, ")),
    };
    // At most one line settles a payment (settlement_lines_settle_once),
    // so the join never counts a payment twice. A statement still being
    // imported settles nothing until it is done.
    let settlements = match query.basis {
        Basis::Recorded => "",
        Basis::Settled => {
            " LEFT JOIN settlement_lines s ON s.payment_id = p.id AND s.outcome <> 'duplicate_line'
               AND EXISTS (SELECT 1 FROM settlement_files f WHERE f.id = s.file_id AND f.status = 'done')"
        }
    };
    format!(
        "SELECT {keys}p.channel AS channel, CAST(SUM(p.amount - p.amount_held) AS BIGINT) AS amount,
             CAST(SUM(coalesce(g.given_back, 0)) AS BIGINT) AS refunded, COUNT(*) AS payments
         FROM payments p JOIN agencies a ON a.code = p.agency_code{settlements}
         LEFT JOIN (SELECT payment_id, SUM(from_applied) AS given_back FROM refunds
                    WHERE status = 'succeeded' AND from_applied > 0 GROUP BY payment_id) g
             ON g.payment_id = p.id
         WHERE p.exception_kind IS NULL AND {day} >= $1 AND {day} <= $2 AND {agency_condition}
         GROUP BY {grouped}p.channel"
    )
}

/// The names invoices give each of `codes`: when they differ, the greatest
/// (compared as bytes, the same on both backends).
async fn procedure_names(
    pool: &sqlx::AnyPool,
    backend: Backend,
    codes: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    let mut names: HashMap<String, String> = HashMap::new();
    if codes.is_empty() {
        return Ok(names);
    }
    let sql = format!(
        "SELECT DISTINCT procedure_code, procedure_name FROM invoices WHERE procedure_code IN ({})",
        Placeholders::new(backend).list(codes.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
    for code in codes {
        query = query.bind(*code);
    }
    for (code, name) in query.fetch_all(pool).await? {
        let entry = names.entry(code).or_default();
        if name.as_bytes() > entry.as_bytes() {
            *entry = name;
        }
    }
    Ok(names)
}

fn tally_from_row(
    row: &AnyRow,
    group_by: GroupBy,
    procedure_names: &HashMap<String, String>,
) -> Result<Tally, StoreError> {
    let level = |row: &AnyRow| -> Result<AgencyLevel, StoreError> {
        let level: String = row.try_get("level")?;
        AgencyLevel::parse("level", &level).map_err(StoreError::corrupt)
    };
    let channel: String = row.try_get("channel")?;
    let channel = Channel::parse(&channel)
        .ok_or_else(|| StoreError::corrupt(format!("payment channel {channel:?}")))?;
    let key = match group_by {
        GroupBy::Level => GroupKey::Level { level: level(row)? },
        GroupBy::Agency => GroupKey::Agency {
            agency_code: AgencyCode::from_stored(row.try_get("agency_code")?),
            agency_name: row.try_get("agency_name")?,
            level: level(row)?,
            path: row.try_get("path")?,
        },
        GroupBy::Procedure => {
            let procedure_code: String = row.try_get("procedure_code")?;
            GroupKey::Procedure {
                procedure_name: procedure_names
                    .get(&procedure_code)
                    .cloned()
                    .unwrap_or_default(),
                procedure_code,
            }
        }
        GroupBy::Channel => GroupKey::Channel { channel },
        GroupBy::Month => GroupKey::Month {
            month: row.try_get("month")?,
        },
    };
    Ok(Tally {
        key,
        channel,
        amount: Vnd::new(row.try_get("amount")?),
        refunded: Vnd::new(row.try_get("refunded")?),
        count: row.try_get("payments")?,
    })
}

impl Store {
    /// The cashless-rate report asked for, over the agencies in `scope`
    /// (or `query.agency_code`, which must lie in it, and, with
    /// `include_descendants`, those below it), in one aggregate query.
    pub async fn cashless_report(
        &self,
        scope: &Scope,
        query: &ReportQuery,
    ) -> Result<CashlessReport, StoreError> {
        let agency = match &query.agency_code {
            Some(code) => {
                let mut conn = self.pool.acquire().await?;
                Some(
                    super::agencies::find_in_scope(
                        &mut Conn::from(&mut *conn),
                        scope,
                        code.as_str(),
                    )
                    .await?,
                )
            }
            None => None,
        };
        // A subtree is every path its root's path prefixes.
        let subtree = "substr(a.path, 1, length($3)) = $3";
        let (condition, agencies) = match agency {
            Some(agency) if !query.include_descendants => ("a.code = $3", agency.code.to_string()),
            Some(agency) => (subtree, agency.path),
            None => (subtree, scope.path_prefix().to_owned()),
        };
        let sql = cashless_sql(query, condition);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(query.period.from())
            .bind(query.period.to())
            .bind(agencies)
            .fetch_all(&self.pool)
            .await?;
        let names = match query.group_by {
            GroupBy::Procedure => {
                let codes: Vec<String> = rows
                    .iter()
                    .map(|row| row.try_get("procedure_code"))
                    .collect::<Result<_, _>>()?;
                let mut codes: Vec<&str> = codes.iter().map(String::as_str).collect();
                codes.sort_unstable();
                codes.dedup();
                procedure_names(&self.pool, self.backend, &codes).await?
            }
            _ => HashMap::new(),
        };
        let tallies = rows
            .iter()
            .map(|row| tally_from_row(row, query.group_by, &names))
            .collect::<Result<Vec<_>, _>>()?;
        CashlessReport::from_tallies(query.clone(), tallies).map_err(StoreError::corrupt)
    }
}
