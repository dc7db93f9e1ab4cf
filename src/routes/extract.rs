//! Extractors that turn a request into what handlers need: the caller
//! behind the API key, and a JSON body read within the size limit.

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing_actix_web::RequestId;

use crate::domain::audit::Actor;
use crate::domain::{ApiKeySecret, IdempotencyKey, Role, Scope};
use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use crate::store::Principal;

/// The caller of a `/v1` request, established from its bearer key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub request_id: Option<String>,
    /// Where the request came from (see [`crate::client_addr`]).
    pub client_addr: Option<std::net::IpAddr>,
}

impl Caller {
    /// Refuses with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.principal.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    pub fn scope(&self) -> &Scope {
        &self.principal.scope
    }

    pub fn actor(&self) -> Actor {
        self.principal
            .actor(self.request_id.clone())
            .from_addr(self.client_addr)
    }
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&"application state is missing"))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|value| value.to_str().map(str::to_owned));
        let request_id = req.extensions().get::<RequestId>().map(|id| id.to_string());
        let client_addr = crate::client_addr::of(req);
        let state = state(req);
        Box::pin(async move {
            let state = state?;
            let header = match header {
                None => {
                    return Err(ApiError::unauthorized(
                        "send the API key as Authorization: Bearer <key>",
                    ));
                }
                Some(Err(_)) => return Err(ApiError::unauthorized("the API key is not valid")),
                Some(Ok(header)) => header,
            };
            let token = header
                .strip_prefix("Bearer ")
                .or_else(|| header.strip_prefix("bearer "))
                .ok_or_else(|| {
                    ApiError::unauthorized("send the API key as Authorization: Bearer <key>")
                })?;
            let key = ApiKeySecret::from_presented(token.trim())
                .ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
            let principal = state
                .store
                .authenticate(&key.hash())
                .await?
                .ok_or_else(|| ApiError::unauthorized("the API key is not valid or was revoked"))?;
            Ok(Caller {
                principal,
                request_id,
                client_addr,
            })
        })
    }
}

/// A JSON body, read up to the configured limit and parsed strictly:
/// malformed JSON is a 400, a well-formed body of the wrong shape a 422
/// naming the field.
pub struct JsonBody<T> {
    pub value: T,
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<JsonBody<T>, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = state(req).map(|s| s.settings.server.max_body_bytes);
        let content_type_ok = match req.mime_type() {
            Ok(None) => true,
            Ok(Some(mime)) => mime.essence_str() == "application/json",
            Err(_) => false,
        };
        let declared_length = declared_length(req);
        let mut payload = payload.take();
        Box::pin(async move {
            let limit = limit?;
            if !content_type_ok {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    "send the body as application/json",
                ));
            }
            let body = read_body(&mut payload, declared_length, limit).await?;
            parse_json(&body).map(|value| JsonBody { value })
        })
    }
}

/// A body's exact bytes, read up to [`RawBody::LIMIT`]: what a provider's
/// signature covers.
pub struct RawBody(pub web::Bytes);

impl RawBody {
    /// Callbacks larger than this are refused before any work.
    pub const LIMIT: usize = 64 * 1024;
}

impl FromRequest for RawBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<RawBody, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let declared_length = declared_length(req);
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_body(&mut payload, declared_length, RawBody::LIMIT).await?;
            Ok(RawBody(body.freeze()))
        })
    }
}

/// An uploaded CSV file, such as a statement or a register: the body's
/// bytes, sent as `text/csv`, read up to `reconciliation.max_file_bytes`.
pub struct FileBody(pub web::Bytes);

impl FromRequest for FileBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<FileBody, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = state(req).map(|s| s.settings.reconciliation.max_file_bytes);
        let is_csv = matches!(req.mime_type(), Ok(Some(mime)) if mime.essence_str() == "text/csv");
        let declared_length = declared_length(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if !is_csv {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::UnsupportedMediaType,
                    "send the file as text/csv",
                ));
            }
            let body = read_body(&mut payload, declared_length, limit?).await?;
            Ok(FileBody(body.freeze()))
        })
    }
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads the body, refusing with 413 as soon as it is known to exceed `limit`.
async fn read_body(
    payload: &mut Payload,
    declared_length: Option<usize>,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    if declared_length.is_some_and(|length| length > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::bad_request(
                ErrorCode::InvalidBody,
                format!("the body could not be read: {err}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The request's `Idempotency-Key`, which a create request must send.
pub fn idempotency_key(req: &HttpRequest, what: &str) -> Result<IdempotencyKey, ApiError> {
    match req.headers().get("Idempotency-Key") {
        None => Err(ApiError::bad_request(
            ErrorCode::IdempotencyKeyMissing,
            format!("send an Idempotency-Key header so that a retry cannot {what} twice"),
        )),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| IdempotencyKey::parse(v).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    ErrorCode::IdempotencyKeyInvalid,
                    "the Idempotency-Key must be 1 to 255 visible ASCII characters",
                )
            }),
    }
}

/// Parses JSON with the path of any field that does not fit.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let malformed = |err: serde_json::Error| {
        ApiError::bad_request(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {err}"),
        )
    };
    // Serde would fill a struct from a JSON array too; bodies are objects.
    if body.trim_ascii_start().first() != Some(&b'{') {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).map_err(malformed)?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ValidationFailed,
            "the body must be a JSON object",
        )
        .with_details(json!({ "field": "." })));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            let field = field_of(&path, &inner.to_string());
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::ValidationFailed,
                format!("{field}: {inner}"),
            )
            .with_details(json!({ "field": field }))
        } else {
            malformed(inner)
        }
    })?;
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

/// The field a data error is about: its path, or for a missing or
/// duplicate field (which serde reports at the enclosing object) the path
/// of the field itself.
fn field_of(path: &str, message: &str) -> String {
    let named = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match named {
        Some(name) if path == "." => name.to_owned(),
        Some(name) => format!("{path}.{name}"),
        None => path.to_owned(),
    }
}
