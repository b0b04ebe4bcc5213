//! Incident mode (PRD-018 §4.10): normal / degraded / incident.
//!
//! Operators move the state explicitly (`incident.declared`,
//! `incident.resolved`). The automatic triggers are derived here, in log
//! time, as events are applied, so a replay re-derives the same incident at
//! the same seq; no entry is written for them, the triggering event's seq is
//! the evidence. Triggers (any one moves normal or degraded to incident):
//! - error rate > 20% over 5 minutes, once the window holds at least 10
//!   outcomes (errors: `tool.call_failed`, `job.failed`; successes:
//!   `tool.call_completed`, `job.completed`);
//! - spend in the last hour > 2x the hourly average of the 24 hours before
//!   it, once that baseline covers at least 1 hour and is not zero;
//! - `heartbeat.stale` from more than 3 distinct workers within 5 minutes.
//!
//! A resolution clears the 5-minute windows and the last hour of spend, so
//! the next automatic incident needs fresh evidence rather than re-firing on
//! the event right after the operator's decision.
use super::policy::to_micros;
use super::status::status_enum;
use super::{Event, Projection, StoreError, Tx, View};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const NAME: &str = "incident";
const SEC_NS: u64 = 1_000_000_000;
const MIN_NS: u64 = 60 * SEC_NS;
/// Error-rate and heartbeat window, in seconds.
pub const WINDOW_S: u64 = 300;
pub const ERROR_MIN_EVENTS: u64 = 10;
/// Minutes of spend kept: the last hour plus a 24-hour baseline.
const SPEND_KEPT_MIN: u64 = 25 * 60;
const HOUR_MIN: u64 = 60;
pub const STALE_WORKERS_MAX: usize = 3;

const STATE_KEY: &[u8] = b"state";
const ERRORS_KEY: &[u8] = b"win/errors";
const SPEND_KEY: &[u8] = b"win/spend";
const STALE_KEY: &[u8] = b"win/stale";

status_enum! {
    /// The system's mode of operation.
    #[derive(Default)]
    pub enum IncidentLevel("incident level") {
        #[default]
        Normal = "normal",
        Degraded = "degraded",
        Incident = "incident",
    }
}

status_enum! {
    /// What moved the state: an operator's entry, or a derived trigger.
    pub enum Trigger("incident trigger") {
        Declared = "declared",
        Resolved = "resolved",
        ErrorRate = "error_rate",
        SpendSpike = "spend_spike",
        Heartbeat = "heartbeat",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IncidentState {
    pub state: IncidentLevel,
    pub reason: Option<String>,
    pub trigger: Option<Trigger>,
    /// Seq and log time of the entry that moved the state.
    pub since_seq: Option<u64>,
    pub since_ts_ns: Option<u64>,
    /// Who wrote that entry (for derived triggers: the event's writer).
    pub actor: Option<String>,
}

impl Default for IncidentState {
    fn default() -> Self {
        Self {
            state: IncidentLevel::Normal,
            reason: None,
            trigger: None,
            since_seq: None,
            since_ts_ns: None,
            actor: None,
        }
    }
}

impl IncidentState {
    pub fn is_incident(&self) -> bool {
        self.state == IncidentLevel::Incident
    }
}

/// Outcomes per second of log time: [errors, total].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Errors {
    secs: BTreeMap<u64, [u64; 2]>,
}

/// Spend (USD micros) per minute of log time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Spend {
    first_min: Option<u64>,
    mins: BTreeMap<u64, u64>,
}

/// Last `heartbeat.stale` time per worker.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stale {
    workers: BTreeMap<String, u64>,
}

pub struct Incident;

impl Projection for Incident {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 2: `state` and `trigger` are enums (same words).
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        let trigger = match ev.kind {
            "incident.declared" => {
                let level = ev.str("level").and_then(|l| l.parse().ok());
                // Declaring "normal" is what a resolution is for.
                let (Some(level), Some(reason)) = (
                    level.filter(|l| *l != IncidentLevel::Normal),
                    ev.str("reason"),
                ) else {
                    return Ok(());
                };
                set(tx, ev, level, Some(reason.to_string()), Trigger::Declared);
                return Ok(());
            }
            "incident.resolved" => {
                let note = ev.str("resolution_note").map(str::to_string);
                set(tx, ev, IncidentLevel::Normal, note, Trigger::Resolved);
                clear_windows(ev, tx)?;
                return Ok(());
            }
            "tool.call_failed" | "job.failed" => error_rate(ev, tx, true)?,
            "tool.call_completed" | "job.completed" => error_rate(ev, tx, false)?,
            "cost.logged" => spend_spike(ev, tx)?,
            "heartbeat.stale" => stale_workers(ev, tx)?,
            _ => None,
        };
        if let Some((trigger, reason)) = trigger {
            let cur = current_tx(tx)?;
            if !cur.is_incident() {
                set(tx, ev, IncidentLevel::Incident, Some(reason), trigger);
            }
        }
        Ok(())
    }
}

fn set(
    tx: &mut Tx<'_>,
    ev: &Event<'_>,
    state: IncidentLevel,
    reason: Option<String>,
    trigger: Trigger,
) {
    tx.put_json(
        STATE_KEY,
        IncidentState {
            state,
            reason,
            trigger: Some(trigger),
            since_seq: Some(ev.seq),
            since_ts_ns: Some(ev.log_ns),
            actor: Some(ev.actor.to_string()),
        },
    );
}

fn current_tx(tx: &Tx<'_>) -> Result<IncidentState, StoreError> {
    Ok(tx.get_json(STATE_KEY)?.unwrap_or_default())
}

/// The current state (normal when nothing was ever recorded).
pub fn current(v: &View<'_>) -> Result<IncidentState, StoreError> {
    Ok(v.get_json(STATE_KEY)?.unwrap_or_default())
}

fn clear_windows(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
    tx.del(ERRORS_KEY);
    tx.del(STALE_KEY);
    let mut s: Spend = tx.get_json(SPEND_KEY)?.unwrap_or_default();
    let now_min = ev.log_ns / MIN_NS;
    s.mins.retain(|&m, _| m + HOUR_MIN <= now_min);
    tx.put_json(SPEND_KEY, s);
    Ok(())
}

/// A derived trigger that fired, with its reason.
type Fired = Option<(Trigger, String)>;

fn error_rate(ev: &Event<'_>, tx: &mut Tx<'_>, is_error: bool) -> Result<Fired, StoreError> {
    let mut w: Errors = tx.get_json(ERRORS_KEY)?.unwrap_or_default();
    let sec = ev.log_ns / SEC_NS;
    w.secs.retain(|&s, _| s + WINDOW_S > sec);
    let b = w.secs.entry(sec).or_default();
    b[0] += u64::from(is_error);
    b[1] += 1;
    let (errors, total) = w
        .secs
        .values()
        .fold((0u64, 0u64), |(e, t), b| (e + b[0], t + b[1]));
    tx.put_json(ERRORS_KEY, w);
    // errors / total > 20%  <=>  5 * errors > total, in exact integers.
    if total >= ERROR_MIN_EVENTS && errors.saturating_mul(5) > total {
        return Ok(Some((
            Trigger::ErrorRate,
            format!(
                "error rate {errors}/{total} ({}%) over 5 min exceeds 20%",
                errors * 100 / total
            ),
        )));
    }
    Ok(None)
}

fn spend_spike(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<Fired, StoreError> {
    let usd = to_micros(ev.f64("usd").unwrap_or(0.0));
    let mut s: Spend = tx.get_json(SPEND_KEY)?.unwrap_or_default();
    let now_min = ev.log_ns / MIN_NS;
    s.first_min.get_or_insert(now_min);
    s.mins.retain(|&m, _| m + SPEND_KEPT_MIN > now_min);
    let e = s.mins.entry(now_min).or_default();
    *e = e.saturating_add(usd);
    // Last hour: minutes (now-60, now]; baseline: up to 24 h before that,
    // from the first spend seen.
    let last_hour: u64 = s
        .mins
        .range(now_min.saturating_sub(HOUR_MIN - 1)..)
        .map(|(_, v)| v)
        .sum();
    let first = s.first_min.unwrap_or(now_min);
    let base_end = now_min.saturating_sub(HOUR_MIN); // inclusive
    let base_start = first.max((now_min + 1).saturating_sub(SPEND_KEPT_MIN));
    let out =
        if now_min >= HOUR_MIN && base_end >= base_start && base_end + 1 - base_start >= HOUR_MIN {
            let base_mins = base_end + 1 - base_start;
            let base: u64 = s.mins.range(base_start..=base_end).map(|(_, v)| v).sum();
            // last_hour > 2 * (base * 60 / base_mins), kept in integers.
            let spike = base > 0
                && u128::from(last_hour) * u128::from(base_mins)
                    > 2 * u128::from(base) * u128::from(HOUR_MIN);
            spike.then(|| {
                let avg = base as f64 * HOUR_MIN as f64 / base_mins as f64 / 1e6;
                (
                    Trigger::SpendSpike,
                    format!(
                        "spend in the last hour {:.2} USD > 2x the hourly average {avg:.2} USD",
                        last_hour as f64 / 1e6
                    ),
                )
            })
        } else {
            None
        };
    tx.put_json(SPEND_KEY, s);
    Ok(out)
}

fn stale_workers(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<Fired, StoreError> {
    let Some(worker) = ev.str("worker_id") else {
        return Ok(None);
    };
    let mut s: Stale = tx.get_json(STALE_KEY)?.unwrap_or_default();
    let cutoff = ev.log_ns.saturating_sub(WINDOW_S * SEC_NS);
    s.workers.retain(|_, &mut t| t > cutoff);
    s.workers.insert(worker.to_string(), ev.log_ns);
    let trigger = (s.workers.len() > STALE_WORKERS_MAX).then(|| {
        let names: Vec<&str> = s.workers.keys().map(String::as_str).collect();
        (
            Trigger::Heartbeat,
            format!(
                "heartbeat stale from {} workers within 5 min: {}",
                names.len(),
                names.join(", ")
            ),
        )
    });
    tx.put_json(STALE_KEY, s);
    Ok(trigger)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::testkit::{apply_all, ev, tree, view, Ev};
    use super::*;
    use serde_json::json;

    const T0: u64 = 1_795_435_200_000_000_000;

    fn outcomes(pattern: &str, start_seq: u64, ts: u64) -> Vec<Ev> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let seq = start_seq + i as u64;
                let ts = ts + i as u64 * SEC_NS;
                match c {
                    'F' => ev(
                        seq,
                        ts,
                        "tool.call_failed",
                        Some("a"),
                        json!({"tool":"web","error":"503"}),
                    ),
                    'J' => ev(seq, ts, "job.failed", Some("a"), json!({"error":"boom"})),
                    'C' => ev(seq, ts, "job.completed", Some("a"), json!({})),
                    _ => ev(
                        seq,
                        ts,
                        "tool.call_completed",
                        Some("a"),
                        json!({"tool":"web"}),
                    ),
                }
            })
            .collect()
    }

    fn state_after(evs: &[Ev]) -> IncidentState {
        let t = tree();
        apply_all(&Incident, &t, evs);
        current(&view(&t)).unwrap()
    }

    fn cost(seq: u64, ts: u64, usd: f64) -> Ev {
        ev(
            seq,
            ts,
            "cost.logged",
            Some("a"),
            json!({"usd":usd,"tokens_in":0,"tokens_out":0,"model":null,"price_table":"p"}),
        )
    }

    #[test]
    fn same_events_twice_give_identical_state() {
        let mut evs = outcomes("oooFoJoCoFFoooFJ", 0, T0);
        evs.push(ev(
            16,
            T0 + 20 * SEC_NS,
            "heartbeat.stale",
            None,
            json!({"worker_id":"w1"}),
        ));
        evs.push(cost(17, T0 + 30 * SEC_NS, 0.5));
        evs.push(ev(
            18,
            T0 + 40 * SEC_NS,
            "incident.resolved",
            None,
            json!({}),
        ));
        let (a, b) = (tree(), tree());
        assert_eq!(
            apply_all(&Incident, &a, &evs),
            apply_all(&Incident, &b, &evs)
        );
    }

    #[test]
    fn error_rate_needs_more_than_20_percent_of_at_least_10() {
        assert_eq!(
            state_after(&outcomes("oooooooooooooFFF", 0, T0)).state,
            IncidentLevel::Normal,
            "3/16"
        );
        assert_eq!(
            state_after(&outcomes("ooooooooFF", 0, T0)).state,
            IncidentLevel::Normal,
            "2/10 is not > 20%"
        );
        assert_eq!(
            state_after(&outcomes("FFFooooo", 0, T0)).state,
            IncidentLevel::Normal,
            "3/8: fewer than 10"
        );
        let s = state_after(&outcomes("oooooooJFF", 0, T0));
        assert_eq!(
            (s.state, s.trigger, s.since_seq),
            (IncidentLevel::Incident, Some(Trigger::ErrorRate), Some(9))
        );
        assert_eq!(
            state_after(&outcomes("oooooooooCFF", 0, T0)).state,
            IncidentLevel::Normal,
            "2/12"
        );
    }

    #[test]
    fn error_window_forgets_after_5_minutes() {
        let mut evs = outcomes("FFF", 0, T0);
        evs.extend(outcomes("ooooooooo", 3, T0 + WINDOW_S * SEC_NS));
        assert_eq!(
            state_after(&evs).state,
            IncidentLevel::Normal,
            "old failures left the window"
        );
    }

    #[test]
    fn spend_spike_against_hourly_baseline() {
        let min = MIN_NS;
        // 0.10 USD every 10 min for 3 hours: 0.60 USD/h.
        let mut evs: Vec<Ev> = (0..18).map(|i| cost(i, T0 + i * 10 * min, 0.10)).collect();
        let t_end = T0 + 180 * min;
        assert_eq!(
            state_after(&evs).state,
            IncidentLevel::Normal,
            "steady spend"
        );
        // Last hour: 0.5 + 0.10*... ; a burst of 1.50 USD makes it > 1.20.
        evs.push(cost(18, t_end, 1.50));
        let s = state_after(&evs);
        assert_eq!(
            (s.state, s.trigger),
            (IncidentLevel::Incident, Some(Trigger::SpendSpike)),
            "{s:?}"
        );
        // The same burst with under 1 hour of baseline does not trigger.
        let short = vec![cost(0, T0, 0.10), cost(1, T0 + 90 * min, 5.0)];
        assert_eq!(state_after(&short).state, IncidentLevel::Normal);
        let enough = vec![cost(0, T0, 0.10), cost(1, T0 + 120 * min, 5.0)];
        assert_eq!(state_after(&enough).state, IncidentLevel::Incident);
    }

    #[test]
    fn more_than_3_stale_workers_within_5_minutes() {
        let hb = |seq: u64, w: &str, ts: u64| {
            ev(seq, ts, "heartbeat.stale", None, json!({"worker_id": w}))
        };
        let three = vec![
            hb(0, "w1", T0),
            hb(1, "w2", T0),
            hb(2, "w3", T0),
            hb(3, "w3", T0 + SEC_NS),
        ];
        assert_eq!(state_after(&three).state, IncidentLevel::Normal);
        let mut four = three;
        four.push(hb(4, "w4", T0 + 2 * SEC_NS));
        assert_eq!(state_after(&four).trigger, Some(Trigger::Heartbeat));
        let spread = vec![
            hb(0, "w1", T0),
            hb(1, "w2", T0),
            hb(2, "w3", T0),
            hb(3, "w4", T0 + WINDOW_S * SEC_NS),
        ];
        assert_eq!(
            state_after(&spread).state,
            IncidentLevel::Normal,
            "w1..w3 are older than 5 min"
        );
    }

    #[test]
    fn declared_resolved_and_rearm() {
        let mut evs = vec![ev(
            0,
            T0,
            "incident.declared",
            None,
            json!({"level":"degraded","reason":"slow"}),
        )];
        assert_eq!(state_after(&evs).state, IncidentLevel::Degraded);
        evs.extend(outcomes("oooooooFFF", 1, T0));
        assert_eq!(
            state_after(&evs).state,
            IncidentLevel::Incident,
            "auto trigger escalates degraded"
        );
        evs.push(ev(
            11,
            T0 + 20 * SEC_NS,
            "incident.resolved",
            None,
            json!({"resolution_note":"fixed"}),
        ));
        evs.extend(outcomes("o", 12, T0 + 21 * SEC_NS));
        let s = state_after(&evs);
        assert_eq!(
            (s.state, s.since_seq),
            (IncidentLevel::Normal, Some(11)),
            "no re-fire on old evidence"
        );
        evs.push(ev(
            13,
            T0 + 30 * SEC_NS,
            "incident.declared",
            None,
            json!({"level":"bogus","reason":"x"}),
        ));
        assert_eq!(
            state_after(&evs).state,
            IncidentLevel::Normal,
            "bad level ignored"
        );
    }
}
