//! `/v1/agencies`: the agency tree (admin writes; every role reads its scope).

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::{Caller, JsonBody};
use crate::domain::Role;
use crate::domain::agency::{BankAccount, NewAgency};
use crate::domain::webhook::{WebhookSecret, WebhookUrl};
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    url: String,
    /// `whsec_...`; a new one is made when absent.
    secret: Option<String>,
    /// Keeps the secret this one replaces signing beside it for this many
    /// hours (1 to 168), so that the dossier system can switch without
    /// missing a delivery; without it the old secret stops at once.
    keep_previous_secret_hours: Option<u32>,
}

/// An agency's webhook as its admin sees it once, secret included, to
/// configure the receiving dossier system.
#[derive(serde::Serialize)]
struct WebhookView<'a> {
    agency_code: &'a str,
    url: &'a str,
    secret: &'a str,
    /// Until when the replaced secret still signs beside it, if it does.
    previous_secret_until: Option<crate::domain::Timestamp>,
    updated_at: crate::domain::Timestamp,
}

pub async fn set_webhook(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: JsonBody<SetWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let code = super::path_id("the agency", &code)?;
    let body = body.value;
    let url = WebhookUrl::parse(&body.url, &state.webhook_policy)?;
    let secret = match &body.secret {
        Some(secret) => WebhookSecret::parse(secret)?,
        None => WebhookSecret::generate(),
    };
    let keep_previous = match body.keep_previous_secret_hours {
        None => None,
        Some(hours @ 1..=168) => Some(time::Duration::hours(i64::from(hours))),
        Some(_) => {
            return Err(ApiError::validation(crate::domain::ValidationError::new(
                "keep_previous_secret_hours",
                "must be from 1 to 168",
            )));
        }
    };
    let webhook = state
        .store
        .set_webhook(
            &caller.actor(),
            caller.scope(),
            code,
            &url,
            &secret,
            keep_previous,
        )
        .await?;
    Ok(HttpResponse::Ok().json(WebhookView {
        agency_code: &webhook.agency_code,
        url: webhook.url.as_str(),
        secret: webhook.secret.expose(),
        previous_secret_until: webhook.previous_until,
        updated_at: webhook.updated_at,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBankAccount {
    bank_bin: String,
    account_number: String,
    account_name: String,
}

pub async fn set_bank_account(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
    body: JsonBody<SetBankAccount>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let code = super::path_id("the agency", &code)?;
    let body = body.value;
    let account = BankAccount::parse(&body.bank_bin, &body.account_number, &body.account_name)?;
    state
        .store
        .set_bank_account(&caller.actor(), caller.scope(), code, &account)
        .await?;
    Ok(HttpResponse::Ok().json(account))
}

pub async fn bank_account(
    state: web::Data<AppState>,
    caller: Caller,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = super::path_id("the agency", &code)?;
    let account = state
        .store
        .bank_account(caller.scope(), code)
        .await?
        .ok_or_else(|| ApiError::not_found("the agency's bank account"))?;
    Ok(HttpResponse::Ok().json(account))
}
