//! `/v1/keys`: API keys (admin only). A new key is shown once, in the
//! answer that creates it.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::{Caller, JsonBody};
use crate::domain::Role;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::NewApiKey;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    role: String,
    agency_code: Option<String>,
    name: Option<String>,
}

pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateKey>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.value;
    let (new, secret) = NewApiKey::generate(
        &body.role,
        body.agency_code.as_deref(),
        body.name.as_deref(),
    )?;
    let record = state
        .store
        .create_api_key(&caller.actor(), caller.scope(), &new)
        .await?;
    let mut body = serde_json::to_value(&record).map_err(|e| ApiError::internal(&e))?;
    body["key"] = json!(secret.expose());
    Ok(HttpResponse::Created().json(body))
}

pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let keys = state.store.list_api_keys(caller.scope()).await?;
    Ok(HttpResponse::Ok().json(super::Items { items: keys }))
}

pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = super::path_id("the key", &id)?;
    let record = state
        .store
        .revoke_api_key(&caller.actor(), caller.scope(), id)
        .await?;
    Ok(HttpResponse::Ok().json(record))
}
