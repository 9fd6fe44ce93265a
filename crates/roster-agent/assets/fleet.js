// Roster fleet view: the whole list, fast at tens of thousands of members.
//
// The list comes from /v1/fleet (compact rows), is kept current by the live event stream (/v1/events) and
// read again in full every few seconds, so that tags and anything the stream skipped catch up. Only the rows
// in view exist in the page: the list is a tall spacer and a pool of row elements placed where the scroll
// position says. Sorting happens when the list or the sort changes, filtering when the list or a filter does;
// scrolling only fills the pool. All data goes into the page as text, never as markup.
"use strict";

const ROW_PX = 28;
const OVERSCAN = 10;
const RESYNC_MS = 5000;
const HISTORY_MS = 2000;
const REQUEST_TIMEOUT_MS = 5000;
const MAX_TAG_OPTIONS = 300;
const STATES = ["alive", "suspect", "failed", "left"];
const STATE_RANK = { alive: 0, suspect: 1, failed: 2, left: 3 };

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

// What the page knows, and what it shows.
const model = { byName: new Map(), local: null, loaded: false };
const view = {
  sorted: [], shown: [], sortKey: "name", sortDir: 1, query: "", state: "", tag: "",
  needSort: true, needFilter: true, selected: null, pool: [],
};
// Timings a test (or a curious operator) can read: milliseconds, from the page's own clock.
window.__fleet = { firstRenderMs: null, renders: 0, lastFilterMs: null, lastSortMs: null, rows: 0, domRows: 0 };

// ---- the model -------------------------------------------------------------------------------------------

function addrKey(addr) {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+):(\d+)$/.exec(addr);
  if (!m) return null;
  return ((((+m[1] * 256 + +m[2]) * 256 + +m[3]) * 256 + +m[4]) * 65536) + +m[5];
}

function member(name, addr, state, incarnation, joinedMs, rtt, meta) {
  const tags = Object.keys(meta || {}).sort().map((k) => `${k}=${meta[k]}`);
  return {
    name, addr, state, incarnation, joinedMs, rtt, meta: meta || {},
    tagText: tags.join(" "), tags, addrKey: addrKey(addr),
    search: `${name}\u0000${addr}`.toLowerCase(),
  };
}

function loadFleet(reply) {
  const cols = reply.columns;
  const at = (name) => cols.indexOf(name);
  const [iName, iAddr, iState, iInc, iJoined, iRtt, iMeta] =
    ["name", "addr", "state", "incarnation", "joined_at_ms", "rtt_ms", "meta"].map(at);
  const byName = new Map();
  for (const r of reply.rows) {
    byName.set(r[iName], member(r[iName], r[iAddr], r[iState], r[iInc], r[iJoined], r[iRtt], r[iMeta]));
  }
  model.byName = byName;
  model.local = reply.local;
  model.loaded = true;
  byId("local-name").textContent = reply.local;
  document.title = `Roster fleet: ${reply.local}`;
  view.needSort = true;
  refreshTagOptions();
  renderHealth(reply);
}

const EVENT_STATE = { join: "alive", alive: "alive", suspect: "suspect", failed: "failed", leave: "left" };

// One line of the event stream, applied to the model without waiting for the next full read.
function applyEvent(e) {
  if (!e || typeof e.member !== "string") return false;
  const state = EVENT_STATE[e.event];
  if (state === undefined && e.event !== "update") return false;
  const joinedMs = Date.parse(e.joined_at);
  const known = model.byName.get(e.member);
  if (!known) {
    if (state === undefined) return false;
    model.byName.set(e.member, member(e.member, e.addr, state, e.incarnation, joinedMs, null, {}));
  } else {
    if (state !== undefined) known.state = state;
    known.incarnation = e.incarnation;
    if (!Number.isNaN(joinedMs)) known.joinedMs = joinedMs;
    if (e.addr && e.addr !== known.addr) {
      known.addr = e.addr;
      known.addrKey = addrKey(e.addr);
      known.search = `${known.name}\u0000${known.addr}`.toLowerCase();
    }
  }
  view.needSort = true;
  return true;
}

// ---- sorting and filtering -------------------------------------------------------------------------------

const COMPARE = {
  name: (a, b) => collator.compare(a.name, b.name),
  addr: (a, b) => (a.addrKey !== null && b.addrKey !== null) ? a.addrKey - b.addrKey : collator.compare(a.addr, b.addr),
  state: (a, b) => STATE_RANK[a.state] - STATE_RANK[b.state],
  incarnation: (a, b) => a.incarnation - b.incarnation,
  joined: (a, b) => a.joinedMs - b.joinedMs,
  rtt: (a, b) => (a.rtt === null) - (b.rtt === null) || (a.rtt || 0) - (b.rtt || 0),
  tags: (a, b) => collator.compare(a.tagText, b.tagText),
};

function sortAll() {
  const t0 = performance.now();
  const compare = COMPARE[view.sortKey];
  const dir = view.sortDir;
  const list = Array.from(model.byName.values());
  // Members without a round trip stay last whichever way the column is sorted.
  list.sort((a, b) => {
    if (view.sortKey === "rtt" && (a.rtt === null) !== (b.rtt === null)) return a.rtt === null ? 1 : -1;
    return dir * compare(a, b) || collator.compare(a.name, b.name);
  });
  view.sorted = list;
  view.needSort = false;
  view.needFilter = true;
  window.__fleet.lastSortMs = performance.now() - t0;
}

function filterAll() {
  const q = view.query.trim().toLowerCase();
  const state = view.state;
  let tagKey = null, tagValue = null;
  if (view.tag) {
    const eq = view.tag.indexOf("=");
    tagKey = view.tag.slice(0, eq);
    tagValue = view.tag.slice(eq + 1);
  }
  const out = [];
  for (const m of view.sorted) {
    if (state && m.state !== state) continue;
    if (q && !m.search.includes(q)) continue;
    if (tagKey !== null && m.meta[tagKey] !== tagValue) continue;
    out.push(m);
  }
  view.shown = out;
  view.needFilter = false;
}

// ---- drawing ---------------------------------------------------------------------------------------------

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function rttText(rtt) {
  return rtt === null || rtt === undefined ? "\u2013" : `${rtt.toFixed(rtt < 10 ? 2 : 1)} ms`;
}

function makeRow() {
  const row = document.createElement("div");
  row.className = "row";
  row.setAttribute("role", "row");
  const cells = ["name", "addr", "st", "num inc", "joined", "num rtt", "tags"].map((cls) => {
    const span = document.createElement("span");
    span.className = cls;
    span.setAttribute("role", "cell");
    row.append(span);
    return span;
  });
  const badge = document.createElement("span");
  cells[2].append(badge);
  row._cells = cells;
  row._badge = badge;
  return row;
}

function fillRow(row, m, index) {
  const c = row._cells;
  row.dataset.member = m.name;
  row.dataset.state = m.state;
  row.dataset.index = index;
  row.setAttribute("aria-selected", m.name === view.selected ? "true" : "false");
  c[0].textContent = m.name;
  if (m.name === model.local) {
    const me = document.createElement("span");
    me.className = "me";
    me.textContent = "this agent";
    c[0].append(me);
  }
  c[1].textContent = m.addr;
  row._badge.className = `state ${m.state}`;
  row._badge.textContent = m.state;
  c[3].textContent = String(m.incarnation);
  c[4].textContent = Number.isFinite(m.joinedMs) ? ago(m.joinedMs) : "\u2013";
  c[5].textContent = rttText(m.rtt);
  c[6].textContent = m.tagText;
  c[6].title = m.tagText;
}

// Fills the pool with the rows in view; cheap enough to run on every scroll frame.
function renderRows() {
  const viewport = byId("viewport");
  const total = view.shown.length;
  byId("spacer").style.height = `${total * ROW_PX}px`;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_PX) - OVERSCAN);
  const visible = Math.ceil(viewport.clientHeight / ROW_PX) + 2 * OVERSCAN;
  const last = Math.min(total, first + visible);
  const rows = byId("rows");
  rows.style.transform = `translateY(${first * ROW_PX}px)`;
  const need = last - first;
  while (view.pool.length < need) {
    const row = makeRow();
    view.pool.push(row);
    rows.append(row);
  }
  for (let i = 0; i < view.pool.length; i++) {
    const row = view.pool[i];
    if (i < need) {
      fillRow(row, view.shown[first + i], first + i);
      row.hidden = false;
    } else {
      row.hidden = true;
    }
  }
  window.__fleet.domRows = need;
}

function renderCounts() {
  const counts = { alive: 0, suspect: 0, failed: 0, left: 0 };
  for (const m of model.byName.values()) counts[m.state] = (counts[m.state] || 0) + 1;
  for (const s of STATES) byId(`count-${s}`).textContent = counts[s].toLocaleString();
  const total = model.byName.size;
  const shown = view.shown.length;
  byId("shown").textContent = shown === total
    ? `${total.toLocaleString()} members`
    : `${shown.toLocaleString()} of ${total.toLocaleString()} members`;
}

// Brings the table up to date with the model and the filters, sorting and filtering only what changed.
function render() {
  if (!model.loaded) return;
  const t0 = performance.now();
  if (view.needSort) sortAll();
  if (view.needFilter) filterAll();
  renderRows();
  renderCounts();
  const f = window.__fleet;
  f.renders += 1;
  f.rows = view.shown.length;
  if (f.firstRenderMs === null && model.byName.size > 0) f.firstRenderMs = performance.now();
  f.lastRenderMs = performance.now() - t0;
  document.body.dataset.rendered = String(f.renders);
}

let frameAsked = false;
function renderSoon() {
  if (frameAsked) return;
  frameAsked = true;
  requestAnimationFrame(() => {
    frameAsked = false;
    render();
  });
}

function refreshTagOptions() {
  const select = byId("tag-filter");
  const seen = new Map();
  for (const m of model.byName.values()) {
    for (const t of m.tags) seen.set(t, (seen.get(t) || 0) + 1);
    if (seen.size > MAX_TAG_OPTIONS) break;
  }
  const wanted = Array.from(seen.keys()).sort(collator.compare).slice(0, MAX_TAG_OPTIONS);
  const have = Array.from(select.options).slice(1).map((o) => o.value);
  if (wanted.length === have.length && wanted.every((t, i) => t === have[i])) return;
  const current = select.value;
  const options = [new Option("any tag", "")].concat(wanted.map((t) => new Option(t, t)));
  select.replaceChildren(...options);
  select.value = wanted.includes(current) ? current : "";
  if (select.value !== view.tag) {
    view.tag = select.value;
    view.needFilter = true;
  }
}

function bytes(n) {
  if (n === null || n === undefined) return "\u2013";
  if (n < 1 << 20) return `${(n / 1024).toFixed(0)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

function renderHealth(reply) {
  const status = byId("h-status");
  status.textContent = reply.health.status;
  status.dataset.status = reply.health.status;
  byId("h-reason").textContent = reply.health.status === "ok" ? "" : reply.health.reason;
  byId("h-score").textContent = `${reply.health_score} / ${reply.health_max} ${reply.health_score === 0 ? "(healthy)" : "(missing acks: stretching its timeouts)"}`;
  const p = reply.process;
  byId("h-rss").textContent = p ? bytes(p.rss_bytes) : "\u2013";
  byId("h-fds").textContent = p && p.open_fds !== null ? String(p.open_fds) : "\u2013";
  byId("h-up").textContent = p && p.started_unix_s ? ago(p.started_unix_s * 1000).replace(" ago", "") : "\u2013";
  const s = reply.stats;
  byId("h-probes").textContent = `${s.probes.toLocaleString()} (${s.probe_failures.toLocaleString()} unanswered)`;
  byId("h-suspicions").textContent = `${s.suspicions.toLocaleString()} (${s.refutations.toLocaleString()} refuted by this agent)`;
  byId("h-version").textContent = reply.version;
}

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function renderChart(history) {
  const chart = byId("chart");
  const samples = history.samples;
  chart.dataset.samples = String(samples.length);
  const last = samples[samples.length - 1];
  if (last && last.cpu_pct !== null && last.cpu_pct !== undefined) byId("h-cpu").textContent = `${last.cpu_pct.toFixed(1)} % of a core`;
  const W = 600, H = 120;
  const parts = [];
  for (const y of [0.25, 0.5, 0.75]) parts.push(svgEl("line", { class: "grid", x1: 0, x2: W, y1: H * y, y2: H * y }));
  if (samples.length >= 1) {
    const t1 = last.t_ms;
    const t0 = Math.min(samples[0].t_ms, t1 - 60000);
    const top = Math.max(1, ...samples.map((s) => s.alive + s.suspect + s.failed + s.left));
    const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * W;
    const y = (n) => H - 4 - (n / top) * (H - 8);
    for (const state of STATES) {
      const points = samples.map((s) => `${x(s.t_ms).toFixed(1)},${y(s[state]).toFixed(1)}`).join(" ");
      const line = svgEl("polyline", { class: state, points });
      line.append(Object.assign(svgEl("title", {}), { textContent: `${state}: ${last[state]} now` }));
      parts.push(line);
    }
    const span = Math.round((t1 - t0) / 1000);
    byId("chart-note").textContent = `the last ${span >= 120 ? `${Math.round(span / 60)} min` : `${span} s`}, counted once a second by this agent; top of the chart: ${top.toLocaleString()}`;
  }
  chart.replaceChildren(...parts);
}

// ---- a member's detail -----------------------------------------------------------------------------------

function clockOf(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  const today = new Date().toDateString() === d.toDateString();
  return today ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

function how(e) {
  const parts = [];
  if (e.via) parts.push(`via ${e.via}`);
  if (e.from) parts.push(`from ${e.from}`);
  if (Array.isArray(e.to) && e.to.length) parts.push(`to ${e.to.length} members`);
  parts.push(`inc ${e.incarnation}`);
  return parts.join(" \u00b7 ");
}

async function showDetail(name) {
  view.selected = name;
  renderRows();
  const panel = byId("detail");
  panel.hidden = false;
  byId("work").classList.add("with-detail");
  panel.dataset.member = name;
  byId("detail-name").textContent = name;
  byId("detail-trace").textContent = `roster trace ${name} DATA_DIR...`;
  let reply;
  try {
    reply = await getJson(`/v1/members/${encodeURIComponent(name)}/history`, REQUEST_TIMEOUT_MS);
  } catch (err) {
    byId("detail-summary").textContent = `no history: ${err.message}`;
    return;
  }
  if (view.selected !== name) return;
  const now = reply.now;
  byId("detail-summary").textContent = now
    ? `${now.addr} \u00b7 ${now.state} \u00b7 incarnation ${now.incarnation} \u00b7 joined ${now.joined_at}`
    : "no longer in this agent's list";
  const tags = byId("detail-tags").tBodies[0];
  const meta = now ? now.tags : {};
  const rows = Object.keys(meta).sort().map((k) => {
    const tr = document.createElement("tr");
    for (const text of [k, meta[k]]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  });
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.className = "muted";
    td.textContent = "no tags";
    tr.append(td);
    rows.push(tr);
  }
  tags.replaceChildren(...rows);
  const rtts = reply.rtt_ms;
  const spark = byId("detail-rtt");
  spark.dataset.samples = String(rtts.length);
  if (rtts.length) {
    const top = Math.max(...rtts) * 1.1 || 1;
    const step = 240 / Math.max(1, rtts.length - 1);
    const points = rtts.map((v, i) => `${(i * step).toFixed(1)},${(46 - (v / top) * 44).toFixed(1)}`).join(" ");
    spark.replaceChildren(svgEl("polyline", { points }));
    const sorted = rtts.slice().sort((a, b) => a - b);
    byId("detail-rtt-text").textContent =
      `${rtts.length} probes: min ${rttText(sorted[0])}, median ${rttText(sorted[Math.floor(sorted.length / 2)])}, max ${rttText(sorted[sorted.length - 1])}`;
  } else {
    spark.replaceChildren();
    byId("detail-rtt-text").textContent = "no direct probe answered yet";
  }
  const list = byId("detail-events");
  const items = reply.events.slice().reverse().map((e) => {
    const li = document.createElement("li");
    li.dataset.event = e.event;
    const time = document.createElement("time");
    time.dateTime = e.time;
    time.title = e.time;
    time.textContent = clockOf(e.time);
    const kind = document.createElement("span");
    kind.className = `state ${EVENT_STATE[e.event] || "left"}`;
    kind.textContent = e.event;
    const what = document.createElement("span");
    what.textContent = how(e);
    li.append(time, kind, what);
    return li;
  });
  if (reply.omitted) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = `${reply.omitted} older lines are in the log`;
    items.push(li);
  }
  if (items.length === 0) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = reply.note || "no line about it in this agent's log";
    items.push(li);
  }
  list.replaceChildren(...items);
  const event = reply.events.length ? reply.events[reply.events.length - 1].event : "failed";
  byId("detail-trace").textContent = `roster trace ${name} --event ${event} DATA_DIR...`;
}

function closeDetail() {
  view.selected = null;
  byId("detail").hidden = true;
  byId("work").classList.remove("with-detail");
  renderRows();
}

// ---- wiring ----------------------------------------------------------------------------------------------

async function resync() {
  try {
    loadFleet(await getJson("/v1/fleet", REQUEST_TIMEOUT_MS));
    render();
    if (byId("link").dataset.status !== "live") setLink("live", "live");
  } catch (err) {
    setLink("down", "agent unreachable");
  }
}

async function refreshHistory() {
  try {
    renderChart(await getJson("/v1/fleet/history", REQUEST_TIMEOUT_MS));
  } catch (err) {
    // The next full read reports the link; the chart keeps what it had.
  }
}

function listen() {
  const source = new EventSource("/v1/events");
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (applyEvent(event)) renderSoon();
  };
  // A reader that fell behind missed lines: read the whole list again.
  source.addEventListener("lagged", () => resync());
  source.onerror = () => {
    if (byId("link").dataset.status === "live") setLink("connecting", "event stream reconnecting");
  };
  source.onopen = () => resync();
}

function onFilter() {
  const t0 = performance.now();
  view.query = byId("search").value;
  view.state = byId("state-filter").value;
  view.tag = byId("tag-filter").value;
  view.needFilter = true;
  byId("viewport").scrollTop = 0;
  render();
  window.__fleet.lastFilterMs = performance.now() - t0;
}

function onSort(key) {
  const t0 = performance.now();
  if (view.sortKey === key) view.sortDir = -view.sortDir;
  else { view.sortKey = key; view.sortDir = 1; }
  for (const b of byId("head").querySelectorAll("button")) {
    if (b.dataset.key === view.sortKey) b.setAttribute("aria-sort", view.sortDir > 0 ? "ascending" : "descending");
    else b.removeAttribute("aria-sort");
  }
  view.needSort = true;
  render();
  window.__fleet.lastSortMs = performance.now() - t0;
}

byId("search").addEventListener("input", onFilter);
byId("state-filter").addEventListener("change", onFilter);
byId("tag-filter").addEventListener("change", onFilter);
byId("head").addEventListener("click", (e) => {
  const key = e.target.closest("button") && e.target.closest("button").dataset.key;
  if (key) onSort(key);
});
byId("viewport").addEventListener("scroll", () => renderSoon(), { passive: true });
window.addEventListener("resize", () => renderSoon());
byId("rows").addEventListener("click", (e) => {
  const row = e.target.closest(".row");
  if (row && row.dataset.member) showDetail(row.dataset.member);
});
byId("detail-close").addEventListener("click", closeDetail);
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeDetail(); });
byId("head").querySelector('[data-key="name"]').setAttribute("aria-sort", "ascending");

listen();
resync();
refreshHistory();
setInterval(resync, RESYNC_MS);
setInterval(refreshHistory, HISTORY_MS);
setInterval(() => { if (view.selected && !byId("detail").hidden) showDetail(view.selected); }, RESYNC_MS);
