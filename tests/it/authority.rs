//! Invariant 8: decisions come only from the party allowed to make them,
//! and who wrote an entry comes from the operating system. Each test drives
//! the real binary; a "hand-made" log (an older build, or a tool holding the
//! key) is written with `crate::common::forge`.
use crate::common::forge::forge_commit;
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::path::Path;

const RATIONALE: &str = "Need to identify Horizon Europe funding programs";

fn proposal(id: &str, agent: &str) -> Value {
    json!({"kind": "proposal.created", "job_id": "job-1", "agent": agent, "payload": {
        "proposal_id": id, "action_type": "web_search", "risk": "low",
        "rationale": RATIONALE, "mission_context": "Research EU funding",
        "parameters": {"q": id}}})
}

fn run(args: &[&str]) -> Run {
    argus(args.iter().map(OsStr::new).collect::<Vec<_>>())
}

fn show(dir: &Path, id: &str) -> Value {
    let r = run(&["approvals", "show", dir.to_str().unwrap(), id, "-o", "json"]);
    r.assert_ok();
    r.json()
}

fn hash_of(dir: &Path, id: &str) -> String {
    show(dir, id)["parameter_hash"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn append_refuses_every_decision_kind_naming_the_command_that_writes_it() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    append(dir, &[proposal("p1", "janus")]);
    let before = stats(dir);
    for (line, command) in [
        (
            json!({"kind":"proposal.approved","payload":{"proposal_id":"p1","parameter_hash":"00"}}),
            "argusctl approvals approve",
        ),
        (
            json!({"kind":"mode.changed","payload":{"from":"alpha","to":"beta","reason":"x"}}),
            "argusctl mode set",
        ),
        (
            json!({"kind":"policy.set","payload":{"policy_id":"b","policy_type":"budget","scope":"global","config":{}}}),
            "argusctl config apply",
        ),
        (json!({"kind":"log.recovered","payload":{}}), "Argus itself"),
        (json!({"kind":"clock.skew","payload":{}}), "Argus itself"),
        (json!({"kind":"anomaly.detected","payload":{}}), "auditor"),
    ] {
        let r = argus_stdin(
            [OsStr::new("append"), p(dir)],
            format!("{line}\n").as_bytes(),
        );
        r.assert_code(2);
        assert!(
            r.stderr.contains("stdin line 1") && r.stderr.contains(command),
            "the refusal must name the line and {command:?}{}",
            r.ctx()
        );
        assert!(r.stderr.contains("agent"), "{}", r.ctx());
    }
    assert_eq!(stats(dir), before, "a refused line writes nothing");
}

#[test]
fn forged_approval_and_mode_change_are_ignored_with_the_reason() {
    // A log written by hand (or an older build): an agent-class approval of
    // its own proposal, and an agent-class mode change. Both are validly
    // signed; neither is honoured.
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    append(dir, &[proposal("p1", "janus")]);
    let h = hash_of(dir, "p1");
    let agent = actor_of("agent");
    forge_commit(
        dir,
        &agent,
        None,
        &[
            json!({"kind":"proposal.approved","job_id":"job-1","agent":"janus",
            "payload":{"proposal_id":"p1","parameter_hash":h,"approver":"ceo"}}),
        ],
    );
    forge_commit(
        dir,
        "user:ceo",
        None,
        &[
            json!({"kind":"mode.changed","payload":{"from":"alpha","to":"omega","reason":"trust me"}}),
        ],
    );
    verify(dir, &key, &[]).assert_ok();

    let p = show(dir, "p1");
    assert_eq!(
        p["status"], "pending",
        "a forged approval changes nothing: {p}"
    );
    let ignored = p["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{p}");
    let reason = ignored[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("forged") && reason.contains("argusctl approvals approve"),
        "{reason}"
    );
    let text = run(&["approvals", "show", d, "p1"]);
    text.assert_ok();
    assert!(text.stdout.contains("IGNORED DECISIONS"), "{}", text.ctx());

    let r = run(&["mode", "show", d, "-o", "json"]);
    r.assert_ok();
    let m = r.json();
    assert_eq!(m["mode"], "alpha", "{m}");
    assert_eq!(m["ignored"][0]["to"], "omega", "{m}");
    assert!(m["ignored"][0]["actor"] == "user:ceo", "{m}");

    // The real operator path still works, and separation of duties allows
    // it: the operator is not the agent janus.
    run(&["approvals", "approve", d, "p1", "--reason", "looked fine"]).assert_ok();
    assert_eq!(show(dir, "p1")["status"], "approved");
}

#[test]
fn an_agent_cannot_approve_its_own_proposal_by_command_or_by_hand() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let me = user_name();
    // The proposal's agent identity is this operating-system user.
    append(dir, &[proposal("mine", &me), proposal("theirs", "janus")]);
    let before = stats(dir);
    let r = run(&["approvals", "approve", d, "mine"]);
    r.assert_code(1);
    assert!(r.stderr.contains("separation of duties"), "{}", r.ctx());
    assert_eq!(stats(dir), before, "refused before writing");
    // A label naming the agent is refused too.
    let r = run(&["approvals", "approve", d, "theirs", "--actor", "janus"]);
    r.assert_code(1);
    assert!(r.stderr.contains("separation of duties"), "{}", r.ctx());

    // Written by hand as an operator, the approval is still ignored.
    let h = hash_of(dir, "mine");
    forge_commit(
        dir,
        &actor_of("operator"),
        None,
        &[json!({"kind":"proposal.approved","agent":me,
            "payload":{"proposal_id":"mine","parameter_hash":h}})],
    );
    let p = show(dir, "mine");
    assert_eq!(p["status"], "pending", "{p}");
    assert!(
        p["ignored"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("separation of duties"),
        "{p}"
    );
}

#[test]
fn who_decided_comes_from_the_operating_system_not_the_environment() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    append(dir, &[proposal("p1", "janus"), proposal("p2", "janus")]);
    let out = cmd(["approvals", "approve", d, "p1", "-o", "json"])
        .env("USER", "ceo")
        .env("LOGNAME", "ceo")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let operator = actor_of("operator");
    let entries = cat_json(dir, &[]);
    let approval = entries
        .iter()
        .find(|e| e["kind"] == "proposal.approved")
        .unwrap();
    assert_eq!(approval["actor"], operator.as_str(), "{approval}");
    assert!(!approval.to_string().contains("ceo"), "{approval}");
    // A label is recorded beside the identity, never instead of it.
    run(&["approvals", "approve", d, "p2", "--actor", "ceo"]).assert_ok();
    let p2 = show(dir, "p2");
    assert_eq!(p2["approver"], operator.as_str(), "{p2}");
    assert_eq!(p2["approver_label"], "ceo", "{p2}");
    // Agents' entries name the agent class and the same OS identity.
    assert_eq!(entries[0]["actor"], actor_of("agent").as_str());
}

#[test]
fn config_apply_takes_configuration_only_and_all_or_nothing() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let d = dir.to_str().unwrap();
    let policy = json!({"kind":"policy.set","payload":{"policy_id":"budget-r","policy_type":"budget",
        "scope":"agent:researcher","config":{"daily_usd":5}}});
    for (bad, says) in [
        (proposal("p", "janus"), "argusctl append"),
        (
            json!({"kind":"proposal.approved","payload":{"proposal_id":"p","parameter_hash":"00"}}),
            "argusctl approvals approve",
        ),
    ] {
        let before = stats(dir);
        let r = argus_stdin(
            [OsStr::new("config"), OsStr::new("apply"), p(dir)],
            &to_lines(&[policy.clone(), bad]),
        );
        r.assert_code(2);
        assert!(
            r.stderr.contains("stdin line 2") && r.stderr.contains(says),
            "{}",
            r.ctx()
        );
        assert_eq!(
            stats(dir),
            before,
            "nothing of the configuration was applied"
        );
    }
    configure(dir, &[policy]);
    let e = cat_json(dir, &[]).pop().unwrap();
    assert_eq!(e["kind"], "policy.set");
    assert_eq!(e["actor"], actor_of("operator").as_str());
    let r = run(&["policy", "list", d, "-o", "json"]);
    r.assert_ok();
    assert!(r.stdout.contains("budget-r"), "{}", r.ctx());
}
