//! `argusctl export` and `argusctl import`: records with their hashes, the
//! RFC 7464 framing, the job and range selections, a closed stdout, and a
//! round trip into a new log that keeps every entry's fields and actor (so
//! its writer class) and the jobs view.
use crate::common::{argus, argus_stdin, init_at, kind_writers, p, stats};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;

const SESSION: &str = include_str!("../../src/cli/demo_session.jsonl");

const AGENT: &str = "agent:token:planner";
const OPERATOR: &str = "operator:uid:1000:alice";
const AUDITOR: &str = "auditor:token:watcher";
const ARGUS: &str = "argus";

/// A log with the demo session (approvals bound to their parameters, each
/// kind written by the first class the registry allows) and entries of the
/// auditor and Argus classes, a job whose id extends another's, and a
/// payload with characters a terminal would act on. Written with the
/// library, as `projections_determinism.rs` does, so every class appears.
fn mixed_log(dir: &Path) {
    init_at(dir, None);
    let mut params: BTreeMap<String, Value> = BTreeMap::new();
    let mut lines: Vec<(Value, &str)> = Vec::new();
    for l in SESSION.lines().filter(|l| !l.trim().is_empty()) {
        let mut v: Value = serde_json::from_str(l).unwrap();
        let kind = v["kind"].as_str().unwrap().to_string();
        let id = v["payload"]["proposal_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "proposal.created" => {
                params.insert(id, v["payload"]["parameters"].clone());
            }
            "proposal.approved" => {
                let p = params.get(&id).cloned().unwrap_or_default();
                v["payload"]["parameter_hash"] = argus::registry::parameter_hash(&p).into();
            }
            _ => {}
        }
        let actor = match kind_writers(&kind).first().map(String::as_str) {
            Some("operator") => OPERATOR,
            Some("auditor") => AUDITOR,
            Some("argus") => ARGUS,
            _ => AGENT,
        };
        lines.push((v, actor));
    }
    lines.extend([
        (
            json!({"kind": "agent.disabled", "agent": "researcher",
                   "payload": {"slug": "researcher", "reason": "spend spike"}}),
            AUDITOR,
        ),
        (
            json!({"kind": "policy.denied", "job_id": "job-7f3a/x", "agent": "researcher",
                   "payload": {"agent": "researcher", "tool": "browser.fetch", "reason": "budget"}}),
            ARGUS,
        ),
        (
            json!({"kind": "job.received", "job_id": "job-7f3a/x", "agent": "planner",
                   "payload": {"job_type": "health_check", "note": "\u{1b}[31mred\u{202e} and \\ back"}}),
            AGENT,
        ),
        (
            json!({"kind": "cost.logged", "job_id": "job-7f3a/x", "agent": "planner", "parent": 43,
                   "payload": {"usd": 0.125, "tokens_in": 900, "tokens_out": 120,
                               "model": "claude-haiku", "price_table": "2026-11"}}),
            AGENT,
        ),
    ]);
    let log = argus::Log::open(dir).expect("open log");
    let entries = lines
        .iter()
        .map(|(v, actor)| argus::cli::append::parse_line(v.to_string().as_bytes(), actor).unwrap())
        .collect();
    let acks = log.append(entries).expect("append");
    assert_eq!(acks.len(), lines.len());
    assert_eq!(acks[43].seq, 43, "the parent above names this entry");
}

fn export(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["export".to_string(), dir.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let r = argus(&args);
    r.assert_ok();
    r.json_lines()
}

fn log_id(dir: &Path) -> String {
    stats(dir)["log_id"].as_str().unwrap().to_string()
}

/// `jobs -o json` without the fields that are entry times: an import is
/// written now, so its times (and durations) are the new log's.
fn jobs(dir: &Path) -> Vec<Value> {
    let r = argus(["jobs".as_ref(), p(dir), "-o".as_ref(), "json".as_ref()]);
    r.assert_ok();
    r.json_lines()
        .into_iter()
        .map(|mut j| {
            let o = j.as_object_mut().unwrap();
            o.retain(|k, _| !k.ends_with("_ts_ns") && k != "duration_ms");
            j
        })
        .collect()
}

/// The entry hash (SPEC §4.2) of an export record, from its fields.
fn record_hash(v: &Value) -> [u8; 32] {
    let payload = argus::json::to_canonical(&v["payload"]);
    let opt = |f: &str| v[f].as_str();
    log_format::EntryView {
        seq: v["seq"].as_u64().unwrap(),
        ts_ns: argus::time::parse_rfc3339_ns(v["timestamp"].as_str().unwrap()).unwrap(),
        parent: v["parent"].as_u64(),
        prev: hex::decode(v["prev"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
        payload_hash: log_format::hash::payload_hash(&payload),
        kind: v["event_type"].as_str().unwrap(),
        job_id: opt("job_id"),
        step_id: opt("step_id"),
        agent: opt("agent"),
        actor: v["actor"].as_str().unwrap(),
        payload: &payload,
    }
    .hash()
}

fn assert_chained(records: &[Value], log_id: &str) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["log_id"], log_id, "{r}");
        assert_eq!(r["seq"], i as u64, "{r}");
        let ts = r["timestamp"].as_str().unwrap();
        assert!(
            ts.ends_with('Z') && ts.len() == 30,
            "RFC 3339 with ns: {ts}"
        );
        if i > 0 {
            assert_eq!(r["prev"], records[i - 1]["hash"], "seq {i} chains");
        }
        // A consumer can recompute each hash from the record alone.
        assert_eq!(r["hash"], hex::encode(record_hash(r)), "{r}");
    }
}

#[test]
fn round_trip_through_import_keeps_every_entry_and_the_jobs_view() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    mixed_log(&src);
    let a = export(&src, &[]);
    assert_eq!(a.len(), 45);
    assert_chained(&a, &log_id(&src));
    // The record carries the fields in the documented order.
    let keys: Vec<&str> = a[0]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut want = vec![
        "timestamp",
        "log_id",
        "seq",
        "event_type",
        "job_id",
        "step_id",
        "agent",
        "actor",
        "parent",
        "payload",
        "hash",
        "prev",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    let classes: std::collections::BTreeSet<&str> = a
        .iter()
        .map(|r| r["actor"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    assert_eq!(
        classes.into_iter().collect::<Vec<_>>(),
        ["agent", "argus", "auditor", "operator"]
    );

    init_at(&dst, None);
    let file = tmp.path().join("export.jsonl");
    let raw = argus(["export".as_ref(), p(&src)]);
    raw.assert_ok();
    std::fs::write(&file, &raw.stdout).unwrap();
    let r = argus([
        "import".as_ref(),
        p(&dst),
        "--from-export".as_ref(),
        p(&file),
    ]);
    r.assert_ok();
    let summary = r.json();
    assert_eq!(summary["imported"], 45, "{}", r.ctx());
    assert_eq!(summary["source_log_id"], log_id(&src));

    let b = export(&dst, &[]);
    assert_eq!(b.len(), a.len());
    assert_chained(&b, &log_id(&dst));
    assert_ne!(log_id(&src), log_id(&dst));
    for (x, y) in a.iter().zip(&b) {
        for f in [
            "seq",
            "event_type",
            "job_id",
            "step_id",
            "agent",
            "actor",
            "parent",
            "payload",
        ] {
            assert_eq!(x[f], y[f], "field {f} of seq {}", x["seq"]);
        }
    }
    // The payload that holds ESC and RLO is exported escaped, and is the
    // exact stored string once decoded, on both sides.
    let odd = &b[43]["payload"]["note"];
    assert_eq!(odd, "\u{1b}[31mred\u{202e} and \\ back");
    assert!(!raw.stdout.contains('\u{1b}') && raw.stdout.contains("\\u001b"));

    let (ja, jb) = (jobs(&src), jobs(&dst));
    assert_eq!(ja.len(), 3, "{ja:?}");
    assert_eq!(ja, jb, "jobs -o json of the original and the imported log");
    // Both logs verify with their own keys.
    for d in [&src, &dst] {
        argus(["verify".as_ref(), p(d)]).assert_ok();
    }
    // A second import into the now non-empty log is refused.
    let again = argus([
        "import".as_ref(),
        p(&dst),
        "--from-export".as_ref(),
        p(&file),
    ]);
    again.assert_code(2);
    assert!(
        again.stderr.contains("already holds 45 entries"),
        "{}",
        again.ctx()
    );
    assert_eq!(stats(&dst)["entries"], 45);
}

#[test]
fn json_seq_frames_each_record_with_rs_and_lf() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    mixed_log(&src);
    let out = crate::common::cmd([
        "export".as_ref(),
        p(&src),
        "--format".as_ref(),
        "json-seq".as_ref(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success());
    let bytes = out.stdout;
    assert_eq!(bytes.first(), Some(&0x1e));
    assert_eq!(bytes.last(), Some(&b'\n'));
    let records: Vec<&[u8]> = bytes[1..].split(|b| *b == 0x1e).collect();
    assert_eq!(records.len(), 45);
    let jsonl = export(&src, &[]);
    for (rec, line) in records.iter().zip(&jsonl) {
        // RS, one JSON text, LF: no other RS or LF inside.
        let (body, lf) = rec.split_at(rec.len() - 1);
        assert_eq!(lf, b"\n");
        assert!(!body.contains(&b'\n'));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(&v, line);
    }
    // import reads the framing too.
    let dst = tmp.path().join("dst");
    init_at(&dst, None);
    argus_stdin(["import".as_ref(), p(&dst)], &bytes).assert_ok();
    assert_eq!(stats(&dst)["entries"], 45);
}

#[test]
fn job_and_range_select_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    mixed_log(&src);
    let all = export(&src, &[]);
    let of = |job: &str, from: u64, to: u64| -> Vec<Value> {
        all.iter()
            .filter(|r| r["job_id"] == job)
            .filter(|r| (from..=to).contains(&r["seq"].as_u64().unwrap()))
            .cloned()
            .collect()
    };
    // The job index's prefix scan would also match "job-7f3a/x".
    let j = export(&src, &["--job", "job-7f3a"]);
    assert_eq!(j, of("job-7f3a", 0, u64::MAX));
    assert_eq!(j.len(), 25);
    assert_eq!(
        export(&src, &["--job", "job-7f3a/x"]),
        of("job-7f3a/x", 0, u64::MAX)
    );
    assert_eq!(
        export(&src, &["--job", "job-9c21", "--from", "32", "--to", "36"]),
        of("job-9c21", 32, 36)
    );
    assert!(export(&src, &["--job", "no-such-job"]).is_empty());
    let r = export(&src, &["--from", "10", "--to", "12"]);
    assert_eq!(r, all[10..=12].to_vec());
    assert!(export(&src, &["--from", "1000"]).is_empty());
}

#[test]
fn a_tampered_record_is_refused_with_its_line_and_nothing_is_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    mixed_log(&src);
    let raw = argus(["export".as_ref(), p(&src)]);
    raw.assert_ok();
    let lines: Vec<&str> = raw.stdout.lines().collect();
    let import = |text: String, name: &str| {
        let dst = tmp.path().join(name);
        init_at(&dst, None);
        let r = argus_stdin(["import".as_ref(), p(&dst)], text.as_bytes());
        assert_eq!(stats(&dst)["entries"], 0, "nothing imported{}", r.ctx());
        r
    };

    // A payload edited (line 12 is seq 11, cost.logged).
    let mut edited = lines.clone();
    let changed = edited[11].replace("\"usd\":0.0042", "\"usd\":0.42");
    assert_ne!(changed, edited[11], "the fixture line holds usd 0.0042");
    edited[11] = &changed;
    let r = import(edited.join("\n"), "edited");
    r.assert_code(2);
    assert!(r.stderr.contains("line 12:"), "{}", r.ctx());
    assert!(
        r.stderr.contains("does not match the record's fields"),
        "{}",
        r.ctx()
    );

    // The actor rewritten with the record's hash recomputed: the record is
    // consistent, but the next one no longer chains to it.
    let mut v: Value = serde_json::from_str(lines[11]).unwrap();
    v["actor"] = "agent:token:someone-else".into();
    v["hash"] = hex::encode(record_hash(&v)).into();
    let mut relinked = lines.clone();
    let s = v.to_string();
    relinked[11] = &s;
    let r = import(relinked.join("\n"), "relinked");
    r.assert_code(2);
    assert!(
        r.stderr.contains("line 13:") && r.stderr.contains("is not the hash of seq 11"),
        "{}",
        r.ctx()
    );

    // An agent's record claimed by an operator, hash and link intact for
    // the claim: the class is judged as the writer judges it.
    let mut w: Value = serde_json::from_str(lines[11]).unwrap();
    w["actor"] = OPERATOR.into();
    w["hash"] = hex::encode(record_hash(&w)).into();
    let mut promoted = lines.clone();
    let s = w.to_string();
    promoted[11] = &s;
    let r = import(promoted.join("\n"), "promoted");
    r.assert_code(2);
    assert!(
        r.stderr.contains("line 12:") && r.stderr.contains("may be written only by the agent"),
        "{}",
        r.ctx()
    );

    // A record dropped: the next seq does not follow.
    let mut dropped = lines.clone();
    dropped.remove(20);
    let r = import(dropped.join("\n"), "dropped");
    r.assert_code(2);
    assert!(
        r.stderr.contains("line 21:") && r.stderr.contains("does not follow"),
        "{}",
        r.ctx()
    );

    // Not JSON.
    let mut junk = lines.clone();
    junk[2] = "{\"timestamp\":";
    let r = import(junk.join("\n"), "junk");
    r.assert_code(2);
    assert!(r.stderr.contains("line 3:"), "{}", r.ctx());
}

#[test]
fn a_closed_stdout_ends_export_quietly() {
    let (tmp, _) = crate::common::init_log(None);
    crate::common::append(tmp.path(), &crate::common::small_entries(0, 3000));
    let mut child = crate::common::cmd(["export".as_ref(), p(tmp.path())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"{\"timestamp\""));
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
