// regimescope dashboard: a TensorBoard ES-module plugin frontend. No dependencies, no network beyond this server.
// TensorBoard loads it in an iframe whose base URL is the plugin's route prefix, so fetch("runs") reaches
// /data/plugin/regimescope/runs.

const COLORS = { lazy: "#2e86c1", transitional: "#f1c40f", rich: "#c0392b" };
const RUN_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666", "#e6ab02"];
const SVG = "http://www.w3.org/2000/svg";
const LOG_SPAN = 100; // a panel whose positive values span more than this factor gets a log axis (as in the report)
const state = { runs: [], logStep: localStorage.getItem("regimescope.logStep") !== "false", selected: null };

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text) node.textContent = text;
  return node;
}

function tooltip(node, text) {
  node.appendChild(svg("title", {}, text));
  return node;
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function format(value) {
  if (value === 0) return "0";
  return value === null ? "n/a" : Math.abs(value) >= 1e-3 && Math.abs(value) < 1e4 ? String(+value.toPrecision(3)) : value.toExponential(2);
}

// One step axis for every run: [first, last] over all of them, linear or log (log10(1 + step): step 0 stays on it).
function stepRange(runs) {
  const steps = runs.flatMap((run) => [...run.timeline.steps, ...run.kernel.flatMap((k) => k.steps)]);
  if (steps.length === 0) return [0, 1];
  const first = Math.min(...steps);
  return [first, Math.max(Math.max(...steps), first + 1)];
}

function stepScale(range, width) {
  const warp = (step) => (state.logStep ? Math.log10(1 + step - range[0]) : step - range[0]);
  const span = warp(range[1]) || 1;
  return (step) => (warp(step) / span) * width;
}

function stepTicks(range) {
  const ticks = state.logStep ? [0] : [range[0]];
  if (state.logStep) {
    for (let e = 0; e < 12; e += 1) for (const m of [1, 2, 5]) if (m * 10 ** e <= range[1] - range[0]) ticks.push(range[0] + m * 10 ** e);
  } else {
    const raw = (range[1] - range[0]) / 5;
    const unit = 10 ** Math.floor(Math.log10(raw));
    const step = Math.max(1, [1, 2, 5, 10].map((m) => m * unit).find((s) => s >= raw)); // whole steps
    for (let t = Math.ceil(range[0] / step) * step; t <= range[1]; t += step) if (t > range[0]) ticks.push(t);
  }
  return ticks;
}

function stepAxis(root, range, x, y, width) {
  let lastRight = -Infinity;
  for (const tick of stepTicks(range)) {
    const at = x(tick);
    if (at > width + 0.5 || at - lastRight < 22) continue;
    root.append(svg("line", { x1: at, x2: at, y1: y, y2: y + 4, stroke: "#9e9e9e" }), svg("text", { class: "rs-axis", x: at, y: y + 14, "text-anchor": "middle" }, String(tick)));
    lastRight = at;
  }
}

// The verdict over training: one colored band per measurement interval, the score as a line on top.
function timeline(run, range, width, height = 34) {
  const root = svg("svg", { class: "rs-timeline", "data-run": run.name, width, height: height + 18, "shape-rendering": "crispEdges" });
  const { steps, score, label } = run.timeline;
  const x = stepScale(range, width);
  if (steps.length === 0) {
    root.appendChild(svg("rect", { class: "rs-failed", x: 0, y: 0, width, height, fill: "#fbe9e7", stroke: "#e57373" }));
    root.appendChild(svg("text", { x: 8, y: height / 2 + 4, class: "rs-failed-text" }, run.failure ? `measuring paused at step ${run.failure.step}` : "no verdict yet"));
    return root;
  }
  for (let i = 0; i < steps.length; i += 1) {
    const end = i + 1 < steps.length ? x(steps[i + 1]) : x(range[1]);
    const rect = svg("rect", { class: "rs-band", "data-label": label[i], x: x(steps[i]), y: 0, width: Math.max(end - x(steps[i]), 1), height, fill: COLORS[label[i]] || "#9e9e9e" });
    root.appendChild(tooltip(rect, `${run.name}, step ${steps[i]}: ${label[i]} (score ${format(score[i])})`));
  }
  if (run.failure) {
    root.appendChild(tooltip(svg("rect", { class: "rs-failed", x: x(steps[steps.length - 1]), y: 0, width: Math.max(x(range[1]) - x(steps[steps.length - 1]), 2), height, fill: "url(#rs-hatch)" }), run.failure.message));
  }
  const points = steps.map((s, i) => (score[i] === null ? null : `${x(s).toFixed(1)},${(height - score[i] * (height - 4) - 2).toFixed(1)}`)).filter(Boolean);
  root.appendChild(svg("polyline", { class: "rs-score", "shape-rendering": "geometricPrecision", points: points.join(" "), fill: "none", stroke: "#ffffff", "stroke-width": 2 }));
  stepAxis(root, range, x, height, width);
  return root;
}

// A line chart of one whole-model kernel quantity, one line per run, on the shared step axis; log y where the
// values span decades (S reads 1e-6 in a lazy run and 0.3 in a rich one).
function lineChart(title, entries, range, width = 330, height = 150) {
  const margin = { left: 46, right: 8, top: 18, bottom: 26 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const all = entries.flatMap((e) => e.values.filter((v) => v !== null && Number.isFinite(v)));
  const positive = all.filter((v) => v > 0);
  const log = entries.length > 0 && entries[0].positive && positive.length > 0 && Math.min(...all) >= 0 && Math.max(...positive) > LOG_SPAN * Math.min(...positive);
  const root = svg("svg", { class: "rs-chart", "data-title": title, "data-log": log, width, height });
  root.appendChild(svg("text", { class: "rs-chart-title", x: margin.left, y: 12 }, title + (log ? " (log)" : "")));
  const plot = svg("g", { transform: `translate(${margin.left},${margin.top})` });
  root.appendChild(plot);
  plot.appendChild(svg("rect", { x: 0, y: 0, width: plotW, height: plotH, fill: "none", stroke: "#e0e0e0" }));
  if (all.length === 0) {
    plot.appendChild(svg("text", { class: "rs-axis", x: plotW / 2, y: plotH / 2, "text-anchor": "middle" }, "not logged"));
    return root;
  }
  let lo = log ? Math.max(Math.min(...positive), Math.max(...positive) * 1e-8) : Math.min(...all);
  let hi = log ? Math.max(...positive) : Math.max(...all);
  if (hi === lo) { hi += log ? hi : Math.abs(hi) * 0.1 + 1e-12; lo -= log ? lo / 2 : Math.abs(lo) * 0.1 + 1e-12; }
  const warp = (v) => (log ? Math.log10(v) : v);
  const y = (v) => plotH - ((warp(v) - warp(lo)) / (warp(hi) - warp(lo))) * plotH;
  const x = stepScale(range, plotW);
  const ticks = log
    ? Array.from({ length: Math.floor(Math.log10(hi)) - Math.ceil(Math.log10(lo)) + 1 }, (_, i) => 10 ** (Math.ceil(Math.log10(lo)) + i))
    : [lo, (lo + hi) / 2, hi];
  const every = Math.ceil(ticks.length / 5);
  ticks.forEach((tick, i) => {
    if (i % every) return;
    plot.append(svg("line", { x1: 0, x2: plotW, y1: y(tick), y2: y(tick), stroke: "#f0f0f0" }), svg("text", { class: "rs-axis", x: -4, y: y(tick) + 3, "text-anchor": "end" }, log ? `1e${Math.round(Math.log10(tick))}` : format(tick)));
  });
  for (const entry of entries) {
    const pts = entry.steps.map((s, i) => [s, entry.values[i]]).filter(([, v]) => v !== null && Number.isFinite(v) && (!log || v >= lo));
    plot.appendChild(svg("polyline", { class: "rs-line", "data-run": entry.run, points: pts.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(" "), fill: "none", stroke: entry.color, "stroke-width": 1.6 }));
    for (const [s, v] of pts) plot.appendChild(tooltip(svg("circle", { cx: x(s), cy: y(v), r: 2.2, fill: entry.color }), `${entry.run}, step ${s}: ${format(v)}`));
  }
  stepAxis(plot, range, x, plotH, plotW);
  return root;
}

// Sequential color for kernel distances (log scale, 1e-6 .. 1) and diverging color for balances (-1 .. 1).
const SCALES = {
  distance: { color: (v) => mix([[247, 251, 255], [107, 174, 214], [8, 81, 156], [63, 0, 125]], (Math.log10(Math.max(v, 1e-6)) + 6) / 6), ticks: [[0, "1e-6"], [1 / 3, "1e-4"], [2 / 3, "1e-2"], [1, "1"]], label: "S, log scale: 0 lazy, towards 1 rich", at: (t) => 10 ** (6 * t - 6) },
  balance: { color: (v) => mix([[33, 102, 172], [247, 247, 247], [178, 24, 43]], (v + 1) / 2), ticks: [[0, "-1"], [0.5, "0"], [1, "+1"]], label: "rho: -1 downstream, 0 balanced, +1 upstream", at: (t) => 2 * t - 1 },
};

function mix(stops, t) {
  t = Math.min(Math.max(t, 0), 1);
  const scaled = t * (stops.length - 1);
  const i = Math.min(Math.floor(scaled), stops.length - 2);
  const f = scaled - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// Layer names keep their end (what tells layer4.1.conv2 from layer4.0.conv2) when they must be shortened.
function shorten(name, chars) {
  return name.length <= chars ? name : `…${name.slice(name.length - chars + 1)}`;
}

function colorBar(scale, x, y, width) {
  const group = svg("g", { class: "rs-colorbar" });
  const steps = 40;
  for (let i = 0; i < steps; i += 1) group.appendChild(svg("rect", { x: x + (i * width) / steps, y, width: width / steps + 0.5, height: 8, fill: scale.color(scale.at((i + 0.5) / steps)) }));
  for (const [t, text] of scale.ticks) group.appendChild(svg("text", { class: "rs-axis", x: x + t * width, y: y + 19, "text-anchor": t === 0 ? "start" : t === 1 ? "end" : "middle" }, text));
  group.appendChild(svg("text", { class: "rs-axis", x: x + width + 8, y: y + 8 }, scale.label));
  return group;
}

// A layer x measurement heat map with its color bar; hover shows the full layer name, step and value.
function heatmap(grid, scale) {
  const cell = Math.max(4, Math.min(16, Math.floor(560 / Math.max(grid.steps.length, 1))));
  const longest = Math.max(...grid.layers.map((l) => l.length));
  const chars = Math.min(longest, 34);
  const labelWidth = 12 + chars * 6.2;
  const plotW = cell * grid.steps.length;
  const width = Math.max(labelWidth + plotW, labelWidth + 420);
  const height = 16 * grid.layers.length + 56;
  const root = svg("svg", { class: "rs-heatmap", width, height, "shape-rendering": "crispEdges" });
  grid.layers.forEach((layer, row) => {
    root.appendChild(tooltip(svg("text", { class: "rs-axis rs-layer", x: labelWidth - 6, y: row * 16 + 12, "text-anchor": "end" }, shorten(layer, chars)), layer));
    grid.values[row].forEach((value, column) => {
      const rect = svg("rect", { class: "rs-cell", x: labelWidth + column * cell, y: row * 16, width: cell, height: 15, fill: value === null ? "#eeeeee" : scale.color(value) });
      root.appendChild(tooltip(rect, `${layer}, step ${grid.steps[column]}: ${format(value)}`));
    });
  });
  const base = 16 * grid.layers.length;
  if (grid.steps.length) {
    root.appendChild(svg("text", { class: "rs-axis", x: labelWidth, y: base + 11 }, `${grid.steps.length} measurements, steps ${grid.steps[0]} … ${grid.steps[grid.steps.length - 1]}`));
  }
  root.appendChild(colorBar(scale, labelWidth, base + 22, 160));
  return root;
}

function alertsTable(alerts) {
  if (alerts.length === 0) return el("p", { class: "rs-empty" }, "No alerts in this run.");
  const table = el("table", { class: "rs-alerts" });
  const head = el("tr");
  head.append(el("th", {}, "step"), el("th", {}, "kind"), el("th", {}, "what happened"));
  table.appendChild(head);
  for (const alert of alerts) {
    const row = el("tr", { class: alert.kind === "note" ? "rs-alert rs-note" : "rs-alert" });
    const kind = el("td");
    kind.appendChild(el("code", { class: "rs-kind" }, alert.kind));
    row.append(el("td", { class: "rs-step" }, String(alert.step)), kind, el("td", {}, alert.message));
    table.appendChild(row);
  }
  return table;
}

function kernelCharts(allRuns, range) {
  const runs = allRuns.filter((run) => run.kernel.length > 0);
  const colors = Object.fromEntries(runs.map((run, i) => [run.name, RUN_COLORS[i % RUN_COLORS.length]]));
  const metrics = [];
  for (const run of runs) for (const k of run.kernel) if (!metrics.some((m) => m.metric === k.metric)) metrics.push(k);
  const box = el("div", { class: "rs-charts" });
  for (const { metric, title } of metrics) {
    const entries = runs.flatMap((run) => run.kernel.filter((k) => k.metric === metric).map((k) => ({ ...k, run: run.name, color: colors[run.name] })));
    box.appendChild(lineChart(title, entries, range));
  }
  const legend = el("div", { class: "rs-legend" });
  for (const run of runs) {
    const item = el("span", { title: run.name });
    item.append(el("i", { style: `background:${colors[run.name]}` }), document.createTextNode(run.name));
    legend.appendChild(item);
  }
  return [legend, box];
}

async function showRun(name, target) {
  target.replaceChildren(el("p", { class: "rs-empty" }, `Loading ${name}…`));
  const run = await getJson(`run?${new URLSearchParams({ run: name })}`);
  const parts = [el("h2", { class: "rs-run-title" }, `Run ${run.name}`)];
  if (run.failure) parts.push(el("p", { class: "rs-failure" }, `Measuring paused at step ${run.failure.step}: ${run.failure.message}`));
  for (const note of run.notes) {
    const box = el("div", { class: "rs-note-text" });
    box.innerHTML = note.html; // rendered and escaped by regimescope.report.html.markdown_html on the server
    parts.push(el("h3", {}, note.title), box);
  }
  parts.push(el("h3", {}, `Alerts (${run.alert_list.length})`), alertsTable(run.alert_list));
  parts.push(el("h3", {}, "Per layer, over training (hover a cell or a name for the full layer name and value)"));
  const grids = el("div", { class: "rs-grids" });
  for (const grid of run.grids) {
    const box = el("div");
    box.appendChild(el("h3", {}, grid.title));
    box.appendChild(grid.layers.length ? heatmap(grid, SCALES[grid.scale]) : el("p", { class: "rs-empty" }, "not logged"));
    grids.appendChild(box);
  }
  parts.push(grids, el("h3", {}, "NTK on the probe"));
  const images = el("div", { class: "rs-images" });
  for (const image of run.images.slice(-6)) {
    const figure = el("figure");
    figure.append(el("img", { src: image.url, alt: `NTK at step ${image.step}` }), el("figcaption", {}, `step ${image.step}`));
    images.appendChild(figure);
  }
  parts.push(run.images.length ? images : el("p", { class: "rs-empty" }, "No kernel images logged."));
  target.replaceChildren(...parts);
}

function drawOverview(list, charts) {
  const range = stepRange(state.runs);
  const width = Math.max(320, document.body.clientWidth - 560);
  const hatch = svg("svg", { width: 0, height: 0, style: "position:absolute" });
  hatch.innerHTML = '<defs><pattern id="rs-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbe9e7"/><line x1="0" y1="0" x2="0" y2="6" stroke="#e57373" stroke-width="2"/></pattern></defs>';
  const rows = state.runs.map((run) => {
    const row = el("div", { class: "rs-row", "data-run": run.name });
    const final = run.label ? `${run.label} (score ${run.score.toFixed(2)}) · ${run.alerts} alert${run.alerts === 1 ? "" : "s"}` : "no verdict";
    const status = el("div", { class: "rs-final" }, final);
    if (run.failure) status.appendChild(el("div", { class: "rs-failure", title: run.failure.message }, `paused at step ${run.failure.step}: ${run.failure.message}`));
    row.append(el("div", { class: "rs-run-name", title: run.name }, run.name), timeline(run, range, width), status);
    row.classList.toggle("rs-selected", run.name === state.selected);
    row.addEventListener("click", () => select(run.name));
    return row;
  });
  list.replaceChildren(hatch, ...rows);
  charts.replaceChildren(...kernelCharts(state.runs, range));
}

async function select(name) {
  state.selected = name;
  document.querySelectorAll(".rs-row").forEach((row) => row.classList.toggle("rs-selected", row.dataset.run === name));
  await showRun(name, document.querySelector(".rs-detail"));
}

export async function render() {
  document.head.appendChild(el("link", { rel: "stylesheet", href: "style.css" }));
  const header = el("div");
  header.append(el("h1", {}, "regimescope: lazy or rich?"), el("div", { class: "rs-sub" }, "Verdict per measurement (bands) and richness score (white line, 0 bottom to 1 top), every run on one step axis. Click a run for its explanation, alerts and per-layer views."));
  const legend = el("div", { class: "rs-legend" });
  for (const [label, color] of Object.entries(COLORS)) {
    const item = el("span");
    item.append(el("i", { style: `background:${color}` }), document.createTextNode(label));
    legend.appendChild(item);
  }
  const toggle = el("label", { class: "rs-toggle" });
  const box = el("input", { type: "checkbox", id: "rs-log-step" });
  box.checked = state.logStep;
  toggle.append(box, document.createTextNode(" log step axis (most of the action is early)"));
  legend.appendChild(toggle);
  header.appendChild(legend);
  const list = el("div", { class: "rs-runs" });
  const charts = el("div", { class: "rs-kernel" });
  const detail = el("div", { class: "rs-detail" });
  document.body.replaceChildren(header, el("h2", {}, "Regime timeline"), list, el("h2", {}, "Kernel indicators, all runs"), charts, detail);
  box.addEventListener("change", () => {
    state.logStep = box.checked;
    localStorage.setItem("regimescope.logStep", String(state.logStep));
    drawOverview(list, charts);
  });
  try {
    state.runs = (await getJson("runs")).runs;
    if (state.runs.length === 0) {
      list.appendChild(el("p", { class: "rs-empty" }, "No run with regimescope data yet. Attach a RegimeMonitor with logdir= inside this logdir."));
      return;
    }
    // ?run=NAME in the frame's address opens that run (a link to a run); otherwise the first run with a verdict.
    const asked = new URLSearchParams(window.location.search).get("run");
    state.selected = (state.runs.find((run) => run.name === asked) || state.runs.find((run) => run.label) || state.runs[0]).name;
    drawOverview(list, charts);
    await select(state.selected);
    document.body.dataset.ready = "true";
  } catch (error) {
    list.appendChild(el("p", { class: "rs-empty" }, `Could not read regimescope data: ${error.message}`));
  }
}
