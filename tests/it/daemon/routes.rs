//! Every route of docs/API.md answers as documented: each view with the JSON
//! its `argusctl` command prints, each decision with its effect in the log,
//! and the failures (404, 409, 403, a command argusd will not run) with
//! their status. The last test checks that docs/API.md names no route this
//! file does not exercise.
use super::harness::Daemon;
use super::http::{request, Response};
use crate::common::{argus, record};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const SESSION: &str = include_str!("../../../src/cli/demo_session.jsonl");

fn proposal(id: &str) -> Value {
    json!({"kind": "proposal.created", "job_id": format!("job-{id}"), "agent": "planner",
        "payload": {"proposal_id": id, "action_type": "file_write", "risk": "medium",
            "rationale": "write the quarterly report to disk", "mission_context": "routes test",
            "rollback_plan": "delete it", "parameters": {"path": format!("{id}.md")}}})
}

/// A daemon serving the demo session plus two pending proposals.
fn served() -> Daemon {
    let mut d = Daemon::start();
    assert!(d.term().success());
    let mut entries: Vec<Value> = SESSION
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    entries.push(proposal("p-route-a"));
    entries.push(proposal("p-route-b"));
    record(&d.dir, &entries);
    d.spawn();
    d
}

fn get(d: &Daemon, path: &str) -> Response {
    request(&d.addr, "GET", path, &[], b"").unwrap()
}

fn post(d: &Daemon, path: &str, body: &Value) -> Response {
    request(
        &d.addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

fn lines(r: &Response) -> Vec<Value> {
    r.text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Routes as docs/API.md writes them, and the concrete paths used here.
const VIEWS: &[(&str, &str)] = &[
    ("/v1/status", "/v1/status"),
    ("/v1/stats", "/v1/stats"),
    ("/v1/checkpoint", "/v1/checkpoint"),
    ("/v1/kinds", "/v1/kinds"),
    ("/v1/jobs", "/v1/jobs"),
    ("/v1/jobs/{job}", "/v1/jobs/job-7f3a"),
    ("/v1/agents", "/v1/agents"),
    ("/v1/agents/{slug}", "/v1/agents/planner"),
    (
        "/v1/routes/{task_type}",
        "/v1/routes/research_synthesis?max_cost=1",
    ),
    ("/v1/flags", "/v1/flags"),
    (
        "/v1/flags/{key}",
        "/v1/flags/new-planner?context=agent=planner",
    ),
    ("/v1/memory", "/v1/memory"),
    ("/v1/approvals", "/v1/approvals?all=true"),
    ("/v1/approvals/{id}", "/v1/approvals/p-001"),
    ("/v1/mode", "/v1/mode"),
    ("/v1/dlq", "/v1/dlq?all=true"),
    ("/v1/dlq/{job}", "/v1/dlq/job-9c21"),
    ("/v1/sla", "/v1/sla?breaches=true"),
    ("/v1/breakers", "/v1/breakers"),
    ("/v1/workers", "/v1/workers?all=true&stale_after_s=30"),
    ("/v1/policies", "/v1/policies"),
    ("/v1/budget", "/v1/budget?agent=researcher"),
    ("/v1/incident", "/v1/incident"),
    ("/v1/control", "/v1/control"),
    ("/v1/anomalies", "/v1/anomalies?severity=critical"),
    ("/v1/projections", "/v1/projections"),
    ("/v1/inspect/{seq}", "/v1/inspect/8?scan=100"),
    ("/v1/diff/{job_a}/{job_b}", "/v1/diff/job-7f3a/job-9c21"),
];

#[test]
fn every_view_route_answers_what_its_command_prints() {
    let d = served();
    for (route, path) in VIEWS {
        let r = get(&d, path);
        assert_eq!(r.status, 200, "{route}: {}", r.text());
        assert_eq!(r.header("x-argus-exit"), Some("0"), "{route}");
        let ct = r.header("content-type").unwrap_or_default().to_string();
        match ct.as_str() {
            "application/json" => {
                r.json();
            }
            "application/x-ndjson" => {
                lines(&r);
            }
            _ => assert!(ct.starts_with("text/plain"), "{route}: {ct}"),
        }
    }
    // Facts the session holds, as the views report them.
    let jobs = lines(&get(&d, "/v1/jobs"));
    assert!(jobs
        .iter()
        .any(|j| j["job_id"] == "job-7f3a" && j["status"] == "completed"));
    let job = get(&d, "/v1/jobs/job-7f3a").json();
    assert_eq!(job["job_id"], "job-7f3a");
    let pending = lines(&get(&d, "/v1/approvals"));
    let ids: BTreeSet<&str> = pending
        .iter()
        .filter_map(|p| p["proposal_id"].as_str())
        .collect();
    assert!(
        ids.contains("p-route-a") && ids.contains("p-route-b"),
        "{pending:?}"
    );
    let dlq = lines(&get(&d, "/v1/dlq"));
    assert!(dlq.iter().any(|i| i["job_id"] == "job-9c21"), "{dlq:?}");
    // format=text is the text view.
    let text = get(&d, "/v1/jobs?format=text");
    assert!(text.text().starts_with("job "), "{}", text.text());
    // Errors of views.
    let r = get(&d, "/v1/jobs/no-such-job");
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.error()["kind"], "not_found");
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("no job \"no-such-job\""));
    let r = get(&d, "/v1/diff/job-7f3a/no-such-job");
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("no job \"no-such-job\""));
    let r = get(&d, "/v1/inspect/99999999");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("seq 99999999 is not in the log"));
    let r = get(&d, "/v1/jobs?bogus=1");
    assert_eq!(r.status, 400);
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("unknown parameter \"bogus\""));
    let r = get(&d, "/v1/workers?stale_after_s=99999999999");
    assert_eq!(r.status, 400, "the command's own range check: {}", r.text());
    let r = get(&d, "/v1/nope");
    assert_eq!(r.status, 404);
}

/// Decision routes as docs/API.md writes them; each is exercised below.
const DECISIONS: &[&str] = &[
    "/v1/approvals/{id}/approve",
    "/v1/approvals/{id}/reject",
    "/v1/approvals/sweep",
    "/v1/mode",
    "/v1/dlq/{job}/replay",
    "/v1/dlq/{job}/discard",
    "/v1/flags/{key}",
    "/v1/memory/sweep",
    "/v1/config",
    "/v1/policy/check",
    "/v1/argusctl",
];

#[test]
fn every_decision_route_records_its_decision() {
    assert_eq!(DECISIONS.len(), 11);
    let d = served();
    let r = post(
        &d,
        "/v1/approvals/p-route-a/approve",
        &json!({"reason": "read-only"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["kind"], "proposal.approved");
    // The same decision again loses: 409 with the command's message.
    let r = post(
        &d,
        "/v1/approvals/p-route-a/reject",
        &json!({"reason": "too late"}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.error()["message"]
        .as_str()
        .unwrap()
        .contains("only pending proposals"));
    let r = post(
        &d,
        "/v1/approvals/p-route-b/reject",
        &json!({"reason": "not now"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&d, "/v1/approvals/sweep", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&d, "/v1/dlq/job-9c21/replay", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &d,
        "/v1/dlq/job-9c21/discard",
        &json!({"reason": "duplicate"}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = post(
        &d,
        "/v1/flags/new-planner",
        &json!({"enabled": true, "rollout_pct": 100}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let on = get(&d, "/v1/flags/new-planner?context=agent=planner").json();
    assert_eq!(on["enabled"], true, "{on}");
    let r = post(
        &d,
        "/v1/mode",
        &json!({"to": "beta", "reason": "routes test"}),
    );
    assert!(matches!(r.status, 200 | 400 | 409), "{}", r.text());
    let r = post(&d, "/v1/mode", &json!({"to": "sideways"}));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(&d, "/v1/memory/sweep", &json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(
        &d,
        "/v1/policy/check",
        &json!({"agent": "researcher", "tool": "web_search", "cost": 0.01}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["allowed"].is_boolean());
    let policy = json!({"kind": "policy.set", "payload": {"policy_id": "routes-budget",
        "scope": "agent:planner", "policy_type": "budget",
        "config": {"daily_usd": 1.0, "per_run_usd": 0.5}, "enabled": true}});
    let r = request(
        &d.addr,
        "POST",
        "/v1/config",
        &[("Content-Type", "application/x-ndjson")],
        format!("{policy}\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let policies = lines(&get(&d, "/v1/policies"));
    assert!(
        policies.iter().any(|p| p["policy_id"] == "routes-budget"),
        "{policies:?}"
    );
    // Through argusctl's own route, and what argusd refuses to run.
    let r = post(
        &d,
        "/v1/argusctl",
        &json!({"argv": ["sla", ".", "--breaches", "-o", "json"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&d, "/v1/argusctl", &json!({"argv": ["verify", "/etc"]}));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = post(
        &d,
        "/v1/argusctl",
        &json!({"argv": ["projections", "rebuild", "."]}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // A token command writes the daemon's token file, wherever it is told.
    let elsewhere = d.scratch().join("elsewhere.json");
    let r = post(
        &d,
        "/v1/argusctl",
        &json!({"argv": ["token", "add", ".", "--name", "op1", "--role", "operator",
            "--tokens", elsewhere.to_str().unwrap(), "-o", "json"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !elsewhere.exists(),
        "argusd wrote a token file a caller named"
    );
    assert!(d.dir.join("tokens.json").exists());
    // Every decision is in the log, by the local operator.
    let log = argus(["cat", d.dir.to_str().unwrap(), "-o", "json"]).json_lines();
    for kind in [
        "proposal.approved",
        "proposal.rejected",
        "job.replayed",
        "flag.set",
        "policy.set",
        "token.added",
    ] {
        assert!(
            log.iter()
                .any(|e| e["kind"] == kind
                    && e["actor"].as_str().unwrap_or("").starts_with("operator:")),
            "no {kind} by an operator"
        );
    }
}

#[test]
fn decisions_need_the_operator_role() {
    let mut d = served();
    // The first token through the daemon closes its TCP port to callers
    // without one; issue the second with the first.
    let r = post(
        &d,
        "/v1/argusctl",
        &json!({"argv": ["token", "add", ".", "--name", "oncall", "--role", "operator", "-o", "json"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let operator = r.json()["token"].as_str().unwrap().to_string();
    let o = format!("Bearer {operator}");
    let body = json!({"argv": ["token", "add", ".", "--name", "planner", "--role", "agent", "-o", "json"]}).to_string();
    let r = request(
        &d.addr,
        "POST",
        "/v1/argusctl",
        &[("Content-Type", "application/json"), ("Authorization", &o)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let agent = r.json()["token"].as_str().unwrap().to_string();
    // An agent's token may not issue tokens.
    let a = format!("Bearer {agent}");
    let r = request(
        &d.addr,
        "POST",
        "/v1/argusctl",
        &[("Content-Type", "application/json"), ("Authorization", &a)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let _ = &mut d;
    let body = json!({"reason": "ok"}).to_string();
    let r = request(
        &d.addr,
        "POST",
        "/v1/approvals/p-route-a/approve",
        &[("Content-Type", "application/json"), ("Authorization", &a)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.text());
    let r = request(&d.addr, "GET", "/v1/jobs", &[("Authorization", &a)], b"").unwrap();
    assert_eq!(r.status, 200, "an agent may read views: {}", r.text());
    let r = request(
        &d.addr,
        "POST",
        "/v1/approvals/p-route-a/approve",
        &[("Content-Type", "application/json"), ("Authorization", &o)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let log = argus(["cat", d.dir.to_str().unwrap(), "-o", "json"]).json_lines();
    assert!(log
        .iter()
        .any(|e| e["kind"] == "proposal.approved" && e["actor"] == "operator:token:oncall"));
    // Without a token, now that tokens exist: 401.
    let r = get(&d, "/v1/jobs");
    assert_eq!(r.status, 401, "{}", r.text());
}

/// The kill-switch decisions and the auditor's progress report.
#[test]
fn kill_switch_routes_record_their_decisions() {
    let d = served();
    let agent_entry =
        json!({"kind": "job.progress", "job_id": "job-7f3a", "agent": "planner", "payload": {}});
    let r = post(
        &d,
        "/v1/kill",
        &json!({"reason": "route test", "agent": "planner"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let soft = lines(&r)[0]["seq"].as_u64().unwrap();
    let r = post(&d, "/v1/entries", &agent_entry);
    assert_eq!(r.status, 423, "{}", r.text());
    let r = post(&d, "/v1/release", &json!({"reason": "ok", "seq": soft}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(&d, "/v1/entries", &agent_entry).status, 200);
    let r = post(&d, "/v1/lockdown", &json!({"reason": "route test"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let c = get(&d, "/v1/control").json();
    assert_eq!(c["lockdown"]["reason"], "route test");
    assert_eq!(c["flags_on_disk"]["lockdown"], true);
    assert_eq!(post(&d, "/v1/entries", &agent_entry).status, 423);
    let r = post(&d, "/v1/release", &json!({"reason": "done"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&d, "/v1/release", &json!({"reason": "again"}));
    assert_eq!(r.status, 409, "nothing stands: {}", r.text());
    let r = post(&d, "/v1/kill", &json!({}));
    assert_eq!(r.status, 400, "a kill needs a reason: {}", r.text());
    // Progress reports are the auditor role's alone.
    let r = post(&d, "/v1/auditor/progress", &json!({"next_seq": 1}));
    assert_eq!(r.status, 403, "{}", r.text());
    let log = argus(["cat", d.dir.to_str().unwrap(), "-o", "json"]).json_lines();
    for kind in [
        "kill.soft",
        "kill.released",
        "lockdown.set",
        "lockdown.released",
    ] {
        assert!(
            log.iter()
                .any(|e| e["kind"] == kind
                    && e["actor"].as_str().unwrap_or("").starts_with("operator:")),
            "no {kind} by an operator"
        );
    }
}

#[test]
fn docs_api_names_no_route_this_file_does_not_exercise() {
    let api = include_str!("../../../docs/API.md");
    let this = include_str!("routes.rs");
    let mut missing = Vec::new();
    for cap in api.split('`').skip(1).step_by(2) {
        if let Some(route) = cap.strip_prefix("/v1/").map(|r| format!("/v1/{r}")) {
            let route = route.split('?').next().unwrap_or("").to_string();
            let route = route.trim_end_matches(' ').to_string();
            if route.contains(' ') || route.is_empty() {
                continue;
            }
            if !this.contains(&format!("\"{route}"))
                && !["/v1/entries", "/v1/health"].contains(&route.as_str())
            {
                missing.push(route);
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "routes in docs/API.md with no test here: {missing:?}"
    );
}
