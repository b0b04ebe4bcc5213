//! Behavioural drift: a failure rate (per agent and tool) or retry rate
//! (per agent) that moves up, by Page-Hinkley on a 0/1 series. A point
//! judged anomalous still counts toward the statistic (that is how the
//! test accumulates evidence) but never moves the learned mean.
use super::config::Config;
use super::finding::{Finding, Severity};
use super::stats::KofN;
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Default)]
struct Series {
    calls: u64,
    /// Learned mean (only normal points move it).
    learned: u64,
    mean: f64,
    m: f64,
    m_min: f64,
    gate: KofN,
    recent_bad: VecDeque<u64>,
}

#[derive(Debug, Default)]
pub struct Drift {
    series: HashMap<String, Series>,
}

impl Drift {
    /// One call: `bad` is a failure (or a retry).
    pub fn observe(
        &mut self,
        cfg: &Config,
        series: String,
        bad: bool,
        seq: u64,
        job: Option<&str>,
        agent: Option<&str>,
    ) -> Option<Finding> {
        let d = &cfg.drift;
        if !d.enabled {
            return None;
        }
        let s = self.series.entry(series.clone()).or_default();
        let x = if bad { 1.0 } else { 0.0 };
        s.calls += 1;
        if bad {
            s.recent_bad.push_back(seq);
            while s.recent_bad.len() > 10 {
                s.recent_bad.pop_front();
            }
        }
        // The statistic with the mean as learned so far.
        let mean_if_learned = s.mean + (x - s.mean) / (s.learned + 1) as f64;
        let m = s.m + x - mean_if_learned - d.delta;
        let alarm = m - s.m_min.min(m);
        let breach = alarm > d.warning_lambda && s.calls >= d.min_calls;
        let k_of_n = s.gate.push(breach, cfg.warning_k, cfg.warning_of_last);
        s.m = m;
        s.m_min = s.m_min.min(m);
        if !breach {
            s.learned += 1;
            s.mean = mean_if_learned;
            return None;
        }
        let warm_up = s.learned < cfg.warm_up_samples;
        let (severity, threshold) = if alarm > d.critical_lambda {
            (Severity::Critical, d.critical_lambda)
        } else if k_of_n {
            (Severity::Warning, d.warning_lambda)
        } else {
            return None;
        };
        let severity = if warm_up { Severity::Info } else { severity };
        let finding = Finding {
            detector: "drift",
            severity,
            reason: format!(
                "{series}: Page-Hinkley {alarm:.2} above {threshold} after {} calls; learned rate {:.3}",
                s.calls, s.mean
            ),
            series,
            observed: Some(x),
            baseline: Some(s.mean),
            score: Some(alarm),
            threshold: Some(threshold),
            window: Some(s.calls),
            samples: Some(s.learned),
            warm_up,
            evidence_seqs: s.recent_bad.iter().copied().collect(),
            job: None,
            agent: None,
        }
        .at(job, agent);
        if severity == Severity::Critical {
            // Fired: start accumulating afresh, keeping what was learned.
            s.m = 0.0;
            s.m_min = 0.0;
            s.gate.clear();
        }
        Some(finding)
    }

    pub fn reset(&mut self, series: &str) {
        self.series.remove(series);
    }
}
