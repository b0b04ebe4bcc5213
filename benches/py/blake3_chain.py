#!/usr/bin/env python3
"""Baseline for benches/verify.rs: the least a hash-chained JSONL audit log
costs to check. Reads a JSONL file and, for each line (newline excluded),
computes blake3(prev_hash + line), starting from 32 zero bytes; prints the
line count and the last hash. No signatures, no Merkle tree, no parsing:
argusctl verify does all of those, so this is a floor, not a peer.

Usage: python3 benches/py/blake3_chain.py EVENTS.jsonl
Needs the `blake3` package (pip install blake3).
"""
import sys

import blake3


def main(path):
    prev = bytes(32)
    n = 0
    with open(path, "rb") as f:
        for line in f:
            prev = blake3.blake3(prev + line.rstrip(b"\n")).digest()
            n += 1
    print(n, prev.hex())


if __name__ == "__main__":
    main(sys.argv[1])
