//! Where a command runs: in `argusctl` (its own stdout, its own writer lock,
//! its own projections, the OS user as principal) or inside argusd.
//!
//! The daemon owns the log's writer and the projections store for its whole
//! life, and only one process may hold either. So that views and decisions
//! are written once and run in both places, a command asks this module for
//! what it needs: `Out` writes into the capture buffer installed here,
//! `state::open` borrows the daemon's projections (caught up first, as it
//! does locally), decisions take the daemon's decision lock and append
//! through its writer, and the actor is the caller's principal. The context
//! is per thread and installed for one command by `capture`.
use crate::log::reader::LogReader;
use crate::projections::Projections;
use crate::Log;
use anyhow::{Context as _, Result};
use parking_lot::{Mutex, RawMutex, RawRwLock, RwLock};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

/// The daemon's state that commands run against.
pub struct SharedState {
    pub dir: PathBuf,
    pub log: Arc<Log>,
    projections: Arc<RwLock<Projections>>,
    /// Held from a decision's check to its append: the daemon's stand-in
    /// for the writer lock that serializes decisions between processes.
    decisions: Arc<Mutex<()>>,
    /// Every projection's name, and the log size the last catch-up reached
    /// (they all reach it together): health reads these, never the store.
    names: Vec<&'static str>,
    caught_up: std::sync::atomic::AtomicU64,
}

pub type ProjectionsRead = parking_lot::lock_api::ArcRwLockReadGuard<RawRwLock, Projections>;
pub type DecisionGuard = parking_lot::lock_api::ArcMutexGuard<RawMutex, ()>;

impl SharedState {
    pub fn new(dir: PathBuf, log: Arc<Log>, projections: Projections) -> Self {
        let names = projections
            .lag(0)
            .map(|l| l.into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default();
        Self {
            dir,
            log,
            projections: Arc::new(RwLock::new(projections)),
            decisions: Arc::new(Mutex::new(())),
            names,
            caught_up: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Catches every projection up to the log's sealed head; returns the
    /// size they reflect.
    pub fn catch_up(&self) -> Result<u64> {
        let mut p = self.projections.write_arc();
        let size = catch_up(&self.dir, &mut p)?;
        self.caught_up
            .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        Ok(size)
    }

    /// Caught up, then held for reading until the guard drops.
    pub fn read_caught_up(&self) -> Result<(LogReader, ProjectionsRead, u64)> {
        let mut p = self.projections.write_arc();
        let reader = LogReader::open(&self.dir)
            .with_context(|| format!("opening {}", self.dir.display()))?;
        let size = super::state::catch_up(&reader, &mut p)?;
        self.caught_up
            .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        Ok((
            reader,
            parking_lot::lock_api::ArcRwLockWriteGuard::downgrade(p),
            size,
        ))
    }

    /// Entries each projection is behind the log's committed head, as of
    /// the last catch-up; never touches the store.
    pub fn lag(&self) -> Vec<(String, u64)> {
        let head = self.log.committed().get();
        let at = self.caught_up.load(std::sync::atomic::Ordering::Relaxed);
        self.names
            .iter()
            .map(|n| (n.to_string(), head.saturating_sub(at)))
            .collect()
    }

    pub fn lock_decisions(&self) -> DecisionGuard {
        self.decisions.lock_arc()
    }
}

fn catch_up(dir: &std::path::Path, p: &mut Projections) -> Result<u64> {
    let reader = LogReader::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    super::state::catch_up(&reader, p)
}

/// What one command run inside the daemon may use.
#[derive(Default)]
pub struct Context {
    pub state: Option<Arc<SharedState>>,
    /// The caller's principal (`token:planner`); `None` is the OS user.
    pub principal: Option<String>,
    /// What the command reads as stdin (`config apply`).
    pub stdin: Option<Vec<u8>>,
}

struct Installed {
    ctx: Context,
    out: Vec<u8>,
    err: Vec<u8>,
}

/// What a command printed.
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

thread_local! {
    static CURRENT: RefCell<Option<Installed>> = const { RefCell::new(None) };
}

/// Runs `f` with `ctx` installed on this thread and its output captured;
/// returns what it printed and what it returned.
pub fn capture<T>(ctx: Context, f: impl FnOnce() -> T) -> (Captured, T) {
    /// Puts the previous context back, even if `f` panics.
    struct Restore(Option<Installed>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = prev);
        }
    }
    let installed = Installed {
        ctx,
        out: Vec::new(),
        err: Vec::new(),
    };
    let prev = CURRENT.with(|c| c.replace(Some(installed)));
    let restore = Restore(prev);
    let r = f();
    let out = CURRENT.with(|c| {
        c.borrow_mut()
            .as_mut()
            .map(|i| Captured {
                stdout: std::mem::take(&mut i.out),
                stderr: std::mem::take(&mut i.err),
            })
            .unwrap_or_default()
    });
    drop(restore);
    (out, r)
}

/// Whether stdout is captured on this thread.
pub fn capturing() -> bool {
    CURRENT.with(|c| c.borrow().is_some())
}

/// Appends to the capture buffer; false if nothing is captured here.
pub fn write_captured(bytes: &[u8]) -> bool {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(i) => {
            i.out.extend_from_slice(bytes);
            true
        }
        None => false,
    })
}

/// Appends to the captured stderr; false if nothing is captured here.
pub fn write_captured_err(bytes: &[u8]) -> bool {
    CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some(i) => {
            i.err.extend_from_slice(bytes);
            true
        }
        None => false,
    })
}

/// The daemon's state, when running inside it.
pub fn shared() -> Option<Arc<SharedState>> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|i| i.ctx.state.clone()))
}

/// Stdin given by the daemon's caller, when running inside it.
pub fn stdin() -> Option<Vec<u8>> {
    CURRENT.with(|c| c.borrow_mut().as_mut().and_then(|i| i.ctx.stdin.take()))
}

/// The actor of an entry this command writes in `class`: the daemon's
/// caller, or the OS user who runs argusctl.
pub fn actor(class: crate::authority::Class) -> crate::authority::Actor {
    let principal = CURRENT.with(|c| c.borrow().as_ref().and_then(|i| i.ctx.principal.clone()));
    match principal {
        Some(p) => crate::authority::Actor::new(class, p),
        None => crate::authority::local_actor(class),
    }
}

/// The caller's principal (the OS user's outside the daemon).
pub fn principal() -> String {
    CURRENT
        .with(|c| c.borrow().as_ref().and_then(|i| i.ctx.principal.clone()))
        .unwrap_or_else(crate::authority::local_principal)
}
