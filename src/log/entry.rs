//! Entries on their way in: what a producer submits ([`NewEntry`]), the
//! checks every entry passes before a seq is assigned, and [`ValidEntry`],
//! the proof that it passed them.
//!
//! The checks run once, on the producer's thread. A caller that already
//! holds the payload as a JSON value (`argusctl append` parsed the line)
//! builds a `ValidEntry` from it with [`ValidEntry::from_value`], so the
//! payload is parsed and schema-checked once; a library caller hands
//! `Log::append` plain `NewEntry`s and gets the same checks on the bytes.
//! Only the writer's own check, `parent < seq`, waits for the seq.
use crate::authority::{Actor, Class};
use crate::json::JsonError;
use crate::registry::{Registry, Rejection, Unauthorized};
use log_format::entry::valid_kind;
use log_format::{EntryFields, Hash32};
use serde_json::Value;

/// Largest payload accepted, in bytes. Keeps every frame well under the
/// format's 16 MiB frame limit.
pub const PAYLOAD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Largest kind, job_id, step_id, agent or actor, in bytes.
pub const FIELD_BYTES_MAX: usize = 1024;

/// An entry as a producer submits it; the writer assigns seq, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub kind: String,
    pub job_id: Option<String>,
    pub step_id: Option<String>,
    pub agent: Option<String>,
    pub actor: String,
    pub parent: Option<u64>,
    /// JSON text.
    pub payload: Vec<u8>,
}

impl NewEntry {
    /// An entry Argus writes itself (class `argus`): no job, no agent, a
    /// canonical payload.
    pub fn argus(kind: &str, payload: &Value) -> Self {
        Self {
            kind: kind.into(),
            job_id: None,
            step_id: None,
            agent: None,
            actor: Actor::argus().to_string(),
            parent: None,
            payload: crate::json::to_canonical(payload),
        }
    }

    /// The format-level fields of this entry once the writer has given it a
    /// place in the chain.
    pub fn fields(&self, seq: u64, ts_ns: u64, prev: Hash32) -> EntryFields<'_> {
        EntryFields {
            seq,
            ts_ns,
            parent: self.parent,
            prev,
            kind: &self.kind,
            job_id: self.job_id.as_deref(),
            step_id: self.step_id.as_deref(),
            agent: self.agent.as_deref(),
            actor: &self.actor,
            payload: &self.payload,
        }
    }
}

/// An entry field, as an error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Kind,
    JobId,
    StepId,
    Agent,
    Actor,
    Parent,
    Payload,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kind => "kind",
            Self::JobId => "job_id",
            Self::StepId => "step_id",
            Self::Agent => "agent",
            Self::Actor => "actor",
            Self::Parent => "parent",
            Self::Payload => "payload",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an entry is refused. The messages are the ones users have always
/// seen; a program matches on the variant and [`Problem::field`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("kind {kind:?} does not match [a-z0-9_]+(\\.[a-z0-9_]+)*")]
    KindGrammar { kind: String },
    #[error("{field} must not be empty when present")]
    Empty { field: Field },
    #[error("{field} is {len} bytes; the limit is {limit}")]
    TooLong {
        field: Field,
        len: usize,
        limit: usize,
    },
    #[error("parent {parent} is not an earlier seq (this entry would be seq {seq})")]
    ParentNotEarlier { parent: u64, seq: u64 },
    /// The payload bytes are not Argus canonical JSON (SPEC §4.1.1).
    #[error("payload is not canonical JSON (SPEC §4.1.1): {0}")]
    NotCanonical(JsonError),
    /// The registry's schema (or a constitutional rule) refused the payload
    /// or the kind; the rejection carries the JSON Pointer.
    #[error("{0}")]
    Schema(Rejection),
    /// The actor's class may not write this kind (invariant 8).
    #[error("{0}")]
    Unauthorized(Unauthorized),
    /// `key.rotated` certifies a key with the key the writer holds, at the
    /// seq only the writer knows (SPEC §4.7): no producer, whatever its
    /// class, submits one; `argusctl key rotate` asks the writer for it.
    #[error("key.rotated is written only by the writer during `argusctl key rotate`, never submitted as an entry")]
    KeyRotation,
}

impl Problem {
    /// The entry field at fault (for a schema rejection, the top-level field
    /// its JSON Pointer starts in).
    pub fn field(&self) -> Field {
        match self {
            Self::KindGrammar { .. } | Self::Unauthorized(_) | Self::KeyRotation => Field::Kind,
            Self::Empty { field } | Self::TooLong { field, .. } => *field,
            Self::ParentNotEarlier { .. } => Field::Parent,
            Self::NotCanonical(_) => Field::Payload,
            Self::Schema(r) if r.path == "/kind" => Field::Kind,
            Self::Schema(_) => Field::Payload,
        }
    }
}

/// An entry that passed every check that does not depend on its seq:
/// kind grammar, field limits, its actor's authority for the kind, a
/// canonical payload and the registry schema. Only this module constructs
/// one, so `Log::append` takes it without checking again. It carries its
/// payload hash, computed on the producer's thread: the one writer thread is
/// what every producer waits on, so work that does not need a seq is done
/// before the entry reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEntry {
    entry: NewEntry,
    payload_hash: Hash32,
}

impl ValidEntry {
    /// The checked path for entries whose payload is bytes: the bytes must
    /// already be canonical JSON, and are parsed once to be judged.
    pub fn check(e: NewEntry, registry: &Registry) -> Result<Self, Problem> {
        check_fields(&e)?;
        authorize(&e, registry)?;
        let payload = crate::json::parse_canonical(&e.payload, PAYLOAD_BYTES_MAX)
            .map_err(Problem::NotCanonical)?;
        registry
            .validate(&e.kind, &payload)
            .map_err(Problem::Schema)?;
        Ok(Self::hashed(e))
    }

    /// For a caller that holds the payload as a value it already read: the
    /// value is judged, and `e.payload` is replaced by its canonical form,
    /// which is canonical by construction and not parsed again. The form is
    /// written into `e.payload`'s own buffer (cleared first), so a caller
    /// that sized it from its input allocates it once.
    pub fn from_value(
        mut e: NewEntry,
        payload: &Value,
        registry: &Registry,
    ) -> Result<Self, Problem> {
        e.payload.clear();
        crate::json::write_canonical(&mut e.payload, payload);
        check_fields(&e)?;
        authorize(&e, registry)?;
        registry
            .validate(&e.kind, payload)
            .map_err(Problem::Schema)?;
        Ok(Self::hashed(e))
    }

    fn hashed(entry: NewEntry) -> Self {
        let payload_hash = log_format::hash::payload_hash(&entry.payload);
        Self {
            entry,
            payload_hash,
        }
    }

    /// `payload_hash(payload)` (SPEC §4.1), as the entry will store it.
    pub fn payload_hash(&self) -> &Hash32 {
        &self.payload_hash
    }

    pub fn into_inner(self) -> NewEntry {
        self.entry
    }
}

impl std::ops::Deref for ValidEntry {
    type Target = NewEntry;
    fn deref(&self) -> &NewEntry {
        &self.entry
    }
}

/// What `Log::append` accepts: entries still to check ([`NewEntry`]) or
/// entries already checked ([`ValidEntry`]). Sealed: no other type can
/// claim to be checked.
pub trait IntoValid: sealed::Sealed + Send {
    fn into_valid(self, registry: &Registry) -> Result<ValidEntry, Problem>;
}

impl IntoValid for NewEntry {
    fn into_valid(self, registry: &Registry) -> Result<ValidEntry, Problem> {
        ValidEntry::check(self, registry)
    }
}

impl IntoValid for ValidEntry {
    fn into_valid(self, _: &Registry) -> Result<ValidEntry, Problem> {
        Ok(self)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NewEntry {}
    impl Sealed for super::ValidEntry {}
}

/// Kind grammar and length limits: what the format needs of every field.
pub fn check_fields(e: &NewEntry) -> Result<(), Problem> {
    if !valid_kind(&e.kind) {
        return Err(Problem::KindGrammar {
            kind: e.kind.clone(),
        });
    }
    for (field, v) in [
        (Field::Kind, Some(&e.kind)),
        (Field::JobId, e.job_id.as_ref()),
        (Field::StepId, e.step_id.as_ref()),
        (Field::Agent, e.agent.as_ref()),
        (Field::Actor, Some(&e.actor)),
    ] {
        if let Some(v) = v {
            if v.is_empty() {
                return Err(Problem::Empty { field });
            }
            if v.len() > FIELD_BYTES_MAX {
                return Err(Problem::TooLong {
                    field,
                    len: v.len(),
                    limit: FIELD_BYTES_MAX,
                });
            }
        }
    }
    if e.payload.len() > PAYLOAD_BYTES_MAX {
        return Err(Problem::TooLong {
            field: Field::Payload,
            len: e.payload.len(),
            limit: PAYLOAD_BYTES_MAX,
        });
    }
    Ok(())
}

/// The writer's one check, made when the seq is known: a parent names an
/// earlier entry.
pub fn check_parent(e: &NewEntry, seq: u64) -> Result<(), Problem> {
    match e.parent {
        Some(parent) if parent >= seq => Err(Problem::ParentNotEarlier { parent, seq }),
        _ => Ok(()),
    }
}

/// The actor's class may write the kind. Most entries pass, so the passing
/// path does not allocate.
fn authorize(e: &NewEntry, registry: &Registry) -> Result<(), Problem> {
    if !registry
        .writers(&e.kind)
        .contains(&Class::of_actor(&e.actor))
    {
        registry
            .authorize(&e.kind, &Actor::parse(&e.actor))
            .map_err(Problem::Unauthorized)?;
    }
    // Even Argus's own class (an import copying another log's entries)
    // may not submit one: its certificate would be another log's.
    if e.kind == log_format::epoch::ROTATION_KIND {
        return Err(Problem::KeyRotation);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(payload: &[u8]) -> NewEntry {
        NewEntry {
            kind: "x.test".into(),
            job_id: None,
            step_id: None,
            agent: None,
            actor: "user:t".into(),
            parent: None,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn payload_over_the_limit_is_refused_before_any_write() {
        assert!(check_fields(&entry(b"{\"a\":1}")).is_ok());
        let big = vec![b'1'; PAYLOAD_BYTES_MAX + 1];
        let err = check_fields(&entry(&big)).unwrap_err();
        assert!(
            matches!(
                err,
                Problem::TooLong {
                    field: Field::Payload,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("the limit is"), "{err}");
    }

    #[test]
    fn problems_name_their_field_without_reading_the_message() {
        let mut e = entry(b"{}");
        e.kind = "Bad Kind".into();
        assert_eq!(check_fields(&e).unwrap_err().field(), Field::Kind);
        let mut e = entry(b"{}");
        e.job_id = Some(String::new());
        assert_eq!(
            check_fields(&e).unwrap_err(),
            Problem::Empty {
                field: Field::JobId
            }
        );
        let mut e = entry(b"{}");
        e.parent = Some(5);
        assert_eq!(
            check_parent(&e, 5).unwrap_err(),
            Problem::ParentNotEarlier { parent: 5, seq: 5 }
        );
        assert!(check_parent(&e, 6).is_ok());
    }

    #[test]
    fn checked_and_from_value_paths_store_the_same_bytes() {
        let r = crate::registry::builtin().unwrap();
        let v: Value = serde_json::json!({"b": [1, 0.5], "a": "x"});
        let by_value = ValidEntry::from_value(entry(b"ignored"), &v, r).unwrap();
        let by_bytes = ValidEntry::check(entry(&crate::json::to_canonical(&v)), r).unwrap();
        assert_eq!(by_value, by_bytes);
        let err = ValidEntry::check(entry(b"{\"a\": 1}"), r).unwrap_err();
        assert!(matches!(err, Problem::NotCanonical(_)), "{err:?}");
        assert_eq!(err.field(), Field::Payload);
    }
}
