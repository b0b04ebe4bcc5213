//! Media corruption in sealed segments (SPEC §7.1: "corruption is
//! reported, not hidden"): after a clean run, one seeded bit of one sealed
//! segment flips inside `SimFs`. `verify`, reading the simulated state
//! through `Storage`, must fail and name that segment at or before the
//! flipped byte; the reader, also over `SimFs`, may stop with an error or
//! hand out every entry (the flip hit none it reads), but never an entry
//! whose hash is not the one written, and never skip one without an error.
use super::simfs::{Rng, SimFs};
use super::{cross_check, cross_checked, pinned, Tally, Template};
use argus::log::reader::LogReader;
use argus::log::verify;
use log_format::SegmentHeader;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;

/// What one seed saw.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// The reader stopped with an error.
    reader_refused: bool,
    /// The reader handed out every entry, all whole (the flip hit nothing
    /// it reads: a seal's signature, a footer it does not need).
    reader_whole: bool,
}

impl Tally for Outcome {
    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("flips", 1),
            ("reader_refused", u64::from(self.reader_refused)),
            ("reader_whole", u64::from(self.reader_whole)),
        ]
    }
}

/// Which sealed segment and which bit seed `seed` flips in `sim`: every
/// `.seg` but the last is sealed.
pub(super) fn choose(sim: &SimFs, t: &Template, seed: u64) -> Option<(std::path::PathBuf, u64)> {
    let mut rng = Rng::new(seed);
    let segs: Vec<_> = sim
        .files(&t.root.join("segments"))
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    let sealed = segs.len().checked_sub(1).filter(|n| *n > 0)?;
    let (path, bytes) = &segs[rng.below(sealed as u64) as usize];
    Some((path.clone(), rng.below(bytes.len() as u64 * 8)))
}

pub(super) fn run_seed(
    t: &Template,
    want: &BTreeMap<u64, [u8; 32]>,
    seed: u64,
    scratch: &Path,
) -> Result<Outcome, String> {
    let sim = SimFs::load(&t.root, &t.root, seed);
    let (path, bit) = choose(&sim, t, seed).ok_or("the template has no sealed segment")?;
    let header_len = sim
        .read(&path)
        .and_then(|b| SegmentHeader::decode(&b).ok())
        .map_or(0, |(_, n)| n as u64);
    sim.flip_bit(&path, bit);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let byte = bit / 8;
    let at = format!("segments/{name} byte {byte} bit {}", bit % 8);
    let mut out = Outcome::default();

    // The reader, over SimFs: every entry it hands out, even before an
    // error, must be one that was written.
    let mut got = BTreeMap::new();
    let read = LogReader::open_on(&t.root, sim.storage()).and_then(|r| {
        r.for_each(0, u64::MAX, |e| {
            got.insert(e.seq, e.hash());
            ControlFlow::Continue(())
        })
    });
    for (seq, h) in &got {
        if want.get(seq) != Some(h) {
            return Err(format!("{at}: the reader handed out seq {seq} altered"));
        }
    }
    out.reader_refused = read.is_err();
    out.reader_whole = read.is_ok();
    if read.is_ok() && got != *want {
        let missing = want.keys().filter(|k| !got.contains_key(k)).count();
        return Err(format!(
            "{at}: the reader skipped {missing} entries without an error"
        ));
    }

    // Verify, over SimFs: a failure naming the segment, no later than the
    // flipped byte.
    let report = verify::verify_on(&t.root, &*sim.storage(), &pinned(t))
        .map_err(|e| format!("{at}: verify could not run: {e}"))?;
    if report.code == 0 {
        return Err(format!("{at}: verify passed a flipped bit"));
    }
    let f = report
        .failure
        .ok_or_else(|| format!("{at}: verify exits {} naming no failure", report.code))?;
    if f.segment != name {
        return Err(format!("{at}: verify names another segment: {f}"));
    }
    // A header is judged whole: at its end (its checksum), or wherever a
    // flipped length field sends the decoder looking for that checksum
    // (seed 8539: a flip in the header's length reported at offset 4229),
    // as long as the failure is the header's.
    let in_header = byte < header_len
        && (f.offset <= header_len || matches!(f.cause, verify::Cause::Header(_)));
    if f.offset > byte && !in_header {
        return Err(format!(
            "{at}: verify reports offset {} (past the flip): {f}",
            f.offset
        ));
    }
    if cross_checked(seed) {
        let read = read.map(|()| got).map_err(|e| e.to_string());
        let to = scratch.join(format!("flip-{seed}"));
        cross_check(t, &sim, &to, &read, report.code).map_err(|e| format!("{at}: {e}"))?;
    }
    Ok(out)
}
