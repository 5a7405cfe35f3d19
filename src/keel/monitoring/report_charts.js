// Keel monitoring report charts: drawn with Plotly from the report's JSON (the
// <script type="application/json" id="report-data"> element, MonitoringReport.to_dict()).
// The same file is inlined in the HTML report and served to the UI's monitoring page.
// Plain JavaScript; user text (column names) is escaped before Plotly sees it.
"use strict";

(function () {
  const REF = "#4c78a8", CUR = "#f58518";

  function esc(text) {
    // Plotly reads a few HTML-like tags in names and titles; show user text as text.
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function layout(title, extra) {
    return Object.assign({
      title: { text: esc(title), font: { size: 14 } },
      margin: { l: 56, r: 16, t: 40, b: 40 },
      legend: { orientation: "h", x: 0, y: -0.2, yanchor: "top", font: { size: 11 } },
      hovermode: "x unified",
      height: 280,
    }, extra || {});
  }

  const CONFIG = { displaylogo: false, responsive: true, staticPlot: false };

  function draw(id, traces, title, extra) {
    const el = document.getElementById(id);
    if (!el) return;
    if (!traces.length || traces.every((t) => !t.y.some((v) => v !== null && v !== undefined))) {
      el.textContent = "";
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = `${title}: nothing to show in this window.`;
      el.appendChild(p);
      return;
    }
    Plotly.newPlot(el, traces, layout(title, extra), CONFIG);
  }

  function series(rows, x, name, key, mode) {
    return {
      x, y: rows.map((r) => (key in r.figures ? r.figures[key] : null)),
      name: esc(name), type: "scatter", mode: mode || (rows.length > 1 ? "lines+markers" : "markers"),
      connectgaps: false,
    };
  }

  function overTime(report) {
    const rows = report.timeline || [];
    const x = rows.map((r) => new Date(r.start_ms).toISOString());
    draw("chart-drift-share", [series(rows, x, "drift share", "drift_share")], "Drift share over time",
      { yaxis: { range: [0, 1.05], tickformat: ".0%" }, showlegend: false });
    const columns = [];
    for (const r of rows) for (const c of Object.keys(r.columns || {})) if (!columns.includes(c)) columns.push(c);
    draw("chart-drift-columns", columns.map((c) => ({
      x, y: rows.map((r) => (r.columns && r.columns[c] ? r.columns[c].statistic : null)),
      name: esc(c), type: "scatter", mode: rows.length > 1 ? "lines+markers" : "markers",
    })), "Drift statistic per column");
    draw("chart-latency", [
      series(rows, x, "p50", "latency_p50_ms"), series(rows, x, "p95", "latency_p95_ms"),
      series(rows, x, "p99", "latency_p99_ms"),
    ], "Latency (ms)");
    draw("chart-errors", [series(rows, x, "error rate", "error_rate")], "Error rate",
      { yaxis: { tickformat: ".0%", rangemode: "tozero" }, showlegend: false });
    draw("chart-throughput", [series(rows, x, "requests/s", "throughput_rps")], "Throughput (requests/s)",
      { yaxis: { rangemode: "tozero" }, showlegend: false });
    const metrics = ["accuracy", "precision", "recall", "f1", "roc_auc", "rmse", "mae", "r2"]
      .filter((m) => rows.some((r) => m in r.figures));
    draw("chart-performance", metrics.map((m) => series(rows, x, m, m)), "Live performance");
  }

  function distributions(report) {
    (report.distributions || []).forEach((d, i) => {
      const share = (counts) => {
        const total = counts.reduce((a, b) => a + b, 0) || 1;
        return counts.map((c) => c / total);
      };
      const labels = d.labels.map(esc);
      draw(`dist-${i}`, [
        { x: labels, y: share(d.reference), name: "reference", type: "bar", marker: { color: REF } },
        { x: labels, y: share(d.current), name: "current", type: "bar", marker: { color: CUR } },
      ], `${d.column}: reference vs current`, {
        barmode: "group", yaxis: { tickformat: ".0%" }, hovermode: "closest", height: 260,
        // Bin ranges are long labels: a few, slanted, and the hover names each bucket.
        xaxis: { tickangle: -30, nticks: 8, automargin: true },
      });
    });
  }

  function main() {
    const data = document.getElementById("report-data");
    if (!data || typeof Plotly === "undefined") return;
    const report = JSON.parse(data.textContent);
    overTime(report);
    distributions(report);
    document.documentElement.dataset.chartsDrawn = "true";
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
