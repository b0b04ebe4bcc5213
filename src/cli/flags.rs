//! `argusctl flag is-enabled|set` and `argusctl flags`: feature flags.
use super::safe::esc;
use super::{eprint, Format, Out};
use crate::projections::flags::{
    evaluate, flag_key, parse_rfc3339_ns, removed_key, Flag, Removed, NAME,
};
use anyhow::{bail, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Parses repeated `--context k=v` into a map, refusing duplicates so the
/// stable context string is never ambiguous.
pub fn parse_context(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut ctx = BTreeMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--context {p:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--context {p:?}: the key is empty");
        }
        if ctx.insert(k.to_string(), v.to_string()).is_some() {
            bail!("--context key {k:?} given twice");
        }
    }
    Ok(ctx)
}

pub fn is_enabled(dir: &Path, key: &str, context: &[String], format: Format) -> Result<()> {
    let ctx = parse_context(context)?;
    let st = super::state::open(dir)?;
    let now_ns = super::state::now_ns(&st)?;
    let (flag, removed) = st.projections.with_view(NAME, |v| {
        Ok((
            v.get_json::<Flag>(&flag_key(key))?,
            v.get_json::<Removed>(&removed_key(key))?,
        ))
    })?;
    let d = evaluate(key, flag.as_ref(), removed.as_ref(), &ctx, now_ns);
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&serde_json::to_string(&d)?),
        Format::Text => out.line(&format!(
            "{} {}: {}",
            esc(&d.key),
            if d.enabled { "enabled" } else { "disabled" },
            esc(&d.reason)
        )),
    }
    out.flush();
    Ok(())
}

pub struct SetArgs<'a> {
    pub key: &'a str,
    pub enabled: bool,
    pub rollout_pct: Option<u8>,
    pub targets: &'a [String],
    pub expires_at: Option<&'a str>,
}

pub fn set(dir: &Path, a: SetArgs<'_>, format: Format) -> Result<()> {
    if a.key.is_empty() {
        bail!("the flag key is empty");
    }
    if let Some(e) = a.expires_at {
        if parse_rfc3339_ns(e).is_none() {
            bail!("--expires-at {e:?} is not an RFC 3339 date-time (e.g. 2026-12-31T23:59:59Z)");
        }
    }
    let mut payload = json!({
        "key": a.key,
        "enabled": a.enabled,
        "rollout_pct": a.rollout_pct.unwrap_or(0),
        "target_ids": a.targets,
    });
    if let Some(e) = a.expires_at {
        payload["expires_at"] = e.into();
    }
    let seq = super::state::append_one(
        dir,
        "flag set",
        super::state::Decision {
            class: crate::authority::Class::Operator,
            kind: "flag.set",
            job_id: None,
            agent: None,
            parent: None,
            payload,
        },
    )?;
    if a.enabled && a.rollout_pct.unwrap_or(0) == 0 && a.targets.is_empty() {
        eprint(&format!(
            "argusctl: note: {} is enabled with rollout 0% and no targets, so no context sees it; add --rollout-pct or --target",
            esc(a.key)
        ));
    }
    let mut out = Out::default();
    match format {
        Format::Json => {
            out.json(&json!({"seq": seq, "kind": "flag.set", "key": a.key}).to_string())
        }
        Format::Text => out.line(&format!("flag {} set (seq {seq})", esc(a.key))),
    }
    out.flush();
    Ok(())
}

pub fn list(dir: &Path, format: Format) -> Result<()> {
    let st = super::state::open(dir)?;
    let now_ns = super::state::now_ns(&st)?;
    let flags: Vec<Flag> = st
        .projections
        .with_view(NAME, |v| v.scan_json::<Flag>(b"flag/"))?
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    let expired = |f: &Flag| f.expires_at.is_some() && f.expires_at_ns.is_none_or(|e| e <= now_ns);
    let header = format!(
        "{:<28} {:<8} {:>7} {:<8} {:<30} targets",
        "key", "enabled", "rollout", "expired", "expires_at"
    );
    let json = |f: &Flag| {
        let mut v = serde_json::to_value(f)?;
        v["expired"] = expired(f).into();
        Ok(v)
    };
    super::print_rows(format, &flags, &header, json, |f| {
        format!(
            "{:<28} {:<8} {:>6}% {:<8} {:<30} {}",
            esc(&f.key),
            f.enabled,
            f.rollout_pct,
            expired(f),
            esc(f.expires_at.as_deref().unwrap_or("-")),
            esc(&f.target_ids.join(","))
        )
    })
}

#[derive(clap::Subcommand)]
pub enum FlagCmd {
    /// Evaluate a flag for a context; prints {"key","enabled","reason"}.
    #[command(
        after_help = "Exit status is 0 whenever the flag could be evaluated, on or off: read `enabled` in the output.\nRules, first match wins: unknown or removed flag -> false; enabled=false -> false;\nexpires_at <= now (wall clock, or the newest entry's time if later) -> false; any context value in\ntarget_ids -> true; else true iff bucket < rollout_pct, where bucket = first 8 bytes (u64 LE)\nof BLAKE3(\"KEY\\0k1=v1&k2=v2\") mod 100, context pairs sorted by key.\n\nExamples:\n  argusctl flag is-enabled ./audit new_synthesis_v2 --context agent=researcher\n  argusctl flag is-enabled ./audit new_synthesis_v2 --context agent=researcher --context user=u7 -o json | jq .enabled"
    )]
    IsEnabled {
        dir: std::path::PathBuf,
        key: String,
        /// A context pair KEY=VALUE (repeatable), e.g. agent=researcher.
        #[arg(long = "context", value_name = "K=V")]
        context: Vec<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Set a flag: appends one flag.set entry that replaces its whole definition.
    #[command(
        after_help = "Fields not given take the defaults: rollout 0%, no targets, no expiry.\n\nExamples:\n  argusctl flag set ./audit new_synthesis_v2 --enabled true --rollout-pct 25\n  argusctl flag set ./audit new_synthesis_v2 --enabled true --target researcher --expires-at 2026-12-31T23:59:59Z\n  argusctl flag set ./audit new_synthesis_v2 --enabled false"
    )]
    Set {
        dir: std::path::PathBuf,
        key: String,
        /// true or false: the master switch.
        #[arg(long, required = true, action = clap::ArgAction::Set, value_name = "true|false")]
        enabled: bool,
        /// Percentage of contexts (0-100) that see the flag.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
        rollout_pct: Option<u8>,
        /// An id (agent, user, ...) that always sees the flag when enabled (repeatable).
        #[arg(long = "target", value_name = "ID")]
        targets: Vec<String>,
        /// RFC 3339 date-time after which the flag is off, e.g. 2026-12-31T23:59:59Z.
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub fn dispatch(cmd: FlagCmd) -> Result<()> {
    match cmd {
        FlagCmd::IsEnabled {
            dir,
            key,
            context,
            format,
        } => is_enabled(&dir, &key, &context, format),
        FlagCmd::Set {
            dir,
            key,
            enabled,
            rollout_pct,
            targets,
            expires_at,
            format,
        } => set(
            &dir,
            SetArgs {
                key: &key,
                enabled,
                rollout_pct,
                targets: &targets,
                expires_at: expires_at.as_deref(),
            },
            format,
        ),
    }
}
