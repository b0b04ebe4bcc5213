//! The kill switches (ADR-018 S5): a standing hard kill, a standing
//! lockdown, and soft kills scoped to one job or one agent.
//!
//! A decision stands from its seq until an operator's release entry names
//! it (`kill.released` with its seq, or `lockdown.released`). A second hard
//! kill while one stands changes nothing but the count: the first decision
//! is the one an operator releases, and the one agents are told about.
//!
//! The fold is a plain value (`ControlState::apply`) so that argusd's live
//! gate and this projection cannot disagree: the daemon folds the same
//! events in memory to refuse appends without waiting for a catch-up.
use super::{Event, Projection, StoreError, Tx, View};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "control";
const STATE_KEY: &[u8] = b"state";
const ANOMALY_PREFIX: &[u8] = b"anomaly/";
/// Every kill-switch decision by seq, so a job's replay can show the
/// decisions that touched it without scanning the log.
const DECISION_PREFIX: &[u8] = b"decision/";

/// One standing decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stand {
    pub seq: u64,
    pub kind: String,
    pub reason: String,
    pub actor: String,
    /// The writer's wall clock, for display.
    pub ts_ns: u64,
    pub priority: Option<String>,
    pub trigger_seq: Option<u64>,
    pub evidence_seqs: Vec<u64>,
    /// Further decisions of the same kind while this one stood.
    pub repeats: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Job,
    Agent,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Job => "job",
            Self::Agent => "agent",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SoftKill {
    pub stand: Stand,
    pub scope: Scope,
    pub target: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ControlState {
    pub hard_kill: Option<Stand>,
    pub lockdown: Option<Stand>,
    pub soft_kills: Vec<SoftKill>,
    /// The last release, for `status`.
    pub last_release: Option<Stand>,
}

/// Why an append is refused while a decision stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    /// `hard_kill`, `lockdown` or `soft_kill`.
    pub what: &'static str,
    pub seq: u64,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.what {
            "hard_kill" => "a hard kill",
            "lockdown" => "a write lockdown",
            _ => "a soft kill",
        };
        write!(f, "{what} stands (seq {}): {}", self.seq, self.reason)
    }
}

impl ControlState {
    /// Whether an agent's entry for `agent` / `job` is refused, and why.
    /// The hard kill is named first: it is what an operator must release.
    pub fn refusal(&self, agent: Option<&str>, job: Option<&str>) -> Option<Refusal> {
        let stand = |what, s: &Stand| Refusal {
            what,
            seq: s.seq,
            reason: s.reason.clone(),
        };
        if let Some(s) = &self.hard_kill {
            return Some(stand("hard_kill", s));
        }
        if let Some(s) = &self.lockdown {
            return Some(stand("lockdown", s));
        }
        self.soft_kills
            .iter()
            .find(|k| match k.scope {
                Scope::Job => job == Some(k.target.as_str()),
                Scope::Agent => agent == Some(k.target.as_str()),
            })
            .map(|k| stand("soft_kill", &k.stand))
    }

    pub fn is_clear(&self) -> bool {
        self.hard_kill.is_none() && self.lockdown.is_none() && self.soft_kills.is_empty()
    }

    /// Folds one admitted event (its writer class may write its kind).
    /// Returns whether the state changed.
    pub fn apply(&mut self, ev: &Event<'_>) -> bool {
        match ev.kind {
            "kill.hard" => {
                let s = stand(ev);
                match &mut self.hard_kill {
                    Some(cur) => cur.repeats += 1,
                    None => self.hard_kill = Some(s),
                }
                true
            }
            "lockdown.set" => {
                let s = stand(ev);
                match &mut self.lockdown {
                    Some(cur) => cur.repeats += 1,
                    None => self.lockdown = Some(s),
                }
                true
            }
            "kill.soft" => {
                let scope = match ev.str("scope") {
                    Some("job") => Scope::Job,
                    Some("agent") => Scope::Agent,
                    _ => return false,
                };
                let Some(target) = ev.str("target") else {
                    return false;
                };
                let dup = self
                    .soft_kills
                    .iter_mut()
                    .find(|k| k.scope == scope && k.target == target);
                match dup {
                    Some(k) => k.stand.repeats += 1,
                    None => self.soft_kills.push(SoftKill {
                        stand: stand(ev),
                        scope,
                        target: target.to_string(),
                    }),
                }
                true
            }
            "kill.released" => {
                let Some(seq) = ev.u64("released_seq") else {
                    return false;
                };
                let before = (self.hard_kill.clone(), self.soft_kills.len());
                if self.hard_kill.as_ref().is_some_and(|s| s.seq == seq) {
                    self.hard_kill = None;
                }
                self.soft_kills.retain(|k| k.stand.seq != seq);
                let changed = before != (self.hard_kill.clone(), self.soft_kills.len());
                if changed {
                    self.last_release = Some(stand(ev));
                }
                changed
            }
            "lockdown.released" => {
                let named = ev.u64("released_seq");
                let matches = self
                    .lockdown
                    .as_ref()
                    .is_some_and(|s| named.is_none_or(|n| n == s.seq));
                if matches {
                    self.lockdown = None;
                    self.last_release = Some(stand(ev));
                }
                matches
            }
            _ => false,
        }
    }
}

fn stand(ev: &Event<'_>) -> Stand {
    Stand {
        seq: ev.seq,
        kind: ev.kind.to_string(),
        reason: ev.str("reason").unwrap_or("(no reason given)").to_string(),
        actor: ev.actor.to_string(),
        ts_ns: ev.wall_ns,
        priority: ev.str("priority").map(str::to_string),
        trigger_seq: ev.u64("trigger_seq"),
        evidence_seqs: ev
            .payload
            .get("evidence_seqs")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
            .unwrap_or_default(),
        repeats: 0,
    }
}

pub struct Control;

impl Projection for Control {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        // 2: every decision is kept by seq (`decisions_between`).
        2
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if ev.kind == "anomaly.detected" {
            let key = [ANOMALY_PREFIX, format!("{:020}", ev.seq).as_bytes()].concat();
            tx.put_json(&key, Anomaly::of(ev));
            return Ok(());
        }
        if !matches!(
            ev.kind,
            "kill.hard" | "kill.soft" | "kill.released" | "lockdown.set" | "lockdown.released"
        ) {
            return Ok(());
        }
        let mut st: ControlState = tx.get_json(STATE_KEY)?.unwrap_or_default();
        if st.apply(ev) {
            tx.put_json(STATE_KEY, st);
        }
        let key = [DECISION_PREFIX, format!("{:020}", ev.seq).as_bytes()].concat();
        tx.put_json(&key, stand(ev));
        Ok(())
    }
}

/// One `anomaly.detected` entry, as the views list it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Anomaly {
    pub seq: u64,
    pub ts_ns: u64,
    pub actor: String,
    pub job_id: Option<String>,
    pub agent: Option<String>,
    /// The payload as written (detector, severity, series, scores...).
    pub payload: serde_json::Value,
}

impl Anomaly {
    fn of(ev: &Event<'_>) -> Self {
        Self {
            seq: ev.seq,
            ts_ns: ev.wall_ns,
            actor: ev.actor.to_string(),
            job_id: ev.job_id.map(str::to_string),
            agent: ev.agent.map(str::to_string),
            payload: ev.payload.clone(),
        }
    }
}

/// Every anomaly on record, oldest first.
pub fn anomalies(v: &View<'_>) -> Result<Vec<Anomaly>, StoreError> {
    Ok(v.scan_json(ANOMALY_PREFIX)?
        .into_iter()
        .map(|(_, a)| a)
        .collect())
}

/// Kill-switch decisions and releases with `from <= seq <= to`, in seq order.
pub fn decisions_between(v: &View<'_>, from: u64, to: u64) -> Result<Vec<Stand>, StoreError> {
    Ok(v.scan_json::<Stand>(DECISION_PREFIX)?
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| (from..=to).contains(&s.seq))
        .collect())
}

/// The standing decisions (none when nothing was ever recorded).
pub fn current(v: &View<'_>) -> Result<ControlState, StoreError> {
    Ok(v.get_json(STATE_KEY)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev<'a>(seq: u64, kind: &'a str, payload: &'a serde_json::Value) -> Event<'a> {
        Event {
            seq,
            log_ns: seq,
            wall_ns: seq,
            kind,
            job_id: None,
            step_id: None,
            agent: None,
            actor: "operator:alice",
            parent: None,
            payload,
        }
    }

    #[test]
    fn a_release_must_name_the_standing_kill() {
        let mut st = ControlState::default();
        let k = json!({"reason": "loop"});
        st.apply(&ev(3, "kill.hard", &k));
        st.apply(&ev(4, "kill.hard", &k));
        assert_eq!(
            st.hard_kill.as_ref().map(|s| (s.seq, s.repeats)),
            Some((3, 1))
        );
        let wrong = json!({"reason": "x", "released_seq": 4});
        assert!(!st.apply(&ev(5, "kill.released", &wrong)));
        assert_eq!(st.refusal(None, None).map(|r| r.seq), Some(3));
        let right = json!({"reason": "x", "released_seq": 3});
        assert!(st.apply(&ev(6, "kill.released", &right)));
        assert!(st.refusal(None, None).is_none());
    }

    #[test]
    fn a_soft_kill_refuses_only_its_scope() {
        let mut st = ControlState::default();
        let p = json!({"reason": "overspend", "scope": "agent", "target": "coder"});
        st.apply(&ev(1, "kill.soft", &p));
        assert_eq!(
            st.refusal(Some("coder"), Some("j1")).map(|r| r.what),
            Some("soft_kill")
        );
        assert!(st.refusal(Some("planner"), Some("j1")).is_none());
        let j = json!({"reason": "bad job", "scope": "job", "target": "j9"});
        st.apply(&ev(2, "kill.soft", &j));
        assert!(st.refusal(Some("planner"), Some("j9")).is_some());
        let rel = json!({"reason": "ok", "released_seq": 1});
        st.apply(&ev(3, "kill.released", &rel));
        assert!(st.refusal(Some("coder"), Some("j1")).is_none());
        assert!(st.refusal(Some("coder"), Some("j9")).is_some());
    }

    #[test]
    fn lockdown_release_clears_the_lockdown() {
        let mut st = ControlState::default();
        let p = json!({"reason": "warning"});
        st.apply(&ev(1, "lockdown.set", &p));
        assert_eq!(st.refusal(None, None).map(|r| r.what), Some("lockdown"));
        st.apply(&ev(2, "lockdown.released", &p));
        assert!(st.is_clear());
    }
}
