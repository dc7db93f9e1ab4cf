//! Webhooks to the dossier systems: where events go, and how they are
//! signed (Standard Webhooks: `v1,` + base64 HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::ValidationError;

/// What webhook URLs may name.
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// Hosts reachable over https.
    pub allowed_hosts: Vec<String>,
    /// Whether loopback hosts are allowed, over http or https.
    pub allow_loopback: bool,
}

/// A webhook URL that the policy allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// `value` if it is an absolute URL the delivering client can send to
    /// (parsed as it parses it: a port within 1..=65535, a well-formed
    /// host), without credentials, over https to an allowed host, or to a
    /// loopback host when the policy allows it.
    pub fn parse(value: &str, policy: &UrlPolicy) -> Result<WebhookUrl, ValidationError> {
        let invalid = |message: &str| Err(ValidationError::new("url", message));
        if value.len() > 2000 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return invalid("must be a URL of at most 2000 characters, without spaces");
        }
        if !value.contains("://") {
            return invalid("must be an absolute https URL");
        }
        let Ok(url) = url::Url::parse(value) else {
            return invalid("must be a well-formed URL with a valid host and port");
        };
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("must not carry credentials");
        }
        let host = match url.host() {
            Some(url::Host::Domain(domain)) => domain.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return invalid("must name a host"),
        };
        if url.port() == Some(0) {
            return invalid("must name a port from 1 to 65535");
        }
        let loopback = is_loopback(&host);
        match url.scheme() {
            "https" | "http" if loopback && policy.allow_loopback => {}
            "https"
                if policy
                    .allowed_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(&host)) => {}
            "https" => {
                return invalid(&format!(
                    "host {host} is not on the webhook allow-list (webhooks.allowed_hosts)"
                ));
            }
            _ => return invalid("must use https"),
        }
        Ok(WebhookUrl(value.to_owned()))
    }

    /// A URL that passed [`WebhookUrl::parse`] when it was stored.
    pub fn from_stored(value: String) -> WebhookUrl {
        WebhookUrl(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A per-endpoint signing secret: `whsec_` and the base64 of 24 to 64 bytes.
#[derive(Clone)]
pub struct WebhookSecret(SecretString);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(whsec_***)")
    }
}

impl WebhookSecret {
    pub fn generate() -> WebhookSecret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        WebhookSecret(SecretString::from(format!(
            "whsec_{}",
            STANDARD.encode(bytes)
        )))
    }

    pub fn parse(value: &str) -> Result<WebhookSecret, ValidationError> {
        let key = value
            .strip_prefix("whsec_")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|key| (24..=64).contains(&key.len()));
        match key {
            Some(_) => Ok(WebhookSecret(SecretString::from(value.to_owned()))),
            None => Err(ValidationError::new(
                "secret",
                "must be whsec_ followed by the base64 of 24 to 64 bytes",
            )),
        }
    }

    /// Reveals the secret, to store it or show it once to an admin.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    fn key(&self) -> Vec<u8> {
        self.expose()
            .strip_prefix("whsec_")
            .and_then(|b64| STANDARD.decode(b64).ok())
            .unwrap_or_default()
    }

    /// The `webhook-signature` header value for a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        // HMAC takes keys of any length: this never fails.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key()) else {
            return String::new();
        };
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The secrets a delivery is signed with: the agency's secret and, while a
/// replaced one is kept, that one too. Standard Webhooks receivers accept a
/// delivery when any of the space-separated signatures verifies, so the
/// dossier system can move to the new secret at any time in the window.
#[derive(Debug, Clone)]
pub struct WebhookSigners {
    pub current: WebhookSecret,
    pub previous: Option<WebhookSecret>,
}

impl WebhookSigners {
    /// The `webhook-signature` header value: `v1,<new>` or `v1,<new> v1,<old>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let mut header = self.current.sign(id, timestamp, body);
        if let Some(previous) = &self.previous {
            header.push(' ');
            header.push_str(&previous.sign(id, timestamp, body));
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str], allow_loopback: bool) -> UrlPolicy {
        UrlPolicy {
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            allow_loopback,
        }
    }

    #[test]
    fn only_https_on_the_allow_list_or_allowed_loopback() {
        let p = policy(&["hoso.example.gov.vn"], false);
        assert!(WebhookUrl::parse("https://hoso.example.gov.vn/hooks/lephi", &p).is_ok());
        assert!(WebhookUrl::parse("https://HOSO.example.gov.vn:8443/x", &p).is_ok());
        assert!(WebhookUrl::parse("http://hoso.example.gov.vn/x", &p).is_err());
        assert!(WebhookUrl::parse("https://evil.example.com/x", &p).is_err());
        assert!(WebhookUrl::parse("https://hoso.example.gov.vn@evil.com/x", &p).is_err());
        assert!(WebhookUrl::parse("https://127.0.0.1:9000/x", &p).is_err());
        assert!(WebhookUrl::parse("ftp://hoso.example.gov.vn/x", &p).is_err());
        assert!(WebhookUrl::parse("hoso.example.gov.vn/x", &p).is_err());
        // No client can send to these.
        assert!(WebhookUrl::parse("https://[hoso.example.gov.vn]/x", &p).is_err());
        assert!(WebhookUrl::parse("https://hoso.example.gov.vn:99999999999/x", &p).is_err());
        assert!(WebhookUrl::parse("https://hoso.example.gov.vn:65536/x", &p).is_err());
        assert!(WebhookUrl::parse("https://hoso.example.gov.vn:0/x", &p).is_err());
        assert!(WebhookUrl::parse("https://:443/x", &p).is_err());
        let dev = policy(&[], true);
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook", &dev).is_ok());
        assert!(WebhookUrl::parse("http://localhost:9000/hook", &dev).is_ok());
        assert!(WebhookUrl::parse("http://[::1]:9000/hook", &dev).is_ok());
        assert!(WebhookUrl::parse("http://10.0.0.1/hook", &dev).is_err());
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example secret and message of the Standard Webhooks specification.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        assert!(WebhookSecret::parse("whsec_short").is_err());
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        let secret = WebhookSecret::generate();
        assert!(WebhookSecret::parse(secret.expose()).is_ok());
        assert!(!format!("{secret:?}").contains(&secret.expose()[6..]));
    }

    #[test]
    fn during_a_rotation_both_secrets_sign() {
        let current = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let previous = WebhookSecret::generate();
        let (id, at, body) = (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        let alone = WebhookSigners {
            current: current.clone(),
            previous: None,
        };
        assert_eq!(alone.sign(id, at, body), current.sign(id, at, body));
        let both = WebhookSigners {
            current: current.clone(),
            previous: Some(previous.clone()),
        };
        assert_eq!(
            both.sign(id, at, body),
            format!(
                "{} {}",
                current.sign(id, at, body),
                previous.sign(id, at, body)
            )
        );
    }
}
