#!/usr/bin/env python3
"""Cold and warm `argusctl replay` of one job, as whole processes.

Evicts every file of the log directory from the page cache with
posix_fadvise(DONTNEED) (the binary stays cached, as it does for a user who
runs argusctl), times `replay DIR JOB -o json`, then times it again warm.
Give two binaries to compare them interleaved in the same rounds:

    python3 benches/py/replay_cold.py DIR JOB ROUNDS BIN [BIN2]

benches/replay.rs builds a suitable log (ARGUS_BENCH_KEEP=DIR keeps it).
"""
import os
import statistics
import subprocess
import sys
import time


def evict(d):
    for root, _, files in os.walk(d):
        for f in files:
            try:
                fd = os.open(os.path.join(root, f), os.O_RDONLY)
            except OSError:
                continue
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)


def run(exe, d, job):
    t = time.perf_counter()
    subprocess.run([exe, "replay", d, job, "-o", "json"], stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t) * 1e3


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    d, job, rounds, bins = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    cold = {b: [] for b in bins}
    warm = {b: [] for b in bins}
    for _ in range(rounds):
        for b in bins:
            evict(d)
            cold[b].append(run(b, d, job))
            warm[b].append(run(b, d, job))
    for b in bins:
        print("%s: cold median %.1f ms (min %.1f, max %.1f), warm median %.1f ms"
              % (b, statistics.median(cold[b]), min(cold[b]), max(cold[b]), statistics.median(warm[b])))


if __name__ == "__main__":
    main()
