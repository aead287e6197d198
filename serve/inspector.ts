/**
 * The inspector: one self-contained page (inline CSS and script, no external
 * assets, no build step) that `tally serve` answers at `GET /`. It subscribes
 * to the server-sent events of `/api/stream`, then loads `/api/events` and
 * `/api/stats` (so nothing stored between the two is missed: the stream's
 * messages wait until the snapshot is in, and those it already holds are
 * dropped by id), and reloads after every reconnect; a filtered DELETE's ids
 * take their rows away. Messages are drawn in batches, at most every 40 ms,
 * and the page keeps at most 2000, so a flood cannot freeze it. Message data is only ever written as text
 * (`textContent`, `append(string)`, `title`), never parsed as HTML. Each row shows the first reason a bad
 * message is bad, a duplicate badge, and the library that sent it; with a tracking plan (`tally serve --plan`),
 * the first violation, a "plan" badge and a "blocked" one, all of them (category and path) in the detail, and a
 * plan filter (off plan, on plan, blocked, or one category). The filters (type, status, source, duplicates, plan,
 * search) live in the URL's hash, so a view can be reloaded or shared. Below 640 px wide the time
 * and source columns give way, so the status stays in view. Clear asks first.
 *
 * @module
 */
import { VIOLATION_CATEGORIES } from "../plan/model.ts";

const STYLE = `
:root { color-scheme: light dark;
  --bg: #f5f6f8; --panel: #fff; --text: #1b1e23; --muted: #5d6570; --line: #e3e6ea; --line-strong: #cdd2d8;
  --accent: #2158d6; --accent-soft: #e9f0fe; --good: #15703f; --good-soft: #e4f4ea; --bad: #b3261e; --bad-soft: #fcebea;
  --plan: #8a5300; --plan-soft: #fdf1dc;
  --code: #f6f7f9; --hover: #f2f4f7; --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
@media (prefers-color-scheme: dark) { :root {
  --bg: #0f1114; --panel: #171a1e; --text: #e5e8ec; --muted: #9aa3ae; --line: #272b31; --line-strong: #39404a;
  --accent: #7ca3ff; --accent-soft: #1d2a45; --good: #5fd08a; --good-soft: #12311f; --bad: #ff8a80; --bad-soft: #3b1715;
  --plan: #f0b45a; --plan-soft: #3a2a10;
  --code: #12151a; --hover: #1d2126; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html, body { height: 100%; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg);
  color: var(--text); display: flex; flex-direction: column; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
button, select, input { font: inherit; color: inherit; }
button, select { cursor: pointer; }
kbd { font: 11px/1 var(--mono); border: 1px solid var(--line-strong); border-bottom-width: 2px; border-radius: 4px;
  padding: 2px 5px; background: var(--panel); }

.bar { display: flex; align-items: center; gap: 14px; padding: 10px 16px; background: var(--panel);
  border-bottom: 1px solid var(--line); flex-wrap: wrap; }
h1 { font-size: 15px; margin: 0; font-weight: 650; letter-spacing: -0.01em; }
h1 span { color: var(--muted); font-weight: 500; }
.conn { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted);
  border: 1px solid var(--line); border-radius: 999px; padding: 2px 10px 2px 8px; }
.conn::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #d29a00; }
.conn[data-state="live"]::before { background: var(--good); box-shadow: 0 0 0 3px var(--good-soft); }
.conn[data-state="down"]::before { background: var(--bad); }
.summary { display: flex; gap: 14px; margin-left: auto; font-size: 12px; color: var(--muted); flex-wrap: wrap; }
.summary b { color: var(--text); font-weight: 600; font-variant-numeric: tabular-nums; }
.summary .bad[data-some] b { color: var(--bad); }
.btn { background: var(--panel); border: 1px solid var(--line-strong); border-radius: 6px; padding: 4px 12px;
  font-size: 13px; }
.btn:hover { border-color: var(--accent); color: var(--accent); }
.btn.danger:hover { border-color: var(--bad); color: var(--bad); }

.toolbar { display: flex; align-items: center; gap: 10px 16px; padding: 8px 16px; background: var(--panel);
  border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.chips { display: flex; gap: 6px; flex-wrap: wrap; }
.chip { display: inline-flex; align-items: center; gap: 6px; border: 1px solid var(--line); background: var(--bg);
  border-radius: 999px; padding: 2px 10px; font-size: 12.5px; }
.chip:hover { border-color: var(--line-strong); }
.chip[aria-pressed="true"] { background: var(--accent-soft); border-color: var(--accent); color: var(--accent); }
.chip .n { font-weight: 600; font-variant-numeric: tabular-nums; }
.chip .nbad { color: var(--bad); background: var(--bad-soft); border-radius: 999px; padding: 0 6px; font-size: 11px;
  font-weight: 600; }
.field { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; color: var(--muted); }
.field select, .field input { background: var(--bg); border: 1px solid var(--line-strong); border-radius: 6px;
  padding: 4px 8px; font-size: 13px; color: var(--text); }
.search { position: relative; flex: 1 1 240px; max-width: 420px; }
.search input { width: 100%; padding-right: 30px; }
.search kbd { position: absolute; right: 8px; top: 50%; transform: translateY(-50%); pointer-events: none; }
.shown { font-size: 12px; color: var(--muted); margin-left: auto; font-variant-numeric: tabular-nums; }

main { flex: 1; display: grid; grid-template-columns: minmax(0, 11fr) minmax(0, 9fr); min-height: 0; }
@media (max-width: 900px) { main { grid-template-columns: 1fr; grid-template-rows: minmax(0, 1fr) minmax(0, 1fr); }
  .list { border-right: 0; border-bottom: 1px solid var(--line); } .summary { margin-left: 0; } }
.list { overflow: auto; background: var(--panel); border-right: 1px solid var(--line); scroll-padding-top: 34px; }
table { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 13px; }
th { position: sticky; top: 0; z-index: 1; background: var(--panel); text-align: left; font-weight: 600; font-size: 11px;
  text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); padding: 8px 10px;
  border-bottom: 1px solid var(--line-strong); }
th.c-time { width: 108px; } th.c-type { width: 84px; } th.c-user { width: 22%; } th.c-status { width: 96px; }
th.c-source { width: 120px; }
.reason { color: var(--bad); font-size: 12px; margin-left: 8px; }
.what .reason:first-child { margin-left: 0; }
.badge.dup { color: var(--accent); background: var(--accent-soft); margin-left: 4px; padding: 0 6px; }
.violation { color: var(--plan); font-size: 12px; margin-left: 8px; }
.what .violation:first-child { margin-left: 0; }
.badge.plan { color: var(--plan); background: var(--plan-soft); margin-left: 4px; padding: 0 6px; }
.badge.blocked { color: var(--panel); background: var(--plan); margin-left: 4px; padding: 0 6px; }
.summary .plan[data-some] b { color: var(--plan); }
.violations { border: 1px solid var(--plan); background: var(--plan-soft); color: var(--text); border-radius: 8px;
  padding: 10px 14px; margin: 0 0 14px; }
.violations h3 { color: var(--plan); }
.violations ul { margin: 6px 0 0; padding-left: 18px; }
.violations li { margin: 2px 0; }
.violations code { font: 12px var(--mono); }
.violations .cat { font-weight: 600; margin-right: 6px; }
td.source { font-size: 12px; color: var(--muted); }
@media (max-width: 640px) { th.c-time, td.time, th.c-source, td.source, .keys > span:not(.shown) { display: none; }
  th.c-type { width: 64px; } th.c-user { width: 30%; } th, td { padding-left: 6px; padding-right: 6px; }
  .bar, .toolbar { padding: 8px 10px; gap: 8px; } .search { flex-basis: 100%; max-width: none; } }
td { padding: 6px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: var(--hover); }
tbody tr[aria-selected="true"] { background: var(--accent-soft); box-shadow: inset 3px 0 0 var(--accent); }
tbody tr:focus-visible { outline: 2px solid var(--accent); outline-offset: -2px; }
td.time { font: 12px var(--mono); color: var(--muted); }
td.type { font: 12px var(--mono); }
td.what:empty::after, td.user:empty::after, td.type:empty::after { content: "—"; color: var(--muted); }
.tag { color: var(--muted); font-size: 11px; margin-right: 4px; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; line-height: 18px; padding: 0 8px; border-radius: 999px; }
.badge.good { color: var(--good); background: var(--good-soft); }
.badge.bad { color: var(--bad); background: var(--bad-soft); }
.empty { padding: 40px 24px; color: var(--muted); text-align: center; }
.empty p { margin: 0 0 8px; }
.empty code { font: 12px var(--mono); background: var(--code); border: 1px solid var(--line); border-radius: 4px;
  padding: 1px 6px; color: var(--text); }

.detail { overflow: auto; padding: 16px 20px; min-width: 0; }
.detail:focus-visible { outline-offset: -2px; }
.placeholder { color: var(--muted); padding: 24px 0; }
.detail-head { display: flex; align-items: center; gap: 10px; margin-bottom: 10px; }
.detail h2 { font-size: 16px; margin: 0; font-weight: 600; min-width: 0; overflow-wrap: anywhere; }
.detail h2 .type-tag { font: 12px var(--mono); color: var(--muted); border: 1px solid var(--line-strong);
  border-radius: 4px; padding: 1px 6px; margin-right: 8px; vertical-align: 2px; }
.detail h3 { font-size: 12px; margin: 0; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
.meta { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 2px 14px; margin: 0 0 14px;
  font-size: 12.5px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; font-family: var(--mono); font-size: 12px; overflow-wrap: anywhere; }
.reasons { border: 1px solid var(--bad); background: var(--bad-soft); color: var(--text); border-radius: 8px;
  padding: 10px 14px; margin: 0 0 14px; }
.reasons h3 { color: var(--bad); }
.reasons ul { margin: 6px 0 0; padding-left: 18px; }
.reasons li { margin: 2px 0; }
.valid { border: 1px solid var(--good); background: var(--good-soft); color: var(--good); border-radius: 8px;
  padding: 8px 14px; margin: 0 0 14px; font-weight: 500; }
.json-head { display: flex; align-items: center; justify-content: space-between; margin-bottom: 6px; }
.json-head .btn { font-size: 12px; padding: 2px 10px; }
pre { background: var(--code); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin: 0;
  font: 12.5px/1.55 var(--mono); white-space: pre-wrap; overflow-wrap: anywhere; tab-size: 2; }

.keys { display: flex; gap: 14px; flex-wrap: wrap; padding: 6px 16px; font-size: 12px; color: var(--muted);
  background: var(--panel); border-top: 1px solid var(--line); }
`;

const SCRIPT = `
"use strict";
const TYPES = ["identify", "track", "page", "screen", "group", "alias"];
const MAX_ROWS = 2000;
const $ = (id) => document.getElementById(id);
const list = $("list"), tbody = $("rows"), detail = $("detail"), search = $("search"), statusFilter = $("status-filter");
const chips = $("types"), conn = $("conn"), empty = $("empty"), shown = $("shown");
const sourceFilter = $("source-filter"), dupFilter = $("dup-filter"), planFilter = $("plan-filter");
const CATEGORIES = ${JSON.stringify(VIOLATION_CATEGORIES)};

let events = []; // newest first, at most MAX_ROWS
let pending = []; // from the stream, not drawn yet, oldest first
let loading = false; // a snapshot is on its way: the stream's messages wait for it
let generation = 0; // of the latest snapshot asked for; older answers are ignored
let typeFilter = "";
let selectedId = null;
let flushTimer = null;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function text(v) { return v == null ? "" : typeof v === "string" ? v : JSON.stringify(v); }
function pad(n, width) { return String(n).padStart(width || 2, "0"); }
function clock(iso) {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
}
function typeOf(e) { const t = e.message && e.message.type; return TYPES.includes(t) ? t : "unknown"; }
function label(m) {
  switch (m.type) {
    case "track": return text(m.event);
    case "page": case "screen": return [m.category, m.name].filter((x) => x != null).map(text).join(" / ");
    case "group": return m.groupId == null ? "" : "group " + text(m.groupId);
    case "alias": return m.previousId == null ? "" : "from " + text(m.previousId);
    case "identify": return m.traits ? text(m.traits.email != null ? m.traits.email : m.traits.name) : "";
    default: return "";
  }
}

// ---- the list
function libraryOf(e) { return e.source && typeof e.source.library === "string" ? e.source.library : ""; }
function matches(e) {
  if (typeFilter && typeOf(e) !== typeFilter) return false;
  if (statusFilter.value && e.status !== statusFilter.value) return false;
  if (sourceFilter.value && libraryOf(e) !== sourceFilter.value) return false;
  if (dupFilter.checked && e.duplicate !== true) return false;
  const p = planFilter.value;
  if (p) {
    const vs = e.violations || [];
    if (p === "any" ? vs.length === 0 : p === "none" ? vs.length > 0 : p === "blocked" ? e.blocked !== true
      : !vs.some((v) => v.category === p)) return false;
  }
  const q = search.value.trim().toLowerCase();
  if (!q) return true;
  if (e.haystack === undefined) {
    e.haystack = (JSON.stringify(e.message) + "\\n" + e.reasons.join("\\n") + "\\n" +
      (e.violations || []).map(violationText).join("\\n")).toLowerCase();
  }
  return e.haystack.includes(q);
}
function violationText(v) { return text(v.category) + " at " + text(v.path) + ": " + text(v.message); }
function rowOf(id) { return id === null ? null : document.getElementById("row-" + id); }
function row(e) {
  const m = e.message || {};
  const tr = el("tr");
  tr.id = "row-" + e.id;
  tr.dataset.id = String(e.id);
  tr.dataset.testid = "event-row";
  tr.dataset.status = e.status;
  tr.tabIndex = -1;
  tr.setAttribute("aria-selected", String(e.id === selectedId));
  const time = el("td", "time", clock(e.receivedAt));
  time.title = "received " + e.receivedAt;
  const user = el("td", "user");
  if (m.userId != null) user.textContent = text(m.userId);
  else if (m.anonymousId != null) user.append(el("span", "tag", "anon"), text(m.anonymousId));
  user.title = user.textContent;
  const what = el("td", "what", label(m));
  if (e.reasons.length > 0) {
    const reason = el("span", "reason", e.reasons[0] + (e.reasons.length > 1 ? " (+" + (e.reasons.length - 1) + ")" : ""));
    reason.dataset.testid = "row-reason";
    what.append(reason);
  }
  const vs = Array.isArray(e.violations) ? e.violations : [];
  if (vs.length > 0) {
    const v = el("span", "violation", violationText(vs[0]) + (vs.length > 1 ? " (+" + (vs.length - 1) + ")" : ""));
    v.dataset.testid = "row-violation";
    what.append(v);
  }
  what.title = [label(m)].concat(e.reasons, vs.map(violationText)).join("\\n");
  const status = el("td", "status");
  status.append(el("span", "badge " + (e.status === "good" ? "good" : "bad"), e.status === "good" ? "good" : "bad"));
  if (e.duplicate === true) {
    const dup = el("span", "badge dup", "dup");
    dup.dataset.testid = "duplicate";
    dup.title = "Duplicate: a message with this messageId was stored before (a re-send)";
    status.append(dup);
  }
  if (vs.length > 0) {
    const plan = el("span", "badge plan", "plan");
    plan.dataset.testid = "plan-badge";
    plan.title = vs.length + (vs.length === 1 ? " tracking plan violation" : " tracking plan violations");
    status.append(plan);
  }
  if (e.blocked === true) {
    const blocked = el("span", "badge blocked", "blocked");
    blocked.dataset.testid = "blocked";
    blocked.title = "Blocked: an unplanned event (--plan-mode block-unplanned); Segment would drop it";
    status.append(blocked);
  }
  const source = el("td", "source", libraryOf(e));
  source.title = e.source ? [libraryOf(e), e.source.version, e.source.origin, e.source.endpoint].filter(Boolean).join(" \u00b7 ") : "";
  tr.append(time, el("td", "type", m.type == null ? "" : text(m.type)), user, what, status, source);
  know(libraryOf(e));
  return tr;
}
function render() {
  const rows = document.createDocumentFragment();
  let n = 0;
  for (let i = 0; i < events.length && n < MAX_ROWS; i++) {
    know(libraryOf(events[i]));
    if (matches(events[i])) { rows.append(row(events[i])); n++; }
  }
  tbody.replaceChildren(rows);
  drawn();
}
// The libraries seen, as options of the source filter.
function know(library) {
  if (!library) return;
  for (const o of sourceFilter.options) if (o.value === library) return;
  const option = el("option", "", library);
  option.value = library;
  sourceFilter.append(option);
}
// After the rows changed: the one Tab stop (the selected row, else the newest), the count, the empty state.
function drawn() {
  const stop = rowOf(selectedId) || tbody.firstElementChild;
  const old = tbody.querySelector('tr[tabindex="0"]');
  if (old && old !== stop) old.tabIndex = -1;
  if (stop) stop.tabIndex = 0;
  const n = tbody.childElementCount;
  const filtered = typeFilter !== "" || statusFilter.value !== "" || sourceFilter.value !== "" || dupFilter.checked ||
    planFilter.value !== "" || search.value.trim() !== "";
  shown.textContent = (filtered ? n + " of " + events.length + " shown" : n + (n === 1 ? " message" : " messages")) +
    (events.length === MAX_ROWS ? " (the page keeps the newest " + MAX_ROWS + ")" : "");
  empty.hidden = n > 0;
  $("empty-none").hidden = loading || events.length > 0;
  $("empty-filtered").hidden = events.length === 0;
}
function queue(e) {
  pending.push(e);
  if (pending.length > MAX_ROWS) pending.splice(0, pending.length - MAX_ROWS);
  if (flushTimer === null && !loading) flushTimer = setTimeout(flush, 40);
}
// Draws what the stream brought since the last time, in one go.
function flush() {
  clearTimeout(flushTimer);
  flushTimer = null;
  if (loading || pending.length === 0) return;
  const batch = pending.reverse();
  pending = [];
  events = batch.concat(events);
  if (events.length > MAX_ROWS) {
    for (const gone of events.splice(MAX_ROWS)) { const r = rowOf(gone.id); if (r) r.remove(); }
  }
  if (batch.length >= MAX_ROWS) return render();
  const rows = document.createDocumentFragment();
  for (const e of batch) { know(libraryOf(e)); if (matches(e)) rows.append(row(e)); }
  if (rows.childElementCount > 0) {
    // Someone reading further down keeps their place; at the top, the new rows come into view.
    const top = list.scrollTop, height = list.scrollHeight;
    tbody.prepend(rows);
    if (top > 0) list.scrollTop = top + list.scrollHeight - height;
  }
  drawn();
}

// ---- selection and detail
function find(id) { return events.find((e) => e.id === id) || null; }
function select(id, focus) {
  const old = rowOf(selectedId);
  if (old) old.setAttribute("aria-selected", "false");
  selectedId = id;
  const tr = rowOf(id);
  if (tr) tr.setAttribute("aria-selected", "true");
  drawn();
  if (tr && focus) { tr.focus({ preventScroll: true }); tr.scrollIntoView({ block: "nearest" }); }
  show(find(id));
}
function show(e) {
  detail.replaceChildren();
  if (!e) {
    detail.append(el("p", "placeholder", "Select a message to see it as it arrived and what the checks found."));
    return;
  }
  const m = e.message || {};
  const head = el("div", "detail-head");
  const title = el("h2");
  title.append(el("span", "type-tag", m.type == null ? "no type" : text(m.type)), label(m) || "(unnamed)");
  head.append(title, el("span", "badge " + (e.status === "good" ? "good" : "bad"), e.status === "good" ? "good" : "bad"));
  const meta = el("dl", "meta");
  const fact = (name, value) => { if (value) meta.append(el("dt", "", name), el("dd", "", value)); };
  const received = new Date(e.receivedAt);
  fact("Received", isNaN(received.getTime()) ? e.receivedAt : received.toLocaleString());
  fact("Message ID", text(m.messageId));
  fact("User ID", text(m.userId));
  fact("Anonymous ID", text(m.anonymousId));
  fact("Timestamp", text(m.timestamp));
  const src = e.source || {};
  fact("Library", [src.library, src.version].filter((x) => typeof x === "string").join(" "));
  fact("Origin", src.origin);
  fact("Endpoint", src.endpoint);
  fact("User agent", src.userAgent);
  if (e.duplicate === true) {
    head.append(el("span", "badge dup", "duplicate"));
    fact("Duplicate", "a message with this messageId was stored before");
  }
  if (e.blocked === true) {
    head.append(el("span", "badge blocked", "blocked"));
    fact("Blocked", "an unplanned event: Segment would drop it (--plan-mode block-unplanned)");
  }
  detail.append(head, meta);
  const vs = Array.isArray(e.violations) ? e.violations : [];
  if (vs.length > 0) {
    const box = el("section", "violations");
    box.dataset.testid = "violations";
    box.setAttribute("aria-label", "Tracking plan violations");
    const items = el("ul");
    for (const v of vs) {
      const li = el("li");
      li.dataset.testid = "violation";
      li.append(el("span", "cat", text(v.category)), el("code", "", text(v.path)), " " + text(v.message));
      items.append(li);
    }
    box.append(el("h3", "", vs.length === 1 ? "1 plan violation" : vs.length + " plan violations"), items);
    detail.append(box);
  }
  if (e.reasons.length > 0) {
    const box = el("section", "reasons");
    box.dataset.testid = "reasons";
    box.setAttribute("aria-label", "Problems");
    const list = el("ul");
    for (const reason of e.reasons) list.append(el("li", "", reason));
    box.append(el("h3", "", e.reasons.length === 1 ? "1 problem" : e.reasons.length + " problems"), list);
    detail.append(box);
  } else {
    const ok = el("p", "valid", "\\u2713 Matches the Segment spec");
    ok.dataset.testid = "valid";
    detail.append(ok);
  }
  const json = JSON.stringify(m, null, 2);
  const jsonHead = el("div", "json-head");
  jsonHead.append(el("h3", "", "Message"));
  if (navigator.clipboard) {
    const copy = el("button", "btn", "Copy JSON");
    copy.type = "button";
    copy.addEventListener("click", () => navigator.clipboard.writeText(json).then(
      () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy JSON"; }, 1500); },
      () => { copy.textContent = "Cannot copy"; },
    ));
    jsonHead.append(copy);
  }
  const pre = el("pre", "", json);
  pre.dataset.testid = "event-json";
  detail.append(jsonHead, pre);
}
function step(by) {
  const rows = tbody.children;
  if (rows.length === 0) return;
  const active = document.activeElement;
  const current = active && active.parentElement === tbody ? active : rowOf(selectedId);
  const at = current ? Array.prototype.indexOf.call(rows, current) : -1;
  const to = at < 0 ? (by === Infinity ? rows.length - 1 : 0) : at + by;
  const next = Math.max(0, Math.min(rows.length - 1, to));
  select(Number(rows[next].dataset.id), true);
}

// ---- counters and filters
function chip(type) {
  const b = el("button", "chip");
  b.type = "button";
  b.dataset.type = type;
  b.dataset.testid = "type-" + (type || "all");
  b.setAttribute("aria-pressed", String(type === typeFilter));
  b.append(el("span", "", type || "all"), el("span", "n", "0"), el("span", "nbad"));
  b.lastChild.hidden = true;
  if (type !== "" && !TYPES.includes(type)) b.title = "Messages with no type, or one that is not " + TYPES.join(", ");
  chips.append(b);
  return b;
}
function count(type, good, bad) {
  let b = null;
  for (const c of chips.children) if (c.dataset.type === type) b = c;
  if (b === null) b = chip(type);
  b.children[1].textContent = String(good + bad);
  b.children[2].textContent = bad + " bad";
  b.children[2].hidden = bad === 0;
  const n = good + bad;
  b.setAttribute("aria-label", (type || "all types") + ": " + n + (n === 1 ? " message, " : " messages, ") + bad + " bad");
}
function stats(s) {
  if (!s || typeof s !== "object" || !s.byType) return;
  count("", s.good, s.bad);
  for (const t of TYPES) { const c = s.byType[t] || { good: 0, bad: 0 }; count(t, c.good, c.bad); }
  // Types outside the spec ("unknown": none, or not one of the six) have a counter while there are any, so that
  // the counters add up to all.
  for (const t of Object.keys(s.byType)) if (!TYPES.includes(t)) count(t, s.byType[t].good, s.byType[t].bad);
  for (const b of Array.from(chips.children)) {
    const t = b.dataset.type;
    if (t === "" || TYPES.includes(t) || Object.prototype.hasOwnProperty.call(s.byType, t)) continue;
    if (t === typeFilter) count(t, 0, 0); else b.remove();
  }
  $("total").textContent = String(s.total);
  $("bad").textContent = String(s.bad);
  $("bad").parentElement.toggleAttribute("data-some", s.bad > 0);
  $("evicted").textContent = String(s.evicted);
  $("requests").textContent = String(s.requests);
  $("duplicates").textContent = String(s.duplicates || 0);
  const plan = s.plan && typeof s.plan === "object" ? s.plan : null;
  $("plan-summary").hidden = plan === null;
  $("plan-field").hidden = plan === null && !planFilter.value;
  if (plan) {
    $("off-plan").textContent = String(plan.violations);
    $("off-plan").parentElement.toggleAttribute("data-some", plan.violations > 0);
    $("blocked").textContent = String(plan.blocked);
    $("plan-summary").title = "Tracking plan " + text(plan.file) + " (mode " + text(plan.mode) + ")";
    for (const o of planFilter.options) {
      if (!CATEGORIES.includes(o.value)) continue;
      const n = plan.byCategory && plan.byCategory[o.value] || 0;
      o.textContent = o.value + (n ? " (" + n + ")" : "");
    }
  }
}
function filterType(type) {
  typeFilter = type;
  for (const b of chips.children) b.setAttribute("aria-pressed", String(b.dataset.type === type));
  filtersChanged();
}
function resetFilters() {
  search.value = ""; statusFilter.value = ""; sourceFilter.value = ""; dupFilter.checked = false; planFilter.value = "";
  filterType("");
}
// The filters live in the URL's hash (#type=track&status=bad&source=analytics.js&duplicate=true&q=text), so a
// view can be reloaded, bookmarked or shared.
function filtersChanged() {
  const params = new URLSearchParams();
  if (typeFilter) params.set("type", typeFilter);
  if (statusFilter.value) params.set("status", statusFilter.value);
  if (sourceFilter.value) params.set("source", sourceFilter.value);
  if (dupFilter.checked) params.set("duplicate", "true");
  if (planFilter.value) params.set("plan", planFilter.value);
  if (search.value.trim()) params.set("q", search.value);
  const hash = params.toString();
  if (location.hash.slice(1) !== hash) history.replaceState(null, "", hash ? "#" + hash : location.pathname + location.search);
  render();
}
function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const status = params.get("status") || "";
  statusFilter.value = status === "good" || status === "bad" ? status : "";
  const source = params.get("source") || "";
  know(source);
  sourceFilter.value = source;
  dupFilter.checked = params.get("duplicate") === "true";
  const plan = params.get("plan") || "";
  planFilter.value = Array.from(planFilter.options).some((o) => o.value === plan) ? plan : "";
  if (planFilter.value) $("plan-field").hidden = false;
  search.value = params.get("q") || "";
  const type = params.get("type") || "";
  if (type && !Array.from(chips.children).some((c) => c.dataset.type === type)) chip(type);
  typeFilter = type;
  for (const b of chips.children) b.setAttribute("aria-pressed", String(b.dataset.type === type));
}
function focusList() { const stop = rowOf(selectedId) || tbody.firstElementChild; if (stop) stop.focus(); }

// ---- talking to the collector
function getJSON(path) {
  return fetch(path, { cache: "no-store" }).then((r) => {
    if (!r.ok) throw new Error(path + " answered " + r.status);
    return r.json();
  });
}
function setConn(state, words) { conn.dataset.state = state; conn.textContent = words; }
function reload() {
  const mine = ++generation;
  loading = true;
  Promise.all([getJSON("/api/events?limit=" + MAX_ROWS), getJSON("/api/stats")]).then(([body, s]) => {
    if (mine !== generation) return;
    loading = false;
    events = body.events;
    const newest = events.length > 0 ? events[0].id : 0;
    pending = pending.filter((e) => e.id > newest);
    stats(s);
    render();
    flush();
  }, () => {
    if (mine !== generation) return;
    loading = false;
    drawn();
    flush();
    if (conn.dataset.state !== "live") setConn("down", "Cannot reach the collector");
  });
}
function cleared() {
  events = [];
  pending = [];
  selectedId = null;
  render();
  show(null);
  if (loading) reload();
}
// A filtered DELETE took these messages away.
function deleted(ids) {
  const gone = new Set(ids);
  events = events.filter((e) => !gone.has(e.id));
  pending = pending.filter((e) => !gone.has(e.id));
  if (selectedId !== null && gone.has(selectedId)) { selectedId = null; show(null); }
  render();
  if (loading) reload();
}
function connect() {
  const source = new EventSource("/api/stream");
  source.addEventListener("open", () => { setConn("live", "Live"); reload(); });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      setConn("down", "Disconnected, retrying\\u2026");
      setTimeout(connect, 3000);
    } else setConn("retrying", "Reconnecting\\u2026");
  });
  source.addEventListener("message", (m) => queue(JSON.parse(m.data)));
  source.addEventListener("stats", (m) => stats(JSON.parse(m.data)));
  source.addEventListener("clear", cleared);
  source.addEventListener("delete", (m) => deleted(JSON.parse(m.data).ids));
}

// ---- wiring
for (const t of ["", ...TYPES]) chip(t);
for (const c of CATEGORIES) { const o = el("option", "", c); o.value = c; planFilter.append(o); }
readHash();
chips.addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-type]");
  if (b) filterType(typeFilter === b.dataset.type ? "" : b.dataset.type);
});
statusFilter.addEventListener("change", filtersChanged);
sourceFilter.addEventListener("change", filtersChanged);
dupFilter.addEventListener("change", filtersChanged);
planFilter.addEventListener("change", filtersChanged);
search.addEventListener("input", filtersChanged);
window.addEventListener("hashchange", () => { readHash(); render(); });
$("reset").addEventListener("click", resetFilters);
$("host").textContent = location.origin;
tbody.addEventListener("click", (ev) => {
  const tr = ev.target.closest("tr");
  if (tr) select(Number(tr.dataset.id), true);
});
$("clear").addEventListener("click", () => {
  const n = Number($("total").textContent) || 0;
  if (!confirm("Forget all " + n + (n === 1 ? " stored message" : " stored messages") +
    " and zero the counters? Every open inspector is cleared; the NDJSON file is kept.")) return;
  fetch("/api/events", { method: "DELETE" }).then((r) => {
    // The stream says "clear" to every open page; without it, this page clears itself.
    if (r.ok && conn.dataset.state !== "live") cleared();
  }, () => setConn("down", "Cannot reach the collector"));
});
document.addEventListener("keydown", (k) => {
  if (k.ctrlKey || k.metaKey || k.altKey) return;
  const t = k.target;
  if (t === search && (k.key === "Escape" || k.key === "ArrowDown" || k.key === "Enter")) {
    k.preventDefault();
    if (k.key === "Escape" && search.value !== "") { search.value = ""; filtersChanged(); } else focusList();
    return;
  }
  if (t instanceof HTMLInputElement || t instanceof HTMLSelectElement || t instanceof HTMLTextAreaElement) return;
  const onRow = t instanceof HTMLTableRowElement && t.parentElement === tbody;
  const inList = onRow || t === document.body || t === list;
  switch (k.key) {
    case "/": search.focus(); search.select(); break;
    case "j": step(1); break;
    case "k": step(-1); break;
    case "ArrowDown": if (!inList) return; step(1); break;
    case "ArrowUp": if (!inList) return; step(-1); break;
    case "PageDown": if (!inList) return; step(10); break;
    case "PageUp": if (!inList) return; step(-10); break;
    case "Home": if (!inList) return; step(-Infinity); break;
    case "End": if (!inList) return; step(Infinity); break;
    case "Enter": case " ": if (!onRow) return; select(Number(t.dataset.id), true); break;
    default: return;
  }
  k.preventDefault();
});
show(null);
reload();
connect();
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
<header class="bar">
  <h1>Tally <span>collector</span></h1>
  <span id="conn" class="conn" data-state="connecting" role="status" data-testid="connection">Connecting…</span>
  <div class="summary" data-testid="summary">
    <span><b id="total" data-testid="total">0</b> received</span>
    <span class="bad"><b id="bad" data-testid="bad">0</b> bad</span>
    <span><b id="evicted" data-testid="evicted">0</b> evicted</span>
    <span><b id="requests" data-testid="requests">0</b> requests</span>
    <span title="Messages whose messageId was stored before"><b id="duplicates" data-testid="duplicates">0</b>
      duplicates</span>
    <span id="plan-summary" hidden><span class="plan"><b id="off-plan" data-testid="off-plan">0</b> off plan</span>
      <span><b id="blocked" data-testid="blocked-count">0</b> blocked</span></span>
  </div>
  <button id="clear" class="btn danger" type="button" data-testid="clear"
    title="Forget every stored message (DELETE /api/events)">Clear</button>
</header>
<div class="toolbar" role="search" aria-label="Filter messages">
  <div id="types" class="chips" role="group" aria-label="Filter by type (counts: messages received)"></div>
  <label class="field">Status <select id="status-filter" data-testid="status-filter"><option value="">all</option>
    <option value="good">good</option><option value="bad">bad</option></select></label>
  <label class="field">Source <select id="source-filter" data-testid="source-filter"><option value="">all</option>
    </select></label>
  <label class="field"><input id="dup-filter" type="checkbox" data-testid="duplicate-filter"> duplicates only</label>
  <label id="plan-field" class="field" hidden>Plan <select id="plan-filter" data-testid="plan-filter">
    <option value="">all</option><option value="any">off plan</option><option value="none">on plan</option>
    <option value="blocked">blocked</option></select></label>
  <label class="field search"><span>Search</span><input id="search" type="search" data-testid="search"
    placeholder="text anywhere in the JSON" autocomplete="off" spellcheck="false"><kbd aria-hidden="true">/</kbd></label>
</div>
<main>
  <section id="list" class="list" aria-label="Messages">
    <table role="grid" aria-label="Messages, newest first" aria-readonly="true">
      <thead><tr><th scope="col" class="c-time">Time</th><th scope="col" class="c-type">Type</th>
        <th scope="col" class="c-user">User</th><th scope="col">Event or name</th>
        <th scope="col" class="c-status">Spec</th><th scope="col" class="c-source">Source</th></tr></thead>
      <tbody id="rows"></tbody>
    </table>
    <div id="empty" class="empty" data-testid="empty">
      <div id="empty-none" hidden><p>No messages yet.</p>
        <p>Point a Segment client at <code id="host"></code>: they appear here as they arrive.</p></div>
      <div id="empty-filtered" hidden><p>No message matches the filters.</p>
        <button id="reset" class="btn" type="button">Show all</button></div>
    </div>
  </section>
  <section id="detail" class="detail" aria-label="Selected message" tabindex="0" data-testid="detail"></section>
</main>
<footer class="keys" aria-label="Keyboard">
  <span><kbd>/</kbd> search</span><span><kbd>↑</kbd> <kbd>↓</kbd> or <kbd>j</kbd> <kbd>k</kbd> move</span>
  <span><kbd>Home</kbd> <kbd>End</kbd> first, last</span><span><kbd>Enter</kbd> select</span>
  <span><kbd>Esc</kbd> clear search</span>
  <span id="shown" class="shown" data-testid="shown"></span>
</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
