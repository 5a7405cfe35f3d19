"""``using_home``: point Keel at the demo's own home for a block, and restore the caller's."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from keel import config

__all__ = ["using_home"]

# Settings that would send the demo's runs elsewhere than its home.
_REDIRECTING_VARIABLES = ("KEEL_HOME", "KEEL_TRACKING_URI", "KEEL_ARTIFACT_URI")


@contextmanager
def using_home(home: Path, *, settings: Mapping[str, str] | None = None) -> Iterator[None]:
    """Point Keel (settings, stores) at ``home`` inside the block; restore everything after.

    ``settings`` are more ``KEEL_*`` variables to set for the block (the demo's short
    alert interval), restored after it too.

    ``KEEL_TRACKING_URI`` and ``KEEL_ARTIFACT_URI`` are cleared too (and a
    ``keel.set_tracking_uri`` override set aside), so nothing leaks into the caller's
    stores. The environment is process-wide: do not run two demos at once in one process.
    """
    extra = dict(settings or {})
    names = (*_REDIRECTING_VARIABLES, *extra)
    saved_env = {name: os.environ.get(name) for name in names}
    saved_uri = config._overrides.get("tracking_uri")  # no public getter for the override
    try:
        for name in _REDIRECTING_VARIABLES:
            os.environ.pop(name, None)
        os.environ["KEEL_HOME"] = str(home)
        os.environ.update(extra)
        config.reset_settings()
        yield
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.reset_settings()
        if saved_uri is not None:
            config.set_tracking_uri(saved_uri)
