// The admin dashboard: reads /status (JSON) and /metrics (Prometheus text)
// every few seconds and draws them. Everything is read-only, and every
// value from the gateway is written with textContent, never as HTML.
"use strict";

const EVERY_S = 3;
const HISTORY = 60;
const CLASSES = [["2xx", "#1f9d55"], ["3xx", "#2563eb"], ["4xx", "#d97706"], ["5xx", "#dc2626"]];
const OK_RESULTS = new Set(["continue", "respond"]);

let previous = null;   // the last scrape: { at, samples }
const history = [];    // [{ at, rates: { "2xx": r, … } }]

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function badge(state) {
  return el("span", { class: "badge " + String(state).replace(/[^a-z-]/g, "") }, state);
}

function fill(id, rows) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren(...rows);
}

// Prometheus text exposition: one sample per line, `name{labels} value`.
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[3] || "")) !== null) {
      labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

function sum(samples, name, match) {
  let total = 0;
  for (const s of samples) if (s.name === name && match(s.labels)) total += s.value;
  return total;
}

// A quantile from cumulative histogram buckets ({le → count}).
function quantile(buckets, q) {
  const bounds = Object.keys(buckets).filter((le) => le !== "+Inf").map(Number).sort((a, b) => a - b);
  const total = buckets["+Inf"] || 0;
  if (!total) return null;
  const want = q * total;
  let prevBound = 0, prevCount = 0;
  for (const b of bounds) {
    const count = buckets[String(b)] ?? buckets[b.toString()] ?? 0;
    if (count >= want) {
      const span = count - prevCount;
      return prevBound + (span ? (want - prevCount) / span : 0) * (b - prevBound);
    }
    prevBound = b; prevCount = count;
  }
  return bounds.length ? bounds[bounds.length - 1] : null;
}

function buckets(samples, match) {
  const out = {};
  for (const s of samples) {
    if (s.name === "wasmgate_plugin_call_duration_seconds_bucket" && match(s.labels)) {
      out[s.labels.le] = (out[s.labels.le] || 0) + s.value;
    }
  }
  return out;
}

function ms(seconds) {
  if (seconds === null) return "–";
  return seconds < 0.001 ? (seconds * 1e6).toFixed(0) + " µs" : (seconds * 1e3).toFixed(1) + " ms";
}

function stageFigures(samples, route, plugin) {
  const match = (l) => l.route === route && l.plugin === plugin;
  const calls = sum(samples, "wasmgate_plugin_calls_total", match);
  const errors = sum(samples, "wasmgate_plugin_calls_total", (l) => match(l) && !OK_RESULTS.has(l.result));
  let rate = null;
  if (previous) {
    const before = sum(previous.samples, "wasmgate_plugin_calls_total", match);
    rate = (calls - before) / Math.max((Date.now() - previous.at) / 1000, 0.001);
  }
  const b = buckets(samples, match);
  return { calls, errors, rate, p50: quantile(b, 0.5), p99: quantile(b, 0.99) };
}

function drawRoutes(status, samples) {
  const uses = status.plugin_uses || [];
  fill("routes", (status.routes || []).map((route) => {
    const name = typeof route === "string" ? route : route.name;
    const upstream = typeof route === "string" ? "" : route.upstream || "";
    const stages = uses.filter((u) => u.route === name).sort((a, b) => a.position - b.position).map((u) => {
      const f = stageFigures(samples, name, u.plugin);
      const figures = `${f.calls} calls · ${f.errors} errors · p50 ${ms(f.p50)} · p99 ${ms(f.p99)}` +
        (f.rate === null ? "" : ` · ${f.rate.toFixed(1)}/s`);
      const breaker = u.breaker && u.breaker.state && u.breaker.state !== "closed" ? badge(u.breaker.state) : "";
      return el("div", { class: "stage", "data-route": name, "data-plugin": u.plugin },
        el("div", { class: "name" }, u.plugin, " ", breaker),
        el("div", { class: "figures" }, figures));
    });
    return el("tr", { "data-route": name },
      el("td", {}, el("strong", {}, name)),
      el("td", {}, ...(stages.length ? stages : [el("span", { class: "muted" }, "no plugins")])),
      el("td", {}, upstream));
  }));
}

function drawUpstreams(status) {
  const rows = [];
  for (const [name, targets] of Object.entries(status.upstreams || {})) {
    for (const t of targets) {
      const states = [badge(t.state)];
      for (const extra of ["health", "ejection", "breaker"]) {
        if (t[extra] && typeof t[extra] === "string") states.push(" ", el("span", { class: "muted small" }, `${extra}: ${t[extra]}`));
      }
      // A target written as a DNS name is one row per address: the name says which.
      const target = t.name ? [t.addr, " ", el("span", { class: "muted small" }, t.name)] : [t.addr];
      rows.push(el("tr", { "data-target": t.addr },
        el("td", {}, name), el("td", { class: "mono" }, ...target), el("td", {}, ...states), el("td", {}, t.in_flight)));
    }
  }
  fill("upstreams", rows);
}

function drawPlugins(status) {
  const uses = status.plugin_uses || [];
  fill("plugins", (status.plugins || []).map((p) => {
    const warm = uses.filter((u) => u.plugin === p.name).reduce((n, u) => n + (u.idle_instances || 0), 0);
    return el("tr", { "data-plugin": p.name },
      el("td", {}, el("strong", {}, p.name), el("div", { class: "muted small mono" }, p.path || "")),
      el("td", { class: "mono" }, p.hash), el("td", {}, warm));
  }));
}

function drawReloads(status) {
  const recent = (status.reload && status.reload.recent) || [];
  fill("reloads", recent.map((r) => el("tr", {},
    el("td", {}, new Date(r.at_ms).toLocaleTimeString()),
    el("td", {}, r.cause),
    el("td", {}, r.generation),
    el("td", {}, r.error
      ? el("div", {}, badge("failed"), el("div", { class: "error" }, r.error))
      : el("div", {}, badge("applied"), " ", r.changes || "")))));
}

function drawChart(samples) {
  const now = Date.now();
  const byClass = {};
  for (const [c] of CLASSES) byClass[c] = sum(samples, "wasmgate_requests_total", (l) => (l.code || "").startsWith(c[0]));
  if (previous) {
    const dt = Math.max((now - previous.at) / 1000, 0.001);
    const rates = {};
    for (const [c] of CLASSES) rates[c] = Math.max(0, (byClass[c] - previous.byClass[c]) / dt);
    history.push({ at: now, rates });
    if (history.length > HISTORY) history.shift();
  }
  const svg = document.getElementById("chart");
  const max = Math.max(1, ...history.flatMap((h) => Object.values(h.rates)));
  const lines = CLASSES.map(([c, color]) => {
    const points = history.map((h, i) => `${((HISTORY - history.length + i) / (HISTORY - 1)) * 600},${140 - (h.rates[c] / max) * 130}`).join(" ");
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points);
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2");
    return line;
  });
  svg.replaceChildren(...lines);
  const last = history.length ? history[history.length - 1].rates : null;
  document.getElementById("legend").replaceChildren(...CLASSES.map(([c, color]) =>
    el("span", {}, el("i", { style: `background:${color}` }), `${c} ${last ? last[c].toFixed(1) : "–"}/s (${byClass[c]} total)`)));
  return byClass;
}

async function refresh() {
  try {
    const status = await (await fetch("/status", { cache: "no-store" })).json();
    const metrics = await fetch("/metrics", { cache: "no-store" });
    const samples = metrics.ok ? parseMetrics(await metrics.text()) : [];
    const reload = status.reload || {};
    document.getElementById("summary").textContent =
      `config ${status.config} · generation ${reload.generation} · ${reload.failures || 0} failed reloads`;
    const problem = document.getElementById("problem");
    problem.hidden = !reload.last_error;
    problem.textContent = reload.last_error ? "last reload failed: " + reload.last_error : "";
    drawRoutes(status, samples);
    drawUpstreams(status);
    drawPlugins(status);
    drawReloads(status);
    const byClass = drawChart(samples);
    previous = { at: Date.now(), samples, byClass };
    document.body.dataset.ready = "true";
  } catch (e) {
    document.getElementById("summary").textContent = "cannot reach the admin API: " + e;
  }
}

document.getElementById("every").textContent = EVERY_S;
refresh();
setInterval(refresh, EVERY_S * 1000);
