"""The names the demo's pieces share: the pipeline, model, alias, environment, deployment.

A module of constants only, so ``import keel.demo`` stays light (the training pipeline's
module imports Optuna and the pipelines engine when it is loaded).
"""

from __future__ import annotations

__all__ = [
    "ALIAS",
    "DEPLOYMENT",
    "ENVIRONMENT",
    "FIRST_TRIALS",
    "LONGER_TRIALS",
    "MODEL_NAME",
    "PIPELINE",
    "STEPS",
]

PIPELINE = "breast-cancer"  # the pipeline's name, and so the experiment of its runs
MODEL_NAME = "breast-cancer-classifier"
ALIAS = "champion"
ENVIRONMENT = "prod"
DEPLOYMENT = "breast-cancer-prod"
STEPS = ("load", "validate", "tune", "train", "evaluate", "register", "promote")
# The first search and the deployment act's longer one (see keel.demo.training.SEARCH_SEED).
FIRST_TRIALS, LONGER_TRIALS = 6, 14
