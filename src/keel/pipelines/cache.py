"""Cache keys: what must match for a step's earlier output to be reused.

A key is the BLAKE3 digest of the step's code digest, its parameters, the digests of its
upstream outputs and of its declared input files. The code digest hashes the function's
source *as syntax* (``ast.dump`` of the ``def`` without its decorators and docstring), so
comments, blank lines, formatting and the docstring do not invalidate the cache, while any
change to the code does. As in Prefect's ``TASK_SOURCE``, code the function calls is not
included: change a helper and pass ``no_cache=True`` (or bump a parameter).
"""

from __future__ import annotations

import ast
import inspect
import marshal
import os
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import blake3

from keel.errors import InvalidInput
from keel.pipelines.params import canonical_json

__all__ = ["CACHE_VERSION", "cache_key", "code_digest", "dataset_digest"]

CACHE_VERSION = "keel-step-cache/1"
_code_cache: dict[Any, str] = {}
_file_cache: dict[tuple[str, int, int, int], str] = {}
_lock = threading.Lock()
_RACY_NS = 2_000_000_000


def code_digest(fn: Callable[..., Any]) -> str:
    """Return the BLAKE3 digest of ``fn``'s normalised source (its bytecode if none)."""
    code = getattr(fn, "__code__", None)
    with _lock:
        found = _code_cache.get(code)
    if found is not None:
        return found
    digest = blake3.blake3(_normalised_source(fn)).hexdigest()
    with _lock:
        _code_cache[code] = digest
    return digest


def _normalised_source(fn: Callable[..., Any]) -> bytes:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        # No source (a REPL, a frozen app): the compiled code stands in for it.
        code = fn.__code__  # type: ignore[attr-defined]
        return b"bytecode:" + marshal.dumps(code.replace(co_filename="", co_firstlineno=1))
    func = next(
        (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
        None,
    )
    if func is None:  # a lambda: its whole line is the best description there is
        return b"source:" + source.encode()
    func.decorator_list = []
    body = func.body
    first = body[0] if body else None
    is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    if is_doc and isinstance(first.value.value, str):  # type: ignore[union-attr]
        func.body = body[1:] or [ast.Pass()]
    return b"ast:" + ast.dump(func, annotate_fields=False).encode()


def dataset_digest(path: str) -> str:
    """Return the BLAKE3 digest of a declared input: a file's bytes, or a folder's files.

    A folder's digest covers every file's relative path and digest, so renaming, adding or
    changing a file changes it. Files are re-hashed only when their size, modification
    time or inode changed since this process last hashed them.
    """
    from keel.store.artifacts import hash_file

    target = Path(path).expanduser()
    if target.is_file():
        return _hash_cached(target, hash_file)
    if target.is_dir():
        hasher = blake3.blake3()
        for file in sorted(p for p in target.rglob("*") if p.is_file()):
            rel = file.relative_to(target).as_posix()
            hasher.update(f"{rel}\0{_hash_cached(file, hash_file)}\n".encode())
        return hasher.hexdigest()
    raise InvalidInput(f"declared input {path!r} does not exist (a file or folder was expected)")


def _hash_cached(file: Path, hash_file: Callable[[str], tuple[str, int]]) -> str:
    stat = file.stat()
    key = (os.fspath(file.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    with _lock:
        found = _file_cache.get(key)
    if found is None:
        found = hash_file(file)[0]
        if time.time_ns() - stat.st_mtime_ns > _RACY_NS:
            with _lock:
                _file_cache[key] = found
    return found


def cache_key(
    code: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str | tuple[str, ...]],
    datasets: Mapping[str, str],
) -> str:
    """Return the cache key of a step call: a digest of everything its output depends on."""
    document = {
        "version": CACHE_VERSION,
        "code": code,
        "params": dict(params),
        "inputs": {k: list(v) if isinstance(v, tuple) else v for k, v in inputs.items()},
        "datasets": dict(datasets),
    }
    return blake3.blake3(canonical_json(document)).hexdigest()
