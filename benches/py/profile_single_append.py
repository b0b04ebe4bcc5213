#!/usr/bin/env python3
"""Profiles `argusctl append` under one-at-a-time appends (issue 13, target 1).

Runs `perf record -g` on a release argusctl appending to a fresh log while
this client sends 3,000 lines, each waiting for its ack, then prints the
rate. Read the profile with:

    perf report -i /tmp/argus-single.perf --no-children --sort comm,dso,symbol

Run from the repository after `cargo build --release --bin argusctl`.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import user_path  # noqa: E402

ARGUSCTL = os.path.abspath("target/release/argusctl")
OUT = "/tmp/argus-single.perf"

log = os.path.join(tempfile.mkdtemp(prefix="argus-profile-"), "log")
subprocess.run([ARGUSCTL, "init", log], check=True, stdout=subprocess.DEVNULL)
p = subprocess.Popen(["perf", "record", "-g", "-o", OUT, "--", ARGUSCTL, "append", log],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
fd = p.stdin.fileno()
lines = [user_path.make_line(i) for i in range(3000)]
t = time.perf_counter()
for line in lines:
    os.write(fd, line)
    p.stdout.readline()
elapsed = time.perf_counter() - t
p.stdin.close()
p.wait()
print("3000 single appends in %.2f s (%.0f/s); profile in %s" % (elapsed, 3000 / elapsed, OUT))
