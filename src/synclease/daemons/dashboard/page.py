"""The dashboard page: one self-contained HTML document (inline CSS and JS, no external assets).

The script polls ``/api/fleet`` (the doctor document) and renders the live singleton, every lease with
its state, every candidate with its class and reason, the never-touched listeners, the findings, and the
two-command remediation when there are orphans. It only ever reads: there is no control that signals,
retires or deletes anything. Every value is inserted with ``textContent`` (never as HTML), because the
fleet document carries what listeners said of themselves. A Content-Security-Policy pins the inline
script and style by hash and allows connections to this origin only.
"""

from __future__ import annotations

import base64
import hashlib

REFRESH_MILLISECONDS = 3000

STYLE = """
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; }
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; max-width: 80rem; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1.05rem; margin: 1.5rem 0 .4rem; }
.meta, .empty, #status { color: var(--muted); }
#status.error { color: var(--bad); font-weight: 600; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25rem .6rem; border-bottom: 1px solid rgba(128,128,128,.3); }
th { font-weight: 600; }
td.mono, code { font-family: ui-monospace, monospace; font-size: 13px; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; font-size: 12px; font-weight: 600; }
.cls-safe_auto { background: rgba(26,127,55,.15); color: var(--ok); }
.cls-operator_required { background: rgba(154,103,0,.15); color: var(--warn); }
.cls-never_touch { background: rgba(110,119,129,.15); color: var(--muted); }
.sev-error { color: var(--bad); } .sev-warning { color: var(--warn); } .sev-info { color: var(--muted); }
#remediation { border: 1px solid var(--warn); border-radius: .4rem; padding: .5rem 1rem; }
#remediation ol { margin: .3rem 0; }
.hidden { display: none; }
"""

SCRIPT = """
"use strict";
const REFRESH_MS = __REFRESH_MS__;
const $ = (id) => document.getElementById(id);

function text(value) {
  if (value === null || value === undefined || value === "") return "\\u2014";
  return String(value);
}

function el(tag, cls, value) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (value !== undefined) node.textContent = text(value);
  return node;
}

function badge(cls) {
  return el("span", "badge cls-" + String(cls).replace(/[^a-z_]/g, ""), cls);
}

function table(columns, rows, emptyText) {
  if (!rows.length) return el("p", "empty", emptyText);
  const tbl = el("table");
  const head = tbl.createTHead().insertRow();
  for (const name of columns) head.appendChild(el("th", "", name));
  const body = tbl.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    if (row.attrs) for (const [k, v] of Object.entries(row.attrs)) tr.setAttribute(k, String(v));
    for (const value of row.cells) {
      const td = tr.insertCell();
      if (value instanceof Node) td.appendChild(value);
      else { td.className = "mono"; td.textContent = text(value); }
    }
  }
  return tbl;
}

function fill(id, node) {
  const box = $(id);
  box.replaceChildren(node);
}

function renderSingleton(daemon) {
  if (!daemon) {
    fill("singleton", el("p", "empty", "no live sync daemon is recorded for this root"));
    return;
  }
  fill("singleton", table(
    ["pid", "port", "version", "instance", "lease", "lease expires"],
    [{attrs: {"data-pid": daemon.pid}, cells: [daemon.pid, daemon.port, daemon.package_version,
      daemon.instance_id, daemon.lease_state, daemon.lease_expires_at]}],
    ""));
}

function renderLeases(leases) {
  fill("leases", table(
    ["instance", "pid", "port", "state", "lease state", "holder", "stale", "expires", "problem"],
    leases.map((x) => ({attrs: {"data-state": x.state}, cells: [x.instance_id, x.pid, x.port, x.state,
      x.lease_state, x.holder, x.stale === undefined ? null : String(x.stale), x.expires_at, x.problem]})),
    "no lease files"));
}

function renderOrphans(orphans) {
  fill("orphans", table(
    ["port", "pid", "version", "instance", "lease", "class", "reason"],
    orphans.map((o) => ({attrs: {"data-class": o.cleanup_class, "data-pid": o.pid}, cells: [o.port, o.pid,
      o.package_version, o.instance_id, o.lease_state, badge(o.cleanup_class),
      o.skip_reason || "expired lease, provably ours"]})),
    "no orphaned sync daemons"));
}

function renderIgnored(ignored) {
  fill("ignored", table(
    ["port", "pid", "family", "reason"],
    ignored.map((i) => ({attrs: {"data-class": "never_touch"}, cells: [i.port, i.pid, i.daemon_family,
      i.skip_reason]})),
    "nothing else listens in the sync range"));
}

function renderHistory(history) {
  fill("history", table(
    ["when", "event", "reason", "instance", "pid", "port", "by"],
    history.map((e) => ({attrs: {"data-event": e.event}, cells: [e.at, e.event, e.reason, e.instance_id,
      e.pid, e.port, e.by ? e.by.command + " (pid " + e.by.pid + ")" : null]})),
    "nothing recorded yet"));
}

function renderFindings(findings) {
  const list = el("ul");
  for (const f of findings) {
    const item = el("li", "sev-" + String(f.severity).replace(/[^a-z]/g, ""));
    item.appendChild(el("span", "", "[" + f.severity + "] " + f.summary + " \\u2014 "));
    item.appendChild(el("code", "", f.remediation && f.remediation.command));
    list.appendChild(item);
  }
  fill("findings", findings.length ? list : el("p", "empty", "no findings"));
}

function renderRemediation(orphans) {
  const box = $("remediation");
  box.classList.toggle("hidden", orphans.length === 0);
  const manual = orphans.filter((o) => o.cleanup_class === "operator_required").length;
  $("manual-note").classList.toggle("hidden", manual === 0);
}

function renderFleet(doc) {
  $("root").textContent = text(doc.daemon_root) + " (scope " + text(doc.scope_id) + ")";
  renderSingleton(doc.daemon);
  renderLeases(doc.leases || []);
  renderOrphans(doc.orphans || []);
  renderIgnored(doc.ignored || []);
  renderFindings(doc.findings || []);
  renderHistory(doc.history || []);
  renderRemediation(doc.orphans || []);
  const scan = doc.scan || {};
  $("scan").textContent = "generated " + text(doc.generated_at) + ", scanned " + text(scan.ports_scanned) +
    " ports in " + (typeof scan.duration_ms === "number" ? scan.duration_ms.toFixed(0) : "?") + " ms";
}

function setStatus(message, isError) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", Boolean(isError));
}

async function loadHealth() {
  try {
    const reply = await fetch("/api/health", {cache: "no-store"});
    const h = await reply.json();
    $("dashboard").textContent = "project " + text(h.project) + " \\u00b7 dashboard pid " + text(h.pid) +
      " port " + text(h.port) + " \\u00b7 synclease " + text(h.package_version);
  } catch (err) {
    $("dashboard").textContent = "dashboard health unavailable";
  }
}

async function refresh() {
  try {
    const reply = await fetch("/api/fleet", {cache: "no-store"});
    const doc = await reply.json();
    if (!reply.ok) throw new Error(doc && doc.error ? doc.error : "HTTP " + reply.status);
    renderFleet(doc);
    document.body.dataset.loaded = "true";
    setStatus("live \\u00b7 updated " + new Date().toLocaleTimeString(), false);
  } catch (err) {
    setStatus("cannot read /api/fleet: " + err.message, true);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

loadHealth();
refresh();
""".replace("__REFRESH_MS__", str(REFRESH_MILLISECONDS))

BODY = """<header>
<h1>synclease fleet</h1>
<div class="meta" id="dashboard">loading\u2026</div>
<div class="meta">sync root: <span id="root">\u2014</span></div>
<div id="status">loading\u2026</div>
</header>
<noscript><p>This page needs JavaScript; or run <code>synclease auth doctor</code>.</p></noscript>
<section id="remediation" class="hidden">
<h2>Remediation</h2>
<p>Orphaned sync daemons were found. From a terminal:</p>
<ol>
<li><code>synclease auth doctor</code> \u2014 review what would be cleaned and why</li>
<li><code>synclease auth doctor --reset</code> \u2014 clean the <em>safe_auto</em> ones and stale leases</li>
</ol>
<p id="manual-note" class="hidden">Candidates marked <em>operator_required</em> are skipped by
<code>--reset</code>; review them, then add <code>--force</code> only if you are sure.</p>
</section>
<h2>Live sync daemon (singleton)</h2>
<div id="singleton"><p class="empty">loading\u2026</p></div>
<h2>Candidates (orphans)</h2>
<div id="orphans"><p class="empty">loading\u2026</p></div>
<h2>Leases</h2>
<div id="leases"><p class="empty">loading\u2026</p></div>
<h2>Never touched (other listeners in the sync range)</h2>
<div id="ignored"><p class="empty">loading\u2026</p></div>
<h2>Findings</h2>
<div id="findings"><p class="empty">loading\u2026</p></div>
<h2>Recent history (why daemons started, retired, were reaped or vanished)</h2>
<div id="history"><p class="empty">loading\u2026</p></div>
<p class="meta" id="scan"></p>
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        f"script-src {_csp_hash(SCRIPT)}",
        f"style-src {_csp_hash(STYLE)}",
        "connect-src 'self'",
        "img-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

PAGE = (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>synclease fleet</title>\n"
    f"<style>{STYLE}</style>\n</head>\n<body>\n{BODY}<script>{SCRIPT}</script>\n</body>\n</html>\n"
)
PAGE_BYTES = PAGE.encode("utf-8")
