//! Golden test vectors (SPEC §10). The tiny log is rebuilt here from format
//! primitives with a fixed key, log id and clock, and must equal the files in
//! `vectors/` byte for byte, so any encoding drift fails this test.
//! Regenerate deliberately with `ARGUS_BLESS=1 cargo test -p argus-log-format --test vectors`.
use ed25519_dalek::SigningKey;
use log_format::entry::{encode_entry, EntryFields};
use log_format::frame::encode_frame;
use log_format::segment::segment_file_name;
use log_format::{CompactRange, Footer, FrameType, Seal, SegmentHeader};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A published test key. Never use it for anything real.
const TEST_SEED: [u8; 32] = [0x42; 32];
const LOG_ID: [u8; 16] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
];
const T0: u64 = 1_795_435_200_000_000_000; // 2026-11-23T12:00:00Z

struct Builder {
    key: SigningKey,
    next: u64,
    last: [u8; 32],
    range: CompactRange,
    hashes: Vec<String>,
    seals: Vec<serde_json::Value>,
    files: BTreeMap<String, Vec<u8>>,
    seg_base: u64,
    seg_entries: u64,
    cur: Vec<u8>,
    last_seal: Option<Seal>,
}

impl Builder {
    fn new() -> Self {
        let mut b = Self {
            key: SigningKey::from_bytes(&TEST_SEED),
            next: 0,
            last: [0; 32],
            range: CompactRange::new(),
            hashes: vec![],
            seals: vec![],
            files: BTreeMap::new(),
            seg_base: 0,
            seg_entries: 0,
            cur: vec![],
            last_seal: None,
        };
        b.start_segment();
        b
    }
    fn start_segment(&mut self) {
        self.seg_base = self.next;
        self.seg_entries = 0;
        self.cur = SegmentHeader {
            log_id: LOG_ID,
            base_seq: self.next,
            prev_hash: self.last,
            frontier: self.range.clone(),
        }
        .encode();
    }
    fn entry(
        &mut self,
        kind: &str,
        job: Option<&str>,
        agent: Option<&str>,
        parent: Option<u64>,
        payload: &str,
    ) {
        let f = EntryFields {
            seq: self.next,
            ts_ns: T0 + self.next * 1_000_000,
            parent,
            prev: self.last,
            kind,
            job_id: job,
            step_id: None,
            agent,
            actor: "user:vector",
            payload: payload.as_bytes(),
        };
        let (body, h) = encode_entry(&f).unwrap();
        encode_frame(&mut self.cur, FrameType::Entry, &body);
        self.range.push(&h);
        self.last = h;
        self.next += 1;
        self.seg_entries += 1;
        self.hashes.push(hex::encode(h));
    }
    fn seal(&mut self) {
        let head = if self.next == 0 { [0; 32] } else { self.last };
        let s = Seal::sign(
            &LOG_ID,
            &self.key,
            self.next,
            self.range.root(),
            head,
            T0 + self.next * 1_000_000 + 500,
        );
        encode_frame(&mut self.cur, FrameType::Seal, &s.encode());
        self.seals
            .push(serde_json::json!({"tree_size": s.tree_size, "root": hex::encode(s.root)}));
        self.last_seal = Some(s);
    }
    fn roll(&mut self) {
        self.seal();
        let ft = Footer {
            base_seq: self.seg_base,
            entry_count: self.seg_entries,
            last_hash: self.last,
        };
        encode_frame(&mut self.cur, FrameType::Footer, &ft.encode());
        self.finish_segment();
        self.start_segment();
    }
    fn finish_segment(&mut self) {
        self.files.insert(
            format!("segments/{}", segment_file_name(self.seg_base)),
            std::mem::take(&mut self.cur),
        );
    }
}

fn build_tiny() -> (BTreeMap<String, Vec<u8>>, serde_json::Value) {
    let mut b = Builder::new();
    b.seal();
    b.entry(
        "job.created",
        Some("job-1"),
        Some("planner"),
        None,
        r#"{"title":"tiny vector"}"#,
    );
    b.entry(
        "tool.call_started",
        Some("job-1"),
        Some("worker"),
        Some(0),
        r#"{"tool":"bash","args":["echo","hi"]}"#,
    );
    b.entry(
        "cost.logged",
        Some("job-1"),
        None,
        None,
        r#"{"usd":0.0042,"tokens_in":120}"#,
    );
    b.seal();
    b.entry("x.empty_payload", None, None, None, "");
    b.roll();
    b.entry(
        "tool.call_completed",
        Some("job-1"),
        Some("worker"),
        Some(1),
        r#"{"exit_code":0,"note":"üñí©ødé"}"#,
    );
    b.entry(
        "job.completed",
        Some("job-1"),
        Some("planner"),
        None,
        "null",
    );
    b.seal();
    b.finish_segment();
    let pubkey = hex::encode(b.key.verifying_key().as_bytes());
    let cp = b.last_seal.as_ref().unwrap().checkpoint_text(&LOG_ID);
    let meta = serde_json::json!({
        "format": "argus.log", "version": 1, "log_id": hex::encode(LOG_ID),
        "public_key": pubkey, "segment_bytes": 4096, "key_file": "keys/signing.key"
    });
    b.files.insert(
        "argus.json".into(),
        (serde_json::to_string_pretty(&meta).unwrap() + "\n").into_bytes(),
    );
    let expected = serde_json::json!({
        "log_id": hex::encode(LOG_ID),
        "public_key": pubkey,
        "test_seed_hex": hex::encode(TEST_SEED),
        "entry_hashes": b.hashes,
        "seals": b.seals,
        "checkpoint": cp,
    });
    (b.files, expected)
}

type Files = BTreeMap<String, Vec<u8>>;

/// Corrupt variants of the tiny log and the verify exit code each must give.
fn corrupt_variants(tiny: &BTreeMap<String, Vec<u8>>) -> Vec<(&'static str, i32, Files)> {
    let seg0 = "segments/00000000000000000000.seg".to_string();
    let seg4 = "segments/00000000000000000004.seg".to_string();
    let mut out = Vec::new();
    // Flip a payload byte of the first entry: frame CRC fails, valid frames follow.
    let mut v = tiny.clone();
    let hdr = 73;
    let first_entry_body = hdr + 9 + 148 + 9;
    v.get_mut(&seg0).unwrap()[first_entry_body + 20] ^= 0x01;
    out.push(("flipped_entry_byte", 10, v));
    // Break the signature of the first non-empty seal and fix the frame CRC.
    let mut v = tiny.clone();
    let bytes = v.get_mut(&seg0).unwrap();
    let mut off = hdr;
    let mut seals = 0;
    loop {
        let len = u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        if bytes[off + 8] == 0x02 {
            seals += 1;
            if seals == 2 {
                bytes[off + 9 + 84] ^= 0x01;
                let crc = log_format::frame::frame_crc(
                    (len as u32).to_le_bytes(),
                    0x02,
                    &bytes[off + 9..off + 9 + len],
                );
                bytes[off..off + 4].copy_from_slice(&crc.to_le_bytes());
                break;
            }
        }
        off += 9 + len;
    }
    out.push(("bad_signature_crc_fixed", 11, v));
    // Delete the first segment: the log no longer starts at seq 0.
    let mut v = tiny.clone();
    v.remove(&seg0);
    out.push(("missing_first_segment", 13, v));
    // Rename the second segment so its name disagrees with its header.
    let mut v = tiny.clone();
    let s = v.remove(&seg4).unwrap();
    v.insert("segments/00000000000000000005.seg".into(), s);
    out.push(("renamed_segment", 13, v));
    // Torn tail: half a frame at the end of the last segment is only a warning.
    let mut v = tiny.clone();
    v.get_mut(&seg4)
        .unwrap()
        .extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x05]);
    out.push(("torn_tail", 0, v));
    // SPEC §7.2 row 2: a power cut kept the later pages of the last commit
    // (its second entry and its signed seal) and lost the first entry's: a
    // torn tail, not corruption.
    let seg4_frames = frame_offsets(&tiny[&seg4]);
    let (first, second) = (seg4_frames[0], seg4_frames[1]);
    let mut v = tiny.clone();
    v.get_mut(&seg4).unwrap()[first..second].fill(0);
    out.push(("power_cut_torn_commit", 0, v));
    // Row 3: the same damage, but a valid frame starts where the signed seal
    // ends (a later write began), so the damaged commit was durable.
    let mut v = tiny.clone();
    let seg = v.get_mut(&seg4).unwrap();
    let second_frame = seg[second..seg4_frames[2]].to_vec();
    seg.extend_from_slice(&second_frame);
    seg[first..second].fill(0);
    out.push(("write_after_signed_seal", 10, v));
    out
}

/// Offsets of the frames of a segment, after its header.
fn frame_offsets(seg: &[u8]) -> Vec<usize> {
    let (_, mut off) = log_format::SegmentHeader::decode(seg).unwrap();
    let mut out = Vec::new();
    while off + 9 <= seg.len() {
        out.push(off);
        let len = u32::from_le_bytes(seg[off + 4..off + 8].try_into().unwrap()) as usize;
        off += 9 + len;
    }
    out
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn check_or_bless(dir: &std::path::Path, files: &BTreeMap<String, Vec<u8>>, bless: bool) {
    for (name, bytes) in files {
        let p = dir.join(name);
        if bless {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, bytes).unwrap();
        } else {
            let on_disk = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert!(
                on_disk == *bytes,
                "{} drifted from the encoder ({} vs {} bytes); if intended, re-bless",
                p.display(),
                on_disk.len(),
                bytes.len()
            );
        }
    }
}

#[test]
fn golden_vectors_match_encoder() {
    let bless = std::env::var_os("ARGUS_BLESS").is_some();
    let (tiny, expected) = build_tiny();
    let dir = vectors_dir();
    check_or_bless(&dir.join("tiny"), &tiny, bless);
    let exp_text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
    let pub_text = format!("{}\n", expected["public_key"].as_str().unwrap());
    let mut manifest = BTreeMap::new();
    for (name, code, files) in corrupt_variants(&tiny) {
        check_or_bless(&dir.join("corrupt").join(name), &files, bless);
        manifest.insert(name, code);
    }
    let man_text = serde_json::to_string_pretty(&manifest).unwrap() + "\n";
    for (file, text) in [
        ("tiny.expected.json", &exp_text),
        ("tiny.pub", &pub_text),
        ("corrupt/expected_codes.json", &man_text),
    ] {
        let p = dir.join(file);
        if bless {
            std::fs::write(&p, text).unwrap();
        } else {
            let on_disk =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            assert_eq!(
                &on_disk,
                text,
                "{} drifted; if intended, re-bless",
                p.display()
            );
        }
    }
}
