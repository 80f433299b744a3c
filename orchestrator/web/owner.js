// The journey owner's page: the live rule set, what each rule's decisions led to (sent, shown,
// clicked, converted, goal conversion against the holdout with its interval), a funnel, the
// mined routes to a goal as a graph, and the journeys' step funnels. Pictures are inline SVG
// drawn here; every text from the worker is set with textContent, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "orchestrator-owner-token";
const REFRESH_MS = 5000;
let latest = { analytics: null, routes: null };
let timer = null;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").className = kind || "";
}

const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)} %`);
const pts = (v) => `${v >= 0 ? "+" : "−"}${Math.abs(100 * v).toFixed(1)}`;

async function api(path) {
  const token = $("token").value.trim();
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { headers, cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  return { status: response.status, body };
}

// ---------------------------------------------------------------- rules

function upliftPicture(row) {
  // The interval on a scale of -100 .. +100 points, zero marked: clear of zero or not at a glance.
  const width = 160, height = 18, x = (v) => ((v + 1) / 2) * width;
  const picture = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "interval",
                               role: "img",
                               "aria-label": `uplift ${pts(row.uplift)} points, interval ` +
                                             `${pts(row.uplift_low)} to ${pts(row.uplift_high)}` });
  picture.append(svg("line", { x1: x(0), x2: x(0), y1: 0, y2: height, class: "zero" }));
  const clear = row.uplift_low > 0 ? "better" : row.uplift_high < 0 ? "worse" : "unclear";
  picture.append(svg("rect", { x: x(row.uplift_low), y: 6, height: 6, class: `range ${clear}`,
                               width: Math.max(1, x(row.uplift_high) - x(row.uplift_low)) }));
  picture.append(svg("circle", { cx: x(row.uplift), cy: 9, r: 4, class: `estimate ${clear}` }));
  return picture;
}

function renderRules(rules, analytics) {
  const byRule = new Map((analytics ? analytics.rules : []).map((r) => [r.rule, r]));
  const body = $("rules");
  body.replaceChildren();
  for (const rule of rules) {
    const a = byRule.get(rule.id) || {};
    const row = el("tr");
    row.dataset.rule = rule.id;
    const name = el("th", rule.id, "rule-id");
    name.scope = "row";
    name.title = rule.description;
    name.append(el("span", rule.action, "action"));
    const cells = [name];
    for (const key of ["sent", "held_out", "shown", "clicked", "converted"]) {
      const cell = el("td", a[key] ?? 0, "num");
      cell.dataset.col = key;
      cells.push(cell);
    }
    cells.push(el("td", (rule.goal || []).join(", ") || "none"));
    const rates = el("td", a.treated_rate === undefined ? "–"
      : `${pct(a.treated_rate)} / ${pct(a.held_out_rate)}`, "num");
    rates.dataset.col = "rates";
    const uplift = el("td", null, "uplift");
    uplift.dataset.col = "uplift";
    if (a.uplift === null || a.uplift === undefined) {
      uplift.textContent = !(rule.goal || []).length ? "no goal"
        : !rule.holdout_percent ? "no holdout" : "not enough decisions yet";
      uplift.classList.add("empty");
    } else {
      uplift.append(el("span", `${pts(a.uplift)} pts (${pts(a.uplift_low)} to ${pts(a.uplift_high)})`,
                       "figure"), upliftPicture(a));
    }
    cells.push(rates, uplift);
    row.append(...cells);
    body.append(row);
  }
  if (!rules.length) {
    const cell = el("td", "no rules", "empty");
    cell.colSpan = 9;
    body.append(el("tr"));
    body.firstChild.append(cell);
  }
}

// ---------------------------------------------------------------- funnel

function bars(steps, label) {
  // Horizontal bars, each as wide as its count against the first.
  const width = 560, rowHeight = 30, labelWidth = 170, height = steps.length * rowHeight + 4;
  const top = Math.max(1, steps[0] ? steps[0].count : 1);
  const picture = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "funnel",
                               role: "img", "aria-label": label });
  steps.forEach((step, i) => {
    const y = i * rowHeight + 2, w = Math.max(2, ((width - labelWidth - 160) * step.count) / top);
    const g = svg("g", { class: "step", "data-step": step.name, "data-count": step.count });
    g.append(svg("text", { x: 0, y: y + 19, class: "label" }, step.name),
             svg("rect", { x: labelWidth, y, width: w, height: rowHeight - 6, class: "bar", rx: 3 }),
             svg("text", { x: labelWidth + w + 6, y: y + 19, class: "count" },
                 `${step.count}${i && steps[0].count ? ` (${pct(step.count / steps[0].count)})` : ""}`));
    g.append(svg("title", {}, `${step.name}: ${step.count}`));
    picture.append(g);
  });
  return picture;
}

function renderFunnel(analytics) {
  const select = $("funnel-rule");
  const rows = analytics ? analytics.rules : [];
  const chosen = select.value;
  select.replaceChildren(...rows.map((r) => {
    const option = el("option", `${r.rule} (${r.action})`);
    option.value = r.rule;
    return option;
  }));
  const fallback = (rows.find((r) => r.sent > 0) || rows[0] || {}).rule;
  select.value = rows.some((r) => r.rule === chosen) ? chosen : fallback || "";
  const row = rows.find((r) => r.rule === select.value);
  const box = $("funnel");
  box.replaceChildren();
  if (!row) { box.append(el("p", "no rules counted yet", "empty")); return; }
  box.append(bars(["sent", "shown", "clicked", "converted"].map((name) => ({ name, count: row[name] })),
                  `funnel of ${row.rule}`));
}

// ---------------------------------------------------------------- route graph

function layers(nodes, edges, goalNodes) {
  // Longest path from the sources over the edges that do not close a cycle (found by a DFS);
  // the goal's activities go last.
  const out = new Map(nodes.map((n) => [n, []]));
  for (const e of edges) out.get(e.source).push(e.target);
  const state = new Map(), forward = [];
  const visit = (n) => {
    state.set(n, 1);
    for (const m of out.get(n)) {
      if (!state.has(m)) { forward.push([n, m]); visit(m); }
      else if (state.get(m) === 2) forward.push([n, m]);
    }
    state.set(n, 2);
  };
  for (const n of nodes) if (!state.has(n)) visit(n);
  const rank = new Map(nodes.map((n) => [n, 0]));
  for (let i = 0; i < nodes.length; i++) {
    for (const [a, b] of forward) if (rank.get(b) < rank.get(a) + 1) rank.set(b, rank.get(a) + 1);
  }
  const last = Math.max(0, ...[...rank.entries()].filter(([n]) => !goalNodes.has(n)).map(([, r]) => r)) + 1;
  for (const n of goalNodes) rank.set(n, last);
  return rank;
}

function renderRoutes(routes) {
  const goal = $("route-goal").value;
  const box = $("route-graph");
  box.replaceChildren();
  $("route-variants").replaceChildren();
  const found = routes && routes.goals ? routes.goals[goal] : null;
  if (!found) { $("route-summary").textContent = "no routes mined yet"; return; }
  $("route-summary").textContent = `${found.converted} of ${found.cases} cases reached ${goal} ` +
    `(${pct(found.conversion_rate)}); window ${Math.round(routes.window_s / 3600)} h of this worker's events`;
  const edges = found.edges.slice(0, 14);
  if (!edges.length) { box.append(el("p", "no case reached this goal yet", "empty")); return; }
  const nodes = [...new Set(edges.flatMap((e) => [e.source, e.target]))];
  const goalTypes = { login: ["login"], purchase: ["purchase", "signup"],
                      contact: ["contact_started", "callback_requested"],
                      cancellation: ["cancellation_requested"] }[goal];
  const goalNodes = new Set(nodes.filter((n) => goalTypes.includes(n.split(":")[0])));
  const rank = layers(nodes, edges, goalNodes);
  const columns = new Map();
  for (const n of nodes) {
    const r = rank.get(n);
    if (!columns.has(r)) columns.set(r, []);
    columns.get(r).push(n);
  }
  const nodeW = 130, nodeH = 30, colGap = 60, rowGap = 22;
  const depth = Math.max(...columns.keys()) + 1;
  const tallest = Math.max(...[...columns.values()].map((c) => c.length));
  const width = depth * (nodeW + colGap), height = tallest * (nodeH + rowGap) + rowGap;
  const at = new Map();
  for (const [r, column] of columns) {
    column.forEach((n, i) => {
      const offset = (height - column.length * (nodeH + rowGap)) / 2;
      at.set(n, { x: 10 + r * (nodeW + colGap), y: offset + i * (nodeH + rowGap) + rowGap / 2 });
    });
  }
  const most = Math.max(...edges.map((e) => e.count));
  const picture = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "routes",
                               role: "img", "aria-label": `directly-follows graph of the routes to ${goal}` });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                 markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse",
                                 orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  defs.append(marker);
  picture.append(defs);
  for (const e of edges) {
    const a = at.get(e.source), b = at.get(e.target);
    const x1 = a.x + nodeW, y1 = a.y + nodeH / 2, x2 = b.x, y2 = b.y + nodeH / 2;
    const back = x2 <= x1;
    const d = back
      ? `M ${a.x + nodeW / 2} ${a.y + nodeH} C ${a.x + nodeW / 2} ${a.y + nodeH + 40}, ${b.x + nodeW / 2} ${b.y + nodeH + 40}, ${b.x + nodeW / 2} ${b.y + nodeH}`
      : `M ${x1} ${y1} C ${x1 + colGap / 2} ${y1}, ${x2 - colGap / 2} ${y2}, ${x2} ${y2}`;
    const g = svg("g", { class: "edge", "data-source": e.source, "data-target": e.target,
                         "data-count": e.count });
    g.append(svg("path", { d, "stroke-width": 1 + (5 * e.count) / most, "marker-end": "url(#arrow)" }),
             svg("title", {}, `${e.source} → ${e.target}: ${e.count}, median ${e.median_s} s`));
    if (!back) {
      g.append(svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "edge-count" }, e.count));
    }
    picture.append(g);
  }
  for (const n of nodes) {
    const p = at.get(n);
    const g = svg("g", { class: `node${goalNodes.has(n) ? " goal" : ""}`, "data-activity": n });
    g.append(svg("rect", { x: p.x, y: p.y, width: nodeW, height: nodeH, rx: 6 }),
             svg("text", { x: p.x + nodeW / 2, y: p.y + nodeH / 2 + 5, "text-anchor": "middle" },
                 n.length > 18 ? `${n.slice(0, 17)}…` : n),
             svg("title", {}, n));
    picture.append(g);
  }
  box.append(picture);
  for (const v of found.variants.slice(0, 5)) {
    $("route-variants").append(el("li", `${v.count} × (${pct(v.share)}, median ${v.median_s} s): ` +
                                        v.route.join(" → ")));
  }
}

// ---------------------------------------------------------------- journeys

function renderJourneys(answer) {
  const box = $("journeys");
  box.replaceChildren();
  if (!answer || answer.status === 404 || !answer.body || !(answer.body.journeys || []).length) {
    box.append(el("p", "no journeys running", "empty"));
    return;
  }
  if (answer.status !== 200) {
    box.append(el("p", `journeys not available (${answer.status})`, "empty"));
    return;
  }
  for (const j of answer.body.journeys) {
    const part = el("article", null, "journey");
    part.dataset.journey = j.id;
    part.append(el("h3", j.id));
    const exits = Object.entries(j.exited || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    part.append(el("p", `goal ${j.goal || "none"} · entered ${j.entered} · active ${j.active} · ` +
                        `converted ${j.converted} · exited: ${exits}`, "hint"));
    const steps = [{ name: "entered", count: j.entered },
                   ...j.steps.map((s) => ({ name: `${s.id} (${s.kind})`, count: s.reached })),
                   { name: "converted", count: j.converted }];
    part.append(bars(steps, `step funnel of journey ${j.id}`));
    box.append(part);
  }
}

// ---------------------------------------------------------------- loading

async function load() {
  clearTimeout(timer);
  try {
    const [rules, analytics, routes, journeys] = await Promise.all(
      ["/rules", "/analytics/rules", "/routes", "/journeys"].map(api));
    const refused = [rules, analytics, routes].find((r) => r.status === 401 || r.status === 403);
    if (refused) {
      setStatus(refused.status === 401 ? "The operator token is missing or not valid."
                : "This token may not read the rules and analytics (an operator's is needed).", "error");
      $("token").focus();
      return;
    }
    latest = { analytics: analytics.body, routes: routes.body };
    $("rule-set").textContent = `(version ${rules.body.version}, ${rules.body.source})`;
    renderRules(rules.body.rules, analytics.body);
    renderFunnel(analytics.body);
    renderRoutes(routes.body);
    renderJourneys(journeys);
    const a = analytics.body;
    $("scope-note").textContent = `Counts of this worker (${a.worker}, partitions ` +
      `${a.partitions.join(", ") || "none"}) since ${new Date(a.since_ts).toLocaleString()}; the ` +
      `fleet's are summed in Prometheus. A goal converts the newest decision of its rule made up ` +
      `to ${a.attribution_window_s / 3600} h before it.`;
    setStatus(`Live — updated ${new Date().toLocaleTimeString()}`, "live");
  } catch (err) {
    setStatus(`Cannot reach the worker (${err.message}); retrying …`, "error");
  }
  timer = setTimeout(load, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) $("token").value = token;
  $("connect").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    load();
  });
  $("funnel-rule").addEventListener("change", () => renderFunnel(latest.analytics));
  $("route-goal").addEventListener("change", () => renderRoutes(latest.routes));
  load();
});
