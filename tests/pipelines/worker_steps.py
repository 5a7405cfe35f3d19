"""Steps that report what their worker process sees (imported by workers by name)."""

from __future__ import annotations

import os

import keel.pipelines as kp


@kp.step
def env_value(name: str) -> str | None:
    return os.environ.get(name)


@kp.step
def where(tag: str) -> dict:
    return {"cwd": os.getcwd(), "pid": os.getpid(), "tag": tag}


@kp.pipeline
def sees_env(name: str = "KEEL_TEST_MARK"):
    env_value(name)


@kp.pipeline
def sees_cwd(n: int = 2):
    for i in range(n):
        where(f"w{i}")
