//! Closed sets of status words (proposal status, mode, breaker state...).
//!
//! Projections used to store and compare these as free strings, so a typo
//! compiled and an unexpected stored word was quietly treated as some
//! default. Each set is now an enum made by `status_enum!`, which writes the
//! word once and derives everything else from it: the serde form (the same
//! lowercase word as before, so stored bytes and every view's JSON are
//! unchanged), `as_str`, `Display` and `FromStr`. A word outside the set is
//! refused, by serde when a stored record is read and by `FromStr` when a
//! user names one; it is never mapped to a default.
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::{Debug, Display};
use std::str::FromStr;

/// A word that names no member of a status set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("unknown {what} {value:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownStatus {
    /// Which set (e.g. "proposal status").
    pub what: &'static str,
    pub value: String,
    pub expected: &'static [&'static str],
}

/// What every status set offers, so code and tests can treat them alike.
pub trait StatusWord:
    Copy + Eq + Debug + Display + FromStr<Err = UnknownStatus> + Serialize + DeserializeOwned + 'static
{
    /// The set's name in error messages.
    const WHAT: &'static str;
    /// Every member, in declaration order.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// Declares a status set: `Variant = "word"` per member. The word is the
/// stored and printed form; see the module doc for what is derived.
macro_rules! status_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $word)] $variant ),+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            const WORDS: &'static [&'static str] = &[$($word),+];

            /// The word stored and printed for this member.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl $crate::projections::status::StatusWord for $name {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = Self::ALL;
            fn as_str(self) -> &'static str {
                Self::as_str(self)
            }
        }

        impl std::fmt::Display for $name {
            /// `pad`, not `write_str`, so `{:<9}` columns line up as they
            /// did when the status was a `String`.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::projections::status::UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok(Self::$variant),)+
                    _ => Err($crate::projections::status::UnknownStatus {
                        what: $what,
                        value: s.to_string(),
                        expected: Self::WORDS,
                    }),
                }
            }
        }
    };
}
pub(crate) use status_enum;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::approvals::{Mode, ProposalStatus};
    use super::super::breakers::BreakerState;
    use super::super::dlq::DlqStatus;
    use super::super::incident::{IncidentLevel, Trigger};
    use super::super::jobs::JobStatus;
    use super::super::memory_gate::MemoryStatus;
    use super::super::workers::{ClaimKind, FindingKind};
    use super::*;

    /// Holds one set to the exact words views printed before the sets were
    /// enums, both ways, and checks that near misses are refused.
    fn check<S: StatusWord>(words: &[&str]) {
        let got: Vec<&str> = S::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(got, words, "{}: members and their words", S::WHAT);
        for (&s, &w) in S::ALL.iter().zip(words) {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{w}\""), "{}: serde form of {s:?}", S::WHAT);
            assert_eq!(serde_json::from_str::<S>(&json).unwrap(), s, "{w}");
            assert_eq!(w.parse::<S>(), Ok(s), "{}: FromStr {w:?}", S::WHAT);
            assert_eq!(s.to_string(), w);
            assert_eq!(format!("[{s:<14}]"), format!("[{w:<14}]"), "padding");
            let near = [
                w.to_ascii_uppercase(),
                format!(" {w}"),
                format!("{w} "),
                w.replace('_', "-"),
                w.replace('-', "_"),
                format!("{w}x"),
            ];
            for bad in near.iter().filter(|b| !words.contains(&b.as_str())) {
                let e = bad.parse::<S>().unwrap_err();
                assert_eq!((e.what, e.value.as_str()), (S::WHAT, bad.as_str()));
                assert!(
                    serde_json::from_str::<S>(&serde_json::to_string(bad).unwrap()).is_err(),
                    "{}: serde accepted {bad:?}",
                    S::WHAT
                );
            }
        }
        for bad in ["", "unknown", "null"] {
            assert!(bad.parse::<S>().is_err(), "{}: {bad:?}", S::WHAT);
        }
        for bad in ["null", "0", "{}", "[]", "\"\""] {
            assert!(
                serde_json::from_str::<S>(bad).is_err(),
                "{}: serde accepted {bad}",
                S::WHAT
            );
        }
    }

    #[test]
    fn status_words_round_trip_as_before_and_unknown_words_are_refused() {
        check::<ProposalStatus>(&[
            "pending",
            "approved",
            "rejected",
            "expired",
            "executing",
            "completed",
            "failed",
            "rolled_back",
        ]);
        check::<Mode>(&["alpha", "beta", "omega"]);
        check::<IncidentLevel>(&["normal", "degraded", "incident"]);
        check::<Trigger>(&[
            "declared",
            "resolved",
            "error_rate",
            "spend_spike",
            "heartbeat",
        ]);
        check::<BreakerState>(&["closed", "open", "half-open"]);
        check::<DlqStatus>(&["pending", "replayed", "discarded", "manual_fix"]);
        check::<MemoryStatus>(&[
            "pending",
            "auto_approvable",
            "approved",
            "rejected",
            "deferred",
        ]);
        check::<JobStatus>(&[
            "received",
            "running",
            "retrying",
            "completed",
            "failed",
            "cancelled",
            "timed_out",
            "dead_lettered",
            "dlq_replayed",
            "dlq_discarded",
            "dlq_manual_fix",
            "dlq_reviewed",
        ]);
        check::<FindingKind>(&["dead", "stuck", "rss"]);
        check::<ClaimKind>(&["job", "run"]);
    }

    #[test]
    fn unknown_status_error_names_the_set_the_word_and_the_choices() {
        let e = "paused".parse::<BreakerState>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown breaker state \"paused\"; expected one of: closed, open, half-open"
        );
    }

    /// A stored record whose status is not in its set fails to decode, with
    /// the key, instead of reading as some default status: a projection
    /// whose stored form changed bumps its version so this never meets old
    /// state.
    #[test]
    fn a_stored_record_with_an_unknown_status_is_a_decode_error_not_a_default() {
        use super::super::store::Tree;
        use super::super::tx::View;
        let t = Tree::temporary();
        let job = serde_json::json!({
            "job_id": "j", "job_type": null, "status": "paused", "agent": null,
            "first_seq": 0, "last_seq": 0, "entries": 1, "received_ts_ns": 0,
            "first_update_ts_ns": null, "finished_ts_ns": null, "cost_usd": 0.0,
            "retries": 0, "last_error": null, "seq_chunk": 0, "chunk_seqs": 1
        });
        t.write_batch([(&b"job/j"[..], Some(serde_json::to_vec(&job).unwrap()))])
            .unwrap();
        let e = View::new(&t)
            .get_json::<super::super::jobs::Job>(b"job/j")
            .unwrap_err()
            .to_string();
        assert!(e.contains("value at job/j") && e.contains("paused"), "{e}");
        let mut ok = job;
        ok["status"] = "running".into();
        t.write_batch([(&b"job/j"[..], Some(serde_json::to_vec(&ok).unwrap()))])
            .unwrap();
        let j = View::new(&t)
            .get_json::<super::super::jobs::Job>(b"job/j")
            .unwrap()
            .unwrap();
        assert_eq!(j.status, JobStatus::Running);
    }
}
