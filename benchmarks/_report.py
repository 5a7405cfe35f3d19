"""The figures table: which figure of which result is shown, how it compares, what it must meet.

Each ``Row`` names one figure of one (benchmark, system) result. Rows of other systems show
how many times faster Keel is than them on the same work ("keel ×": above 1 means Keel is
faster), and a row may carry a target that turns into PASS or MISS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rich.table import Table

__all__ = ["ROWS", "Row", "Target", "evaluate", "render"]


@dataclass(frozen=True)
class Target:
    """A bound on Keel's speedup over a row (``min_speedup``) or on Keel's own value.

    ``max_above`` bounds the value to at most that much above ``reference``, a figure of
    another system of the same benchmark, given as ``(system, figure)``.
    """

    text: str
    min_speedup: float | None = None
    max_value: float | None = None
    min_value: float | None = None
    max_above: float | None = None
    reference: tuple[str, str] | None = None

    def met(
        self, value: float | None, speedup: float | None, reference: float | None = None
    ) -> bool | None:
        if self.min_speedup is not None:
            return None if speedup is None else speedup >= self.min_speedup
        if self.max_value is not None:
            return None if value is None else value < self.max_value
        if self.min_value is not None:
            return None if value is None else value >= self.min_value
        if self.max_above is not None:
            if value is None or reference is None:
                return None
            return value <= reference + self.max_above
        return None


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    benchmark: str
    system: str
    label: str
    figure: str
    unit: str
    higher_is_better: bool
    keel_figure: str | None = None  # the Keel figure it compares with; default: same name
    target: Target | None = None
    note: str = ""
    compare: bool = True  # False: no "keel ×" (another Keel path, or set-up figures)


WORKLOAD = "{target_versions:,} versions + {target_moves:,} moves, from per-call figures"


def _rows() -> tuple[Row, ...]:
    pts = {"figure": "points_per_s", "unit": "points/s", "higher_is_better": True}
    create = {"figure": "create_ms_per_run", "unit": "ms/run (create)", "higher_is_better": False}
    search = {"figure": "ms_median", "unit": "ms median (search)", "higher_is_better": False}
    versions = {"figure": "versions_per_s", "unit": "versions/s", "higher_is_better": True}
    moves = {"figure": "moves_per_s", "unit": "alias moves/s", "higher_is_better": True}
    workload = {"figure": "workload_seconds", "unit": "s (workload)", "higher_is_better": False}
    return (
        Row("a", "keel", "keel", **pts, note="run.log_metric loop; run exit flushes"),
        Row(
            "a",
            "mlflow_log_metric",
            "mlflow log_metric",
            **pts,
            target=Target("keel ≥ 50×", min_speedup=50),
            note="per-call loop; measured on {points:,} calls, per point",
        ),
        Row(
            "a",
            "mlflow_log_batch",
            "mlflow log_batch",
            **pts,
            target=Target("keel ≥ 5×", min_speedup=5),
            note="MlflowClient.log_batch, 1,000 per call",
        ),
        Row(
            "a",
            "floor",
            "floor",
            **pts,
            target=Target("within 3× (≥ 0.33×)", min_speedup=1 / 3),
            note="executemany of prebuilt rows, one WAL transaction",
        ),
        Row("a", "floor_loop", "floor (loop)", **pts, note="rows built in the timed loop"),
        Row("b", "keel", "keel", **create, note="start_run + log_params + log_metrics"),
        Row("b", "mlflow", "mlflow", **create, note="fluent start_run + log_params/metrics"),
        Row("b", "floor", "floor", **create, note="one transaction per run"),
        Row(
            "b",
            "keel",
            "keel",
            **search,
            target=Target("< 20 ms", max_value=20.0),
            note="search_runs; p90 {ms_p90:.1f} ms",
        ),
        Row(
            "b",
            "mlflow",
            "mlflow client",
            **search,
            note="MlflowClient.search_runs; p90 {ms_p90:.1f} ms",
        ),
        Row(
            "b",
            "mlflow",
            "mlflow pandas",
            figure="pandas_ms_median",
            unit="ms median (search)",
            higher_is_better=False,
            keel_figure="ms_median",
            note="mlflow.search_runs → DataFrame; p90 {pandas_ms_p90:.1f} ms",
        ),
        Row("b", "floor", "floor", **search, note="hand-written SQL; p90 {ms_p90:.1f} ms"),
        Row("c", "keel", "keel", **versions, note="measured on {versions:,} versions"),
        Row("c", "mlflow", "mlflow", **versions, note="measured on {versions:,} versions"),
        Row("c", "floor", "floor", **versions, note="one transaction per version, no checks"),
        Row("c", "keel", "keel", **moves, note="measured on {alias_moves:,} moves"),
        Row("c", "mlflow", "mlflow", **moves, note="measured on {alias_moves:,} moves"),
        Row("c", "floor", "floor", **moves, note="one transaction per move"),
        Row("c", "keel", "keel", **workload, note=WORKLOAD),
        Row(
            "c",
            "mlflow",
            "mlflow",
            **workload,
            target=Target("keel ≥ 10×", min_speedup=10),
            note=WORKLOAD,
        ),
        Row("c", "floor", "floor", **workload, note=WORKLOAD),
        *_server_rows(),
        *_serving_rows(),
    )


def _serving_rows() -> tuple[Row, ...]:
    """Rows of (g): one model served under load, Keel vs ``mlflow models serve``."""
    rows: list[Row] = []
    rps = {"unit": "req/s", "higher_is_better": True}
    for n in (1, 100):
        what = "1 row" if n == 1 else f"{n} rows"
        rows += [
            Row(
                "g",
                "floor",
                f"in-process predict, ndarray, {what}",
                figure=f"predict_ndarray_r{n}_ms",
                unit="ms (in-process)",
                higher_is_better=False,
                compare=False,
                note="the model's own predict, median of {calls:,} calls",
            ),
            Row(
                "g",
                "floor",
                f"in-process predict, DataFrame, {what}",
                figure=f"predict_frame_r{n}_ms",
                unit="ms (in-process)",
                higher_is_better=False,
                compare=False,
                note="the same on a DataFrame with the 30 column names",
            ),
        ]
    for n in (1, 100):
        what = "1 row" if n == 1 else f"{n} rows"
        for c in (1, 8, 32):
            cell = f"r{n}_c{c}"
            for system, prefix, label in (
                ("keel", "inv", "keel /invocations"),
                ("keel", "oip", "keel OIP infer"),
                ("mlflow", "inv", "mlflow /invocations"),
            ):
                key = f"{prefix}_{cell}"
                target = None
                if system == "mlflow" and c == 32:
                    target = Target("keel ≥ 3×", min_speedup=3)
                rows.append(
                    Row(
                        "g",
                        system,
                        f"{label}, {what}, c={c}",
                        figure=f"{key}_rps",
                        **rps,
                        keel_figure=f"inv_{cell}_rps",
                        target=target,
                        note=f"p50 {{{key}_p50_ms:.2f}} ms, p99 {{{key}_p99_ms:.2f}} ms, "
                        f"{{{key}_errors:,.0f}} errors of {{{key}_requests:,.0f}}",
                    )
                )
    for n in (1, 100):
        what = "1 row" if n == 1 else f"{n} rows"
        for prefix, label in (("inv", "keel /invocations"), ("oip", "keel OIP infer")):
            rows.append(
                Row(
                    "g",
                    "keel",
                    f"{label}, {what}, c=1",
                    figure=f"{prefix}_r{n}_c1_p50_ms",
                    unit="ms p50 (c=1)",
                    higher_is_better=False,
                    target=Target(
                        "≤ in-process + 1 ms",
                        max_above=1.0,
                        reference=("floor", f"predict_ndarray_r{n}_ms"),
                    ),
                    note="vs the ndarray in-process predict of the same rows",
                )
            )
    for n in (1, 100):
        what = "1 row" if n == 1 else f"{n} rows"
        for prefix, label in (("inv", "keel /invocations"), ("oip", "keel OIP infer")):
            rows.append(
                Row(
                    "g",
                    "keel",
                    f"{label}, {what}, c=32",
                    figure=f"{prefix}_r{n}_c32_errors",
                    unit="errors (c=32)",
                    higher_is_better=False,
                    target=Target("0 errors", max_value=0.5),
                    note="socket errors + non-2xx answers (median over repeats)",
                )
            )
    rows.append(
        Row(
            "g",
            "keel",
            "trivial GET /v2/health/live, c=32",
            figure="live_c32_rps",
            **rps,
            note="load generator check (wrk, 1 thread); p50 {live_c32_p50_ms:.2f} ms",
        )
    )
    return tuple(rows)


def _server_rows() -> tuple[Row, ...]:
    """Rows of (d), (e) and (f): through a server on 127.0.0.1."""
    pts = {"figure": "points_per_s", "unit": "points/s", "higher_is_better": True}
    create = {
        "figure": "create_ms_per_run",
        "unit": "ms/run (set-up)",
        "higher_is_better": False,
        "compare": False,
    }
    search = {"figure": "ms_median", "unit": "ms median (search)", "higher_is_better": False}

    def page(prefix: str, label: str, note: str, target: bool = True) -> Row:
        return Row(
            "f",
            "keel",
            label,
            figure=f"{prefix}_ms_median",
            unit="ms median (request)",
            higher_is_better=False,
            target=Target("< 300 ms", max_value=300.0) if target else None,
            note=note + f"; p90 {{{prefix}_ms_p90:.1f}} ms, {{{prefix}_bytes:,}} bytes",
        )

    return (
        Row(
            "d", "keel", "keel", **pts, note="SDK in remote mode: run.log_metric loop; exit flushes"
        ),
        Row(
            "d",
            "keel_rest",
            "keel REST batch",
            **pts,
            compare=False,
            note="REST client log_batch, {batch_size:,} points per request",
        ),
        Row(
            "d",
            "mlflow_log_batch",
            "mlflow log_batch",
            **pts,
            target=Target("keel ≥ 5×", min_speedup=5),
            note="MlflowClient.log_batch via mlflow server, {batch_size:,} per call",
        ),
        Row(
            "d",
            "mlflow_log_metric",
            "mlflow log_metric",
            **pts,
            note="per-call loop via mlflow server; measured on {points:,} calls, per point",
        ),
        Row("e", "keel", "keel", **create, note="bulk insert into Keel's tables, {runs:,} runs"),
        Row("e", "mlflow", "mlflow", **create, note="bulk insert into MLflow's tables"),
        Row(
            "e",
            "keel",
            "keel",
            **search,
            target=Target("< 50 ms", max_value=50.0),
            note="keel.search_runs, remote mode, {runs:,} runs; p90 {ms_p90:.1f} ms",
        ),
        Row(
            "e",
            "mlflow",
            "mlflow",
            **search,
            note="MlflowClient.search_runs via mlflow server; p90 {ms_p90:.1f} ms",
        ),
        page("narrow", "runs page", "GET /experiments/{{id}}, {runs:,} runs, {page_size} a page"),
        page("wide", "runs page, many keys", "the same, runs with {keys:,} metric keys in all"),
        page("wide_columns", "… with ?columns=", "4 metrics + 1 param chosen"),
        page("wide_keys", "column picker keys", "GET …/keys: all keys, on opening", False),
    )


def _all_rows() -> tuple[Row, ...]:
    # These import Row and Target from here, so not at the top.
    from _drift_rows import drift_rows
    from _pipeline_rows import pipeline_rows
    from _prediction_log_rows import prediction_log_rows

    return _rows() + drift_rows() + pipeline_rows() + prediction_log_rows()


ROWS = _all_rows()
TITLES = {
    "a": "(a) metric logging",
    "b": "(b) run search",
    "c": "(c) model registry",
    "d": "(d) logging via server",
    "e": "(e) search via server",
    "f": "(f) UI runs page",
    "g": "(g) model serving",
    "h": "(h) data drift, 1M rows",
    "i": "(i) data drift, 100k rows",
    "j": "(j) pipeline overhead",
    "k": "(k) prediction log overhead",
}


def _speedup(row: Row, value: float | None, keel: dict[str, Any] | None) -> float | None:
    if row.system == "keel" or not row.compare or value is None or keel is None:
        return None
    mine = keel.get("figures", {}).get(row.keel_figure or row.figure)
    if not isinstance(mine, int | float) or mine <= 0 or value <= 0:
        return None
    return mine / value if row.higher_is_better else value / mine


def evaluate(summary: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """Turn per-(benchmark, system) summaries into table rows with speedups and verdicts."""
    out = []
    for row in ROWS:
        result = summary.get((row.benchmark, row.system))
        if result is None:
            continue
        keel = summary.get((row.benchmark, "keel"))
        keel_ok = keel is not None and keel.get("ok", False)
        figures = result.get("figures", {}) if result.get("ok") else {}
        value = figures.get(row.figure)
        speedup = _speedup(row, value, keel if keel_ok else None)
        verdict: str | None = None
        if row.target is not None:
            if not result.get("ok"):
                verdict = "ERROR"
            elif not keel_ok:
                verdict = "n/a"
            else:
                reference = None
                if row.target.reference is not None:
                    ref_system, ref_figure = row.target.reference
                    ref = summary.get((row.benchmark, ref_system)) or {}
                    reference = ref.get("figures", {}).get(ref_figure) if ref.get("ok") else None
                met = row.target.met(value, speedup, reference)
                verdict = "n/a" if met is None else ("PASS" if met else "MISS")
        try:
            note = row.note.format(**figures) if figures else ""
        except (KeyError, ValueError):
            note = row.note
        out.append(
            {
                "benchmark": row.benchmark,
                "system": row.system,
                "label": row.label,
                "figure": row.figure,
                "unit": row.unit,
                "value": value,
                "keel_speedup": speedup,
                "target": row.target.text if row.target else None,
                "result": verdict,
                "note": note if result.get("ok") else f"error: {result.get('error', '?')}",
                "repeats": result.get("repeats"),
            }
        )
    return out


def _number(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if unit.startswith("ms"):
        return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
    if unit.startswith("s ") or unit == "on / off":
        return f"{value:,.2f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _speedup_text(speedup: float | None) -> str:
    if speedup is None:
        return "—"
    return f"{speedup:,.0f}×" if speedup >= 100 else f"{speedup:,.2f}×"


STYLES = {"PASS": "bold green", "MISS": "bold red", "ERROR": "bold red", "n/a": "yellow"}


def render(rows: list[dict[str, Any]], title: str) -> Table:
    """Return a Rich table of the evaluated rows."""
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("benchmark")
    table.add_column("system")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("keel ×", justify="right")
    table.add_column("target")
    table.add_column("result")
    table.add_column("notes", overflow="fold")
    previous: tuple[str, str] | None = None
    for row in rows:
        key = (row["benchmark"], row["unit"])
        if previous is not None and key != previous:
            table.add_section()
        first = previous is None or previous[0] != row["benchmark"]
        previous = key
        verdict = row["result"] or ""
        table.add_row(
            TITLES.get(row["benchmark"], row["benchmark"]) if first else "",
            row["label"],
            row["unit"],
            _number(row["value"], row["unit"]),
            _speedup_text(row["keel_speedup"]),
            row["target"] or "",
            f"[{STYLES.get(verdict, '')}]{verdict}[/]" if verdict else "",
            row["note"],
        )
    return table
