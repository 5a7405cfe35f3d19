"""``keel monitor``: drift between two datasets, and reference profiles.

keel monitor drift REF CUR [--json] [-o drift.html] [--columns a,b] [--method col=psi]
                           [--threshold wasserstein=0.2] [--drift-share 0.5]
                           [--prediction col] [--target col] [--multivariate]
                           [--fail-on-drift] [--time-column ts [--bucket 1h]]
keel monitor profile DATA [-o profile.json]
keel monitor windows --deployment NAME [--window 1h] [--since 24h] [--json]
keel monitor report --deployment NAME [--window 24h] [--bucket 1h] [-o report.html] [--json]
keel monitor grafana-dashboard [-o keel-dashboard.json]

REF and CUR are Parquet files (or folders); REF may also be a profile written by
``keel monitor profile`` (a ``.json`` file). Bad input exits 2 with one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from keel.cli._output import JsonOption, out_console, print_json
from keel.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(
    help="Monitor data and deployments: drift, reference profiles, windows of live traffic.",
    no_args_is_help=True,
)

_MAX_PROFILE_BYTES = 256 * 1024 * 1024


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput(f"{option} takes NAME=VALUE, not {item!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _reference(path: Path) -> Any:
    if path.suffix.lower() != ".json":
        return path
    from keel.monitoring import ReferenceProfile

    if not path.is_file():
        raise InvalidInput(f"the reference profile {str(path)!r} does not exist")
    if path.stat().st_size > _MAX_PROFILE_BYTES:
        raise InvalidInput(f"the reference profile {str(path)!r} is larger than 256 MiB")
    return ReferenceProfile.from_json(path.read_bytes())


def _thresholds(values: list[str] | None) -> dict[str, float]:
    out = {}
    for method, text in _pairs(values, "--threshold").items():
        try:
            out[method] = float(text)
        except ValueError:
            raise InvalidInput(f"--threshold {method}= takes a number, not {text!r}") from None
    return out


@app.command("drift")
def drift_command(
    reference: Annotated[Path, typer.Argument(help="Reference .parquet, or a profile .json.")],
    current: Annotated[Path, typer.Argument(help="Current .parquet file or folder.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a self-contained HTML report.")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Comma-separated columns (default: shared).")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", help="COLUMN=METHOD (ks, chisquare, psi, jensenshannon, …)."),
    ] = None,
    threshold: Annotated[
        list[str] | None, typer.Option("--threshold", help="METHOD=VALUE, e.g. psi=0.2.")
    ] = None,
    drift_share: Annotated[
        float, typer.Option("--drift-share", help="Share of drifted columns for dataset drift.")
    ] = 0.5,
    prediction: Annotated[
        str | None, typer.Option("--prediction", help="Prediction column, reported apart.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", help="Target column, reported apart.")
    ] = None,
    multivariate: Annotated[
        bool, typer.Option("--multivariate", help="Add a domain classifier's ROC AUC.")
    ] = False,
    fail_on_drift: Annotated[
        bool, typer.Option("--fail-on-drift", help="Exit 1 when the dataset drifted.")
    ] = False,
    time_column: Annotated[
        str | None,
        typer.Option(
            "--time-column", help="CURRENT's time column (datetimes or epoch ms): drift over time."
        ),
    ] = None,
    bucket: Annotated[
        str, typer.Option("--bucket", help="With --time-column: the bucket, e.g. 1h or 1d.")
    ] = "1h",
    as_json: JsonOption = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column; print the verdict and a table."""
    from keel.monitoring import drift, drift_html

    if output is not None:
        _check_output(output)
    names = None if columns is None else [c.strip() for c in columns.split(",") if c.strip()]
    options: dict[str, Any] = {
        "columns": names,
        "methods": _pairs(method, "--method"),
        "thresholds": _thresholds(threshold),
        "drift_share": drift_share,
        "prediction": prediction,
        "target": target,
    }
    ref = _reference(reference)
    timeline = None
    compared: Any = current
    if time_column is not None:
        from keel.monitoring._frames import load_frame
        from keel.monitoring.report_drift import drift_over_time, split_time

        frame = load_frame(current, role="current")
        split_time(frame, time_column, bucket)  # a bad column or bucket fails before any work
        timeline = drift_over_time(
            ref, frame, time_column=time_column, bucket=bucket, options=options
        )
        compared = frame.drop(columns=time_column)
    report = drift(ref, compared, multivariate=multivariate, **options)
    if output is not None:
        _write(output, drift_html(report, timeline=timeline))
    if as_json:
        data = report.to_dict()
        if timeline is not None:
            data["timeline"] = [b.to_dict() for b in timeline]
        print_json(data)
    else:
        _print(report, output)
        if timeline is not None:
            _print_timeline(timeline)
    if fail_on_drift and report.dataset_drifted:
        raise typer.Exit(1)


def _print_timeline(timeline: list[Any]) -> None:
    from datetime import UTC, datetime

    from rich.text import Text

    from keel.cli._output import Table

    table = Table(title="drift over time", show_edge=False)
    for header, kind in (
        ("bucket (UTC)", "time"), ("rows", "number"), ("drift share", "number"),
        ("drifted columns", "text"),
    ):  # fmt: skip
        table.add_column(header, kind=kind)
    for b in timeline:
        start = datetime.fromtimestamp(b.start_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        drifted = ", ".join(c.column for c in b.report.columns if c.drifted) or "—"
        table.add_row(start, f"{b.rows:,}", f"{b.report.share:.0%}", Text(drifted))
    out_console().print(table)


def _write(path: Path, text: str) -> None:
    import os

    _check_output(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # a reader never sees half a report


def _print(report: Any, output: Path | None) -> None:
    from keel.cli._output import Table

    console = out_console()
    table = Table(title=None, show_edge=False)
    for header, kind in (
        ("column", "id"), ("kind", "status"), ("method", "status"), ("statistic", "number"),
        ("p-value", "number"), ("threshold", "number"), ("drift", "status"),
    ):  # fmt: skip
        table.add_column(header, kind=kind)
    rows = [(r, "") for r in report.columns]
    rows += [(r, role) for r, role in ((report.prediction, "prediction"),
                                      (report.target, "target")) if r is not None]  # fmt: skip
    for result, role in rows:
        name = f"{result.column} ({role})" if role else result.column
        p = "—" if result.p_value is None else f"{result.p_value:.3g}"
        table.add_row(
            name, result.kind, result.method + (" ≈" if result.approximate else ""),
            f"{result.statistic:.4g}", p, f"{result.threshold:g}",
            "[bold red]yes[/]" if result.drifted else "[green]no[/]",
        )  # fmt: skip
    console.print(table)
    for name, reason in report.skipped.items():
        console.print(f"[dim]not compared: {name}: {reason}[/]", highlight=False)
    if report.multivariate is not None:
        m = report.multivariate
        console.print(f"domain classifier ROC AUC {m.roc_auc:.3f} (drift: {m.drifted})")
    verdict = (
        "[bold red]dataset drift[/]" if report.dataset_drifted else "[green]no dataset drift[/]"
    )
    console.print(
        f"{verdict}: {report.drifted_columns} of {len(report.columns)} columns drifted "
        f"({report.share:.0%}, threshold {report.drift_share:.0%})"
    )
    if output is not None:
        console.print(f"report written to {output}")


@app.command("profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help="Reference .parquet file or folder.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the profile JSON here.")
    ] = None,
    max_categories: Annotated[
        int, typer.Option("--max-categories", help="Categories kept per column.")
    ] = 1000,
) -> None:
    """Profile DATA as a drift reference: print the JSON, or write it with -o."""
    from keel.monitoring import profile

    text = profile(data, max_categories=max_categories).to_json()
    if output is None:
        typer.echo(text)
        return
    _write(output, text + "\n")
    out_console().print(f"profile of {data} written to {output}")


_TRAFFIC_COLUMNS = (
    ("requests", "request_count", "{:.0f}"),
    ("req/s", "throughput_rps", "{:.3g}"),
    ("errors", "error_rate", "{:.1%}"),
    ("p50 ms", "latency_p50_ms", "{:.3g}"),
    ("p99 ms", "latency_p99_ms", "{:.3g}"),
    ("cpu %", "cpu_percent", "{:.3g}"),
)
_DATA_COLUMNS = (
    ("missing", "missing_rate", "{:.1%}"),
    ("out of range", "out_of_range_rate", "{:.1%}"),
    ("unseen", "unseen_category_rate", "{:.1%}"),
    ("schema", "schema_violations", "{:.0f}"),
    ("drift", "drift_share", "{:.0%}"),
)


@app.command("windows")
def windows_command(
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name.")],
    window: Annotated[
        str, typer.Option("--window", "-w", help="Window length: 30s, 5m, 1h, 1d.")
    ] = "1h",
    since: Annotated[
        str, typer.Option("--since", help="How far back from now, e.g. 24h or 7d.")
    ] = "24h",
    as_json: JsonOption = False,
) -> None:
    """Print a deployment's monitoring figures per window of its live traffic, oldest first."""
    import time

    from keel.monitoring.windows import monitor_windows, parse_window

    try:
        back = parse_window(since)
    except InvalidInput as exc:
        raise InvalidInput(f"--since: {exc}") from None
    now = int(time.time() * 1000)
    reports = monitor_windows(deployment, window=window, start=max(now - back, 0), end=now)
    if as_json:
        print_json({"deployment": deployment, "windows": [r.to_dict() for r in reports]})
        return
    _print_windows(deployment, reports)


def _print_windows(deployment: str, reports: list[Any]) -> None:
    from datetime import UTC, datetime

    from keel.cli._output import Table
    from keel.monitoring.figures import figures_of

    console = out_console()
    if not reports:
        console.print(f"no traffic logged for deployment {deployment!r} in that time")
        return
    rows = []
    for report in reports:
        start = datetime.fromtimestamp(report.start_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((start, figures_of(report)))
    # Two narrow tables rather than one wide one: each fits an 80-column terminal.
    for title, columns, last in (
        ("traffic", _TRAFFIC_COLUMNS, None),
        ("data and model (the version with most requests)", _DATA_COLUMNS, "model"),
    ):
        table = Table(title=title, show_edge=False)
        table.add_column("window (UTC)", kind="time")
        for header, _, _ in columns:
            table.add_column(header, kind="number")
        if last:
            table.add_column(last, kind="text", justify="right")
        for start, figures in rows:
            cells = ["—" if k not in figures else f.format(figures[k]) for _, k, f in columns]
            table.add_row(start, *cells, *([_model_cell(figures)] if last else []))
        console.print(table)
    latest = reports[-1].primary
    for name, why in (latest.notes if latest is not None else {}).items():
        console.print(f"[dim]{name} not computed in the latest window: {why}[/]", highlight=False)


def _model_cell(figures: dict[str, float]) -> str:
    for name in ("accuracy", "f1", "rmse", "r2"):
        if name in figures:
            decay = figures.get(f"{name}_decay")
            text = f"{name} {figures[name]:.3g}"
            return text if decay is None else f"{text} (decay {decay:+.3g})"
    return "—"


@app.command("report")
def report_command(
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment name.")],
    window: Annotated[
        str, typer.Option("--window", "-w", help="How far back from --end: 1h, 24h, 7d.")
    ] = "24h",
    bucket: Annotated[
        str | None, typer.Option("--bucket", help="Timeline bucket (default: window / 24).")
    ] = None,
    end: Annotated[
        int | None, typer.Option("--end", help="End of the window, ms since the epoch (now).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write a self-contained HTML report.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Report a deployment's last WINDOW: summary, distributions, drift and health over time."""
    from keel.monitoring.report import monitoring_report

    if output is not None:
        _check_output(output)
    report = monitoring_report(deployment, window=window, bucket=bucket, end=end)
    if output is not None:
        from keel.monitoring.report_html import report_html

        _write(output, report_html(report))
    if as_json:
        print_json(report.to_dict())
        return
    _print_report(report, output)


def _check_output(path: Path) -> None:
    # Checked before the report is computed, so a typo costs no minutes of work.
    if path.is_dir():
        raise InvalidInput(f"--output {str(path)!r} is a folder; name a file")
    if not path.parent.exists():
        raise InvalidInput(f"the folder of --output {str(path)!r} does not exist")


def _print_report(report: Any, output: Path | None) -> None:
    from rich.text import Text

    from keel.cli._output import Table
    from keel.monitoring.report_html import format_summary

    console = out_console()
    data = report.to_dict()
    if data["empty"]:
        console.print(f"no traffic logged for deployment {report.deployment!r} in the window")
    table = Table(title=f"{report.deployment}: the last {data['window']}", show_edge=False)
    table.add_column("figure")
    table.add_column("value")
    for name, value, _ in format_summary(data):
        table.add_row(Text(name), Text(value))  # Text: a column name is never markup
    console.print(table)
    if output is not None:
        console.print(f"report written to {output}")


@app.command("grafana-dashboard")
def grafana_dashboard_command(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the dashboard JSON here.")
    ] = None,
) -> None:
    """Print (or write) the Grafana dashboard for keel server's Prometheus metrics."""
    from importlib import resources

    text = resources.files("keel.monitoring").joinpath("grafana/keel-dashboard.json").read_text()
    if output is None:
        typer.echo(text, nl=False)
        return
    _write(output, text)
    out_console().print(f"Grafana dashboard written to {output}: import it in Grafana")
