//! The control-flag mirrors (`DIR/control/*.flag`, ADR-018 S5) under a
//! power cut before each of their storage operations, not a sample: a
//! flag is written whole or not at all, and removed the same way. After
//! the cut a flag reads as the old record or the new one, never as
//! something else; once `write_on` or `remove_on` returned, the change
//! survives the cut.
use super::simfs::{Fault, SimFs};
use super::Template;
use argus::log::control_flags::{read_on, remove_on, write_on, Flag, FlagRecord, OnDisk};
use std::path::Path;

fn record(seq: u64) -> FlagRecord {
    FlagRecord {
        kind: Flag::Lockdown.kind().into(),
        seq,
        reason: format!("sim {seq}"),
        ts: "2026-01-01T00:00:00Z".into(),
        actor: "operator:sim".into(),
    }
}

fn state(sim: &SimFs, root: &Path) -> Option<u64> {
    match read_on(&*sim.storage(), root, Flag::Lockdown) {
        OnDisk::Absent => None,
        OnDisk::Record(r) => Some(r.seq),
        OnDisk::Foreign(why) => panic!("a torn or foreign flag after a power cut: {why}"),
    }
}

/// A finished change survives the cut whatever the cut keeps of what was
/// not synced: 32 cuts with different seeds.
fn finished_survives(root: &Path, from: Option<u64>, step: Option<u64>) {
    for seed in 0..32 {
        let sim = SimFs::load(root, root, 1000 + seed);
        let s = sim.storage();
        if let Some(seq) = from {
            write_on(&*s, root, Flag::Lockdown, &record(seq)).unwrap();
        }
        match step {
            Some(seq) => write_on(&*s, root, Flag::Lockdown, &record(seq)).unwrap(),
            None => assert!(remove_on(&*s, root, Flag::Lockdown).unwrap()),
        }
        sim.crash();
        assert_eq!(
            state(&sim, root),
            step,
            "crash seed {seed}: a finished change was lost"
        );
    }
}

#[test]
fn a_flag_survives_a_power_cut_before_any_operation_whole_or_not_at_all() {
    let t = Template::new(0);
    let root = &t.root;
    let mut runs = 0;
    // 1 -> 2 -> removed: the first write also creates `control/`.
    for (from, step) in [(None, Some(1)), (Some(1), Some(2)), (Some(2), None)] {
        for at_op in 1.. {
            let sim = SimFs::load(root, root, at_op);
            let s = sim.storage();
            for seq in [Some(1), Some(2)].into_iter().take_while(|v| *v != step) {
                write_on(&*s, root, Flag::Lockdown, &record(seq.unwrap())).unwrap();
            }
            if from.is_none() {
                assert_eq!(state(&sim, root), None);
            }
            sim.arm(Fault::Crash { at_op });
            let done = match step {
                Some(seq) => write_on(&*s, root, Flag::Lockdown, &record(seq)).is_ok(),
                None => remove_on(&*s, root, Flag::Lockdown).is_ok(),
            };
            let fired = sim.fired().is_some();
            sim.disarm();
            sim.crash();
            let got = state(&sim, root);
            if done && !fired {
                assert_eq!(got, step, "op {at_op}: a finished change was lost");
                finished_survives(root, from, step);
                break;
            }
            assert!(
                got == from || got == step,
                "op {at_op}: flag {got:?}, neither {from:?} nor {step:?}"
            );
            runs += 1;
        }
    }
    eprintln!("flags: {runs} power cuts inside a flag write or removal");
}
