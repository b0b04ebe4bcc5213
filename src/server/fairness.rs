//! Fair shares between clients (docs/API.md "Limits"): a hostile client
//! cannot take more than its share of argusd, however fast it loops.
//!
//! Every request is charged, before its body is read, to whom it proves it
//! comes from. An authenticated caller (a token, a configured Unix-socket
//! peer) has a bucket of its own, so a producer that shares a host (or, on
//! loopback, an address) with an attacker keeps its share. A request that
//! proves nothing (no credentials where they are needed, a wrong token, an
//! unknown uid) is charged to its address (an IPv4 address, an IPv6 /64, a
//! uid) and to one budget that all such requests share, so neither one
//! address nor many can spend more than that budget of the daemon's time.
//! The daemon's own user is not limited: it is the operator.
//!
//! A request over its rate waits for its turn when that comes within
//! `limits.rate_delay_ms`, and is refused with 429 and `Retry-After` when it
//! does not. Waiting is what slows a client that loops on its answers: a
//! refusal sent at once would only let it loop faster.
//!
//! Each open connection also counts against its peer (address or uid), so
//! one peer cannot hold every connection slot. A connection that ends in a
//! protocol error (a malformed or oversized head, a head that never came)
//! is charged to its peer too, and a peer past `bad_connection_rate_per_s`
//! has its next connections held, up to `rate_delay_ms`, before they are
//! read: hyper refuses such a connection before any route (and so any
//! request bucket) sees it, and a client that loops on that refusal would
//! otherwise take as much of the daemon as it likes.
use super::auth::{Auth, Caller, Peer};
use super::config::Limits;
use super::errors::ApiError;
use super::routes::App;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Buckets kept at most; past it, buckets that are full again (worth
/// nothing) are dropped, and an address that still finds no room is
/// charged to the shared anonymous budget only.
const KEYS_MAX: usize = 16_384;

/// A rate with a burst, as the generic cell rate algorithm keeps it: one
/// instant per key (when its bucket would be full again).
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    interval_ns: u64,
    tolerance_ns: u64,
}

impl Rate {
    /// `None` when `per_s` is 0 (unlimited).
    pub fn new(per_s: u64, burst: u64) -> Option<Self> {
        if per_s == 0 {
            return None;
        }
        let interval_ns = 1_000_000_000 / per_s.max(1);
        Some(Self {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst.max(1) - 1),
        })
    }
}

/// Whose bucket a request is charged to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Caller(String),
    Addr(IpAddr),
    Uid(u32),
    /// Every request that proves nothing, together.
    Anonymous,
    /// A peer's connections that ended in a protocol error.
    Bad(Box<Key>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    Wait(Duration),
    Refuse { retry_after_s: u64 },
}

/// The daemon's buckets and per-peer connection counts.
pub struct Fairness {
    start: Instant,
    /// Per key: nanoseconds since `start` at which its bucket is full again.
    tat: Mutex<HashMap<Key, u64>>,
    caller: Option<Rate>,
    peer: Option<Rate>,
    anonymous: Option<Rate>,
    bad: Option<Rate>,
    delay_max_ns: u64,
    connections: Mutex<HashMap<Key, usize>>,
    connections_per_peer: usize,
}

impl Fairness {
    pub fn new(limits: &Limits) -> Self {
        Self {
            start: Instant::now(),
            tat: Mutex::new(HashMap::new()),
            caller: Rate::new(limits.caller_rate_per_s, limits.caller_burst),
            peer: Rate::new(limits.anonymous_rate_per_s, limits.anonymous_burst),
            anonymous: Rate::new(
                limits.anonymous_total_rate_per_s,
                limits.anonymous_total_burst,
            ),
            bad: Rate::new(
                limits.bad_connection_rate_per_s,
                limits.bad_connection_burst,
            ),
            delay_max_ns: limits.rate_delay_ms.saturating_mul(1_000_000),
            connections: Mutex::new(HashMap::new()),
            connections_per_peer: limits.connections_per_peer_max.min(limits.connections_max),
        }
    }

    /// Charges one request from `peer` with `headers` to its buckets.
    pub fn charge_request(
        &self,
        auth: &Auth,
        headers: &axum::http::HeaderMap,
        peer: &Peer,
    ) -> Verdict {
        match auth.identify(headers, peer) {
            Ok(Caller::Local { .. }) => Verdict::Go,
            Ok(c) => match self.caller {
                Some(r) => self.charge(&[(Key::Caller(c.principal()), r)]),
                None => Verdict::Go,
            },
            Err(_) => {
                let mut keys = Vec::with_capacity(2);
                if let Some(r) = self.peer {
                    keys.push((peer_key(peer), r));
                }
                if let Some(r) = self.anonymous {
                    keys.push((Key::Anonymous, r));
                }
                self.charge(&keys)
            }
        }
    }

    /// The generic cell rate algorithm over several buckets at once: the
    /// request goes when every bucket has room, waits for the latest of
    /// them if that is within the delay bound, and is refused (charging
    /// nothing) otherwise.
    pub fn charge(&self, keys: &[(Key, Rate)]) -> Verdict {
        self.charge_at(keys, self.start.elapsed().as_nanos() as u64)
    }

    /// `charge` at `now` (nanoseconds since the daemon's start).
    fn charge_at(&self, keys: &[(Key, Rate)], now: u64) -> Verdict {
        if keys.is_empty() {
            return Verdict::Go;
        }
        let mut tat = self.tat.lock();
        let mut wait = 0u64;
        let mut due = Vec::with_capacity(keys.len());
        for (key, rate) in keys {
            let t = tat.get(key).copied().unwrap_or(now).max(now);
            wait = wait.max((t - now).saturating_sub(rate.tolerance_ns));
            due.push(t);
        }
        if wait > self.delay_max_ns {
            return Verdict::Refuse {
                retry_after_s: wait.div_ceil(1_000_000_000).max(1),
            };
        }
        for ((key, rate), t) in keys.iter().zip(due) {
            let next = t + rate.interval_ns;
            if let Some(v) = tat.get_mut(key) {
                *v = next;
                continue;
            }
            if tat.len() >= KEYS_MAX {
                tat.retain(|_, v| *v > now);
            }
            if tat.len() < KEYS_MAX || matches!(key, Key::Caller(_) | Key::Anonymous) {
                tat.insert(key.clone(), next);
            }
        }
        if wait == 0 {
            Verdict::Go
        } else {
            Verdict::Wait(Duration::from_nanos(wait))
        }
    }

    /// How long a new connection from `peer` is held before it is read:
    /// until the peer's bad-connection bucket has room, at most the delay
    /// bound. Charges nothing; `bad_connection` does.
    pub fn accept_delay(&self, peer: &Peer) -> Duration {
        let Some(rate) = self.bad else {
            return Duration::ZERO;
        };
        let now = self.start.elapsed().as_nanos() as u64;
        let key = Key::Bad(Box::new(peer_key(peer)));
        let tat = self.tat.lock().get(&key).copied().unwrap_or(now);
        let wait = tat.saturating_sub(now).saturating_sub(rate.tolerance_ns);
        Duration::from_nanos(wait.min(self.delay_max_ns))
    }

    /// Charges a connection of `peer` that ended in a protocol error.
    pub fn bad_connection(&self, peer: &Peer) {
        let Some(rate) = self.bad else {
            return;
        };
        let now = self.start.elapsed().as_nanos() as u64;
        // Never owed more than one delay bound past the burst: the bucket
        // says how hostile the peer is now, not how hostile it once was.
        let cap = now + rate.tolerance_ns + self.delay_max_ns;
        let key = Key::Bad(Box::new(peer_key(peer)));
        let mut tat = self.tat.lock();
        if tat.len() >= KEYS_MAX && !tat.contains_key(&key) {
            tat.retain(|_, v| *v > now);
            if tat.len() >= KEYS_MAX {
                return;
            }
        }
        let t = tat.entry(key).or_insert(now);
        *t = ((*t).max(now) + rate.interval_ns).min(cap);
    }

    /// A slot for one more connection from `peer`, or `None` when the peer
    /// already holds `limits.connections_per_peer_max`.
    pub fn connection(self: &Arc<Self>, peer: &Peer) -> Option<PeerSlot> {
        let key = peer_key(peer);
        let mut held = self.connections.lock();
        let n = held.entry(key.clone()).or_insert(0);
        if *n >= self.connections_per_peer {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            fairness: self.clone(),
            key,
        })
    }
}

/// One connection counted against its peer until dropped.
pub struct PeerSlot {
    fairness: Arc<Fairness>,
    key: Key,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut held = self.fairness.connections.lock();
        if let Some(n) = held.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

/// An IPv6 peer is its /64: one host usually holds a whole /64, and
/// counting each address apart would give it 2^64 buckets.
fn peer_key(peer: &Peer) -> Key {
    match peer {
        Peer::Tcp(a) => match a.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Key::Addr(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Key::Addr(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
            v4 => Key::Addr(v4),
        },
        Peer::Unix { uid, .. } => Key::Uid(*uid),
    }
}

/// Bodies up to this size are read before a 429, so the client sees the
/// answer and not a reset; a larger one is not read at all (the
/// connection closes after the answer).
const DRAIN_BYTES: u64 = 64 << 10;

/// The middleware in front of every route.
pub async fn gate(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let verdict = match req.extensions().get::<Peer>() {
        Some(peer) => app.fairness.charge_request(&app.auth, req.headers(), peer),
        None => Verdict::Go,
    };
    match verdict {
        Verdict::Go => next.run(req).await,
        Verdict::Wait(d) => {
            metrics::counter!("argus_requests_delayed_total").increment(1);
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Verdict::Refuse { retry_after_s } => refuse(req, retry_after_s).await,
    }
}

async fn refuse(req: Request, retry_after_s: u64) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    let small = declared.is_some_and(|n| n <= DRAIN_BYTES);
    if small {
        let body = http_body_util::Limited::new(req.into_body(), DRAIN_BYTES as usize);
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            http_body_util::BodyExt::collect(body),
        )
        .await;
    }
    let mut e = ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over this client's request rate (limits.*_rate_per_s); retry after {retry_after_s} s, or batch entries into fewer requests"
        ),
    );
    e.retry_after = Some(retry_after_s);
    let mut r = e.into_response();
    if !small && declared.is_some() {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fair(delay_ms: u64) -> Fairness {
        Fairness::new(&Limits {
            rate_delay_ms: delay_ms,
            ..Limits::default()
        })
    }

    #[test]
    fn a_burst_goes_then_requests_wait_then_are_refused() {
        let f = fair(100);
        let r = Rate::new(10, 3).unwrap();
        let k = [(Key::Uid(7), r)];
        let at = |ms: u64| ms * 1_000_000;
        for _ in 0..3 {
            assert_eq!(f.charge_at(&k, at(1000)), Verdict::Go);
        }
        // 10/s: the 4th waits 100 ms, within the bound; the 5th 200 ms.
        assert_eq!(
            f.charge_at(&k, at(1000)),
            Verdict::Wait(Duration::from_millis(100))
        );
        assert_eq!(
            f.charge_at(&k, at(1000)),
            Verdict::Refuse { retry_after_s: 1 }
        );
        // A refusal charged nothing: 150 ms on, one more waits 50 ms.
        assert_eq!(
            f.charge_at(&k, at(1150)),
            Verdict::Wait(Duration::from_millis(50))
        );
        // Another key has its own bucket.
        assert_eq!(f.charge_at(&[(Key::Uid(8), r)], at(1000)), Verdict::Go);
    }

    #[test]
    fn the_shared_bucket_binds_every_address() {
        let f = fair(0);
        let per = Rate::new(1000, 1000).unwrap();
        let all = Rate::new(1, 2).unwrap();
        let from = |i: u8| {
            [
                (Key::Addr(IpAddr::from([10, 0, 0, i])), per),
                (Key::Anonymous, all),
            ]
        };
        assert_eq!(f.charge_at(&from(1), 0), Verdict::Go);
        assert_eq!(f.charge_at(&from(2), 0), Verdict::Go);
        assert_eq!(
            f.charge_at(&from(3), 0),
            Verdict::Refuse { retry_after_s: 1 }
        );
        // A second later the shared bucket has room for one again.
        assert_eq!(f.charge_at(&from(4), 1_000_000_000), Verdict::Go);
    }

    #[test]
    fn connection_slots_are_per_peer_and_given_back() {
        let f = Arc::new(Fairness::new(&Limits {
            connections_per_peer_max: 2,
            ..Limits::default()
        }));
        let a: Peer = Peer::Tcp("10.0.0.1:5".parse().unwrap());
        let a2: Peer = Peer::Tcp("10.0.0.1:6".parse().unwrap());
        let b: Peer = Peer::Tcp("10.0.0.2:5".parse().unwrap());
        let s1 = f.connection(&a).unwrap();
        let _s2 = f.connection(&a2).unwrap();
        assert!(f.connection(&a).is_none());
        assert!(f.connection(&b).is_some());
        drop(s1);
        assert!(f.connection(&a).is_some());
    }

    #[test]
    fn a_peer_past_its_bad_connections_is_held_at_accept_and_others_are_not() {
        let f = Fairness::new(&Limits {
            bad_connection_rate_per_s: 10,
            bad_connection_burst: 2,
            rate_delay_ms: 1000,
            ..Limits::default()
        });
        let a = Peer::Tcp("10.0.0.1:5".parse().unwrap());
        let b = Peer::Tcp("10.0.0.2:5".parse().unwrap());
        assert_eq!(f.accept_delay(&a), Duration::ZERO);
        for _ in 0..30 {
            f.bad_connection(&a);
        }
        // Owed far more than the bound: held for the bound, not longer.
        let held = f.accept_delay(&a);
        assert!(held > Duration::from_millis(900), "{held:?}");
        assert!(held <= Duration::from_secs(1), "{held:?}");
        assert_eq!(f.accept_delay(&b), Duration::ZERO);
    }

    #[test]
    fn an_ipv6_peer_is_its_64() {
        let a = Peer::Tcp("[2001:db8:1:2:aaaa::1]:5".parse().unwrap());
        let b = Peer::Tcp("[2001:db8:1:2:bbbb::9]:7".parse().unwrap());
        let c = Peer::Tcp("[2001:db8:1:3::1]:7".parse().unwrap());
        assert_eq!(peer_key(&a), peer_key(&b));
        assert_ne!(peer_key(&a), peer_key(&c));
    }
}
