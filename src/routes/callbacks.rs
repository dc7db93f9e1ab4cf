//! `/callbacks/{provider}`: providers report payments. Public, and
//! trusted only once the provider's signature over the bytes received is
//! verified; each provider is answered in its own format.

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use tracing_actix_web::RequestId;

use super::RawBody;
use crate::domain::Timestamp;
use crate::domain::audit::Actor;
use crate::domain::payment::{Channel, PaymentSource};
use crate::error::{ApiError, ErrorCode};
use crate::providers::record::record;
use crate::providers::{CallbackError, CallbackEvent, CallbackRequest, Reply, Verdict};
use crate::startup::AppState;
use crate::store::StoreError;

pub async fn vnpay(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> HttpResponse {
    receive(&state, "vnpay", &req, &body.0).await
}

pub async fn momo(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> HttpResponse {
    receive(&state, "momo", &req, &body.0).await
}

pub async fn zalopay(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> HttpResponse {
    receive(&state, "zalopay", &req, &body.0).await
}

pub async fn sepay(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> HttpResponse {
    receive(&state, "sepay", &req, &body.0).await
}

pub async fn casso(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> HttpResponse {
    receive(&state, "casso", &req, &body.0).await
}

async fn receive(state: &AppState, name: &str, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let Some(provider) = state.providers.callback(name) else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::RouteNotFound,
            format!("{name} is not configured on this service"),
        )
        .error_response();
    };
    let request = CallbackRequest {
        query: req.query_string(),
        headers: req.headers(),
        body,
        received_at: Timestamp::now(),
    };
    let event = match provider.verify(&request).and_then(CallbackEvent::checked) {
        Ok(event) => event,
        Err(err) => {
            let reason = match err {
                CallbackError::BadSignature => "bad_signature",
                CallbackError::Malformed(_) => "malformed",
            };
            state
                .metrics
                .callbacks_refused
                .with_label_values(&[name, reason])
                .inc();
            tracing::warn!(provider = name, reason, error = %err, "a callback was refused");
            return respond(provider.reject(&err));
        }
    };
    let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let actor = Actor {
        request_id,
        ..Actor::system(&format!("callback:{name}"))
    };
    match apply(state, &actor, provider.channel(), event).await {
        Ok(verdict) => {
            state
                .metrics
                .callbacks
                .with_label_values(&[name, verdict.label()])
                .inc();
            respond(provider.acknowledge(verdict))
        }
        Err(err) => {
            tracing::error!(provider = name, error = %crate::error::error_chain(&err), "a verified callback could not be stored");
            respond(provider.retry_later())
        }
    }
}

/// Stores what a verified callback reports, through the same
/// exactly-once path for every provider (and for status queries).
pub async fn apply(
    state: &AppState,
    actor: &Actor,
    channel: Channel,
    event: CallbackEvent,
) -> Result<Verdict, StoreError> {
    record(&state.store, actor, channel, event, PaymentSource::Callback).await
}

fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    match reply.body {
        Some(body) => HttpResponse::build(status)
            .content_type("application/json")
            .body(body),
        None => HttpResponse::build(status).finish(),
    }
}
