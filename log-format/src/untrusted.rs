//! The format's decoders of outside bytes, behind one function each.
//!
//! A segment, an entry body, a compressed segment and a checkpoint can all
//! arrive from someone hostile (a copied log directory, a checkpoint an
//! auditor was handed). The fuzz targets in `fuzz/` and the property tests
//! call these same functions, so what is fuzzed on nightly is what stable CI
//! checks. Each returns what it decoded in a few numbers, so a test can
//! assert on it; none may panic, whatever the bytes.
use crate::archive::Archive;
use crate::entry::decode_entry;
use crate::scan::SegmentScan;
use crate::seal::{Checkpoint, Cosigner};
use crate::tail::SealKey;
use crate::walk::{ChainWalk, Checks, Item};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// What a walk of one segment's bytes found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walked {
    pub entries: u64,
    pub seals: u64,
    /// True when every byte formed a valid, checked frame.
    pub clean: bool,
}

/// The fixed key fuzz inputs are judged with: the seed is public, which is
/// the point (a fuzzer can build validly signed seals only by finding them).
pub fn fuzz_key() -> VerifyingKey {
    SigningKey::from_bytes(&[0x42; 32]).verifying_key()
}

/// A segment's bytes through the frame walk and the full chain walk
/// (chain, payload hashes, Merkle roots, seal signatures), as verify and
/// readers use it, then the tail judgement where the frames stop.
pub fn segment(bytes: &[u8]) -> Result<Walked, String> {
    let scan = SegmentScan::new(bytes).map_err(|e| e.to_string())?;
    let frames = scan.frames.count() as u64;
    let key = fuzz_key();
    let log_id = scan.header.log_id;
    let seal_key = SealKey::new(log_id, &key);
    let checks = Checks {
        chain: true,
        payload: true,
        erased: true,
        merkle: true,
        signatures: Some(seal_key),
    };
    let (_, mut walk) = ChainWalk::segment(bytes, checks).map_err(|e| e.to_string())?;
    let mut out = Walked::default();
    let mut fault = None;
    for item in walk.by_ref() {
        match item {
            Ok(Item::Entry { .. }) => out.entries += 1,
            Ok(Item::Seal { .. }) => out.seals += 1,
            Ok(_) => {}
            Err(f) => {
                fault = Some(f);
                break;
            }
        }
    }
    let _ = walk.tail(&seal_key);
    debug_assert!(out.entries + out.seals <= frames);
    match fault {
        Some(f) => Err(format!("{} at offset {}", f.name(), f.offset())),
        None => {
            out.clean = walk.offset() == bytes.len() as u64;
            Ok(out)
        }
    }
}

/// One entry frame's body, decoded and checked by rkyv's bytecheck, then
/// hashed.
pub fn entry(body: &[u8]) -> Result<(u64, bool), String> {
    let v = decode_entry(body, 0).map_err(|e| e.to_string())?;
    let _ = v.hash();
    Ok((v.seq, v.payload_matches()))
}

/// A compressed segment (`.segz`): its layout, then every block inflated
/// into exactly the room its index declares.
pub fn archive(bytes: &[u8]) -> Result<u64, String> {
    let a = Archive::parse(bytes).map_err(|e| e.to_string())?;
    let mut total = 0u64;
    for i in 0..a.blocks.len() {
        total += a.decode_block(i).map_err(|e| e.to_string())?.len() as u64;
    }
    Ok(total)
}

/// A checkpoint text, parsed strictly, then judged against the fuzz key
/// and a witness of the same key: its size and whether the key signed it.
pub fn checkpoint(bytes: &[u8]) -> Result<(u64, bool), String> {
    let cp = Checkpoint::parse_bytes(bytes).map_err(|e| e.to_string())?;
    let key = fuzz_key();
    let signed = cp.verify(&cp.log_id, &key).is_ok();
    let _ = Cosigner {
        name: "w".into(),
        key,
    }
    .check(&cp);
    Ok((cp.seal.tree_size, signed))
}
