//! The address of the client behind a request, for the rate limits,
//! VNPay's `vnp_IpAddr` and the audit: the connection's peer, or, when
//! the peer is one of `server.trusted_proxies`, the client the proxies
//! name in `X-Forwarded-For` (or `Forwarded`, as configured).
//!
//! Each proxy appends the address it saw, so the header is read from the
//! right: entries a trusted proxy wrote are passed over, and the first one
//! that is not itself a trusted proxy is the client. Whatever a client
//! wrote before that is never believed.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use ipnet::IpNet;
use serde::Deserialize;

use crate::startup::AppState;

/// Which header the trusted proxies write the client into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1`, as nginx's
    /// `$proxy_add_x_forwarded_for` and most load balancers write it.
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

/// The proxies whose word on the client is taken.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

/// The request's client address, put in the request's extensions by
/// [`resolve`] for every handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl TrustedProxies {
    /// Parses `entries`, each a CIDR (`10.0.0.0/8`, `fd00::/8`) or one
    /// address; the first that is neither is named in the error.
    pub fn parse(entries: &[String], header: ForwardedHeader) -> Result<TrustedProxies, String> {
        let nets = entries
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                IpNet::from_str(entry)
                    .map(|net| net.trunc())
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an address nor a CIDR"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedProxies { nets, header })
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = unmapped(addr);
        self.nets.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = unmapped(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded(headers),
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            // An entry that names no address ("unknown", an obfuscated
            // name, garbage): nothing before it can be placed, and the last
            // trusted proxy is as far as the chain is known.
            let Some(addr) = hop else {
                return client;
            };
            client = unmapped(addr);
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// An IPv4 address as the dual-stack socket reports it (`::ffff:a.b.c.d`)
/// is that IPv4 address.
fn unmapped(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// The entries of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .flat_map(|value| match value.to_str() {
            Ok(text) => text.split(',').map(address).collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// The `for=` of every element of every `Forwarded` header, in order.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .flat_map(|value| match value.to_str() {
            Ok(text) => text
                .split(',')
                .map(|element| {
                    element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                        .and_then(|(_, value)| address(value.trim().trim_matches('"')))
                })
                .collect(),
            Err(_) => vec![None],
        })
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`,
/// `2001:db8::1` or `[2001:db8::1]:4711`.
fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    IpAddr::from_str(text)
        .ok()
        .or_else(|| SocketAddr::from_str(text).ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| IpAddr::from_str(inner).ok())
        })
}

/// Finds each request's client once, for every handler to read.
pub async fn resolve(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let client = req
        .peer_addr()
        .map(|peer| match req.app_data::<web::Data<AppState>>() {
            Some(state) => state.trusted_proxies.client(peer.ip(), req.headers()),
            None => unmapped(peer.ip()),
        });
    if let Some(client) = client {
        req.extensions_mut().insert(ClientAddr(client));
    }
    next.call(req).await
}

/// The client of `req`, as [`resolve`] found it.
pub fn of(req: &HttpRequest) -> Option<IpAddr> {
    req.extensions().get::<ClientAddr>().map(|addr| addr.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(entries: &[&str], header: ForwardedHeader) -> TrustedProxies {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        TrustedProxies::parse(&entries, header).unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let none = TrustedProxies::default();
        let sent = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        assert_eq!(none.client(ip("203.0.113.9"), &sent), ip("203.0.113.9"));
        let some = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(some.client(ip("203.0.113.9"), &sent), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = proxies(
            &["10.0.0.0/8", "192.0.2.10"],
            ForwardedHeader::XForwardedFor,
        );
        // The client wrote "1.1.1.1" itself; the outer proxy appended
        // what it saw, the inner one what it saw.
        let sent = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 192.0.2.10")]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &sent), ip("198.51.100.7"));
        // Headers sent twice read as one list.
        let twice = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "198.51.100.7:5123"),
        ]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &twice), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            trusted.client(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
        // An entry that names no address stops the walk at the last proxy.
        let garbled = headers(&[("x-forwarded-for", "198.51.100.7, unknown")]);
        assert_eq!(trusted.client(ip("10.1.2.3"), &garbled), ip("10.1.2.3"));
        // The dual-stack form of a trusted IPv4 proxy is trusted.
        assert_eq!(
            trusted.client(ip("::ffff:10.1.2.3"), &sent),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_only_when_configured() {
        let sent = headers(&[
            ("x-forwarded-for", "203.0.113.50"),
            (
                "forwarded",
                "for=198.51.100.1, for=\"[2001:db8:cafe::17]:4711\";proto=https",
            ),
        ]);
        let rfc = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        assert_eq!(rfc.client(ip("10.0.0.1"), &sent), ip("2001:db8:cafe::17"));
        let xff = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        assert_eq!(xff.client(ip("10.0.0.1"), &sent), ip("203.0.113.50"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        let err =
            TrustedProxies::parse(&["10.0.0.0/33".into()], ForwardedHeader::Forwarded).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(
            TrustedProxies::parse(
                &["fd00::/8".into(), "127.0.0.1".into()],
                ForwardedHeader::Forwarded
            )
            .is_ok()
        );
    }
}
