"""The error hierarchy: stable codes, HTTP statuses and CLI exit codes."""

from __future__ import annotations

import pytest

from keel import errors


@pytest.mark.parametrize(
    ("cls", "builtin", "status", "exit_code"),
    [
        (errors.InvalidInput, ValueError, 400, 2),
        (errors.SchemaError, ValueError, 400, 2),
        (errors.NotFound, LookupError, 404, 2),
        (errors.AlreadyExists, errors.KeelError, 409, 2),
        (errors.Conflict, errors.KeelError, 409, 1),
        (errors.Unauthenticated, errors.KeelError, 401, 1),
        (errors.PermissionDenied, PermissionError, 403, 1),
        (errors.IntegrityError, errors.KeelError, 500, 1),
        (errors.StoreUnavailable, ConnectionError, 503, 1),
        (errors.SchemaOutOfDate, errors.KeelError, 503, 1),
        (errors.Overloaded, errors.KeelError, 503, 1),
        (errors.MissingDependency, ImportError, 500, 1),
    ],
)
def test_each_error_maps_to_a_status_and_an_exit_code(cls, builtin, status, exit_code) -> None:
    error = cls("something precise")
    assert isinstance(error, errors.KeelError)
    assert isinstance(error, builtin)
    assert (error.http_status, error.exit_code) == (status, exit_code)
    assert error.to_dict() == {"error_code": cls.error_code, "message": "something precise"}


def test_codes_are_unique_and_round_trip() -> None:
    classes = [getattr(errors, n) for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    codes = [c.error_code for c in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert errors.error_class_for_code(cls.error_code) is cls
    assert errors.error_class_for_code("NO_SUCH_CODE") is errors.KeelError


def test_overloaded_carries_a_retry_after() -> None:
    assert errors.Overloaded("queue full", retry_after=2.5).retry_after == 2.5
    assert errors.Overloaded("queue full").retry_after == 1.0


def test_a_missing_extra_names_the_pip_command() -> None:
    with pytest.raises(errors.MissingDependency, match=r"pip install 'keel-mlops\[ray\]'"):
        errors.require("keel_no_such_module", "ray")
