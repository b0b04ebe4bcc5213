//! `argusctl` through a running argusd: the same command line prints the
//! same bytes and exits with the same code whether it runs locally or goes
//! through the daemon that holds the log (issue 10 §5).
use crate::common::{argus, argus_stdin, init_log, p, record};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SESSION: &str = include_str!("../../src/cli/demo_session.jsonl");

struct Daemon(Child);

impl Daemon {
    fn start(dir: &Path) -> Self {
        let d = Self(
            Command::new(env!("CARGO_BIN_EXE_argusd"))
                .arg("--dir")
                .arg(dir)
                .args(["--listen", "127.0.0.1:0"])
                // Same bytes through the daemon as without it: no auditor
                // (or relief valve) writing entries of its own meanwhile.
                .args(["--auditor", "off"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn argusd"),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = std::fs::read(dir.join("argusd.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .is_some_and(|v| v["pid"].as_u64() == Some(u64::from(d.0.id())));
            if ready {
                return d;
            }
            assert!(Instant::now() < deadline, "argusd did not become ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.0.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "argusd did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn session() -> Vec<Value> {
    SESSION
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("session line"))
        .collect()
}

/// Every view, both formats; the placeholder `D` is the log directory.
fn views() -> Vec<Vec<&'static str>> {
    let mut v = Vec::new();
    for f in ["text", "json"] {
        for cmd in [
            vec!["jobs", "D"],
            vec!["jobs", "D", "--job", "job-7f3a"],
            vec!["approvals", "list", "D", "--all"],
            vec!["approvals", "show", "D", "p-001"],
            vec!["mode", "show", "D"],
            vec!["dlq", "list", "D", "--all"],
            vec!["sla", "D"],
            vec!["sla", "D", "--breaches"],
            vec!["breakers", "D"],
            vec!["workers", "D", "--all"],
            vec!["agents", "D"],
            vec!["route", "D", "research_synthesis"],
            vec!["flags", "D"],
            vec!["memory", "D"],
            vec!["policy", "list", "D"],
            vec!["budget", "D"],
            vec!["incident", "D"],
            vec!["projections", "status", "D"],
            vec!["status", "D"],
        ] {
            let mut c = cmd;
            c.extend(["-o", f]);
            v.push(c);
        }
    }
    v.push(vec!["stats", "D"]);
    v.push(vec!["checkpoint", "D"]);
    v.push(vec!["jobs", "D", "--job", "no-such-job"]);
    v
}

fn mask_numbers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_num = false;
    for ch in s.chars() {
        if ch.is_ascii_digit() || (in_num && ch == '.') {
            if !in_num {
                out.push('#');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(ch);
        }
    }
    // Column padding follows the width of the numbers.
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run_all(dir: &Path, cmds: &[Vec<&str>]) -> Vec<(Option<i32>, String, String)> {
    cmds.iter()
        .map(|c| {
            let args: Vec<std::ffi::OsString> = c
                .iter()
                .map(|a| {
                    if *a == "D" {
                        p(dir).to_owned()
                    } else {
                        a.into()
                    }
                })
                .collect();
            let r = argus(&args);
            (r.code, r.stdout, r.stderr)
        })
        .collect()
}

#[test]
fn every_view_prints_the_same_bytes_through_the_daemon() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    record(dir, &session());
    let cmds = views();
    let local = run_all(dir, &cmds);
    let daemon = Daemon::start(dir);
    let t = Instant::now();
    let remote = run_all(dir, &cmds);
    // The daemon holds the projections store: a local view would wait 30 s
    // for it and fail, so these answers came through argusd.
    assert!(t.elapsed() < Duration::from_secs(60));
    for ((c, l), r) in cmds.iter().zip(&local).zip(&remote) {
        assert_eq!(l.0, r.0, "exit code of {c:?}: local {l:?} remote {r:?}");
        // `status`, `workers` and `mode` say how long ago something happened, and
        // time moved between the two runs: compare them with numbers masked.
        // Everything else is exact.
        if ["status", "workers", "mode"].contains(&c[0]) {
            assert_eq!(
                mask_numbers(&l.1),
                mask_numbers(&r.1),
                "stdout of {c:?} differs"
            );
            continue;
        }
        assert_eq!(l.1, r.1, "stdout of {c:?} differs");
        if l.0 != Some(0) {
            assert_eq!(l.2, r.2, "stderr of {c:?} differs");
        }
    }
    daemon.stop();
}

#[test]
fn append_decisions_and_tail_go_through_the_daemon() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    record(dir, &session());
    let before = argus(["stats", dir.to_str().unwrap()]).json()["entries"]
        .as_u64()
        .unwrap();
    let daemon = Daemon::start(dir);
    // append: acks in order, one per line, seqs continuing the log.
    let lines = b"{\"kind\":\"job.progress\",\"job_id\":\"job-7f3a\",\"agent\":\"planner\",\"payload\":{\"pct\":10}}\n{\"kind\":\"job.progress\",\"job_id\":\"job-7f3a\",\"agent\":\"planner\",\"payload\":{\"pct\":20}}\n";
    let r = argus_stdin([std::ffi::OsStr::new("append"), p(dir)], lines);
    r.assert_ok();
    let seqs: Vec<u64> = r
        .json_lines()
        .iter()
        .map(|a| a["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![before, before + 1], "{}", r.ctx());
    // A bad line: exit 2 and the line named, as locally.
    let bad = b"{\"kind\":\"job.progress\",\"job_id\":\"j\",\"agent\":\"a\",\"payload\":{\"pct\":1}}\n{\"kind\":\"proposal.approved\",\"payload\":{}}\n";
    let remote_bad = argus_stdin([std::ffi::OsStr::new("append"), p(dir)], bad);
    assert_eq!(remote_bad.code, Some(2), "{}", remote_bad.ctx());
    assert!(
        remote_bad.stderr.contains("stdin line 2: field `kind`"),
        "{}",
        remote_bad.ctx()
    );
    // A decision: one approval wins, the second is refused with the
    // command's own message.
    let pending: Vec<Value> =
        argus(["approvals", "list", dir.to_str().unwrap(), "-o", "json"]).json_lines();
    let tail_remote = argus(["tail", dir.to_str().unwrap(), "-n", "4", "-o", "json"]);
    tail_remote.assert_ok();
    let text_tail_remote = argus(["tail", dir.to_str().unwrap(), "-n", "4"]);
    daemon.stop();
    let tail_local = argus(["tail", dir.to_str().unwrap(), "-n", "4", "-o", "json"]);
    assert_eq!(
        tail_remote.stdout, tail_local.stdout,
        "tail -o json differs"
    );
    let text_tail_local = argus(["tail", dir.to_str().unwrap(), "-n", "4"]);
    assert_eq!(
        text_tail_remote.stdout, text_tail_local.stdout,
        "tail text differs"
    );
    // Same bad input locally: the same message (its first line is committed
    // locally too).
    let local_bad = argus_stdin([std::ffi::OsStr::new("append"), p(dir)], bad);
    assert_eq!(local_bad.code, Some(2));
    assert_eq!(local_bad.stderr, remote_bad.stderr);
    let _ = pending;
}

#[test]
fn two_operators_racing_through_the_daemon_get_one_decision() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    record(dir, &session());
    let proposal = serde_json::json!({"kind": "proposal.created", "job_id": "job-race", "agent": "planner",
        "payload": {"proposal_id": "p-race", "action_type": "file_write", "risk": "medium",
            "rationale": "write the quarterly report to disk", "mission_context": "race test",
            "rollback_plan": "delete it", "parameters": {"path": "r.md"}}});
    record(dir, &[proposal]);
    let daemon = Daemon::start(dir);
    let d = dir.to_str().unwrap().to_string();
    let racers: Vec<_> = (0..6)
        .map(|i| {
            let d = d.clone();
            std::thread::spawn(move || {
                let verb = if i % 2 == 0 { "approve" } else { "reject" };
                argus([
                    "approvals",
                    verb,
                    &d,
                    "p-race",
                    "--reason",
                    "race",
                    "-o",
                    "json",
                ])
            })
        })
        .collect();
    let runs: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let won: Vec<_> = runs.iter().filter(|r| r.code == Some(0)).collect();
    assert_eq!(won.len(), 1, "exactly one decision: {runs:#?}");
    for r in runs.iter().filter(|r| r.code != Some(0)) {
        assert_eq!(r.code, Some(1), "{}", r.ctx());
        assert!(
            r.stderr.contains("only pending proposals can be"),
            "{}",
            r.ctx()
        );
    }
    daemon.stop();
    let decided = argus(["cat", &d, "-o", "json"])
        .json_lines()
        .into_iter()
        .filter(|e| {
            e["payload"]["proposal_id"] == "p-race"
                && (e["kind"] == "proposal.approved" || e["kind"] == "proposal.rejected")
        })
        .count();
    assert_eq!(decided, 1, "one decision entry in the log");
}

/// Starts `argusctl tail DIR -f -n 1 -o json`, appends two entries, and
/// returns the seqs the follower printed (bounded wait).
fn follow_two_appends(dir: &Path, head: u64) -> Vec<u64> {
    use std::io::BufRead;
    let mut tail =
        crate::common::cmd(["tail", dir.to_str().unwrap(), "-f", "-n", "1", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let out = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // The follower shows the current last entry before anything is added.
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("tail printed nothing");
    let mut seqs = vec![serde_json::from_str::<Value>(&first).unwrap()["seq"]
        .as_u64()
        .unwrap()];
    assert_eq!(seqs, vec![head - 1]);
    let line = b"{\"kind\":\"job.progress\",\"job_id\":\"job-7f3a\",\"agent\":\"planner\",\"payload\":{\"pct\":50}}\n";
    argus_stdin([std::ffi::OsStr::new("append"), p(dir)], line).assert_ok();
    argus_stdin([std::ffi::OsStr::new("append"), p(dir)], line).assert_ok();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seqs.len() < 3 && Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seqs.push(
                serde_json::from_str::<Value>(&l).unwrap()["seq"]
                    .as_u64()
                    .unwrap(),
            );
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    seqs
}

/// `tail -f` through the daemon's stream, and locally, on a log whose
/// active segment already holds entries: the follower starts mid-segment
/// and must see each new entry once (both once stopped at the segment's
/// first seal).
#[test]
fn tail_follow_sees_every_new_entry_through_the_daemon_and_locally() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    record(dir, &session());
    let head = argus(["stats", dir.to_str().unwrap()]).json()["entries"]
        .as_u64()
        .unwrap();
    let daemon = Daemon::start(dir);
    assert_eq!(
        follow_two_appends(dir, head),
        vec![head - 1, head, head + 1]
    );
    daemon.stop();
    assert_eq!(
        follow_two_appends(dir, head + 2),
        vec![head + 1, head + 2, head + 3]
    );
}

/// An `argusd.json` left by a killed daemon whose pid now names another
/// live process (here pid 1) is not trusted: nothing answers at its
/// address, so argusctl opens the log itself.
#[test]
fn a_stale_discovery_file_falls_back_to_local() {
    let (tmp, _key) = init_log(None);
    let dir = tmp.path();
    std::fs::write(
        dir.join("argusd.json"),
        r#"{"pid":1,"url":"http://127.0.0.1:1","socket":null,"version":"0.1.0"}"#,
    )
    .unwrap();
    let line = b"{\"kind\":\"job.received\",\"job_id\":\"j1\",\"agent\":\"p\",\"payload\":{\"job_type\":\"x\",\"title\":\"t\"}}\n";
    let r = argus_stdin([std::ffi::OsStr::new("append"), p(dir)], line);
    r.assert_ok();
    assert_eq!(r.json_lines().len(), 1, "{}", r.ctx());
    let jobs = argus(["jobs", dir.to_str().unwrap(), "-o", "json"]);
    jobs.assert_ok();
    assert_eq!(jobs.json_lines()[0]["job_id"], "j1");
    // Named explicitly, a dead server is an error, not a silent fallback.
    let r = argus([
        "--server",
        "http://127.0.0.1:1",
        "jobs",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(1), "{}", r.ctx());
    assert!(r.stderr.contains("connecting to argusd"), "{}", r.ctx());
}
