//! `argusd --auditor-only --server URL`: the auditor as its own process,
//! apart from the writer (seed 000's separation of duties). It reads the
//! log through argusd's JSON feed from seq 0, folds it exactly as the
//! internal auditor folds the files (same admission, same log time), and
//! writes its outputs with an auditor token; it reports its progress to
//! `POST /v1/auditor/progress` so the daemon can tell silence from health.
//!
//! Outputs computed while it reads history are not written at once: the
//! log may already hold them further on. Once it has read up to the head
//! (the feed's heartbeat says where that is), it writes what is still owed,
//! then every new output as its trigger arrives.
use crate::auditor::replay::{Feeder, ParsedEntry};
use crate::auditor::{Auditor, Config, Output};
use crate::cli::remote::{self, Remote};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::ops::ControlFlow;
use std::sync::mpsc;
use std::time::{Duration, Instant};

enum Msg {
    Outputs(Vec<Output>),
    Tick(u64),
    Progress(u64),
}

/// Runs until the process is stopped; reconnects when the daemon goes away.
pub fn run(server: &str, token: Option<String>, cfg: Config) -> Result<i32> {
    let remote = remote::find(None, Some(server), token)?
        .context("--server local is not a daemon to audit")?;
    let tick_min = Duration::from_secs(cfg.staleness.tick_min_s.max(1));
    let (tx, rx) = mpsc::channel::<Msg>();
    let writer_remote = remote.clone();
    std::thread::Builder::new()
        .name("auditor-writer".into())
        .spawn(move || writer(&writer_remote, &rx))?;
    let mut a = Auditor::new(cfg);
    let mut feeder = Feeder::new()?;
    let mut live = false;
    let mut last_entry = Instant::now();
    let mut last_tick = Instant::now() - tick_min;
    loop {
        let path = format!("/v1/entries?follow=true&from={}&format=json", a.next_seq);
        let mut pending: Vec<u8> = Vec::new();
        let mut failure: Option<String> = None;
        let r = remote.duplex(
            "GET",
            &path,
            "application/json",
            "application/x-ndjson",
            None,
            |chunk| {
                pending.extend_from_slice(chunk);
                while let Some(p) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=p).collect();
                    let v: Value = match serde_json::from_slice(&line) {
                        Ok(v) => v,
                        Err(e) => {
                            failure = Some(format!("a feed line is not JSON: {e}"));
                            return Ok(ControlFlow::Break(()));
                        }
                    };
                    if let Some(h) = v.get("heartbeat") {
                        let head = h["head_seq"].as_u64().map_or(0, |s| s + 1);
                        if !live && a.next_seq >= head {
                            live = true;
                            let owed = a.unwritten();
                            tracing::info!(
                                entries = a.next_seq,
                                owed = owed.len(),
                                "auditor caught up with argusd; live"
                            );
                            let _ = tx.send(Msg::Outputs(owed));
                        }
                        let _ = tx.send(Msg::Progress(a.next_seq));
                        if let Some(due) = a.next_deadline() {
                            let now = a.last_log_ns + last_entry.elapsed().as_nanos() as u64;
                            if live && now >= due && last_tick.elapsed() >= tick_min {
                                last_tick = Instant::now();
                                let _ = tx.send(Msg::Tick(a.next_seq.saturating_sub(1)));
                            }
                        }
                        continue;
                    }
                    if v.get("error").is_some() || v.get("end").is_some() {
                        failure = Some(remote::error_message(&line));
                        return Ok(ControlFlow::Break(()));
                    }
                    let mut e: ParsedEntry = match serde_json::from_value(v) {
                        Ok(e) => e,
                        Err(err) => {
                            failure = Some(format!("a feed entry: {err}"));
                            return Ok(ControlFlow::Break(()));
                        }
                    };
                    let Some(ts) = crate::time::parse_rfc3339_ns(&e.ts) else {
                        failure = Some(format!("seq {}: ts {:?} is not RFC 3339 UTC", e.seq, e.ts));
                        return Ok(ControlFlow::Break(()));
                    };
                    e.ts_ns = ts;
                    if e.seq != a.next_seq {
                        failure = Some(format!(
                            "the feed skipped from seq {} to {}",
                            a.next_seq, e.seq
                        ));
                        return Ok(ControlFlow::Break(()));
                    }
                    last_entry = Instant::now();
                    let outs = feeder.feed_parsed(&mut a, &e);
                    if live && !outs.is_empty() {
                        let _ = tx.send(Msg::Outputs(outs));
                    }
                    if a.next_seq.is_multiple_of(1000) {
                        let _ = tx.send(Msg::Progress(a.next_seq));
                    }
                }
                Ok(ControlFlow::Continue(()))
            },
        );
        let why = match (r, failure) {
            (Err(e), _) => crate::cli::error::chain_text(&e),
            (Ok(_), Some(f)) => f,
            (Ok(status), None) if status != 200 => format!("argusd answered {status}"),
            (Ok(_), None) => "the feed ended".to_string(),
        };
        if why.contains("skipped") || why.contains("not JSON") {
            bail!("{why}");
        }
        tracing::warn!(reason = %why, "auditor feed interrupted; reconnecting in 1 s");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Posts outputs and progress in order; an output batch is retried until
/// the daemon takes it (it is owed until then).
fn writer(remote: &Remote, rx: &mpsc::Receiver<Msg>) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Outputs(outs) if outs.is_empty() => {}
            Msg::Outputs(outs) => {
                let body: Vec<Value> = outs.iter().map(Output::to_json).collect();
                post_until_taken(remote, "/v1/entries", &Value::Array(body));
            }
            Msg::Tick(due) => {
                let body = json!({"kind": "auditor.tick", "payload": {"due_seq": due}});
                post_until_taken(remote, "/v1/entries", &body);
            }
            Msg::Progress(next) => {
                let body = json!({"next_seq": next});
                match remote.call(
                    "POST",
                    "/v1/auditor/progress",
                    Some(("application/json", body.to_string().into_bytes())),
                ) {
                    Ok(a) if a.status == 200 => {}
                    Ok(a) => {
                        tracing::warn!(status = a.status, error = %remote::error_message(&a.body), "progress report refused")
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::cli::error::chain_text(&e), "progress report failed")
                    }
                }
            }
        }
    }
}

fn post_until_taken(remote: &Remote, path: &str, body: &Value) {
    let bytes = body.to_string().into_bytes();
    let mut wait = Duration::from_millis(200);
    loop {
        match remote.call("POST", path, Some(("application/json", bytes.clone()))) {
            Ok(a) if a.status == 200 => return,
            Ok(a) if a.status == 400 || a.status == 403 => {
                // Retrying cannot help: say so loudly and drop it.
                tracing::error!(status = a.status, error = %remote::error_message(&a.body), "the daemon refused the auditor's entries");
                return;
            }
            Ok(a) => {
                tracing::warn!(status = a.status, error = %remote::error_message(&a.body), "auditor write refused; retrying")
            }
            Err(e) => {
                tracing::warn!(error = %crate::cli::error::chain_text(&e), "auditor write failed; retrying")
            }
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
