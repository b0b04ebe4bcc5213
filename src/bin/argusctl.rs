//! argusctl: the operator's command line for an Argus log.
use anyhow::Result;
use argus::cli::{self, Format};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "argusctl",
    version,
    about = "Flight recorder for autonomous agents: a signed, hash-chained, append-only log",
    long_about = "argusctl creates, appends to, reads and verifies an Argus log.\n\nEvery entry is durable (fdatasync) and covered by an Ed25519-signed seal before `append` acknowledges it. Readers need no lock and only ever see sealed entries.",
    after_help = "Quick start:\n  argusctl demo\n  argusctl init ./audit\n  echo '{\"kind\":\"tool.call_started\",\"job_id\":\"j1\",\"payload\":{\"tool\":\"bash\"}}' | argusctl append ./audit\n  argusctl tail ./audit -f -o json | jq .\n  argusctl verify ./audit --key <hex from init>"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a new log and its Ed25519 signing key (mode 0600).
    #[command(
        after_help = "Prints {\"log_id\": ..., \"public_key\": ...}. Keep the public key somewhere else: it is what `verify --key` pins.\n\nExamples:\n  argusctl init ./audit\n  argusctl init ./audit --segment-bytes 1048576 --key-file /etc/argus/signing.key"
    )]
    Init {
        dir: PathBuf,
        /// Roll to a new segment once the active one reaches this many bytes.
        #[arg(long, default_value_t = argus::log::dir::DEFAULT_SEGMENT_BYTES)]
        segment_bytes: u64,
        /// Use this existing key (hex seed, mode 0600) instead of generating DIR/keys/signing.key.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Append JSON lines from stdin; print {"seq","hash"} per entry once durable and sealed.
    #[command(
        after_help = "Each line: {\"kind\": \"a.b\", \"job_id\"?, \"step_id\"?, \"agent\"?, \"parent\"?: <seq>, \"payload\"?: <any JSON>}.\nLines that arrive together are committed together. A malformed line stops the run with exit 2, naming the line and field; every line before it stays committed.\n\nExamples:\n  echo '{\"kind\":\"cost.logged\",\"job_id\":\"j1\",\"payload\":{\"usd\":0.02}}' | argusctl append ./audit\n  agent-runner | argusctl append ./audit > acks.jsonl"
    )]
    Append { dir: PathBuf },
    /// Print sealed entries in seq order.
    #[command(
        after_help = "Examples:\n  argusctl cat ./audit --from 100 --to 120\n  argusctl cat ./audit -o json | jq 'select(.kind==\"cost.logged\") | .payload.usd'"
    )]
    Cat {
        dir: PathBuf,
        #[arg(long, default_value_t = 0)]
        from: u64,
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
        #[arg(short = 'n', long = "lines", default_value_t = 10)]
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
    /// Print entries, segments, bytes, head seq, head hash and log id as JSON.
    #[command(after_help = "Example:\n  argusctl stats ./audit | jq .entries")]
    Stats { dir: PathBuf },
    /// Print the latest signed checkpoint (C2SP tlog-checkpoint / signed-note text).
    #[command(
        after_help = "Save one now, verify against it later to catch truncation or rollback:\n  argusctl checkpoint ./audit > cp-$(date +%F).txt\n  argusctl verify ./audit --key <hex> --checkpoint cp-2026-11-23.txt"
    )]
    Checkpoint { dir: PathBuf },
    /// Verify every byte offline: CRCs, entry hashes, chain, seqs, segment links, seals, Merkle root.
    #[command(
        after_help = "Exit codes: 0 intact (warnings allowed), 1 could not run, 2 usage, 10 content altered,\n11 bad signature or wrong key, 12 truncated or rolled back against a checkpoint,\n13 structural (missing, foreign or reordered segment, seq gap).\n\nExamples:\n  argusctl verify ./audit --key 3b6a27bc...\n  argusctl verify ./audit --key 3b6a27bc... --checkpoint cp.txt -o json | jq .failure"
    )]
    Verify {
        dir: PathBuf,
        /// Pin the Ed25519 public key (64 hex digits). Without it the key in argus.json is used, and the result says so.
        #[arg(long)]
        key: Option<String>,
        /// A trusted checkpoint saved earlier; the log must contain it. Repeatable.
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Worker threads (segments are verified in parallel).
        #[arg(long, default_value_t = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))]
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
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    // @@commands: projection view/command variants, above this marker
    /// Create a demo log, append a realistic agent session, verify it and show it.
    #[command(after_help = "Example:\n  argusctl demo\n  argusctl demo --dir /tmp/argus-demo")]
    Demo {
        /// Where to create the log (default: a new directory under $TMPDIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProjCmd {
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
        after_help = "Projections are caches: deleting DIR/projections and rebuilding gives identical digests.\n\nExamples:\n  argusctl projections rebuild ./audit\n  argusctl projections rebuild ./audit jobs"
    )]
    Rebuild {
        dir: PathBuf,
        name: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Init {
            dir,
            segment_bytes,
            key_file,
        } => cli::init::run(dir, segment_bytes, key_file).map(|_| 0),
        Cmd::Append { dir } => cli::append::run(&dir),
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
        } => cli::tail::run(&dir, n, follow, cli::tail::Filter { job, kind }, format).map(|_| 0),
        Cmd::Stats { dir } => cli::info::stats(&dir).map(|_| 0),
        Cmd::Checkpoint { dir } => cli::info::checkpoint(&dir).map(|_| 0),
        Cmd::Verify {
            dir,
            key,
            checkpoints,
            format,
            threads,
        } => cli::verify::run(&dir, key, checkpoints, format, threads),
        Cmd::Demo { dir } => cli::demo::run(dir).map(|_| 0),
        // @@dispatch: match arms for the variants above, above this marker
        Cmd::Kinds { format } => cli::kinds::list(format).map(|_| 0),
        Cmd::Jobs { dir, format } => cli::jobs::list(&dir, format).map(|_| 0),
        Cmd::Projections(ProjCmd::Status { dir, format }) => {
            cli::projections::status(&dir, format).map(|_| 0)
        }
        Cmd::Projections(ProjCmd::Rebuild { dir, name, format }) => {
            cli::projections::rebuild(&dir, name.as_deref(), format).map(|_| 0)
        }
    }
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("argusctl: {e:#}");
            let usage = e.chain().any(|c| {
                matches!(
                    c.downcast_ref::<argus::Error>(),
                    Some(argus::Error::NotALog { .. } | argus::Error::AlreadyALog { .. })
                )
            });
            std::process::exit(if usage {
                cli::EXIT_USAGE
            } else {
                cli::EXIT_ERROR
            });
        }
    }
}
