// regimescope dashboard: a TensorBoard ES-module plugin frontend. No dependencies, no network beyond this server.
// TensorBoard loads it in an iframe whose base URL is the plugin's route prefix, so fetch("runs") reaches
// /data/plugin/regimescope/runs.

const COLORS = { lazy: "#2e86c1", transitional: "#f1c40f", rich: "#c0392b" };
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

async function getJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// The verdict over training: one colored band per measurement interval, the score as a line on top.
function timeline(run, width, height = 34) {
  const { steps, score, label } = run.timeline;
  const root = svg("svg", { class: "rs-timeline", "data-run": run.name, width, height: height + 12, "shape-rendering": "crispEdges" });
  if (steps.length === 0) return root;
  const first = steps[0];
  const last = Math.max(steps[steps.length - 1], first + 1);
  const x = (step) => ((step - first) / (last - first)) * width;
  for (let i = 0; i < steps.length; i += 1) {
    const end = i + 1 < steps.length ? x(steps[i + 1]) : width;
    const rect = svg("rect", { class: "rs-band", "data-label": label[i], x: x(steps[i]), y: 0, width: Math.max(end - x(steps[i]), 1), height, fill: COLORS[label[i]] || "#9e9e9e" });
    const title = svg("title");
    title.textContent = `step ${steps[i]}: ${label[i]} (score ${score[i] === null ? "n/a" : score[i].toFixed(2)})`;
    rect.appendChild(title);
    root.appendChild(rect);
  }
  const points = steps.map((s, i) => (score[i] === null ? null : `${x(s).toFixed(1)},${(height - score[i] * (height - 4) - 2).toFixed(1)}`)).filter(Boolean);
  root.appendChild(svg("polyline", { class: "rs-score", "shape-rendering": "geometricPrecision", points: points.join(" "), fill: "none", stroke: "#ffffff", "stroke-width": 2 }));
  const left = svg("text", { class: "rs-axis", x: 0, y: height + 11 });
  left.textContent = `step ${steps[0]}`;
  const right = svg("text", { class: "rs-axis", x: width, y: height + 11, "text-anchor": "end" });
  right.textContent = `step ${steps[steps.length - 1]}`;
  root.append(left, right);
  return root;
}

// Sequential color for kernel distances (log scale, 1e-6 .. 1) and diverging color for balances (-1 .. 1).
function distanceColor(value) {
  const t = Math.min(Math.max((Math.log10(Math.max(value, 1e-6)) + 6) / 6, 0), 1);
  const stops = [[247, 251, 255], [107, 174, 214], [8, 81, 156], [63, 0, 125]];
  return mix(stops, t);
}

function balanceColor(value) {
  const t = Math.min(Math.max((value + 1) / 2, 0), 1);
  return mix([[33, 102, 172], [247, 247, 247], [178, 24, 43]], t);
}

function mix(stops, t) {
  const scaled = t * (stops.length - 1);
  const i = Math.min(Math.floor(scaled), stops.length - 2);
  const f = scaled - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// A layer x step heat map; columns are measurements in order, hover shows the value.
function heatmap(grid, color) {
  const cell = Math.max(3, Math.min(14, Math.floor(560 / Math.max(grid.steps.length, 1))));
  const labelWidth = 110;
  const width = labelWidth + cell * grid.steps.length;
  const height = 16 * grid.layers.length + 14;
  const root = svg("svg", { class: "rs-heatmap", width, height, "shape-rendering": "crispEdges" });
  grid.layers.forEach((layer, row) => {
    const name = svg("text", { class: "rs-axis", x: labelWidth - 6, y: row * 16 + 12, "text-anchor": "end" });
    name.textContent = layer;
    root.appendChild(name);
    grid.values[row].forEach((value, column) => {
      const rect = svg("rect", { class: "rs-cell", x: labelWidth + column * cell, y: row * 16, width: cell, height: 15, fill: value === null ? "#eeeeee" : color(value) });
      const title = svg("title");
      title.textContent = `${layer}, step ${grid.steps[column]}: ${value === null ? "n/a" : value.toPrecision(3)}`;
      rect.appendChild(title);
      root.appendChild(rect);
    });
  });
  if (grid.steps.length) {
    const axis = svg("text", { class: "rs-axis", x: labelWidth, y: height - 2 });
    axis.textContent = `steps ${grid.steps[0]} … ${grid.steps[grid.steps.length - 1]}`;
    root.appendChild(axis);
  }
  return root;
}

function alertsTable(alerts) {
  if (alerts.length === 0) return el("p", { class: "rs-empty" }, "No alerts in this run.");
  const table = el("table", { class: "rs-alerts" });
  const head = el("tr");
  head.append(el("th", {}, "step"), el("th", {}, "kind"), el("th", {}, "what happened"));
  table.appendChild(head);
  for (const alert of alerts) {
    const row = el("tr", { class: "rs-alert" });
    const kind = el("td");
    kind.appendChild(el("code", { class: "rs-kind" }, alert.kind));
    row.append(el("td", { class: "rs-step" }, String(alert.step)), kind, el("td", {}, alert.message));
    table.appendChild(row);
  }
  return table;
}

async function showRun(name, target) {
  target.replaceChildren(el("p", { class: "rs-empty" }, `Loading ${name}…`));
  const run = await getJson(`run?${new URLSearchParams({ run: name })}`);
  const parts = [el("h2", {}, `Run ${run.name}`), el("h3", {}, `Alerts (${run.alert_list.length})`), alertsTable(run.alert_list)];
  parts.push(el("h3", {}, "Per layer, over training"));
  const grids = el("div", { class: "rs-grids" });
  run.grids.forEach((grid, index) => {
    const box = el("div");
    box.appendChild(el("h3", {}, grid.title));
    box.appendChild(grid.layers.length ? heatmap(grid, index === 0 ? distanceColor : balanceColor) : el("p", { class: "rs-empty" }, "not logged"));
    grids.appendChild(box);
  });
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

export async function render() {
  document.head.appendChild(el("link", { rel: "stylesheet", href: "style.css" }));
  const header = el("div");
  header.append(el("h1", {}, "regimescope: lazy or rich?"), el("div", { class: "rs-sub" }, "Verdict per measurement (bands) and richness score (white line, 0 bottom to 1 top). Click a run for its alerts and per-layer views."));
  const legend = el("div", { class: "rs-legend" });
  for (const [label, color] of Object.entries(COLORS)) {
    const item = el("span");
    item.append(el("i", { style: `background:${color}` }), document.createTextNode(label));
    legend.appendChild(item);
  }
  header.appendChild(legend);
  const list = el("div", { class: "rs-runs" });
  const detail = el("div", { class: "rs-detail" });
  document.body.replaceChildren(header, el("h2", {}, "Regime timeline"), list, detail);
  try {
    const { runs } = await getJson("runs");
    if (runs.length === 0) {
      list.appendChild(el("p", { class: "rs-empty" }, "No run with regimescope data yet. Attach a RegimeMonitor with logdir= inside this logdir."));
      return;
    }
    const width = Math.max(320, document.body.clientWidth - 400);
    const rows = runs.map((run) => {
      const row = el("div", { class: "rs-row", "data-run": run.name });
      const final = run.label ? `${run.label} (score ${run.score.toFixed(2)}) · ${run.alerts} alert${run.alerts === 1 ? "" : "s"}` : "no verdict yet";
      row.append(el("div", { class: "rs-run-name", title: run.name }, run.name), timeline(run, width), el("div", { class: "rs-final" }, final));
      row.addEventListener("click", () => select(run.name));
      list.appendChild(row);
      return row;
    });
    const select = async (name) => {
      rows.forEach((row) => row.classList.toggle("rs-selected", row.dataset.run === name));
      await showRun(name, detail);
    };
    await select(runs[0].name);
    document.body.dataset.ready = "true";
  } catch (error) {
    list.appendChild(el("p", { class: "rs-empty" }, `Could not read regimescope data: ${error.message}`));
  }
}
