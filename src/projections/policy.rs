//! Policy service state (PRD-018 §4.2, ADR-018 S4): the policies in force
//! and the budget ledger they are checked against.
//!
//! Policies are entries (`policy.set` / `policy.removed`), so who set which
//! limit when is part of the audit trail. The ledger is folded from
//! `cost.logged` per agent per UTC day of log time and per run (job), in
//! integer micro-units so that "spent + cost > limit" never flips on a
//! floating-point rounding. Rate limits need recent call times per agent and
//! tool, pruned to the last 60 s of log time. The decision itself is a pure
//! function in [`check`], so the same log always gives the same answer.
use super::{Event, Projection, StoreError, Tx, View};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub mod check;

pub const NAME: &str = "policy";
pub const DAY_NS: u64 = 86_400_000_000_000;
pub const RATE_WINDOW_NS: u64 = 60_000_000_000;
/// Call times kept per agent and tool: rate limits up to this many calls per
/// minute are exact; a flood beyond it cannot grow one record without bound.
const MICROS: f64 = 1_000_000.0;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    pub policy_id: String,
    pub scope: String,
    pub policy_type: String,
    pub config: Value,
    pub enabled: bool,
    pub set_seq: u64,
    pub set_ts_ns: u64,
    pub set_by: String,
}

impl Policy {
    /// Whether this policy governs a call by `agent` to `tool`.
    pub fn applies_to(&self, agent: &str, tool: &str) -> bool {
        self.enabled
            && (self.scope == "global"
                || self.scope.strip_prefix("agent:") == Some(agent)
                || self.scope.strip_prefix("tool:") == Some(tool))
    }

    /// The tool a `tool:<name>` scope names, if any.
    pub fn scoped_tool(&self) -> Option<&str> {
        self.scope.strip_prefix("tool:")
    }

    /// A config number as micro-units, when present and a non-negative number.
    pub fn config_micros(&self, field: &str) -> Option<u64> {
        self.config
            .get(field)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(to_micros)
    }
}

/// Money (USD) and CPU seconds in millionths, so sums are exact.
pub fn to_micros(v: f64) -> u64 {
    // `as` saturates and maps NaN to 0: bad data cannot panic here.
    (v * MICROS).round().max(0.0) as u64
}

pub fn from_micros(v: u64) -> f64 {
    v as f64 / MICROS
}

/// Spend folded from `cost.logged`; `by_tool` keeps tool-scoped budgets exact.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Spend {
    pub usd_micros: u64,
    pub cpu_micros: u64,
    pub entries: u64,
    pub usd_micros_by_tool: BTreeMap<String, u64>,
}

impl Spend {
    fn add(&mut self, usd: u64, cpu: u64, tool: Option<&str>) {
        self.usd_micros = self.usd_micros.saturating_add(usd);
        self.cpu_micros = self.cpu_micros.saturating_add(cpu);
        self.entries += 1;
        if let Some(t) = tool {
            let e = self.usd_micros_by_tool.entry(t.to_string()).or_default();
            *e = e.saturating_add(usd);
        }
    }

    /// USD micros counted against a policy: a `tool:<name>` policy counts only
    /// spend on that tool, every other scope counts all spend.
    pub fn usd_for(&self, tool: Option<&str>) -> u64 {
        match tool {
            Some(t) => self.usd_micros_by_tool.get(t).copied().unwrap_or(0),
            None => self.usd_micros,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DaySpend {
    pub agent: String,
    /// Days since 1970-01-01 (UTC) of the entries' log time.
    pub day: u64,
    pub spend: Spend,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunSpend {
    pub job_id: String,
    pub spend: Spend,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Calls {
    pub agent: String,
    pub tool: String,
    /// `tool.call_started` counts per whole second of log time, for the
    /// seconds inside the last 60 s. Buckets, not timestamps, so the record
    /// stays at most 61 entries however fast an agent calls (a list of
    /// timestamps made rebuilds quadratic under load); rate limits are
    /// therefore exact to the second, which is `retry_after`'s unit anyway.
    pub per_sec: std::collections::BTreeMap<u64, u32>,
}

impl Calls {
    /// The calls as timestamps (each at the start of its second), ascending.
    pub fn timestamps(&self) -> Vec<u64> {
        self.per_sec
            .iter()
            .flat_map(|(s, n)| std::iter::repeat_n(s * NS_PER_S, *n as usize))
            .collect()
    }
}

const NS_PER_S: u64 = 1_000_000_000;

pub fn policy_key(id: &str) -> Vec<u8> {
    format!("pol/{id}").into_bytes()
}

/// The day leads so one prefix scan lists every agent of a day.
pub fn day_key(day: u64, agent: &str) -> Vec<u8> {
    format!("day/{day:08}/{agent}").into_bytes()
}

pub fn day_prefix(day: u64) -> Vec<u8> {
    format!("day/{day:08}/").into_bytes()
}

pub fn run_key(job_id: &str) -> Vec<u8> {
    format!("run/{job_id}").into_bytes()
}

/// Length-prefixed agent so that agent "a/b" + tool "c" and agent "a" +
/// tool "b/c" never share a key.
pub fn calls_key(agent: &str, tool: &str) -> Vec<u8> {
    format!("calls/{}/{agent}/{tool}", agent.len()).into_bytes()
}

pub struct Policies;

impl Projection for Policies {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        match ev.kind {
            "policy.set" => set_policy(ev, tx),
            "policy.removed" => {
                if let Some(id) = ev.str("policy_id") {
                    tx.del(&policy_key(id));
                }
            }
            "cost.logged" => log_cost(ev, tx)?,
            "tool.call_started" => log_call(ev, tx)?,
            _ => {}
        }
        Ok(())
    }
}

fn set_policy(ev: &Event<'_>, tx: &mut Tx<'_>) {
    let (Some(id), Some(scope), Some(policy_type)) =
        (ev.str("policy_id"), ev.str("scope"), ev.str("policy_type"))
    else {
        return;
    };
    let Some(config) = ev.payload.get("config").filter(|c| c.is_object()) else {
        return;
    };
    let enabled = ev
        .payload
        .get("enabled")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    tx.put_json(
        &policy_key(id),
        Policy {
            policy_id: id.to_string(),
            scope: scope.to_string(),
            policy_type: policy_type.to_string(),
            config: config.clone(),
            enabled,
            set_seq: ev.seq,
            set_ts_ns: ev.log_ns,
            set_by: ev.actor.to_string(),
        },
    );
}

fn log_cost(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let usd = to_micros(ev.f64("usd").unwrap_or(0.0));
    let cpu = to_micros(ev.f64("cpu_seconds").unwrap_or(0.0));
    let tool = ev.str("tool");
    if let Some(agent) = ev.agent {
        let day = ev.log_ns / DAY_NS;
        let key = day_key(day, agent);
        let init = || DaySpend {
            agent: agent.to_string(),
            day,
            spend: Spend::default(),
        };
        tx.update_json(&key, init, |d: &mut DaySpend| d.spend.add(usd, cpu, tool))?;
    }
    if let Some(job) = ev.job_id {
        let key = run_key(job);
        let init = || RunSpend {
            job_id: job.to_string(),
            spend: Spend::default(),
        };
        tx.update_json(&key, init, |r: &mut RunSpend| r.spend.add(usd, cpu, tool))?;
    }
    Ok(())
}

fn log_call(ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let (Some(agent), Some(tool)) = (ev.agent, ev.str("tool")) else {
        return Ok(());
    };
    let key = calls_key(agent, tool);
    let init = || Calls {
        agent: agent.to_string(),
        tool: tool.to_string(),
        per_sec: Default::default(),
    };
    let sec = ev.log_ns / NS_PER_S;
    let window_s = RATE_WINDOW_NS / NS_PER_S;
    tx.update_json(&key, init, |c: &mut Calls| {
        // Buckets are in second order: drop the expired ones from the front.
        while let Some(entry) = c.per_sec.first_entry() {
            if *entry.key() + window_s > sec {
                break;
            }
            entry.remove();
        }
        let n = c.per_sec.entry(sec).or_insert(0);
        *n = n.saturating_add(1);
    })
}

/// Every stored policy, in policy_id order.
pub fn policies(v: &View<'_>) -> Result<Vec<Policy>, StoreError> {
    Ok(v.scan_json::<Policy>(b"pol/")?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

pub fn day_spend(v: &View<'_>, day: u64, agent: &str) -> Result<Spend, StoreError> {
    Ok(v.get_json::<DaySpend>(&day_key(day, agent))?
        .map(|d| d.spend)
        .unwrap_or_default())
}

pub fn run_spend(v: &View<'_>, job: &str) -> Result<Spend, StoreError> {
    Ok(v.get_json::<RunSpend>(&run_key(job))?
        .map(|r| r.spend)
        .unwrap_or_default())
}

pub fn calls(v: &View<'_>, agent: &str, tool: &str) -> Result<Vec<u64>, StoreError> {
    Ok(v.get_json::<Calls>(&calls_key(agent, tool))?
        .map(|c| c.timestamps())
        .unwrap_or_default())
}

pub fn days(v: &View<'_>, day: u64) -> Result<Vec<DaySpend>, StoreError> {
    Ok(v.scan_json::<DaySpend>(&day_prefix(day))?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::testkit::{apply_all, dump, ev, tree, view, Ev};
    use super::*;
    use serde_json::json;

    const T0: u64 = 1_795_435_200_000_000_000; // 2026-11-23T12:00:00Z

    fn sample() -> Vec<Ev> {
        let mut evs = vec![ev(
            0,
            T0,
            "policy.set",
            None,
            json!({"policy_id":"b1","scope":"agent:r","policy_type":"budget","config":{"daily_usd":5.0,"per_run_usd":0.5}}),
        )];
        for i in 1..40u64 {
            let mut e = ev(
                i,
                T0 + i * 7_000_000_000,
                if i % 2 == 0 {
                    "cost.logged"
                } else {
                    "tool.call_started"
                },
                Some(["r", "w"][(i % 3 == 0) as usize]),
                json!({"tool":"web","usd":0.013,"cpu_seconds":0.25,"tokens_in":1,"tokens_out":1,"model":null,"price_table":"p"}),
            );
            e.job_id = Some(format!("j{}", i % 4));
            evs.push(e);
        }
        evs.push(ev(
            40,
            T0 + DAY_NS,
            "policy.removed",
            None,
            json!({"policy_id":"b1"}),
        ));
        evs
    }

    #[test]
    fn same_events_twice_give_identical_state() {
        let (a, b) = (tree(), tree());
        let da = apply_all(&Policies, &a, &sample());
        let db = apply_all(&Policies, &b, &sample());
        assert_eq!(hex::encode(da), hex::encode(db));
        assert_eq!(dump(&a), dump(&b));
    }

    #[test]
    fn ledger_splits_by_utc_day_of_log_time_and_run() {
        let t = tree();
        let day = T0 / DAY_NS;
        let midnight = (day + 1) * DAY_NS;
        let cost = |seq, ts, job: &str, usd: f64| {
            let mut e = ev(
                seq,
                ts,
                "cost.logged",
                Some("r"),
                json!({"usd":usd,"tool":"web","cpu_seconds":1.5,"tokens_in":1,"tokens_out":1,"model":null,"price_table":"p"}),
            );
            e.job_id = Some(job.into());
            e
        };
        apply_all(
            &Policies,
            &t,
            &[
                cost(0, midnight - 1, "j1", 0.1),
                cost(1, midnight - 1, "j1", 0.2),
                cost(2, midnight, "j2", 0.3),
            ],
        );
        let v = view(&t);
        let d0 = day_spend(&v, day, "r").unwrap();
        assert_eq!(d0.usd_micros, 300_000, "0.1 + 0.2 is exactly 0.3 in micros");
        assert_eq!(d0.cpu_micros, 3_000_000);
        assert_eq!(d0.usd_for(Some("web")), 300_000);
        assert_eq!(d0.usd_for(Some("bash")), 0);
        assert_eq!(day_spend(&v, day + 1, "r").unwrap().usd_micros, 300_000);
        assert_eq!(run_spend(&v, "j1").unwrap().usd_micros, 300_000);
        assert_eq!(run_spend(&v, "j2").unwrap().usd_micros, 300_000);
    }

    #[test]
    fn call_times_are_pruned_to_the_last_60_s_of_log_time() {
        let t = tree();
        let call = |seq, ts| {
            ev(
                seq,
                ts,
                "tool.call_started",
                Some("r"),
                json!({"tool":"web"}),
            )
        };
        apply_all(
            &Policies,
            &t,
            &[
                call(0, T0),
                call(1, T0 + 30_000_000_000),
                call(2, T0 + RATE_WINDOW_NS),
            ],
        );
        assert_eq!(
            calls(&view(&t), "r", "web").unwrap(),
            vec![T0 + 30_000_000_000, T0 + RATE_WINDOW_NS],
            "a call exactly 60 s old has left the window"
        );
    }

    #[test]
    fn removed_and_disabled_policies() {
        let t = tree();
        apply_all(
            &Policies,
            &t,
            &[
                ev(
                    0,
                    T0,
                    "policy.set",
                    None,
                    json!({"policy_id":"a","scope":"global","policy_type":"budget","config":{"daily_usd":1}}),
                ),
                ev(
                    1,
                    T0,
                    "policy.set",
                    None,
                    json!({"policy_id":"b","scope":"agent:r","policy_type":"budget","config":{"daily_usd":1},"enabled":false}),
                ),
                ev(
                    2,
                    T0,
                    "policy.set",
                    None,
                    json!({"policy_id":"c","scope":"tool:web","policy_type":"budget","config":{"daily_usd":1}}),
                ),
                ev(3, T0, "policy.removed", None, json!({"policy_id":"a"})),
            ],
        );
        let ps = policies(&view(&t)).unwrap();
        assert_eq!(
            ps.iter().map(|p| p.policy_id.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert!(!ps[0].applies_to("r", "web"), "disabled");
        assert!(ps[1].applies_to("r", "web"));
        assert!(!ps[1].applies_to("r", "bash"));
    }
}
