// The demo website: plays one visitor and shows the engine's actions for them as they arrive.
"use strict";

const $ = (id) => document.getElementById(id);
const hex = () => Array.from(crypto.getRandomValues(new Uint8Array(6)),
                             (b) => b.toString(16).padStart(2, "0")).join("");
let visitor = `v-demo-${hex()}`;
let loggedIn = false;
let stream = null;
const clickedAt = new Map(); // event id -> performance.now() of the click
// An action can arrive before the answer to its click's POST (the engine is that fast): it is
// shown once the click is known, so that its click-to-screen time is measured.
const early = new Map(); // trigger event id -> action

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

let pendingClicks = 0; // POSTs sent and not answered yet

async function send(click) {
  const started = performance.now();
  pendingClicks += 1;
  try {
    const response = await fetch("/api/events", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ visitor_id: visitor, logged_in: loggedIn, ...click }),
    });
    const answer = await response.json();
    if (!response.ok) { $("status").textContent = `Not sent: ${answer.error}`; return; }
    clickedAt.set(answer.event_id, started);
    const li = el("li");
    li.append(el("time", new Date().toLocaleTimeString()), " ",
              el("span", click.type === "login" ? "login" : `page_view ${click.url}`, "url"));
    $("clicks").prepend(li);
  } finally {
    pendingClicks -= 1;
    // Actions held for a click: shown now, timed when their click is known.
    for (const [trigger, action] of [...early]) {
      if (clickedAt.has(trigger) || pendingClicks === 0) { early.delete(trigger); showAction(action); }
    }
  }
}

function showAction(action) {
  const started = clickedAt.get(action.trigger_event_id);
  if (started === undefined && pendingClicks > 0) { early.set(action.trigger_event_id, action); return; }
  const onScreen = started === undefined ? null : performance.now() - started;
  $("no-prompt")?.remove();
  const card = el("div", null, "prompt");
  card.dataset.action = action.action;
  const p = action.payload || {};
  if (action.action === "login_prompt") {
    card.append(el("h3", "Log in to do this yourself"), el("p", p.reason || ""));
    const link = el("a", "Log in"); link.href = "#"; link.dataset.loginUrl = p.login_url || "";
    link.addEventListener("click", (event) => { event.preventDefault(); logIn(); });
    card.append(link);
  } else if (action.action === "direct_link") {
    card.append(el("h3", p.title || "Go straight there"));
    const link = el("a", p.url || ""); link.href = "#"; card.append(link);
  } else {
    card.append(el("h3", action.action.replaceAll("_", " ")), el("p", p.url || p.title || ""));
  }
  const timing = el("p", null, "latency");
  timing.textContent = `event to action ${action.latency_ms.toFixed(1)} ms` +
    (onScreen === null ? "" : ` · click to screen ${onScreen.toFixed(0)} ms`);
  card.append(timing, el("p", `rule ${action.rule}`, "hint"));
  $("prompts").prepend(card);
}

function connect() {
  if (stream) stream.close();
  $("visitor-id").textContent = visitor;
  stream = new EventSource(`/api/actions?visitor=${encodeURIComponent(visitor)}`);
  stream.addEventListener("open", () => { $("status").textContent = "Connected: click a page."; });
  stream.addEventListener("error", () => { $("status").textContent = "Connection lost; retrying …"; });
  stream.addEventListener("action", (event) => showAction(JSON.parse(event.data)));
}

async function logIn() {
  await send({ type: "login" });
  loggedIn = true;
  $("login").disabled = true;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function autoplay() {
  $("autoplay").disabled = true;
  for (const url of ["/", "/billing", "/billing/invoices", "/moving"]) { await send({ type: "page_view", url }); await sleep(900); }
  await sleep(1500);
  await logIn();
  await sleep(900);
  await send({ type: "page_view", url: "/contract" });
  $("autoplay").disabled = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("pages").addEventListener("click", (event) => {
    const url = event.target.closest("button")?.dataset.url;
    if (url) send({ type: "page_view", url });
  });
  $("login").addEventListener("click", logIn);
  $("autoplay").addEventListener("click", autoplay);
  $("new-visitor").addEventListener("click", () => {
    visitor = `v-demo-${hex()}`; loggedIn = false; $("login").disabled = false;
    $("clicks").replaceChildren(); $("prompts").replaceChildren(el("p", "Nothing yet.", "empty"));
    $("prompts").firstChild.id = "no-prompt";
    connect();
  });
  connect();
  $("pages").querySelector("button").focus();
});
