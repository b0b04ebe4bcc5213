//! `argusctl demo`: the README's first command. Creates a log, appends a
//! realistic agent session, verifies it and shows the tail.
use super::{render, Format, Out};
use crate::log::dir::InitOptions;
use crate::log::reader::LogReader;
use crate::log::verify::{verify, Options};
use crate::Log;
use anyhow::{Context, Result};
use std::ops::ControlFlow;
use std::path::PathBuf;

const SESSION: &str = include_str!("demo_session.jsonl");

/// An approver binds an approval to the parameters it saw: remember each
/// proposal's parameters and stamp their hash on its approval.
fn bind_approval(
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
    let (n, public_key) = write_session(&dir)?;
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
    show_log(&dir, n, &report)?;
    show_views(&dir)?;
    let mut out = Out::default();
    out.line("Try next:");
    let d = dir.display();
    for cmd in [
        format!("argusctl tail {d} -n 5 -o json | jq ."),
        format!("argusctl tail {d} --job job-9c21"),
        format!("argusctl status {d}"),
        format!("argusctl verify {d} --key {public_key}"),
        format!("argusctl checkpoint {d} > cp.txt && argusctl verify {d} --checkpoint cp.txt"),
    ] {
        out.line(&format!("  {cmd}"));
    }
    out.flush();
    if let Some(f) = report.failure {
        anyhow::bail!("demo log failed verification: {f}");
    }
    Ok(())
}

/// Creates the log and appends the session, each line in the writer class
/// its kind calls for (agents' work, an operator's configuration and
/// approvals). Returns the entries written and the public key.
fn write_session(dir: &std::path::Path) -> Result<(usize, String)> {
    // Small segments so the demo shows a multi-segment log.
    let log = Log::create(
        dir,
        &InitOptions {
            segment_bytes: 4096,
            key_file: None,
            clock_skew_tolerance_s: None,
        },
    )
    .with_context(|| format!("creating demo log in {}", dir.display()))?;
    let registry = crate::registry::builtin().map_err(anyhow::Error::msg)?;
    let agent = crate::authority::local_actor(crate::authority::Class::Agent).to_string();
    let operator = crate::authority::local_actor(crate::authority::Class::Operator).to_string();
    let mut n = 0;
    // Steps of the session arrive in small groups, as concurrent agents would.
    let lines: Vec<&str> = SESSION.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut params = std::collections::BTreeMap::new();
    for group in lines.chunks(3) {
        let entries = group
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let line = bind_approval(l, &mut params)?;
                let kind = serde_json::from_str::<serde_json::Value>(&line)?["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let actor = if registry
                    .writers(&kind)
                    .contains(&crate::authority::Class::Agent)
                {
                    &agent
                } else {
                    &operator
                };
                super::append::parse_line(line.as_bytes(), actor)
                    .map_err(|m| anyhow::anyhow!("demo line {}: {m}", n + i + 1))
            })
            .collect::<Result<Vec<_>>>()?;
        n += entries.len();
        log.append(entries)?;
        // Real agents take time between steps; spacing the groups gives the
        // SLA and timing views something to measure.
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Ok((n, log.meta().public_key.clone()))
}

/// The verdict, the latest checkpoint and the last entries.
fn show_log(dir: &std::path::Path, n: usize, report: &crate::log::verify::Report) -> Result<()> {
    let r = LogReader::open(dir)?;
    let mut out = Out::default();
    out.line(&format!("Demo log: {}", dir.display()));
    out.line(&format!(
        "Appended {n} entries from a simulated two-agent session."
    ));
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

/// The projections, derived from the log just written.
fn show_views(dir: &std::path::Path) -> Result<()> {
    let dir = dir.to_path_buf();
    let views: [(&str, &dyn Fn() -> Result<()>); 5] = [
        ("argusctl jobs", &|| super::jobs::list(&dir, Format::Text)),
        ("argusctl approvals list --all", &|| {
            super::approvals::run(super::approvals::ApprovalsCmd::List {
                dir: dir.clone(),
                all: true,
                format: Format::Text,
            })
            .map(|_| ())
        }),
        ("argusctl dlq list", &|| {
            super::dlq::list(&dir, false, Format::Text)
        }),
        ("argusctl sla", &|| {
            super::sla::run(&dir, super::sla::Show::Summary, Format::Text)
        }),
        ("argusctl budget", &|| {
            super::policy::budget(&dir, None, None, Format::Text)
        }),
    ];
    // Each view writes through its own `Out`: flush around it to keep order.
    let mut out = Out::default();
    for (title, view) in views {
        out.line(&format!("{title}:"));
        out.flush();
        view()?;
        out.line("");
    }
    out.flush();
    Ok(())
}
