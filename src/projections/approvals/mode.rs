//! The operating mode and the evidence its next change is judged on.
//!
//! A promotion needs days in the mode below, an approval rate and no
//! constitutional violations, all as the log shows them in log time;
//! moving down, or restarting alpha, needs nothing.
use super::super::status::status_enum;
use super::super::Event;
use super::NS_PER_DAY;
use serde::{Deserialize, Serialize};

pub const BETA_DAYS_IN_ALPHA_MIN: u64 = 30;
pub const OMEGA_DAYS_IN_BETA_MIN: u64 = 180;
pub const APPROVAL_RATE_PCT_MIN: u64 = 95;

pub const MODE_KEY: &[u8] = b"mode";

status_enum! {
    /// Janus's autonomy, least first: the derived order is the promotion
    /// order.
    #[derive(Default)]
    pub enum Mode("mode") {
        /// Propose only: every proposal waits for a human.
        #[default]
        Alpha = "alpha",
        /// Playbooks may approve what they cover.
        Beta = "beta",
        /// Full autonomy.
        Omega = "omega",
    }
}

impl Mode {
    /// The mode a promotion from this one leads to.
    pub fn next(self) -> Option<Mode> {
        match self {
            Mode::Alpha => Some(Mode::Beta),
            Mode::Beta => Some(Mode::Omega),
            Mode::Omega => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeChange {
    pub seq: u64,
    pub ts_ns: u64,
    pub from: Mode,
    pub to: Mode,
    pub actor: String,
    pub reason: String,
    /// Preconditions the log did not show when the change was applied
    /// (empty for every change made through `argusctl mode set`).
    pub unmet: Vec<String>,
}

/// A `mode.changed` entry that did not change the mode, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IgnoredModeChange {
    pub seq: u64,
    pub actor: String,
    /// The mode the entry asked for, as written (it may name none).
    pub to: String,
    pub reason: String,
}

/// The operating mode and the evidence its next change is judged on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeState {
    pub mode: Mode,
    /// Log time the current mode began: the first entry for the initial alpha.
    pub since_ns: u64,
    /// Human decisions since the current mode began. Playbook approvals are
    /// counted apart so they cannot inflate the rate that gates promotion.
    pub approved: u64,
    pub rejected: u64,
    pub expired: u64,
    pub auto_approved: u64,
    /// Constitutional violations since the current mode began; restarting
    /// alpha (`mode set alpha`) is how a violation is put behind.
    pub violations: u64,
    pub violations_total: u64,
    pub history: Vec<ModeChange>,
    /// Mode changes written by someone who may not change the mode.
    #[serde(default)]
    pub ignored: Vec<IgnoredModeChange>,
}

impl Default for ModeState {
    fn default() -> Self {
        Self::starting_at(0)
    }
}

/// Whole and tenth days, floored, so "29.9" never prints as "30.0".
pub fn days_text(ns: u64) -> String {
    let tenths = ns / (NS_PER_DAY / 10);
    format!("{}.{}", tenths / 10, tenths % 10)
}

impl ModeState {
    pub fn starting_at(ts_ns: u64) -> Self {
        Self {
            mode: Mode::Alpha,
            since_ns: ts_ns,
            approved: 0,
            rejected: 0,
            expired: 0,
            auto_approved: 0,
            violations: 0,
            violations_total: 0,
            history: Vec::new(),
            ignored: Vec::new(),
        }
    }

    pub fn in_mode_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.since_ns)
    }

    pub fn decided(&self) -> u64 {
        self.approved + self.rejected + self.expired
    }

    /// approved / (approved + rejected + expired); None before any decision.
    pub fn approval_rate(&self) -> Option<f64> {
        let d = self.decided();
        (d > 0).then(|| self.approved as f64 / d as f64)
    }

    /// A constitutional violation, counted in this mode and in all.
    pub(super) fn violation(&mut self) {
        self.violations += 1;
        self.violations_total += 1;
    }
}

/// Every reason the log does not (yet) allow a change to `to` at log time
/// `now_ns`; empty means allowed. Moving down (to less autonomy) is always
/// allowed, and so is restarting alpha, which resets the evidence window.
/// Omega's unanimous Trinity recommendation is not in the log, so the
/// caller checks it.
pub fn preconditions(s: &ModeState, to: Mode, now_ns: u64) -> Vec<String> {
    if to == Mode::Alpha || to < s.mode {
        return Vec::new();
    }
    if to == s.mode {
        return vec![format!("already in {to}")];
    }
    let mut unmet = Vec::new();
    let in_mode = s.in_mode_ns(now_ns);
    let (need_mode, need_days) = if to == Mode::Beta {
        (Mode::Alpha, BETA_DAYS_IN_ALPHA_MIN)
    } else {
        (Mode::Beta, OMEGA_DAYS_IN_BETA_MIN)
    };
    if s.mode != need_mode {
        unmet.push(format!(
            "{to} requires {need_days} days in {need_mode}; the current mode is {}",
            s.mode
        ));
    } else if in_mode < need_days * NS_PER_DAY {
        unmet.push(format!(
            "{} days in {need_mode} (log time); at least {need_days} are required",
            days_text(in_mode)
        ));
    }
    let decided = s.decided();
    if decided == 0 {
        unmet.push(format!(
            "no proposals decided in {} yet; an approval rate of at least {APPROVAL_RATE_PCT_MIN}% is required",
            s.mode
        ));
    } else if s.approved * 100 < APPROVAL_RATE_PCT_MIN * decided {
        unmet.push(format!(
            "approval rate {:.1}% ({}/{decided}) in {}; at least {APPROVAL_RATE_PCT_MIN}% is required",
            s.approved as f64 * 100.0 / decided as f64,
            s.approved,
            s.mode
        ));
    }
    if s.violations > 0 {
        unmet.push(format!(
            "{} constitutional violation(s) in {}; zero are required",
            s.violations, s.mode
        ));
    }
    unmet
}

/// Applies a `mode.changed`: the new mode starts a fresh evidence window,
/// and the preconditions the log did not show are kept with the change.
pub(super) fn on_mode_changed(ev: &Event<'_>, mode: &mut ModeState) {
    let Some(to) = ev.str("to").and_then(|t| t.parse::<Mode>().ok()) else {
        return;
    };
    let unmet = preconditions(mode, to, ev.log_ns);
    let mut history = std::mem::take(&mut mode.history);
    history.push(ModeChange {
        seq: ev.seq,
        ts_ns: ev.log_ns,
        from: mode.mode,
        to,
        actor: ev.actor.to_string(),
        reason: ev.str("reason").unwrap_or_default().to_string(),
        unmet,
    });
    *mode = ModeState {
        history,
        violations_total: mode.violations_total,
        ignored: std::mem::take(&mut mode.ignored),
        mode: to,
        ..ModeState::starting_at(ev.log_ns)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = NS_PER_DAY;

    fn alpha(days_in: u64, approved: u64, rejected: u64, expired: u64) -> (ModeState, u64) {
        let mut s = ModeState::starting_at(1_000 * DAY);
        s.approved = approved;
        s.rejected = rejected;
        s.expired = expired;
        (s, 1_000 * DAY + days_in)
    }

    #[test]
    fn beta_needs_30_days_95_percent_and_no_violations() {
        let (s, now) = alpha(30 * DAY, 19, 1, 0);
        assert_eq!(preconditions(&s, Mode::Beta, now), Vec::<String>::new());

        let (s, now) = alpha(30 * DAY - 1, 19, 1, 0);
        let u = preconditions(&s, Mode::Beta, now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("29.9 days in alpha"), "{u:?}");

        // 18/19 = 94.7 %: expiries count against the rate like rejections.
        let (s, now) = alpha(31 * DAY, 18, 0, 1);
        let u = preconditions(&s, Mode::Beta, now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("approval rate 94.7% (18/19)"), "{u:?}");

        let (mut s, now) = alpha(31 * DAY, 20, 0, 0);
        s.violations = 1;
        let u = preconditions(&s, Mode::Beta, now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("1 constitutional violation"), "{u:?}");

        // Every failed reason is listed, not just the first.
        let (mut s, now) = alpha(2 * DAY, 1, 1, 0);
        s.violations = 2;
        assert_eq!(preconditions(&s, Mode::Beta, now).len(), 3);
        let (s, now) = alpha(0, 0, 0, 0);
        let u = preconditions(&s, Mode::Beta, now);
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(u[1].contains("no proposals decided"), "{u:?}");
    }

    #[test]
    fn omega_needs_180_days_in_beta_and_alpha_is_always_allowed() {
        let (mut s, _) = alpha(0, 100, 0, 0);
        s.mode = Mode::Beta;
        let now = s.since_ns + 180 * DAY;
        assert!(preconditions(&s, Mode::Omega, now).is_empty());
        assert!(preconditions(&s, Mode::Omega, now - 1)[0].contains("179.9 days in beta"));
        assert!(preconditions(&s, Mode::Beta, now)[0].contains("already in beta"));
        s.violations = 3;
        s.rejected = 100;
        assert!(preconditions(&s, Mode::Alpha, now).is_empty());
        assert_eq!(preconditions(&s, Mode::Omega, now).len(), 2);
        // From alpha straight to omega is refused whatever the numbers.
        let (s, now) = alpha(400 * DAY, 100, 0, 0);
        let u = preconditions(&s, Mode::Omega, now);
        assert_eq!(u.len(), 1, "{u:?}");
        assert!(u[0].contains("current mode is alpha"), "{u:?}");
        // Moving down never needs evidence.
        let mut s = ModeState::starting_at(0);
        s.mode = Mode::Omega;
        s.violations = 1;
        assert!(preconditions(&s, Mode::Beta, 0).is_empty());
    }

    #[test]
    fn modes_promote_in_declaration_order() {
        assert_eq!(Mode::ALL, [Mode::Alpha, Mode::Beta, Mode::Omega]);
        assert!(Mode::Alpha < Mode::Beta && Mode::Beta < Mode::Omega);
        assert_eq!(Mode::Alpha.next(), Some(Mode::Beta));
        assert_eq!(Mode::Beta.next(), Some(Mode::Omega));
        assert_eq!(Mode::Omega.next(), None);
    }
}
