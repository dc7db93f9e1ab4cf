//! `/v1/exceptions`: payments that wait for a finance officer.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, page_limit, query_agency, query_choice, query_text, query_time};
use crate::domain::payment::{ExceptionKind, ExceptionStatus, PaymentException};
use crate::domain::{AgencyCode, Role, Timestamp, Vnd};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::ExceptionFilter;

#[derive(Serialize)]
struct ExceptionView<'a> {
    id: &'a str,
    kind: ExceptionKind,
    status: ExceptionStatus,
    payment_id: Option<&'a str>,
    invoice_id: Option<&'a str>,
    agency_code: Option<&'a AgencyCode>,
    amount: Option<Vnd>,
    detail: &'a str,
    opened_at: Timestamp,
}

impl<'a> From<&'a PaymentException> for ExceptionView<'a> {
    fn from(x: &'a PaymentException) -> Self {
        ExceptionView {
            id: &x.id,
            kind: x.kind,
            status: x.status,
            payment_id: x.payment_id.as_deref(),
            invoice_id: x.invoice_id.as_deref(),
            agency_code: x.agency_code.as_ref(),
            amount: x.amount,
            detail: &x.detail,
            opened_at: x.opened_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    kind: Option<String>,
    status: Option<String>,
    agency_code: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Finance, Role::Admin])?;
    let query = query.into_inner();
    let filter = ExceptionFilter {
        kind: query_choice(
            "kind",
            query.kind.as_deref(),
            ExceptionKind::parse,
            &ExceptionKind::names(),
        )?,
        status: query_choice(
            "status",
            query.status.as_deref(),
            ExceptionStatus::parse,
            "open, resolved",
        )?,
        agency_code: query_agency(query.agency_code.as_deref())?,
        opened_from: query_time("from", query.from.as_deref())?,
        opened_to: query_time("to", query.to.as_deref())?,
        after_id: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_exceptions(caller.scope(), &filter).await?;
    Ok(super::page_of(&page, ExceptionView::from))
}
