"""Keel's one error hierarchy.

Every error Keel raises on purpose is a ``KeelError``. Each subclass carries a stable
``error_code`` (what scripts and the REST API see), an HTTP status, and a CLI exit code
(2 for bad input, 1 for a failure). Subclasses also inherit the matching built-in where
one exists, so ``except LookupError`` still catches ``NotFound``::

    KeelError
    ├── InvalidInput (ValueError)            400  exit 2
    │   └── SchemaError                      400  exit 2
    ├── NotFound (LookupError)               404  exit 2
    ├── AlreadyExists                        409  exit 2
    ├── Conflict                             409  exit 1
    ├── Unauthenticated                      401  exit 1
    ├── PermissionDenied (PermissionError)   403  exit 1
    ├── IntegrityError                       500  exit 1
    ├── StoreUnavailable (ConnectionError)   503  exit 1
    ├── SchemaOutOfDate                      503  exit 1
    ├── SchemaTooNew                         503  exit 1
    ├── Overloaded                           503  exit 1
    └── MissingDependency (ImportError)      500  exit 1
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExists",
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "KeelError",
    "MissingDependency",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "SchemaError",
    "SchemaOutOfDate",
    "SchemaTooNew",
    "StoreUnavailable",
    "Unauthenticated",
    "error_class_for_code",
]


class KeelError(Exception):
    """Base of every error Keel raises on purpose."""

    error_code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, str]:
        """Return the JSON body the REST API sends for this error."""
        return {"error_code": self.error_code, "message": self.message}


class InvalidInput(KeelError, ValueError):
    """The caller passed something malformed: fix the input and retry."""

    error_code = "INVALID_INPUT"
    http_status = 400
    exit_code = 2


class SchemaError(InvalidInput):
    """Data does not match a model's signature or a dataset's schema."""

    error_code = "SCHEMA_MISMATCH"


class NotFound(KeelError, LookupError):
    """The named object does not exist."""

    error_code = "NOT_FOUND"
    http_status = 404
    exit_code = 2


class AlreadyExists(KeelError):
    """An object with that name or key already exists."""

    error_code = "ALREADY_EXISTS"
    http_status = 409
    exit_code = 2


class Conflict(KeelError):
    """The request contradicts the current state (an immutable value, a held lease)."""

    error_code = "CONFLICT"
    http_status = 409


class Unauthenticated(KeelError):
    """No valid API token came with a request to a server that requires one."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(KeelError, PermissionError):
    """The caller is not allowed to do this."""

    error_code = "PERMISSION_DENIED"
    http_status = 403


class IntegrityError(KeelError):
    """Stored data failed verification: a digest mismatch or a missing blob."""

    error_code = "INTEGRITY_ERROR"


class StoreUnavailable(KeelError, ConnectionError):
    """A store cannot be reached or is locked; retrying later may succeed."""

    error_code = "STORE_UNAVAILABLE"
    http_status = 503


class SchemaOutOfDate(KeelError):
    """The metadata database is at an older schema; run ``keel db upgrade``."""

    error_code = "SCHEMA_OUT_OF_DATE"
    http_status = 503


class SchemaTooNew(KeelError):
    """The metadata database was written by a newer Keel than this one."""

    error_code = "SCHEMA_TOO_NEW"
    http_status = 503


class Overloaded(KeelError):
    """A server's request queue is full; retry after ``retry_after`` seconds."""

    error_code = "OVERLOADED"
    http_status = 503

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MissingDependency(KeelError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    error_code = "MISSING_DEPENDENCY"


_ALL: tuple[type[KeelError], ...] = (
    KeelError,
    InvalidInput,
    SchemaError,
    NotFound,
    AlreadyExists,
    Conflict,
    Unauthenticated,
    PermissionDenied,
    IntegrityError,
    StoreUnavailable,
    SchemaOutOfDate,
    SchemaTooNew,
    Overloaded,
    MissingDependency,
)
_BY_CODE: dict[str, type[KeelError]] = {cls.error_code: cls for cls in _ALL}


def error_class_for_code(code: str) -> type[KeelError]:
    """Return the error class for a stable ``error_code`` (``KeelError`` if unknown)."""
    return _BY_CODE.get(code, KeelError)


def require(module: str, extra: str) -> object:
    """Import an optional dependency, or raise ``MissingDependency`` naming its extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{module!r} is not installed; install it with: pip install 'keel-mlops[{extra}]'"
        ) from exc
