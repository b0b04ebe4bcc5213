//! The relief valve (seed 002): when the host is under pressure (load,
//! memory, disk of the log's file system), incident mode moves to degraded,
//! recorded as `incident.declared {level: degraded}` with the readings; when
//! the pressure has been gone for three samples in a row it is resolved.
//!
//! This is a sensor, not a fold: it reads the host, so it is not part of
//! the deterministic auditor. What it decided is an entry like any other,
//! and the projections and the auditor fold that entry.
use super::config::Relief;
use crate::authority::Class;
use crate::Log;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One reading of the host.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reading {
    pub load_per_core: Option<f64>,
    pub mem_available_pct: Option<f64>,
    pub disk_free_pct: Option<f64>,
}

pub fn read(dir: &std::path::Path) -> Reading {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|l| l / cores);
    let mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        let field = |name: &str| {
            s.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        };
        match (field("MemAvailable:"), field("MemTotal:")) {
            (Some(a), Some(t)) if t > 0.0 => Some(100.0 * a / t),
            _ => None,
        }
    });
    let disk = nix::sys::statvfs::statvfs(dir).ok().and_then(|v| {
        let total = v.blocks() as f64;
        (total > 0.0).then(|| 100.0 * v.blocks_available() as f64 / total)
    });
    Reading {
        load_per_core: load,
        mem_available_pct: mem,
        disk_free_pct: disk,
    }
}

/// What is over its threshold, in words; empty when nothing is.
pub fn pressure(r: &Reading, cfg: &Relief) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(l) = r.load_per_core.filter(|l| *l > cfg.load_per_core_max) {
        v.push(format!("load {l:.2} per core > {}", cfg.load_per_core_max));
    }
    if let Some(m) = r
        .mem_available_pct
        .filter(|m| *m < cfg.mem_available_min_pct)
    {
        v.push(format!(
            "memory available {m:.1}% < {}%",
            cfg.mem_available_min_pct
        ));
    }
    if let Some(d) = r.disk_free_pct.filter(|d| *d < cfg.disk_free_min_pct) {
        v.push(format!("disk free {d:.1}% < {}%", cfg.disk_free_min_pct));
    }
    v
}

pub async fn run(dir: PathBuf, log: Arc<Log>, cfg: Relief) {
    if !cfg.enabled {
        return;
    }
    let every = Duration::from_secs(cfg.sample_s.max(1));
    let mut degraded = false;
    let mut calm = 0u32;
    loop {
        tokio::time::sleep(every).await;
        let d = dir.clone();
        let Ok(r) = tokio::task::spawn_blocking(move || read(&d)).await else {
            continue;
        };
        let p = pressure(&r, &cfg);
        let payload = if !p.is_empty() && !degraded {
            degraded = true;
            calm = 0;
            Some((
                "incident.declared",
                json!({
                    "level": "degraded",
                    "priority": "P2",
                    "reason": format!("relief valve: {}", p.join("; ")),
                    "trigger_data": r,
                }),
            ))
        } else if p.is_empty() && degraded {
            calm += 1;
            (calm >= 3).then(|| {
                degraded = false;
                (
                    "incident.resolved",
                    json!({"resolution_note": "relief valve: host back within limits for three samples", "trigger_data": r}),
                )
            })
        } else {
            calm = 0;
            None
        };
        let Some((kind, payload)) = payload else {
            continue;
        };
        metrics::gauge!("argus_relief_degraded").set(if degraded { 1.0 } else { 0.0 });
        tracing::warn!(kind, "relief valve");
        let e = super::auditor::entry_as(Class::Auditor, "relief-valve", kind, &payload);
        let log = log.clone();
        if !matches!(
            tokio::task::spawn_blocking(move || log.append(vec![e])).await,
            Ok(Ok(_))
        ) {
            tracing::error!("the relief valve could not write its entry");
        }
    }
}
