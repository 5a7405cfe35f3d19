"""``keel runs list | show | compare | gc``."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from keel.cli._output import (
    JsonOption,
    Table,
    duration,
    number,
    out_console,
    plain,
    print_json,
    short_id,
    status_text,
    timestamp,
)
from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from keel.tracking.entities import Run

__all__ = ["app", "resolve_run_id"]

app = typer.Typer(help="Runs: list, inspect, compare and clean up.", no_args_is_help=True)

_PREFIX = re.compile(r"[0-9a-f]{4,31}")
_MENTIONED = re.compile(r"\b(metrics?|params?)\.([\w\-./:]+)")
_KEY_COLUMNS = {"metrics": 4, "params": 3}


def resolve_run_id(value: str) -> str:
    """Return the full id of the run ``value`` names: a full id or a unique id prefix."""
    if not _PREFIX.fullmatch(value):
        return value  # a full id, or garbage the SDK will reject with a clear message
    import keel

    found = keel.search_runs(filter=f"run_id like '{value}%'", max_results=2)
    if not found:
        raise NotFound(f"no run whose id starts with {value!r}")
    if len(found) > 1:
        raise InvalidInput(f"run id prefix {value!r} matches several runs; give more of it")
    return found[0].run_id


def _key_columns(runs: Sequence[Run], kind: str, hints: str) -> list[str]:
    """Pick the most common keys of ``kind``, those the filter or order mention first."""
    singular = kind.rstrip("s")
    mentioned = [k for p, k in _MENTIONED.findall(hints) if p.rstrip("s") == singular]
    counts = Counter(k for r in runs for k in getattr(r, kind))
    common = sorted(counts, key=lambda k: (-counts[k], k))
    keys = list(dict.fromkeys([k for k in mentioned if k in counts] + common))
    return keys[: _KEY_COLUMNS[kind]]


def _runs_table(
    page: Sequence[Run], names: dict[str, str] | None, keys: Sequence[tuple[str, str]]
) -> Table:
    """The runs table, with an experiment column when ``names`` is given."""
    table = Table()
    table.add_column("run", kind="id")
    table.add_column("name", kind="id")
    if names is not None:
        table.add_column("experiment", kind="id")
    table.add_column("status", kind="status")
    table.add_column("start", kind="time")
    table.add_column("duration", kind="number")
    for kind, key in keys:  # a two-line header keeps the column as narrow as its key
        header = Text.assemble((f"{kind}.\n", "dim"), key)
        table.add_column(header, kind="number" if kind == "metrics" else "text")
    for r in page:
        cells: list[Text | str] = [short_id(r.run_id), plain(r.name)]
        if names is not None:
            cells.append(plain(names.get(r.experiment_id, r.experiment_id)))
        cells += [status_text(r.status.value), timestamp(r.start_time), duration(r.duration_ms)]
        for kind, key in keys:
            cells.append(
                number(r.metrics.get(key)) if kind == "metrics" else plain(r.params.get(key))
            )
        table.add_row(*cells)
    return table


@app.command("list")
def list_(
    *,
    experiment: Annotated[
        list[str] | None,
        typer.Option("--experiment", "-e", help="Experiment name (repeatable; default: all)."),
    ] = None,
    filter_text: Annotated[
        str | None,
        typer.Option("--filter", "-f", help="e.g. \"metrics.auc > 0.9 and params.model = 'rf'\"."),
    ] = None,
    order_by: Annotated[
        list[str] | None,
        typer.Option("--order-by", "-o", help="e.g. 'metrics.auc desc' (repeatable)."),
    ] = None,
    max_results: Annotated[int, typer.Option("--max-results", "-n", help="Page size.")] = 100,
    page_token: Annotated[
        str | None, typer.Option("--page-token", help="Continue from a previous page.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first, filtered and ordered like keel.search_runs."""
    import keel

    page = keel.search_runs(
        experiment or None,
        filter=filter_text,
        order_by=order_by or None,
        max_results=max_results,
        page_token=page_token,
    )
    if as_json:
        print_json({"runs": [r.to_dict() for r in page], "next_page_token": page.next_page_token})
        return
    console = out_console()
    if not page:
        console.print("no runs match" if filter_text or page_token else "no runs yet")
        return
    several = len({r.experiment_id for r in page}) > 1
    names = {e.experiment_id: e.name for e in keel.list_experiments()} if several else None
    hints = " ".join([filter_text or "", *(order_by or [])])
    keys = [("metrics", k) for k in _key_columns(page, "metrics", hints)]
    keys += [("params", k) for k in _key_columns(page, "params", hints)]
    # Metric and param columns are extras: the ones the terminal has no room for are
    # left out (params first, then the least common metrics) and named under the table.
    # Where even the fixed columns need records, records have room for every key.
    shown = list(keys)
    table = _runs_table(page, names, shown)
    if _runs_table(page, names, []).fits(console):
        while shown and not table.fits(console):
            shown.pop()
            table = _runs_table(page, names, shown)
    console.print(table)
    hidden = [f"{kind}.{key}" for kind, key in keys if (kind, key) not in shown]
    if hidden:
        console.print(
            plain(f"not shown at this width: {', '.join(hidden)} (keel runs show RUN, --json)")
        )
    if page.next_page_token:
        console.print(f"more runs: --page-token {page.next_page_token}", soft_wrap=True)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _pairs(title: str, items: dict[str, object], numeric: bool = False) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("key", kind="id")
    table.add_column("value", kind="number" if numeric else "text")
    for key in sorted(items):
        value = items[key]
        table.add_row(plain(key), number(value) if numeric else plain(value))
    return table


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix of one).")],
    as_json: JsonOption = False,
) -> None:
    """Show a run: attributes, params, latest metrics, tags, datasets and artifacts."""
    import keel

    run = keel.get_run(resolve_run_id(run_id))
    inputs = keel.get_run_inputs(run.run_id)
    artifacts = keel.list_artifacts(run.run_id)
    if as_json:
        print_json(
            {
                "run": run.to_dict(),
                "inputs": [i.to_dict() for i in inputs],
                "artifacts": [a.to_dict() for a in artifacts],
            }
        )
        return
    experiment = keel.get_experiment(run.experiment_id)
    attrs = Table(show_header=False, box=None, title_justify="left")
    attrs.add_column(style="bold")
    attrs.add_column(overflow="fold")
    git = run.git_commit or "—"
    if run.git_dirty:
        git += " (uncommitted changes)"
    for label, value in (
        ("run", plain(f"{run.name}  ({run.run_id})")),
        ("experiment", plain(f"{experiment.name}  ({experiment.experiment_id})")),
        ("status", status_text(run.status.value)),
        ("user", plain(run.user)),
        ("start", timestamp(run.start_time)),
        ("end", timestamp(run.end_time)),
        ("duration", duration(run.duration_ms)),
        ("source", plain(run.source)),
        ("git commit", plain(git)),
        ("parent run", plain(run.parent_run_id)),
    ):
        attrs.add_row(label, value)
    console = out_console()
    console.print(attrs)
    for title, items, numeric in (
        ("params", run.params, False),
        ("metrics (latest)", run.metrics, True),
        ("tags", run.tags, False),
    ):
        if items:
            console.print(_pairs(title, dict(items), numeric))
    if inputs:
        table = Table(title="datasets", title_justify="left", title_style="bold")
        for column, kind in (("name", "id"), ("context", "status"), ("digest", "id")):
            table.add_column(column, kind=kind)
        table.add_column("source")
        for i in inputs:
            table.add_row(plain(i.name), plain(i.context), i.digest[:12], plain(i.source))
        console.print(table)
    if artifacts:
        table = Table(title="artifacts", title_justify="left", title_style="bold")
        table.add_column("path", kind="id")
        table.add_column("size", kind="number")
        table.add_column("digest", kind="id")
        for a in artifacts:
            table.add_row(plain(a.path), _size(a.size), a.digest[:12])
        console.print(table)


@app.command()
def compare(
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids (or unique prefixes).")],
    as_json: JsonOption = False,
) -> None:
    """Compare runs side by side: differing rows highlighted, best metric values marked ★."""
    import keel
    from keel.cli._compare import compare_runs

    if len(run_ids) < 2:
        raise InvalidInput("compare needs at least two run ids")
    runs = [keel.get_run(resolve_run_id(r)) for r in run_ids]
    params, metrics = compare_runs(runs)
    ids = [r.run_id for r in runs]
    if as_json:
        print_json(
            {
                "runs": [r.to_dict() for r in runs],
                "params": [row.to_dict(ids) for row in params],
                "metrics": [row.to_dict(ids) for row in metrics],
            }
        )
        return
    table = Table()
    table.add_column("", kind="id")
    for r in runs:
        table.add_column(Text(f"{r.name}\n{short_id(r.run_id)}"), kind="number")
    table.add_row(Text("status", style="bold"), *(status_text(r.status.value) for r in runs))
    table.add_row(Text("duration"), *(duration(r.duration_ms) for r in runs), end_section=True)
    for label, rows in (("params", params), ("metrics", metrics)):
        if not rows:
            continue
        table.add_row(Text(label, style="bold underline"), *([""] * len(runs)))
        for row in rows:
            style = "yellow" if row.differs else ""
            cells = []
            for i, value in enumerate(row.values):
                text = number(value) if row.goal else ("—" if value is None else str(value))
                if i in row.best:
                    cells.append(Text(f"{text} ★", style="bold green"))
                else:
                    cells.append(Text(text, style=style))
            goal = f" ({row.goal})" if row.goal else ""
            table.add_row(Text(f"{row.key}{goal}", style=style or "dim"), *cells)
        table.add_section()
    console = out_console()
    console.print(table)
    console.print("[yellow]yellow[/]: values differ   [bold green]★[/]: best value of a metric")


@app.command()
def gc(
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds without a heartbeat before a run counts as dead."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Mark running runs whose writer stopped heart-beating as failed."""
    import keel

    failed = keel.gc_runs(timeout)
    if as_json:
        print_json({"failed_runs": failed})
        return
    console = out_console()
    if not failed:
        console.print("no stale runs")
        return
    console.print(f"marked {len(failed)} stale run{'s' if len(failed) != 1 else ''} failed:")
    for run_id in failed:
        console.print(f"  {run_id}")
