//! `POST /v1/entries`: appends from many producers into one group commit.
//!
//! A request is a JSON object, a JSON array, or NDJSON. Each line is read by
//! `argusctl append`'s parser, so a bad line gets the same message over
//! HTTP; one bad line refuses the whole request. Parsing runs on the
//! blocking pool and `Log::append` waits there for its fsync, so slow
//! clients and fsyncs never stall the async threads. A streaming request
//! (NDJSON in and out) commits each chunk of complete lines as it arrives
//! and answers with its acks at once, like `argusctl append` over a pipe.
use super::auth::Caller;
use super::errors::ApiError;
use super::routes::App;
use crate::cli::append::{entry_from_value, parse_json_line};
use crate::log::entry::ValidEntry;
use crate::secrets::Redactor;
use crate::Ack;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Ndjson,
}

pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "" => Ok(BodyKind::Json),
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Ok(BodyKind::Ndjson)
        }
        other => Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {other:?}: send application/json or application/x-ndjson"),
        )),
    }
}

fn accepts_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/x-ndjson"))
}

/// Waits up to the overload bound for a queue slot. The slot is held until
/// the request's entries are durable, so the queue depth is what the
/// writer still owes.
pub async fn admit(app: &App) -> Result<OwnedSemaphorePermit, ApiError> {
    if let Some(cause) = app.log.committed().lockdown() {
        return Err(ApiError::lockdown(format!(
            "the log is in lockdown after a write failure ({cause}); nothing is accepted until argusd is restarted"
        )));
    }
    let wait = super::config::Limits::ms(app.limits.overload_wait_ms);
    match tokio::time::timeout(wait, app.queue.clone().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err(ApiError::overloaded(1)),
    }
}

/// Reads a whole body, refusing it past `limit` bytes (413) or past the
/// request deadline.
pub async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = app.limits.body_bytes_max;
    let too_large = || {
        ApiError::too_large(format!(
            "the request body is over the {limit}-byte limit (limits.body_bytes_max); split the batch"
        ))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let wait = super::config::Limits::ms(app.limits.request_timeout_ms);
    let collect = http_body_util::Limited::new(body, limit).collect();
    match tokio::time::timeout(wait, collect).await {
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive within {} ms",
                app.limits.request_timeout_ms
            ),
        )),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

/// One request's entries, each with its line (NDJSON) or position (array)
/// in the request, or the first refusal.
pub fn parse_body(
    bytes: &[u8],
    kind: BodyKind,
    caller: &Caller,
    rules: &Redactor,
    line_max: usize,
    first_line: u64,
) -> (Vec<(u64, ValidEntry)>, Option<ApiError>) {
    let actor = caller.entry_actor().to_string();
    let mut out = Vec::new();
    let one = |line: u64, v: Value| check(v, line, caller, &actor, rules);
    match kind {
        BodyKind::Json => {
            let value = match parse_json_line(bytes) {
                Ok(v) => v,
                Err(m) => return (out, Some(ApiError::invalid_line(1, m))),
            };
            let items = match value {
                Value::Array(items) => items,
                v => vec![v],
            };
            for (i, v) in items.into_iter().enumerate() {
                match one(i as u64 + 1, v) {
                    Ok(e) => out.push((i as u64 + 1, e)),
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        BodyKind::Ndjson => {
            for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                let n = first_line + i as u64;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if line.len() > line_max {
                    let mut e = ApiError::too_large(format!(
                        "line {n} is over the {line_max}-byte line limit (limits.line_bytes_max)"
                    ));
                    e.line = Some(n);
                    return (out, Some(e));
                }
                let parsed = parse_json_line(line)
                    .map_err(|m| ApiError::invalid_line(n, m))
                    .and_then(|v| one(n, v));
                match parsed {
                    Ok(e) => out.push((n, e)),
                    Err(e) => return (out, Some(e)),
                }
            }
        }
    }
    (out, None)
}

/// The caller's rules for one entry, then the writer's.
fn check(
    mut v: Value,
    line: u64,
    caller: &Caller,
    actor: &str,
    rules: &Redactor,
) -> Result<ValidEntry, ApiError> {
    if let (Some(own), Value::Object(obj)) = (caller.own_agent(), &mut v) {
        match obj.get("agent") {
            None | Some(Value::Null) => {
                obj.insert("agent".into(), Value::String(own.to_string()));
            }
            Some(Value::String(a)) if a == own => {}
            Some(Value::String(a)) => {
                let mut e = ApiError::forbidden(format!(
                    "line {line}: field `agent`: the agent {own:?} may write only its own entries, not {a:?}'s; nothing of this request was written"
                ));
                e.line = Some(line);
                e.field = Some("agent".into());
                e.reason = Some(format!(
                    "field `agent`: the agent {own:?} may write only its own entries, not {a:?}'s"
                ));
                return Err(e);
            }
            // Not a string: the parser names the type error.
            Some(_) => {}
        }
    }
    entry_from_value(v, actor, rules).map_err(|r| {
        if r.redaction.is_some() {
            let mut e = ApiError::invalid_line(line, r.message);
            e.redaction = r.redaction;
            e
        } else if r.unauthorized {
            let mut e = ApiError::forbidden(format!(
                "line {line}: {}; nothing of this request was written",
                r.message
            ));
            e.line = Some(line);
            e.field = Some("kind".into());
            e.reason = Some(r.message);
            e
        } else {
            ApiError::invalid_line(line, r.message)
        }
    })
}

fn ack_json(a: &Ack) -> String {
    format!(r#"{{"seq":{},"hash":"{}"}}"#, a.seq, hex::encode(a.hash))
}

/// Appends parsed entries; the engine's own refusals name the entry's line.
/// The request waits for its fdatasync without holding a thread: the
/// writer completes it through a oneshot.
async fn append(app: &App, parsed: Vec<(u64, ValidEntry)>) -> Result<Vec<Ack>, ApiError> {
    for (line, e) in &parsed {
        if crate::authority::Class::of_actor(&e.actor) != crate::authority::Class::Agent {
            continue;
        }
        // A call already started may still record how it ended (a command
        // `argusctl exec` terminated because of the kill, say): requests
        // already accepted complete, and the record stays whole. A
        // completion that never started is a causal finding of its own.
        if matches!(e.kind.as_str(), "tool.call_completed" | "tool.call_failed") {
            continue;
        }
        if let Some(r) = app.gate.refusal(e.agent.as_deref(), e.job_id.as_deref()) {
            metrics::counter!("argus_requests_rejected_total", "reason" => "killed").increment(1);
            return Err(ApiError::killed(*line, &r));
        }
    }
    let lines: Vec<u64> = parsed.iter().map(|(l, _)| *l).collect();
    let line_of = |i: usize| lines.get(i.saturating_sub(1)).copied().unwrap_or(0);
    let entries: Vec<ValidEntry> = parsed.into_iter().map(|(_, e)| e).collect();
    let n = entries.len();
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.log
        .submit(entries, move |r| {
            let _ = tx.send(r);
        })
        .map_err(|e| ApiError::from_append(&e, line_of))?;
    let acks = rx
        .await
        .map_err(|_| ApiError::lockdown("the writer thread has stopped"))?
        .map_err(|e| ApiError::from_append(&e, line_of))?;
    metrics::counter!("argus_append_requests_total").increment(1);
    metrics::counter!("argus_appended_entries_total").increment(n as u64);
    Ok(acks)
}

/// Bodies up to this size are parsed on the request's own task (a few
/// entries take microseconds); larger ones on the blocking pool, so a big
/// batch never stalls other connections.
const INLINE_PARSE_BYTES: usize = 64 << 10;

type Parsed = (Vec<(u64, ValidEntry)>, Option<ApiError>);

async fn parse(
    app: &App,
    bytes: Bytes,
    kind: BodyKind,
    caller: &Caller,
    first_line: u64,
) -> Result<Parsed, ApiError> {
    let rules = app.gate.rules();
    let line_max = app.limits.line_bytes_max;
    let (parsed, bad) = if bytes.len() <= INLINE_PARSE_BYTES {
        parse_body(&bytes, kind, caller, rules.redactor(), line_max, first_line)
    } else {
        let caller = caller.clone();
        let r = rules.clone();
        tokio::task::spawn_blocking(move || {
            parse_body(&bytes, kind, &caller, r.redactor(), line_max, first_line)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    };
    Ok((parsed, bad))
}

/// ADR-018 S2: a payload redaction could not finish on is refused, and
/// `redaction.failed` with `lockdown.set` is committed before the answer,
/// which becomes 423 naming both seqs. The lines before it in a stream stay
/// committed, as for any bad line.
async fn emergency_stop(app: &App, e: &mut ApiError) {
    let Some(failure) = e.redaction.take() else {
        return;
    };
    let rules_seq = app.gate.rules().seq();
    let entries = crate::cli::append::emergency::entries(&failure, e.line, rules_seq);
    let log = app.log.clone();
    let written = tokio::task::spawn_blocking(move || log.append(entries)).await;
    let line = e.line.unwrap_or(0);
    let recorded = match written {
        Ok(Ok(acks)) => {
            e.decision_seq = acks.last().map(|a| a.seq);
            let seqs: Vec<String> = acks.iter().map(|a| a.seq.to_string()).collect();
            format!(
                "emergency stop: redaction.failed and lockdown.set recorded (seqs {}); agents are refused until an operator runs `argusctl release`",
                seqs.join(", ")
            )
        }
        Ok(Err(err)) => {
            tracing::error!(error = %err, "the redaction emergency stop could not be recorded");
            format!("the emergency stop could not be recorded ({err})")
        }
        Err(err) => format!("the emergency stop could not be recorded ({err})"),
    };
    tracing::error!(line, reason = %failure.reason, "redaction failed: emergency stop");
    metrics::counter!("argus_redaction_failures_total").increment(1);
    e.status = axum::http::StatusCode::LOCKED;
    e.kind = "redaction_failed";
    e.exit = Some(crate::cli::EXIT_KILLED);
    e.message = format!(
        "line {line}: field `payload`: {}; nothing of this request was written; {recorded}",
        failure.reason
    );
}

pub async fn post_entries(
    app: Arc<App>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = body_kind(&headers)?;
    if kind == BodyKind::Ndjson && accepts_ndjson(&headers) {
        return Ok(stream_append(app, caller, body));
    }
    let bytes = read_body(&app, &headers, body).await?;
    let permit = admit(&app).await?;
    let (parsed, bad) = parse(&app, bytes, kind, &caller, 1).await?;
    if let Some(mut e) = bad {
        emergency_stop(&app, &mut e).await;
        return Err(e);
    }
    if parsed.is_empty() {
        return Err(ApiError::bad_request("the request holds no entries"));
    }
    let acks = append(&app, parsed).await?;
    drop(permit);
    let mut body = String::with_capacity(acks.len() * 90 + 2);
    body.push('[');
    for (i, a) in acks.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&ack_json(a));
    }
    body.push_str("]\n");
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Bytes gathered from the body before a chunk is committed: what is
/// already there, up to this much, goes in one group commit.
const GATHER_BYTES: usize = 1 << 20;

fn stream_append(app: Arc<App>, caller: Caller, body: Body) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        if let Err(e) = pump(&app, &caller, body, &tx).await {
            let _ = tx.send(Bytes::from(format!("{}\n", e.json_line()))).await;
        }
    });
    let mut r = super::stream::lines_body(rx).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r
}

/// Commits a streamed body chunk by chunk, acking each entry as its chunk
/// becomes durable. Ends with an error line at the first bad line (every
/// line before it stays committed), on an idle stream, or when argusd stops.
async fn pump(
    app: &Arc<App>,
    caller: &Caller,
    body: Body,
    tx: &mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let mut data = body.into_data_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut next_line = 1u64;
    let mut shutdown = app.shutdown.clone();
    let idle = super::config::Limits::ms(app.limits.stream_idle_timeout_ms);
    let line_max = app.limits.line_bytes_max;
    let mut stopping = false;
    loop {
        let mut eof = false;
        tokio::select! {
            c = tokio::time::timeout(idle, data.next()) => match c {
                Err(_) => {
                    return Err(ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, "timeout",
                        format!("nothing arrived for {} ms; stream ended, resume from line {next_line}", app.limits.stream_idle_timeout_ms)));
                }
                Ok(None) => eof = true,
                Ok(Some(Ok(b))) => buf.extend_from_slice(&b),
                Ok(Some(Err(e))) => return Err(ApiError::bad_request(format!("reading the body: {e}; resume from line {next_line}"))),
            },
            _ = shutdown.changed() => { eof = true; stopping = true; }
        }
        // Take what else is already here into the same commit.
        while !eof && buf.len() < GATHER_BYTES {
            match data.next().now_or_never() {
                Some(Some(Ok(b))) => buf.extend_from_slice(&b),
                Some(None) => eof = true,
                _ => break,
            }
        }
        let cut = if eof {
            buf.len()
        } else {
            buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1)
        };
        if cut == 0 {
            if buf.len() > line_max {
                let mut e = ApiError::too_large(format!(
                    "line {next_line} is over the {line_max}-byte line limit (limits.line_bytes_max)"
                ));
                e.line = Some(next_line);
                return Err(e);
            }
            if eof {
                break;
            }
            continue;
        }
        let chunk = Bytes::from(buf.drain(..cut).collect::<Vec<u8>>());
        let first = next_line;
        next_line += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        let permit = admit(app).await?;
        let (parsed, bad) = parse(app, chunk, BodyKind::Ndjson, caller, first).await?;
        let acks = if parsed.is_empty() {
            Vec::new()
        } else {
            append(app, parsed).await?
        };
        drop(permit);
        let mut out = String::with_capacity(acks.len() * 90);
        for a in &acks {
            out.push_str(&ack_json(a));
            out.push('\n');
        }
        if !out.is_empty() && tx.send(Bytes::from(out)).await.is_err() {
            // Nobody reads the acks: stop committing what nobody knows is stored.
            return Ok(());
        }
        if let Some(mut e) = bad {
            emergency_stop(app, &mut e).await;
            return Err(e);
        }
        if stopping {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                format!("argusd is stopping; every line before line {next_line} is committed; resume from it"),
            ));
        }
        if eof {
            break;
        }
    }
    Ok(())
}
