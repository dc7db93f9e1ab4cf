//! The API's HTTP handlers, one file per resource, named after the URL;
//! [`crate::http`] declares which path each serves.

pub(crate) mod agencies;
pub(crate) mod attempts;
pub(crate) mod audit;
pub mod callbacks;
pub(crate) mod dossiers;
pub(crate) mod events;
pub(crate) mod exceptions;
mod extract;
pub(crate) mod health;
pub(crate) mod invoices;
pub(crate) mod keys;
pub(crate) mod metrics;
pub(crate) mod pay;
pub(crate) mod payments;
mod rate_limit;
pub(crate) mod refunds;
pub(crate) mod reports;
pub(crate) mod sandbox;
pub(crate) mod settlements;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

pub use extract::{Caller, FileBody, JsonBody, RawBody, idempotency_key};
pub use rate_limit::RateLimiter;

use crate::error::{ApiError, ErrorCode};
use crate::imports::upload::{self, StoredUpload, UploadError};
use crate::startup::AppState;

/// A whole list. List answers are structs, not JSON maps, so that every
/// item keeps its fields in their declared order.
#[derive(serde::Serialize)]
struct Items<T: serde::Serialize> {
    items: T,
}

/// One page of a paged list, with the cursor of the next page if any.
#[derive(serde::Serialize)]
struct Page<T: serde::Serialize> {
    items: T,
    next_cursor: Option<String>,
}

/// A listed page, each item shown through its view.
fn page_of<'a, T, V: serde::Serialize>(
    listed: &'a crate::store::Listed<T>,
    view: impl Fn(&'a T) -> V,
) -> HttpResponse {
    HttpResponse::Ok().json(Page {
        items: listed.items.iter().map(view).collect::<Vec<V>>(),
        next_cursor: listed.next_cursor.clone(),
    })
}

/// The answer for a path that no route serves.
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::RouteNotFound,
        format!("no route serves {} {}", req.method(), req.path()),
    )
    .error_response()
}

/// The answer for a known path and a method it does not serve, with the
/// `Allow` header that lists the methods it does.
pub(crate) async fn method_not_allowed(req: HttpRequest, allowed: &[&str]) -> HttpResponse {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .error_response();
    if let Ok(allow) = actix_web::http::header::HeaderValue::from_str(&allowed.join(", ")) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, allow);
    }
    response
}

/// Query strings that do not parse get the same JSON error shape as the rest.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _| {
        ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("the query string is invalid: {err}"),
        )
        .into()
    })
}

/// A page size: `limit` from the query, bounded, 20 by default.
fn page_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(20),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 100",
        )),
    }
}

/// Checks a free-text query parameter: at most 200 characters and no
/// control characters (PostgreSQL refuses NUL in text; none has a use here).
fn query_text(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(text) if text.chars().count() > 200 || text.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("{field} must be at most 200 characters, without control characters"),
            ))
        }
        other => Ok(other),
    }
}

/// An identifier from the URL path. One that no stored object can have
/// (too long, or with control characters) is simply not found.
fn path_id<'a>(what: &str, value: &'a str) -> Result<&'a str, ApiError> {
    if value.len() > 200 || value.chars().any(char::is_control) {
        Err(ApiError::not_found(what))
    } else {
        Ok(value)
    }
}

/// Parses an optional agency code from a query parameter.
fn query_agency(value: Option<&str>) -> Result<Option<crate::domain::AgencyCode>, ApiError> {
    value
        .map(|code| {
            crate::domain::AgencyCode::parse("agency_code", code)
                .map_err(|e| ApiError::bad_request(ErrorCode::InvalidQuery, e.to_string()))
        })
        .transpose()
}

/// Parses an optional query parameter with one of a few values.
fn query_choice<T>(
    field: &'static str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    choices: &str,
) -> Result<Option<T>, ApiError> {
    value
        .map(|text| {
            parse(text).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    format!("{field} must be one of {choices}"),
                )
            })
        })
        .transpose()
}

/// Parses an optional RFC 3339 time from a query parameter.
fn query_time(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<crate::domain::Timestamp>, ApiError> {
    value
        .map(|text| {
            crate::domain::Timestamp::parse_rfc3339(text).ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::InvalidQuery,
                    format!("{field} must be an RFC 3339 time with an offset"),
                )
            })
        })
        .transpose()
}

/// Streams a `text/csv` body to the upload folder, refusing it (and
/// keeping nothing) as soon as it passes `reconciliation.max_file_bytes`.
pub(super) async fn stream_upload(
    req: &HttpRequest,
    state: &AppState,
    payload: web::Payload,
) -> Result<StoredUpload, ApiError> {
    let is_csv = matches!(req.mime_type(), Ok(Some(mime)) if mime.essence_str() == "text/csv");
    if !is_csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            "send the file as text/csv",
        ));
    }
    let limit = state.importer.max_file_bytes();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(UploadError::TooLarge { limit }.into());
    }
    upload::store_stream(state.importer.upload_dir(), payload, limit)
        .await
        .map_err(ApiError::from)
}
