//! `argusctl demo`: the README's first command. Creates a log, serves it
//! with argusd (in this process), has several agents write a realistic
//! session at once (the Python example agent among them when python3 is
//! here), asks the views through the daemon, stops it, verifies the log
//! and shows the tail.
use super::{render, Format, Out};
use crate::log::dir::InitOptions;
use crate::log::reader::LogReader;
use crate::log::verify::{verify, Options};
use crate::Log;
use anyhow::{Context, Result};
use std::ops::ControlFlow;
use std::path::PathBuf;

const SESSION: &str = include_str!("demo_session.jsonl");

use super::demo_daemon::Daemon;

/// An approver binds an approval to the parameters it saw: remember each
/// proposal's parameters and stamp their hash on its approval.
pub(crate) fn bind_approval(
    line: &str,
    params: &mut std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<String> {
    let mut v: serde_json::Value = serde_json::from_str(line)?;
    let id = v["payload"]["proposal_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match v["kind"].as_str() {
        Some("proposal.created") => {
            params.insert(id, v["payload"]["parameters"].clone());
        }
        Some("proposal.approved") => {
            let p = params.get(&id).cloned().unwrap_or_default();
            v["payload"]["parameter_hash"] = crate::registry::parameter_hash(&p).into();
        }
        _ => {}
    }
    Ok(v.to_string())
}

pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!(
            "argus-demo-{}-{}",
            std::process::id(),
            crate::log::writer::now_ns() / 1_000_000
        )),
    };
    // Small segments so the demo shows a multi-segment log.
    let public_key = Log::create(
        &dir,
        &InitOptions {
            segment_bytes: 4096,
            key_file: None,
            clock_skew_tolerance_s: None,
        },
    )
    .with_context(|| format!("creating demo log in {}", dir.display()))?
    .meta()
    .public_key
    .clone();
    let daemon = Daemon::start(&dir)?;
    let mut out = Out::default();
    out.line(&format!("Demo log: {}", dir.display()));
    out.line(&format!(
        "argusd is serving it at {} and {}; agents write to it at once:",
        daemon.url,
        dir.join("argusd.sock").display()
    ));
    out.flush();
    let written = super::demo_daemon::write_session(&daemon, SESSION, bind_approval)?;
    for l in &written.report {
        out.line(&format!("  {l}"));
    }
    out.line(&format!(
        "  {} entries from {} agents writing concurrently; every ack came after fsync and a signed seal.",
        written.entries, written.agents
    ));
    out.line("");
    out.flush();
    show_views(&daemon)?;
    out.line("The auditor (inside argusd) watches the same stream:");
    for l in super::demo_daemon::auditor_scene(&daemon)? {
        out.line(&format!("  {l}"));
    }
    out.line("");
    out.flush();
    daemon.stop()?;
    let key = crate::log::dir::parse_public_key(&public_key).map_err(anyhow::Error::msg)?;
    let report = verify(
        &dir,
        &Options {
            key,
            key_pinned: true,
            checkpoints: vec![],
            threads: 2,
            progress: None,
        },
    )?;
    show_log(&dir, &report)?;
    out.line("The failed job, as forensics sees it (argusctl replay DIR job-9c21):");
    out.flush();
    super::replay::run(
        &dir,
        &super::replay::Opts {
            job: "job-9c21",
            from_step: None,
            until_seq: None,
            detailed: false,
            requeue: false,
            proof: None,
            format: Format::Text,
        },
    )?;
    out.line("");
    let d = dir.display();
    out.line("Try next:");
    for cmd in [
        format!(
            "argusd --dir {d} &    # serve it again; argusctl commands on {d} then go through it"
        ),
        format!("argusctl tail {d} -f -o json | jq -c '{{seq,kind,agent}}'"),
        format!("python3 tools/python/examples/agent.py --dir {d}"),
        format!("argusctl approvals list {d}"),
        format!("argusctl replay {d} job-rogue"),
        format!("argusctl search {d} '503' --kind 'tool.*'"),
        format!("argusctl replay {d} job-9c21 --proof job-9c21.proof.json && argusctl verify-proof job-9c21.proof.json --key {public_key}"),
        "curl -s http://127.0.0.1:7117/v1/jobs | jq .".to_string(),
        format!("argusctl verify {d} --key {public_key}"),
    ] {
        out.line(&format!("  {cmd}"));
    }
    out.flush();
    if let Some(f) = report.failure {
        anyhow::bail!("demo log failed verification: {f}");
    }
    Ok(())
}

/// The verdict, the latest checkpoint and the last entries.
fn show_log(dir: &std::path::Path, report: &crate::log::verify::Report) -> Result<()> {
    let r = LogReader::open(dir)?;
    let mut out = Out::default();
    out.line("argusd stopped cleanly: everything in flight was acknowledged, then it exited.");
    out.line(&format!(
        "verify: {} ({} entries in {} segments, root {})",
        if report.failure.is_none() {
            "intact"
        } else {
            "FAILED"
        },
        report.sealed_size,
        report.segments,
        report.root
    ));
    out.line("");
    out.line("Latest checkpoint:");
    for l in r.latest_seal()?.checkpoint_text(&r.log_id).lines() {
        out.line(&format!("  {l}"));
    }
    out.line("");
    out.line("Last 12 entries (argusctl tail):");
    let size = report.sealed_size;
    r.for_each(size.saturating_sub(12), u64::MAX, |v| {
        out.line(&render(v, Format::Text));
        ControlFlow::Continue(())
    })?;
    out.line("");
    out.flush();
    Ok(())
}

/// The projections, derived from the log just written, asked of the daemon
/// exactly as `argusctl` asks when argusd holds the log.
fn show_views(daemon: &Daemon) -> Result<()> {
    let mut out = Out::default();
    for argv in [
        &["jobs", "."][..],
        &["approvals", "list", ".", "--all"],
        &["dlq", "list", "."],
        &["sla", "."],
        &["budget", "."],
        &["agents", "."],
    ] {
        let shown: Vec<&str> = argv
            .iter()
            .map(|a| if *a == "." { "DIR" } else { a })
            .collect();
        out.line(&format!(
            "argusctl {} (answered by argusd):",
            shown.join(" ")
        ));
        out.flush();
        let text = daemon.run(argv)?;
        std::io::Write::write_all(&mut std::io::stdout(), &text)?;
        out.line("");
    }
    out.flush();
    Ok(())
}
