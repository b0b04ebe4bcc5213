//! `argusctl exec`, the governed tool executor, with real commands: what it
//! records, what refuses a call (kill switches, policy, breaker, sandbox),
//! the limits, a kill that arrives while the command runs, and bubblewrap.
use crate::common::{self, argus, cat_json, configure, init_log, p, Run};
use crate::daemon::harness::Daemon;
use crate::daemon::http::request;
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn exec_args(dir: &Path, opts: &[&str], argv: &[&str]) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["exec".into(), dir.into()];
    a.extend(opts.iter().map(OsString::from));
    a.push("--".into());
    a.extend(argv.iter().map(OsString::from));
    a
}

/// `argusctl exec DIR --job j1 --agent coder OPTS -- ARGV`.
fn exec(dir: &Path, opts: &[&str], argv: &[&str]) -> Run {
    let mut o = vec!["--job", "j1", "--agent", "coder"];
    o.extend_from_slice(opts);
    argus(exec_args(dir, &o, argv))
}

fn of_kind<'a>(log: &'a [Value], kind: &str) -> Vec<&'a Value> {
    log.iter().filter(|e| e["kind"] == kind).collect()
}

fn only<'a>(log: &'a [Value], kind: &str) -> &'a Value {
    let all = of_kind(log, kind);
    assert_eq!(all.len(), 1, "expected one {kind}: {log:#?}");
    all[0]
}

/// The started entry and its outcome entry, checked to belong together.
fn call(log: &[Value], outcome_kind: &str) -> (Value, Value) {
    let started = only(log, "tool.call_started").clone();
    let done = only(log, outcome_kind).clone();
    assert_eq!(done["parent"], started["seq"], "outcome names its start");
    assert_eq!(done["payload"]["call_id"], started["payload"]["call_id"]);
    assert_eq!(done["job_id"], "j1");
    assert_eq!(done["agent"], started["agent"]);
    assert!(
        started["actor"].as_str().unwrap().starts_with("agent:"),
        "{started}"
    );
    for k in ["duration_ms", "cpu_ms", "peak_rss_kb", "exit_code"] {
        assert!(done["payload"][k].is_u64(), "{k} missing: {done}");
    }
    (started, done)
}

#[test]
fn exec_success_records_start_and_completion_with_usage_and_no_secret() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let secret = "sk-abc123def456ghi789jkl012";
    let argv = [
        "sh",
        "-c",
        "echo out-$0",
        "x",
        &format!("--token={secret}"),
        "--password",
        "hunter2-not-in-the-log",
        "plain",
    ];
    let r = exec(dir, &[], &argv);
    r.assert_ok();
    assert_eq!(
        r.stdout.trim(),
        "out-x",
        "the command's output is the user's"
    );
    let log = cat_json(dir, &[]);
    assert_eq!(log.len(), 2, "{log:#?}");
    let (started, done) = call(&log, "tool.call_completed");
    let s = &started["payload"];
    assert_eq!(s["tool"], "sh");
    assert_eq!(s["command"], "sh");
    assert_eq!(s["sandbox"], false);
    assert_eq!(
        s["args"],
        json!([
            "-c",
            "echo out-$0",
            "x",
            "--token=[REDACTED]",
            "--password",
            "[REDACTED]",
            "plain"
        ])
    );
    assert_eq!(s["args_redacted"], 2);
    let mut h = blake3::Hasher::new();
    h.update(argv.join("\0").as_bytes());
    assert_eq!(s["args_blake3"], h.finalize().to_hex().as_str());
    assert_eq!(s["call_id"].as_str().map(str::len), Some(32));
    assert_eq!(done["payload"]["exit_code"], 0);
    assert_eq!(done["payload"]["outcome"], "exited");
    assert!(done["payload"]["peak_rss_kb"].as_u64() > Some(0), "{done}");
    // Nowhere in the log, in any form cat prints.
    let raw = argus([
        OsString::from("cat"),
        dir.into(),
        "-o".into(),
        "json".into(),
    ]);
    raw.assert_ok();
    for text in [
        &raw.stdout,
        &argus([OsString::from("cat"), dir.into()]).stdout,
    ] {
        assert!(!text.contains("abc123def456"), "secret in the log:\n{text}");
        assert!(!text.contains("hunter2"), "secret in the log:\n{text}");
        assert!(text.contains("[REDACTED]"));
    }
}

#[test]
fn exec_failure_records_the_exit_code_and_exits_with_it() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let r = exec(
        dir,
        &["--tool", "build"],
        &["sh", "-c", "echo oops >&2; exit 7"],
    );
    r.assert_code(7);
    assert!(r.stderr.contains("oops"), "{}", r.ctx());
    let log = cat_json(dir, &[]);
    let (started, done) = call(&log, "tool.call_failed");
    assert_eq!(started["payload"]["tool"], "build");
    assert_eq!(done["payload"]["exit_code"], 7);
    assert_eq!(done["payload"]["error"], "exited with status 7");
    // A program that does not exist: recorded, 126.
    let r = exec(dir, &[], &["/nonexistent/tool-xyz"]);
    r.assert_code(126);
    let log = cat_json(dir, &[]);
    let last = log.last().unwrap();
    assert_eq!(last["kind"], "tool.call_failed");
    assert_eq!(last["payload"]["outcome"], "not_started");
}

/// Runs a command that would create `marker`, expects refusal `code`, and
/// returns the `policy.denied` entry recorded for it.
fn refused(dir: &Path, opts: &[&str], code: i32) -> Value {
    let marker = dir.join("ran");
    let before = cat_json(dir, &[]).len();
    let mut o = vec!["--job", "j1", "--agent", "coder"];
    o.extend_from_slice(opts);
    let r = argus(exec_args(dir, &o, &["touch", marker.to_str().unwrap()]));
    r.assert_code(code);
    assert!(!marker.exists(), "a refused command ran{}", r.ctx());
    assert!(r.stderr.contains("refused"), "{}", r.ctx());
    let log = cat_json(dir, &[]);
    let new = &log[before..];
    assert!(
        of_kind(new, "tool.call_started").is_empty(),
        "a refused call was started: {new:#?}"
    );
    let d = only(new, "policy.denied").clone();
    assert!(d["actor"].as_str().unwrap().starts_with("argus:"), "{d}");
    assert_eq!(d["agent"], "coder");
    assert_eq!(d["job_id"], "j1");
    let seq = d["seq"].as_u64().unwrap().to_string();
    assert!(
        r.stderr.contains(&seq),
        "stderr names the record{}",
        r.ctx()
    );
    d
}

fn decision_seq(r: &Run) -> u64 {
    r.assert_ok();
    r.stdout
        .trim()
        .strip_prefix("seq ")
        .and_then(|s| s.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seq{}", r.ctx()))
}

#[test]
fn exec_a_standing_hard_kill_refuses_and_records_why() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let kill = decision_seq(&argus([
        OsString::from("kill"),
        dir.into(),
        "--reason".into(),
        "agent looping".into(),
    ]));
    let d = refused(dir, &[], 120);
    assert_eq!(
        d["payload"]["reason"],
        format!("hard kill stands (seq {kill}): agent looping")
    );
    assert_eq!(d["payload"]["tool"], "touch");
    // Released, it runs again.
    argus([
        OsString::from("release"),
        dir.into(),
        "--reason".into(),
        "ok".into(),
    ])
    .assert_ok();
    exec(dir, &[], &["true"]).assert_ok();
}

#[test]
fn exec_a_soft_kill_refuses_only_its_scope() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let kill = decision_seq(&argus([
        OsString::from("kill"),
        dir.into(),
        "--agent".into(),
        "other".into(),
        "--reason".into(),
        "spend spike".into(),
    ]));
    exec(dir, &[], &["true"]).assert_ok();
    let r = argus(exec_args(
        dir,
        &["--job", "j1", "--agent", "other"],
        &["true"],
    ));
    r.assert_code(120);
    assert!(
        r.stderr
            .contains(&format!("soft kill of agent other stands (seq {kill})")),
        "{}",
        r.ctx()
    );
    argus([
        OsString::from("kill"),
        dir.into(),
        "--job".into(),
        "j1".into(),
        "--reason".into(),
        "wrong customer".into(),
    ])
    .assert_ok();
    let d = refused(dir, &[], 120);
    assert!(
        d["payload"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("soft kill of job j1 stands"),
        "{d}"
    );
}

#[test]
fn exec_an_open_breaker_refuses() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    configure(
        dir,
        &[
            json!({"kind": "breaker.configured", "payload": {"tool": "flaky",
            "failure_threshold": 2, "window_seconds": 60, "recovery_probe_seconds": 600}}),
        ],
    );
    // Two failed calls through exec itself open the breaker.
    for _ in 0..2 {
        exec(dir, &["--tool", "flaky"], &["false"]).assert_code(1);
    }
    let log = cat_json(dir, &[]);
    let tripped = of_kind(&log, "tool.call_failed")[1]["seq"]
        .as_u64()
        .unwrap();
    let d = refused(dir, &["--tool", "flaky"], 122);
    let reason = d["payload"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "circuit breaker for flaky is open (opened at seq {tripped})"
        )),
        "{reason}"
    );
    assert!(d["payload"]["retry_after_s"].as_u64() > Some(500), "{d}");
    // Another tool is not affected.
    exec(dir, &["--tool", "steady"], &["true"]).assert_ok();
}

#[test]
fn exec_policy_refuses_as_policy_check_does() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    configure(
        dir,
        &[
            json!({"kind": "policy.set", "payload": {"policy_id": "rl-coder",
            "policy_type": "rate_limit", "scope": "agent:coder",
            "config": {"max_per_minute": 1}}}),
        ],
    );
    // Rate limits count tool.call_started per agent and tool: exec's own.
    exec(dir, &["--tool", "fetch"], &["true"]).assert_ok();
    let d = refused(dir, &["--tool", "fetch"], 121);
    assert_eq!(d["payload"]["policy_id"], "rl-coder");
    assert_eq!(d["payload"]["tool"], "fetch");
    assert!(d["payload"]["retry_after_s"].is_u64(), "{d}");
}

#[test]
fn exec_wall_clock_limit_stops_the_command() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let t = Instant::now();
    let r = exec(dir, &["--wall-s", "1", "--grace-s", "1"], &["sleep", "30"]);
    r.assert_code(125);
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    let log = cat_json(dir, &[]);
    let (_, done) = call(&log, "tool.call_failed");
    assert_eq!(done["payload"]["outcome"], "wall_limit");
    assert!(
        done["payload"]["error"]
            .as_str()
            .unwrap()
            .starts_with("wall-clock limit of 1 s reached"),
        "{done}"
    );
    assert!(done["payload"]["duration_ms"].as_u64() >= Some(1000));
}

#[test]
fn exec_cpu_limit_kills_a_busy_loop() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    // --wall-s only as a safety net: the CPU limit must come first.
    let r = exec(
        dir,
        &["--cpu-s", "1", "--wall-s", "120"],
        &["sh", "-c", "while :; do :; done"],
    );
    // SIGXCPU (128+24), or SIGKILL at the hard limit.
    assert!(matches!(r.code, Some(152) | Some(137)), "{}", r.ctx());
    let log = cat_json(dir, &[]);
    let (started, done) = call(&log, "tool.call_failed");
    assert_eq!(started["payload"]["limits"]["cpu_s"], 1);
    assert_eq!(done["payload"]["outcome"], "cpu_limit", "{done}");
    // The kernel fires SIGXCPU on its precise runtime; rusage reports
    // tick-sampled time, which on a loaded VM came out at 830 ms for a
    // 1 s limit (clean-clone CI run): the busy loop's own CPU time is
    // recorded, not an exact figure.
    assert!(done["payload"]["cpu_ms"].as_u64() >= Some(500), "{done}");
}

#[test]
fn exec_a_hard_kill_while_running_stops_the_command() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let mut child = common::cmd(exec_args(
        dir,
        &["--job", "j1", "--agent", "coder", "--grace-s", "2"],
        &["sleep", "30"],
    ))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The call is recorded as started before the command runs.
    let until = Instant::now() + Duration::from_secs(20);
    while of_kind(&cat_json(dir, &[]), "tool.call_started").is_empty() {
        assert!(Instant::now() < until, "exec never recorded a start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // exec holds no writer lock while the command runs: the kill does not wait.
    let t = Instant::now();
    let kill = decision_seq(&argus([
        OsString::from("--lock-timeout"),
        "2".into(),
        "kill".into(),
        dir.into(),
        "--reason".into(),
        "stop now".into(),
    ]));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > until {
            let err = common::kill_and_reap(child);
            panic!("exec did not stop after the kill; stderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(124), "stderr:\n{stderr}");
    let log = cat_json(dir, &[]);
    let (_, done) = call(&log, "tool.call_failed");
    assert_eq!(done["payload"]["outcome"], "killed");
    assert!(
        done["payload"]["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("terminated by hard kill seq {kill}: stop now")),
        "{done}"
    );
    assert!(done["seq"].as_u64() > Some(kill));
}

/// Whether bubblewrap can build a sandbox here; under CI a missing or
/// broken bwrap fails the test instead.
fn bwrap_works() -> bool {
    let ok = std::process::Command::new("/usr/bin/bwrap")
        .args(["--ro-bind", "/", "/", "--unshare-all", "--as-pid-1", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && std::env::var_os("CI").is_some() {
        panic!("CI: /usr/bin/bwrap must work (apt-get install bubblewrap; tools/test-all does)");
    }
    ok
}

#[test]
fn exec_sandbox_read_only_root_writable_workspace_no_network() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let ws = tempfile::tempdir().unwrap();
    let w = ws.path().to_str().unwrap();
    let sb = ["--sandbox", "--workspace", w];
    if !bwrap_works() {
        eprintln!("bwrap cannot create a sandbox here: expecting refusals (123)");
        let r = exec(dir, &sb, &["true"]);
        r.assert_code(123);
        return;
    }
    let etc = format!("/etc/argus-exec-{}", std::process::id());
    let r = exec(dir, &sb, &["sh", "-c", &format!("echo hi > {etc}")]);
    assert_ne!(r.code, Some(0), "wrote outside the workspace{}", r.ctx());
    assert!(r.stderr.contains("Read-only"), "{}", r.ctx());
    assert!(!Path::new(&etc).exists());

    exec(dir, &sb, &["sh", "-c", "echo hi > out.txt; pwd"]).assert_ok();
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out.txt")).unwrap(),
        "hi\n"
    );

    let r = exec(dir, &sb, &["cat", "/proc/net/dev"]);
    r.assert_ok();
    let ifaces: Vec<&str> = r
        .stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{}", r.ctx());

    let log = cat_json(dir, &[]);
    let started = of_kind(&log, "tool.call_started");
    assert_eq!(started.len(), 3);
    for s in started {
        assert_eq!(s["payload"]["sandbox"], true);
        assert_eq!(
            s["payload"]["workspace"],
            ws.path().canonicalize().unwrap().to_str().unwrap()
        );
    }
}

#[test]
fn exec_sandbox_unavailable_refuses_and_never_runs_unsandboxed() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let marker = dir.join("ran");
    let mut c = common::cmd(exec_args(
        dir,
        &["--job", "j1", "--agent", "coder", "--sandbox"],
        &["touch", marker.to_str().unwrap()],
    ));
    c.env("ARGUS_BWRAP", dir.join("no-such-bwrap"));
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(123), "{stderr}");
    assert!(!marker.exists(), "ran without the sandbox it was asked for");
    assert!(stderr.contains("sandbox unavailable"), "{stderr}");
    let log = cat_json(dir, &[]);
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_eq!(log[0]["kind"], "policy.denied");
}

#[test]
fn exec_goes_through_argusd_and_argusd_never_runs_it() {
    let d = Daemon::start();
    let r = exec(&d.dir, &[], &["sh", "-c", "exit 3"]);
    r.assert_code(3);
    let log = d.cat();
    let (started, done) = call(&log, "tool.call_failed");
    assert_eq!(started["payload"]["tool"], "sh");
    assert_eq!(done["payload"]["exit_code"], 3);
    // The daemon refuses to run exec itself (it would run as the daemon).
    let marker = d.scratch().join("ran-in-daemon");
    let body = json!({"argv": ["exec", ".", "--job", "j", "--agent", "a", "--",
        "touch", marker.to_str().unwrap()]});
    let resp = request(
        &d.addr,
        "POST",
        "/v1/argusctl",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(!marker.exists());
}

#[test]
fn exec_help_documents_the_exit_codes() {
    let r = argus(["exec", "--help"]);
    r.assert_ok();
    for code in [
        "119",
        "120",
        "121",
        "122",
        "123",
        "124",
        "125",
        "126",
        "--sandbox",
        "--cpu-s",
    ] {
        assert!(r.stdout.contains(code), "--help lacks {code}{}", r.ctx());
    }
    // --workspace means nothing without --sandbox.
    let (tmp, _) = init_log(None);
    let r = argus([
        OsString::from("exec"),
        p(tmp.path()).into(),
        "--job".into(),
        "j".into(),
        "--agent".into(),
        "a".into(),
        "--workspace".into(),
        "/tmp".into(),
        "--".into(),
        "true".into(),
    ]);
    r.assert_code(2);
}
