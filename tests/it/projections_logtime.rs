//! Rules that need days of log time, end to end through the real binary.
//! Entries are stamped by the writer's clock, never by the client. The days
//! pass through `crate::common::later::append_later`, a writer whose clock is ahead
//! and that no boot-time evidence contradicts, so the log credits the time;
//! decisions and views then run with the real clock, whose step back is
//! recorded and credits nothing. Log time therefore only grows by the steps
//! the tests ask for.
use crate::common::later::append_later;
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::Path;

const HOUR: u64 = 3_600_000_000_000;
const DAY: u64 = 24 * HOUR;

fn heartbeat() -> Value {
    json!({"kind": "worker.heartbeat", "payload": {"worker_id": "w-1"}})
}

fn run(args: &[&str]) -> Run {
    argus(args.iter().map(OsStr::new).collect::<Vec<_>>())
}

fn proposal(id: &str) -> Value {
    json!({"kind": "proposal.created", "job_id": "job-janus", "agent": "janus", "payload": {
        "proposal_id": id, "action_type": "web_search", "risk": "low",
        "rationale": "Need to identify Horizon Europe funding programs",
        "mission_context": "Research EU funding opportunities",
        "parameters": {"q": id}}})
}

/// 20 proposals: 19 approved and 1 rejected, an approval rate of exactly 95%.
fn decide_twenty(dir: &Path, tag: &str) {
    let d = dir.to_str().unwrap();
    let ids: Vec<String> = (0..20).map(|i| format!("{tag}-{i}")).collect();
    record(dir, &ids.iter().map(|id| proposal(id)).collect::<Vec<_>>());
    for id in &ids[..19] {
        run(&["approvals", "approve", d, id]).assert_ok();
    }
    run(&[
        "approvals",
        "reject",
        d,
        &ids[19],
        "--reason",
        "out of scope",
    ])
    .assert_ok();
}

/// `mode set DIR omega` with the unanimous recommendation omega also needs.
fn to_omega(d: &str) -> Run {
    run(&[
        "mode",
        "set",
        d,
        "omega",
        "--recommendation",
        "all three agree",
    ])
}

fn mode(dir: &Path) -> Value {
    let r = run(&["mode", "show", dir.to_str().unwrap(), "-o", "json"]);
    r.assert_ok();
    r.json()
}

#[test]
fn beta_after_30_days_in_alpha_and_omega_after_180_days_in_beta() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    decide_twenty(dir, "a");
    let r = run(&["mode", "set", d, "beta"]);
    r.assert_code(1);
    assert!(
        r.stderr.contains("0.0 days in alpha (log time)"),
        "{}",
        r.ctx()
    );

    // 29 days later: still one day short, and the message says so.
    append_later(dir, 29 * DAY, &[heartbeat()]);
    let r = run(&["mode", "set", d, "beta"]);
    r.assert_code(1);
    assert!(r.stderr.contains("29.0 days in alpha"), "{}", r.ctx());

    // Two more days after that heartbeat: 31 in all.
    append_later(dir, 31 * DAY, &[heartbeat()]);
    run(&[
        "mode",
        "set",
        d,
        "beta",
        "--reason",
        "a month of clean alpha",
    ])
    .assert_ok();
    let m = mode(dir);
    assert_eq!(m["mode"], "beta", "{m}");

    // Beta's evidence starts fresh: omega needs 180 days and 95% in beta.
    let r = to_omega(d);
    r.assert_code(1);
    assert!(r.stderr.contains("0.0 days in beta"), "{}", r.ctx());
    assert!(
        r.stderr.contains("no proposals decided in beta"),
        "{}",
        r.ctx()
    );
    decide_twenty(dir, "b");
    // Log time resumed from where beta began, so 179 days more is 179 in beta.
    append_later(dir, 179 * DAY, &[heartbeat()]);
    let r = to_omega(d);
    r.assert_code(1);
    assert!(r.stderr.contains("179.0 days in beta"), "{}", r.ctx());
    append_later(dir, 181 * DAY, &[heartbeat()]);
    // Omega still needs the unanimous recommendation.
    let r = run(&["mode", "set", d, "omega"]);
    r.assert_code(1);
    assert!(r.stderr.contains("--recommendation"), "{}", r.ctx());
    to_omega(d).assert_ok();
    assert_eq!(mode(dir)["mode"], "omega");
    // The decisions replay to the same state from scratch.
    let before = run(&["projections", "status", d, "-o", "json"]);
    before.assert_ok();
    std::fs::remove_dir_all(dir.join("projections")).unwrap();
    let after = run(&["projections", "rebuild", d, "-o", "json"]);
    after.assert_ok();
    assert_eq!(before.stdout, after.stdout);
}

#[test]
fn daily_budget_renews_next_log_day_and_pending_proposals_expire_after_24h() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    record(
        dir,
        &[
            json!({"kind":"policy.set","payload":{"policy_id":"budget-r","scope":"agent:researcher",
                "policy_type":"budget","config":{"daily_usd":5.0},"enabled":true}}),
            json!({"kind":"cost.logged","job_id":"j1","agent":"researcher","payload":{
                "usd":4.95,"tokens_in":1000,"tokens_out":200,"model":"claude-haiku",
                "price_table":"2026-11","tool":"llm"}}),
            proposal("p-wait"),
        ],
    );
    let check = || {
        let r = run(&[
            "policy",
            "check",
            d,
            "--agent",
            "researcher",
            "--tool",
            "llm",
            "--cost",
            "0.10",
        ]);
        let v = r.json();
        (r.code, v)
    };
    let (code, v) = check();
    assert_eq!(code, Some(3), "{v}");
    assert!(
        v["retry_after"].as_u64().is_some_and(|s| s <= 86_400),
        "{v}"
    );
    let show = || {
        let r = run(&["approvals", "show", d, "p-wait", "-o", "json"]);
        r.assert_ok();
        r.json()
    };
    assert_eq!(show()["status"], "pending");

    // 25 hours of log time later: a new UTC day, and past the 24 h default.
    append_later(dir, 25 * HOUR, &[heartbeat()]);
    let (code, v) = check();
    assert_eq!(code, Some(0), "the next day's budget is fresh: {v}");
    assert_eq!(v["allowed"], true);
    let p = show();
    assert_eq!(p["status"], "expired", "{p}");
    assert_eq!(p["expiry_recorded"], false, "{p}");
    let r = run(&["approvals", "sweep", d, "-o", "json"]);
    r.assert_ok();
    let swept = r.json_lines();
    assert_eq!(swept.len(), 1, "{}", r.ctx());
    assert_eq!(swept[0]["kind"], "proposal.expired");
    assert_eq!(swept[0]["payload"]["proposal_id"], "p-wait");
    assert_eq!(swept[0]["payload"]["timeout_s"], 86_400);
    assert_eq!(show()["expiry_recorded"], true);
}
