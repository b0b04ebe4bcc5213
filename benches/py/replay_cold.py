#!/usr/bin/env python3
"""Cold and warm `argusctl replay` of one job, as whole processes.

Evicts every file of the log directory from the page cache with
posix_fadvise(DONTNEED) (the binary stays cached, as it does for a user who
runs argusctl), times `replay DIR JOB -o json`, then times it again warm.
Give two binaries to compare them interleaved in the same rounds, or two
log directories joined by a comma (the same log indexed two ways, say) to
compare them with one binary:

    python3 benches/py/replay_cold.py DIR JOB ROUNDS BIN [BIN2]
    python3 benches/py/replay_cold.py DIR_A,DIR_B JOB ROUNDS BIN

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
    dirs, job, rounds, bins = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    runs = [(b, d) for b in bins for d in dirs]
    cold = {r: [] for r in runs}
    warm = {r: [] for r in runs}
    for _ in range(rounds):
        for b, d in runs:
            evict(d)
            cold[(b, d)].append(run(b, d, job))
            warm[(b, d)].append(run(b, d, job))
    for b, d in runs:
        print("%s on %s: cold median %.1f ms (min %.1f, max %.1f), warm median %.1f ms"
              % (b, d, statistics.median(cold[(b, d)]), min(cold[(b, d)]), max(cold[(b, d)]),
                 statistics.median(warm[(b, d)])))
    if len(runs) == 2:
        a, b = runs
        ratios = sorted(x / y for x, y in zip(cold[a], cold[b]))
        print("cold ratio %s / %s: median of per-round ratios %.2fx"
              % (a[1] if len(dirs) == 2 else a[0], b[1] if len(dirs) == 2 else b[0],
                 statistics.median(ratios)))


if __name__ == "__main__":
    main()
