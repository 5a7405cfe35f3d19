"""Figure (f): the web UI's runs page of an experiment with ``--runs`` runs, through the server.

Two experiments of ``--runs`` runs each are written straight into the SQLite file (bulk
inserts into Keel's tables, untimed; see ``server_search.create_keel_runs``) before
``keel server`` starts on it (127.0.0.1, a free port, stopped when the job ends):

* ``narrow`` — the runs of figures (b)/(e): params ``p0..p9``, metrics ``m0..m9``;
* ``wide`` — the same params, and ``--keys-per-run`` metrics per run drawn in turn from
  ``--keys`` distinct keys (``k0000``…), so the experiment has ``--keys`` metric keys.

Timed, each ``--requests`` times after one untimed warm-up request, over one keep-alive
HTTP connection: ``GET /experiments/{id}`` (the HTML runs page: its default page, order
and columns) for ``narrow`` and ``wide``, ``wide`` with ``?columns=`` naming four metrics
and a param, and the column picker's ``GET /experiments/{id}/keys`` (a JSON list of every
key, fetched only when the user opens the picker). Median and p90 per request.

Each answer is checked: status 200, HTML; the page lists exactly the newest page of runs
(by name); the chosen columns appear; the default page of ``wide`` does not name all of
its keys (columns load lazily); ``/keys`` returns every key.
"""

from __future__ import annotations

import argparse
import os
import random
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from _bench import Timer, check, main, median, parse_args, percentile
from _servers import keel_server
from run_search import dataset
from server_search import count_runs, create_keel_runs

SYSTEMS = ("keel",)
CHOSEN = ("k0007", "k0500", "k1234", "k1999")


def wide_dataset(args: argparse.Namespace) -> list[tuple[dict[str, str], dict[str, float]]]:
    """Each run: 10 params and ``keys_per_run`` of the ``keys`` metric keys, in turn."""
    rng = random.Random(args.seed + 1)
    width = max(4, len(str(args.keys - 1)))
    data = []
    for r in range(args.runs):
        keys = {(r * args.keys_per_run + j) % args.keys for j in range(args.keys_per_run)}
        data.append(
            (
                {f"p{j}": f"value-{r}-{j}" for j in range(10)},
                {f"k{k:0{width}d}": rng.random() for k in sorted(keys)},
            )
        )
    return data


def measure(
    fetch: Callable[[], Any], verify: Callable[[Any], None], times: int
) -> dict[str, float]:
    """Time ``fetch`` ``times`` times after one warm-up; verify every answer."""
    with Timer() as first:
        verify(fetch())
    samples = []
    for _ in range(times):
        with Timer() as timer:
            answer = fetch()
        samples.append(timer.seconds * 1000)
        verify(answer)
    return {
        "first_ms": first.seconds * 1000,
        "ms_median": median(samples),
        "ms_p90": percentile(samples, 90),
        "ms_min": min(samples),
    }


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    db = args.workdir / "server.db"
    os.environ["KEEL_TRACKING_URI"] = f"sqlite:///{db}"
    import httpx

    from keel.server.ui.experiments import PAGE_SIZE
    from keel.stores import current_stores

    tracking = current_stores().tracking
    ids = {}
    with Timer() as create:
        for name, data in (("narrow", dataset(args)), ("wide", wide_dataset(args))):
            ids[name] = tracking.create_experiment(name).experiment_id
            create_keel_runs(tracking, ids[name], data, prefix=name)
    for name, experiment_id in ids.items():
        stored = count_runs(db, "SELECT count(*) FROM runs WHERE experiment_id = ?", experiment_id)
        check(stored == args.runs, f"{name}: {stored} runs stored, expected {args.runs}")
    wide_keys = count_runs(
        db,
        "SELECT count(DISTINCT m.key) FROM latest_metrics m JOIN runs r ON r.run_id = m.run_id "
        "WHERE r.experiment_id = ?",
        ids["wide"],
    )
    check(wide_keys == args.keys, f"wide has {wide_keys} metric keys, expected {args.keys}")

    newest = min(PAGE_SIZE, args.runs)

    def page_check(name: str, must_name: tuple[str, ...] = ()) -> Callable[[Any], None]:
        expected = {f"{name}-{r}" for r in range(args.runs - newest, args.runs)}
        pattern = re.compile(rf"\b{name}-(\d+)\b")

        def verify(response: Any) -> None:
            check(response.status_code == 200, f"{name}: HTTP {response.status_code}")
            kind = response.headers.get("content-type", "")
            check(kind.startswith("text/html"), f"{name}: content-type {kind!r}")
            shown = {f"{name}-{n}" for n in pattern.findall(response.text)}
            check(shown == expected, f"{name}: page lists {len(shown)} runs, not the newest page")
            for key in must_name:
                check(key in response.text, f"{name}: chosen column {key} missing from the page")
            if name == "wide" and not must_name:
                named = set(re.findall(r"\bk\d{4,}\b", response.text))
                check(len(named) < args.keys, f"wide: default page names all {len(named)} keys")

        return verify

    def keys_check(response: Any) -> None:
        check(response.status_code == 200, f"keys: HTTP {response.status_code}")
        found = response.json().get("metrics", [])
        check(len(found) == args.keys, f"keys: {len(found)} metric keys, expected {args.keys}")

    columns = ",".join([*(f"metrics.{k}" for k in CHOSEN), "params.p0"])
    cases = (
        ("narrow", f"/experiments/{ids['narrow']}", page_check("narrow")),
        ("wide", f"/experiments/{ids['wide']}", page_check("wide")),
        (
            "wide_columns",
            f"/experiments/{ids['wide']}?" + urlencode({"columns": columns}),
            page_check("wide", CHOSEN),
        ),
        ("wide_keys", f"/experiments/{ids['wide']}/keys", keys_check),
    )
    figures: dict[str, Any] = {
        "runs": args.runs,
        "keys": args.keys,
        "keys_per_run": args.keys_per_run,
        "requests": args.requests,
        "page_size": newest,
        "create_seconds": create.seconds,
    }
    with keel_server(args.workdir, db) as server:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            for label, url, verify in cases:
                result = measure(lambda url=url: client.get(url), verify, args.requests)
                figures.update({f"{label}_{key}": value for key, value in result.items()})
                figures[f"{label}_bytes"] = len(client.get(url).content)
        figures["server_startup_seconds"] = server.startup_seconds
    return {"figures": figures, "columns": columns}


def run(args: argparse.Namespace) -> dict[str, Any]:
    return bench_keel(args)


if __name__ == "__main__":
    arguments = parse_args(
        __doc__.splitlines()[0],
        SYSTEMS,
        {"runs": 10_000, "keys": 2_000, "keys_per_run": 20, "requests": 30},
    )
    main("f", arguments, run, ("keel-mlops", "sqlalchemy", "uvicorn", "httpx", "jinja2"))
