//! `argusctl exec`: the governed tool executor. Every command an agent runs
//! goes through it: checked against the kill switches, policy and the
//! tool's circuit breaker, recorded before it starts and after it ends,
//! limited in CPU and wall-clock time, optionally sandboxed, and stopped by
//! a kill recorded while it runs.
//!
//! - `checks`: may the call start (and the refusal's record);
//! - `sanitize`: what of the command line may be stored;
//! - `sandbox`: bubblewrap, probed before use;
//! - `run`: process group, limits, the wait, the kill watch;
//! - `record`: the call's entries, locally or through argusd;
//! - `sys`: `pre_exec` limits and `wait4` (the module's only `unsafe`).
//!
//! exec never runs inside argusd (`server::commands::access` refuses it):
//! the command runs where argusctl runs; only the checks and the entries
//! go through the daemon when one serves the log.
mod checks;
mod record;
mod run;
pub mod sandbox;
pub mod sanitize;
#[allow(unsafe_code)]
mod sys;

use crate::cli::remote::Remote;
use crate::cli::{args, eprint};
use crate::projections::policy::check::Request;
use anyhow::{bail, Context, Result};
use record::{Call, Sink};
use run::{Ended, Limits, Stop};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Argus could not check or record the call: nothing ran, or the outcome
/// of what ran is not on record (stderr says which).
pub const EXIT_ARGUS: i32 = 119;
/// Refused: a hard kill, a write lockdown, or a soft kill of this job or agent stands.
pub const EXIT_KILLED_BEFORE: i32 = 120;
/// Refused by policy (budget, rate limit, allowlist, safety).
pub const EXIT_POLICY: i32 = 121;
/// Refused: the tool's circuit breaker does not allow a call.
pub const EXIT_BREAKER: i32 = 122;
/// `--sandbox` was asked and bubblewrap cannot provide it.
pub const EXIT_NO_SANDBOX: i32 = 123;
/// Stopped by a kill recorded while the command ran.
pub const EXIT_KILLED: i32 = 124;
/// Stopped at `--wall-s`.
pub const EXIT_WALL: i32 = 125;
/// The command could not be started.
pub const EXIT_NOT_STARTED: i32 = 126;

/// `--cpu-s` and `--wall-s`: a second to a year.
const LIMIT_S: std::ops::RangeInclusive<u64> = 1..=366 * 86_400;
/// `--grace-s`: none to an hour.
const GRACE_S: std::ops::RangeInclusive<u64> = 0..=3600;

pub const AFTER_HELP: &str = "\
Before CMD runs, in this order: the kill switches (a standing hard kill or write lockdown,
or a soft kill of this job or agent: `argusctl control`), policy (what `argusctl policy check
DIR --agent A --tool T --job J` decides: budgets, rate limits, allowlists), and the tool's
circuit breaker (what `argusctl breakers DIR --check T` says). A refusal is recorded as a
policy.denied entry (reason naming the decision's seq) and nothing runs.

Then tool.call_started is recorded (call_id, command, args with anything that looks like a
secret replaced by [REDACTED], args_blake3 = BLAKE3 of the real argv joined by NUL bytes,
sandbox, limits), CMD runs with this terminal's stdin, stdout and stderr in a process group
of its own, and tool.call_completed (exit 0) or tool.call_failed records exit_code,
duration_ms, cpu_ms and peak_rss_kb (the child's rusage) with parent = the started entry.
A hard kill, or a soft kill of this job or agent, recorded while CMD runs stops it: SIGTERM
to its group, SIGKILL after --grace-s (a sandboxed CMD, its namespace's pid 1, gets SIGKILL
at once). So do --wall-s and a SIGINT/SIGTERM/SIGHUP to argusctl. Whatever CMD leaves running in its group is killed when it exits. argusctl's own
messages go to stderr. While argusd serves DIR, the checks and the entries go through it
(through argusd only policy's refusals are recorded).

--sandbox runs CMD under bubblewrap (/usr/bin/bwrap, or $ARGUS_BWRAP): all namespaces
unshared (no network but an isolated loopback), / read-only, private /dev, /proc and /tmp,
and only --workspace (default: the current directory) writable, also the working directory.
bwrap is probed first; if it is missing or cannot create namespaces the call is refused (123).

Exit codes:
  119  Argus could not check or record the call (nothing ran, or the outcome is not recorded)
  120  refused: a hard kill, write lockdown or soft kill stands
  121  refused by policy
  122  refused: the tool's circuit breaker is open
  123  --sandbox asked, bubblewrap unavailable
  124  stopped by a kill recorded while CMD ran
  125  stopped at --wall-s
  126  CMD could not be started
  else CMD's own exit status; 128+N when CMD died of signal N (--cpu-s: 152 = SIGXCPU,
       137 = SIGKILL, which is what a sandboxed command gets)

Examples:
  argusctl exec ./audit --job job-7f3a --agent coder -- git status
  argusctl exec ./audit --job job-7f3a --agent coder --tool http.get --wall-s 30 -- curl -sS https://docs.rs
  argusctl exec ./audit --job job-7f3a --agent coder --sandbox --workspace ./repo --cpu-s 300 -- make test
  argusctl exec ./audit --job job-7f3a --agent deployer -- deploy --token \"$T\"   # stored as --token [REDACTED]";

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    pub dir: PathBuf,
    /// The job (run) the call belongs to: the entries' job_id, per-run budgets, soft kills.
    #[arg(long)]
    pub job: String,
    /// The agent making the call: policies, rate limits, soft kills.
    #[arg(long)]
    pub agent: String,
    /// Tool name for policy, rate limits and the breaker (default: CMD's file name).
    #[arg(long)]
    pub tool: Option<String>,
    /// Run CMD under bubblewrap: no network, read-only root, only --workspace writable.
    #[arg(long)]
    pub sandbox: bool,
    /// CPU seconds CMD (and what it starts) may use: RLIMIT_CPU, SIGXCPU then SIGKILL (1..=31622400).
    #[arg(long = "cpu-s", value_name = "SECONDS", value_parser = args::u64_in(LIMIT_S))]
    pub cpu_s: Option<u64>,
    /// Wall-clock seconds before CMD's group gets SIGTERM, then SIGKILL after --grace-s (1..=31622400).
    #[arg(long = "wall-s", value_name = "SECONDS", value_parser = args::u64_in(LIMIT_S))]
    pub wall_s: Option<u64>,
    /// The one writable directory in the sandbox, and CMD's working directory (default: the current one).
    #[arg(long, value_name = "PATH", requires = "sandbox")]
    pub workspace: Option<PathBuf>,
    /// Seconds between SIGTERM and SIGKILL when CMD is stopped (0..=3600; not used with --sandbox).
    #[arg(long = "grace-s", value_name = "SECONDS", default_value_t = 5, value_parser = args::u64_in(GRACE_S))]
    pub grace_s: u64,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub argv: Vec<OsString>,
}

/// Runs `exec`; `remote` is the argusd serving DIR, if any.
pub fn run(a: ExecArgs, remote: Option<Remote>) -> Result<i32> {
    if crate::cli::context::shared().is_some() {
        bail!("exec runs commands where argusctl runs, never inside argusd");
    }
    match execute(&a, remote) {
        Ok(code) => Ok(code),
        Err(e) => {
            eprint(&format!(
                "argusctl exec: {}; nothing ran",
                crate::cli::error::chain_text(&e)
            ));
            Ok(EXIT_ARGUS)
        }
    }
}

/// The default tool name: CMD's file name.
fn tool_name(a: &ExecArgs) -> Result<String> {
    if let Some(t) = &a.tool {
        return Ok(t.clone());
    }
    let prog = a.argv.first().context("no command given after --")?;
    let base = Path::new(prog)
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(base)
}

fn execute(a: &ExecArgs, remote: Option<Remote>) -> Result<i32> {
    let (prog, rest) = a.argv.split_first().context("no command given after --")?;
    let tool = tool_name(a)?;
    if a.agent.is_empty() || a.job.is_empty() || tool.is_empty() {
        bail!("--agent, --job and the tool name must not be empty");
    }
    let req = Request {
        agent: &a.agent,
        tool: &tool,
        cost_usd: 0.0,
        domain: None,
        job: Some(&a.job),
        action: None,
    };
    // The child is forked now, while argusctl is small (its ru_maxrss
    // then measures the command, not a copy of argusctl), and held before
    // exec until the checks pass and the call is recorded; dropped, it
    // runs nothing.
    let plan = if a.sandbox {
        let bwrap = sandbox::bwrap_path();
        sandbox::workspace(a.workspace.as_deref())
            .map(|ws| (sandbox::command(&bwrap, &ws, &a.argv), Some((bwrap, ws))))
    } else {
        let mut c = std::process::Command::new(prog);
        c.args(rest);
        Ok((c, None))
    };
    let (prepared, sandbox) = match plan {
        Ok((cmd, sb)) => (
            Some(run::prepare(cmd, a.cpu_s, a.sandbox).context("preparing the child")?),
            Ok(sb),
        ),
        Err(why) => (None, Err(why)),
    };
    let verdict = match &remote {
        Some(r) => checks::remote(r, &a.dir, &req)?,
        None => checks::local(&a.dir, &req)?,
    };
    let size = match verdict {
        Ok(size) => size,
        Err(r) => return Ok(refused(&r, remote.is_some())),
    };
    let sandbox = match sandbox.and_then(|sb| match sb {
        Some((bwrap, ws)) => sandbox::probe(&bwrap).map(|_| Some((bwrap, ws))),
        None => Ok(None),
    }) {
        Ok(s) => s,
        Err(reason) => {
            let reason = format!("sandbox unavailable: {reason}");
            let seq = match remote {
                Some(_) => None,
                None => Some(crate::cli::policy::record_refusal(
                    &a.dir, "exec", &req, &reason, None, None,
                )?),
            };
            let r = checks::Refusal {
                code: EXIT_NO_SANDBOX,
                reason,
                retry_after_s: None,
                policy_id: None,
                recorded_seq: seq,
            };
            return Ok(refused(&r, seq.is_none()));
        }
    };
    let prepared = prepared.context("no child was prepared")?;
    let sink = match remote {
        Some(r) => Sink::Remote(r),
        None => Sink::Local(a.dir.clone()),
    };
    let call = Call {
        job: &a.job,
        agent: &a.agent,
    };
    let call_id = call_id()?;
    let started = started_payload(a, &tool, &call_id, sandbox.as_ref().map(|s| &s.1));
    let started_seq = sink.append(&call, "tool.call_started", None, started)?;
    let limits = Limits {
        wall_s: a.wall_s,
        grace: Duration::from_secs(a.grace_s),
    };
    let mut base = json!({"tool": tool, "call_id": call_id});
    let finish = |kind: &str, payload: Value, code: i32, note: Option<String>| -> i32 {
        if let Some(n) = &note {
            eprint(&format!("argusctl exec: {n}"));
        }
        match sink.append(&call, kind, Some(started_seq), payload) {
            Ok(_) => code,
            Err(e) => {
                eprint(&format!("argusctl exec: the command's outcome (exit {code}) could not be recorded (tool.call_started is seq {started_seq}): {}", crate::cli::error::chain_text(&e)));
                EXIT_ARGUS
            }
        }
    };
    if let Some((_, ws)) = &sandbox {
        if let Err(why) = sandbox::resolve(prog, ws) {
            drop(prepared);
            base["error"] = format!("could not start: {why}").into();
            base["outcome"] = "not_started".into();
            let note = base["error"].as_str().map(str::to_string);
            return Ok(finish("tool.call_failed", base, EXIT_NOT_STARTED, note));
        }
    }
    let mut watch = run::Watch::new(&a.dir, size, &a.agent, &a.job);
    let ended = match prepared.run(&limits, &mut watch) {
        Ok(e) => e,
        Err(e) => {
            base["error"] = format!("could not start {}: {e}", prog.to_string_lossy()).into();
            base["outcome"] = "not_started".into();
            let note = base["error"].as_str().map(str::to_string);
            return Ok(finish("tool.call_failed", base, EXIT_NOT_STARTED, note));
        }
    };
    let o = outcome(&ended, a.cpu_s, sandbox.is_some());
    if let (Some(m), Value::Object(b)) = (base.as_object_mut(), o.fields) {
        m.extend(b);
    }
    let kind = if o.error.is_none() {
        "tool.call_completed"
    } else {
        "tool.call_failed"
    };
    let note = o
        .error
        .as_ref()
        .filter(|_| ended.stop.is_some() || o.outcome == "cpu_limit")
        .cloned();
    if let Some(e) = o.error {
        base["error"] = e.into();
    }
    base["outcome"] = o.outcome.into();
    Ok(finish(kind, base, o.exit, note))
}

/// Prints a refusal and returns its exit code.
fn refused(r: &checks::Refusal, through_daemon: bool) -> i32 {
    let retry = r
        .retry_after_s
        .map(|s| format!(" (retry after {s} s)"))
        .unwrap_or_default();
    let recorded = match r.recorded_seq {
        Some(seq) => format!("; recorded as policy.denied seq {seq}"),
        None if through_daemon => {
            "; not recorded (through argusd only policy check records a denial)".into()
        }
        None => String::new(),
    };
    eprint(&format!(
        "argusctl exec: refused (exit {}): {}{retry}{recorded}",
        r.code, r.reason
    ));
    r.code
}

fn call_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random call_id: {e}"))?;
    Ok(hex::encode(b))
}

/// BLAKE3 of the whole argument vector (CMD and ARGS), joined by NUL bytes.
pub fn args_blake3(argv: &[OsString]) -> String {
    let mut h = blake3::Hasher::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            h.update(&[0]);
        }
        h.update(a.as_bytes());
    }
    h.finalize().to_hex().to_string()
}

fn started_payload(a: &ExecArgs, tool: &str, call_id: &str, ws: Option<&PathBuf>) -> Value {
    let lossy: Vec<String> = a
        .argv
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let command = lossy.first().map(|c| sanitize::scrub(c).0);
    let s = sanitize::sanitize(lossy.get(1..).unwrap_or_default());
    let mut p = json!({
        "tool": tool,
        "call_id": call_id,
        "command": command,
        "args": s.args,
        "args_blake3": args_blake3(&a.argv),
        "args_redacted": s.redactions,
        "sandbox": a.sandbox,
        "limits": {"cpu_s": a.cpu_s, "wall_s": a.wall_s, "grace_s": a.grace_s},
    });
    if s.args_dropped > 0 {
        p["args_dropped"] = s.args_dropped.into();
    }
    if let Ok(cwd) = std::env::current_dir() {
        p["cwd"] = sanitize::scrub(&cwd.to_string_lossy()).0.into();
    }
    if let Some(ws) = ws {
        p["workspace"] = ws.to_string_lossy().into_owned().into();
    }
    p
}

struct Outcome {
    /// `exited`, `signaled`, `cpu_limit`, `wall_limit`, `killed`, `interrupted`.
    outcome: &'static str,
    error: Option<String>,
    exit: i32,
    /// exit_code, signal, duration_ms, cpu_ms, peak_rss_kb.
    fields: Value,
}

fn signal_name(n: i32) -> String {
    nix::sys::signal::Signal::try_from(n)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {n}"))
}

fn outcome(e: &Ended, cpu_s: Option<u64>, sandboxed: bool) -> Outcome {
    let signal = e.status.signal();
    // The child's own status: its exit code, or 128 + the signal that ended
    // it (bwrap reports a sandboxed command's death by signal that way).
    let code = e
        .status
        .code()
        .or(signal.map(|s| 128 + s))
        .unwrap_or(EXIT_ARGUS);
    let died_of = signal.or_else(|| (sandboxed && (129..=192).contains(&code)).then(|| code - 128));
    let mut fields = json!({
        "exit_code": code,
        "duration_ms": u64::try_from(e.duration.as_millis()).unwrap_or(u64::MAX),
        "cpu_ms": e.usage.cpu_ms,
        "peak_rss_kb": e.usage.peak_rss_kb,
    });
    if let Some(s) = signal {
        fields["signal"] = signal_name(s).into();
    }
    let (outcome, error, exit) = match &e.stop {
        Some(Stop::Wall { secs }) => (
            "wall_limit",
            Some(format!("wall-clock limit of {secs} s reached ({})", e.how)),
            EXIT_WALL,
        ),
        Some(Stop::Kill { what, seq, reason }) => (
            "killed",
            Some(format!(
                "terminated by {what} seq {seq}: {reason} ({})",
                e.how
            )),
            EXIT_KILLED,
        ),
        Some(Stop::Signal(s)) => (
            "interrupted",
            Some(format!("interrupted: argusctl received {s} ({})", e.how)),
            128 + *s as i32,
        ),
        None if e.status.success() => ("exited", None, 0),
        None => {
            let cpu_hit = cpu_s.is_some_and(|limit| {
                died_of == Some(libc::SIGXCPU)
                    || (died_of == Some(libc::SIGKILL)
                        && e.usage.cpu_ms >= limit.saturating_mul(1000))
            });
            match (cpu_hit, died_of) {
                (true, Some(s)) => (
                    "cpu_limit",
                    Some(format!(
                        "cpu limit of {} s reached (RLIMIT_CPU): killed by {}",
                        cpu_s.unwrap_or_default(),
                        signal_name(s)
                    )),
                    code,
                ),
                (_, Some(s)) if signal.is_some() => (
                    "signaled",
                    Some(format!("killed by {}", signal_name(s))),
                    code,
                ),
                _ => ("exited", Some(format!("exited with status {code}")), code),
            }
        }
    };
    Outcome {
        outcome,
        error,
        exit,
        fields,
    }
}
