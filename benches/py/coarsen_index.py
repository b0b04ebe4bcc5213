#!/usr/bin/env python3
"""Rewrites every sparse index file (`segments/*.idx`) of a log directory to
keep only the points of an older, coarser stride (default 256), so a replay
bench can compare the same log indexed both ways in one run:

    cp -a LOG LOG-coarse && python3 benches/py/coarsen_index.py LOG-coarse [STRIDE]

Index files are caches (SPEC §9): readers accept any ascending points.
"""
import os
import struct
import sys
import zlib


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    seg_dir = os.path.join(sys.argv[1], "segments")
    stride = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    for name in sorted(os.listdir(seg_dir)):
        if not name.endswith(".idx"):
            continue
        base = int(name[:-4])
        path = os.path.join(seg_dir, name)
        data = open(path, "rb").read()
        if data[:8] != b"ARGUSIDX" or (len(data) - 12) % 16:
            sys.exit("%s: not an index file" % path)
        pairs = [struct.unpack_from("<QQ", data, 8 + 16 * i) for i in range((len(data) - 12) // 16)]
        kept = [(s, o) for s, o in pairs if (s - base) % stride == 0]
        body = b"ARGUSIDX" + b"".join(struct.pack("<QQ", s, o) for s, o in kept)
        with open(path, "wb") as f:
            f.write(body + struct.pack("<I", zlib.crc32(body)))
        print("%s: %d -> %d points" % (name, len(pairs), len(kept)))


if __name__ == "__main__":
    main()
