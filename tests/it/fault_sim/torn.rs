//! Torn writes at every byte offset of the last commit, not a sample: the
//! disk holds the commit's first `k` bytes (a process crash), or its first
//! `k` bytes and zeros to its end (a power cut that extended the size but
//! lost the pages), for every `k`. Recovery must cut back to the last whole
//! signed seal, record the cut, keep every entry acked before, and leave a
//! log that appends and verifies.
use super::simfs::SimFs;
use super::{entry, open, read_back, scratch, verify_sim, Template};
use std::collections::BTreeMap;

#[test]
fn a_torn_last_commit_at_every_byte_offset_cuts_back_to_the_last_seal() {
    let t = Template::new(2);
    let sim = SimFs::load(&t.root, &t.root, 0);
    let log = open(&t, &sim).unwrap();
    let mut acked = BTreeMap::new();
    for i in 0..3 {
        for a in log.append(vec![entry(i, 30)]).unwrap() {
            acked.insert(a.seq, a.hash);
        }
    }
    let seg_dir = t.root.join("segments");
    let last_seg = |s: &SimFs| {
        s.files(&seg_dir)
            .into_iter()
            .rfind(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
            .unwrap()
    };
    let (seg, before) = last_seg(&sim);
    let n_before = log.committed().get();
    let last = log.append(vec![entry(99, 20)]).unwrap();
    let (seg_after, after) = last_seg(&sim);
    assert_eq!(seg, seg_after, "the last commit must not roll the segment");
    drop(log);
    assert!(after.len() > before.len());
    let commit = after.len() - before.len();
    let scratch = scratch();
    let base = scratch.path().join("base");
    sim.dump(&t.root, &base);
    let mut runs = 0;
    for zeros in [false, true] {
        for k in 0..=commit {
            if zeros && k == commit {
                continue;
            }
            let mut bytes = after[..before.len() + k].to_vec();
            if zeros {
                bytes.resize(after.len(), 0);
            }
            let tail = bytes.len() > before.len();
            // Zeros past `k` can rebuild the whole commit when its last
            // bytes happen to be zeros (a signature or CRC ending in 0x00,
            // about 1 run in 256): that state is the whole commit, not a
            // torn one.
            let whole = bytes == after;
            let s = SimFs::load(&base, &t.root, k as u64);
            s.set_durable(&seg, bytes);
            let log =
                open(&t, &s).unwrap_or_else(|e| panic!("k={k} zeros={zeros}: reopen failed: {e}"));
            let committed = log.committed().get();
            if whole {
                assert_eq!(committed, n_before + 1, "k={k}: the whole commit is kept");
                assert!(log.recovered().is_none(), "k={k}: nothing to cut");
            } else if tail {
                // The torn commit is gone; its cut is recorded as the next entry.
                let (cut, ack) = log
                    .recovered()
                    .unwrap_or_else(|| panic!("k={k} zeros={zeros}: the cut is not recorded"));
                assert_eq!(ack.seq, n_before, "k={k} zeros={zeros}: {cut:?}");
                assert_eq!(cut.offset, before.len() as u64, "cut back to the last seal");
                assert_eq!(committed, n_before + 1);
            } else {
                assert_eq!(committed, n_before);
            }
            log.append(vec![entry(1000, 4)])
                .unwrap_or_else(|e| panic!("k={k} zeros={zeros}: append after reopen: {e}"));
            drop(log);
            let got = read_back(&t, &s).unwrap();
            for (seq, h) in &acked {
                assert_eq!(
                    got.get(seq),
                    Some(h),
                    "k={k} zeros={zeros}: acked seq {seq}"
                );
            }
            if whole {
                assert_eq!(got.get(&last[0].seq), Some(&last[0].hash));
            }
            let (code, why) = verify_sim(&t, &s);
            assert_eq!(code, 0, "k={k} zeros={zeros}: verify: {why}");
            runs += 1;
        }
    }
    eprintln!("torn: {runs} torn states of a {commit}-byte commit recovered");
}

/// A power cut between the durable cut report and the truncation it
/// announces: the next open cuts the same bytes, and the cut must be
/// recorded once, not once per open that saw it.
#[test]
fn a_cut_interrupted_before_its_truncation_is_recorded_once() {
    use super::simfs::Fault;
    let t = Template::new(2);
    let base_sim = SimFs::load(&t.root, &t.root, 0);
    let log = open(&t, &base_sim).unwrap();
    log.append(vec![entry(1, 30)]).unwrap();
    let seg_dir = t.root.join("segments");
    let last_seg = |s: &SimFs| {
        s.files(&seg_dir)
            .into_iter()
            .rfind(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
            .unwrap()
    };
    let (seg, before) = last_seg(&base_sim);
    let n_before = log.committed().get();
    log.append(vec![entry(2, 30)]).unwrap();
    drop(log);
    let (_, after) = last_seg(&base_sim);
    let scratch = scratch();
    let base = scratch.path().join("base");
    base_sim.dump(&t.root, &base);
    // Half of the last commit: a torn tail to cut.
    let torn = after[..before.len() + (after.len() - before.len()) / 2].to_vec();
    let mut hit = 0;
    for at_op in 1..40 {
        let s = SimFs::load(&base, &t.root, at_op);
        s.set_durable(&seg, torn.clone());
        s.arm(Fault::Crash { at_op });
        let first = open(&t, &s);
        let crashed = s.fired().is_some();
        drop(first);
        s.disarm();
        s.crash();
        let pending_survived = s.has(&t.root.join("recovery.pending.json"));
        let log = open(&t, &s).unwrap_or_else(|e| panic!("op {at_op}: reopen: {e}"));
        let n = log.committed().get();
        drop(log);
        let reader = argus::log::reader::LogReader::open_on(&t.root, s.storage()).unwrap();
        let mut cuts = 0;
        reader
            .for_each(n_before, n, |e| {
                if e.kind == "log.recovered" {
                    cuts += 1;
                }
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(cuts, 1, "op {at_op}: the one cut is recorded {cuts} times");
        if crashed && pending_survived && s.read(&seg).is_some() {
            hit += 1;
        }
    }
    assert!(hit > 0, "no crash point left a cut report behind");
}
