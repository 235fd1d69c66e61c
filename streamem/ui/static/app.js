// streamem operator page. Every value that comes from events (keys, ids, feature names, log
// lines) enters the DOM as text (textContent / createTextNode), never as markup.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 2000;
const state = { view: "overview", arg: null, timer: null };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else if (k === "style") Object.assign(node.style, v); // CSSOM: allowed by the CSP
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
function svgEl(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
function token() { return sessionStorage.getItem("streamem-token") || ""; }

async function api(path, options) {
  const opts = options || {};
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers.Authorization = "Bearer " + token();
  const resp = await fetch("/api/v1/" + path, Object.assign({}, opts, { headers }));
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

const fmt = {
  num(v, digits) {
    if (v === null || v === undefined) return "–";
    if (Math.abs(v) >= 1e4) return v.toLocaleString("en", { maximumFractionDigits: 0 });
    return Number(v).toFixed(digits === undefined ? 2 : digits);
  },
  pct(v) { return v === null || v === undefined ? "–" : (100 * v).toPrecision(2) + " %"; },
  time(t) { return t ? new Date(t * 1000).toISOString().slice(5, 19).replace("T", " ") : "–"; },
  age(s) { return s === null || s === undefined ? "–" : s < 90 ? s.toFixed(0) + " s" : (s / 60).toFixed(1) + " min"; },
};
function sevCell(s) { return el("td", { class: "sev " + (s >= 75 ? "high" : s >= 50 ? "mid" : "") }, fmt.num(s, 1)); }

// ------------------------------------------------------------------ charts
function lineChart(container, series, opts) {
  // o.log: a log10(1 + y) axis, so one extreme anomaly does not flatten everything else
  const o = opts || {};
  const f = o.log ? (v) => Math.log10(1 + Math.max(0, v)) : (v) => v;
  const inv = o.log ? (v) => 10 ** v - 1 : (v) => v;
  const W = container.clientWidth || 900, H = o.height || 220, L = 64, R = 14, T = 10, B = 26;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  svg.style.height = H + "px";
  const all = series.flatMap((s) => s.points).concat(o.marks || []).filter((p) => p[1] !== null);
  if (!all.length) {
    clear(container).append(el("div", { class: "empty" }, o.empty || "no data yet"));
    return;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => f(p[1]));
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  let y0 = o.yMin !== undefined ? f(o.yMin) : Math.min(...ys), y1 = Math.max(...ys);
  if (y1 === y0) y1 = y0 + 1;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => H - B - ((f(y) - y0) / (y1 - y0)) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = inv(y0 + (i / 4) * (y1 - y0));
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: Y(v), y2: Y(v), stroke: "#eceef2" }));
    const label = svgEl("text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end" });
    label.textContent = fmt.num(v, v < 10 ? 1 : 0);
    svg.append(label);
  }
  for (let i = 0; i <= 4; i++) {
    const t = x0 + (i / 4) * (x1 - x0);
    const label = svgEl("text", { x: X(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" });
    label.textContent = new Date(t * 1000).toISOString().slice(11, x1 - x0 < 10 ? 22 : 19);
    svg.append(label);
  }
  for (const s of series) {
    const pts = s.points.filter((p) => p[1] !== null);
    if (!pts.length) continue;
    if (s.dots) {
      for (const p of pts) {
        svg.append(svgEl("circle", { cx: X(p[0]), cy: Y(p[1]), r: 4.5, fill: s.hollow ? "#fff" : s.color,
          stroke: s.color, "stroke-width": 2, class: "dot" }));
      }
      continue;
    }
    const d = pts.map((p, i) => (i ? "L" : "M") + X(p[0]).toFixed(1) + " " + Y(p[1]).toFixed(1)).join("");
    svg.append(svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.6,
      "stroke-dasharray": s.dash || "none" }));
  }
  for (const m of o.marks || []) {
    const c = svgEl("circle", { cx: X(m[0]), cy: Y(m[1]), r: 4, fill: "#d23c3c", class: "mark" });
    const title = svgEl("title");
    title.textContent = m[2] || "";
    c.append(title);
    svg.append(c);
  }
  const legend = el("div", { class: "legend" });
  for (const s of series) legend.append(el("span", { style: { color: s.color } }, "— " + s.name));
  if (o.marks && o.marks.length) legend.append(el("span", { style: { color: "#d23c3c" } }, "● anomaly"));
  if (o.log) legend.append(el("span", { class: "meta" }, "(log scale)"));
  clear(container).append(svg, legend);
}

// ------------------------------------------------------------------ views
function card(label, value, cls) {
  return el("div", { class: "card " + (cls || "") }, el("div", { class: "label" }, label),
    el("div", { class: "value" }, value));
}

async function renderCards() {
  const s = await api("status");
  const health = document.getElementById("health");
  health.textContent = s.ready ? "ready" : s.warming_up ? "warming up" : s.readiness || "not ready";
  health.className = "pill " + (s.ready ? "ok" : "warn");
  const sinks = s.sinks || [];
  const sinkBad = sinks.filter((k) => k.spool_size > 0 || k.dropped > 0);
  const rateCls = s.anomaly_rate !== null && s.anomaly_rate > 10 * s.alert_rate_target ? "bad" : "";
  clear(document.getElementById("cards")).append(
    card("events/s", fmt.num(s.events_per_second, 0)),
    card("anomaly rate (target " + fmt.pct(s.alert_rate_target) + ")", fmt.pct(s.anomaly_rate), rateCls),
    card("threshold (surprise)", fmt.num(s.threshold_surprise)),
    card("events / anomalies", fmt.num(s.events_total, 0) + " / " + fmt.num(s.anomalies_total, 0)),
    card("lag (events)", fmt.num(s.lag_events, 0), s.lag_events > 10000 ? "warn" : ""),
    card("checkpoint age", fmt.age(s.checkpoint_age_seconds), s.checkpoint_age_seconds > 300 ? "warn" : ""),
    card("sinks", sinks.length ? (sinkBad.length ? sinkBad.map((k) => k.name).join(", ") + " spooling" : "all delivering") : "none",
      sinkBad.length ? "bad" : ""),
    feedbackCard(s.feedback),
  );
}

// false positives learned, waiting, and the key/feature pairs they mute (text nodes only)
function feedbackCard(fb) {
  if (!fb) return card("feedback", "off");
  const muted = (fb.suppressions || []).map((x) => x.key + " / " + x.feature);
  return card("feedback", fmt.num(fb.learned, 0) + " learned" +
    (fb.pending ? ", " + fmt.num(fb.pending, 0) + " waiting" : "") +
    (muted.length ? "; muted: " + muted.join(", ") : ""), fb.not_learned ? "warn" : "");
}

function anomalyRow(a) {
  const top = (a.top_features || [])[0];
  return el("tr", { class: "link", onclick: () => { location.hash = "#/anomaly/" + encodeURIComponent(a.id); } },
    el("td", {}, fmt.time(a.timestamp || a.detected_at)), el("td", {}, a.key === null ? "–" : a.key),
    sevCell(a.severity), el("td", {}, top ? `${top.name} z=${fmt.num(top.z, 1)}` : ""),
    el("td", {}, a.verdict ? a.verdict.replace("_", " ") : ""));
}
function incidentRow(i) {
  return el("tr", { class: "link", onclick: () => { if (i.key !== null) location.hash = "#/key/" + encodeURIComponent(i.key); } },
    el("td", { class: i.status }, i.status), el("td", {}, i.key === null ? "–" : i.key), sevCell(i.max_severity),
    el("td", {}, String(i.count)), el("td", {}, fmt.time(i.started_at)), el("td", {}, fmt.time(i.ended_at)));
}
function fillTable(id, head, rows, empty) {
  const t = clear(document.getElementById(id));
  t.append(el("tr", {}, ...head.map((h) => el("th", {}, h))));
  if (!rows.length) t.append(el("tr", {}, el("td", { class: "empty", colspan: head.length }, empty)));
  for (const r of rows) t.append(r);
}

async function overview() {
  const [scores, anomalies, incidents] = await Promise.all([
    api("scores?minutes=30"), api("anomalies?limit=30"), api("incidents?limit=30")]);
  const pts = scores.points;
  const marks = pts.filter((p) => p.anomalies > 0 && p.max_surprise !== null)
    .map((p) => [p.t, p.max_surprise, `${p.anomalies} anomalies`]);
  document.getElementById("score-caption").textContent = "surprise = −log10 tail probability, last 30 min";
  lineChart(document.getElementById("score-chart"), [
    { name: "top surprise per batch", color: "#2f6fdd", points: pts.map((p) => [p.t, p.max_surprise]) },
    { name: "median", color: "#9aa3b5", points: pts.map((p) => [p.t, p.median_surprise]) },
    { name: "threshold", color: "#d9902a", dash: "6 4", width: 2, points: pts.map((p) => [p.t, p.threshold_surprise]) },
  ], { marks, yMin: 0, log: true, empty: "no batches scored yet" });
  fillTable("incidents", ["status", "key", "max severity", "events", "started", "ended"],
    incidents.incidents.map(incidentRow), "no incidents");
  fillTable("anomalies", ["time", "key", "severity", "top feature", "verdict"],
    anomalies.anomalies.map(anomalyRow), "no anomalies yet");
}

async function anomaly(id) {
  const a = await api("anomalies/" + encodeURIComponent(id));
  document.getElementById("anomaly-title").textContent = "Anomaly " + a.id;
  document.getElementById("anomaly-meta").textContent =
    `key ${a.key === null ? "–" : a.key} · ${fmt.time(a.timestamp || a.detected_at)} · severity ${fmt.num(a.severity, 1)} · ` +
    `tail probability ${Number(a.tail_probability).toExponential(2)} (threshold ${Number(a.threshold).toExponential(2)})` +
    (a.verdict ? " · verdict: " + a.verdict.replace("_", " ") : "");
  const bars = clear(document.getElementById("anomaly-bars"));
  const feats = a.top_features || [];
  const span = Math.max(1e-12, ...feats.flatMap((f) => [Math.abs(f.value || 0), Math.abs(f.expected || 0)]));
  for (const f of feats) {
    const track = el("div", { class: "track" },
      el("div", { class: "value", style: { width: `${(100 * Math.abs(f.value || 0) / span).toFixed(1)}%` } }),
      el("div", { class: "expected", style: { width: `${(100 * Math.abs(f.expected || 0) / span).toFixed(1)}%` } }));
    track.title = `value ${fmt.num(f.value, 3)}, expected ${fmt.num(f.expected, 3)}`;
    bars.append(el("div", { class: "bar" }, el("span", { class: "name" }, f.name), track,
      el("span", {}, `z = ${fmt.num(f.z, 1)}`)));
    bars.append(el("div", { class: "meta" }, `${f.name}: value ${fmt.num(f.value, 3)} (red) against expected ${fmt.num(f.expected, 3)} (blue)`));
  }
  const samples = clear(document.getElementById("anomaly-samples"));
  const lines = (a.extra && a.extra.samples) || [];
  if (lines.length) samples.append(el("h3", {}, "Sample lines"), el("div", { class: "samples" }, ...lines.map((l) => el("pre", {}, l))));
  state.anomalyId = a.id;
}

async function sendFeedback(verdict) {
  const out = document.getElementById("fb-result");
  try {
    const r = await api("feedback", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id: state.anomalyId, verdict, note: document.getElementById("fb-note").value }) });
    out.textContent = "stored: " + r.stored.verdict.replace("_", " ");
    out.className = "resolved";
  } catch (e) {
    out.textContent = "refused: " + e.message;
    out.className = "firing";
  }
}

async function keys() {
  const q = document.getElementById("key-search").value;
  const r = await api("keys?top=100" + (q ? "&q=" + encodeURIComponent(q) : ""));
  fillTable("keys", ["key", "anomalies", "max severity", "last severity", "last anomaly"],
    r.keys.map((k) => el("tr", { class: "link", onclick: () => { location.hash = "#/key/" + encodeURIComponent(k.key === null ? "" : k.key); } },
      el("td", {}, k.key === null ? "–" : k.key), el("td", {}, String(k.anomalies)), sevCell(k.max_severity),
      sevCell(k.last_severity), el("td", {}, fmt.time(k.last_at)))), "no keys with anomalies yet");
}

async function keyPage(key) {
  const [an, inc] = await Promise.all([api("anomalies?limit=200&key=" + encodeURIComponent(key)),
    api("incidents?key=" + encodeURIComponent(key))]);
  document.getElementById("key-title").textContent = "Key " + key;
  const byFeature = {};
  for (const a of an.anomalies.slice().reverse()) {
    for (const f of a.top_features || []) {
      (byFeature[f.name] = byFeature[f.name] || { v: [], e: [] });
      byFeature[f.name].v.push([a.timestamp || a.detected_at, f.value]);
      byFeature[f.name].e.push([a.timestamp || a.detected_at, f.expected]);
    }
  }
  const chart = clear(document.getElementById("key-chart"));
  const names = Object.keys(byFeature).slice(0, 6);
  if (!names.length) chart.append(el("div", { class: "empty" }, "no anomalies for this key"));
  const plots = names.map((name) => {
    const plot = el("div");
    chart.append(el("div", { class: "feature-chart" }, el("h4", {}, name), plot));
    return plot;
  });
  for (const [i, name] of names.entries()) {  // after the grid is laid out: widths are final
    lineChart(plots[i], [
      { name: "value", color: "#d23c3c", dots: true, points: byFeature[name].v },
      { name: "expected", color: "#2f6fdd", dots: true, hollow: true, points: byFeature[name].e }],
    { height: 150 });
  }
  fillTable("key-incidents", ["status", "key", "max severity", "events", "started", "ended"],
    inc.incidents.map(incidentRow), "no incidents");
  fillTable("key-anomalies", ["time", "key", "severity", "top feature", "verdict"],
    an.anomalies.map(anomalyRow), "no anomalies");
}

async function model() {
  const m = await api("model?minutes=60");
  const snaps = m.snapshots;
  const k = Math.max(0, ...snaps.map((s) => s.weights.length));
  const colors = ["#2f6fdd", "#d23c3c", "#2b9a5c", "#8a4fd6", "#d9902a", "#1aa3a3", "#7d7d7d", "#b35c1e"];
  lineChart(document.getElementById("weights-chart"), Array.from({ length: k }, (_, i) => ({
    name: "component " + i, color: colors[i % colors.length],
    points: snaps.map((s) => [s.t, i < s.weights.length ? s.weights[i] : null]) })), { yMin: 0, empty: "model not fitted yet" });
  lineChart(document.getElementById("drift-chart"), [
    { name: "CUSUM", color: "#d9902a", points: snaps.map((s) => [s.t, s.drift_cusum]) },
    { name: "KL divergence", color: "#8a4fd6", points: snaps.map((s) => [s.t, s.drift_divergence]) }],
  { yMin: 0, empty: "model not fitted yet" });
  const last = snaps[snaps.length - 1];
  document.getElementById("model-meta").textContent = last
    ? `${fmt.num(last.n_components, 0)} components · ${fmt.num(last.regime_changes, 0)} regime changes · drift ${last.drift_detected ? "detected" : "not detected"} · ` +
      `feedback: ${m.verdicts.false_positive} false positives, ${m.verdicts.true_positive} true positives`
    : "no model snapshot yet";
}

// ------------------------------------------------------------------ routing
function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const view = parts[0] || "overview";
  state.view = ["anomaly", "keys", "key", "model"].includes(view) ? view : "overview";
  state.arg = parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : null;
  for (const sec of document.querySelectorAll(".view")) sec.hidden = sec.id !== "view-" + state.view;
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.view === state.view || (a.dataset.view === "keys" && state.view === "key"));
  }
  refresh();
}

async function refresh() {
  clearTimeout(state.timer);
  try {
    await renderCards();
    if (state.view === "overview") await overview();
    else if (state.view === "anomaly") await anomaly(state.arg);
    else if (state.view === "keys") await keys();
    else if (state.view === "key") await keyPage(state.arg);
    else if (state.view === "model") await model();
    document.body.dataset.loaded = state.view;
  } catch (e) {
    const health = document.getElementById("health");
    health.textContent = "error: " + e.message;
    health.className = "pill bad";
  }
  state.timer = setTimeout(refresh, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const tok = document.getElementById("token");
  tok.value = token();
  tok.addEventListener("change", () => { sessionStorage.setItem("streamem-token", tok.value); refresh(); });
  document.getElementById("fb-fp").addEventListener("click", () => sendFeedback("false_positive"));
  document.getElementById("fb-tp").addEventListener("click", () => sendFeedback("true_positive"));
  document.getElementById("key-search").addEventListener("input", () => refresh());
  window.addEventListener("hashchange", route);
  route();
});
