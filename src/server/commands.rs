//! Views and decisions: every `argusctl` view and decision command, served
//! by running that very command inside the daemon.
//!
//! A route names a command line: `GET /v1/jobs/j1?format=json` is
//! `argusctl jobs DIR --job=j1 -o json`. The argv is parsed by argusctl's own
//! clap tree (so ranges and required options are judged exactly as on the
//! command line), the log directory is always the daemon's own, and the
//! command runs under `cli::context` with its stdout captured: the answer is
//! the bytes `argusctl` would have printed, and `X-Argus-Exit` its exit code.
//! Decisions take the daemon's decision lock for their check and append, as
//! the writer lock serializes them between processes.
//!
//! `POST /v1/argusctl` takes such an argv directly; `argusctl` uses it when a
//! daemon holds the log, so no command needs a client-side mapping.
use super::auth::Caller;
use super::errors::ApiError;
use super::routes::App;
use crate::cli::command::{Cli, Cmd};
use crate::cli::context::{capture, Context};
use crate::cli::error::CommandError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use serde_json::Value;
use std::sync::Arc;

/// Who may run a command through the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads state: any authenticated caller.
    View,
    /// Records a policy denial for the caller's own request: any caller.
    Check,
    /// An operator's decision.
    Decide,
}

/// Which commands run inside the daemon, and who may run them. Anything
/// else (init, verify with files of the daemon's host, demo, rebuild of
/// the projections the daemon is using) is refused.
pub fn access(cmd: &Cmd) -> Result<Access, String> {
    use crate::cli::approvals::ApprovalsCmd as A;
    use crate::cli::command::ProjCmd;
    use crate::cli::dlq::DlqCmd as D;
    use crate::cli::flags::FlagCmd as F;
    use crate::cli::mode::ModeCmd as M;
    use crate::cli::policy::PolicyCmd as P;
    Ok(match cmd {
        Cmd::Status { .. }
        | Cmd::Stats { .. }
        | Cmd::Checkpoint { .. }
        | Cmd::Kinds { .. }
        | Cmd::Jobs { .. }
        | Cmd::Agents { .. }
        | Cmd::Route { .. }
        | Cmd::Flags { .. }
        | Cmd::Flag(F::IsEnabled { .. })
        | Cmd::Approvals(A::List { .. } | A::Show { .. })
        | Cmd::Mode(M::Show { .. })
        | Cmd::Dlq(D::List { .. } | D::Show { .. })
        | Cmd::Sla { .. }
        | Cmd::Breakers { .. }
        | Cmd::Workers { .. }
        | Cmd::Policy(P::List { .. })
        | Cmd::Budget { .. }
        | Cmd::Incident { .. }
        | Cmd::Control { .. }
        | Cmd::Anomalies { .. }
        | Cmd::Inspect { .. }
        | Cmd::Diff { .. }
        | Cmd::Projections(ProjCmd::Status { .. }) => Access::View,
        Cmd::Memory { sweep: false, .. } => Access::View,
        Cmd::Replay { requeue: false, .. } => Access::View,
        Cmd::Replay { requeue: true, .. } => Access::Decide,
        Cmd::Memory { sweep: true, .. } => Access::Decide,
        Cmd::Policy(P::Check { .. }) => Access::Check,
        // Only the record-only forms run inside (argusctl reads the file
        // and sends the hash or the signature document; the command refuses
        // to read files for a caller).
        Cmd::VerifyArtifact(_) => Access::Check,
        Cmd::Sign(_) => Access::Decide,
        Cmd::Approvals(A::Approve { .. } | A::Reject { .. } | A::Sweep { .. })
        | Cmd::Mode(M::Set { .. })
        | Cmd::Dlq(D::Replay { .. } | D::Discard { .. })
        | Cmd::Flag(F::Set { .. })
        | Cmd::Config(_)
        | Cmd::Kill { .. }
        | Cmd::Lockdown { .. }
        | Cmd::Release { .. }
        | Cmd::Redact { .. }
        | Cmd::Token(_) => Access::Decide,
        Cmd::Key(crate::cli::key::KeyCmd::Show { .. }) => Access::View,
        Cmd::Key(crate::cli::key::KeyCmd::Rotate { .. }) => {
            return Err("key rotate takes the writer lock argusd holds: stop argusd, rotate, start it again".into())
        }
        Cmd::Compact { .. } => {
            return Err("compact rewrites segments under the writer lock argusd holds: stop argusd, compact, start it again".into())
        }
        Cmd::Projections(ProjCmd::Rebuild { .. }) => {
            return Err("projections rebuild resets the store argusd is serving from: stop argusd, rebuild, start it again".into())
        }
        _ => return Err("this command does not run through argusd; run it locally (readers need no lock)".into()),
    })
}

/// Parses `argv` (without the program name) as argusctl would, refusing
/// what the daemon does not run; the directory given is replaced by the
/// daemon's own.
pub fn parse(app: &App, argv: &[String]) -> Result<(Cmd, Access), ApiError> {
    let full = std::iter::once("argusctl".to_string()).chain(argv.iter().cloned());
    let cli = Cli::try_parse_from(full)
        .map_err(|e| ApiError::bad_request(e.render().to_string().trim_end().to_string()))?;
    let mut cmd = cli.cmd;
    let access = access(&cmd).map_err(ApiError::bad_request)?;
    if let Some(t) = cmd.tokens_file_mut() {
        *t = Some(app.tokens_path.clone());
    }
    let kinds = matches!(cmd, Cmd::Kinds { .. });
    match cmd.dir_mut() {
        Some(d) => *d = app.dir.clone(),
        None if kinds => {}
        None => return Err(ApiError::bad_request("this command names no log")),
    }
    Ok((cmd, access))
}

/// What the answer's body is.
#[derive(Clone, Copy)]
pub enum Body {
    /// One JSON object.
    Object,
    /// NDJSON, one object per line.
    Lines,
    /// What the text view prints.
    Text,
}

/// Runs a parsed command for `caller`, its output captured.
pub async fn run(
    app: Arc<App>,
    caller: Caller,
    cmd: Cmd,
    access: Access,
    stdin: Option<Vec<u8>>,
    body: Body,
) -> Result<Response, ApiError> {
    if access == Access::Decide {
        caller.require_operator("this command")?;
    }
    let changes_tokens = matches!(cmd, Cmd::Token(_));
    let ctx = Context {
        state: Some(app.shared.clone()),
        principal: match &caller {
            Caller::Local { .. } => None,
            other => Some(other.principal()),
        },
        stdin,
    };
    let (out, result) =
        tokio::task::spawn_blocking(move || capture(ctx, || crate::cli::command::dispatch(cmd)))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    if changes_tokens {
        // A token added or revoked counts from the next request on.
        app.auth.reload(&app.tokens_path);
    }
    if access == Access::Decide {
        // A decision is answered once the live feed (and with it the kill
        // switches' gate) has seen it: after `argusctl release` returns,
        // agents' next appends are judged by the released state.
        let target = app.log.committed().get();
        let mut head = app.feed.head.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            head.wait_for(|h| *h >= target),
        )
        .await;
    }
    let code = result.map_err(|e| command_error(&e))?;
    if code != 0 && !out.stderr.is_empty() {
        // The command refused and said why on stderr (a bad config line,
        // say): that is the answer, with its exit code.
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let status = if code == crate::cli::EXIT_USAGE {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let message = stderr
            .trim_end()
            .trim_start_matches("argusctl: ")
            .to_string();
        let mut e = ApiError::new(
            status,
            if code == crate::cli::EXIT_USAGE {
                "bad_request"
            } else {
                "command_failed"
            },
            message,
        );
        e.stderr = Some(stderr);
        e.exit = Some(code);
        return Err(e);
    }
    let mut r = (StatusCode::OK, out.stdout).into_response();
    let ct = match body {
        Body::Object => "application/json",
        Body::Lines => "application/x-ndjson",
        Body::Text => "text/plain; charset=utf-8",
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Ok(v) = HeaderValue::from_str(&code.to_string()) {
        r.headers_mut().insert("x-argus-exit", v);
    }
    Ok(r)
}

/// A command's failure as its HTTP answer, by the error's type, never its
/// text: the message is what `argusctl` prints after "argusctl: ".
fn command_error(e: &anyhow::Error) -> ApiError {
    let message = crate::cli::error::chain_text(e);
    let mut err = classify(e, message);
    err.exit = Some(exit_code(e));
    err
}

/// The exit code argusctl gives for `e` (see `cli::command::exit_code`).
fn exit_code(e: &anyhow::Error) -> i32 {
    crate::cli::command::exit_code(e)
}

fn classify(e: &anyhow::Error, message: String) -> ApiError {
    if let Some(c) = e.chain().find_map(|c| c.downcast_ref::<CommandError>()) {
        return match c {
            CommandError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            CommandError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            CommandError::Invalid(_) => ApiError::bad_request(message),
        };
    }
    if let Some(err) = e.chain().find_map(|c| c.downcast_ref::<crate::Error>()) {
        match err {
            crate::Error::Lockdown(_) | crate::Error::WriterGone => {
                return ApiError::lockdown(message)
            }
            crate::Error::InvalidEntry { .. } => return ApiError::bad_request(message),
            crate::Error::Unauthorized { .. } => return ApiError::forbidden(message),
            _ => return ApiError::internal(message),
        }
    }
    if e.chain().any(|c| c.is::<std::io::Error>()) {
        return ApiError::internal(message);
    }
    // What is left is a command refusing its input ("separation of duties:
    // ...", a bad --day): the caller's to fix.
    ApiError::bad_request(message)
}

/// How a route's parameters become options.
#[derive(Clone, Copy)]
pub enum Opt {
    /// `name=true` → `--name`.
    Switch(&'static str),
    /// `name=v` → `--name=v` (repeatable when the value is an array).
    Value(&'static str),
}

/// A REST route as a command line: the words before the directory, the
/// words after it, the path parameters (positional, in order) and the
/// options taken from the query (GET) or the JSON body (POST).
pub struct Spec {
    pub words: &'static [&'static str],
    pub positional: &'static [&'static str],
    pub opts: &'static [Opt],
    /// Takes `-o`; `format=text|json` chooses it (json by default).
    pub formats: bool,
    /// Prints one JSON object per row (NDJSON) rather than one object.
    pub list: bool,
}

/// Builds the argv of `spec` from path parameters and options. A
/// positional named `--x` becomes the option `--x=VALUE`; one missing from
/// the path is taken from the options (a JSON body's `"to"`, say).
pub fn argv(
    spec: &Spec,
    path: &std::collections::HashMap<String, String>,
    mut opts: serde_json::Map<String, Value>,
) -> Result<(Vec<String>, Body), ApiError> {
    let mut argv: Vec<String> = spec.words.iter().map(|w| w.to_string()).collect();
    // Every command but `kinds` names a log; the daemon's is put in its place.
    if spec.words != ["kinds"] {
        argv.push(".".into());
    }
    let mut positional = Vec::new();
    for name in spec.positional {
        let key = name.trim_start_matches("--");
        let value = match path.get(key) {
            Some(v) => v.clone(),
            None => match opts.remove(key) {
                Some(Value::String(s)) => s,
                Some(_) => return Err(ApiError::bad_request(format!("{key}: expected a string"))),
                None => return Err(ApiError::bad_request(format!("{key} is required"))),
            },
        };
        if name.starts_with("--") {
            argv.push(format!("{name}={value}"));
        } else {
            positional.push(value);
        }
    }
    let mut format = "json".to_string();
    for (k, v) in &opts {
        if k == "format" && spec.formats {
            format = match v.as_str() {
                Some(f @ ("json" | "text")) => f.to_string(),
                _ => return Err(ApiError::bad_request("format: expected json or text")),
            };
            continue;
        }
        let opt = spec
            .opts
            .iter()
            .find(|o| matches!(o, Opt::Switch(n) | Opt::Value(n) if n == k))
            .ok_or_else(|| {
                let known: Vec<&str> = spec
                    .opts
                    .iter()
                    .map(|o| match o {
                        Opt::Switch(n) | Opt::Value(n) => *n,
                    })
                    .collect();
                ApiError::bad_request(format!(
                    "unknown parameter {k:?} (this route takes: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ))
            })?;
        let flag = format!("--{}", k.replace('_', "-"));
        match (opt, v) {
            (Opt::Switch(_), Value::Bool(true)) => argv.push(flag),
            (Opt::Switch(_), Value::String(s)) if s == "true" => argv.push(flag),
            (Opt::Switch(_), Value::Bool(false)) => {}
            (Opt::Switch(_), Value::String(s)) if s == "false" => {}
            (Opt::Switch(_), _) => {
                return Err(ApiError::bad_request(format!(
                    "{k}: expected true or false"
                )))
            }
            (Opt::Value(_), Value::Array(items)) => {
                for i in items {
                    argv.push(format!("{flag}={}", scalar(k, i)?));
                }
            }
            (Opt::Value(_), v) => argv.push(format!("{flag}={}", scalar(k, v)?)),
        }
    }
    if spec.formats {
        argv.push(format!("--output={format}"));
    }
    if !positional.is_empty() {
        argv.push("--".into());
        argv.extend(positional);
    }
    let body = match (format.as_str(), spec.list, spec.formats) {
        (_, _, false) if spec.words == ["checkpoint"] => Body::Text,
        ("text", _, true) => Body::Text,
        (_, true, _) => Body::Lines,
        _ => Body::Object,
    };
    Ok((argv, body))
}

fn scalar(k: &str, v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ApiError::bad_request(format!(
            "{k}: expected a string, number or boolean"
        ))),
    }
}

use Opt::{Switch, Value as Val};

macro_rules! spec {
    (list $words:expr, [$($pos:expr),*], [$($opt:expr),*], $formats:expr) => {
        Spec { words: $words, positional: &[$($pos),*], opts: &[$($opt),*], formats: $formats, list: true }
    };
    ($words:expr, [$($pos:expr),*], [$($opt:expr),*], $formats:expr) => {
        Spec { words: $words, positional: &[$($pos),*], opts: &[$($opt),*], formats: $formats, list: false }
    };
}

/// `GET` views: (route, spec).
pub static VIEWS: &[(&str, Spec)] = &[
    ("/v1/status", spec!(&["status"], [], [], true)),
    ("/v1/stats", spec!(&["stats"], [], [], false)),
    ("/v1/checkpoint", spec!(&["checkpoint"], [], [], false)),
    ("/v1/kinds", spec!(list & ["kinds"], [], [], true)),
    ("/v1/jobs", spec!(list & ["jobs"], [], [Val("job")], true)),
    ("/v1/jobs/{job}", spec!(&["jobs"], ["--job"], [], true)),
    (
        "/v1/agents",
        spec!(list & ["agents"], [], [Val("slug")], true),
    ),
    (
        "/v1/agents/{slug}",
        spec!(&["agents"], ["--slug"], [], true),
    ),
    (
        "/v1/routes/{task_type}",
        spec!(
            &["route"],
            ["task_type"],
            [Val("max_cost"), Val("context_length")],
            true
        ),
    ),
    ("/v1/flags", spec!(list & ["flags"], [], [], true)),
    (
        "/v1/flags/{key}",
        spec!(&["flag", "is-enabled"], ["key"], [Val("context")], true),
    ),
    (
        "/v1/memory",
        spec!(list & ["memory"], [], [Val("status")], true),
    ),
    (
        "/v1/approvals",
        spec!(list & ["approvals", "list"], [], [Switch("all")], true),
    ),
    (
        "/v1/approvals/{id}",
        spec!(&["approvals", "show"], ["id"], [], true),
    ),
    ("/v1/mode", spec!(&["mode", "show"], [], [], true)),
    (
        "/v1/dlq",
        spec!(list & ["dlq", "list"], [], [Switch("all")], true),
    ),
    ("/v1/dlq/{job}", spec!(&["dlq", "show"], ["job"], [], true)),
    (
        "/v1/sla",
        spec!(
            list & ["sla"],
            [],
            [Switch("breaches"), Switch("jobs")],
            true
        ),
    ),
    (
        "/v1/breakers",
        spec!(list & ["breakers"], [], [Val("check")], true),
    ),
    (
        "/v1/workers",
        spec!(
            list & ["workers"],
            [],
            [
                Val("stale_after_s"),
                Val("stuck_after_s"),
                Val("rss_max_mb"),
                Switch("all")
            ],
            true
        ),
    ),
    (
        "/v1/policies",
        spec!(list & ["policy", "list"], [], [], true),
    ),
    (
        "/v1/budget",
        spec!(list & ["budget"], [], [Val("agent"), Val("day")], true),
    ),
    ("/v1/incident", spec!(&["incident"], [], [], true)),
    ("/v1/control", spec!(&["control"], [], [], true)),
    (
        "/v1/anomalies",
        spec!(
            list & ["anomalies"],
            [],
            [Val("lines"), Val("severity")],
            true
        ),
    ),
    (
        "/v1/projections",
        spec!(list & ["projections", "status"], [], [], true),
    ),
    (
        "/v1/inspect/{seq}",
        spec!(&["inspect"], ["seq"], [Val("scan")], true),
    ),
    (
        "/v1/diff/{job_a}/{job_b}",
        spec!(&["diff"], ["job_a", "job_b"], [], true),
    ),
];

/// `POST` decisions and checks: (route, spec). Options come from the JSON body.
pub static DECISIONS: &[(&str, Spec)] = &[
    (
        "/v1/kill",
        spec!(
            &["kill"],
            [],
            [Val("reason"), Val("job"), Val("agent")],
            true
        ),
    ),
    (
        "/v1/lockdown",
        spec!(&["lockdown"], [], [Val("reason")], true),
    ),
    (
        "/v1/release",
        spec!(&["release"], [], [Val("reason"), Val("seq")], true),
    ),
    (
        "/v1/approvals/{id}/approve",
        spec!(
            &["approvals", "approve"],
            ["id"],
            [Val("reason"), Val("hash"), Val("actor")],
            true
        ),
    ),
    (
        "/v1/approvals/{id}/reject",
        spec!(
            &["approvals", "reject"],
            ["id"],
            [Val("reason"), Val("actor")],
            true
        ),
    ),
    (
        "/v1/approvals/sweep",
        spec!(&["approvals", "sweep"], [], [], true),
    ),
    (
        "/v1/mode",
        spec!(
            &["mode", "set"],
            ["to"],
            [Val("reason"), Val("recommendation")],
            true
        ),
    ),
    (
        "/v1/dlq/{job}/replay",
        spec!(&["dlq", "replay"], ["job"], [], true),
    ),
    (
        "/v1/dlq/{job}/discard",
        spec!(&["dlq", "discard"], ["job"], [Val("reason")], true),
    ),
    (
        "/v1/flags/{key}",
        spec!(
            &["flag", "set"],
            ["key"],
            [
                Val("enabled"),
                Val("rollout_pct"),
                Val("target"),
                Val("expires_at")
            ],
            true
        ),
    ),
    (
        "/v1/memory/sweep",
        spec!(&["memory", "--sweep"], [], [], true),
    ),
    (
        "/v1/policy/check",
        spec!(
            &["policy", "check"],
            [],
            [
                Val("agent"),
                Val("tool"),
                Val("cost"),
                Val("domain"),
                Val("job"),
                Val("action")
            ],
            true
        ),
    ),
];
