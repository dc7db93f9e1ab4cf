//! `/v1/events`: what lephi told (or will tell) the dossier systems, and
//! asking for an event to be delivered again.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Caller, page_limit, path_id, query_choice, query_text};
use crate::domain::{AgencyCode, Role, Timestamp};
use crate::error::ApiError;
use crate::startup::AppState;
use crate::store::{Event, EventFilter, EventStatus};

#[derive(Serialize)]
struct EventView<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    agency_code: Option<&'a AgencyCode>,
    status: EventStatus,
    attempts: i64,
    next_attempt_at: Option<Timestamp>,
    last_error: Option<&'a str>,
    created_at: Timestamp,
    delivered_at: Option<Timestamp>,
    /// The exact body each delivery sends.
    payload: serde_json::Value,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(e: &'a Event) -> Self {
        EventView {
            id: &e.id,
            event_type: &e.event_type,
            agency_code: e.agency_code.as_ref(),
            status: e.status,
            attempts: e.attempts,
            next_attempt_at: (e.status == EventStatus::Pending).then_some(e.next_attempt_at),
            last_error: e.last_error.as_deref(),
            created_at: e.created_at,
            delivered_at: e.delivered_at,
            payload: serde_json::from_str(&e.body).unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = EventFilter {
        status: query_choice(
            "status",
            query.status.as_deref(),
            EventStatus::parse,
            "held, pending, delivered, dead",
        )?,
        event_type: query_text("type", query.event_type)?,
        after_id: query_text("cursor", query.cursor)?,
        limit: page_limit(query.limit)?,
    };
    let page = state.store.list_events(caller.scope(), &filter).await?;
    Ok(super::page_of(&page, EventView::from))
}

pub async fn redeliver(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Replaying is an officer's decision, as dead letters need one.
    caller.require(&[Role::Finance, Role::Admin])?;
    let id = path_id("the event", &id)?;
    let event = state
        .store
        .redeliver_event(&caller.actor(), caller.scope(), id)
        .await?;
    Ok(HttpResponse::Accepted().json(EventView::from(&event)))
}
