"""What the demo's deployment act prints: the deployment, the canary's steps, the traffic.

Plain functions over a Rich console, like ``keel.demo.report``; nothing here touches the
stores. Text from data (names, URLs, reasons) is printed without markup parsing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from keel.demo.report import print_step

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from keel.demo.deployment import DeploymentOutcome, GateStep
    from keel.demo.traffic import TrafficCounts
    from keel.deploy.entities import Deployment, HistoryEntry

__all__ = [
    "CanaryProgress",
    "canary_progress",
    "describe_gate",
    "facts",
    "print_canary_started",
    "print_deployed",
    "print_gate",
    "print_history",
    "print_outcome",
    "print_step",
    "print_traffic",
    "print_warm",
    "split",
]


def facts(console: Console, *pairs: tuple[str, str]) -> None:
    """Print ``label  value`` lines, labels aligned (as the rest of the demo does)."""
    for label, value in pairs:
        console.print(f"  {label:<11}{value}", markup=False, highlight=False, soft_wrap=True)


def split(dep: Deployment) -> str:
    """Return a deployment's traffic as ``model/1 80% (stable), model/2 20% (candidate)``."""
    return ", ".join(f"{b.key} {b.weight:g}% ({b.role.value})" for b in dep.plan.backends)


def print_deployed(console: Console, dep: Deployment, url: str) -> None:
    """Print the deployment just made and where it answers."""
    facts(
        console,
        ("deployed", f"{dep.name} (environment {dep.environment}) revision {dep.revision}: "
                     f"{split(dep)}; loaded, warmed and smoke-tested before any request"),
        ("endpoints", f"POST {url}/v2/models/{dep.name}/infer  (Open Inference Protocol v2)"),
        ("", f"POST {url}/deployments/{dep.name}/invocations  (MLflow scoring formats)"),
    )  # fmt: skip


def print_warm(
    console: Console, counts: TrafficCounts, champion: str, *, clients: int, rate: float
) -> None:
    """Print that traffic flows and what the champion answered so far."""
    facts(
        console,
        ("traffic", f"held-out rows, one per request, OIP and /invocations in turn, from "
                    f"{clients} clients at ~{rate:g} requests/s, flowing until the end"),
        ("answered", f"{counts.answered.get(champion, 0)} requests by {champion}, each "
                     "equal to that version's in-process prediction"),
    )  # fmt: skip


def describe_gate(config: Mapping[str, Any]) -> str:
    """Return a canary configuration in words: its steps, interval and gate."""
    steps = " → ".join(f"{float(s):g}%" for s in config["steps"])
    return (
        f"{steps}, {float(config['interval_s']):g} s each; a step passes with at least "
        f"{config['min_requests']} canary requests, error rate ≤ "
        f"{float(config['max_error_rate']):.0%} and p99 ≤ stable's × "
        f"{float(config['max_p99_ratio']):g} + {float(config['p99_slack_ms']):g} ms"
    )


def print_canary_started(console: Console, dep: Deployment, config: Mapping[str, Any]) -> None:
    """Print the canary's plan and its first split."""
    facts(
        console,
        ("canary", describe_gate(config)),
        ("started", f"revision {dep.revision}: {split(dep)}"),
    )


def _figures(side: str, figures: Mapping[str, Any] | None) -> str:
    if not figures:
        return f"{side} —"
    p99 = figures.get("p99_ms")
    latency = "—" if p99 is None else f"{p99:.1f} ms"
    return f"{side} {figures['requests']} req, {figures['errors']} errors, p99 {latency}"


def print_gate(console: Console, step: GateStep, total: int) -> None:
    """Print one judged step: verdict, figures, and the reason the history records."""
    mark = "[green]✓[/]" if step.passed else "[red]✗[/]"
    verdict = "gate passed" if step.passed else "gate failed"
    console.print(
        f"  {mark} step {step.step}/{total} at {step.weight:g}%: [bold]{verdict}[/]",
        highlight=False,
    )
    where = f"{_figures('canary', step.canary)}; {_figures('stable', step.stable)}"
    console.print(f"      {where}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"      → revision {step.revision} ({step.action}): {step.reason}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


class CanaryProgress:
    """A live line while the canary runs: its step, its split and the answers so far."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("canary starting", total=total)
        self.console = progress.console

    def advance(self) -> None:
        """Count one more judged step."""
        self._progress.advance(self._task)

    def show(self, dep: Deployment, counts: TrafficCounts, candidate: str) -> None:
        """Describe the current step and the traffic (versions by number: one line)."""
        weight = next((b.weight for b in dep.plan.backends if b.key == candidate), 0.0)
        answers = ", ".join(f"v{_number(k)} {n}" for k, n in sorted(counts.answered.items()))
        self._progress.update(
            self._task,
            description=f"{dep.status}: {weight:g}% to v{_number(candidate)} · answers {answers}",
        )


def _number(key: str) -> str:
    return key.rpartition("/")[2]


@contextmanager
def canary_progress(console: Console, total: int) -> Iterator[CanaryProgress]:
    """A transient progress bar of the canary's steps (animated on terminals only)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        yield CanaryProgress(progress, total)


def print_traffic(console: Console, outcome: DeploymentOutcome, *, current: Deployment) -> None:
    """Print the answers per version, their accuracy on the true labels, and failures."""
    from rich import box
    from rich.table import Table

    counts = outcome.traffic
    roles = {b.key: (b.role.value, b.weight) for b in current.plan.all_backends()}
    table = Table(
        title=f"Live traffic to {outcome.name}, by version",
        title_justify="left",
        title_style="bold",
        caption="answers: right answers (each its version's own prediction); "
        "accuracy: of those, the share equal to the row's true label",
        caption_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in ("version", "now", "answers", "accuracy"):
        table.add_column(column, justify="left" if column in ("version", "now") else "right")
    for key in (outcome.champion, outcome.challenger):
        role, weight = roles.get(key, ("unloaded", 0.0))
        accuracy = counts.accuracy(key)
        table.add_row(
            key,
            f"{weight:g}% ({role})",
            str(counts.answered.get(key, 0)),
            "—" if accuracy is None else f"{accuracy:.4f}",
        )
    console.print()
    console.print(table)
    routes = counts.by_route
    console.print(
        f"  {counts.sent} requests sent ({routes.get('oip', 0)} OIP, "
        f"{routes.get('invocations', 0)} /invocations answered), {counts.failed} failed; "
        "every answer was its version's own prediction"
        if counts.failed == 0
        else f"  {counts.sent} requests sent, {counts.failed} failed or answered wrongly",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for failure in counts.failures[:5]:
        console.print(f"    {failure}", style="red", markup=False, highlight=False)


def print_history(console: Console, history: Sequence[HistoryEntry]) -> None:
    """Print the deployment's recorded traffic changes, oldest first."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="Its history (keel deploy history)",
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in ("rev", "actor", "action"):
        table.add_column(column, no_wrap=True, justify="right" if column == "rev" else "left")
    table.add_column("traffic (version: %)", overflow="fold")
    table.add_column("reason", overflow="fold", ratio=1)
    for h in history:
        live = [b for b in h.plan.backends if b.weight > 0]
        # One model behind every version (the demo's): its versions alone are clearer.
        short = len({b.model for b in live}) == 1
        traffic = ", ".join(f"{b.version if short else b.key}: {b.weight:g}%" for b in live)
        table.add_row(str(h.revision), h.actor, h.action, traffic, h.reason or "")
    console.print()
    console.print(table)


def print_outcome(console: Console, outcome: DeploymentOutcome) -> None:
    """Print how the canary ended, and why, in one sentence."""
    console.print()
    standby = outcome.champion if outcome.serving == outcome.challenger else outcome.challenger
    if outcome.outcome == "promoted":
        head = (
            f"[bold green]Promoted[/]: {outcome.serving} now serves 100% of {outcome.name}; "
            f"{standby} stays warm as standby for an instant rollback."
        )
    elif outcome.outcome == "rolled-back":
        head = (
            f"[bold red]Rolled back[/] automatically: {outcome.serving} serves 100% of "
            f"{outcome.name} again."
        )
    else:
        head = f"[bold]Canary {outcome.outcome}[/]: {outcome.serving} serves {outcome.name}."
    console.print(f"  {head}", highlight=False, soft_wrap=True)
    console.print(f"  Why: {outcome.reason}", markup=False, highlight=False, soft_wrap=True)
