//! The log's clock, as a view: every recorded clock jump (`clock.skew`,
//! written by Argus), and the log time at the head. `argusctl status` shows
//! it, so a wrong clock is seen by whoever looks, not only by `verify`.
use super::{Event, Projection, StoreError, Tx};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "clock";
pub const STATE_KEY: &[u8] = b"state";
/// Jumps kept in full; the count keeps counting.
const KEPT: usize = 16;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClockState {
    /// Recorded jumps, all time.
    pub skews: u64,
    /// The most recent jumps, oldest first.
    pub recent: Vec<SkewRecord>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SkewRecord {
    pub seq: u64,
    pub direction: String,
    pub skew_ns: i64,
    pub witnessed_ns: u64,
    pub evidence: String,
    /// The writer's wall clock when it jumped.
    pub wall_ns: u64,
    /// Log time at the jump.
    pub log_ns: u64,
}

pub struct Clock;

impl Projection for Clock {
    fn name(&self) -> &'static str {
        NAME
    }
    fn version(&self) -> u32 {
        1
    }
    fn apply(&self, ev: &Event<'_>, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        if ev.kind != crate::time::CLOCK_SKEW_KIND {
            return Ok(());
        }
        let mut st: ClockState = tx.get_json(STATE_KEY)?.unwrap_or_default();
        st.skews += 1;
        if st.recent.len() == KEPT {
            st.recent.remove(0);
        }
        st.recent.push(SkewRecord {
            seq: ev.seq,
            direction: ev.str("direction").unwrap_or_default().to_string(),
            skew_ns: ev
                .payload
                .get("skew_ms")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            witnessed_ns: crate::time::witnessed_ns(ev.payload).unwrap_or(0),
            evidence: ev.str("evidence").unwrap_or_default().to_string(),
            wall_ns: ev.wall_ns,
            log_ns: ev.log_ns,
        });
        tx.put_json(STATE_KEY, st);
        Ok(())
    }
}
