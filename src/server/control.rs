//! The kill switches, enforced: argusd's live copy of the control state,
//! folded from every committed entry by the feed thread, so a kill takes
//! effect within one feed poll of its commit, whoever wrote it (the
//! auditor inside or outside the daemon, an operator through the API or
//! `argusctl` while the daemon runs).
//!
//! While a hard kill or lockdown stands, agents' appends are refused (423)
//! naming the decision's seq; operator and auditor entries still go
//! through. On each change the flag files are made to match, and a new
//! hard kill or lockdown runs the configured hook with the decision on stdin.
use crate::log::reader::LogReader;
use crate::projections::admit::{self, admit};
use crate::projections::control::{ControlState, Refusal};
use crate::secrets::mirror::RULES_KIND;
use crate::secrets::ActiveRules;
use log_format::EntryView;
use parking_lot::RwLock;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub struct Gate {
    dir: PathBuf,
    state: RwLock<ControlState>,
    hook: Option<Vec<String>>,
    /// The redaction rules agents' payloads pass through, folded from
    /// `redaction.rules_set` the same way: in force from one feed poll
    /// after their commit, whoever wrote them.
    rules: RwLock<ActiveRules>,
}

const KINDS: [&str; 5] = [
    "kill.hard",
    "kill.soft",
    "kill.released",
    "lockdown.set",
    "lockdown.released",
];

/// How long a hook may run before it is killed.
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);

impl Gate {
    pub fn new(
        dir: PathBuf,
        initial: ControlState,
        hook: Option<Vec<String>>,
        rules: ActiveRules,
    ) -> Self {
        Self {
            dir,
            state: RwLock::new(initial),
            hook: hook.filter(|h| !h.is_empty()),
            rules: RwLock::new(rules),
        }
    }

    /// The redaction rules in force now (a cheap clone).
    pub fn rules(&self) -> ActiveRules {
        self.rules.read().clone()
    }

    /// An operator's `redaction.rules_set` takes effect; one that cannot be
    /// built (it was checked when written, so only a hand-made entry) leaves
    /// the rules as they were, loudly.
    fn observe_rules(&self, v: &EntryView<'_>) {
        if crate::authority::Class::of_actor(v.actor) != crate::authority::Class::Operator {
            tracing::warn!(
                seq = v.seq,
                actor = v.actor,
                "a redaction.rules_set not by an operator: ignored"
            );
            return;
        }
        let built = serde_json::from_slice::<serde_json::Value>(v.payload)
            .map_err(|e| e.to_string())
            .and_then(|p| ActiveRules::configured(v.seq, &p).map_err(|e| e.to_string()));
        match built {
            Ok(r) => {
                tracing::warn!(seq = v.seq, "redaction rules changed");
                *self.rules.write() = r;
            }
            Err(e) => {
                tracing::error!(seq = v.seq, error = %e, "redaction rules that cannot be built: the previous rules stay in force")
            }
        }
    }

    /// Why an agent's entry for `agent` / `job` is refused now, if it is.
    pub fn refusal(&self, agent: Option<&str>, job: Option<&str>) -> Option<Refusal> {
        self.state.read().refusal(agent, job)
    }

    pub fn snapshot(&self) -> ControlState {
        self.state.read().clone()
    }

    /// Makes the flag files match the state (at start: a flag left by a
    /// decision made while the daemon was down, or removed by hand).
    pub fn sync_flags(&self) {
        let st = self.snapshot();
        if let Err(e) = crate::cli::control::sync_flags(&self.dir, &st) {
            tracing::error!(error = %crate::cli::error::chain_text(&e), "cannot bring the kill-switch flag files in line with the log");
        }
        gauges(&st);
    }

    /// Folds one committed entry (called by the feed thread, in seq order).
    pub fn observe(&self, v: &EntryView<'_>) {
        if v.kind == RULES_KIND {
            return self.observe_rules(v);
        }
        if !KINDS.contains(&v.kind) {
            return;
        }
        let Ok(registry) = crate::registry::builtin() else {
            return;
        };
        let a = admit(registry, v);
        if a.refused.is_some() {
            tracing::warn!(
                seq = v.seq,
                kind = v.kind,
                actor = v.actor,
                "a kill-switch entry from a class that may not write it: ignored"
            );
            return;
        }
        let ev = admit::event(v, 0, &a.payload);
        let (changed, fresh) = {
            let mut st = self.state.write();
            let before = (st.hard_kill.is_some(), st.lockdown.is_some());
            let changed = st.apply(&ev);
            let fresh =
                (!before.0 && st.hard_kill.is_some()) || (!before.1 && st.lockdown.is_some());
            (changed, fresh)
        };
        if !changed {
            return;
        }
        tracing::warn!(
            seq = v.seq,
            kind = v.kind,
            actor = v.actor,
            "kill switch changed"
        );
        self.sync_flags();
        if fresh {
            self.run_hook(crate::server::feed::line(v, crate::cli::Format::Json));
        }
    }

    /// Runs the hook command with the decision (one JSON line) on stdin, on
    /// its own thread: a slow hook never delays the feed.
    fn run_hook(&self, decision: String) {
        let Some(argv) = self.hook.clone() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("argusd-hook".into())
            .spawn(move || run_hook(&argv, &decision));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the kill-switch hook thread");
        }
    }
}

fn run_hook(argv: &[String], decision: &str) {
    let Some((prog, args)) = argv.split_first() else {
        return;
    };
    let child = std::process::Command::new(prog)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(hook = %prog, error = %e, "the kill-switch hook could not start");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(decision.as_bytes());
        let _ = stdin.write_all(b"\n");
    }
    let started = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    tracing::info!(hook = %prog, "kill-switch hook ran");
                } else {
                    tracing::error!(hook = %prog, %status, "kill-switch hook failed");
                }
                return;
            }
            Ok(None) if started.elapsed() > HOOK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::error!(hook = %prog, "kill-switch hook timed out and was killed");
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                tracing::error!(hook = %prog, error = %e, "waiting for the kill-switch hook");
                return;
            }
        }
    }
}

fn gauges(st: &ControlState) {
    metrics::gauge!("argus_kill_switch", "kind" => "hard_kill").set(if st.hard_kill.is_some() {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("argus_kill_switch", "kind" => "lockdown").set(if st.lockdown.is_some() {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("argus_kill_switch", "kind" => "soft_kill").set(st.soft_kills.len() as f64);
}

/// The control state at start, from the projections already caught up.
pub fn initial(shared: &crate::cli::context::SharedState) -> anyhow::Result<ControlState> {
    let (_reader, p, _size): (LogReader, _, u64) = shared.read_caught_up()?;
    Ok(p.with_view(
        crate::projections::control::NAME,
        crate::projections::control::current,
    )?)
}
