//! The demo's daemon and its agents: argusd served from this process, and
//! the session's jobs written by concurrent agents over its API, the way
//! real agents write (the Python example agent among them when python3 and
//! the source tree are here).
use super::remote::{self, Remote};
use crate::server::config::FileConfig;
use crate::server::Config;
use crate::server::Discovery;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub url: String,
    pub dir: PathBuf,
    remote: Remote,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<i32>>>,
}

impl Daemon {
    /// Serves `dir` from a thread of this process on a free loopback port
    /// and `DIR/argusd.sock`, and waits until it is ready.
    pub fn start(dir: &Path) -> Result<Self> {
        let cfg = Config {
            dir: dir.to_path_buf(),
            init: false,
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            socket: Some(dir.join("argusd.sock")),
            tokens: None,
            file: FileConfig::default(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("demo-argusd".into())
            .spawn(move || -> Result<i32> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                rt.block_on(crate::server::serve(cfg, async {
                    let _ = rx.await;
                }))
            })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let disc = loop {
            if let Some(d) = Discovery::read_live(dir) {
                if d.pid == std::process::id() {
                    break d;
                }
            }
            if thread.is_finished() {
                return match thread.join() {
                    Ok(Err(e)) => Err(e.context("starting argusd")),
                    _ => bail!("argusd stopped while starting"),
                };
            }
            if Instant::now() > deadline {
                bail!("argusd did not become ready within 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let remote = remote::find(Some(dir), None, None)?
            .context("argusd.json names no reachable daemon")?;
        Ok(Self {
            url: disc.url.unwrap_or_default(),
            dir: dir.to_path_buf(),
            remote,
            stop: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs an argusctl command line through the daemon (`.` stands for
    /// the log directory, which is the daemon's); returns what it printed.
    pub fn run(&self, argv: &[&str]) -> Result<Vec<u8>> {
        let a: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let body = serde_json::to_vec(&serde_json::json!({ "argv": a }))?;
        let ans = self
            .remote
            .call("POST", "/v1/argusctl", Some(("application/json", body)))?;
        if ans.status != 200 {
            bail!(
                "argusctl {}: {}",
                argv.join(" "),
                remote::error_message(&ans.body)
            );
        }
        Ok(ans.body)
    }

    fn post(&self, path: &str, ct: &str, body: Vec<u8>) -> Result<Vec<u8>> {
        let ans = self.remote.call("POST", path, Some((ct, body)))?;
        if ans.status != 200 {
            bail!("POST {path}: {}", remote::error_message(&ans.body));
        }
        Ok(ans.body)
    }

    /// Stops the daemon as SIGTERM would, and waits for it.
    pub fn stop(mut self) -> Result<()> {
        self.stop.take().map(|tx| tx.send(()));
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Ok(0))) | None => Ok(()),
            Some(Ok(Ok(code))) => bail!("argusd exited with {code}"),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => bail!("argusd's thread panicked"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.take().map(|tx| tx.send(()));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Written {
    pub entries: usize,
    pub agents: usize,
    /// One line per agent: who wrote what.
    pub report: Vec<String>,
}

/// Seqs of session lines already written, so a later line's `parent`
/// (a line number of the session) names the seq that line got.
type Seqs = Arc<Mutex<HashMap<usize, u64>>>;

fn wait_seq(seqs: &Seqs, line: usize) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = seqs
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .get(&line)
        {
            return Ok(*s);
        }
        if Instant::now() > deadline {
            bail!("session line {line} was never written");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Writes the session through the daemon: the operator's configuration
/// first, then one agent thread per job (each approval made by an operator
/// through the daemon's decision route when the job reaches it), and the
/// Python example agent beside them.
pub fn write_session(
    daemon: &Daemon,
    session: &str,
    bind: fn(&str, &mut BTreeMap<String, Value>) -> Result<String>,
) -> Result<Written> {
    let registry = crate::registry::builtin().map_err(anyhow::Error::msg)?;
    let mut params = BTreeMap::new();
    let mut config = Vec::new();
    let mut jobs: BTreeMap<String, Vec<(usize, Value)>> = BTreeMap::new();
    for (i, line) in session.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let v: Value = serde_json::from_str(&bind(line, &mut params)?)?;
        let kind = v["kind"].as_str().unwrap_or_default().to_string();
        let is_config = registry
            .get(&kind)
            .and_then(|d| d.command.as_deref())
            .is_some_and(|c| c.contains("config apply"));
        if is_config {
            config.push((i, v));
        } else {
            let job = v["job_id"].as_str().unwrap_or("-").to_string();
            jobs.entry(job).or_default().push((i, v));
        }
    }
    let seqs: Seqs = Arc::default();
    let mut ndjson = Vec::new();
    for (_, v) in &config {
        ndjson.extend_from_slice(v.to_string().as_bytes());
        ndjson.push(b'\n');
    }
    let acks = daemon.post("/v1/config", "application/x-ndjson", ndjson)?;
    for ((i, _), ack) in config.iter().zip(String::from_utf8_lossy(&acks).lines()) {
        let seq = serde_json::from_str::<Value>(ack)?["seq"]
            .as_u64()
            .unwrap_or(0);
        seqs.lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(*i, seq);
    }
    let mut report = vec![format!(
        "operator (argusctl config apply via argusd): {} configuration entries",
        config.len()
    )];
    let python = python_agent(&daemon.dir);
    let mut entries = config.len();
    let results: Vec<Result<(String, usize)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .into_iter()
            .map(|(job, lines)| {
                let seqs = seqs.clone();
                scope.spawn(move || agent(daemon, &job, lines, &seqs))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("an agent thread panicked"))
            })
            .collect()
    });
    for r in results {
        let (who, n) = r?;
        entries += n;
        report.push(who);
    }
    let mut agents = report.len() - 1;
    if let Some(child) = python {
        let out = child
            .wait_with_output()
            .context("waiting for the Python agent")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let acks = text.lines().filter(|l| l.contains("\"seq\"")).count();
        if out.status.success() {
            agents += 1;
            report.push(format!(
                "researcher-py (tools/python/examples/agent.py, Python client): {} acknowledged writes, proposal left for an operator",
                acks
            ));
        } else {
            report.push(format!(
                "the Python example agent failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(Written {
        entries,
        agents,
        report,
    })
}

/// One job's agent: its lines in order, batched as they would arrive, with
/// `parent` rewritten to the seq its session line got; approvals are asked
/// of the operator route.
fn agent(
    daemon: &Daemon,
    job: &str,
    lines: Vec<(usize, Value)>,
    seqs: &Seqs,
) -> Result<(String, usize)> {
    let mut who = BTreeMap::new();
    let mut written = 0;
    let mut batch: Vec<(usize, Value)> = Vec::new();
    let flush = |batch: &mut Vec<(usize, Value)>| -> Result<usize> {
        if batch.is_empty() {
            return Ok(0);
        }
        let body: Vec<Value> = batch.iter().map(|(_, v)| v.clone()).collect();
        let acks = daemon.post(
            "/v1/entries",
            "application/json",
            serde_json::to_vec(&body)?,
        )?;
        let acks: Vec<Value> = serde_json::from_slice(&acks)?;
        let mut s = seqs.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        for ((i, _), a) in batch.iter().zip(&acks) {
            s.insert(*i, a["seq"].as_u64().unwrap_or(0));
        }
        let n = batch.len();
        batch.clear();
        // Real agents take time between steps; the SLA and timing views
        // then have something to measure.
        std::thread::sleep(Duration::from_millis(15));
        Ok(n)
    };
    for (i, mut v) in lines {
        if let Some(p) = v["parent"].as_u64() {
            written += flush(&mut batch)?;
            v["parent"] = wait_seq(seqs, p as usize)?.into();
        }
        if let Some(a) = v["agent"].as_str() {
            *who.entry(a.to_string()).or_insert(0) += 1;
        }
        if v["kind"] == "proposal.approved" {
            written += flush(&mut batch)?;
            let id = v["payload"]["proposal_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let reason = v["payload"]["reason"]
                .as_str()
                .unwrap_or("approved")
                .to_string();
            let out = daemon.run(&[
                "approvals",
                "approve",
                ".",
                &id,
                "--reason",
                &reason,
                "-o",
                "json",
            ])?;
            let seq = serde_json::from_slice::<Value>(&out)?["seq"]
                .as_u64()
                .context("approve printed no seq")?;
            // Later lines name the approval by its session line.
            seqs.lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(i, seq);
            written += 1;
            continue;
        }
        batch.push((i, v));
        if batch.len() == 3 {
            written += flush(&mut batch)?;
        }
    }
    written += flush(&mut batch)?;
    let names: Vec<String> = who.into_iter().map(|(a, n)| format!("{a} ({n})")).collect();
    Ok((
        format!("job {job}: {} entries by {}", written, names.join(", ")),
        written,
    ))
}

/// The Python example agent, started against the daemon, if python3 and
/// the source tree's tools/python are here.
fn python_agent(dir: &Path) -> Option<std::process::Child> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/python/examples/agent.py");
    if !script.is_file() {
        return None;
    }
    std::process::Command::new("python3")
        .arg(&script)
        .arg("--dir")
        .arg(dir)
        .args(["--agent", "researcher-py", "--job", "job-py-demo"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()
}

/// The auditor's part of the demo: quiet on the normal session, then one
/// scripted fault (an agent calls a tool for a proposal the operator
/// rejected), the kill it causes, an agent refused with 423, and the
/// operator's release. Returns the lines to print.
pub fn auditor_scene(daemon: &Daemon) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let count = |d: &Daemon| -> Result<usize> {
        Ok(
            String::from_utf8_lossy(&d.run(&["anomalies", ".", "-o", "json"])?)
                .lines()
                .count(),
        )
    };
    out.push(format!(
        "auditor: {} anomalies on the session above (normal work; detectors warm up on it)",
        count(daemon)?
    ));
    let proposal = serde_json::json!({
        "kind": "proposal.created", "job_id": "job-rogue", "agent": "coder",
        "payload": {"proposal_id": "p-099", "action_type": "code_execution", "risk": "medium",
            "rationale": "Drop and rebuild the production price table in place",
            "rollback_plan": "restore from last night's snapshot",
            "mission_context": "vendor price sync", "parameters": {"table": "prices", "mode": "drop"}}
    });
    let job = serde_json::json!({"kind": "job.received", "job_id": "job-rogue", "agent": "coder",
        "payload": {"job_type": "data_sync", "title": "Rebuild price table"}});
    daemon.post(
        "/v1/entries",
        "application/json",
        serde_json::to_vec(&serde_json::json!([job, proposal]))?,
    )?;
    daemon.run(&[
        "approvals",
        "reject",
        ".",
        "p-099",
        "--reason",
        "drops production data; use a staging copy",
    ])?;
    out.push("operator: rejected proposal p-099 (drop the production price table)".into());
    let rogue = serde_json::json!({"kind": "tool.call_started", "job_id": "job-rogue", "agent": "coder",
        "payload": {"tool": "psql", "call_id": "c-900", "proposal_id": "p-099", "args": {"sql": "DROP TABLE prices"}}});
    daemon.post(
        "/v1/entries",
        "application/json",
        rogue.to_string().into_bytes(),
    )?;
    out.push("coder: calls psql for p-099 anyway".into());
    let flag =
        crate::log::control_flags::path(&daemon.dir, crate::log::control_flags::Flag::HardKill);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flag.exists() {
        if Instant::now() > deadline {
            bail!("the auditor did not pull the kill switch within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for l in String::from_utf8_lossy(&daemon.run(&["anomalies", "."])?).lines() {
        out.push(format!("auditor: {}", l.trim()));
    }
    out.push(format!("auditor: wrote kill.hard and {}", flag.display()));
    let next = serde_json::json!({"kind": "job.progress", "job_id": "job-7f3a", "agent": "planner", "payload": {"message": "next step"}});
    let refused = daemon.remote.call(
        "POST",
        "/v1/entries",
        Some(("application/json", next.to_string().into_bytes())),
    )?;
    out.push(format!(
        "planner's next append: HTTP {} {}",
        refused.status,
        remote::error_message(&refused.body)
    ));
    daemon.run(&[
        "release",
        ".",
        "--reason",
        "rogue call contained; coder disabled pending review",
    ])?;
    let again = daemon.remote.call(
        "POST",
        "/v1/entries",
        Some(("application/json", next.to_string().into_bytes())),
    )?;
    out.push(format!(
        "operator: argusctl release DIR --reason '...'; the flag is {}; planner's append: HTTP {}",
        if flag.exists() { "still there" } else { "gone" },
        again.status
    ));
    Ok(out)
}
