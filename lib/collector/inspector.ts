/**
 * The inspector: one self-contained page (inline CSS and script, no external
 * assets, no build step) that `tally serve` answers at `GET /`. It loads
 * `/api/events` and `/api/stats`, then stays live through the server-sent
 * events of `/api/stream`. Message data is only ever written with
 * `textContent`, never parsed as HTML.
 *
 * @module
 */

const STYLE = `
:root { color-scheme: light dark; --bg: #f7f7f8; --panel: #fff; --text: #1d1d1f; --muted: #6b6b73; --line: #e2e2e6;
  --accent: #2f6fde; --good: #1a7f37; --bad: #c62828; --sel: #e8f0fe; --code: #f2f2f5; }
@media (prefers-color-scheme: dark) { :root { --bg: #141416; --panel: #1c1c1f; --text: #ececf0; --muted: #9a9aa3;
  --line: #2e2e33; --accent: #7aa7ff; --good: #4cc36b; --bad: #ff6b6b; --sel: #24324d; --code: #232327; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg);
  color: var(--text); height: 100vh; display: flex; flex-direction: column; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 16px; background: var(--panel);
  border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 16px; margin: 0; font-weight: 600; }
.conn { font-size: 12px; color: var(--muted); display: flex; align-items: center; gap: 6px; }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--bad); }
.conn[data-state="live"]::before { background: var(--good); }
.counters { display: flex; gap: 6px; flex-wrap: wrap; margin-left: auto; }
.counter { border: 1px solid var(--line); border-radius: 6px; padding: 2px 8px; font-size: 12px; background: var(--bg); }
.counter b { font-variant-numeric: tabular-nums; }
.counter .bad { color: var(--bad); }
.toolbar { display: flex; gap: 8px; padding: 8px 16px; align-items: center; border-bottom: 1px solid var(--line);
  background: var(--panel); flex-wrap: wrap; }
.toolbar label { font-size: 12px; color: var(--muted); display: flex; gap: 6px; align-items: center; }
select, input, button { font: inherit; color: inherit; background: var(--bg); border: 1px solid var(--line);
  border-radius: 6px; padding: 4px 8px; }
input[type="search"] { width: 280px; }
button { cursor: pointer; }
button:hover { border-color: var(--accent); }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
.hint { font-size: 12px; color: var(--muted); margin-left: auto; }
kbd { font: 11px ui-monospace, monospace; border: 1px solid var(--line); border-radius: 4px; padding: 0 4px; }
main { flex: 1; display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); min-height: 0; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; grid-template-rows: 1fr 1fr; } }
.list { overflow: auto; border-right: 1px solid var(--line); background: var(--panel); }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { position: sticky; top: 0; background: var(--panel); text-align: left; font-weight: 600; color: var(--muted);
  font-size: 12px; padding: 6px 10px; border-bottom: 1px solid var(--line); }
td { padding: 5px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; max-width: 260px; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: var(--bg); }
tbody tr[aria-selected="true"] { background: var(--sel); }
td.time { font-variant-numeric: tabular-nums; color: var(--muted); }
.type { font: 12px ui-monospace, monospace; }
.badge { font-size: 11px; font-weight: 600; padding: 1px 6px; border-radius: 10px; color: #fff; }
.badge.good { background: var(--good); }
.badge.bad { background: var(--bad); }
.empty { padding: 24px; color: var(--muted); text-align: center; }
.detail { overflow: auto; padding: 12px 16px; min-width: 0; }
.detail h2 { font-size: 14px; margin: 0 0 8px; }
.reasons { margin: 0 0 12px; padding: 8px 12px 8px 28px; border-radius: 6px; border: 1px solid var(--bad);
  color: var(--bad); }
.ok { color: var(--good); margin: 0 0 12px; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 0;
  font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; word-break: break-word; }
`;

const SCRIPT = `
"use strict";
var TYPES = ["identify", "track", "page", "screen", "group", "alias"];
var MAX_ROWS = 2000;
var events = [];
var selectedId = null;
var $ = function (id) { return document.getElementById(id); };
var tbody = $("rows"), typeFilter = $("type-filter"), statusFilter = $("status-filter"), search = $("search");

function el(tag, text, className) {
  var node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}
function user(m) { return m.userId != null ? String(m.userId) : m.anonymousId != null ? "anon " + m.anonymousId : ""; }
function label(m) {
  if (m.type === "track") return m.event == null ? "" : String(m.event);
  if (m.type === "page" || m.type === "screen") return [m.category, m.name].filter(function (x) { return x != null; }).join(" / ");
  if (m.type === "group") return m.groupId == null ? "" : "group " + m.groupId;
  if (m.type === "alias") return m.previousId == null ? "" : "from " + m.previousId;
  return m.traits && m.traits.email ? String(m.traits.email) : "";
}
function matches(e) {
  var type = typeFilter.value, status = statusFilter.value, text = search.value.trim().toLowerCase();
  if (type && e.message.type !== type) return false;
  if (status && e.status !== status) return false;
  if (text) {
    if (e.haystack === undefined) e.haystack = JSON.stringify(e.message).toLowerCase() + " " + e.reasons.join(" ").toLowerCase();
    if (e.haystack.indexOf(text) < 0) return false;
  }
  return true;
}
function row(e) {
  var tr = document.createElement("tr");
  tr.dataset.id = String(e.id);
  tr.dataset.testid = "event-row";
  tr.tabIndex = e.id === selectedId ? 0 : -1;
  tr.setAttribute("role", "option");
  tr.setAttribute("aria-selected", String(e.id === selectedId));
  var time = new Date(e.receivedAt);
  tr.append(el("td", time.toLocaleTimeString([], { hour12: false }), "time"), el("td", e.message.type == null ? "?" : String(e.message.type), "type"),
    el("td", user(e.message)), el("td", label(e.message)));
  var status = el("td");
  status.append(el("span", e.status, "badge " + e.status));
  tr.append(status);
  tr.addEventListener("click", function () { select(e.id, true); });
  return tr;
}
function render() {
  tbody.replaceChildren();
  var shown = 0;
  for (var i = 0; i < events.length && shown < MAX_ROWS; i++) {
    if (matches(events[i])) { tbody.append(row(events[i])); shown++; }
  }
  roving();
  $("empty").hidden = shown > 0;
  $("empty").textContent = events.length === 0 ? "No messages yet. Point a client at this collector and send some." : "No message matches the filters.";
}
// One row is in the Tab order: the selected one, else the newest.
function roving() {
  var rows = tbody.children, any = false;
  for (var i = 0; i < rows.length; i++) if (rows[i].tabIndex === 0) any = true;
  if (!any && rows.length > 0) rows[0].tabIndex = 0;
}
var statsTimer = null;
function statsSoon() {
  if (statsTimer === null) statsTimer = setTimeout(function () { statsTimer = null; refreshStats(); }, 250);
}
function add(e) {
  statsSoon();
  events.unshift(e);
  if (events.length > MAX_ROWS) events.length = MAX_ROWS;
  if (!matches(e)) return;
  tbody.prepend(row(e));
  if (tbody.children.length > MAX_ROWS) tbody.lastElementChild.remove();
  if (tbody.children.length > 1 && selectedId === null) tbody.children[1].tabIndex = -1;
  roving();
  $("empty").hidden = true;
}
function find(id) { for (var i = 0; i < events.length; i++) if (events[i].id === id) return events[i]; return null; }
function select(id, focus) {
  selectedId = id;
  var rows = tbody.children, target = null;
  for (var i = 0; i < rows.length; i++) {
    var on = rows[i].dataset.id === String(id);
    rows[i].setAttribute("aria-selected", String(on));
    rows[i].tabIndex = on ? 0 : -1;
    if (on) target = rows[i];
  }
  if (target && focus) { target.focus({ preventScroll: true }); target.scrollIntoView({ block: "nearest" }); }
  var e = find(id), detail = $("detail");
  detail.replaceChildren();
  if (!e) { detail.append(el("p", "Select a message to see it as it arrived.", "empty")); return; }
  var m = e.message;
  detail.append(el("h2", (m.type || "message") + " " + (m.messageId || "") + " (received " + new Date(e.receivedAt).toLocaleString() + ")"));
  if (e.reasons.length > 0) {
    var list = el("ul", undefined, "reasons");
    list.dataset.testid = "reasons";
    list.setAttribute("aria-label", "Validation problems");
    e.reasons.forEach(function (r) { list.append(el("li", r)); });
    detail.append(list);
  } else {
    detail.append(el("p", "Valid: matches the Segment spec.", "ok"));
  }
  var pre = el("pre", JSON.stringify(m, null, 2));
  pre.dataset.testid = "event-json";
  detail.append(pre);
}
function move(step) {
  var rows = Array.prototype.slice.call(tbody.children);
  if (rows.length === 0) return;
  var at = rows.findIndex(function (r) { return r.dataset.id === String(selectedId); });
  var next = at < 0 ? 0 : Math.max(0, Math.min(rows.length - 1, at + step));
  select(Number(rows[next].dataset.id), true);
}
function stats(s) {
  var box = $("counters");
  box.replaceChildren();
  function counter(name, good, bad, testid) {
    var c = el("span", undefined, "counter");
    c.dataset.testid = testid;
    c.append(name + " ", el("b", String(good + bad)));
    if (bad > 0) { c.append(" "); c.append(el("span", "(" + bad + " bad)", "bad")); }
    box.append(c);
  }
  counter("all", s.good, s.bad, "count-all");
  TYPES.forEach(function (t) { var c = s.byType[t] || { good: 0, bad: 0 }; counter(t, c.good, c.bad, "count-" + t); });
  if (s.evicted > 0) box.append(el("span", s.evicted + " evicted", "counter"));
}
function refreshStats() { fetch("/api/stats").then(function (r) { return r.json(); }).then(stats).catch(function () {}); }
function load() {
  return fetch("/api/events?limit=" + MAX_ROWS).then(function (r) { return r.json(); }).then(function (body) {
    events = body.events;
    render();
    refreshStats();
  });
}
function connect() {
  var conn = $("conn");
  var source = new EventSource("/api/stream");
  source.onopen = function () { conn.dataset.state = "live"; conn.textContent = "live"; };
  source.onerror = function () { conn.dataset.state = "down"; conn.textContent = "reconnecting…"; };
  source.addEventListener("message", function (m) { add(JSON.parse(m.data)); });
  source.addEventListener("stats", function (m) { stats(JSON.parse(m.data)); });
  source.addEventListener("clear", function () { events = []; selectedId = null; render(); select(null); refreshStats(); });
}
typeFilter.addEventListener("change", render);
statusFilter.addEventListener("change", render);
search.addEventListener("input", render);
$("clear").addEventListener("click", function () { fetch("/api/events", { method: "DELETE" }); });
document.addEventListener("keydown", function (k) {
  var typing = k.target instanceof HTMLInputElement || k.target instanceof HTMLSelectElement;
  if (k.key === "/" && !typing) { k.preventDefault(); search.focus(); return; }
  if (k.key === "Escape" && k.target === search) { search.value = ""; render(); search.blur(); return; }
  if (typing) return;
  if (k.key === "ArrowDown" || k.key === "j") { k.preventDefault(); move(1); }
  else if (k.key === "ArrowUp" || k.key === "k") { k.preventDefault(); move(-1); }
  else if (k.key === "Enter" && k.target instanceof HTMLTableRowElement) select(Number(k.target.dataset.id), true);
});
load().then(connect, function () { $("conn").textContent = "cannot reach the collector"; });
`;

/** The inspector page served at `GET /`. */
export const INSPECTOR_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tally collector · inspector</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>Tally collector</h1>
  <span id="conn" class="conn" role="status" aria-live="polite">connecting…</span>
  <div id="counters" class="counters" aria-label="Messages per type"></div>
  <button id="clear" type="button" title="Forget every stored message">Clear</button>
</header>
<div class="toolbar" role="search">
  <label>Type <select id="type-filter"><option value="">all</option><option>identify</option><option>track</option>
    <option>page</option><option>screen</option><option>group</option><option>alias</option></select></label>
  <label>Status <select id="status-filter"><option value="">all</option><option value="good">good</option>
    <option value="bad">bad</option></select></label>
  <label>Search <input id="search" type="search" placeholder="text anywhere in the JSON" autocomplete="off"></label>
  <span class="hint"><kbd>/</kbd> search · <kbd>↑</kbd><kbd>↓</kbd> or <kbd>j</kbd><kbd>k</kbd> move · newest first</span>
</div>
<main>
  <section class="list" aria-label="Messages">
    <table>
      <thead><tr><th>Time</th><th>Type</th><th>User</th><th>Event or name</th><th>Spec</th></tr></thead>
      <tbody id="rows" role="listbox" aria-label="Messages, newest first"></tbody>
    </table>
    <p id="empty" class="empty">Loading…</p>
  </section>
  <section id="detail" class="detail" aria-label="Selected message" aria-live="polite">
    <p class="empty">Select a message to see it as it arrived.</p>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
