//! Tampering: each kind of damage to a log's files gives `argusctl verify`
//! the exit code SPEC §7.3 assigns it, and the report names the segment
//! file and the offset where the damage is.
use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const CONTENT: i32 = 10;
const SIGNATURE: i32 = 11;
const TRUNCATION: i32 = 12;
const STRUCTURE: i32 = 13;

fn class_name(code: i32) -> &'static str {
    match code {
        CONTENT => "CONTENT",
        SIGNATURE => "SIGNATURE",
        TRUNCATION => "TRUNCATION",
        STRUCTURE => "STRUCTURE",
        _ => "?",
    }
}

struct TestLog {
    tmp: TempDir,
    key: String,
    acks: Vec<Ack>,
}

impl TestLog {
    fn dir(&self) -> &Path {
        self.tmp.path()
    }
    fn segs(&self) -> Vec<PathBuf> {
        segment_files(self.dir())
    }
    /// A segment in the middle of the log (neither first nor last).
    fn middle(&self) -> SegmentMap {
        let segs = self.segs();
        assert!(segs.len() >= 5, "need at least 5 segments, got {segs:?}");
        let m = parse_segment(&segs[segs.len() / 2]);
        assert!(
            m.entries().len() >= 3 && m.seals().len() >= 3 && m.footer().is_some(),
            "middle segment should hold several commits and a footer: {m:?}"
        );
        m
    }
}

/// A log with 4096-byte segments where every entry is its own group
/// commit, so each segment is: header, (entry, seal)*, seal, footer.
fn lockstep_log(n: usize) -> TestLog {
    let (tmp, key) = init_log(Some(4096));
    let acks = append_lockstep(tmp.path(), &small_entries(0, n), 1);
    verify(tmp.path(), &key, &[]).assert_ok();
    TestLog { tmp, key, acks }
}

/// True when `text` says `offset N` for exactly this N.
fn mentions_offset(text: &str, offset: u64) -> bool {
    let pat = format!("offset {offset}");
    text.match_indices(&pat).any(|(i, _)| {
        !text[i + pat.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// The offsets a failure may plausibly be reported at.
struct Offsets(Vec<u64>);

impl From<u64> for Offsets {
    fn from(o: u64) -> Self {
        Self(vec![o])
    }
}

impl<const N: usize> From<[u64; N]> for Offsets {
    fn from(o: [u64; N]) -> Self {
        Self(o.to_vec())
    }
}

/// Runs verify in text and JSON form and checks the exit code, the class,
/// the segment named, the offset and (if given) the seq.
fn expect_failure(
    dir: &Path,
    key: &str,
    extra: &[&str],
    code: i32,
    segment: &str,
    offset: impl Into<Offsets>,
    seq: Option<u64>,
) -> Value {
    let offsets = offset.into().0;
    let r = verify(dir, key, extra);
    r.assert_code(code);
    let text = r.all();
    assert!(
        text.contains(segment),
        "verify output must name segment {segment}{}",
        r.ctx()
    );
    assert!(
        offsets.iter().any(|o| mentions_offset(&text, *o)),
        "verify output must name offset {offsets:?}{}",
        r.ctx()
    );
    if let Some(s) = seq {
        assert!(
            text.contains(&format!("seq {s}")),
            "verify output must name seq {s}{}",
            r.ctx()
        );
    }

    let (r, v) = verify_json(dir, key, extra);
    r.assert_code(code);
    let f = &v["failure"];
    assert_eq!(v["status"], "fail", "{}", r.ctx());
    assert_eq!(v["code"], code, "{}", r.ctx());
    assert_eq!(f["class"], class_name(code), "{}", r.ctx());
    assert_eq!(f["segment"], segment, "{}", r.ctx());
    assert!(
        offsets.iter().any(|o| f["offset"] == *o),
        "failure offset should be one of {offsets:?}{}",
        r.ctx()
    );
    if let Some(s) = seq {
        assert_eq!(f["seq"], s, "{}", r.ctx());
    }
    assert!(
        !f["message"].as_str().unwrap_or("").is_empty(),
        "failure needs a message{}",
        r.ctx()
    );
    v
}

// ---------------------------------------------------------------------------
// Entry frames: a flipped byte anywhere in a committed entry frame is
// caught by the frame CRC, and a valid frame follows, so it is CONTENT at
// the frame's offset (SPEC §7 step 3).

fn flip_in_middle_entry(region: impl Fn(&EntryLayout, Frame) -> u64) {
    let log = lockstep_log(80);
    let m = log.middle();
    let f = m.entries()[1];
    let lay = entry_layout(&m.path, f);
    let at = region(&lay, f);
    assert!(
        at >= f.offset && at < f.end(),
        "target {at} must lie inside frame {f:?}"
    );
    flip_byte(&m.path, at);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        CONTENT,
        &file_name(&m.path),
        f.offset,
        Some(lay.seq),
    );
}

#[test]
fn flipped_byte_in_entry_frame_crc_is_content_error() {
    flip_in_middle_entry(|_, f| f.crc_at() + 2);
}

#[test]
fn flipped_byte_in_entry_frame_len_is_content_error() {
    flip_in_middle_entry(|_, f| f.len_at());
}

#[test]
fn flipped_high_byte_in_entry_frame_len_is_content_error() {
    // Makes the length far larger than the file (or than 16 MiB).
    flip_in_middle_entry(|_, f| f.len_at() + 3);
}

#[test]
fn flipped_byte_in_entry_frame_type_is_content_error() {
    flip_in_middle_entry(|_, f| f.type_at());
}

#[test]
fn flipped_byte_in_entry_kind_bytes_is_content_error() {
    flip_in_middle_entry(|l, _| l.kind().0 + 1);
}

#[test]
fn flipped_byte_in_entry_payload_bytes_is_content_error() {
    flip_in_middle_entry(|l, _| l.payload().0 + l.payload().1 / 2);
}

#[test]
fn flipped_byte_in_entry_root_seq_is_content_error() {
    flip_in_middle_entry(|l, _| l.seq_at());
}

#[test]
fn flipped_byte_in_entry_root_ts_is_content_error() {
    flip_in_middle_entry(|l, _| l.ts_at() + 1);
}

#[test]
fn flipped_byte_in_entry_root_prev_is_content_error() {
    flip_in_middle_entry(|l, _| l.prev_at() + 17);
}

#[test]
fn flipped_byte_in_entry_root_payload_hash_is_content_error() {
    flip_in_middle_entry(|l, _| l.payload_hash_at() + 31);
}

#[test]
fn flipped_byte_in_entry_relative_pointer_is_content_error() {
    flip_in_middle_entry(|l, _| l.root + 88 + 8 * 5);
}

// The same edits with the frame CRC recomputed, so the deeper checks of
// SPEC §7 step 2 are what must catch them.

/// Edits an entry in a middle segment, fixes its CRC and expects `code` at
/// the offset `at_fn` gives (the entry frame or the seal that follows it).
fn edit_middle_entry_crc_fixed(
    region: impl Fn(&EntryLayout) -> u64,
    code: i32,
    at_fn: impl Fn(&SegmentMap, Frame) -> u64,
    check_seq: bool,
) {
    let log = lockstep_log(80);
    let m = log.middle();
    let f = m.entries()[1];
    let lay = entry_layout(&m.path, f);
    flip_byte(&m.path, region(&lay));
    fix_frame_crc(&m.path, f.offset);
    let at = at_fn(&m, f);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        code,
        &file_name(&m.path),
        at,
        check_seq.then_some(lay.seq),
    );
}

fn the_entry(_: &SegmentMap, f: Frame) -> u64 {
    f.offset
}

fn the_seal_after(m: &SegmentMap, f: Frame) -> u64 {
    let s = m.after(f).expect("a frame after the entry");
    assert_eq!(s.ftype, FRAME_SEAL, "each commit is entry then seal");
    s.offset
}

#[test]
fn entry_seq_changed_with_crc_fixed_is_structure_error() {
    // SPEC §7 step 2: seq ≠ next_seq → STRUCTURE.
    edit_middle_entry_crc_fixed(|l| l.seq_at() + 6, STRUCTURE, the_entry, false);
}

#[test]
fn entry_prev_changed_with_crc_fixed_is_content_error() {
    edit_middle_entry_crc_fixed(|l| l.prev_at(), CONTENT, the_entry, true);
}

#[test]
fn entry_payload_changed_with_crc_fixed_is_content_error() {
    edit_middle_entry_crc_fixed(|l| l.payload().0 + 2, CONTENT, the_entry, true);
}

#[test]
fn entry_payload_hash_changed_with_crc_fixed_is_content_error() {
    edit_middle_entry_crc_fixed(|l| l.payload_hash_at() + 5, CONTENT, the_entry, true);
}

#[test]
fn entry_parent_changed_with_crc_fixed_is_content_error() {
    // No parent is u64::MAX; one bit less is a parent after the entry.
    edit_middle_entry_crc_fixed(|l| l.parent_at(), CONTENT, the_entry, true);
}

#[test]
fn entry_kind_changed_with_crc_fixed_is_content_error_at_next_seal() {
    // The entry decodes, but its hash changed: the seal's root and head no
    // longer match.
    edit_middle_entry_crc_fixed(|l| l.kind().0, CONTENT, the_seal_after, false);
}

#[test]
fn entry_ts_changed_with_crc_fixed_is_content_error_at_next_seal() {
    edit_middle_entry_crc_fixed(|l| l.ts_at(), CONTENT, the_seal_after, false);
}

// ---------------------------------------------------------------------------
// Seals and footers.

/// A seal in a middle segment that is followed by more commits.
fn middle_seal(m: &SegmentMap) -> Frame {
    let seals = m.seals();
    seals[seals.len() / 2]
}

#[test]
fn flipped_byte_in_seal_in_middle_of_segment_is_content_error() {
    let log = lockstep_log(80);
    let m = log.middle();
    let s = middle_seal(&m);
    flip_byte(&m.path, s.body_at() + 20); // inside the root
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        CONTENT,
        &file_name(&m.path),
        s.offset,
        None,
    );
}

#[test]
fn seal_root_changed_with_crc_fixed_is_content_error() {
    let log = lockstep_log(80);
    let m = log.middle();
    let s = middle_seal(&m);
    flip_byte(&m.path, s.body_at() + 8);
    fix_frame_crc(&m.path, s.offset);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        CONTENT,
        &file_name(&m.path),
        s.offset,
        None,
    );
}

#[test]
fn seal_tree_size_changed_with_crc_fixed_is_structure_error() {
    let log = lockstep_log(80);
    let m = log.middle();
    let s = middle_seal(&m);
    flip_byte(&m.path, s.body_at() + 2);
    fix_frame_crc(&m.path, s.offset);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        STRUCTURE,
        &file_name(&m.path),
        s.offset,
        None,
    );
}

#[test]
fn seal_signature_changed_with_crc_fixed_is_signature_error() {
    let log = lockstep_log(80);
    let m = log.middle();
    let s = middle_seal(&m);
    flip_byte(&m.path, s.body_at() + 84 + 10);
    fix_frame_crc(&m.path, s.offset);
    let v = expect_failure(
        log.dir(),
        &log.key,
        &[],
        SIGNATURE,
        &file_name(&m.path),
        s.offset,
        None,
    );
    assert!(
        v["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "message should say the signature is bad: {v}"
    );
}

#[test]
fn seal_key_id_changed_with_crc_fixed_is_signature_error() {
    let log = lockstep_log(80);
    let m = log.middle();
    let s = middle_seal(&m);
    flip_byte(&m.path, s.body_at() + 80);
    fix_frame_crc(&m.path, s.offset);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        SIGNATURE,
        &file_name(&m.path),
        s.offset,
        None,
    );
}

#[test]
fn flipped_byte_in_footer_of_sealed_segment_is_content_error() {
    // No valid frame follows a damaged footer, but this is not the last
    // segment, so it is not a torn tail (SPEC §7 step 3).
    let log = lockstep_log(80);
    let m = log.middle();
    let f = m.footer().unwrap();
    flip_byte(&m.path, f.body_at() + 9);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        CONTENT,
        &file_name(&m.path),
        f.offset,
        None,
    );
}

#[test]
fn footer_removed_from_middle_segment_is_structure_error() {
    let log = lockstep_log(80);
    let m = log.middle();
    let f = m.footer().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&m.path)
        .unwrap();
    file.set_len(f.offset).unwrap();
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        STRUCTURE,
        &file_name(&m.path),
        f.offset,
        None,
    );
}

// ---------------------------------------------------------------------------
// Segment headers (SPEC §7 step 1).

fn flip_in_middle_header(
    at: impl Fn(&SegmentMap) -> u64,
    fix_crc: bool,
    code: i32,
    off: impl Into<Offsets>,
) {
    let log = lockstep_log(80);
    let m = log.middle();
    flip_byte(&m.path, at(&m));
    if fix_crc {
        let mut b = std::fs::read(&m.path).unwrap();
        let crc_at = (m.header_len - 4) as usize;
        let crc = crc32fast::hash(&b[..crc_at]);
        b[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&m.path, b).unwrap();
    }
    let mut off = off.into().0;
    for o in off.iter_mut() {
        if *o == u64::MAX {
            *o = m.header_len - 4;
        }
    }
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        code,
        &file_name(&m.path),
        Offsets(off),
        None,
    );
}

#[test]
fn flipped_byte_in_segment_header_magic_is_structure_error() {
    flip_in_middle_header(|_| 3, false, STRUCTURE, 0);
}

#[test]
fn flipped_byte_in_segment_header_version_is_structure_error() {
    // The header start or the version field are both fair places to name.
    flip_in_middle_header(|_| 8, false, STRUCTURE, [0, 8]);
}

#[test]
fn flipped_byte_in_segment_header_prev_hash_is_content_error() {
    // CRC mismatch → CONTENT, at the header CRC.
    flip_in_middle_header(|_| 40, false, CONTENT, u64::MAX);
}

#[test]
fn flipped_byte_in_segment_header_base_seq_is_content_error() {
    flip_in_middle_header(|_| 29, false, CONTENT, u64::MAX);
}

#[test]
fn flipped_byte_in_segment_header_crc_is_content_error() {
    flip_in_middle_header(|m| m.header_len - 2, false, CONTENT, u64::MAX);
}

#[test]
fn segment_header_log_id_changed_with_crc_fixed_is_structure_error() {
    flip_in_middle_header(|_| 12, true, STRUCTURE, 12);
}

#[test]
fn segment_header_prev_hash_changed_with_crc_fixed_is_structure_error() {
    // Broken link to the previous segment (SPEC §7 step 1).
    let log = lockstep_log(80);
    let m = log.middle();
    flip_byte(&m.path, 50);
    let mut b = std::fs::read(&m.path).unwrap();
    let crc_at = (m.header_len - 4) as usize;
    let crc = crc32fast::hash(&b[..crc_at]);
    b[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&m.path, b).unwrap();
    let r = verify(log.dir(), &log.key, &[]);
    r.assert_code(STRUCTURE);
    assert!(
        r.all().contains(&file_name(&m.path)),
        "must name the segment{}",
        r.ctx()
    );
}

// ---------------------------------------------------------------------------
// Whole segments.

#[test]
fn deleted_middle_segment_is_structure_error() {
    let log = lockstep_log(80);
    let segs = log.segs();
    let k = segs.len() / 2;
    std::fs::remove_file(&segs[k]).unwrap();
    let next = parse_segment(&segs[k + 1]);
    let v = expect_failure(
        log.dir(),
        &log.key,
        &[],
        STRUCTURE,
        &file_name(&segs[k + 1]),
        0,
        Some(next.base_seq),
    );
    assert!(
        v["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("missing"),
        "message should say a segment is missing: {v}"
    );
}

#[test]
fn missing_first_segment_is_structure_error() {
    let log = lockstep_log(40);
    let segs = log.segs();
    std::fs::remove_file(&segs[0]).unwrap();
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        STRUCTURE,
        &file_name(&segs[1]),
        0,
        None,
    );
}

#[test]
fn swapped_segments_are_structure_error() {
    let log = lockstep_log(80);
    let segs = log.segs();
    let (a, b) = (&segs[2], &segs[3]);
    let tmp = a.with_extension("swap");
    std::fs::rename(a, &tmp).unwrap();
    std::fs::rename(b, a).unwrap();
    std::fs::rename(&tmp, b).unwrap();
    // The first file in order now holds a header whose base seq does not
    // match its name: offset 28 is the header's base_seq field.
    expect_failure(log.dir(), &log.key, &[], STRUCTURE, &file_name(a), 28, None);
}

#[test]
fn segment_file_with_bad_name_is_structure_error() {
    let log = lockstep_log(20);
    let segs = log.segs();
    let odd = log.dir().join("segments").join("42.seg");
    std::fs::copy(&segs[0], &odd).unwrap();
    let r = verify(log.dir(), &log.key, &[]);
    r.assert_code(STRUCTURE);
    assert!(r.all().contains("42.seg"), "must name the file{}", r.ctx());
}

#[test]
fn segment_copied_from_another_log_is_structure_error() {
    let a = lockstep_log(80);
    let b = lockstep_log(80);
    let m = a.middle();
    let name = file_name(&m.path);
    let theirs = b.dir().join("segments").join(&name);
    assert!(
        theirs.exists(),
        "both logs have the same layout, so {name} exists in both"
    );
    std::fs::copy(&theirs, &m.path).unwrap();
    let v = expect_failure(a.dir(), &a.key, &[], STRUCTURE, &name, 12, None);
    assert!(
        v["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("foreign"),
        "message should say the segment is foreign: {v}"
    );
}

#[test]
fn log_rewritten_under_another_key_is_signature_error() {
    let a = lockstep_log(40);
    let b = lockstep_log(40);
    // Same entries, same layout, other key: verify B pinned to A's key.
    let first = parse_segment(&b.segs()[0]);
    let seal0 = first.seals()[0];
    expect_failure(
        b.dir(),
        &a.key,
        &[],
        SIGNATURE,
        &file_name(&first.path),
        seal0.offset,
        None,
    );
    // And B is fine under its own key.
    verify(b.dir(), &b.key, &[]).assert_ok();
}

// ---------------------------------------------------------------------------
// Checkpoints: truncation and rollback (SPEC §7 trusted checkpoints).

#[test]
fn removed_last_segments_are_truncation_against_later_checkpoint() {
    let log = lockstep_log(30);
    let dir = log.dir();
    let cps = tempfile::tempdir().unwrap();
    let cp1_path = cps.path().join("cp1.txt");
    let cp2_path = cps.path().join("cp2.txt");
    let t1 = save_checkpoint(dir, &cp1_path);
    assert_eq!(checkpoint_size(&t1), 30);
    append_lockstep(dir, &small_entries(30, 50), 1);
    let t2 = save_checkpoint(dir, &cp2_path);
    assert_eq!(checkpoint_size(&t2), 80);
    let cp1_arg = cp1_path.to_str().unwrap();
    let cp2_arg = cp2_path.to_str().unwrap();
    verify(
        dir,
        &log.key,
        &["--checkpoint", cp1_arg, "--checkpoint", cp2_arg],
    )
    .assert_ok();

    let segs = log.segs();
    let keep = segs
        .iter()
        .position(|p| parse_segment(p).base_seq > 30)
        .expect("a segment after cp1")
        + 1;
    assert!(keep < segs.len(), "something to remove");
    for p in &segs[keep..] {
        std::fs::remove_file(p).unwrap();
    }
    let last = &segs[keep - 1];
    let end = std::fs::metadata(last).unwrap().len();

    // Without a checkpoint the shorter log is indistinguishable from an
    // honest one.
    verify(dir, &log.key, &[]).assert_ok();
    verify(dir, &log.key, &["--checkpoint", cp1_arg]).assert_ok();
    let v = expect_failure(
        dir,
        &log.key,
        &["--checkpoint", cp2_arg],
        TRUNCATION,
        &file_name(last),
        end,
        None,
    );
    assert!(
        v["sealed_size"].as_u64().unwrap() < 80,
        "sealed size shrank: {v}"
    );
}

#[test]
fn last_segment_cut_back_to_earlier_seal_is_truncation_against_later_checkpoint() {
    let log = lockstep_log(30);
    let dir = log.dir();
    let cps = tempfile::tempdir().unwrap();
    let cp1 = cps.path().join("cp1.txt");
    let cp2 = cps.path().join("cp2.txt");
    save_checkpoint(dir, &cp1);
    append_lockstep(dir, &small_entries(30, 8), 1);
    save_checkpoint(dir, &cp2);
    let segs = log.segs();
    let last = segs.last().unwrap();
    let m = parse_segment(last);
    let seals = m.seals();
    assert!(seals.len() >= 3, "last segment should hold several seals");
    // Cut right after the second-to-last seal: a clean, earlier boundary.
    let cut = seals[seals.len() - 2].end();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(cut)
        .unwrap();
    let cp1 = cp1.to_str().unwrap();
    let cp2 = cp2.to_str().unwrap();
    verify(dir, &log.key, &[]).assert_ok();
    verify(dir, &log.key, &["--checkpoint", cp1]).assert_ok();
    expect_failure(
        dir,
        &log.key,
        &["--checkpoint", cp2],
        TRUNCATION,
        &file_name(last),
        cut,
        None,
    );
}

#[test]
fn rollback_to_other_history_of_same_length_is_truncation() {
    // A fork: same log id, same key, same length, different entries.
    let log = lockstep_log(40);
    let dir = log.dir();
    let fork = tempfile::tempdir().unwrap();
    copy_dir(dir, fork.path());
    std::fs::remove_file(fork.path().join("LOCK")).ok();

    append_lockstep(dir, &small_entries(40, 10), 1);
    let cps = tempfile::tempdir().unwrap();
    let cp = cps.path().join("cp.txt");
    assert_eq!(checkpoint_size(&save_checkpoint(dir, &cp)), 50);

    let other: Vec<Value> = (40..50)
        .map(|i| serde_json::json!({"kind": "x.test.entry", "job_id": "forged", "payload": {"i": i}}))
        .collect();
    append_lockstep(fork.path(), &other, 1);
    assert_eq!(stats(fork.path())["entries"], 50);

    // Replace the log's segments with the fork's.
    std::fs::remove_dir_all(dir.join("segments")).unwrap();
    copy_dir(&fork.path().join("segments"), &dir.join("segments"));
    verify(dir, &log.key, &[]).assert_ok();
    let cp = cp.to_str().unwrap();
    let r = verify(dir, &log.key, &["--checkpoint", cp]);
    r.assert_code(TRUNCATION);
    let (r, v) = verify_json(dir, &log.key, &["--checkpoint", cp]);
    r.assert_code(TRUNCATION);
    assert_eq!(v["failure"]["class"], "TRUNCATION", "{}", r.ctx());
    let last = file_name(log.segs().last().unwrap());
    assert_eq!(v["failure"]["segment"], last, "{}", r.ctx());
    assert!(
        v["failure"]["message"]
            .as_str()
            .unwrap()
            .contains("differs"),
        "message should say the root differs{}",
        r.ctx()
    );
}

#[test]
fn checkpoint_of_another_log_is_signature_error() {
    let a = lockstep_log(10);
    let b = lockstep_log(10);
    let cps = tempfile::tempdir().unwrap();
    let cp = cps.path().join("cp.txt");
    save_checkpoint(b.dir(), &cp);
    let r = verify(a.dir(), &a.key, &["--checkpoint", cp.to_str().unwrap()]);
    r.assert_code(SIGNATURE);
}

// ---------------------------------------------------------------------------
// Not failures: a torn tail and (SPEC §8 known limit) the final seal.

#[test]
fn torn_tail_of_garbage_is_a_warning_not_a_failure() {
    let log = lockstep_log(30);
    let last = log.segs().pop().unwrap();
    let end = std::fs::metadata(&last).unwrap().len();
    let mut b = std::fs::read(&last).unwrap();
    b.extend_from_slice(&[0xA5, 0x5A, 0x00, 0x13, 0x37, 0x01, 0x02]);
    std::fs::write(&last, b).unwrap();
    let r = verify(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert!(
        r.stderr.contains("torn tail")
            && r.stderr.contains(&file_name(&last))
            && mentions_offset(&r.stderr, end),
        "expected a torn tail warning naming the segment and offset {end}{}",
        r.ctx()
    );
    let (r, v) = verify_json(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert_eq!(v["sealed_size"], 30, "{}", r.ctx());
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("torn tail")),
        "{}",
        r.ctx()
    );
}

#[test]
fn torn_tail_of_partial_frame_is_a_warning_not_a_failure() {
    // The first 60 bytes of a real entry frame: what a cut write leaves.
    let log = lockstep_log(30);
    let last = log.segs().pop().unwrap();
    let m = parse_segment(&last);
    let e = *m.entries().last().unwrap();
    let mut b = std::fs::read(&last).unwrap();
    let partial = b[e.offset as usize..e.offset as usize + 60].to_vec();
    b.extend_from_slice(&partial);
    std::fs::write(&last, b).unwrap();
    let r = verify(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert!(
        r.stderr.contains("torn tail") && mentions_offset(&r.stderr, m.file_len),
        "expected a torn tail warning at offset {}{}",
        m.file_len,
        r.ctx()
    );
}

#[test]
fn flipped_byte_in_final_seal_is_unsealed_warning_but_truncation_against_checkpoint() {
    // SPEC §8 known limit: a flip in the log's final seal looks exactly
    // like a torn write, so verify alone passes with warnings; a trusted
    // checkpoint taken before the flip catches it.
    let log = lockstep_log(30);
    let cps = tempfile::tempdir().unwrap();
    let cp = cps.path().join("cp.txt");
    save_checkpoint(log.dir(), &cp);
    let last = log.segs().pop().unwrap();
    let m = parse_segment(&last);
    let s = *m.frames.last().unwrap();
    assert_eq!(s.ftype, FRAME_SEAL, "the log ends in a seal");
    flip_byte(&last, s.body_at() + 100);

    let r = verify(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert!(
        r.stderr.contains("unsealed") && r.stderr.contains("torn tail"),
        "expected torn-tail and unsealed warnings{}",
        r.ctx()
    );
    assert!(
        r.stdout.contains("30 entries (29 sealed)"),
        "the last entry is no longer sealed{}",
        r.ctx()
    );
    let cp = cp.to_str().unwrap();
    expect_failure(
        log.dir(),
        &log.key,
        &["--checkpoint", cp],
        TRUNCATION,
        &file_name(&last),
        m.file_len,
        None,
    );
    // Readers only show sealed entries.
    let out = cat_json(log.dir(), &[]);
    assert_eq!(out.len(), 29, "cat must hide the no-longer-sealed entry");
    assert_eq!(
        out.last().unwrap()["hash"].as_str(),
        Some(log.acks[28].hash.as_str())
    );
}

#[test]
fn entry_empty_field_pointer_moved_with_crc_fixed_is_content_error() {
    // SPEC §4.1: an empty field's pointer must target where its data would
    // begin; any other body is non-canonical and MUST be rejected, even
    // though the pointer is not covered by the entry hash.
    let log = lockstep_log(80);
    let m = log.middle();
    let f = m.entries()[1];
    let lay = entry_layout(&m.path, f);
    assert_eq!(lay.fields[2].1, 0, "step_id is empty in these entries");
    let rel_at = lay.root + 88 + 8 * 2;
    flip_byte(&m.path, rel_at); // rel ± 1: points one byte off
    fix_frame_crc(&m.path, f.offset);
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        CONTENT,
        &file_name(&m.path),
        f.offset,
        Some(lay.seq),
    );
}

#[test]

fn zero_length_frame_at_end_of_last_segment_is_torn_tail_warning() {
    // SPEC §4: a frame is valid only if 1 <= len; §7 step 3: invalid bytes
    // at the end of the last segment with no valid frame after them are a
    // torn tail, a warning. Here the 9 bytes are a len-0 entry frame with a
    // correct CRC.
    let log = lockstep_log(10);
    let last = log.segs().pop().unwrap();
    let end = std::fs::metadata(&last).unwrap().len();
    let mut b = std::fs::read(&last).unwrap();
    let hdr = [0u8, 0, 0, 0, FRAME_ENTRY];
    b.extend_from_slice(&crc32fast::hash(&hdr).to_le_bytes());
    b.extend_from_slice(&hdr);
    std::fs::write(&last, b).unwrap();
    let r = verify(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert!(
        r.stderr.contains("torn tail") && mentions_offset(&r.stderr, end),
        "expected a torn tail warning at offset {end}{}",
        r.ctx()
    );
}

#[test]
fn tampered_checkpoint_is_signature_error() {
    let log = lockstep_log(10);
    let cps = tempfile::tempdir().unwrap();
    let cp = cps.path().join("cp.txt");
    let text = save_checkpoint(log.dir(), &cp);
    let cp_arg = cp.to_str().unwrap();
    verify(log.dir(), &log.key, &["--checkpoint", cp_arg]).assert_ok();

    // A smaller tree size in the note body no longer matches the signature.
    let forged = text.replacen("\n10\n", "\n9\n", 1);
    assert_ne!(forged, text);
    std::fs::write(&cp, &forged).unwrap();
    let r = verify(log.dir(), &log.key, &["--checkpoint", cp_arg]);
    r.assert_code(SIGNATURE);

    // A damaged signature line.
    let sig_line = text.lines().last().unwrap();
    let mut chars: Vec<char> = sig_line.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let bad_sig: String = chars.into_iter().collect();
    std::fs::write(&cp, text.replace(sig_line, &bad_sig)).unwrap();
    let r = verify(log.dir(), &log.key, &["--checkpoint", cp_arg]);
    r.assert_code(SIGNATURE);
}

#[test]
fn tmp_idx_and_lock_files_are_ignored_by_verify() {
    // SPEC §2: `.tmp` files MUST be ignored; `.idx` and LOCK are not part
    // of what is verified.
    let log = lockstep_log(40);
    let segs = log.dir().join("segments");
    std::fs::write(
        segs.join("00000000000000009999.seg.tmp"),
        b"half-created segment",
    )
    .unwrap();
    for p in std::fs::read_dir(&segs).unwrap() {
        let p = p.unwrap().path();
        if p.extension().is_some_and(|e| e == "idx") {
            std::fs::write(&p, b"garbage index").unwrap();
        }
    }
    std::fs::write(log.dir().join("LOCK"), b"garbage").unwrap();
    let (r, v) = verify_json(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert_eq!(v["entries"], 40, "{}", r.ctx());
}

#[test]
fn verify_with_pinned_key_does_not_need_argus_json() {
    // A verifier needs only the segments and the key (SPEC §2.1, §7).
    let log = lockstep_log(20);
    std::fs::remove_file(log.dir().join("argus.json")).unwrap();
    let (r, v) = verify_json(log.dir(), &log.key, &[]);
    r.assert_ok();
    assert_eq!(v["entries"], 20, "{}", r.ctx());
    assert_eq!(v["key_pinned"], true, "{}", r.ctx());
}

#[test]
fn verify_without_key_says_key_is_not_pinned() {
    let log = lockstep_log(5);
    let r = argus(["verify", log.dir().to_str().unwrap()]);
    r.assert_ok();
    assert!(
        r.all().contains("not pinned") || r.all().contains("NOT pinned"),
        "an unpinned run must say so (SPEC §2.1){}",
        r.ctx()
    );
}

#[test]
fn flipped_byte_in_first_segment_header_is_content_error() {
    let log = lockstep_log(40);
    let first = parse_segment(&log.segs()[0]);
    assert_eq!(first.header_len, 73, "segment 0 has an empty frontier");
    flip_byte(&first.path, 40); // prev_hash: only the header CRC catches it
                                // The header start or its CRC field are both fair places to name.
    expect_failure(
        log.dir(),
        &log.key,
        &[],
        CONTENT,
        &file_name(&first.path),
        [0, 69],
        None,
    );
}

#[test]
fn replaced_by_other_log_with_same_key_is_signature_error_against_checkpoint() {
    // A different log (its own log id) signed with the same key, same
    // length: the checkpoint's origin names the original log, so SPEC §7
    // classes the mismatch as SIGNATURE (a same-log-id fork is TRUNCATION,
    // see rollback_to_other_history_of_same_length_is_truncation).
    let a = lockstep_log(20);
    let cps = tempfile::tempdir().unwrap();
    let cp = cps.path().join("cp.txt");
    save_checkpoint(a.dir(), &cp);
    let b = tempfile::tempdir().unwrap();
    let key_file = a.dir().join("keys/signing.key");
    let r = argus([
        "init",
        b.path().to_str().unwrap(),
        "--segment-bytes",
        "4096",
        "--key-file",
        key_file.to_str().unwrap(),
    ]);
    r.assert_ok();
    assert_eq!(r.json()["public_key"].as_str(), Some(a.key.as_str()));
    append_lockstep(b.path(), &small_entries(0, 20), 1);
    std::fs::remove_dir_all(a.dir().join("segments")).unwrap();
    copy_dir(&b.path().join("segments"), &a.dir().join("segments"));
    verify(a.dir(), &a.key, &[]).assert_ok();
    let r = verify(a.dir(), &a.key, &["--checkpoint", cp.to_str().unwrap()]);
    r.assert_code(SIGNATURE);
    assert!(r.all().contains("checkpoint"), "{}", r.ctx());
}
