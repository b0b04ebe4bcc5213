//! An operator's redaction rules: the payload of a `redaction.rules_set`
//! entry. They are recorded in the log like every other operator decision,
//! so an auditor can tell which rules were in force when an entry was
//! written; ingestion adds them to the built-in set, never replaces it.
use super::{RedactError, Redactor, SCAN_BYTES_MAX};
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RulesConfig {
    /// (name, regex) pairs added to the built-in rules.
    pub rules: Vec<(String, String)>,
    /// Bound on one payload's string bytes (default [`SCAN_BYTES_MAX`]).
    pub scan_bytes_max: Option<usize>,
    /// Bound on one payload's scan time (default: none).
    pub scan_ms_max: Option<u64>,
}

impl RulesConfig {
    /// The rules of a `redaction.rules_set` payload. The registry's schema
    /// has already checked its shape when the entry was written; this reads
    /// it again because the payload comes back from disk.
    pub fn from_payload(p: &Value) -> Result<Self, RedactError> {
        let bad = |reason: &str| RedactError::Rule {
            name: "(redaction.rules_set)".into(),
            reason: reason.into(),
        };
        let items = p
            .get("rules")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("`rules` is not an array"))?;
        let mut rules = Vec::with_capacity(items.len());
        for item in items {
            let name = item.get("name").and_then(Value::as_str);
            let pattern = item.get("pattern").and_then(Value::as_str);
            let (Some(name), Some(pattern)) = (name, pattern) else {
                return Err(bad("each rule needs a string `name` and `pattern`"));
            };
            rules.push((name.to_string(), pattern.to_string()));
        }
        let bound = |field: &str| -> Result<Option<u64>, RedactError> {
            match p.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| bad(&format!("`{field}` is not a positive integer"))),
            }
        };
        Ok(Self {
            rules,
            scan_bytes_max: bound("scan_bytes_max")?
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            scan_ms_max: bound("scan_ms_max")?,
        })
    }

    /// The built-in rules plus these, under these bounds.
    pub fn build(&self) -> Result<Redactor, RedactError> {
        Ok(
            Redactor::with_budget(&self.rules, self.scan_bytes_max.unwrap_or(SCAN_BYTES_MAX))?
                .with_deadline(self.scan_ms_max.map(Duration::from_millis)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_rules_set_payload_adds_rules_and_bounds() {
        let c = RulesConfig::from_payload(&json!({
            "rules": [{"name": "ticket", "pattern": "TKT-[0-9]{6}"}],
            "scan_bytes_max": 64,
            "scan_ms_max": 250
        }))
        .unwrap();
        assert_eq!(c.scan_bytes_max, Some(64));
        let r = c.build().unwrap();
        let mut v = json!({"note": "see TKT-123456"});
        let done = r.redact(&mut v).unwrap();
        assert_eq!(v["note"], "see [REDACTED:ticket]");
        assert_eq!(done.rules, vec!["ticket".to_string()]);
        let mut big = json!({"note": "x".repeat(65)});
        let e = r.redact(&mut big).unwrap_err();
        assert!(e.is_failure(), "{e}");
        let e = RulesConfig::from_payload(&json!({"rules": [{"name": "bad", "pattern": "("}]}))
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(!e.is_failure());
        assert!(e.to_string().contains("bad"), "{e}");
    }

    #[test]
    fn a_scan_past_its_time_bound_fails_whole() {
        let r = Redactor::new(&[])
            .unwrap()
            .with_deadline(Some(Duration::ZERO));
        let mut v = json!({"a": ["one", "two"], "b": "AKIAIOSFODNN7EXAMPLE"});
        let e = r.redact(&mut v).unwrap_err();
        assert!(matches!(e, RedactError::Deadline { .. }), "{e}");
        assert!(e.is_failure());
    }
}
