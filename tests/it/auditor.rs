//! The auditor, end to end: real argusd children (the auditor inside them,
//! or as `argusd --auditor-only`), real appends over HTTP, and the log read
//! back with `argusctl cat` and replayed with `argusctl audit`.
//!
//! The central property is determinism: what a live auditor wrote, across
//! restarts and kill -9, is exactly what `argusctl audit` computes from the
//! finished log, and that computation does not change with the wall clock.
use crate::common::{self, argus, argus_stdin};
use crate::daemon::harness::Daemon;
use crate::daemon::http;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Normal work: `jobs` jobs, alternating two agents, each with a started
/// and completed tool call and a cost near $1 (a deterministic wobble).
fn normal_work(first_job: u64, jobs: u64) -> Vec<Value> {
    let mut v = Vec::new();
    for j in first_job..first_job + jobs {
        let agent = if j % 2 == 0 { "researcher" } else { "coder" };
        let job = format!("j{j}");
        let usd = 0.9 + 0.02 * ((j * 7) % 10) as f64;
        v.push(json!({"kind":"job.received","job_id":job,"agent":agent,"payload":{"job_type":"research"}}));
        v.push(json!({"kind":"tool.call_started","job_id":job,"agent":agent,"payload":{"tool":"web.search","call_id":format!("c{j}")}}));
        v.push(json!({"kind":"tool.call_completed","job_id":job,"agent":agent,"payload":{"tool":"web.search","call_id":format!("c{j}"),"duration_ms":900 + (j * 13) % 200}}));
        v.push(json!({"kind":"cost.logged","job_id":job,"agent":agent,"payload":{"usd":usd,"tokens_in":1000,"tokens_out":200,"model":"m","price_table":"2026-11","tool":"llm"}}));
        v.push(json!({"kind":"job.completed","job_id":job,"agent":agent,"payload":{"duration_ms":2000}}));
    }
    v
}

/// A tool completion that never started: a critical causal rule.
fn unstarted(job: &str) -> Value {
    json!({"kind":"tool.call_failed","job_id":job,"agent":"coder","payload":{"tool":"bash","error":"boom"}})
}

/// A cost 25x the baseline: a critical economic spike.
fn overspend(job: &str) -> Value {
    json!({"kind":"cost.logged","job_id":job,"agent":"researcher","payload":{"usd":25.0,"tokens_in":1000,"tokens_out":200,"model":"m","price_table":"2026-11","tool":"llm"}})
}

fn post(d: &Daemon, entries: &[Value]) -> http::Response {
    http::post_json(
        &d.addr,
        Value::Array(entries.to_vec()).to_string().as_bytes(),
    )
    .expect("POST /v1/entries")
}

fn post_ok(d: &Daemon, entries: &[Value]) {
    let r = post(d, entries);
    assert_eq!(r.status, 200, "{}", r.text());
}

fn flag(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join("control").join(name)
}

fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Entries the auditor wrote, by their identity (kind, trigger, job,
/// series or worker), with their payloads.
fn written_by_auditor(log: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in log {
        let actor = e["actor"].as_str().unwrap_or("");
        if !actor.starts_with("auditor:") || e["kind"] == "auditor.tick" {
            continue;
        }
        let Some(t) = e["payload"]["trigger_seq"].as_u64() else {
            continue;
        };
        m.entry(key(e, t)).or_default().push(e["payload"].clone());
    }
    m
}

fn key(e: &Value, trigger: u64) -> String {
    let p = &e["payload"];
    let disc = p["series"]
        .as_str()
        .or(p["worker_id"].as_str())
        .or(p["metric"].as_str())
        .unwrap_or("");
    format!(
        "{}|{trigger}|{}|{disc}",
        e["kind"].as_str().unwrap_or(""),
        e["job_id"].as_str().unwrap_or("")
    )
}

/// `argusctl audit DIR -o json`: every output, by identity.
fn replayed(dir: &Path, extra: &[&str]) -> BTreeMap<String, (Value, Option<u64>)> {
    let mut args = vec![
        "audit".to_string(),
        dir.display().to_string(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let r = argus(&args);
    r.assert_ok();
    r.json_lines()
        .into_iter()
        .map(|o| {
            let t = o["trigger_seq"].as_u64().expect("trigger_seq");
            (
                key(&o, t),
                (o["payload"].clone(), o["written_seq"].as_u64()),
            )
        })
        .collect()
}

/// The log holds exactly what the replay computes: every output written
/// once, with the same payload, and nothing else.
fn assert_live_equals_replay(dir: &Path) {
    let log = common::cat_json(dir, &[]);
    let live = written_by_auditor(&log);
    let replay = replayed(dir, &[]);
    assert!(!replay.is_empty(), "the scenario must produce detections");
    for (k, payloads) in &live {
        assert_eq!(
            payloads.len(),
            1,
            "{k} was written {} times",
            payloads.len()
        );
        let (p, _) = replay
            .get(k)
            .unwrap_or_else(|| panic!("the log holds {k}, which the replay does not compute"));
        assert_eq!(
            &payloads[0], p,
            "{k}: the live payload differs from the replay"
        );
    }
    for (k, (_, written)) in &replay {
        assert!(
            live.contains_key(k),
            "the replay computes {k}, which no auditor wrote"
        );
        assert!(written.is_some(), "{k}: audit says it is not in the log");
    }
}

#[test]
fn live_restarted_and_replayed_detections_are_identical() {
    // First half with no auditor: its detections are owed.
    let mut d = Daemon::with(None, &["--auditor", "off"]);
    post_ok(&d, &normal_work(0, 40));
    post_ok(
        &d,
        &[
            json!({"kind":"job.received","job_id":"jx","agent":"researcher","payload":{"job_type":"research"}}),
            overspend("jx"),
        ],
    );
    d.term();
    assert!(written_by_auditor(&d.cat()).is_empty());
    // Restarted with the auditor: it folds the log, writes what is owed,
    // then audits live; a kill -9 in the middle of the live part.
    let i = d
        .args
        .iter()
        .position(|a| a == "--auditor")
        .expect("--auditor");
    d.args[i + 1] = "internal".into();
    d.spawn();
    wait_for("the owed lockdown", Duration::from_secs(10), || {
        flag(&d.dir, "write_lockdown.flag").exists()
    });
    // Agents are locked out now; the operator releases, work goes on.
    let r = post(&d, &normal_work(40, 1));
    assert_eq!(r.status, 423, "{}", r.text());
    argus([
        "release",
        d.dir.to_str().unwrap_or(""),
        "--reason",
        "budget raised",
    ])
    .assert_ok();
    post_ok(&d, &normal_work(41, 10));
    d.kill9();
    d.spawn();
    post_ok(&d, &normal_work(51, 5));
    post_ok(&d, &[unstarted("jy")]);
    wait_for("the hard kill", Duration::from_secs(10), || {
        flag(&d.dir, "hard_kill.flag").exists()
    });
    d.term();
    assert_live_equals_replay(&d.dir);
    // The replay from a later seq prints only the later triggers.
    let all = replayed(&d.dir, &[]);
    let late = replayed(&d.dir, &["--from", "250"]);
    assert!(
        late.len() < all.len() && !late.is_empty(),
        "{} vs {}",
        late.len(),
        all.len()
    );
    d.assert_verifies();
}

#[test]
fn kill_9_while_auditing_loses_and_duplicates_nothing() {
    let mut d = Daemon::start();
    post_ok(&d, &normal_work(0, 30));
    for round in 0..5u64 {
        // A violation, then kill -9 at once: the auditor may or may not
        // have written its outputs; the next start must finish the job.
        post_ok(&d, &[unstarted(&format!("bad{round}"))]);
        d.kill9();
        d.spawn();
        wait_for("the hard kill", Duration::from_secs(10), || {
            flag(&d.dir, "hard_kill.flag").exists()
        });
        argus(["release", d.dir.to_str().unwrap_or(""), "--reason", "drill"]).assert_ok();
        post_ok(&d, &normal_work(100 + round * 3, 3));
    }
    d.term();
    assert_live_equals_replay(&d.dir);
    let kills = d.cat().iter().filter(|e| e["kind"] == "kill.hard").count();
    assert_eq!(kills, 5, "one hard kill per violation");
}

#[test]
fn the_replay_does_not_read_the_wall_clock() {
    if !common::faketime_ready() {
        return;
    }
    let (tmp, _key) = common::init_log(None);
    let dir = tmp.path();
    common::append(dir, &normal_work(0, 40));
    common::append(dir, &[overspend("j3"), unstarted("jq")]);
    let run = |offset: &str| {
        let out = std::process::Command::new("faketime")
            .args(["-f", offset, common::bin(), "audit"])
            .arg(dir)
            .args(["-o", "json"])
            .output()
            .expect("faketime");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let now = run("+0d");
    assert!(!now.is_empty());
    assert_eq!(
        now,
        run("+400d"),
        "a year later, the same log gives other detections"
    );
    assert_eq!(
        now,
        run("-3650d"),
        "ten years earlier, the same log gives other detections"
    );
}

#[test]
fn detectors_read_no_clock_randomness_or_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/auditor");
    let forbidden = [
        "SystemTime",
        "Instant::now",
        "wall_now",
        "SystemClock",
        "std::env",
        "getrandom",
        "thread_rng",
        "std::fs",
    ];
    for entry in std::fs::read_dir(&root).expect("src/auditor") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Loading the config file is the one read from outside the log.
        if name == "config.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read");
        for f in forbidden {
            assert!(
                !text.contains(f),
                "{name} uses {f}: detectors fold log time only"
            );
        }
    }
}

#[test]
fn spikes_need_warm_up_a_floor_and_two_detectors_to_kill() {
    let (tmp, _key) = common::init_log(None);
    let dir = tmp.path();
    // Ten points: still warming up, so a spike is at most info.
    common::append(dir, &normal_work(0, 10));
    common::append(dir, &[overspend("j2")]);
    let early = replayed(dir, &[]);
    assert!(!early.is_empty());
    for (k, (p, _)) in &early {
        assert!(
            k.starts_with("anomaly.detected"),
            "{k}: a decision during warm-up"
        );
        assert_eq!(p["severity"], "info", "{k}");
        assert_eq!(p["warm_up"], true, "{k}");
    }
    // A fresh log of cheap calls: 4x a $0.001 baseline is under the floor.
    let (tmp2, _) = common::init_log(None);
    let cheap: Vec<Value> = normal_work(0, 40)
        .into_iter()
        .map(|mut e| {
            if e["kind"] == "cost.logged" {
                e["payload"]["usd"] = json!(0.001);
            }
            e
        })
        .collect();
    common::append(tmp2.path(), &cheap);
    let mut spike = overspend("j1");
    spike["payload"]["usd"] = json!(0.004);
    common::append(tmp2.path(), &[spike]);
    assert!(
        replayed(tmp2.path(), &[]).is_empty(),
        "a $0.004 spike is not an incident"
    );
    // Warmed up: a 25x cost is critical and explains itself; alone it is a
    // lockdown, not a kill.
    common::append(dir, &normal_work(10, 40));
    let seq = common::append(dir, &[overspend("j45")])[0].seq;
    let out = replayed(dir, &["--from", &seq.to_string()]);
    let anomaly = out
        .iter()
        .find(|(k, _)| k.starts_with("anomaly.detected") && k.ends_with("cost/agent/researcher"))
        .map(|(_, (p, _))| p.clone())
        .expect("a cost anomaly for the agent");
    assert_eq!(anomaly["severity"], "critical");
    assert_eq!(anomaly["detector"], "cost_spike");
    assert_eq!(anomaly["observed"], 25.0);
    assert!(
        anomaly["baseline"]
            .as_f64()
            .is_some_and(|b| b > 0.9 && b < 1.2),
        "{anomaly}"
    );
    assert!(
        anomaly["score"].as_f64().is_some_and(|s| s >= 5.0),
        "{anomaly}"
    );
    assert_eq!(anomaly["threshold"], 5.0);
    assert_eq!(anomaly["warm_up"], false);
    assert!(anomaly["samples"].as_u64().is_some_and(|n| n >= 25));
    assert_eq!(anomaly["evidence_seqs"], json!([seq]));
    assert!(out.keys().any(|k| k.starts_with("lockdown.set")));
    assert!(
        !out.keys().any(|k| k.starts_with("kill.hard")),
        "one detector must not kill"
    );
}

#[test]
fn a_kill_refuses_agents_with_423_until_an_operator_releases() {
    let d = Daemon::start();
    let dir = d.dir.to_str().unwrap_or("").to_string();
    post_ok(&d, &normal_work(0, 3));
    post_ok(&d, &[unstarted("jy")]);
    wait_for("the hard kill flag", Duration::from_secs(10), || {
        flag(&d.dir, "hard_kill.flag").exists()
    });
    let f: Value =
        serde_json::from_slice(&std::fs::read(flag(&d.dir, "hard_kill.flag")).expect("flag"))
            .expect("flag JSON");
    assert_eq!(f["kind"], "kill.hard");
    let kill_seq = f["seq"].as_u64().expect("seq");
    // An agent: 423, naming the decision; nothing written.
    let before = d.entries();
    let r = post(&d, &normal_work(10, 1));
    assert_eq!(r.status, 423, "{}", r.text());
    assert_eq!(r.error()["decision_seq"], kill_seq);
    assert_eq!(r.error()["kind"], "hard_kill");
    assert_eq!(d.entries(), before);
    // argusctl append through the daemon: exit 4 with the reason.
    let a = argus_stdin(["append", &dir], &common::to_lines(&normal_work(11, 1)));
    a.assert_code(4);
    assert!(a.stderr.contains("hard kill"), "{}", a.stderr);
    // policy check says no, with the same reason.
    let p = argus([
        "policy", "check", &dir, "--agent", "coder", "--tool", "bash", "-o", "json",
    ]);
    p.assert_code(3);
    assert_eq!(p.json()["allowed"], false);
    assert!(p.json()["reason"]
        .as_str()
        .unwrap_or("")
        .contains(&format!("seq {kill_seq}")));
    // The operator still writes; the control view shows the kill.
    let c = argus(["control", &dir, "-o", "json"]);
    c.assert_ok();
    assert_eq!(c.json()["hard_kill"]["seq"], kill_seq);
    assert_eq!(c.json()["unexplained_flags"], json!([]));
    // An agent may not release.
    let forged = json!({"kind":"kill.released","payload":{"reason":"me","released_seq":kill_seq}});
    assert_eq!(post(&d, &[forged]).status, 403);
    argus(["release", &dir, "--reason", "false alarm"]).assert_ok();
    wait_for("the flag to go", Duration::from_secs(5), || {
        !flag(&d.dir, "hard_kill.flag").exists()
    });
    post_ok(&d, &normal_work(12, 1));
    let log = d.cat();
    assert!(log
        .iter()
        .any(|e| e["kind"] == "kill.released" && e["payload"]["released_seq"] == kill_seq));
    assert!(log.iter().any(|e| e["kind"] == "incident.resolved"));
}

#[test]
fn a_soft_kill_refuses_only_its_agent() {
    let d = Daemon::start();
    let dir = d.dir.to_str().unwrap_or("").to_string();
    argus(["kill", &dir, "--agent", "coder", "--reason", "runaway"]).assert_ok();
    wait_for("the gate", Duration::from_secs(5), || {
        post(
            &d,
            &[json!({"kind":"job.progress","job_id":"j1","agent":"coder","payload":{}})],
        )
        .status
            == 423
    });
    post_ok(
        &d,
        &[json!({"kind":"job.progress","job_id":"j1","agent":"planner","payload":{}})],
    );
    assert!(
        !flag(&d.dir, "hard_kill.flag").exists(),
        "a soft kill is not a hard kill"
    );
    let seq = argus(["control", &dir, "-o", "json"]).json()["soft_kills"][0]["seq"]
        .as_u64()
        .expect("soft kill seq");
    argus([
        "release",
        &dir,
        "--reason",
        "fixed",
        "--seq",
        &seq.to_string(),
    ])
    .assert_ok();
    wait_for("the release", Duration::from_secs(5), || {
        post(
            &d,
            &[json!({"kind":"job.progress","job_id":"j1","agent":"coder","payload":{}})],
        )
        .status
            == 200
    });
}

#[test]
fn flags_without_the_daemon_and_flags_the_log_does_not_explain() {
    let (tmp, _key) = common::init_log(None);
    let dir = tmp.path();
    let ds = dir.to_str().unwrap_or("");
    argus(["lockdown", ds, "--reason", "maintenance"]).assert_ok();
    assert!(flag(dir, "write_lockdown.flag").exists());
    let a = argus_stdin(["append", ds], &common::to_lines(&normal_work(0, 1)));
    a.assert_code(4);
    assert!(a.stderr.contains("lockdown.set"), "{}", a.stderr);
    argus(["release", ds, "--reason", "done"]).assert_ok();
    assert!(!flag(dir, "write_lockdown.flag").exists());
    common::append(dir, &normal_work(0, 1));
    // A flag written by hand: the log does not explain it.
    std::fs::write(flag(dir, "hard_kill.flag"), b"{}").expect("write");
    let c = argus(["control", ds, "-o", "json"]);
    let why = c.json()["unexplained_flags"].to_string();
    assert!(why.contains("hard_kill.flag"), "{why}");
    let t = argus(["control", ds]);
    assert!(t.stdout.contains("warning"), "{}", t.stdout);
    let s = argus(["status", ds, "-o", "json"]).json();
    assert!(s["warnings"].to_string().contains("hard_kill.flag"), "{s}");
    assert_eq!(s["control"]["hard_kill"], Value::Null);
    let s = argus(["status", ds]);
    assert!(s.stdout.contains("hard kill:  none"), "{}", s.stdout);
    // Nothing to release: a clear refusal.
    std::fs::remove_file(flag(dir, "hard_kill.flag")).expect("rm");
    let r = argus(["release", ds, "--reason", "x"]);
    r.assert_code(1);
    assert!(r.stderr.contains("nothing to release"), "{}", r.stderr);
}

#[test]
fn a_lost_auditor_locks_agents_out() {
    // External auditor expected, none comes: after the bound, lockdown.
    let d = Daemon::with(
        Some(json!({"auditor": {"mode": "external", "loss_after_s": 1}})),
        &[],
    );
    wait_for("the loss lockdown", Duration::from_secs(15), || {
        flag(&d.dir, "write_lockdown.flag").exists()
    });
    let h = http::get(&d.addr, "/v1/health").expect("health");
    assert_eq!(h.status, 503);
    assert_eq!(h.json()["status"], "auditor_lost");
    assert_eq!(h.json()["auditor"]["state"], "lost");
    let r = post(&d, &normal_work(0, 1));
    assert_eq!(r.status, 423, "{}", r.text());
    let log = d.cat();
    let l = log
        .iter()
        .find(|e| e["kind"] == "lockdown.set")
        .expect("lockdown");
    assert!(
        l["actor"].as_str().unwrap_or("").starts_with("argus:"),
        "{l}"
    );
    assert!(l["payload"]["reason"]
        .as_str()
        .unwrap_or("")
        .contains("auditor lost"));
}

#[test]
fn the_auditor_runs_apart_from_the_writer() {
    let mut d = Daemon::new(
        Some(json!({"auditor": {"mode": "external", "loss_after_s": 30}})),
        &[],
    );
    let dir = d.dir.to_str().unwrap_or("").to_string();
    let tokens = |name: &str, role: &str| {
        let r = argus([
            "token", "add", &dir, "--name", name, "--role", role, "-o", "json",
        ]);
        r.assert_ok();
        r.json()["token"].as_str().expect("token").to_string()
    };
    let auditor = tokens("watcher", "auditor");
    let agent = tokens("coder", "agent");
    d.spawn();
    let url = format!("http://{}", d.addr);
    let mut child = std::process::Command::new(crate::daemon::harness::argusd_bin())
        .args(["--auditor-only", "--server", &url, "--log-format", "json"])
        .env("ARGUS_TOKEN", &auditor)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the auditor");
    let bearer = format!("Bearer {agent}");
    let send = |entries: &[Value]| {
        http::request(
            &d.addr,
            "POST",
            "/v1/entries",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &bearer),
            ],
            Value::Array(entries.to_vec()).to_string().as_bytes(),
        )
        .expect("post")
    };
    let mut work = normal_work(0, 3);
    for e in &mut work {
        e["agent"] = json!("coder");
    }
    assert_eq!(send(&work).status, 200);
    let mut bad = unstarted("jy");
    bad["agent"] = json!("coder");
    assert_eq!(send(&[bad]).status, 200);
    wait_for(
        "the external auditor's kill",
        Duration::from_secs(15),
        || flag(&d.dir, "hard_kill.flag").exists(),
    );
    let h = http::get(&d.addr, "/v1/health").expect("health").json();
    assert_eq!(h["auditor"]["mode"], "external");
    assert_ne!(h["auditor"]["state"], "lost", "{h}");
    let _ = child.kill();
    let _ = child.wait();
    d.term();
    let log = d.cat();
    let k = log.iter().find(|e| e["kind"] == "kill.hard").expect("kill");
    assert_eq!(k["actor"], "auditor:token:watcher");
    assert_live_equals_replay(&d.dir);
}

#[test]
fn the_hook_gets_the_decision_and_staleness_is_recorded_on_the_writers_clock() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("hook.out");
    let auditor_cfg = tmp.path().join("auditor.json");
    std::fs::write(
        &auditor_cfg,
        json!({"staleness": {"heartbeat_stale_s": 1, "claim_grace_s": 0, "tick_min_s": 1}})
            .to_string(),
    )
    .expect("write");
    let d = Daemon::with(
        Some(json!({"auditor": {
            "config": auditor_cfg,
            "hook_command": ["sh", "-c", format!("cat > {}", out.display())],
        }})),
        &[],
    );
    post_ok(
        &d,
        &[
            json!({"kind":"job.received","job_id":"w1","agent":"worker","payload":{"job_type":"etl"}}),
            json!({"kind":"worker.claimed","job_id":"w1","agent":"worker","payload":{"worker_id":"wk-1","job_id":"w1","lease_ms":500}}),
            json!({"kind":"worker.heartbeat","agent":"worker","payload":{"worker_id":"wk-1"}}),
        ],
    );
    // Nothing else is written: only the auditor's ticks move log time.
    wait_for(
        "heartbeat.stale and job.requeued",
        Duration::from_secs(15),
        || {
            let log = d.cat();
            log.iter()
                .any(|e| e["kind"] == "heartbeat.stale" && e["payload"]["worker_id"] == "wk-1")
                && log
                    .iter()
                    .any(|e| e["kind"] == "job.requeued" && e["job_id"] == "w1")
        },
    );
    assert!(d.cat().iter().any(|e| e["kind"] == "auditor.tick"));
    post_ok(&d, &[unstarted("jh")]);
    wait_for("the hook's output", Duration::from_secs(10), || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.contains("kill.hard"))
    });
    let hooked: Value = serde_json::from_str(std::fs::read_to_string(&out).expect("out").trim())
        .expect("the hook got one JSON line");
    assert_eq!(hooked["kind"], "kill.hard");
    assert_eq!(hooked["actor"], "auditor:argusd");
    assert_live_equals_replay_with(&d.dir, &auditor_cfg);
}

/// `assert_live_equals_replay`, the replay run with the daemon's detector config.
fn assert_live_equals_replay_with(dir: &Path, cfg: &Path) {
    let log = common::cat_json(dir, &[]);
    let live = written_by_auditor(&log);
    let replay = replayed(dir, &["--config", cfg.to_str().unwrap_or("")]);
    let live_keys: Vec<&String> = live.keys().collect();
    let replay_keys: Vec<&String> = replay.keys().collect();
    assert_eq!(live_keys, replay_keys);
}

#[test]
fn the_relief_valve_moves_incident_mode_to_degraded() {
    let d = Daemon::with(
        Some(json!({"auditor": {"relief": {"sample_s": 1, "disk_free_min_pct": 100.0}}})),
        &[],
    );
    wait_for(
        "incident.declared degraded",
        Duration::from_secs(15),
        || {
            d.cat()
                .iter()
                .any(|e| e["kind"] == "incident.declared" && e["payload"]["level"] == "degraded")
        },
    );
    let dir = d.dir.to_str().unwrap_or("").to_string();
    let inc = argus(["incident", &dir, "-o", "json"]).json();
    assert_eq!(inc["state"], "degraded", "{inc}");
    assert!(
        inc["reason"].as_str().unwrap_or("").contains("disk free"),
        "{inc}"
    );
}

#[test]
fn a_bad_auditor_config_is_refused_naming_the_field() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("a.json");
    std::fs::write(&cfg, r#"{"economic": {"warnin_z": 3}}"#).expect("write");
    let (log, _) = common::init_log(None);
    let r = argus([
        "audit",
        log.path().to_str().unwrap_or(""),
        "--config",
        cfg.to_str().unwrap_or(""),
    ]);
    r.assert_code(1);
    assert!(r.stderr.contains("warnin_z"), "{}", r.stderr);
    std::fs::write(&cfg, r#"{"economic": {"warning_z": 9, "critical_z": 4}}"#).expect("write");
    let r = argus([
        "audit",
        log.path().to_str().unwrap_or(""),
        "--config",
        cfg.to_str().unwrap_or(""),
    ]);
    r.assert_code(1);
    assert!(r.stderr.contains("warning_z"), "{}", r.stderr);
}
