"""One producer for tests/it/daemon: appends n tagged entries through
tools/python's argus_client (singles, then batches, then a stream whose
first half is acked one entry at a time) and prints every ack it got as a
JSON line {"p", "i", "seq", "hash"}.

    PYTHONPATH=tools/python python3 py_producer.py URL P N
"""
import json
import sys

from argus_client import Client


def main():
    url, p, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    c = Client(url, timeout=30)

    def entry(i):
        return {"kind": "x.e2e", "job_id": "p%d" % p, "agent": "producer-%d" % p,
                "payload": {"p": p, "i": i}}

    def out(ack, i):
        print(json.dumps({"p": p, "i": i, "seq": ack["seq"], "hash": ack["hash"]}), flush=True)

    third = n // 3
    i = 0
    while i < third:
        out(c.append(entry(i)), i)
        i += 1
    while i < 2 * third:
        batch = list(range(i, min(i + 5, 2 * third)))
        for j, a in zip(batch, c.append_many([entry(j) for j in batch])):
            out(a, j)
        i = batch[-1] + 1
    rest = list(range(i, n))
    half = len(rest) // 2
    with c.stream() as s:
        acks = s.acks()
        for j in rest[:half]:
            s.send(entry(j))
            out(next(acks), j)
        for j in rest[half:]:
            s.send(entry(j))
        s.finish()
        for j in rest[half:]:
            out(next(acks), j)
        leftover = list(acks)
        if leftover:
            raise SystemExit("more acks than entries: %r" % leftover)


if __name__ == "__main__":
    main()
