//! Where ingestion finds the rules in force without reading the log:
//! `DIR/control/redaction_rules.json` names the newest `redaction.rules_set`
//! by seq and payload hash. It is a pointer, not the rules: they are read
//! from the entry it names, which must be an operator's `redaction.rules_set`
//! with that hash, so an edited file can only fail to point, never bring in
//! rules of its own. A file that points nowhere is refused (nothing is
//! appended) rather than ignored: ignoring it would silently drop an
//! operator's rules. Absent, the built-in rules alone apply.
use super::{builtin, RedactError, Redactor, RulesConfig};
use crate::authority::Class;
use crate::log::control_flags;
use crate::log::safe_fs::{self, Durability};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

pub const MIRROR_FILE: &str = "redaction_rules.json";
/// The kind whose newest entry sets the rules.
pub const RULES_KIND: &str = "redaction.rules_set";
/// A pointer is two numbers; anything larger is not ours.
const MIRROR_CAP: u64 = 4096;

#[derive(Debug, Error)]
pub enum MirrorError {
    #[error("{path}: {reason}; nothing was appended (an operator rewrites it by applying the rules again with `argusctl config apply`)")]
    Pointer { path: PathBuf, reason: String },
    #[error("the redaction rules of seq {seq} cannot be built: {source}")]
    Rules {
        seq: u64,
        #[source]
        source: RedactError,
    },
    #[error("the built-in redaction rules cannot be built: {0}")]
    Builtin(String),
    #[error(transparent)]
    Log(#[from] crate::error::Error),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pointer {
    seq: u64,
    payload_hash: String,
}

/// The rules ingestion applies now.
#[derive(Clone)]
pub enum ActiveRules {
    Builtin(&'static Redactor),
    Configured { redactor: Arc<Redactor>, seq: u64 },
}

impl ActiveRules {
    pub fn builtin() -> Result<Self, MirrorError> {
        builtin()
            .map(Self::Builtin)
            .map_err(|e| MirrorError::Builtin(e.to_string()))
    }

    pub fn redactor(&self) -> &Redactor {
        match self {
            Self::Builtin(r) => r,
            Self::Configured { redactor, .. } => redactor,
        }
    }

    /// The `redaction.rules_set` in force, if an operator set one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            Self::Builtin(_) => None,
            Self::Configured { seq, .. } => Some(*seq),
        }
    }

    /// The rules of a committed `redaction.rules_set` payload.
    pub fn configured(seq: u64, payload: &serde_json::Value) -> Result<Self, MirrorError> {
        let built = RulesConfig::from_payload(payload)
            .and_then(|c| c.build())
            .map_err(|source| MirrorError::Rules { seq, source })?;
        Ok(Self::Configured {
            redactor: Arc::new(built),
            seq,
        })
    }
}

pub fn path(root: &Path) -> PathBuf {
    control_flags::control_dir(root).join(MIRROR_FILE)
}

/// Points the mirror at a committed `redaction.rules_set` (whole and
/// durable: temp file, fsync, rename, fsync of the directory).
pub fn write(root: &Path, seq: u64, payload_hash: &[u8; 32]) -> crate::error::Result<()> {
    let dir = control_flags::ensure_control_dir(root)?;
    let p = Pointer {
        seq,
        payload_hash: hex::encode(payload_hash),
    };
    let mut bytes = serde_json::to_vec(&p).unwrap_or_default();
    bytes.push(b'\n');
    let tmp = dir.join(format!(".{MIRROR_FILE}.tmp"));
    safe_fs::write_whole(&tmp, &path(root), &bytes, 0o644, Durability::Synced)
}

/// The rules in force for the log at `root`.
pub fn active(root: &Path) -> Result<ActiveRules, MirrorError> {
    let file = path(root);
    let pointer_err = |reason: String| MirrorError::Pointer {
        path: file.clone(),
        reason,
    };
    match std::fs::symlink_metadata(&file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ActiveRules::builtin(),
        Err(e) => return Err(pointer_err(e.to_string())),
        Ok(_) => {}
    }
    let bytes = safe_fs::read_capped(&file, MIRROR_CAP)?;
    let p: Pointer = serde_json::from_slice(&bytes)
        .map_err(|e| pointer_err(format!("not a redaction-rules pointer: {e}")))?;
    let reader = crate::log::reader::LogReader::open(root)?;
    let found = reader.locate(p.seq, |v, _| {
        let class = Class::of_actor(v.actor);
        if v.kind != RULES_KIND || class != Class::Operator {
            return Err(format!(
                "it names seq {}, a {} by {}, not an operator's {RULES_KIND}",
                p.seq, v.kind, v.actor
            ));
        }
        if hex::encode(v.payload_hash) != p.payload_hash {
            return Err(format!(
                "it names seq {} with another payload hash than the log holds",
                p.seq
            ));
        }
        serde_json::from_slice::<serde_json::Value>(v.payload)
            .map_err(|e| format!("the payload of seq {} is not JSON: {e}", p.seq))
    })?;
    let payload = match found {
        None => {
            return Err(pointer_err(format!(
                "it names seq {}, which the log does not hold",
                p.seq
            )))
        }
        Some(r) => r.map_err(pointer_err)?,
    };
    ActiveRules::configured(p.seq, &payload)
}
