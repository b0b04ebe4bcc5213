//! RFC 9162-shaped Merkle tree over entry hashes, kept as a compact range:
//! the roots of the perfect subtrees that make up the first `size` leaves,
//! largest first. O(log n) state, so the writer never re-reads the log and a
//! segment header can carry the whole tree state at its base seq.
use crate::hash::{merkle_empty, merkle_leaf, merkle_node, Hash32};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// One hash per set bit of `size`, most significant bit first.
    hashes: Vec<Hash32>,
}

impl CompactRange {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a range from stored parts; `None` when the hash count does not
    /// match the popcount of `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash32>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn hashes(&self) -> &[Hash32] {
        &self.hashes
    }

    /// Appends one entry hash as a leaf.
    pub fn push(&mut self, entry_hash: &Hash32) {
        let mut h = merkle_leaf(entry_hash);
        let mut s = self.size;
        while s & 1 == 1 {
            // Invariant: one hash per set bit, so a set bit always has one to pop.
            let Some(left) = self.hashes.pop() else { break };
            h = merkle_node(&left, &h);
            s >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The tree root: the frontier folded from the right.
    pub fn root(&self) -> Hash32 {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return merkle_empty();
        };
        it.fold(*last, |acc, left| merkle_node(left, &acc))
    }
}

/// Naive recursive root straight from RFC 9162 §2.1.1; the reference that
/// property tests hold `CompactRange` to.
pub fn naive_root(entry_hashes: &[Hash32]) -> Hash32 {
    match entry_hashes.len() {
        0 => merkle_empty(),
        1 => merkle_leaf(&entry_hashes[0]),
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            merkle_node(
                &naive_root(&entry_hashes[..k]),
                &naive_root(&entry_hashes[k..]),
            )
        }
    }
}
