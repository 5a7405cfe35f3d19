"""Model cards: the markdown page each registered version gets."""

from __future__ import annotations

import math
import time
from typing import Any

from keel.registry.entities import ModelVersion
from keel.tracking.entities import DatasetInput, Run

__all__ = ["INTENDED_USE_PLACEHOLDER", "card_title", "render_card_body"]

INTENDED_USE_PLACEHOLDER = (
    "_To be written by the model's owner: what this model is for, who should use it, and "
    "what it must not be used for._"
)


def _when(ms: int | None) -> str:
    return "—" if ms is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _number(value: float) -> str:
    return str(value) if not math.isfinite(value) else f"{value:.6g}"


def _schema_lines(schema: dict[str, Any] | None) -> list[str]:
    if not schema:
        return ["_not recorded_"]
    columns = schema.get("columns") or []
    if not columns:
        return ["_not recorded_"]
    if schema.get("kind") == "tensor":
        lines = ["| tensor | type | shape |", "|---|---|---|"]
        for column in columns:
            dims = ", ".join("any" if d is None else str(d) for d in column.get("shape") or [])
            lines.append(f"| {column.get('name') or '—'} | {column.get('dtype')} | ({dims}) |")
        return lines
    lines = ["| column | type |", "|---|---|"]
    for column in columns:
        shape = f" {column.get('shape')}" if column.get("shape") else ""
        lines.append(f"| {column.get('name')} | {column.get('dtype')}{shape} |")
    return lines


def card_title(name: str, version: int) -> str:
    """Return the first line of a version's card (stored cards start after it)."""
    return f"# {name} — version {version}\n\n"


def render_card_body(
    version: ModelVersion,
    run: Run | None,
    inputs: list[DatasetInput],
    *,
    intended_use: str | None = None,
) -> str:
    """Return a version's model card after its title, from its run and registry record.

    The body never mentions the version number, so it can be written in the same
    transaction that assigns that number; the title is added when the card is read.
    """
    out: list[str] = []
    out += [
        "## Intended use",
        "",
        intended_use or INTENDED_USE_PLACEHOLDER,
        "",
        "## Model",
        "",
        f"- Flavor: `{version.flavor}`",
        f"- Artifact digest (BLAKE3): `{version.artifact_digest}`",
        f"- Registered: {_when(version.created_at)} by {version.created_by}",
        f"- Source: `{version.source}`",
    ]
    if version.description:
        out.append(f"- Description: {version.description}")
    out += ["", "## Training and evaluation data", ""]
    if inputs:
        out += ["| dataset | context | digest | rows | source |", "|---|---|---|---|---|"]
        for item in inputs:
            rows = (item.profile or {}).get("rows", "—")
            out.append(
                f"| {item.name} | {item.context} | `{item.digest[:16]}…` | {rows} | "
                f"{item.source or '—'} |"
            )
    else:
        out.append("_No dataset was logged with the run (use `run.log_dataset`)._")
    out += ["", "## Metrics", ""]
    if version.metrics:
        out += ["| metric | value |", "|---|---|"]
        out += [f"| {k} | {_number(v)} |" for k, v in sorted(version.metrics.items())]
    else:
        out.append("_No metrics were logged with the run._")
    out += ["", "## Signature", ""]
    signature = version.signature or {}
    out += ["Inputs:", "", *_schema_lines(signature.get("inputs")), ""]
    out += ["Outputs:", "", *_schema_lines(signature.get("outputs"))]
    out += ["", "## Lineage", ""]
    if run is not None:
        out += [
            f"- Run: `{run.run_id}` ({run.name}), experiment `{run.experiment_id}`",
            f"- Started {_when(run.start_time)} by {run.user}; status {run.status.value}",
            f"- Code: `{run.source or '—'}` at git commit `{run.git_commit or '—'}`"
            + (" (uncommitted changes)" if run.git_dirty else ""),
        ]
        if run.params:
            out += ["", "| param | value |", "|---|---|"]
            out += [f"| {k} | {v} |" for k, v in sorted(run.params.items())]
    else:
        out.append("_Not registered from a run._")
    return "\n".join(out) + "\n"
