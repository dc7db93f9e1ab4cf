//! Cross-site request forgery: every form that changes something carries
//! the session's token in a hidden field, checked in constant time, and a
//! request that says it comes from another origin is refused whatever it
//! carries. The token is derived from the session's own token, which only
//! the officer's browser holds (in an HttpOnly cookie), so nothing more
//! needs to be stored.

use actix_web::HttpRequest;
use actix_web::http::header;
use sha2::{Digest, Sha256};

use crate::providers::signing::secrets_equal;
use crate::startup::AppState;

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

/// Whether the request may come from the console's own pages: a browser's
/// `Sec-Fetch-Site` says same-origin (or that a person typed it), and an
/// `Origin`, when sent, is lephi's public URL or the host asked.
pub fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let fetch_site = req
        .headers()
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"));
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return false;
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let public = origin_of(&state.public_url);
    let info = req.connection_info();
    let asked = format!("{}://{}", info.scheme(), info.host());
    origin == public || origin == asked
}

/// The origin of a URL: scheme, host and port, without a path.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
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

    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            origin_of("https://pay.example.vn"),
            "https://pay.example.vn"
        );
        assert_eq!(
            origin_of("https://pay.example.vn:8443/lephi"),
            "https://pay.example.vn:8443"
        );
    }
}
