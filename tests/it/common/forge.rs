//! A log written "by hand": entries committed straight into the segment
//! files with the log's own key, bypassing every check `argusctl` and the
//! library make. It stands for a log written by an older build, or by a
//! tool that holds the key, so tests can show that the projections judge
//! such entries by their writer class rather than believe them.
use log_format::entry::{encode_entry, EntryFields};
use log_format::frame::encode_frame;
use log_format::walk::{ChainWalk, Checks, Item};
use log_format::{FrameType, Seal};
use serde_json::Value;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Appends `entries` (shaped like `argusctl append` lines) as one signed
/// commit, each with `actor` as its actor field, stamped `ts_ns` (or now).
/// Returns the seq and entry hash of each.
pub fn forge_commit(
    dir: &Path,
    actor: &str,
    ts_ns: Option<u64>,
    entries: &[Value],
) -> Vec<(u64, [u8; 32])> {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("argus.json")).unwrap()).unwrap();
    let key = read_key(&dir.join(meta["key_file"].as_str().unwrap()));
    forge_commit_with(dir, &key, actor, ts_ns, entries)
}

/// A private key file's key (a test reads it as a thief would).
pub fn read_key(path: &Path) -> ed25519_dalek::SigningKey {
    let seed_hex = std::fs::read_to_string(path).unwrap();
    let seed: [u8; 32] = hex::decode(seed_hex.trim()).unwrap().try_into().unwrap();
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// `forge_commit`, signing the seal with `key` (whichever key a forger holds).
pub fn forge_commit_with(
    dir: &Path,
    key: &ed25519_dalek::SigningKey,
    actor: &str,
    ts_ns: Option<u64>,
    entries: &[Value],
) -> Vec<(u64, [u8; 32])> {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("argus.json")).unwrap()).unwrap();
    let log_id: [u8; 16] = hex::decode(meta["log_id"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let seg = super::segment_files(dir).pop().unwrap();
    let bytes = std::fs::read(&seg).unwrap();
    let checks = Checks {
        chain: true,
        merkle: true,
        ..Checks::default()
    };
    let (h, mut walk) = ChainWalk::segment(&bytes, checks).unwrap();
    // A segment just rolled to holds only its header.
    let mut end = walk.offset();
    for item in walk.by_ref() {
        match item.unwrap() {
            Item::Seal { end: e, .. } => end = e,
            Item::Footer { .. } => panic!("forge_commit: the last segment is sealed"),
            Item::Entry { .. } => {}
        }
    }
    let st = walk.state().clone();
    assert_eq!(end, bytes.len() as u64, "forge_commit needs a clean tail");
    let (mut next, mut last, mut range) =
        (st.next_seq, st.last_hash.unwrap_or(h.prev_hash), st.range);
    let ts = ts_ns.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let mut buf = Vec::new();
    let mut seqs = Vec::new();
    for e in entries {
        let s = |k: &str| e[k].as_str().map(str::to_string);
        let payload = serde_json::to_vec(&e["payload"]).unwrap();
        let (kind, job, step, agent) = (s("kind").unwrap(), s("job_id"), s("step_id"), s("agent"));
        let fields = EntryFields {
            seq: next,
            ts_ns: ts,
            parent: e["parent"].as_u64(),
            prev: last,
            kind: &kind,
            job_id: job.as_deref(),
            step_id: step.as_deref(),
            agent: agent.as_deref(),
            actor,
            payload: &payload,
        };
        let (body, hash) = encode_entry(&fields).unwrap();
        encode_frame(&mut buf, FrameType::Entry, &body);
        range.push(&hash);
        last = hash;
        seqs.push((next, hash));
        next += 1;
    }
    let seal = Seal::sign(&log_id, key, next, range.root(), last, ts);
    encode_frame(&mut buf, FrameType::Seal, &seal.encode());
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&buf, end).unwrap();
    f.sync_data().unwrap();
    seqs
}
