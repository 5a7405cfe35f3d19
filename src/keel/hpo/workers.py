"""Trials in parallel: runners in worker processes or Ray tasks, one study between them.

Each runner gets a pickled :class:`Job` — where Keel's stores are, the study's name, its
sampler and pruner, the objective (by cloudpickle, so a closure travels too) and its
share of the trials — loads the study from Keel's store and runs the trial loop. Local
runners are fresh interpreters started with ``subprocess`` (not ``multiprocessing``: a
pipeline step already runs in a daemon process, which may not have children of its own).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle

from keel.errors import require
from keel.hpo.trials import TrialPlan, TrialsDone

__all__ = ["Job", "StoreEnv", "main", "run_job", "run_local", "run_ray"]

_MAX_STDERR = 4000
_WORKER = "import sys; from keel.hpo.workers import main; raise SystemExit(main(sys.argv[1:]))"


@dataclass(frozen=True)
class StoreEnv:
    """The settings a runner needs to open the same stores as the caller."""

    home: str
    tracking_uri: str
    artifact_uri: str
    token: str = field(default="", repr=False)

    @classmethod
    def current(cls) -> StoreEnv:
        """Return the stores this process uses, as settings a runner can apply."""
        from keel.config import get_settings

        s = get_settings()
        uri = s.resolved_tracking_uri()
        artifacts = uri if uri.startswith(("http://", "https://")) else s.resolved_artifact_uri()
        return cls(str(s.home), uri, artifacts, s.token or "")

    def variables(self) -> dict[str, str]:
        """Return these settings as ``KEEL_*`` environment variables."""
        return {
            "KEEL_HOME": self.home,
            "KEEL_TRACKING_URI": self.tracking_uri,
            "KEEL_ARTIFACT_URI": self.artifact_uri,
            "KEEL_TOKEN": self.token,
        }

    def apply(self) -> None:
        """Point this process's settings at these stores (in a runner only)."""
        from keel.config import reset_settings

        variables = self.variables()
        if any(os.environ.get(k) != v for k, v in variables.items()):
            os.environ.update(variables)
            reset_settings()


@dataclass(frozen=True)
class Job:
    """One runner's work: a share of a study's trials."""

    env: StoreEnv
    plan: TrialPlan
    objective: Callable[..., Any]
    sampler: Any
    pruner: Any


def run_job(payload: bytes) -> bytes:
    """Run one pickled ``Job``; return the pickled ``TrialsDone`` (errors inside it)."""
    try:
        job: Job = cloudpickle.loads(payload)
        job.env.apply()
        from keel.hpo.journal import load_study
        from keel.hpo.trials import run_trials

        sampler = job.sampler
        if sampler is not None and hasattr(sampler, "reseed_rng"):
            sampler.reseed_rng()  # runners with one seed would all sample the same points
        study = load_study(job.plan.study, sampler=sampler, pruner=job.pruner)
        done = run_trials(study, job.objective, job.plan)
    except Exception as exc:  # noqa: BLE001 - reported to the caller with the runner's name
        done = TrialsDone(error=f"{type(exc).__name__}: {exc}")
    return pickle.dumps(done, protocol=5)


def _pythonpath() -> str:
    return os.pathsep.join(p for p in sys.path if p)


def run_local(jobs: Sequence[Job]) -> list[TrialsDone]:
    """Run each job in its own fresh Python process; return what each did, in order."""
    with tempfile.TemporaryDirectory(prefix="keel-hpo-") as tmp:
        procs = []
        for i, job in enumerate(jobs):
            job_path, out_path = Path(tmp, f"job-{i}.pkl"), Path(tmp, f"done-{i}.pkl")
            job_path.write_bytes(cloudpickle.dumps(job, protocol=5))
            env = {**os.environ, **job.env.variables(), "PYTHONPATH": _pythonpath()}
            stderr = open(Path(tmp, f"stderr-{i}.txt"), "wb")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(job_path), str(out_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                env=env,
            )
            procs.append((proc, out_path, stderr))
        results = []
        try:
            for i, (proc, out_path, stderr) in enumerate(procs):
                code = proc.wait()
                stderr.close()
                if out_path.exists():
                    results.append(pickle.loads(out_path.read_bytes()))
                    continue
                tail = Path(stderr.name).read_text(errors="replace")[-_MAX_STDERR:].strip()
                why = f"trial runner {i} exited with code {code} before reporting"
                results.append(TrialsDone(error=f"{why}: {tail}" if tail else why))
        finally:
            for proc, _, stderr in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                stderr.close()
        return results


def run_ray(jobs: Sequence[Job], *, address: str | None = None) -> list[TrialsDone]:
    """Run each job as a Ray task (one CPU each); return what each did, in order."""
    ray: Any = require("ray", "ray")
    if not ray.is_initialized():
        if address is None:
            env = {"PYTHONPATH": _pythonpath()}
            ray.init(
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
                runtime_env={"env_vars": env},
            )
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    remote = ray.remote(max_retries=0, num_cpus=1)(run_job)
    refs = [remote.remote(cloudpickle.dumps(job, protocol=5)) for job in jobs]
    results = []
    for i, ref in enumerate(refs):
        try:
            results.append(pickle.loads(ray.get(ref)))
        except Exception as exc:  # noqa: BLE001 - a lost worker or node
            results.append(TrialsDone(error=f"Ray task {i} failed: {type(exc).__name__}: {exc}"))
    return results


def main(argv: list[str]) -> int:
    """Run the job in file ``argv[0]``, writing what it did to file ``argv[1]``."""
    job_path, out_path = Path(argv[0]), Path(argv[1])
    sys.stdout = sys.stderr  # an objective's print() must not mix with anything else
    result = run_job(job_path.read_bytes())
    tmp = out_path.with_suffix(".tmp")
    tmp.write_bytes(result)
    tmp.replace(out_path)  # the caller sees a whole result or none
    return 0
