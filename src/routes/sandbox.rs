//! `/sandbox/{provider}/...`: the built-in sandbox providers (see
//! [`crate::sandbox`]). Each handler hands the request to its provider's
//! side; when the sandbox is off, every one answers 404.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{RawBody, route_not_found};
use crate::sandbox::{self, Refusal, Sandbox};
use crate::startup::AppState;

/// The sandbox, or the 404 every sandbox route answers when it is off.
async fn sandbox_of<'a>(
    state: &'a AppState,
    req: &HttpRequest,
) -> Result<&'a Sandbox, HttpResponse> {
    match &state.sandbox {
        Some(sandbox) => Ok(sandbox),
        None => Err(route_not_found(req.clone()).await),
    }
}

/// A page, or the page of its refusal.
fn html(result: Result<HttpResponse, Refusal>) -> HttpResponse {
    result.unwrap_or_else(|refusal| refusal.page())
}

macro_rules! sandbox_or_404 {
    ($state:expr, $req:expr) => {
        match sandbox_of(&$state, &$req).await {
            Ok(sandbox) => sandbox,
            Err(not_found) => return not_found,
        }
    };
}

pub async fn vnpay_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::vnpay::payment_page(sandbox, req.query_string()))
}

pub async fn vnpay_decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::vnpay::decide(sandbox, &body.0).await)
}

pub async fn vnpay_transaction(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::vnpay::transaction(sandbox, &body.0).await
}

pub async fn momo_create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::momo::create(sandbox, &body.0)
}

pub async fn momo_query(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::momo::query(sandbox, &body.0)
}

pub async fn momo_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::momo::refund(sandbox, &body.0).await
}

pub async fn momo_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::momo::payment_page(sandbox, req.query_string()))
}

pub async fn momo_decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::momo::decide(sandbox, &body.0).await)
}

pub async fn zalopay_create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::zalopay::create(sandbox, &body.0)
}

pub async fn zalopay_query(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::zalopay::query(sandbox, &body.0)
}

pub async fn zalopay_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::zalopay::refund(sandbox, &body.0).await
}

pub async fn zalopay_query_refund(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    sandbox::zalopay::query_refund(sandbox, &body.0)
}

pub async fn zalopay_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::zalopay::payment_page(sandbox, req.query_string()))
}

pub async fn zalopay_decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::zalopay::decide(sandbox, &body.0).await)
}

pub async fn bank_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    sandbox_or_404!(state, req);
    html(sandbox::bank::transfer_page(req.query_string()))
}

pub async fn bank_send(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> HttpResponse {
    let sandbox = sandbox_or_404!(state, req);
    html(sandbox::bank::send(sandbox, &body.0).await)
}
