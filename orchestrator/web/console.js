// The agent console: look a person up by visitor or customer id and follow their live context.
// The stream is read with fetch() so the token travels in the Authorization header (EventSource
// cannot send one). Everything shown is set with textContent: no record text becomes markup.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "orchestrator-console-token";
const RETRY_MS = 1000;
let following = null; // AbortController of the stream being read

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function when(ts) {
  const node = el("time", ts ? new Date(ts).toLocaleTimeString() : "–");
  if (ts) node.dateTime = new Date(ts).toISOString();
  return node;
}

function ago(ts) {
  if (!ts) return "–";
  const s = Math.max(0, Math.round((Date.now() - ts) / 1000));
  return `${new Date(ts).toLocaleString()} (${s < 90 ? s + " s" : Math.round(s / 60) + " min"} ago)`;
}

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = kind || "";
}

// Replace the entries of a list or table body; entries not shown before are highlighted.
function fill(list, items, render, emptyText, columns) {
  const previous = new Set(Array.from(list.children, (node) => node.dataset.key));
  list.replaceChildren();
  if (!items.length) {
    if (!columns) { list.append(el("li", emptyText, "empty")); return; }
    const cell = el("td", emptyText, "empty");
    cell.colSpan = columns;
    list.append(el("tr"));
    list.firstChild.append(cell);
    return;
  }
  for (const item of items) {
    const node = render(item);
    node.dataset.key = JSON.stringify(item);
    if (previous.size && !previous.has(node.dataset.key)) node.classList.add("fresh");
    list.append(node);
  }
}

function score(value, untrusted = "–") {
  return value === null || value === undefined ? untrusted : Number(value).toFixed(2);
}

function render(ctx) {
  $("person-id").textContent = ctx.person_id;
  $("customer-id").textContent = ctx.customer_id || "anonymous";
  $("visitor-ids").textContent = (ctx.visitor_ids || []).join(", ") || "–";
  $("logged-in").textContent = ctx.logged_in ? "yes" : "no";
  $("consent").textContent = Object.entries(ctx.consent || {})
    .map(([k, v]) => `${k}: ${v ? "yes" : "no"}`).join(", ");
  $("stage").textContent = ctx.stage;
  $("open-case").textContent = ctx.open_case || "none";
  const session = ctx.session;
  $("session").textContent = session
    ? `${session.id || "(no id)"} since ${new Date(session.started_ts).toLocaleTimeString()}; topics ` +
      (Object.entries(session.topics || {}).map(([t, n]) => `${t} ×${n}`).join(", ") || "–")
    : "none";
  $("as-of").textContent = ago(ctx.as_of_ts);

  fill($("scores"), Object.entries(ctx.scores || {}), ([intent, s]) => {
    const row = el("tr");
    row.append(el("th", intent), el("td", score(s.score)), el("td", s.trusted ? "yes" : "no"),
               el("td", s.model || "–", "model"));
    row.firstChild.scope = "row";
    return row;
  }, "no scores", 4);
  fill($("recent-pages"), ctx.recent_pages || [], (page) => {
    const li = el("li");
    li.append(when(page.ts), " ", el("span", page.url, "url"));
    if (page.category) li.append(" ", el("span", page.category, "tag"));
    return li;
  }, "no pages read");
  fill($("recent-contacts"), ctx.recent_contacts || [], (c) => {
    const li = el("li");
    const bits = [c.type.replaceAll("_", " "), c.channel, c.reason && `about ${c.reason}`,
                  c.sentiment !== null && c.sentiment !== undefined && `sentiment ${c.sentiment}`];
    li.append(when(c.ts), el("span", bits.filter(Boolean).join(" · ")));
    return li;
  }, "no calls or cases");
  fill($("recent-actions"), ctx.recent_actions || [], (a) => {
    const row = el("tr");
    const cell = el("td"); cell.append(when(a.ts));
    const scores = Object.entries(a.scores || {}).map(([k, v]) => `${k} ${score(v, "(untrusted)")}`).join(", ");
    row.append(cell, el("td", a.channel), el("td", a.action + (a.holdout ? " (held out)" : "")),
               el("td", a.rule || "–"), el("td", a.reason || "–"), el("td", scores || "–"),
               el("td", a.outcome || "–"));
    return row;
  }, "no actions sent", 7);
  $("context").hidden = false;
}

function show(kind, data) {
  if (kind === "context") {
    const ctx = JSON.parse(data);
    render(ctx);
    setStatus(`Live: ${ctx.requested_id} — updated ${new Date().toLocaleTimeString()}`, "live");
  } else if (kind === "status") {
    const { status, error } = JSON.parse(data);
    if (status === 404) $("context").hidden = true; // a 502/503 keeps the last context shown
    setStatus(status === 404 ? "No person is known by this id (yet): waiting for them."
              : `${error || "not available"} (${status}); still trying.`, "error");
  }
}

async function follow(id, controller) {
  const token = $("token").value.trim();
  const headers = { Accept: "text/event-stream" };
  if (token) headers.Authorization = `Bearer ${token}`;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch(`/context/${encodeURIComponent(id)}/events`,
                                   { headers, signal: controller.signal, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        setStatus(response.status === 401 ? "The access token is missing or not valid."
                  : "This token may not read customer contexts.", "error");
        $("token").focus();
        return;
      }
      if (!response.ok) throw new Error(`the worker answered ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let kind = "message"; const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) show(kind, data.join("\n"));
        }
      }
      setStatus("The connection to the worker ended; reconnecting …", "error");
    } catch (err) {
      if (controller.signal.aborted) return;
      setStatus(`Cannot reach the worker (${err.message}); retrying …`, "error");
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) $("token").value = token;
  $("lookup-id").focus();
  $("lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    const id = $("lookup-id").value.trim();
    if (!id) return;
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    if (following) following.abort();
    following = new AbortController();
    $("context").hidden = true;
    setStatus(`Looking up ${id} …`);
    follow(id, following);
  });
});
