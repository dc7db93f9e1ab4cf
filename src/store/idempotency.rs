//! Idempotency keys: a create request claims its key in the transaction
//! that creates, and stores its answer there, so that a retry (even a
//! concurrent one) gets the same answer and creates nothing.

use sqlx::Row;

use super::conn::Conn;

use super::batch::Statement;
use super::{Store, StoreError};
use crate::domain::{IdempotencyKey, Timestamp};

/// The idempotency key of a create request, with a hash of what was asked.
pub struct IdempotentRequest<'a> {
    pub api_key_id: &'a str,
    pub key: &'a IdempotencyKey,
    pub request_hash: &'a str,
}

/// The answer to a create request: the stored response body, which a
/// replay of the same request returns byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub status: u16,
    pub body: String,
    /// Whether this request created (false for a replay).
    pub created: bool,
}

/// Claims the key. A concurrent request with the same key waits here until
/// this transaction ends, then finds the key taken: `false`.
pub(super) async fn claim(
    conn: &mut Conn<'_>,
    request: &IdempotentRequest<'_>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let claimed = sqlx::query(
        "INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, status_code, response_body, created_at)
         VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT DO NOTHING",
    )
    .bind(request.api_key_id)
    .bind(request.key.as_str())
    .bind(request.request_hash)
    .bind(now.to_stored())
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// The statement that stores the answer of a claimed key, in the
/// transaction that claimed it.
pub(super) fn answer(request: &IdempotentRequest<'_>, status: u16, body: &str) -> Statement {
    Statement::new(
        "UPDATE idempotency_keys SET status_code = $1, response_body = $2
         WHERE api_key_id = $3 AND idempotency_key = $4",
    )
    .bind(i64::from(status))
    .bind(body)
    .bind(request.api_key_id)
    .bind(request.key.as_str())
}

impl Store {
    /// The stored answer for an idempotency key, if the key was used; an
    /// error if it was used for a different request.
    pub async fn replay(
        &self,
        request: &IdempotentRequest<'_>,
    ) -> Result<Option<Created>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, status_code, response_body FROM idempotency_keys
             WHERE api_key_id = $1 AND idempotency_key = $2",
        )
        .bind(request.api_key_id)
        .bind(request.key.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let hash: String = row.try_get("request_hash")?;
        if hash != request.request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        let status: i64 = row.try_get("status_code")?;
        Ok(Some(Created {
            status: u16::try_from(status).map_err(StoreError::corrupt)?,
            body: row.try_get("response_body")?,
            created: false,
        }))
    }

    /// The answer of a key that [`claim`] found taken.
    pub(super) async fn replay_taken(
        &self,
        request: &IdempotentRequest<'_>,
    ) -> Result<Created, StoreError> {
        self.replay(request)
            .await?
            .ok_or_else(|| StoreError::corrupt("an idempotency key was taken but holds no answer"))
    }
}
