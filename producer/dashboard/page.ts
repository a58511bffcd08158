import { DASHBOARD_SCRIPT } from "./script.ts";

/**
 * The dashboard page: one self-contained HTML document (no build step, no CDN). Its script (script.ts) follows
 * /dashboard/stream and draws the charts as SVG. Nothing here holds data: the page asks for it once signed in.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docket dashboard</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --mute:#6b7385; --line:#e3e6ec; --ok:#2e9d5b; --bad:#d4483b; --run:#3b73d4; --wait:#c99a1d; --violet:#8a56d4; --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
  * { box-sizing: border-box; }
  [hidden] { display: none !important; }
  body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; flex-wrap:wrap; align-items:center; gap:8px 18px; padding:10px 20px; background:#1d2330; color:#fff; position:sticky; top:0; z-index:5; }
  header h1 { font-size:18px; margin:0; }
  #status { font-size:12px; color:#aab; }
  #status.live::before { content:"● "; color:#4cd07d; }
  .totals { font-size:13px; display:flex; gap:6px 12px; flex-wrap:wrap; }
  .totals b { font-variant-numeric: tabular-nums; }
  .totals .k { color:#aab; }
  #totals { margin-left:auto; }
  #alerts { padding:0 20px; }
  .alert { margin:12px 0 0; padding:10px 14px; border-radius:6px; border:1px solid; }
  .alert.error { background:#fdecea; border-color:#f1b0a9; color:#7d1d14; }
  .alert.warning { background:#fff6dd; border-color:#ecd38a; color:#6b5206; }
  .alert b { margin-right:6px; }
  main { display:grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap:16px; padding:16px 20px; }
  @media (max-width: 1100px) { main { grid-template-columns: minmax(0, 1fr); } }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:0; }
  section.wide { grid-column: 1 / -1; }
  .scroll { overflow-x:auto; }
  h2 { font-size:13px; text-transform:uppercase; letter-spacing:.04em; color:var(--mute); margin:0 0 10px; display:flex; align-items:center; gap:10px; flex-wrap:wrap; }
  h2 .aside { text-transform:none; letter-spacing:0; font-weight:400; }
  table { width:100%; border-collapse:collapse; font-size:13px; }
  th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); white-space:nowrap; vertical-align:middle; }
  th { color:var(--mute); font-weight:600; }
  td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
  td.title { white-space:normal; min-width:10em; max-width:24em; overflow-wrap:anywhere; }
  tfoot td { font-weight:600; border-bottom:0; }
  code.id { font-family:var(--mono); font-size:12.5px; text-transform:none; }
  #drawer .top code.id { user-select:all; }
  a { color:var(--run); text-decoration:none; }
  a:hover { text-decoration:underline; }
  .lanes { display:flex; gap:12px; }
  .lane { flex:1; border:1px solid var(--line); border-radius:6px; padding:8px 10px; min-width:0; }
  .lane b { display:block; font-size:26px; font-variant-numeric: tabular-nums; }
  .lane small { color:var(--mute); display:block; }
  .bar { position:relative; height:14px; background:#eceff4; border-radius:7px; overflow:hidden; min-width:160px; display:flex; }
  .bar span { display:block; height:100%; }
  .pill { display:inline-block; padding:0 7px; border-radius:8px; color:#fff; font-size:11px; background:#667; }
  .s-succeeded { background:var(--ok); } .s-failed { background:var(--bad); } .s-cancelled { background:#999; }
  .s-running { background:var(--run); } .s-queued { background:var(--wait); }
  .s-completed { background:var(--ok); } .s-in_progress, .s-cancelling { background:var(--run); }
  .s-validating, .s-finalizing { background:var(--wait); } .s-expired { background:#999; }
  .charts { display:grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap:8px 20px; }
  figure { margin:0; min-width:0; }
  figcaption { font-size:12px; color:var(--mute); display:flex; gap:10px; flex-wrap:wrap; }
  figcaption b { color:var(--ink); font-variant-numeric: tabular-nums; }
  svg.chart { width:100%; height:130px; display:block; }
  svg text { font-size:10px; fill:var(--mute); font-family: system-ui, sans-serif; }
  .legend i { display:inline-block; width:10px; height:3px; margin:0 4px 2px 0; vertical-align:middle; }
  .chips { display:inline-flex; gap:4px; flex-wrap:wrap; }
  .chips button, button.small { font:inherit; font-size:12px; text-transform:none; letter-spacing:0; border:1px solid var(--line); background:#fff; color:var(--ink); border-radius:12px; padding:1px 9px; cursor:pointer; }
  .chips button[aria-pressed="true"] { background:var(--ink); color:#fff; border-color:var(--ink); }
  button.act { font:inherit; font-size:12px; border:1px solid var(--line); background:#fff; border-radius:4px; padding:1px 8px; cursor:pointer; }
  button.act.danger { color:var(--bad); border-color:#f1b0a9; }
  button.act:disabled { opacity:.5; cursor:default; }
  .empty { color:var(--mute); font-style:italic; }
  .muted { color:var(--mute); }
  .waiting { color:#8a6d0b; white-space:normal; }
  .note { color:var(--mute); font-size:12px; margin:6px 0 0; }
  #signout { background:none; border:1px solid #556; color:#ccd; border-radius:4px; padding:2px 8px; cursor:pointer; }
  #login, #actkey form { max-width:380px; margin:48px auto; display:flex; flex-direction:column; gap:10px; }
  #login input, #actkey input { font:inherit; padding:6px 8px; border:1px solid var(--line); border-radius:4px; }
  #login button, #actkey button { font:inherit; padding:6px 8px; background:#1d2330; color:#fff; border:0; border-radius:4px; cursor:pointer; }
  #actkey button.secondary { background:#fff; color:var(--ink); border:1px solid var(--line); }
  #login-error, #actkey-error { color:var(--bad); min-height:1.4em; }
  #drawer { position:fixed; top:0; right:0; bottom:0; width:min(980px, 100vw); background:var(--card); border-left:1px solid var(--line); box-shadow:-8px 0 24px rgba(20,30,50,.15); overflow:auto; z-index:10; padding:14px 20px 40px; }
  #drawer .top { display:flex; align-items:center; gap:10px; flex-wrap:wrap; }
  #drawer .top h3 { margin:0; font-size:16px; }
  #drawer .top code.id { font-size:14px; }
  #drawer .close { margin-left:auto; font-size:20px; border:0; background:none; cursor:pointer; color:var(--mute); }
  #drawer .doc { font-size:17px; font-weight:600; margin:10px 0 4px; word-break:break-all; }
  #drawer dl { display:grid; grid-template-columns: max-content 1fr; gap:3px 14px; margin:10px 0; font-size:13px; }
  #drawer dt { color:var(--mute); }
  #drawer dd { margin:0; min-width:0; word-break:break-all; }
  #drawer pre { background:#f3f4f7; padding:8px; border-radius:6px; max-height:320px; overflow:auto; white-space:pre-wrap; word-break:break-word; }
  #drawer .actions { display:flex; gap:8px; margin:10px 0; }
  #drawer .actions button { font:inherit; padding:4px 12px; border-radius:4px; border:1px solid var(--line); background:#fff; cursor:pointer; }
  #drawer .actions button.danger { color:#fff; background:var(--bad); border-color:var(--bad); }
  #actkey { position:fixed; inset:0; background:rgba(20,30,50,.35); z-index:20; }
  #actkey form { background:#fff; padding:18px; border-radius:8px; margin-top:15vh; }
  #toast { position:fixed; left:50%; bottom:20px; transform:translateX(-50%); background:#1d2330; color:#fff; padding:8px 14px; border-radius:6px; z-index:30; max-width:90vw; }
  #toast.bad { background:var(--bad); }
</style>
</head>
<body>
<header>
  <h1>docket</h1><span id="status">connecting…</span>
  <div id="totals" class="totals" hidden></div>
  <button id="signout" hidden>Sign out</button>
</header>
<form id="login" hidden>
  <h2>Sign in</h2>
  <label for="key">Admin key (DOCKET_API_KEY)</label>
  <input id="key" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
  <span id="login-error"></span>
</form>
<div id="alerts" role="alert"></div>
<main id="board" hidden>
  <section class="wide"><h2>History <span class="chips" id="range"></span><span class="aside" id="history-note"></span></h2>
    <div class="charts">
      <figure><svg class="chart" id="chart-tokens" data-testid="chart-tokens"></svg><figcaption id="cap-tokens"></figcaption></figure>
      <figure><svg class="chart" id="chart-jobs" data-testid="chart-jobs"></svg><figcaption id="cap-jobs"></figcaption></figure>
      <figure><svg class="chart" id="chart-running" data-testid="chart-running"></svg><figcaption id="cap-running"></figcaption></figure>
      <figure><svg class="chart" id="chart-waiting" data-testid="chart-waiting"></svg><figcaption id="cap-waiting"></figcaption></figure>
    </div>
  </section>
  <section><h2>Queue per lane</h2><div class="lanes" id="lanes"></div></section>
  <section><h2>Queue wait and run time <span class="aside" id="latency-note"></span></h2><div class="scroll"><table id="latency"></table></div></section>
  <section><h2>Failures by error code</h2><div class="scroll"><table id="failures"></table></div></section>
  <section class="wide"><h2>Workers</h2><div class="scroll"><table id="workers"></table></div>
    <p class="note">In flight: jobs a worker is running now. Batch size: how many sequences its batcher lets the batch lanes decode together (it may lower it while more jobs still finish on their slots). Sequences: what its context holds, one kept for the interactive lane.</p></section>
  <section class="wide"><h2>Models</h2><div class="scroll"><table id="models"></table></div>
    <p class="note">Jobs naming a model run only on workers serving it; "default" is the jobs naming none. A model no live worker serves keeps its jobs queued until one starts.</p></section>
  <section class="wide"><h2>Batches</h2><div class="scroll"><table id="batches"></table></div></section>
  <section class="wide"><h2>Jobs <span class="chips" id="job-filter"></span></h2><div class="scroll"><table id="jobs"></table></div></section>
</main>
<aside id="drawer" hidden aria-live="polite"></aside>
<div id="actkey" hidden><form>
  <h2>Admin key</h2>
  <label for="actkey-input" id="actkey-label">Cancel and retry use the API with the admin key; this tab keeps it in memory until it is closed or reloaded.</label>
  <input id="actkey-input" type="password" autocomplete="current-password" required>
  <button type="submit">Continue</button><button type="button" class="secondary" id="actkey-cancel">Back</button>
  <span id="actkey-error"></span>
</form></div>
<div id="toast" hidden></div>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
