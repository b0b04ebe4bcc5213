//! `argusctl breakers`: each tool's circuit breaker now (`state::now_ns`), and
//! `--check TOOL`: may a call start, and if not, which fallback to use.
use super::safe::esc;
use super::{Format, Out};
use crate::projections::breakers::{
    breaker_key, config_key, Breaker, BreakerState, Config, BREAKER_PREFIX, NAME,
};
use anyhow::Result;
use serde_json::json;
use std::path::Path;

/// One tool's breaker as of `now_ns`: may a call start?
pub struct Judged {
    pub state: BreakerState,
    pub allow: bool,
    pub cfg: Config,
    /// The breaker as of `now_ns` (`None`: the tool never had an outcome).
    pub now: Option<Breaker>,
}

/// What `breakers --check TOOL` decides; `exec` asks the same.
pub fn judge(st: &super::state::State, tool: &str, now_ns: u64) -> Result<Judged> {
    let (b, cfg) = st.projections.with_view(NAME, |v| {
        Ok((
            v.get_json::<Breaker>(&breaker_key(tool))?,
            v.get_json::<Config>(&config_key(tool))?.unwrap_or_default(),
        ))
    })?;
    Ok(match b {
        Some(b) => Judged {
            state: b.at(&cfg, now_ns).state,
            allow: b.allows(&cfg, now_ns),
            now: Some(b.at(&cfg, now_ns)),
            cfg,
        },
        None => Judged {
            state: BreakerState::Closed,
            allow: true,
            now: None,
            cfg,
        },
    })
}

pub fn run(dir: &Path, check: Option<&str>, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let now_ns = super::state::now_ns(&st)?;
    let mut out = Out::default();
    if let Some(tool) = check {
        let Judged {
            state, allow, cfg, ..
        } = judge(&st, tool, now_ns)?;
        let v = json!({"tool": tool, "state": state, "allow": allow, "fallback": cfg.fallback});
        match format {
            Format::Json => out.json(&v.to_string()),
            Format::Text => out.line(&format!(
                "{}: {state}, {}{}",
                esc(tool),
                if allow {
                    "call allowed"
                } else {
                    "call not allowed"
                },
                match (&cfg.fallback, allow) {
                    (Some(f), false) => format!("; use fallback {}", esc(f)),
                    (None, false) => "; no fallback configured".into(),
                    _ => String::new(),
                }
            )),
        }
        out.flush();
        return Ok(());
    }
    let rows = st.projections.with_view(NAME, |v| {
        let mut rows = Vec::new();
        for (_, b) in v.scan_json::<Breaker>(BREAKER_PREFIX)? {
            let cfg = v
                .get_json::<Config>(&config_key(&b.tool))?
                .unwrap_or_default();
            rows.push((b, cfg));
        }
        Ok(rows)
    })?;
    match format {
        Format::Json => {
            for (b, cfg) in &rows {
                let now = b.at(cfg, now_ns);
                out.json(
                    &json!({
                        "tool": b.tool,
                        "state": now.state,
                        "allow": b.allows(cfg, now_ns),
                        "failures_in_window": b.failures_in_window(cfg, now_ns),
                        "failures_total": b.failures_total,
                        "opened_at": now.opened_at_ns.map(super::rfc3339_ns),
                        "opened_seq": now.opened_seq,
                        "next_probe_at": now.next_probe_ns(cfg).map(super::rfc3339_ns),
                        "probe_in_flight": now.probe_in_flight,
                        "probe_seq": now.probe_seq,
                        "half_open_seq": now.half_open_seq,
                        "closed_seq": now.closed_seq,
                        "trips": b.trips,
                        "calls_not_allowed": b.calls_not_allowed,
                        "fallback": cfg.fallback,
                        "config": cfg,
                    })
                    .to_string(),
                );
            }
        }
        Format::Text => {
            out.line(&format!(
                "{:<22} {:<9} {:>9} {:<31} {:<31} fallback",
                "tool", "state", "failures", "opened_at", "next_probe_at"
            ));
            for (b, cfg) in &rows {
                let now = b.at(cfg, now_ns);
                out.line(&format!(
                    "{:<22} {:<9} {:>4}/{:<4} {:<31} {:<31} {}",
                    esc(&b.tool),
                    now.state,
                    b.failures_in_window(cfg, now_ns),
                    cfg.failure_threshold,
                    now.opened_at_ns
                        .map(super::rfc3339_ns)
                        .unwrap_or_else(|| "-".into()),
                    now.next_probe_ns(cfg)
                        .map(super::rfc3339_ns)
                        .unwrap_or_else(|| "-".into()),
                    esc(cfg.fallback.as_deref().unwrap_or("-"))
                ));
            }
        }
    }
    out.flush();
    Ok(())
}
