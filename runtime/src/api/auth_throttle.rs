//! Wrong tokens are throttled per client address, so that a token cannot be guessed at speed.
//!
//! Each client (an IPv4 address, or an IPv6 address by its /64, the block one host is given)
//! may present [`BURST`] wrong tokens; the allowance grows back by one every [`REFILL`]. A
//! client that has used it up gets `429 Too Many Requests` with `Retry-After` for every request
//! carrying a token, right or wrong, until one more guess is allowed: at most 6 guesses a
//! minute, sustained. A right token does not reset the count (a viewer could otherwise guess an
//! operator's token between its own requests). The table holds at most [`MAX_CLIENTS`] clients;
//! beyond that, new clients share one more allowance, so that many addresses buy no more guesses.
//! Behind a reverse proxy every client has the proxy's address and shares its allowance.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens a client may present before it is throttled.
pub const BURST: u32 = 10;
/// One more wrong token is allowed after this long.
pub const REFILL: Duration = Duration::from_secs(10);
/// Clients tracked one by one; beyond, they share one allowance.
pub const MAX_CLIENTS: usize = 4096;

/// Who a request comes from, as far as the throttle is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ClientKey {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
    /// Every client that found the table full.
    Overflow,
}

impl ClientKey {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4.octets()),
                None => {
                    let mut prefix = [0u8; 8];
                    prefix.copy_from_slice(&v6.octets()[..8]);
                    ClientKey::V6Prefix(prefix)
                }
            },
        }
    }
}

/// The client `ip` counts as, in words: the address itself, or its /64 for IPv6.
pub fn client_of(ip: IpAddr) -> String {
    client_name(ClientKey::of(ip))
}

fn client_name(key: ClientKey) -> String {
    match key {
        ClientKey::V4(octets) => std::net::Ipv4Addr::from(octets).to_string(),
        ClientKey::V6Prefix(prefix) => {
            let mut octets = [0u8; 16];
            octets[..8].copy_from_slice(&prefix);
            format!("{}/64", std::net::Ipv6Addr::from(octets))
        }
        ClientKey::Overflow => "clients beyond those tracked".to_string(),
    }
}

/// Wrong tokens a client presented that have not yet been forgiven.
#[derive(Clone, Copy, Debug)]
struct Debt {
    wrong: u32,
    /// When the last wrong token was forgiven (or the first counted).
    since: Instant,
    /// The client was reported throttled since it last owed nothing.
    reported: bool,
}

impl Debt {
    /// Forgives one wrong token per `REFILL` since `since`.
    fn settle(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.since);
        let steps = (elapsed.as_nanos() / REFILL.as_nanos()).min(u128::from(u32::MAX)) as u32;
        if steps > 0 {
            self.wrong = self.wrong.saturating_sub(steps);
            self.since += REFILL * steps.min(BURST);
            if self.wrong == 0 {
                self.since = now;
                self.reported = false;
            }
        }
    }

    /// How long until one more wrong token is allowed, when none is.
    fn wait(&self, now: Instant) -> Option<Duration> {
        (self.wrong >= BURST)
            .then(|| REFILL.saturating_sub(now.saturating_duration_since(self.since)))
    }
}

/// The table of clients' wrong tokens; shared by every request of one listener.
#[derive(Debug, Default)]
pub struct AuthThrottle {
    clients: Mutex<HashMap<ClientKey, Debt>>,
}

impl AuthThrottle {
    /// `Err(wait)` when `ip` has used up its wrong tokens: no token of its may be checked for
    /// `wait` (rounded up to whole seconds by the caller for `Retry-After`).
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut clients) = self.clients.lock() else {
            return Ok(());
        };
        let key = Self::key_in(&clients, ClientKey::of(ip));
        match clients.get_mut(&key) {
            Some(debt) => {
                debt.settle(now);
                debt.wait(now).map_or(Ok(()), Err)
            }
            None => Ok(()),
        }
    }

    /// Counts a wrong token from `ip`; returns the client charged (its name, see [`client_of`])
    /// when this used up its allowance for the first time since it last owed nothing (the
    /// caller reports it: once per bout of guessing, not at every refill).
    pub fn wrong_token(&self, ip: IpAddr, now: Instant) -> Option<String> {
        let Ok(mut clients) = self.clients.lock() else {
            return None;
        };
        let own = ClientKey::of(ip);
        if !clients.contains_key(&own) && clients.len() >= MAX_CLIENTS {
            clients.retain(|_, debt| {
                debt.settle(now);
                debt.wrong > 0
            });
        }
        let key = Self::key_in(&clients, own);
        let debt = clients.entry(key).or_insert(Debt {
            wrong: 0,
            since: now,
            reported: false,
        });
        debt.settle(now);
        debt.wrong = debt.wrong.saturating_add(1);
        if debt.wrong < BURST || debt.reported {
            return None;
        }
        debt.reported = true;
        Some(match key {
            ClientKey::Overflow => client_name(key),
            _ => client_of(ip),
        })
    }

    /// `key` if the table holds it or has room for it, else the shared overflow key.
    fn key_in(clients: &HashMap<ClientKey, Debt>, key: ClientKey) -> ClientKey {
        if clients.contains_key(&key) || clients.len() < MAX_CLIENTS {
            key
        } else {
            ClientKey::Overflow
        }
    }

    /// Clients in the table (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.clients.lock().map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn a_client_is_named_by_its_address_or_its_slash_64() {
        assert_eq!(client_of(A), "192.0.2.1");
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("v6");
        assert_eq!(client_of(v6), "2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("mapped");
        assert_eq!(client_of(mapped), "192.0.2.1");
    }

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn ten_wrong_tokens_then_one_more_every_ten_seconds() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        for n in 1..=BURST {
            assert_eq!(throttle.check(A, t0), Ok(()), "guess {n}");
            let reported = throttle.wrong_token(A, t0);
            assert_eq!(reported.is_some(), n == BURST, "guess {n}");
        }
        assert_eq!(throttle.check(A, t0), Err(REFILL));
        assert_eq!(
            throttle.check(A, t0 + Duration::from_secs(4)),
            Err(Duration::from_secs(6))
        );
        // Another client is not affected.
        assert_eq!(throttle.check(B, t0), Ok(()));
        // One guess after 10 s, then throttled again for 10 s.
        let t1 = t0 + REFILL;
        assert_eq!(throttle.check(A, t1), Ok(()));
        // Throttled again, but reported once per bout.
        assert_eq!(throttle.wrong_token(A, t1), None);
        assert_eq!(
            throttle.check(A, t1 + Duration::from_secs(1)),
            Err(Duration::from_secs(9))
        );
        // After BURST refills everything is forgiven.
        let t2 = t1 + REFILL * BURST;
        for n in 1..BURST {
            assert_eq!(throttle.wrong_token(A, t2), None, "guess {n}");
        }
        assert_eq!(throttle.check(A, t2), Ok(()));
        // A new bout is reported again.
        assert_eq!(throttle.wrong_token(A, t2).as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn an_ipv6_client_is_its_64_block_and_a_mapped_v4_is_the_v4() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1));
        let same_block = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        let other_block = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        for _ in 0..BURST {
            throttle.wrong_token(one, t0);
        }
        assert!(throttle.check(same_block, t0).is_err());
        assert!(throttle.check(other_block, t0).is_ok());
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        for _ in 0..BURST {
            throttle.wrong_token(A, t0);
        }
        assert!(throttle.check(mapped, t0).is_err());
    }

    #[test]
    fn a_full_table_makes_newcomers_share_one_allowance() {
        let throttle = AuthThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            throttle.wrong_token(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t0);
        }
        assert_eq!(throttle.len(), MAX_CLIENTS);
        // Newcomers (each with one guess) share one allowance: the eleventh is throttled, and
        // the report names the shared allowance.
        let mut reported = Vec::new();
        for i in 0..BURST {
            reported.extend(throttle.wrong_token(IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + i)), t0));
        }
        assert_eq!(reported, ["clients beyond those tracked"]);
        assert!(
            throttle
                .check(IpAddr::V4(Ipv4Addr::new(11, 9, 9, 9)), t0)
                .is_err()
        );
        assert_eq!(throttle.len(), MAX_CLIENTS + 1);
        // Once the old debts are forgiven, room is made again.
        let later = t0 + REFILL;
        throttle.wrong_token(IpAddr::V4(Ipv4Addr::new(12, 0, 0, 1)), later);
        assert!(throttle.len() < 10);
    }
}
