//! Prometheus metrics in the text exposition format, behind
//! `server.metrics_token` when one is set.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;

use crate::domain::Timestamp;
use crate::error::{ApiError, ErrorCode};
use crate::providers::signing::secrets_equal;
use crate::startup::AppState;

/// A check due this long ago and not made counts as overdue: a few of the
/// janitor's passes.
const OVERDUE_AFTER: time::Duration = time::Duration::minutes(10);

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
    let janitor = &state.settings.janitor;
    let figures = state
        .store
        .operations_figures(
            Timestamp::now(),
            OVERDUE_AFTER,
            (
                time::Duration::seconds(
                    i64::try_from(janitor.first_check_after_secs).unwrap_or(600),
                ),
                time::Duration::hours(i64::try_from(janitor.give_up_after_hours).unwrap_or(24)),
            ),
        )
        .await;
    if let Err(err) = &figures {
        tracing::warn!(error = %crate::error::error_chain(err), "the operations figures could not be read");
    }
    state
        .metrics
        .observe_operations(figures.as_ref().ok(), state.store.pool_usage());
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()))
}
