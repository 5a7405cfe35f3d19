// Keel web UI: metric charts (Plotly, when present), the runs table's column picker and
// run selection for comparison. Plain JavaScript; every user string is set as text.
"use strict";

function escapeForPlotly(text) {
  // Plotly reads a few HTML-like tags in trace names and titles; show user text as text.
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function drawCharts() {
  const data = document.getElementById("charts-data");
  if (!data || typeof Plotly === "undefined") return;
  for (const chart of JSON.parse(data.textContent)) {
    const el = document.getElementById(chart.id);
    if (!el) continue;
    const traces = chart.traces.map((t) => ({
      x: t.x, y: t.y, name: escapeForPlotly(t.name), type: "scatter",
      mode: t.x.length > 1 ? "lines" : "markers",
    }));
    const overlaid = traces.length > 1;
    // One run: the x axis is titled "step". Several: the legend goes under the plot
    // instead (the hover still says which step).
    Plotly.newPlot(el, traces, {
      title: { text: escapeForPlotly(chart.title), font: { size: 14 } },
      margin: { l: 50, r: 16, t: 40, b: overlaid ? 24 : 40 },
      xaxis: overlaid ? {} : { title: { text: "step" } },
      showlegend: overlaid,
      legend: { orientation: "h", x: 0, y: -0.12, yanchor: "top", font: { size: 11 } },
      hovermode: "x unified",
    }, { displaylogo: false, responsive: true });
  }
}

function setupPicker() {
  const picker = document.getElementById("column-picker");
  if (!picker) return;
  const list = picker.querySelector(".picker-list");
  const status = picker.querySelector(".picker-status");
  const search = picker.querySelector(".picker-search");
  const chosen = new Set(picker.dataset.columns ? picker.dataset.columns.split(",") : []);
  const LIMIT = 200;
  let keys = null;

  function render() {
    const needle = search.value.trim().toLowerCase();
    const matching = keys.filter((k) => k.toLowerCase().includes(needle));
    // Chosen columns first, so they can be unticked without searching.
    matching.sort((a, b) => (chosen.has(b) - chosen.has(a)));
    list.replaceChildren();
    for (const spec of matching.slice(0, LIMIT)) {
      const dot = spec.indexOf(".");
      const li = document.createElement("li");
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = spec;
      box.checked = chosen.has(spec);
      box.addEventListener("change", () => { box.checked ? chosen.add(spec) : chosen.delete(spec); });
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = spec.slice(0, dot - 1);
      const name = document.createElement("span");
      name.textContent = spec.slice(dot + 1);
      label.append(box, kind, name);
      li.append(label);
      list.append(li);
    }
    const more = matching.length > LIMIT ? ` (showing ${LIMIT}; search to narrow)` : "";
    status.textContent = `${matching.length} of ${keys.length} keys${more} · ${chosen.size} chosen`;
  }

  picker.addEventListener("toggle", async () => {
    if (!picker.open || keys !== null) return;
    try {
      const response = await fetch(picker.dataset.keysUrl, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const found = await response.json();
      keys = [
        ...found.metrics.map((k) => `metrics.${k}`),
        ...found.params.map((k) => `params.${k}`),
        ...found.tags.map((k) => `tags.${k}`),
      ];
      render();
      search.focus();
    } catch (err) {
      status.textContent = `Could not load the keys: ${err.message}`;
    }
  });
  search.addEventListener("input", () => { if (keys) render(); });
  picker.querySelector(".picker-none").addEventListener("click", () => { chosen.clear(); if (keys) render(); });
  picker.querySelector(".picker-apply").addEventListener("click", () => {
    const url = new URL(window.location.href);
    url.searchParams.set("columns", [...chosen].join(","));
    url.searchParams.delete("page_token");
    window.location.assign(url.toString());
  });
}

function setupCompare() {
  const form = document.getElementById("compare-form");
  const button = document.getElementById("compare-button");
  if (!form || !button) return;
  const update = () => {
    const n = form.querySelectorAll("input[name=run]:checked").length;
    button.disabled = n < 2 || n > 10;
    button.textContent = n ? `Compare selected (${n})` : "Compare selected";
  };
  form.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  setupPicker();
  setupCompare();
});
