//! One catch-up lane: reads the log once and feeds every entry to its
//! projections, committing each one's state with its checkpoint.
//!
//! Before any projection sees an entry, the lane decides two things the
//! projections must not decide for themselves: whether the entry's writer
//! class may write its kind (if not, only `apply_refused` sees it), and the
//! entry's log time (a forged `clock.skew` must not move it).
use super::admit::{self, admit, log_time};
use super::engine::{Checkpoint, ENGINE_VERSION};
use super::store::Tree;
use super::tx::{self, Staged, Tx};
use super::{Event, Projection, ProjectionError};
use crate::log::reader::LogReader;
use crate::time::LogClock;
use log_format::{EntryView, Hash32};
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

/// Entries between atomic commits of projection state during catch-up.
const COMMIT_EVERY: u64 = 25_000;

/// One projection as a lane sees it.
pub(super) struct Member<'a> {
    pub(super) projection: &'a dyn Projection,
    pub(super) tree: &'a Tree,
    /// First seq this projection has not applied.
    pub(super) next: u64,
    /// The log clock after `next` entries.
    pub(super) clock: LogClock,
}

/// The lane's projections with their working sets.
struct Lane<'a, 'm> {
    members: &'m [Member<'a>],
    staged: Vec<RefCell<Staged>>,
}

impl Lane<'_, '_> {
    /// Commits the state and checkpoint of every member that has applied
    /// everything before `next_seq`, each in its own atomic batch.
    fn commit(
        &self,
        next_seq: u64,
        last_hash: &Hash32,
        clock: LogClock,
    ) -> Result<(), ProjectionError> {
        for (m, staged) in self.members.iter().zip(&self.staged) {
            if m.next > next_seq {
                continue;
            }
            let cp = Checkpoint {
                version: m.projection.version(),
                engine: ENGINE_VERSION,
                next_seq,
                last_hash: hex::encode(last_hash),
                clock,
            };
            tx::commit(m.tree, staged, serde_json::to_vec(&cp).unwrap_or_default())?;
        }
        Ok(())
    }

    /// Hands one entry to every member that has not applied it yet.
    fn apply(&self, ev: &Event<'_>, refused: Option<&str>) -> Result<(), ProjectionError> {
        for (m, staged) in self.members.iter().zip(&self.staged) {
            if m.next > ev.seq {
                continue;
            }
            let mut tx = Tx::new(m.tree, staged);
            match refused {
                None => m.projection.apply(ev, &mut tx)?,
                Some(reason) => m.projection.apply_refused(ev, reason, &mut tx)?,
            }
        }
        Ok(())
    }
}

/// Applies `start..size` (from the first seq any of its projections lacks)
/// to the lane's projections, committing each one's state and checkpoint
/// atomically every `COMMIT_EVERY` entries and at the end. `done` counts
/// entries past `start`, for progress.
pub(super) fn run(
    reader: &LogReader,
    members: &[Member<'_>],
    start: u64,
    size: u64,
    done: &AtomicU64,
) -> Result<(), ProjectionError> {
    let Some(first) = members.iter().min_by_key(|m| m.next) else {
        return Ok(());
    };
    let mut clock = first.clock;
    let from = first.next.max(start);
    if from >= size {
        done.store(size - start, Ordering::Relaxed);
        return Ok(());
    }
    let registry = crate::registry::builtin().map_err(ProjectionError::Registry)?;
    let lane = Lane {
        members,
        staged: members.iter().map(|_| Default::default()).collect(),
    };
    let mut last_hash = [0u8; 32];
    let mut err: Option<ProjectionError> = None;
    reader.for_each(from, size.saturating_sub(1), |v: &EntryView<'_>| {
        let admitted = admit(registry, v);
        let log_ns = log_time(&mut clock, v.kind, v.ts_ns, &admitted);
        let ev = admit::event(v, log_ns, &admitted.payload);
        if let Err(e) = lane.apply(&ev, admitted.refused.as_deref()) {
            err = Some(e);
            return ControlFlow::Break(());
        }
        let commit_point = (v.seq + 1 - from).is_multiple_of(COMMIT_EVERY);
        // Only checkpoints need an entry hash: the last entry before each
        // commit, and the last entry of all.
        if commit_point || v.seq + 1 == size {
            last_hash = v.hash();
        }
        if commit_point {
            if let Err(e) = lane.commit(v.seq + 1, &last_hash, clock) {
                err = Some(e);
                return ControlFlow::Break(());
            }
            done.store(v.seq + 1 - start, Ordering::Relaxed);
        }
        ControlFlow::Continue(())
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    lane.commit(size, &last_hash, clock)?;
    done.store(size - start, Ordering::Relaxed);
    Ok(())
}
