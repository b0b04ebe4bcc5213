//! The statistics the detectors share: a robust z-score over a rolling
//! window, Page-Hinkley for drift, and the K-of-N gate that turns a single
//! breach into a warning only when it repeats.
//!
//! All of it is plain arithmetic on values from the log, in log order, so
//! the same log gives the same numbers on any run.
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The last `cap` values judged normal (a point judged anomalous never
/// enters the baseline, so a burst cannot teach the model that bursts are normal).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    values: VecDeque<f64>,
    /// Normal points ever admitted (the warm-up counter).
    pub samples: u64,
}

/// A score and the baseline it was judged against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Robust z: how many robust standard deviations above the median.
    pub z: f64,
    /// The median of the baseline, in the series' own units.
    pub baseline: f64,
    pub window: usize,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

impl Window {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn admit(&mut self, x: f64, cap: usize) {
        self.values.push_back(x);
        while self.values.len() > cap {
            self.values.pop_front();
        }
        self.samples += 1;
    }

    pub fn clear(&mut self) {
        self.values.clear();
        self.samples = 0;
    }

    /// Robust z of `x` against the window, all in log space (`ln`): costs
    /// and durations are multiplicative, and a log scale keeps one huge
    /// outlier from defining "normal". Scale: MAD / 0.6745; when MAD is 0,
    /// the mean absolute deviation × 1.2533 (the fallback for series that
    /// are mostly one value); never less than `min_scale`, so a series that
    /// is nearly constant does not call a 5% wobble a spike.
    pub fn score(&self, x: f64, min_scale: f64) -> Option<Scored> {
        if self.values.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.values.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let med = median(&v);
        let mut dev: Vec<f64> = v.iter().map(|y| (y - med).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = median(&dev);
        let scale = if mad > 0.0 {
            mad / 0.6745
        } else {
            let mean_ad = dev.iter().sum::<f64>() / dev.len() as f64;
            if mean_ad > 0.0 {
                mean_ad * 1.2533
            } else {
                min_scale
            }
        };
        let scale = scale.max(min_scale);
        Some(Scored {
            z: (x - med) / scale,
            baseline: med.exp(),
            window: v.len(),
        })
    }
}

/// Page-Hinkley test for an increase in the mean of a 0/1 series (a
/// failure rate): `m` accumulates how far each point sits above the running
/// mean (less the tolerance `delta`), and the alarm is `m - min(m)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PageHinkley {
    pub n: u64,
    mean: f64,
    m: f64,
    m_min: f64,
}

impl PageHinkley {
    /// The statistic if `x` were added, without adding it.
    pub fn peek(&self, x: f64, delta: f64) -> (f64, f64) {
        let n = self.n as f64 + 1.0;
        let mean = self.mean + (x - self.mean) / n;
        let m = self.m + x - mean - delta;
        (m - self.m_min.min(m), mean)
    }

    pub fn add(&mut self, x: f64, delta: f64) {
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
        self.m += x - self.mean - delta;
        self.m_min = self.m_min.min(self.m);
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// The last N breach flags of a series: a warning needs K of them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KofN {
    last: VecDeque<bool>,
}

impl KofN {
    /// Records this point and says whether K of the last N breached.
    pub fn push(&mut self, breach: bool, k: usize, n: usize) -> bool {
        self.last.push_back(breach);
        while self.last.len() > n {
            self.last.pop_front();
        }
        self.last.iter().filter(|b| **b).count() >= k
    }

    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_baseline_falls_back_to_min_scale() {
        let mut w = Window::default();
        for _ in 0..30 {
            w.admit(0.01f64.ln(), 100);
        }
        let s = w.score(0.011f64.ln(), 0.1).map(|s| s.z).unwrap_or(0.0);
        // 10% above a constant baseline: about one min-scale, not infinity.
        assert!(s > 0.8 && s < 1.2, "{s}");
    }

    #[test]
    fn a_spike_scores_high_and_normal_points_low() {
        let mut w = Window::default();
        for i in 0..50 {
            w.admit((0.10 + 0.01 * f64::from(i % 5)).ln(), 100);
        }
        let normal = w.score(0.12f64.ln(), 0.1).map(|s| s.z).unwrap_or(9.0);
        let spike = w.score(5.0f64.ln(), 0.1).map(|s| s.z).unwrap_or(0.0);
        assert!(normal.abs() < 2.0, "{normal}");
        assert!(spike > 5.0, "{spike}");
    }

    #[test]
    fn page_hinkley_fires_on_a_jump_in_failure_rate() {
        let mut ph = PageHinkley::default();
        for i in 0..100 {
            ph.add(if i % 20 == 0 { 1.0 } else { 0.0 }, 0.05);
        }
        assert!(ph.peek(0.0, 0.05).0 < 2.0);
        let mut alarm = 0.0;
        for _ in 0..12 {
            alarm = ph.peek(1.0, 0.05).0;
            ph.add(1.0, 0.05);
        }
        assert!(alarm > 5.0, "{alarm}");
    }

    #[test]
    fn k_of_n() {
        let mut g = KofN::default();
        assert!(!g.push(true, 3, 5));
        assert!(!g.push(false, 3, 5));
        assert!(!g.push(true, 3, 5));
        assert!(g.push(true, 3, 5));
    }
}
