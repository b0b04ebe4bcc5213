//! A real full disk (threat T51): a 2 MiB tmpfs fills up under a log that
//! rolls small segments. The append that hits ENOSPC is not acknowledged
//! and its error names the full disk, the log refuses every later append
//! until it is reopened, and once space is freed the reopened log holds
//! every acknowledged entry and verifies. Needs root to mount the tmpfs;
//! anyone else gets a printed skip. The seeded simulator (fault_sim)
//! covers ENOSPC at every kind of write; this checks the real kernel path.
use crate::common::*;
use argus::log::reader::LogReader;
use argus::log::Log;
use argus::NewEntry;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Unmounts the tmpfs however the test ends.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Option<Self> {
        if euid() != 0 {
            return None;
        }
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(at.into()))
    }
    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount {size}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The effective uid, from `id -u` (no unsafe code for `geteuid`).
fn euid() -> u32 {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

fn fill(i: u64) -> NewEntry {
    NewEntry {
        kind: "x.fill".into(),
        job_id: None,
        step_id: None,
        agent: None,
        actor: "user:fill".into(),
        parent: None,
        payload: format!("{{\"i\":{i},\"pad\":\"{}\"}}", "f".repeat(1500)).into_bytes(),
    }
}

#[test]
fn a_full_disk_acks_nothing_unstored_and_loses_nothing_acked() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mnt) = Mount::tmpfs(tmp.path(), "2m") else {
        eprintln!("skipped: needs root to mount a tmpfs");
        return;
    };
    let dir = tmp.path().join("log");
    let key = init_at(&dir, Some(128 * 1024));
    let log = Log::open(&dir).unwrap();
    let mut acked = BTreeMap::new();
    let mut failure = None;
    for i in 0..10_000u64 {
        match log.append((0..3).map(|j| fill(i * 3 + j)).collect()) {
            Ok(acks) => acked.extend(acks.into_iter().map(|a| (a.seq, a.hash))),
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.expect("2 MiB never filled up");
    assert!(
        failure.contains("No space left on device") && failure.contains("lockdown"),
        "the error must name the full disk and the lockdown: {failure}"
    );
    assert!(acked.len() > 100, "only {} entries fit", acked.len());
    // Space comes back, but only a reopen may clear the lockdown.
    mnt.resize("8m");
    for i in 0..3 {
        let e = log.append(vec![fill(90_000 + i)]).unwrap_err();
        assert!(e.to_string().contains("lockdown"), "{e}");
    }
    drop(log);
    let log = Log::open(&dir).unwrap();
    let next = log.append(vec![fill(99_999)]).unwrap()[0].seq;
    assert!(next > *acked.keys().next_back().unwrap());
    drop(log);
    let r = LogReader::open(&dir).unwrap();
    let mut got = BTreeMap::new();
    r.for_each(0, u64::MAX, |e| {
        got.insert(e.seq, e.hash());
        ControlFlow::Continue(())
    })
    .unwrap();
    for (seq, h) in &acked {
        assert_eq!(got.get(seq), Some(h), "acked seq {seq}");
    }
    verify(&dir, &key, &[]).assert_ok();
    eprintln!(
        "enospc: {} entries acked before the 2 MiB tmpfs filled: {failure}",
        acked.len()
    );
}
