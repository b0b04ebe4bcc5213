//! Policy service and budget ledger (PRD-018 §4.2, ADR-018 S4) and incident
//! mode (§4.10), driven through the real `argusctl` binary on real logs with
//! the seed's numbers: daily 5.00 USD, per run 0.50 USD, 10 calls a minute,
//! `docs.*` allowlist, error rate over 20%, halved budgets in incident.
//!
//! Entry timestamps are the writer's clock. The daily rollover is tested end
//! to end under libfaketime in tests/it/projections_logtime.rs; the spend spike
//! and window expiry are unit-tested in src/projections/{policy,incident}.rs
//! with explicit timestamps.
use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

fn ds(dir: &Path) -> String {
    dir.display().to_string()
}

fn set_policy(id: &str, scope: &str, ty: &str, config: Value) -> Value {
    json!({"kind":"policy.set","payload":{"policy_id":id,"scope":scope,"policy_type":ty,"config":config,"enabled":true}})
}

fn cost(agent: &str, job: &str, usd: f64, cpu: f64, tool: &str) -> Value {
    json!({"kind":"cost.logged","job_id":job,"agent":agent,"payload":{
        "usd":usd,"tokens_in":1000,"tokens_out":200,"model":"claude-haiku","price_table":"2026-11",
        "tool":tool,"cpu_seconds":cpu}})
}

fn call(agent: &str, tool: &str, i: usize) -> Value {
    json!({"kind":"tool.call_started","job_id":"j-rate","agent":agent,"payload":{"tool":tool,"call_id":format!("c{i}")}})
}

fn outcome(failed: bool, i: usize) -> Value {
    if failed {
        json!({"kind":"tool.call_failed","job_id":format!("j{i}"),"agent":"worker","payload":{"tool":"browser.fetch","error":"HTTP 503"}})
    } else {
        json!({"kind":"tool.call_completed","job_id":format!("j{i}"),"agent":"worker","payload":{"tool":"browser.fetch","duration_ms":120}})
    }
}

/// `policy check` with extra flags; returns (exit code, response).
fn check(dir: &Path, agent: &str, tool: &str, extra: &[&str]) -> (i32, Value, Run) {
    let mut args = vec![
        "policy".to_string(),
        "check".into(),
        ds(dir),
        "--agent".into(),
        agent.into(),
        "--tool".into(),
        tool.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let r = argus(&args);
    let v = r.json();
    (r.code.unwrap_or(-1), v, r)
}

fn assert_allowed(dir: &Path, agent: &str, tool: &str, extra: &[&str]) -> Value {
    let (code, v, r) = check(dir, agent, tool, extra);
    assert_eq!(code, 0, "expected allowed{}", r.ctx());
    assert_eq!(v["allowed"], json!(true), "{}", r.ctx());
    assert_eq!(v["reason"], Value::Null, "{}", r.ctx());
    assert_eq!(v["retry_after"], Value::Null, "{}", r.ctx());
    v
}

fn assert_denied(dir: &Path, agent: &str, tool: &str, extra: &[&str], policy_id: &str) -> Value {
    let (code, v, r) = check(dir, agent, tool, extra);
    assert_eq!(code, 3, "expected denied (exit 3){}", r.ctx());
    assert_eq!(v["allowed"], json!(false), "{}", r.ctx());
    assert_eq!(v["policy_id"], json!(policy_id), "{}", r.ctx());
    assert!(
        v["reason"].as_str().is_some_and(|s| !s.is_empty()),
        "{}",
        r.ctx()
    );
    v
}

fn json_of(args: &[&str]) -> Value {
    let r = argus(args);
    r.assert_ok();
    r.json()
}

fn entries(dir: &Path) -> u64 {
    stats(dir)["entries"].as_u64().expect("stats.entries")
}

fn denials(dir: &Path) -> Vec<Value> {
    cat_json(dir, &[])
        .into_iter()
        .filter(|e| e["kind"] == "policy.denied")
        .collect()
}

fn incident(dir: &Path) -> Value {
    json_of(&["incident", &ds(dir), "-o", "json"])
}

#[test]
fn daily_budget_5_usd_denies_until_utc_midnight() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy(
                "budget-researcher",
                "agent:researcher",
                "budget",
                json!({"daily_usd": 5.00}),
            ),
            cost("researcher", "j1", 2.45, 1.0, "llm"),
            cost("researcher", "j2", 2.45, 1.0, "llm"),
            cost("coder", "j3", 9.00, 1.0, "llm"),
        ],
    );
    // 4.90 + 0.10 = 5.00 is within the limit (exact, no float drift).
    assert_allowed(dir, "researcher", "llm", &["--cost", "0.10"]);
    let v = assert_denied(
        dir,
        "researcher",
        "llm",
        &["--cost", "0.20"],
        "budget-researcher",
    );
    let retry = v["retry_after"]
        .as_u64()
        .expect("retry_after is whole seconds");
    assert!(
        retry > 0 && retry <= 86_400,
        "retry_after {retry} must be until next UTC midnight"
    );
    assert!(v["reason"].as_str().unwrap().contains("5.00"), "{v}");
    // The agent-scoped budget does not touch another agent.
    assert_allowed(dir, "coder", "llm", &["--cost", "1.00"]);

    let rows = json_of(&["budget", &ds(dir), "--agent", "researcher", "-o", "json"]);
    assert_eq!(rows["agent"], "researcher");
    assert_eq!(rows["spent_usd"], json!(4.9));
    assert_eq!(rows["daily_limit_usd"], json!(5.0));
    assert_eq!(rows["remaining_usd"], json!(0.1));
    assert_eq!(rows["cpu_seconds"], json!(2.0));
    let all = argus(["budget", &ds(dir), "-o", "json"]);
    all.assert_ok();
    let agents: Vec<_> = all
        .json_lines()
        .iter()
        .map(|r| r["agent"].clone())
        .collect();
    assert_eq!(
        agents,
        [json!("coder"), json!("researcher")],
        "{}",
        all.ctx()
    );
    // Another day has no spend.
    let past = json_of(&[
        "budget",
        &ds(dir),
        "--agent",
        "researcher",
        "--day",
        "2001-01-01",
        "-o",
        "json",
    ]);
    assert_eq!(past["spent_usd"], json!(0.0));
    assert_eq!(past["day"], "2001-01-01");
    argus(["budget", &ds(dir), "--day", "2026-13-01"]).assert_code(1);
}

#[test]
fn per_run_budget_0_50_counts_only_that_job() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy(
                "run-cap",
                "global",
                "budget",
                json!({"daily_usd": 100.0, "per_run_usd": 0.50}),
            ),
            cost("researcher", "job-a", 0.30, 0.0, "llm"),
            cost("researcher", "job-a", 0.15, 0.0, "llm"),
        ],
    );
    assert_allowed(
        dir,
        "researcher",
        "llm",
        &["--job", "job-a", "--cost", "0.05"],
    );
    let v = assert_denied(
        dir,
        "researcher",
        "llm",
        &["--job", "job-a", "--cost", "0.06"],
        "run-cap",
    );
    assert_eq!(
        v["retry_after"],
        Value::Null,
        "retrying the same run cannot help"
    );
    assert_allowed(
        dir,
        "researcher",
        "llm",
        &["--job", "job-b", "--cost", "0.50"],
    );
    // A single call over a whole run's budget is denied even without a job.
    assert_denied(dir, "researcher", "llm", &["--cost", "0.51"], "run-cap");
}

#[test]
fn cpu_seconds_today_over_max_is_denied() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy(
                "cpu",
                "agent:coder",
                "budget",
                json!({"max_cpu_seconds": 10}),
            ),
            cost("coder", "j1", 0.0, 6.0, "bash"),
            cost("coder", "j2", 0.0, 4.0, "bash"),
        ],
    );
    assert_allowed(dir, "coder", "bash", &[]);
    record(dir, &[cost("coder", "j3", 0.0, 0.5, "bash")]);
    let v = assert_denied(dir, "coder", "bash", &[], "cpu");
    assert!(
        v["retry_after"]
            .as_u64()
            .is_some_and(|s| (1..=86_400).contains(&s)),
        "{v}"
    );
}

#[test]
fn rate_limit_10_per_minute_denies_the_11th_call() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let mut evs = vec![set_policy(
        "fetch-rate",
        "global",
        "rate_limit",
        json!({"tool": "browser.fetch", "max_per_minute": 10}),
    )];
    evs.extend((0..9).map(|i| call("researcher", "browser.fetch", i)));
    record(dir, &evs);
    assert_allowed(dir, "researcher", "browser.fetch", &[]);
    record(dir, &[call("researcher", "browser.fetch", 9)]);
    let v = assert_denied(dir, "researcher", "browser.fetch", &[], "fetch-rate");
    let retry = v["retry_after"].as_u64().expect("retry_after seconds");
    assert!((1..=60).contains(&retry), "retry_after {retry}");
    // Counted per agent and per tool.
    assert_allowed(dir, "planner", "browser.fetch", &[]);
    assert_allowed(dir, "researcher", "bash", &[]);
}

#[test]
fn allowlist_docs_wildcard() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[set_policy(
            "net",
            "tool:browser.fetch",
            "allowlist",
            json!({"allowed_domains": ["github.com", "*.example.com", "docs.*"]}),
        )],
    );
    for ok in [
        "docs.rs",
        "github.com",
        "api.example.com",
        "DOCS.python.org",
    ] {
        assert_allowed(dir, "researcher", "browser.fetch", &["--domain", ok]);
    }
    for bad in ["evil.com", "example.com", "github.com.evil.com"] {
        let v = assert_denied(
            dir,
            "researcher",
            "browser.fetch",
            &["--domain", bad],
            "net",
        );
        assert_eq!(v["retry_after"], Value::Null);
    }
    // The allowlist is scoped to browser.fetch.
    assert_allowed(dir, "researcher", "bash", &["--domain", "evil.com"]);
}

#[test]
fn safety_policy_requires_approval_for_listed_actions() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[set_policy(
            "safe",
            "global",
            "safety",
            json!({"require_approval_for": ["network_write", "system_admin"]}),
        )],
    );
    assert_allowed(dir, "coder", "bash", &["--action", "read_file"]);
    assert_denied(dir, "coder", "bash", &["--action", "system_admin"], "safe");
}

#[test]
fn removed_or_disabled_policies_no_longer_apply() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy("zero", "global", "budget", json!({"daily_usd": 0.0})),
            json!({"kind":"policy.set","payload":{"policy_id":"off","scope":"global","policy_type":"budget","config":{"daily_usd":0.0},"enabled":false}}),
        ],
    );
    assert_denied(dir, "a", "t", &["--cost", "0.01"], "zero");
    record(
        dir,
        &[json!({"kind":"policy.removed","payload":{"policy_id":"zero"}})],
    );
    assert_allowed(dir, "a", "t", &["--cost", "0.01"]);
    let listed = argus(["policy", "list", &ds(dir), "-o", "json"]);
    listed.assert_ok();
    let ids: Vec<_> = listed
        .json_lines()
        .iter()
        .map(|p| p["policy_id"].clone())
        .collect();
    assert_eq!(ids, [json!("off")], "{}", listed.ctx());
}

#[test]
fn most_restrictive_of_global_agent_and_tool_scopes_wins() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy("g", "global", "budget", json!({"daily_usd": 10.0})),
            set_policy("a", "agent:researcher", "budget", json!({"daily_usd": 3.0})),
            set_policy("t", "tool:llm", "budget", json!({"daily_usd": 1.0})),
            cost("researcher", "j1", 0.90, 0.0, "llm"),
            cost("researcher", "j1", 1.50, 0.0, "bash"),
        ],
    );
    // llm spend is 0.90 of a total 2.40: only the tool budget (1.00) denies.
    assert_denied(dir, "researcher", "llm", &["--cost", "0.20"], "t");
    // bash is not under the tool budget: total 2.40 vs the agent budget 3.00.
    assert_allowed(dir, "researcher", "bash", &["--cost", "0.60"]);
    assert_denied(dir, "researcher", "bash", &["--cost", "0.70"], "a");
    // Another agent only has the global budget.
    assert_allowed(dir, "planner", "bash", &["--cost", "9.00"]);
    assert_denied(dir, "planner", "bash", &["--cost", "10.01"], "g");
}

#[test]
fn every_denial_is_one_policy_denied_entry_with_the_actor_and_allowed_writes_nothing() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy(
                "net",
                "global",
                "allowlist",
                json!({"allowed_domains": ["docs.*"]}),
            ),
            set_policy(
                "budget",
                "agent:researcher",
                "budget",
                json!({"daily_usd": 5.00}),
            ),
            cost("researcher", "job-9", 4.95, 0.0, "browser.fetch"),
        ],
    );
    let before = entries(dir);
    for _ in 0..3 {
        assert_allowed(dir, "researcher", "browser.fetch", &["--domain", "docs.rs"]);
    }
    assert_eq!(entries(dir), before, "an allowed check writes nothing");

    let v = assert_denied(
        dir,
        "researcher",
        "browser.fetch",
        &["--domain", "evil.com", "--job", "job-9"],
        "net",
    );
    assert_eq!(
        entries(dir),
        before + 1,
        "a denial writes exactly one entry"
    );
    let d = denials(dir);
    assert_eq!(d.len(), 1);
    let e = &d[0];
    assert_eq!(e["seq"], v["recorded_seq"], "response names the entry");
    assert_eq!(
        e["actor"],
        actor_of("argus"),
        "the actor who ran the check: {e}"
    );
    assert_eq!(e["agent"], "researcher");
    assert_eq!(e["job_id"], "job-9");
    assert_eq!(e["payload"]["agent"], "researcher");
    assert_eq!(e["payload"]["tool"], "browser.fetch");
    assert_eq!(e["payload"]["policy_id"], "net");
    assert_eq!(e["payload"]["domain"], "evil.com");
    assert_eq!(e["payload"]["retry_after_s"], Value::Null);
    // Stored in canonical JSON (SPEC §4.1.1), where 0.0 is written `0`.
    assert_eq!(e["payload"]["cost_usd"].as_f64(), Some(0.0));
    assert_eq!(e["payload"]["reason"], v["reason"]);

    let v = assert_denied(dir, "researcher", "llm", &["--cost", "0.10"], "budget");
    let d = denials(dir);
    assert_eq!(d.len(), 2);
    assert_eq!(d[1]["payload"]["retry_after_s"], v["retry_after"]);
    assert_eq!(d[1]["payload"]["cost_usd"], json!(0.1));
    assert!(d[1]["payload"].get("domain").is_none());
}

#[test]
fn help_documents_exit_code_3() {
    let r = argus(["policy", "check", "--help"]);
    r.assert_ok();
    assert!(r.stdout.contains("3 denied"), "{}", r.ctx());
    assert!(r.stdout.contains("Example"), "{}", r.ctx());
}

#[test]
fn bad_cost_is_refused_before_anything_is_written() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let before = entries(dir);
    let r = argus([
        "policy",
        "check",
        &ds(dir),
        "--agent",
        "a",
        "--tool",
        "t",
        "--cost=-1",
    ]);
    // Out of its documented range: a usage error, raised before any work.
    r.assert_code(2);
    assert!(r.stderr.contains("--cost"), "{}", r.ctx());
    assert_eq!(entries(dir), before);
}

#[test]
fn error_rate_over_20_percent_of_at_least_10_events_is_an_incident() {
    // 3 failures of 16 (18.75%): normal. 2 of 10 (exactly 20%): normal.
    for pattern in ["oooooooooooooFFF", "ooooooooFF", "FFFoooo"] {
        let (tmp, _) = init_log(None);
        let dir = tmp.path();
        let evs: Vec<Value> = pattern
            .chars()
            .enumerate()
            .map(|(i, c)| outcome(c == 'F', i))
            .collect();
        record(dir, &evs);
        assert_eq!(incident(dir)["state"], "normal", "{pattern}");
    }
    // 3 failures of 10 (30%): incident at the 10th event.
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let mut evs: Vec<Value> = (0..7).map(|i| outcome(false, i)).collect();
    evs.push(
        json!({"kind":"job.failed","job_id":"j7","agent":"worker","payload":{"error":"boom"}}),
    );
    evs.extend((8..10).map(|i| outcome(true, i)));
    let acks = record(dir, &evs);
    let s = incident(dir);
    assert_eq!(s["state"], "incident", "{s}");
    assert_eq!(s["trigger"], "error_rate");
    assert_eq!(
        s["since_seq"],
        json!(acks[9].seq),
        "the 10th event triggered it"
    );
    assert!(s["reason"].as_str().unwrap().contains("3/10"), "{s}");
}

#[test]
fn more_than_3_stale_workers_within_5_minutes_is_an_incident() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let hb =
        |w: &str| json!({"kind":"heartbeat.stale","payload":{"worker_id":w,"last_seen_ms":90000}});
    record(dir, &[hb("w1"), hb("w2"), hb("w3"), hb("w3")]);
    assert_eq!(incident(dir)["state"], "normal", "3 distinct workers");
    record(dir, &[hb("w4")]);
    let s = incident(dir);
    assert_eq!(
        (s["state"].as_str(), s["trigger"].as_str()),
        (Some("incident"), Some("heartbeat")),
        "{s}"
    );
}

#[test]
fn declared_and_resolved_by_an_operator() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    assert_eq!(incident(dir)["state"], "normal");
    let acks = record(
        dir,
        &[
            json!({"kind":"incident.declared","payload":{"level":"degraded","reason":"provider latency"}}),
        ],
    );
    let s = incident(dir);
    assert_eq!(s["state"], "degraded");
    assert_eq!(s["reason"], "provider latency");
    assert_eq!(s["since_seq"], json!(acks[0].seq));
    assert_eq!(s["actor"], actor_of("agent"));
    assert!(s["since"].as_str().unwrap().ends_with('Z'));
    record(
        dir,
        &[json!({"kind":"incident.resolved","payload":{"resolution_note":"recovered"}})],
    );
    assert_eq!(incident(dir)["state"], "normal");
    let text = argus(["incident", &ds(dir)]);
    text.assert_ok();
    assert!(text.stdout.contains("state:   normal"), "{}", text.ctx());
}

#[test]
fn incident_halves_daily_budget_5_to_2_50_and_caps_retries() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            set_policy(
                "budget-researcher",
                "agent:researcher",
                "budget",
                json!({"daily_usd": 5.00}),
            ),
            cost("researcher", "j1", 2.40, 0.0, "llm"),
        ],
    );
    let v = assert_allowed(dir, "researcher", "llm", &["--cost", "0.20"]);
    assert!(
        v.get("incident").is_none() && v.get("max_retries").is_none(),
        "{v}"
    );

    // Degraded changes no budget.
    record(
        dir,
        &[json!({"kind":"incident.declared","payload":{"level":"degraded","reason":"slow"}})],
    );
    let v = assert_allowed(dir, "researcher", "llm", &["--cost", "0.20"]);
    assert!(v.get("incident").is_none(), "{v}");

    record(
        dir,
        &[json!({"kind":"incident.declared","payload":{"level":"incident","reason":"outage"}})],
    );
    // 2.40 + 0.10 = 2.50: at the halved limit, allowed, but fail fast.
    let v = assert_allowed(dir, "researcher", "llm", &["--cost", "0.10"]);
    assert_eq!(
        (v["incident"].clone(), v["max_retries"].clone()),
        (json!(true), json!(1)),
        "{v}"
    );
    let v = assert_denied(
        dir,
        "researcher",
        "llm",
        &["--cost", "0.20"],
        "budget-researcher",
    );
    assert_eq!(v["incident"], json!(true));
    assert_eq!(v["max_retries"], json!(1));
    assert!(v["reason"].as_str().unwrap().contains("2.50"), "{v}");
    let b = json_of(&["budget", &ds(dir), "--agent", "researcher", "-o", "json"]);
    assert_eq!(b["daily_limit_usd"], json!(2.5));
    assert_eq!(b["incident"], json!(true));

    record(dir, &[json!({"kind":"incident.resolved","payload":{}})]);
    assert_allowed(dir, "researcher", "llm", &["--cost", "0.20"]);
}

#[test]
fn rebuild_gives_identical_policy_and_incident_state() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let mut evs = vec![
        set_policy(
            "b",
            "global",
            "budget",
            json!({"daily_usd": 5.0, "per_run_usd": 0.5, "max_cpu_seconds": 100}),
        ),
        set_policy(
            "r",
            "global",
            "rate_limit",
            json!({"tool": "web", "max_per_minute": 10}),
        ),
    ];
    for i in 0..60 {
        evs.push(cost(
            ["a", "b", "c"][i % 3],
            &format!("j{}", i % 7),
            0.013 * i as f64,
            0.5,
            "web",
        ));
        evs.push(call(["a", "b"][i % 2], "web", i));
        evs.push(outcome(i % 4 == 0, i));
    }
    record(dir, &evs);
    // Built live, in several catch-ups.
    assert_allowed(dir, "z", "other", &[]);
    record(dir, &[json!({"kind":"incident.resolved","payload":{}})]);
    let digests = |r: &Run| -> Vec<(String, String)> {
        r.json_lines()
            .into_iter()
            .filter(|s| s["name"] == "policy" || s["name"] == "incident")
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_string(),
                    s["state_digest"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let live = argus(["projections", "status", &ds(dir), "-o", "json"]);
    live.assert_ok();
    let rebuilt = argus(["projections", "rebuild", &ds(dir), "-o", "json"]);
    rebuilt.assert_ok();
    assert_eq!(digests(&live).len(), 2, "{}", live.ctx());
    assert_eq!(
        digests(&live),
        digests(&rebuilt),
        "live vs rebuilt{}",
        rebuilt.ctx()
    );
}
