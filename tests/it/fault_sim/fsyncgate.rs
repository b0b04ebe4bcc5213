//! fsyncgate across a restart: a failed fsync, then a reopen *without* a
//! power cut (a service restart). The page cache may still hold the commit
//! whose fsync failed while the disk does not; if recovery read it as
//! written, the writer would append after it and ack, and a later power
//! cut would take the dropped pages and the acks after them (recovery cut
//! them as a torn tail: before `Writer::cut_unacked`, 19 of these 20 seeds
//! lost the acked entry). The writer now truncates the failed bytes away
//! before it locks down.
use super::simfs::{Fault, SimFs};
use super::{entry, open_mode, read_back, verify_sim, Template};

#[test]
fn a_restart_after_a_failed_fsync_keeps_later_acks_through_a_power_cut() {
    let t = Template::new(3);
    let mut broken = Vec::new();
    for seed in 0..20 {
        let sim = SimFs::load(&t.root, &t.root, seed);
        // Even seeds commit on the writer thread, odd ones on this thread.
        let inline = seed % 2 == 1;
        let log = open_mode(&t, &sim, inline).unwrap();
        log.append(vec![entry(1, 10)]).unwrap();
        sim.arm(Fault::FsyncEio { nth: 1 });
        assert!(log.append(vec![entry(2, 1500)]).is_err());
        drop(log);
        sim.disarm();
        // The service restarts; the machine does not.
        let log = open_mode(&t, &sim, inline).unwrap();
        let acked = log.append(vec![entry(3, 10)]).unwrap()[0].seq;
        drop(log);
        sim.crash();
        match open_mode(&t, &sim, inline) {
            Ok(log) if log.committed().get() > acked => {
                drop(log);
                let (code, why) = match read_back(&t, &sim) {
                    Ok(_) => verify_sim(&t, &sim),
                    Err(e) => (-2, e),
                };
                if code != 0 {
                    broken.push(format!("seed {seed}: verify exit {code}: {why}"));
                }
            }
            Ok(log) => broken.push(format!(
                "seed {seed}: acked seq {acked} lost (log holds {})",
                log.committed().get()
            )),
            Err(e) => broken.push(format!("seed {seed}: acked seq {acked} behind damage: {e}")),
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
