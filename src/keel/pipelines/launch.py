"""``python -m keel.pipelines.launch DISPATCH_ID``: one scheduled or triggered run.

The server starts this process for each dispatch (:mod:`keel.pipelines.dispatch`), on
its stores (``KEEL_TRACKING_URI``, ``KEEL_ARTIFACT_URI``). It beats while the pipeline
runs — renewing the schedule's lease and the dispatch's heartbeat — imports the
pipeline, runs it, and records the pipeline run's id and status on the dispatch and on
its schedule or trigger. A bad reference or a failing pipeline is recorded the same way;
the exit code is 0 only for a finished run.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback

__all__ = ["main"]


def _beat(db: object, dispatch_id: str, lease: str | None, stop: threading.Event) -> None:
    from keel.pipelines.dispatch import HEARTBEAT_S, renew

    while not stop.wait(HEARTBEAT_S):
        try:
            renew(db, dispatch_id, lease)  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - a missed beat is retried; the lease has slack
            traceback.print_exc()


def _run(row: object) -> tuple[str, str | None, str | None]:
    from keel.errors import KeelError
    from keel.pipelines.api import load_pipeline, run_pipeline
    from keel.pipelines.errors import PipelineFailed

    try:
        pipeline = load_pipeline(row.pipeline)  # type: ignore[attr-defined]
        params = pipeline.parse_params(json.loads(row.params))  # type: ignore[attr-defined]
        info = run_pipeline(
            pipeline,
            params,
            executor=row.executor,  # type: ignore[attr-defined]
            raise_on_failure=False,
        )
    except PipelineFailed as exc:
        return "failed", exc.run_id, str(exc)
    except KeelError as exc:
        return "failed", None, f"{type(exc).__name__}: {exc}"
    except BaseException as exc:  # noqa: BLE001 - user code: anything is recorded
        traceback.print_exc()
        return "failed", None, f"{type(exc).__name__}: {exc}"
    if info.status == "finished":
        return "finished", info.run_id, None
    bad = [s.node for s in info.steps if s.status == "failed"]
    first = next((s for s in info.steps if s.status == "failed"), None)
    error = f"failed at step {bad[0]!r}: {first.error}" if first is not None and bad else None
    return info.status, info.run_id, error


def main(argv: list[str] | None = None) -> int:
    """Run the dispatch named on the command line; return the process's exit code."""
    from sqlalchemy import select

    from keel.errors import KeelError
    from keel.pipelines.dispatch import finish_dispatch, renew
    from keel.store.schema_scheduling import pipeline_dispatches
    from keel.stores import current_stores

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m keel.pipelines.launch DISPATCH_ID", file=sys.stderr)
        return 2
    dispatch_id = args[0]
    try:
        db = current_stores().tracking.db  # type: ignore[attr-defined]
        with db.read() as conn:
            row = conn.execute(
                select(pipeline_dispatches).where(pipeline_dispatches.c.dispatch_id == dispatch_id)
            ).first()
    except KeelError as exc:
        # The server records this process's last output line as the dispatch's error, which
        # viewers read: the message (e.g. "run `keel db upgrade`"), not a traceback.
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if row is None or row.status != "running":
        print(f"no running dispatch {dispatch_id}", file=sys.stderr)
        return 2
    if not renew(db, dispatch_id, row.lease):
        finish_dispatch(
            db, dispatch_id, "failed", error=f"lease {row.lease} is held by another run"
        )
        return 1
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(db, dispatch_id, row.lease, stop), daemon=True)
    beat.start()
    try:
        status, run_id, error = _run(row)
    finally:
        stop.set()
        beat.join(5)
    finish_dispatch(db, dispatch_id, status, run_id=run_id, error=error)
    print(json.dumps({"dispatch_id": dispatch_id, "status": status, "run_id": run_id}))
    return 0 if status == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
