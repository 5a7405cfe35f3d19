"""The end-to-end demo behind ``keel demo``.

from keel.demo import run_demo
result = run_demo()          # a fresh temporary Keel home, kept afterwards
print(result.home, result.pipeline_run_id, result.champion_uri)
print(result.deployment.outcome)   # the canary of the challenger: promoted or rolled-back
print(result.monitoring.summary()) # drift → alert → rollback → retraining → canary
"""

from __future__ import annotations

from keel.demo.lifecycle import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
