#!/usr/bin/env python3
"""Argus on the path a user takes, against SQLite and a JSONL file, from one client.

A Python program produces the same ~300-byte agent events three ways, in one run:

* **Argus**: JSON lines into `argusctl append DIR` over a pipe; an event counts
  once its ack (`{"seq":..,"hash":..}`) has been read back, which Argus writes
  only after fdatasync and a covering signed seal.
* **SQLite**: WAL journal, synchronous=FULL, one INSERT per event (autocommit),
  or BEGIN IMMEDIATE + 1000 INSERTs + COMMIT for a batch.
* **JSONL**: one O_APPEND file; the line is written, then fdatasync'ed.
* **bare** (single-writer workload only): a 300-byte pwrite + fdatasync into a
  preallocated, already-written file. It is the floor any durable
  one-event-at-a-time store pays on this disk.

The systems take turns within each round, in a rotated order, because this
machine's disk changes speed from minute to minute. Each ratio is the median of
the per-round ratios, with min and max. Run it from the repository:

    tools/bench-user-path                 # builds argusctl --release, 3 rounds
    python3 benches/user_path.py --argusctl target/release/argusctl --rounds 5 --seconds 2

Output: a progress line per measurement on stderr, then a Markdown table on
stdout; `--json FILE` also writes every raw figure.
"""

import argparse
import functools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

EVENT_TARGET_BYTES = 308
# Seconds run before measuring starts (--warmup); a list so main() can set it.
WARMUP = [0.25]


def make_line(i, agent="agent-0"):
    """One tool.call_completed event as a JSON line of about 308 bytes."""
    ev = {
        "kind": "tool.call_completed",
        "job_id": "job-%06d" % (i // 50),
        "step_id": "step-%04d" % (i % 50),
        "agent": agent,
        "payload": {
            "tool": "http.get",
            "call_id": "call-%08d" % i,
            "exit_code": 0,
            "duration_ms": 17 + i % 300,
            "output_bytes": 4096 + i % 1000,
            "summary": "",
        },
    }
    line = json.dumps(ev, separators=(",", ":"))
    pad = EVENT_TARGET_BYTES - 1 - len(line)
    if pad > 0:
        ev["payload"]["summary"] = ("fetched status page; " * 20)[:pad]
    return (json.dumps(ev, separators=(",", ":")) + "\n").encode()


@functools.lru_cache(maxsize=None)
def pool(n, agent="agent-0"):
    """Lines are built once per run, outside every measurement."""
    return tuple(make_line(i, agent) for i in range(n))


@functools.lru_cache(maxsize=None)
def sql_pool(n, agent="agent-0"):
    return tuple(Sqlite.row(x) for x in pool(n, agent))


def filesystem_of(path):
    """The mount's fs type; a tmpfs figure would say nothing about durability."""
    best, fstype = "", "?"
    with open("/proc/self/mounts") as f:
        for row in f:
            parts = row.split()
            mnt, typ = parts[1], parts[2]
            if path.startswith(mnt) and len(mnt) > len(best):
                best, fstype = mnt, typ
    return fstype


def dir_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- Argus


class ArgusAppend:
    """One `argusctl append` process shared by every writer thread.

    Acks come back in the order the lines went in (the process holds the
    writer lock, so seq order is input order). A writer writes its line and
    queues its waiter under one lock; a reader thread hands each ack line to
    the oldest waiter.
    """

    def __init__(self, argusctl, root):
        self.dir = os.path.join(root, "log")
        subprocess.run(
            [argusctl, "init", "--server", "local", self.dir],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Lines go out with os.write on the raw descriptor (no Python-side
        # buffering delays them); acks come back through a buffered reader,
        # since readline on an unbuffered pipe is one read(2) per byte.
        self.proc = subprocess.Popen(
            [argusctl, "append", "--server", "local", self.dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.fd = self.proc.stdin.fileno()
        self.out = self.proc.stdout
        self.lock = threading.Lock()
        self.waiters = []
        self.acked = 0
        self.reader = None

    def start_shared(self):
        self.reader = threading.Thread(target=self._read_acks, daemon=True)
        self.reader.start()

    def _read_acks(self):
        import collections

        q = self.waiters
        for raw in self.out:
            if not raw.startswith(b'{"seq":'):
                raise RuntimeError("unexpected ack line: %r" % raw[:200])
            with self.lock:
                ev = q.popleft() if isinstance(q, collections.deque) else q.pop(0)
            ev.set()

    def write_all(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def one(self, line):
        """Single-writer path: write a line, read its ack."""
        self.write_all(line)
        ack = self.out.readline()
        if not ack.startswith(b'{"seq":'):
            raise RuntimeError("argusctl append stopped: %r" % ack[:200])

    def batch(self, lines):
        self.write_all(b"".join(lines))
        for _ in lines:
            ack = self.out.readline()
            if not ack.startswith(b'{"seq":'):
                raise RuntimeError("argusctl append stopped: %r" % ack[:200])

    def shared_one(self, line):
        ev = threading.Event()
        with self.lock:
            self.waiters.append(ev)
            self.write_all(line)
        ev.wait()

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        rest = self.proc.stdout.read()
        code = self.proc.wait()
        if code != 0:
            raise RuntimeError("argusctl append exited %d: %r" % (code, rest[-300:]))

    def data_bytes(self):
        return dir_bytes(os.path.join(self.dir, "segments"))


# ---------------------------------------------------------------- SQLite


class Sqlite:
    def __init__(self, root):
        self.path = os.path.join(root, "events.db")
        con = self.connect()
        con.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, ts INTEGER, kind TEXT, "
            "job_id TEXT, step_id TEXT, agent TEXT, payload TEXT)"
        )
        con.close()
        self.local = threading.local()

    def connect(self):
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        return con

    def con(self):
        c = getattr(self.local, "con", None)
        if c is None:
            c = self.local.con = self.connect()
        return c

    @staticmethod
    def row(line):
        ev = json.loads(line)
        return (
            time.time_ns(),
            ev["kind"],
            ev.get("job_id"),
            ev.get("step_id"),
            ev.get("agent"),
            json.dumps(ev["payload"], separators=(",", ":")),
        )

    def one(self, row):
        self.con().execute(
            "INSERT INTO events (ts,kind,job_id,step_id,agent,payload) VALUES (?,?,?,?,?,?)", row
        )

    def batch(self, rows):
        c = self.con()
        c.execute("BEGIN IMMEDIATE")
        c.executemany(
            "INSERT INTO events (ts,kind,job_id,step_id,agent,payload) VALUES (?,?,?,?,?,?)", rows
        )
        c.execute("COMMIT")

    def close(self):
        pass

    def data_bytes(self):
        return sum(
            os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s)
        )


# ---------------------------------------------------------------- JSONL


class Jsonl:
    def __init__(self, root):
        self.path = os.path.join(root, "events.jsonl")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.lock = threading.Lock()
        self.seq = 0

    def _stamp(self, line):
        # seq and ts make the line a record, as Argus's entries are.
        self.seq += 1
        return b'{"seq":%d,"ts":%d,' % (self.seq, time.time_ns()) + line[1:]

    def one(self, line):
        with self.lock:
            os.write(self.fd, self._stamp(line))
        os.fdatasync(self.fd)

    def batch(self, lines):
        with self.lock:
            os.write(self.fd, b"".join(self._stamp(x) for x in lines))
        os.fdatasync(self.fd)

    def close(self):
        os.close(self.fd)

    def data_bytes(self):
        return os.path.getsize(self.path)


class Bare:
    """300-byte pwrite + fdatasync into a preallocated, already-written file."""

    SIZE = 16 << 20

    def __init__(self, root):
        self.path = os.path.join(root, "bare.dat")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        block = b"\0" * (1 << 20)
        for _ in range(self.SIZE >> 20):
            os.write(self.fd, block)
        os.fsync(self.fd)
        self.off = 0

    def one(self, line):
        os.pwrite(self.fd, line[:300].ljust(300, b" "), self.off)
        os.fdatasync(self.fd)
        self.off = (self.off + 300) % (self.SIZE - 300)

    def close(self):
        os.close(self.fd)

    def data_bytes(self):
        return 0


# ---------------------------------------------------------------- workloads


def timed_loop(seconds, step):
    """Calls step(i) until `seconds` pass after a warm-up; returns (count, latencies)."""
    i = 0
    t_end_warm = time.perf_counter() + WARMUP[0]
    while time.perf_counter() < t_end_warm:
        step(i)
        i += 1
    lat = []
    start = time.perf_counter()
    stop = start + seconds
    now = start
    while now < stop:
        t0 = now
        step(i)
        now = time.perf_counter()
        lat.append(now - t0)
        i += 1
    return lat, now - start, i


def run_single(system, lines, rows, seconds):
    n = len(lines)
    if isinstance(system, Sqlite):
        lat, el, calls = timed_loop(seconds, lambda i: system.one(rows[i % n]))
    else:
        lat, el, calls = timed_loop(seconds, lambda i: system.one(lines[i % n]))
    return {"events": len(lat), "seconds": el, "lat": lat, "written": calls}


def run_batch(system, lines, rows, seconds, size=1000):
    n = len(lines) // size
    if isinstance(system, Sqlite):
        batches = [list(rows[k * size : (k + 1) * size]) for k in range(n)]
    else:
        batches = [list(lines[k * size : (k + 1) * size]) for k in range(n)]
    lat, el, calls = timed_loop(seconds, lambda i: system.batch(batches[i % n]))
    return {"events": len(lat) * size, "seconds": el, "lat": lat, "written": calls * size}


def run_shared(system, pools, seconds):
    """`len(pools)` writer threads, one event per call, ack per event."""
    writers = len(pools)
    counts = [0] * writers
    calls = [0] * writers
    lats = [[] for _ in range(writers)]
    start_evt = threading.Event()
    state = {"measure_from": 0.0, "stop": 0.0}
    call = system.shared_one if isinstance(system, ArgusAppend) else system.one

    def worker(w):
        p = pools[w]
        n = len(p)
        start_evt.wait()
        i = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= state["stop"]:
                break
            call(p[i % n])
            calls[w] += 1
            t1 = time.perf_counter()
            if t0 >= state["measure_from"]:
                counts[w] += 1
                lats[w].append(t1 - t0)
            i += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    now = time.perf_counter()
    state["measure_from"] = now + WARMUP[0]
    state["stop"] = now + WARMUP[0] + seconds
    start_evt.set()
    for t in threads:
        t.join()
    lat = [x for l in lats for x in l]
    return {"events": sum(counts), "seconds": seconds, "lat": lat, "written": sum(calls)}


def pct(xs, p):
    """The p-quantile; None when nothing completed (JSON has no NaN)."""
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


WORKLOADS = [
    ("1 writer, ack per event", "single", 1),
    ("1 writer, 1,000 per commit", "batch", 1),
    ("8 writers, ack per event (one shared `append` process)", "shared", 8),
    ("64 writers, ack per event (one shared `append` process)", "shared", 64),
]
SYSTEMS = ["argus", "sqlite", "jsonl"]


def measure(kind, writers, system_name, argusctl, root, seconds, keep=False):
    sub = tempfile.mkdtemp(prefix=system_name + "-", dir=root)
    keep = keep and system_name == "argus"
    try:
        if system_name == "argus":
            sys_ = ArgusAppend(argusctl, sub)
        elif system_name == "sqlite":
            sys_ = Sqlite(sub)
        elif system_name == "jsonl":
            sys_ = Jsonl(sub)
        else:
            sys_ = Bare(sub)
        if kind == "single":
            lines = pool(20000)
            rows = sql_pool(20000) if system_name == "sqlite" else None
            r = run_single(sys_, lines, rows, seconds)
        elif kind == "batch":
            lines = pool(20000)
            rows = sql_pool(20000) if system_name == "sqlite" else None
            r = run_batch(sys_, lines, rows, seconds)
        else:
            make = sql_pool if system_name == "sqlite" else pool
            pools = [make(2000, "agent-%d" % w) for w in range(writers)]
            if system_name == "argus":
                import collections

                sys_.waiters = collections.deque()
                sys_.start_shared()
            r = run_shared(sys_, pools, seconds)
        sys_.close()
        r["bytes"] = sys_.data_bytes()
        if keep:
            r["dir"] = sys_.dir
        return r
    finally:
        if not keep:
            shutil.rmtree(sub, ignore_errors=True)


def ms(seconds):
    return None if seconds is None else seconds * 1e3


def fmt_ms(x):
    return "-" if x is None else "%.3f" % x


def fmt_rate(x):
    if x >= 1e6:
        return "%.2fM/s" % (x / 1e6)
    if x >= 10e3:
        return "%.0fk/s" % (x / 1e3)
    return "{:,.0f}/s".format(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--argusctl", default="target/release/argusctl", help="argusctl binary (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; systems rotate order per round (default: %(default)s)")
    ap.add_argument("--seconds", type=float, default=2.0, help="measured seconds per system per round (default: %(default)s)")
    ap.add_argument("--dir", default=None, help="where temp logs go (default: ./target/user-path); refused on tmpfs")
    ap.add_argument("--only", default=None, help="run only workloads whose name contains this text, e.g. 1,000")
    ap.add_argument("--json", default=None, help="also write every raw figure to this file")
    ap.add_argument("--warmup", type=float, default=0.25, help="unmeasured seconds before each measurement (default: %(default)s)")
    ap.add_argument("--keep", action="store_true", help="keep each Argus log (its path is in --json as `dir`)")
    args = ap.parse_args()

    WARMUP[0] = args.warmup
    argusctl = os.path.abspath(args.argusctl)
    if not os.access(argusctl, os.X_OK):
        sys.exit("user_path.py: %s is not an executable argusctl; build it with `cargo build --release --bin argusctl`" % argusctl)
    root = os.path.abspath(args.dir or os.path.join("target", "user-path"))
    os.makedirs(root, exist_ok=True)
    fstype = filesystem_of(root)
    if fstype == "tmpfs":
        sys.exit("user_path.py: %s is on tmpfs, where fdatasync is free; pass --dir on a real disk" % root)
    print(
        "# user path: %s, %d rounds x %.1f s, fs %s, load %s, python %s, sqlite %s, event %d B"
        % (
            argusctl,
            args.rounds,
            args.seconds,
            fstype,
            open("/proc/loadavg").read().split()[0],
            sys.version.split()[0],
            sqlite3.sqlite_version,
            len(make_line(0)),
        ),
        file=sys.stderr,
    )

    results = {}
    for name, kind, writers in WORKLOADS:
        if args.only and args.only not in name:
            continue
        systems = SYSTEMS + (["bare"] if kind == "single" else [])
        per = {s: [] for s in systems}
        for rnd in range(args.rounds):
            order = systems[rnd % len(systems) :] + systems[: rnd % len(systems)]
            for s in order:
                r = measure(kind, writers, s, argusctl, root, args.seconds, args.keep)
                rate = r["events"] / r["seconds"]
                per[s].append(
                    {
                        "rate": rate,
                        "p50_ms": ms(pct(r["lat"], 0.5)),
                        "p99_ms": ms(pct(r["lat"], 0.99)),
                        "bytes": r["bytes"],
                        "events": r["events"],
                        "written": r["written"],
                        "dir": r.get("dir"),
                    }
                )
                print(
                    "  round %d %-8s %-55s %12s p50 %s ms p99 %s ms"
                    % (rnd + 1, s, name, fmt_rate(rate), fmt_ms(per[s][-1]["p50_ms"]), fmt_ms(per[s][-1]["p99_ms"])),
                    file=sys.stderr,
                )
        results[name] = per

    # Ratios: median over rounds of (argus / other) within the same round.
    def ratio(per, other, key="rate", invert=False):
        rs = []
        for a, b in zip(per["argus"], per[other]):
            if b[key] and a[key]:
                rs.append(b[key] / a[key] if invert else a[key] / b[key])
        if not rs:
            return "n/a"
        return "%.2fx (%.2f–%.2f)" % (statistics.median(rs), min(rs), max(rs))

    def med(per, s, key):
        xs = [x[key] for x in per[s] if x[key] is not None]
        return statistics.median(xs) if xs else float("nan")

    out = []
    out.append("| workload | Argus | SQLite | JSONL+fsync | Argus/SQLite | Argus/JSONL |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for name, per in results.items():
        cells = []
        for s in SYSTEMS:
            c = fmt_rate(med(per, s, "rate"))
            if name.startswith("1 writer, ack"):
                c += " (p50 %.2f ms)" % med(per, s, "p50_ms")
            cells.append(c)
        out.append(
            "| %s | %s | %s | %s | %s | %s |"
            % (name, cells[0], cells[1], cells[2], ratio(per, "sqlite"), ratio(per, "jsonl"))
        )
    batch = next((per for n, per in results.items() if "1,000" in n), None)
    if batch:
        b = {s: statistics.median(x["bytes"] / max(1, x["written"]) for x in batch[s]) for s in SYSTEMS}
        out.append(
            "| bytes on disk per event (batched run; Argus: segments) | %.0f | %.0f | %.0f | | |"
            % (b["argus"], b["sqlite"], b["jsonl"])
        )
    single = next((per for n, per in results.items() if n.startswith("1 writer, ack")), None)
    if single:
        rs = [a["p50_ms"] / b["p50_ms"] for a, b in zip(single["argus"], single["bare"])
              if a["p50_ms"] and b["p50_ms"]] or [float("nan")]
        out.append("")
        out.append(
            "Single-writer p50: Argus %.3f ms, bare 300 B pwrite+fdatasync on a preallocated file %.3f ms "
            "(%s/s); Argus p50 / bare p50 = %.2fx (%.2f–%.2f)."
            % (
                med(single, "argus", "p50_ms"),
                med(single, "bare", "p50_ms"),
                fmt_rate(med(single, "bare", "rate"))[:-2],
                statistics.median(rs),
                min(rs),
                max(rs),
            )
        )
    print("\n".join(out))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
