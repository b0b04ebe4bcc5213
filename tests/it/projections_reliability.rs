//! Reliability projections through the real binary: DLQ (§4.11), SLA
//! (§4.9), circuit breakers (§4.12) and worker health (§4.13).
//!
//! Log time advances only with commit timestamps, so rules measured in
//! seconds use small configured windows and short real sleeps.
use crate::common::{argus, p, record};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Appends one batch and returns the seqs.
fn put(dir: &Path, entries: &[Value]) -> Vec<u64> {
    record(dir, entries).iter().map(|a| a.seq).collect()
}

/// Runs `argusctl <command...> DIR <rest...> -o json`; `dlq` takes its verb
/// before DIR.
fn lines(dir: &Path, args: &[&str]) -> Vec<Value> {
    let verbs = if args[0] == "dlq" { 2 } else { 1 };
    let mut a: Vec<String> = args[..verbs].iter().map(|s| s.to_string()).collect();
    a.push(dir.display().to_string());
    a.extend(args[verbs..].iter().map(|s| s.to_string()));
    a.extend(["-o".to_string(), "json".to_string()]);
    let r = argus(&a);
    r.assert_ok();
    r.json_lines()
}

fn one(dir: &Path, args: &[&str]) -> Value {
    let v = lines(dir, args);
    assert_eq!(v.len(), 1, "expected one JSON object from {args:?}: {v:#?}");
    v.into_iter().next().unwrap_or_default()
}

fn entry_count(dir: &Path) -> u64 {
    let r = argus([std::ffi::OsStr::new("stats"), p(dir)]);
    r.assert_ok();
    r.json()["entries"].as_u64().unwrap_or(u64::MAX)
}

fn entry(dir: &Path, seq: u64) -> Value {
    let s = seq.to_string();
    let r = argus([
        "cat",
        &dir.display().to_string(),
        "--from",
        &s,
        "--to",
        &s,
        "-o",
        "json",
    ]);
    r.assert_ok();
    r.json()
}

/// `2026-11-23T11:53:47.539165123Z` → ns since the epoch.
fn parse_ts(s: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| s[r].parse::<i64>().expect("ts digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs as u64 * 1_000_000_000 + n(20..29) as u64
}

fn ts(dir: &Path, seq: u64) -> u64 {
    parse_ts(entry(dir, seq)["ts"].as_str().expect("ts"))
}

fn by<'a>(rows: &'a [Value], field: &str, value: &str) -> &'a Value {
    rows.iter()
        .find(|r| r[field] == value)
        .unwrap_or_else(|| panic!("no row with {field}={value} in {rows:#?}"))
}

// ---------------------------------------------------------------- DLQ §4.11

fn dead_letter(dir: &Path, job: &str) -> u64 {
    let seqs = put(
        dir,
        &[
            json!({"kind":"job.received","job_id":job,"payload":{"job_type":"research_synthesis","max_retries":2,"input":{"topic":"x"}}}),
            json!({"kind":"tool.call_failed","job_id":job,"payload":{"tool":"browser.fetch","error":"HTTP 503"}}),
            json!({"kind":"job.retrying","job_id":job,"payload":{"attempt":1,"max_retries":2}}),
            json!({"kind":"job.failed","job_id":job,"payload":{"error":"timeout after 30s fetching source"}}),
            json!({"kind":"dlq.enqueued","job_id":job,"payload":{"failure_reason":"max_retries exhausted","retry_count":2,"job_type":"research_synthesis","input":{"topic":"x"}}}),
        ],
    );
    seqs[4]
}

#[test]
fn dlq_entry_comes_only_from_dlq_enqueued_and_carries_reason_and_last_error() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    // A job that failed and retried but was never dead-lettered stays out.
    put(
        dir,
        &[
            json!({"kind":"job.received","job_id":"other","payload":{"job_type":"health_check","max_retries":0}}),
            json!({"kind":"job.failed","job_id":"other","payload":{"error":"boom"}}),
            json!({"kind":"job.retrying","job_id":"other","payload":{"attempt":1,"max_retries":0}}),
            json!({"kind":"job.failed","job_id":"other","payload":{"error":"boom again"}}),
        ],
    );
    assert!(lines(dir, &["dlq", "list", "--all"]).is_empty());
    let enq = dead_letter(dir, "j1");
    let items = lines(dir, &["dlq", "list"]);
    assert_eq!(items.len(), 1, "{items:#?}");
    let i = &items[0];
    assert_eq!(i["job_id"], "j1");
    assert_eq!(i["status"], "pending");
    assert_eq!(i["failure_reason"], "max_retries exhausted");
    assert_eq!(i["retry_count"], 2);
    assert_eq!(i["max_retries"], 2);
    assert_eq!(i["job_type"], "research_synthesis");
    assert_eq!(i["input"], json!({"topic":"x"}));
    // The last error is the job.failed one, after the tool failure.
    assert_eq!(i["last_error"], "timeout after 30s fetching source");
    assert_eq!(i["last_error_seq"], enq - 1);
    assert_eq!(i["enqueued_seq"], enq);
    assert_eq!(one(dir, &["dlq", "show", "j1"]), *i);
    let r = argus(["dlq", "show", &dir.display().to_string(), "nope"]);
    r.assert_code(1);
}

#[test]
fn dlq_replay_appends_linked_job_replayed_and_refuses_non_pending() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let enq = dead_letter(dir, "j1");
    let ack = one(dir, &["dlq", "replay", "j1"]);
    assert_eq!(ack["job_id"], "j1-r1");
    let seq = ack["seq"].as_u64().expect("seq");
    let e = entry(dir, seq);
    assert_eq!(e["kind"], "job.replayed");
    assert_eq!(e["job_id"], "j1-r1");
    assert_eq!(e["parent"], enq, "replay links to the dlq.enqueued entry");
    assert_eq!(e["payload"]["original_job_id"], "j1");
    assert_eq!(e["payload"]["dlq_seq"], enq);
    assert_eq!(e["payload"]["input"], json!({"topic":"x"}));
    assert!(!e["actor"].as_str().unwrap_or("").is_empty());
    assert!(lines(dir, &["dlq", "list"]).is_empty(), "no longer pending");
    let i = one(dir, &["dlq", "show", "j1"]);
    assert_eq!(i["status"], "replayed");
    assert_eq!(i["replay_job_id"], "j1-r1");
    assert_eq!(i["resolved_seq"], seq);
    // Refusals append nothing.
    let before = entry_count(dir);
    let d = dir.display().to_string();
    let r = argus(["dlq", "replay", &d, "j1"]);
    r.assert_code(1);
    assert!(r.stderr.contains("already replayed"), "{}", r.ctx());
    argus(["dlq", "discard", &d, "j1", "--reason", "dup"]).assert_code(1);
    argus(["dlq", "replay", &d, "unknown-job"]).assert_code(1);
    assert_eq!(entry_count(dir), before);
    // Dead-lettered again: pending again, and the next replay is -r2.
    dead_letter(dir, "j1");
    assert_eq!(one(dir, &["dlq", "show", "j1"])["status"], "pending");
    assert_eq!(one(dir, &["dlq", "replay", "j1"])["job_id"], "j1-r2");
}

#[test]
fn dlq_discard_appends_dlq_reviewed_with_reason() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let d = dir.display().to_string();
    let enq = dead_letter(dir, "j2");
    argus(["dlq", "discard", &d, "j2", "--reason", " "]).assert_code(1);
    let ack = one(
        dir,
        &["dlq", "discard", "j2", "--reason", "input was malformed"],
    );
    let e = entry(dir, ack["seq"].as_u64().expect("seq"));
    assert_eq!(e["kind"], "dlq.reviewed");
    assert_eq!(e["job_id"], "j2");
    assert_eq!(e["parent"], enq);
    assert_eq!(
        e["payload"],
        json!({"resolution":"discarded","reason":"input was malformed"})
    );
    let i = one(dir, &["dlq", "show", "j2"]);
    assert_eq!(i["status"], "discarded");
    assert_eq!(i["resolution_reason"], "input was malformed");
    let before = entry_count(dir);
    argus(["dlq", "replay", &d, "j2"]).assert_code(1);
    argus(["dlq", "discard", &d, "j2", "--reason", "again"]).assert_code(1);
    assert_eq!(entry_count(dir), before);
    assert_eq!(lines(dir, &["dlq", "list", "--all"]).len(), 1);
}

// ---------------------------------------------------------------- SLA §4.9

#[test]
fn sla_default_targets_are_the_seed_table() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    put(dir, &[json!({"kind":"x.hello"})]);
    let rows = lines(dir, &["sla"]);
    for (t, f, c) in [
        ("health_check", 5_000, 30_000),
        ("revenue_overview", 5_000, 60_000),
        ("list_projects", 5_000, 30_000),
        ("research_synthesis", 5_000, 120_000),
        ("content_generation", 5_000, 180_000),
    ] {
        let r = by(&rows, "job_type", t);
        assert_eq!(
            (
                r["target_first_update_ms"].as_u64(),
                r["target_completion_ms"].as_u64()
            ),
            (Some(f), Some(c)),
            "{t}"
        );
    }
}

/// Nearest rank on sorted values, written independently of the crate.
fn nearest_rank(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank - 1]
}

#[test]
fn sla_measures_percentiles_and_breaches_in_log_time() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    // health_check job received under the default target (30 s)...
    let early = put(
        dir,
        &[json!({"kind":"job.received","job_id":"h-early","payload":{"job_type":"health_check"}})],
    );
    // ...then the target is tightened: only jobs received afterwards use it.
    put(
        dir,
        &[
            json!({"kind":"sla.target_set","payload":{"job_type":"health_check","time_to_first_update_ms":300,"time_to_completion_ms":900}}),
        ],
    );
    let r = put(
        dir,
        &[
            json!({"kind":"job.received","job_id":"fast","payload":{"job_type":"health_check"}}),
            json!({"kind":"job.progress","job_id":"fast","payload":{"pct":50}}),
            json!({"kind":"job.completed","job_id":"fast","payload":{}}),
            json!({"kind":"job.received","job_id":"slow","payload":{"job_type":"health_check"}}),
            json!({"kind":"job.received","job_id":"hung","payload":{"job_type":"health_check"}}),
            json!({"kind":"job.progress","job_id":"hung","payload":{}}),
            json!({"kind":"job.received","job_id":"mid","payload":{"job_type":"health_check"}}),
            json!({"kind":"job.received","job_id":"failed","payload":{"job_type":"health_check"}}),
            json!({"kind":"job.progress","job_id":"failed","payload":{}}),
        ],
    );
    sleep_ms(400);
    let m = put(
        dir,
        &[
            json!({"kind":"job.progress","job_id":"slow","payload":{}}),
            json!({"kind":"job.progress","job_id":"mid","payload":{}}),
            json!({"kind":"job.completed","job_id":"mid","payload":{}}),
            json!({"kind":"job.failed","job_id":"failed","payload":{"error":"x"}}),
        ],
    );
    sleep_ms(650);
    let s = put(
        dir,
        &[
            json!({"kind":"job.completed","job_id":"slow","payload":{}}),
            json!({"kind":"job.completed","job_id":"h-early","payload":{}}),
        ],
    );
    let t = |seq| ts(dir, seq);
    let ms = |a: u64, b: u64| (b - a) / 1_000_000;
    let jobs = lines(dir, &["sla", "--jobs"]);
    let job = |id: &str| by(&jobs, "job_id", id).clone();
    assert_eq!(job("slow")["time_to_first_update_ms"], ms(t(r[3]), t(m[0])));
    assert_eq!(job("slow")["time_to_completion_ms"], ms(t(r[3]), t(s[0])));
    assert_eq!(job("mid")["time_to_completion_ms"], ms(t(r[6]), t(m[2])));
    assert_eq!(job("h-early")["target"]["time_to_completion_ms"], 30_000);
    assert_eq!(job("fast")["target"]["time_to_completion_ms"], 900);
    assert_eq!(job("failed")["time_to_completion_ms"], Value::Null);

    let summary = lines(dir, &["sla"]);
    let hc = by(&summary, "job_type", "health_check");
    assert_eq!(hc["jobs"], 6);
    let mut tc: Vec<u64> = ["fast", "mid", "slow", "h-early"]
        .iter()
        .map(|j| job(j)["time_to_completion_ms"].as_u64().expect("measured"))
        .collect();
    assert_eq!(hc["completion_count"], 4);
    assert_eq!(hc["completion_p50_ms"], nearest_rank(&mut tc, 50.0));
    assert_eq!(hc["completion_p95_ms"], nearest_rank(&mut tc, 95.0));
    let mut fu: Vec<u64> = ["fast", "slow", "hung", "mid", "failed"]
        .iter()
        .map(|j| {
            job(j)["time_to_first_update_ms"]
                .as_u64()
                .expect("measured")
        })
        .collect();
    assert_eq!(hc["first_update_p50_ms"], nearest_rank(&mut fu, 50.0));
    assert_eq!(hc["first_update_p95_ms"], nearest_rank(&mut fu, 95.0));
    assert!(hc["completion_p95_ms"].as_u64() >= Some(1_000));

    // Breaches: slow (both metrics), mid (first update ~400 ms > 300), hung
    // (still running past 900 ms: open), h-early none (30 s default).
    let b = lines(dir, &["sla", "--breaches"]);
    let got: Vec<(String, String, bool)> = b
        .iter()
        .map(|b| {
            (
                b["job_id"].as_str().unwrap_or("").to_string(),
                b["metric"].as_str().unwrap_or("").to_string(),
                b["open"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let want = |j: &str, m: &str, open: bool| (j.to_string(), m.to_string(), open);
    assert_eq!(
        got,
        vec![
            want("hung", "time_to_completion", true),
            want("mid", "time_to_first_update", false),
            want("slow", "time_to_first_update", false),
            want("slow", "time_to_completion", false),
        ],
        "{b:#?}"
    );
    let slow_done = b
        .iter()
        .find(|x| x["job_id"] == "slow" && x["metric"] == "time_to_completion")
        .cloned()
        .unwrap_or_default();
    assert_eq!(slow_done["target_ms"], 900);
    assert_eq!(slow_done["evidence_seq"], s[0]);
    assert_eq!(slow_done["actual_ms"], ms(t(r[3]), t(s[0])));
    assert_eq!(hc["breaches"], 4);
    assert!(early[0] < r[0]);

    // Recorded as sla.breach (by the auditor, later): no longer listed.
    put(
        dir,
        &[
            json!({"kind":"sla.breach","job_id":"slow","payload":{"job_type":"health_check","metric":"time_to_completion","target_ms":900,"actual_ms":slow_done["actual_ms"]}}),
        ],
    );
    let b2 = lines(dir, &["sla", "--breaches"]);
    assert_eq!(b2.len(), 3, "{b2:#?}");
    assert!(!b2
        .iter()
        .any(|x| x["job_id"] == "slow" && x["metric"] == "time_to_completion"));
    // The breach still counts in the summary.
    assert_eq!(
        by(&lines(dir, &["sla"]), "job_type", "health_check")["breaches"],
        4
    );
}

// ------------------------------------------------------ circuit breakers §4.12

fn fail(tool: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"kind":"tool.call_failed","job_id":"j","payload":{"tool":tool,"error":format!("HTTP 503 #{i}")}}))
        .collect()
}

fn configure(tool: &str, fallback: Option<&str>) -> Value {
    configure_probe(tool, fallback, 1)
}

fn configure_probe(tool: &str, fallback: Option<&str>, probe_s: u64) -> Value {
    json!({"kind":"breaker.configured","payload":{"tool":tool,"failure_threshold":5,"window_seconds":2,"recovery_probe_seconds":probe_s,"fallback":fallback}})
}

fn breaker(dir: &Path, tool: &str) -> Value {
    by(&lines(dir, &["breakers"]), "tool", tool).clone()
}

#[test]
fn breaker_opens_after_five_failures_in_sixty_seconds_by_default() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    put(dir, &fail("browser.fetch", 4));
    let c = one(dir, &["breakers", "--check", "browser.fetch"]);
    assert_eq!(
        c,
        json!({"tool":"browser.fetch","state":"closed","allow":true,"fallback":null})
    );
    let s = put(dir, &fail("browser.fetch", 1));
    let c = one(dir, &["breakers", "--check", "browser.fetch"]);
    assert_eq!(
        c,
        json!({"tool":"browser.fetch","state":"open","allow":false,"fallback":null})
    );
    let b = breaker(dir, "browser.fetch");
    assert_eq!(b["opened_seq"], s[0]);
    assert_eq!(b["failures_in_window"], 5);
    assert_eq!(b["config"]["failure_threshold"], 5);
    assert_eq!(b["config"]["window_seconds"], 60);
    assert_eq!(b["config"]["recovery_probe_seconds"], 30);
    // 30 s of log time have not passed: still open, probe 30 s after opening.
    let next = parse_ts(b["next_probe_at"].as_str().expect("next probe"));
    assert_eq!(next, ts(dir, s[0]) + 30_000_000_000);
    // An unseen tool is closed and allowed.
    assert_eq!(
        one(dir, &["breakers", "--check", "never.used"])["allow"],
        true
    );
}

#[test]
fn breaker_counts_only_failures_within_the_window() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    put(dir, &[configure("flaky", None)]);
    put(dir, &fail("flaky", 4));
    sleep_ms(2_100);
    // Five failures, but spread wider than the 2 s window: stays closed.
    put(dir, &fail("flaky", 1));
    let b = breaker(dir, "flaky");
    assert_eq!(b["state"], "closed", "{b:#}");
    assert_eq!(b["failures_in_window"], 1);
    assert_eq!(b["failures_total"], 5);
    // Four more inside the window make five: open.
    put(dir, &fail("flaky", 4));
    assert_eq!(breaker(dir, "flaky")["state"], "open");
}

#[test]
fn breaker_half_open_probes_once_closes_on_success_reopens_on_failure() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let tool = "browser.fetch";
    // A probe in flight longer than the recovery time lets another start:
    // 4 s keeps the steps between two calls well inside it on a loaded
    // machine (1 s did not: one process start per step).
    put(dir, &[configure_probe(tool, Some("cache.fetch"), 4)]);
    put(dir, &fail(tool, 5));
    assert_eq!(
        one(dir, &["breakers", "--check", tool]),
        json!({"tool":tool,"state":"open","allow":false,"fallback":"cache.fetch"})
    );
    sleep_ms(4_100);
    // Any entry (here about another tool) moves it to half-open in the
    // stored state: the transition is applied, not only shown.
    let other = put(
        dir,
        &[json!({"kind":"tool.call_completed","payload":{"tool":"other"}})],
    );
    let b = breaker(dir, tool);
    assert_eq!(b["state"], "half-open");
    assert_eq!(b["half_open_seq"], other[0]);
    assert_eq!(one(dir, &["breakers", "--check", tool])["allow"], true);
    // Exactly one probe: once it starts, further calls are not allowed.
    let probe = put(
        dir,
        &[json!({"kind":"tool.call_started","payload":{"tool":tool,"call_id":"p1"}})],
    );
    assert_eq!(
        one(dir, &["breakers", "--check", tool]),
        json!({"tool":tool,"state":"half-open","allow":false,"fallback":"cache.fetch"})
    );
    put(
        dir,
        &[json!({"kind":"tool.call_started","payload":{"tool":tool,"call_id":"p2"}})],
    );
    let b = breaker(dir, tool);
    assert_eq!(
        (b["probe_seq"].as_u64(), b["calls_not_allowed"].as_u64()),
        (Some(probe[0]), Some(1))
    );
    // The probe succeeds: closed.
    let ok = put(
        dir,
        &[json!({"kind":"tool.call_completed","payload":{"tool":tool,"call_id":"p1"}})],
    );
    let b = breaker(dir, tool);
    assert_eq!(b["state"], "closed");
    assert_eq!(b["closed_seq"], ok[0]);
    assert_eq!(b["failures_in_window"], 0);
    assert_eq!(one(dir, &["breakers", "--check", tool])["allow"], true);

    // Trip again; after the probe delay the probe fails: open again with a
    // new opened_at.
    let trip = put(dir, &fail(tool, 5));
    assert_eq!(breaker(dir, tool)["opened_seq"], trip[4]);
    sleep_ms(4_100);
    put(
        dir,
        &[json!({"kind":"tool.call_started","payload":{"tool":tool,"call_id":"p3"}})],
    );
    assert_eq!(breaker(dir, tool)["state"], "half-open");
    let bad = put(
        dir,
        &[
            json!({"kind":"tool.call_failed","payload":{"tool":tool,"call_id":"p3","error":"still 503"}}),
        ],
    );
    let b = breaker(dir, tool);
    assert_eq!(b["state"], "open");
    assert_eq!(b["opened_seq"], bad[0]);
    assert_eq!(b["trips"], 3);
    assert_eq!(one(dir, &["breakers", "--check", tool])["allow"], false);
    assert_eq!(
        one(dir, &["breakers", "--check", tool])["fallback"],
        "cache.fetch"
    );
}

/// A quiet log still ages: once the recovery time has passed on the clock,
/// `--check` allows the probe even though nothing was appended since the
/// breaker opened (the next entry will carry at least that time).
#[test]
fn breaker_check_on_a_quiet_log_allows_the_probe_after_recovery_time() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let tool = "browser.fetch";
    put(dir, &[configure(tool, None)]);
    put(dir, &fail(tool, 5));
    assert_eq!(one(dir, &["breakers", "--check", tool])["allow"], false);
    sleep_ms(1_100);
    let c = one(dir, &["breakers", "--check", tool]);
    assert_eq!(c["state"], "half-open", "{c}");
    assert_eq!(c["allow"], true, "{c}");
    // Reading changed nothing: the stored state moves only with an entry.
    assert_eq!(breaker(dir, tool)["half_open_seq"], Value::Null);
}

#[test]
fn breaker_half_open_lost_probe_does_not_block_forever() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let tool = "search.api";
    put(dir, &[configure(tool, None)]);
    put(dir, &fail(tool, 5));
    sleep_ms(1_100);
    put(
        dir,
        &[json!({"kind":"tool.call_started","payload":{"tool":tool,"call_id":"lost"}})],
    );
    assert_eq!(one(dir, &["breakers", "--check", tool])["allow"], false);
    // The probe's outcome never arrives; a probe delay later another is allowed.
    sleep_ms(1_100);
    put(dir, &[json!({"kind":"x.tick"})]);
    let c = one(dir, &["breakers", "--check", tool]);
    assert_eq!(
        (c["state"].as_str(), c["allow"].as_bool()),
        (Some("half-open"), Some(true)),
        "{c}"
    );
    let retry = put(
        dir,
        &[json!({"kind":"tool.call_started","payload":{"tool":tool,"call_id":"again"}})],
    );
    assert_eq!(breaker(dir, tool)["probe_seq"], retry[0]);
    // A straggler outcome for the lost call does not decide; the probe's does.
    put(
        dir,
        &[json!({"kind":"tool.call_completed","payload":{"tool":tool,"call_id":"lost"}})],
    );
    assert_eq!(breaker(dir, tool)["state"], "half-open");
    put(
        dir,
        &[json!({"kind":"tool.call_completed","payload":{"tool":tool,"call_id":"again"}})],
    );
    assert_eq!(breaker(dir, tool)["state"], "closed");
}

// ------------------------------------------------------ worker health §4.13

#[test]
fn workers_dead_when_heartbeat_older_than_stale_after() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let first = put(
        dir,
        &[
            json!({"kind":"worker.heartbeat","payload":{"worker_id":"w1","cpu_seconds":1.5,"rss_mb":200}}),
            json!({"kind":"worker.heartbeat","payload":{"worker_id":"w2"}}),
            json!({"kind":"worker.heartbeat","payload":{"worker_id":"w3"}}),
            json!({"kind":"worker.claimed","payload":{"worker_id":"w1","job_id":"jw","lease_ms":600000}}),
        ],
    );
    let stale = put(
        dir,
        &[json!({"kind":"heartbeat.stale","payload":{"worker_id":"w3","last_seen_ms":95000}})],
    );
    // Default 90 s: only the reported-stale worker is dead.
    let f = lines(dir, &["workers"]);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0]["worker_id"].as_str(), f[0]["status"].as_str()),
        (Some("w3"), Some("dead"))
    );
    assert_eq!(f[0]["evidence_seq"], stale[0]);
    sleep_ms(1_100);
    put(
        dir,
        &[json!({"kind":"worker.heartbeat","payload":{"worker_id":"w2"}})],
    );
    let f = lines(dir, &["workers", "--stale-after-s", "1"]);
    let dead: Vec<&str> = f
        .iter()
        .filter(|x| x["status"] == "dead")
        .filter_map(|x| x["worker_id"].as_str())
        .collect();
    assert_eq!(dead, vec!["w1", "w3"], "{f:#?}");
    let w1 = by(&f, "worker_id", "w1");
    assert_eq!(w1["evidence_seq"], first[0]);
    assert!(w1["age_ms"].as_u64() > Some(1_000));
    assert_eq!(w1["claims"], json!(["job/jw"]));
    // --all also lists the healthy one.
    let all = lines(dir, &["workers", "--stale-after-s", "1", "--all"]);
    assert_eq!(by(&all, "worker_id", "w2")["status"], "ok");
    // RSS threshold is opt-in.
    let rss = lines(dir, &["workers", "--rss-max-mb", "150"]);
    assert!(
        rss.iter()
            .any(|x| x["worker_id"] == "w1" && x["status"] == "rss"),
        "{rss:#?}"
    );
}

#[test]
fn workers_stuck_when_claim_outlives_lease_or_stuck_after() {
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    let c = put(
        dir,
        &[
            json!({"kind":"worker.heartbeat","payload":{"worker_id":"w1"}}),
            json!({"kind":"worker.claimed","payload":{"worker_id":"w1","job_id":"j-lease","lease_ms":500}}),
            json!({"kind":"run.claimed","payload":{"worker_id":"w1","run_id":"r-lease","lease_ms":500}}),
            json!({"kind":"run.claimed","payload":{"worker_id":"w1","run_id":"r-renewed","lease_ms":500}}),
            json!({"kind":"worker.claimed","payload":{"worker_id":"w1","job_id":"j-long","lease_ms":600000}}),
            json!({"kind":"worker.claimed","payload":{"worker_id":"w1","job_id":"j-done","lease_ms":500}}),
            json!({"kind":"job.completed","job_id":"j-done","payload":{}}),
            json!({"kind":"worker.claimed","payload":{"worker_id":"w1","job_id":"j-rel","lease_ms":500}}),
            json!({"kind":"worker.released","payload":{"worker_id":"w1","job_id":"j-rel"}}),
        ],
    );
    sleep_ms(700);
    let renew = put(
        dir,
        &[
            json!({"kind":"run.lease_renewed","payload":{"worker_id":"w1","run_id":"r-renewed","lease_ms":500}}),
            json!({"kind":"worker.heartbeat","payload":{"worker_id":"w1"}}),
        ],
    );
    let f = lines(dir, &["workers"]);
    let stuck: Vec<(Option<&str>, Option<&str>, u64)> = f
        .iter()
        .filter(|x| x["status"] == "stuck")
        .map(|x| {
            (
                x["job_id"].as_str(),
                x["run_id"].as_str(),
                x["evidence_seq"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        stuck,
        vec![(Some("j-lease"), None, c[1]), (None, Some("r-lease"), c[2])],
        "{f:#?}"
    );
    assert!(
        f.iter().all(|x| x["status"] == "stuck"),
        "w1 is alive: {f:#?}"
    );
    // Held longer than --stuck-after-s: every remaining claim, lease or not,
    // with the claim entry as evidence.
    let f = lines(dir, &["workers", "--stuck-after-s", "0"]);
    let mut ev: Vec<u64> = f
        .iter()
        .filter_map(|x| x["evidence_seq"].as_u64())
        .collect();
    ev.sort_unstable();
    assert_eq!(ev, vec![c[1], c[2], c[3], c[4]], "{f:#?}");
    assert!(f
        .iter()
        .all(|x| x["reason"].as_str().unwrap_or("").contains("held")));
    assert!(renew[0] > c[3]);
}

// ------------------------------------------------------ determinism

fn digests(dir: &Path, args: &[&str]) -> Vec<(String, String)> {
    let mut a = vec!["projections".to_string()];
    a.push(args[0].to_string());
    a.push(dir.display().to_string());
    a.extend(args[1..].iter().map(|s| s.to_string()));
    a.extend(["-o".into(), "json".into()]);
    let r = argus(&a);
    r.assert_ok();
    r.json_lines()
        .into_iter()
        .filter(|v| {
            ["dlq", "sla", "breakers", "workers"].contains(&v["name"].as_str().unwrap_or(""))
        })
        .map(|v| {
            (
                v["name"].as_str().unwrap_or("").to_string(),
                v["state_digest"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn reliability_projections_rebuild_byte_identical() {
    let (empty, _) = crate::common::init_log(None);
    put(empty.path(), &[json!({"kind":"x.hello"})]);
    let empty_digests = digests(empty.path(), &["status"]);
    let (tmp, _) = crate::common::init_log(None);
    let dir = tmp.path();
    dead_letter(dir, "j1");
    dead_letter(dir, "j2");
    put(dir, &[configure("t", Some("fb"))]);
    // Built incrementally, one catch-up per step, including the
    // open → half-open move driven by an unrelated entry.
    put(dir, &fail("t", 5));
    digests(dir, &["status"]);
    sleep_ms(1_100);
    put(
        dir,
        &[
            json!({"kind":"worker.heartbeat","payload":{"worker_id":"w1","rss_mb":10}}),
            json!({"kind":"worker.claimed","payload":{"worker_id":"w1","job_id":"j3","lease_ms":5}}),
            json!({"kind":"job.received","job_id":"j3","payload":{"job_type":"list_projects"}}),
            json!({"kind":"job.progress","job_id":"j3","payload":{}}),
            json!({"kind":"sla.target_set","payload":{"job_type":"list_projects","time_to_first_update_ms":1,"time_to_completion_ms":2}}),
        ],
    );
    let d = dir.display().to_string();
    argus(["dlq", "replay", &d, "j1"]).assert_ok();
    argus(["dlq", "discard", &d, "j2", "--reason", "r"]).assert_ok();
    put(
        dir,
        &[
            json!({"kind":"tool.call_started","payload":{"tool":"t"}}),
            json!({"kind":"job.completed","job_id":"j3","payload":{}}),
        ],
    );
    let live = digests(dir, &["status"]);
    assert_eq!(live.len(), 4, "{live:?}");
    for (name, digest) in &live {
        let e = empty_digests
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.clone());
        assert_ne!(Some(digest.clone()), e, "{name} holds state");
    }
    assert_eq!(breaker(dir, "t")["state"], "half-open");
    for name in ["dlq", "sla", "breakers", "workers"] {
        assert_eq!(digests(dir, &["rebuild", name]), live, "rebuild {name}");
    }
    assert_eq!(digests(dir, &["rebuild"]), live);
    std::fs::remove_dir_all(dir.join("projections")).expect("rm projections");
    assert_eq!(digests(dir, &["status"]), live, "from scratch");
}
