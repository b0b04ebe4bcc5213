//! argusctl: the operator's command line for an Argus log.
use anyhow::Result;
use argus::cli;
use argus::cli::command::{Cli, Cmd};
use clap::Parser;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and --version are our own text, for stdout; clap already
        // ignores a closed pipe there.
        Err(e) if !e.use_stderr() => e.exit(),
        // A usage error quotes the offending argument, which can come from
        // data (`approvals show DIR "$id"`): print it escaped, without
        // clap's colours.
        Err(e) => {
            cli::eprint(e.render().to_string().trim_end());
            std::process::exit(e.exit_code());
        }
    };
    match run(cli) {
        Ok(code) => cli::exit(code),
        Err(e) => {
            cli::eprint(&format!("argusctl: {}", argus::cli::error::chain_text(&e)));
            cli::exit(cli::command::exit_code(&e));
        }
    }
}

/// Locally, or through the argusd that holds the log.
fn run(mut cli: Cli) -> Result<i32> {
    let dir = cli.cmd.dir_mut().cloned();
    // Readers need no lock and work the same either way; init and demo
    // make their own logs.
    let through_daemon = match &cli.cmd {
        Cmd::Init { .. }
        | Cmd::Demo { .. }
        | Cmd::Kinds { .. }
        | Cmd::Cat { .. }
        | Cmd::Verify { .. }
        | Cmd::Stats { .. }
        | Cmd::Checkpoint { .. }
        | Cmd::Prove { .. }
        | Cmd::VerifyProof { .. }
        | Cmd::Witness(_)
        | Cmd::Inspect { .. }
        | Cmd::Audit { .. }
        | Cmd::Export(_) => false,
        // search reads the log here and keeps its index beside it; it
        // appends its flag records only when it can take the writer.
        Cmd::Search(_) => false,
        // import writes entries in every class: only into a new log, here.
        Cmd::Import(_) => false,
        // compact takes the writer lock itself, and refuses while argusd
        // (or anyone) holds it.
        Cmd::Compact(_) => false,
        // sign and verify-artifact read the file here and send argusd only
        // the record (`cli::command::run`).
        Cmd::Sign(_) | Cmd::VerifyArtifact(_) => false,
        // exec runs the command here; it finds the daemon for its checks
        // and entries itself (`cli::command::run`).
        Cmd::Exec(_) => false,
        Cmd::Tail { follow, .. } => *follow,
        _ => true,
    };
    if through_daemon {
        if let Some(remote) =
            cli::remote::find(dir.as_deref(), cli.server.as_deref(), cli.token.clone())?
        {
            return match cli.cmd {
                Cmd::Append { .. } => cli::remote::append(&remote),
                Cmd::Tail {
                    n,
                    job,
                    kind,
                    format,
                    ..
                } => {
                    let filter = cli::tail::Filter {
                        job,
                        kind,
                        agent: None,
                    };
                    cli::remote::tail(&remote, n, true, &filter, format)
                }
                _ => cli::remote::command(&remote, &argv()?),
            };
        }
    }
    cli::command::run(cli)
}

/// This process's arguments without the program name and the options that
/// only say how to reach the daemon (it must not see the token, and
/// `--lock-timeout` is about this process).
fn argv() -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        let a = a
            .into_string()
            .map_err(|a| anyhow::anyhow!("argument {a:?} is not UTF-8"))?;
        if ["--server", "--token", "--lock-timeout"].contains(&a.as_str()) {
            args.next();
            continue;
        }
        if ["--server=", "--token=", "--lock-timeout="]
            .iter()
            .any(|p| a.starts_with(p))
        {
            continue;
        }
        out.push(a);
    }
    Ok(out)
}
