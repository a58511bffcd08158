/**
 * The dashboard page's script, run in the browser (inline in page.ts, allowed by its hash in the CSP).
 * Every value from the server goes into the page as text (textContent, setAttribute), never as HTML: ids, file names
 * and batch ids come from any NATS client. Ids are shown, linked and copied exactly as the server sent them.
 * Cancel and retry call the API's own routes (/v1/...) with `Authorization: Bearer <admin key>`: the key typed at
 * sign-in is kept in this script's memory only (not in storage), so a reload asks for it again at the first action
 * (docs/security.md says why). Kept free of backquotes and dollar-brace: it lives in a template literal.
 */
export const DASHBOARD_SCRIPT = `
"use strict";
const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
const FINAL = ["succeeded", "failed", "cancelled"];
const LANES = ["interactive", "default", "batch"];
const RANGES = [["5 min", 5 * 60e3], ["15 min", 15 * 60e3], ["1 h", 60 * 60e3]];
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";

// --- state -------------------------------------------------------------------------------------------------
let auth = false;            // the API needs keys (DOCKET_API_KEY is set)
let apiKey = null;           // the admin key typed in this tab: memory only
let routes = { jobRetry: false, batchRetry: false };
let samples = [];            // the history the producer keeps, oldest first
let sampleMs = 5000;
let range = 15 * 60e3;
let snap = null;             // the latest snapshot
let jobFilter = { state: "", code: "" };
let filtered = null;         // jobs of the current filter (fetched), or null for the snapshot's recent jobs
let filteredAt = 0;
let drawer = null;           // { kind: "job" | "batch", id, ... }
let es = null;

// --- small helpers -----------------------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
// The board is re-rendered every second; a row, chip or block that has not changed keeps its element, so a click on
// it is never lost to a re-render (and the DOM churns only where something changed). "ago" cells are filled in place.
function reconcile(parent, nodes) {
  const old = new Map();
  for (const c of parent.children) if (c._sig) old.set(c._sig, c);
  const next = nodes.flat().filter((n) => n instanceof Node).map((n) => {
    if (n.parentNode === parent) return n;
    const sig = n._sig || (n._sig = n.outerHTML);
    const kept = old.get(sig);
    if (kept) { old.delete(sig); return kept; }
    return n;
  });
  const same = next.length === parent.children.length && next.every((n, i) => parent.children[i] === n);
  if (!same) parent.replaceChildren(...next);
  tickAgo(parent);
}
function table(el, head, rows, empty, foot) {
  const headSig = JSON.stringify(head);
  if (el._head !== headSig) {
    el._head = headSig;
    el.replaceChildren(h("thead", {}, h("tr", {}, head.map(([t, cls, tip]) => h("th", { class: cls, title: tip }, t)))), h("tbody", {}), h("tfoot", {}));
  }
  reconcile(el.tBodies[0], rows.length ? rows : [h("tr", {}, h("td", { colspan: head.length, class: "empty" }, empty))]);
  reconcile(el.tFoot, foot ? [foot] : []);
}
const td = (v, cls, attrs) => h("td", Object.assign({ class: cls }, attrs || {}), v);
const idCode = (id) => h("code", { class: "id" }, id);
const jobLink = (id) => h("a", { href: "#job=" + encodeURIComponent(id), "data-id": id }, idCode(id));
const batchLink = (id) => h("a", { href: "#batch=" + encodeURIComponent(id), "data-id": id }, idCode(id));
const pill = (state) => h("span", { class: "pill s-" + state }, state);
const fmt = (n) => n === null || n === undefined ? "–" : n >= 100 ? Math.round(n).toLocaleString("en") : String(Math.round(n * 10) / 10);
function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v < 1000) return Math.round(v) + " ms";
  if (v < 60e3) return (Math.round(v / 100) / 10) + " s";
  if (v < 3600e3) return (Math.round(v / 6e3) / 10) + " min";
  return (Math.round(v / 360e3) / 10) + " h";
}
function ago(iso) {
  if (!iso) return "–";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  return s < 60 ? s + " s ago" : s < 3600 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
}
const agoCell = (iso, prefix) => h("td", { "data-ago": iso || "", "data-prefix": prefix });
function tickAgo(root) {
  for (const el of root.querySelectorAll("[data-ago]")) el.textContent = (el.getAttribute("data-prefix") || "") + ago(el.getAttribute("data-ago"));
}
const clock = (t, secs) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: secs ? "2-digit" : undefined, hourCycle: "h23" });
const between = (a, b) => a && b ? Date.parse(b) - Date.parse(a) : null;
const hitRate = (p) => !p || p.lookups === 0 ? "–" : Math.round((100 * p.hits) / p.lookups) + "% of " + p.lookups;
function toast(text, bad) {
  const t = $("toast");
  t.textContent = text; t.className = bad ? "bad" : ""; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}
async function copy(text, button) {
  try { await navigator.clipboard.writeText(text); }
  catch {
    const area = h("textarea", {}, text); document.body.append(area); area.select(); document.execCommand("copy"); area.remove();
  }
  button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy id"; }, 1500);
}
const copyButton = (id) => h("button", { class: "small", "data-copy": id, onclick: (e) => copy(id, e.currentTarget) }, "Copy id");
async function getJson(path) {
  const res = await fetch(path);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ? body.error.message : res.status + " " + res.statusText);
  return body;
}

// --- actions: the API's routes, with the admin key -------------------------------------------------------------
function askKey(why) {
  return new Promise((resolve) => {
    const box = $("actkey"), form = box.querySelector("form");
    $("actkey-label").textContent = why + ": the API needs the admin key. This tab keeps it in memory until it is closed or reloaded.";
    $("actkey-error").textContent = "";
    box.hidden = false; $("actkey-input").value = ""; $("actkey-input").focus();
    const done = (key) => { box.hidden = true; form.onsubmit = null; $("actkey-cancel").onclick = null; resolve(key); };
    form.onsubmit = (e) => { e.preventDefault(); done($("actkey-input").value); $("actkey-input").value = ""; };
    $("actkey-cancel").onclick = () => done(null);
  });
}
async function act(what, path) {
  if (auth && !apiKey) { apiKey = await askKey(what); if (!apiKey) return false; }
  const headers = { "content-type": "application/json" };
  if (auth) headers.authorization = "Bearer " + apiKey;
  const res = await fetch(path, { method: "POST", headers, body: "{}" });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) apiKey = null;
  if (!res.ok) { toast(what + ": " + (body.error ? body.error.message : res.status + " " + res.statusText), true); return false; }
  toast(what + ": done");
  refreshOpen(); refreshFiltered(true);
  return true;
}
const cancelJob = (id) => act("Cancel job " + id, "/v1/jobs/" + encodeURIComponent(id) + "/cancel");
const retryJob = (id) => act("Retry job " + id, "/v1/jobs/" + encodeURIComponent(id) + "/retry");
const cancelBatch = (id) => act("Cancel batch " + id, "/v1/batches/" + encodeURIComponent(id) + "/cancel");
const retryBatch = (id) => act("Retry the failed jobs of batch " + id, "/v1/batches/" + encodeURIComponent(id) + "/retry");
function jobActions(j, inRow) {
  const out = [];
  const cls = inRow ? "act " : "";
  if (j.state === "queued" || j.state === "running") out.push(h("button", { class: cls + "danger", "data-action": "cancel", onclick: () => cancelJob(j.id) }, "Cancel"));
  if (j.state === "failed" && routes.jobRetry) out.push(h("button", { class: cls.trim() || null, "data-action": "retry", onclick: () => retryJob(j.id) }, "Retry"));
  return out;
}

// --- charts: one quantity per chart, each with its own axis, over real time ----------------------------------
function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
const TICKS = [10e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3];
function chart(svg, series, unit) {
  const W = Math.max(200, svg.clientWidth || 400), H = 130, L = 40, R = 8, T = 16, B = 18;
  // The axis spans the range chosen, or less while the producer holds less history (at least a minute).
  const to = Date.now(), first = samples.length ? samples[0].at : to;
  const from = Math.max(to - range, Math.min(first, to - 60e3));
  const span = to - from;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.replaceChildren();
  const add = (tag, attrs, text) => { const e = document.createElementNS(SVGNS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; svg.append(e); return e; };
  const shown = samples.filter((p) => p.at >= from - sampleMs);
  let max = 0;
  for (const s of series) for (const p of shown) { const v = s.value(p); if (v !== null && v > max) max = v; }
  max = niceMax(max);
  const x = (t) => L + ((t - from) / (to - from)) * (W - L - R);
  const y = (v) => H - B - (v / max) * (H - B - T);
  for (const f of [0, 0.5, 1]) {
    add("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), stroke: f ? "#eef0f4" : "#ccd" });
    add("text", { x: L - 4, y: y(max * f) + 3, "text-anchor": "end" }, fmt(max * f));
  }
  // As many clock labels as fit (about 64 px each), on round times.
  const fit = Math.max(2, Math.floor((W - L - R) / 64));
  const step = TICKS.find((s) => span / s <= fit) || 3600e3;
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    if (x(t) > W - R - 22) break; // a label cut by the right edge says nothing
    add("line", { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 3, stroke: "#ccd" });
    add("text", { x: x(t), y: H - 4, "text-anchor": "middle" }, clock(t, step < 60e3));
  }
  add("text", { x: L, y: 9, "text-anchor": "start" }, unit);
  for (const s of series) {
    // A gap of more than three sample intervals (producer busy, NATS down) is drawn as a gap.
    let run = [], prev = null;
    const flush = () => { if (run.length) add("polyline", { fill: "none", stroke: s.color, "stroke-width": 2, "stroke-linejoin": "round", points: run.join(" "), "data-series": s.name }); run = []; };
    for (const p of shown) {
      const v = s.value(p);
      if (v === null || (prev !== null && p.at - prev > 3 * sampleMs)) flush();
      if (v !== null) run.push(x(Math.max(from, p.at)).toFixed(1) + "," + y(v).toFixed(1));
      prev = p.at;
    }
    flush();
  }
  svg.setAttribute("data-points", String(shown.length));
  svg.setAttribute("data-from", shown.length ? String(shown[0].at) : "");
}
function caption(el, items) {
  el.replaceChildren(...items.map(([name, color, value]) => h("span", { class: "legend" }, h("i", { style: "background:" + color }), name + " ", h("b", {}, value))));
}
function drawCharts() {
  if (!snap && !samples.length) return;
  const last = samples[samples.length - 1] || {};
  const f = snap ? snap.fleet : {};
  chart($("chart-tokens"), [{ name: "tokensPerSecond", color: "#3b73d4", value: (p) => p.tokensPerSecond }], "tokens/s");
  caption($("cap-tokens"), [["generated tokens/s, all workers", "#3b73d4", fmt(snap ? f.tokensPerSecond : last.tokensPerSecond)]]);
  chart($("chart-jobs"), [{ name: "jobsPerSecond", color: "#2e9d5b", value: (p) => p.jobsPerSecond }], "jobs/s");
  caption($("cap-jobs"), [["jobs finished/s", "#2e9d5b", fmt(last.jobsPerSecond)]]);
  chart($("chart-running"), [
    { name: "running", color: "#3b73d4", value: (p) => p.running },
    { name: "inFlight", color: "#8a56d4", value: (p) => p.inFlight },
    { name: "batchSize", color: "#aab", value: (p) => p.batchSize },
  ], "jobs");
  caption($("cap-running"), [["running (SQLite)", "#3b73d4", fmt(snap ? snap.jobs.running || 0 : last.running)], ["in flight (workers)", "#8a56d4", fmt(snap ? f.inFlight : last.inFlight)], ["batch size", "#aab", fmt(snap ? f.batchSize : last.batchSize)]]);
  chart($("chart-waiting"), [
    { name: "queued", color: "#c99a1d", value: (p) => p.queued },
    { name: "waiting", color: "#d4483b", value: (p) => p.waiting },
  ], "jobs");
  caption($("cap-waiting"), [["queued (SQLite)", "#c99a1d", fmt(snap ? snap.jobs.queued || 0 : last.queued)], ["waiting in JetStream", "#d4483b", fmt(last.waiting)]]);
  const span = samples.length ? Date.now() - samples[0].at : 0;
  $("history-note").textContent = "sampled by the producer every " + sampleMs / 1000 + " s; it holds " + ms(span) + (span < range ? " (since it started)" : "");
}
function drawRange() {
  $("range").replaceChildren(...RANGES.map(([label, r]) => h("button", { "aria-pressed": String(r === range), onclick: () => { range = r; drawRange(); drawCharts(); } }, label)));
}

// --- the board --------------------------------------------------------------------------------------------
function progress(counts, total) {
  const bar = h("div", { class: "bar", title: STATES.filter((s) => counts[s]).map((s) => s + " " + counts[s]).join(", ") });
  for (const s of ["succeeded", "failed", "cancelled", "running", "queued"]) if (counts[s]) bar.append(h("span", { class: "s-" + s, style: "width:" + (100 * counts[s]) / Math.max(1, total) + "%" }));
  return bar;
}
function eta(queue) {
  // GET /v1/jobs/:id and /v1/batches/:id carry "queue" where the scheduler estimates it (position, start, finish).
  if (!queue) return null;
  const parts = ["#" + queue.position + " in line" + (queue.keyPosition !== queue.position ? " (#" + queue.keyPosition + " of its key's)" : "")];
  if (queue.estimatedStartAt) parts.push("starts ~" + clock(Date.parse(queue.estimatedStartAt)));
  if (queue.estimatedFinishAt) parts.push("done ~" + clock(Date.parse(queue.estimatedFinishAt)));
  return parts.join(" · ");
}
function renderTotals(s) {
  const j = s.jobs, f = s.fleet;
  const item = (k, v, attrs) => h("span", attrs || {}, h("span", { class: "k" }, k + " "), h("b", {}, v));
  $("totals").hidden = false;
  reconcile($("totals"), [
    h("span", { class: "totals" }, h("span", { class: "k" }, "jobs:"), ...STATES.map((k) => item(k, j[k] || 0, { "data-total": k }))),
    h("span", { class: "totals", "data-in-flight": f.inFlight }, h("span", { class: "k" }, "workers:"), item("live", f.alive), item("in flight", f.inFlight), item("tok/s", fmt(f.tokensPerSecond))),
  ]);
}
function renderAlerts(list) {
  reconcile($("alerts"), list.map((a) => h("div", { class: "alert " + a.level, "data-alert": a.code }, h("b", {}, a.level === "error" ? "Alert" : "Note"), a.message)));
}
function renderLanes(s) {
  reconcile($("lanes"), LANES.map((lane) => {
    const d = s.queue ? s.queue[lane] : null;
    const l = (s.lanes && s.lanes[lane]) || {};
    return h("div", { class: "lane", "data-lane": lane }, h("small", {}, lane), h("b", { title: "job messages waiting in JetStream" }, d ? d.pending : "?"),
      h("small", {}, d ? d.ackPending + " with workers" : "NATS unreachable"), h("small", {}, (l.queued || 0) + " queued, " + (l.running || 0) + " running in SQLite"));
  }));
}
function renderLatency(st) {
  $("latency-note").textContent = "p50 · p95 of the latest " + st.latencyOf.toLocaleString("en") + " succeeded jobs at most";
  table($("latency"), [["lane"], ["jobs", "num"], ["queue wait", "num", "submitted to started"], ["run time", "num", "started to finished"]],
    st.latency.map((r) => h("tr", { "data-lane": r.lane }, td(r.lane), td(r.jobs, "num"), td(ms(r.queueP50Ms) + " · " + ms(r.queueP95Ms), "num", { "data-p50": r.queueP50Ms, "data-p95": r.queueP95Ms }),
      td(ms(r.runP50Ms) + " · " + ms(r.runP95Ms), "num", { "data-p50": r.runP50Ms, "data-p95": r.runP95Ms }))),
    "no job has succeeded yet");
}
function renderFailures(st) {
  table($("failures"), [["code"], ["last hour", "num"], ["all", "num"], ["last"], ["retryable"]],
    st.failures.map((f) => h("tr", { "data-code": f.code }, td(h("a", { href: "#", title: "show these jobs", onclick: (e) => { e.preventDefault(); setFilter("failed", f.code); } }, h("code", {}, f.code))),
      td(f.recent, "num"), td(f.count, "num"), agoCell(f.lastAt), td(f.retryable ? "yes" : "no"))),
    "no failed jobs");
}
function renderWorkers(s) {
  const f = s.fleet;
  table($("workers"), [["worker"], ["model"], ["in flight", "num", "jobs it is running now"], ["batch size", "num", "sequences its batcher lets the batch lanes decode together"], ["sequences", "num", "sequences its context holds"], ["tok/s", "num", "generated tokens per second, sampled live by the worker"], ["prefix hits", "num", "document-prefix lookups served without evaluating the document again"], ["started"], ["heartbeat"]],
    s.workers.map((w) => h("tr", { "data-worker": w.id, "data-running": w.running, style: w.alive ? "" : "opacity:.5" }, td(idCode(w.id)), td(w.model), td(w.running, "num"), td(w.batchSize, "num"), td(w.sequences, "num"),
      td(fmt(w.tokensPerSecond), "num"), td(hitRate(w.prefix), "num", { "data-prefix-hits": w.prefix ? w.prefix.hits : "" }), agoCell(w.startedAt), agoCell(w.at, w.alive ? "" : "gone, "))),
    "no worker has sent a heartbeat",
    s.workers.length ? h("tr", {}, td("live: " + f.alive), td(""), td(f.inFlight, "num", { "data-total-in-flight": f.inFlight }), td(f.batchSize, "num"), td(f.sequences, "num"), td(fmt(f.tokensPerSecond), "num"), td(""), td(""), td("")) : null);
}
function renderModels(s) {
  table($("models"), [["model"], ["workers", "num", "live workers that take its jobs"], ["queued", "num", "jobs naming it, queued"], ["waiting"]],
    (s.models || []).map((m) => h("tr", { "data-model": m.model || "default" }, td(m.model ? h("code", {}, m.model) : "default"), td(m.workers, "num"), td(m.queued, "num"),
      td(m.waiting || "", m.waiting ? "waiting" : null))),
    "no model served and no job queued");
}
function renderBatches(s) {
  table($("batches"), [["batch"], ["state"], ["task"], ["lane"], ["progress"], ["done", "num"], ["failed", "num"], ["created"], [""]],
    s.batches.map((b) => h("tr", { "data-batch": b.id, "data-done": b.progress.done, "data-total": b.total }, td(batchLink(b.id)), td(pill(b.state)), td(b.task), td(b.lane),
      td(progress(b.counts, b.total)), td(b.progress.done + "/" + b.total, "num"), td(b.counts.failed || 0, "num"), agoCell(b.createdAt),
      td(b.state === "in_progress" ? h("button", { class: "act danger", "data-action": "cancel", onclick: () => cancelBatch(b.id) }, "Cancel") : ""))),
    "no batches yet");
}
// A state, and how many attempts it took when more than one.
const stateCell = (j) => td([pill(j.state), j.attempts > 1 ? " ×" + j.attempts : null], null, { title: j.attempts + " attempt(s)" });
function jobRow(j, inBatch) {
  return h("tr", { "data-job": j.id, "data-state": j.state }, inBatch ? td(j.batchIndex, "num") : null, td(jobLink(j.id)),
    td([j.title || j.customId || "", j.title && j.customId && j.title !== j.customId ? h("span", { class: "muted", title: "custom id" }, " · " + j.customId) : null], "title"),
    j.waiting ? td([pill(j.state), h("small", { class: "waiting", title: j.waiting }, " no worker for " + (j.model || "the default model"))]) : stateCell(j),
    inBatch ? null : td(j.task), inBatch ? null : td(j.batchId ? batchLink(j.batchId) : ""),
    td(j.errorCode ? h("code", {}, j.errorCode) : ""), td(ms(between(j.startedAt, j.finishedAt)), "num"), inBatch ? null : agoCell(j.updatedAt), td(jobActions(j, true)));
}
function renderJobs() {
  const rows = jobFilter.state ? filtered || [] : snap ? snap.recentJobs : [];
  table($("jobs"), [["job"], ["file / custom id"], ["state"], ["task"], ["batch"], ["error"], ["run time", "num"], ["updated"], [""]],
    rows.map((j) => jobRow(j, false)), jobFilter.state ? "no " + jobFilter.state + " jobs" + (jobFilter.code ? " with code " + jobFilter.code : "") : "no jobs yet");
  const chips = [["all", ""]].concat(STATES.map((s) => [s, s]));
  reconcile($("job-filter"), [chips.map(([label, state]) => h("button", { "aria-pressed": String(jobFilter.state === state && !jobFilter.code), "data-filter": state, onclick: () => setFilter(state, "") }, label)),
    jobFilter.code ? h("button", { "aria-pressed": "true", onclick: () => setFilter("failed", "") }, "code " + jobFilter.code + " ✕") : null]);
}
function setFilter(state, code) { jobFilter = { state, code }; filtered = null; renderJobs(); refreshFiltered(true); }
async function refreshFiltered(force) {
  if (!jobFilter.state) { filtered = null; return; }
  if (!force && Date.now() - filteredAt < 3000) return;
  filteredAt = Date.now();
  const q = new URLSearchParams({ state: jobFilter.state, limit: "50" });
  if (jobFilter.code) q.set("code", jobFilter.code);
  try { filtered = (await getJson("/dashboard/jobs?" + q)).data; renderJobs(); } catch (err) { toast(err.message, true); }
}
function render(s) {
  snap = s;
  renderTotals(s); renderAlerts(s.alerts); renderLanes(s); renderLatency(s.stats); renderFailures(s.stats);
  renderWorkers(s); renderModels(s); renderBatches(s); renderJobs(); drawCharts();
  refreshFiltered(false);
}

// --- the drawer: one job or one batch, opened from #job=<id> or #batch=<id> ----------------------------------
function openFromHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  if (p.get("job")) openJob(p.get("job"));
  else if (p.get("batch")) openBatch(p.get("batch"), "");
  else closeDrawer(false);
}
// Tables that stay in the drawer while it shows one job or batch: refreshed rows are reconciled in place.
let held = { key: "" };
function heldTable(key, name) {
  if (held.key !== key) held = { key };
  if (!held[name]) { const t = h("table", {}); held[name] = { table: t, wrap: h("div", { class: "scroll" }, t) }; }
  return held[name];
}
function showDrawer(parts) { $("drawer").hidden = false; reconcile($("drawer"), parts); }
function closeDrawer(clearHash) {
  drawer = null; held = { key: "" }; $("drawer").hidden = true; $("drawer").replaceChildren();
  if (clearHash !== false) history.replaceState(null, "", location.pathname + location.search);
}
function drawerTop(kind, id) {
  return h("div", { class: "top" }, h("h3", {}, kind), h("code", { class: "id", "data-testid": "drawer-id" }, id), copyButton(id),
    h("button", { class: "close", title: "Close (Esc)", onclick: () => closeDrawer() }, "×"));
}
function dl(pairs) { return h("dl", {}, pairs.filter((p) => p[1] !== null && p[1] !== undefined && p[1] !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])); }
async function openJob(id) {
  drawer = { kind: "job", id };
  let body;
  try { body = await getJson("/dashboard/jobs/" + encodeURIComponent(id)); }
  catch (err) { if (drawer && drawer.id === id) showDrawer([drawerTop("Job", id), h("p", {}, err.message)]); return; }
  if (!drawer || drawer.kind !== "job" || drawer.id !== id) return;
  const j = body.job, d = body.document || {};
  drawer.state = j.state;
  const ev = heldTable("job " + id, "events");
  table(ev.table, [["event"], ["attempt", "num"], ["worker"], ["at"]], body.events.map((e) => h("tr", {}, td(e.kind), td(e.attempt, "num"), td(e.workerId), td(e.at))), "no events yet");
  const actions = jobActions(j, false);
  showDrawer([
    drawerTop("Job", j.id),
    h("div", { class: "doc", "data-testid": "drawer-title" }, d.title || j.customId || "(no file name)"),
    j.waiting ? h("p", { class: "waiting", "data-testid": "job-waiting" }, "Waiting: " + j.waiting) : null,
    dl([["state", pill(j.state)], ["custom id", j.customId], ["batch", j.batchId ? batchLink(j.batchId) : null], ["task", j.task], ["lane", j.lane], ["model", j.model || "default"],
      ["in line", eta(j.queue)], ["attempts", j.attempts], ["submitted", j.submittedAt], ["started", j.startedAt], ["finished", j.finishedAt],
      ["queue wait", j.startedAt ? ms(between(j.submittedAt, j.startedAt)) : null], ["run time", j.finishedAt ? ms(between(j.startedAt, j.finishedAt)) : null]]),
    actions.length ? h("div", { class: "actions" }, actions) : null,
    j.error ? [h("h2", {}, "Error"), h("pre", { "data-testid": "job-error" }, j.error.code + ": " + j.error.message + (j.error.retryable ? " (retryable)" : ""))] : null,
    j.result ? [h("h2", {}, "Result"), h("pre", { "data-testid": "job-result" }, JSON.stringify(j.result, null, 2))] : null,
    h("h2", {}, "Events"), ev.wrap]);
}
async function openBatch(id, state) {
  const same = drawer && drawer.kind === "batch" && drawer.id === id;
  drawer = { kind: "batch", id, state: state !== undefined ? state : same ? drawer.state : "", loaded: same ? drawer.loaded : 100 };
  const cur = drawer;
  let b, page;
  try {
    const q = new URLSearchParams({ batchId: id, limit: String(Math.min(500, cur.loaded)) });
    if (cur.state) q.set("state", cur.state);
    [b, page] = await Promise.all([getJson("/dashboard/batches/" + encodeURIComponent(id)), getJson("/dashboard/jobs?" + q)]);
  } catch (err) { if (drawer === cur) showDrawer([drawerTop("Batch", id), h("p", {}, err.message)]); return; }
  if (drawer !== cur) return;
  cur.next = page.next; cur.rows = page.data;
  const jobs = heldTable("batch " + id, "jobs");
  table(jobs.table, [["#", "num"], ["job"], ["file / custom id"], ["state"], ["error"], ["run time", "num"], [""]],
    page.data.map((j) => jobRow(j, true)), cur.state ? "no " + cur.state + " jobs in this batch" : "no jobs");
  const chips = [["all", "", b.total]].concat(STATES.map((s) => [s, s, b.counts[s] || 0]));
  const actions = [];
  if (b.state === "in_progress") actions.push(h("button", { class: "danger", "data-action": "cancel-batch", onclick: () => cancelBatch(b.id) }, "Cancel batch"));
  if ((b.counts.failed || 0) > 0 && routes.batchRetry) actions.push(h("button", { "data-action": "retry-batch", onclick: () => retryBatch(b.id) }, "Retry failed jobs"));
  showDrawer([
    drawerTop("Batch", b.id),
    dl([["state", pill(b.state)], ["task", b.task], ["lane", b.lane], ["progress", progress(b.counts, b.total)], ["done", b.progress.done + " of " + b.total],
      ["in line", eta(b.queue)], ["created", b.createdAt], ["finished", b.finishedAt], ["error", b.error ? b.error.code + ": " + b.error.message : null]]),
    actions.length ? h("div", { class: "actions" }, actions) : null,
    h("h2", {}, "Jobs ", h("span", { class: "chips", id: "batch-filter" }, chips.map(([label, s, n]) => h("button", { "aria-pressed": String(cur.state === s), "data-filter": s, onclick: () => openBatch(id, s) }, label + " " + n)))),
    jobs.wrap,
    page.hasMore ? h("button", { class: "small", onclick: () => { cur.loaded = Math.min(500, cur.loaded + 100); openBatch(id); } }, cur.loaded >= 500 ? "first 500 shown" : "Show more") : null]);
}
function refreshOpen() {
  if (!drawer) return;
  if (drawer.kind === "job") openJob(drawer.id); else openBatch(drawer.id);
}
setInterval(() => { if (drawer && !(drawer.kind === "job" && FINAL.includes(drawer.state))) refreshOpen(); }, 3000);
window.addEventListener("hashchange", openFromHash);
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && drawer && $("actkey").hidden) closeDrawer(); });

// --- live stream and sign-in ------------------------------------------------------------------------------
function connect() {
  es = new EventSource("/dashboard/stream");
  es.addEventListener("history", (e) => { const d = JSON.parse(e.data); samples = d.samples; sampleMs = d.sampleMs; drawCharts(); });
  es.addEventListener("sample", (e) => {
    const p = JSON.parse(e.data);
    if (!samples.length || p.at > samples[samples.length - 1].at) samples.push(p);
    while (samples.length && samples[0].at < p.at - 60 * 60e3) samples.shift();
  });
  es.addEventListener("snapshot", (e) => { $("status").textContent = "live"; $("status").className = "live"; render(JSON.parse(e.data)); });
  es.onerror = () => {
    $("status").textContent = "reconnecting…"; $("status").className = "";
    // A refused stream (signed out, session expired) is not retried by the browser: ask the server again.
    if (es.readyState === EventSource.CLOSED) setTimeout(start, 1000);
  };
}
// The retry routes come with the scheduler (issue 13): offered only where this producer serves them.
async function readRoutes() {
  try {
    const doc = await getJson("/openapi.json");
    routes = { jobRetry: !!doc.paths["/v1/jobs/{id}/retry"], batchRetry: !!doc.paths["/v1/batches/{id}/retry"] };
  } catch { routes = { jobRetry: false, batchRetry: false }; }
}
// With auth on, the page signs in once with the admin key: the server answers with a session cookie that only this
// page's own GET requests carry (SameSite=Strict, HttpOnly, Path=/dashboard). The key itself stays in this script's
// memory for cancel and retry, which go to the API with it.
async function start() {
  const res = await fetch("/dashboard/session");
  const s = res.ok ? await res.json() : { auth: true, signedIn: false };
  auth = s.auth;
  $("signout").hidden = !s.auth || !s.signedIn;
  $("login").hidden = s.signedIn;
  $("board").hidden = !s.signedIn;
  if (!s.signedIn) { $("status").textContent = "signed out"; $("alerts").replaceChildren(); $("key").focus(); return; }
  await readRoutes();
  drawRange();
  connect();
  openFromHash();
}
$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const key = $("key").value;
  const res = await fetch("/dashboard/session", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ key }) });
  $("key").value = "";
  if (res.ok) { apiKey = key; $("login-error").textContent = ""; start(); return; }
  const body = await res.json().catch(() => ({}));
  $("login-error").textContent = body.error ? body.error.message : res.statusText;
});
$("signout").addEventListener("click", async () => { apiKey = null; await fetch("/dashboard/session", { method: "DELETE" }); location.reload(); });
start();
`;
