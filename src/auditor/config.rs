//! The auditor's numbers, all in one file (`docs/auditor.json` holds the
//! defaults; `argusd --auditor-config FILE` and `argusctl audit --config
//! FILE` read a file of the same shape, where any field left out keeps its
//! default). Nothing in a detector is a constant: an operator who finds a
//! detector too eager changes a number here, and the change is visible.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Samples a series needs before it may report above `info`.
    pub warm_up_samples: u64,
    /// A warning needs this many of the last `warning_of_last` points in breach.
    pub warning_k: usize,
    pub warning_of_last: usize,
    pub economic: Economic,
    pub burn: Burn,
    pub drift: Drift,
    pub causal: Causal,
    pub staleness: Staleness,
    pub response: Response,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Economic {
    pub enabled: bool,
    /// Baseline points kept per series (the rolling window).
    pub window: usize,
    /// Robust z-score (median and MAD of log values) for a warning / critical.
    pub warning_z: f64,
    pub critical_z: f64,
    /// Below these a spike is never more than info: $0.001 to $0.004 is not an incident.
    pub cost_floor_usd: f64,
    pub duration_floor_ms: f64,
    /// The smallest scale a robust z divides by, in natural-log units
    /// (0.1 ≈ 10%): a nearly constant series (MAD 0) still needs a jump of
    /// critical_z × 10% in log terms (about 1.65x at z 5) to be critical.
    pub min_scale: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Burn {
    pub enabled: bool,
    /// Multi-window burn-rate rules (Google SRE workbook): both windows must
    /// burn faster than `factor` times the daily budget's even rate.
    pub rules: Vec<BurnRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurnRule {
    pub long_s: u64,
    pub short_s: u64,
    pub factor: f64,
    /// `critical` or `warning`.
    pub severity: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Drift {
    pub enabled: bool,
    /// Calls a series needs before Page-Hinkley may fire.
    pub min_calls: u64,
    /// Page-Hinkley tolerance (the change in failure rate ignored) and thresholds.
    pub delta: f64,
    pub warning_lambda: f64,
    pub critical_lambda: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Causal {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Staleness {
    pub enabled: bool,
    /// A worker silent this long is recorded as `heartbeat.stale`.
    pub heartbeat_stale_s: u64,
    /// A running job whose agent writes nothing for this long: `agent.stalled`.
    pub agent_stall_s: u64,
    /// A claim this long past its lease with no renewal: `job.requeued`.
    pub claim_grace_s: u64,
    /// Lease assumed when a claim names none.
    pub default_lease_s: u64,
    /// Seconds between `auditor.tick` entries on a quiet log with a deadline due.
    pub tick_min_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Response {
    /// Two independent detectors critical on one job within this many
    /// seconds of log time make a hard kill.
    pub kill_window_s: u64,
    /// Write `lockdown.set` on a warning (false: anomaly entries only).
    pub lockdown_on_warning: bool,
    /// Write `kill.hard` on a critical causal rule or two criticals.
    pub kill_on_critical: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            warm_up_samples: 25,
            warning_k: 3,
            warning_of_last: 5,
            economic: Economic::default(),
            burn: Burn::default(),
            drift: Drift::default(),
            causal: Causal { enabled: true },
            staleness: Staleness::default(),
            response: Response::default(),
        }
    }
}

impl Default for Economic {
    fn default() -> Self {
        Self {
            enabled: true,
            window: 100,
            warning_z: 3.5,
            critical_z: 5.0,
            cost_floor_usd: 0.50,
            duration_floor_ms: 30_000.0,
            min_scale: 0.1,
        }
    }
}

impl Default for Burn {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: vec![
                BurnRule {
                    long_s: 3600,
                    short_s: 300,
                    factor: 14.4,
                    severity: "critical".into(),
                },
                BurnRule {
                    long_s: 6 * 3600,
                    short_s: 1800,
                    factor: 6.0,
                    severity: "warning".into(),
                },
            ],
        }
    }
}

impl Default for Drift {
    fn default() -> Self {
        Self {
            enabled: true,
            min_calls: 30,
            delta: 0.05,
            warning_lambda: 5.0,
            critical_lambda: 10.0,
        }
    }
}

impl Default for Causal {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Default for Staleness {
    fn default() -> Self {
        Self {
            enabled: true,
            heartbeat_stale_s: 60,
            agent_stall_s: 600,
            claim_grace_s: 30,
            default_lease_s: 300,
            tick_min_s: 5,
        }
    }
}

impl Default for Response {
    fn default() -> Self {
        Self {
            kill_window_s: 600,
            lockdown_on_warning: true,
            kill_on_critical: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("auditor config {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: Box<crate::Error>,
    },
    #[error("auditor config {path}: {message}")]
    Invalid {
        path: std::path::PathBuf,
        message: String,
    },
}

impl Config {
    /// Reads a config file: strict JSON, unknown fields refused (a typo must
    /// not silently keep a default), numbers checked for sense.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let bytes = crate::log::safe_fs::read_capped(path, 1 << 20).map_err(|source| {
            ConfigError::Read {
                path: path.into(),
                source: Box::new(source),
            }
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let value = crate::json::parse(&bytes, 1 << 20).map_err(|e| invalid(e.to_string()))?;
        let cfg: Config = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        cfg.check().map_err(invalid)?;
        Ok(cfg)
    }

    pub fn check(&self) -> Result<(), String> {
        let e = &self.economic;
        if !(e.warning_z > 0.0 && e.critical_z >= e.warning_z) {
            return Err("economic: need 0 < warning_z <= critical_z".into());
        }
        if e.window < 5 || e.min_scale <= 0.0 || !e.min_scale.is_finite() {
            return Err("economic: window must be >= 5 and min_scale > 0".into());
        }
        if self.warning_k == 0 || self.warning_k > self.warning_of_last {
            return Err("warning_k must be between 1 and warning_of_last".into());
        }
        let d = &self.drift;
        if !(d.warning_lambda > 0.0 && d.critical_lambda >= d.warning_lambda && d.delta >= 0.0) {
            return Err("drift: need 0 < warning_lambda <= critical_lambda and delta >= 0".into());
        }
        for r in &self.burn.rules {
            if r.short_s == 0 || r.long_s < r.short_s || r.factor <= 0.0 {
                return Err("burn: each rule needs 0 < short_s <= long_s and factor > 0".into());
            }
            if r.severity != "critical" && r.severity != "warning" {
                return Err(format!(
                    "burn: severity {:?} is not warning or critical",
                    r.severity
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    /// docs/auditor.json is the documented default: it must stay equal to
    /// what the code uses when no file is given.
    #[test]
    fn the_documented_defaults_are_the_defaults() {
        let text = include_str!("../../docs/auditor.json");
        let doc: Config =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("docs/auditor.json: {e}"));
        assert_eq!(doc, Config::default());
        assert!(Config::default().check().is_ok());
    }
}
