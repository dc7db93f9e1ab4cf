//! HTTP handlers, one file per resource, named after the URL. The route
//! table below is the one place routes are declared: it both configures
//! the app and lists what the app serves (checked against `openapi.yaml`).

mod agencies;
mod attempts;
mod audit;
pub mod callbacks;
pub(crate) mod dossiers;
mod events;
pub(crate) mod exceptions;
mod extract;
mod health;
mod invoices;
mod keys;
mod metrics;
pub(crate) mod pay;
pub(crate) mod payments;
mod rate_limit;
mod refunds;
mod reports;
mod sandbox;
pub(crate) mod settlements;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

pub use extract::{Caller, FileBody, JsonBody, RawBody, idempotency_key};
pub use rate_limit::RateLimiter;

use crate::console;
use crate::error::{ApiError, ErrorCode};
use crate::imports::upload::{self, StoredUpload, UploadError};
use crate::startup::AppState;

/// Declares the routes: `path => { METHOD handler, ... }`.
macro_rules! route_table {
    ($($path:literal => { $($method:ident $handler:path),+ $(,)? }),+ $(,)?) => {
        /// Every `(method, path)` the app serves.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),+];

        /// Registers every route, with a JSON 405 for a known path and an
        /// unknown method.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    web::resource($path)
                        $(.route(route_table!(@method $method).to($handler)))+
                        .default_service(web::to(|req: HttpRequest| {
                            method_not_allowed(req, &[$(stringify!($method)),+])
                        })),
                );
            )+
        }
    };
    (@method GET) => { web::get() };
    (@method POST) => { web::post() };
    (@method PUT) => { web::put() };
}

route_table! {
    "/health/live" => { GET health::live },
    "/health/ready" => { GET health::ready },
    "/metrics" => { GET metrics::render },
    "/v1/agencies" => { POST agencies::create, GET agencies::list },
    "/v1/agencies/{code}" => { GET agencies::get },
    "/v1/agencies/{code}/webhook" => { PUT agencies::set_webhook },
    "/v1/agencies/{code}/bank-account" => { PUT agencies::set_bank_account, GET agencies::bank_account },
    "/v1/keys" => { POST keys::create, GET keys::list },
    "/v1/keys/{id}/revoke" => { POST keys::revoke },
    "/v1/invoices" => { POST invoices::create, GET invoices::list },
    "/v1/invoices/{id}" => { GET invoices::get },
    "/v1/invoices/{id}/cancel" => { POST invoices::cancel },
    "/v1/invoices/{id}/attempts" => { POST attempts::start },
    "/v1/invoices/{id}/payments" => { GET payments::of_invoice },
    "/v1/invoices/{id}/cash-payments" => { POST payments::record_cash },
    "/v1/payments" => { GET payments::list },
    "/v1/payments/{id}/refunds" => { POST refunds::request },
    "/v1/refunds" => { GET refunds::list },
    "/v1/refunds/{id}" => { GET refunds::get },
    "/v1/refunds/{id}/approve" => { POST refunds::approve },
    "/v1/refunds/{id}/reject" => { POST refunds::reject },
    "/v1/refunds/{id}/complete" => { POST refunds::complete },
    "/v1/exceptions" => { GET exceptions::list },
    "/v1/exceptions/{id}" => { GET exceptions::get },
    "/v1/exceptions/{id}/resolve" => { POST exceptions::resolve },
    "/v1/settlements" => { POST settlements::import, GET settlements::list },
    "/v1/settlements/{id}" => { GET settlements::get },
    "/v1/settlements/{id}/lines" => { GET settlements::lines },
    "/v1/events" => { GET events::list },
    "/v1/events/{id}/redeliver" => { POST events::redeliver },
    "/v1/audit" => { GET audit::list },
    "/v1/dossiers" => { GET dossiers::list },
    "/v1/dossiers/import" => { POST dossiers::import },
    "/v1/dossiers/imports/{id}" => { GET dossiers::import_job },
    "/v1/reports/cashless" => { GET reports::cashless },
    "/callbacks/vnpay" => { GET callbacks::vnpay },
    "/callbacks/momo" => { POST callbacks::momo },
    "/callbacks/zalopay" => { POST callbacks::zalopay },
    "/callbacks/sepay" => { POST callbacks::sepay },
    "/callbacks/casso" => { POST callbacks::casso },
    "/sandbox/vnpay/paymentv2/vpcpay.html" => { GET sandbox::vnpay_page },
    "/sandbox/vnpay/pay" => { POST sandbox::vnpay_decide },
    "/sandbox/vnpay/merchant_webapi/api/transaction" => { POST sandbox::vnpay_transaction },
    "/sandbox/momo/v2/gateway/api/create" => { POST sandbox::momo_create },
    "/sandbox/momo/v2/gateway/api/query" => { POST sandbox::momo_query },
    "/sandbox/momo/v2/gateway/api/refund" => { POST sandbox::momo_refund },
    "/sandbox/momo/pay" => { GET sandbox::momo_page, POST sandbox::momo_decide },
    "/sandbox/zalopay/v2/create" => { POST sandbox::zalopay_create },
    "/sandbox/zalopay/v2/query" => { POST sandbox::zalopay_query },
    "/sandbox/zalopay/v2/refund" => { POST sandbox::zalopay_refund },
    "/sandbox/zalopay/v2/query_refund" => { POST sandbox::zalopay_query_refund },
    "/sandbox/zalopay/pay" => { GET sandbox::zalopay_page, POST sandbox::zalopay_decide },
    "/sandbox/bank/transfer" => { GET sandbox::bank_page, POST sandbox::bank_send },
    "/pay/{code}" => { GET pay::checkout },
    "/pay/{code}/start/{channel}" => { POST pay::start },
    "/pay/{code}/transfer" => { GET pay::transfer },
    "/pay/{code}/return/{channel}" => { GET pay::returned },
    "/pay/{code}/receipt" => { GET pay::receipt },
    "/console" => { GET console::session::sign_in_page, POST console::session::sign_in },
    "/console/sign-out" => { POST console::session::sign_out },
    "/console/second-factor" => { GET console::second_factor::show, POST console::second_factor::confirm },
    "/console/password" => { GET console::password::show, POST console::password::change },
    "/console/officers" => { GET console::officers::list, POST console::officers::create },
    "/console/officers/{id}/{action}" => { POST console::officers::change },
    "/console/dashboard" => { GET console::dashboard::show },
    "/console/exceptions" => { GET console::exceptions::list },
    "/console/exceptions/{id}" => { GET console::exceptions::show },
    "/console/exceptions/{id}/resolve" => { POST console::exceptions::resolve },
    "/console/exceptions/{id}/refund" => { POST console::refunds::ask },
    "/console/refunds" => { GET console::refunds::list },
    "/console/refunds/{id}" => { GET console::refunds::show },
    "/console/refunds/{id}/approve" => { POST console::refunds::approve },
    "/console/refunds/{id}/reject" => { POST console::refunds::reject },
    "/console/refunds/{id}/complete" => { POST console::refunds::complete },
    "/console/uploads" => { GET console::uploads::show },
    "/console/uploads/statement" => { POST console::uploads::statement },
    "/console/uploads/statements/{id}" => { GET console::uploads::statement_import },
    "/console/uploads/register" => { POST console::uploads::register },
    "/console/uploads/registers/{id}" => { GET console::uploads::register_import },
    "/console/payments" => { GET console::payments::list },
    "/console/invoices/{id}" => { GET console::payments::invoice },
    "/console/invoices/{id}/cash" => { POST console::payments::record_cash },
    "/console/invoices/{id}/refund" => { POST console::refunds::ask_from_invoice },
}

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
async fn method_not_allowed(req: HttpRequest, allowed: &[&str]) -> HttpResponse {
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
