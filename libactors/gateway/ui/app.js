// Tether dashboard: one server-sent event stream from the node serving the page
// (/v1/dashboard/stream) carries the slice table, the nodes, the rate history and
// the cluster events; this file draws them. No libraries, no network but the node.
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
                 "#ff9da7", "#9c755f", "#bab0ac", "#e15759"];
const HISTORY_MS = 5 * 60 * 1000;
const FENCE_SHOW_MS = 10000; // how long a slice whose epoch changed stays marked
const MAX_EVENTS = 500;

const state = {
  table: null,         // {version, members, slices: [[primary, epoch, followers]]}
  epochChanged: [],    // slice -> time its epoch last changed (ms)
  nodes: null,         // the latest `nodes` message
  history: new Map(),  // node -> [[unix_ms, ingest/s, windows/s]]
  selectedSlice: -1,
  focusNode: "",       // a node row clicked: its follower slices are marked
  cells: [],
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function colorOf(name) {
  if (!state.table) return "#ccc";
  const i = state.table.members.findIndex((m) => m.name === name);
  return i < 0 ? "#ccc" : PALETTE[i % PALETTE.length];
}

function memberName(idx) {
  const m = state.table && state.table.members[idx];
  return m ? m.name : "";
}

function fmtRate(x) {
  if (x === undefined || x === null) return "–";
  if (x >= 1e6) return (x / 1e6).toFixed(2) + "M";
  if (x >= 1e4) return (x / 1e3).toFixed(1) + "k";
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

// -- slice map ------------------------------------------------------------------

function buildGrid(n) {
  const grid = $("slices");
  grid.textContent = "";
  state.cells = [];
  for (let s = 0; s < n; s++) {
    const c = el("div", {class: "slice", "data-slice": String(s)});
    c.addEventListener("mouseenter", () => showSlice(s));
    c.addEventListener("click", () => {
      state.selectedSlice = state.selectedSlice === s ? -1 : s;
      renderSlices();
      showSlice(s);
    });
    grid.appendChild(c);
    state.cells.push(c);
  }
}

function upMember(idx) {
  const m = state.table.members[idx];
  return !!(m && m.up);
}

function movingSet() {
  const d = state.nodes && state.nodes.directory;
  const out = new Map();
  if (d && d.moving) for (const [slice, from, to] of d.moving) out.set(slice, [from, to]);
  return out;
}

function renderSlices() {
  const t = state.table;
  if (!t) return;
  if (state.cells.length !== t.slices.length) buildGrid(t.slices.length);
  const moving = movingSet();
  const now = Date.now();
  const focus = state.focusNode;
  let orphans = 0;
  t.slices.forEach(([primary, epoch, followers], s) => {
    const c = state.cells[s];
    const name = memberName(primary);
    const orphan = primary < 0 || !upMember(primary);
    orphans += orphan ? 1 : 0;
    const follows = focus && followers.some((f) => memberName(f) === focus);
    const fenced = now - (state.epochChanged[s] || 0) < FENCE_SHOW_MS;
    c.style.backgroundColor = orphan ? "" : colorOf(name);
    c.className = "slice" + (orphan ? " orphan" : "") + (moving.has(s) ? " moving" : "")
      + (fenced ? " fenced" : "") + (follows ? " follower-here" : "")
      + (state.selectedSlice === s ? " selected" : "");
    if (c.dataset.primary !== name) c.dataset.primary = name;
    c.dataset.epoch = String(epoch);
  });
  $("slice-summary").textContent = `${t.slices.length} slices, replication factor ` +
    `${t.replication_factor}` + (orphans ? `, ${orphans} without a live primary` : "") +
    (moving.size ? `, ${moving.size} moving` : "");
  renderLegend();
}

function renderLegend() {
  const legend = $("legend");
  legend.textContent = "";
  for (const m of state.table.members) {
    const span = el("span");
    const sw = el("i", {class: "swatch"});
    sw.style.background = colorOf(m.name);
    span.append(sw, m.name);
    legend.appendChild(span);
  }
  legend.appendChild(el("span", {}, "red: no live primary · outlined: moving · " +
    "striped: new epoch (old one fenced) · underlined: followed by the node clicked"));
}

function showSlice(s) {
  const t = state.table;
  if (!t || !t.slices[s]) return;
  const [primary, epoch, followers] = t.slices[s];
  const d = state.nodes && state.nodes.directory;
  const series = d && d.slice_series && d.slice_series[s] !== undefined
    ? String(d.slice_series[s]) : "unknown";
  const mv = movingSet().get(s);
  const box = $("slice-detail");
  box.textContent = "";
  const add = (label, value) => {
    box.append(label + " ", el("b", {}, value), "  ");
  };
  add("slice", String(s));
  add("primary", memberName(primary) || "none");
  add("followers", followers.map(memberName).join(", ") || "none");
  add("epoch", String(epoch));
  add("series", series);
  if (mv) add("moving", `${mv[0]} → ${mv[1]}`);
}

function onTable(t) {
  const old = state.table;
  const now = Date.now();
  if (old && old.slices.length === t.slices.length) {
    t.slices.forEach((x, s) => { if (x[1] !== old.slices[s][1]) state.epochChanged[s] = now; });
  }
  state.table = t;
  $("table-version").textContent = `table version ${t.version}`;
  document.body.dataset.version = String(t.version);
  renderSlices();
  renderNodes();
  if (state.selectedSlice >= 0) showSlice(state.selectedSlice);
}

// -- nodes ----------------------------------------------------------------------

function healthOf(n) {
  if (n.state === "down" || (!n.connected && !n.self)) return "down";
  if (n.suspect) return "suspect";
  if (n.state === "drained") return "drained";
  return n.state;
}

function heartbeatOf(n) {
  if (n.self) return "this node";
  if (!n.connected) return "lost";
  return n.last_heard_ms === null ? "–" : `${n.last_heard_ms} ms ago`;
}

function roleOf(n, leader) {
  if (!n.directory_member) return "–";
  return (leader === n.name ? "leader" : "member") + ` #${n.directory_member}`;
}

function renderNodes() {
  const msg = state.nodes;
  if (!msg) return;
  const leader = msg.directory ? msg.directory.leader : null;
  const body = $("nodes").tBodies[0];
  const seen = new Set();
  for (const n of msg.nodes) {
    seen.add(n.name);
    let row = body.querySelector(`tr[data-node="${CSS.escape(n.name)}"]`);
    if (!row) {
      row = el("tr", {"data-node": n.name});
      for (let i = 0; i < 10; i++) row.appendChild(el("td", i >= 5 ? {class: "num"} : {}));
      row.addEventListener("click", () => {
        state.focusNode = state.focusNode === n.name ? "" : n.name;
        renderSlices();
      });
      body.appendChild(row);
    }
    const health = healthOf(n);
    row.dataset.state = n.state;
    row.dataset.health = health;
    const cells = row.cells;
    cells[0].textContent = "";
    const sw = el("i", {class: "swatch"});
    sw.style.background = colorOf(n.name);
    cells[0].append(sw, n.name + (n.self ? " (this page)" : ""));
    cells[1].textContent = health === n.state ? n.state : `${n.state}, ${health}`;
    cells[2].textContent = heartbeatOf(n);
    cells[3].textContent = n.incarnation ? String(n.incarnation) : "–";
    cells[4].textContent = roleOf(n, leader);
    cells[5].textContent = String(n.primary_slices);
    cells[6].textContent = String(n.follower_slices);
    cells[7].textContent = n.series === null ? "–" : String(n.series);
    cells[8].textContent = fmtRate(n.ingest_per_s);
    cells[9].textContent = fmtRate(n.windows_per_s);
  }
  for (const row of Array.from(body.rows))
    if (!seen.has(row.dataset.node)) row.remove();
  const error = msg.directory && msg.directory.error;
  $("leader").textContent = leader ? `directory leader ${leader}` :
    !msg.clustered ? "standalone" :
    error ? `directory leader unknown: ${error}` : "asking the directory leader…";
}

function onNodes(msg) {
  state.nodes = msg;
  $("served-by").textContent = `served by ${msg.self}`;
  for (const n of msg.nodes) {
    if (n.rate_ms === undefined) continue;
    const xs = state.history.get(n.name) || [];
    if (!xs.length || xs[xs.length - 1][0] < n.rate_ms)
      xs.push([n.rate_ms, n.ingest_per_s, n.windows_per_s]);
    while (xs.length && xs[0][0] < msg.time_ms - HISTORY_MS) xs.shift();
    state.history.set(n.name, xs);
  }
  renderNodes();
  renderSlices();
  if (state.selectedSlice >= 0) showSlice(state.selectedSlice);
  drawRates();
}

// -- rates chart ------------------------------------------------------------------

function drawPanel(ctx, box, index, label, end) {
  let max = 1;
  for (const xs of state.history.values())
    for (const p of xs) max = Math.max(max, p[index]);
  ctx.strokeStyle = "#d8d8d4";
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.fillStyle = "#6b6f76";
  ctx.fillText(`${label} (max ${fmtRate(max)})`, box.x + 4, box.y + 12);
  for (const [name, xs] of state.history) {
    ctx.strokeStyle = colorOf(name);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    xs.forEach((p, i) => {
      const x = box.x + box.w * (1 - (end - p[0]) / HISTORY_MS);
      const y = box.y + box.h - (box.h - 16) * (p[index] / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function drawRates() {
  const canvas = $("rates");
  const w = canvas.clientWidth || canvas.width;
  if (canvas.width !== w) canvas.width = w;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px system-ui, sans-serif";
  const end = state.nodes ? state.nodes.time_ms : Date.now();
  const h = (canvas.height - 18) / 2;
  drawPanel(ctx, {x: 0.5, y: 0.5, w: canvas.width - 1, h: h - 2}, 1, "samples/s", end);
  drawPanel(ctx, {x: 0.5, y: h + 2.5, w: canvas.width - 1, h: h - 2}, 2, "windows/s", end);
  ctx.fillStyle = "#6b6f76";
  ctx.fillText("−5 min", 2, canvas.height - 4);
  ctx.fillText("now", canvas.width - 24, canvas.height - 4);
}

function onHistory(msg) {
  state.history = new Map(Object.entries(msg.nodes));
  drawRates();
}

// -- events ---------------------------------------------------------------------

function onEvents(msg) {
  const list = $("events");
  for (const e of msg.events) {
    const li = el("li", {"data-kind": e.kind, "data-seq": String(e.seq)});
    const when = new Date(e.unix_ms);
    li.append(el("time", {datetime: when.toISOString()}, when.toLocaleTimeString()),
              el("span", {class: "kind"}, e.kind), e.text);
    list.insertBefore(li, list.firstChild);
  }
  while (list.children.length > MAX_EVENTS) list.removeChild(list.lastChild);
}

// -- stream ---------------------------------------------------------------------

function setLink(live) {
  const link = $("link");
  link.className = "link " + (live ? "up" : "down");
  link.dataset.state = live ? "live" : "reconnecting";
  link.textContent = live ? "live" : "reconnecting…";
}

// A cluster with tokens wants a read token. The page takes it from its address
// (#token=..., removed from the address bar at once) or from the form, keeps it
// for this tab only, and hands it to the stream as access_token: an EventSource
// cannot send an Authorization header.
const TOKEN_KEY = "tether.dashboard.token";

function takeTokenFromAddress() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

function streamUrl() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return "/v1/dashboard/stream"
    + (token ? "?access_token=" + encodeURIComponent(token) : "");
}

let source = null;

// After a failed stream, asks once whether credentials were the reason (only the
// status line is read) and if so shows the token form instead of retrying.
async function checkCredentials() {
  const ctl = new AbortController();
  try {
    const r = await fetch(streamUrl(), {signal: ctl.signal, cache: "no-store"});
    ctl.abort();
    if (r.status !== 401 && r.status !== 403) return;
    source.close();
    const form = $("auth");
    form.hidden = false;
    $("auth-error").textContent = sessionStorage.getItem(TOKEN_KEY)
      ? (r.status === 403 ? "that token may not read" : "that token is not known")
      : "";
    $("link").dataset.state = "needs-token";
    $("link").textContent = "needs a token";
  } catch (e) { /* the node is down: the EventSource keeps retrying */ }
}

function connect() {
  source = new EventSource(streamUrl());
  const handle = (fn) => (ev) => { setLink(true); fn(JSON.parse(ev.data)); };
  source.addEventListener("table", handle(onTable));
  source.addEventListener("nodes", handle(onNodes));
  source.addEventListener("history", handle(onHistory));
  source.addEventListener("events", (ev) => {
    // A reconnected stream sends the whole ring again: start the list afresh.
    const msg = JSON.parse(ev.data);
    const list = $("events");
    const first = msg.events.length ? msg.events[0].seq : 0;
    const newest = list.firstChild ? Number(list.firstChild.dataset.seq) : 0;
    if (first <= newest) list.textContent = "";
    onEvents(msg);
  });
  source.onerror = () => { setLink(false); checkCredentials(); };
}

$("auth").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  $("auth").hidden = true;
  connect();
});

window.addEventListener("resize", drawRates);
takeTokenFromAddress();
connect();
