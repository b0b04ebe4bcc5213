//! Property tests: frames round-trip and reject damage; the compact range
//! always agrees with a naive RFC 9162 recomputation; rkyv's entry bytes
//! always equal the spec's hand-written layout.
use log_format::entry::{decode_entry, encode_entry, spec_encode, EntryFields};
use log_format::frame::{decode_frame, encode_frame, FrameType};
use log_format::merkle::naive_root;
use log_format::CompactRange;
use proptest::prelude::*;

fn frame_type() -> impl Strategy<Value = FrameType> {
    prop_oneof![
        Just(FrameType::Entry),
        Just(FrameType::Seal),
        Just(FrameType::Footer)
    ]
}

proptest! {
    #[test]
    fn frame_round_trips(t in frame_type(), body in proptest::collection::vec(any::<u8>(), 1..2048)) {
        let mut buf = Vec::new();
        encode_frame(&mut buf, t, &body);
        let f = decode_frame(&buf, 0).unwrap();
        prop_assert_eq!(f.frame_type, t);
        prop_assert_eq!(f.body, &body[..]);
        prop_assert_eq!(f.total_len, buf.len());
    }

    #[test]
    fn any_single_bit_flip_in_a_frame_is_rejected(
        t in frame_type(),
        body in proptest::collection::vec(any::<u8>(), 1..512),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut buf = Vec::new();
        encode_frame(&mut buf, t, &body);
        let i = pos.index(buf.len());
        buf[i] ^= 1 << bit;
        prop_assert!(decode_frame(&buf, 0).is_err(), "flip at byte {} bit {} accepted", i, bit);
    }

    #[test]
    fn compact_range_root_matches_naive(hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..300)) {
        let mut r = CompactRange::new();
        prop_assert_eq!(r.root(), naive_root(&[]));
        for (i, h) in hashes.iter().enumerate() {
            r.push(h);
            prop_assert_eq!(r.root(), naive_root(&hashes[..=i]), "size {}", i + 1);
        }
        prop_assert_eq!(r.hashes().len(), hashes.len().count_ones() as usize);
    }

    #[test]
    fn rkyv_entry_bytes_equal_spec_layout(
        seq in 1u64..u64::MAX - 1,
        ts in any::<u64>(),
        parent in proptest::option::of(any::<u64>()),
        kind in "[a-z0-9_]{1,12}(\\.[a-z0-9_]{1,12}){0,3}",
        job in proptest::option::of("[ -~]{1,40}"),
        step in proptest::option::of("\\PC{1,20}"),
        agent in proptest::option::of("[a-z]{1,10}"),
        actor in "[a-z:]{1,20}",
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        prev in any::<[u8; 32]>(),
    ) {
        let parent = parent.map(|p| p % seq);
        let f = EntryFields {
            seq, ts_ns: ts, parent, prev, kind: &kind,
            job_id: job.as_deref(), step_id: step.as_deref(), agent: agent.as_deref(),
            actor: &actor, payload: &payload,
        };
        let (bytes, hash) = encode_entry(&f).unwrap();
        prop_assert_eq!(&bytes, &spec_encode(&f));
        let v = decode_entry(&bytes, 0).unwrap();
        prop_assert_eq!(v.hash(), hash);
        prop_assert_eq!(v.payload, &payload[..]);
        prop_assert_eq!(v.kind, kind.as_str());
        prop_assert_eq!(v.job_id, job.as_deref());
    }
}
