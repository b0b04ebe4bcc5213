//! Economic anomalies: cost and duration spikes per agent, tool and job
//! type (robust z of log values over a rolling window), and budget burn
//! rate over two windows (the SRE multi-window rule).
use super::config::Config;
use super::finding::{Finding, Severity};
use super::stats::{KofN, Window};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// One series: its baseline, its K-of-N gate, and the seqs of recent breaches.
#[derive(Debug, Default)]
struct Series {
    window: Window,
    gate: KofN,
    breaches: VecDeque<u64>,
}

/// Which spike detector: they are one family, not independent of each other.
#[derive(Debug, Clone, Copy)]
pub enum Measure {
    CostUsd,
    DurationMs,
}

impl Measure {
    fn detector(self) -> &'static str {
        match self {
            Self::CostUsd => "cost_spike",
            Self::DurationMs => "duration_spike",
        }
    }
    fn unit(self) -> &'static str {
        match self {
            Self::CostUsd => "USD",
            Self::DurationMs => "ms",
        }
    }
}

#[derive(Debug, Default)]
pub struct Spikes {
    series: HashMap<String, Series>,
}

/// A point to judge.
pub struct Point<'a> {
    pub measure: Measure,
    pub series: String,
    pub value: f64,
    pub seq: u64,
    pub job: Option<&'a str>,
    pub agent: Option<&'a str>,
}

impl Spikes {
    /// Judges one point; a point in breach never enters the baseline.
    pub fn observe(&mut self, cfg: &Config, p: Point<'_>) -> Option<Finding> {
        let e = &cfg.economic;
        if !(e.enabled && p.value.is_finite() && p.value >= 0.0) {
            return None;
        }
        let x = p.value.max(1e-9).ln();
        let floor = match p.measure {
            Measure::CostUsd => e.cost_floor_usd,
            Measure::DurationMs => e.duration_floor_ms,
        };
        let s = self.series.entry(p.series.clone()).or_default();
        let Some(scored) = s.window.score(x, e.min_scale) else {
            s.window.admit(x, e.window);
            return None;
        };
        let breach = scored.z >= e.warning_z && p.value >= floor;
        let k_of_n = s.gate.push(breach, cfg.warning_k, cfg.warning_of_last);
        let warm_up = s.window.samples < cfg.warm_up_samples;
        // While warming up nothing can be judged anomalous yet, so every
        // point teaches the baseline; after, a breach never does.
        if !breach || warm_up {
            s.window.admit(x, e.window);
        }
        if !breach {
            return None;
        }
        s.breaches.push_back(p.seq);
        while s.breaches.len() > cfg.warning_of_last {
            s.breaches.pop_front();
        }
        let (severity, threshold) = if scored.z >= e.critical_z {
            (Severity::Critical, e.critical_z)
        } else if k_of_n {
            (Severity::Warning, e.warning_z)
        } else {
            return None;
        };
        let severity = if warm_up {
            // While the model is young only a critical-sized point is
            // worth a note, and a note is all it is.
            if severity < Severity::Critical {
                return None;
            }
            Severity::Info
        } else {
            severity
        };
        let evidence = if severity == Severity::Warning {
            s.breaches.iter().copied().collect()
        } else {
            vec![p.seq]
        };
        Some(
            Finding {
                detector: p.measure.detector(),
                severity,
                reason: format!(
                    "{} {:.4} {} is {:.1} robust deviations above the median {:.4} of {} points{}",
                    p.series,
                    p.value,
                    p.measure.unit(),
                    scored.z,
                    scored.baseline,
                    scored.window,
                    if warm_up { " (warming up)" } else { "" }
                ),
                series: p.series,
                observed: Some(p.value),
                baseline: Some(scored.baseline),
                score: Some(scored.z),
                threshold: Some(threshold),
                window: Some(scored.window as u64),
                samples: Some(s.window.samples),
                warm_up,
                evidence_seqs: evidence,
                job: None,
                agent: None,
            }
            .at(p.job, p.agent),
        )
    }

    /// Forgets series, so they learn again from scratch (after an
    /// operator's release: the override says the new level is acceptable).
    pub fn reset(&mut self, series: &str) {
        self.series.remove(series);
    }
}

/// Spend per minute of log time for one budget scope.
#[derive(Debug, Default)]
struct Spend {
    minutes: BTreeMap<u64, f64>,
    samples: u64,
    /// Rules that fired and have not yet cooled down (short window back
    /// under the factor).
    firing: Vec<bool>,
    recent: VecDeque<u64>,
}

#[derive(Debug, Default)]
pub struct Burn {
    /// Daily budget (USD) per scope (`global`, `agent:<name>`), from `policy.set`.
    budgets: BTreeMap<String, f64>,
    spend: HashMap<String, Spend>,
}

const MIN_NS: u64 = 60_000_000_000;

impl Burn {
    /// `policy.set` / `policy.removed` of a budget.
    pub fn budget(&mut self, scope: &str, daily_usd: Option<f64>) {
        match daily_usd.filter(|d| d.is_finite() && *d > 0.0) {
            Some(d) => {
                self.budgets.insert(scope.to_string(), d);
            }
            None => {
                self.budgets.remove(scope);
            }
        }
    }

    /// One `cost.logged`: judged against every budget that covers it.
    pub fn observe(
        &mut self,
        cfg: &Config,
        usd: f64,
        log_ns: u64,
        seq: u64,
        job: Option<&str>,
        agent: Option<&str>,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        if !(cfg.burn.enabled && usd.is_finite() && usd > 0.0) {
            return out;
        }
        let scopes: Vec<(String, f64)> = self
            .budgets
            .iter()
            .filter(|(s, _)| {
                s.as_str() == "global" || (agent.is_some() && s.strip_prefix("agent:") == agent)
            })
            .map(|(s, d)| (s.clone(), *d))
            .collect();
        let keep_ns = cfg.burn.rules.iter().map(|r| r.long_s).max().unwrap_or(0) * 1_000_000_000;
        let minute = log_ns / MIN_NS;
        for (scope, daily) in scopes {
            let sp = self.spend.entry(scope.clone()).or_default();
            *sp.minutes.entry(minute).or_insert(0.0) += usd;
            sp.samples += 1;
            sp.recent.push_back(seq);
            while sp.recent.len() > 5 {
                sp.recent.pop_front();
            }
            let oldest = minute.saturating_sub(keep_ns / MIN_NS + 1);
            sp.minutes = sp.minutes.split_off(&oldest);
            sp.firing.resize(cfg.burn.rules.len(), false);
            for (i, r) in cfg.burn.rules.iter().enumerate() {
                let rate = |secs: u64| {
                    let mins = secs.div_ceil(60).max(1);
                    let from = (minute + 1).saturating_sub(mins);
                    let spent: f64 = sp.minutes.range(from..=minute).map(|(_, v)| *v).sum();
                    let allowed = daily * (mins * 60) as f64 / 86_400.0;
                    spent / allowed
                };
                let (long, short) = (rate(r.long_s), rate(r.short_s));
                let burning = long > r.factor && short > r.factor;
                if !burning {
                    if short <= r.factor {
                        sp.firing[i] = false;
                    }
                    continue;
                }
                if sp.firing[i] {
                    continue;
                }
                sp.firing[i] = true;
                let warm_up = sp.samples < cfg.warm_up_samples;
                let severity = match (warm_up, r.severity.as_str()) {
                    (true, _) => Severity::Info,
                    (false, "critical") => Severity::Critical,
                    _ => Severity::Warning,
                };
                out.push(
                    Finding {
                        detector: "burn_rate",
                        severity,
                        series: format!("burn/{scope}/{}s", r.long_s),
                        reason: format!(
                            "{scope} is burning its ${daily} daily budget at {long:.1}x over {}s and {short:.1}x over {}s (rule: both above {}x)",
                            r.long_s, r.short_s, r.factor
                        ),
                        observed: Some(short),
                        baseline: Some(1.0),
                        score: Some(long.min(short)),
                        threshold: Some(r.factor),
                        window: Some(r.long_s),
                        samples: Some(sp.samples),
                        warm_up,
                        evidence_seqs: sp.recent.iter().copied().collect(),
                        job: None,
                        agent: None,
                    }
                    .at(job, agent),
                );
            }
        }
        out
    }
}
