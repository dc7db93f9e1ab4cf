//! Prometheus metrics in the text exposition format, behind
//! `server.metrics_token` when one is set.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;

use crate::error::{ApiError, ErrorCode};
use crate::providers::signing::secrets_equal;
use crate::startup::AppState;

pub async fn render(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some(token) = &state.settings.server.metrics_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let allowed = given
            .is_some_and(|given| secrets_equal(given.as_bytes(), token.expose_secret().as_bytes()));
        if !allowed {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "the metrics need the configured bearer token (server.metrics_token)",
            ));
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()))
}
