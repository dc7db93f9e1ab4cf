//! API keys: `lp_` then 256 random bits. Only the key's SHA-256 is stored;
//! the key itself is shown once, when it is created.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ValidationError;

const KEY_PREFIX: &str = "lp_";
const RANDOM_BYTES: usize = 32;
/// How many leading characters of a key are kept to recognise it in lists.
const DISPLAY_PREFIX_LEN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A dossier system: creates and reads its agency's invoices.
    AgencySystem,
    /// A finance officer: reads everything in scope, records cash, reconciles, reports.
    Finance,
    /// An administrator: agencies, keys, webhook configuration.
    Admin,
}

impl Role {
    pub fn parse(field: &str, value: &str) -> Result<Role, ValidationError> {
        match value {
            "agency_system" => Ok(Role::AgencySystem),
            "finance" => Ok(Role::Finance),
            "admin" => Ok(Role::Admin),
            _ => Err(ValidationError::new(
                field,
                "must be one of agency_system, finance, admin",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::AgencySystem => "agency_system",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A key as handed to its holder. Its `Debug` prints a mask.
pub struct ApiKeySecret(SecretString);

/// The stored fingerprint of a key: lowercase hex SHA-256 of the whole key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ApiKeyHash(String);

impl ApiKeySecret {
    pub fn generate() -> ApiKeySecret {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let key = format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        ApiKeySecret(SecretString::from(key))
    }

    /// Accepts what a client presents as a bearer token, if it has a key's shape.
    pub fn from_presented(token: &str) -> Option<ApiKeySecret> {
        let shaped = token.starts_with(KEY_PREFIX)
            && token.len() <= 128
            && token[KEY_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        shaped.then(|| ApiKeySecret(SecretString::from(token.to_owned())))
    }

    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(hex::encode(Sha256::digest(
            self.0.expose_secret().as_bytes(),
        )))
    }

    /// The first characters of the key, enough to recognise it in a list.
    pub fn display_prefix(&self) -> String {
        self.0
            .expose_secret()
            .chars()
            .take(DISPLAY_PREFIX_LEN)
            .collect()
    }

    /// The key itself, for the one moment it is shown to its holder.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret([REDACTED])")
    }
}

impl ApiKeyHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_carry_256_random_bits() {
        let a = ApiKeySecret::generate();
        let b = ApiKeySecret::generate();
        assert!(a.expose().starts_with("lp_"));
        assert_eq!(a.expose().len(), 3 + 43);
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash().as_str().len(), 64);
    }

    #[test]
    fn presented_tokens_are_shape_checked() {
        let key = ApiKeySecret::generate();
        let presented = ApiKeySecret::from_presented(key.expose()).unwrap();
        assert_eq!(presented.hash(), key.hash());
        assert!(ApiKeySecret::from_presented("sk_live_x").is_none());
        assert!(ApiKeySecret::from_presented("lp_a b").is_none());
        assert!(ApiKeySecret::from_presented(&format!("lp_{}", "a".repeat(200))).is_none());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKeySecret::generate();
        assert!(!format!("{key:?}").contains(key.expose()));
    }
}
