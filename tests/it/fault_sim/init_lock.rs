//! `init` and the writer lock over `SimFs` (issue 14 §4): a power cut at
//! any step of `init` leaves a whole log or no log at all, and the lock is
//! released by a crash, as an `flock` is by kill -9, never by the stale
//! holder after someone else took it.
use super::simfs::{Fault, SimFs};
use super::{entry, scratch, Template, SEGMENT_BYTES};
use argus::error::Error;
use argus::log::dir::InitOptions;
use argus::log::verify::{self, Options};
use argus::log::{Log, OpenOptions};
use std::path::Path;
use std::time::Duration;

/// Power-cut outcomes tried per crash point (which pending writes and
/// names survive is the seed's choice).
const SEEDS_PER_POINT: u64 = 6;

fn init_options() -> InitOptions {
    InitOptions {
        segment_bytes: SEGMENT_BYTES,
        key_file: None,
        clock_skew_tolerance_s: None,
    }
}

fn open_now(root: &Path, sim: &SimFs, inline_writer: bool) -> argus::Result<Log> {
    let opts = OpenOptions {
        lock_wait: Duration::ZERO,
        inline_writer,
        ..OpenOptions::default()
    };
    Log::open_on(root, &opts, sim.storage())
}

/// Appends one entry and verifies the whole log over the simulated state,
/// with the key the log's own argus.json names pinned.
fn appends_and_verifies(log: Log, root: &Path, sim: &SimFs) -> Result<(), String> {
    let key = log.meta().public_key().map_err(|e| e.to_string())?;
    log.append(vec![entry(1, 8)])
        .map_err(|e| format!("append: {e}"))?;
    drop(log);
    let opts = Options {
        key,
        key_pinned: true,
        checkpoints: Vec::new(),
        threads: 1,
        progress: None,
    };
    match verify::verify_on(root, &*sim.storage(), &opts) {
        Ok(r) if r.code == 0 => Ok(()),
        Ok(r) => Err(format!("verify exits {}: {:?}", r.code, r.failure)),
        Err(e) => Err(format!("verify: {e}")),
    }
}

#[test]
fn a_power_cut_at_any_step_of_init_leaves_a_whole_log_or_none() {
    let tmp = scratch();
    let parent = tmp.path();
    let root = parent.join("log");
    // How many operations a clean init (and the open that ends it) takes.
    let clean = SimFs::empty(parent, 0);
    let log = Log::create_on(&root, &init_options(), clean.storage()).unwrap();
    let ops = clean.ops();
    drop(log);
    assert!(ops > 10, "a clean init counted only {ops} operations");
    let mut whole = 0;
    let mut none = 0;
    // `at_op == ops + 1`: init returned, then the power went.
    for at_op in 1..=ops + 1 {
        for k in 0..SEEDS_PER_POINT {
            let seed = at_op * 100 + k;
            let sim = SimFs::empty(parent, seed);
            sim.arm(Fault::Crash { at_op });
            let made = Log::create_on(&root, &init_options(), sim.storage());
            let returned = made.is_ok();
            assert_eq!(
                returned,
                at_op > ops,
                "seed {seed}: init with a power cut at op {at_op} of {ops}: {:?}",
                made.as_ref().err()
            );
            drop(made);
            sim.disarm();
            sim.crash();
            match open_now(&root, &sim, k % 2 == 1) {
                Ok(log) => {
                    appends_and_verifies(log, &root, &sim)
                        .unwrap_or_else(|e| panic!("seed {seed}, cut at op {at_op}: {e}"));
                    whole += 1;
                }
                Err(e) => {
                    assert!(
                        !returned,
                        "seed {seed}: init returned, but after a power cut the log does not open: {e}"
                    );
                    assert!(
                        !sim.has(&root.join("argus.json")),
                        "seed {seed}, cut at op {at_op}: argus.json survived but the log does not open: {e}"
                    );
                    // Not a log: a second init either makes one or says why
                    // it will not (never clobbers, never half-works).
                    match Log::create_on(&root, &init_options(), sim.storage()) {
                        Ok(log) => appends_and_verifies(log, &root, &sim)
                            .unwrap_or_else(|e| panic!("seed {seed}, re-init: {e}")),
                        Err(Error::AlreadyALog { .. } | Error::NotEmpty { .. }) => {}
                        Err(e) => panic!("seed {seed}: re-init after a cut init: {e}"),
                    }
                    none += 1;
                }
            }
        }
    }
    eprintln!("init power cuts: {ops} crash points, {whole} whole logs, {none} no log");
    assert!(whole > 0 && none > 0, "whole {whole}, none {none}");
}

#[test]
fn the_writer_lock_holds_off_a_second_writer_until_a_power_cut_releases_it() {
    let t = Template::new(3);
    let sim = SimFs::load(&t.root, &t.root, 7);
    let first = open_now(&t.root, &sim, true).unwrap();
    match open_now(&t.root, &sim, true) {
        Err(Error::Locked { holder, .. }) => assert!(
            holder.starts_with(&format!("pid {} (", std::process::id())),
            "the holder line read back through the storage: {holder:?}"
        ),
        Err(e) => panic!("a second writer got another error: {e}"),
        Ok(_) => panic!("a second writer opened a locked log"),
    }
    // kill -9 then a reboot: the first writer never runs its drop.
    sim.crash();
    std::mem::forget(first);
    let second = open_now(&t.root, &sim, true).expect("the power cut released the lock");
    assert!(matches!(
        open_now(&t.root, &sim, true),
        Err(Error::Locked { .. })
    ));
    drop(second);
    open_now(&t.root, &sim, true).expect("a dropped writer releases the lock");

    // A holder from before the cut that lets go late (a process the reboot
    // did not reach, in the simulator) must not free its successor's lock.
    let storage = sim.storage();
    let lock = t.root.join("LOCK");
    let stale = storage.open_lock(&lock).unwrap();
    assert!(stale.try_lock().unwrap());
    sim.crash();
    let fresh = storage.open_lock(&lock).unwrap();
    assert!(fresh.try_lock().unwrap());
    drop(stale);
    assert!(!storage.open_lock(&lock).unwrap().try_lock().unwrap());
    drop(fresh);
    assert!(storage.open_lock(&lock).unwrap().try_lock().unwrap());
}
