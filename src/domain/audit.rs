//! Audit records: who changed what, when, from which state to which.

use std::net::IpAddr;

use serde::Serialize;

use super::Timestamp;

/// Who is acting: an API key, or lephi itself (the CLI, a background task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `key:<id>` for an API key, `system:<task>` for lephi itself.
    pub name: String,
    /// How people read who acted: the key's name, or the officer's name
    /// and email; none for lephi's own tasks.
    pub display: Option<String>,
    pub request_id: Option<String>,
    /// The address the request came from (behind trusted proxies, the
    /// client they name).
    pub client_addr: Option<IpAddr>,
}

impl Actor {
    pub fn key(key_id: &str, request_id: Option<String>) -> Actor {
        Actor {
            name: format!("key:{key_id}"),
            display: None,
            request_id,
            client_addr: None,
        }
    }

    pub fn system(task: &str) -> Actor {
        Actor {
            name: format!("system:{task}"),
            display: None,
            request_id: None,
            client_addr: None,
        }
    }

    /// The same actor, acting from `client_addr`.
    pub fn from_addr(self, client_addr: Option<IpAddr>) -> Actor {
        Actor {
            client_addr,
            ..self
        }
    }
}

/// One audit record as listed by `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    /// The key's name, or the officer's name and email, when known.
    pub actor_name: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub agency_code: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}
