// lockd dashboard: reads /dashboard/api/state whenever the broker's event
// stream says something changed (no polling), and acts as the person who ran
// `lockd dashboard`. Plain DOM, textContent only: names and reasons are data.
"use strict";

const $ = (sel) => document.querySelector(sel);
let state = null;
let clockSkew = 0; // server time minus ours, so ages do not depend on our clock
let fetching = false;
let again = false;
let stream = null;
let streamOpen = false; // "live" only once the stream is open and the state is shown

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

// Times in the CLI's words (lockd.core.render): an age in its largest unit,
// rounded down (90 s is 1m, as `lockd locks` says); time left in two units at
// most, rounded in the smaller (1h27m, a fresh 8 h claim 8h), as `--ttl` is typed.
const UNITS = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];

function span(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const [unit, size] = UNITS.find(([, size]) => s >= size) || UNITS[3];
  return Math.floor(s / size) + unit;
}

function remaining(seconds) {
  const left = Math.max(0, seconds);
  for (let i = 0; i < UNITS.length - 1; i++) {
    const [[big, size], [small, step]] = [UNITS[i], UNITS[i + 1]];
    if (left >= size - step / 2) {
      const steps = Math.round(left / step);
      const rest = steps % (size / step);
      return Math.floor(steps / (size / step)) + big + (rest ? rest + small : "");
    }
  }
  return Math.round(left) + "s";
}

const now = () => Date.now() / 1000 + clockSkew;
const ago = (t) => span(now() - t) + " ago";
const ttl = (t) => (t ? remaining(t - now()) : "while the session lives");
const sameDay = (a, b) => a.toDateString() === b.toDateString();

// The time of day for today's events; the date too for older ones.
function clock(t) {
  const when = new Date(t * 1000);
  if (sameDay(when, new Date(now() * 1000))) return when.toLocaleTimeString();
  return when.toLocaleString([], { year: "numeric", month: "short", day: "numeric",
                                   hour: "2-digit", minute: "2-digit" });
}

// A repo as people know it: its name, then where it lives (remote or directory).
const labelOf = (repoId) => (state.repos || {})[repoId] || { name: repoId, where: "" };

function repoLabel(repoId, tag) {
  const label = labelOf(repoId);
  const where = label.where && label.where !== label.name
    ? el("span", { class: "where" }, label.where) : null;
  return el(tag, { class: "repo-name", title: repoId }, label.name, where);
}

function notice(text, isError) {
  const box = $("#notice");
  box.textContent = text;
  box.className = isError ? "error" : "ok";
  box.hidden = !text;
}

function setStatus(kind, text) {
  const badge = $("#status");
  badge.className = "status " + kind;
  badge.textContent = text || kind;
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Lockd-Dashboard": "1" },
    body: JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.message || resp.status + " " + resp.statusText);
  return data;
}

// ---- reading the state -------------------------------------------------------
async function refresh() {
  if (fetching) {
    again = true; // one more read after this one: never miss a change
    return;
  }
  fetching = true;
  try {
    do {
      again = false;
      const resp = await fetch("/dashboard/api/state", { credentials: "same-origin" });
      if (resp.status === 401) return signedOut();
      if (!resp.ok) throw new Error("state: " + resp.status);
      state = await resp.json();
      clockSkew = state.now - Date.now() / 1000;
      render();
      document.body.classList.remove("loading");
      if (streamOpen) setStatus("live");
    } while (again);
  } catch (err) {
    notice(String(err.message || err), true);
  } finally {
    fetching = false;
  }
}

function signedOut() {
  if (stream) stream.close();
  setStatus("closed", "signed out");
  notice("This dashboard session has ended (the broker restarted, or it expired). " +
         "Run `lockd dashboard` again.", true);
}

function connect() {
  stream = new EventSource("/dashboard/api/events");
  stream.addEventListener("open", () => {
    streamOpen = true;
    if (state) setStatus("live");
    else setStatus("connecting", "loading");
    refresh(); // after subscribing, so nothing falls in between
  });
  stream.addEventListener("changed", refresh);
  stream.addEventListener("error", () => {
    streamOpen = false;
    if (stream.readyState === EventSource.CLOSED) {
      // Refused (401) or gone for good: find out which by reading the state.
      setStatus("closed", "disconnected");
      fetch("/dashboard/api/state", { credentials: "same-origin" })
        .then((r) => (r.status === 401 ? signedOut() : setTimeout(connect, 2000)))
        .catch(() => setTimeout(connect, 2000));
    } else {
      setStatus("connecting", "reconnecting");
    }
  });
}

// ---- drawing -----------------------------------------------------------------
function render() {
  $("#me").textContent = "signed in as " + state.me.name;
  renderConflicts();
  renderPeers();
  renderClaims();
  renderEvents();
}

function renderConflicts() {
  const list = $("#conflicts");
  list.replaceChildren(...state.conflicts.map((c) => el("li", { class: "conflict" },
    el("strong", {}, c.peer_name), " wanted ", el("code", {}, c.patterns.join(", ")),
    " (" + c.mode + ", " + ago(c.at) + ")",
    c.reason ? ": " + c.reason : "",
    " — blocked by " + c.blocked_by.map(holding).join(", "),
    c.example ? el("span", {}, "; both claim ", el("code", {}, c.example)) : "",
  )));
  $("#conflicts-section").hidden = state.conflicts.length === 0;
}

function holding(intentId) {
  const claim = state.claims.find((c) => c.intent_id === intentId);
  return claim ? `${claim.peer_name}'s ${claim.pattern} (${intentId})` : intentId;
}

function renderPeers() {
  const rows = state.peers.map((p) => el("tr", { "data-peer": p.peer_id, class: p.me ? "me" : "" },
    el("td", {}, el("strong", {}, p.name), p.me ? " (you)" : ""),
    el("td", {}, p.client + (p.kind === "person" ? " · person" : "")),
    el("td", { class: "repo", title: p.cwd }, repoLabel(p.repo, "span")),
    el("td", {}, p.summary),
    el("td", { class: "age", "data-since": p.last_seen }, ago(p.last_seen)),
  ));
  $("#peers tbody").replaceChildren(...rows);
  $("#peer-count").textContent = "(" + state.peers.length + ")";
  $("#peer-names").replaceChildren(
    ...state.peers.filter((p) => !p.me).map((p) => el("option", { value: p.name })));
}

function renderClaims() {
  const byRepo = new Map();
  for (const c of state.claims) {
    if (!byRepo.has(c.repo)) byRepo.set(c.repo, []);
    byRepo.get(c.repo).push(c);
  }
  const blocks = [...byRepo].map(([repo, claims]) => el("div", { class: "repo-block" },
    repoLabel(repo, "h3"),
    el("table", { class: "claims" },
      el("thead", {}, el("tr", {}, ...["id", "pattern", "holder", "mode", "reason", "age", "TTL", ""]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, ...claims.map(claimRow)),
    ),
  ));
  $("#claims").replaceChildren(...(blocks.length ? blocks : [el("p", { class: "empty" }, "No claims.")]));
}

function claimRow(c) {
  const button = c.mine
    ? el("button", { class: "release", onclick: () => release(c, false) }, "Release")
    : el("button", { class: "force", onclick: () => release(c, true) }, "Force release");
  return el("tr", { "data-intent": c.intent_id, class: c.contested ? "contested" : "" },
    el("td", {}, c.intent_id),
    el("td", {}, el("code", {}, c.pattern)),
    el("td", {}, c.peer_name + (c.mine ? " (you)" : "")),
    el("td", {}, el("span", { class: "mode " + c.mode }, c.mode)),
    el("td", {}, c.reason, c.contested ? el("span", { class: "badge" }, "contested") : null),
    el("td", { class: "age", "data-since": c.since }, span(now() - c.since)),
    el("td", { class: "ttl", "data-expires": c.expires_at || "" }, ttl(c.expires_at)),
    el("td", {}, button),
  );
}

function renderEvents() {
  const named = Object.keys(state.repos || {}).length > 1; // one repo: its name is noise
  $("#events").replaceChildren(...state.events.map((e) => el("li", { class: "event " + e.kind },
    el("time", { datetime: new Date(e.at * 1000).toISOString() }, clock(e.at)), " ",
    named && e.repo ? eventRepo(e.repo) : null, e.text)));
}

// The repo an event happened in, by name: the page may show several.
function eventRepo(repoId) {
  const label = labelOf(repoId);
  return el("span", { class: "event-repo", title: label.where || repoId }, label.name + ": ");
}

// Ages and TTLs move with the clock; only the text changes, no request is made.
function tick() {
  for (const cell of document.querySelectorAll("td.age")) {
    const since = Number(cell.dataset.since);
    cell.textContent = cell.closest("#peers") ? ago(since) : span(now() - since);
  }
  for (const cell of document.querySelectorAll("td.ttl")) {
    cell.textContent = ttl(Number(cell.dataset.expires) || 0);
  }
}

// ---- acting ------------------------------------------------------------------
async function release(claim, force) {
  if (force && !confirm(`Force-release ${claim.pattern} (${claim.intent_id}) held by ` +
                        `${claim.peer_name}? They will be told, and it is recorded.`)) {
    return;
  }
  try {
    await post("/dashboard/api/release", { intent_id: claim.intent_id, force });
    notice(`released ${claim.intent_id} ${claim.pattern}`);
  } catch (err) {
    notice(err.message, true);
  }
}

async function send(event) {
  event.preventDefault();
  const to = $("#send-to").value.trim();
  const text = $("#send-text");
  try {
    const data = await post("/dashboard/api/send", { to, message: text.value });
    notice(`sent ${data.message_id} to ${to}`);
    text.value = "";
  } catch (err) {
    notice(err.message, true);
  }
}

$("#send").addEventListener("submit", send);
setInterval(tick, 5000);
connect();
