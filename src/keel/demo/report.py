"""What the demo prints: its header and steps, the data, the model card, what to try next.

Plain functions over a Rich console; nothing here touches the stores. Text that comes from
data (names, paths, commands) is printed without markup parsing, and commands are never
wrapped, so they can be copied as they are.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from keel.demo.candidates import DemoData

__all__ = [
    "CARD_STOP_HEADING",
    "card_excerpt",
    "next_steps",
    "print_card",
    "print_data",
    "print_header",
    "print_next_steps",
    "print_step",
]

# The card is shown up to (not including) this section.
CARD_STOP_HEADING = "## Signature"


def print_header(console: Console, home: Path, *, fresh: bool, tracking_uri: str) -> None:
    """Print the title and where this demo writes."""
    console.rule("[bold]Keel demo[/]: pipeline, tune, register, promote, canary, monitor, retrain")
    kept = "a fresh folder, kept after the demo" if fresh else "given with --home"
    console.print(f"Keel home  {home}  ({kept})", markup=False, highlight=False, soft_wrap=True)
    console.print(f"Metadata   {tracking_uri}", markup=False, highlight=False, soft_wrap=True)


def print_step(console: Console, text: str) -> None:
    """Print a step heading."""
    console.print()
    console.print(f"[bold cyan]▸[/] [bold]{text}[/]")


def print_data(console: Console, data: DemoData, dataset: str, random_state: int) -> None:
    """Print what the data is and how it was split."""
    rows = len(data.X_train) + len(data.X_val)
    lines = [
        f"  {dataset}(): {rows} tumours, {data.n_features} features,",
        f"  classes {' / '.join(data.class_names)}; split stratified (random_state={random_state})",
        f"  into {len(data.X_train)} training and {len(data.X_val)} validation rows, "
        "both logged with the train step's run",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)


def card_excerpt(card: str, stop_heading: str = CARD_STOP_HEADING) -> str:
    """Return the card's markdown up to ``stop_heading`` (the whole card if absent)."""
    lines = card.splitlines()
    end = next((i for i, line in enumerate(lines) if line.strip() == stop_heading), len(lines))
    return "\n".join(lines[:end]).rstrip() + "\n"


def print_card(console: Console, card: str, *, title: str) -> None:
    """Print the beginning of a model card, as the markdown it is stored as."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    excerpt = card_excerpt(card)
    rest = len(card.splitlines()) - len(excerpt.splitlines())
    subtitle = f"… {rest} more lines (signature, lineage)" if rest > 0 else None
    # Prose wraps; table rows and list items (digests, URIs) are cut rather than broken.
    lines = [
        Text(line, no_wrap=line.startswith(("|", "- ")), overflow="ellipsis")
        for line in excerpt.rstrip().splitlines()
    ]
    console.print(
        Panel(
            Group(*lines),
            title=title,
            title_align="left",
            subtitle=subtitle,
            subtitle_align="left",
            border_style="dim",
        )
    )


def next_steps(
    home: Path,
    *,
    experiment: str,
    model_name: str,
    version: int,
    compare: Sequence[str],
    deployment: str | None = None,
    pipeline_run: str | None = None,
) -> list[tuple[str, str]]:
    """Return ``(command, what it shows)`` pairs for looking at what the demo made."""
    steps = []
    activate = Path(sys.executable).parent / "activate"
    if shutil.which("keel") is None and activate.is_file():
        # `make demo` runs Keel from .venv, which the user's shell has not activated.
        steps.append((f"source {shlex.quote(_short(activate))}", "put `keel` on your PATH"))
    steps += [
        (f"export KEEL_HOME={shlex.quote(str(home))}", "point the CLI at the demo's home"),
        (f"keel runs list --experiment {shlex.quote(experiment)}", "every run of the demo"),
        (f"keel runs compare {' '.join(compare)}", "two trials side by side"),
        (f"keel models show {shlex.quote(model_name)}", "versions and the champion alias"),
        (f"keel models card {shlex.quote(model_name)} {version}", "the whole model card"),
    ]
    if pipeline_run is not None:
        steps.append((f"keel pipeline show {pipeline_run}", "the training pipeline's steps"))
    page = "http://127.0.0.1:8750/"
    if deployment is not None:
        name = shlex.quote(deployment)
        steps += [
            (f"keel deploy show {name}", "the deployment: versions, weights, its rollout"),
            (f"keel deploy history {name}", "every traffic change, who made it and why"),
            (f"keel deploy render {name} --target k8s", "its Kubernetes manifests"),
            ("keel alerts events", "the drift alert: pending, firing, its actions"),
            (f"keel monitor windows -d {name} -w 30s", "traffic, quality and drift per window"),
        ]
        page = f"http://127.0.0.1:8750/deployments/{deployment}"
    return [*steps, ("keel server", f"all of it in the web UI at {page}")]


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def print_next_steps(
    console: Console, home: Path, steps: Sequence[tuple[str, str]], *, fresh: bool
) -> None:
    """Print where the demo's data lives and the commands to look at it."""
    print_step(console, "Where to look next")
    console.print(f"  Everything above is stored in {home}", markup=False, highlight=False)
    if fresh:
        console.print("  (a temporary folder: delete it when you are done)", style="dim")
    console.print()
    for command, meaning in steps:
        console.print(
            f"    # {meaning}", style="dim", markup=False, highlight=False, soft_wrap=True
        )
        console.print(f"    {command}", markup=False, highlight=False, soft_wrap=True)
