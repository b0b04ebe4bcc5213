//! Catalog projections (PRD-018 §4.1 agent registry, §4.3 model routes,
//! §4.4 feature flags, §4.8 memory proposal gate), driven through the real
//! `argusctl` binary on real logs, with the seed's numbers.
use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

fn ev(kind: &str, payload: Value) -> Value {
    json!({"kind": kind, "payload": payload})
}

fn ds(dir: &Path) -> String {
    dir.display().to_string()
}

/// Runs argusctl with `args` (DIR already included by the caller).
fn run(args: &[&str]) -> Run {
    argus(args)
}

fn json_of(args: &[&str]) -> Value {
    let r = run(args);
    r.assert_ok();
    r.json()
}

fn lines_of(args: &[&str]) -> Vec<Value> {
    let r = run(args);
    r.assert_ok();
    r.json_lines()
}

fn entry_count(dir: &Path) -> u64 {
    json_of(&["stats", &ds(dir)])["entries"]
        .as_u64()
        .expect("stats.entries")
}

fn last_entry(dir: &Path) -> Value {
    let d = ds(dir);
    lines_of(&["tail", &d, "-n", "1", "-o", "json"])
        .pop()
        .expect("one entry")
}

// ---------------------------------------------------------------- agents

fn agent_events() -> Vec<Value> {
    vec![
        ev(
            "agent.registered",
            json!({"slug": "researcher", "version": 1, "description": "web research",
                   "capabilities": ["web_search", "read_file"], "memory_read": ["semantic"],
                   "memory_write": ["episodic"], "model_policy": {"default": "sonnet", "max_cost": 0.5}}),
        ),
        ev(
            "agent.updated",
            json!({"slug": "researcher", "version": 2, "capabilities": ["web_search", "read_file", "summarize"],
                   "changelog": "add summarize"}),
        ),
        // Not greater than the current version: both must be ignored.
        ev(
            "agent.updated",
            json!({"slug": "researcher", "version": 2, "capabilities": ["rm_rf"], "changelog": "replay of v2"}),
        ),
        ev(
            "agent.updated",
            json!({"slug": "researcher", "version": 1, "enabled": false, "changelog": "rollback attempt"}),
        ),
        ev(
            "agent.registered",
            json!({"slug": "coder", "version": 3, "capabilities": ["bash"]}),
        ),
        ev(
            "agent.disabled",
            json!({"slug": "coder", "reason": "incident 42"}),
        ),
        ev(
            "agent.disabled",
            json!({"slug": "ghost", "reason": "never registered"}),
        ),
    ]
}

#[test]
fn agents_hold_current_definition_and_version_history() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(dir, &agent_events());
    let d = ds(dir);

    let list = lines_of(&["agents", &d, "-o", "json"]);
    assert_eq!(list.len(), 2, "two agents: {list:?}");
    assert_eq!(list[0]["slug"], "coder");
    assert_eq!(list[0]["version"], 3);
    assert_eq!(list[0]["enabled"], false, "agent.disabled turns it off");
    assert_eq!(list[0]["disabled_reason"], "incident 42");
    let r = &list[1];
    assert_eq!(r["slug"], "researcher");
    assert_eq!(r["version"], 2, "stale updates must not move the version");
    assert_eq!(
        r["enabled"], true,
        "the ignored v1 update must not disable it"
    );
    assert_eq!(
        r["capabilities"],
        json!(["web_search", "read_file", "summarize"]),
        "v2 capabilities, not the ignored replay's"
    );
    // Partial update: fields v2 did not carry keep their v1 values.
    assert_eq!(r["memory_read"], json!(["semantic"]));
    assert_eq!(r["model_policy"]["default"], "sonnet");
    assert_eq!(r["ignored"], 2);

    let one = json_of(&["agents", &d, "--slug", "researcher", "-o", "json"]);
    let versions: Vec<u64> = one["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        vec![1, 2],
        "one history record per version{one:#}"
    );
    assert_eq!(one["versions"][1]["changelog"], "add summarize");
    assert_eq!(
        one["versions"][0]["snapshot"]["capabilities"],
        json!(["web_search", "read_file"]),
        "v1 snapshot is the definition as it stood at v1"
    );
    assert_eq!(one["versions"][0]["actor"], actor_of("operator"));
    let ignored = one["ignored_entries"].as_array().unwrap();
    assert_eq!(ignored.len(), 2, "{one:#}");
    for (i, v) in ignored.iter().zip([2, 1]) {
        assert_eq!(i["version"], v);
        assert_eq!(i["current_version"], 2);
        assert!(i["reason"].as_str().unwrap().contains("not greater"), "{i}");
    }

    let text = run(&["agents", &d]);
    text.assert_ok();
    assert!(text.stdout.contains("slug") && text.stdout.contains("capabilities"));
    assert!(
        text.stdout.contains("web_search,read_file,summarize"),
        "{}",
        text.ctx()
    );
    let text = run(&["agents", &d, "--slug", "researcher"]);
    text.assert_ok();
    assert!(text.stdout.contains("ignored entries"), "{}", text.ctx());

    let ghost = run(&["agents", &d, "--slug", "ghost", "-o", "json"]);
    ghost.assert_code(1);
    assert!(ghost.stderr.contains("ghost"), "{}", ghost.ctx());
    let none = run(&["agents", &d, "--slug", "nobody"]);
    none.assert_code(1);
    assert!(none.stderr.contains("nobody"), "{}", none.ctx());
}

#[test]
fn agent_update_of_unknown_slug_creates_it_and_reregistration_needs_higher_version() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            ev(
                "agent.updated",
                json!({"slug": "late", "version": 4, "capabilities": ["x"]}),
            ),
            ev(
                "agent.registered",
                json!({"slug": "late", "version": 4, "capabilities": ["y"]}),
            ),
            ev(
                "agent.registered",
                json!({"slug": "late", "version": 5, "capabilities": ["z"]}),
            ),
        ],
    );
    let one = json_of(&["agents", &ds(dir), "--slug", "late", "-o", "json"]);
    assert_eq!(one["version"], 5);
    assert_eq!(one["capabilities"], json!(["z"]));
    assert_eq!(one["versions"].as_array().unwrap().len(), 2);
    assert_eq!(one["ignored_entries"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------- routes

fn route(task: &str, model: &str, priority: i64, cost: f64, ctx: Option<u64>) -> Value {
    let mut p = json!({"task_type": task, "provider": "anthropic", "model": model,
                       "priority": priority, "max_cost_usd": cost, "enabled": true});
    if let Some(c) = ctx {
        p["conditions"] = json!({"max_context_length": c});
    }
    ev("route.set", p)
}

fn chain(v: &Value) -> Vec<String> {
    v["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn route_chain_sorted_by_priority_then_model_and_filtered() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            route("code_review", "sonnet", 1, 0.50, Some(200_000)),
            route("code_review", "haiku", 2, 0.05, Some(100_000)),
            route("code_review", "opus", 1, 2.00, None),
            ev(
                "route.set",
                json!({"task_type": "code_review", "model": "gpt-x", "priority": 0,
                       "max_cost_usd": 0.01, "enabled": false}),
            ),
            // Same task type + model again: replaces, never duplicates.
            route("code_review", "haiku", 3, 0.05, Some(100_000)),
            route("code_review/extra", "tiny", 0, 0.01, None),
        ],
    );
    let d = ds(dir);
    let all = json_of(&["route", &d, "code_review", "-o", "json"]);
    assert_eq!(all["source"], "configured");
    assert_eq!(chain(&all), ["opus", "sonnet", "haiku"], "{all:#}");
    assert_eq!(
        all["chosen"]["model"], "opus",
        "priority tie broken by model name"
    );
    assert_eq!(
        all["chain"][2]["priority"], 3,
        "the later route.set replaced haiku"
    );
    assert!(
        all["excluded"].to_string().contains("gpt-x"),
        "disabled route is excluded, not chosen{all:#}"
    );

    // max_cost_usd <= cap, boundary included.
    let cheap = json_of(&[
        "route",
        &d,
        "code_review",
        "--max-cost",
        "0.5",
        "-o",
        "json",
    ]);
    assert_eq!(chain(&cheap), ["sonnet", "haiku"], "{cheap:#}");
    let cheaper = json_of(&[
        "route",
        &d,
        "code_review",
        "--max-cost",
        "0.49",
        "-o",
        "json",
    ]);
    assert_eq!(chain(&cheaper), ["haiku"], "{cheaper:#}");

    // max_context_length >= N, boundary included; no condition = no limit.
    let long = json_of(&[
        "route",
        &d,
        "code_review",
        "--context-length",
        "100001",
        "-o",
        "json",
    ]);
    assert_eq!(chain(&long), ["opus", "sonnet"], "{long:#}");
    let exact = json_of(&[
        "route",
        &d,
        "code_review",
        "--context-length",
        "100000",
        "-o",
        "json",
    ]);
    assert_eq!(chain(&exact), ["opus", "sonnet", "haiku"], "{exact:#}");
    let both = json_of(&[
        "route",
        &d,
        "code_review",
        "--max-cost",
        "1",
        "--context-length",
        "150000",
        "-o",
        "json",
    ]);
    assert_eq!(chain(&both), ["sonnet"], "{both:#}");
    assert_eq!(both["chosen"]["model"], "sonnet");

    // Nothing fits: an error naming the task type, not a silent default.
    let none = run(&["route", &d, "code_review", "--max-cost", "0.001"]);
    none.assert_code(1);
    assert!(none.stderr.contains("code_review"), "{}", none.ctx());

    record(
        dir,
        &[ev(
            "route.removed",
            json!({"task_type": "code_review", "model": "opus"}),
        )],
    );
    let after = json_of(&["route", &d, "code_review", "-o", "json"]);
    assert_eq!(chain(&after), ["sonnet", "haiku"], "{after:#}");

    let text = run(&["route", &d, "code_review"]);
    text.assert_ok();
    assert!(
        text.stdout.contains("sonnet") && text.stdout.contains("chosen"),
        "{}",
        text.ctx()
    );
}

#[test]
fn route_falls_back_to_seed_defaults_and_rejects_unknown_task_types() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(dir, &[route("greeting", "sonnet", 1, 0.1, None)]);
    let d = ds(dir);
    for (task, model) in [
        ("health_check", "haiku"),
        ("content_generation", "sonnet"),
        ("code_review", "sonnet"),
        ("research_synthesis", "sonnet"),
        ("strategy_planning", "opus"),
    ] {
        let v = json_of(&["route", &d, task, "-o", "json"]);
        assert_eq!(v["source"], "default", "{task}: {v:#}");
        assert_eq!(v["chosen"]["model"], model, "{task}: {v:#}");
        assert_eq!(chain(&v), [model]);
    }
    // A configured route wins over the default table.
    let g = json_of(&["route", &d, "greeting", "-o", "json"]);
    assert_eq!(g["source"], "configured");
    assert_eq!(g["chosen"]["model"], "sonnet");

    let text = run(&["route", &d, "strategy_planning"]);
    text.assert_ok();
    assert!(
        text.stdout.contains("default") && text.stdout.contains("opus"),
        "{}",
        text.ctx()
    );

    let unknown = run(&["route", &d, "interpretive_dance", "-o", "json"]);
    unknown.assert_code(1);
    assert!(
        unknown.stderr.contains("interpretive_dance"),
        "{}",
        unknown.ctx()
    );
    assert!(unknown.stdout.is_empty(), "{}", unknown.ctx());
}

// ----------------------------------------------------------------- flags

fn is_enabled(d: &str, key: &str, ctx: &[(&str, &str)]) -> Value {
    let mut args: Vec<String> = vec!["flag".into(), "is-enabled".into(), d.into(), key.into()];
    for (k, v) in ctx {
        args.push("--context".into());
        args.push(format!("{k}={v}"));
    }
    args.extend(["-o".into(), "json".into()]);
    let r = argus(&args);
    r.assert_ok();
    let v = r.json();
    assert_eq!(v["key"], key, "{}", r.ctx());
    assert!(
        v["enabled"].is_boolean() && v["reason"].is_string(),
        "{}",
        r.ctx()
    );
    v
}

fn on(d: &str, key: &str, ctx: &[(&str, &str)]) -> bool {
    is_enabled(d, key, ctx)["enabled"].as_bool().unwrap()
}

/// The §4.4 bucket computed here from the rule's text, independently of
/// the code under test.
fn expected_bucket(key: &str, ctx: &[(&str, &str)]) -> u64 {
    let sorted: BTreeMap<&str, &str> = ctx.iter().copied().collect();
    let s: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let h = blake3::hash(format!("{key}\0{}", s.join("&")).as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap()) % 100
}

fn flag(key: &str, enabled: bool, pct: u64, targets: &[&str], expires: Option<&str>) -> Value {
    let mut p = json!({"key": key, "enabled": enabled, "rollout_pct": pct, "target_ids": targets});
    if let Some(e) = expires {
        p["expires_at"] = e.into();
    }
    ev("flag.set", p)
}

#[test]
fn flag_rollout_is_deterministic_and_proportional() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            flag("zero", true, 0, &[], None),
            flag("all", true, 100, &[], None),
            flag("half", true, 50, &[], None),
        ],
    );
    let d = ds(dir);
    // The CLI against the rule computed here, on 16 contexts (each call is a
    // process that opens the projections: hundreds would only cost time).
    for i in 0..16 {
        let user = format!("user-{i}");
        let agent = format!("agent-{}", i % 7);
        // Given in unsorted order: the stable string sorts by key.
        let ctx = [("user", user.as_str()), ("agent", agent.as_str())];
        assert!(!on(&d, "zero", &ctx), "0% must be off for {ctx:?}");
        assert!(on(&d, "all", &ctx), "100% must be on for {ctx:?}");
        let first = is_enabled(&d, "half", &ctx);
        let b = expected_bucket("half", &ctx);
        assert_eq!(
            first["enabled"],
            b < 50,
            "bucket rule: BLAKE3 bucket {b} for {ctx:?}: {first}"
        );
        let second = is_enabled(&d, "half", &[ctx[1], ctx[0]]);
        assert_eq!(first, second, "same context, same answer");
    }
    // The rule itself spreads contexts evenly: 50% of 2,000.
    let half_on = (0..2000)
        .filter(|i| {
            let (user, agent) = (format!("user-{i}"), format!("agent-{}", i % 7));
            expected_bucket("half", &[("user", &user), ("agent", &agent)]) < 50
        })
        .count();
    assert!(
        (900..=1100).contains(&half_on),
        "50% rollout gave {half_on}/2000"
    );
}

#[test]
fn flag_rules_in_order_unknown_disabled_expired_targets() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            flag("targeted", true, 0, &["researcher", "u-7"], None),
            flag("off", false, 100, &["researcher"], None),
            flag(
                "old",
                true,
                100,
                &["researcher"],
                Some("2000-01-01T00:00:00Z"),
            ),
            flag("future", true, 100, &[], Some("2999-01-01T00:00:00+02:00")),
            flag("garbled", true, 100, &[], Some("next tuesday")),
            flag("gone", true, 100, &[], None),
            ev("flag.removed", json!({"key": "gone"})),
            // Re-set after removal: a set replaces everything.
            flag("back", true, 100, &[], None),
            ev("flag.removed", json!({"key": "back"})),
            flag("back", true, 100, &[], None),
        ],
    );
    let d = ds(dir);
    let v = is_enabled(&d, "nope", &[("agent", "researcher")]);
    assert_eq!(v["enabled"], false);
    assert!(v["reason"].as_str().unwrap().contains("unknown"), "{v}");
    let v = is_enabled(&d, "gone", &[("agent", "researcher")]);
    assert_eq!(v["enabled"], false);
    assert!(v["reason"].as_str().unwrap().contains("removed"), "{v}");
    assert!(on(&d, "back", &[]), "a set after a removal brings it back");

    // enabled=false beats targets and 100%.
    let v = is_enabled(&d, "off", &[("agent", "researcher")]);
    assert_eq!(v["enabled"], false);
    assert!(v["reason"].as_str().unwrap().contains("disabled"), "{v}");
    // Expiry beats targets and 100%; a future expiry does nothing.
    let v = is_enabled(&d, "old", &[("agent", "researcher")]);
    assert_eq!(v["enabled"], false);
    assert!(v["reason"].as_str().unwrap().contains("expired"), "{v}");
    assert!(on(&d, "future", &[("agent", "x")]));
    // An expiry that is not RFC 3339 fails closed.
    assert!(!on(&d, "garbled", &[("agent", "x")]));

    // Targets override a 0% rollout, on any context value.
    let v = is_enabled(&d, "targeted", &[("agent", "researcher")]);
    assert_eq!(v["enabled"], true, "{v}");
    assert!(v["reason"].as_str().unwrap().contains("target"), "{v}");
    assert!(on(&d, "targeted", &[("agent", "coder"), ("user", "u-7")]));
    assert!(!on(&d, "targeted", &[("agent", "coder"), ("user", "u-8")]));
    assert!(!on(&d, "targeted", &[]));

    // Text output says enabled/disabled; the exit status is 0 either way.
    let r = run(&["flag", "is-enabled", &d, "off"]);
    r.assert_ok();
    assert!(r.stdout.contains("disabled"), "{}", r.ctx());
    let bad = run(&["flag", "is-enabled", &d, "off", "--context", "novalue"]);
    bad.assert_code(1);
    assert!(bad.stderr.contains("KEY=VALUE"), "{}", bad.ctx());

    let list = lines_of(&["flags", &d, "-o", "json"]);
    let keys: Vec<&str> = list.iter().map(|f| f["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        ["back", "future", "garbled", "off", "old", "targeted"]
    );
    let old = list.iter().find(|f| f["key"] == "old").unwrap();
    assert_eq!(old["expired"], true);
    let fut = list.iter().find(|f| f["key"] == "future").unwrap();
    assert_eq!(fut["expired"], false);
}

#[test]
fn flag_set_appends_one_entry_and_refuses_bad_input_before_appending() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = ds(dir);
    let r = run(&[
        "flag",
        "set",
        &d,
        "new_synthesis_v2",
        "--enabled",
        "true",
        "--rollout-pct",
        "0",
        "--target",
        "researcher",
        "--target",
        "critic",
        "--expires-at",
        "2999-12-31T23:59:59Z",
        "-o",
        "json",
    ]);
    r.assert_ok();
    assert_eq!(r.json()["seq"], 0, "{}", r.ctx());
    assert_eq!(entry_count(dir), 1, "exactly one entry");
    let e = last_entry(dir);
    assert_eq!(e["kind"], "flag.set");
    assert_eq!(
        e["actor"],
        actor_of("operator"),
        "the decision records its actor"
    );
    assert_eq!(e["payload"]["target_ids"], json!(["researcher", "critic"]));
    assert_eq!(e["payload"]["expires_at"], "2999-12-31T23:59:59Z");
    assert!(on(&d, "new_synthesis_v2", &[("agent", "critic")]));
    assert!(!on(&d, "new_synthesis_v2", &[("agent", "coder")]));

    let r = run(&["flag", "set", &d, "new_synthesis_v2", "--enabled", "false"]);
    r.assert_ok();
    assert!(!on(&d, "new_synthesis_v2", &[("agent", "critic")]));
    assert_eq!(entry_count(dir), 2);

    for bad in [
        vec!["--enabled", "true", "--expires-at", "tomorrow"],
        vec!["--enabled", "true", "--rollout-pct", "101"],
        vec!["--enabled", "maybe"],
        vec!["--rollout-pct", "10"],
    ] {
        let mut args = vec!["flag", "set", &d, "k"];
        args.extend(bad.iter().copied());
        let r = run(&args);
        assert!(matches!(r.code, Some(1 | 2)), "refused{}", r.ctx());
        assert_eq!(entry_count(dir), 2, "a refusal writes nothing{}", r.ctx());
    }
    let flags = lines_of(&["flags", &d, "-o", "json"]);
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0]["enabled"], false);
}

// ----------------------------------------------------------------- memory

fn created(id: &str, authorities: &[f64]) -> Value {
    let sources: Vec<Value> = authorities
        .iter()
        .enumerate()
        .map(|(i, a)| json!({"id": format!("{id}-src{i}"), "authority": a}))
        .collect();
    ev(
        "memory.proposal.created",
        json!({"proposal_id": id, "source_agent": "researcher", "target_layer": 1,
               "target_key": format!("fact/{id}"), "proposed_value": {"claim": id},
               "evidence_refs": ["ev-1"], "sources": sources}),
    )
}

fn scored(id: &str, score: f64) -> Value {
    ev(
        "memory.proposal.scored",
        json!({"proposal_id": id, "score": score}),
    )
}

fn statuses(d: &str) -> BTreeMap<String, String> {
    lines_of(&["memory", d, "-o", "json"])
        .into_iter()
        .map(|p| {
            (
                p["proposal_id"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn memory_events() -> Vec<Value> {
    vec![
        created("at-threshold", &[0.7]),
        scored("at-threshold", 7.0),
        created("score-6.9", &[0.95]),
        scored("score-6.9", 6.9),
        created("authority-0.69", &[0.69, 0.5]),
        scored("authority-0.69", 7.0),
        created("any-source", &[0.2, 0.95]),
        scored("any-source", 9.0),
        created("unscored", &[0.9]),
        created("rejected", &[0.9]),
        scored("rejected", 8.0),
        ev(
            "memory.proposal.rejected",
            json!({"proposal_id": "rejected", "reviewer": "alice", "reason": "wrong"}),
        ),
        created("deferred-then-rescored", &[0.8]),
        scored("deferred-then-rescored", 5.0),
        ev(
            "memory.proposal.deferred",
            json!({"proposal_id": "deferred-then-rescored", "reviewer": "alice"}),
        ),
        scored("deferred-then-rescored", 8.5),
        created("deferred", &[0.8]),
        ev(
            "memory.proposal.deferred",
            json!({"proposal_id": "deferred", "reviewer": "bob"}),
        ),
        // A score for a proposal never created changes nothing.
        scored("orphan", 9.0),
    ]
}

#[test]
fn memory_gate_boundaries_and_sweep() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let acks = record(dir, &memory_events());
    let d = ds(dir);
    let want: BTreeMap<String, String> = [
        ("at-threshold", "auto_approvable"),
        ("score-6.9", "pending"),
        ("authority-0.69", "pending"),
        ("any-source", "auto_approvable"),
        ("unscored", "pending"),
        ("rejected", "rejected"),
        ("deferred-then-rescored", "auto_approvable"),
        ("deferred", "deferred"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses(&d), want);

    let only = lines_of(&["memory", &d, "--status", "auto_approvable", "-o", "json"]);
    assert_eq!(only.len(), 3);
    assert_eq!(only[0]["max_authority"], 0.95);

    let before = entry_count(dir);
    let r = run(&["memory", &d, "--sweep", "-o", "json"]);
    r.assert_ok();
    assert_eq!(
        entry_count(dir),
        before + 3,
        "one approval per auto_approvable proposal{}",
        r.ctx()
    );
    let swept: Vec<Value> = lines_of(&["cat", &d, "--from", &before.to_string(), "-o", "json"]);
    let mut approved: Vec<&str> = Vec::new();
    for e in &swept {
        assert_eq!(e["kind"], "memory.proposal.approved");
        assert_eq!(e["payload"]["reviewer"], "auto");
        assert_eq!(
            e["payload"]["reason"],
            "score >= 7.0 with a source of authority >= 0.7"
        );
        assert_eq!(e["actor"], actor_of("operator"));
        let id = e["payload"]["proposal_id"].as_str().unwrap();
        let created_seq = memory_events()
            .iter()
            .position(|x| {
                x["kind"] == "memory.proposal.created" && x["payload"]["proposal_id"] == id
            })
            .unwrap();
        assert_eq!(
            e["parent"], acks[created_seq].seq,
            "parent = the proposal's entry"
        );
        approved.push(id);
    }
    approved.sort();
    assert_eq!(
        approved,
        ["any-source", "at-threshold", "deferred-then-rescored"]
    );

    let after: BTreeMap<String, Value> = r
        .json_lines()
        .into_iter()
        .map(|p| (p["proposal_id"].as_str().unwrap().to_string(), p))
        .collect();
    assert_eq!(after["at-threshold"]["status"], "approved");
    assert_eq!(after["at-threshold"]["reviewer"], "auto");
    assert_eq!(after["score-6.9"]["status"], "pending");
    assert_eq!(after["rejected"]["status"], "rejected");

    // Nothing left to approve: a second sweep appends nothing.
    run(&["memory", &d, "--sweep"]).assert_ok();
    assert_eq!(entry_count(dir), before + 3);

    // Approval is final: a later rejection is recorded, not applied.
    record(
        dir,
        &[ev(
            "memory.proposal.rejected",
            json!({"proposal_id": "at-threshold", "reviewer": "carol"}),
        )],
    );
    let p = lines_of(&["memory", &d, "-o", "json"])
        .into_iter()
        .find(|p| p["proposal_id"] == "at-threshold")
        .unwrap();
    assert_eq!(p["status"], "approved");
    assert_eq!(p["late_decisions"][0]["reviewer"], "carol");

    let text = run(&["memory", &d]);
    text.assert_ok();
    assert!(
        text.stdout.contains("score-6.9") && text.stdout.contains("pending"),
        "{}",
        text.ctx()
    );
}

// ------------------------------------------------------- determinism

fn digests(dir: &Path, args: &[&str]) -> BTreeMap<String, String> {
    let mut a = args.to_vec();
    let d = ds(dir);
    a.insert(2, &d);
    a.extend(["-o", "json"]);
    lines_of(&a)
        .into_iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state_digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Builds the state live (one view after every append batch), then throws
/// it away and rebuilds from the log twice: the digest of `name` must be
/// byte-identical each time, and differ from the empty state's.
fn rebuild_is_byte_identical(name: &str, events: &[Value]) {
    let (empty, _) = init_log(None);
    let empty_digest = digests(empty.path(), &["projections", "status"])[name].clone();

    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    for chunk in events.chunks(3) {
        record(dir, chunk);
        digests(dir, &["projections", "status"]);
    }
    let live = digests(dir, &["projections", "status"])[name].clone();
    assert_ne!(live, empty_digest, "{name}: the events must produce state");
    let rebuilt = digests(dir, &["projections", "rebuild", name])[name].clone();
    assert_eq!(
        rebuilt, live,
        "{name}: rebuild from seq 0 must give the same bytes"
    );
    std::fs::remove_dir_all(dir.join("projections")).unwrap();
    let fresh = digests(dir, &["projections", "status"])[name].clone();
    assert_eq!(
        fresh, live,
        "{name}: a deleted store must rebuild to the same bytes"
    );
}

#[test]
fn agents_rebuild_is_byte_identical() {
    rebuild_is_byte_identical("agents", &agent_events());
}

#[test]
fn routes_rebuild_is_byte_identical() {
    rebuild_is_byte_identical(
        "routes",
        &[
            route("code_review", "sonnet", 1, 0.5, Some(200_000)),
            route("code_review", "haiku", 2, 0.05, None),
            route("greeting", "haiku", 1, 0.01, None),
            ev(
                "route.removed",
                json!({"task_type": "code_review", "model": "haiku"}),
            ),
        ],
    );
}

#[test]
fn flags_rebuild_is_byte_identical() {
    rebuild_is_byte_identical(
        "flags",
        &[
            flag("a", true, 30, &["x"], Some("2999-01-01T00:00:00Z")),
            flag("b", false, 0, &[], None),
            ev("flag.removed", json!({"key": "b"})),
            flag("a", true, 60, &[], None),
        ],
    );
}

#[test]
fn memory_gate_rebuild_is_byte_identical() {
    rebuild_is_byte_identical("memory_gate", &memory_events());
}

#[test]
fn catalog_views_have_examples_in_help() {
    for args in [
        vec!["agents", "--help"],
        vec!["route", "--help"],
        vec!["flag", "is-enabled", "--help"],
        vec!["flag", "set", "--help"],
        vec!["flags", "--help"],
        vec!["memory", "--help"],
    ] {
        let r = argus(args.iter().map(OsStr::new).collect::<Vec<_>>());
        r.assert_ok();
        assert!(r.stdout.contains("Example"), "{}", r.ctx());
    }
}
