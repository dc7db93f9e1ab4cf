//! `/v1/agencies`: the agency tree (admin writes; every role reads its scope).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Caller, JsonBody};
use crate::domain::Role;
use crate::domain::agency::NewAgency;
use crate::error::ApiError;
use crate::startup::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAgency {
    code: String,
    name: String,
    level: String,
    parent_code: Option<String>,
}

pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: JsonBody<CreateAgency>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let body = body.value;
    let new = NewAgency::parse(
        &body.code,
        &body.name,
        &body.level,
        body.parent_code.as_deref(),
    )?;
    let agency = state
        .store
        .create_agency(&caller.actor(), caller.scope(), &new)
        .await?;
    Ok(HttpResponse::Created().json(agency))
}

pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let agencies = state.store.list_agencies(caller.scope()).await?;
    Ok(HttpResponse::Ok().json(super::Items { items: agencies }))
}

pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = super::path_id("the agency", &code)?;
    let agency = state.store.get_agency(caller.scope(), code).await?;
    Ok(HttpResponse::Ok().json(agency))
}
