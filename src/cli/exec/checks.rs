//! May this call start? The kill switches, then policy, then the tool's
//! circuit breaker, judged as `control`, `policy check` and `breakers
//! --check` judge them: locally over this process's projections, or through
//! argusd by running those very commands there.
use super::{EXIT_BREAKER, EXIT_KILLED_BEFORE, EXIT_POLICY};
use crate::cli::remote::{self, Remote};
use crate::cli::{self, state};
use crate::log::control_flags::{self, Flag, OnDisk};
use crate::projections::control::{self, ControlState};
use crate::projections::policy::check::Request;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::Path;

/// Why the call may not start.
#[derive(Debug)]
pub struct Refusal {
    /// The exit code that says which check refused.
    pub code: i32,
    pub reason: String,
    pub retry_after_s: Option<u64>,
    pub policy_id: Option<String>,
    /// The `policy.denied` entry, when the refusal is already on record.
    pub recorded_seq: Option<u64>,
}

impl Refusal {
    fn new(code: i32, reason: String, retry_after_s: Option<u64>) -> Self {
        Self {
            code,
            reason,
            retry_after_s,
            policy_id: None,
            recorded_seq: None,
        }
    }
}

/// The outcome of the checks: refused, or cleared at a log size (entries
/// from there on are watched while the command runs).
pub type Verdict = std::result::Result<u64, Refusal>;

fn stands(what: &str, seq: u64, reason: &str) -> String {
    format!("{what} stands (seq {seq}): {reason}")
}

/// A standing kill or lockdown that refuses `agent`/`job`, named by seq.
pub fn kill_refusal(ctl: &ControlState, agent: &str, job: &str) -> Option<String> {
    let r = ctl.refusal(Some(agent), Some(job))?;
    Some(match r.what {
        "hard_kill" => stands("hard kill", r.seq, &r.reason),
        "lockdown" => stands("write lockdown", r.seq, &r.reason),
        _ => {
            let scope = ctl
                .soft_kills
                .iter()
                .find(|k| k.stand.seq == r.seq)
                .map(|k| format!(" of {} {}", k.scope.as_str(), k.target))
                .unwrap_or_default();
            stands(&format!("soft kill{scope}"), r.seq, &r.reason)
        }
    })
}

/// The hard-kill flag, when it names a decision the log does not (yet)
/// show: the flag is the mirror tools without the log obey, so exec obeys
/// it too (fail closed); `argusctl control` reports the difference.
pub fn flag_refusal(dir: &Path) -> Option<String> {
    match control_flags::read(dir, Flag::HardKill) {
        OnDisk::Record(r) => Some(format!(
            "hard kill stands (seq {}, by {}): {} [DIR/control/{}]",
            r.seq,
            r.actor,
            r.reason,
            Flag::HardKill.file_name()
        )),
        OnDisk::Absent | OnDisk::Foreign(_) => None,
    }
}

/// The checks over this process's projections; a refusal is recorded as a
/// `policy.denied` entry (the policy's own through `policy::record_denial`).
pub fn local(dir: &Path, req: &Request<'_>) -> Result<Verdict> {
    let st = state::open(dir)?;
    let now_ns = state::now_ns(&st)?;
    let ctl = st.projections.with_view(control::NAME, control::current)?;
    let refusal = match kill_refusal(&ctl, req.agent, req.job.unwrap_or_default())
        .or_else(|| flag_refusal(dir))
    {
        Some(reason) => Some(Refusal::new(EXIT_KILLED_BEFORE, reason, None)),
        None => match cli::policy::judge(&st, req, now_ns)?.denial {
            Some(d) => Some(Refusal {
                code: EXIT_POLICY,
                reason: d.reason,
                retry_after_s: d.retry_after_s,
                policy_id: Some(d.policy_id),
                recorded_seq: None,
            }),
            None => breaker_refusal(&st, req.tool, now_ns)?,
        },
    };
    let size = st.size;
    // The projection store is released before anything is written or run.
    drop(st);
    let Some(mut r) = refusal else {
        return Ok(Ok(size));
    };
    let seq = cli::policy::record_refusal(
        dir,
        "exec",
        req,
        &r.reason,
        r.retry_after_s,
        r.policy_id.as_deref(),
    )?;
    r.recorded_seq = Some(seq);
    Ok(Err(r))
}

fn breaker_refusal(st: &state::State, tool: &str, now_ns: u64) -> Result<Option<Refusal>> {
    let j = cli::breakers::judge(st, tool, now_ns)?;
    if j.allow {
        return Ok(None);
    }
    let next = j.now.as_ref().and_then(|b| b.next_probe_ns(&j.cfg));
    let retry = next.map(|n| n.saturating_sub(now_ns).div_ceil(1_000_000_000));
    let opened = j.now.as_ref().and_then(|b| b.opened_seq);
    Ok(Some(Refusal::new(
        EXIT_BREAKER,
        breaker_reason(
            tool,
            j.state.as_str(),
            opened,
            next.map(cli::rfc3339_ns),
            j.cfg.fallback.as_deref(),
        ),
        retry,
    )))
}

fn breaker_reason(
    tool: &str,
    state: &str,
    opened_seq: Option<u64>,
    next_probe: Option<String>,
    fallback: Option<&str>,
) -> String {
    let mut s = format!("circuit breaker for {tool} is {state}");
    if let Some(seq) = opened_seq {
        s.push_str(&format!(" (opened at seq {seq})"));
    }
    if let Some(t) = next_probe {
        s.push_str(&format!("; next probe at {t}"));
    }
    match fallback {
        Some(f) => s.push_str(&format!("; fallback: {f}")),
        None => s.push_str("; no fallback configured"),
    }
    s
}

/// One argusctl command run inside argusd: its exit code and output.
fn in_daemon(r: &Remote, argv: &[&str]) -> Result<(i32, Vec<u8>)> {
    let body = serde_json::to_vec(&json!({ "argv": argv, "stdin": null }))?;
    let a = r.call("POST", "/v1/argusctl", Some(("application/json", body)))?;
    if a.status != 200 {
        bail!(
            "argusd refused `{}`: {}",
            argv.first().copied().unwrap_or_default(),
            remote::error_message(&a.body)
        );
    }
    Ok((a.exit.unwrap_or(0), a.body))
}

fn json_of(body: &[u8], what: &str) -> Result<Value> {
    serde_json::from_slice(body).with_context(|| format!("argusd's answer to {what}"))
}

/// The log's size as argusd sees it.
pub fn remote_size(r: &Remote) -> Result<u64> {
    let a = r.call("GET", "/v1/health", None)?;
    let v = json_of(&a.body, "/v1/health")?;
    v["entries"]
        .as_u64()
        .context("argusd's health answer names no entry count")
}

/// The checks through argusd. `policy check` is the one command the daemon
/// runs for any caller that writes a `policy.denied`, and it answers a
/// standing kill switch first, so a kill's or the policy's refusal is
/// recorded there; a breaker's refusal is printed and exits with its code,
/// unrecorded.
pub fn remote(r: &Remote, dir: &Path, req: &Request<'_>) -> Result<Verdict> {
    let size = remote_size(r)?;
    let d = dir.to_string_lossy();
    let job = req.job.unwrap_or_default();
    let mut argv = vec![
        "policy", "check", &d, "--agent", req.agent, "--tool", req.tool, "-o", "json",
    ];
    if let Some(j) = req.job {
        argv.extend(["--job", j]);
    }
    let (code, body) = in_daemon(r, &argv)?;
    match code {
        0 => {}
        cli::policy::EXIT_DENIED => {
            let v = json_of(&body, "policy check")?;
            // `policy check` names a kill switch's refusal `<what>:<seq>`.
            let what = v["policy_id"].as_str().unwrap_or("").split(':').next();
            let killed = matches!(what, Some("hard_kill" | "lockdown" | "soft_kill"));
            return Ok(Err(Refusal {
                code: if killed {
                    EXIT_KILLED_BEFORE
                } else {
                    EXIT_POLICY
                },
                reason: v["reason"].as_str().unwrap_or("denied").to_string(),
                retry_after_s: v["retry_after"].as_u64(),
                policy_id: v["policy_id"].as_str().map(str::to_string),
                recorded_seq: v["recorded_seq"].as_u64(),
            }));
        }
        other => bail!("policy check through argusd exited {other}"),
    }
    // A flag on disk the daemon's state does not show (written by hand, or
    // by a decision made while the daemon was down) still refuses.
    let (_, body) = in_daemon(r, &["control", &d, "-o", "json"])?;
    let ctl = json_of(&body, "control")?;
    if let Some(reason) = kill_refusal_json(&ctl, req.agent, job).or_else(|| flag_refusal(dir)) {
        return Ok(Err(Refusal::new(EXIT_KILLED_BEFORE, reason, None)));
    }
    let (_, body) = in_daemon(r, &["breakers", &d, "-o", "json"])?;
    for line in String::from_utf8_lossy(&body).lines() {
        let v = json_of(line.as_bytes(), "breakers")?;
        if v["tool"].as_str() == Some(req.tool) && v["allow"] == json!(false) {
            let reason = breaker_reason(
                req.tool,
                v["state"].as_str().unwrap_or("open"),
                v["opened_seq"].as_u64(),
                v["next_probe_at"].as_str().map(str::to_string),
                v["fallback"].as_str(),
            );
            return Ok(Err(Refusal::new(EXIT_BREAKER, reason, None)));
        }
    }
    Ok(Ok(size))
}

/// `kill_refusal` over `control -o json`'s answer.
fn kill_refusal_json(v: &Value, agent: &str, job: &str) -> Option<String> {
    let one = |s: &Value| {
        (
            s["seq"].as_u64().unwrap_or_default(),
            s["reason"].as_str().unwrap_or_default().to_string(),
        )
    };
    if v["hard_kill"].is_object() {
        let (seq, reason) = one(&v["hard_kill"]);
        return Some(stands("hard kill", seq, &reason));
    }
    if v["lockdown"].is_object() {
        let (seq, reason) = one(&v["lockdown"]);
        return Some(stands("write lockdown", seq, &reason));
    }
    v["soft_kills"].as_array()?.iter().find_map(|k| {
        let target = k["target"].as_str()?;
        let scope = k["scope"].as_str()?;
        let hit = match scope {
            "job" => target == job,
            "agent" => target == agent,
            _ => false,
        };
        hit.then(|| {
            let (seq, reason) = one(k);
            stands(&format!("soft kill of {scope} {target}"), seq, &reason)
        })
    })
}
