//! A Merkle compact range over leaves `[start, end)` for any `start`, so a
//! segment can be split into ranges hashed on separate threads and joined
//! afterwards: a range's nodes appended to the range before it give the
//! range over both, and a range that starts at 0 is the writer's frontier.
use log_format::hash::{merkle_empty, merkle_leaf, merkle_node};
use log_format::{CompactRange, Hash32};

/// The perfect subtrees that make up `[start, end)`, left to right, each
/// with its height. When `start` is 0 this is exactly `CompactRange`'s
/// frontier (largest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Span {
    end: u64,
    nodes: Vec<(u32, Hash32)>,
}

impl Span {
    /// An empty range that begins at leaf `start`.
    pub fn at(start: u64) -> Self {
        Self {
            end: start,
            nodes: Vec::new(),
        }
    }

    /// The range `[0, size)` a segment header's frontier stands for.
    pub fn from_frontier(r: &CompactRange) -> Self {
        let size = r.size();
        let levels = (0..64u32).rev().filter(|b| size >> b & 1 == 1);
        Self {
            end: size,
            nodes: levels.zip(r.hashes().iter().copied()).collect(),
        }
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends one entry hash as a leaf.
    pub fn push(&mut self, entry_hash: &Hash32) {
        self.push_node(0, merkle_leaf(entry_hash));
    }

    /// Appends a perfect subtree of height `level` that starts at `end`
    /// (which must be a multiple of `2^level`). It joins the node to its
    /// left while it is a right child whose left sibling lies in the range:
    /// that sibling is then the last node, at the same height.
    fn push_node(&mut self, level: u32, hash: Hash32) {
        let width = 1u64 << level;
        let mut idx = self.end >> level;
        let (mut level, mut hash) = (level, hash);
        while idx & 1 == 1 {
            match self.nodes.last() {
                Some((l, left)) if *l == level => {
                    hash = merkle_node(left, &hash);
                    self.nodes.pop();
                    idx >>= 1;
                    level += 1;
                }
                _ => break,
            }
        }
        self.end += width;
        self.nodes.push((level, hash));
    }

    /// Appends `next`, which must start where this range ends.
    pub fn extend(&mut self, next: &Span) {
        for (level, hash) in &next.nodes {
            self.push_node(*level, *hash);
        }
    }

    /// The tree root, for a range that starts at 0: the frontier folded
    /// from the right.
    pub fn root(&self) -> Hash32 {
        let mut it = self.nodes.iter().rev();
        let Some((_, last)) = it.next() else {
            return merkle_empty();
        };
        it.fold(*last, |acc, (_, left)| merkle_node(left, &acc))
    }

    /// The writer's form of a range that starts at 0.
    pub fn frontier(&self) -> Option<CompactRange> {
        CompactRange::from_parts(self.end, self.nodes.iter().map(|n| n.1).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use log_format::merkle::naive_root;

    fn hashes(n: u64) -> Vec<Hash32> {
        (0..n)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect()
    }

    /// Every split of every prefix, joined, gives the writer's frontier and
    /// the RFC 9162 root.
    #[test]
    fn split_ranges_join_to_the_frontier() {
        let hs = hashes(70);
        for n in 0..hs.len() as u64 {
            let mut whole = CompactRange::new();
            hs[..n as usize].iter().for_each(|h| whole.push(h));
            for a in 0..=n {
                for b in a..=n {
                    let mut head = CompactRange::new();
                    hs[..a as usize].iter().for_each(|h| head.push(h));
                    let mut s = Span::from_frontier(&head);
                    let (mut mid, mut tail) = (Span::at(a), Span::at(b));
                    hs[a as usize..b as usize].iter().for_each(|h| mid.push(h));
                    hs[b as usize..n as usize].iter().for_each(|h| tail.push(h));
                    s.extend(&mid);
                    s.extend(&tail);
                    assert_eq!(s.end(), n);
                    assert_eq!(s.frontier().as_ref(), Some(&whole), "n {n} a {a} b {b}");
                    assert_eq!(s.root(), naive_root(&hs[..n as usize]));
                }
            }
        }
    }
}
