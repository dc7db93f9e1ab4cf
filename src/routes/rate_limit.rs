//! A small in-memory limit on how often one client may call a group of
//! routes: a fixed one-minute window per client address. Each process
//! keeps its own count, which is enough to make guessing slow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many clients, windows that have ended are dropped, at most
/// once a second.
const PRUNE_ABOVE: usize = 10_000;
/// The most clients counted apart. Beyond them (a flood of addresses) new
/// clients share one count, so memory stays bounded whatever comes.
const MAX_CLIENTS: usize = 100_000;

/// Counts each client's requests in the current minute.
pub struct RateLimiter {
    per_minute: u32,
    state: Mutex<Clients>,
}

struct Clients {
    windows: HashMap<IpAddr, Window>,
    pruned: Option<Instant>,
}

struct Window {
    started: Instant,
    count: u32,
}

/// Where clients beyond [`MAX_CLIENTS`] are counted together.
const OVERFLOW: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            state: Mutex::new(Clients {
                windows: HashMap::new(),
                pruned: None,
            }),
        }
    }

    /// Counts a request from `client`; `Err` with the seconds until it may
    /// try again once it has used up its minute.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let mut key = client_key(client);
        // A poisoned lock only means another request panicked while
        // counting; the counts are still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Clients { windows, pruned } = &mut *state;
        if windows.len() > PRUNE_ABOVE
            && pruned.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
        {
            windows.retain(|_, w| now.duration_since(w.started) < WINDOW);
            *pruned = Some(now);
        }
        if windows.len() >= MAX_CLIENTS && !windows.contains_key(&key) {
            key = OVERFLOW;
        }
        let window = windows.entry(key).or_insert(Window {
            started: now,
            count: 0,
        });
        let elapsed = now.duration_since(window.started);
        if elapsed >= WINDOW {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        if window.count >= self.per_minute {
            let left = WINDOW.saturating_sub(now.duration_since(window.started));
            return Err(left.as_secs().max(1));
        }
        window.count += 1;
        Ok(())
    }
}

/// Whom a request is counted against: an IPv4 address, or an IPv6
/// address's /64 network, which one household or one attacker has whole.
fn client_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_quota_each_minute() {
        let limiter = RateLimiter::per_minute(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check_at(ip("203.0.113.7"), start), Ok(()));
        }
        let later = start + Duration::from_secs(20);
        assert_eq!(limiter.check_at(ip("203.0.113.7"), later), Err(40));
        // Others are counted apart.
        assert_eq!(limiter.check_at(ip("203.0.113.8"), later), Ok(()));
        let next_minute = start + WINDOW;
        assert_eq!(limiter.check_at(ip("203.0.113.7"), next_minute), Ok(()));
    }

    #[test]
    fn an_ipv6_network_counts_as_one_client() {
        let limiter = RateLimiter::per_minute(1);
        let now = Instant::now();
        assert_eq!(limiter.check_at(ip("2001:db8:1:2::1"), now), Ok(()));
        assert!(limiter.check_at(ip("2001:db8:1:2::ffff"), now).is_err());
        assert_eq!(limiter.check_at(ip("2001:db8:1:3::1"), now), Ok(()));
        assert_eq!(limiter.check_at(ip("::ffff:192.0.2.1"), now), Ok(()));
        assert!(limiter.check_at(ip("192.0.2.1"), now).is_err());
    }

    #[test]
    fn ended_windows_are_pruned() {
        let limiter = RateLimiter::per_minute(1);
        let start = Instant::now();
        for n in 0..=PRUNE_ABOVE as u32 {
            let client = IpAddr::V4(n.into());
            assert_eq!(limiter.check_at(client, start), Ok(()));
        }
        limiter
            .check_at(ip("198.51.100.1"), start + WINDOW)
            .unwrap();
        assert_eq!(limiter.state.lock().unwrap().windows.len(), 1);
    }

    #[test]
    fn a_flood_of_addresses_shares_one_count_past_the_cap() {
        let limiter = RateLimiter::per_minute(2);
        let now = Instant::now();
        for n in 0..MAX_CLIENTS as u32 {
            limiter.check_at(IpAddr::V4((n + 1).into()), now).unwrap();
        }
        // New addresses now share one count; known ones keep their own.
        assert_eq!(limiter.check_at(ip("2001:db8::1"), now), Ok(()));
        assert_eq!(limiter.check_at(ip("2001:db8:1::1"), now), Ok(()));
        assert!(limiter.check_at(ip("2001:db8:2::1"), now).is_err());
        assert_eq!(limiter.check_at(IpAddr::V4(1.into()), now), Ok(()));
        assert!(limiter.state.lock().unwrap().windows.len() <= MAX_CLIENTS + 1);
    }
}
