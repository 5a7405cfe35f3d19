"""The figures-table rows of (k): keel serve's throughput with the prediction log on vs off."""

from __future__ import annotations

from _report import Row, Target

__all__ = ["prediction_log_rows"]

CONNECTIONS = 8  # prediction_log.py's default, the c in each cell's figure names


def prediction_log_rows() -> tuple[Row, ...]:
    """The smallest on/off ratio (the target), then each cell's ratio and CPU ratio."""
    ratio = {"unit": "on / off", "higher_is_better": True, "compare": False}
    rows = [
        Row(
            "k",
            "keel",
            "log on / off, worst cell",
            "min_ratio",
            **ratio,
            target=Target("≥ 0.95", min_value=0.95),
            note=(
                "median over ABBA pairs of requests/s with every input logged over "
                "requests/s with the log off"
            ),
        ),
        Row(
            "k",
            "keel",
            "CPU per request, worst cell",
            "min_cpu_ratio",
            **ratio,
            note="server CPU per request off / on (what a CPU-bound server would see)",
        ),
    ]
    for route, label in (("oip", "OIP infer"), ("inv", "/invocations")):
        for n in (1, 100):
            key = f"{route}_r{n}_c{CONNECTIONS}"
            rows.append(
                Row(
                    "k",
                    "keel",
                    f"{label}, {n} row{'s' if n > 1 else ''}",
                    f"{key}_ratio",
                    **ratio,
                    note=(
                        f"pairs {{{key}_ratio_q1:.2f}}-{{{key}_ratio_q3:.2f}} (middle half); "
                        f"off {{{key}_off_rps:,.0f}} req/s, on {{{key}_on_rps:,.0f}} req/s; "
                        f"p99 off {{{key}_off_p99_ms:.1f}} ms, on {{{key}_on_p99_ms:.1f}} ms"
                    ),
                )
            )
    return tuple(rows)
