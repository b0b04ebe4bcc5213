//! Output that cannot lie or crash (issue 8 §6).
//!
//! A log holds strings written by agents and producers; a terminal acts on
//! some characters instead of showing them. These tests put such strings in
//! a real log through `argusctl append` and check that every text view shows
//! them escaped, that `-o json` still decodes to the exact stored strings,
//! that a closed stdout never panics and never changes a verdict, that
//! `append` with nobody reading its acks stops and says what is stored, and
//! that out-of-range numbers on the command line are usage errors.
use crate::common::*;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;

/// ESC sequences (recolour, clear screen), a C1 CSI, bidi override and
/// isolate, RLM, CR, BEL and a stored backslash sequence that must not pass
/// for an escaped ESC.
const H: &str = "\u{1b}[31mRED\u{9b}2J\u{202e}txt\u{2066}\u{200f}\r\u{7}\\x1b";

/// What a terminal would act on or hide, decided here independently of the
/// implementation: every control but the line break, and the bidi controls.
fn dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

fn assert_clean(what: &str, text: &str, r: &Run) {
    if let Some((i, c)) = text.char_indices().find(|(_, c)| dangerous(*c)) {
        panic!(
            "{what} holds U+{:04X} at byte {i}: {:?}{}",
            c as u32,
            &text[text[..i].rfind('\n').map_or(0, |n| n + 1)..],
            r.ctx()
        );
    }
}

fn h(prefix: &str) -> String {
    format!("{prefix}-{H}")
}

fn hostile_entries() -> Vec<Value> {
    vec![
        json!({"kind": "x.note", "job_id": h("job"), "step_id": H, "agent": h("agent"),
               "payload": {"m": H, "list": [H]}}),
        json!({"kind": "job.received", "job_id": h("job"), "agent": h("agent"),
               "payload": {"job_type": h("type"), "input": {"q": H}}}),
        json!({"kind": "agent.registered", "agent": h("agent"),
               "payload": {"slug": h("slug"), "version": 1, "description": H,
                           "capabilities": [H], "model_policy": {"m": H}}}),
        json!({"kind": "proposal.created", "job_id": h("job"), "agent": h("agent"),
               "payload": {"proposal_id": h("prop"), "action_type": "web_search", "risk": "low",
                           "rationale": format!("a rationale long enough to pass {H}"),
                           "mission_context": H, "parameters": {"cmd": H}, "timeout_s": 86400}}),
        json!({"kind": "dlq.enqueued", "job_id": h("job"),
               "payload": {"failure_reason": H, "retry_count": 1, "job_type": h("type"), "input": {"q": H}}}),
        json!({"kind": "worker.heartbeat", "payload": {"worker_id": h("w"), "job_id": h("job")}}),
        json!({"kind": "worker.claimed", "payload": {"worker_id": h("w"), "job_id": h("job"), "lease_ms": 600000}}),
        json!({"kind": "memory.proposal.created",
               "payload": {"proposal_id": h("mem"), "source_agent": H, "target_layer": 1,
                           "target_key": h("key"), "sources": [{"id": H, "authority": 0.9}]}}),
        json!({"kind": "policy.set",
               "payload": {"policy_id": h("pol"), "scope": "global",
                           "policy_type": "budget", "config": {"daily_usd": 5.0, "note": H}}}),
        json!({"kind": "policy.set",
               "payload": {"policy_id": h("allow"), "scope": "global", "policy_type": "allowlist",
                           "config": {"allowed_domains": ["docs.rs"]}}}),
        json!({"kind": "cost.logged", "job_id": h("job"), "agent": h("agent"),
               "payload": {"usd": 0.01, "tokens_in": 1, "tokens_out": 1, "model": H, "price_table": H}}),
        json!({"kind": "tool.call_failed", "job_id": h("job"), "payload": {"tool": h("tool"), "error": H}}),
        json!({"kind": "incident.declared", "payload": {"level": "degraded", "reason": H}}),
        json!({"kind": "route.set", "payload": {"task_type": h("task"), "provider": H, "model": h("model"),
                                              "priority": 1, "max_cost_usd": 0.5}}),
        json!({"kind": "flag.set", "payload": {"key": h("flag"), "enabled": true, "rollout_pct": 50,
                                             "target_ids": [H]}}),
        json!({"kind": "mode.changed", "payload": {"from": "alpha", "to": "beta", "reason": H}}),
    ]
}

/// A log holding `H` in every field a view shows: each entry written by its
/// writer's path (`crate::common::record`), plus one written by hand under an actor
/// whose name is hostile too (the actor field is shown by `cat`/`tail`).
fn hostile_log() -> tempfile::TempDir {
    let (tmp, _) = init_log(None);
    let entries = hostile_entries();
    crate::common::forge::forge_commit(tmp.path(), &format!("agent:{H}"), None, &entries[..1]);
    let acks = record(tmp.path(), &entries[1..]);
    assert_eq!(acks.len(), entries.len() - 1);
    tmp
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    let mut a = vec![args[0].to_string(), dir.display().to_string()];
    a.extend(args[1..].iter().map(|s| s.to_string()));
    argus(&a)
}

#[test]
fn text_views_show_stored_terminal_controls_escaped() {
    let tmp = hostile_log();
    let dir = tmp.path();
    let (job, slug, prop, task, flag, tool) = (
        h("job"),
        h("slug"),
        h("prop"),
        h("task"),
        h("flag"),
        h("tool"),
    );
    let views: Vec<Vec<&str>> = vec![
        vec!["cat"],
        vec!["tail", "-n", "100"],
        vec!["jobs"],
        vec!["jobs", "--job", &job],
        vec!["agents"],
        vec!["agents", "--slug", &slug],
        vec!["approvals", "list", "--all"],
        vec!["approvals", "show", &prop],
        vec!["flags"],
        vec!["flag", "is-enabled", &flag, "--context", "user=u1"],
        vec!["dlq", "list", "--all"],
        vec!["dlq", "show", &job],
        vec!["workers", "--all"],
        vec!["memory"],
        vec!["mode", "show"],
        vec!["policy", "list"],
        vec!["budget"],
        vec!["sla"],
        vec!["sla", "--jobs"],
        vec!["breakers"],
        vec!["breakers", "--check", &tool],
        vec!["incident"],
        vec!["route", &task],
    ];
    for v in &views {
        // Subcommands whose DIR comes after the sub-subcommand.
        let r = match v[0] {
            "approvals" | "dlq" | "flag" | "mode" | "policy" => {
                let mut a = vec![
                    v[0].to_string(),
                    v[1].to_string(),
                    dir.display().to_string(),
                ];
                a.extend(v[2..].iter().map(|s| s.to_string()));
                argus(&a)
            }
            _ => run_in(dir, v),
        };
        r.assert_ok();
        assert_clean("stdout", &r.stdout, &r);
        assert_clean("stderr", &r.stderr, &r);
        assert!(
            r.stdout.contains("[31mRED"),
            "the stored string is not shown (escaped) at all{}",
            r.ctx()
        );
    }
    // A denial quotes the requested domain.
    let d = dir.display().to_string();
    let r = argus([
        "policy",
        "check",
        d.as_str(),
        "--agent",
        h("agent").as_str(),
        "--tool",
        "browser.fetch",
        "--domain",
        h("evil").as_str(),
        "-o",
        "text",
    ]);
    r.assert_code(3);
    assert_clean("policy check stdout", &r.stdout, &r);
    assert!(r.stdout.contains("denied: "), "{}", r.ctx());
    // Data fields are escaped unambiguously: the stored four characters
    // `\x1b` show as `\\x1b`, the ESC character as `\x1b`.
    let jobs = run_in(dir, &["jobs"]);
    assert!(
        jobs.stdout
            .contains("job-\\x1b[31mRED\\u{9b}2J\\u{202e}txt\\u{2066}\\u{200f}\\r\\x07\\\\x1b"),
        "job id not rendered in the documented escaped form{}",
        jobs.ctx()
    );
}

#[test]
fn json_output_decodes_to_the_exact_stored_strings() {
    let tmp = hostile_log();
    let dir = tmp.path();
    let d = dir.display().to_string();
    let json_of = |args: &[&str]| -> (Run, Vec<Value>) {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["-o".to_string(), "json".to_string()]);
        let r = argus(&a);
        r.assert_ok();
        // Still free of anything a terminal acts on: invisible characters
        // are JSON escapes, which decode to the same string.
        assert_clean("json stdout", &r.stdout, &r);
        let v = r.json_lines();
        (r, v)
    };
    let actor = format!("agent:{H}");

    let (r, cat) = json_of(&["cat", &d]);
    assert_eq!(cat[0]["job_id"], h("job"), "{}", r.ctx());
    assert_eq!(cat[0]["step_id"], H, "{}", r.ctx());
    assert_eq!(cat[0]["agent"], h("agent"), "{}", r.ctx());
    assert_eq!(cat[0]["actor"], actor, "{}", r.ctx());
    assert_eq!(
        cat[0]["payload"],
        json!({"m": H, "list": [H]}),
        "{}",
        r.ctx()
    );
    let (r, tail) = json_of(&["tail", &d, "-n", "1"]);
    assert_eq!(tail[0]["payload"]["reason"], H, "{}", r.ctx());

    let checks: Vec<(Vec<&str>, &str, Value)> = vec![
        (vec!["jobs", &d], "job_id", json!(h("job"))),
        (vec!["agents", &d], "slug", json!(h("slug"))),
        (
            vec!["approvals", "list", &d, "--all"],
            "mission_context",
            json!(H),
        ),
        (vec!["dlq", "list", &d, "--all"], "failure_reason", json!(H)),
        (vec!["flags", &d], "target_ids", json!([H])),
        (vec!["memory", &d], "target_key", json!(h("key"))),
        (vec!["policy", "list", &d], "policy_id", json!(h("pol"))),
        (vec!["workers", &d, "--all"], "worker_id", json!(h("w"))),
        (vec!["breakers", &d], "tool", json!(h("tool"))),
        (vec!["incident", &d], "reason", json!(H)),
        (vec!["sla", &d, "--jobs"], "job_id", json!(h("job"))),
    ];
    for (args, field, want) in checks {
        let (r, rows) = json_of(&args);
        assert!(
            rows.iter().any(|row| row[field] == want),
            "no row with {field} == {want}{}",
            r.ctx()
        );
    }
    let (r, mode) = json_of(&["mode", "show", &d]);
    assert_eq!(mode[0]["history"][0]["reason"], H, "{}", r.ctx());
    assert_eq!(
        mode[0]["history"][0]["actor"],
        actor_of("operator"),
        "{}",
        r.ctx()
    );
    let (r, route) = json_of(&["route", &d, &h("task")]);
    assert_eq!(route[0]["chosen"]["provider"], H, "{}", r.ctx());
    let (r, show) = json_of(&["approvals", "show", &d, &h("prop")]);
    assert_eq!(show[0]["parameters"]["cmd"], H, "{}", r.ctx());
}

#[test]
fn errors_on_stderr_show_quoted_input_escaped() {
    let tmp = hostile_log();
    let dir = tmp.path();
    let d = dir.display().to_string();
    let missing = format!("no-such-{H}");
    for args in [
        vec![
            "jobs".to_string(),
            d.clone(),
            "--job".into(),
            missing.clone(),
        ],
        vec![
            "approvals".into(),
            "show".into(),
            d.clone(),
            missing.clone(),
        ],
        vec!["dlq".into(), "show".into(), d.clone(), missing.clone()],
        vec!["agents".into(), d.clone(), "--slug".into(), missing.clone()],
        vec!["route".into(), d.clone(), missing.clone()],
        vec!["cat".into(), dir.join(&missing).display().to_string()],
        vec!["stats".into(), dir.join(&missing).display().to_string()],
        vec!["verify".into(), dir.join(&missing).display().to_string()],
    ] {
        let r = argus(&args);
        assert!(
            matches!(r.code, Some(1) | Some(2)),
            "expected an error exit{}",
            r.ctx()
        );
        assert!(r.stderr.starts_with("argusctl: "), "{}", r.ctx());
        assert_clean("stderr", &r.stderr, &r);
        assert!(
            r.stderr.contains("[31mRED"),
            "the quoted input is not shown{}",
            r.ctx()
        );
    }
    // clap's own usage errors quote the argument too.
    let r = argus(["tail", d.as_str(), "-n", H]);
    r.assert_code(2);
    assert_clean("clap stderr", &r.stderr, &r);
}

#[test]
fn append_error_quoting_a_hostile_field_name_is_one_escaped_line() {
    let (tmp, _) = init_log(None);
    let line = format!("{}\n", json!({"kind": "x.t", H: 1}));
    let r = argus_stdin([OsStr::new("append"), p(tmp.path())], line.as_bytes());
    r.assert_code(2);
    assert_clean("stderr", &r.stderr, &r);
    assert_eq!(
        r.stderr.trim_end().lines().count(),
        1,
        "one error line, whatever the input holds{}",
        r.ctx()
    );
    assert!(r.stderr.contains("stdin line 1"), "{}", r.ctx());
}

// ------------------------------------------------------------ closed stdout

/// Runs argusctl with its stdout pipe's read end closed before it writes.
fn with_closed_stdout(args: &[String]) -> Run {
    let mut child = cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn argusctl");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait argusctl");
    Run {
        args: args.to_vec(),
        code: out.status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn no_panic(r: &Run) {
    assert_ne!(r.code, Some(101), "exit 101 is a panic{}", r.ctx());
    assert!(!r.stderr.contains("panicked"), "{}", r.ctx());
}

#[test]
fn closed_stdout_never_panics() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    append(dir, &small_entries(0, 50));
    let d = dir.display().to_string();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    for args in [
        s(&["stats", &d]),
        s(&["checkpoint", &d]),
        s(&["cat", &d]),
        s(&["cat", &d, "-o", "json"]),
        s(&["tail", &d]),
        s(&["kinds"]),
        s(&["jobs", &d]),
        s(&["approvals", "list", &d, "--all", "-o", "json"]),
        s(&["projections", "status", &d]),
    ] {
        let r = with_closed_stdout(&args);
        no_panic(&r);
        r.assert_ok();
    }
    let init_dir = dir.join("fresh");
    let r = with_closed_stdout(&s(&["init", &init_dir.display().to_string()]));
    no_panic(&r);
    assert!(
        init_dir.join("argus.json").is_file(),
        "init did its work{}",
        r.ctx()
    );
    // verify's exit code is its verdict: a closed stdout must not change it.
    let r = with_closed_stdout(&s(&["verify", &d, "--key", &key]));
    no_panic(&r);
    r.assert_ok();
}

#[test]
fn closed_stdout_keeps_verify_and_policy_verdicts() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    record(
        dir,
        &[
            json!({"kind": "policy.set", "payload": {"policy_id": "allow", "scope": "global",
                 "policy_type": "allowlist", "config": {"allowed_domains": ["docs.rs"]}}}),
        ],
    );
    let d = dir.display().to_string();
    let r = with_closed_stdout(&[
        "policy".into(),
        "check".into(),
        d.clone(),
        "--agent".into(),
        "a".into(),
        "--tool".into(),
        "t".into(),
        "--domain".into(),
        "evil.example".into(),
    ]);
    no_panic(&r);
    r.assert_code(3);

    // Alter one payload byte: verify must still say 10 with nobody reading.
    let seg = &segment_files(dir)[0];
    let m = parse_segment(seg);
    let layout = entry_layout(seg, m.entries()[0]);
    flip_byte(seg, layout.payload().0);
    for format in ["text", "json"] {
        let r = with_closed_stdout(&[
            "verify".into(),
            d.clone(),
            "--key".into(),
            key.clone(),
            "-o".into(),
            format.into(),
        ]);
        no_panic(&r);
        r.assert_code(10);
    }
}

#[test]
fn append_with_closed_ack_stream_stops_and_reports_what_is_stored() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let before = 5u64;
    append(dir, &small_entries(0, before as usize));

    // The first 2,500 lines produce ~210 KB of acks, more than the pipe and
    // the reader's buffer hold, so the child is still writing acks when the
    // reader goes away. The last 500 lines are held back until the child has
    // exited: without that, a fast machine commits all 3,000 before the
    // first failed ack write and nothing shows that append *stopped*.
    let first = to_lines(&small_entries(before, 2500));
    let rest = to_lines(&small_entries(before + 2500, 500));
    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn append");
    let mut stdin = child.stdin.take().expect("stdin");
    let (release, released) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        // The child stops reading once its acks have nowhere to go.
        let _ = stdin.write_all(&first);
        if released.recv().is_ok() {
            let _ = stdin.write_all(&rest);
        }
    });
    let mut acks = Vec::new();
    {
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        for _ in 0..3 {
            let l = lines.next().expect("an ack").expect("read ack");
            acks.push(parse_ack(&l));
        }
        // Dropping the reader closes the ack stream.
    }
    let out = child.wait_with_output().expect("wait append");
    let _ = release.send(());
    let _ = feeder.join();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let ctx = format!("exit {:?}; stderr:\n{stderr}", out.status.code());
    assert_eq!(out.status.code(), Some(1), "{ctx}");

    // "stdout closed: N entries committed (seqs A..=B, last seq B); stopping; resume from line L"
    let msg = stderr
        .lines()
        .find(|l| l.starts_with("argusctl: stdout closed: "))
        .unwrap_or_else(|| panic!("no stdout-closed report; {ctx}"));
    let nums: Vec<u64> = msg
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    let [n, first, last, last_again, resume] = nums[..] else {
        panic!("unexpected report {msg:?}; {ctx}");
    };
    assert!(msg.contains("stopping"), "{ctx}");
    assert_eq!(first, before, "{ctx}");
    assert_eq!(last, before + n - 1, "{ctx}");
    assert_eq!(last_again, last, "{ctx}");
    assert_eq!(
        resume,
        n + 1,
        "line numbers count this run's stdin lines; {ctx}"
    );
    assert!((3..=2500).contains(&n), "{ctx}");

    let st = stats(dir);
    assert_eq!(st["entries"], json!(before + n), "stats {st}; {ctx}");
    verify(dir, &st_key(dir), &[]).assert_ok();
    // Every ack the producer saw names an entry that is stored, as acked.
    let stored = cat_json(dir, &[]);
    for a in &acks {
        assert_eq!(stored[a.seq as usize]["hash"], json!(a.hash), "{ctx}");
    }
}

/// A producer that sends one line, reads its ack and then closes the ack
/// stream while keeping stdin open: append is waiting for input, with
/// nothing to write, and must still notice that nobody reads its acks
/// (poll reports the closed pipe) and stop, rather than commit the next
/// line with no receipt. A watchdog kills it after 60 s.
#[test]
fn append_notices_a_closed_ack_stream_while_waiting_for_input() {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    let mut child = cmd([OsStr::new("append"), p(dir)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn append");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(&to_lines(&small_entries(0, 1)))
        .expect("write the line");
    let ack = {
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let l = lines.next().expect("an ack").expect("read ack");
        parse_ack(&l)
        // Dropping the reader closes the ack stream; stdin stays open.
    };
    assert_eq!(ack.seq, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("append still waits for input 60 s after its ack stream was closed (killed it)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let (tx, rx) = mpsc::channel();
    let mut err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        let _ = tx.send(s);
    });
    let stderr = rx.recv_timeout(Duration::from_secs(10)).expect("stderr");
    let ctx = format!("exit {:?}; stderr:\n{stderr}", status.code());
    assert_eq!(status.code(), Some(1), "{ctx}");
    assert!(
        stderr.contains(
            "argusctl: stdout closed: 1 entries committed (seqs 0..=0, last seq 0); stopping; resume from line 2"
        ),
        "{ctx}"
    );
    assert_eq!(stats(dir)["entries"], json!(1), "{ctx}");
}

/// The log's own public key (the test only needs verify to run).
fn st_key(dir: &Path) -> String {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("argus.json")).expect("argus.json"))
            .expect("argus.json is JSON");
    meta["public_key"].as_str().expect("public_key").to_string()
}

// ------------------------------------------------------------- ranges

#[test]
fn out_of_range_numbers_are_usage_errors_naming_option_and_range() {
    let (tmp, _) = init_log(None);
    let d = tmp.path().display().to_string();
    let fresh = tmp.path().join("fresh").display().to_string();
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            vec!["tail", &d, "-n", "99999999999"],
            "--lines",
            "0..=1000000",
        ),
        (
            vec!["init", &fresh, "--segment-bytes", "100"],
            "--segment-bytes",
            "4096..=",
        ),
        (
            vec!["init", &fresh, "--segment-bytes", "8589934592"],
            "--segment-bytes",
            "..=4294967296",
        ),
        (vec!["verify", &d, "--threads", "0"], "--threads", "1..=256"),
        (
            vec!["verify", &d, "--threads", "100000"],
            "--threads",
            "1..=256",
        ),
        (
            vec!["workers", &d, "--stale-after-s", "31622401"],
            "--stale-after-s",
            "0..=31622400",
        ),
        (
            vec!["workers", &d, "--stuck-after-s", "99999999999999"],
            "--stuck-after-s",
            "0..=31622400",
        ),
        (
            vec!["workers", &d, "--rss-max-mb", "inf"],
            "--rss-max-mb",
            "0..=",
        ),
        (
            vec!["route", &d, "code_review", "--max-cost", "NaN"],
            "--max-cost",
            "0..=",
        ),
        (
            vec!["route", &d, "code_review", "--max-cost=-0.01"],
            "--max-cost",
            "0..=",
        ),
        (
            vec!["route", &d, "code_review", "--context-length", "0"],
            "--context-length",
            "1..=",
        ),
        (
            vec![
                "policy", "check", &d, "--agent", "a", "--tool", "t", "--cost", "1e400",
            ],
            "--cost",
            "0..=",
        ),
        (
            vec!["projections", "rebuild", &d, "--threads", "0"],
            "--threads",
            "1..=64",
        ),
        (
            vec![
                "flag",
                "set",
                &d,
                "f",
                "--enabled",
                "true",
                "--rollout-pct",
                "101",
            ],
            "--rollout-pct",
            "0..=100",
        ),
    ];
    for (args, option, range) in cases {
        let r = argus(&args);
        r.assert_code(2);
        assert!(
            r.stderr.contains(option),
            "error does not name {option}{}",
            r.ctx()
        );
        assert!(
            r.stderr.contains(range),
            "error does not state the range {range}{}",
            r.ctx()
        );
    }
    assert!(
        !tmp.path().join("fresh").exists(),
        "a refused init created the directory"
    );
    // The ends of each range are accepted.
    run_in(tmp.path(), &["tail", "-n", "0"]).assert_ok();
    run_in(tmp.path(), &["tail", "-n", "1000000"]).assert_ok();
    argus(["init", &fresh, "--segment-bytes", "4096"]).assert_ok();
    run_in(
        tmp.path(),
        &[
            "workers",
            "--stale-after-s",
            "0",
            "--stuck-after-s",
            "31622400",
            "--rss-max-mb",
            "0",
        ],
    )
    .assert_ok();
    run_in(tmp.path(), &["route", "code_review", "--max-cost", "0"]).assert_ok();
}
