/**
 * The dashboard page: one self-contained HTML document (no build step, no CDN). It follows
 * /dashboard/stream (SSE) and draws charts as hand-rolled SVG. Every value from the server is put in the
 * page as text (textContent), never as HTML: batch and job ids come from any NATS client.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docket dashboard</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --mute:#6b7385; --line:#e3e6ec; --ok:#2e9d5b; --bad:#d4483b; --run:#3b73d4; --wait:#c99a1d; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:16px; padding:12px 20px; background:#1d2330; color:#fff; }
  header h1 { font-size:18px; margin:0; }
  #status { font-size:12px; color:#aab; }
  #status.live::before { content:"● "; color:#4cd07d; }
  main { display:grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap:16px; padding:16px 20px; }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:0; overflow-x:auto; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--mute); margin:0 0 10px; }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; max-width:220px; }
  th { color:var(--mute); font-weight:600; }
  td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
  .lanes { display:flex; gap:12px; }
  .lane { flex:1; border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
  .lane b { display:block; font-size:26px; font-variant-numeric: tabular-nums; }
  .lane small { color:var(--mute); }
  .bar { position:relative; height:14px; background:#eceff4; border-radius:7px; overflow:hidden; min-width:140px; display:flex; }
  .bar span { display:block; height:100%; }
  .s-succeeded { background:var(--ok); } .s-failed { background:var(--bad); } .s-cancelled { background:#999; }
  .s-running { background:var(--run); } .s-queued { background:var(--wait); }
  .pill { display:inline-block; padding:0 6px; border-radius:8px; color:#fff; font-size:11px; }
  svg { width:100%; height:120px; display:block; }
  svg text { font-size:10px; fill:var(--mute); }
  .legend { font-size:12px; color:var(--mute); }
  .legend i { display:inline-block; width:10px; height:3px; margin:0 4px 2px 10px; vertical-align:middle; }
  a.job { color:var(--run); cursor:pointer; text-decoration:none; }
  #detail { grid-column: 1 / -1; }
  #detail pre { background:#f3f4f7; padding:8px; border-radius:6px; max-height:260px; overflow:auto; white-space:pre-wrap; word-break:break-word; }
  .empty { color:var(--mute); font-style:italic; }
  #signout { background:none; border:1px solid #556; color:#ccd; border-radius:4px; padding:2px 8px; cursor:pointer; }
  #login { max-width:360px; margin:48px auto; display:flex; flex-direction:column; gap:10px; }
  #login input { font:inherit; padding:6px 8px; border:1px solid var(--line); border-radius:4px; }
  #login button { font:inherit; padding:6px 8px; background:#1d2330; color:#fff; border:0; border-radius:4px; cursor:pointer; }
  #login-error { color:var(--bad); min-height:1.4em; }
</style>
</head>
<body>
<header><h1>docket</h1><span id="status">connecting…</span><span id="totals" style="margin-left:auto;font-size:13px"></span><button id="signout" hidden>Sign out</button></header>
<form id="login" hidden>
  <h2>Sign in</h2>
  <label for="key">Admin key (DOCKET_API_KEY)</label>
  <input id="key" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
  <span id="login-error"></span>
</form>
<main id="board" hidden>
  <section><h2>Queue depth per lane</h2><div class="lanes" id="lanes"></div></section>
  <section><h2>Throughput</h2><svg id="chart-throughput" data-testid="chart-throughput"></svg>
    <div class="legend"><i style="background:var(--ok)"></i>jobs/s<i style="background:var(--run)"></i>tokens/s</div></section>
  <section><h2>Batch size and waiting jobs</h2><svg id="chart-batch"></svg>
    <div class="legend"><i style="background:#8a56d4"></i>batch size (all workers)<i style="background:var(--wait)"></i>jobs waiting</div></section>
  <section><h2>Workers</h2><table id="workers"></table></section>
  <section><h2>Recent batches</h2><table id="batches"></table></section>
  <section><h2>Recent jobs</h2><table id="jobs"></table></section>
  <section id="detail" hidden><h2>Job <span id="detail-id"></span></h2><div id="detail-body"></div></section>
</main>
<script>
"use strict";
const STATES = ["succeeded", "failed", "cancelled", "running", "queued"];
const $ = (id) => document.getElementById(id);
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") el.onclick = v; else if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : String(c));
  return el;
}
function table(el, head, rows, empty) {
  el.replaceChildren(h("tr", {}, head.map(([t, cls]) => h("th", { class: cls }, t))));
  if (!rows.length) el.append(h("tr", {}, h("td", { colspan: head.length, class: "empty" }, empty)));
  for (const r of rows) el.append(r);
}
// Document-prefix reuse: share of lookups served without evaluating the document again.
const hitRate = (p) => !p || p.lookups === 0 ? "–" : Math.round((100 * p.hits) / p.lookups) + "% of " + p.lookups;
const ago = (iso) => { const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)); return s < 60 ? s + "s ago" : Math.round(s / 60) + "m ago"; };
const inTime = (iso) => { if (!iso) return ""; const s = Math.max(0, Math.round((Date.parse(iso) - Date.now()) / 1000)); return "~" + (s < 60 ? s + "s" : Math.round(s / 60) + "m"); };
const SVGNS = "http://www.w3.org/2000/svg";
function chart(svg, series) {
  const W = svg.clientWidth || 400, H = 120, L = 34, B = 14;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.replaceChildren();
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => L + (i * (W - L - 4)) / (n - 1), y = (v) => H - B - (v / max) * (H - B - 6);
  const add = (tag, attrs, text) => { const e = document.createElementNS(SVGNS, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; svg.append(e); };
  add("line", { x1: L, y1: H - B, x2: W, y2: H - B, stroke: "#ccd" });
  add("line", { x1: L, y1: 6, x2: L, y2: H - B, stroke: "#ccd" });
  add("text", { x: 2, y: 12 }, (Math.round(max * 10) / 10).toString());
  add("text", { x: 2, y: H - B }, "0");
  add("text", { x: L, y: H - 2 }, (n - 1) + "s ago");
  add("text", { x: W - 24, y: H - 2 }, "now");
  for (const s of series) {
    if (!s.values.length) continue;
    const off = n - s.values.length;
    add("polyline", { fill: "none", stroke: s.color, "stroke-width": 2, points: s.values.map((v, i) => x(i + off) + "," + y(v)).join(" ") });
  }
}
function progress(counts, total) {
  const bar = h("div", { class: "bar", title: STATES.filter((s) => counts[s]).map((s) => s + " " + counts[s]).join(", ") });
  for (const s of STATES) if (counts[s]) bar.append(h("span", { class: "s-" + s, style: "width:" + (100 * counts[s]) / total + "%" }));
  return bar;
}
const pill = (state) => h("span", { class: "pill s-" + state }, state);
async function showJob(id) {
  const res = await fetch("/dashboard/jobs/" + encodeURIComponent(id));
  const body = await res.json();
  $("detail").hidden = false;
  $("detail-id").textContent = id;
  if (!res.ok) { $("detail-body").replaceChildren(h("p", {}, body.error ? body.error.message : res.statusText)); return; }
  const j = body.job;
  const ev = h("table", {});
  table(ev, [["event"], ["attempt", "num"], ["worker"], ["code"], ["at"]], body.events.map((e) => h("tr", {}, h("td", {}, e.kind), h("td", { class: "num" }, e.attempt), h("td", {}, e.workerId), h("td", {}, e.code || ""), h("td", {}, e.at))), "no events yet");
  $("detail-body").replaceChildren(
    h("p", {}, pill(j.state), " ", j.task, " · lane ", j.lane, j.batchId ? " · batch " + j.batchId : "", " · attempts ", j.attempts),
    h("h2", {}, "Result"), h("pre", { "data-testid": "job-result" }, JSON.stringify(j.result || j.error, null, 2)),
    h("h2", {}, "Events"), ev);
}
function render(s) {
  $("totals").textContent = STATES.map((k) => k + " " + (s.jobs[k] || 0)).join(" · ");
  $("lanes").replaceChildren(...["interactive", "default", "batch"].map((lane) => {
    const d = s.queue ? s.queue[lane] : null;
    return h("div", { class: "lane", "data-lane": lane }, h("small", {}, lane), h("b", {}, d ? d.pending : "?"), h("small", {}, d ? d.ackPending + " with workers" : "NATS unreachable"));
  }));
  chart($("chart-throughput"), [
    { color: "#2e9d5b", values: s.history.map((p) => p.jobsPerSecond) },
    { color: "#3b73d4", values: s.history.map((p) => p.tokensPerSecond) },
  ]);
  chart($("chart-batch"), [
    { color: "#8a56d4", values: s.history.map((p) => p.batchSize) },
    { color: "#c99a1d", values: s.history.map((p) => p.pending) },
  ]);
  table($("workers"), [["worker"], ["model"], ["batch", "num"], ["running", "num"], ["tok/s", "num"], ["prefix hits", "num"], ["seen"]],
    s.workers.map((w) => h("tr", { "data-worker": w.id, style: w.alive ? "" : "opacity:.5" }, h("td", {}, w.id), h("td", {}, w.model),
      h("td", { class: "num" }, w.batchSize + "/" + w.sequences), h("td", { class: "num" }, w.running), h("td", { class: "num" }, w.tokensPerSecond),
      h("td", { class: "num", "data-prefix-hits": w.prefix ? w.prefix.hits : "" }, hitRate(w.prefix)),
      h("td", {}, w.alive ? ago(w.at) : "gone " + ago(w.at)))), "no workers");
  table($("batches"), [["batch"], ["progress"], ["done", "num"], ["finishes"], ["updated"]],
    s.batches.map((b) => h("tr", { "data-batch": b.batchId, "data-done": b.done, "data-total": b.total }, h("td", {}, b.batchId), h("td", {}, progress(b.counts, b.total)),
      h("td", { class: "num" }, b.done + "/" + b.total), h("td", {}, inTime(b.estimatedFinishAt)), h("td", {}, ago(b.updatedAt)))), "no batches yet");
  table($("jobs"), [["job"], ["state"], ["task"], ["lane"], ["batch"]],
    s.recentJobs.map((j) => h("tr", { "data-job": j.id }, h("td", {}, h("a", { class: "job", onclick: () => showJob(j.id) }, j.id)), h("td", {}, pill(j.state)),
      h("td", {}, j.task), h("td", {}, j.lane), h("td", {}, j.batchId || ""))), "no jobs yet");
}
function connect() {
  const es = new EventSource("/dashboard/stream");
  es.addEventListener("snapshot", (e) => { $("status").textContent = "live"; $("status").className = "live"; render(JSON.parse(e.data)); });
  es.onerror = () => {
    $("status").textContent = "reconnecting…"; $("status").className = "";
    // A refused stream (signed out, session expired) is not retried by the browser: ask the server again.
    if (es.readyState === EventSource.CLOSED) setTimeout(start, 1000);
  };
}
// With auth on, the page signs in once with the admin key: the server answers with a session cookie that only
// this page's own requests carry (SameSite=Strict, HttpOnly, Path=/dashboard). The key itself is not kept.
async function start() {
  const res = await fetch("/dashboard/session");
  const s = res.ok ? await res.json() : { auth: true, signedIn: false };
  $("signout").hidden = !s.auth || !s.signedIn;
  $("login").hidden = s.signedIn;
  $("board").hidden = !s.signedIn;
  if (s.signedIn) connect(); else { $("status").textContent = "signed out"; $("key").focus(); }
}
const json = { "content-type": "application/json" };
$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const res = await fetch("/dashboard/session", { method: "POST", headers: json, body: JSON.stringify({ key: $("key").value }) });
  $("key").value = "";
  if (res.ok) { $("login-error").textContent = ""; start(); return; }
  const body = await res.json().catch(() => ({}));
  $("login-error").textContent = body.error ? body.error.message : res.statusText;
});
$("signout").addEventListener("click", async () => { await fetch("/dashboard/session", { method: "DELETE" }); location.reload(); });
start();
</script>
</body>
</html>
`;
