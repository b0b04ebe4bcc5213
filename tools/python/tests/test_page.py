"""The operator page argusd serves at `/`, driven in a real headless
Chromium (through Playwright, with the system's /usr/bin/chromium) against a
real argusd (conftest.py). Data is seeded through the HTTP API; what the page
shows and does is checked against the API and the log.

Each view is photographed into docs/screenshots/ (ARGUS_SCREENSHOTS names
another folder). Without Chromium or the playwright package the tests skip,
saying which is missing; under CI (the CI variable set) they fail instead:
tools/test-all installs both.
"""

import json
import os
import re
import urllib.error
import urllib.request

import pytest

from conftest import REPO

CHROMIUM = os.environ.get("ARGUS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
SHOTS = os.environ.get("ARGUS_SCREENSHOTS") or os.path.join(REPO, "docs", "screenshots")
# Long enough for a refresh (5 s) and a reconnect; short enough to fail.
WAIT_MS = 15000

RATIONALE = "Write the quarterly spend report to the shared drive for review"
ROLLBACK = "Delete reports/q4.md from the shared drive"
HOSTILE = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
           ' is twenty chars or more')


def _need_browser():
    missing = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing.append("Chromium at %s (Debian package `chromium`)" % CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (`python3 -m pip install playwright`)")
    if missing:
        msg = "the operator page test needs " + " and ".join(missing) + \
              "; tools/test-all installs both"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI is set: a missing browser is a failure, not a skip)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh browser context on the daemon's page, recording what the
    page requests and every script error or CSP refusal it hits."""

    def __init__(self, browser, daemon):
        self.ctx = browser.new_context(viewport=VIEWPORT)
        self.page = self.ctx.new_page()
        self.requests = []
        self.problems = []
        self.page.on("request", lambda r: self.requests.append(
            (r.method, r.url, r.headers.get("authorization"))))
        self.page.on("pageerror", lambda e: self.problems.append("page error: %s" % e))
        self.page.on("console", self._console)
        self.url = daemon.url

    def _console(self, m):
        # A 404 or 401 answer is logged by Chromium as a console error; that
        # is the page working. A refused script or style is not.
        if m.type == "error" and ("Content Security Policy" in m.text or "Refused" in m.text):
            self.problems.append("console: %s" % m.text)

    def open(self, view="approvals"):
        self.page.goto(self.url + "/#" + view)
        return self.page

    def tab(self, view):
        self.page.click("#tab-" + view)
        from playwright.sync_api import expect
        expect(self.page.locator("#view-" + view)).to_be_visible()

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        # The toast of the last action is not part of the view.
        self.page.evaluate("document.getElementById('flash').hidden = true")
        self.page.screenshot(path=os.path.join(SHOTS, name + ".png"))

    def posts(self, suffix):
        return [r for r in self.requests if r[0] == "POST" and r[1].endswith(suffix)]

    def close(self):
        self.ctx.close()
        assert not self.problems, self.problems


@pytest.fixture
def page(browser, daemon):
    p = Page(browser, daemon)
    yield p
    p.close()


def http(daemon, method, path, body=None, token=None):
    """(status, text) of one request to the daemon."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(daemon.url + path, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ok(daemon, method, path, body=None, token=None):
    status, text = http(daemon, method, path, body, token)
    assert status == 200, "%s %s: %s %s" % (method, path, status, text)
    return text


def lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def proposal(pid, job, rationale, params, risk="medium", rollback=ROLLBACK):
    payload = {"proposal_id": pid, "action_type": "file_write", "risk": risk,
               "rationale": rationale, "mission_context": "quarterly reporting",
               "parameters": params}
    if rollback is not None:
        payload["rollback_plan"] = rollback
    return {"kind": "proposal.created", "job_id": job, "agent": "planner", "payload": payload}


def seed(daemon):
    """A job with a proposal, a hostile proposal, a dead-lettered job, spend
    against a budget, all through the HTTP API as an agent (the budget
    policy as the operator)."""
    policy = {"kind": "policy.set", "payload": {
        "policy_id": "budget-researcher", "scope": "agent:researcher", "policy_type": "budget",
        "config": {"daily_usd": 5.0, "per_run_usd": 1.0}, "enabled": True}}
    req = urllib.request.Request(daemon.url + "/v1/config", method="POST",
                                 data=(json.dumps(policy) + "\n").encode())
    req.add_header("Content-Type", "application/x-ndjson")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    entries = [
        {"kind": "job.received", "job_id": "job-page-1", "agent": "planner",
         "payload": {"job_type": "reporting", "title": "Quarterly spend report"}},
        proposal("p-page-1", "job-page-1", RATIONALE, {"path": "reports/q4.md", "bytes": 18211}),
        proposal("p-page-evil", "job-page-1", HOSTILE, {"path": "<b>bold</b>"}),
        proposal("p-page-stale", "job-page-1", "Overwrite the draft with the reviewed text",
                 {"path": "reports/draft.md"}),
        {"kind": "cost.logged", "job_id": "job-page-1", "agent": "researcher",
         "payload": {"usd": 1.25, "tokens_in": 12000, "tokens_out": 900, "model": "claude-sonnet",
                     "tool": "llm", "price_table": "2026-11"}},
        {"kind": "job.received", "job_id": "job-page-dlq", "agent": "planner",
         "payload": {"job_type": "data_sync", "title": "Nightly vendor sync"}},
        {"kind": "dlq.enqueued", "job_id": "job-page-dlq", "agent": "planner",
         "payload": {"failure_reason": "max_retries exhausted: HTTP 503", "retry_count": 3,
                     "job_type": "data_sync", "input": {"vendor": "acme"}}},
    ]
    ok(daemon, "POST", "/v1/entries", entries)


def kinds_in_log(daemon):
    return [e["kind"] for e in lines(ok(daemon, "GET", "/v1/entries"))]


def test_page_is_static_with_strict_headers(daemon):
    for path, ctype in [("/", "text/html"), ("/ui/app.js", "text/javascript"),
                        ("/ui/style.css", "text/css")]:
        with urllib.request.urlopen(daemon.url + path, timeout=30) as r:
            h = r.headers
            body = r.read().decode()
        assert h["Content-Type"].startswith(ctype), (path, h["Content-Type"])
        assert h["Cache-Control"] == "no-store"
        csp = h["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp, csp
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        if path == "/":
            assert "<script>" not in body and 'src="/ui/app.js"' in body
        if path == "/ui/app.js":
            # No HTML parser is ever handed a string.
            assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write"
                                 r"|createContextualFragment|DOMParser", body)


def test_operator_page(daemon, page):
    from playwright.sync_api import expect
    seed(daemon)
    pending = {p["proposal_id"]: p for p in lines(ok(daemon, "GET", "/v1/approvals"))}
    p = page.open("approvals")

    # The approval queue: rationale, risk, rollback plan, parameter hash.
    card = p.locator('#approvals-list article[data-id="p-page-1"]')
    expect(card).to_be_visible(timeout=WAIT_MS)
    expect(card.locator(".f-rationale")).to_have_text(RATIONALE)
    expect(card.locator(".f-risk")).to_have_text("medium")
    expect(card.locator(".f-rollback")).to_have_text(ROLLBACK)
    expect(card.locator(".f-hash")).to_have_text(pending["p-page-1"]["parameter_hash"])
    expect(p.locator("#approvals-count")).to_have_text("3")

    # Log text is text: the hostile rationale shows literally and runs nothing.
    evil = p.locator('#approvals-list article[data-id="p-page-evil"]')
    expect(evil.locator(".f-rationale")).to_have_text(HOSTILE)
    assert evil.locator("img, script, b").count() == 0
    assert p.evaluate("window.__pwned") is None
    page.shot("approvals")

    # Reject with no reason is refused by the page: no request is sent.
    card.locator("button.reject").click()
    expect(card.locator(".error")).to_contain_text("reason is required")
    assert page.posts("/reject") == []
    assert "p-page-1" in {x["proposal_id"] for x in lines(ok(daemon, "GET", "/v1/approvals"))}

    # Approve: the decision carries the hash shown; the card goes away.
    card.locator("input.reason").fill("read the diff; writes only the report")
    card.locator("button.approve").click()
    expect(card).to_have_count(0, timeout=WAIT_MS)
    assert len(page.posts("/v1/approvals/p-page-1/approve")) == 1
    approved = [e for e in lines(ok(daemon, "GET", "/v1/entries?kind=proposal.approved"))]
    assert [e["payload"]["proposal_id"] for e in approved] == ["p-page-1"]
    assert approved[0]["payload"]["parameter_hash"] == pending["p-page-1"]["parameter_hash"]
    assert approved[0]["actor"].startswith("operator:")

    # Reject with a reason.
    evil.locator("input.reason").fill("the rationale is markup, not a reason")
    evil.locator("button.reject").click()
    expect(evil).to_have_count(0, timeout=WAIT_MS)
    assert "proposal.rejected" in kinds_in_log(daemon)

    # The server's refusal is shown: the proposal changes after the page
    # read it (its list refresh held back), so the hash the page sends is stale.
    stale = p.locator('#approvals-list article[data-id="p-page-stale"]')
    expect(stale).to_be_visible()
    p.route("**/v1/approvals", lambda route: route.abort())
    ok(daemon, "POST", "/v1/entries", [proposal(
        "p-page-stale", "job-page-1", "Overwrite the draft with the reviewed text",
        {"path": "reports/final.md"})])
    stale.locator("button.approve").click()
    expect(stale.locator(".error")).to_contain_text("409 conflict", timeout=WAIT_MS)
    expect(stale.locator(".error")).to_contain_text("changed since review")
    p.unroute("**/v1/approvals")

    # The live tail shows the decision; a kind filter restarts the stream.
    page.tab("tail")
    row = p.locator('#tail-rows tr[data-kind="proposal.approved"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.locator("td.payload")).to_contain_text("p-page-1")
    expect(p.locator('#tail-rows tr[data-kind="job.received"]')).to_have_count(2)
    page.shot("tail")
    p.fill("#tail-kind", "proposal.*")
    expect(p.locator('#tail-rows tr[data-kind="job.received"]')).to_have_count(0, timeout=WAIT_MS)
    expect(row).to_be_visible(timeout=WAIT_MS)
    kinds = p.locator("#tail-rows tr").evaluate_all("rs => rs.map(r => r.dataset.kind)")
    assert kinds and all(k.startswith("proposal.") for k in kinds), kinds
    p.fill("#tail-kind", "")
    expect(p.locator('#tail-rows tr[data-kind="job.received"]')).to_have_count(2, timeout=WAIT_MS)

    # A job id in the tail opens that job's timeline, in log order.
    row.locator("button.job").click()
    expect(p.locator("#view-timeline")).to_be_visible()
    expect(p.locator("#timeline-job")).to_have_value("job-page-1")
    expect(p.locator('#timeline-rows tr[data-kind="proposal.approved"]')).to_have_count(1, timeout=WAIT_MS)
    seqs = p.locator("#timeline-rows tr").evaluate_all("rs => rs.map(r => Number(r.dataset.seq))")
    job_seqs = [e["seq"] for e in lines(ok(daemon, "GET", "/v1/entries?job=job-page-1"))]
    assert seqs == job_seqs
    expect(p.locator("#timeline-rows tr").first).to_have_attribute("data-kind", "job.received")
    page.shot("timeline")

    # The dead-letter queue: Discard needs a reason; Replay re-runs the job.
    page.tab("dlq")
    item = p.locator('#dlq-list article[data-id="job-page-dlq"]')
    expect(item).to_be_visible(timeout=WAIT_MS)
    expect(item.locator(".f-failure")).to_have_text("max_retries exhausted: HTTP 503")
    page.shot("dlq")
    item.locator("button.discard").click()
    expect(item.locator(".error")).to_contain_text("reason is required")
    assert page.posts("/discard") == []
    item.locator("button.replay").click()
    expect(item).to_have_count(0, timeout=WAIT_MS)
    expect(p.locator("#dlq-empty")).to_be_visible()
    assert "job.replayed" in kinds_in_log(daemon)

    # Spend against budget, and anomalies (or the note that the route is missing).
    page.tab("budget")
    spend = p.locator('#budget-rows tr[data-agent="researcher"]')
    expect(spend).to_be_visible(timeout=WAIT_MS)
    expect(spend).to_contain_text("1.2500")
    expect(spend).to_contain_text("5.00")
    status, _ = http(daemon, "GET", "/v1/anomalies")
    if status == 404:
        expect(p.locator("#anomalies-unavailable")).to_be_visible()
    else:
        expect(p.locator("#anomalies-unavailable")).to_be_hidden()
    page.shot("budget")

    # Control state: the incident state, and kills and lockdown (or the note).
    page.tab("control")
    expect(p.locator("#incident-state .f-state")).to_have_text("normal", timeout=WAIT_MS)
    status, _ = http(daemon, "GET", "/v1/control")
    if status == 404:
        expect(p.locator("#control-unavailable")).to_be_visible()
    else:
        expect(p.locator("#control-body")).to_be_visible(timeout=WAIT_MS)
        expect(p.locator("#control-standing .f-lockdown")).to_have_text("none")
    page.shot("control")

    # No token typed: no call carried an Authorization header.
    assert all(a is None for _, _, a in page.requests), page.requests


def test_token_typed_into_the_page(daemon, page):
    from playwright.sync_api import expect
    seed(daemon)
    # The first token closes the TCP port to callers without one.
    text = ok(daemon, "POST", "/v1/argusctl",
              {"argv": ["token", "add", ".", "--name", "oncall", "--role", "operator", "-o", "json"]})
    tok = json.loads(text)["token"]
    assert http(daemon, "GET", "/v1/approvals")[0] == 401
    p = page.open("approvals")
    # The page itself loads; its calls are refused with the server's message.
    expect(p.locator("#approvals-error")).to_contain_text("401 unauthenticated", timeout=WAIT_MS)
    expect(p.locator("#approvals-error")).to_contain_text("needs a token")
    p.fill("#token", tok)
    p.click("#token-save")
    card = p.locator('#approvals-list article[data-id="p-page-1"]')
    expect(card).to_be_visible(timeout=WAIT_MS)
    expect(p.locator("#approvals-error")).to_be_hidden()
    assert p.evaluate("sessionStorage.getItem('argus.token')") == tok
    card.locator("button.approve").click()
    expect(card).to_have_count(0, timeout=WAIT_MS)
    entries = lines(ok(daemon, "GET", "/v1/entries?kind=proposal.approved", token=tok))
    assert entries and entries[-1]["actor"] == "operator:token:oncall", entries
    # Every call after the token was typed carried it, the stream included.
    after = [r for r in page.requests if r[1].startswith(daemon.url + "/v1/")
             and "/v1/health" not in r[1]]
    carried = [a for _, _, a in after if a]
    assert carried and all(a == "Bearer " + tok for a in carried)
    assert any("/v1/entries?" in u and a for _, u, a in after), after
    # The token stays in this tab's session only: a new context has none.
    other = page.ctx.browser.new_context(viewport=VIEWPORT)
    try:
        q = other.new_page()
        q.goto(daemon.url + "/")
        assert q.evaluate("sessionStorage.getItem('argus.token')") is None
    finally:
        other.close()


def test_release_from_page(daemon, page):
    """Lockdown written through the API, released from the page with a reason."""
    from playwright.sync_api import expect
    status, text = http(daemon, "GET", "/v1/control")
    if status == 404:
        pytest.skip("GET /v1/control is not served by this argusd yet (the kill, lockdown "
                    "and release routes land separately); the page shows its not-available note")
    assert status == 200, text
    ok(daemon, "POST", "/v1/lockdown", {"reason": "page test: spend spike on researcher"})
    control = json.loads(ok(daemon, "GET", "/v1/control"))
    assert control["lockdown"] is not None, control
    p = page.open("control")
    expect(p.locator("#control-standing .f-lockdown")).to_contain_text("ACTIVE", timeout=WAIT_MS)
    expect(p.locator("#control-standing .f-lockdown")).to_contain_text("spend spike on researcher")
    expect(p.locator("#control-badge")).to_contain_text("LOCKDOWN")
    page.shot("control-lockdown")
    p.click("#release-button")
    expect(p.locator("#release-error")).to_contain_text("reason is required")
    assert page.posts("/v1/release") == []
    p.fill("#release-reason", "page test: false alarm, spend explained")
    p.click("#release-button")
    expect(p.locator("#control-standing .f-lockdown")).to_have_text("none", timeout=WAIT_MS)
    assert json.loads(ok(daemon, "GET", "/v1/control"))["lockdown"] is None
    page.tab("tail")
    expect(p.locator('#tail-rows tr[data-kind="lockdown.released"]')).to_be_visible(timeout=WAIT_MS)


# The contract of the kill, lockdown and anomaly routes being built beside
# this page: GET /v1/control, POST /v1/release, GET /v1/anomalies. Until they
# are served, this test answers them in the browser (Playwright's routing) so
# the page's rendering and the bodies it posts are held to the contract;
# test_release_from_page does the same against the real routes.
CONTROL = {
    "hard_kill": None,
    "lockdown": {"seq": 41, "reason": "<b>spend spike</b> on researcher",
                 "actor": "operator:token:oncall", "ts": "2026-12-01T10:00:00.5Z",
                 "evidence_seqs": [39, 40]},
    "soft_kills": [{"seq": 42, "reason": "looping on web_search", "scope": "job",
                    "target": "job-page-1", "actor": "operator:token:oncall",
                    "ts": "2026-12-01T10:01:00Z"},
                   {"seq": 43, "reason": "<script>window.__pwned=4</script>", "scope": "agent",
                    "target": "researcher", "actor": "operator:token:oncall",
                    "ts": "2026-12-01T10:02:00Z"}],
    "incident": {"state": "degraded", "reason": "lockdown", "since_seq": 41},
    "flags_on_disk": {"hard_kill": False, "lockdown": True},
    "unexplained_flags": ['<img src=x onerror="window.__pwned=3">'],
}
ANOMALIES = [
    {"seq": 39, "ts": "2026-12-01T09:59:00Z", "detector": "spend_rate", "severity": "critical",
     "series": "usd/agent/researcher", "reason": "spend 8.1x the 7-day baseline",
     "observed": 4.05, "baseline": 0.5, "score": 8.1, "threshold": 4.0,
     "job_id": "job-page-1", "agent": "researcher", "evidence_seqs": [5]},
    {"seq": 40, "ts": "2026-12-01T09:59:30Z", "detector": "tool_error_rate",
     "severity": "warning", "series": "errors/tool/web_search",
     "reason": '<img src=x onerror="window.__pwned=5">', "observed": 0.4, "baseline": 0.05,
     "score": 3.2, "threshold": 3.0, "job_id": None, "agent": None, "evidence_seqs": []},
]


def test_control_and_anomalies_views_follow_the_contract(daemon, page):
    from playwright.sync_api import expect
    seed(daemon)
    posted = []
    answers = []  # what the next POST /v1/release answers, else 200

    def control(route):
        route.fulfill(status=200, content_type="application/json", body=json.dumps(CONTROL))

    def anomalies(route):
        route.fulfill(status=200, content_type="application/x-ndjson",
                      body="".join(json.dumps(a) + "\n" for a in ANOMALIES))

    def release(route):
        posted.append(json.loads(route.request.post_data))
        if answers:
            status, body = answers.pop(0)
        else:
            status, body = 200, {"kind": "lockdown.released", "seq": 44}
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    p = page.page
    p.route("**/v1/control", control)
    p.route("**/v1/anomalies", anomalies)
    p.route("**/v1/release", release)
    page.open("control")
    lockdown = p.locator("#control-standing .f-lockdown")
    expect(lockdown).to_contain_text("ACTIVE since seq 41", timeout=WAIT_MS)
    expect(lockdown).to_contain_text("<b>spend spike</b> on researcher")
    expect(lockdown).to_contain_text("evidence seqs 39, 40")
    expect(p.locator("#control-standing .f-hard-kill")).to_have_text("none")
    expect(p.locator("#control-flags .f-flag-lockdown")).to_have_text("present")
    expect(p.locator("#control-flags .f-unexplained")).to_have_text(
        CONTROL["unexplained_flags"][0])
    expect(p.locator("#control-badge")).to_contain_text("LOCKDOWN")
    expect(p.locator("#control-unavailable")).to_be_hidden()
    job_kill = p.locator('#softkills-rows tr[data-seq="42"]')
    expect(job_kill.locator("button.job")).to_have_text("job-page-1")
    expect(p.locator('#softkills-rows tr[data-seq="43"]')).to_contain_text(
        "<script>window.__pwned=4</script>")

    # Release of the standing lockdown: a reason is required; the server's
    # refusal is shown; then the body is {"reason"}.
    expect(p.locator("#control-release")).to_be_visible()
    p.click("#release-button")
    expect(p.locator("#release-error")).to_contain_text("reason is required")
    assert posted == []
    answers.append((409, {"error": {"status": 409, "kind": "conflict",
                                    "message": "nothing to release: released at seq 44"}}))
    p.fill("#release-reason", "spend explained by the quarterly batch")
    p.click("#release-button")
    expect(p.locator("#release-error")).to_have_text(
        "409 conflict: nothing to release: released at seq 44")
    p.click("#release-button")
    expect(p.locator("#release-error")).to_be_hidden()
    assert posted == [{"reason": "spend explained by the quarterly batch"}] * 2

    # Release of one soft kill: {"reason", "seq"}.
    job_kill.locator("button.danger").click()
    expect(job_kill.locator(".error")).to_contain_text("reason is required")
    job_kill.locator("input.reason").fill("loop fixed in the planner")
    job_kill.locator("button.danger").click()
    expect(p.locator("#flash")).to_contain_text("released soft kill 42")
    assert posted[-1] == {"reason": "loop fixed in the planner", "seq": 42}

    # Anomalies, newest first, hostile text as text.
    page.tab("budget")
    rows = p.locator("#anomalies-rows tr")
    expect(rows).to_have_count(2, timeout=WAIT_MS)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.seq)") == ["40", "39"]
    expect(p.locator('#anomalies-rows tr[data-seq="39"] .badge')).to_have_text("critical")
    expect(p.locator('#anomalies-rows tr[data-seq="39"] button.job')).to_have_text("job-page-1")
    expect(p.locator('#anomalies-rows tr[data-seq="40"]')).to_contain_text(
        ANOMALIES[1]["reason"])
    assert p.locator("#view-control img, #view-control script, #view-control b, "
                     "#anomalies-rows img").count() == 0
    assert p.evaluate("window.__pwned") is None
