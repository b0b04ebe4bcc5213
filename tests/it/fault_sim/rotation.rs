//! Key rotation (SPEC §4.7) under one seeded fault: a power cut before
//! any storage operation of `Log::rotate_key` (argus.json pending, the
//! new key file, the writer's `key.rotated` commit and roll, argus.json
//! final, the old key's zero+sync+unlink), a failed fsync, a short write;
//! then a power cut, sometimes a second one inside `settle`, and a clean
//! reopen. Every run must hold:
//!
//! 1. the log opens, and exactly one epoch key is current: argus.json's
//!    newest epoch, whose key file loads (mode 0600) and signs the next
//!    append;
//! 2. an acknowledged rotation took effect; an unacknowledged one took
//!    effect or is cleanly forgotten (its key file gone);
//! 3. the old private key is the current key or gone, never both retired
//!    and present;
//! 4. every acked entry reads back and `verify` from the FIRST key passes.
use super::simfs::{Fault, Rng, SimFs};
use super::{cross_checked, entry, must_stop, open, verify_after, Template};
use argus::log::dir::LogDir;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Clone)]
pub(super) struct Outcome {
    pub rotated_ok: bool,
    pub took_effect: bool,
    pub fired: bool,
    pub recovery_crash: bool,
}

impl super::Tally for Outcome {
    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("fault fired", u64::from(self.fired)),
            ("rotation acked", u64::from(self.rotated_ok)),
            (
                "rotation in effect after reopen",
                u64::from(self.took_effect),
            ),
            ("rotation forgotten", u64::from(!self.took_effect)),
            ("second cut in recovery", u64::from(self.recovery_crash)),
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
            nth: rng.range(1, 8),
        }),
        _ => Some(Fault::Crash {
            at_op: rng.range(1, 45),
        }),
    }
}

fn key_file_of(sim: &SimFs, root: &Path) -> String {
    let bytes = sim.read(&root.join("argus.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    v["key_file"].as_str().unwrap_or_default().to_string()
}

pub(super) fn run_seed(t: &Template, seed: u64, scratch: &Path) -> Result<Outcome, String> {
    let mut story = String::new();
    run(t, seed, scratch, &mut story).map_err(|e| format!("{e} [{story}]"))
}

fn run(t: &Template, seed: u64, scratch: &Path, story: &mut String) -> Result<Outcome, String> {
    use std::fmt::Write;
    let mut rng = Rng::new(seed);
    let fault = choose(&mut rng);
    let sim = SimFs::load(&t.root, &t.root, seed);
    let mut out = Outcome::default();
    let mut acked = BTreeMap::new();
    let mut log = open(t, &sim).map_err(|e| format!("first open: {e}"))?;
    let mut n = 0u64;
    let mut append = |log: &argus::log::Log, acked: &mut BTreeMap<u64, [u8; 32]>, rng: &mut Rng| {
        let batch = (0..rng.range(1, 3))
            .map(|_| {
                n += 1;
                entry(n, rng.range(0, 300) as usize)
            })
            .collect();
        log.append(batch).map(|acks| {
            for a in acks {
                acked.insert(a.seq, a.hash);
            }
        })
    };
    for _ in 0..rng.range(1, 4) {
        append(&log, &mut acked, &mut rng).map_err(|e| format!("append: {e}"))?;
    }
    // Sometimes an earlier clean rotation, so the faulted one retires an
    // epoch key that is not the first.
    if rng.chance(1, 3) {
        log.rotate_key()
            .map_err(|e| format!("clean rotation: {e}"))?;
        append(&log, &mut acked, &mut rng).map_err(|e| format!("append: {e}"))?;
    }
    let (old_epoch, _) = log.meta().current_key().unwrap();
    let old_file = log.meta().key_file.clone();
    let new_file = format!("keys/epoch-{}.key", old_epoch + 1);
    if let Some(f) = fault {
        sim.arm(f);
    }
    let rotated = log.rotate_key();
    let fired = sim.fired();
    out.fired = fired.is_some();
    match (&rotated, &fired) {
        (Ok(r), Some(f)) if must_stop(f) => {
            return Err(format!(
                "rotation to epoch {} acknowledged after the fault fired at {} (op {})",
                r.epoch,
                f.path.display(),
                f.op
            ))
        }
        (Err(e), None) => return Err(format!("rotation failed with no fault: {e}")),
        _ => {}
    }
    out.rotated_ok = rotated.is_ok();
    let _ = write!(
        story,
        "rotation: {:?}; fired: {:?}",
        rotated.as_ref().map(|r| r.seq).map_err(|e| e.to_string()),
        fired.as_ref().map(|f| (f.path.clone(), f.op))
    );
    // Whatever the log acks now must survive, whichever key signed it.
    let after = append(&log, &mut acked, &mut rng);
    let _ = write!(
        story,
        "; append after: {:?}",
        after.as_ref().map_err(|e| e.to_string())
    );
    if after.is_ok() {
        if let Some(f) = sim
            .fired()
            .filter(|f| matches!(f.fault, Fault::Crash { .. }))
        {
            return Err(format!(
                "appended after the power cut at {}",
                f.path.display()
            ));
        }
    }
    drop(log);
    sim.disarm();
    let process_exit_only = !matches!(fault, Some(Fault::Crash { .. })) && rng.chance(1, 3);
    if !process_exit_only {
        sim.crash();
    }
    if rng.chance(1, 3) {
        out.recovery_crash = true;
        sim.arm(Fault::Crash {
            at_op: rng.range(1, 20),
        });
        if let Ok(log) = open(t, &sim) {
            let _ = log.append(vec![entry(20_000, 8)]);
        }
        sim.crash();
    }
    let log = open(t, &sim).map_err(|e| format!("reopen after the crash failed: {e}"))?;
    let meta = log.meta().clone();
    let (epoch, _) = meta.current_key().map_err(|e| e.to_string())?;
    if meta.pending_rotation.is_some() || meta.retired_key_file.is_some() {
        return Err(format!(
            "after reopen argus.json still has pending {:?} / retired {:?}",
            meta.pending_rotation, meta.retired_key_file
        ));
    }
    let d = LogDir::new(&t.root);
    let cur = d.key_path(&meta);
    match sim.mode(&cur) {
        Some(0o600) => {}
        m => {
            return Err(format!(
                "current key {} has mode {:o}",
                cur.display(),
                m.unwrap_or(0)
            ))
        }
    }
    out.took_effect = epoch == old_epoch + 1;
    if epoch != old_epoch && !out.took_effect {
        return Err(format!("epoch {epoch} after rotating from {old_epoch}"));
    }
    if out.rotated_ok && !out.took_effect {
        return Err(format!(
            "an acknowledged rotation to epoch {} was lost",
            old_epoch + 1
        ));
    }
    if out.took_effect {
        if sim.has(&d.resolve(&old_file)) {
            return Err(format!("the retired key {old_file} is still there"));
        }
        if meta.key_file != new_file {
            return Err(format!(
                "key_file {} after the rotation, not {new_file}",
                meta.key_file
            ));
        }
    } else {
        if meta.key_file != old_file || key_file_of(&sim, &t.root) != old_file {
            return Err(format!(
                "key_file {} after a forgotten rotation",
                meta.key_file
            ));
        }
        if sim.has(&t.root.join(&new_file)) {
            return Err(format!("the uncertified key {new_file} was left behind"));
        }
    }
    match log.append(vec![entry(30_000, 8)]) {
        Ok(a) => {
            acked.insert(a[0].seq, a[0].hash);
        }
        Err(e) => return Err(format!("the reopened log refused an append: {e}")),
    }
    drop(log);
    if process_exit_only {
        sim.crash();
        drop(open(t, &sim).map_err(|e| format!("reopen after the late power cut: {e}"))?);
    }
    let dump = scratch.join(format!("rot-{seed}"));
    let verdict = verify_after(
        t,
        &sim,
        cross_checked(seed).then_some(dump.as_path()),
        &acked,
        None,
    );
    if verdict.is_err() && std::env::var_os("ARGUS_SIM_KEEP").is_some() {
        let _ = std::fs::remove_dir_all("/tmp/argus-sim-keep");
        sim.dump(&t.root, Path::new("/tmp/argus-sim-keep"));
    }
    let _ = std::fs::remove_dir_all(&dump);
    verdict.map(|()| out)
}
