//! Tool-level circuit breakers (PRD-018 §4.12), derived from tool call
//! outcomes in log time.
//!
//! closed → open after `failure_threshold` `tool.call_failed` within
//! `window_seconds`; open → half-open once any entry arrives at or after
//! `opened_at + recovery_probe_seconds`; half-open → closed on the next
//! `tool.call_completed`, → open on the next `tool.call_failed`.
//!
//! Why half-open can never stall: it admits exactly one probe, marked by the
//! `tool.call_started` that begins it, and a probe whose outcome never
//! arrives stops blocking after another `recovery_probe_seconds`, so a lost
//! probe makes room for the next one instead of closing the tool for good.
//!
//! The open → half-open move does not wait for an entry about that tool: an
//! index of open breakers (one key, usually absent) is checked on every
//! entry, so the stored state follows log time the way a live breaker
//! follows the clock.
use super::status::status_enum;
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const NAME: &str = "breakers";

status_enum! {
    /// Whether calls to a tool may start.
    pub enum BreakerState("breaker state") {
        Closed = "closed",
        Open = "open",
        HalfOpen = "half-open",
    }
}

use BreakerState::{Closed, HalfOpen, Open};

const NS_PER_S: u64 = 1_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    pub failure_threshold: u64,
    pub window_seconds: u64,
    pub recovery_probe_seconds: u64,
    pub fallback: Option<String>,
    /// The `breaker.configured` entry, or `None` for the defaults.
    pub configured_seq: Option<u64>,
}

impl Default for Config {
    /// Seed 003 §4.12's example config, used for tools never configured.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window_seconds: 60,
            recovery_probe_seconds: 30,
            fallback: None,
            configured_seq: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Breaker {
    pub tool: String,
    pub state: BreakerState,
    /// Commit times of the last `failure_threshold` failures while closed,
    /// oldest first: all the open decision needs, and small to rewrite.
    pub failures_ts_ns: Vec<u64>,
    pub failures_total: u64,
    pub opened_at_ns: Option<u64>,
    pub opened_seq: Option<u64>,
    pub half_open_at_ns: Option<u64>,
    /// The entry whose arrival moved the breaker to half-open.
    pub half_open_seq: Option<u64>,
    pub probe_in_flight: bool,
    pub probe_started_ns: Option<u64>,
    pub probe_seq: Option<u64>,
    pub probe_call_id: Option<String>,
    pub closed_seq: Option<u64>,
    /// Times the breaker opened (including reopening after a failed probe).
    pub trips: u64,
    /// Calls started while open or while a probe was in flight: the
    /// executor did not honour the breaker.
    pub calls_not_allowed: u64,
    pub last_change_seq: Option<u64>,
}

impl Breaker {
    fn new(tool: &str) -> Self {
        Self {
            tool: tool.to_string(),
            state: Closed,
            failures_ts_ns: Vec::new(),
            failures_total: 0,
            opened_at_ns: None,
            opened_seq: None,
            half_open_at_ns: None,
            half_open_seq: None,
            probe_in_flight: false,
            probe_started_ns: None,
            probe_seq: None,
            probe_call_id: None,
            closed_seq: None,
            trips: 0,
            calls_not_allowed: 0,
            last_change_seq: None,
        }
    }

    /// Failures within the window ending at `now_ns`.
    pub fn failures_in_window(&self, cfg: &Config, now_ns: u64) -> usize {
        let window = cfg.window_seconds.saturating_mul(NS_PER_S);
        self.failures_ts_ns
            .iter()
            .filter(|&&t| t <= now_ns && now_ns - t < window)
            .count()
    }

    pub fn next_probe_ns(&self, cfg: &Config) -> Option<u64> {
        let probe = cfg.recovery_probe_seconds.saturating_mul(NS_PER_S);
        match self.state {
            Open => self.opened_at_ns.map(|o| o.saturating_add(probe)),
            HalfOpen if self.probe_in_flight => {
                self.probe_started_ns.map(|p| p.saturating_add(probe))
            }
            HalfOpen => self.half_open_at_ns,
            Closed => None,
        }
    }

    /// The state as of log time `now_ns`, which may be later than the last
    /// entry applied (a view asks "now"); same rule as `apply`.
    pub fn at(&self, cfg: &Config, now_ns: u64) -> Breaker {
        let mut b = self.clone();
        if let Some(due) = b
            .next_probe_ns(cfg)
            .filter(|&p| b.state == Open && now_ns >= p)
        {
            b.state = HalfOpen;
            b.half_open_at_ns = Some(due);
        }
        b
    }

    /// Whether a call may start now: always when closed, never when open,
    /// and in half-open only as the single probe.
    pub fn allows(&self, cfg: &Config, now_ns: u64) -> bool {
        let b = self.at(cfg, now_ns);
        match b.state {
            Closed => true,
            HalfOpen => !b.probe_in_flight || b.next_probe_ns(cfg).is_some_and(|p| now_ns >= p),
            Open => false,
        }
    }

    fn open(&mut self, ev: &Event<'_>) {
        self.state = Open;
        self.opened_at_ns = Some(ev.log_ns);
        self.opened_seq = Some(ev.seq);
        self.probe_in_flight = false;
        self.trips += 1;
        self.last_change_seq = Some(ev.seq);
    }
}

pub fn breaker_key(tool: &str) -> Vec<u8> {
    format!("brk/{tool}").into_bytes()
}
pub const BREAKER_PREFIX: &[u8] = b"brk/";

pub fn config_key(tool: &str) -> Vec<u8> {
    format!("cfg/{tool}").into_bytes()
}

/// tool → the log time at which its open breaker may probe.
const OPEN_INDEX_KEY: &[u8] = b"idx/open";

pub struct Breakers;

impl Breakers {
    fn index(tx: &Tx<'_>) -> Result<BTreeMap<String, u64>, StoreError> {
        Ok(tx.get_json(OPEN_INDEX_KEY)?.unwrap_or_default())
    }

    fn put_index(tx: &mut Tx<'_>, idx: &BTreeMap<String, u64>) {
        if idx.is_empty() {
            tx.del(OPEN_INDEX_KEY);
        } else {
            tx.put_json(OPEN_INDEX_KEY, idx.clone());
        }
    }

    /// Moves every open breaker whose probe time has come to half-open.
    fn promote_due(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if tx.get(OPEN_INDEX_KEY)?.is_none() {
            return Ok(());
        }
        let mut idx = Self::index(tx)?;
        let due: Vec<String> = idx
            .iter()
            .filter(|(_, &at)| ev.log_ns >= at)
            .map(|(t, _)| t.clone())
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        for tool in due {
            idx.remove(&tool);
            let key = breaker_key(&tool);
            if let Some(mut b) = tx.get_json::<Breaker>(&key)? {
                if b.state == Open {
                    b.state = HalfOpen;
                    b.half_open_at_ns = Some(ev.log_ns);
                    b.half_open_seq = Some(ev.seq);
                    b.probe_in_flight = false;
                    b.last_change_seq = Some(ev.seq);
                    tx.put_json(&key, b);
                }
            }
        }
        Self::put_index(tx, &idx);
        Ok(())
    }

    fn set_open(
        ev: &Event<'_>,
        tx: &mut Tx<'_>,
        b: &mut Breaker,
        cfg: &Config,
    ) -> Result<(), StoreError> {
        b.open(ev);
        let mut idx = Self::index(tx)?;
        idx.insert(
            b.tool.clone(),
            ev.log_ns
                .saturating_add(cfg.recovery_probe_seconds.saturating_mul(NS_PER_S)),
        );
        Self::put_index(tx, &idx);
        Ok(())
    }
}

impl Projection for Breakers {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 2: `state` is a `BreakerState` (same words).
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        Self::promote_due(ev, tx)?;
        if !matches!(
            ev.kind,
            "breaker.configured" | "tool.call_started" | "tool.call_completed" | "tool.call_failed"
        ) {
            return Ok(());
        }
        let Some(tool) = ev.str("tool") else {
            return Ok(());
        };
        let key = breaker_key(tool);
        let existing = tx.get_json::<Breaker>(&key)?;
        let is_new = existing.is_none();
        let mut b = existing.unwrap_or_else(|| Breaker::new(tool));
        let before = b.clone();

        if ev.kind == "breaker.configured" {
            let (Some(th), Some(w), Some(p)) = (
                ev.u64("failure_threshold"),
                ev.u64("window_seconds"),
                ev.u64("recovery_probe_seconds"),
            ) else {
                return Ok(());
            };
            let cfg = Config {
                failure_threshold: th.max(1),
                window_seconds: w.max(1),
                recovery_probe_seconds: p.max(1),
                fallback: ev.str("fallback").map(str::to_string),
                configured_seq: Some(ev.seq),
            };
            tx.put_json(&config_key(tool), cfg);
            if let (Open, Some(o)) = (b.state, b.opened_at_ns) {
                let mut idx = Self::index(tx)?;
                idx.insert(
                    tool.to_string(),
                    o.saturating_add(p.saturating_mul(NS_PER_S)),
                );
                Self::put_index(tx, &idx);
            }
            if is_new {
                tx.put_json(&key, b);
            }
            return Ok(());
        }

        let cfg: Config = tx.get_json(&config_key(tool))?.unwrap_or_default();
        // An outcome that names a different call than the probe is a
        // straggler from before the breaker opened, not the probe's answer.
        let call_id = ev.str("call_id");
        let straggler = b.probe_in_flight
            && matches!((call_id, b.probe_call_id.as_deref()), (Some(c), Some(p)) if c != p);
        match (ev.kind, b.state) {
            ("tool.call_started", HalfOpen) => {
                if b.allows(&cfg, ev.log_ns) {
                    b.probe_in_flight = true;
                    b.probe_started_ns = Some(ev.log_ns);
                    b.probe_seq = Some(ev.seq);
                    b.probe_call_id = call_id.map(str::to_string);
                } else {
                    b.calls_not_allowed += 1;
                }
            }
            ("tool.call_started", Open) => b.calls_not_allowed += 1,
            ("tool.call_completed", HalfOpen) if !straggler => {
                b.state = Closed;
                b.failures_ts_ns.clear();
                b.probe_in_flight = false;
                b.closed_seq = Some(ev.seq);
                b.last_change_seq = Some(ev.seq);
            }
            ("tool.call_failed", state) => {
                b.failures_total += 1;
                let tripped = match state {
                    HalfOpen => !straggler,
                    Closed => {
                        let window = cfg.window_seconds.saturating_mul(NS_PER_S);
                        b.failures_ts_ns
                            .retain(|&t| t <= ev.log_ns && ev.log_ns - t < window);
                        b.failures_ts_ns.push(ev.log_ns);
                        let keep = usize::try_from(cfg.failure_threshold).unwrap_or(usize::MAX);
                        let excess = b.failures_ts_ns.len().saturating_sub(keep);
                        b.failures_ts_ns.drain(..excess);
                        b.failures_ts_ns.len() as u64 >= cfg.failure_threshold
                    }
                    Open => false,
                };
                if tripped {
                    Self::set_open(ev, tx, &mut b, &cfg)?;
                }
            }
            _ => {}
        }
        if is_new || b != before {
            tx.put_json(&key, b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::default()
    }

    #[test]
    fn view_time_promotion_and_probe_expiry() {
        let s = NS_PER_S;
        let mut b = Breaker::new("t");
        b.state = Open;
        b.opened_at_ns = Some(100 * s);
        assert!(!b.allows(&cfg(), 129 * s));
        assert_eq!(b.at(&cfg(), 130 * s).state, HalfOpen);
        assert_eq!(b.at(&cfg(), 135 * s).half_open_at_ns, Some(130 * s));
        assert!(b.allows(&cfg(), 130 * s));
        // One probe in flight blocks others until it is overdue.
        b.state = HalfOpen;
        b.probe_in_flight = true;
        b.probe_started_ns = Some(131 * s);
        assert!(!b.allows(&cfg(), 140 * s));
        assert!(b.allows(&cfg(), 161 * s));
    }

    #[test]
    fn window_is_half_open_interval() {
        let s = NS_PER_S;
        let mut b = Breaker::new("t");
        b.failures_ts_ns = vec![0, 30 * s, 59 * s];
        assert_eq!(b.failures_in_window(&cfg(), 59 * s), 3);
        assert_eq!(b.failures_in_window(&cfg(), 60 * s), 2);
    }
}
