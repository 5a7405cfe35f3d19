"""/api/v1/promotions on a live server with auth on: approvers' roles checked and recorded,
promotions run and recorded by the server as the token's user (a posted verdict refused),
bad bodies refused with 400s."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.conftest import KeelEnv, _close_rest_client, _reset
from tests.live_server import running_server
from tests.promotion._setup import register_churn, write_config

import keel
from keel.errors import PermissionDenied
from keel.governance.auth import Role, auth_store
from keel.governance.identity import acting_as
from keel.promotion import approve_promotion, list_approvals, promote, promotion_history

API = "/api/v1/promotions"


@dataclass
class Secured:
    """A live server with auth on, and one token per user."""

    url: str
    tokens: dict[str, str]
    monkeypatch: pytest.MonkeyPatch

    def use(self, user: str) -> None:
        """Make the SDK call the server as ``user``."""
        _close_rest_client()
        self.monkeypatch.setenv("KEEL_TOKEN", self.tokens[user])
        _reset()

    def http(self, user: str | None) -> httpx.Client:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture
def secured(keel_env: KeelEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[Secured]:
    from keel.config import load_settings
    from keel.stores import open_stores

    server_home = keel_env.home.parent / "server-home"
    auth = auth_store(open_stores(load_settings(server_home)))
    auth.create_user("ada", role=Role.ADMIN)
    auth.create_user("eve", role=Role.EDITOR)
    auth.create_user("vic")
    auth.create_user("mo")
    tokens = {u: auth.create_token(u).token for u in ("ada", "eve", "vic", "mo")}
    _reset()
    with running_server(server_home, auth=True) as url:
        monkeypatch.setenv("KEEL_TRACKING_URI", url)
        site = Secured(url, tokens, monkeypatch)
        site.use("ada")
        write_config(keel_env.home)
        register_churn(keel_env.home.parent)
        keel.set_alias("churn", "prod", 1)
        auth.grant("mo", Role.EDITOR, model="churn")  # once the model exists
        yield site
        _close_rest_client()
        _reset()


def test_an_approval_needs_the_gates_role_and_records_it(secured: Secured) -> None:
    secured.use("eve")  # an editor: below the admin the "admins" environment asks for
    with pytest.raises(PermissionDenied, match="its approvals need the admin role"):
        approve_promotion("models:/churn/2", to="admins")
    secured.use("vic")  # a viewer approves nothing
    with pytest.raises(PermissionDenied, match="needs the editor role"):
        approve_promotion("models:/churn/2", to="two")
    secured.use("ada")
    with acting_as("mallory"):  # with auth on, the token's user is the approver
        approval = approve_promotion("models:/churn/2", to="admins", comment="ok")
    assert (approval.approver, approval.role, approval.comment) == ("ada", "admin", "ok")
    secured.use("eve")
    result = promote("models:/churn/2", to="admins")
    assert result.promoted, result.reasons
    assert result.actor == "eve"
    [gate] = [g for g in result.gates if g.kind == "approvals"]
    assert gate.details["approvers"] == ["ada"]
    assert keel.get_registered_model("churn").aliases["admins"] == 2
    assert [p.actor for p in promotion_history("admins")] == ["eve"]


def test_editors_on_the_model_count_and_roles_below_are_left_out(secured: Secured) -> None:
    secured.use("mo")  # an editor on model churn only
    assert approve_promotion("models:/churn/2", to="two").role == "editor"
    secured.use("eve")
    approve_promotion("models:/churn/2", to="two")
    approve_promotion("models:/churn/2", to="two")  # twice: counted once
    assert [a.approver for a in list_approvals("models:/churn/2", to="two")] == [
        "mo",
        "eve",
        "eve",
    ]
    result = promote("models:/churn/2", to="two")
    assert result.promoted, result.reasons
    # On "admins", those editor approvals (recorded for "two") do not exist at all.
    result = promote("models:/churn/2", to="admins")
    assert result.reasons == [
        "0 of 1 approvals by admin or higher (nobody); approve with "
        "`keel promote approve models:/churn/2 --to admins`"
    ]


def test_an_editor_approval_does_not_count_where_admins_are_required(
    secured: Secured, keel_env: KeelEnv
) -> None:
    secured.use("eve")
    approve_promotion("models:/churn/2", to="two")
    # The environment now asks for an admin: eve's recorded editor role is below it.
    text = (keel_env.home / "config.toml").read_text()
    write_config(
        keel_env.home, text.replace("approvals = 2", 'approvals = {count = 1, role = "admin"}')
    )
    result = promote("models:/churn/2", to="two")
    assert result.outcome == "refused"
    assert "not counted, role below admin: eve" in result.reasons[0]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"model": "churn", "version": "2", "environment": "prod"}, 400),
        ({"model": "churn", "version": 0, "environment": "prod"}, 400),
        ({"model": "churn", "version": 2, "environment": "a b"}, 400),
        ({"model": "../etc", "version": 2, "environment": "prod"}, 400),
        ({"model": "churn", "version": 2, "environment": "prod", "extra": 1}, 400),
        ({"model": "churn", "version": 2, "environment": "prod", "required_role": "god"}, 400),
        ({"model": "churn", "version": 2, "environment": "prod", "comment": "x" * 20_000}, 400),
        ({"model": "churn", "version": 99, "environment": "prod"}, 404),
        ({"model": "nope", "version": 1, "environment": "prod"}, 404),
        ({"model": "churn", "version": 2, "environment": "prod"}, 201),
    ],
)
def test_approval_bodies(secured: Secured, body: dict, status: int) -> None:
    with secured.http("ada") as http:
        response = http.post(f"{API}/approvals", json=body)
    assert response.status_code == status, response.text
    if status != 201:
        assert response.json()["error_code"] in ("INVALID_INPUT", "NOT_FOUND")


def test_an_editor_cannot_record_a_verdict_the_server_did_not_reach(
    secured: Secured, keel_env: KeelEnv
) -> None:
    from keel.config import load_settings
    from keel.governance.audit import audit_store
    from keel.stores import open_stores

    ask = {"model": "churn", "version": 2, "environment": "prod"}
    forged = {**ask, "alias": "prod", "outcome": "promoted", "dry_run": False, "reason": "ok",
              "gates": [{"kind": "approvals", "name": "approvals", "passed": True,
                         "reason": "ok"}]}  # fmt: skip
    with secured.http("eve") as http:
        refused = http.post(API, json=forged)
        assert refused.status_code == 400, refused.text
        assert "decided by the server" in refused.json()["message"]
        done = http.post(API, json=ask)  # prod needs an approval nobody gave
        assert done.status_code == 201, done.text
        record = done.json()
        assert (record["outcome"], record["actor"]) == ("refused", "eve")
        assert record["reasons"] == [
            "0 of 1 approvals by editor or higher (nobody); approve with "
            "`keel promote approve models:/churn/2 --to prod`"
        ]
        assert http.post(API, json={**ask, "version": 42}).status_code == 404
        listed = http.get(API, params={"environment": "prod", "limit": 5}).json()
        assert [p["promotion_id"] for p in listed["promotions"]] == [record["promotion_id"]]
        assert http.get(API, params={"limit": 0}).status_code == 400
        assert http.get(f"{API}/approvals").status_code == 400
    assert keel.get_registered_model("churn").aliases["prod"] == 1
    with secured.http("vic") as http:
        assert http.post(API, json=ask).status_code == 403
        assert http.get(API).status_code == 200
    with secured.http(None) as http:
        assert http.get(API).status_code == 401
    # KEEL_TRACKING_URI names the server; its own database is the home's default one.
    server = open_stores(load_settings(keel_env.home.parent / "server-home", tracking_uri=""))
    [entry] = audit_store(server).list_entries(object="churn/2", action="promotion.refused")
    assert entry.actor == "eve"
    assert entry.change["promotion_id"] == record["promotion_id"]


def test_a_rollout_the_data_plane_refuses_puts_the_alias_back(secured: Secured) -> None:
    from tests.deploy.test_serving_support import LoadsBroken
    from tests.promotion._setup import _problem

    _, _, X, _ = _problem()
    with keel.start_run(experiment="broken") as run:  # predicts when logged, not once loaded
        run.log_model(LoadsBroken().fit(X, X["f0"] > 0), "model", input_example=X.head(3))
    broken = keel.register_model(f"runs:/{run.run_id}/model", "churn")
    keel.create_deployment("churn-staging", "models:/churn/1", environment="staging")
    keel.set_alias("churn", "staging", 1)
    result = promote(broken.uri, to="staging")  # staging has no gate that loads the model
    assert result.passed
    assert result.outcome == "failed"
    assert result.reason.startswith("deployment churn-staging could not start: ")
    assert "broken once deployed" in result.reason
    assert keel.get_registered_model("churn").aliases["staging"] == 1  # put back
    assert keel.get_deployment("churn-staging").stable.key == "churn/1"
    assert [p.outcome for p in promotion_history("staging")] == ["failed"]
