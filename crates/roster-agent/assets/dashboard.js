// Roster dashboard: reads this agent's API and redraws in place. The list is polled every second and
// re-read at once when an event arrives; events stream in over Server-Sent Events (EventSource reconnects
// by itself if the agent restarts). All data goes into the page as text, never as markup.
"use strict";

const POLL_MS = 1000;
const REQUEST_TIMEOUT_MS = 3000;
const MAX_EVENTS = 200;
const HEALTH_MAX = Number(document.body.dataset.healthMax) || 1;

const previousStates = new Map();
let selfName = null;
let refreshTimer = null;
let refreshing = false;
let lastOk = 0;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function renderSelf(self) {
  selfName = self.name;
  document.title = `Roster: ${self.name}`;
  byId("self-name").textContent = self.name;
  byId("self-addr").textContent = `${self.addr} \u00b7 incarnation ${self.incarnation} \u00b7 joined ${ago(self.joined_at_ms)}`;
  const score = self.health_score;
  byId("health-score").textContent = `${score} / ${HEALTH_MAX}`;
  const meter = byId("health-meter");
  meter.max = HEALTH_MAX;
  meter.low = HEALTH_MAX / 2;
  meter.high = (HEALTH_MAX * 3) / 4;
  meter.value = score;
  byId("health-text").textContent = score === 0
    ? "0 is healthy: this agent meets its own deadlines"
    : "above 0: this agent is missing acks and stretches its own timeouts before accusing others";
}

function compareMembers(a, b) {
  if (a.name === selfName) return -1;
  if (b.name === selfName) return 1;
  return a.name.localeCompare(b.name, undefined, { numeric: true });
}

function renderMembers(members) {
  const counts = { alive: 0, suspect: 0, failed: 0, left: 0 };
  for (const m of members) counts[m.state] = (counts[m.state] || 0) + 1;
  for (const state of Object.keys(counts)) byId(`count-${state}`).textContent = counts[state];
  byId("members-note").textContent = `${members.length} known`;

  const rows = members.slice().sort(compareMembers).map((m) => {
    // A new instance (rejoin) or a new state is a change worth a flash.
    const key = `${m.state}/${m.joined_at_ms}`;
    const before = previousStates.get(m.name);
    previousStates.set(m.name, key);
    const label = el("span", {}, m.name);
    if (m.name === selfName) label.append(el("span", { class: "me", text: "this agent" }));
    const name = el("td", { "data-label": "Name" }, label);
    const joined = el("td", { "data-label": "Joined", title: m.joined_at }, ago(m.joined_at_ms));
    const rtt = m.rtt_ms == null ? "\u2013" : `${m.rtt_ms.toFixed(m.rtt_ms < 10 ? 2 : 1)} ms`;
    const tags = el("td", { class: "tags", "data-label": "Tags" },
      ...Object.keys(m.tags || {}).sort().map((k) => el("span", { class: "tag", text: `${k}=${m.tags[k]}` })));
    return el("tr", {
      class: before !== undefined && before !== key ? "changed" : "",
      "data-member": m.name,
      "data-state": m.state,
    },
      name,
      el("td", { class: "addr", "data-label": "Address" }, m.addr),
      el("td", { "data-label": "State" }, el("span", { class: `state ${m.state}`, text: m.state })),
      el("td", { class: "num", "data-label": "Incarnation" }, String(m.incarnation)),
      joined,
      el("td", { class: "num", "data-label": "Last round trip" }, rtt),
      tags);
  });
  byId("members").tBodies[0].replaceChildren(...rows);
}

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [self, members] = await Promise.all([
      getJson("/v1/self", REQUEST_TIMEOUT_MS),
      getJson("/v1/members", REQUEST_TIMEOUT_MS),
    ]);
    renderSelf(self);
    renderMembers(members);
    lastOk = Date.now();
    if (byId("link").dataset.status !== "live") setLink("live", "live");
  } catch (err) {
    setLink("down", lastOk ? `agent unreachable since ${clock(new Date(lastOk).toISOString())}` : "agent unreachable");
  } finally {
    refreshing = false;
  }
}

function scheduleRefresh(delay) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    await refresh();
    scheduleRefresh(POLL_MS);
  }, delay);
}

function describe(e) {
  const who = `${e.member} (${e.addr})`;
  switch (e.event) {
    case "join": return `${who} joined, incarnation ${e.incarnation}`;
    case "leave": return `${who} left`;
    case "suspect": return `${who} is suspected`;
    case "alive": return `${who} is alive, incarnation ${e.incarnation}`;
    case "failed": return `${who} failed`;
    case "update": return `${who} updated, incarnation ${e.incarnation}${tagsOf(e)}`;
    case "conflict": return `two live members named ${e.member}: ${e.addr} and ${e.winner_addr || "?"}`;
    case "sent": return `told others that ${e.member} failed`;
    case "lagged": return "the stream fell behind";
    default: return `${e.event} ${who}`;
  }
}

function tagsOf(e) {
  const keys = Object.keys(e.tags || {}).sort();
  return keys.length ? `, tags ${keys.map((k) => `${k}=${e.tags[k]}`).join(" ")}` : "";
}

function how(e) {
  const parts = [];
  if (e.via) parts.push(`via ${e.via}`);
  if (e.from) parts.push(`from ${e.from}`);
  if (Array.isArray(e.to) && e.to.length) parts.push(`to ${e.to.join(", ")}`);
  return parts.join(" \u00b7 ");
}

function addEvent(e) {
  const list = byId("events");
  const item = el("li", { "data-event": e.event, "data-member": e.member || "" },
    el("time", { dateTime: e.time, title: e.time, text: clock(e.time) }),
    el("span", { class: `kind ${e.event}`, text: e.event }),
    el("span", { class: "what" }, describe(e), " ", el("span", { class: "how", text: how(e) })));
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  byId("events-empty").hidden = true;
}

function listen() {
  const source = new EventSource("/v1/events");
  source.onopen = () => scheduleRefresh(0);
  source.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    addEvent(event);
    // Show the change the event announces without waiting for the next poll.
    scheduleRefresh(50);
  };
  source.addEventListener("lagged", (message) => {
    addEvent({ event: "lagged", member: "", addr: "", time: new Date().toISOString(),
      via: `${message.data} events skipped; they are in the agent's event log` });
  });
  source.onerror = () => {
    if (byId("link").dataset.status === "live") setLink("connecting", "event stream reconnecting");
  };
}

// Acting needs the agent's token (the file that /v1/self names as token_file, readable by the agent's user
// alone). The operator hands it over once, as the page's address fragment (#token=...), which never leaves
// the browser, or when asked; it is kept for this tab only. A page on another origin can read neither.
const TOKEN_KEY = "roster-token";
function takeTokenFromAddress() {
  const found = location.hash.match(/token=([A-Za-z0-9_-]+)/);
  if (!found) return;
  sessionStorage.setItem(TOKEN_KEY, found[1]);
  history.replaceState(null, "", location.pathname + location.search);
}

async function act(path, body) {
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    token = (prompt("This agent's token (in the file /v1/self names as token_file):") || "").trim();
    if (!token) return null;
    sessionStorage.setItem(TOKEN_KEY, token);
  }
  const response = await fetch(path, {
    method: "POST",
    cache: "no-store",
    headers: { "Content-Type": "application/json", "Authorization": `Bearer ${token}` },
    body: JSON.stringify(body || {}),
  });
  if (response.status === 401 || response.status === 403) sessionStorage.removeItem(TOKEN_KEY);
  return response;
}

async function leave() {
  if (!confirm(`Make ${selfName || "this agent"} leave the cluster and stop?`)) return;
  const note = byId("action-note");
  note.textContent = "leaving\u2026";
  try {
    const response = await act("/v1/leave", {});
    if (response === null) { note.textContent = ""; return; }
    const answer = await response.json().catch(() => ({}));
    note.textContent = response.ok ? "left the cluster" : `refused: ${answer.error || response.status}`;
  } catch (err) {
    note.textContent = `leave failed: ${err.message}`;
  }
}

takeTokenFromAddress();
byId("leave").addEventListener("click", leave);
listen();
scheduleRefresh(0);
