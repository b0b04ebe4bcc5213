//! Compaction (`argusctl compact`: erase redacted payloads, then compress
//! sealed segments to `.segz`, SPEC §12) under one seeded fault: a power
//! cut before any storage operation (temp file, its sync, the read-back,
//! the rename, the directory syncs, the removal of the plain segment or of
//! a stale `.segz`), a failed fsync or a short write; then a power cut,
//! sometimes a second compaction that a second power cut stops, and a
//! clean one. Every run must hold:
//!
//! 1. right after the cut, before anything tidies up, the reader sees
//!    every entry (plain or `.segz`, leftover temp files beside them) and
//!    `verify` passes;
//! 2. after the finishing compaction and a reopen, the same; every sealed
//!    segment but the last is compressed, and the log appends.
use super::simfs::{Fault, Rng, SimFs};
use super::{cross_check, cross_checked, open, read_back, verify_sim, Template};
use argus::log::archive::{compress_sealed_on, ArchiveOptions};
use argus::log::dir::LogDir;
use argus::log::erase::erase_redacted_on;
use argus::log::lock::WriterLock;
use argus::log::reader::LogReader;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub(super) struct Outcome {
    pub fired: bool,
    pub erased: usize,
    pub compressed: usize,
    pub second_cut: bool,
    pub temps_left: usize,
    /// Payloads erased plus segments compressed over every run of the seed.
    pub total: usize,
}

impl super::Tally for Outcome {
    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("fault fired", u64::from(self.fired)),
            ("payloads erased by the faulted run", self.erased as u64),
            (
                "segments compressed by the faulted run",
                self.compressed as u64,
            ),
            ("second compaction cut", u64::from(self.second_cut)),
            (
                "runs with a temp file left by the cut",
                u64::from(self.temps_left > 0),
            ),
            ("segments erased or compressed in all", self.total as u64),
        ]
    }
}

pub(super) fn choose(rng: &mut Rng) -> Option<Fault> {
    match rng.below(10) {
        0 => None,
        1 | 2 => Some(Fault::FsyncEio {
            nth: rng.range(1, 8),
        }),
        3 => Some(Fault::ShortWrite {
            nth: rng.range(1, 6),
        }),
        _ => Some(Fault::Crash {
            at_op: rng.range(1, 60),
        }),
    }
}

/// One compaction as `argusctl compact` runs it: erase, then compress,
/// under the writer lock, every file operation through `sim`, the reader
/// that finds the redactions included (a sparse index it rebuilds is a
/// write, which a power cut can stop like any other).
fn compact(t: &Template, sim: &SimFs) -> Result<(usize, usize), String> {
    let r = compact_once(t, sim);
    if let Ok((e, c)) = r {
        TOTAL.with(|t| t.set(t.get() + e + c));
    }
    r
}

thread_local! {
    static TOTAL: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn compact_once(t: &Template, sim: &SimFs) -> Result<(usize, usize), String> {
    let lock = WriterLock::acquire_on(&*sim.storage(), &t.root, "compact", Duration::from_secs(10))
        .map_err(|e| format!("lock: {e}"))?;
    let reader = LogReader::open_on(&t.root, sim.storage()).map_err(|e| format!("reader: {e}"))?;
    let dir = LogDir::with_storage(&t.root, sim.storage());
    let erased = erase_redacted_on(&dir, &reader, &lock)
        .map_err(|e| format!("erase: {e}"))?
        .erased
        .len();
    let compressed = compress_sealed_on(&dir, &lock, &ArchiveOptions::default())
        .map_err(|e| format!("compress: {e}"))?
        .segments
        .len();
    Ok((erased, compressed))
}

/// The reader sees every entry of `want` (seq -> hash; an erased payload
/// keeps its entry hash) and verify passes, over the state as it is now
/// (and over a real copy of it, given `dump`).
fn check(
    t: &Template,
    sim: &SimFs,
    dump: Option<&Path>,
    want: &BTreeMap<u64, [u8; 32]>,
    when: &str,
) -> Result<(), String> {
    let got = read_back(t, sim);
    let (code, why) = verify_sim(t, sim);
    if let Some(to) = dump {
        cross_check(t, sim, to, &got, code).map_err(|e| format!("{when}: {e}"))?;
    }
    let got = got.map_err(|e| format!("{when}: {e}"))?;
    for (seq, h) in want {
        match got.get(seq) {
            Some(g) if g == h => {}
            Some(_) => return Err(format!("{when}: seq {seq} reads back with another hash")),
            None => return Err(format!("{when}: seq {seq} is not in the log")),
        }
    }
    if code != 0 {
        return Err(format!("{when}: verify failed (exit {code}): {why}"));
    }
    Ok(())
}

pub(super) fn run_seed(
    t: &Template,
    want: &BTreeMap<u64, [u8; 32]>,
    seed: u64,
    scratch: &Path,
) -> Result<Outcome, String> {
    TOTAL.with(|t| t.set(0));
    let mut rng = Rng::new(seed);
    let fault = choose(&mut rng);
    let sim = SimFs::load(&t.root, &t.root, seed);
    let mut out = Outcome::default();
    let dump = scratch.join(format!("cdump-{seed}"));
    let dump = cross_checked(seed).then_some(dump.as_path());
    // Sometimes an earlier clean compaction, so this one meets `.segz`
    // files (an erasure then rewrites a compressed segment plain).
    if rng.chance(1, 4) {
        compact(t, &sim).map_err(|e| format!("clean compaction: {e}"))?;
    }
    if let Some(f) = fault {
        sim.arm(f);
    }
    let first = compact(t, &sim);
    out.fired = sim.fired().is_some();
    match (&first, sim.fired()) {
        (Err(e), None) => return Err(format!("compaction failed with no fault: {e}")),
        (Ok(_), Some(f)) => {
            return Err(format!(
                "compaction reported success after the fault fired at {} (op {})",
                f.path.display(),
                f.op
            ))
        }
        _ => {}
    }
    if let Ok((e, c)) = first {
        out.erased = e;
        out.compressed = c;
    }
    sim.disarm();
    if matches!(fault, Some(Fault::Crash { .. })) || rng.chance(2, 3) {
        sim.crash();
    }
    out.temps_left = sim
        .files(&t.root.join("segments"))
        .iter()
        .filter(|(p, _)| p.to_string_lossy().ends_with(".tmp"))
        .count();
    check(t, &sim, dump, want, "after the cut")?;
    if rng.chance(1, 3) {
        out.second_cut = true;
        sim.arm(Fault::Crash {
            at_op: rng.range(1, 40),
        });
        let _ = compact(t, &sim);
        sim.crash();
        check(t, &sim, dump, want, "after a cut in the second compaction")?;
    }
    compact(t, &sim).map_err(|e| format!("the finishing compaction: {e}"))?;
    let segs = sim.files(&t.root.join("segments"));
    let plain: Vec<_> = segs
        .iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    if plain.len() != 1 {
        return Err(format!(
            "{} plain segments after the finishing compaction (only the last should be)",
            plain.len()
        ));
    }
    let log = open(t, &sim).map_err(|e| format!("reopen after compaction: {e}"))?;
    let mut want = want.clone();
    let a = log
        .append(vec![super::entry(40_000, 8)])
        .map_err(|e| format!("the reopened log refused an append: {e}"))?;
    want.insert(a[0].seq, a[0].hash);
    drop(log);
    check(t, &sim, dump, &want, "after the finishing compaction")?;
    out.total = TOTAL.with(|t| t.get());
    Ok(out)
}
