// The argusd operator page. Plain DOM, no framework, no build step.
//
// Everything shown here comes from the log, and the log is written by
// agents: it is hostile text. It reaches the page only through
// textContent, text nodes and attribute values set with setAttribute on
// attributes that carry no URL or script; never through innerHTML or any
// other HTML parser. The Content-Security-Policy argusd sends with this
// file forbids inline script, so a mistake here still could not run one.
//
// Every API call carries `Authorization: Bearer <token>` when the operator
// has typed a token (kept in sessionStorage, so it dies with the tab);
// without one, the call goes without the header, which argusd on loopback
// without a tokens file treats as its local operator.
"use strict";

(function () {
  const TOKEN_KEY = "argus.token";
  const REFRESH_MS = 5000;
  const TAIL_MAX_ROWS = 500;
  const TIMELINE_MAX_ROWS = 2000;
  const LIST_MAX_ROWS = 500;
  const VIEWS = ["approvals", "control", "dlq", "tail", "timeline", "budget"];

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- DOM

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = String(v);
        else if (k === "onclick") e.addEventListener("click", v);
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    add(e, children);
    return e;
  }

  function add(parent, c) {
    if (c === undefined || c === null || c === false) return;
    if (Array.isArray(c)) c.forEach((x) => add(parent, x));
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }

  function showError(node, message) {
    node.textContent = message;
    node.hidden = false;
  }

  function hideError(node) {
    node.textContent = "";
    node.hidden = true;
  }

  let flashTimer = null;
  function flash(message, isError) {
    const f = $("flash");
    f.textContent = message;
    f.className = isError ? "error" : "ok";
    f.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => {
      f.hidden = true;
    }, isError ? 10000 : 4000);
  }

  /**
   * Makes `container`'s children the nodes for `items`, in order, reusing
   * the node of an item whose key and signature are unchanged, so a row
   * the operator is typing a reason into is not rebuilt under them.
   */
  function renderKeyed(container, items, key, build) {
    const old = new Map();
    for (const c of Array.from(container.children)) old.set(c.dataset.key, c);
    let prev = null;
    for (const it of items) {
      const k = String(key(it));
      const sig = JSON.stringify(it);
      let node = old.get(k);
      old.delete(k);
      if (!node || node.dataset.sig !== sig) {
        if (node) node.remove();
        node = build(it);
        node.dataset.key = k;
        node.dataset.sig = sig;
      }
      const want = prev ? prev.nextSibling : container.firstChild;
      if (node !== want) container.insertBefore(node, want);
      prev = node;
    }
    for (const n of old.values()) n.remove();
  }

  // ----------------------------------------------------------- formatting

  function clip(s, n) {
    s = String(s);
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  function shortTime(ts) {
    if (typeof ts !== "string") return "";
    return ts.replace("T", " ").replace(/Z$/, "").slice(0, 23);
  }

  function nsTime(ns) {
    if (typeof ns !== "number" || !isFinite(ns)) return "";
    try {
      return new Date(Math.floor(ns / 1e6)).toISOString();
    } catch (_) {
      return "";
    }
  }

  function text(v) {
    if (v === undefined || v === null) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return v === null || v === undefined ? "—" : text(v);
    return digits === undefined ? String(v) : v.toFixed(digits);
  }

  /** A one-line summary of a payload: `key=value` pairs, clipped. */
  function summarize(p) {
    if (p === undefined || p === null) return "";
    if (typeof p !== "object" || Array.isArray(p)) return clip(text(p), 200);
    const parts = [];
    let len = 0;
    for (const [k, v] of Object.entries(p)) {
      const s = k + "=" + clip(text(v), 60);
      parts.push(s);
      len += s.length + 2;
      if (len > 200) break;
    }
    return clip(parts.join("  "), 200);
  }

  /** A CSS class fragment from log text: letters, digits, dash only. */
  function cls(s) {
    return String(s || "").toLowerCase().replace(/[^a-z0-9-]/g, "").slice(0, 32);
  }

  function badge(value, kind) {
    return el("span", { class: "badge " + kind + "-" + cls(value), text: text(value) || "—" });
  }

  function jobLink(job) {
    if (job === undefined || job === null || job === "") return el("span", { class: "muted", text: "—" });
    return el("button", {
      type: "button",
      class: "link job",
      title: "open this job's timeline",
      text: String(job),
      onclick: () => openTimeline(String(job)),
    });
  }

  function field(label, value, name) {
    return [
      el("dt", { text: label }),
      el("dd", { class: "f-" + name }, value instanceof Node ? value : text(value)),
    ];
  }

  /** A field only when it has a value. */
  function fieldIf(label, value, name) {
    return value === undefined || value === null || value === "" ? [] : field(label, value, name);
  }

  // ------------------------------------------------------------------ API

  function token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (_) {
      return "";
    }
  }

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    const t = token();
    if (t) h["Authorization"] = "Bearer " + t;
    return h;
  }

  class ApiError extends Error {
    constructor(status, kind, message) {
      super(message);
      this.status = status;
      this.kind = kind;
    }
    describe() {
      return (this.status ? this.status + " " : "") + this.kind + ": " + this.message;
    }
  }

  /** The error argusd answered (`{"error": {"kind", "message", ...}}`). */
  function errorOf(status, body) {
    let kind = "http_error";
    let message = (body || "").trim() || "HTTP " + status;
    try {
      const v = JSON.parse(body);
      if (v && typeof v === "object" && v.error && typeof v.error === "object") {
        if (typeof v.error.kind === "string") kind = v.error.kind;
        if (typeof v.error.message === "string") message = v.error.message;
      }
    } catch (_) {
      message = clip(message, 500);
    }
    return new ApiError(status, kind, message);
  }

  function describe(e) {
    return e instanceof ApiError ? e.describe() : String((e && e.message) || e);
  }

  async function api(method, path, body) {
    const init = { method, headers: authHeaders(), cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "unreachable", "argusd did not answer (" + describe(e) + ")");
    }
    const t = await r.text();
    if (!r.ok) {
      const err = errorOf(r.status, t);
      if (r.status === 401) noteUnauthenticated(err);
      throw err;
    }
    return t;
  }

  function lines(t) {
    const out = [];
    for (const l of t.split("\n")) {
      if (l.trim() === "") continue;
      out.push(JSON.parse(l));
    }
    return out;
  }

  const getJson = async (path) => JSON.parse(await api("GET", path));
  const getLines = async (path) => lines(await api("GET", path));
  const enc = encodeURIComponent;

  function noteUnauthenticated(err) {
    $("token-state").textContent = token() ? "token refused" : "a token is needed";
    $("token-state").className = "warn";
    flash(err.describe(), true);
  }

  // --------------------------------------------------------------- tabs

  let current = "approvals";

  function show(view) {
    if (!VIEWS.includes(view)) view = "approvals";
    current = view;
    for (const v of VIEWS) {
      $("view-" + v).hidden = v !== view;
      const tab = $("tab-" + v);
      tab.classList.toggle("active", v === view);
      tab.setAttribute("aria-selected", v === view ? "true" : "false");
    }
    if (location.hash !== "#" + view) history.replaceState(null, "", "#" + view);
  }

  // ------------------------------------------------------ shared actions

  const drafts = new Map();

  function reasonInput(draftKey, placeholder) {
    const input = el("input", {
      type: "text",
      class: "reason",
      placeholder: placeholder,
      maxlength: "2000",
      "aria-label": "reason",
    });
    input.value = drafts.get(draftKey) || "";
    input.addEventListener("input", () => drafts.set(draftKey, input.value));
    return input;
  }

  /** Runs one decision: buttons off, the server's error shown on failure. */
  async function act(buttons, errNode, call, okMessage, draftKey) {
    buttons.forEach((b) => (b.disabled = true));
    hideError(errNode);
    try {
      await call();
      if (draftKey) drafts.delete(draftKey);
      flash(okMessage, false);
      return true;
    } catch (e) {
      showError(errNode, describe(e));
      return false;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
      refreshAll();
    }
  }

  // ---------------------------------------------------------- approvals

  function approvalCard(p) {
    const id = text(p.proposal_id);
    const draft = "approval:" + id;
    const reason = reasonInput(draft, "reason (required to reject)");
    const err = el("div", { class: "error", hidden: true });
    const approve = el("button", { type: "button", class: "approve", text: "Approve" });
    const reject = el("button", { type: "button", class: "reject danger", text: "Reject" });
    const buttons = [approve, reject];
    approve.addEventListener("click", () => {
      const body = { hash: p.parameter_hash };
      const r = reason.value.trim();
      if (r) body.reason = r;
      act(buttons, err, () => api("POST", "/v1/approvals/" + enc(id) + "/approve", body), "approved " + id, draft);
    });
    reject.addEventListener("click", () => {
      const r = reason.value.trim();
      if (!r) {
        showError(err, "A reason is required to reject a proposal.");
        reason.focus();
        return;
      }
      act(buttons, err, () => api("POST", "/v1/approvals/" + enc(id) + "/reject", { reason: r }), "rejected " + id, draft);
    });
    return el(
      "article",
      { class: "card approval", "data-id": id },
      el(
        "header",
        null,
        el("span", { class: "id", text: id }),
        badge(p.risk, "risk"),
        el("span", { class: "muted", text: text(p.action_type) }),
        el("span", { class: "muted", text: "by " + text(p.agent) }),
        el("span", { class: "muted" }, "job ", jobLink(p.job_id)),
        el("span", { class: "muted", text: "revision " + text(p.revision) })
      ),
      el(
        "dl",
        { class: "kv" },
        field("Rationale", p.rationale, "rationale"),
        field("Risk", p.risk, "risk"),
        field("Rollback plan", p.rollback_plan === null || p.rollback_plan === undefined ? "(none given)" : p.rollback_plan, "rollback"),
        field("Mission context", p.mission_context, "mission"),
        field("Parameter hash", p.parameter_hash, "hash"),
        field("Parameters", el("pre", { text: JSON.stringify(p.parameters, null, 2) }), "parameters"),
        field("Created", shortTime(p.created) + "  (seq " + text(p.created_seq) + ")", "created"),
        field("Deadline", shortTime(p.deadline), "deadline")
      ),
      el("div", { class: "actions" }, reason, approve, reject),
      err
    );
  }

  async function refreshApprovals() {
    try {
      const items = await getLines("/v1/approvals");
      hideError($("approvals-error"));
      renderKeyed($("approvals-list"), items.slice(0, LIST_MAX_ROWS), (p) => p.proposal_id, approvalCard);
      $("approvals-empty").hidden = items.length > 0;
      $("approvals-count").textContent = items.length ? String(items.length) : "";
    } catch (e) {
      showError($("approvals-error"), describe(e));
    }
  }

  // ------------------------------------------------------------ control

  function standing(v) {
    if (v === null || v === undefined) return el("span", { class: "ok-text", text: "none" });
    return el(
      "span",
      { class: "alert-text" },
      "ACTIVE since seq " + text(v.seq) + " (" + shortTime(v.ts) + ") by " + text(v.actor) + ": ",
      el("q", { text: text(v.reason) }),
      Array.isArray(v.evidence_seqs) && v.evidence_seqs.length ? " evidence seqs " + v.evidence_seqs.map(text).join(", ") : ""
    );
  }

  function softKillRow(k) {
    const draft = "softkill:" + text(k.seq);
    const reason = reasonInput(draft, "reason (required)");
    const err = el("div", { class: "error", hidden: true });
    const release = el("button", { type: "button", class: "danger", text: "Release" });
    release.addEventListener("click", () => {
      const r = reason.value.trim();
      if (!r) {
        showError(err, "A reason is required to release a kill.");
        reason.focus();
        return;
      }
      act([release], err, () => api("POST", "/v1/release", { reason: r, seq: k.seq }), "released soft kill " + text(k.seq), draft);
    });
    return el(
      "tr",
      { "data-seq": text(k.seq) },
      el("td", { text: text(k.seq) }),
      el("td", { text: text(k.scope) }),
      el("td", null, k.scope === "job" ? jobLink(k.target) : text(k.target)),
      el("td", { text: text(k.reason) }),
      el("td", { text: text(k.actor) }),
      el("td", { class: "time", text: shortTime(k.ts), title: text(k.ts) }),
      el("td", { class: "actions" }, reason, release, err)
    );
  }

  let controlState = null;

  async function refreshControl() {
    try {
      const inc = await getJson("/v1/incident");
      hideError($("incident-error"));
      const dl = $("incident-state");
      dl.replaceChildren(
        ...field("State", badge(inc.state, "state"), "state"),
        ...fieldIf("Reason", inc.reason, "reason"),
        ...fieldIf("Since", inc.since ? shortTime(inc.since) + " (seq " + text(inc.since_seq) + ")" : "", "since"),
        ...fieldIf("Actor", inc.actor, "actor"),
        ...fieldIf("Trigger", inc.trigger, "trigger"),
        ...fieldIf("Effects", inc.effects, "effects")
      );
      controlState = Object.assign({}, controlState, { incident: inc.state });
    } catch (e) {
      showError($("incident-error"), describe(e));
    }
    try {
      const c = await getJson("/v1/control");
      hideError($("control-error"));
      $("control-unavailable").hidden = true;
      $("control-body").hidden = false;
      $("control-standing").replaceChildren(
        ...field("Hard kill", standing(c.hard_kill), "hard-kill"),
        ...field("Lockdown", standing(c.lockdown), "lockdown")
      );
      const disk = c.flags_on_disk || {};
      const unexplained = Array.isArray(c.unexplained_flags) ? c.unexplained_flags : [];
      $("control-flags").replaceChildren(
        ...field("hard_kill flag", disk.hard_kill ? "present" : "absent", "flag-hard-kill"),
        ...field("lockdown flag", disk.lockdown ? "present" : "absent", "flag-lockdown"),
        ...field(
          "Unexplained flags",
          unexplained.length ? el("span", { class: "alert-text", text: unexplained.map(text).join(", ") }) : "none",
          "unexplained"
        )
      );
      const active = !!(c.hard_kill || c.lockdown || disk.hard_kill || disk.lockdown);
      $("control-release").hidden = !active;
      const soft = Array.isArray(c.soft_kills) ? c.soft_kills : [];
      renderKeyed($("softkills-rows"), soft, (k) => k.seq, softKillRow);
      $("softkills-empty").hidden = soft.length > 0;
      $("softkills").hidden = soft.length === 0;
      controlState = Object.assign({}, controlState, {
        hard_kill: !!c.hard_kill,
        lockdown: !!c.lockdown,
        soft: soft.length,
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.kind === "not_found") {
        $("control-unavailable").hidden = false;
        $("control-body").hidden = true;
        hideError($("control-error"));
      } else {
        showError($("control-error"), describe(e));
      }
    }
    const s = controlState || {};
    const b = $("control-badge");
    const words = [];
    if (s.hard_kill) words.push("KILL");
    if (s.lockdown) words.push("LOCKDOWN");
    if (s.incident && s.incident !== "normal") words.push(String(s.incident).toUpperCase());
    b.textContent = words.join(" ");
    b.classList.toggle("alert", words.length > 0);
  }

  function releaseStanding() {
    const input = $("release-reason");
    const err = $("release-error");
    const r = input.value.trim();
    if (!r) {
      showError(err, "A reason is required to release.");
      input.focus();
      return;
    }
    act([$("release-button")], err, () => api("POST", "/v1/release", { reason: r }), "released hard kill and lockdown").then(
      (ok) => {
        if (ok) input.value = "";
      }
    );
  }

  // ---------------------------------------------------------------- DLQ

  function dlqCard(i) {
    const job = text(i.job_id);
    const draft = "dlq:" + job;
    const reason = reasonInput(draft, "reason (required to discard)");
    const err = el("div", { class: "error", hidden: true });
    const replay = el("button", { type: "button", class: "replay", text: "Replay" });
    const discard = el("button", { type: "button", class: "discard danger", text: "Discard" });
    const buttons = [replay, discard];
    replay.addEventListener("click", () => {
      act(buttons, err, () => api("POST", "/v1/dlq/" + enc(job) + "/replay", {}), "replayed " + job, draft);
    });
    discard.addEventListener("click", () => {
      const r = reason.value.trim();
      if (!r) {
        showError(err, "A reason is required to discard.");
        reason.focus();
        return;
      }
      act(buttons, err, () => api("POST", "/v1/dlq/" + enc(job) + "/discard", { reason: r }), "discarded " + job, draft);
    });
    return el(
      "article",
      { class: "card dlq", "data-id": job },
      el(
        "header",
        null,
        jobLink(job),
        badge(i.status, "status"),
        el("span", { class: "muted", text: text(i.job_type) }),
        el("span", { class: "muted", text: "replays " + text(i.replays) })
      ),
      el(
        "dl",
        { class: "kv" },
        field("Failure", i.failure_reason, "failure"),
        fieldIf("Last error", i.last_error, "last-error"),
        field("Retries", text(i.retry_count) + (i.max_retries === null || i.max_retries === undefined ? "" : " of " + text(i.max_retries)), "retries"),
        field("Enqueued", nsTime(i.enqueued_ts_ns) + "  (seq " + text(i.enqueued_seq) + ") by " + text(i.enqueued_by), "enqueued"),
        i.input === undefined || i.input === null ? [] : field("Input", el("pre", { text: JSON.stringify(i.input, null, 2) }), "input")
      ),
      el("div", { class: "actions" }, replay, reason, discard),
      err
    );
  }

  async function refreshDlq() {
    try {
      const items = await getLines("/v1/dlq");
      hideError($("dlq-error"));
      renderKeyed($("dlq-list"), items.slice(0, LIST_MAX_ROWS), (i) => i.job_id, dlqCard);
      $("dlq-empty").hidden = items.length > 0;
      $("dlq-count").textContent = items.length ? String(items.length) : "";
    } catch (e) {
      showError($("dlq-error"), describe(e));
    }
  }

  // ------------------------------------------------- budget & anomalies

  function budgetRow(b) {
    const meter = el("meter", { min: "0", max: "1", low: "0.7", high: "0.9", optimum: "0" });
    let used = "";
    if (typeof b.daily_limit_usd === "number" && b.daily_limit_usd > 0 && typeof b.spent_usd === "number") {
      const f = b.spent_usd / b.daily_limit_usd;
      meter.value = Math.min(1, f);
      used = (100 * f).toFixed(1) + "%";
    } else {
      meter.hidden = true;
    }
    return el(
      "tr",
      { "data-agent": text(b.agent), class: b.incident ? "over" : null },
      el("td", { text: text(b.agent) }),
      el("td", { text: text(b.day) }),
      el("td", { class: "n", text: num(b.spent_usd, 4) }),
      el("td", { class: "n", text: num(b.daily_limit_usd, 2) }),
      el("td", { class: "n", text: num(b.remaining_usd, 4) }),
      el("td", null, meter, " ", used),
      el("td", { class: "n", text: num(b.cpu_seconds, 1) }),
      el("td", { class: "n", text: num(b.max_cpu_seconds) }),
      el("td", { class: "n", text: num(b.cost_entries) }),
      el("td", { text: text(b.policy_id) })
    );
  }

  async function refreshBudget() {
    try {
      const day = $("budget-day").value;
      const items = await getLines("/v1/budget" + (day ? "?day=" + enc(day) : ""));
      hideError($("budget-error"));
      renderKeyed($("budget-rows"), items.slice(0, LIST_MAX_ROWS), (b) => text(b.agent) + "\u0000" + text(b.day), budgetRow);
      $("budget-empty").hidden = items.length > 0;
    } catch (e) {
      showError($("budget-error"), describe(e));
    }
  }

  function anomalyRow(a) {
    return el(
      "tr",
      { "data-seq": text(a.seq), class: "sev-" + cls(a.severity) },
      el("td", { text: text(a.seq) }),
      el("td", { class: "time", text: shortTime(a.ts), title: text(a.ts) }),
      el("td", null, badge(a.severity, "sev")),
      el("td", { text: text(a.detector) }),
      el("td", { text: text(a.series) }),
      el("td", { text: text(a.reason) }),
      el("td", { class: "n", text: num(a.observed) }),
      el("td", { class: "n", text: num(a.baseline) }),
      el("td", { class: "n", text: num(a.score) }),
      el("td", { class: "n", text: num(a.threshold) }),
      el("td", null, jobLink(a.job_id)),
      el("td", { text: text(a.agent) })
    );
  }

  async function refreshAnomalies() {
    try {
      const items = await getLines("/v1/anomalies");
      hideError($("anomalies-error"));
      $("anomalies-unavailable").hidden = true;
      $("anomalies").hidden = false;
      items.sort((x, y) => (y.seq || 0) - (x.seq || 0));
      renderKeyed($("anomalies-rows"), items.slice(0, LIST_MAX_ROWS), (a) => a.seq, anomalyRow);
      $("anomalies-empty").hidden = items.length > 0;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.kind === "not_found") {
        $("anomalies-unavailable").hidden = false;
        $("anomalies").hidden = true;
        $("anomalies-empty").hidden = true;
        hideError($("anomalies-error"));
      } else {
        showError($("anomalies-error"), describe(e));
      }
    }
  }

  // ------------------------------------------------------------- health

  async function health() {
    try {
      const r = await fetch("/v1/health", { cache: "no-store", credentials: "omit" });
      const h = JSON.parse(await r.text());
      const parts = [text(h.status), "head seq " + text(h.head_seq), "followers " + text(h.followers)];
      if (h.lockdown) parts.push("storage lockdown: " + text(h.lockdown));
      $("health").textContent = parts.join(" · ");
      $("health").className = h.status === "ok" ? "muted" : "alert-text";
      return h;
    } catch (e) {
      $("health").textContent = "argusd unreachable";
      $("health").className = "alert-text";
      return null;
    }
  }

  // --------------------------------------------------------- refreshing

  let inflight = null;
  let again = false;

  /** Refreshes every non-streaming view; a call during a refresh runs one more. */
  async function refreshAll() {
    if (inflight) {
      again = true;
      return inflight;
    }
    inflight = (async () => {
      do {
        again = false;
        await Promise.allSettled([
          health(),
          refreshApprovals(),
          refreshControl(),
          refreshDlq(),
          refreshBudget(),
          refreshAnomalies(),
          current === "timeline" ? timelineMore() : null,
        ]);
      } while (again);
    })();
    try {
      await inflight;
    } finally {
      inflight = null;
    }
  }

  // ------------------------------------------------------ entries (rows)

  function entryRow(e, withJob) {
    const cells = [
      el("td", { class: "n", text: text(e.seq) }),
      el("td", { class: "time", text: shortTime(e.ts), title: text(e.ts) }),
      el("td", { class: "kind", text: text(e.kind) }),
    ];
    if (withJob) cells.push(el("td", null, jobLink(e.job_id)));
    cells.push(
      el("td", { text: text(e.agent) }),
      el("td", { class: "actor", text: text(e.actor) }),
      el("td", { class: "payload", text: summarize(e.payload), title: clip(text(e.payload), 4000) })
    );
    return el(
      "tr",
      { "data-seq": text(e.seq), "data-kind": text(e.kind), class: "fam-" + cls(String(e.kind || "").split(".")[0]) },
      cells
    );
  }

  // ------------------------------------------------------------ live tail

  // A follow of GET /v1/entries?follow=true read as Server-Sent Events
  // through fetch(), because EventSource cannot send an Authorization
  // header. Frames are `id: N`, `event: entry|heartbeat|error`, `data:
  // <one JSON line>`, then a blank line (src/server/stream.rs).
  const tail = { gen: 0, ctrl: null, next: null, paused: false, retry: null };

  function setTailStatus(s, klass) {
    const n = $("tail-status");
    n.textContent = s;
    n.className = klass || "muted";
  }

  function stopTail() {
    tail.gen++;
    clearTimeout(tail.retry);
    tail.retry = null;
    if (tail.ctrl) tail.ctrl.abort();
    tail.ctrl = null;
  }

  /** A new stream from the filters' start (the rows are cleared). */
  function restartTail() {
    stopTail();
    tail.next = null;
    $("tail-rows").replaceChildren();
    hideError($("tail-error"));
    if (!tail.paused) startTail();
  }

  function retryTail(gen, ms) {
    if (gen !== tail.gen || tail.paused) return;
    clearTimeout(tail.retry);
    tail.retry = setTimeout(() => {
      if (gen === tail.gen && !tail.paused) startTail();
    }, ms);
  }

  function addTailRows(batch) {
    if (!batch.length) return;
    const body = $("tail-rows");
    const frag = document.createDocumentFragment();
    // Newest first; a catch-up larger than the table keeps only its end.
    const start = Math.max(0, batch.length - TAIL_MAX_ROWS);
    for (let i = batch.length - 1; i >= start; i--) frag.appendChild(entryRow(batch[i], true));
    body.insertBefore(frag, body.firstChild);
    while (body.children.length > TAIL_MAX_ROWS) body.removeChild(body.lastChild);
  }

  async function startTail() {
    const gen = ++tail.gen;
    const ctrl = new AbortController();
    tail.ctrl = ctrl;
    let from = tail.next;
    if (from === null) {
      const back = $("tail-back").value;
      if (back === "all") {
        from = 0;
      } else {
        const h = await health();
        if (gen !== tail.gen) return;
        const head = h && typeof h.head_seq === "number" ? h.head_seq : -1;
        from = Math.max(0, head + 1 - Number(back));
      }
      tail.next = from;
    }
    const q = new URLSearchParams({ follow: "true", from: String(from) });
    const job = $("tail-job").value.trim();
    const kind = $("tail-kind").value.trim();
    if (job) q.set("job", job);
    if (kind) q.set("kind", kind);
    setTailStatus("connecting…");
    let r;
    try {
      r = await fetch("/v1/entries?" + q.toString(), {
        headers: authHeaders({ Accept: "text/event-stream" }),
        cache: "no-store",
        credentials: "omit",
        signal: ctrl.signal,
      });
    } catch (e) {
      if (gen !== tail.gen) return;
      setTailStatus("disconnected; retrying", "warn");
      retryTail(gen, 3000);
      return;
    }
    if (gen !== tail.gen) return;
    if (!r.ok) {
      const err = errorOf(r.status, await r.text());
      if (gen !== tail.gen) return;
      if (r.status === 401) noteUnauthenticated(err);
      showError($("tail-error"), err.describe());
      setTailStatus("stopped", "warn");
      // A bad filter stays bad until it is changed; anything else may pass.
      if (r.status !== 400) retryTail(gen, 5000);
      return;
    }
    hideError($("tail-error"));
    setTailStatus("live", "ok-text");
    let stop = null; // {ms} when the server ended the stream with a reason
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let ev = { event: "", data: [], id: null };
    let batch = [];
    const dispatch = () => {
      const name = ev.event || "message";
      const data = ev.data.join("\n");
      ev = { event: "", data: [], id: null };
      if (!data) return;
      let v;
      try {
        v = JSON.parse(data);
      } catch (_) {
        return;
      }
      if (name === "entry" && v && typeof v.seq === "number") {
        batch.push(v);
        tail.next = v.seq + 1;
      } else if (name === "heartbeat" && v && v.heartbeat) {
        const head = v.heartbeat.head_seq;
        if (typeof head === "number" && head + 1 > tail.next) tail.next = head + 1;
        setTailStatus("live · head seq " + text(head), "ok-text");
      } else if (name === "error" && v && v.error) {
        const err = errorOf(v.error.status || 0, data);
        showError($("tail-error"), err.describe());
        stop = { ms: err.kind === "lagged" ? 500 : 3000 };
      }
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (gen !== tail.gen) return;
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          let line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.endsWith("\r")) line = line.slice(0, -1);
          if (line === "") {
            dispatch();
            continue;
          }
          if (line[0] === ":") continue;
          const c = line.indexOf(":");
          const name = c < 0 ? line : line.slice(0, c);
          let val = c < 0 ? "" : line.slice(c + 1);
          if (val[0] === " ") val = val.slice(1);
          if (name === "data") ev.data.push(val);
          else if (name === "event") ev.event = val;
          else if (name === "id") ev.id = val;
        }
        addTailRows(batch);
        batch = [];
      }
    } catch (e) {
      if (gen !== tail.gen) return;
    }
    addTailRows(batch);
    if (gen !== tail.gen) return;
    setTailStatus("reconnecting…", "warn");
    retryTail(gen, stop ? stop.ms : 2000);
  }

  function togglePause() {
    tail.paused = !tail.paused;
    $("tail-pause").textContent = tail.paused ? "Resume" : "Pause";
    if (tail.paused) {
      stopTail();
      setTailStatus("paused", "warn");
    } else {
      startTail();
    }
  }

  // ------------------------------------------------------------- timeline

  const timeline = { gen: 0, job: null, next: 0, rows: 0 };

  async function openTimeline(job) {
    $("timeline-job").value = job;
    show("timeline");
    await loadTimeline();
  }

  async function loadTimeline() {
    const job = $("timeline-job").value.trim();
    timeline.gen++;
    timeline.job = job || null;
    timeline.next = 0;
    timeline.rows = 0;
    $("timeline-rows").replaceChildren();
    hideError($("timeline-error"));
    if (!job) {
      $("timeline-status").textContent = "type a job id, or click one in another view";
      return;
    }
    $("timeline-status").textContent = "loading…";
    await timelineMore();
  }

  /** The job's entries after those shown (the whole job the first time). */
  async function timelineMore() {
    if (!timeline.job) return;
    const gen = timeline.gen;
    const job = timeline.job;
    try {
      const items = await getLines("/v1/entries?job=" + enc(job) + "&from=" + timeline.next);
      if (gen !== timeline.gen) return;
      hideError($("timeline-error"));
      const body = $("timeline-rows");
      const frag = document.createDocumentFragment();
      for (const e of items) {
        if (typeof e.seq !== "number" || e.seq < timeline.next) continue;
        frag.appendChild(entryRow(e, false));
        timeline.next = e.seq + 1;
        timeline.rows++;
      }
      body.appendChild(frag);
      while (body.children.length > TIMELINE_MAX_ROWS) body.removeChild(body.firstChild);
      const shown = body.children.length;
      $("timeline-status").textContent =
        timeline.rows + " entries for job " + job + (shown < timeline.rows ? " (the last " + shown + " shown)" : "");
    } catch (e) {
      if (gen !== timeline.gen) return;
      showError($("timeline-error"), describe(e));
      $("timeline-status").textContent = "";
    }
  }

  // ---------------------------------------------------------------- start

  function setTokenState() {
    const n = $("token-state");
    n.textContent = token() ? "token set (this tab only)" : "no token: local operator";
    n.className = "muted";
  }

  function start() {
    for (const v of VIEWS) $("tab-" + v).addEventListener("click", () => show(v));
    window.addEventListener("hashchange", () => show(location.hash.slice(1)));
    show(location.hash.slice(1) || "approvals");

    $("token").value = token();
    setTokenState();
    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("token").value.trim();
      try {
        if (t) sessionStorage.setItem(TOKEN_KEY, t);
        else sessionStorage.removeItem(TOKEN_KEY);
      } catch (_) {
        flash("this browser refuses sessionStorage; the token cannot be kept", true);
      }
      setTokenState();
      restartTail();
      refreshAll();
    });
    $("token-clear").addEventListener("click", () => {
      try {
        sessionStorage.removeItem(TOKEN_KEY);
      } catch (_) {}
      $("token").value = "";
      setTokenState();
      restartTail();
      refreshAll();
    });

    $("release-button").addEventListener("click", releaseStanding);

    let debounce = null;
    const filterChanged = () => {
      clearTimeout(debounce);
      debounce = setTimeout(restartTail, 400);
    };
    $("tail-job").addEventListener("input", filterChanged);
    $("tail-kind").addEventListener("input", filterChanged);
    $("tail-back").addEventListener("change", restartTail);
    $("tail-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      clearTimeout(debounce);
      restartTail();
    });
    $("tail-pause").addEventListener("click", togglePause);

    $("timeline-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadTimeline();
    });
    $("budget-day").addEventListener("change", refreshBudget);
    $("budget-form").addEventListener("submit", (ev) => ev.preventDefault());

    refreshAll();
    setInterval(refreshAll, REFRESH_MS);
    startTail();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
