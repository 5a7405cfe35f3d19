"""The drift report as one self-contained HTML page: no script, no CDN, inline SVG charts.

The page has the dataset verdict, a summary table (one row per column: kind, method,
statistic, p-value, threshold, drifted), per column the reference and current
distributions as grouped bars of proportions over the same buckets and, when the current
data was cut by a time column (``keel.monitoring.report_drift``), the drift share over
time as a line and a table of the buckets. Every name and value
from the data is HTML-escaped, so a hostile column name or category cannot inject markup.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from keel.monitoring.results import ColumnDrift, Distribution, DriftReport

if TYPE_CHECKING:
    from keel.monitoring.report_drift import DriftBucket

__all__ = ["drift_html"]

_REF, _CUR = "#4c78a8", "#f58518"
_CHART_W, _CHART_H, _PAD = 720, 180, 28

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .7rem;border-bottom:1px solid #ddd;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
.drift{color:#b00020;font-weight:600}.ok{color:#1b7f3b}.muted{color:#666}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
svg text{font-size:10px;fill:#444}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def _chart(dist: Distribution) -> str:
    """Grouped bars: for each bucket the reference share, then the current share."""
    ref_total, cur_total = max(sum(dist.reference), 1), max(sum(dist.current), 1)
    shares = [
        (r / ref_total, c / cur_total) for r, c in zip(dist.reference, dist.current, strict=True)
    ]
    top = max((max(pair) for pair in shares), default=0.0) or 1.0
    n = max(len(shares), 1)
    slot = (_CHART_W - 2 * _PAD) / n
    bar = max(slot / 2 - 1, 0.5)
    height = _CHART_H - 2 * _PAD
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_CHART_W}" height="{_CHART_H}" '
        f'role="img" aria-label="reference and current distributions">'
    ]
    for i, ((r, c), label) in enumerate(zip(shares, dist.labels, strict=True)):
        x = _PAD + i * slot
        for offset, share, colour, side in ((0, r, _REF, "reference"), (bar, c, _CUR, "current")):
            h = height * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{_PAD + height - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(label)} — {side}: '
                f"{share:.2%}</title></rect>"
            )
        if n <= 12 or i % -(-n // 8) == 0:  # at most ~8 labels, so they do not overlap
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{_CHART_H - 8}" text-anchor="middle">'
                f"{_e(label[:14])}</text>"
            )
    parts.append(
        f'<text x="{_PAD}" y="{_PAD - 8}">max {top:.1%}</text>'
        f'<line x1="{_PAD}" y1="{_PAD + height}" x2="{_CHART_W - _PAD}" y2="{_PAD + height}" '
        'stroke="#999"/></svg>'
    )
    return "".join(parts)


def _row(result: ColumnDrift, role: str = "") -> str:
    verdict = '<td class="drift">drift</td>' if result.drifted else '<td class="ok">no drift</td>'
    name = _e(result.column) + (f' <span class="muted">({role})</span>' if role else "")
    approx = " ≈" if result.approximate else ""
    return (
        f'<tr><td><a href="#col-{_e(result.column)}">{name}</a></td><td>{_e(result.kind)}</td>'
        f"<td>{_e(result.method)}{approx}</td><td>{_number(result.statistic)}</td>"
        f"<td>{_number(result.p_value)}</td><td>{_number(result.threshold)}</td>{verdict}"
        f"<td>{result.n_reference:,}</td><td>{result.n_current:,}</td></tr>"
    )


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _timeline(buckets: Sequence[DriftBucket], drift_share: float) -> str:
    """The drift share per bucket as a line (the dataset-drift share dashed), and a table."""
    n = len(buckets)
    height = _CHART_H - 2 * _PAD
    step = (_CHART_W - 2 * _PAD) / max(n - 1, 1)
    x = [_PAD + i * step if n > 1 else _CHART_W / 2 for i in range(n)]
    y = [_PAD + height * (1 - b.report.share) for b in buckets]
    level = _PAD + height * (1 - drift_share)
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    dots = "".join(
        f'<circle cx="{a:.1f}" cy="{c:.1f}" r="3" '
        f'fill="{_CUR if b.report.dataset_drifted else _REF}">'
        f"<title>{_when(b.start_ms)}: {b.report.share:.0%} of columns drifted</title></circle>"
        for a, c, b in zip(x, y, buckets, strict=True)
    )

    def anchor(i: int) -> str:  # the first and last labels stay inside the chart
        return "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"

    labels = "".join(
        f'<text x="{x[i]:.1f}" y="{_CHART_H - 8}" text-anchor="{anchor(i)}">'
        f"{_when(buckets[i].start_ms)}</text>"
        for i in sorted({0, n - 1, *range(0, n, max(n // 4, 1))})
        if i < n
    )
    labels += (
        f'<text x="{_PAD - 4}" y="{_PAD + 3}" text-anchor="end">100%</text>'
        f'<text x="{_PAD - 4}" y="{_PAD + height + 3}" text-anchor="end">0%</text>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_CHART_W}" height="{_CHART_H}" '
        'role="img" aria-label="drift share over time">'
        f'<line x1="{_PAD}" y1="{level:.1f}" x2="{_CHART_W - _PAD}" y2="{level:.1f}" '
        f'stroke="#b00020" stroke-dasharray="4 3"/>'
        f'<polyline points="{points}" fill="none" stroke="{_REF}" stroke-width="1.5"/>{dots}'
        f'<text x="{_PAD}" y="{_PAD - 8}">drift share (0–100%; dashed: dataset drift at '
        f"{drift_share:.0%})</text>{labels}</svg>"
    )
    rows = "".join(
        f"<tr><td>{_when(b.start_ms)}</td><td>{b.rows:,}</td><td>{b.report.share:.0%}</td>"
        + (
            '<td class="drift">drift</td>'
            if b.report.dataset_drifted
            else '<td class="ok">no drift</td>'
        )
        + f"<td>{_e(', '.join(c.column for c in b.report.columns if c.drifted) or '—')}</td></tr>"
        for b in buckets
    )
    table = (
        '<table id="timeline"><thead><tr><th>bucket (UTC)</th><th>rows</th><th>drift share</th>'
        f"<th>verdict</th><th>drifted columns</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return f'<h2 id="over-time">Drift over time</h2>{svg}{table}'


def drift_html(
    report: DriftReport,
    *,
    title: str = "Keel drift report",
    timeline: Sequence[DriftBucket] | None = None,
) -> str:
    """Return the report as a self-contained HTML page (a string; write it where you like).

    ``timeline`` (``keel.monitoring.report_drift.drift_over_time``) adds the drift over time.
    """
    verdict = (
        '<span class="drift">dataset drift detected</span>'
        if report.dataset_drifted
        else '<span class="ok">no dataset drift</span>'
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    compared = len(report.columns)
    head = (
        f"<h1>{_e(title)}</h1><p>{verdict}: {report.drifted_columns} of {compared} columns "
        f"drifted ({report.share:.0%}; the dataset drifts at {report.drift_share:.0%}). "
        f"Reference {report.rows_reference:,} rows, current {report.rows_current:,} rows. "
        f'<span class="muted">{when}</span></p>'
    )
    specials = [
        (r, role)
        for r, role in ((report.prediction, "prediction"), (report.target, "target"))
        if r is not None
    ]
    rows = "".join(_row(r) for r in report.columns) + "".join(_row(r, k) for r, k in specials)
    table = (
        "<table><thead><tr><th>column</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>p-value</th><th>threshold</th><th>verdict</th><th>reference n</th>"
        f"<th>current n</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    notes = []
    if report.multivariate is not None:
        m = report.multivariate
        notes.append(
            f"<p>Domain classifier ROC AUC {m.roc_auc:.3f} ± {m.roc_auc_std:.3f} "
            f"({m.folds}-fold, threshold {m.threshold}): "
            f"{'<span class=drift>drift</span>' if m.drifted else 'no drift'}.</p>"
        )
    for label, names in (
        ("Not in the current data", report.missing_columns),
        ("Not in the reference", report.extra_columns),
    ):
        if names:
            notes.append(f"<p>{label}: {_e(', '.join(names))}</p>")
    if report.skipped:
        items = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in report.skipped.items())
        notes.append(f"<p>Not compared:</p><ul>{items}</ul>")
    legend = (
        f'<p class="legend"><span style="background:{_REF}"></span>reference'
        f'<span style="background:{_CUR}"></span>current</p>'
    )
    sections = []
    for result in (*report.columns, *(r for r, _ in specials)):
        if result.distribution is None:
            continue
        state = "drift" if result.drifted else "no drift"
        sections.append(
            f'<h2 id="col-{_e(result.column)}">{_e(result.column)} '
            f'<span class="muted">{_e(result.method)} {_number(result.statistic)} — '
            f"{state}</span></h2>{_chart(result.distribution)}"
        )
    over_time = _timeline(timeline, report.drift_share) if timeline else ""
    body = head + table + "".join(notes) + over_time + legend + "".join(sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )
