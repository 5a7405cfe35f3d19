"""Settings and the Keel home.

Settings come, highest first, from explicit overrides (``keel.set_tracking_uri``),
``KEEL_*`` environment variables, ``<home>/config.toml``, and defaults. The home is
``$KEEL_HOME`` if set, else the nearest ``.keel/`` folder found by walking up from the
working directory (the way git finds ``.git``), else ``~/.keel``.
"""

from __future__ import annotations

import os
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from keel.errors import InvalidInput

__all__ = [
    "CONFIG_FILE",
    "HOME_DIRNAME",
    "KeelSettings",
    "find_home",
    "get_settings",
    "init_home",
    "reset_settings",
    "set_tracking_uri",
]

HOME_DIRNAME = ".keel"
CONFIG_FILE = "config.toml"

_toml_path: ContextVar[Path | None] = ContextVar("_toml_path", default=None)


class KeelSettings(BaseSettings):
    """Every setting Keel reads; each is also ``KEEL_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="forbid")

    home: Path = Field(description="The folder holding the default stores and config.toml.")
    tracking_uri: str = Field(
        default="",
        description="Metadata store URL: sqlite:///…, postgresql+psycopg://…, http(s)://…",
    )
    artifact_uri: str = Field(
        default="", description="Artifact store: a local folder or any fsspec URL (s3://…)."
    )
    token: str = Field(
        default="", description="API token sent to a Keel server (remote mode, auth on)."
    )
    auth: bool = Field(
        default=False, description="Make `keel server` demand an API token on every route."
    )
    metric_flush_interval: float = Field(default=1.0, gt=0, le=3600)
    metric_buffer_size: int = Field(default=200_000, ge=1, le=100_000_000)
    heartbeat_interval: float = Field(default=10.0, gt=0, le=3600)
    heartbeat_timeout: float = Field(default=120.0, gt=0)
    sqlite_busy_timeout: float = Field(default=60.0, gt=0)
    alert_interval: float = Field(
        default=15.0, gt=0, le=3600, description="Seconds between alert rule evaluations."
    )
    prediction_log: bool = Field(default=True, description="Record served requests (monitoring).")
    prediction_log_sample_rate: float = Field(default=1.0, ge=0, le=1)
    prediction_log_flush_interval: float = Field(default=5.0, gt=0, le=3600)
    outbound_allow: str = Field(
        default="",
        max_length=10_000,
        description=(
            "Comma-separated host names (*.example.com for subdomains), addresses and "
            "networks (10.0.0.0/8) that webhooks may call although they are not public "
            "(keel.governance.outbound)."
        ),
    )
    outbound_allow_local: bool = Field(
        default=False,
        description="Let webhooks call any address, loopback and private networks included.",
    )
    env: str = Field(default="", description="The current environment (keel.environments).")
    environments: dict[str, Any] = Field(default_factory=dict, description="[environments.*]")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_path.get()
        if toml is not None and toml.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    def resolved_tracking_uri(self) -> str:
        """Return the metadata store URL, defaulting to SQLite inside the home."""
        return self.tracking_uri or f"sqlite:///{(self.home / 'keel.db').as_posix()}"

    def resolved_artifact_uri(self) -> str:
        """Return the artifact store URL, defaulting to a folder inside the home."""
        return self.artifact_uri or (self.home / "artifacts").as_posix()


def find_home(start: Path | None = None) -> Path:
    """Return the Keel home: ``$KEEL_HOME``, the nearest ``.keel/`` upwards, or ``~/.keel``."""
    env = os.environ.get("KEEL_HOME")
    if env:
        return Path(env).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / HOME_DIRNAME
        if candidate.is_dir():
            return candidate
    return Path.home() / HOME_DIRNAME


def init_home(directory: Path | None = None) -> Path:
    """Create ``<directory>/.keel/`` with a commented config.toml; return its path."""
    home = (directory or Path.cwd()).resolve() / HOME_DIRNAME
    home.mkdir(parents=True, exist_ok=True)
    config = home / CONFIG_FILE
    if not config.exists():
        config.write_text(
            "# Keel settings for this project. Every key can also be set as KEEL_<KEY>.\n"
            '# tracking_uri = "postgresql+psycopg://user@host/db"\n'
            '# artifact_uri = "s3://bucket/keel"\n',
            encoding="utf-8",
        )
    gitignore = home / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n!config.toml\n!.gitignore\n", encoding="utf-8")
    return home


_lock = threading.Lock()
_cached: KeelSettings | None = None
_overrides: dict[str, Any] = {}


def load_settings(home: Path | None = None, **overrides: Any) -> KeelSettings:
    """Return freshly read settings for ``home`` (discovered when omitted)."""
    home = home or find_home()
    token = _toml_path.set(home / CONFIG_FILE)
    try:
        settings = KeelSettings(home=home, **overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidInput(
            f"invalid Keel settings (from KEEL_* variables or {home / CONFIG_FILE}): {problems}"
        ) from None
    finally:
        _toml_path.reset(token)
    from keel.environments import apply_environment

    return apply_environment(settings, overrides)


def get_settings() -> KeelSettings:
    """Return the process-wide settings, read once and cached."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = load_settings(**_overrides)
        return _cached


def reset_settings() -> None:
    """Forget cached settings and overrides (they are re-read on next use)."""
    global _cached
    with _lock:
        _cached = None
        _overrides.clear()


def set_tracking_uri(uri: str) -> None:
    """Point this process at another metadata store (overrides KEEL_TRACKING_URI)."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("tracking URI must be a non-empty string")
    global _cached
    with _lock:
        _overrides["tracking_uri"] = uri.strip()
        _cached = None
