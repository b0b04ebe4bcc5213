//! Invariant 6: the same log gives the same projection state, byte for byte,
//! whether built live as the log grows, resumed after kill -9 at random
//! points, or rebuilt from scratch. Also: two processes opening the
//! projections at once neither fail nor corrupt them.
use crate::common::{actor_of, kind_writers};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ENTRIES: u64 = 120_000;
const JOB_TYPES: [&str; 3] = ["research_synthesis", "health_check", "content_generation"];
const CHUNKS: u64 = 12;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_argusctl")
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A realistic mix of registry kinds: job lifecycles with tool calls, costs,
/// retries, failures and DLQ entries; proposals and approvals; policies,
/// flags, routes, agents, breakers, heartbeats and memory proposals.
fn gen(i: u64, rng: &mut Rng) -> Value {
    let job = format!("job-{}", i / 40);
    let agent = ["planner", "researcher", "coder"][(i % 3) as usize];
    let tool = ["web_search", "bash", "llm", "http_get"][rng.below(4) as usize];
    match i % 40 {
        0 => {
            json!({"kind":"job.received","job_id":job,"agent":agent,"payload":{"job_type":JOB_TYPES[rng.below(3) as usize],"max_retries":2}})
        }
        1 => {
            json!({"kind":"job.dispatched","job_id":job,"agent":agent,"payload":{"worker_id":format!("w-{}", rng.below(8))}})
        }
        2 => {
            json!({"kind":"job.progress","job_id":job,"agent":agent,"payload":{"message":"started","pct":5}})
        }
        3 => {
            let params = json!({"query": format!("q{}", i), "limit": rng.below(10)});
            json!({"kind":"proposal.created","job_id":job,"agent":agent,"payload":{"proposal_id":format!("p-{i}"),"action_type":"web_search","risk":"low","rationale":"gather sources for the report","mission_context":"research","parameters":params}})
        }
        4 if rng.below(3) > 0 => {
            json!({"kind":"proposal.rejected","job_id":job,"agent":agent,"payload":{"proposal_id":format!("p-{}", i - 1),"reason":"not needed"}})
        }
        5..=20 => match rng.below(5) {
            0 => {
                json!({"kind":"tool.call_started","job_id":job,"agent":agent,"payload":{"tool":tool,"call_id":format!("c{i}")}})
            }
            1 | 2 => {
                json!({"kind":"tool.call_completed","job_id":job,"agent":agent,"payload":{"tool":tool,"call_id":format!("c{i}"),"duration_ms":rng.below(5000)}})
            }
            3 => {
                json!({"kind":"tool.call_failed","job_id":job,"agent":agent,"payload":{"tool":tool,"error":"HTTP 503","duration_ms":30000}})
            }
            _ => {
                json!({"kind":"cost.logged","job_id":job,"agent":agent,"payload":{"usd":(rng.below(1000) as f64)/10000.0,"tokens_in":rng.below(5000),"tokens_out":rng.below(2000),"model":"claude-haiku","tool":tool,"price_table":"2026-11","cpu_seconds":(rng.below(100) as f64)/10.0}})
            }
        },
        21 => {
            json!({"kind":"worker.heartbeat","agent":agent,"payload":{"worker_id":format!("w-{}", rng.below(8)),"job_id":job,"cpu_seconds":1.5,"rss_mb":200}})
        }
        22 => {
            json!({"kind":"job.retrying","job_id":job,"agent":agent,"payload":{"attempt":1,"max_retries":2,"reason":"tool failure"}})
        }
        23 if i % 400 == 23 => {
            json!({"kind":"policy.set","payload":{"policy_id":format!("budget-{agent}"),"scope":format!("agent:{agent}"),"policy_type":"budget","config":{"daily_usd":5.0,"per_run_usd":0.5}}})
        }
        24 if i % 800 == 24 => {
            json!({"kind":"flag.set","payload":{"key":"new_synthesis_v2","enabled":true,"rollout_pct":rng.below(101)}})
        }
        25 if i % 1200 == 25 => {
            json!({"kind":"route.set","payload":{"task_type":"research_synthesis","model":"claude-sonnet","provider":"anthropic","priority":rng.below(3)}})
        }
        26 if i % 2000 == 26 => {
            json!({"kind":"agent.registered","payload":{"slug":agent,"version":1 + i / 2000,"capabilities":["web_search"]}})
        }
        27 if i % 1000 == 27 => {
            json!({"kind":"breaker.configured","payload":{"tool":tool,"failure_threshold":5,"window_seconds":60,"recovery_probe_seconds":30,"fallback":null}})
        }
        28 if i % 600 == 28 => {
            json!({"kind":"memory.proposal.created","agent":agent,"payload":{"proposal_id":format!("m-{i}"),"target_layer":1,"target_key":format!("fact/{i}"),"proposed_value":{"v":i},"sources":[{"id":"s1","authority":(rng.below(100) as f64)/100.0}]}})
        }
        29 if i % 600 == 29 => {
            json!({"kind":"memory.proposal.scored","payload":{"proposal_id":format!("m-{}", i - 1),"score":(rng.below(100) as f64)/10.0}})
        }
        30 if i.is_multiple_of(3) => {
            json!({"kind":"heartbeat.stale","payload":{"worker_id":format!("w-{}", rng.below(8)),"last_seen_ms":120000}})
        }
        // The kill switches and the auditor's findings (the control projection).
        33 if i % 1400 == 33 => {
            json!({"kind":"lockdown.set","payload":{"reason":format!("drill {i}"),"priority":"P1"}})
        }
        34 if i % 1400 == 714 => {
            json!({"kind":"lockdown.released","payload":{"reason":"drill over"}})
        }
        36 if i % 900 == 36 => {
            json!({"kind":"kill.soft","payload":{"reason":"runaway","scope":"agent","target":agent}})
        }
        37 if i % 500 == 37 => {
            json!({"kind":"anomaly.detected","job_id":job,"agent":agent,"payload":{"detector":"cost_spike","severity":"warning","reason":"spike","series":format!("cost/agent/{agent}"),"trigger_seq":i - 1,"evidence_seqs":[i - 1],"observed":2.5,"baseline":0.1,"score":4.2,"threshold":3.5,"window":100,"samples":40,"warm_up":false}})
        }
        // An operator's erasure (the redactions projection); the hash need
        // not be the target's here: projections take the decision as made.
        38 if i % 600 == 38 => {
            json!({"kind":"entry.redacted","payload":{"target_seq":i - 3,"payload_hash":"ab".repeat(32),"reason":"drill"}})
        }
        35 => match rng.below(4) {
            0 => {
                json!({"kind":"job.failed","job_id":job,"agent":agent,"payload":{"error":"gave up","retryable":false}})
            }
            1 => {
                json!({"kind":"dlq.enqueued","job_id":job,"agent":agent,"payload":{"failure_reason":"max_retries exhausted","retry_count":2,"job_type":"research_synthesis"}})
            }
            _ => {
                json!({"kind":"job.completed","job_id":job,"agent":agent,"payload":{"status":"succeeded","duration_ms":rng.below(100000)}})
            }
        },
        _ => json!({"kind":"x.noise","job_id":job,"payload":{"i":i}}),
    }
}

/// Writes the lines through the library, each in the writer class its kind
/// names first (agents' work as an agent, decisions as an operator), as
/// `argusctl append` and the decision commands would; one commit per 1,000.
struct DayAhead;

impl argus::time::Clock for DayAhead {
    fn wall_ns(&self) -> u64 {
        argus::time::wall_now_ns() + argus::time::NS_PER_DAY
    }
    fn boot(&self) -> Option<argus::time::BootTime> {
        None
    }
}

fn record(dir: &Path, lines: &[String]) {
    let log = argus::Log::open(dir).expect("open log");
    record_with(&log, lines);
}

fn record_with(log: &argus::Log, lines: &[String]) {
    let mut actors = BTreeMap::new();
    for chunk in lines.chunks(1000) {
        let entries = chunk
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let class = kind_writers(v["kind"].as_str().unwrap())
                    .first()
                    .cloned()
                    .unwrap();
                let actor = actors
                    .entry(class.clone())
                    .or_insert_with(|| actor_of(&class));
                argus::cli::append::parse_line(l.as_bytes(), actor).unwrap()
            })
            .collect();
        log.append(entries).expect("append");
    }
}

fn digests(dir: &Path, verb: &str) -> BTreeMap<String, (u64, String)> {
    digests_with(dir, verb, &[])
}

fn digests_with(dir: &Path, verb: &str, extra: &[&str]) -> BTreeMap<String, (u64, String)> {
    let out = Command::new(bin())
        .args(["projections", verb, dir.to_str().unwrap(), "-o", "json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "projections {verb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_string(),
                (
                    v["seq"].as_u64().unwrap(),
                    v["state_digest"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn copy_log(from: &Path, to: &Path) {
    for sub in ["segments", "keys"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(from.join(sub)).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy(from.join("argus.json"), to.join("argus.json")).unwrap();
}

#[test]
fn projection_digests_equal_live_resumed_after_kill9_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("live");
    let out = Command::new(bin())
        .args(["init", live.to_str().unwrap(), "--segment-bytes", "4194304"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let per = ENTRIES / CHUNKS;
    for c in 0..CHUNKS {
        let lines: Vec<String> = (c * per..(c + 1) * per)
            .map(|i| gen(i, &mut rng).to_string())
            .collect();
        if c == 1 {
            // One chunk from a writer whose clock runs a day ahead with no
            // evidence against it, so the next chunk's writer records the
            // step back: the log holds clock.skew entries to fold.
            let opts = argus::log::OpenOptions {
                clock: Some(std::sync::Arc::new(DayAhead)),
                ..Default::default()
            };
            record_with(&argus::Log::open_with(&live, &opts).unwrap(), &lines);
        } else {
            record(&live, &lines);
        }
        // Built live: projections catch up after every chunk.
        digests(&live, "status");
    }
    let d_live = digests(&live, "status");
    let size = d_live.values().next().unwrap().0;
    assert!(size >= ENTRIES, "log holds {size} entries");
    let empty = digests(
        &{
            let e = tmp.path().join("empty");
            Command::new(bin())
                .args(["init", e.to_str().unwrap()])
                .output()
                .unwrap();
            e
        },
        "status",
    );
    for (name, (seq, d)) in &d_live {
        assert_eq!(*seq, size, "{name} not caught up");
        assert_ne!(
            Some(d),
            empty.get(name).map(|x| &x.1),
            "{name} has empty state: the generator does not exercise it"
        );
    }

    // Resumed after kill -9 at random points during catch-up.
    let resumed = tmp.path().join("resumed");
    copy_log(&live, &resumed);
    let mut killed_mid_run = 0;
    for round in 0..8u64 {
        let mut child = Command::new(bin())
            .args(["projections", "status", resumed.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(
            150 + (rng.below(900) + round * 37) % 900,
        ));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        killed_mid_run >= 3,
        "only {killed_mid_run} kills landed mid-catch-up; the test did not exercise resume"
    );
    let d_resumed = digests(&resumed, "status");
    assert_eq!(d_resumed, d_live, "resumed after kill -9 differs from live");

    // Rebuilt from scratch after deleting the projections directory.
    std::fs::remove_dir_all(live.join("projections")).unwrap();
    let d_scratch = digests(&live, "status");
    assert_eq!(d_scratch, d_live, "rebuilt from scratch differs from live");
    let d_rebuild = digests(&live, "rebuild");
    assert_eq!(d_rebuild, d_live, "`projections rebuild` differs from live");
    // Rebuilding on one thread and on more threads than projections per
    // core splits the projections differently; the state must not notice.
    for threads in ["1", "5"] {
        let d = digests_with(&live, "rebuild", &["--threads", threads]);
        assert_eq!(d, d_live, "rebuild on {threads} threads differs from live");
    }
}

#[test]
fn two_processes_opening_projections_at_once_both_answer_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    assert!(Command::new(bin())
        .args(["init", dir.to_str().unwrap()])
        .output()
        .unwrap()
        .status
        .success());
    let mut rng = Rng(7);
    let lines: Vec<String> = (0..20_000).map(|i| gen(i, &mut rng).to_string()).collect();
    record(&dir, &lines);
    let a = Command::new(bin())
        .args(["projections", "status", dir.to_str().unwrap(), "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = Command::new(bin())
        .args(["projections", "status", dir.to_str().unwrap(), "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(digests(&dir, "rebuild"), digests(&dir, "status"));
}
