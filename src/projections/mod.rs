//! Projections: deterministic folds over the log, disposable.
//!
//! Each projection is a stateless `apply(event, tx)`; all its state lives in
//! its own keyspace of the projection store beside a checkpoint (next seq +
//! hash of the last entry applied), written in the same atomic batch. On
//! open a projection resumes from its checkpoint, or is rebuilt from seq 0
//! when its code version changed, its checkpoint hash disagrees with the
//! log, or the log is shorter than the checkpoint. The same log therefore
//! always yields the same bytes.
//!
//! Layout: `engine.rs` opens the store and decides where each projection
//! resumes; `lane.rs` is the catch-up loop; `store.rs` is the only file that
//! knows which database holds the state; `tx.rs` is the working set a
//! projection reads and writes through; `status.rs` makes the closed sets of
//! status words the projections store; `source_rules.rs` (tests) keeps the
//! database named in `store.rs` only and functions short.
// The engine and its seams.
pub mod admit;
mod engine;
mod lane;
#[cfg(test)]
mod source_rules;
pub mod status;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod tx;

// The projections.
pub mod agents;
pub mod approvals;
pub mod breakers;
pub mod clock;
pub mod control;
pub mod dlq;
pub mod flags;
pub mod incident;
pub mod jobs;
pub mod memory_gate;
pub mod policy;
pub mod redactions;
pub mod routes;
pub mod sla;
pub mod workers;
// @@mods: one `pub mod <name>;` line per projection file, above this marker

pub use engine::{Projections, Status};
use serde_json::Value;
use std::path::PathBuf;
pub use store::StoreError;
pub use tx::{Tx, View};

/// One committed entry as projections see it: payload already parsed.
pub struct Event<'a> {
    pub seq: u64,
    /// Log time (`crate::time::LogClock`): what every time rule counts in.
    /// Never goes backwards, and a clock jump moves it only by the real time
    /// the writer witnessed.
    pub log_ns: u64,
    /// The writer's wall clock as stored: for display, never for rules.
    pub wall_ns: u64,
    pub kind: &'a str,
    pub job_id: Option<&'a str>,
    pub step_id: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub actor: &'a str,
    pub parent: Option<u64>,
    pub payload: &'a Value,
}

impl Event<'_> {
    pub fn str(&self, field: &str) -> Option<&str> {
        self.payload.get(field).and_then(Value::as_str)
    }
    pub fn f64(&self, field: &str) -> Option<f64> {
        self.payload.get(field).and_then(Value::as_f64)
    }
    pub fn u64(&self, field: &str) -> Option<u64> {
        self.payload.get(field).and_then(Value::as_u64)
    }
}

pub trait Projection: Send + Sync {
    fn name(&self) -> &'static str;
    /// Bump whenever `apply` changes meaning or a stored record changes
    /// type: stored state of another version is thrown away and rebuilt,
    /// never decoded as something it is not.
    fn version(&self) -> u32;
    /// Folds one event into the state. Must depend only on the event and the
    /// state, never on wall-clock time, randomness or the environment.
    /// Only entries whose writer class may write their kind arrive here.
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError>;

    /// An entry whose writer class may not write its kind (a forged decision
    /// from an older build or a hand-made log): it changes no state, but a
    /// projection may record that it was ignored, and why, for its view.
    fn apply_refused(
        &self,
        _ev: &Event<'_>,
        _reason: &str,
        _tx: &mut Tx<'_>,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Log(#[from] crate::Error),
    #[error("projections in {path} are in use by another argusctl process (waited {waited_s} s); retry when it finishes")]
    Busy { path: PathBuf, waited_s: u64 },
    #[error("unknown projection {0:?}")]
    Unknown(String),
    #[error("a projection catch-up thread stopped without reporting (it panicked)")]
    LaneFailed,
    #[error("starting a projection catch-up thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("the built-in event registry is broken: {0}")]
    Registry(String),
}

/// Every projection this build knows, in a fixed order.
pub fn all() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(jobs::Jobs),
        Box::new(agents::Agents),
        Box::new(routes::Routes),
        Box::new(flags::Flags),
        Box::new(memory_gate::MemoryGate),
        Box::new(approvals::Approvals),
        Box::new(dlq::Dlq),
        Box::new(sla::Sla),
        Box::new(breakers::Breakers),
        Box::new(workers::Workers),
        Box::new(policy::Policies),
        Box::new(incident::Incident),
        Box::new(clock::Clock),
        Box::new(control::Control),
        Box::new(redactions::Redactions),
        // @@projections: one `Box::new(...)` line per projection, above this marker
    ]
}
