//! Seal signatures checked many at once with Ed25519 batch verification,
//! held to what `verify_strict` accepts (SPEC §7.4). A batch that fails
//! says only that some seal in it is bad, so the caller then re-walks the
//! segment with `verify_strict` on every seal to name the first bad one.
//!
//! `verify_batch` differs from `verify_strict` in three ways, closed here:
//! it does not refuse a small-order public key (checked once, with the
//! key's torsion), nor a small-order R, nor an R that is not canonically
//! encoded (`verify_strict` compares the recomputed R's canonical bytes with
//! the stored ones). Both refuse a non-canonical S. What remains is an R
//! with a small-order component added to a correct one; only the holder of
//! the secret key can make such a signature (its prime-order part must
//! verify), so it cannot admit a seal the key did not sign.
use ed25519_dalek::{Signature, VerifyingKey};
use std::sync::OnceLock;

/// Seals per batch. curve25519-dalek's variable-time multiscalar
/// multiplication switches from Straus to Pippenger above 190 points, and
/// per point it cost 5.0-6.9 µs at 66 points against 3.5-5.1 µs at 514
/// (this machine, loaded); a failing batch sends the segment to the
/// per-seal walk whatever its size, so a larger one costs nothing there.
pub(super) const BATCH: usize = 512;

/// A point of order 8 (libsodium's small-order blacklist); its multiples are
/// the eight small-order points.
const ORDER_8: [u8; 32] = [
    0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
    0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
];

/// Every encoding of a small-order point with a canonical y: the eight
/// points, each also with its sign bit flipped (for x = 0 that is the only
/// other encoding; otherwise it is the negation, also small order).
fn small_order_encodings() -> &'static [[u8; 32]] {
    static SET: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    SET.get_or_init(|| {
        let Ok(t) = VerifyingKey::from_bytes(&ORDER_8).map(|k| k.to_edwards()) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(16);
        let mut p = t;
        for _ in 0..8 {
            let e = p.compress().to_bytes();
            let mut flipped = e;
            flipped[31] ^= 0x80;
            out.push(e);
            out.push(flipped);
            p += t;
        }
        out
    })
}

/// y >= p = 2^255 - 19: the bytes are not the canonical encoding.
fn y_not_canonical(e: &[u8; 32]) -> bool {
    e[31] & 0x7f == 0x7f && e[1..31].iter().all(|b| *b == 0xff) && e[0] >= 0xed
}

/// R as `verify_strict` requires it: canonical and not of small order.
fn r_acceptable(sig: &[u8; 64]) -> bool {
    let mut r = [0u8; 32];
    r.copy_from_slice(&sig[..32]);
    !y_not_canonical(&r) && !small_order_encodings().contains(&r)
}

/// Whether batch verification may stand in for `verify_strict` under this
/// key: not of small order and with no small-order component.
pub(super) fn key_fit_for_batch(key: &VerifyingKey) -> bool {
    small_order_encodings().len() == 16 && !key.is_weak() && key.to_edwards().is_torsion_free()
}

/// Seal signatures gathered and checked `BATCH` at a time, each under its
/// epoch's key (every key was checked with `key_fit_for_batch`).
pub(super) struct SigBatch {
    keys: Vec<VerifyingKey>,
    msgs: Vec<String>,
    sigs: Vec<Signature>,
    ok: bool,
}

impl SigBatch {
    pub fn new() -> Self {
        Self {
            keys: Vec::with_capacity(BATCH),
            msgs: Vec::with_capacity(BATCH),
            sigs: Vec::with_capacity(BATCH),
            ok: true,
        }
    }

    /// Adds one signature over `msg` by `key`; false once any batch has
    /// failed.
    pub fn add(&mut self, key: &VerifyingKey, msg: String, sig: &[u8; 64]) -> bool {
        if self.ok && !r_acceptable(sig) {
            self.ok = false;
        }
        if !self.ok {
            return false;
        }
        self.keys.push(*key);
        self.msgs.push(msg);
        self.sigs.push(Signature::from_bytes(sig));
        if self.msgs.len() == BATCH {
            self.flush();
        }
        self.ok
    }

    fn flush(&mut self) {
        let n = self.msgs.len();
        if n == 0 {
            return;
        }
        self.ok &= if self.keys.iter().all(|k| *k == self.keys[0]) {
            same_key_batch(&self.keys[0], &self.msgs, &self.sigs)
        } else {
            let msgs: Vec<&[u8]> = self.msgs.iter().map(|m| m.as_bytes()).collect();
            ed25519_dalek::verify_batch(&msgs, &self.sigs, &self.keys).is_ok()
        };
        self.keys.clear();
        self.msgs.clear();
        self.sigs.clear();
    }

    /// Checks what is left; true when every signature added verified.
    pub fn finish(mut self) -> bool {
        if self.ok {
            self.flush();
        }
        self.ok
    }
}

/// ed25519-dalek's batch equation, `[-Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ = 0`,
/// with every `Aᵢ` the same key: the last sum is one term, `[Σ zᵢkᵢ]A`, so
/// the multiscalar multiplication takes n + 2 points instead of 2n + 1
/// (what a log of one seal per entry, all under one epoch key, spends its
/// verify on). The weights `zᵢ` are 128-bit and derived, as dalek derives
/// them, from every input (each `H(R‖A‖M)` and `S`), here with BLAKE3 in
/// derive-key mode. `S` must be canonical and `R` must decompress, as in
/// `verify_batch`; `r_acceptable` and `key_fit_for_batch` add the rest of
/// `verify_strict`.
fn same_key_batch(key: &VerifyingKey, msgs: &[String], sigs: &[Signature]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
    use sha2::{Digest, Sha512};

    let mut transcript = blake3::Hasher::new_derive_key("argus 2026 ed25519 same-key batch");
    let mut ks = Vec::with_capacity(sigs.len());
    let mut ss = Vec::with_capacity(sigs.len());
    let mut rs = Vec::with_capacity(sigs.len() + 2);
    for (msg, sig) in msgs.iter().zip(sigs) {
        let mut h = Sha512::new();
        h.update(sig.r_bytes());
        h.update(key.as_bytes());
        h.update(msg.as_bytes());
        let hram: [u8; 64] = h.finalize().into();
        transcript.update(&hram);
        transcript.update(sig.s_bytes());
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(*sig.s_bytes())) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(*sig.r_bytes()).decompress() else {
            return false;
        };
        ks.push(Scalar::from_bytes_mod_order_wide(&hram));
        ss.push(s);
        rs.push(r);
    }
    let mut weights = transcript.finalize_xof();
    let mut b_coefficient = Scalar::ZERO;
    let mut a_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(sigs.len() + 2);
    for (k, s) in ks.iter().zip(&ss) {
        let mut z = [0u8; 16];
        weights.fill(&mut z);
        let z = Scalar::from(u128::from_le_bytes(z));
        b_coefficient += z * s;
        a_coefficient += z * k;
        scalars.push(z);
    }
    scalars.push(-b_coefficient);
    scalars.push(a_coefficient);
    rs.push(ED25519_BASEPOINT_POINT);
    rs.push(key.to_edwards());
    EdwardsPoint::vartime_multiscalar_mul(&scalars, &rs).is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn the_small_order_set_is_the_eight_points() {
        let set = small_order_encodings();
        assert_eq!(set.len(), 16);
        let canonical: std::collections::BTreeSet<_> = set.iter().step_by(2).collect();
        assert_eq!(canonical.len(), 8, "eight distinct points");
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(set.contains(&identity));
        for e in set.iter().step_by(2) {
            let k = VerifyingKey::from_bytes(e).expect("decodes");
            assert!(k.is_weak(), "{} is small order", hex::encode(e));
        }
        assert!(key_fit_for_batch(&key().verifying_key()));
        assert!(!key_fit_for_batch(
            &VerifyingKey::from_bytes(&ORDER_8).expect("decodes")
        ));
    }

    #[test]
    fn batches_accept_good_and_refuse_any_bad_signature() {
        let sk = key();
        let vk = sk.verifying_key();
        // Past one whole batch, so a full batch is flushed mid-stream.
        let n = BATCH + 40;
        for bad in [
            None,
            Some(0usize),
            Some(BATCH - 1),
            Some(BATCH),
            Some(n - 1),
        ] {
            let mut b = SigBatch::new();
            for i in 0..n {
                let msg = format!("seal {i}\n");
                let mut sig = sk.sign(msg.as_bytes()).to_bytes();
                if bad == Some(i) {
                    sig[40] ^= 1;
                }
                b.add(&vk, msg, &sig);
            }
            assert_eq!(b.finish(), bad.is_none(), "bad {bad:?}");
        }
    }

    #[test]
    fn batches_under_one_key_and_under_two_agree_with_verify_strict() {
        let a = key();
        let b = SigningKey::from_bytes(&[9u8; 32]);
        for two_keys in [false, true] {
            for bad in [None, Some(0usize), Some(17), Some(63)] {
                for what in ["s", "r", "msg"] {
                    let mut batch = SigBatch::new();
                    let mut strict_ok = true;
                    for i in 0..64usize {
                        let sk = if two_keys && i % 3 == 0 { &b } else { &a };
                        let msg = format!("seal {i}\n");
                        let mut sig = sk.sign(msg.as_bytes()).to_bytes();
                        let mut signed = msg.clone();
                        if bad == Some(i) {
                            match what {
                                "s" => sig[40] ^= 1,
                                "r" => sig[3] ^= 1,
                                _ => signed.push('x'),
                            }
                        }
                        let vk = sk.verifying_key();
                        strict_ok &= vk
                            .verify_strict(signed.as_bytes(), &Signature::from_bytes(&sig))
                            .is_ok();
                        batch.add(&vk, signed, &sig);
                    }
                    assert_eq!(strict_ok, bad.is_none());
                    assert_eq!(
                        batch.finish(),
                        strict_ok,
                        "two keys {two_keys}, bad {bad:?} in {what}"
                    );
                }
            }
        }
    }

    #[test]
    fn r_must_be_canonical_and_not_small_order() {
        let sk = key();
        let good = sk.sign(b"x").to_bytes();
        assert!(r_acceptable(&good));
        for e in small_order_encodings() {
            let mut s = good;
            s[..32].copy_from_slice(e);
            assert!(!r_acceptable(&s));
        }
        let mut s = good;
        s[..32].copy_from_slice(&[0xff; 32]);
        s[0] = 0xed;
        s[31] = 0x7f;
        assert!(!r_acceptable(&s), "y = p is not canonical");
        s[0] = 0xec;
        assert!(
            !y_not_canonical(s[..32].try_into().expect("32")),
            "p - 1 is"
        );
    }
}
