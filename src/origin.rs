//! Where a browser's form post comes from. lephi's forms (the console's,
//! the citizen's checkout) post only to lephi itself; a post that says it
//! comes from another site is refused before it changes anything.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::startup::AppState;

/// Whether a form post may come from lephi's own pages: a browser's
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
