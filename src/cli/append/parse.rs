//! One input line to a checked entry: the strict JSON reader, the entry's
//! top-level fields, then the writer's rules, each refusal naming its field.
//! `argusd` reads request bodies through this too, so a bad line gets the
//! same message over HTTP as on `argusctl append`'s stdin.
use crate::authority::Class;
use crate::log::entry::{Field, Problem, ValidEntry};
use crate::secrets::Redactor;
use crate::NewEntry;
use serde_json::Value;

/// Longest accepted input line. The payload limit is 4 MiB; this leaves
/// room for JSON escaping and the other fields.
pub const LINE_BYTES_MAX: usize = 8 * 1024 * 1024;
const FIELDS: &[&str; 6] = &["kind", "job_id", "step_id", "agent", "parent", "payload"];

/// A refused input line: its 1-based number in the run's input, and why.
#[derive(Debug)]
pub struct LineError {
    pub line: u64,
    pub message: String,
    /// Set when the line was refused because redaction could not finish:
    /// the caller raises the emergency stop.
    pub redaction: Option<Box<RedactionFailure>>,
}

impl LineError {
    pub fn new(line: u64, message: String) -> Self {
        Self {
            line,
            message,
            redaction: None,
        }
    }
}

/// Why a line was refused; `unauthorized` when the writer's class may not
/// write the entry's kind (a daemon answers that with 403, not 400).
#[derive(Debug)]
pub struct Refusal {
    pub message: String,
    pub unauthorized: bool,
    pub redaction: Option<Box<RedactionFailure>>,
}

/// An agent's entry whose payload the redaction scan could not finish on
/// (ADR-018 S2): what `redaction.failed` records about it. Never the
/// payload itself, which may hold the very secret the scan was after.
#[derive(Debug, Clone)]
pub struct RedactionFailure {
    pub reason: String,
    pub kind: String,
    pub actor: String,
    pub agent: Option<String>,
    pub job_id: Option<String>,
    pub payload_bytes: usize,
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self {
            message,
            unauthorized: false,
            redaction: None,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// An optional string field, moved out of the line's JSON (not cloned).
fn opt_string(value: Option<Value>, field: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "field `{field}`: expected a string, got {}",
            type_name(&other)
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A strict-reader error as the line's message: the field path, then why.
fn line_json_error(e: &crate::json::JsonError) -> String {
    let what = if e.reason.is_syntax() {
        format!("malformed JSON: {}", e.reason)
    } else {
        e.reason.to_string()
    };
    if e.pointer.is_empty() {
        format!("{what} (byte {})", e.column)
    } else {
        format!("field `{}`: {what} (byte {})", e.field(), e.column)
    }
}

/// Parses one input line into an entry, naming the field that is wrong,
/// with the built-in redaction rules.
pub fn parse_line(bytes: &[u8], actor: &str) -> Result<ValidEntry, String> {
    let rules = crate::secrets::builtin().map_err(|e| format!("redaction rules: {e}"))?;
    parse_line_with(bytes, actor, rules).map_err(|r| r.message)
}

/// Parses one input line into an entry under `rules`, naming the field
/// that is wrong.
pub fn parse_line_with(bytes: &[u8], actor: &str, rules: &Redactor) -> Result<ValidEntry, Refusal> {
    // The usual line has only entry fields: they are read into slots, with
    // no map built for them. Anything else (another type, an unknown field)
    // is read whole, so its refusal is worded exactly as always.
    let slots = crate::json::parse_members(bytes, LINE_BYTES_MAX, FIELDS)
        .map_err(|e| line_json_error(&e))?;
    let fields = match slots {
        Some(slots) => fields_of(slots, actor)?,
        None => entry_fields(parse_json_line(bytes)?, actor)?,
    };
    // The payload's canonical form is rarely longer than the line it came
    // in: one allocation for it instead of a few growing ones.
    checked(fields, bytes.len(), rules)
}

/// One input line as JSON, read strictly: a duplicate `kind` or a number
/// the payload could not keep is refused here, naming the field, instead of
/// silently changed.
pub fn parse_json_line(bytes: &[u8]) -> Result<Value, String> {
    crate::json::parse(bytes, LINE_BYTES_MAX).map_err(|e| line_json_error(&e))
}

/// An input line's JSON as an entry written by `actor`, naming the field
/// that is wrong.
pub fn entry_from_value(
    value: Value,
    actor: &str,
    rules: &Redactor,
) -> Result<ValidEntry, Refusal> {
    checked(entry_fields(value, actor)?, 128, rules)
}

/// The writer's rules on an entry's fields, with room for `payload_hint`
/// bytes of canonical payload.
fn checked(
    fields: (NewEntry, Value),
    payload_hint: usize,
    rules: &Redactor,
) -> Result<ValidEntry, Refusal> {
    let (mut entry, mut payload) = fields;
    entry.payload.reserve(payload_hint);
    // Secrets are cut out of agents' payloads before they are hashed: the
    // log can never be edited (docs/REDACTION.md, "At ingestion"). A payload
    // the scan cannot finish is refused whole, never written unscanned, and
    // the refusal carries what the emergency stop records. Operators' and
    // Argus's entries are decisions, taken as written.
    if Class::of_actor(&entry.actor) == Class::Agent {
        if let Err(e) = rules.redact(&mut payload) {
            let redaction = e.is_failure().then(|| {
                Box::new(RedactionFailure {
                    reason: e.to_string(),
                    kind: entry.kind.clone(),
                    actor: entry.actor.clone(),
                    agent: entry.agent.clone(),
                    job_id: entry.job_id.clone(),
                    payload_bytes: crate::json::to_canonical(&payload).len(),
                })
            });
            return Err(Refusal {
                message: format!("field `payload`: {e}"),
                unauthorized: false,
                redaction,
            });
        }
    }
    // The writer's rules, judged here on the value just read so the error
    // names this line rather than the batch, and so the payload is parsed
    // and schema-checked once: `Log::append` takes the `ValidEntry` as is.
    let registry = crate::registry::builtin().map_err(Refusal::from)?;
    ValidEntry::from_value(entry, &payload, registry).map_err(|p| Refusal {
        message: line_problem(&p),
        unauthorized: matches!(p, Problem::Unauthorized(_)),
        redaction: None,
    })
}

/// The entry's fields and its payload, each checked for its JSON type, in
/// the order the messages have always named them: an unknown field, then
/// kind, parent, job_id, step_id, agent.
fn entry_fields(value: Value, actor: &str) -> Result<(NewEntry, Value), String> {
    let Value::Object(mut obj) = value else {
        return Err(format!("expected a JSON object, got {}", type_name(&value)));
    };
    if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{k}` (allowed: {})",
            FIELDS.join(", ")
        ));
    }
    fields_of(FIELDS.map(|f| obj.remove(f)), actor)
}

/// The entry fields by their index in [`FIELDS`], each checked for its
/// JSON type in the order the messages have always named them.
fn fields_of(slots: [Option<Value>; 6], actor: &str) -> Result<(NewEntry, Value), String> {
    let [kind, job_id, step_id, agent, parent, payload] = slots;
    let kind = match kind {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(format!(
                "field `kind`: expected a string, got {}",
                type_name(&other)
            ))
        }
        None => return Err("field `kind` is required".into()),
    };
    let parent = match parent {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or("field `parent`: expected a non-negative integer seq")?,
        ),
        Some(other) => {
            return Err(format!(
                "field `parent`: expected an integer seq, got {}",
                type_name(&other)
            ))
        }
    };
    let entry = NewEntry {
        kind,
        job_id: opt_string(job_id, "job_id")?,
        step_id: opt_string(step_id, "step_id")?,
        agent: opt_string(agent, "agent")?,
        actor: actor.to_string(),
        parent,
        payload: Vec::new(),
    };
    Ok((entry, payload.unwrap_or(Value::Null)))
}

/// A refused entry as the line's message, naming the field by the
/// problem's variant (never by its text).
fn line_problem(p: &Problem) -> String {
    match p {
        Problem::Schema(r) => format!(
            "field `{}`: {}",
            r.path.trim_start_matches('/').replace('/', "."),
            r.reason
        ),
        p if p.field() == Field::Kind => format!("field `kind`: {p}"),
        p => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line's payload is stored as exactly the canonical bytes the JSON
    /// writer pins for the same input (what the payload hash covers).
    #[test]
    fn lines_store_the_pinned_canonical_payload_bytes() {
        for (input, want) in crate::json::tests::CANONICAL_CORPUS {
            let line = format!(r#"{{"kind":"x.corpus","job_id":"j","payload":{input}}}"#);
            let e = parse_line(line.as_bytes(), "agent:uid:1:t").expect(input);
            assert_eq!(String::from_utf8_lossy(&e.payload), *want, "{line}");
        }
    }
}
