"""The UI's login page and token cookie: open with auth off; with an authenticator, every
page redirects to /login until a valid token is posted, and logging out forgets it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

GOOD = "kt_good-token"


@pytest.fixture
def auth_client(seeded: Any) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(seeded.home))
    app.state.ui_authenticate = lambda token: "alice" if token == GOOD else None
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_with_auth_off_the_login_page_says_so_and_pages_are_open(ui_client) -> None:
    html = ui_client.get("/login").text
    assert "Authentication is off on this server" in html
    assert 'name="token" type="password"' in html
    assert ui_client.get("/models").status_code == 200


def test_every_page_redirects_to_login_without_a_valid_token(auth_client, seeded) -> None:
    for url in ("/", f"/runs/{seeded.model_run_id}", "/models", "/audit?limit=50"):
        response = auth_client.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/login?next=%2F")
    auth_client.cookies.set("keel_token", "forged")
    assert auth_client.get("/models").status_code == 303
    # The REST API is not the UI's to guard: its own auth answers there.
    assert auth_client.get("/health").status_code == 200


def test_a_wrong_token_shows_an_error_and_sets_no_cookie(auth_client) -> None:
    response = auth_client.post("/login", data={"token": "wrong", "next": "/models"})
    assert response.status_code == 401
    assert "That token is not valid" in response.text
    assert "set-cookie" not in response.headers


def test_a_good_token_sets_a_strict_httponly_cookie_and_goes_back(auth_client) -> None:
    response = auth_client.post("/login", data={"token": GOOD, "next": "/models?x=1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/models?x=1"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"keel_token={GOOD};")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    page = auth_client.get("/models")
    assert page.status_code == 200
    assert "iris-classifier" in page.text
    assert "Log out" in page.text
    out = auth_client.post("/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert 'keel_token=""' in out.headers["set-cookie"]
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert auth_client.get("/models").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil", ""])
def test_login_never_redirects_off_this_server(auth_client, target) -> None:
    response = auth_client.post("/login", data={"token": GOOD, "next": target})
    assert response.headers["location"] == "/"


def test_with_server_auth_on_the_ui_takes_a_real_api_token(tmp_path) -> None:
    from keel.config import load_settings
    from keel.governance.auth import auth_store
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "home"), auth=True)
    stores = app.state.stores
    stores.tracking.create_experiment("guarded")
    auth = auth_store(stores)
    auth.create_user("vera")
    token = auth.create_token("vera").token
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/").status_code == 303
        assert client.get("/api/v1/experiments").status_code == 401
        refused = client.post("/login", data={"token": token + "x", "next": "/"})
        assert refused.status_code == 401
        assert client.post("/login", data={"token": token, "next": "/"}).status_code == 303
        page = client.get("/")
        assert page.status_code == 200
        assert "guarded" in page.text
        # The same cookie lets the page's own JavaScript read the JSON API.
        assert client.get("/api/v1/experiments").status_code == 200
