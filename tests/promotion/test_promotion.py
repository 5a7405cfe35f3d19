"""Promotions on SQLite, PostgreSQL and a live server: gates, alias move, rollout, records."""

from __future__ import annotations

import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from tests.conftest import KeelEnv
from tests.promotion._setup import SERVER_HOME, Churn, register_churn, write_config

import keel
from keel.errors import InvalidInput, NotFound
from keel.governance.audit import audit_log
from keel.governance.identity import acting_as, current_actor
from keel.promotion import approve_promotion, list_approvals, promote, promotion_history
from keel.tracking.datasets import digest_path


@pytest.fixture
def churn(backend: KeelEnv) -> Churn:
    write_config(backend.home)
    found = register_churn(backend.home.parent)
    keel.set_alias("churn", "prod", 1)
    keel.create_deployment("churn-prod", "models:/churn/1", environment="prod")
    return found


def _split(name: str) -> dict[str, tuple[float, str]]:
    return {b.key: (b.weight, b.role.value) for b in keel.get_deployment(name).plan.backends}


def _audit(backend: KeelEnv, action: str) -> list:
    """Return the promotion audit entries of churn/2 from the database that holds them
    (through a server: the server's own)."""
    from keel.config import load_settings
    from keel.governance.audit import audit_store
    from keel.stores import open_stores

    if backend.dialect != "rest":
        return audit_log(object="churn/2", action=action)
    # KEEL_TRACKING_URI names the server; its own database is the home's default one.
    server = open_stores(load_settings(backend.home.parent / SERVER_HOME, tracking_uri=""))
    return audit_store(server).list_entries(object="churn/2", since=None, action=action, limit=100)


def _alias(alias: str) -> int | None:
    return keel.get_registered_model("churn").aliases.get(alias)


def test_a_promotion_that_passes_moves_the_alias_and_starts_the_canary(
    churn: Churn, backend: KeelEnv
) -> None:
    approve_promotion("models:/churn/2", to="prod", comment="card reviewed")
    result = promote("models:/churn/2", to="prod")
    assert result.outcome == "promoted", result.reasons
    assert result.passed
    assert result.promoted
    assert (result.alias, result.previous_version, result.version) == ("prod", 1, 2)
    assert [g.kind for g in result.gates] == ["metric", "metric", "champion", "approvals",
                                              "deployment"]  # fmt: skip
    assert _alias("prod") == 2
    assert result.deployment == "churn-prod"
    assert result.rollout["action"] == "rollout"
    assert result.rollout["strategy"] == "canary"
    dep = keel.get_deployment("churn-prod")
    assert dep.status == "canary step 1/2"
    assert _split("churn-prod") == {"churn/1": (90, "stable"), "churn/2": (10, "candidate")}
    assert result.rollout["revision"] == dep.revision
    assert result.actor == current_actor()
    [stored] = promotion_history("prod")
    assert stored.promotion_id == result.promotion_id
    assert stored.to_dict() == result.to_dict()
    entries = _audit(backend, "promotion")
    assert [e.action for e in entries] == ["promotion.approve", "promotion.promoted"]
    assert entries[1].actor == current_actor()
    assert entries[1].change["promotion_id"] == result.promotion_id


def test_the_champion_is_scored_on_the_same_data_as_the_candidate(churn: Churn) -> None:
    # churn@prod is v1; compare v2 against it on holdout.parquet by ROC AUC.
    keel.set_alias("churn", "champ", 1)
    result = promote("models:/churn/2", to="champ")
    [gate] = [g for g in result.gates if g.kind == "champion"]
    hold = churn.holdout
    X, y = hold.drop(columns=["label"]), hold["label"]
    expected = {
        v: roc_auc_score(y, churn.models[v].predict_proba(X)[:, 1]) for v in (1, 2)
    }  # the same rows, scored here independently for each version
    assert gate.details["candidate_score"] == pytest.approx(expected[2])
    assert gate.details["champion_score"] == pytest.approx(expected[1])
    assert gate.details["rows"] == len(hold) == 100
    assert gate.details["data_digest"] == digest_path(churn.project / "holdout.parquet")
    assert gate.details["champion_version"] == 1
    assert gate.passed
    assert result.promoted
    assert _alias("champ") == 2


def test_refused_by_a_metric_threshold_changes_nothing(churn: Churn) -> None:
    before = keel.get_deployment("churn-prod").revision
    result = promote("models:/churn/2", to="strict")
    assert result.outcome == "refused"
    assert not result.promoted
    assert result.reasons == ["accuracy = 0.93 fails accuracy >= 0.999"]
    assert "strict" not in keel.get_registered_model("churn").aliases
    assert keel.get_deployment("churn-prod").revision == before
    result = promote("models:/churn/2", to="nometric")
    assert result.reasons == ["models:/churn/2 has no metric 'f1'; log it on its run"]


def test_refused_by_the_champion_comparison(churn: Churn) -> None:
    keel.set_alias("churn", "prod", 2)  # the strong model is champion
    approve_promotion("models:/churn/3", to="prod")
    result = promote("models:/churn/3", to="prod")
    assert result.outcome == "refused"
    [reason] = result.reasons
    hold = churn.holdout
    X, y = hold.drop(columns=["label"]), hold["label"]
    weak, strong = (
        accuracy_score(y, churn.models[3].predict(X)),
        accuracy_score(y, churn.models[2].predict(X)),
    )
    assert weak < strong
    assert reason.startswith(f"accuracy {weak:.6g} vs champion v2 {strong:.6g} on holdout.csv")
    assert "does not beat the required improvement 0.01" in reason
    assert _alias("prod") == 2


def test_approvals_count_distinct_users(churn: Churn, backend: KeelEnv) -> None:
    result = promote("models:/churn/2", to="two")
    assert result.reasons == [
        "0 of 2 approvals by editor or higher (nobody); approve with "
        "`keel promote approve models:/churn/2 --to two`"
    ]
    with acting_as("alice"):
        approve_promotion("models:/churn/2", to="two")
        approve_promotion("models:/churn/2", to="two", comment="again")
    assert [a.approver for a in list_approvals("models:/churn/2", to="two")] == ["alice"] * 2
    result = promote("models:/churn/2", to="two")
    assert result.outcome == "refused"
    assert result.reasons[0].startswith("1 of 2 approvals by editor or higher (alice)")
    with acting_as("bob"):
        approve_promotion("models:/churn/2", to="two")
    assert list_approvals("models:/churn/2", to="prod") == []  # per environment
    result = promote("models:/churn/2", to="two")
    assert result.promoted
    [gate] = [g for g in result.gates if g.kind == "approvals"]
    assert gate.details["approvers"] == ["alice", "bob"]
    assert _alias("two") == 2


def test_refused_while_the_deployment_has_a_rollout_running(churn: Churn) -> None:
    keel.rollout("churn-prod", "models:/churn/3", strategy="canary", steps=[10, 100])
    approve_promotion("models:/churn/2", to="prod")
    result = promote("models:/churn/2", to="prod")
    assert result.outcome == "refused"
    assert result.reasons == [
        "deployment churn-prod has a canary rollout of churn/3 running; promote, abort or "
        "roll it back first"
    ]
    assert _alias("prod") == 1


def test_a_dry_run_evaluates_and_records_but_moves_nothing(churn: Churn) -> None:
    approve_promotion("models:/churn/2", to="prod")
    result = promote("models:/churn/2", to="prod", dry_run=True)
    assert result.outcome == "dry-run"
    assert result.passed
    assert not result.promoted
    assert _alias("prod") == 1
    assert keel.get_deployment("churn-prod").rollout is None
    assert [p.outcome for p in promotion_history(model="churn")] == ["dry-run"]


def test_a_missing_deployment_is_created_and_blue_green_runs_on_the_next(churn: Churn) -> None:
    result = promote("models:/churn/1", to="staging")
    assert result.promoted
    assert result.previous_version is None
    assert result.rollout["action"] == "create"
    assert _split("churn-staging") == {"churn/1": (100, "stable")}
    result = promote("models:/churn/2", to="staging")
    assert (result.rollout["action"], result.rollout["strategy"]) == ("rollout", "blue-green")
    assert _alias("staging") == 2
    rollout = keel.get_deployment("churn-staging").rollout
    # (through a server its controller may already have switched to the warmed version)
    assert (rollout.strategy.value, rollout.candidate) == ("blue-green", "churn/2")
    history = promotion_history("staging")
    assert [p.version for p in history] == [2, 1]  # newest first
    assert [p.version for p in promotion_history("staging", limit=1)] == [2]


def test_a_deployment_already_serving_the_version_is_left_as_it_is(churn: Churn) -> None:
    keel.create_deployment("churn-staging", "models:/churn/3", environment="staging")
    before = keel.get_deployment("churn-staging").revision
    result = promote("models:/churn/3", to="staging")
    assert result.promoted
    assert result.rollout["action"] == "none"
    assert keel.get_deployment("churn-staging").revision == before
    assert _alias("staging") == 3


@pytest.mark.parametrize(
    ("uri", "to", "error", "message"),
    [
        ("models:/churn/2", "qa", NotFound, "no environment named 'qa'"),
        ("models:/nope/1", "prod", NotFound, "nope"),
        ("models:/churn/99", "prod", NotFound, "99"),
        ("models:/churn@nobody", "prod", NotFound, "nobody"),
        ("runs:/" + "a" * 32 + "/model", "prod", InvalidInput, "registered version"),
        ("churn/2", "prod", InvalidInput, "registered version"),
        ("models:/../../etc/1", "prod", InvalidInput, "must not contain"),
        ("models:/churn/2", "../prod", InvalidInput, "environment name"),
        ("models:/churn/2", "x" * 10_000, InvalidInput, "environment name"),
        ("models:/churn/2", "badexpr", InvalidInput, "environment 'badexpr'.*accuracy >>= 1"),
        ("models:/churn/2", "nofile", NotFound, "missing/holdout.csv"),
        ("models:/churn/2", "notarget", InvalidInput, "no target column 'churned'"),
    ],
)
def test_bad_input_is_refused_clearly(
    churn: Churn, uri: str, to: str, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        promote(uri, to=to)
    assert _alias("prod") == 1


def test_bad_arguments(churn: Churn) -> None:
    with pytest.raises(InvalidInput, match="name the environment"):
        promote("models:/churn/2")
    with pytest.raises(InvalidInput, match="dry_run"):
        promote("models:/churn/2", to="prod", dry_run="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="comment"):
        approve_promotion("models:/churn/2", to="prod", comment="x" * 20_000)
    with pytest.raises(InvalidInput, match="without NUL"):  # PostgreSQL: was a DataError
        approve_promotion("models:/churn/2", to="prod", comment="ok\x00")
    with pytest.raises(NotFound):
        approve_promotion("models:/churn/42", to="prod")
    with pytest.raises(InvalidInput, match="limit"):
        promotion_history(limit=0)
    with pytest.raises(InvalidInput, match="environment name"):
        promotion_history("a b")
    assert promotion_history("prod") == []


def test_the_evaluation_data_can_be_a_file_logged_in_a_run(churn: Churn, backend: KeelEnv) -> None:
    with keel.start_run(experiment="eval-data") as run:
        path = run.log_artifact(churn.project / "holdout.csv", "data")
    text = (backend.home / "config.toml").read_text()
    logged = f"runs:/{run.run_id}/{path}"
    write_config(backend.home, text.replace('data = "holdout.parquet"', f'data = "{logged}"'))
    result = promote("models:/churn/2", to="champ")
    [gate] = [g for g in result.gates if g.kind == "champion"]
    assert gate.details["data"] == logged
    assert gate.details["data_digest"] == digest_path(churn.project / "holdout.csv")
    assert gate.details["rows"] == 100
    assert result.promoted
    missing = logged.replace("holdout.csv", "other.csv")
    write_config(backend.home, text.replace('data = "holdout.parquet"', f'data = "{missing}"'))
    with pytest.raises(NotFound, match=r"has no artifact 'data/other\.csv'"):
        promote("models:/churn/2", to="champ")


def test_refusals_and_dry_runs_are_audited_too(churn: Churn, backend: KeelEnv) -> None:
    promote("models:/churn/2", to="strict")
    promote("models:/churn/2", to="staging", dry_run=True)
    outcomes = [(p.environment, p.outcome) for p in promotion_history(model="churn")]
    assert outcomes == [("staging", "dry-run"), ("strict", "refused")]
    entries = _audit(backend, "promotion")
    assert [e.action for e in entries] == ["promotion.refused", "promotion.dry-run"]
    assert entries[0].change["gates"] == {"accuracy >= 0.999": False, "deployment": True}
    with acting_as("carol"):
        promote("models:/churn/2", to="strict")
    assert _audit(backend, "promotion.refused")[-1].actor == "carol"


def test_huge_and_hostile_arguments(churn: Churn) -> None:
    with pytest.raises(InvalidInput):
        promote("models:/" + "x" * 100_000 + "/1", to="prod")
    with pytest.raises(InvalidInput):
        promote("models:/churn/" + "9" * 40, to="prod")
    with pytest.raises(InvalidInput):
        promote(None, to="prod")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        approve_promotion("models:/churn/2", to="prod'; drop table promotions; --")
    assert promotion_history() == []


def test_an_environment_built_in_code_needs_no_config_file(churn: Churn, backend: KeelEnv) -> None:
    from keel.environments import parse_environment

    qa = parse_environment(
        "qa",
        {
            "gates": {"metrics": ["accuracy >= 0.9"], "approvals": 1},
            "deployment": {"name": "{model}-qa", "strategy": "none"},
        },
    )
    if backend.dialect == "rest":
        # A server promotes by the environments of its own config.toml only: gates sent by
        # a client would be gates the client chose.
        with pytest.raises(InvalidInput, match=r"built in code.*\[environments\.qa\]"):
            promote("models:/churn/2", to=qa)
        assert promotion_history() == []
        return
    assert promote("models:/churn/1", to=qa).reasons[0] == "accuracy = 0.85 fails accuracy >= 0.9"
    approve_promotion("models:/churn/2", to=qa)
    result = promote("models:/churn/2", to=qa)
    assert result.promoted
    assert (result.deployment, result.rollout) == (None, None)  # strategy "none"
    assert _alias("qa") == 2
