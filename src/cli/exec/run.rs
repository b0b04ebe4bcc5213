//! Running the command: its own process group, its limits, the wait, and
//! what stops it early (the wall clock, a kill recorded while it runs, a
//! signal to argusctl itself).
use super::sys::{self, Usage};
use crate::log::control_flags::{self, Flag, OnDisk};
use crate::log::follow::Follower;
use crate::log::reader::LogReader;
use crate::projections::admit;
use crate::projections::control::ControlState;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How often the kill switches are looked at while the command runs.
pub const POLL: Duration = Duration::from_millis(100);

/// What the parent enforces (`--cpu-s` is the kernel's, set at `prepare`).
pub struct Limits {
    pub wall_s: Option<u64>,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Why the command was stopped before it ended by itself.
#[derive(Debug, Clone)]
pub enum Stop {
    Wall {
        secs: u64,
    },
    /// A hard kill, or a soft kill of this job or agent (`what` says which).
    Kill {
        what: String,
        seq: u64,
        reason: String,
    },
    /// argusctl itself was told to stop; the signal went on to the command.
    Signal(Signal),
}

pub struct Ended {
    pub status: ExitStatus,
    pub usage: Usage,
    pub duration: Duration,
    pub stop: Option<Stop>,
    /// How it was stopped ("SIGTERM to the process group", ...), if it was.
    pub how: String,
}

enum Msg {
    /// The command was `exec`ed (pid), or could not be.
    Started(std::io::Result<u32>),
    Exited(std::io::Result<(ExitStatus, Usage)>),
    Signal(Signal),
}

/// A child forked at once and held before `exec` until `run` releases it
/// (see `sys::confine`). Dropping it unreleased cancels it: the child
/// returns from the gate without running anything.
pub struct Prepared {
    go: std::io::PipeWriter,
    sandboxed: bool,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
}

/// Forks the child for `cmd` in a process group of its own, with its
/// limits, held at the gate. The forking thread stays to reap it.
pub fn prepare(mut cmd: Command, cpu_s: Option<u64>, sandboxed: bool) -> std::io::Result<Prepared> {
    let (gate_r, go) = std::io::pipe()?;
    cmd.process_group(0);
    sys::confine(
        &mut cmd,
        cpu_s,
        sandboxed,
        sys::Gate {
            read_fd: gate_r.as_raw_fd(),
            write_fd: go.as_raw_fd(),
        },
    );
    let (tx, rx) = mpsc::channel();
    let to_main = tx.clone();
    std::thread::spawn(move || {
        let spawned = cmd.spawn();
        drop(gate_r);
        match spawned {
            Ok(child) => {
                let pid = child.id();
                // Reaped by `sys::wait`, never through `child` (whose drop
                // neither waits nor kills).
                drop(child);
                let _ = to_main.send(Msg::Started(Ok(pid)));
                let _ = to_main.send(Msg::Exited(sys::wait(pid)));
            }
            Err(e) => {
                let _ = to_main.send(Msg::Started(Err(e)));
            }
        }
    });
    Ok(Prepared {
        go,
        sandboxed,
        tx,
        rx,
    })
}

impl Prepared {
    /// Releases the child and waits for it, polling `watch` every `POLL`.
    /// `Err` only when it could not start.
    pub fn run(self, limits: &Limits, watch: &mut Watch) -> std::io::Result<Ended> {
        let Prepared {
            mut go,
            sandboxed,
            tx,
            rx,
        } = self;
        if let Err(e) = forward_signals(tx) {
            crate::cli::eprint(&format!(
                "argusctl exec: warning: cannot watch for SIGINT/SIGTERM/SIGHUP ({e}); a signal to argusctl will not reach the command"
            ));
        }
        let start = Instant::now();
        go.write_all(b"g")?;
        drop(go);
        let mut early_signal = None;
        let pid = loop {
            match rx.recv() {
                Ok(Msg::Started(r)) => break r?,
                Ok(Msg::Signal(s)) => early_signal = Some(s),
                Ok(Msg::Exited(_)) | Err(_) => {
                    return Err(std::io::Error::other("lost the child's waiter"))
                }
            }
        };
        let group = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
        let deadline = limits
            .wall_s
            .map(|s| start + Duration::from_secs(s.min(u64::from(u32::MAX))));
        let (result, stop, how) = loop {
            let mut wait = POLL;
            if let Some(d) = deadline {
                wait = wait.min(d.saturating_duration_since(Instant::now()));
            }
            let msg = match early_signal.take() {
                Some(s) => Ok(Msg::Signal(s)),
                None => rx.recv_timeout(wait),
            };
            let stop = match msg {
                Ok(Msg::Exited(r)) => break (r, None, String::new()),
                Ok(Msg::Started(_)) => None,
                Ok(Msg::Signal(s)) => Some((Stop::Signal(s), s)),
                Err(RecvTimeoutError::Timeout) => {
                    let wall = match (deadline, limits.wall_s) {
                        (Some(d), Some(secs)) if Instant::now() >= d => Some(Stop::Wall { secs }),
                        _ => None,
                    };
                    wall.or_else(|| watch.poll()).map(|k| (k, Signal::SIGTERM))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    break (
                        Err(std::io::Error::other("lost the child's waiter")),
                        None,
                        String::new(),
                    )
                }
            };
            if let Some((why, sig)) = stop {
                let (r, how) = if sandboxed {
                    stop_sandboxed(pid, group, &rx)
                } else {
                    terminate(group, sig, limits.grace, &rx)
                };
                break (r, Some(why), how);
            }
        };
        let duration = start.elapsed();
        // Whatever the command left running in its group goes with it: no
        // process outlives the record of the call that started it.
        let _ = killpg(group, Signal::SIGKILL);
        let (status, usage) = result?;
        Ok(Ended {
            status,
            usage,
            duration,
            stop,
            how,
        })
    }
}

type Reaped = std::io::Result<(ExitStatus, Usage)>;

/// `first` to the group, then SIGKILL once `grace` passes (or at once on a
/// second signal to argusctl); waits for the child either way, and says
/// what it sent.
fn terminate(group: Pid, first: Signal, grace: Duration, rx: &Receiver<Msg>) -> (Reaped, String) {
    let only_first = format!("{first} to the process group");
    let then_kill = if first == Signal::SIGKILL {
        only_first.clone()
    } else {
        format!("{only_first}, SIGKILL after the grace period")
    };
    let _ = killpg(group, first);
    if !grace.is_zero() {
        match rx.recv_timeout(grace) {
            Ok(Msg::Exited(r)) => return (r, only_first),
            // A second signal to argusctl cuts the grace short.
            Ok(Msg::Signal(_) | Msg::Started(_)) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return (
                    Err(std::io::Error::other("lost the child's waiter")),
                    only_first,
                )
            }
        }
    }
    let _ = killpg(group, Signal::SIGKILL);
    loop {
        match rx.recv() {
            Ok(Msg::Exited(r)) => return (r, then_kill),
            Ok(Msg::Signal(_) | Msg::Started(_)) => {}
            Err(_) => {
                return (
                    Err(std::io::Error::other("lost the child's waiter")),
                    then_kill,
                )
            }
        }
    }
}

/// Stops a sandboxed command. It is its namespace's pid 1, which ignores
/// SIGTERM unless it handles it, and bwrap (our child) passes no signal
/// on: killing bwrap would leave the command to `--die-with-parent`, and
/// its usage unreaped. So the command itself gets SIGKILL at once; bwrap
/// reaps it (its rusage reaches us) and exits. If the command cannot be
/// found, bwrap's group is stopped instead.
fn stop_sandboxed(bwrap: u32, group: Pid, rx: &Receiver<Msg>) -> (Reaped, String) {
    let children =
        std::fs::read_to_string(format!("/proc/{bwrap}/task/{bwrap}/children")).unwrap_or_default();
    let mut sent = false;
    for c in children
        .split_whitespace()
        .filter_map(|c| c.parse::<i32>().ok())
    {
        sent |= nix::sys::signal::kill(Pid::from_raw(c), Signal::SIGKILL).is_ok();
    }
    if !sent {
        return terminate(group, Signal::SIGKILL, Duration::ZERO, rx);
    }
    match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Msg::Exited(r)) => (r, "SIGKILL to the sandboxed command".into()),
        _ => terminate(group, Signal::SIGKILL, Duration::ZERO, rx),
    }
}

/// SIGINT, SIGTERM and SIGHUP to argusctl become messages, so the command
/// is stopped and the outcome recorded instead of argusctl dying alone.
fn forward_signals(tx: Sender<Msg>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut int, mut term, mut hup) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ))
    })?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            loop {
                let s = tokio::select! {
                    _ = int.recv() => Signal::SIGINT,
                    _ = term.recv() => Signal::SIGTERM,
                    _ = hup.recv() => Signal::SIGHUP,
                };
                if tx.send(Msg::Signal(s)).is_err() {
                    break;
                }
            }
        })
    });
    Ok(())
}

/// The kill switches while the command runs: the hard-kill flag file, and
/// every decision sealed in the log since the checks (folded as the
/// control projection folds them, so a soft kill of this job or agent is
/// seen too). Reading needs no lock; nothing here writes.
pub struct Watch {
    dir: PathBuf,
    agent: String,
    job: String,
    follower: Option<Follower>,
    ctl: ControlState,
}

impl Watch {
    /// Watches from log size `from` (what the checks already judged).
    pub fn new(dir: &Path, from: u64, agent: &str, job: &str) -> Self {
        let follower = LogReader::open(dir)
            .and_then(|r| Follower::new(&r, from))
            .map_err(|e| {
                crate::cli::eprint(&format!(
                    "argusctl exec: warning: cannot follow the log ({e}); only {} is watched while the command runs",
                    Flag::HardKill.file_name()
                ))
            })
            .ok();
        Self {
            dir: dir.to_path_buf(),
            agent: agent.to_string(),
            job: job.to_string(),
            follower,
            ctl: ControlState::default(),
        }
    }

    /// A kill that stops the command, if one stands now.
    pub fn poll(&mut self) -> Option<Stop> {
        if let OnDisk::Record(r) = control_flags::read(&self.dir, Flag::HardKill) {
            return Some(Stop::Kill {
                what: "hard kill".into(),
                seq: r.seq,
                reason: r.reason,
            });
        }
        let registry = crate::registry::builtin().ok()?;
        let follower = self.follower.as_mut()?;
        let ctl = &mut self.ctl;
        let polled = follower.poll(|v| {
            if !matches!(
                v.kind,
                "kill.hard" | "kill.soft" | "kill.released" | "lockdown.set" | "lockdown.released"
            ) {
                return;
            }
            let a = admit::admit(registry, v);
            if a.refused.is_none() {
                ctl.apply(&admit::event(v, v.ts_ns, &a.payload));
            }
        });
        if let Err(e) = polled {
            crate::cli::eprint(&format!(
                "argusctl exec: warning: stopped following the log ({e}); only {} is watched now",
                Flag::HardKill.file_name()
            ));
            self.follower = None;
        }
        if let Some(s) = &self.ctl.hard_kill {
            return Some(Stop::Kill {
                what: "hard kill".into(),
                seq: s.seq,
                reason: s.reason.clone(),
            });
        }
        self.ctl
            .soft_kills
            .iter()
            .find(|k| match k.scope {
                crate::projections::control::Scope::Job => k.target == self.job,
                crate::projections::control::Scope::Agent => k.target == self.agent,
            })
            .map(|k| Stop::Kill {
                what: format!("soft kill of {} {}", k.scope.as_str(), k.target),
                seq: k.stand.seq,
                reason: k.stand.reason.clone(),
            })
    }
}
