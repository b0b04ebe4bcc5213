//! The canonical event registry (`docs/events/registry.json`): one JSON
//! Schema per kind, enforced at append. Unknown kinds are refused unless they
//! live under the documented extension namespace `x.`.
mod constitution;

use crate::authority::{Actor, Class};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

pub use constitution::{check_proposal, minimum_risk, Risk};

const REGISTRY_JSON: &str = include_str!("../../docs/events/registry.json");
pub const EXTENSION_NAMESPACE: &str = "x.";

/// The hash an approval binds to: BLAKE3 (derive-key) over the canonical
/// JSON (SPEC §4.1.1) of a proposal's `parameters`, the same form the log
/// stores, so anyone holding the stored payload recomputes it. Approving
/// with a hash of other parameters than the proposal's is refused, so an
/// approval can never be replayed onto a changed proposal.
pub fn parameter_hash(parameters: &Value) -> String {
    let canonical = crate::json::to_canonical(parameters);
    hex::encode(blake3::derive_key(
        "argus v1 proposal parameters",
        &canonical,
    ))
}

/// Why an entry was refused: the JSON path inside the entry and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {path}: {reason}")]
pub struct Rejection {
    pub kind: String,
    /// JSON Pointer into the entry, e.g. `/payload/rationale`.
    pub path: String,
    pub reason: String,
}

pub struct KindDef {
    pub family: String,
    pub description: String,
    /// The classes that may write this kind (invariant 8).
    pub writers: Vec<Class>,
    /// For kinds agents may not write: what does write them.
    pub command: Option<String>,
    pub schema: Value,
    validator: jsonschema::Validator,
}

/// A writer whose class may not write a kind. The message names who may,
/// and the command that writes it, so an agent that tried learns the way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} may be written only by {}, not by {class} {actor}{}", writers_text(.writers), .command.as_ref().map(|c| format!(" (use {c})")).unwrap_or_default())]
pub struct Unauthorized {
    pub kind: String,
    pub class: Class,
    pub actor: String,
    pub writers: Vec<Class>,
    pub command: Option<String>,
}

fn writers_text(w: &[Class]) -> String {
    let names: Vec<&str> = w.iter().map(|c| c.as_str()).collect();
    match names.as_slice() {
        [one] => format!("the {one}"),
        _ => format!("the {}", names.join(" or the ")),
    }
}

pub struct Registry {
    pub version: u64,
    kinds: BTreeMap<String, KindDef>,
}

static BUILTIN: LazyLock<Result<Registry, String>> =
    LazyLock::new(|| Registry::parse(REGISTRY_JSON));

/// The registry compiled into this build. An error here means the embedded
/// file is broken, which `registry_compiles` in the tests catches.
pub fn builtin() -> Result<&'static Registry, String> {
    BUILTIN.as_ref().map_err(|e| e.clone())
}

impl Registry {
    pub fn parse(text: &str) -> Result<Self, String> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| format!("registry is not JSON: {e}"))?;
        let version = root["registry_version"]
            .as_u64()
            .ok_or("registry_version missing")?;
        let Some(kinds_obj) = root["kinds"].as_object() else {
            return Err("registry has no kinds object".into());
        };
        let mut kinds = BTreeMap::new();
        for (kind, def) in kinds_obj {
            let schema = def["schema"].clone();
            let validator =
                jsonschema::validator_for(&schema).map_err(|e| format!("schema of {kind}: {e}"))?;
            let writers = def["writers"]
                .as_array()
                .ok_or_else(|| format!("{kind} names no writers"))?
                .iter()
                .map(|w| {
                    w.as_str()
                        .and_then(Class::parse)
                        .ok_or_else(|| format!("{kind}: unknown writer class {w}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let command = def["command"].as_str().map(str::to_string);
            if !writers.contains(&Class::Agent) && command.is_none() {
                return Err(format!(
                    "{kind}: agents may not write it, so it must name its command"
                ));
            }
            kinds.insert(
                kind.clone(),
                KindDef {
                    family: def["family"].as_str().unwrap_or_default().to_string(),
                    description: def["description"].as_str().unwrap_or_default().to_string(),
                    writers,
                    command,
                    schema,
                    validator,
                },
            );
        }
        Ok(Self { version, kinds })
    }

    pub fn kinds(&self) -> impl Iterator<Item = (&String, &KindDef)> {
        self.kinds.iter()
    }

    pub fn get(&self, kind: &str) -> Option<&KindDef> {
        self.kinds.get(kind)
    }

    /// The classes that may write `kind`. Unregistered kinds (the `x.`
    /// namespace) are agents' own.
    pub fn writers(&self, kind: &str) -> &[Class] {
        self.kinds
            .get(kind)
            .map_or(&[Class::Agent][..], |d| d.writers.as_slice())
    }

    /// Whether `actor` may write `kind` (invariant 8). Checked at append,
    /// and again by projections, so a log written by an older build or by
    /// hand is judged the same way.
    pub fn authorize(&self, kind: &str, actor: &Actor) -> Result<(), Unauthorized> {
        let writers = self.writers(kind);
        if writers.contains(&actor.class) {
            return Ok(());
        }
        Err(Unauthorized {
            kind: kind.to_string(),
            class: actor.class,
            actor: actor.to_string(),
            writers: writers.to_vec(),
            command: self
                .kinds
                .get(kind)
                .and_then(|d| d.command.clone())
                .or_else(|| {
                    (writers == [Class::Agent]).then(|| "argusctl append, the agents' path".into())
                }),
        })
    }

    /// Checks one payload against its kind. Argus's constitutional rules for
    /// proposals run after the schema, so their messages are specific.
    pub fn validate(&self, kind: &str, payload: &Value) -> Result<(), Rejection> {
        let reject = |path: String, reason: String| Rejection {
            kind: kind.to_string(),
            path,
            reason,
        };
        let Some(def) = self.kinds.get(kind) else {
            if kind.starts_with(EXTENSION_NAMESPACE) {
                return Ok(());
            }
            return Err(reject(
                "/kind".into(),
                format!("unknown kind; use a registered kind (`argusctl kinds`) or the `{EXTENSION_NAMESPACE}` extension namespace"),
            ));
        };
        // `is_valid` stops at the first failure without building errors;
        // only a refusal pays for the message.
        if !def.validator.is_valid(payload) {
            if let Some(err) = def.validator.iter_errors(payload).next() {
                let at = err.instance_path().to_string();
                return Err(reject(format!("/payload{at}"), err.to_string()));
            }
        }
        if kind == "proposal.created" {
            check_proposal(payload)
                .map_err(|(field, reason)| reject(format!("/payload/{field}"), reason))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn registry_compiles_and_covers_seed_kinds() {
        let r = builtin().unwrap();
        for k in [
            "job.received",
            "job.retrying",
            "tool.call_failed",
            "circuit.half_open",
            "dlq.enqueued",
            "job.replayed",
            "sla.breach",
            "incident.declared",
            "proposal.created",
            "proposal.rolled_back",
            "cost.logged",
            "file.written",
            "worker.heartbeat",
            "worker.claimed",
            "agent.registered",
            "route.set",
            "flag.set",
            "memory.proposal.created",
            "policy.denied",
            "budget.exceeded",
            "anomaly.detected",
            "kill.hard",
            "kill.soft",
            "lockdown.set",
            "lockdown.released",
            "mode.changed",
            "log.recovered",
            "key.rotated",
        ] {
            assert!(r.get(k).is_some(), "registry lacks {k}");
        }
    }

    #[test]
    fn decisions_are_not_agent_kinds_and_name_their_command() {
        let r = builtin().unwrap();
        let agent = Actor::parse("agent:uid:0:root");
        let e = r.authorize("proposal.approved", &agent).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("use argusctl approvals approve"), "{msg}");
        assert!(r.authorize("proposal.created", &agent).is_ok());
        assert!(r.authorize("x.team.custom", &agent).is_ok());
        let op = Actor::parse("operator:uid:0:root");
        assert!(r.authorize("proposal.approved", &op).is_ok());
        assert!(
            r.authorize("proposal.created", &op).is_err(),
            "operators do not write agents' work"
        );
        assert!(r.authorize("log.recovered", &Actor::argus()).is_ok());
        assert!(r.authorize("clock.skew", &op).is_err());
        // Only `argusctl key rotate`, through the writer, writes key.rotated.
        assert!(r.authorize("key.rotated", &op).is_err());
        assert!(r.authorize("key.rotated", &agent).is_err());
        assert!(r.authorize("key.rotated", &Actor::argus()).is_ok());
    }

    #[test]
    fn unknown_kind_refused_unless_extension() {
        let r = builtin().unwrap();
        assert_eq!(r.validate("made.up", &json!({})).unwrap_err().path, "/kind");
        assert!(r.validate("x.team.custom", &json!({"anything": 1})).is_ok());
    }

    #[test]
    fn schema_error_names_the_path() {
        let r = builtin().unwrap();
        let e = r.validate("cost.logged", &json!({"usd": "free", "tokens_in": 1, "tokens_out": 1, "model": null, "price_table": "v1"})).unwrap_err();
        assert_eq!(e.path, "/payload/usd", "{e}");
    }
}
