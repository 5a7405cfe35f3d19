"""What the demo prints about a training pipeline run: its steps, trials, lineage, promotion.

Plain functions over a Rich console and what the stores return (``PipelineRunInfo``,
step outputs read back with ``keel.load_step_output``), like ``keel.demo.report``. Text
from data is printed without markup parsing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.demo.deploy_report import facts

if TYPE_CHECKING:
    from rich.console import Console

    from keel.lineage import LineageGraph
    from keel.pipelines.entities import PipelineRunInfo
    from keel.tracking.entities import Run

__all__ = [
    "describe_step",
    "print_lineage",
    "print_promotion",
    "print_rerun",
    "print_steps",
    "print_trials",
    "step_outputs",
]

_MARK = {"finished": "✓", "cached": "↺", "failed": "✗", "skipped": "–", "running": "…"}


def step_outputs(info: PipelineRunInfo) -> dict[str, Any]:
    """Return each finished or cached step's output, by node (read back from the store)."""
    import keel

    return {
        s.node: keel.load_step_output(info.run_id, s.node)
        for s in info.steps
        if s.status in ("finished", "cached")
    }


def _seconds(ms: int | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.1f} s"


def describe_step(node: str, output: Any) -> str:
    """Return what a step's output says, in a few words."""
    if output is None:
        return ""
    if node in ("load", "validate"):
        splits = output["split"].value_counts().to_dict()
        traffic = int((output["source"] == "traffic").sum())
        text = f"{len(output)} rows ({splits.get('train', 0)} train, "
        text += f"{splits.get('validation', 0)} validation)"
        text += f", {traffic} from labelled traffic" if traffic else ""
        return text if node == "load" else "schema and quality hold: " + text
    if node == "tune":
        from keel.demo.search_space import describe

        return f"best params: {describe(output)}"
    if node == "train":
        m = output["metrics"]
        return f"{output['model']}: roc_auc {m['roc_auc']:.4f}, model logged on its run"
    if node == "evaluate":
        m = output["metrics"]
        return (
            f"{output['rows']} rows: roc_auc {m['roc_auc']:.4f}, accuracy {m['accuracy']:.4f}, "
            f"f1 {m['f1']:.4f}, log_loss {m['log_loss']:.4f}"
        )
    if node == "register":
        return f"{output['uri']} (from the train step's run)"
    if node == "promote":
        return _promotion_line(output)
    return ""


def _promotion_line(promotion: Mapping[str, Any]) -> str:
    if promotion["outcome"] != "promoted":
        return f"refused: {'; '.join(promotion['reasons'])}"
    rollout = promotion.get("rollout") or {}
    action = rollout.get("action")
    where = promotion.get("deployment")
    if action == "create":
        done = f"{where} created serving it"
    elif action == "rollout":
        done = f"{rollout.get('strategy')} rollout of {where} started"
    else:
        done = f"{where} already serves it"
    return f"{promotion['environment']}: {promotion['alias']} → v{promotion['version']}, {done}"


def print_steps(console: Console, info: PipelineRunInfo, outputs: Mapping[str, Any]) -> None:
    """Print a pipeline run's steps as a table: status, time and what each did."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"Pipeline run {info.run_id} of '{info.pipeline}': {info.status}",
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("step", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("what it did")
    for step in info.steps:
        what = step.error or describe_step(step.node, outputs.get(step.node))
        status = f"{_MARK.get(step.status, '?')} {step.status}"
        style = "red" if step.status == "failed" else None
        table.add_row(
            Text(step.node),
            Text(status, style=style),
            Text(_seconds(step.duration_ms)),
            Text(what),
        )
    console.print()
    console.print(table)


def print_trials(console: Console, trials: Sequence[Run], best_value: float | None) -> None:
    """Print the search's trials (nested runs of the tune step), best ROC AUC first."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from keel.demo.search_space import describe

    table = Table(
        title=f"{len(trials)} trials, each a run nested in the tune step's run, best first",
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    # The numbers never shrink; on a narrow console the model's params wrap instead.
    table.add_column("trial", justify="right", no_wrap=True, min_width=5)
    table.add_column("model", ratio=1)
    for key in ("roc_auc", "accuracy", "log_loss"):
        table.add_column(key, justify="right", no_wrap=True, min_width=len(key))
    ranked = sorted(trials, key=lambda r: (-r.metrics.get("roc_auc", 0.0), r.name))
    starred = False
    for run in ranked:
        params = {k: _number(v) for k, v in run.params.items()}
        best = not starred and best_value is not None and run.metrics.get("roc_auc") == best_value
        starred = starred or best
        cells = [Text(run.tags.get("keel.hpo.trial", "?")), Text(describe(params) + (" ★" * best))]
        cells += [
            Text(f"{run.metrics.get(k, float('nan')):.4f}")
            for k in ("roc_auc", "accuracy", "log_loss")
        ]
        table.add_row(*cells, style="bold green" if best else None)
    console.print()
    console.print(table)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def print_lineage(console: Console, graph: LineageGraph) -> None:
    """Print where the version came from: its run, that run's datasets and pipeline."""
    root = graph.nodes[graph.root]
    into: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        into.setdefault(edge.target, []).append((edge.source, edge.relation))
    lines: list[tuple[str, str]] = []
    for source, relation in into.get(graph.root, []):
        run = graph.nodes[source]
        lines.append(("lineage", f"{root.label} ← {relation} ← {run.label} ({run.id})"))
        for upstream, how in into.get(source, []):
            node = graph.nodes[upstream]
            if node.kind == "dataset":
                lines.append(("", f"{run.label} ← {how} ← dataset {node.label}"))
        for edge in graph.edges:
            if edge.source == source and edge.relation == "part_of":
                lines.append(("", f"{run.label} part of {graph.nodes[edge.target].label}"))
    facts(console, *lines)


def print_promotion(console: Console, promotion: Mapping[str, Any]) -> None:
    """Print a promotion's gates, one line each, and what it did."""
    for gate in promotion["gates"]:
        mark = "✓" if gate["passed"] else "✗"
        facts(console, ("gate", f"{mark} {gate['name']}: {gate['reason']}"))
    facts(console, ("promotion", f"{promotion['outcome']}: {promotion['reason']}"))


def print_rerun(console: Console, info: PipelineRunInfo, seconds: float) -> None:
    """Print a rerun's steps on one line each: all cached, from which run."""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(info.counts().items()))
    facts(console, ("rerun", f"pipeline run {info.run_id}: {counts} in {seconds:.2f} s"))
    for step in info.steps:
        origin = f" (output of step run {step.cached_from})" if step.cached_from else ""
        facts(console, ("", f"{_MARK.get(step.status, '?')} {step.node:<9} {step.status}{origin}"))
