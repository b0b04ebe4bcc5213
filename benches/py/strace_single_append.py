#!/usr/bin/env python3
"""Counts the syscalls of `argusctl append` per lone entry (issue 13, target 1).

Runs `argusctl append` under `strace -f` on a fresh log while this client
sends N lines one at a time, each waiting for its ack. OUT ending in `.c`
gets a `strace -c` summary (divide by N), anything else an `strace -tt` trace.

    python3 benches/py/strace_single_append.py target/release/argusctl 1000 /tmp/append.c
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import user_path  # noqa: E402

exe, n, out = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
d = tempfile.mkdtemp(prefix="argus-strace-")
log = os.path.join(d, "log")
subprocess.run([exe, "init", log], check=True, stdout=subprocess.DEVNULL)
mode = ["-c"] if out.endswith(".c") else ["-tt"]
p = subprocess.Popen(["strace", "-f"] + mode + ["-o", out, exe, "append", log],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
fd = p.stdin.fileno()
for i in range(n):
    os.write(fd, user_path.make_line(i))
    p.stdout.readline()
p.stdin.close()
p.wait()
shutil.rmtree(d)
