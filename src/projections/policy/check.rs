//! The policy decision: a pure function of the request, the policy state and
//! log time, so a replayed log re-derives the same allow/deny answers.
//!
//! Every applicable policy is evaluated; the most restrictive denial wins:
//! one that retrying cannot fix (`retry_after` null) beats any timed one,
//! and among timed ones the longest wait wins. Ties go to the first in
//! policy_id order.
use super::{from_micros, to_micros, Policy, Spend, DAY_NS, RATE_WINDOW_NS};
use serde_json::Value;

const SEC_NS: u64 = 1_000_000_000;

pub struct Request<'a> {
    pub agent: &'a str,
    pub tool: &'a str,
    pub cost_usd: f64,
    pub domain: Option<&'a str>,
    /// The run (job) the call belongs to, for per-run budgets.
    pub job: Option<&'a str>,
    /// The action type, for safety policies (`require_approval_for`).
    pub action: Option<&'a str>,
}

/// What the decision reads, already looked up by the caller.
pub struct Input<'a> {
    pub policies: &'a [Policy],
    /// The agent's ledger for the UTC day of `now_ns`.
    pub today: &'a Spend,
    /// The ledger of `Request::job`, if one was named.
    pub run: Option<&'a Spend>,
    /// The agent's recent `tool.call_started` times for `Request::tool`.
    pub calls_ts_ns: &'a [u64],
    pub now_ns: u64,
    /// Incident mode halves every daily_usd limit.
    pub incident: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub policy_id: String,
    pub reason: String,
    pub retry_after_s: Option<u64>,
}

impl Denial {
    /// Restrictiveness order: never-retry above any wait, longer waits above shorter.
    fn rank(&self) -> u64 {
        self.retry_after_s.map_or(u64::MAX, |s| s.min(u64::MAX - 1))
    }
}

/// `None` means allowed.
pub fn evaluate(req: &Request<'_>, input: &Input<'_>) -> Option<Denial> {
    let mut worst: Option<Denial> = None;
    for p in input.policies {
        if !p.applies_to(req.agent, req.tool) {
            continue;
        }
        let found = match p.policy_type.as_str() {
            "budget" => budget(p, req, input),
            "rate_limit" => rate_limit(p, req, input),
            "allowlist" => allowlist(p, req),
            "safety" => safety(p, req),
            _ => None,
        };
        if let Some(d) = found {
            if worst.as_ref().is_none_or(|w| d.rank() > w.rank()) {
                worst = Some(d);
            }
        }
    }
    worst
}

/// Whole seconds from `now_ns` to the next UTC midnight: 1..=86400.
pub fn secs_to_midnight(now_ns: u64) -> u64 {
    let left = DAY_NS - now_ns % DAY_NS;
    left.div_ceil(SEC_NS)
}

pub fn fmt_usd(micros: u64) -> String {
    if micros.is_multiple_of(10_000) {
        format!("{:.2}", from_micros(micros))
    } else {
        format!("{:.6}", from_micros(micros))
            .trim_end_matches('0')
            .to_string()
    }
}

fn deny(p: &Policy, reason: String, retry_after_s: Option<u64>) -> Option<Denial> {
    Some(Denial {
        policy_id: p.policy_id.clone(),
        reason,
        retry_after_s,
    })
}

fn budget(p: &Policy, req: &Request<'_>, input: &Input<'_>) -> Option<Denial> {
    let tool = p.scoped_tool();
    let what = tool.map_or(String::new(), |t| format!(" on {t}"));
    let cost = to_micros(req.cost_usd);
    if let Some(mut limit) = p.config_micros("daily_usd") {
        let halved = if input.incident {
            limit /= 2;
            " (halved: incident mode)"
        } else {
            ""
        };
        let spent = input.today.usd_for(tool);
        if spent.saturating_add(cost) > limit {
            return deny(
                p,
                format!(
                    "daily budget{what} exceeded: spent {} + cost {} USD > {} USD{halved} (policy {})",
                    fmt_usd(spent),
                    fmt_usd(cost),
                    fmt_usd(limit),
                    p.policy_id
                ),
                Some(secs_to_midnight(input.now_ns)),
            );
        }
    }
    if let Some(limit) = p.config_micros("per_run_usd") {
        // Without a run, only the call itself is measured: a call costing more
        // than a whole run's budget can never fit.
        let spent = input.run.map_or(0, |r| r.usd_for(tool));
        if spent.saturating_add(cost) > limit {
            return deny(
                p,
                format!(
                    "per-run budget{what} exceeded for {}: spent {} + cost {} USD > {} USD (policy {})",
                    req.job.unwrap_or("this call"),
                    fmt_usd(spent),
                    fmt_usd(cost),
                    fmt_usd(limit),
                    p.policy_id
                ),
                None,
            );
        }
    }
    if let Some(limit) = p.config_micros("max_cpu_seconds") {
        let used = input.today.cpu_micros;
        if used > limit {
            return deny(
                p,
                format!(
                    "cpu budget exceeded: {} cpu seconds today > {} (policy {})",
                    from_micros(used),
                    from_micros(limit),
                    p.policy_id
                ),
                Some(secs_to_midnight(input.now_ns)),
            );
        }
    }
    None
}

fn rate_limit(p: &Policy, req: &Request<'_>, input: &Input<'_>) -> Option<Denial> {
    if let Some(pattern) = p.config.get("tool").and_then(Value::as_str) {
        if !glob_match(pattern, req.tool) {
            return None;
        }
    }
    let max = p.config.get("max_per_minute").and_then(Value::as_u64)?;
    let cutoff = input.now_ns.saturating_sub(RATE_WINDOW_NS);
    let window: Vec<u64> = input
        .calls_ts_ns
        .iter()
        .copied()
        .filter(|&t| t > cutoff && t <= input.now_ns)
        .collect();
    let count = window.len() as u64;
    if count < max {
        return None;
    }
    // One more call is allowed once count - max + 1 calls have left the
    // window; with exactly `max` calls that is the oldest one.
    let idx = usize::try_from(count - max).unwrap_or(usize::MAX);
    let leaves_ns = window
        .get(idx)
        .map_or(RATE_WINDOW_NS, |&t| t + RATE_WINDOW_NS - input.now_ns);
    deny(
        p,
        format!(
            "rate limit: {count} calls to {} by {} in the last 60 s >= max_per_minute {max} (policy {})",
            req.tool, req.agent, p.policy_id
        ),
        Some(leaves_ns.div_ceil(SEC_NS).max(1)),
    )
}

fn allowlist(p: &Policy, req: &Request<'_>) -> Option<Denial> {
    let domain = req.domain?;
    let patterns: Vec<&str> = p
        .config
        .get("allowed_domains")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if patterns.iter().any(|pat| glob_match(pat, &d)) {
        return None;
    }
    deny(
        p,
        format!(
            "domain {domain} is not in the allowlist [{}] (policy {})",
            patterns.join(", "),
            p.policy_id
        ),
        None,
    )
}

fn safety(p: &Policy, req: &Request<'_>) -> Option<Denial> {
    let action = req.action?;
    let listed = p
        .config
        .get("require_approval_for")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(action)));
    if !listed {
        return None;
    }
    deny(
        p,
        format!(
            "action {action} requires approval: submit a proposal (policy {})",
            p.policy_id
        ),
        None,
    )
}

/// Case-insensitive match where `*` stands for any run of characters
/// (including dots): `*.example.com` matches `a.b.example.com` but not
/// `example.com`; `docs.*` matches `docs.rs`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: u64 = 1_795_435_200_000_000_000; // 2026-11-23T12:00:00Z

    fn pol(id: &str, scope: &str, ty: &str, config: Value) -> Policy {
        Policy {
            policy_id: id.into(),
            scope: scope.into(),
            policy_type: ty.into(),
            config,
            enabled: true,
            set_seq: 0,
            set_ts_ns: 0,
            set_by: "t".into(),
        }
    }

    fn req<'a>(cost: f64) -> Request<'a> {
        Request {
            agent: "r",
            tool: "web",
            cost_usd: cost,
            domain: None,
            job: None,
            action: None,
        }
    }

    fn spend(usd: f64) -> Spend {
        Spend {
            usd_micros: to_micros(usd),
            ..Spend::default()
        }
    }

    fn input<'a>(ps: &'a [Policy], today: &'a Spend, calls: &'a [u64]) -> Input<'a> {
        Input {
            policies: ps,
            today,
            run: None,
            calls_ts_ns: calls,
            now_ns: T0,
            incident: false,
        }
    }

    #[test]
    fn glob() {
        assert!(glob_match("docs.*", "docs.rs"));
        assert!(!glob_match("docs.*", "evil.com"));
        assert!(glob_match("*.example.com", "a.b.example.com"));
        assert!(!glob_match("*.example.com", "example.com"));
        assert!(glob_match("github.com", "GitHub.com"));
        assert!(!glob_match("github.com", "github.com.evil.com"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn daily_budget_is_exact_at_the_limit() {
        let ps = [pol("b", "agent:r", "budget", json!({"daily_usd": 5.0}))];
        let today = spend(4.9);
        assert_eq!(
            evaluate(&req(0.1), &input(&ps, &today, &[])),
            None,
            "4.90 + 0.10 = 5.00 is not over"
        );
        let d = evaluate(&req(0.11), &input(&ps, &today, &[])).unwrap();
        assert_eq!(d.retry_after_s, Some(12 * 3600), "noon to midnight");
    }

    #[test]
    fn incident_halves_daily_but_not_per_run() {
        let ps = [pol(
            "b",
            "global",
            "budget",
            json!({"daily_usd": 5.0, "per_run_usd": 0.5}),
        )];
        let today = spend(2.0);
        let mut inp = input(&ps, &today, &[]);
        assert_eq!(evaluate(&req(0.5), &inp), None);
        inp.incident = true;
        let d = evaluate(&req(0.51), &inp).expect("2.00 + 0.51 > 2.50");
        assert!(d.reason.contains("2.50"), "{}", d.reason);
        assert_eq!(evaluate(&req(0.5), &inp), None, "2.00 + 0.50 = 2.50");
    }

    #[test]
    fn tool_scoped_budget_counts_only_that_tool() {
        let ps = [pol("t", "tool:web", "budget", json!({"daily_usd": 1.0}))];
        let mut today = spend(3.0);
        today
            .usd_micros_by_tool
            .insert("web".into(), to_micros(0.5));
        assert_eq!(evaluate(&req(0.5), &input(&ps, &today, &[])), None);
        assert!(evaluate(&req(0.6), &input(&ps, &today, &[])).is_some());
    }

    #[test]
    fn cpu_limit_denies_once_exceeded() {
        let ps = [pol("c", "global", "budget", json!({"max_cpu_seconds": 10}))];
        let mut today = Spend {
            cpu_micros: to_micros(10.0),
            ..Spend::default()
        };
        assert_eq!(evaluate(&req(0.0), &input(&ps, &today, &[])), None);
        today.cpu_micros = to_micros(10.5);
        let d = evaluate(&req(0.0), &input(&ps, &today, &[])).unwrap();
        assert_eq!(d.retry_after_s, Some(12 * 3600));
    }

    #[test]
    fn rate_limit_retry_after_is_when_a_slot_frees() {
        let ps = [pol(
            "rl",
            "global",
            "rate_limit",
            json!({"tool": "web", "max_per_minute": 3}),
        )];
        let s = |x: u64| T0 - x * SEC_NS;
        let today = Spend::default();
        // Oldest of 3 calls was 45 s ago: it leaves the window in 15 s.
        let calls = [s(45), s(20), s(1)];
        let d = evaluate(&req(0.0), &input(&ps, &today, &calls)).unwrap();
        assert_eq!(d.retry_after_s, Some(15));
        // A call 60 s old or older is outside the window.
        let calls = [s(60), s(20), s(1)];
        assert_eq!(evaluate(&req(0.0), &input(&ps, &today, &calls)), None);
        // Over the limit: the second oldest must leave too.
        let calls = [s(50), s(30), s(20), s(1)];
        assert_eq!(
            evaluate(&req(0.0), &input(&ps, &today, &calls))
                .unwrap()
                .retry_after_s,
            Some(30)
        );
        // A call this very instant: at least 1 s.
        let ps1 = [pol(
            "rl",
            "global",
            "rate_limit",
            json!({"max_per_minute": 1}),
        )];
        assert_eq!(
            evaluate(&req(0.0), &input(&ps1, &today, &[T0]))
                .unwrap()
                .retry_after_s,
            Some(60)
        );
        let other = [pol(
            "rl",
            "global",
            "rate_limit",
            json!({"tool": "bash", "max_per_minute": 1}),
        )];
        assert_eq!(
            evaluate(&req(0.0), &input(&other, &today, &[T0])),
            None,
            "other tool"
        );
    }

    #[test]
    fn most_restrictive_denial_wins() {
        let ps = [
            pol("a-daily", "global", "budget", json!({"daily_usd": 1.0})),
            pol("b-run", "agent:r", "budget", json!({"per_run_usd": 0.1})),
            pol("c-other", "agent:x", "budget", json!({"daily_usd": 0.0})),
        ];
        let today = spend(1.0);
        let d = evaluate(&req(0.2), &input(&ps, &today, &[])).unwrap();
        assert_eq!(
            d.policy_id, "b-run",
            "a denial retrying cannot fix beats a timed one"
        );
        assert_eq!(d.retry_after_s, None);
    }

    #[test]
    fn safety_requires_approval_for_listed_actions() {
        let ps = [pol(
            "s",
            "global",
            "safety",
            json!({"require_approval_for": ["network_write"]}),
        )];
        let today = Spend::default();
        let mut r = req(0.0);
        assert_eq!(evaluate(&r, &input(&ps, &today, &[])), None);
        r.action = Some("network_write");
        assert!(evaluate(&r, &input(&ps, &today, &[])).is_some());
    }

    #[test]
    fn secs_to_midnight_range() {
        assert_eq!(secs_to_midnight(0), 86_400);
        assert_eq!(secs_to_midnight(DAY_NS - 1), 1);
        assert_eq!(secs_to_midnight(DAY_NS - SEC_NS), 1);
        assert_eq!(secs_to_midnight(DAY_NS - SEC_NS - 1), 2);
    }
}
