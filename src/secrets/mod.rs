//! Redaction at ingestion (ADR-018 S2): secrets are cut out of an agent's
//! payload before it is hashed and written, because the log can never be
//! edited. Erasure after the fact (`argusctl redact`) exists, but every copy
//! made before it keeps the secret; the cheap place to stop one is here.
//!
//! Every string in the payload is matched against the rules; a match is
//! replaced by `[REDACTED:<rule>]`, so the stored entry itself records which
//! rules fired and where. Values under keys that name a secret (`password`,
//! `api_key`, ...) are replaced whole, which catches a secret split into a
//! name field and a value field. Adjacent strings of an array are also
//! matched joined by newlines, which catches a private-key block split into
//! one element per line.
//!
//! Rules are `regex` expressions: linear time, no backtracking, compiled
//! under a size limit. The work per payload is bounded too: a payload with
//! more string bytes than [`SCAN_BYTES_MAX`] is not scanned but refused,
//! since writing it unscanned could store a secret, and so is one whose
//! scan runs past the configured time bound. Either is a redaction failure,
//! which the caller turns into an aborted write and an emergency stop
//! ([`RedactError::is_failure`]).
mod config;
pub mod mirror;
mod rules;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
pub use rules::DEFAULT_RULES;
use serde_json::Value;
use std::time::{Duration, Instant};
use thiserror::Error;

pub use config::RulesConfig;
pub use mirror::{ActiveRules, MirrorError};

/// String bytes one payload may hold and still be scanned (the payload
/// limit is 4 MiB; joined array elements count again).
pub const SCAN_BYTES_MAX: usize = 16 << 20;
/// Compiled-program limit per rule: a configured rule that would be large
/// or slow to match is refused when the rules are built.
const SIZE_LIMIT: usize = 1 << 20;
/// Marker prefix; a value already in this form is not scanned again.
pub const MARKER: &str = "[REDACTED:";

#[derive(Debug, Error)]
pub enum RedactError {
    #[error("redaction rule {name}: {reason}")]
    Rule { name: String, reason: String },
    #[error("the payload holds {bytes} bytes of strings, more than the {max} the redaction scan may examine; it was not written")]
    Budget { bytes: usize, max: usize },
    #[error("the redaction scan passed its {ms} ms bound (scan_ms_max) before it finished; the payload was not written")]
    Deadline { ms: u128 },
}

impl RedactError {
    /// A scan that could not finish on this payload, as opposed to rules
    /// that cannot be built: what ADR-018 S2 answers with an emergency
    /// stop, since the rules in force could not be applied.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Budget { .. } | Self::Deadline { .. })
    }
}

pub struct Redactor {
    rules: Vec<(String, Regex)>,
    /// `rules::ANCHORS`, when only the default rules are in use.
    anchors: Option<AhoCorasick>,
    key_anchors: AhoCorasick,
    /// All rules at once: one pass over a clean string, the common case.
    any: RegexSet,
    /// Object keys whose string values are secrets whatever they look like.
    secret_keys: Regex,
    budget: usize,
    /// Wall-clock bound on one payload's scan, checked between strings.
    deadline: Option<Duration>,
}

/// One payload's scan: which rules fired, how often, and the clock.
struct Scan {
    fired: Vec<bool>,
    count: usize,
    start: Instant,
    deadline: Option<Duration>,
    expired: bool,
}

impl Scan {
    /// Whether the scan must stop now; once true it stays true.
    fn out_of_time(&mut self) -> bool {
        if !self.expired {
            self.expired = self.deadline.is_some_and(|d| self.start.elapsed() > d);
        }
        self.expired
    }
}

/// What redaction did to one payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redacted {
    /// Names of the rules that fired, each once, in rule order.
    pub rules: Vec<String>,
    /// Replacements made.
    pub count: usize,
}

impl Redactor {
    /// The default rules plus `configured` (name, regex) pairs.
    pub fn new(configured: &[(String, String)]) -> Result<Self, RedactError> {
        Self::with_budget(configured, SCAN_BYTES_MAX)
    }

    pub fn with_budget(
        configured: &[(String, String)],
        budget: usize,
    ) -> Result<Self, RedactError> {
        let mut rules = Vec::new();
        let pairs = DEFAULT_RULES
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .chain(configured.iter().cloned());
        for (name, pat) in pairs {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(RedactError::Rule {
                    name,
                    reason: "a rule name is letters, digits and _".into(),
                });
            }
            let re = RegexBuilder::new(&pat)
                .size_limit(SIZE_LIMIT)
                .dfa_size_limit(SIZE_LIMIT)
                .build()
                .map_err(|e| RedactError::Rule {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            rules.push((name, re));
        }
        let any = RegexSetBuilder::new(rules.iter().map(|(_, r)| r.as_str()))
            .size_limit(SIZE_LIMIT * 16)
            .dfa_size_limit(SIZE_LIMIT * 16)
            .build()
            .map_err(|e| RedactError::Rule {
                name: "(the whole set)".into(),
                reason: e.to_string(),
            })?;
        let secret_keys = RegexBuilder::new(rules::SECRET_KEYS)
            .case_insensitive(true)
            .build()
            .map_err(|e| RedactError::Rule {
                name: "secret_field".into(),
                reason: e.to_string(),
            })?;
        let literal = |words: &[&str]| {
            aho_corasick::AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .build(words)
                .map_err(|e| RedactError::Rule {
                    name: "(anchors)".into(),
                    reason: e.to_string(),
                })
        };
        let anchors = if configured.is_empty() {
            Some(literal(rules::ANCHORS)?)
        } else {
            None
        };
        let key_anchors = literal(rules::KEY_ANCHORS)?;
        Ok(Self {
            rules,
            anchors,
            key_anchors,
            any,
            secret_keys,
            budget,
            deadline: None,
        })
    }

    /// Bounds each payload's scan to `d` of wall-clock time.
    pub fn with_deadline(mut self, d: Option<Duration>) -> Self {
        self.deadline = d;
        self
    }

    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|(n, _)| n.as_str())
    }

    /// Redacts `payload` in place. On `Err` the payload may be half done and
    /// must not be written.
    pub fn redact(&self, payload: &mut Value) -> Result<Redacted, RedactError> {
        let bytes = string_bytes(payload);
        if bytes > self.budget {
            return Err(RedactError::Budget {
                bytes,
                max: self.budget,
            });
        }
        let mut scan = Scan {
            fired: vec![false; self.rules.len() + 1],
            count: 0,
            start: Instant::now(),
            deadline: self.deadline,
            expired: false,
        };
        self.walk(payload, &mut scan);
        if scan.expired {
            return Err(RedactError::Deadline {
                ms: self.deadline.map_or(0, |d| d.as_millis()),
            });
        }
        let fired = &scan.fired;
        let mut names: Vec<String> = self
            .rules
            .iter()
            .zip(fired)
            .filter(|(_, f)| **f)
            .map(|((n, _), _)| n.clone())
            .collect();
        if fired[self.rules.len()] {
            names.push(rules::SECRET_FIELD.into());
        }
        Ok(Redacted {
            rules: names,
            count: scan.count,
        })
    }

    fn walk(&self, v: &mut Value, scan: &mut Scan) {
        if scan.out_of_time() {
            return;
        }
        match v {
            Value::String(s) => {
                if let Some(new) = self.scrub(s, &mut scan.fired, &mut scan.count) {
                    *s = new;
                }
            }
            Value::Array(items) => {
                for item in items.iter_mut() {
                    self.walk(item, scan);
                }
                if !scan.out_of_time() {
                    self.joined(items, &mut scan.fired, &mut scan.count);
                }
            }
            Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    match item {
                        Value::String(s)
                            if self.key_anchors.is_match(k)
                                && self.secret_keys.is_match(k)
                                && !s.is_empty()
                                && !s.starts_with(MARKER) =>
                        {
                            *s = format!("{MARKER}{}]", rules::SECRET_FIELD);
                            scan.fired[self.rules.len()] = true;
                            scan.count += 1;
                        }
                        _ => self.walk(item, scan),
                    }
                }
            }
            _ => {}
        }
    }

    /// Every rule over one string; the new string if anything matched.
    fn scrub(&self, s: &str, fired: &mut [bool], count: &mut usize) -> Option<String> {
        if s.starts_with(MARKER) && s.ends_with(']') {
            return None;
        }
        if self.anchors.as_ref().is_some_and(|a| !a.is_match(s)) {
            return None;
        }
        let hits = self.any.matches(s);
        if !hits.matched_any() {
            return None;
        }
        let mut out: Option<String> = None;
        for i in hits.iter() {
            let (name, re) = &self.rules[i];
            let cur = out.as_deref().unwrap_or(s);
            if !re.is_match(cur) {
                continue;
            }
            let marker = format!("{MARKER}{name}]");
            let mut n = 0;
            let replaced = re.replace_all(cur, |_: &regex::Captures<'_>| {
                n += 1;
                marker.clone()
            });
            fired[i] = true;
            *count += n;
            out = Some(replaced.into_owned());
        }
        out
    }

    /// A secret split over adjacent string elements (a PEM block one line
    /// per element): the elements a match spans are replaced whole.
    fn joined(&self, items: &mut [Value], fired: &mut [bool], count: &mut usize) {
        let strings: Vec<(usize, &str)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_str().map(|s| (i, s)))
            .collect();
        if strings.len() < 2 {
            return;
        }
        let mut text = String::new();
        let mut spans = Vec::with_capacity(strings.len());
        for (i, s) in &strings {
            if !text.is_empty() {
                text.push('\n');
            }
            spans.push((*i, text.len(), text.len() + s.len()));
            text.push_str(s);
        }
        if self.anchors.as_ref().is_some_and(|a| !a.is_match(&text)) || !self.any.is_match(&text) {
            return;
        }
        let mut hit: Vec<(usize, usize)> = Vec::new();
        for (r, (_, re)) in self.rules.iter().enumerate() {
            for m in re.find_iter(&text) {
                let covered: Vec<usize> = spans
                    .iter()
                    .filter(|(_, a, b)| m.start() < *b && m.end() > *a)
                    .map(|(i, _, _)| *i)
                    .collect();
                if covered.len() > 1 {
                    fired[r] = true;
                    hit.extend(covered.into_iter().map(|i| (i, r)));
                }
            }
        }
        for (i, r) in hit {
            let marker = format!("{MARKER}{}]", self.rules[r].0);
            if items[i].as_str() != Some(marker.as_str()) {
                items[i] = Value::String(marker);
                *count += 1;
            }
        }
    }
}

/// Bytes of every string and key in `v`, counting array strings twice
/// (once alone, once joined).
fn string_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items
            .iter()
            .map(|i| string_bytes(i) + i.as_str().map_or(0, str::len))
            .sum(),
        Value::Object(m) => m.iter().map(|(k, i)| k.len() + string_bytes(i)).sum(),
        _ => 0,
    }
}

/// The default rules, built once per process: what every agent payload
/// that `argusctl append` and argusd take is redacted with.
pub fn builtin() -> Result<&'static Redactor, &'static RedactError> {
    static BUILT: std::sync::OnceLock<Result<Redactor, RedactError>> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| Redactor::new(&[])).as_ref()
}

#[cfg(test)]
mod tests;
