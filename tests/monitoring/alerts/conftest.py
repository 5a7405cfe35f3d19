"""Alerts fixtures: ``outbound_loopback`` allow-lists the tests' receivers on 127.0.0.1.

Keel refuses webhooks to loopback and private addresses by default (the outbound policy,
``keel.governance.outbound``), so a test whose webhook receiver listens on 127.0.0.1 says
so explicitly, as an operator would with ``KEEL_OUTBOUND_ALLOW``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def outbound_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let webhooks call 127.0.0.1 for the length of the test."""
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_OUTBOUND_ALLOW", "127.0.0.1")
    reset_settings()
    yield
    # monkeypatch restores the variable after this; the next read must not keep the cache
    reset_settings()
