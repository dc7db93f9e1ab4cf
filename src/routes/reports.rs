//! `/v1/reports/cashless`: the share of fees paid without cash, for
//! finance officers, as JSON or as CSV for a spreadsheet.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, query_agency, query_choice};
use crate::domain::rates::{Basis, CashlessReport, Figures, Group, GroupBy, Period, ReportQuery};
use crate::domain::{AgencyCode, Role};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;

/// The report as the API shows it: what was asked, including which
/// payments were counted (`basis`), then the groups and their total.
#[derive(Serialize)]
struct ReportView<'a> {
    from: String,
    to: String,
    basis: Basis,
    group_by: GroupBy,
    agency_code: Option<&'a AgencyCode>,
    include_descendants: bool,
    groups: &'a [Group],
    total: &'a Figures,
}

impl<'a> From<&'a CashlessReport> for ReportView<'a> {
    fn from(report: &'a CashlessReport) -> Self {
        let query = &report.query;
        ReportView {
            from: query.period.from(),
            to: query.period.to(),
            basis: query.basis,
            group_by: query.group_by,
            agency_code: query.agency_code.as_ref(),
            include_descendants: query.include_descendants,
            groups: &report.groups,
            total: &report.total,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashlessQuery {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    basis: Option<String>,
    agency_code: Option<String>,
    include_descendants: Option<String>,
    format: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidQuery, message)
}

/// Whether the `Accept` header asks for CSV (`text/csv`, not with `q=0`).
fn accepts_csv(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            essence.eq_ignore_ascii_case("text/csv") && !refused
        })
}

pub async fn cashless(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<CashlessQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Finance, Role::Admin])?;
    let query = query.into_inner();
    let (Some(from), Some(to)) = (query.from.as_deref(), query.to.as_deref()) else {
        return Err(invalid("from and to are required, as YYYY-MM-DD"));
    };
    let period = Period::parse(from, to).map_err(|e| invalid(e.to_string()))?;
    let agency_code = query_agency(query.agency_code.as_deref())?;
    let include_descendants = query_choice(
        "include_descendants",
        query.include_descendants.as_deref(),
        |text| match text {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        "true, false",
    )?;
    let report_query = ReportQuery::new(
        period,
        query_choice(
            "basis",
            query.basis.as_deref(),
            Basis::parse,
            &Basis::names(),
        )?
        .unwrap_or(Basis::Recorded),
        query_choice(
            "group_by",
            query.group_by.as_deref(),
            GroupBy::parse,
            &GroupBy::names(),
        )?
        .unwrap_or(GroupBy::Level),
        agency_code,
        include_descendants,
    )
    .map_err(|e| invalid(e.to_string()))?;
    // An explicit `format` wins over `Accept`.
    let format = query_choice(
        "format",
        query.format.as_deref(),
        |text| match text {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        },
        "json, csv",
    )?
    .unwrap_or(if accepts_csv(&req) {
        Format::Csv
    } else {
        Format::Json
    });
    let report = state
        .store
        .cashless_report(caller.scope(), &report_query)
        .await?;
    let mut response = HttpResponse::Ok();
    // The answer's form may depend on `Accept`: caches must keep them apart.
    response.insert_header((header::VARY, "Accept"));
    Ok(match format {
        Format::Json => response.json(ReportView::from(&report)),
        Format::Csv => {
            // The file's name says what it counts, as the JSON's fields do.
            let name = format!(
                "cashless-by-{}-{}-{}-to-{}.csv",
                report_query.group_by.as_str(),
                report_query.basis.as_str(),
                report_query.period.from(),
                report_query.period.to(),
            );
            response
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ))
                .body(report.to_csv())
        }
    })
}
