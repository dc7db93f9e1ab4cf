//! `/v1/audit`: the audit log, newest first (admin and finance).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Caller, page_limit, query_text, query_time};
use crate::domain::Role;
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::AuditFilter;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    object_type: Option<String>,
    object_id: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Finance])?;
    let query = query.into_inner();
    let before_id = query
        .cursor
        .as_deref()
        .map(|cursor| {
            cursor
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(ErrorCode::InvalidQuery, "cursor is not valid"))
        })
        .transpose()?;
    let filter = AuditFilter {
        object_type: query_text("object_type", query.object_type)?,
        object_id: query_text("object_id", query.object_id)?,
        action: query_text("action", query.action)?,
        actor: query_text("actor", query.actor)?,
        from: query_time("from", query.from.as_deref())?,
        to: query_time("to", query.to.as_deref())?,
        before_id,
        limit: page_limit(query.limit)?,
    };
    let records = state.store.list_audit(caller.scope(), &filter).await?;
    let next_cursor = (records.len() as i64 == filter.limit)
        .then(|| records.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(HttpResponse::Ok().json(super::Page {
        items: records,
        next_cursor,
    }))
}
