//! Time: what an entry's timestamp means, the log's own clock, and how one
//! wrong clock is caught instead of believed (SPEC §4.5).
//!
//! An entry's `ts_ns` is its writer's wall clock at commit, nothing more: a
//! process whose clock reads 2030 writes 2030, and the next process with a
//! correct clock writes today again. Rules that count time (approval expiry,
//! days in a mode, SLA windows, staleness, budget days) never subtract two
//! timestamps. They use *log time*, a fold over the log that credits only
//! time the log witnessed ([`LogClock`]): the forward steps between
//! consecutive entries, except across a clock jump, which the writer detects
//! and records as a `clock.skew` entry saying how much real time passed.
//!
//! The writer detects a jump by comparing its wall clock with an anchor: a
//! (wall clock, time since boot) pair that the log's last trusted writer
//! saw, kept in `DIR/clock.json`. Time since boot comes from the kernel
//! (`/proc/uptime` and `CLOCK_BOOTTIME`), which a process cannot set, and
//! `settimeofday` does not move. Two wall clocks that disagree by more than
//! the tolerance, given the boot time that passed between their readings,
//! are a jump.
use crate::log::storage::Storage;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

pub const NS_PER_S: u64 = 1_000_000_000;
pub const NS_PER_DAY: u64 = 86_400 * NS_PER_S;
/// Default tolerance before a clock difference is recorded as a jump.
pub const SKEW_TOLERANCE_NS_DEFAULT: u64 = 300 * NS_PER_S;
/// The anchor file in the log directory. A hint, not the truth: deleting it
/// only makes the next writer unable to judge a forward jump once.
pub const ANCHOR_FILE: &str = "clock.json";
/// The kind of the entry that records a jump.
pub const CLOCK_SKEW_KIND: &str = "clock.skew";

/// RFC 3339 UTC with nanoseconds, e.g. `2026-11-23T10:00:00.123456789Z`.
pub fn rfc3339_ns(ts_ns: u64) -> String {
    let secs = ts_ns / NS_PER_S;
    let nanos = ts_ns % NS_PER_S;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    // Civil-from-days (H. Hinnant), valid for the whole u64 ns range.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Parses what `rfc3339_ns` prints (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`,
/// fraction optional, UTC only), exactly to the nanosecond: a separate
/// auditor reading argusd's JSON feed folds the same log time as one
/// reading the files.
pub fn parse_rfc3339_ns(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let rest = s.get(19..)?;
    let frac = match rest.strip_suffix('Z')? {
        "" => 0,
        f => {
            let digits = f.strip_prefix('.')?;
            if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|c| c.is_ascii_digit())
            {
                return None;
            }
            let v: u64 = digits.parse().ok()?;
            v * 10u64.pow(9 - digits.len() as u32)
        }
    };
    // Days from civil (H. Hinnant), the inverse of `rfc3339_ns`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()?;
    secs.checked_mul(NS_PER_S)?.checked_add(frac)
}

/// A duration as a human reads it: `3d 4h`, `12m 5s`, `850ms`.
pub fn human_ns(ns: u64) -> String {
    let s = ns / NS_PER_S;
    match s {
        0 => format!("{}ms", ns / 1_000_000),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Time since boot, from the kernel, with the boot it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTime {
    pub boot_id: String,
    pub uptime_ns: u64,
}

/// Where time comes from. Production reads the system; tests inject a clock
/// they move by hand, so a test can make days pass that the log witnessed.
pub trait Clock: Send + Sync {
    fn wall_ns(&self) -> u64;
    /// `None` when the platform gives no boot-time evidence.
    fn boot(&self) -> Option<BootTime>;
}

/// The machine's clocks. The wall clock is whatever the process sees
/// (libfaketime included); boot time is read from `/proc` once, then
/// advanced with `CLOCK_BOOTTIME` deltas, so an interposed clock library
/// cannot shift the anchor comparison across processes.
pub struct SystemClock {
    base: Option<(BootTime, u64)>,
}

fn read_small(path: &str) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.by_ref().take(256).read_to_string(&mut s).ok()?;
    Some(s)
}

fn proc_boot_time() -> Option<BootTime> {
    let boot_id = read_small("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_string();
    if boot_id.is_empty() || !boot_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return None;
    }
    let up = read_small("/proc/uptime")?;
    let secs = up.split_whitespace().next()?;
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, "0"));
    let whole: u64 = whole.parse().ok()?;
    let frac_digits = frac.get(..frac.len().min(9))?;
    let frac_ns: u64 = format!("{frac_digits:0<9}").parse().ok()?;
    Some(BootTime {
        boot_id,
        uptime_ns: whole.checked_mul(NS_PER_S)?.checked_add(frac_ns)?,
    })
}

fn boottime_ns() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).ok()?;
    u64::try_from(t.tv_sec())
        .ok()?
        .checked_mul(NS_PER_S)?
        .checked_add(u64::try_from(t.tv_nsec()).ok()?)
}

impl SystemClock {
    pub fn new() -> Self {
        let base = proc_boot_time().and_then(|b| Some((b, boottime_ns()?)));
        Self { base }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn wall_ns(&self) -> u64 {
        wall_now_ns()
    }
    fn boot(&self) -> Option<BootTime> {
        let (b, at) = self.base.as_ref()?;
        let now = boottime_ns()?;
        Some(BootTime {
            boot_id: b.boot_id.clone(),
            uptime_ns: b.uptime_ns + now.saturating_sub(*at),
        })
    }
}

/// This process's wall clock, ns since the Unix epoch (0 before 1970).
pub fn wall_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A wall-clock reading and the boot time at which it was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub boot_id: String,
    pub uptime_ns: u64,
    pub wall_ns: u64,
}

/// `/proc/uptime` counts in 10 ms steps, so two processes' boot times for
/// one instant differ by up to this much (each `SystemClock` reads it
/// once and adds `CLOCK_BOOTTIME` deltas).
const UPTIME_GRAIN_NS: u64 = 10_000_000;

impl Anchor {
    /// What a clock that agrees with this anchor reads at `boot`, if it is
    /// the same boot. A boot time up to one `/proc/uptime` step before the
    /// anchor's is the same instant read by another process (an open right
    /// after the last one), not an earlier time: the anchor still holds.
    pub fn expected_wall_ns(&self, boot: &BootTime) -> Option<u64> {
        (boot.boot_id == self.boot_id
            && boot.uptime_ns.saturating_add(UPTIME_GRAIN_NS) >= self.uptime_ns)
            .then(|| {
                self.wall_ns
                    .saturating_add(boot.uptime_ns.saturating_sub(self.uptime_ns))
            })
    }
}

/// Reads the anchor through `s`; a missing, unreadable, oversized,
/// non-regular or malformed file is no anchor.
pub fn read_anchor(s: &dyn Storage, dir: &Path) -> Option<Anchor> {
    let text = s.read_capped(&dir.join(ANCHOR_FILE), 4096).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Replaces the anchor whole (a fresh temp file, then rename; never through
/// a link). Best effort: the anchor is a hint, and a log on a read-only
/// medium cannot keep one.
pub fn write_anchor(s: &dyn Storage, dir: &Path, a: &Anchor) -> crate::Result<()> {
    let bytes = serde_json::to_vec(a).map_err(|e| crate::Error::Io {
        path: dir.join(ANCHOR_FILE),
        source: std::io::Error::other(e),
    })?;
    s.write_whole(
        &dir.join(format!("{ANCHOR_FILE}.tmp")),
        &dir.join(ANCHOR_FILE),
        &bytes,
        0o644,
        crate::log::safe_fs::Durability::Synced,
    )
}

/// How a jump was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// The anchor and this writer share a boot: real elapsed time is known.
    BootTime,
    /// No usable anchor: only a step backwards past the last entry shows.
    LastEntry,
}

/// A clock jump, recorded as a `clock.skew` entry before the entries whose
/// time it explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skew {
    /// "forward" or "backward".
    pub direction: &'static str,
    /// Time of the entry before the jump.
    pub previous_ts_ns: u64,
    /// What this writer's clock read.
    pub wall_ns: u64,
    /// What the clock should have read, by the evidence.
    pub expected_ns: u64,
    /// `wall_ns - expected_ns`.
    pub skew_ns: i64,
    /// Log time this entry adds: the real time that passed since the
    /// previous entry, by the evidence (0 when unknown).
    pub witnessed_ns: u64,
    pub evidence: Evidence,
    pub tolerance_ns: u64,
}

impl Skew {
    /// The `clock.skew` payload. Times are RFC 3339 and durations whole
    /// milliseconds, so every number stays within what canonical JSON keeps
    /// exactly (SPEC §4.1.1: nanoseconds since 1970 do not).
    pub fn payload(&self) -> serde_json::Value {
        let ms = |ns: u64| ns / 1_000_000;
        serde_json::json!({
            "direction": self.direction,
            "previous_ts": rfc3339_ns(self.previous_ts_ns),
            "wall_ts": rfc3339_ns(self.wall_ns),
            "expected_ts": rfc3339_ns(self.expected_ns),
            "skew_ms": self.skew_ns / 1_000_000,
            "witnessed_ms": ms(self.witnessed_ns),
            "evidence": match self.evidence {
                Evidence::BootTime => "boot_time",
                Evidence::LastEntry => "last_entry",
            },
            "tolerance_ms": ms(self.tolerance_ns),
        })
    }
}

/// What a `clock.skew` entry written by Argus credits to log time.
pub fn witnessed_ns(payload: &serde_json::Value) -> Option<u64> {
    payload
        .get("witnessed_ms")?
        .as_u64()?
        .checked_mul(1_000_000)
}

/// The writer's clock check: one per writer, consulted at every commit.
pub struct ClockJudge {
    anchor: Option<Anchor>,
    tolerance_ns: u64,
    dir: std::path::PathBuf,
    storage: Arc<dyn Storage>,
}

impl ClockJudge {
    /// Loads the anchor. When there is none for this boot, this writer's
    /// clock becomes the anchor (nothing to compare with); a backward step
    /// past the last entry is still caught.
    pub fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        clock: &dyn Clock,
        tolerance_ns: u64,
    ) -> Self {
        let boot = clock.boot();
        let mut anchor = read_anchor(&*storage, dir);
        let usable = match (&anchor, &boot) {
            (Some(a), Some(b)) => a.expected_wall_ns(b).is_some(),
            _ => false,
        };
        if !usable {
            anchor = boot.map(|b| Anchor {
                boot_id: b.boot_id,
                uptime_ns: b.uptime_ns,
                wall_ns: clock.wall_ns(),
            });
            if let Some(a) = &anchor {
                let _ = write_anchor(&*storage, dir, a);
            }
        }
        Self {
            anchor,
            tolerance_ns,
            dir: dir.to_path_buf(),
            storage,
        }
    }

    /// Judges the clock reading `now` (taken at `boot`) against the anchor
    /// and, failing that, against the last entry's time. On a jump, this
    /// writer's clock becomes the anchor: the log's clock is now this one,
    /// and the jump is on record.
    pub fn check(
        &mut self,
        now: u64,
        boot: Option<&BootTime>,
        last_ts: Option<u64>,
    ) -> Option<Skew> {
        let prev = last_ts.unwrap_or(now);
        let by_anchor = match (&self.anchor, boot) {
            (Some(a), Some(b)) => a.expected_wall_ns(b),
            _ => None,
        };
        let off = |expected: u64| i128::from(now) - i128::from(expected);
        let tol = i128::from(self.tolerance_ns);
        let (expected, evidence) = match by_anchor {
            Some(e) if off(e).abs() > tol => (e, Evidence::BootTime),
            // The clock agrees with the evidence, or there is none: a step
            // back past the last entry is still a jump of the log's time
            // (the last writer ran ahead), and goes on record.
            _ if off(prev) < -tol => (prev, Evidence::LastEntry),
            _ => return None,
        };
        let skew = off(expected);
        if let Some(b) = boot {
            let a = Anchor {
                boot_id: b.boot_id.clone(),
                uptime_ns: b.uptime_ns,
                wall_ns: now,
            };
            let _ = write_anchor(&*self.storage, &self.dir, &a);
            self.anchor = Some(a);
        }
        Some(Skew {
            direction: if skew > 0 { "forward" } else { "backward" },
            previous_ts_ns: prev,
            wall_ns: now,
            expected_ns: expected,
            skew_ns: skew.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            witnessed_ns: expected.saturating_sub(prev),
            evidence,
            tolerance_ns: self.tolerance_ns,
        })
    }
}

/// The log's clock: a deterministic fold over entries in seq order. Log
/// time starts at the first entry's timestamp and advances by each forward
/// step between consecutive entries; a `clock.skew` entry written by Argus
/// advances it by the real time it witnessed instead of by the jump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogClock {
    /// Log time of the last entry folded.
    pub log_ns: u64,
    /// Timestamp of the last entry folded.
    pub last_ts_ns: u64,
    /// Whether any entry has been folded.
    pub started: bool,
}

impl LogClock {
    /// Folds one entry and returns its log time. `witnessed` is the
    /// `witnessed_ns` of a `clock.skew` entry written by Argus, else `None`.
    pub fn advance(&mut self, ts_ns: u64, witnessed: Option<u64>) -> u64 {
        if !self.started {
            self.started = true;
            self.log_ns = ts_ns;
        } else {
            let credit = witnessed.unwrap_or_else(|| ts_ns.saturating_sub(self.last_ts_ns));
            self.log_ns = self.log_ns.saturating_add(credit);
        }
        self.last_ts_ns = ts_ns;
        self.log_ns
    }

    /// Log time "now", for a view: the last entry's log time plus the real
    /// time that passed since it, judged like the writer judges it. A view's
    /// own clock counts only when there is no anchor to contradict it.
    pub fn now_ns(&self, s: &dyn Storage, dir: &Path, clock: &dyn Clock) -> LogNow {
        let wall = clock.wall_ns();
        let expected = match (read_anchor(s, dir), clock.boot()) {
            (Some(a), Some(b)) => a.expected_wall_ns(&b),
            _ => None,
        };
        let reference = expected.unwrap_or(wall);
        let since_last = reference.saturating_sub(self.last_ts_ns);
        LogNow {
            log_ns: if self.started {
                self.log_ns.saturating_add(since_last)
            } else {
                reference
            },
            clock_off_ns: expected.map(|e| i128::from(wall) - i128::from(e)),
        }
    }
}

/// "Now" in log time, and how far this process's clock is from the log's.
#[derive(Debug, Clone, Copy)]
pub struct LogNow {
    pub log_ns: u64,
    pub clock_off_ns: Option<i128>,
}

#[cfg(test)]
mod tests {
    /// Two processes read `/proc/uptime` in 10 ms steps: an open right
    /// after another may see a boot time a step behind the anchor the
    /// other wrote. That is the same instant (the anchor holds, and is not
    /// rewritten); more than a step behind is not.
    #[test]
    fn an_anchor_holds_for_a_boot_time_one_uptime_step_behind_it() {
        let ms = 1_000_000;
        let a = super::Anchor {
            boot_id: "b".into(),
            uptime_ns: 5_000 * ms,
            wall_ns: 1_000_000 * ms,
        };
        let at = |boot_id: &str, uptime_ns| super::BootTime {
            boot_id: boot_id.into(),
            uptime_ns,
        };
        assert_eq!(
            a.expected_wall_ns(&at("b", 5_007 * ms)),
            Some(1_000_007 * ms)
        );
        assert_eq!(
            a.expected_wall_ns(&at("b", 4_995 * ms)),
            Some(1_000_000 * ms)
        );
        assert_eq!(
            a.expected_wall_ns(&at("b", 4_990 * ms)),
            Some(1_000_000 * ms)
        );
        assert_eq!(a.expected_wall_ns(&at("b", 4_989 * ms)), None);
        assert_eq!(a.expected_wall_ns(&at("other", 5_007 * ms)), None);
    }

    #[test]
    fn rfc3339_round_trips_to_the_nanosecond() {
        for ns in [
            0u64,
            1,
            999_999_999,
            1_764_590_400_123_456_789,
            4_102_444_800_000_000_001,
        ] {
            assert_eq!(super::parse_rfc3339_ns(&super::rfc3339_ns(ns)), Some(ns));
        }
        assert_eq!(
            super::parse_rfc3339_ns("2026-12-01T10:00:00Z"),
            Some(1_796_119_200_000_000_000)
        );
        assert_eq!(super::parse_rfc3339_ns("2026-12-01T10:00:00+01:00"), None);
        assert_eq!(super::parse_rfc3339_ns("2026-13-01T10:00:00Z"), None);
    }

    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_ns(1_795_435_200_123_456_789),
            "2026-11-23T12:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn log_clock_credits_forward_steps_and_witnessed_jumps_only() {
        let mut c = LogClock::default();
        let day = NS_PER_DAY;
        assert_eq!(c.advance(100 * day, None), 100 * day);
        assert_eq!(c.advance(100 * day + 5, None), 100 * day + 5);
        // A jump ahead, recorded with 2 s witnessed: 2 s count, not 4 years.
        assert_eq!(
            c.advance(1500 * day, Some(2 * NS_PER_S)),
            100 * day + 5 + 2 * NS_PER_S
        );
        // Steps inside the wrong clock's time are real durations.
        assert_eq!(
            c.advance(1500 * day + 10, None),
            100 * day + 15 + 2 * NS_PER_S
        );
        // Back to the right clock: a step back counts nothing...
        let l = c.advance(100 * day + 60, Some(40));
        assert_eq!(l, 100 * day + 15 + 2 * NS_PER_S + 40);
        // ...and log time never goes backwards.
        assert_eq!(c.advance(90 * day, None), l);
    }

    struct Fixed(u64, Option<BootTime>);
    impl Clock for Fixed {
        fn wall_ns(&self) -> u64 {
            self.0
        }
        fn boot(&self) -> Option<BootTime> {
            self.1.clone()
        }
    }

    #[test]
    fn judge_records_a_jump_against_the_anchor_and_moves_the_anchor() {
        let tmp = tempfile::tempdir().unwrap();
        let boot = |up: u64| BootTime {
            boot_id: "b1".into(),
            uptime_ns: up,
        };
        let t0 = 1_000 * NS_PER_DAY;
        let first = Fixed(t0, Some(boot(50 * NS_PER_S)));
        let mut j = ClockJudge::open(
            crate::log::storage::real(),
            tmp.path(),
            &first,
            SKEW_TOLERANCE_NS_DEFAULT,
        );
        // Ten real minutes later, the clock agrees: nothing to record.
        let b = boot(650 * NS_PER_S);
        assert_eq!(j.check(t0 + 600 * NS_PER_S, Some(&b), Some(t0)), None);
        // A second writer whose clock is 31 days ahead, 20 s after that.
        let b = boot(670 * NS_PER_S);
        let mut j2 = ClockJudge::open(
            crate::log::storage::real(),
            tmp.path(),
            &Fixed(0, Some(b.clone())),
            SKEW_TOLERANCE_NS_DEFAULT,
        );
        let fast = t0 + 620 * NS_PER_S + 31 * NS_PER_DAY;
        let s = j2.check(fast, Some(&b), Some(t0 + 600 * NS_PER_S)).unwrap();
        assert_eq!(s.direction, "forward");
        assert_eq!(s.witnessed_ns, 20 * NS_PER_S);
        assert_eq!(s.evidence, Evidence::BootTime);
        // The fast clock is now the log's clock: its next commit is fine...
        let b = boot(680 * NS_PER_S);
        assert_eq!(j2.check(fast + 10 * NS_PER_S, Some(&b), Some(fast)), None);
        // ...and the right clock coming back is a jump backwards.
        let mut j3 = ClockJudge::open(
            crate::log::storage::real(),
            tmp.path(),
            &Fixed(0, Some(b.clone())),
            SKEW_TOLERANCE_NS_DEFAULT,
        );
        let back = j3
            .check(t0 + 640 * NS_PER_S, Some(&b), Some(fast + 10 * NS_PER_S))
            .unwrap();
        assert_eq!(back.direction, "backward");
        assert_eq!(back.witnessed_ns, 0);
    }

    #[test]
    fn skew_payload_is_canonical_and_fits_its_schema() {
        let s = Skew {
            direction: "forward",
            previous_ts_ns: 1_796_000_000_123_456_789,
            wall_ns: 1_798_000_000_000_000_001,
            expected_ns: 1_796_000_002_000_000_000,
            skew_ns: 1_998_000_000_000_000,
            witnessed_ns: 1_876_543_211,
            evidence: Evidence::BootTime,
            tolerance_ns: SKEW_TOLERANCE_NS_DEFAULT,
        };
        let v = s.payload();
        let bytes = crate::json::to_canonical(&v);
        crate::json::is_canonical(&bytes).unwrap();
        crate::registry::builtin()
            .unwrap()
            .validate(CLOCK_SKEW_KIND, &v)
            .unwrap();
        assert_eq!(witnessed_ns(&v), Some(1_876_000_000));
    }

    #[test]
    fn without_evidence_only_a_step_back_is_a_jump() {
        let tmp = tempfile::tempdir().unwrap();
        let none = Fixed(0, None);
        let mut j = ClockJudge::open(
            crate::log::storage::real(),
            tmp.path(),
            &none,
            SKEW_TOLERANCE_NS_DEFAULT,
        );
        let t = 1_000 * NS_PER_DAY;
        assert_eq!(
            j.check(t + NS_PER_DAY, None, Some(t)),
            None,
            "a quiet day is not a jump"
        );
        let s = j.check(t - NS_PER_DAY, None, Some(t)).unwrap();
        assert_eq!((s.direction, s.evidence), ("backward", Evidence::LastEntry));
    }
}
