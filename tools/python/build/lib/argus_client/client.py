"""The argusd client: appends, streams, follows, views and policy checks."""

import http.client
import json
import os
import socket
import threading
import time
import urllib.parse

from . import errors

NDJSON = "application/x-ndjson"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: argusd's local transport (no token needed
    when the config maps this user's uid to a principal)."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Client:
    """One argusd endpoint: `http://host:port` or `unix:/path/to/argusd.sock`."""

    def __init__(self, url, token=None, timeout=30.0):
        self.url = url
        self.token = token if token is not None else os.environ.get("ARGUS_TOKEN") or None
        self.timeout = timeout
        if url.startswith("unix:"):
            self._unix = url[len("unix:"):]
            self._host, self._port = None, None
        else:
            u = urllib.parse.urlsplit(url)
            if u.scheme != "http" or not u.hostname:
                raise ValueError("argusd URL must be http://host:port or unix:/path, got %r" % url)
            self._unix = None
            self._host, self._port = u.hostname, u.port or 80

    @classmethod
    def discover(cls, log_dir, token=None, prefer_socket=True, timeout=30.0):
        """The daemon serving `log_dir`, from the `argusd.json` it writes."""
        with open(os.path.join(log_dir, "argusd.json"), "rb") as f:
            info = json.loads(f.read(64 * 1024))
        if prefer_socket and info.get("socket"):
            return cls("unix:" + info["socket"], token=token, timeout=timeout)
        return cls(info["url"], token=token, timeout=timeout)

    # -- transport ----------------------------------------------------------

    def _conn(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        if self._unix:
            return _UnixConnection(self._unix, t)
        return http.client.HTTPConnection(self._host, self._port, timeout=t)

    def _headers(self, extra=None):
        h = {"User-Agent": "argus-client-python/0.1"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if extra:
            h.update(extra)
        return h

    def _request(self, method, path, body=None, headers=None, params=None):
        if params:
            q = urllib.parse.urlencode(
                [(k, v) for k, vs in params.items() if vs is not None
                 for v in (vs if isinstance(vs, (list, tuple)) else [vs])])
            path = path + ("&" if "?" in path else "?") + q
        conn = self._conn()
        try:
            try:
                conn.request(method, path, body=body, headers=self._headers(headers))
            except (BrokenPipeError, ConnectionResetError):
                # argusd may refuse a request from its head alone (413 by
                # Content-Length, 401, 404) and close before the body is
                # all sent; its answer is still there to read.
                pass
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise errors.ArgusError("cannot reach argusd at %s: %s" % (self.url, e)) from e
        finally:
            conn.close()
        if resp.status >= 400:
            ra = resp.getheader("Retry-After")
            raise errors.from_response(resp.status, data, retry_after=_int_or_none(ra))
        return resp, data

    def _json(self, method, path, value=None, params=None):
        body = None if value is None else _dumps(value).encode("utf-8")
        hdr = {"Content-Type": "application/json"} if body is not None else None
        _, data = self._request(method, path, body, hdr, params)
        return _parse(data)

    # -- appends -------------------------------------------------------------

    def append(self, entry):
        """Appends one entry; returns its ack `{"seq", "hash"}` once durable."""
        acks = self.append_many([entry])
        return acks[0]

    def append_many(self, entries):
        """Appends entries as one request (committed together or not at
        all); returns one ack per entry, in order."""
        entries = list(entries)
        if not entries:
            return []
        acks = self._json("POST", "/v1/entries", entries)
        if not isinstance(acks, list) or len(acks) != len(entries):
            raise errors.ArgusError("argusd answered %r for %d entries" % (acks, len(entries)))
        return acks

    def stream(self):
        """A streaming append: send entries one by one, read acks as they
        commit (`Stream.send`, `Stream.acks`). Use as a context manager."""
        return Stream(self)

    # -- reads ---------------------------------------------------------------

    def entries(self, from_seq=0, to_seq=None, job=None, kind=None, agent=None):
        """Sealed entries in seq order, as `argusctl cat -o json` prints them."""
        params = {"from": from_seq, "to": to_seq, "job": job, "kind": kind, "agent": agent}
        _, data = self._request("GET", "/v1/entries", params=params)
        return [json.loads(l) for l in data.splitlines() if l.strip()]

    def follow(self, from_seq=0, job=None, kind=None, agent=None, on_heartbeat=None,
               reconnect=True, max_backoff=5.0):
        """Yields entries from `from_seq` on, live, forever. If the
        connection drops (or the server says this follower lagged), it
        reconnects from the seq after the last one yielded: no gap, no
        duplicate. `on_heartbeat(head_seq)` is called on idle heartbeats."""
        next_seq = from_seq
        backoff = 0.1
        while True:
            params = {"from": next_seq, "follow": "true", "job": job, "kind": kind, "agent": agent}
            q = urllib.parse.urlencode([(k, v) for k, v in params.items() if v is not None])
            conn = self._conn(timeout=None)
            try:
                conn.request("GET", "/v1/entries?" + q, headers=self._headers({"Accept": NDJSON}))
                resp = conn.getresponse()
                if resp.status >= 400:
                    raise errors.from_response(resp.status, resp.read(),
                                               _int_or_none(resp.getheader("Retry-After")))
                backoff = 0.1
                while True:
                    line = resp.readline()
                    if not line:
                        break
                    if not line.strip():
                        continue
                    v = json.loads(line)
                    if "heartbeat" in v:
                        if on_heartbeat:
                            on_heartbeat(v["heartbeat"].get("head_seq"))
                        continue
                    if "error" in v:
                        # lagged or shutting_down: resume from next_seq.
                        if not reconnect:
                            raise errors.from_response(_status_of(v, 503), line)
                        break
                    next_seq = v["seq"] + 1
                    yield v
            except (OSError, http.client.HTTPException) as e:
                if not reconnect:
                    raise errors.ArgusError("follow lost argusd at %s: %s" % (self.url, e)) from e
            finally:
                conn.close()
            if not reconnect:
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)

    def view(self, name, **params):
        """A view's JSON (`/v1/<name>`): a list for list views (NDJSON), an
        object for single-object views, as the server's Content-Type says."""
        resp, data = self._request("GET", "/v1/" + name.lstrip("/"), params=params or None)
        if NDJSON in (resp.getheader("Content-Type") or ""):
            return [json.loads(l) for l in data.splitlines() if l.strip()]
        return _parse(data)

    def health(self):
        conn = self._conn()
        try:
            conn.request("GET", "/v1/health", headers=self._headers())
            resp = conn.getresponse()
            return json.loads(resp.read() or b"{}")
        finally:
            conn.close()

    # -- policy and decisions ------------------------------------------------

    def policy_check(self, agent, tool, cost=None, job=None, domain=None, cpu_seconds=None,
                     action=None):
        """Asks whether `agent` may call `tool` now: `{"allowed", "reason",
        "retry_after", ...}`. A denial is recorded in the log by argusd."""
        body = {"agent": agent, "tool": tool}
        for k, v in (("cost", cost), ("job", job), ("domain", domain),
                     ("cpu_seconds", cpu_seconds), ("action", action)):
            if v is not None:
                body[k] = v
        return self._json("POST", "/v1/policy/check", body)

    def post(self, path, body=None):
        """Any decision route of docs/API.md, e.g. `post("approvals/p-1/approve", {...})`."""
        return self._json("POST", "/v1/" + path.lstrip("/"), body if body is not None else {})


class Stream:
    """A streaming append over one HTTP/1.1 connection: chunked NDJSON up,
    acks down as they commit. `send` never waits for an ack; `acks` yields
    them in order. Closing ends the body; `close()` returns the acks not yet
    read."""

    def __init__(self, client):
        self._client = client
        self._sock = None
        self._reader = None
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self):
        c = self._client
        if c._unix:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(c._unix)
            host = "localhost"
        else:
            s = socket.create_connection((c._host, c._port), timeout=c.timeout)
            host = "%s:%d" % (c._host, c._port)
        s.settimeout(None)
        head = ["POST /v1/entries HTTP/1.1", "Host: " + host,
                "Content-Type: " + NDJSON, "Accept: " + NDJSON,
                "Transfer-Encoding: chunked"]
        for k, v in c._headers().items():
            head.append("%s: %s" % (k, v))
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        self._sock = s
        self._reader = _ChunkedResponse(s.makefile("rb"))
        return self

    def send(self, entry):
        data = (_dumps(entry) + "\n").encode("utf-8")
        with self._lock:
            try:
                self._sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            except OSError as e:
                # argusd ended the stream (a refused line, or it is
                # stopping): `acks()` still yields what was committed and
                # then raises the server's error.
                raise errors.ArgusError("argusd closed the stream: %s; read acks() for "
                                        "what was committed and why" % e) from e

    def acks(self):
        """Yields acks as they arrive; raises the server's error if a line
        was refused (the entries before it stay committed)."""
        self._reader.start()
        for line in self._reader.lines():
            v = json.loads(line)
            if "error" in v:
                raise errors.from_response(_status_of(v, 400), line)
            yield v

    def finish(self):
        """Ends the body; the server then acks what is left and closes."""
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._sock.sendall(b"0\r\n\r\n")
                except OSError:
                    # The server already ended the stream; acks() says why.
                    pass

    def close(self):
        """Ends the body and returns the acks not yet read (raising the
        server's error if the stream ended with one)."""
        self.finish()
        try:
            return list(self.acks())
        finally:
            self._sock.close()


class _ChunkedResponse:
    """Reads an HTTP/1.1 response whose body is chunked NDJSON, line by line."""

    def __init__(self, f):
        self._f = f
        self._started = False
        self._buf = b""
        self._done = False

    def start(self):
        if self._started:
            return
        self._started = True
        status = self._f.readline()
        parts = status.split(None, 2)
        if len(parts) < 2:
            raise errors.ArgusError("argusd closed the stream before answering")
        code = int(parts[1])
        headers = {}
        while True:
            h = self._f.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        self._chunked = "chunked" in headers.get("transfer-encoding", "")
        self._length = _int_or_none(headers.get("content-length"))
        if code >= 400:
            body = b"".join(self._raw())
            raise errors.from_response(code, body, _int_or_none(headers.get("retry-after")))

    def _raw(self):
        if self._chunked:
            while True:
                size_line = self._f.readline()
                if not size_line:
                    return
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self._f.readline()
                    return
                chunk = self._f.read(size)
                self._f.readline()
                yield chunk
        elif self._length is not None:
            yield self._f.read(self._length)
        else:
            while True:
                b = self._f.read(65536)
                if not b:
                    return
                yield b

    def lines(self):
        if self._done:
            return
        for chunk in self._raw():
            self._buf += chunk
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                if line.strip():
                    yield line
        if self._buf.strip():
            yield self._buf
        self._buf = b""
        self._done = True


def _parse(data):
    data = data.strip()
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return [json.loads(l) for l in data.splitlines() if l.strip()]


def _status_of(line_value, default):
    """The HTTP status an in-stream error line names."""
    st = line_value.get("error", {}).get("status") if isinstance(line_value, dict) else None
    return st if isinstance(st, int) else default


def _int_or_none(s):
    try:
        return int(s)
    except (TypeError, ValueError):
        return None
