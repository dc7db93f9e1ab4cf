//! Cross-site request forgery: every form that changes something carries
//! the session's token in a hidden field, checked in constant time, and a
//! request that says it comes from another origin is refused whatever it
//! carries. The token is derived from the session's own token, which only
//! the officer's browser holds (in an HttpOnly cookie), so nothing more
//! needs to be stored.

use sha2::{Digest, Sha256};

pub use crate::origin::same_origin;
use crate::providers::signing::secrets_equal;

/// The CSRF token of the session whose cookie holds `session_token`.
pub fn token_for(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"lephi console csrf\0");
    hasher.update(session_token.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `given` is the session's token, compared in constant time.
pub fn token_matches(expected: &str, given: Option<&str>) -> bool {
    given.is_some_and(|given| secrets_equal(expected.as_bytes(), given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_tied_to_the_session() {
        let a = token_for("session-a");
        assert_eq!(a, token_for("session-a"));
        assert_ne!(a, token_for("session-b"));
        assert!(token_matches(&a, Some(&a)));
        assert!(!token_matches(&a, Some(&token_for("session-b"))));
        assert!(!token_matches(&a, Some("")));
        assert!(!token_matches(&a, None));
    }
}
