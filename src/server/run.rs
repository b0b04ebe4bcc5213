//! Starting and stopping argusd.
//!
//! Start: open (or create) the log and take its writer lock, catch every
//! projection up, bind, write `argusd.json`, then tell systemd READY=1.
//! Stop (SIGTERM or SIGINT): stop accepting, let requests in flight finish
//! and be acknowledged (streams end with a line saying where to resume),
//! join the writer (every ack already followed its seal and fdatasync),
//! remove `argusd.json`, exit 0. A second signal exits at once; the log is
//! consistent at every instant, and the next open recovers its tail.
use super::auth::{self, Auth};
use super::config::{Config, Limits};
use super::discovery::Discovery;
use super::listen::{self, Listener};
use super::routes::{self, App};
use crate::log::OpenOptions;
use crate::Log;
use anyhow::{bail, Context, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Semaphore};

/// Runs the daemon until SIGTERM or SIGINT. Returns the process exit code.
pub async fn run(cfg: Config) -> Result<i32> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let dir = cfg.dir.clone();
    let stop = async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            signal = which,
            "stopping: no new connections; finishing requests in flight"
        );
        // A second signal: leave now. Nothing unacknowledged is promised,
        // and recovery on the next open handles a torn tail.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            tracing::warn!("second signal: exiting at once");
            Discovery::remove(&dir);
            std::process::exit(1);
        });
    };
    serve(cfg, stop).await
}

/// Serves until `stop` completes, then stops cleanly. `argusctl demo` runs
/// a daemon in its own process this way.
pub async fn serve(cfg: Config, stop: impl std::future::Future<Output = ()>) -> Result<i32> {
    let limits = cfg.file.limits.clone();
    limits.check().map_err(|e| anyhow::anyhow!(e))?;
    let metrics = install_metrics();
    let log = Arc::new(open_log(&cfg)?);
    let tokens_path = cfg
        .tokens
        .clone()
        .unwrap_or_else(|| crate::tokens::default_path(&cfg.dir));
    let tokens = crate::tokens::TokenStore::load(&tokens_path)
        .with_context(|| format!("loading tokens from {}", tokens_path.display()))?;
    if let Some(addr) = cfg.listen {
        if !addr.ip().is_loopback() && tokens.is_empty() {
            bail!(
                "refusing to listen on {addr} with no tokens configured: anyone who can reach it could write to the log.\n\
                 Create tokens first (argusctl token add {} --name NAME --role agent|operator|auditor), or listen on loopback (127.0.0.1 / ::1).",
                cfg.dir.display()
            );
        }
    }
    let peers = auth::peers(&cfg.file.peers).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let local_uid = nix::unistd::getuid().as_raw();
    let auth = Auth {
        tokens: parking_lot::RwLock::new(tokens),
        peers,
        local_principal: crate::authority::local_principal(),
        local_uid,
    };

    // Projections catch up before anything is served: READY=1 means the
    // views are current.
    let projections = crate::projections::Projections::open(&cfg.dir, crate::projections::all())
        .with_context(|| format!("opening the projections of {}", cfg.dir.display()))?;
    let shared = Arc::new(crate::cli::context::SharedState::new(
        cfg.dir.clone(),
        log.clone(),
        projections,
    ));
    let caught = {
        let s = shared.clone();
        tokio::task::spawn_blocking(move || s.catch_up()).await??
    };
    tracing::info!(entries = caught, "projections caught up");

    // The kill switches as the log records them, kept live by the feed.
    // The operator's redaction rules, from the pointer DIR/control keeps
    // (checked against the entry it names); one that leads nowhere stops
    // the start rather than serving without the rules.
    let rules = crate::secrets::mirror::active(&cfg.dir).context("redaction rules")?;
    let gate = Arc::new(super::control::Gate::new(
        cfg.dir.clone(),
        super::control::initial(&shared)?,
        cfg.file.auditor.hook_command.clone(),
        rules,
    ));
    gate.sync_flags();
    let stop_feed = Arc::new(AtomicBool::new(false));
    let (feed, feed_thread) = super::feed::start(
        &cfg.dir,
        log.clone(),
        limits.follow_buffer_entries,
        stop_feed.clone(),
        gate.clone(),
    )?;
    let auditor_status = Arc::new(super::auditor::AuditorStatus::new(cfg.file.auditor.mode));
    let auditor_thread = match cfg.file.auditor.mode {
        super::config::AuditorMode::Internal => {
            let detectors = match &cfg.file.auditor.config {
                Some(p) => crate::auditor::Config::load(p)?,
                None => crate::auditor::Config::default(),
            };
            Some(super::auditor::start(
                cfg.dir.clone(),
                log.clone(),
                detectors,
                auditor_status.clone(),
                stop_feed.clone(),
            )?)
        }
        _ => None,
    };

    // Bind before announcing anything.
    let mut listeners = Vec::new();
    let mut url = None;
    if let Some(addr) = cfg.listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let bound = l.local_addr()?;
        url = Some(format!("http://{bound}"));
        tracing::info!(%bound, "listening (TCP)");
        listeners.push(Listener::Tcp(l));
    }
    if let Some(path) = &cfg.socket {
        listeners.push(Listener::Unix(bind_socket(
            path,
            cfg.file.socket_mode.unwrap_or(0o660),
        )?));
        tracing::info!(path = %path.display(), "listening (Unix socket)");
    }
    if listeners.is_empty() {
        bail!("nothing to listen on: give --listen or --socket");
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let fairness = Arc::new(super::fairness::Fairness::new(&limits));
    let app = Arc::new(App {
        dir: cfg.dir.clone(),
        log: log.clone(),
        limits: limits.clone(),
        auth,
        queue: Arc::new(Semaphore::new(limits.queue_requests_max)),
        feed,
        shutdown: stop_rx.clone(),
        metrics,
        started: std::time::Instant::now(),
        shared: shared.clone(),
        tokens_path: tokens_path.clone(),
        gate: gate.clone(),
        auditor: auditor_status.clone(),
        fairness: fairness.clone(),
    });
    let router = routes::router(app.clone());
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let mut servers = Vec::new();
    for l in listeners {
        servers.push(tokio::spawn(listen::serve(
            l,
            router.clone(),
            limits.clone(),
            connections.clone(),
            fairness.clone(),
            graceful.clone(),
            stop_rx.clone(),
        )));
    }

    Discovery {
        pid: std::process::id(),
        url: url.clone(),
        socket: cfg.socket.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
    .write(&cfg.dir)?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!(dir = %cfg.dir.display(), url = url.as_deref().unwrap_or("-"), entries = log.committed().get(), "argusd ready");
    let watchdog = tokio::spawn(watchdog(log.clone()));
    let keeper = tokio::spawn(keep_projections_live(shared.clone(), app.feed.head.clone()));
    let auditor_watch = tokio::spawn(super::auditor::watch(
        log.clone(),
        auditor_status.clone(),
        gate.clone(),
        cfg.file.auditor.clone(),
    ));
    // The relief valve belongs to the auditor: `--auditor off` stops it too.
    let mut relief_cfg = cfg.file.auditor.relief.clone();
    relief_cfg.enabled &= cfg.file.auditor.mode != super::config::AuditorMode::Off;
    let relief = tokio::spawn(super::relief::run(cfg.dir.clone(), log.clone(), relief_cfg));
    let witness = tokio::spawn(super::witness_push::run(
        cfg.dir.clone(),
        cfg.file.witness.clone(),
    ));

    stop.await;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    watchdog.abort();
    keeper.abort();
    auditor_watch.abort();
    relief.abort();
    witness.abort();
    for s in servers {
        let _ = s.await;
    }
    drop(router);
    if let Ok(g) = Arc::try_unwrap(graceful) {
        let drain = Limits::ms(limits.drain_timeout_ms);
        if tokio::time::timeout(drain, g.shutdown()).await.is_err() {
            tracing::warn!(
                timeout_ms = limits.drain_timeout_ms,
                "some connections did not finish in time; closing them"
            );
        }
    }
    stop_feed.store(true, Ordering::Relaxed);
    // Leave the projections caught up, so the next start has nothing to do.
    let s = shared.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.catch_up()).await {
        tracing::warn!(error = %crate::cli::error::chain_text(&e), "projections could not catch up before stopping");
    }
    if let Some(t) = auditor_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    drop(app);
    drop(shared);
    drop(gate);
    let _ = auditor_watch.await;
    let _ = relief.await;
    let log = wait_sole(log).await;
    let entries = log.committed().get();
    // Joins the writer: every request it accepted is committed or refused.
    drop(log);
    let _ = tokio::task::spawn_blocking(move || feed_thread.join()).await;
    Discovery::remove(&cfg.dir);
    if let Some(sock) = &cfg.socket {
        let _ = std::fs::remove_file(sock);
    }
    tracing::info!(entries, "argusd stopped cleanly");
    Ok(0)
}

/// Waits for the last request task to drop its handle on the log, so the
/// writer is joined here and not in some task.
async fn wait_sole(mut log: Arc<Log>) -> Log {
    loop {
        match Arc::try_unwrap(log) {
            Ok(l) => return l,
            Err(l) => {
                log = l;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn open_log(cfg: &Config) -> Result<Log> {
    let is_log = cfg.dir.join("argus.json").exists();
    if !is_log {
        if !cfg.init {
            bail!(
                "{} holds no Argus log; pass --init to create one",
                cfg.dir.display()
            );
        }
        let opts = crate::log::dir::InitOptions {
            segment_bytes: crate::log::dir::DEFAULT_SEGMENT_BYTES,
            key_file: None,
            clock_skew_tolerance_s: None,
        };
        let log = Log::create(&cfg.dir, &opts)
            .with_context(|| format!("creating a log in {}", cfg.dir.display()))?;
        tracing::info!(public_key = %hex::encode(log.meta().public_key()?.as_bytes()), "created a new log; pin this key for verify");
        return Ok(log);
    }
    let opts = OpenOptions {
        operation: "serve (argusd)".into(),
        lock_wait: Duration::from_secs(5),
        clock: None,
        // Many connections: their requests meet on the writer thread.
        inline_writer: false,
    };
    let log = Log::open_with(&cfg.dir, &opts)
        .with_context(|| format!("opening {}", cfg.dir.display()))?;
    if let Some((cut, ack)) = log.recovered() {
        tracing::warn!(segment = %cut.segment, bytes_cut = cut.bytes_cut, offset = cut.offset, reason = %cut.reason, seq = ack.seq, "recovered a torn tail");
    }
    Ok(log)
}

/// The Unix socket: a stale one from a killed daemon is replaced (we hold
/// the writer lock, so no live daemon owns it), anything else is refused.
fn bind_socket(path: &std::path::Path, mode: u32) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(md) = std::fs::symlink_metadata(path) {
        if md.file_type().is_socket() {
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))?;
        } else {
            bail!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            );
        }
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(l)
}

/// The process's Prometheus recorder: installed once, shared by every
/// daemon the process runs (tests and the demo run more than one).
fn install_metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(build_metrics).clone()
}

fn build_metrics() -> metrics_exporter_prometheus::PrometheusHandle {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let fsync = [
        0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
        0.512, 1.0,
    ];
    let group = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
    ];
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full("argus_fsync_seconds".into()), &fsync)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("argus_group_commit_entries".into()), &group)
        })
        .unwrap_or_else(|_| PrometheusBuilder::new());
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    // Histogram samples wait in the recorder until /metrics renders them;
    // a daemon nobody scrapes kept every fsync's sample (about 8 bytes a
    // commit, found with heaptrack during a soak). Upkeep folds them into
    // the buckets every few seconds, scraped or not.
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("argusd-metrics".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_secs(5));
            upkeep.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms drain only when /metrics is read");
    }
    if metrics::set_global_recorder(recorder).is_err() {
        tracing::warn!(
            "a metrics recorder was already installed; /metrics shows only argusd's own gauges"
        );
    }
    for (name, help) in [
        (
            "argus_fsync_seconds",
            "fdatasync latency of each group commit",
        ),
        ("argus_group_commit_entries", "entries per group commit"),
        ("argus_entries_written_total", "entries written to the log"),
        ("argus_bytes_written_total", "bytes written to segments"),
        ("argus_append_requests_total", "append requests committed"),
        (
            "argus_requests_rejected_total",
            "requests refused, by reason",
        ),
        (
            "argus_requests_delayed_total",
            "requests held until their caller's rate allowed them",
        ),
        (
            "argus_queue_depth",
            "append requests waiting for the writer",
        ),
        (
            "argus_followers",
            "connected followers of /v1/entries?follow",
        ),
        (
            "argus_projection_lag",
            "entries each projection is behind the log",
        ),
    ] {
        if name.ends_with("_total") {
            metrics::describe_counter!(name, help);
        } else if name.ends_with("_seconds") || name.ends_with("_entries") {
            metrics::describe_histogram!(name, help);
        } else {
            metrics::describe_gauge!(name, help);
        }
    }
    handle
}

/// Keeps the projections close to the log as entries commit, so a view
/// rarely has much to catch up, and `/metrics` reports a real lag. At most
/// one catch-up a second, on the blocking pool: each one re-reads the active
/// segment from its start (the engine's readers keep no position between
/// snapshots), which under a heavy append load costs more than it buys.
const KEEPER_EVERY: Duration = Duration::from_secs(1);

async fn keep_projections_live(
    shared: Arc<crate::cli::context::SharedState>,
    mut head: tokio::sync::watch::Receiver<u64>,
) {
    loop {
        if head.changed().await.is_err() {
            return;
        }
        tokio::time::sleep(KEEPER_EVERY).await;
        let s = shared.clone();
        match tokio::task::spawn_blocking(move || {
            let r = s.catch_up();
            for (name, lag) in s.lag() {
                metrics::gauge!("argus_projection_lag", "projection" => name).set(lag as f64);
            }
            r
        })
        .await
        {
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::cli::error::chain_text(&e), "projections could not catch up")
            }
            Err(e) => tracing::warn!(error = %e, "projection catch-up task failed"),
            Ok(Ok(_)) => {}
        }
    }
}

/// systemd's watchdog: pinged at half its interval while the writer is
/// alive and not in lockdown, so a wedged daemon gets restarted.
async fn watchdog(log: Arc<Log>) {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let every = Duration::from_micros(usec / 2);
    loop {
        tokio::time::sleep(every).await;
        if log.committed().lockdown().is_none() {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
    }
}
