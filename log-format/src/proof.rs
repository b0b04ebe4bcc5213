//! RFC 9162 §2.1.3 inclusion proofs and §2.1.4 consistency proofs over the
//! tree of SPEC §6 (leaves `merkle_leaf(entry_hash)`, nodes `merkle_node`),
//! as pure functions: generation from a slice of entry hashes, and the
//! verification algorithms of §2.1.3.2 and §2.1.4.2, which need only hashes.
use crate::hash::{merkle_leaf, merkle_node, Hash32};
use crate::merkle::naive_root;

/// Largest power of two strictly less than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The audit path for leaf `m` of the tree over `entry_hashes` (RFC 9162
/// §2.1.3.1 `PATH(m, D[n])`), leaf-side first. `None` when `m` is not a leaf.
pub fn inclusion_proof(entry_hashes: &[Hash32], m: u64) -> Option<Vec<Hash32>> {
    let m = usize::try_from(m).ok()?;
    if m >= entry_hashes.len() {
        return None;
    }
    let mut out = Vec::new();
    path(m, entry_hashes, &mut out);
    Some(out)
}

fn path(m: usize, d: &[Hash32], out: &mut Vec<Hash32>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(naive_root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(naive_root(&d[..k]));
    }
}

/// RFC 9162 §2.1.3.2: the root that `leaf_hash` at `leaf_index` of a tree of
/// `tree_size` leaves hashes up to along `audit_path`; `None` when the path
/// has the wrong length for that position.
pub fn root_from_inclusion(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &Hash32,
    audit_path: &[Hash32],
) -> Option<Hash32> {
    if leaf_index >= tree_size {
        return None;
    }
    let (mut fn_, mut sn) = (leaf_index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in audit_path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = merkle_node(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = merkle_node(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

/// True when `entry_hash` is leaf `leaf_index` of the tree of `tree_size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    entry_hash: &Hash32,
    audit_path: &[Hash32],
    root: &Hash32,
) -> bool {
    root_from_inclusion(leaf_index, tree_size, &merkle_leaf(entry_hash), audit_path)
        .is_some_and(|r| r == *root)
}

/// RFC 9162 §2.1.4.1 `PROOF(m, D[n])`: the consistency proof from the tree
/// of the first `m` entries to the tree of all of them. `None` unless
/// `m <= n`; empty when `m` is 0 or `m == n`.
pub fn consistency_proof(entry_hashes: &[Hash32], m: u64) -> Option<Vec<Hash32>> {
    let m = usize::try_from(m).ok()?;
    let n = entry_hashes.len();
    if m > n {
        return None;
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        subproof(m, entry_hashes, true, &mut out);
    }
    Some(out)
}

fn subproof(m: usize, d: &[Hash32], b: bool, out: &mut Vec<Hash32>) {
    let n = d.len();
    if m == n {
        if !b {
            out.push(naive_root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], b, out);
        out.push(naive_root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(naive_root(&d[..k]));
    }
}

/// RFC 9162 §2.1.4.2: true when `proof` shows that the tree of `old_size`
/// leaves with root `old_root` is a prefix of the tree of `new_size` leaves
/// with root `new_root`.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash32,
    new_root: &Hash32,
    proof: &[Hash32],
) -> bool {
    if old_size > new_size {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        // Every tree extends the empty one; RFC 9162 sends no proof.
        return proof.is_empty();
    }
    let mut path: Vec<Hash32> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = merkle_node(c, &fr);
            sr = merkle_node(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = merkle_node(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    fr == *old_root && sr == *new_root && sn == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::merkle::CompactRange;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| *blake3::hash(&(i as u64).to_le_bytes()).as_bytes())
            .collect()
    }

    #[test]
    fn every_inclusion_proof_up_to_40_leaves_verifies_against_naive_root() {
        let d = leaves(40);
        for n in 1..=d.len() {
            let root = naive_root(&d[..n]);
            for m in 0..n {
                let p = inclusion_proof(&d[..n], m as u64).unwrap();
                assert!(
                    verify_inclusion(m as u64, n as u64, &d[m], &p, &root),
                    "{m}/{n}"
                );
                // Wrong leaf, wrong index, wrong size, altered path: refused.
                let other = d[(m + 1) % n];
                assert!(n == 1 || !verify_inclusion(m as u64, n as u64, &other, &p, &root));
                if n > 1 {
                    let m2 = ((m + 1) % n) as u64;
                    assert!(!verify_inclusion(m2, n as u64, &d[m], &p, &root));
                }
                // (A different tree_size can give the same path shape, e.g.
                // leaf 0 of 5 and of 6; the signed checkpoint pins the size.)
                for i in 0..p.len() {
                    let mut q = p.clone();
                    q[i][0] ^= 1;
                    assert!(!verify_inclusion(m as u64, n as u64, &d[m], &q, &root));
                }
                let mut longer = p.clone();
                longer.push([0; 32]);
                assert!(!verify_inclusion(m as u64, n as u64, &d[m], &longer, &root));
            }
        }
    }

    #[test]
    fn every_consistency_proof_up_to_40_leaves_verifies() {
        let d = leaves(40);
        for n in 1..=d.len() {
            let new_root = naive_root(&d[..n]);
            for m in 0..=n {
                let old_root = naive_root(&d[..m]);
                let p = consistency_proof(&d[..n], m as u64).unwrap();
                assert!(
                    verify_consistency(m as u64, n as u64, &old_root, &new_root, &p),
                    "{m}->{n}"
                );
                if m > 0 && m < n {
                    for i in 0..p.len() {
                        let mut q = p.clone();
                        q[i][31] ^= 0x80;
                        assert!(!verify_consistency(
                            m as u64, n as u64, &old_root, &new_root, &q
                        ));
                    }
                    let mut bad_old = old_root;
                    bad_old[0] ^= 1;
                    assert!(!verify_consistency(
                        m as u64, n as u64, &bad_old, &new_root, &p
                    ));
                    // A tree that forked after m-1 leaves is not consistent.
                    let mut fork = d[..n].to_vec();
                    fork[m - 1][0] ^= 1;
                    let forked_root = naive_root(&fork);
                    let fp = consistency_proof(&fork, m as u64).unwrap();
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &old_root,
                        &forked_root,
                        &fp
                    ));
                }
            }
        }
        assert!(consistency_proof(&d[..3], 4).is_none());
        assert!(!verify_consistency(4, 3, &[0; 32], &[0; 32], &[]));
    }

    #[test]
    fn rfc9162_example_shapes() {
        // RFC 9162 §2.1.5: the tree of 7 leaves; PATH(0) = [b, h, l] (3 nodes),
        // PROOF(3, D[7]) = [c, d, g, l] (4 nodes), PROOF(4, D[7]) = [l] (1),
        // PROOF(6, D[7]) = [i, j, k] (3).
        let d = leaves(7);
        assert_eq!(inclusion_proof(&d, 0).unwrap().len(), 3);
        assert_eq!(inclusion_proof(&d, 6).unwrap().len(), 2);
        assert_eq!(consistency_proof(&d, 3).unwrap().len(), 4);
        assert_eq!(consistency_proof(&d, 4).unwrap().len(), 1);
        assert_eq!(consistency_proof(&d, 6).unwrap().len(), 3);
        assert_eq!(inclusion_proof(&d, 0).unwrap()[0], merkle_leaf(&d[1]));
    }

    #[test]
    fn roots_match_the_compact_range_the_writer_seals() {
        let d = leaves(33);
        let mut cr = CompactRange::new();
        for (i, e) in d.iter().enumerate() {
            cr.push(e);
            let n = i + 1;
            let p = inclusion_proof(&d[..n], i as u64).unwrap();
            assert!(verify_inclusion(i as u64, n as u64, e, &p, &cr.root()));
        }
    }
}
