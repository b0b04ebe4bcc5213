#!/usr/bin/env python3
"""A small research agent that reports to argusd as it works.

    python3 tools/python/examples/agent.py --dir ./audit            # finds argusd via DIR/argusd.json
    python3 tools/python/examples/agent.py --url http://127.0.0.1:7117 --token "$ARGUS_TOKEN"

It streams one job's session: received, dispatched, planning, tool calls
(each asked of the policy service first, and skipped when denied), their
costs, and a proposal that waits for an operator's approval. It prints what
it did as JSON lines, so a test or a human can follow it.
"""

import argparse
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from argus_client import ArgusError, Client  # noqa: E402

TOOLS = [
    ("web_search", {"q": "vector store recall benchmarks 2026"}, 0.004),
    ("fetch_url", {"url": "https://example.org/benchmarks.html"}, 0.001),
    ("llm_call", {"model": "claude-haiku", "prompt_tokens": 1800}, 0.012),
]


def say(**kv):
    print(json.dumps(kv, sort_keys=True), flush=True)


def run(client, agent, job, steps, propose):
    with client.stream() as s:
        s.send({"kind": "job.received", "job_id": job, "agent": agent,
                "payload": {"job_type": "research_synthesis", "input": {"topic": "vector stores"}}})
        s.send({"kind": "job.dispatched", "job_id": job, "agent": agent,
                "payload": {"worker_id": "w-py-1"}})
        s.send({"kind": "job.planning", "job_id": job, "agent": agent,
                "payload": {"steps": steps}})
        s.finish()
        for ack in s.acks():
            say(event="ack", seq=ack["seq"])
    spent = 0.0
    for i, (tool, params, cost) in enumerate(TOOLS[:steps]):
        step = "s%d" % (i + 1)
        verdict = client.policy_check(agent=agent, tool=tool, cost=cost, job=job)
        if not verdict.get("allowed"):
            say(event="denied", step=step, tool=tool, reason=verdict.get("reason"),
                retry_after=verdict.get("retry_after"))
            continue
        started = client.append({"kind": "tool.call_started", "job_id": job, "step_id": step,
                                 "agent": agent, "payload": {"tool": tool, "args": params}})
        t0 = time.monotonic()
        time.sleep(0.01)  # the tool runs
        ms = int((time.monotonic() - t0) * 1000)
        client.append_many([
            {"kind": "tool.call_completed", "job_id": job, "step_id": step, "agent": agent,
             "parent": started["seq"],
             "payload": {"tool": tool, "exit_code": 0, "duration_ms": ms}},
            {"kind": "cost.logged", "job_id": job, "step_id": step, "agent": agent,
             "payload": {"usd": cost, "tokens_in": 900, "tokens_out": 300,
                         "model": "claude-haiku", "price_table": "2026-11", "tool": tool}},
        ])
        spent += cost
        say(event="tool", step=step, tool=tool, seq=started["seq"])
    if propose:
        pid = "py-" + job[-8:]
        ack = client.append({"kind": "proposal.created", "job_id": job, "agent": agent, "payload": {
            "proposal_id": pid, "action_type": "file_write", "risk": "medium",
            "rationale": "Write the benchmark summary to the shared research folder",
            "mission_context": "Choose a vector store for the retrieval index",
            "rollback_plan": "Delete the written summary file",
            "parameters": {"path": "research/vector-stores.md"}}})
        say(event="proposal", proposal_id=pid, seq=ack["seq"])
    client.append({"kind": "job.completed", "job_id": job, "agent": agent,
                   "payload": {"status": "succeeded", "cost_usd": round(spent, 6)}})
    say(event="done", job=job, spent=round(spent, 6))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="log directory served by argusd (reads DIR/argusd.json)")
    ap.add_argument("--url", help="argusd URL (http://host:port or unix:/path)")
    ap.add_argument("--token", default=os.environ.get("ARGUS_TOKEN"))
    ap.add_argument("--agent", default="researcher")
    ap.add_argument("--job", default=None)
    ap.add_argument("--steps", type=int, default=3, choices=range(1, len(TOOLS) + 1))
    ap.add_argument("--no-proposal", action="store_true")
    a = ap.parse_args(argv)
    if not (a.dir or a.url):
        ap.error("give --dir or --url")
    client = Client(a.url, token=a.token) if a.url else Client.discover(a.dir, token=a.token)
    job = a.job or "job-" + uuid.uuid4().hex[:12]
    try:
        run(client, a.agent, job, a.steps, not a.no_proposal)
    except ArgusError as e:
        print("agent: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
