//! Verify's fast path (seal signatures checked in Ed25519 batches, a
//! segment split into ranges checked on separate threads) reports a
//! damaged log exactly as the sequential, one-`verify_strict`-per-seal walk
//! does: same exit code, segment, offset, seq and message, whichever batch
//! or range the damage falls in, with one thread or several.
use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;
use tempfile::TempDir;

const CONTENT: i32 = 10;
const SIGNATURE: i32 = 11;
/// Seals per signature batch (src/log/verify/sigs.rs): with `--threads 1`
/// a segment is one range, so batches hold seals 0..64, 64..128, ...
const BATCH: usize = 64;
/// Entries in the test log: one seal each, about 0.7 MB in one segment, so
/// `--threads 2` splits it into 8 ranges (src/log/verify/ranges.rs).
const ENTRIES: usize = 2000;

/// One pristine log with one seal per entry, built once (2000 acked
/// appends), and its key.
fn pristine() -> &'static (TempDir, String) {
    static LOG: OnceLock<(TempDir, String)> = OnceLock::new();
    LOG.get_or_init(|| {
        let (tmp, key) = init_log(None);
        append_lockstep(tmp.path(), &small_entries(0, ENTRIES), 1);
        (tmp, key)
    })
}

/// A fresh copy of the pristine log, to damage.
fn copy_of_pristine() -> (TempDir, String) {
    let (src, key) = pristine();
    let dst = tempfile::tempdir().expect("tempdir");
    copy_dir(src.path(), dst.path());
    (dst, key.clone())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let t = e.file_type().expect("type");
        if t.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else if t.is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
    }
}

/// XORs one byte of frame `f` and fixes the frame's CRC, so the frame stays
/// valid and only its content is wrong.
fn tamper_frame(path: &Path, f: Frame, at: u64, mask: u8) {
    let mut b = std::fs::read(path).expect("read segment");
    assert!(at >= f.body_at() && at < f.end(), "{at} outside {f:?}");
    b[at as usize] ^= mask;
    let crc = crc32fast::hash(&b[f.len_at() as usize..f.end() as usize]);
    b[f.crc_at() as usize..f.len_at() as usize].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, b).expect("write segment");
}

/// The failure object of `verify -o json` with `threads`.
fn failure(dir: &Path, key: &str, threads: &str) -> (i32, Value) {
    let (r, v) = verify_json(dir, key, &["--threads", threads]);
    let code = r.code.expect("exit code");
    (code, v["failure"].clone())
}

/// Verify fails with `code` at (`offset`, `seq`) in the only segment, and
/// says the same with 1 and 2 threads.
fn expect_same_failure(dir: &Path, key: &str, code: i32, offset: u64, seq: u64) -> Value {
    let (c1, f1) = failure(dir, key, "1");
    let (c2, f2) = failure(dir, key, "2");
    assert_eq!(c1, code, "exit code with --threads 1: {f1}");
    assert_eq!(f1["offset"], offset, "offset: {f1}");
    assert_eq!(f1["seq"], seq, "seq: {f1}");
    assert_eq!((c2, &f2), (c1, &f1), "--threads 2 reports the same failure");
    f1
}

/// Seal frames of the log's one segment, and the segment.
fn seals() -> (Vec<Frame>, SegmentMap) {
    let (src, _) = pristine();
    let segs = segment_files(src.path());
    assert_eq!(segs.len(), 1, "the test log fits one segment");
    let m = parse_segment(&segs[0]);
    assert!(
        m.seals().len() > ENTRIES,
        "one seal per entry: {}",
        m.seals().len()
    );
    (m.seals(), m)
}

/// The seq a seal's failure names: the last entry it covers.
fn seal_seq(path: &Path, f: Frame) -> u64 {
    let b = std::fs::read(path).expect("read");
    let at = f.body_at() as usize;
    let size = u64::from_le_bytes(b[at..at + 8].try_into().expect("8"));
    size - 1
}

#[test]
fn pristine_log_verifies_with_one_and_two_threads() {
    let (src, key) = pristine();
    verify(src.path(), key, &["--threads", "1"]).assert_ok();
    verify(src.path(), key, &["--threads", "2"]).assert_ok();
}

/// A flipped signature byte in one seal, at a batch's first and last seal
/// and in the middle of one, in R and in S: SIGNATURE at that seal.
#[test]
fn a_bad_seal_signature_is_named_at_its_own_offset() {
    let (all, _) = seals();
    // all[0] seals the empty tree; seal i covers seq i-1.
    for (i, sig_byte) in [
        (BATCH - 1, 100),
        (BATCH, 100),
        (2 * BATCH - 1, 86),
        (ENTRIES / 2 + 7, 120),
        (ENTRIES - 1, 90),
    ] {
        let (dir, key) = copy_of_pristine();
        let seg = &segment_files(dir.path())[0];
        let f = all[i];
        // Body: size 8, root 32, head 32, time 8, key id 4, signature 64
        // (R at body + 84, S at body + 116).
        tamper_frame(seg, f, f.body_at() + sig_byte, 0x04);
        let seq = seal_seq(seg, f);
        let fl = expect_same_failure(dir.path(), &key, SIGNATURE, f.offset, seq);
        assert_eq!(fl["cause"], "seal_signature", "{fl}");
        assert_eq!(
            fl["message"],
            format!(
                "seal at offset {} for tree size {}: signature does not verify under the key of epoch 0",
                f.offset,
                seq + 1
            )
        );
    }
}

/// A payload altered in the second half of the segment (CRC fixed): the
/// same CONTENT failure at that entry, one thread or split into ranges.
#[test]
fn a_tampered_entry_late_in_a_segment_is_reported_alike_in_ranges() {
    let (_, m) = seals();
    let entries = m.entries();
    for k in [ENTRIES / 2 + 3, 3 * ENTRIES / 4, ENTRIES - 2] {
        let (dir, key) = copy_of_pristine();
        let seg = &segment_files(dir.path())[0];
        let f = entries[k];
        let (payload_at, _) = entry_layout(seg, f).payload();
        tamper_frame(seg, f, payload_at + 1, 0x02);
        let fl = expect_same_failure(dir.path(), &key, CONTENT, f.offset, k as u64);
        assert_eq!(fl["cause"], "payload_mismatch", "{fl}");
    }
}

/// The entry that starts a range when two threads split the segment (the
/// first entry frame at or after the middle of the frames) has its `prev`
/// changed: only the join between two ranges sees it, and it must be the
/// same CHAIN failure the sequential walk reports.
#[test]
fn a_broken_link_at_a_range_join_is_reported_alike() {
    let (_, m) = seals();
    let mid = m.header_len + (m.file_len - m.header_len) / 2;
    let entries = m.entries();
    let k = entries
        .iter()
        .position(|f| f.offset >= mid)
        .expect("an entry past the middle");
    let (dir, key) = copy_of_pristine();
    let seg = &segment_files(dir.path())[0];
    let f = entries[k];
    tamper_frame(seg, f, entry_layout(seg, f).prev_at() + 5, 0x10);
    let fl = expect_same_failure(dir.path(), &key, CONTENT, f.offset, k as u64);
    assert_eq!(fl["cause"], "chain_broken", "{fl}");
}

/// Rewrites the log's one segment as a key holder could: entry `k` gets a
/// `prev` that is not the hash before it, and every later entry, seal root,
/// seal head and signature is recomputed so that all of it is consistent
/// except that one link. Only a check of that link can see it.
fn rewrite_with_one_bad_link(dir: &Path, k: usize) {
    use log_format::entry::decode_entry;
    use log_format::{CompactRange, Seal};
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("argus.json")).expect("argus.json"))
            .expect("json");
    let log_id: [u8; 16] = hex::decode(meta["log_id"].as_str().expect("log_id"))
        .expect("hex")
        .try_into()
        .expect("16");
    let seed = std::fs::read_to_string(dir.join("keys/signing.key")).expect("key");
    let seed: [u8; 32] = hex::decode(seed.trim())
        .expect("hex")
        .try_into()
        .expect("32");
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let seg = &segment_files(dir)[0];
    let m = parse_segment(seg);
    let mut b = std::fs::read(seg).expect("read");
    let (mut last, mut range, mut index) = ([0u8; 32], CompactRange::new(), 0usize);
    let fix_crc = |b: &mut Vec<u8>, f: Frame| {
        let crc = crc32fast::hash(&b[f.len_at() as usize..f.end() as usize]);
        b[f.crc_at() as usize..f.len_at() as usize].copy_from_slice(&crc.to_le_bytes());
    };
    for f in m.frames.clone() {
        let body = f.body_at() as usize..f.end() as usize;
        if f.ftype == FRAME_ENTRY {
            if index >= k {
                let prev = if index == k { [0x5a; 32] } else { last };
                let at = entry_layout(seg, f).prev_at() as usize;
                b[at..at + 32].copy_from_slice(&prev);
                fix_crc(&mut b, f);
            }
            let v = decode_entry(&b[body], f.body_at()).expect("entry");
            last = v.hash();
            range.push(&last);
            index += 1;
        } else if f.ftype == FRAME_SEAL && index > k {
            let old = Seal::decode(&b[body.clone()], f.body_at()).expect("seal");
            let s = Seal::sign(&log_id, &key, old.tree_size, range.root(), last, old.ts_ns);
            b[body].copy_from_slice(&s.encode());
            fix_crc(&mut b, f);
        }
    }
    std::fs::write(seg, b).expect("write");
}

/// The entry that starts a range when two threads split the segment has
/// a wrong `prev` while everything after it is re-hashed and re-signed: the
/// join is all that differs, and verify must say CHAIN broken there, as the
/// sequential walk does.
#[test]
fn a_re_signed_log_broken_only_at_a_range_join_is_refused() {
    let (_, m) = seals();
    let mid = m.header_len + (m.file_len - m.header_len) / 2;
    let entries = m.entries();
    let k = entries
        .iter()
        .position(|f| f.offset >= mid)
        .expect("an entry past the middle");
    let (dir, key) = copy_of_pristine();
    rewrite_with_one_bad_link(dir.path(), k);
    let fl = expect_same_failure(dir.path(), &key, CONTENT, entries[k].offset, k as u64);
    assert_eq!(fl["cause"], "chain_broken", "{fl}");
}
