"""``python -m keel.pipelines.launch``: what a dispatch's process says when it cannot start."""

from __future__ import annotations

from typing import Any

import pytest


def test_stores_that_cannot_open_are_one_error_line_not_a_traceback(
    keel_env: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from keel.config import reset_settings
    from keel.pipelines.launch import main

    # The server keeps the tail of this process's output as the dispatch's error (shown to
    # viewers by keel pipeline dispatches and the API): it must be the reason, in one line.
    monkeypatch.setenv("KEEL_TRACKING_URI", "nosuchscheme://metadata")
    reset_settings()
    assert main(["0" * 32]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert "nosuchscheme" in err[0]
