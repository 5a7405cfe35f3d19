"""Environments in config.toml: parsing, bad config naming the key, the current one."""

from __future__ import annotations

import pytest
from tests.conftest import KeelEnv

from keel.config import get_settings, reset_settings
from keel.environments import (
    current_environment,
    get_environment,
    list_environments,
    parse_environment,
    parse_threshold,
    select_environment,
)
from keel.errors import InvalidInput, NotFound

CONFIG = """
tracking_uri = ""

[environments.staging]
alias = "staging-ok"

[environments.prod]
description = "customers"
artifact_uri = "{home}/prod-artifacts"

[environments.prod.deployment]
name = "{model}-prod"
strategy = "canary"
steps = [10, 100]
interval_s = 5

[environments.prod.gates]
metrics = ["accuracy >= 0.9", "latency_ms<5"]
approvals = { count = 2, role = "admin" }

[environments.prod.gates.compare_champion]
metric = "accuracy"
min_improvement = 0.01
data = "holdout.csv"
target = "label"
"""


def write_config(env: KeelEnv, text: str) -> None:
    env.home.mkdir(parents=True, exist_ok=True)
    (env.home / "config.toml").write_text(text.replace("{home}", env.home.as_posix()))
    reset_settings()


def test_environments_are_parsed_with_their_gates_and_defaults(keel_env: KeelEnv) -> None:
    write_config(keel_env, CONFIG)
    envs = {e.name: e for e in list_environments()}
    assert sorted(envs) == ["prod", "staging"]
    prod = envs["prod"]
    assert prod.alias == "prod"  # the environment's name by default
    assert envs["staging"].alias == "staging-ok"
    assert [str(m) for m in prod.gates.metrics] == ["accuracy >= 0.9", "latency_ms < 5"]
    assert prod.gates.metrics[1].holds(4.9)
    assert not prod.gates.metrics[1].holds(5)
    assert prod.gates.approvals is not None
    assert (prod.gates.approvals.count, prod.gates.approvals.role) == (2, "admin")
    champion = prod.gates.compare_champion
    assert champion is not None
    assert champion.maximize
    assert champion.min_improvement == 0.01
    assert prod.deployment is not None
    assert prod.deployment.deployment_name("churn", "prod") == "churn-prod"
    assert prod.deployment.options == {"steps": [10, 100], "interval_s": 5}
    assert prod.to_dict()["gates"]["metrics"] == ["accuracy >= 0.9", "latency_ms < 5"]
    assert envs["staging"].gates.metrics == ()


def test_the_current_environment_overrides_its_settings(
    keel_env: KeelEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(keel_env, CONFIG)
    assert current_environment() is None
    assert get_settings().artifact_uri == ""
    monkeypatch.setenv("KEEL_ENV", "prod")
    reset_settings()
    assert current_environment().name == "prod"
    assert get_settings().artifact_uri == f"{keel_env.home.as_posix()}/prod-artifacts"
    monkeypatch.setenv("KEEL_ARTIFACT_URI", "/elsewhere")  # a KEEL_* variable still wins
    reset_settings()
    assert get_settings().artifact_uri == "/elsewhere"
    monkeypatch.delenv("KEEL_ENV")
    reset_settings()
    select_environment("staging")
    assert current_environment().name == "staging"
    select_environment(None)
    assert current_environment() is None
    monkeypatch.setenv("KEEL_ENV", "qa")
    reset_settings()
    with pytest.raises(NotFound, match=r"no environment named 'qa' \(defined: prod, staging\)"):
        get_settings()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"gates": {"metrics": ["accuracy >>= 1"]}}, "gates.metrics.*'accuracy >>= 1'"),
        ({"gates": {"metrics": ["accuracy >= nan"]}}, "gates.metrics"),
        ({"gates": {"metrics": "x" * 400}}, "gates.metrics"),
        ({"gates": {"metrics": [3]}}, "gates.metrics"),
        ({"gates": {"approvals": {"count": -1}}}, "gates.approvals.count"),
        ({"gates": {"approvals": {"count": 1, "role": "god"}}}, "gates.approvals.role"),
        ({"gates": {"speed": 1}}, "gates.speed"),
        ({"gates": {"compare_champion": {"metric": "vibes", "data": "x", "target": "y"}}},
         "compare_champion.metric.*unknown metric 'vibes'"),
        ({"gates": {"compare_champion": {"metric": "accuracy", "target": "y"}}},
         "compare_champion.data"),
        ({"gates": {"compare_champion": {"metric": "accuracy", "data": "x", "target": "y",
                                         "min_improvement": -1}}}, "min_improvement"),
        ({"deployment": {"strategy": "yolo"}}, "deployment.strategy"),
        ({"deployment": {"strategy": "canary", "steps": [50, 10]}}, "canary steps"),
        ({"deployment": {"strategy": "blue-green", "steps": [10, 100]}}, "takes no options"),
        ({"deployment": {"name": "../../etc/{model}"}}, "deployment name"),
        ({"alias": "latest"}, "'latest' is reserved"),
        ({"alias": "no spaces"}, "alias 'no spaces'"),
        ({"tracking_uri": 5}, "tracking_uri"),
        ({"colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_bad_config_names_the_environment_and_the_key(table: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=rf"environment 'prod' in config.toml: .*{message}"):
        parse_environment("prod", table)


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 65, "latest", "1abc", None, 3])
def test_hostile_environment_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidInput, match="environment name"):
        parse_environment(name, {})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("accuracy >= 0.9", "accuracy", ">=", 0.9),
        ("latency_ms<5", "latency_ms", "<", 5.0),
        (" loss <= 1e-3 ", "loss", "<=", 0.001),
        ("val/auc == .5", "val/auc", "==", 0.5),
        ("drift != -2", "drift", "!=", -2.0),
    ],
)
def test_threshold_expressions(text: str, metric: str, op: str, value: float) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.op, t.value) == (metric, op, value)


@pytest.mark.parametrize(
    "text", ["accuracy >>= 1", "accuracy", ">= 1", "accuracy >= ", "a >= 1; drop table", "a = 1"]
)
def test_bad_threshold_expressions_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="is not '<metric> <op> <number>'"):
        parse_threshold(text)


def test_an_unknown_environment_lists_the_defined_ones(keel_env: KeelEnv) -> None:
    write_config(keel_env, CONFIG)
    with pytest.raises(NotFound, match=r"defined: prod, staging"):
        get_environment("qa")
    write_config(keel_env, "environments = 3\n")
    with pytest.raises(InvalidInput):
        list_environments()
