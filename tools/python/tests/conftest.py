"""Fixtures for the argus_client tests: a real argusd, never a mock.

The daemon binary comes from ARGUSD_BIN, else target/debug/argusd under the
repository root (build it with `cargo build --bin argusd`); without it the
tests are skipped with a message saying so. Each test gets a fresh log in a
temp dir and a daemon on 127.0.0.1:0 (and a Unix socket), found the way
clients find it: through DIR/argusd.json naming the child's pid.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import queue

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PYROOT = os.path.dirname(HERE)  # tools/python
REPO = os.path.dirname(os.path.dirname(PYROOT))
sys.path.insert(0, PYROOT)

READY_WITHIN = 20.0


def argusd_bin():
    path = os.environ.get("ARGUSD_BIN") or os.path.join(REPO, "target", "debug", "argusd")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip("argusd binary not found at %s: run `cargo build --bin argusd` "
                    "or set ARGUSD_BIN" % path)
    return path


class Daemon:
    """One argusd child serving a log in its own temp dir."""

    def __init__(self, limits=None):
        self.bin = argusd_bin()
        # Short: a Unix socket path must fit in 108 bytes.
        self.tmp = tempfile.mkdtemp(prefix="argus-py-")
        self.dir = os.path.join(self.tmp, "log")
        self.stderr_path = os.path.join(self.tmp, "argusd.stderr")
        self.config = None
        if limits:
            self.config = os.path.join(self.tmp, "config.json")
            with open(self.config, "w") as f:
                json.dump({"limits": limits}, f)
        self.proc = None
        self.url = None
        self.socket = None

    def start(self):
        args = [self.bin, "--dir", self.dir, "--init", "--listen", "127.0.0.1:0",
                "--socket", os.path.join(self.dir, "argusd.sock"), "--log-format", "json"]
        if self.config:
            args += ["--config", self.config]
        env = {k: v for k, v in os.environ.items()
               if k not in ("RUST_LOG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "ARGUS_TOKEN")}
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err, env=env)
        end = time.monotonic() + READY_WITHIN
        while time.monotonic() < end:
            info = self.discovery()
            if info and info.get("pid") == self.proc.pid:
                self.url, self.socket = info["url"], info.get("socket")
                return self
            if self.proc.poll() is not None:
                raise RuntimeError("argusd exited (%s) before it was ready:\n%s"
                                   % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("argusd was not ready within %ss:\n%s" % (READY_WITHIN, self.stderr()))

    def discovery(self):
        try:
            with open(os.path.join(self.dir, "argusd.json"), "rb") as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return None

    def stderr(self):
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def term(self, timeout=READY_WITHIN):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def cat(self):
        """The log as `argusctl cat -o json` prints it (argusctl is built
        beside argusd)."""
        argusctl = os.path.join(os.path.dirname(self.bin), "argusctl")
        if not os.access(argusctl, os.X_OK):
            pytest.skip("argusctl not found beside %s" % self.bin)
        out = subprocess.run([argusctl, "cat", self.dir, "-o", "json"],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        return [json.loads(l) for l in out.stdout.splitlines() if l.strip()]

    def close(self):
        self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def make_daemon():
    """A factory: make_daemon(limits=None) starts one; all stop at teardown."""
    made = []

    def make(limits=None):
        d = Daemon(limits)
        made.append(d)
        return d.start()

    yield make
    for d in made:
        d.close()


@pytest.fixture
def daemon(make_daemon):
    return make_daemon({"body_bytes_max": 1 << 20, "heartbeat_ms": 200})


@pytest.fixture
def client(daemon):
    from argus_client import Client
    return Client(daemon.url, timeout=30)


def take(gen, n, timeout=20.0):
    """The first n items of a generator that may block forever (a follow),
    read on a thread so a missing item fails the test instead of hanging it."""
    q = queue.Queue()

    def run():
        try:
            for i, item in enumerate(gen):
                q.put(("item", item))
                if i + 1 >= n:
                    break
            q.put(("end", None))
        except BaseException as e:  # handed to the test thread
            q.put(("error", e))

    threading.Thread(target=run, daemon=True).start()
    out = []
    end = time.monotonic() + timeout
    while len(out) < n:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("only %d of %d items within %ss: %r" % (len(out), n, timeout, out))
        try:
            what, v = q.get(timeout=left)
        except queue.Empty:
            continue
        if what == "error":
            raise v
        if what == "end":
            break
        out.append(v)
    return out
