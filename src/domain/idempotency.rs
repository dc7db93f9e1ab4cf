//! Idempotency keys sent by clients so that a retried request does its work once.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 255;

    /// 1 to 255 visible ASCII characters.
    pub fn parse(value: &str) -> Result<IdempotencyKey, ValidationError> {
        let valid = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(IdempotencyKey(value.to_owned()))
        } else {
            Err(ValidationError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A hash of what was asked, independent of JSON spacing and key order
/// (it is taken over the parsed request), to tell a replay from a
/// different request under the same key.
pub fn request_hash(request: &impl Serialize) -> Result<String, serde_json::Error> {
    let canonical = serde_json::to_vec(request)?;
    Ok(hex::encode(Sha256::digest(canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("9f1c-2026-11-28").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse("khóa").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
