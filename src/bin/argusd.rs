//! argusd: serves one Argus log to many agents, operators and auditors.
use anyhow::{Context, Result};
use argus::server::{config::FileConfig, Config};
use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "argusd",
    version,
    about = "Serve an Argus log over HTTP: many producers, live followers, views and decisions",
    long_about = "argusd owns one log's writer and projections and serves them over HTTP/JSON (docs/API.md) on loopback TCP and a Unix socket. Requests from every connection share one group commit; every ack follows fdatasync and a signed seal.\n\nWhile it runs, DIR/argusd.json names it, and `argusctl` commands on DIR go through it.",
    after_help = "Examples:\n  argusd --dir ./audit --init                      # create the log if needed, serve on 127.0.0.1:7117\n  argusd --dir ./audit --listen 127.0.0.1:9000 --log-format json\n  argusd --dir ./audit --listen none --socket /run/argus/argusd.sock\n  argusd --dir ./audit --listen 0.0.0.0:7117       # refused unless DIR/tokens.json holds tokens\n  argusd --dir ./audit --config /etc/argus/argusd.json\n  argusd --dir ./audit --auditor external &          # the writer, expecting its auditor...\n  argusd --auditor-only --server unix:./audit/argusd.sock --token \"$AUDITOR_TOKEN\"   # ...apart\n\nStop with SIGTERM or Ctrl-C: requests in flight finish and are acknowledged, then it exits 0.\nA second signal exits at once (the next start recovers the tail).\n\nUnder systemd use Type=notify: READY=1 is sent once projections have caught up, and\nWATCHDOG=1 at half of WatchdogSec while the writer is healthy (see docs/argusd.service)."
)]
struct Args {
    /// The log directory (not with --auditor-only).
    #[arg(long, value_name = "DIR", required_unless_present = "auditor_only")]
    dir: Option<PathBuf>,
    /// Where the auditor runs: internal (a thread of this daemon, the default), external
    /// (a separate `argusd --auditor-only`, which must report in), or off (no detections and no
    /// relief valve; health says so). Overrides the
    /// config file's auditor.mode. Example: --auditor external
    #[arg(long, value_name = "MODE", value_parser = ["internal", "external", "off"])]
    auditor: Option<String>,
    /// Detector settings (JSON; every field optional, see docs/auditor.json). Example: --auditor-config tuned.json
    #[arg(long, value_name = "FILE")]
    auditor_config: Option<PathBuf>,
    /// Run only the auditor, as its own process, against the daemon at --server (needs an
    /// auditor-role token). Example: argusd --auditor-only --server http://127.0.0.1:7117 --token "$AUDITOR_TOKEN"
    #[arg(long, requires = "server", conflicts_with_all = ["init", "listen", "socket", "dir"])]
    auditor_only: bool,
    /// With --auditor-only: the daemon to audit (http://HOST:PORT or unix:/path). Example: --server unix:/srv/audit/argusd.sock
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// With --auditor-only: the auditor's bearer token (never printed). Example: --token "$(cat auditor.token)"
    #[arg(
        long,
        env = "ARGUS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Create the log first if DIR holds none (prints the public key to pin in the daemon's log).
    #[arg(long)]
    init: bool,
    /// TCP address to serve; `none` serves the Unix socket only. Non-loopback needs tokens.
    /// Example: --listen 127.0.0.1:7117
    #[arg(long, value_name = "ADDR|none")]
    listen: Option<String>,
    /// Unix socket path (default DIR/argusd.sock); `none` for TCP only. Example: --socket /run/argus/argusd.sock
    #[arg(long, value_name = "PATH|none")]
    socket: Option<String>,
    /// JSON config file: listen, socket, socket_mode, tokens, peers, limits (see docs/API.md). Example: --config argusd.json
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Token file (default DIR/tokens.json; must be mode 0600). Example: --tokens /etc/argus/tokens.json
    #[arg(long, value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Diagnostics on stderr as text or as JSON lines. Example: --log-format json
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Diagnostics level: error, warn, info, debug or trace. Example: --log-level debug
    #[arg(long, default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn config(a: &Args, dir: PathBuf) -> Result<Config> {
    let mut file = match &a.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    if let Some(m) = &a.auditor {
        file.auditor.mode = serde_json::from_value(serde_json::Value::String(m.clone()))
            .with_context(|| format!("--auditor {m:?}"))?;
    }
    if let Some(c) = &a.auditor_config {
        file.auditor.config = Some(c.clone());
    }
    let listen_s = a
        .listen
        .clone()
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| argus::server::config::DEFAULT_LISTEN.to_string());
    let listen = if listen_s == "none" {
        None
    } else {
        Some(
            listen_s
                .parse::<SocketAddr>()
                .with_context(|| format!("--listen {listen_s:?}: expected IP:PORT or none"))?,
        )
    };
    let socket = match a.socket.as_deref() {
        Some("none") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => Some(
            file.socket
                .clone()
                .unwrap_or_else(|| dir.join("argusd.sock")),
        ),
    };
    Ok(Config {
        dir,
        init: a.init,
        listen,
        socket,
        tokens: a.tokens.clone().or_else(|| file.tokens.clone()),
        file,
    })
}

fn main() {
    let args = Args::parse();
    let level: tracing::Level = args.log_level.parse().unwrap_or(tracing::Level::INFO);
    let sub = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level);
    match args.log_format {
        LogFormat::Json => sub.json().init(),
        LogFormat::Text => sub.with_ansi(false).init(),
    }
    let code = match run(&args) {
        Ok(c) => c,
        Err(e) => {
            argus::cli::eprint(&format!("argusd: {}", argus::cli::error::chain_text(&e)));
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &Args) -> Result<i32> {
    if args.auditor_only {
        let detectors = match &args.auditor_config {
            Some(p) => argus::auditor::Config::load(p)?,
            None => argus::auditor::Config::default(),
        };
        let server = args.server.as_deref().unwrap_or_default();
        return argus::server::auditor_remote::run(server, args.token.clone(), detectors);
    }
    let Some(dir) = args.dir.clone() else {
        anyhow::bail!("--dir is required (except with --auditor-only)");
    };
    let cfg = config(args, dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("argusd")
        .build()
        .context("starting the runtime")?;
    rt.block_on(argus::server::run(cfg))
}
