//! Feature flags (PRD-018 §4.4): the current setting of every flag key, and
//! the evaluation rule that answers "is KEY on for this context".
//!
//! Evaluation is a pure function of the stored flag, the context and the
//! log's own clock, so the same log answers the same way on every machine
//! and on every replay: rollout buckets come from a hash, never a random
//! draw, and expiry is judged against log time, never the wall clock.
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const NAME: &str = "flags";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flag {
    pub key: String,
    pub enabled: bool,
    /// 0..=100 (seed default 0).
    pub rollout_pct: u64,
    pub target_ids: Vec<String>,
    /// As written in the entry.
    pub expires_at: Option<String>,
    /// `expires_at` as ns since the epoch; `None` with `expires_at` set
    /// means it could not be parsed.
    pub expires_at_ns: Option<u64>,
    pub set_seq: u64,
    pub set_ts_ns: u64,
}

/// A removed key, so evaluation can say "removed" rather than "unknown".
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Removed {
    pub key: String,
    pub removed_seq: u64,
    pub removed_ts_ns: u64,
}

pub fn flag_key(key: &str) -> Vec<u8> {
    format!("flag/{key}").into_bytes()
}

pub fn removed_key(key: &str) -> Vec<u8> {
    format!("removed/{key}").into_bytes()
}

/// Context pairs sorted by key, joined as `k=v&k2=v2`: the stable input to
/// the rollout hash (a `BTreeMap` is already sorted).
pub fn stable_context(context: &BTreeMap<String, String>) -> String {
    context
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Rollout bucket 0..100: the first 8 bytes (u64 LE) of
/// BLAKE3("{key}\0{stable context}") mod 100.
pub fn bucket(key: &str, context: &BTreeMap<String, String>) -> u64 {
    let h = blake3::hash(format!("{key}\0{}", stable_context(context)).as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(first) % 100
}

/// The answer for one key and context.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Decision {
    pub key: String,
    pub enabled: bool,
    pub reason: String,
}

/// The §4.4 rule, first match wins: unknown or removed → off; disabled →
/// off; expired (`expires_at <= now_ns`, or unparseable, failing closed) →
/// off; a context value in `target_ids` → on; else on iff the rollout
/// bucket is below `rollout_pct`.
pub fn evaluate(
    key: &str,
    flag: Option<&Flag>,
    removed: Option<&Removed>,
    context: &BTreeMap<String, String>,
    now_ns: u64,
) -> Decision {
    let d = |enabled: bool, reason: String| Decision {
        key: key.to_string(),
        enabled,
        reason,
    };
    let Some(f) = flag else {
        return match removed {
            Some(r) => d(false, format!("flag removed (seq {})", r.removed_seq)),
            None => d(false, "unknown flag".into()),
        };
    };
    if !f.enabled {
        return d(false, "flag disabled".into());
    }
    if let Some(at) = &f.expires_at {
        match f.expires_at_ns {
            None => {
                return d(
                    false,
                    format!("expires_at {at:?} is not RFC 3339; treated as expired"),
                )
            }
            Some(exp) if exp <= now_ns => {
                return d(
                    false,
                    format!(
                        "expired at {at} (log time now {})",
                        crate::time::rfc3339_ns(now_ns)
                    ),
                )
            }
            _ => {}
        }
    }
    if let Some((k, v)) = context.iter().find(|(_, v)| f.target_ids.contains(v)) {
        return d(
            true,
            format!("target id {v:?} (context {k}) is in target_ids"),
        );
    }
    let b = bucket(key, context);
    if b < f.rollout_pct {
        d(
            true,
            format!("rollout bucket {b} < rollout_pct {}", f.rollout_pct),
        )
    } else {
        d(
            false,
            format!("rollout bucket {b} >= rollout_pct {}", f.rollout_pct),
        )
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 date-time (`2026-12-31T23:59:59.5Z`, `...+02:00`) to
/// ns since the epoch; instants before 1970 clamp to 0. `None` if it is not
/// RFC 3339.
pub fn parse_rfc3339_ns(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(mo - 1).ok()?)?;
    if !(1..=max_day).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Some(u64::try_from(ns.max(0)).unwrap_or(u64::MAX))
}

pub struct Flags;

impl Projection for Flags {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        let Some(key) = ev.str("key").filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        match ev.kind {
            // A set replaces the whole flag; absent fields take the seed's
            // column defaults (enabled false, rollout 0, no targets).
            "flag.set" => {
                let expires_at = ev.str("expires_at").map(str::to_string);
                let flag = Flag {
                    key: key.to_string(),
                    enabled: ev
                        .payload
                        .get("enabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    rollout_pct: ev.u64("rollout_pct").unwrap_or(0).min(100),
                    target_ids: ev
                        .payload
                        .get("target_ids")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    expires_at_ns: expires_at.as_deref().and_then(parse_rfc3339_ns),
                    expires_at,
                    set_seq: ev.seq,
                    set_ts_ns: ev.log_ns,
                };
                tx.put_json(&flag_key(key), flag);
                tx.del(&removed_key(key));
            }
            "flag.removed" => {
                tx.del(&flag_key(key));
                tx.put_json(
                    &removed_key(key),
                    Removed {
                        key: key.to_string(),
                        removed_seq: ev.seq,
                        removed_ts_ns: ev.log_ns,
                    },
                );
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2026-11-23T12:00:00.123456789Z"),
            Some(1_795_435_200_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-23T14:00:00.5+02:00"),
            Some(1_795_435_200_500_000_000)
        );
        assert_eq!(parse_rfc3339_ns("1969-12-31T23:59:59Z"), Some(0));
        for bad in [
            "",
            "2026-11-23",
            "2026-11-23T12:00:00",
            "2026-02-30T00:00:00Z",
            "2026-11-23T12:00:00.Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T12:00:00+0200",
            "tomorrow",
        ] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad:?}");
        }
    }

    /// `expires_at <= now` is expired: at the very nanosecond it is off.
    #[test]
    fn expiry_boundary_is_inclusive() {
        let exp = 1_795_435_200_000_000_000;
        let f = Flag {
            key: "k".into(),
            enabled: true,
            rollout_pct: 100,
            target_ids: vec![],
            expires_at: Some("2026-11-23T12:00:00Z".into()),
            expires_at_ns: parse_rfc3339_ns("2026-11-23T12:00:00Z"),
            set_seq: 0,
            set_ts_ns: 0,
        };
        let ctx = BTreeMap::new();
        assert!(evaluate("k", Some(&f), None, &ctx, exp - 1).enabled);
        assert!(!evaluate("k", Some(&f), None, &ctx, exp).enabled);
        assert!(!evaluate("k", Some(&f), None, &ctx, exp + 1).enabled);
    }

    #[test]
    fn stable_context_sorts_by_key() {
        let ctx: BTreeMap<String, String> = [("user", "u1"), ("agent", "researcher")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(stable_context(&ctx), "agent=researcher&user=u1");
        let h = blake3::hash(b"k\0agent=researcher&user=u1");
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.as_bytes()[..8]);
        assert_eq!(bucket("k", &ctx), u64::from_le_bytes(first) % 100);
    }
}
