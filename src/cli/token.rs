//! `argusctl token add|list|revoke`: the API tokens argusd accepts.
//!
//! `add` and `revoke` are decisions: each appends one entry (the token's
//! hash, never the token) and then rewrites the token file, both while
//! holding the log's writer lock, so two operators cannot interleave and the
//! log is always at least as complete as the file. If the file cannot be
//! written after the entry is recorded, the command says so and fails: the
//! log stays the record of what was attempted.
use super::safe::esc;
use super::state::{lock_for_decision, Decision};
use super::{Format, Out};
use crate::authority::Class;
use crate::tokens::{check_name, default_path, Role, TokenStore};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand)]
pub enum TokenCmd {
    /// Issue a token for argusd: appends token.added (its hash) and prints the token once.
    #[command(
        after_help = "The token is printed only now; DIR/tokens.json (mode 0600) and the log keep only its hash.\nRoles: agent appends its own work only; operator makes decisions (approve, mode, release);\nauditor reads everything and writes the auditor's kinds. A name already in use is refused (exit 1).\n\nExamples:\n  argusctl token add ./audit --name researcher --role agent\n  TOKEN=$(argusctl token add ./audit --name alice --role operator -o json | jq -r .token)"
    )]
    Add {
        dir: PathBuf,
        /// The holder's name, 1-64 of A-Z a-z 0-9 . _ - (entries show it as token:NAME), e.g. researcher.
        #[arg(long, value_parser = parse_name)]
        name: String,
        /// What the holder may do, e.g. --role agent.
        #[arg(long, value_enum)]
        role: Role,
        /// The token file, if not DIR/tokens.json, e.g. /etc/argus/tokens.json.
        #[arg(long = "tokens", value_name = "FILE")]
        tokens: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Live tokens: name, role, id and creation time (never a token or hash).
    #[command(
        after_help = "Examples:\n  argusctl token list ./audit\n  argusctl token list ./audit --tokens /etc/argus/tokens.json -o json | jq -r 'select(.role==\"agent\") | .name'"
    )]
    List {
        dir: PathBuf,
        /// The token file, if not DIR/tokens.json, e.g. /etc/argus/tokens.json.
        #[arg(long = "tokens", value_name = "FILE")]
        tokens: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Revoke a token: appends token.revoked and removes it from the token file.
    #[command(
        after_help = "A running argusd stops accepting the token when it reloads the file.\nAn unknown name is refused (exit 1) and nothing is written.\n\nExamples:\n  argusctl token revoke ./audit researcher\n  argusctl token revoke ./audit alice --reason 'left the team'"
    )]
    Revoke {
        dir: PathBuf,
        /// The token's name, as `token list` shows it.
        #[arg(value_parser = parse_name)]
        name: String,
        /// Why, recorded in the entry, e.g. --reason 'laptop lost'.
        #[arg(long)]
        reason: Option<String>,
        /// The token file, if not DIR/tokens.json, e.g. /etc/argus/tokens.json.
        #[arg(long = "tokens", value_name = "FILE")]
        tokens: Option<PathBuf>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn parse_name(s: &str) -> std::result::Result<String, String> {
    check_name(s).map(|_| s.to_string())
}

pub fn dispatch(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Add {
            dir,
            name,
            role,
            tokens,
            format,
        } => add(&dir, &name, role, tokens.as_deref(), format),
        TokenCmd::List {
            dir,
            tokens,
            format,
        } => list(&dir, tokens.as_deref(), format),
        TokenCmd::Revoke {
            dir,
            name,
            reason,
            tokens,
            format,
        } => revoke(&dir, &name, reason.as_deref(), tokens.as_deref(), format),
    }
}

fn path_of(dir: &Path, tokens: Option<&Path>) -> PathBuf {
    tokens.map_or_else(|| default_path(dir), Path::to_path_buf)
}

pub fn add(
    dir: &Path,
    name: &str,
    role: Role,
    tokens: Option<&Path>,
    format: Format,
) -> Result<()> {
    let path = path_of(dir, tokens);
    let lock = lock_for_decision(dir, "token add")?;
    let mut store = TokenStore::load(&path)?;
    let now = crate::time::rfc3339_ns(crate::time::wall_now_ns());
    let issued = store.issue(name, role, &now)?;
    let r = &issued.record;
    let seq = lock.append(Decision {
        class: Class::Operator,
        kind: "token.added",
        job_id: None,
        agent: None,
        parent: None,
        payload: json!({"name": r.name, "role": r.role, "id": r.id, "hash": r.hash()}),
    })?;
    store.save(&path).with_context(|| {
        format!(
            "token.added for {name} is recorded at seq {seq}, but the token file was not written, \
             so the token does not work and is not shown; fix the cause and run `argusctl token add` again"
        )
    })?;
    drop(lock);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({"name": r.name, "role": r.role, "id": r.id, "seq": seq,
                    "token": issued.token.expose()})
            .to_string(),
        ),
        Format::Text => {
            out.line(&format!(
                "token {} for {} ({}), recorded at seq {seq}:",
                r.id,
                esc(&r.name),
                r.role
            ));
            out.line(issued.token.expose());
            out.line(&format!(
                "Store it now: it is not shown again, and {} keeps only its hash.",
                path.display()
            ));
        }
    }
    out.flush();
    Ok(())
}

#[derive(serde::Serialize)]
struct Listed<'a> {
    name: &'a str,
    role: Role,
    id: &'a str,
    created: &'a str,
}

pub fn list(dir: &Path, tokens: Option<&Path>, format: Format) -> Result<()> {
    // A mistyped DIR would otherwise list "no tokens" and look like an answer.
    crate::log::dir::LogDir::new(dir)
        .read_meta()
        .with_context(|| format!("opening {}", dir.display()))?;
    let store = TokenStore::load(&path_of(dir, tokens))?;
    let rows: Vec<Listed<'_>> = store
        .records()
        .map(|r| Listed {
            name: &r.name,
            role: r.role,
            id: &r.id,
            created: &r.created,
        })
        .collect();
    let header = format!("{:<24} {:<9} {:<12} created", "name", "role", "id");
    super::print_rows(format, &rows, &header, super::as_json, |r| {
        format!(
            "{:<24} {:<9} {:<12} {}",
            esc(r.name),
            r.role,
            r.id,
            esc(r.created)
        )
    })
}

pub fn revoke(
    dir: &Path,
    name: &str,
    reason: Option<&str>,
    tokens: Option<&Path>,
    format: Format,
) -> Result<()> {
    let path = path_of(dir, tokens);
    let lock = lock_for_decision(dir, "token revoke")?;
    let mut store = TokenStore::load(&path)?;
    let record = store.revoke(name)?;
    let mut payload = json!({"name": record.name, "id": record.id});
    if let Some(r) = reason {
        payload["reason"] = r.into();
    }
    let seq = lock.append(Decision {
        class: Class::Operator,
        kind: "token.revoked",
        job_id: None,
        agent: None,
        parent: None,
        payload,
    })?;
    store.save(&path).with_context(|| {
        format!(
            "token.revoked for {name} is recorded at seq {seq}, but the token file was not written, \
             so THE TOKEN STILL WORKS; fix the cause and run `argusctl token revoke` again"
        )
    })?;
    drop(lock);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(
            &json!({"name": record.name, "id": record.id, "seq": seq, "kind": "token.revoked"})
                .to_string(),
        ),
        Format::Text => out.line(&format!(
            "token {} of {} revoked (seq {seq})",
            record.id,
            esc(&record.name)
        )),
    }
    out.flush();
    Ok(())
}
