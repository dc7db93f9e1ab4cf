//! A small in-memory limit on how often one client may call a group of
//! routes: a fixed one-minute window per client. Each process keeps its
//! own count, which is enough to make guessing slow.
//!
//! Who a client is: an IPv4 address; for IPv6, its /64 network (one
//! household or one attacker has it whole), and its /48 as well, which
//! gets [`NETWORK_SHARE`] times the quota (an attacker with a /48 has 65,536
//! /64s to spread over). Memory is bounded: past [`MAX_CLIENTS`] windows,
//! the one started longest ago is dropped to make room. A flood of
//! addresses can so only reset old counts (letting a few requests more
//! through), never make new clients share one count that the flood
//! fills.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// The most windows kept.
const MAX_CLIENTS: usize = 100_000;
/// How many times a client's quota an IPv6 /48 gets.
const NETWORK_SHARE: u32 = 16;

/// Counts each client's requests in the current minute.
pub struct RateLimiter {
    per_minute: u32,
    state: Mutex<Windows>,
}

/// What a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    V4(std::net::Ipv4Addr),
    /// An IPv6 /64.
    Net64(Ipv6Addr),
    /// An IPv6 /48.
    Net48(Ipv6Addr),
}

#[derive(Default)]
struct Windows {
    windows: HashMap<Key, Window>,
    /// Windows in the order they started, oldest first; an entry whose
    /// window has started again since is stale and skipped.
    started: VecDeque<(Key, Instant)>,
}

struct Window {
    started: Instant,
    count: u32,
}

impl Windows {
    /// The window of `key` now, made (dropping the oldest if full) or
    /// started again if its minute is over.
    fn window(&mut self, key: Key, now: Instant) -> &mut Window {
        let current = self
            .windows
            .get(&key)
            .is_some_and(|w| now.duration_since(w.started) < WINDOW);
        if !current {
            if !self.windows.contains_key(&key) {
                while self.windows.len() >= MAX_CLIENTS {
                    self.drop_oldest();
                }
            }
            self.windows.insert(
                key,
                Window {
                    started: now,
                    count: 0,
                },
            );
            self.started.push_back((key, now));
            if self.started.len() > 2 * MAX_CLIENTS {
                self.compact();
            }
        }
        self.windows
            .get_mut(&key)
            .unwrap_or_else(|| unreachable!("the window was just made"))
    }

    fn drop_oldest(&mut self) {
        while let Some((key, started)) = self.started.pop_front() {
            if self.windows.get(&key).is_some_and(|w| w.started == started) {
                self.windows.remove(&key);
                return;
            }
        }
        // The queue lists every window: it cannot run dry while some are kept.
        self.windows.clear();
    }

    /// Drops the queue's stale entries.
    fn compact(&mut self) {
        let windows = &self.windows;
        self.started
            .retain(|(key, started)| windows.get(key).is_some_and(|w| w.started == *started));
    }
}

impl RateLimiter {
    pub fn per_minute(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            state: Mutex::new(Windows::default()),
        }
    }

    /// Counts a request from `client`; `Err` with the seconds until it may
    /// try again once it has used up its minute.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let keys = keys_of(client);
        // A poisoned lock only means another request panicked while
        // counting; the counts are still usable.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Refused if any of its keys has used its quota; counted in all.
        let mut refused: Option<u64> = None;
        for (key, quota) in keys.iter().flatten() {
            let quota = self.per_minute.saturating_mul(*quota);
            let window = state.window(*key, now);
            if window.count >= quota {
                let left = WINDOW.saturating_sub(now.duration_since(window.started));
                let left = left.as_secs().max(1);
                refused = Some(refused.map_or(left, |l| l.max(left)));
            }
        }
        if let Some(left) = refused {
            return Err(left);
        }
        for (key, _) in keys.iter().flatten() {
            let window = state.window(*key, now);
            window.count += 1;
        }
        Ok(())
    }
}

/// What a request from `client` is counted against, each with its quota
/// as a multiple of a client's.
fn keys_of(client: IpAddr) -> [Option<(Key, u32)>; 2] {
    let v6 = match client {
        IpAddr::V4(v4) => return [Some((Key::V4(v4), 1)), None],
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => return [Some((Key::V4(v4), 1)), None],
            None => v6,
        },
    };
    let network = |keep: usize| {
        let mut segments = v6.segments();
        segments[keep..].fill(0);
        Ipv6Addr::from(segments)
    };
    [
        Some((Key::Net64(network(4)), 1)),
        Some((Key::Net48(network(3)), NETWORK_SHARE)),
    ]
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
    fn a_48_gets_sixteen_clients_quota_across_its_64s() {
        let limiter = RateLimiter::per_minute(2);
        let now = Instant::now();
        // 16 /64s of one /48 use its whole quota (2 × 16).
        for n in 0..NETWORK_SHARE {
            let client = ip(&format!("2001:db8:7:{n:x}::1"));
            assert_eq!(limiter.check_at(client, now), Ok(()));
            assert_eq!(limiter.check_at(client, now), Ok(()));
        }
        // A fresh /64 of the same /48 is refused; another /48 is not.
        assert!(limiter.check_at(ip("2001:db8:7:ff::1"), now).is_err());
        assert_eq!(limiter.check_at(ip("2001:db8:8::1"), now), Ok(()));
        // A refused request counts nothing.
        assert_eq!(
            limiter
                .state
                .lock()
                .unwrap()
                .windows
                .get(&Key::Net64(ip6("2001:db8:7:ff::")))
                .map(|w| w.count),
            Some(0)
        );
    }

    fn ip6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    #[test]
    fn ended_windows_start_again() {
        let limiter = RateLimiter::per_minute(1);
        let start = Instant::now();
        assert_eq!(limiter.check_at(ip("198.51.100.1"), start), Ok(()));
        assert!(limiter.check_at(ip("198.51.100.1"), start).is_err());
        assert_eq!(limiter.check_at(ip("198.51.100.1"), start + WINDOW), Ok(()));
    }

    #[test]
    fn a_flood_of_addresses_never_makes_new_clients_share_a_count() {
        let limiter = RateLimiter::per_minute(2);
        let now = Instant::now();
        // More addresses than are kept, one request each.
        for n in 0..(MAX_CLIENTS as u32 + 2_000) {
            limiter.check_at(IpAddr::V4((n + 1).into()), now).unwrap();
        }
        assert!(limiter.state.lock().unwrap().windows.len() <= MAX_CLIENTS);
        // Every new citizen still gets their own quota.
        for n in 0..100u32 {
            let client = IpAddr::V4((0xC000_0000 + n).into());
            assert_eq!(limiter.check_at(client, now), Ok(()));
            assert_eq!(limiter.check_at(client, now), Ok(()));
            assert!(limiter.check_at(client, now).is_err());
        }
        // The queue stays bounded too.
        for round in 0..3u32 {
            let later = now + WINDOW * (round + 1);
            for n in 0..(MAX_CLIENTS as u32) {
                limiter.check_at(IpAddr::V4((n + 1).into()), later).unwrap();
            }
        }
        let state = limiter.state.lock().unwrap();
        assert!(state.windows.len() <= MAX_CLIENTS);
        assert!(state.started.len() <= 2 * MAX_CLIENTS + 1);
    }
}
