//! `argusctl inspect` and `argusctl diff` on real logs: inspect's fields and
//! hashes are what `cat -o json` prints, its offsets point at the frames
//! they name (read back from the file, by SPEC §4), its checkpoint verifies,
//! its links follow the `parent` fields; diff pairs the steps of two runs
//! and sums their costs.
use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

fn s(dir: &Path) -> String {
    dir.display().to_string()
}

fn inspect(dir: &Path, seq: u64, extra: &[&str]) -> Value {
    let mut args = vec![
        "inspect".to_string(),
        s(dir),
        seq.to_string(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let r = argus(&args);
    r.assert_ok();
    r.json()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn seqs(links: &Value) -> Vec<u64> {
    links["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_u64().unwrap())
        .collect()
}

/// job.received ← call started ← (completed, cost); job.completed ← received.
fn chain() -> Vec<Value> {
    vec![
        json!({"kind": "job.received", "job_id": "j1", "payload": {"job_type": "report"}}),
        json!({"kind": "tool.call_started", "job_id": "j1", "step_id": "s1", "parent": 0,
            "payload": {"tool": "search", "call_id": "c1"}}),
        json!({"kind": "tool.call_completed", "job_id": "j1", "step_id": "s1", "parent": 1,
            "payload": {"tool": "search", "call_id": "c1", "duration_ms": 12}}),
        json!({"kind": "cost.logged", "job_id": "j1", "step_id": "s1", "parent": 1,
            "payload": {"usd": 0.5, "tokens_in": 1, "tokens_out": 1, "model": "m", "price_table": "t"}}),
        json!({"kind": "job.completed", "job_id": "j1", "parent": 0, "payload": {"status": "ok"}}),
    ]
}

#[test]
fn inspect_shows_what_cat_prints_where_the_frame_is_and_the_seal_that_covers_it() {
    let (tmp, key) = init_log(None);
    let dir = tmp.path();
    let acks = append(dir, &chain());
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    let cat = argus(["cat", &s(dir), "-o", "json"]).json_lines();
    let origin = argus(["checkpoint", &s(dir)]);
    origin.assert_ok();
    let origin = origin.stdout.lines().next().unwrap().to_string();
    for (seq, line) in cat.iter().enumerate() {
        let seq = seq as u64;
        let v = inspect(dir, seq, &[]);
        // Fields and hashes as cat prints them.
        assert_eq!(&v["entry"], line, "seq {seq}");
        assert_eq!(v["hashes"]["entry"], line["hash"]);
        assert_eq!(v["hashes"]["prev"], line["prev"]);
        assert_eq!(v["hashes"]["entry"], json!(acks[seq as usize].hash));
        // RFC 9162 leaf, computed here from SPEC §6.
        let h = hex::decode(line["hash"].as_str().unwrap()).unwrap();
        let mut leaf = blake3::Hasher::new();
        leaf.update(&[0]);
        leaf.update(&h);
        assert_eq!(
            v["hashes"]["merkle_leaf"],
            json!(leaf.finalize().to_hex().to_string())
        );
        assert_eq!(v["hashes"]["leaf_index"], json!(seq));

        // The frame at the offset: its length field, its type, the seq in
        // its body's root (SPEC §4.1: seq is the first field of the last
        // 136 bytes), and the payload hash stored beside it.
        let loc = &v["location"];
        let path = dir.join("segments").join(loc["segment"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let off = loc["offset"].as_u64().unwrap() as usize;
        let body_len = loc["body_bytes"].as_u64().unwrap() as usize;
        assert_eq!(u32_at(&bytes, off + 4) as usize, body_len, "seq {seq}");
        assert_eq!(loc["frame_bytes"].as_u64().unwrap() as usize, body_len + 9);
        assert_eq!(bytes[off + 8], 0x01, "an entry frame");
        let root = off + 9 + body_len - 136;
        assert_eq!(u64_at(&bytes, root), seq);
        assert_eq!(
            hex::encode(&bytes[root + 56..root + 88]),
            v["hashes"]["payload"].as_str().unwrap()
        );

        // The covering seal: after the entry, a 148-byte seal frame whose
        // tree size is the one reported and exceeds the seq.
        let seal = &v["seal"];
        let tree = seal["tree_size"].as_u64().unwrap();
        assert!(tree > seq, "seal covers {tree} entries, not seq {seq}");
        let so = seal["offset"].as_u64().unwrap() as usize;
        assert!(so > off);
        assert_eq!(u32_at(&bytes, so + 4), 148);
        assert_eq!(bytes[so + 8], 0x02, "a seal frame");
        assert_eq!(u64_at(&bytes, so + 9), tree);
        assert_eq!(seal["signature_verifies"], true);
        // Its checkpoint: the log's origin first, and one that verify
        // accepts with the pinned key.
        let cp = seal["checkpoint"].as_str().unwrap();
        assert_eq!(cp.lines().next(), Some(origin.as_str()));
        assert_eq!(cp.lines().nth(1), Some(tree.to_string().as_str()));
        let cp_file = tmp.path().join(format!("cp-{seq}.txt"));
        std::fs::write(&cp_file, cp).unwrap();
        argus([
            "verify",
            &s(dir),
            "--key",
            &key,
            "--checkpoint",
            &cp_file.display().to_string(),
        ])
        .assert_ok();
    }

    // Parent and children follow the parent fields.
    let links = |seq| inspect(dir, seq, &[])["links"].clone();
    let l0 = links(0);
    assert_eq!(l0["parent"], Value::Null);
    assert_eq!(seqs(&l0), vec![1, 4]);
    assert_eq!(l0["children"][1]["kind"], "job.completed");
    assert_eq!(l0["scan"]["complete"], true);
    let l1 = links(1);
    assert_eq!(l1["parent"], json!({"seq": 0, "kind": "job.received"}));
    assert_eq!(seqs(&l1), vec![2, 3]);
    let l2 = links(2);
    assert_eq!(l2["parent"], json!({"seq": 1, "kind": "tool.call_started"}));
    assert!(seqs(&l2).is_empty());

    // The text view: header, hashes, location, links.
    let r = argus(["inspect", &s(dir), "1"]);
    r.assert_ok();
    let t = &r.stdout;
    for want in [
        "entry 1  tool.call_started",
        &format!("  entry        {}", acks[1].hash),
        "segments/00000000000000000000.seg",
        "  parent       0  job.received",
        "  child        2  tool.call_completed",
        "  child        3  cost.logged",
        &origin,
    ] {
        assert!(t.contains(want), "no {want:?} in{}", r.ctx());
    }
}

#[test]
fn inspect_finds_children_in_later_segments_within_its_scan_bound() {
    let (tmp, _) = init_log(Some(4096));
    let dir = tmp.path();
    let pad = "p".repeat(200);
    append(dir, &[json!({"kind": "x.root", "payload": {"pad": pad}})]);
    for i in 0..30 {
        append(
            dir,
            &[json!({"kind": "x.filler", "payload": {"i": i, "pad": pad}})],
        );
    }
    let child = append(
        dir,
        &[json!({"kind": "x.child", "parent": 0, "payload": {}})],
    );
    let child = child[0].seq;
    let v = inspect(dir, 0, &[]);
    assert_eq!(seqs(&v["links"]), vec![child]);
    assert_eq!(
        v["links"]["scan"],
        json!({"from": 1, "to": child, "head": child, "complete": true})
    );
    let c = inspect(dir, child, &[]);
    assert_ne!(
        c["location"]["segment"], v["location"]["segment"],
        "the test needs the child in a later segment"
    );
    assert_eq!(c["links"]["parent"], json!({"seq": 0, "kind": "x.root"}));

    // A bound short of the head says so, and lists what it searched.
    let v = inspect(dir, 0, &["--scan", "5"]);
    assert!(seqs(&v["links"]).is_empty());
    assert_eq!(
        v["links"]["scan"],
        json!({"from": 1, "to": 5, "head": child, "complete": false})
    );
    let r = argus(["inspect", &s(dir), "0", "--scan", "5"]);
    r.assert_ok();
    assert!(
        r.stdout.contains(&format!(
            "scanned seqs 1..=5 only; seqs 6..={child} not searched"
        )),
        "{}",
        r.ctx()
    );
}

#[test]
fn inspect_past_the_head_is_a_usage_error() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    append(dir, &chain());
    let r = argus(["inspect", &s(dir), "99"]);
    r.assert_code(2);
    assert!(
        r.stderr.contains("seq 99 is not in the log (head is 4)"),
        "{}",
        r.ctx()
    );
    assert!(r.stdout.is_empty(), "{}", r.ctx());
}

#[test]
fn inspect_names_segment_and_offset_of_damage_in_a_sealed_segment() {
    let (tmp, _) = init_log(Some(4096));
    let dir = tmp.path();
    let pad = "p".repeat(200);
    for i in 0..20 {
        append(
            dir,
            &[json!({"kind": "x.t", "payload": {"i": i, "pad": pad}})],
        );
    }
    let v = inspect(dir, 3, &[]);
    let seg = v["location"]["segment"].as_str().unwrap().to_string();
    let off = v["location"]["offset"].as_u64().unwrap();
    let path = dir.join("segments").join(&seg);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = off as usize + 9 + 5; // inside the payload bytes
    bytes[at] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let r = argus(["inspect", &s(dir), "3"]);
    assert_ne!(r.code, Some(0), "{}", r.ctx());
    assert!(
        r.stderr.contains(&seg) && r.stderr.contains(&format!("offset {off}")),
        "{}",
        r.ctx()
    );
}

fn call(job: &str, step: Option<&str>, tool: &str, id: &str) -> [Value; 1] {
    let mut e = json!({"kind": "tool.call_started", "job_id": job,
        "payload": {"tool": tool, "call_id": id}});
    if let Some(st) = step {
        e["step_id"] = json!(st);
    }
    [e]
}

fn end(job: &str, step: Option<&str>, tool: &str, id: &str, ms: u64, error: Option<&str>) -> Value {
    let mut e = json!({"kind": "tool.call_completed", "job_id": job,
        "payload": {"tool": tool, "call_id": id, "duration_ms": ms}});
    if let Some(err) = error {
        e["kind"] = json!("tool.call_failed");
        e["payload"]["error"] = json!(err);
    }
    if let Some(st) = step {
        e["step_id"] = json!(st);
    }
    e
}

fn cost(job: &str, step: Option<&str>, tool: Option<&str>, usd: f64) -> Value {
    let mut e = json!({"kind": "cost.logged", "job_id": job, "payload": {"usd": usd,
        "tokens_in": 1, "tokens_out": 1, "model": "m", "price_table": "t"}});
    if let Some(st) = step {
        e["step_id"] = json!(st);
    }
    if let Some(t) = tool {
        e["payload"]["tool"] = json!(t);
    }
    e
}

fn two_runs(dir: &Path) {
    let (a, b) = ("orig", "replay");
    let mut ea = vec![json!({"kind": "job.received", "job_id": a,
        "payload": {"job_type": "report", "input": {"q": "x", "n": 3}}})];
    ea.extend(call(a, Some("s1"), "search", "a1"));
    ea.push(end(a, Some("s1"), "search", "a1", 1000, None));
    ea.push(cost(a, Some("s1"), Some("search"), 0.25));
    // Another job's cost inside A's span counts for neither run.
    ea.push(cost("other", None, Some("search"), 7.0));
    ea.extend(call(a, Some("s2"), "bash", "a2"));
    ea.push(end(a, Some("s2"), "bash", "a2", 5000, Some("oom")));
    ea.extend(call(a, Some("s2"), "bash", "a3"));
    ea.push(end(a, Some("s2"), "bash", "a3", 4000, None));
    ea.push(cost(a, Some("s2"), None, 0.5)); // no tool: its step's
    ea.push(json!({"kind": "tool.call_started", "job_id": a, "payload": {"tool": "fetch"}}));
    ea.push(json!({"kind": "tool.call_completed", "job_id": a,
        "payload": {"tool": "fetch", "duration_ms": 300}}));
    ea.push(json!({"kind": "job.completed", "job_id": a,
        "payload": {"status": "ok", "total_usd": 0.75}}));
    append(dir, &ea);

    let mut eb = vec![json!({"kind": "job.received", "job_id": b,
        "payload": {"job_type": "report", "input": {"q": "y", "n": 3}}})];
    eb.extend(call(b, Some("s1"), "search", "b1"));
    append(dir, &eb);
    // Wall time is log time: B's first and last entries are >= 100 ms apart.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut eb = vec![end(b, Some("s1"), "search", "b1", 800, None)];
    eb.push(cost(b, Some("s1"), Some("search"), 0.125));
    eb.extend(call(b, Some("s2"), "bash", "b2"));
    eb.push(end(b, Some("s2"), "bash", "b2", 3000, None));
    eb.push(json!({"kind": "tool.call_started", "job_id": b, "payload": {"tool": "fetch"}}));
    eb.push(json!({"kind": "tool.call_completed", "job_id": b,
        "payload": {"tool": "fetch", "duration_ms": 200}}));
    eb.extend(call(b, Some("s4"), "llm", "b4"));
    eb.push(end(
        b,
        Some("s4"),
        "llm",
        "b4",
        700,
        Some("bad \u{1b}[31m output"),
    ));
    eb.push(cost(b, Some("s4"), Some("llm"), 1.0));
    eb.push(json!({"kind": "job.failed", "job_id": b, "payload": {"error": "bad output"}}));
    append(dir, &eb);
}

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-9)
}

#[test]
fn diff_pairs_steps_and_compares_inputs_outputs_timing_and_costs() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    two_runs(dir);
    let r = argus(["diff", &s(dir), "orig", "replay", "-o", "json"]);
    r.assert_ok();
    let v = r.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["inputs", "steps", "outputs", "timing", "costs"] {
        assert!(keys.contains(&k), "no {k} in {keys:?}");
    }
    assert_eq!(v["a"]["job_id"], "orig");
    assert_eq!(v["b"]["job_id"], "replay");

    // Inputs, field by field.
    let field = |sect: &str, name: &str| -> Value {
        v[sect]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {sect} field {name}: {}", v[sect]))
    };
    assert_eq!(
        field("inputs", "input.q"),
        json!({"field": "input.q", "a": "x", "b": "y", "same": false})
    );
    assert_eq!(field("inputs", "input.n")["same"], true);
    assert_eq!(field("inputs", "job_type")["same"], true);
    assert_eq!(v["inputs"]["same"], false);
    // Outputs: completed against failed.
    assert_eq!(field("outputs", "kind")["a"], "job.completed");
    assert_eq!(field("outputs", "kind")["b"], "job.failed");
    assert!(
        field("outputs", "payload.error").get("a").is_none(),
        "absent on A"
    );
    assert_eq!(field("outputs", "payload.error")["b"], "bad output");

    // Steps: (label, matched_by, only_in, changed, delta).
    let steps: Vec<(String, Value, Value, bool, Value)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_string(),
                r["matched_by"].clone(),
                r["only_in"].clone(),
                r["changed"].as_bool().unwrap(),
                r["duration_delta_ms"].clone(),
            )
        })
        .collect();
    let row = |label: &str| {
        steps
            .iter()
            .find(|s| s.0 == label)
            .cloned()
            .unwrap_or_else(|| panic!("no step {label} in {steps:?}"))
    };
    assert_eq!(
        row("s1"),
        (
            "s1".into(),
            json!("step_id"),
            Value::Null,
            false,
            json!(-200)
        )
    );
    assert_eq!(
        row("s2"),
        (
            "s2".into(),
            json!("step_id"),
            Value::Null,
            true,
            json!(-2000)
        )
    );
    assert_eq!(
        row("s2#2"),
        ("s2#2".into(), Value::Null, json!("a"), true, Value::Null)
    );
    assert_eq!(
        row("fetch#1"),
        (
            "fetch#1".into(),
            json!("tool"),
            Value::Null,
            false,
            json!(-100)
        )
    );
    assert_eq!(
        row("s4"),
        ("s4".into(), Value::Null, json!("b"), true, Value::Null)
    );
    assert_eq!(steps.len(), 5, "{steps:?}");
    let s2 = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == "s2")
        .unwrap();
    assert_eq!(s2["a"]["outcome"], "failed");
    assert_eq!(s2["a"]["error"], "oom");
    assert_eq!(s2["b"]["outcome"], "completed");
    assert_eq!(s2["a"]["tool"], "bash");

    // Timing: log time first to last entry; per-step deltas.
    let t = &v["timing"];
    let (wa, wb) = (
        t["a"]["wall_ms"].as_u64().unwrap(),
        t["b"]["wall_ms"].as_u64().unwrap(),
    );
    assert!(wb >= 100, "B spans a 100 ms sleep: {t}");
    assert_eq!(t["delta_ms"].as_i64().unwrap(), wb as i64 - wa as i64);
    assert!(t["a"]["first_seq"].as_u64().unwrap() < t["a"]["last_seq"].as_u64().unwrap());
    let st = t["steps"].as_array().unwrap();
    assert!(st.iter().any(|x| x["step"] == "s2"
        && x["a_ms"] == 5000
        && x["b_ms"] == 3000
        && x["delta_ms"] == -2000));

    // Costs: totals and per tool; the other job's cost is in neither.
    let c = &v["costs"];
    assert!(close(&c["a_usd"], 0.75), "{c}");
    assert!(close(&c["b_usd"], 1.125), "{c}");
    assert!(close(&c["delta_usd"], 0.375), "{c}");
    assert_eq!(c["a_entries"], 2);
    let tool = |name: &str| {
        c["by_tool"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tool"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no tool {name}: {c}"))
    };
    assert!(close(&tool("search")["a_usd"], 0.25) && close(&tool("search")["b_usd"], 0.125));
    assert!(close(&tool("bash")["a_usd"], 0.5) && close(&tool("bash")["b_usd"], 0.0));
    assert!(close(&tool("llm")["delta_usd"], 1.0));

    // The text view: aligned columns with A, B and Δ; stored text escaped.
    let r = argus(["diff", &s(dir), "orig", "replay"]);
    r.assert_ok();
    let t = &r.stdout;
    for want in [
        "STEPS (tool calls): 3 paired, 1 only in A, 1 only in B",
        "only A",
        "only B",
        "failed: oom",
        "bad \\x1b[31m output",
        "Δ",
        "0.7500",
        "1.1250",
        "+0.3750",
    ] {
        assert!(t.contains(want), "no {want:?} in{}", r.ctx());
    }
    assert!(!t.contains('\u{1b}'), "a raw ESC reached the terminal");
    let header = t.lines().find(|l| l.contains("A tool")).unwrap();
    let s1 = t
        .lines()
        .find(|l| l.trim_start().starts_with("s1 "))
        .unwrap();
    assert_eq!(
        header.find("A tool"),
        s1.find("search"),
        "columns line up:\n{header}\n{s1}"
    );
}

#[test]
fn diff_of_a_job_not_in_the_log_names_it() {
    let (tmp, _) = init_log(None);
    let dir = tmp.path();
    append(dir, &chain());
    for (a, b) in [("nope", "j1"), ("j1", "nope")] {
        let r = argus(["diff", &s(dir), a, b]);
        r.assert_code(1);
        assert!(r.stderr.contains("no job \"nope\""), "{}", r.ctx());
    }
}
