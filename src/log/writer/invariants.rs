//! The writer's invariants, asserted in production code.
//!
//! Each guards a property whose violation would write a corrupt log or
//! acknowledge what is not durable, and is cheap next to the hashing and
//! the fdatasync around it (a few integer and 32-byte compares per entry).
//! They panic: the writer thread then stops with the acks it held unsent,
//! every waiting producer gets `Error::WriterGone`, and every later append
//! fails the same way. The two checked before the write leave the file as it
//! was; the one checked after it finds the commit already durable and
//! sealed, so recovery reopens either without a cut. Each function is named
//! after its invariant so a failure says which one broke.
use super::Ack;
use log_format::Hash32;

/// Proof that a commit's single write and its fdatasync both returned:
/// made only by `Writer::write_durable`, after they did. `tree_size` is the
/// size the commit's seal covers.
#[derive(Debug)]
pub(crate) struct Durable {
    pub(super) tree_size: u64,
}

/// Seq continuity: an entry is encoded at exactly the next seq. The seq in
/// its encoded bytes, the writer's next seq, the Merkle tree's size and the
/// segment's base seq plus the entries written to it are four counts kept
/// apart; if any disagrees, a gap or a duplicate seq is about to be written.
pub(crate) fn seq_continuity(encoded: Option<u64>, next_seq: u64, tree_size: u64, in_segment: u64) {
    assert!(
        encoded == Some(next_seq) && tree_size == next_seq && in_segment == next_seq,
        "invariant seq_continuity violated: entry encoded at seq {encoded:?}, writer's next seq \
         {next_seq}, Merkle tree size {tree_size}, segment base + entries {in_segment}"
    );
}

/// Chain link: the `prev` in an entry's encoded bytes is the hash of the
/// entry before it (the header's prev hash for a segment's first entry),
/// so the chain the seal signs is the chain on disk.
pub(crate) fn chain_link(encoded_prev: Option<&Hash32>, last_hash: &Hash32, seq: u64) {
    assert!(
        encoded_prev == Some(last_hash),
        "invariant chain_link violated: entry at seq {seq} encodes prev {}, but the entry before \
         it hashes to {}",
        encoded_prev
            .map(hex::encode)
            .unwrap_or_else(|| "nothing".into()),
        hex::encode(last_hash)
    );
}

/// Seal coverage before an ack: an entry is acknowledged only when the seal
/// of a commit whose write and fdatasync returned (`Durable`) covers it.
pub(crate) fn seal_covers_ack(durable: &Durable, ack: &Ack) {
    assert!(
        ack.seq < durable.tree_size,
        "invariant seal_covers_ack violated: seq {} would be acknowledged, but the durable seal \
         covers only {} entries",
        ack.seq,
        durable.tree_size
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_invariant_holds_for_a_consistent_writer() {
        seq_continuity(Some(7), 7, 7, 7);
        chain_link(Some(&[3; 32]), &[3; 32], 7);
        seal_covers_ack(
            &Durable { tree_size: 8 },
            &Ack {
                seq: 7,
                hash: [0; 32],
            },
        );
    }

    #[test]
    #[should_panic(expected = "invariant seq_continuity violated")]
    fn seq_continuity_catches_a_merkle_tree_behind_the_seq() {
        seq_continuity(Some(7), 7, 6, 7);
    }

    #[test]
    #[should_panic(expected = "invariant seq_continuity violated")]
    fn seq_continuity_catches_bytes_encoded_at_another_seq() {
        seq_continuity(Some(8), 7, 7, 7);
    }

    #[test]
    #[should_panic(expected = "invariant chain_link violated")]
    fn chain_link_catches_a_prev_that_is_not_the_last_hash() {
        chain_link(Some(&[1; 32]), &[2; 32], 7);
    }

    #[test]
    #[should_panic(expected = "invariant seal_covers_ack violated")]
    fn seal_covers_ack_catches_an_ack_beyond_the_durable_seal() {
        seal_covers_ack(
            &Durable { tree_size: 7 },
            &Ack {
                seq: 7,
                hash: [0; 32],
            },
        );
    }
}
