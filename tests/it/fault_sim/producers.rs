//! The writer campaign's faults with several producers appending at once
//! (2 to 5 threads sharing one `Log`, as argusd's connections do), so
//! group commits hold requests from more than one caller when a write or
//! fsync fails. The invariants are the writer campaign's: no ack after a
//! fault that must stop the log, every later append refused until a
//! reopen, no acked entry lost after the power cut, and each seq acked to
//! one caller only.
//!
//! A seed fixes the fault, the producers and their batches, but not how
//! the threads interleave, so `ARGUS_SIM_SEED=N` replays the same run up
//! to the order of commits: the seed finds the class of run, not one
//! schedule.
use super::simfs::{Rng, SimFs};
use super::{after_appends, choose, entry, must_stop, open_mode, Outcome, Tally, Template};
use argus::log::Log;
use argus::NewEntry;
use std::collections::BTreeMap;
use std::path::Path;

/// Seeds per `cargo test`; `tools/fault-sim.sh` runs 10,000.
pub(super) const PRODUCER_SEEDS: u64 = 300;

impl Tally for Outcome {
    fn counts(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("fault fired", u64::from(self.fired)),
            ("appends refused after a fault", self.refused_after_fault),
            (
                "recoveries cut by a second power cut",
                u64::from(self.recovery_crash),
            ),
            ("reopens that cut a tail", u64::from(self.cut)),
            (
                "second faults fired after a recovery",
                u64::from(self.second_fault),
            ),
            ("acked entries checked", self.acked),
        ]
    }
}

/// What one producer was acked, and how many appends it saw refused
/// after its first failure.
type Produced = (Vec<(u64, [u8; 32])>, u64);

/// The fault and the producers' plans a seed stands for.
pub(super) fn describe(seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let (kind, fault) = choose(&mut rng);
    format!("{kind:?} {fault:?}, {} producers", rng.range(2, 5))
}

pub(super) fn run_seed(t: &Template, seed: u64, scratch: &Path) -> Result<Outcome, String> {
    let mut rng = Rng::new(seed);
    let sim = SimFs::load(&t.root, &t.root, seed);
    let (kind, fault) = choose(&mut rng);
    let producers = rng.range(2, 5);
    let mut out = Outcome {
        kind: Some(kind),
        ..Outcome::default()
    };
    if let Some(f) = fault {
        sim.arm(f);
    }
    // Each producer's batches, drawn before any thread starts so the seed
    // alone decides them.
    let plans: Vec<Vec<Vec<NewEntry>>> = (0..producers)
        .map(|p| {
            let batches = rng.range(2, 8);
            (0..batches)
                .map(|b| {
                    (0..rng.range(1, 4))
                        .map(|i| {
                            let pad = if rng.chance(1, 5) {
                                rng.range(1000, 3000)
                            } else {
                                rng.range(0, 200)
                            };
                            entry(p * 100_000 + b * 10 + i, pad as usize)
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut acked: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
    match open_mode(t, &sim, seed % 2 == 1) {
        Err(e) => {
            if sim.fired().is_none() {
                return Err(format!("open failed with no fault injected: {e}"));
            }
        }
        Ok(log) => {
            let results: Vec<Result<Produced, String>> = std::thread::scope(|s| {
                let handles: Vec<_> = plans
                    .into_iter()
                    .map(|plan| {
                        let (log, sim) = (&log, &sim);
                        s.spawn(move || produce(log, sim, plan))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err("a producer panicked".into()))
                    })
                    .collect()
            });
            for r in results {
                let (acks, refused) = r?;
                out.refused_after_fault += refused;
                for (seq, hash) in acks {
                    if acked.insert(seq, hash).is_some() {
                        return Err(format!("seq {seq} was acked to two callers"));
                    }
                }
            }
            // With no fault, every commit was synced before its ack.
            let unsynced = sim.unsynced_segments();
            if sim.fired().is_none() && !unsynced.is_empty() {
                return Err(format!(
                    "all acked and no fault fired, yet {unsynced:?} hold bytes no sync covered"
                ));
            }
            drop(log);
        }
    }
    after_appends(t, &sim, &mut rng, seed, scratch, acked, out)
}

/// One producer's appends: stops at its first failure, which must follow
/// a fault, and then must see the log refuse more.
fn produce(log: &Log, sim: &SimFs, plan: Vec<Vec<NewEntry>>) -> Result<Produced, String> {
    let mut acked = Vec::new();
    for batch in plan {
        let fired_before = sim.fired();
        match log.append(batch) {
            Ok(acks) => {
                if let Some(f) = fired_before.filter(must_stop) {
                    return Err(format!(
                        "acknowledged seq {} after the fault fired at {} (op {})",
                        acks[0].seq,
                        f.path.display(),
                        f.op
                    ));
                }
                acked.extend(acks.iter().map(|a| (a.seq, a.hash)));
            }
            Err(e) => {
                if sim.fired().is_none() {
                    return Err(format!("append failed with no fault injected: {e}"));
                }
                let mut refused = 0;
                for i in 0..2 {
                    match log.append(vec![entry(900_000 + i, 8)]) {
                        Ok(a) => {
                            return Err(format!(
                                "appended seq {} after a failed append ({e}) without a reopen",
                                a[0].seq
                            ))
                        }
                        Err(_) => refused += 1,
                    }
                }
                return Ok((acked, refused));
            }
        }
    }
    Ok((acked, 0))
}
