//! argusd pushes its newest seal to a configured witness command.
//!
//! A witness only helps if it sees the log often: one that last cosigned a
//! month ago leaves a month a key thief could rewrite. Each interval, the
//! newest seal is sent as a C2SP tlog-witness add-checkpoint request (the
//! consistency proof from the size last cosigned) to the command's stdin;
//! the newest seal extends every earlier one, so a witness that cosigns it
//! vouches for all of them. What the witness returns is appended to the
//! checkpoint and kept in `DIR/witness/checkpoint.txt`, the latest
//! checkpoint anyone can verify with `verify --witness`. A refusal (a
//! rollback or fork, as the witness judged it) is an error in argusd's log
//! and a metric; the pushed size does not advance, so the next interval
//! asks again and keeps saying so.
use super::config::WitnessSection;
use crate::log::reader::LogReader;
use crate::log::safe_fs::{self, Durability};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use log_format::hash::Hash32;
use log_format::proof::consistency_proof;
use log_format::Checkpoint;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one witness call may take before it is killed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A witness's answer larger than this is not cosignature lines.
const ANSWER_MAX: u64 = 64 * 1024;

pub const CHECKPOINT_FILE: &str = "checkpoint.txt";

pub fn witness_dir(dir: &Path) -> PathBuf {
    dir.join("witness")
}

/// What the pusher remembers: the size the witness last cosigned and the
/// entry hashes read so far (32 bytes per entry, read once each).
struct Pusher {
    dir: PathBuf,
    argv: Vec<String>,
    cosigned: u64,
    hashes: Vec<Hash32>,
}

pub async fn run(dir: PathBuf, cfg: WitnessSection) {
    let Some(argv) = cfg.command.filter(|c| !c.is_empty()) else {
        return;
    };
    let cosigned = last_cosigned(&dir);
    let mut p = Some(Pusher {
        dir,
        argv,
        cosigned,
        hashes: Vec::new(),
    });
    let interval = Duration::from_millis(cfg.interval_ms.max(100));
    loop {
        tokio::time::sleep(interval).await;
        let Some(mut pusher) = p.take() else { return };
        let joined = tokio::task::spawn_blocking(move || {
            if let Err(e) = pusher.push_once() {
                metrics::counter!("argus_witness_failures_total").increment(1);
                tracing::error!(error = %crate::cli::error::chain_text(&e), "witness push failed");
            }
            pusher
        })
        .await;
        match joined {
            Ok(pusher) => p = Some(pusher),
            Err(e) => {
                tracing::error!(error = %e, "the witness pusher stopped");
                return;
            }
        }
    }
}

/// The size in `DIR/witness/checkpoint.txt`, 0 when there is none.
fn last_cosigned(dir: &Path) -> u64 {
    let path = witness_dir(dir).join(CHECKPOINT_FILE);
    safe_fs::read_capped(&path, ANSWER_MAX * 2)
        .ok()
        .and_then(|b| Checkpoint::parse_bytes(&b).ok())
        .map_or(0, |c| c.seal.tree_size)
}

impl Pusher {
    fn push_once(&mut self) -> anyhow::Result<()> {
        let r = LogReader::open(&self.dir)?;
        let seal = r.latest_seal()?;
        let size = seal.tree_size;
        if size <= self.cosigned {
            return Ok(());
        }
        let have = self.hashes.len() as u64;
        if have < size {
            self.hashes.reserve((size - have) as usize);
            r.for_each(have, size - 1, |v| {
                self.hashes.push(v.hash());
                std::ops::ControlFlow::Continue(())
            })?;
        }
        anyhow::ensure!(
            self.hashes.len() as u64 >= size,
            "the log holds fewer entries than its seal's size {size}"
        );
        let proof = if self.cosigned == 0 {
            Vec::new()
        } else {
            consistency_proof(&self.hashes[..size as usize], self.cosigned).ok_or_else(|| {
                anyhow::anyhow!("no consistency proof from size {}", self.cosigned)
            })?
        };
        let note = seal.checkpoint_text(&r.log_id);
        let mut request = format!("old {}\n", self.cosigned);
        for h in &proof {
            request.push_str(&B64.encode(h));
            request.push('\n');
        }
        request.push('\n');
        request.push_str(&note);
        let answer = call(&self.argv, &request)?;
        let cosigned = format!("{note}{answer}");
        Checkpoint::parse(&cosigned)
            .map_err(|e| anyhow::anyhow!("the witness's answer is not signature lines: {e}"))?;
        let wdir = witness_dir(&self.dir);
        match std::fs::create_dir(&wdir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(anyhow::anyhow!("creating {}: {e}", wdir.display()))
            }
            _ => safe_fs::real_dir(&wdir)?,
        }
        safe_fs::write_whole(
            &wdir.join("checkpoint.txt.tmp"),
            &wdir.join(CHECKPOINT_FILE),
            cosigned.as_bytes(),
            0o644,
            Durability::Synced,
        )?;
        tracing::info!(
            tree_size = size,
            previous = self.cosigned,
            "witness cosigned the newest seal"
        );
        metrics::gauge!("argus_witness_cosigned_size").set(size as f64);
        self.cosigned = size;
        Ok(())
    }
}

/// Runs the witness with `request` on stdin; its stdout on success.
fn call(argv: &[String], request: &str) -> anyhow::Result<String> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| anyhow::anyhow!("empty witness command"))?;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting the witness {prog}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A witness that exits without reading gets EPIPE here; its exit
        // status below says why.
        let _ = stdin.write_all(request.as_bytes());
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        let mut e = Vec::new();
        if let Some(s) = out.as_mut() {
            let _ = s.take(ANSWER_MAX + 1).read_to_end(&mut o);
        }
        if let Some(s) = err.as_mut() {
            let _ = s.take(ANSWER_MAX).read_to_end(&mut e);
        }
        (o, e)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait()? {
            Some(s) => break s,
            None if started.elapsed() > CALL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the witness {prog} timed out after {CALL_TIMEOUT:?} and was killed");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let (o, e) = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading the witness's output"))?;
    if !status.success() {
        metrics::counter!("argus_witness_refusals_total").increment(1);
        anyhow::bail!(
            "the witness {prog} refused ({status}): {}",
            crate::log::safe_fs::printable(&e, 2000)
        );
    }
    anyhow::ensure!(
        (o.len() as u64) <= ANSWER_MAX,
        "the witness's answer is larger than {ANSWER_MAX} bytes"
    );
    String::from_utf8(o).map_err(|_| anyhow::anyhow!("the witness's answer is not UTF-8"))
}
