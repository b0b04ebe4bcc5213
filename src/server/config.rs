//! What `argusd` is told: where to listen, who the Unix-socket peers are,
//! and the limits that keep one client from hurting the others. Every limit
//! has a default here and can be set in the `--config` file.
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7117";

#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    /// Create the log if the directory holds none.
    pub init: bool,
    /// TCP listener; `None` serves the Unix socket only.
    pub listen: Option<SocketAddr>,
    pub socket: Option<PathBuf>,
    pub tokens: Option<PathBuf>,
    pub file: FileConfig,
}

/// The `--config` file (JSON). Unknown fields are refused, so a typo in a
/// limit is an error at start, not a limit silently left at its default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub socket: Option<PathBuf>,
    /// Permission bits of the Unix socket (default 0o660: the daemon's user
    /// and group may connect; peers are then told apart by uid).
    pub socket_mode: Option<u32>,
    pub tokens: Option<PathBuf>,
    /// Unix-socket peers by uid: `{"1001": {"name": "planner", "role": "agent"}}`.
    pub peers: BTreeMap<String, PeerConfig>,
    pub limits: Limits,
    pub auditor: AuditorSection,
    pub witness: WitnessSection,
}

/// An independent witness that cosigns the newest seal (SPEC §5.4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WitnessSection {
    /// Run with a C2SP add-checkpoint request on stdin; prints cosignature lines.
    /// Example: ["argusctl", "witness", "--state", "/var/lib/w/audit.json", "--request", "-"]
    pub command: Option<Vec<String>>,
    /// How often the newest seal is offered, in milliseconds.
    pub interval_ms: u64,
}

impl Default for WitnessSection {
    fn default() -> Self {
        Self {
            command: None,
            interval_ms: 2_000,
        }
    }
}

/// Where the auditor runs and what happens when it is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditorMode {
    /// A thread of argusd, as the `auditor` principal (the default).
    #[default]
    Internal,
    /// A separate process (`argusd --auditor-only`) reporting its progress.
    External,
    /// No auditor: health says so, and nothing is detected.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LossPolicy {
    /// Lock agents out until an operator releases (fail closed; the default).
    #[default]
    Lockdown,
    /// Say so in health and metrics, and keep accepting.
    Warn,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditorSection {
    pub mode: AuditorMode,
    /// Detector settings (docs/auditor.json shape); default: built in.
    pub config: Option<PathBuf>,
    pub on_auditor_loss: LossPolicy,
    /// The auditor is lost when it is this many entries behind...
    pub max_lag_entries: u64,
    /// ...for this long, or (external) has reported nothing for this long.
    pub loss_after_s: u64,
    /// Run with a new hard kill or lockdown as one JSON line on stdin.
    /// Example: ["/usr/local/bin/page-oncall", "--severity", "P0"]
    pub hook_command: Option<Vec<String>>,
    pub relief: Relief,
}

impl Default for AuditorSection {
    fn default() -> Self {
        Self {
            mode: AuditorMode::Internal,
            config: None,
            on_auditor_loss: LossPolicy::Lockdown,
            max_lag_entries: 50_000,
            loss_after_s: 30,
            hook_command: None,
            relief: Relief::default(),
        }
    }
}

/// The relief valve (seed 002): host pressure moves incident mode to degraded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Relief {
    pub enabled: bool,
    pub sample_s: u64,
    /// 1-minute load average per core above this is pressure.
    pub load_per_core_max: f64,
    /// Available memory below this percentage is pressure.
    pub mem_available_min_pct: f64,
    /// Free space on the log's file system below this percentage is pressure.
    pub disk_free_min_pct: f64,
}

impl Default for Relief {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_s: 5,
            load_per_core_max: 8.0,
            mem_available_min_pct: 5.0,
            disk_free_min_pct: 5.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    pub role: crate::authority::Class,
}

/// Every bound a client can run into. Defaults suit one host with a few
/// hundred agents; all are documented in docs/API.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body (a batch), bytes.
    pub body_bytes_max: usize,
    /// Largest single NDJSON line, bytes (also bounds one streamed entry).
    pub line_bytes_max: usize,
    /// Largest request head (request line plus headers), bytes.
    pub header_bytes_max: usize,
    /// Open connections, TCP and Unix together; more are closed at accept.
    pub connections_max: usize,
    /// Open connections of one peer (an IPv4 address, an IPv6 /64, a
    /// Unix-socket uid), so one peer cannot hold every slot; at most
    /// `connections_max`.
    pub connections_per_peer_max: usize,
    /// Requests a second of one authenticated caller (a token, a configured
    /// peer); 0 is unlimited. The daemon's own user is never limited.
    pub caller_rate_per_s: u64,
    /// Requests a caller may send at once above its rate.
    pub caller_burst: u64,
    /// Requests a second of one peer that proves no identity (no or a wrong
    /// token, an unknown uid); 0 is unlimited.
    pub anonymous_rate_per_s: u64,
    pub anonymous_burst: u64,
    /// Requests a second of every such peer together.
    pub anonymous_total_rate_per_s: u64,
    pub anonymous_total_burst: u64,
    /// A request over its rate waits for its turn up to this long, then
    /// gets 429 with Retry-After; a peer past its bad connections has its
    /// new connections held up to this long.
    pub rate_delay_ms: u64,
    /// Connections a second of one peer that may end in a protocol error
    /// (a malformed or oversized head, a head timeout) before its next
    /// connections are held; 0 is unlimited.
    pub bad_connection_rate_per_s: u64,
    pub bad_connection_burst: u64,
    /// A request head must arrive within this (slowloris).
    pub header_timeout_ms: u64,
    /// A non-streaming request must arrive whole and be answered within this.
    pub request_timeout_ms: u64,
    /// A streaming append that sends nothing for this long is ended.
    pub stream_idle_timeout_ms: u64,
    /// Append requests parsed or waiting for the writer at once.
    pub queue_requests_max: usize,
    /// How long a producer waits for a queue slot before 503 + Retry-After.
    pub overload_wait_ms: u64,
    /// Entries a follower may fall behind before it is disconnected.
    pub follow_buffer_entries: usize,
    /// Idle time between follow heartbeats.
    pub heartbeat_ms: u64,
    /// How long a clean stop waits for requests in flight.
    pub drain_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes_max: 16 << 20,
            line_bytes_max: crate::cli::append::LINE_BYTES_MAX,
            header_bytes_max: 64 << 10,
            connections_max: 4096,
            connections_per_peer_max: 1024,
            caller_rate_per_s: 5_000,
            caller_burst: 10_000,
            anonymous_rate_per_s: 50,
            anonymous_burst: 100,
            anonymous_total_rate_per_s: 200,
            anonymous_total_burst: 400,
            rate_delay_ms: 1_000,
            bad_connection_rate_per_s: 10,
            bad_connection_burst: 20,
            header_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            stream_idle_timeout_ms: 300_000,
            queue_requests_max: 1024,
            overload_wait_ms: 2_000,
            follow_buffer_entries: 16_384,
            heartbeat_ms: 5_000,
            drain_timeout_ms: 30_000,
        }
    }
}

impl Limits {
    pub fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
    /// Refuses limits that would make the daemon unusable or unbounded.
    pub fn check(&self) -> Result<(), String> {
        let rules: [(&str, u64, u64, u64); 21] = [
            ("body_bytes_max", self.body_bytes_max as u64, 1024, 1 << 30),
            ("line_bytes_max", self.line_bytes_max as u64, 1024, 64 << 20),
            (
                "header_bytes_max",
                self.header_bytes_max as u64,
                8192,
                1 << 20,
            ),
            ("connections_max", self.connections_max as u64, 1, 1 << 20),
            (
                "connections_per_peer_max",
                self.connections_per_peer_max as u64,
                1,
                1 << 20,
            ),
            ("caller_rate_per_s", self.caller_rate_per_s, 0, 1_000_000),
            ("caller_burst", self.caller_burst, 1, 10_000_000),
            (
                "anonymous_rate_per_s",
                self.anonymous_rate_per_s,
                0,
                1_000_000,
            ),
            ("anonymous_burst", self.anonymous_burst, 1, 10_000_000),
            (
                "anonymous_total_rate_per_s",
                self.anonymous_total_rate_per_s,
                0,
                1_000_000,
            ),
            (
                "anonymous_total_burst",
                self.anonymous_total_burst,
                1,
                10_000_000,
            ),
            ("rate_delay_ms", self.rate_delay_ms, 0, 60_000),
            (
                "bad_connection_rate_per_s",
                self.bad_connection_rate_per_s,
                0,
                1_000_000,
            ),
            (
                "bad_connection_burst",
                self.bad_connection_burst,
                1,
                10_000_000,
            ),
            ("header_timeout_ms", self.header_timeout_ms, 100, 3_600_000),
            (
                "request_timeout_ms",
                self.request_timeout_ms,
                100,
                3_600_000,
            ),
            (
                "stream_idle_timeout_ms",
                self.stream_idle_timeout_ms,
                100,
                86_400_000,
            ),
            (
                "queue_requests_max",
                self.queue_requests_max as u64,
                1,
                1 << 20,
            ),
            ("overload_wait_ms", self.overload_wait_ms, 0, 600_000),
            (
                "follow_buffer_entries",
                self.follow_buffer_entries as u64,
                16,
                1 << 24,
            ),
            ("heartbeat_ms", self.heartbeat_ms, 50, 3_600_000),
        ];
        for (name, v, lo, hi) in rules {
            if !(lo..=hi).contains(&v) {
                return Err(format!("limits.{name} = {v} is not in {lo}..={hi}"));
            }
        }
        Ok(())
    }
}

impl FileConfig {
    /// Reads the `--config` file: a regular file, at most 1 MiB, strict JSON.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let bytes = crate::log::safe_fs::read_capped(path, 1 << 20)
            .with_context(|| format!("reading config {}", path.display()))?;
        let cfg: Self =
            serde_json::from_slice(&bytes).with_context(|| format!("config {}", path.display()))?;
        cfg.limits
            .check()
            .map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))?;
        Ok(cfg)
    }
}
