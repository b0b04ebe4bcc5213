//! `argusctl approvals list|show|approve|reject|sweep`: the approval queue.
//!
//! Every decision is one appended entry; the queue itself is the
//! `approvals` projection, so these commands only read it, check, and
//! append. Refusals happen before anything is written.
use super::safe::{self, esc};
use super::state::{lock_for_decision, Decision};
use super::{rfc3339_ns, Format, Out};
use crate::projections::approvals::{
    proposal_key, Mode, ModeState, Playbook, Proposal, ProposalStatus, MODE_KEY, NAME,
    PLAYBOOK_PREFIX, PROPOSAL_PREFIX,
};
use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum ApprovalsCmd {
    /// Proposals awaiting a decision (pending, and expired but not yet recorded); --all for every one.
    #[command(
        after_help = "Examples:\n  argusctl approvals list ./audit\n  argusctl approvals list ./audit --all -o json | jq 'select(.status==\"rejected\")'"
    )]
    List {
        dir: PathBuf,
        /// Every proposal, whatever its status.
        #[arg(long)]
        all: bool,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One proposal in full: rationale, parameters and their hash, deadline, decision.
    #[command(
        after_help = "The parameter_hash shown is what `approve --hash` checks against.\n\nExample:\n  argusctl approvals show ./audit janus-abc123def456"
    )]
    Show {
        dir: PathBuf,
        id: String,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Approve a pending proposal; the approval binds to the hash of its current parameters.
    #[command(
        after_help = "Refused when the proposal is not pending, is past its deadline, or (with --hash) its\nparameters changed since you reviewed them.\n\nExamples:\n  argusctl approvals approve ./audit janus-abc123def456 --reason 'read-only, allowlisted'\n  argusctl approvals approve ./audit janus-abc123def456 --hash $(argusctl approvals show ./audit janus-abc123def456 -o json | jq -r .parameter_hash)"
    )]
    Approve {
        dir: PathBuf,
        id: String,
        #[arg(long)]
        reason: Option<String>,
        /// The parameter_hash you reviewed; refuse if the proposal now has other parameters.
        #[arg(long = "hash")]
        expect_hash: Option<String>,
        /// A label recorded beside your operating-system identity (a role, a ticket); it never replaces it.
        #[arg(long = "actor", value_name = "LABEL")]
        label: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Reject a pending proposal (a reason is required).
    #[command(
        after_help = "Example:\n  argusctl approvals reject ./audit janus-abc123def456 --reason 'Insufficient security review'"
    )]
    Reject {
        dir: PathBuf,
        id: String,
        #[arg(long)]
        reason: String,
        /// A label recorded beside your operating-system identity (a role, a ticket); it never replaces it.
        #[arg(long = "actor", value_name = "LABEL")]
        label: Option<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Record expiries past their deadline; in Mode Beta, auto-approve proposals a playbook covers.
    #[command(
        after_help = "Appends proposal.expired for each proposal past its deadline (log time, or now) that no entry\nrecords yet, then, in Mode Beta, proposal.approved (approver \"auto\") for each pending proposal\nwhose action_type and risk a playbook covers. Run it from cron or a timer.\n\nExample:\n  argusctl approvals sweep ./audit -o json"
    )]
    Sweep {
        dir: PathBuf,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub fn run(cmd: ApprovalsCmd) -> Result<i32> {
    match cmd {
        ApprovalsCmd::List { dir, all, format } => list(&dir, all, format),
        ApprovalsCmd::Show { dir, id, format } => show(&dir, &id, format),
        ApprovalsCmd::Approve {
            dir,
            id,
            reason,
            expect_hash,
            label,
            format,
        } => approve(&dir, &id, reason, expect_hash, label, format),
        ApprovalsCmd::Reject {
            dir,
            id,
            reason,
            label,
            format,
        } => reject(&dir, &id, &reason, label, format),
        ApprovalsCmd::Sweep { dir, format } => sweep(&dir, format),
    }
    .map(|_| 0)
}

/// The queue as the projection holds it, plus "now" for deadline checks.
struct Snapshot {
    proposals: Vec<Proposal>,
    mode: ModeState,
    playbooks: Vec<Playbook>,
    /// The later of log time and the clock: an entry appended now is
    /// stamped no earlier than this, so a deadline before it is already
    /// past for that entry.
    now_ns: u64,
}

fn snapshot(dir: &Path) -> Result<Snapshot> {
    let st = super::state::open(dir)?;
    let (proposals, mode, playbooks) = st.projections.with_view(NAME, |v| {
        let mut proposals: Vec<Proposal> = v
            .scan_json::<Proposal>(PROPOSAL_PREFIX)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        proposals.sort_by_key(|p| (p.created_seq, p.proposal_id.clone()));
        let mode: ModeState = v.get_json(MODE_KEY)?.unwrap_or_default();
        let playbooks = v
            .scan_json::<Playbook>(PLAYBOOK_PREFIX)?
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        Ok((proposals, mode, playbooks))
    })?;
    let now_ns = super::state::now_ns(&st)?;
    Ok(Snapshot {
        proposals,
        mode,
        playbooks,
        now_ns,
    })
}

fn find(dir: &Path, id: &str) -> Result<Option<Proposal>> {
    Ok(find_at(dir, id)?.0)
}

/// One proposal and the "now" its status is judged at.
fn find_at(dir: &Path, id: &str) -> Result<(Option<Proposal>, u64)> {
    let st = super::state::open(dir)?;
    let p = st
        .projections
        .with_view(NAME, |v| v.get_json::<Proposal>(&proposal_key(id)))?;
    Ok((p, super::state::now_ns(&st)?))
}

fn awaiting(p: &Proposal) -> bool {
    p.is_pending() || p.expiry_unrecorded()
}

fn status_text(p: &Proposal, now_ns: u64) -> String {
    if p.is_pending() && p.deadline_ns <= now_ns {
        "pending (past deadline)".into()
    } else {
        p.display_status()
    }
}

fn to_json(p: &Proposal, now_ns: u64) -> Result<Value> {
    let mut v = serde_json::to_value(p)?;
    v["display_status"] = status_text(p, now_ns).into();
    v["deadline"] = rfc3339_ns(p.deadline_ns).into();
    v["created"] = rfc3339_ns(p.created_ts_ns).into();
    Ok(v)
}

/// `s` as one word for a POSIX shell: as is when it is plainly safe,
/// else single-quoted, with anything a terminal would act on escaped.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", safe::line(&s.replace('\'', "'\\''")))
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max - 1).collect::<String>())
    }
}

fn list(dir: &Path, all: bool, format: Format) -> Result<()> {
    let snap = snapshot(dir)?;
    let rows: Vec<&Proposal> = snap
        .proposals
        .iter()
        .filter(|p| all || awaiting(p))
        .collect();
    let header = format!(
        "{:<24} {:<23} {:<6} {:<16} {:<16} {:<20} rationale",
        "proposal", "status", "risk", "action_type", "agent", "deadline"
    );
    let json = |p: &&Proposal| to_json(p, snap.now_ns);
    super::print_rows(format, &rows, &header, json, |p| {
        format!(
            "{:<24} {:<23} {:<6} {:<16} {:<16} {:<20} {}",
            esc(&p.proposal_id),
            status_text(p, snap.now_ns),
            esc(&p.risk),
            esc(&p.action_type),
            esc(p.agent.as_deref().unwrap_or("-")),
            rfc3339_ns(p.deadline_ns).get(..19).unwrap_or_default(),
            esc(&one_line(&p.rationale, 60))
        )
    })
}

fn show(dir: &Path, id: &str, format: Format) -> Result<()> {
    let (Some(p), now_ns) = find_at(dir, id)? else {
        return Err(super::error::CommandError::NotFound(format!(
            "no proposal {id:?} in {}",
            dir.display()
        ))
        .into());
    };
    let mut out = Out::default();
    match format {
        Format::Json => out.json(&to_json(&p, now_ns)?.to_string()),
        Format::Text => {
            let mut lines = proposal_lines(&p, now_ns)?;
            lines.extend(outcome_lines(&p));
            if p.is_pending() {
                lines.extend(command_lines(dir, &p));
            }
            for l in lines {
                out.line(&l);
            }
        }
    }
    out.flush();
    Ok(())
}

fn opt(o: &Option<String>) -> String {
    esc(o.as_deref().unwrap_or("-")).to_string()
}

/// What was proposed: the Janus proposal layout of seed 002.
fn proposal_lines(p: &Proposal, now_ns: u64) -> Result<Vec<String>> {
    let params = serde_json::to_string_pretty(&p.parameters)?;
    let mut lines = vec![
        format!(
            "PROPOSAL: {}  (revision {})",
            esc(&p.proposal_id),
            p.revision
        ),
        format!("Status:   {}", esc(&status_text(p, now_ns))),
        format!(
            "Created:  {} (seq {})",
            rfc3339_ns(p.created_ts_ns),
            p.created_seq
        ),
        format!(
            "Deadline: {} ({} s timeout)",
            rfc3339_ns(p.deadline_ns),
            p.timeout_s
        ),
        format!("Agent:    {}   Job: {}", opt(&p.agent), opt(&p.job_id)),
        String::new(),
        format!("ACTION TYPE: {}", esc(&p.action_type)),
        format!("RISK LEVEL:  {}", esc(&p.risk.to_uppercase())),
        String::new(),
        "MISSION CONTEXT:".into(),
        format!("  {}", opt(&p.mission_context)),
        "RATIONALE:".into(),
        format!("  {}", esc(&p.rationale)),
        "ROLLBACK PLAN:".into(),
        format!("  {}", opt(&p.rollback_plan)),
        "PARAMETERS:".into(),
    ];
    // Pretty JSON: its own line breaks, strings already JSON-escaped.
    lines.extend(params.lines().map(|l| format!("  {}", safe::json(l))));
    lines.push(format!("PARAMETER HASH: {}", esc(&p.parameter_hash)));
    Ok(lines)
}

/// What became of it: the decision, decisions that changed nothing, and a
/// constitutional violation if it was acted on without approval.
fn outcome_lines(p: &Proposal) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(seq) = p.decided_seq {
        lines.push(String::new());
        lines.push(format!(
            "DECISION: {} at seq {seq} by {}{}{}{}",
            esc(&p.display_status()),
            opt(&p.approver),
            p.approver_label
                .as_ref()
                .map(|l| format!(" (\"{}\")", esc(l)))
                .unwrap_or_default(),
            p.playbook
                .as_ref()
                .map(|b| format!(" (playbook {})", esc(b)))
                .unwrap_or_default(),
            p.reason
                .as_ref()
                .map(|r| format!(": {}", esc(r)))
                .unwrap_or_default()
        ));
    }
    if !p.ignored.is_empty() {
        lines.push(String::new());
        lines.push("IGNORED DECISIONS (changed nothing):".into());
        for i in &p.ignored {
            lines.push(format!(
                "  seq {} {} by {}: {}",
                i.seq,
                esc(&i.kind),
                esc(&i.actor),
                esc(&i.reason)
            ));
        }
    }
    if let Some(v) = &p.violation {
        lines.push(String::new());
        lines.push(format!(
            "CONSTITUTIONAL VIOLATION: acted on without approval ({})",
            esc(v)
        ));
    }
    lines
}

/// The commands that decide a pending proposal, quoted for a POSIX shell so
/// they can be pasted even when the id holds spaces or quotes.
fn command_lines(dir: &Path, p: &Proposal) -> Vec<String> {
    let (d, id) = (
        shell_word(&dir.display().to_string()),
        shell_word(&p.proposal_id),
    );
    vec![
        String::new(),
        "COMMANDS:".into(),
        format!(
            "  Approve: argusctl approvals approve {d} {id} --hash {}",
            esc(&p.parameter_hash)
        ),
        format!("  Reject:  argusctl approvals reject {d} {id} --reason 'Your reason here'"),
    ]
}

/// Refuses a decision on a proposal that cannot take one any more.
fn check_decidable(p: &Proposal, now_ns: u64, verb: &str) -> Result<()> {
    if !p.is_pending() {
        return Err(super::error::CommandError::Conflict(format!(
            "proposal {} is {}; only pending proposals can be {verb}",
            p.proposal_id,
            p.display_status()
        ))
        .into());
    }
    if p.deadline_ns <= now_ns {
        return Err(super::error::CommandError::Conflict(format!(
            "proposal {} passed its deadline {} ({} s timeout) and has expired; `argusctl approvals sweep` records it",
            p.proposal_id,
            rfc3339_ns(p.deadline_ns),
            p.timeout_s
        )).into());
    }
    Ok(())
}

fn report(format: Format, seq: u64, kind: &str, payload: &Value, text: String) {
    let mut out = Out::default();
    match format {
        Format::Json => {
            out.json(&json!({"seq": seq, "kind": kind, "payload": payload}).to_string())
        }
        Format::Text => out.line(&text),
    }
    out.flush();
}

/// Separation of duties, checked before anything is written: the agent
/// that proposed cannot approve its own proposal, under its own name or a
/// label. The projection applies the same rule to entries written by hand.
fn check_not_own_agent(p: &Proposal, label: Option<&str>) -> Result<()> {
    let me = super::context::actor(crate::authority::Class::Operator);
    if let Some(agent) = p.agent.as_deref() {
        if me.name() == agent || label == Some(agent) {
            bail!(
                "separation of duties: you ({me}) are the proposal's own agent {agent:?}; another operator must decide it"
            );
        }
    }
    Ok(())
}

fn label_value(label: Option<String>) -> Result<Option<String>> {
    match label {
        Some(l) if l.trim().is_empty() || l.len() > 128 || l.chars().any(char::is_control) => {
            bail!("--actor LABEL must be 1 to 128 printable characters")
        }
        other => Ok(other),
    }
}

fn approve(
    dir: &Path,
    id: &str,
    reason: Option<String>,
    expect_hash: Option<String>,
    label: Option<String>,
    format: Format,
) -> Result<()> {
    let label = label_value(label)?;
    let lock = lock_for_decision(dir, "approve")?;
    let snap = snapshot(dir)?;
    let Some(p) = snap.proposals.iter().find(|p| p.proposal_id == id) else {
        return Err(super::error::CommandError::NotFound(format!(
            "no proposal {id:?} in {}",
            dir.display()
        ))
        .into());
    };
    check_decidable(p, snap.now_ns, "approved")?;
    check_not_own_agent(p, label.as_deref())?;
    if let Some(h) = expect_hash.as_deref() {
        if h != p.parameter_hash {
            return Err(super::error::CommandError::Conflict(format!(
                "proposal {id} changed since review: its parameters now hash to {} (revision {}), not {h}; review it again with `argusctl approvals show`",
                p.parameter_hash,
                p.revision
            )).into());
        }
    }
    let mut payload = json!({
        "proposal_id": id,
        "parameter_hash": p.parameter_hash,
        "mode": snap.mode.mode,
        "approver": super::context::actor(crate::authority::Class::Operator).to_string(),
    });
    if let Some(r) = reason.filter(|r| !r.trim().is_empty()) {
        payload["reason"] = r.into();
    }
    if let Some(l) = label {
        payload["actor_label"] = l.into();
    }
    let seq = lock.append(Decision {
        class: crate::authority::Class::Operator,
        kind: "proposal.approved",
        job_id: p.job_id.as_deref(),
        agent: p.agent.as_deref(),
        parent: Some(p.created_seq),
        payload: payload.clone(),
    })?;
    drop(lock);
    // The lock kept other writers out, but say "approved" only if the queue
    // itself accepted this entry.
    let now = find(dir, id)?;
    if now.as_ref().map(|p| p.status) != Some(ProposalStatus::Approved)
        || now.as_ref().and_then(|p| p.decided_seq) != Some(seq)
    {
        return Err(super::error::CommandError::Conflict(format!(
            "appended proposal.approved as seq {seq}, but the queue did not accept it (proposal is now {}): it changed or expired meanwhile",
            now.map(|p| p.display_status()).unwrap_or_default()
        )).into());
    }
    report(
        format,
        seq,
        "proposal.approved",
        &payload,
        format!(
            "approved {} (seq {seq}, parameter_hash {})",
            esc(id),
            esc(&p.parameter_hash)
        ),
    );
    Ok(())
}

fn reject(dir: &Path, id: &str, reason: &str, label: Option<String>, format: Format) -> Result<()> {
    let label = label_value(label)?;
    if reason.trim().is_empty() {
        return Err(super::error::CommandError::Invalid(
            "a rejection needs a reason: --reason TEXT".into(),
        )
        .into());
    }
    let lock = lock_for_decision(dir, "reject")?;
    let snap = snapshot(dir)?;
    let Some(p) = snap.proposals.iter().find(|p| p.proposal_id == id) else {
        return Err(super::error::CommandError::NotFound(format!(
            "no proposal {id:?} in {}",
            dir.display()
        ))
        .into());
    };
    check_decidable(p, snap.now_ns, "rejected")?;
    let mut payload = json!({
        "proposal_id": id,
        "reason": reason,
        "approver": super::context::actor(crate::authority::Class::Operator).to_string(),
    });
    if let Some(l) = label {
        payload["actor_label"] = l.into();
    }
    let seq = lock.append(Decision {
        class: crate::authority::Class::Operator,
        kind: "proposal.rejected",
        job_id: p.job_id.as_deref(),
        agent: p.agent.as_deref(),
        parent: Some(p.created_seq),
        payload: payload.clone(),
    })?;
    report(
        format,
        seq,
        "proposal.rejected",
        &payload,
        format!("rejected {} (seq {seq})", esc(id)),
    );
    Ok(())
}

fn sweep(dir: &Path, format: Format) -> Result<()> {
    let lock = lock_for_decision(dir, "approvals sweep")?;
    let snap = snapshot(dir)?;
    let mut done = 0usize;
    let mut write = |p: &Proposal, kind: &str, payload: Value, text: String| -> Result<()> {
        let seq = lock.append(Decision {
            class: crate::authority::Class::Operator,
            kind,
            job_id: p.job_id.as_deref(),
            agent: p.agent.as_deref(),
            parent: Some(p.created_seq),
            payload: payload.clone(),
        })?;
        report(format, seq, kind, &payload, format!("{text} (seq {seq})"));
        done += 1;
        Ok(())
    };
    for p in &snap.proposals {
        let unrecorded = p.expiry_unrecorded();
        let due = p.is_pending() && p.deadline_ns <= snap.now_ns;
        if unrecorded || due {
            let payload = json!({"proposal_id": p.proposal_id, "timeout_s": p.timeout_s.max(1)});
            write(
                p,
                "proposal.expired",
                payload,
                format!("expired {}", esc(&p.proposal_id)),
            )?;
        }
    }
    if snap.mode.mode == Mode::Beta {
        for p in &snap.proposals {
            if !p.is_pending() || p.deadline_ns <= snap.now_ns {
                continue;
            }
            let Some(book) = snap.playbooks.iter().find(|b| b.matches(p)) else {
                continue;
            };
            let payload = json!({
                "proposal_id": p.proposal_id,
                "parameter_hash": p.parameter_hash,
                "mode": "beta",
                "playbook": book.playbook,
                "approver": "auto",
                "reason": "playbook match",
            });
            write(
                p,
                "proposal.approved",
                payload,
                format!(
                    "auto-approved {} by playbook {}",
                    esc(&p.proposal_id),
                    esc(&book.playbook)
                ),
            )?;
        }
    }
    if done == 0 && format == Format::Text {
        let mut out = Out::default();
        out.line("nothing to sweep");
        out.flush();
    }
    Ok(())
}
