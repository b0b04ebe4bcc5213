//! The `argusctl` command tree and its dispatch, in the library so that
//! argusd runs views and decisions by this very code (`server::commands`)
//! and tests and benches run what the binary runs.
use crate::cli::{self, args, Format};
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "argusctl",
    version,
    about = "Flight recorder for autonomous agents: a signed, hash-chained, append-only log",
    long_about = "argusctl creates, appends to, reads and verifies an Argus log.\n\nEvery entry is durable (fdatasync) and covered by an Ed25519-signed seal before `append` acknowledges it. Readers need no lock and only ever see sealed entries.",
    after_help = "Quick start:\n  argusctl demo\n  argusctl init ./audit\n  echo '{\"kind\":\"tool.call_started\",\"job_id\":\"j1\",\"payload\":{\"tool\":\"bash\"}}' | argusctl append ./audit\n  argusctl tail ./audit -f -o json | jq .\n  argusctl verify ./audit --key <hex from init>\n\nWriters wait for the log's writer lock (default 5 s) when another process holds it:\n  argusctl --lock-timeout 30 approvals approve ./audit janus-abc123def456\n  argusctl --lock-timeout 0 append ./audit < entries.jsonl   # fail at once if busy\n\nWhile argusd serves a log (DIR/argusd.json names it), append, tail -f, the views and the\ndecisions go through it, with the same output:\n  argusctl jobs ./audit                                   # via argusd if it runs\n  argusctl --server http://127.0.0.1:7117 --token \"$ARGUS_TOKEN\" approvals list ./audit\n  argusctl --server local jobs ./audit                    # never via argusd"
)]
pub struct Cli {
    /// Seconds a writer (append, approve, policy check, mode set, ...) waits for another
    /// process's writer lock before giving up; 0 fails at once.
    #[arg(long, global = true, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub lock_timeout: Duration,
    /// The argusd to go through (http://HOST:PORT or unix:/path/argusd.sock), or `local`
    /// to never use one. Default: the daemon DIR/argusd.json names, if it is alive.
    /// Example: --server http://127.0.0.1:7117
    #[arg(long, global = true, env = "ARGUS_SERVER", value_name = "URL|local")]
    pub server: Option<String>,
    /// Bearer token for argusd (never printed). Example: --token "$(cat ~/.argus-token)"
    #[arg(
        long,
        global = true,
        env = "ARGUS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// A non-negative, finite number of seconds ("5", "0.5", "0").
fn parse_seconds(s: &str) -> std::result::Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{s:?} is not a non-negative, finite number of seconds"))
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create a new log and its Ed25519 signing key (mode 0600).
    #[command(
        after_help = "Prints {\"log_id\": ..., \"public_key\": ...}. Keep the public key somewhere else: it is what `verify --key` pins.\n\nExamples:\n  argusctl init ./audit\n  argusctl init ./audit --segment-bytes 1048576 --key-file /etc/argus/signing.key\n  argusctl init ./audit --clock-tolerance-s 60"
    )]
    Init {
        dir: PathBuf,
        /// Roll to a new segment once the active one reaches this many bytes (4096..=4294967296).
        #[arg(long, default_value_t = crate::log::dir::DEFAULT_SEGMENT_BYTES,
              value_parser = args::u64_in(args::SEGMENT_BYTES))]
        segment_bytes: u64,
        /// Use this existing key (hex seed, mode 0600) instead of generating DIR/keys/signing.key.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// A writer clock this many seconds off the log's clock is recorded as a clock.skew entry (1..=86400; default 300).
        #[arg(long = "clock-tolerance-s", value_name = "SECONDS",
              value_parser = args::u64_in(args::CLOCK_TOLERANCE_S))]
        clock_tolerance_s: Option<u64>,
    },
    /// Append JSON lines from stdin; print {"seq","hash"} per entry once durable and sealed.
    #[command(
        after_help = "Each line: {\"kind\": \"a.b\", \"job_id\"?, \"step_id\"?, \"agent\"?, \"parent\"?: <seq>, \"payload\"?: <any JSON>}.\nLines that arrive together are committed together. stdin is read on while acks wait for a producer that has not read them yet (held in memory), so a producer may write all its lines before reading any ack; past 64 MiB of unread acks (about 700,000 lines) append stops reading stdin until the producer reads some, and a producer that never does stalls. If the ack stream closes (the reader of stdout goes away), append stops at once, even while it waits for input, and says how many entries it committed and the line to resume from (exit 1). A malformed line stops the run with exit 2, naming the line and field; every line before it stays committed.\nSecrets in agents' payloads are redacted before hashing (docs/REDACTION.md). A payload the scan cannot finish is refused and raises the emergency stop (redaction.failed + lockdown.set, exit 4) until an operator runs `argusctl release`. Exit 4 also while a hard kill or lockdown stands.\n\nExamples:\n  echo '{\"kind\":\"cost.logged\",\"job_id\":\"j1\",\"payload\":{\"usd\":0.02}}' | argusctl append ./audit\n  agent-runner | argusctl append ./audit > acks.jsonl"
    )]
    Append { dir: PathBuf },
    /// Operator configuration: policies, routes, agents, SLA targets, breakers, playbooks.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Print sealed entries in seq order.
    #[command(
        after_help = "Examples:\n  argusctl cat ./audit --from 100 --to 120\n  argusctl cat ./audit -o json | jq 'select(.kind==\"cost.logged\") | .payload.usd'"
    )]
    Cat {
        dir: PathBuf,
        /// First seq to print (any seq; past the head prints nothing).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Last seq to print, inclusive (any seq).
        #[arg(long)]
        to: Option<u64>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show the last entries; with -f, follow new ones as they are sealed.
    #[command(
        after_help = "--kind matches exactly, or a subtree with a trailing .* (tool.*).\n\nExamples:\n  argusctl tail ./audit -n 20\n  argusctl tail ./audit -f --job job-7f3a -o json | jq -c '{seq,kind}'"
    )]
    Tail {
        dir: PathBuf,
        /// Entries to show before following (0..=1000000; 0 with -f shows only new ones).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10,
              value_parser = args::usize_in(args::TAIL_LINES))]
        n: usize,
        #[arg(short = 'f', long)]
        follow: bool,
        #[arg(long)]
        job: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The log at a glance: size, head, log time, and warnings (clock jumps on record, a clock that disagrees, an unrecorded recovery).
    #[command(
        after_help = "Log time is the log's own clock: it advances only by time the log witnessed, so a writer\nwhose clock jumped does not move it (each jump is a clock.skew entry, listed here).\n\nExamples:\n  argusctl status ./audit\n  argusctl status ./audit -o json | jq .warnings"
    )]
    Status {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print entries, segments, bytes, head seq, head hash and log id as JSON.
    #[command(after_help = "Example:\n  argusctl stats ./audit | jq .entries")]
    Stats { dir: PathBuf },
    /// Print the latest signed checkpoint (C2SP tlog-checkpoint / signed-note text).
    #[command(
        after_help = "Save one now, verify against it later to catch truncation or rollback:\n  argusctl checkpoint ./audit > cp-$(date +%F).txt\n  argusctl verify ./audit --key <hex> --checkpoint cp-2026-11-23.txt"
    )]
    Checkpoint { dir: PathBuf },
    /// Write an offline-checkable proof bundle (JSON): an entry's RFC 9162 inclusion proof, or a consistency proof from an old checkpoint.
    #[command(
        after_help = "Inclusion (DIR SEQ): the entry as `cat -o json` prints it, its entry and leaf hashes, the audit path\nand the signed checkpoint it leads to: the latest one, or --checkpoint FILE (it must be signed by\nthe log's key, match the log and cover SEQ).\nConsistency (DIR --consistency OLD): the RFC 9162 proof that the latest checkpoint extends OLD.\nAfter a key rotation (argusctl key rotate) a bundle whose checkpoint a later epoch's key signed\nalso carries key_chain: every key.rotated entry up to that epoch with its inclusion proof, so it\nverifies offline from the log's FIRST key (SPEC §11).\nprove reads every entry hash up to the checkpoint's tree size (a full read of that prefix).\nCheck a bundle offline with `argusctl verify-proof` or `tools/pyverify/verify.py proof`.\n\nExamples:\n  argusctl prove ./audit 42 -o proof-42.json\n  argusctl prove ./audit 42 --checkpoint cp-2026-11-23.txt -o proof-42.json\n  argusctl prove ./audit --consistency cp-2026-11-23.txt -o consistency.json\n  argusctl prove ./audit 42 | jq '.key_chain // [] | map(.seq)'"
    )]
    Prove {
        dir: PathBuf,
        /// The entry to prove inclusion of.
        #[arg(
            required_unless_present = "consistency",
            conflicts_with = "consistency"
        )]
        seq: Option<u64>,
        /// Prove against this saved checkpoint instead of the latest seal.
        #[arg(long, value_name = "FILE", conflicts_with = "consistency")]
        checkpoint: Option<PathBuf>,
        /// Prove that the latest checkpoint extends this older one.
        #[arg(long, value_name = "OLD_CHECKPOINT_FILE")]
        consistency: Option<PathBuf>,
        /// Write the bundle here instead of stdout.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Check a proof bundle from `prove` offline: checkpoint signature(s), entry hash, audit path or consistency proof.
    #[command(
        after_help = "Needs only the bundle and the pinned public key, no log. The entry hash is recomputed from the\nentry's fields (its payload as canonical JSON), then leaf hash, audit path and the signed root.\nAfter a key rotation, pin the log's FIRST key: a bundle with key_chain is followed from it, each\nkey.rotated entry's inclusion and certificate checked, and each checkpoint must be signed by the\nkey of the epoch holding seq tree_size-1 (SPEC §11, §4.7). A bundle without key_chain verifies\nonly against the key that signed its checkpoint.\n\nExit codes: 0 valid, 2 malformed bundle (the field is named), 10 content altered (hash or path\nmismatch, a key_chain entry not in the tree), 11 bad signature or wrong key (a key_chain item\nthat does not certify the next epoch, a checkpoint not by its epoch's key; the item is named).\n\nExamples:\n  argusctl verify-proof proof-42.json --key 3b6a27bc...\n  python3 tools/pyverify/verify.py proof proof-42.json --key 3b6a27bc..."
    )]
    VerifyProof {
        bundle: PathBuf,
        /// The log's Ed25519 public key (64 hex digits), pinned.
        #[arg(long)]
        key: String,
    },
    /// Verify every byte offline: CRCs, entry hashes, chain, seqs, segment links, seals, Merkle root.
    #[command(
        after_help = "Exit codes: 0 intact (warnings allowed), 1 could not run, 2 usage, 10 content altered,\n11 bad signature or wrong key (a --witness's cosignature missing or invalid included),\n12 truncated or rolled back against a checkpoint, 13 structural (missing, foreign or reordered\nsegment, seq gap), 14 equivocation: two --checkpoint files validly signed for one size with\ndifferent roots (proof the key holder showed two histories; both are named).\n\nExamples:\n  argusctl verify ./audit --key 3b6a27bc...\n  argusctl verify ./audit --key 3b6a27bc... --checkpoint cp.txt -o json | jq .failure\n  argusctl verify ./audit --key 3b6a27bc... --checkpoint cp.txt --witness \"$(cat w1.vkey)\" -o json | jq .witnesses"
    )]
    Verify {
        dir: PathBuf,
        /// Pin the Ed25519 public key (64 hex digits). Without it the key in argus.json is used, and the result says so.
        #[arg(long)]
        key: Option<String>,
        /// A trusted checkpoint saved earlier; the log must contain it. Repeatable.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// A witness (verifier key NAME+KEYID+KEY, from `argusctl witness --print-vkey`) that must have cosigned every --checkpoint. Repeatable.
        #[arg(long = "witness", value_name = "VKEY")]
        witnesses: Vec<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Worker threads, 1..=256 (each segment is split into ranges checked in parallel; default: one per core). Example: --threads 1
        #[arg(long, value_name = "N",
              default_value_t = std::thread::available_parallelism().map(|n| n.get().min(256)).unwrap_or(2),
              value_parser = args::usize_in(args::THREADS))]
        threads: usize,
    },
    /// List the event registry: every kind, its required payload fields and meaning.
    #[command(
        after_help = "Any kind under `x.` is accepted without a schema (the extension namespace).\n\nExamples:\n  argusctl kinds\n  argusctl kinds -o json | jq -r 'select(.family==\"proposal\") | .kind'"
    )]
    Kinds {
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Projection state: status (seq, lag, digest per projection) or rebuild from the log.
    #[command(subcommand)]
    Projections(ProjCmd),
    /// Jobs with status, cost and duration (the job index projection).
    #[command(
        after_help = "Examples:\n  argusctl jobs ./audit\n  argusctl jobs ./audit -o json | jq 'select(.status==\"failed\")'"
    )]
    Jobs {
        dir: PathBuf,
        /// Show one job with the seqs of all its entries (from the index, no log scan).
        #[arg(long)]
        job: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Agent registry (PRD-018 §4.1): every agent, or one agent with its version history.
    #[command(
        after_help = "An agent.registered/agent.updated whose version is not greater than the current one\nchanges nothing; --slug lists it under \"ignored entries\".\n\nExamples:\n  argusctl agents ./audit\n  argusctl agents ./audit --slug researcher -o json | jq '.versions[].version'"
    )]
    Agents {
        dir: PathBuf,
        /// Show this agent with its versions and ignored entries.
        #[arg(long)]
        slug: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Resolve the model fallback chain for a task type (PRD-018 §4.3); the first is chosen.
    #[command(
        after_help = "Enabled routes of the task type, sorted by (priority, model), lower priority first.\n--max-cost keeps routes whose max_cost_usd <= USD (a route declaring none is excluded);\n--context-length keeps routes whose conditions.max_context_length >= N (none = no limit).\nA task type with no route at all falls back to the built-in defaults (health_check, greeting\n-> haiku; content_generation, code_review, research_synthesis -> sonnet; strategy_planning\n-> opus), marked source=default. Exit 1 if nothing is usable or the task type is unknown.\n\nExamples:\n  argusctl route ./audit code_review\n  argusctl route ./audit research_synthesis --max-cost 0.50 --context-length 100000 -o json | jq -r .chosen.model"
    )]
    Route {
        dir: PathBuf,
        task_type: String,
        /// Only routes whose max_cost_usd is at most this (0..=1e9).
        #[arg(long = "max-cost", value_name = "USD", value_parser = args::usd)]
        max_cost: Option<f64>,
        /// Only routes that accept a context this long (1..=1000000000 tokens).
        #[arg(long = "context-length", value_name = "N", value_parser = args::u64_in(args::CONTEXT_LENGTH))]
        context_length: Option<u64>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Feature flags (PRD-018 §4.4): is-enabled evaluates one for a context, set appends flag.set.
    #[command(subcommand)]
    Flag(cli::flags::FlagCmd),
    /// Every feature flag with its rollout, targets and expiry.
    #[command(
        after_help = "Examples:\n  argusctl flags ./audit\n  argusctl flags ./audit -o json | jq 'select(.expired)'"
    )]
    Flags {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Memory proposals (PRD-018 §4.8) with gate status; --sweep records the auto-approvals.
    #[command(
        after_help = "Status: pending | auto_approvable | approved | rejected | deferred. A pending proposal is\nauto_approvable when its score >= 7.0 and at least one source has authority >= 0.7.\n--sweep appends memory.proposal.approved {reviewer: \"auto\"} for each auto_approvable one,\nin one commit, then lists.\n\nExamples:\n  argusctl memory ./audit --status auto_approvable\n  argusctl memory ./audit --sweep -o json | jq 'select(.reviewer==\"auto\")'"
    )]
    Memory {
        dir: PathBuf,
        /// Approve every auto_approvable proposal (one memory.proposal.approved entry each).
        #[arg(long)]
        sweep: bool,
        /// Only proposals with this status.
        #[arg(long)]
        status: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Approval queue: pending proposals, approve/reject (bound to a parameter hash), expiry sweep.
    #[command(
        subcommand,
        after_help = "Examples:\n  argusctl approvals list ./audit\n  argusctl approvals show ./audit janus-abc123def456\n  argusctl approvals approve ./audit janus-abc123def456 --reason 'read-only'\n  argusctl approvals reject ./audit janus-abc123def456 --reason 'Insufficient rationale'\n  argusctl approvals sweep ./audit"
    )]
    Approvals(cli::approvals::ApprovalsCmd),
    /// Signing-key epochs: rotate the key (certified by the outgoing key, which is erased), or show every epoch's public key.
    #[command(
        subcommand,
        after_help = "Examples:\n  argusctl key rotate ./audit\n  argusctl key show ./audit -o json"
    )]
    Key(cli::key::KeyCmd),
    /// Operating mode (alpha, beta, omega): show it, or change it when the log shows the preconditions.
    #[command(
        subcommand,
        after_help = "Examples:\n  argusctl mode show ./audit\n  argusctl mode set ./audit beta --reason 'First Citizen authorization'"
    )]
    Mode(cli::mode::ModeCmd),
    /// Dead-letter queue (PRD-018 §4.11): list, show, replay or discard dead-lettered jobs.
    #[command(subcommand)]
    Dlq(cli::dlq::DlqCmd),
    /// SLA per job type (PRD-018 §4.9): p50/p95 time to first update and to completion, breaches.
    #[command(
        after_help = "Defaults (first update / completion): health_check 5s/30s, revenue_overview 5s/60s,\nlist_projects 5s/30s, research_synthesis 5s/120s, content_generation 5s/180s; sla.target_set\noverrides per type for jobs received after it. A running job past its target is a breach already.\n--breaches lists breaches that no sla.breach entry records yet.\n\nExamples:\n  argusctl sla ./audit\n  argusctl sla ./audit --breaches -o json | jq -c '{job_id,metric,actual_ms}'"
    )]
    Sla {
        dir: PathBuf,
        /// List breaches not yet recorded as sla.breach entries.
        #[arg(long, conflicts_with = "jobs")]
        breaches: bool,
        /// One line per job with its measured times.
        #[arg(long)]
        jobs: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Circuit breakers per tool (PRD-018 §4.12) as of now; --check TOOL asks whether a call may start.
    #[command(
        after_help = "Unconfigured tools use threshold 5 failures in 60 s, probe after 30 s, no fallback\n(breaker.configured overrides). Half-open admits exactly one probe call.\n\nExamples:\n  argusctl breakers ./audit\n  argusctl breakers ./audit --check browser.fetch -o json | jq .allow"
    )]
    Breakers {
        dir: PathBuf,
        /// Print {tool, state, allow, fallback} for one tool.
        #[arg(long, value_name = "TOOL")]
        check: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Worker health (PRD-018 §4.13): dead workers and stuck claims as of now, with evidence seqs.
    #[command(
        after_help = "dead: last heartbeat older than --stale-after-s, or heartbeat.stale reported since.\nstuck: a claim held longer than --stuck-after-s, or past its lease without renewal.\nReporting only: nothing is released or requeued.\n\nExamples:\n  argusctl workers ./audit\n  argusctl workers ./audit --stale-after-s 30 -o json | jq 'select(.status==\"dead\") | .claims'"
    )]
    Workers {
        dir: PathBuf,
        /// Seconds without a heartbeat before a worker is dead (0..=31622400, a year).
        #[arg(long, value_name = "S", default_value_t = 90, value_parser = args::u64_in(args::AGE_SECONDS))]
        stale_after_s: u64,
        /// Seconds a claim may be held before it is stuck (0..=31622400, a year).
        #[arg(long, value_name = "S", default_value_t = 1800, value_parser = args::u64_in(args::AGE_SECONDS))]
        stuck_after_s: u64,
        /// Also report workers whose last heartbeat's rss_mb exceeds this (0..=16777216).
        #[arg(long, value_name = "MB", value_parser = args::megabytes)]
        rss_max_mb: Option<f64>,
        /// Also list healthy workers (status "ok").
        #[arg(long)]
        all: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Policy service: check a tool call against budgets, rate limits, allowlists and safety rules; list policies.
    #[command(subcommand)]
    Policy(cli::policy::PolicyCmd),
    /// Budget ledger per agent for a UTC day (log time): spent, daily limit, remaining, cpu seconds.
    #[command(
        after_help = "Days are UTC days of entry time; the default is today (or the newest entry's day, if later).\nWhile in incident mode the limits shown are halved.\n\nExamples:\n  argusctl budget ./audit\n  argusctl budget ./audit --agent researcher --day 2026-11-23 -o json | jq .remaining_usd"
    )]
    Budget {
        dir: PathBuf,
        #[arg(long)]
        agent: Option<String>,
        /// UTC day as YYYY-MM-DD.
        #[arg(long)]
        day: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Incident mode: normal, degraded or incident, with the reason and since when.
    #[command(
        after_help = "Declared with incident.declared {level, reason}, ended with incident.resolved; also entered\nautomatically (error rate > 20% over 5 min, spend spike, > 3 stale workers in 5 min).\n\nExamples:\n  argusctl incident ./audit\n  argusctl incident ./audit -o json | jq -r .state"
    )]
    Incident {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// API tokens for argusd: add (prints the token once), list, revoke.
    #[command(subcommand)]
    Token(cli::token::TokenCmd),
    /// Stop agents now: a hard kill of everything, or with --job/--agent a soft kill of one scope.
    #[command(
        after_help = "A hard kill appends kill.hard (P0) and writes DIR/control/hard_kill.flag; while it stands\nargusd answers every agent append with 423 and `policy check` says allowed: false. A soft\nkill (kill.soft) refuses only its job or agent. Operators and the auditor still write.\nLift it with `argusctl release`.\n\nExamples:\n  argusctl kill ./audit --reason 'agent looping on payments API'\n  argusctl kill ./audit --agent coder --reason 'spend spike, see seq 4411'\n  argusctl kill ./audit --job job-7f3a --reason 'wrong customer'"
    )]
    Kill {
        dir: PathBuf,
        /// Why (recorded in the entry and the flag; required).
        #[arg(long)]
        reason: String,
        /// Soft kill: refuse only this job's entries.
        #[arg(long)]
        job: Option<String>,
        /// Soft kill: refuse only this agent's entries.
        #[arg(long)]
        agent: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Refuse agents' writes until released (lockdown.set, P1; DIR/control/write_lockdown.flag).
    #[command(
        after_help = "Examples:\n  argusctl lockdown ./audit --reason 'investigating seq 9120'\n  argusctl release ./audit --reason 'false positive: batch re-index'"
    )]
    Lockdown {
        dir: PathBuf,
        #[arg(long)]
        reason: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Operator override: lift the standing hard kill and lockdown (or the one --seq names) and close the incident.
    #[command(
        after_help = "Appends kill.released / lockdown.released naming the decision's seq, removes the flag\nfiles, and appends incident.resolved when no kill or lockdown is left. Soft kills are\nreleased one at a time by their seq (see `argusctl control`). Agents may not release.\n\nExamples:\n  argusctl release ./audit --reason 'false positive: nightly batch'\n  argusctl release ./audit --seq 4412 --reason 'coder fixed, budget raised'"
    )]
    Release {
        dir: PathBuf,
        /// Why (required: the override is on the record).
        #[arg(long)]
        reason: String,
        /// Release only the decision with this seq (a soft kill, the hard kill, or the lockdown).
        #[arg(long)]
        seq: Option<u64>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Erase one entry's payload for readers: an operator's entry.redacted naming its seq, payload hash and why.
    #[command(after_help = cli::redact::AFTER_HELP)]
    Redact {
        dir: PathBuf,
        /// The entry whose payload is erased.
        seq: u64,
        /// Why (required, at most 1024 characters; on the record beside the erasure).
        #[arg(long)]
        reason: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// What stands: hard kill, lockdown, soft kills, incident, and flag files the log does not explain.
    #[command(
        after_help = "Examples:\n  argusctl control ./audit\n  argusctl control ./audit -o json | jq .hard_kill.reason"
    )]
    Control {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The auditor's detections (anomaly.detected), newest last.
    #[command(
        after_help = "Examples:\n  argusctl anomalies ./audit -n 20\n  argusctl anomalies ./audit --severity critical -o json | jq -c '{seq,detector,series,score}'"
    )]
    Anomalies {
        dir: PathBuf,
        /// How many to show (the newest; 1..=1000000).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 50,
              value_parser = args::usize_in(args::TAIL_LINES))]
        n: usize,
        /// Only this severity.
        #[arg(long, value_parser = ["info", "warning", "critical"])]
        severity: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Replay the auditor over the log offline: print every entry it would write, write nothing.
    #[command(
        after_help = "The auditor is a deterministic fold of the log: a live run inside argusd, a restarted\nrun and this replay produce the same detections at the same trigger seqs. Each output\nsays where the log already holds it (written_seq), so a gap shows an auditor that was\ndown or a record that was never written.\n\nExamples:\n  argusctl audit ./audit\n  argusctl audit ./audit --from 5000 -o json | jq -c 'select(.kind==\"anomaly.detected\") | .payload'\n  argusctl audit ./audit --config tuned.json   # what a different tuning would have said"
    )]
    Audit {
        dir: PathBuf,
        /// Print only outputs triggered at or after this seq (the fold still starts at 0).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Auditor config (JSON, docs/auditor.json shape); default: the built-in defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run a command as an agent's governed tool call: checked (kill switches, policy, breaker), recorded, limited, optionally sandboxed.
    #[command(after_help = cli::exec::AFTER_HELP)]
    Exec(cli::exec::ExecArgs),
    /// One job's timeline from the job index: steps, tool calls paired with durations, costs, decisions.
    #[command(
        after_help = "Reads only the job's own entries (the job index) and the kill-switch decisions made\nwhile it ran, never the whole log; works on a live log and on a read-only copy.\nRows marked * were recorded by Argus (auditor, operator, argus), not the job's agents.\nThe summary re-derives status, cost and SLA figures from the entries and says whether\nthe job index agrees.\n\nExamples:\n  argusctl replay ./audit job-7f3a\n  argusctl replay ./audit job-7f3a --from-step s2 --detailed\n  argusctl replay ./audit job-7f3a -o json | jq -c 'select(.kind==\"tool.call_failed\")'\n  argusctl replay ./audit job-9c21 --requeue      # record a new run (job.replayed)\n  argusctl replay ./audit job-9c21 --proof job-9c21.proof.json   # then, offline:\n  argusctl verify-proof job-9c21.proof.json --key $(jq -r .public_key ./audit/argus.json)"
    )]
    Replay {
        dir: PathBuf,
        job: String,
        /// Start the timeline at this step's first entry.
        #[arg(long, value_name = "STEP")]
        from_step: Option<String>,
        /// Stop at this seq (the job as it stood then).
        #[arg(long, value_name = "SEQ")]
        until_seq: Option<u64>,
        /// Show every entry's parent and whole payload.
        #[arg(long)]
        detailed: bool,
        /// Append job.replayed (operator) linked to the original: a new run, recorded.
        #[arg(long)]
        requeue: bool,
        /// Also write a job proof bundle to OUT: every entry shown, each with its inclusion proof against the latest signed checkpoint.
        #[arg(long, value_name = "OUT")]
        proof: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One entry whole: fields, hashes, segment and offset, the seal that covers it, parent and children.
    #[command(
        after_help = "Children are the entries whose parent is SEQ. A child always comes after its parent, so they\nare found by scanning forward from SEQ+1, at most --scan entries (default 1000000); the output\nsays which seqs were searched. Exit 2 if SEQ is past the head.\n\nExamples:\n  argusctl inspect ./audit 42\n  argusctl inspect ./audit 42 -o json | jq '[.links.children[].seq]'\n  argusctl inspect ./audit 42 -o json | jq -r .seal.checkpoint > cp-42.txt\n  argusctl inspect ./audit 0 --scan 0   # no search for children"
    )]
    Inspect {
        dir: PathBuf,
        seq: u64,
        /// Entries after SEQ searched for children (0..=1000000000; 0: none).
        #[arg(long, value_name = "N", default_value_t = cli::inspect::DEFAULT_SCAN,
              value_parser = args::u64_in(args::INSPECT_SCAN))]
        scan: u64,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare two runs of a job (a replay against its original): inputs, steps, outputs, timing, costs.
    #[command(
        after_help = "Steps are tool calls. They are paired by step_id (the nth call of a step with the nth), then the\nunpaired ones by tool name in order; the rest are listed as only in A or only in B. A step's\nduration is the duration_ms its end reports, else the log time from its start to its end. Wall\ntime is log time from a run's first entry to its last (times shown are the entries' own).\nExit 1 if either job is not in the log.\n\nExamples:\n  argusctl diff ./audit job-7f3a job-7f3a-replay\n  argusctl diff ./audit job-7f3a job-7f3a-replay -o json | jq '.steps[] | select(.changed)'\n  argusctl diff ./audit job-a job-b -o json | jq .costs.delta_usd"
    )]
    Diff {
        dir: PathBuf,
        job_a: String,
        job_b: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Stream sealed entries with their hashes, in seq order, as JSON lines or RFC 7464 (for SIEM pipelines).
    #[command(after_help = cli::export::AFTER_HELP)]
    Export(cli::export::ExportArgs),
    /// Read an export into a new, empty log, keeping each entry's actor (and so its writer class).
    #[command(after_help = cli::import::AFTER_HELP)]
    Import(cli::import::ImportArgs),
    /// Sign a file with the log's key: writes FILE.sig and records artifact.signed (operator).
    #[command(after_help = cli::artifact::SIGN_HELP)]
    Sign(cli::artifact::SignArgs),
    /// Check a file against its signature and the log; a mismatch is recorded (artifact.tamper_detected) and exits 10, 11 or 14.
    #[command(name = "verify-artifact", after_help = cli::artifact::VERIFY_HELP)]
    VerifyArtifact(cli::artifact::VerifyArgs),
    /// Rewrite sealed segments: erase redacted payloads, then compress every sealed segment but the last (zstd blocks); readers and verify read them as before.
    #[command(after_help = cli::compact::AFTER_HELP)]
    Compact(cli::compact::CompactArgs),
    /// Full-text search over payloads (the retrieval index, caught up first); flags prompt injection.
    #[command(after_help = cli::search::AFTER_HELP)]
    Search(cli::search::SearchArgs),
    /// Cosign the log's checkpoints as an independent witness: only if each extends the last one cosigned; rollbacks and forks are refused.
    Witness(cli::witness::WitnessArgs),
    // @@commands: projection view/command variants, above this marker
    /// Create a demo log, serve it with argusd while several agents write at once, verify it, show it.
    #[command(after_help = "Example:\n  argusctl demo\n  argusctl demo --dir /tmp/argus-demo")]
    Demo {
        /// Where to create the log (default: a new directory under $TMPDIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Apply configuration entries (JSON lines on stdin) as the operator; all commit together or none.
    #[command(
        after_help = "Each line has the shape `append` takes: {\"kind\", \"job_id\"?, \"agent\"?, \"payload\"}. Only\nconfiguration kinds are accepted: policy.set/removed, route.set/removed, agent.registered/updated/\ndisabled, sla.target_set, breaker.configured, playbook.set/removed, flag.removed and manual\nmemory reviews. Decisions with a command of their own (approve, reject, mode set, flag set,\ndlq replay) are refused here, naming that command; agents' work belongs to `append`.\nThe entries are recorded with the operator class and your operating-system identity.\n\nExamples:\n  echo '{\"kind\":\"policy.set\",\"payload\":{\"policy_id\":\"budget-r\",\"policy_type\":\"budget\",\"scope\":\"agent:researcher\",\"config\":{\"daily_usd\":5}}}' \\\n    | argusctl config apply ./audit\n  argusctl config apply ./audit < routes.jsonl"
    )]
    Apply { dir: PathBuf },
}

#[derive(Subcommand)]
pub enum ProjCmd {
    /// Each projection's applied seq, lag behind the log and state digest (after catching up).
    #[command(
        after_help = "Two processes never share the store: the second waits up to 30 s, then fails.\n\nExample:\n  argusctl projections status ./audit -o json | jq .state_digest"
    )]
    Status {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Throw away projection state (all, or NAME) and rebuild it from the log.
    #[command(
        after_help = "Projections are caches: deleting DIR/projections and rebuilding gives identical digests.\n\nExamples:\n  argusctl projections rebuild ./audit\n  argusctl projections rebuild ./audit jobs\n  argusctl projections rebuild ./audit --threads 1"
    )]
    Rebuild {
        dir: PathBuf,
        name: Option<String>,
        /// Threads to rebuild with (default: one per core, at most 4). The
        /// result is identical for any count.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: Option<u16>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

// One arm per command: long, but a table to read, not logic to follow.
pub fn run(cli: Cli) -> Result<i32> {
    cli::state::set_lock_timeout(cli.lock_timeout);
    if let Cmd::Exec(args) = cli.cmd {
        // exec runs here, never inside argusd; only its checks and entries
        // go through the daemon that serves DIR, if one does.
        let remote = cli::remote::find(Some(&args.dir), cli.server.as_deref(), cli.token)?;
        return cli::exec::run(args, remote);
    }
    // sign and verify-artifact read the file and the key here; only the
    // record goes through the argusd that serves DIR, if one does.
    if let Cmd::Sign(args) = &cli.cmd {
        let remote = cli::remote::find(Some(&args.dir), cli.server.as_deref(), cli.token)?;
        return cli::artifact::sign(args, remote);
    }
    if let Cmd::VerifyArtifact(args) = &cli.cmd {
        let remote = cli::remote::find(Some(&args.dir), cli.server.as_deref(), cli.token)?;
        return cli::artifact::verify(args, remote);
    }
    dispatch(cli.cmd)
}

/// Runs one command; argusd runs views and decisions through this too.
pub fn dispatch(cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Init {
            dir,
            segment_bytes,
            key_file,
            clock_tolerance_s,
        } => cli::init::run(dir, segment_bytes, key_file, clock_tolerance_s).map(|_| 0),
        Cmd::Append { dir } => cli::append::run(&dir),
        Cmd::Config(ConfigCmd::Apply { dir }) => cli::config::apply(&dir),
        Cmd::Cat {
            dir,
            from,
            to,
            format,
        } => cli::read::cat(&dir, from, to, format).map(|_| 0),
        Cmd::Tail {
            dir,
            n,
            follow,
            job,
            kind,
            format,
        } => cli::tail::run(
            &dir,
            n,
            follow,
            cli::tail::Filter {
                job,
                kind,
                agent: None,
            },
            format,
        )
        .map(|_| 0),
        Cmd::Status { dir, format } => cli::status::run(&dir, format).map(|_| 0),
        Cmd::Stats { dir } => cli::info::stats(&dir).map(|_| 0),
        Cmd::Checkpoint { dir } => cli::info::checkpoint(&dir).map(|_| 0),
        Cmd::Prove {
            dir,
            seq,
            checkpoint,
            consistency,
            output,
        } => cli::proof::prove(&dir, seq, checkpoint, consistency, output),
        Cmd::VerifyProof { bundle, key } => cli::proof::verify_proof(&bundle, &key),
        Cmd::Verify {
            dir,
            key,
            checkpoints,
            witnesses,
            format,
            threads,
        } => cli::verify::run(
            &dir,
            key,
            cli::verify::Trusted {
                checkpoints,
                witnesses,
            },
            format,
            threads,
        ),
        Cmd::Demo { dir } => cli::demo::run(dir).map(|_| 0),
        Cmd::Agents { dir, slug, format } => {
            cli::agents::run(&dir, slug.as_deref(), format).map(|_| 0)
        }
        Cmd::Route {
            dir,
            task_type,
            max_cost,
            context_length,
            format,
        } => cli::routes::resolve(
            &dir,
            &task_type,
            crate::projections::routes::Constraints {
                max_cost_usd: max_cost,
                context_length,
            },
            format,
        )
        .map(|_| 0),
        Cmd::Flag(c) => cli::flags::dispatch(c).map(|_| 0),
        Cmd::Flags { dir, format } => cli::flags::list(&dir, format).map(|_| 0),
        Cmd::Memory {
            dir,
            sweep,
            status,
            format,
        } => cli::memory::run(&dir, sweep, status.as_deref(), format).map(|_| 0),
        Cmd::Approvals(c) => cli::approvals::run(c),
        Cmd::Key(c) => cli::key::run(c),
        Cmd::Mode(c) => cli::mode::run(c),
        Cmd::Dlq(c) => cli::dlq::dispatch(c).map(|_| 0),
        Cmd::Sla {
            dir,
            breaches,
            jobs,
            format,
        } => {
            let show = match (breaches, jobs) {
                (true, _) => cli::sla::Show::Unrecorded,
                (_, true) => cli::sla::Show::Jobs,
                _ => cli::sla::Show::Summary,
            };
            cli::sla::run(&dir, show, format).map(|_| 0)
        }
        Cmd::Breakers { dir, check, format } => {
            cli::breakers::run(&dir, check.as_deref(), format).map(|_| 0)
        }
        Cmd::Workers {
            dir,
            stale_after_s,
            stuck_after_s,
            rss_max_mb,
            all,
            format,
        } => cli::workers::run(
            &dir,
            crate::projections::workers::Thresholds {
                stale_after_ms: stale_after_s.saturating_mul(1000),
                stuck_after_ms: stuck_after_s.saturating_mul(1000),
                rss_max_mb,
            },
            all,
            format,
        )
        .map(|_| 0),
        Cmd::Policy(c) => cli::policy::run(c),
        Cmd::Budget {
            dir,
            agent,
            day,
            format,
        } => cli::policy::budget(&dir, agent.as_deref(), day.as_deref(), format).map(|_| 0),
        Cmd::Incident { dir, format } => cli::incident::show(&dir, format).map(|_| 0),
        Cmd::Token(c) => cli::token::dispatch(c).map(|_| 0),
        Cmd::Kill {
            dir,
            reason,
            job,
            agent,
            format,
        } => cli::control::kill(&dir, &reason, job.as_deref(), agent.as_deref(), format).map(|_| 0),
        Cmd::Lockdown {
            dir,
            reason,
            format,
        } => cli::control::lockdown(&dir, &reason, format).map(|_| 0),
        Cmd::Release {
            dir,
            reason,
            seq,
            format,
        } => cli::control::release(&dir, &reason, seq, format).map(|_| 0),
        Cmd::Control { dir, format } => cli::control::show(&dir, format).map(|_| 0),
        Cmd::Anomalies {
            dir,
            n,
            severity,
            format,
        } => cli::control::anomalies(&dir, n, severity.as_deref(), format).map(|_| 0),
        Cmd::Audit {
            dir,
            from,
            config,
            format,
        } => cli::audit::run(&dir, from, config.as_deref(), format),
        Cmd::Exec(args) => {
            let remote = cli::remote::find(Some(&args.dir), None, None)?;
            cli::exec::run(args, remote)
        }
        Cmd::Replay {
            dir,
            job,
            from_step,
            until_seq,
            detailed,
            requeue,
            proof,
            format,
        } => cli::replay::run(
            &dir,
            &cli::replay::Opts {
                job: &job,
                from_step: from_step.as_deref(),
                until_seq,
                detailed,
                requeue,
                proof: proof.as_deref(),
                format,
            },
        ),
        Cmd::Inspect {
            dir,
            seq,
            scan,
            format,
        } => cli::inspect::run(&dir, seq, scan, format),
        Cmd::Diff {
            dir,
            job_a,
            job_b,
            format,
        } => cli::diff::run(&dir, &job_a, &job_b, format).map(|_| 0),
        Cmd::Export(args) => cli::export::run(&args).map(|_| 0),
        Cmd::Compact(args) => cli::compact::run(&args),
        Cmd::Import(args) => cli::import::run(&args),
        Cmd::Sign(args) => cli::artifact::sign(&args, None),
        Cmd::VerifyArtifact(args) => cli::artifact::verify(&args, None),
        Cmd::Redact {
            dir,
            seq,
            reason,
            format,
        } => cli::redact::run(&dir, seq, &reason, format),
        Cmd::Search(args) => cli::search::run(&args),
        Cmd::Witness(args) => cli::witness::run(&args),
        // @@dispatch: match arms for the variants above, above this marker
        Cmd::Kinds { format } => cli::kinds::list(format).map(|_| 0),
        Cmd::Jobs {
            dir,
            job: None,
            format,
        } => cli::jobs::list(&dir, format).map(|_| 0),
        Cmd::Jobs {
            dir,
            job: Some(j),
            format,
        } => cli::jobs::show(&dir, &j, format).map(|_| 0),
        Cmd::Projections(ProjCmd::Status { dir, format }) => {
            cli::projections::status(&dir, format).map(|_| 0)
        }
        Cmd::Projections(ProjCmd::Rebuild {
            dir,
            name,
            threads,
            format,
        }) => cli::projections::rebuild(&dir, name.as_deref(), threads.map(usize::from), format)
            .map(|_| 0),
    }
}

/// The exit code for a failed command, by the variant of the first engine
/// error in its chain, never by its text: a directory or `argus.json` that
/// is not a usable log is a usage error (2); anything else could not run (1).
pub fn exit_code(e: &anyhow::Error) -> i32 {
    let Some(err) = e.chain().find_map(|c| c.downcast_ref::<crate::Error>()) else {
        return cli::EXIT_ERROR;
    };
    match err {
        crate::Error::NotALog { .. }
        | crate::Error::AlreadyALog { .. }
        | crate::Error::NotEmpty { .. }
        | crate::Error::BadMeta { .. } => cli::EXIT_USAGE,
        _ => cli::EXIT_ERROR,
    }
}

impl Cmd {
    /// The log directory the command names, so argusd can put its own in
    /// its place whatever the caller wrote; `None` for commands that name
    /// none (`kinds`, `demo`).
    pub fn dir_mut(&mut self) -> Option<&mut PathBuf> {
        // One arm per command that names a log; a new command must be added
        // here or argusd will refuse it as naming none.
        use cli::approvals::ApprovalsCmd as A;
        use cli::dlq::DlqCmd as D;
        use cli::flags::FlagCmd as F;
        use cli::mode::ModeCmd as M;
        use cli::policy::PolicyCmd as P;
        match self {
            Cmd::Init { dir, .. }
            | Cmd::Append { dir }
            | Cmd::Config(ConfigCmd::Apply { dir })
            | Cmd::Cat { dir, .. }
            | Cmd::Tail { dir, .. }
            | Cmd::Status { dir, .. }
            | Cmd::Stats { dir }
            | Cmd::Checkpoint { dir }
            | Cmd::Prove { dir, .. }
            | Cmd::Verify { dir, .. }
            | Cmd::Projections(ProjCmd::Status { dir, .. } | ProjCmd::Rebuild { dir, .. })
            | Cmd::Jobs { dir, .. }
            | Cmd::Agents { dir, .. }
            | Cmd::Route { dir, .. }
            | Cmd::Flag(F::IsEnabled { dir, .. } | F::Set { dir, .. })
            | Cmd::Flags { dir, .. }
            | Cmd::Memory { dir, .. }
            | Cmd::Approvals(
                A::List { dir, .. }
                | A::Show { dir, .. }
                | A::Approve { dir, .. }
                | A::Reject { dir, .. }
                | A::Sweep { dir, .. },
            )
            | Cmd::Mode(M::Show { dir, .. } | M::Set { dir, .. })
            | Cmd::Key(cli::key::KeyCmd::Rotate { dir, .. } | cli::key::KeyCmd::Show { dir, .. })
            | Cmd::Dlq(
                D::List { dir, .. }
                | D::Show { dir, .. }
                | D::Replay { dir, .. }
                | D::Discard { dir, .. },
            )
            | Cmd::Sla { dir, .. }
            | Cmd::Breakers { dir, .. }
            | Cmd::Workers { dir, .. }
            | Cmd::Policy(P::Check { dir, .. } | P::List { dir, .. })
            | Cmd::Budget { dir, .. }
            | Cmd::Incident { dir, .. }
            | Cmd::Kill { dir, .. }
            | Cmd::Lockdown { dir, .. }
            | Cmd::Release { dir, .. }
            | Cmd::Redact { dir, .. }
            | Cmd::Control { dir, .. }
            | Cmd::Anomalies { dir, .. }
            | Cmd::Audit { dir, .. }
            | Cmd::Replay { dir, .. }
            | Cmd::Inspect { dir, .. }
            | Cmd::Diff { dir, .. }
            | Cmd::Exec(cli::exec::ExecArgs { dir, .. })
            | Cmd::Export(cli::export::ExportArgs { dir, .. })
            | Cmd::Compact(cli::compact::CompactArgs { dir, .. })
            | Cmd::Import(cli::import::ImportArgs { dir, .. })
            | Cmd::Sign(cli::artifact::SignArgs { dir, .. })
            | Cmd::VerifyArtifact(cli::artifact::VerifyArgs { dir, .. })
            | Cmd::Search(cli::search::SearchArgs { dir, .. })
            | Cmd::Token(
                cli::token::TokenCmd::Add { dir, .. }
                | cli::token::TokenCmd::List { dir, .. }
                | cli::token::TokenCmd::Revoke { dir, .. },
            ) => Some(dir),
            // A witness is another party: its state is its own, never argusd's.
            Cmd::Kinds { .. } | Cmd::Demo { .. } | Cmd::VerifyProof { .. } | Cmd::Witness(_) => {
                None
            }
        }
    }
}

impl Cmd {
    /// The token file a `token` command names, so argusd can put its own
    /// in its place (a caller must not make the daemon write elsewhere).
    pub fn tokens_file_mut(&mut self) -> Option<&mut Option<PathBuf>> {
        use cli::token::TokenCmd as T;
        match self {
            Cmd::Token(
                T::Add { tokens, .. } | T::List { tokens, .. } | T::Revoke { tokens, .. },
            ) => Some(tokens),
            _ => None,
        }
    }
}
