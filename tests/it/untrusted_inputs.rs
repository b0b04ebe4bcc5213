//! Stable-Rust property tests over exactly the decoders the fuzz targets
//! drive (`log_format::untrusted`, `argus::untrusted`; fuzz/ and
//! docs/FUZZING.md): a real log signed with the fuzz key is the seed, and
//! every mutation of it (a flipped bit, a cut, spliced garbage) must be
//! refused or decoded without a panic, and damage to signed or hashed bytes
//! must never pass as the original. Crashes the fuzzers find are added
//! here as regression cases.
use crate::common::{argus, argus_stdin, p};
use argus::untrusted as app;
use log_format::frame::FrameType;
use log_format::scan::SegmentScan;
use log_format::untrusted as fmt;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A log signed with the fuzz key: segments of 4 KiB (several, the first
/// ones compressed by `compact`), entries in several group commits.
struct Seeds {
    _tmp: tempfile::TempDir,
    segment: Vec<u8>,
    segment_len_before_compaction: u64,
    segz: Vec<u8>,
    entry_bodies: Vec<Vec<u8>>,
    checkpoint: String,
    proof: Vec<u8>,
    lines: Vec<u8>,
}

fn line(i: u64) -> String {
    format!(
        r#"{{"kind":"tool.call_completed","job_id":"job-{}","step_id":"s{i}","agent":"{}","payload":{{"tool":"http.get","call_id":"c{i}","exit_code":0,"duration_ms":{}}}}}"#,
        i % 3,
        app::FUZZ_AGENT,
        i * 7
    ) + "\n"
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("fuzz.key");
        std::fs::write(&key, format!("{}\n", "42".repeat(32))).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let dir = tmp.path().join("log");
        argus([
            p(Path::new("init")),
            p(&dir),
            p(Path::new("--segment-bytes")),
            p(Path::new("4096")),
            p(Path::new("--key-file")),
            p(&key),
        ])
        .assert_ok();
        let mut lines = Vec::new();
        for batch in 0..6u64 {
            let chunk: String = (batch * 8..batch * 8 + 8).map(line).collect();
            argus_stdin([p(Path::new("append")), p(&dir)], chunk.as_bytes()).assert_ok();
            lines.extend_from_slice(chunk.as_bytes());
        }
        let segs = segment_files(&dir);
        assert!(segs.len() >= 3, "want several segments: {segs:?}");
        let first = std::fs::read(&segs[0]).unwrap();
        let cp = argus([p(Path::new("checkpoint")), p(&dir)]);
        cp.assert_ok();
        let proof = argus([p(Path::new("prove")), p(&dir), p(Path::new("3"))]);
        proof.assert_ok();
        argus([p(Path::new("compact")), p(&dir)]).assert_ok();
        // The first segment's compressed form.
        let segz_path = segs[0].with_extension("segz");
        let entry_bodies = SegmentScan::new(&first)
            .unwrap()
            .frames
            .filter(|f| f.frame_type == FrameType::Entry)
            .map(|f| f.body.to_vec())
            .collect();
        Seeds {
            segment_len_before_compaction: first.len() as u64,
            segment: first,
            segz: std::fs::read(segz_path).unwrap(),
            entry_bodies,
            checkpoint: cp.stdout,
            proof: proof.stdout.into_bytes(),
            lines,
            _tmp: tmp,
        }
    })
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

/// A mutation of `seed`: one flipped bit, a cut, or bytes spliced in.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let n = seed.len();
    prop_oneof![
        (0..n, 0u8..8).prop_map(move |(i, b)| {
            let mut v = seed.to_vec();
            v[i] ^= 1 << b;
            v
        }),
        (0..n).prop_map(move |i| seed[..i].to_vec()),
        (0..n, prop::collection::vec(any::<u8>(), 1..64)).prop_map(move |(i, junk)| {
            let mut v = seed.to_vec();
            v.splice(i..i, junk);
            v
        }),
    ]
}

#[test]
fn the_seeds_decode_whole() {
    let s = seeds();
    let w = fmt::segment(&s.segment).unwrap();
    assert!(w.clean && w.entries > 0 && w.seals > 0, "{w:?}");
    assert_eq!(fmt::archive(&s.segz), Ok(s.segment_len_before_compaction));
    for b in &s.entry_bodies {
        assert!(fmt::entry(b).unwrap().1, "payload hash matches");
    }
    let (size, signed) = fmt::checkpoint(s.checkpoint.as_bytes()).unwrap();
    assert!(size >= 48 && signed, "{size} {signed}");
    assert_eq!(app::proof_bundle(&s.proof, &fmt::fuzz_key()), Ok(0));
    for l in s.lines.split_inclusive(|b| *b == b'\n') {
        assert_eq!(app::ingest_line(l).as_deref(), Ok("tool.call_completed"));
    }
    assert_eq!(app::entries_body(&s.lines, true), Ok(48));
    let req = format!("old 0\n\n{}", s.checkpoint);
    assert_eq!(app::witness_request(req.as_bytes()), Ok((0, 0, size)));
}

#[test]
fn deep_nesting_and_huge_numbers_are_refused_not_a_stack_overflow() {
    let deep = format!(
        r#"{{"kind":"x.t","payload":{{"a":{}1{}}}}}"#,
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    assert!(app::ingest_line(deep.as_bytes()).is_err());
    assert!(app::entries_body(deep.as_bytes(), false).is_err());
    let deep_proof = "[".repeat(200_000);
    assert!(app::proof_bundle(deep_proof.as_bytes(), &fmt::fuzz_key()).is_err());
    let big = r#"{"kind":"x.t","payload":{"n":1e999999999}}"#;
    assert!(app::ingest_line(big.as_bytes()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every byte of a sealed segment is covered by a CRC, a hash or a
    /// signature: a flip never walks clean to the same counts.
    #[test]
    fn a_flipped_bit_in_a_segment_never_passes_as_the_original(i in any::<prop::sample::Index>(), b in 0u8..8) {
        let s = seeds();
        let want = fmt::segment(&s.segment).unwrap();
        let mut v = s.segment.clone();
        let at = i.index(v.len());
        v[at] ^= 1 << b;
        let got = fmt::segment(&v);
        prop_assert!(got != Ok(want), "flip at byte {} bit {} walked clean: {:?}", at, b, got);
    }

    #[test]
    fn mutated_segments_and_archives_never_panic(seg in mutated(&seeds().segment), z in mutated(&seeds().segz)) {
        let _ = fmt::segment(&seg);
        let _ = fmt::archive(&seg);
        if let Ok(n) = fmt::archive(&z) {
            // An archive that still inflates holds at most what it says.
            prop_assert!(n <= 4 * seeds().segment_len_before_compaction + (1 << 20));
        }
        let _ = fmt::segment(&z);
    }

    #[test]
    fn mutated_entry_bodies_never_panic(k in any::<prop::sample::Index>(), i in any::<prop::sample::Index>(), b in 0u8..8, cut in any::<prop::sample::Index>()) {
        let bodies = &seeds().entry_bodies;
        let body = &bodies[k.index(bodies.len())];
        let mut v = body.clone();
        let at = i.index(v.len());
        v[at] ^= 1 << b;
        let _ = fmt::entry(&v);
        let _ = fmt::entry(&body[..cut.index(body.len())]);
    }

    /// A checkpoint's text and signature line are all signed or parsed
    /// strictly: no change leaves it a signed checkpoint.
    #[test]
    fn a_changed_checkpoint_is_never_signed(v in mutated(seeds().checkpoint.as_bytes())) {
        if v != seeds().checkpoint.as_bytes() {
            if let Ok((_, signed)) = fmt::checkpoint(&v) {
                prop_assert!(!signed, "{:?}", String::from_utf8_lossy(&v));
            }
        }
        let _ = app::witness_request(&v);
    }

    #[test]
    fn mutated_proof_bundles_never_panic(v in mutated(&seeds().proof)) {
        let _ = app::proof_bundle(&v, &fmt::fuzz_key());
    }

    #[test]
    fn mutated_lines_and_bodies_never_panic(v in mutated(&seeds().lines), json in any::<bool>()) {
        for l in v.split_inclusive(|b| *b == b'\n') {
            let _ = app::ingest_line(l);
        }
        let _ = app::entries_body(&v, json);
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(v in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = fmt::segment(&v);
        let _ = fmt::entry(&v);
        let _ = fmt::archive(&v);
        let _ = fmt::checkpoint(&v);
        let _ = app::proof_bundle(&v, &fmt::fuzz_key());
        let _ = app::ingest_line(&v);
        let _ = app::entries_body(&v, true);
        let _ = app::entries_body(&v, false);
        let _ = app::witness_request(&v);
    }
}

/// Writes the seeds above as the fuzz targets' starting corpus
/// (fuzz/corpus/TARGET/); run after a format change:
/// `cargo test --test it untrusted_inputs::write_fuzz_corpus -- --ignored`.
#[test]
#[ignore]
fn write_fuzz_corpus() {
    let s = seeds();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    put("segment", "segment.seg", &s.segment);
    put("segment", "segment.segz", &s.segz);
    for (i, b) in s.entry_bodies.iter().take(4).enumerate() {
        put("entry", &format!("entry-{i}"), b);
    }
    put("checkpoint", "checkpoint.txt", s.checkpoint.as_bytes());
    put(
        "witness_request",
        "request.txt",
        format!("old 0\n\n{}", s.checkpoint).as_bytes(),
    );
    put("proof", "inclusion.json", &s.proof);
    let first: Vec<&[u8]> = s.lines.split_inclusive(|b| *b == b'\n').collect();
    put("ingest", "line.json", first[0]);
    put(
        "ingest",
        "nested.json",
        br#"{"kind":"x.t","job_id":"j","payload":{"a":[1,2.5,-0,"\u00e9",{"b":null}]}}"#,
    );
    let mut ndjson = vec![1u8];
    ndjson.extend_from_slice(&s.lines[..first[0].len() * 3]);
    put("http_body", "ndjson", &ndjson);
    let mut json = vec![0u8];
    json.extend_from_slice(first[0]);
    put("http_body", "json", &json);
}
