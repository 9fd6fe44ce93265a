// What both of Roster's pages use: finding an element, reading the agent's API with a deadline, and showing the
// state of the link to the agent. Loaded before each page's own script.
"use strict";

const byId = (id) => document.getElementById(id);

// The JSON at `path` on this agent, or an error once `timeoutMs` has passed.
async function getJson(path, timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(path, { signal: controller.signal, cache: "no-store" });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return await response.json();
  } finally {
    clearTimeout(timer);
  }
}

function setLink(status, text) {
  const link = byId("link");
  link.dataset.status = status;
  link.textContent = text;
}
