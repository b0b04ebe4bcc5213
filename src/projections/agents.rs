//! Agent registry (PRD-018 §4.1): the current definition of every agent slug
//! plus one snapshot per version, folded from `agent.*` entries.
//!
//! The log may hold anything an operator wrote, so nothing is refused here;
//! but a definition only moves forward: an `agent.registered`/`agent.updated`
//! whose version is not greater than the current one is kept as an
//! `ignored/` record instead of being applied, so a view can show that it
//! arrived and why it had no effect.
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const NAME: &str = "agents";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Agent {
    pub slug: String,
    pub version: u64,
    pub description: Option<String>,
    pub capabilities: Vec<String>,
    pub memory_read: Vec<String>,
    pub memory_write: Vec<String>,
    pub model_policy: Value,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub registered_seq: u64,
    pub registered_ts_ns: u64,
    pub updated_seq: u64,
    pub updated_ts_ns: u64,
    /// Entries that arrived for this slug but changed nothing.
    pub ignored: u64,
}

/// The definition as it stood when `version` was applied.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentVersion {
    pub slug: String,
    pub version: u64,
    pub kind: String,
    pub changelog: Option<String>,
    pub seq: u64,
    pub ts_ns: u64,
    pub actor: String,
    pub snapshot: Agent,
}

/// An entry that had no effect, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ignored {
    pub slug: String,
    pub seq: u64,
    pub ts_ns: u64,
    pub kind: String,
    pub version: Option<u64>,
    pub current_version: Option<u64>,
    pub reason: String,
}

pub fn agent_key(slug: &str) -> Vec<u8> {
    format!("agent/{slug}").into_bytes()
}

/// Slugs may contain `/`, so per-slug prefixes end in NUL, which no slug holds
/// in practice and which keeps `a` from matching `a/b`'s records.
pub fn versions_prefix(slug: &str) -> Vec<u8> {
    format!("version/{slug}\0").into_bytes()
}

pub fn version_key(slug: &str, version: u64) -> Vec<u8> {
    format!("version/{slug}\0{version:020}").into_bytes()
}

pub fn ignored_prefix(slug: &str) -> Vec<u8> {
    format!("ignored/{slug}\0").into_bytes()
}

fn ignored_key(slug: &str, seq: u64) -> Vec<u8> {
    format!("ignored/{slug}\0{seq:020}").into_bytes()
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}

/// Copies every field the payload carries onto `a`; absent fields keep
/// their previous value, so an update may be partial.
fn overlay(a: &mut Agent, p: &Value) {
    if let Some(d) = p.get("description").and_then(Value::as_str) {
        a.description = Some(d.to_string());
    }
    if let Some(v) = p.get("capabilities").and_then(strings) {
        a.capabilities = v;
    }
    if let Some(v) = p.get("memory_read").and_then(strings) {
        a.memory_read = v;
    }
    if let Some(v) = p.get("memory_write").and_then(strings) {
        a.memory_write = v;
    }
    if let Some(v) = p.get("model_policy").filter(|v| v.is_object()) {
        a.model_policy = v.clone();
    }
    if let Some(e) = p.get("enabled").and_then(Value::as_bool) {
        a.enabled = e;
        if e {
            a.disabled_reason = None;
        }
    }
}

pub struct Agents;

impl Agents {
    fn ignore(
        tx: &mut Tx<'_>,
        ev: &Event<'_>,
        slug: &str,
        current: Option<&mut Agent>,
        reason: String,
    ) {
        let current_version = current.as_ref().map(|a| a.version);
        if let Some(a) = current {
            a.ignored += 1;
            tx.put_json(&agent_key(slug), a.clone());
        }
        tx.put_json(
            &ignored_key(slug, ev.seq),
            Ignored {
                slug: slug.to_string(),
                seq: ev.seq,
                ts_ns: ev.log_ns,
                kind: ev.kind.to_string(),
                version: ev.u64("version"),
                current_version,
                reason,
            },
        );
    }
}

impl Projection for Agents {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if !matches!(
            ev.kind,
            "agent.registered" | "agent.updated" | "agent.disabled"
        ) {
            return Ok(());
        }
        let Some(slug) = ev.str("slug").filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        let key = agent_key(slug);
        let mut current: Option<Agent> = tx.get_json(&key)?;

        if ev.kind == "agent.disabled" {
            let Some(mut a) = current else {
                Self::ignore(tx, ev, slug, None, "no such agent".into());
                return Ok(());
            };
            a.enabled = false;
            a.disabled_reason = Some(ev.str("reason").unwrap_or("").to_string());
            a.updated_seq = ev.seq;
            a.updated_ts_ns = ev.log_ns;
            tx.put_json(&key, a);
            return Ok(());
        }

        let Some(version) = ev.u64("version").filter(|v| *v >= 1) else {
            Self::ignore(
                tx,
                ev,
                slug,
                current.as_mut(),
                "version missing or not a positive integer".into(),
            );
            return Ok(());
        };
        if let Some(cur) = current.as_mut().filter(|a| version <= a.version) {
            let reason = format!(
                "version {version} is not greater than the current version {}",
                cur.version
            );
            Self::ignore(tx, ev, slug, Some(cur), reason);
            return Ok(());
        }

        // A registration is a whole definition; an update builds on the
        // current one (or on nothing, for a slug never registered).
        let mut a = match (ev.kind, current) {
            ("agent.updated", Some(a)) => a,
            (_, prev) => {
                let (registered_seq, registered_ts_ns, ignored) = prev
                    .map(|p| (p.registered_seq, p.registered_ts_ns, p.ignored))
                    .unwrap_or((ev.seq, ev.log_ns, 0));
                Agent {
                    slug: slug.to_string(),
                    enabled: true,
                    model_policy: Value::Object(Default::default()),
                    registered_seq,
                    registered_ts_ns,
                    ignored,
                    ..Agent::default()
                }
            }
        };
        overlay(&mut a, ev.payload);
        a.version = version;
        a.updated_seq = ev.seq;
        a.updated_ts_ns = ev.log_ns;
        tx.put_json(&key, a.clone());
        tx.put_json(
            &version_key(slug, version),
            AgentVersion {
                slug: slug.to_string(),
                version,
                kind: ev.kind.to_string(),
                changelog: ev.str("changelog").map(str::to_string),
                seq: ev.seq,
                ts_ns: ev.log_ns,
                actor: ev.actor.to_string(),
                snapshot: a,
            },
        );
        Ok(())
    }
}
