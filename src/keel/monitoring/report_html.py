"""The monitoring report as ONE self-contained HTML file: readable offline, no network.

``report_html(report)`` returns a page with the summary table, the charts over time
(drift share, each column's drift statistic, latency p50/p95/p99, error rate, throughput,
live performance), each input column's reference-against-current distribution and the
alerts. The charts are drawn by Plotly, whose JavaScript is inlined from the installed
``plotly`` package (the ``ui-charts`` extra) with the report's data as JSON; without
Plotly the distributions are inline SVG (as in the drift report) and the page says which
extra draws the rest. Every name and value from the data is HTML-escaped.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from keel.monitoring.report import MonitoringReport

__all__ = ["format_summary", "plotly_js", "report_html", "script_json"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;
max-width:1200px}h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .7rem;border-bottom:1px solid
#ddd;text-align:left;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.drift{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.muted{color:#666}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1rem}
.chart{min-height:260px;border:1px solid #eee;border-radius:6px}
.state-firing{color:#b00020;font-weight:600}.state-pending{color:#8a4b00}
svg text{font-size:10px;fill:#444}
"""
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}
_SCRIPT_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})
OVER_TIME = (
    ("chart-drift-share", "Drift share over time"),
    ("chart-drift-columns", "Drift statistic per column"),
    ("chart-latency", "Latency (ms)"),
    ("chart-errors", "Error rate"),
    ("chart-throughput", "Throughput (requests/s)"),
    ("chart-performance", "Live performance"),
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    """Return ``value`` as JSON safe inside a ``<script>`` element (no ``</script>``)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


@cache
def plotly_js() -> str | None:
    """Return the text of the installed plotly.min.js, or None without the extra."""
    try:
        dist = metadata.distribution("plotly")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("plotly/package_data/plotly.min.js")))
    if not path.is_file():
        return None
    # An inline script ends at the first "</script"; plotly.min.js has none, but be sure.
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


@cache
def charts_js() -> str:
    """Return the script that draws the report's charts (shared with the UI page)."""
    return resources.files("keel.monitoring").joinpath("report_charts.js").read_text("utf-8")


def _pct(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{100 * value:.2f}%"


def _num(value: Any, unit: str = "") -> str:
    return "—" if not isinstance(value, int | float) else f"{value:.4g}{unit}"


def format_summary(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return the summary table of ``report.to_dict()`` as (figure, value, css class) rows."""
    s = data["summary"]
    f = s["figures"]
    drift = s.get("drift")
    rows = [
        ("Requests", f"{s['requests']:,}", ""),
        ("Throughput", _num(f.get("throughput_rps"), " req/s"), ""),
        ("Error rate", _pct(f.get("error_rate")), ""),
        ("Rejected (4xx)", _pct((s.get("health") or {}).get("rejected_rate")), ""),
        ("Latency p50", _num(f.get("latency_p50_ms"), " ms"), ""),
        ("Latency p95", _num(f.get("latency_p95_ms"), " ms"), ""),
        ("Latency p99", _num(f.get("latency_p99_ms"), " ms"), ""),
    ]
    if drift is None:
        why = s["notes"].get("drift", "no traffic in the window")
        rows.append(("Drift", f"not computed: {why}", "muted"))
    else:
        verdict = "dataset drift" if drift["dataset_drifted"] else "no dataset drift"
        drifted = ", ".join(drift["drifted_columns"]) or "none"
        rows.append(("Drift share", f"{_pct(drift['share'])}: {verdict}",
                     "drift" if drift["dataset_drifted"] else "ok"))  # fmt: skip
        rows.append(("Drifted columns", drifted, ""))
    if s.get("quality") is None:
        rows.append(("Data quality", f"not computed: {s['notes'].get('quality', '—')}", "muted"))
    else:
        rows.append(("Missing (worst column)", _pct(f.get("missing_rate")), ""))
        rows.append(("Out of range (worst column)", _pct(f.get("out_of_range_rate")), ""))
        rows.append(("Unseen categories (worst column)", _pct(f.get("unseen_category_rate")), ""))
        rows.append(("Schema violations", _num(f.get("schema_violations")), ""))
    perf = s.get("performance")
    if perf is None:
        why = s["notes"].get("performance", "no feedback in the window")
        rows.append(("Live performance", f"not computed: {why}", "muted"))
    else:
        decay = (s.get("decay") or {}).get("decay", {})
        for name, value in perf["metrics"].items():
            extra = f" (decay {decay[name]:+.3g})" if isinstance(decay.get(name), float) else ""
            rows.append((f"Live {name}", _num(value) + extra, ""))
        rows.append(("Rows with feedback", f"{perf['rows']:,}", ""))
    rows.append(("Alerts fired", str(s["alerts_fired"]), "drift" if s["alerts_fired"] else ""))
    rows.append(("Alerts firing now", str(s["alerts_firing"]), ""))
    return rows


def _when(ms: Any) -> str:
    if not isinstance(ms, int):
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _svg(d: dict[str, Any]) -> str:
    from keel.monitoring._html import _chart
    from keel.monitoring.results import Distribution

    dist = Distribution(tuple(d["labels"]), tuple(d["reference"]), tuple(d["current"]))
    return _chart(dist)


def _alerts(data: dict[str, Any]) -> str:
    alerts = data["alerts"]
    if not alerts:
        return '<p class="muted">No alert of this deployment\'s rules was active in the window.</p>'
    rows = "".join(
        f'<tr><td class="state-{_e(a["state"])}">{_e(a["state"])}</td><td>{_e(a["rule"])}</td>'
        f"<td>{_e(a['metric'])}</td><td>{_num(a['value'])}</td><td>{_e(a['severity'])}</td>"
        f"<td>{_when(a['fired_at'])}</td><td>{_when(a['resolved_at'])}</td>"
        f"<td>{_e(a['acknowledged_by'] or '—')}</td></tr>"
        for a in alerts
    )
    return (
        "<table><thead><tr><th>state</th><th>rule</th><th>metric</th><th>value</th>"
        "<th>severity</th><th>fired</th><th>resolved</th><th>acknowledged by</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def report_html(report: MonitoringReport, *, title: str | None = None) -> str:
    """Return the report as one self-contained HTML page (see the module doc)."""
    data = report.to_dict()
    title = title or f"Keel monitoring report: {report.deployment}"
    plotly = plotly_js()
    head = (
        f"<h1>{_e(title)}</h1><p>Deployment <b>{_e(report.deployment)}</b>, "
        f"the {_e(data['window'])} "
        f"from {_when(report.start_ms)} to {_when(report.end_ms)}, in buckets of "
        f"{report.bucket_ms // 1000:,} s. <span class=muted>Generated "
        f"{_when(report.generated_at_ms)}.</span></p>"
    )
    if data["empty"]:
        head += '<p class="muted" id="empty">No traffic was logged in this window.</p>'
    summary = "".join(
        f'<tr><th>{_e(k)}</th><td class="{c}">{_e(v)}</td></tr>' for k, v, c in format_summary(data)
    )
    versions = "".join(
        f"<li>{_e(v['model'])}/{_e(v['version'])}: {v['requests']:,} requests</li>"
        for v in data["summary"]["versions"]
    )
    parts = [head, f'<h2>Summary</h2><table id="summary">{summary}</table>']
    if versions:
        parts.append(f"<p>Versions that answered:</p><ul>{versions}</ul>")
    if plotly is None:
        parts.append(
            "<p class=muted>Charts over time need Plotly: pip install 'keel-mlops[ui-charts]'</p>"
        )
    else:
        charts = "".join(
            f'<div class="chart" id="{i}" title="{_e(t)}"></div>' for i, t in OVER_TIME
        )
        parts.append(f'<h2>Over time</h2><div class="charts">{charts}</div>')
    parts.append("<h2>Distributions: reference against current</h2>")
    if not data["distributions"]:
        why = data["summary"]["notes"].get("drift", "no traffic in the window")
        parts.append(f'<p class="muted">No distributions: {_e(why)}</p>')
    columns = []
    for i, d in enumerate(data["distributions"]):
        state = '<span class="drift">drift</span>' if d["drifted"] else '<span class="ok">ok</span>'
        chart = f'<div class="chart" id="dist-{i}"></div>' if plotly else _svg(d)
        columns.append(
            f'<div><h3 class="column" id="col-{i}">{_e(d["column"])} <span class="muted">'
            f"{_e(d['method'])} {_num(d['statistic'])}</span> {state}</h3>{chart}</div>"
        )
    if columns:
        parts.append(f'<div class="{"charts" if plotly else ""}">{"".join(columns)}</div>')
    parts.append(f"<h2>Alerts</h2>{_alerts(data)}")
    for name, why in data["notes"].items():
        parts.append(f'<p class="muted">{_e(name)}: {_e(why)}</p>')
    scripts = ""
    if plotly is not None:
        scripts = (
            f'<script type="application/json" id="report-data">{script_json(data)}</script>'
            f"<script>{plotly}</script><script>{charts_js()}</script>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}{scripts}</body></html>\n"
    )
