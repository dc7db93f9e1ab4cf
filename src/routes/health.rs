//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::Readiness;

/// The process is up.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can serve: its database answers and has room to write.
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.store.readiness().await {
        Ok(Readiness::Ready) => {
            Ok(HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" })))
        }
        Ok(Readiness::StorageFull { room_bytes }) => {
            tracing::warn!(room_bytes, "not ready: the database has no room to write");
            Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageFull,
                "the database has no room left to write",
            )
            .with_details(json!({ "room_bytes": room_bytes })))
        }
        Err(err) => {
            tracing::warn!(error = %crate::error::error_chain(&err), "readiness check failed");
            Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::NotReady,
                "the database does not answer",
            ))
        }
    }
}
