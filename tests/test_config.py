"""Settings from KEEL_* variables and .keel/config.toml, and how the home is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import (
    find_home,
    get_settings,
    init_home,
    load_settings,
    reset_settings,
    set_tracking_uri,
)
from keel.errors import InvalidInput


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEEL_HOME", "KEEL_TRACKING_URI", "KEEL_ARTIFACT_URI", "KEEL_HEARTBEAT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    yield
    reset_settings()


def test_the_home_is_found_by_walking_up_like_git(tmp_path: Path, monkeypatch) -> None:
    project = tmp_path / "project"
    deep = project / "src" / "pkg" / "deeper"
    deep.mkdir(parents=True)
    home = init_home(project)
    assert home == project.resolve() / ".keel"
    assert (home / "config.toml").is_file()
    monkeypatch.chdir(deep)
    assert find_home() == home


def test_without_a_project_home_keel_falls_back_to_the_user_home(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert find_home() == tmp_path / "user" / ".keel"


def test_keel_home_in_the_environment_wins(tmp_path: Path, monkeypatch) -> None:
    init_home(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "elsewhere"))
    assert find_home() == (tmp_path / "elsewhere").resolve()


def test_defaults_put_both_stores_inside_the_home(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / ".keel")
    assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path / '.keel' / 'keel.db'}"
    assert settings.resolved_artifact_uri() == str(tmp_path / ".keel" / "artifacts")


def test_config_toml_is_read_and_environment_variables_override_it(tmp_path, monkeypatch) -> None:
    home = init_home(tmp_path)
    (home / "config.toml").write_text(
        'tracking_uri = "sqlite:////srv/keel.db"\nheartbeat_timeout = 30\n'
    )
    settings = load_settings(home)
    assert settings.tracking_uri == "sqlite:////srv/keel.db"
    assert settings.heartbeat_timeout == 30
    monkeypatch.setenv("KEEL_HEARTBEAT_TIMEOUT", "45")
    assert load_settings(home).heartbeat_timeout == 45


def test_a_typo_in_config_toml_is_named(tmp_path: Path) -> None:
    home = init_home(tmp_path)
    (home / "config.toml").write_text('trackin_uri = "x"\n')
    with pytest.raises(InvalidInput, match="trackin_uri"):
        load_settings(home)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KEEL_HEARTBEAT_TIMEOUT", "-1"),
        ("KEEL_METRIC_BUFFER_SIZE", "zero"),
        ("KEEL_METRIC_FLUSH_INTERVAL", "0"),
    ],
)
def test_bad_environment_values_are_refused(tmp_path, monkeypatch, variable, value) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(InvalidInput, match=variable.removeprefix("KEEL_").lower()):
        load_settings(tmp_path)


def test_set_tracking_uri_overrides_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KEEL_HOME", str(tmp_path))
    monkeypatch.setenv("KEEL_TRACKING_URI", "sqlite:///from-env.db")
    assert get_settings().tracking_uri == "sqlite:///from-env.db"
    set_tracking_uri("sqlite:///from-code.db")
    assert get_settings().tracking_uri == "sqlite:///from-code.db"
    with pytest.raises(InvalidInput):
        set_tracking_uri("  ")


def test_an_unknown_tracking_scheme_lists_the_supported_ones(keel_env, monkeypatch) -> None:
    import keel

    set_tracking_uri("mongodb://localhost/keel")
    supported = r"not one of http, https, postgresql, postgresql\+psycopg, sqlite"
    with pytest.raises(InvalidInput, match=supported):
        keel.start_run(experiment="e")
