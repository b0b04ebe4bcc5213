"""argus_client against a real argusd (see conftest.py): appends, streams,
follows, typed errors and discovery, each checked against the log itself."""

import json
import os
import re
import subprocess
import sys
import threading

import pytest

from conftest import PYROOT, take

from argus_client import (
    ArgusError,
    BadRequest,
    Client,
    Forbidden,
    Overloaded,
    TooLarge,
    Unavailable,
)

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def job(i, agent="planner"):
    return {"kind": "job.received", "job_id": "j%d" % i, "agent": agent,
            "payload": {"job_type": "research_synthesis", "title": "t%d" % i}}


def tagged(i):
    return {"kind": "x.py", "job_id": "py", "payload": {"i": i}}


def assert_in_log(daemon, acks):
    log = {e["seq"]: e for e in daemon.cat()}
    for a in acks:
        assert a["seq"] in log, a
        assert log[a["seq"]]["hash"] == a["hash"], (a, log[a["seq"]])


def test_append_one(client, daemon):
    ack = client.append(job(1))
    assert ack["seq"] == 0
    assert HEX64.match(ack["hash"]), ack
    [e] = daemon.cat()
    assert e["kind"] == "job.received" and e["job_id"] == "j1"
    assert e["actor"].startswith("agent:uid:"), e
    assert_in_log(daemon, [ack])


def test_append_many(client, daemon):
    client.append(job(0))
    acks = client.append_many([tagged(i) for i in range(7)])
    assert [a["seq"] for a in acks] == list(range(1, 8))
    assert len({a["hash"] for a in acks}) == 7
    assert client.append_many([]) == []
    log = daemon.cat()
    assert [e["payload"]["i"] for e in log[1:]] == list(range(7))
    assert_in_log(daemon, acks)


def test_stream_acks_in_order(client, daemon):
    got = []
    with client.stream() as s:
        acks = s.acks()
        # Acked one by one while the stream stays open...
        for i in range(3):
            s.send(tagged(i))
            got.append(next(acks))
        # ...then in bulk after the body ends.
        for i in range(3, 10):
            s.send(tagged(i))
        s.finish()
        got.extend(acks)
    assert [a["seq"] for a in got] == list(range(10))
    log = daemon.cat()
    assert [e["payload"]["i"] for e in log] == list(range(10))
    assert_in_log(daemon, got)


def test_stream_stops_at_a_bad_line(client, daemon):
    s = client.stream().open()
    acks = s.acks()
    s.send(tagged(0))
    s.send(tagged(1))
    assert [next(acks)["seq"], next(acks)["seq"]] == [0, 1]
    s.send({"kind": "job.received", "job_id": "j", "payload": {"title": "no job_type"}})
    with pytest.raises(BadRequest) as e:
        next(acks)
    assert e.value.details.get("line") == 3, e.value.details
    assert "job_type" in e.value.message
    s.close()
    assert len(daemon.cat()) == 2


def test_entries_reads_back_with_filters(client):
    client.append_many([job(1), tagged(0), job(2)])
    all_ = client.entries()
    assert [e["seq"] for e in all_] == [0, 1, 2]
    assert [e["seq"] for e in client.entries(kind="job.received")] == [0, 2]
    assert [e["seq"] for e in client.entries(from_seq=1, to_seq=1)] == [1]


def test_follow_resumes_without_gap_or_duplicate(client):
    client.append_many([tagged(i) for i in range(5)])
    first = take(client.follow(from_seq=0), 3)
    assert [e["seq"] for e in first] == [0, 1, 2]
    # Resume from the last seq + 1 while more arrive live.
    gen = client.follow(from_seq=first[-1]["seq"] + 1)
    appender = threading.Timer(0.3, lambda: client.append_many([tagged(i) for i in range(5, 9)]))
    appender.start()
    rest = take(gen, 6)
    appender.join()
    seqs = [e["seq"] for e in first + rest]
    assert seqs == list(range(9))
    assert [e["payload"]["i"] for e in first + rest] == list(range(9))


def test_follow_heartbeats_when_idle(client):
    client.append(tagged(0))
    beats = []
    gen = client.follow(from_seq=0, on_heartbeat=beats.append)
    [e] = take(gen, 1)
    assert e["seq"] == 0

    def idle():
        for _ in gen:
            break

    t = threading.Thread(target=idle, daemon=True)
    t.start()
    t.join(1.0)  # heartbeat_ms is 200 in the fixture
    assert beats and beats[0] == 0, beats


def test_follow_without_reconnect_raises_on_shutdown(daemon, client):
    client.append(tagged(0))
    gen = client.follow(from_seq=0, reconnect=False)
    assert take(gen, 1)[0]["seq"] == 0
    stopper = threading.Timer(0.3, daemon.term)
    stopper.start()
    with pytest.raises(Unavailable) as e:
        take(gen, 1)
    stopper.join()
    assert e.value.kind == "shutting_down", e.value.details
    assert "from=1" in e.value.message
    assert not isinstance(e.value, Overloaded)


def test_bad_request_names_the_field(client, daemon):
    bad = job(1)
    bad["payload"]["job_type"] = 5
    with pytest.raises(BadRequest) as e:
        client.append(bad)
    assert e.value.status == 400
    assert e.value.kind == "invalid_entry"
    assert e.value.details.get("field") == "payload.job_type"
    assert "payload.job_type" in e.value.message
    assert "payload.job_type" in str(e.value)
    with pytest.raises(BadRequest) as e:
        client.append_many([job(1), job(2), bad])
    assert e.value.details.get("line") == 3
    assert daemon.cat() == []


def test_forbidden_decision_kind(client, daemon):
    with pytest.raises(Forbidden) as e:
        client.append({"kind": "proposal.approved", "job_id": "j1",
                       "payload": {"proposal_id": "p-1"}})
    assert e.value.status == 403 and e.value.kind == "forbidden"
    assert "proposal.approved" in e.value.message
    assert daemon.cat() == []


def test_too_large(client, daemon):
    # The fixture's body limit is 1 MiB.
    big = [dict(tagged(i), payload={"i": i, "pad": "x" * 4096}) for i in range(400)]
    with pytest.raises(TooLarge) as e:
        client.append_many(big)
    assert e.value.status == 413 and e.value.kind == "too_large"
    assert "body_bytes_max" in e.value.message
    assert daemon.cat() == []


def test_overloaded_with_retry_after(make_daemon):
    d = make_daemon({"queue_requests_max": 1, "overload_wait_ms": 0})
    c = Client(d.url)
    refused, acked = [], []
    lock = threading.Lock()

    def produce(p):
        for i in range(15):
            try:
                a = c.append_many([tagged(p * 100 + i * 4 + k) for k in range(4)])
                with lock:
                    acked.extend(a)
            except Overloaded as e:
                with lock:
                    refused.append(e)

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert refused, "10 producers at once with one queue slot: none was refused"
    for e in refused:
        assert isinstance(e, Unavailable) and e.status == 503 and e.kind == "overloaded"
        assert e.retry_after is not None and e.retry_after >= 1
    log = d.cat()
    assert len(log) == len(acked)
    assert_in_log(d, acked)


def test_unreachable_is_an_argus_error(daemon):
    c = Client(daemon.url, timeout=5)
    daemon.term()
    with pytest.raises(ArgusError) as e:
        c.append(tagged(0))
    assert e.value.status == 0


def test_discover(daemon):
    via_socket = Client.discover(daemon.dir)
    assert via_socket.url == "unix:" + daemon.socket
    a = via_socket.append(tagged(0))
    via_url = Client.discover(daemon.dir, prefer_socket=False)
    assert via_url.url == daemon.url
    b = via_url.append(tagged(1))
    assert [a["seq"], b["seq"]] == [0, 1]
    # A stream and a follow over the socket too.
    with via_socket.stream() as s:
        s.send(tagged(2))
        s.finish()
        assert [x["seq"] for x in s.acks()] == [2]
    assert [e["seq"] for e in take(via_socket.follow(from_seq=1), 2)] == [1, 2]
    assert via_socket.health()["entries"] == 3
    assert_in_log(daemon, [a, b])


def test_example_agent(daemon):
    out = subprocess.run(
        [sys.executable, os.path.join(PYROOT, "examples", "agent.py"), "--dir", daemon.dir,
         "--job", "job-py-example"],
        capture_output=True, timeout=60, env={k: v for k, v in os.environ.items()
                                              if k != "ARGUS_TOKEN"})
    events = [json.loads(l) for l in out.stdout.splitlines() if l.strip()]
    acks = [e for e in events if e.get("event") == "ack"]
    assert [a["seq"] for a in acks] == [0, 1, 2], (out.stdout, out.stderr)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert events[-1]["event"] == "done", events
    log = daemon.cat()
    assert log[-1]["kind"] == "job.completed"
    assert all(e["job_id"] == "job-py-example" for e in log)


def test_tokens(daemon, monkeypatch):
    from argus_client import Unauthenticated

    # Issued through the daemon (argusctl reaches it on its Unix socket as
    # the daemon's own user); the daemon reloads its tokens at once.
    argusctl = os.path.join(os.path.dirname(daemon.bin), "argusctl")
    out = subprocess.run([argusctl, "token", "add", daemon.dir, "--name", "py-agent",
                          "--role", "agent", "-o", "json"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    token = json.loads(out.stdout)["token"]
    monkeypatch.delenv("ARGUS_TOKEN", raising=False)
    with pytest.raises(Unauthenticated) as e:
        Client(daemon.url).append(tagged(0))
    assert e.value.status == 401 and e.value.kind == "unauthenticated"
    bad = "argus_" + "x" * 43
    with pytest.raises(Unauthenticated) as e:
        Client(daemon.url, token=bad).append(tagged(0))
    assert bad not in str(e.value)
    with pytest.raises(Forbidden) as e:
        Client(daemon.url, token=token).append(dict(tagged(0), agent="someone-else"))
    assert e.value.details.get("field") == "agent"
    ack = Client(daemon.url, token=token).append(tagged(1))
    monkeypatch.setenv("ARGUS_TOKEN", token)
    acks = Client(daemon.url).append_many([tagged(2)])
    with Client(daemon.url).stream() as s:
        s.send(tagged(3))
        s.finish()
        acks += list(s.acks())
    follow = take(Client(daemon.url).follow(from_seq=ack["seq"]), 3)
    assert [e["seq"] for e in follow] == [ack["seq"]] + [a["seq"] for a in acks]
    log = {e["seq"]: e for e in daemon.cat()}
    for a in [ack] + acks:
        assert log[a["seq"]]["actor"] == "agent:token:py-agent"
        assert log[a["seq"]]["agent"] == "py-agent"
    assert token not in daemon.stderr()
