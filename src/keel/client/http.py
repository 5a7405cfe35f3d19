"""The HTTP session every REST store shares: JSON in and out, Keel errors back.

A server error body ``{"error_code", "message"}`` is raised again as the same
``KeelError`` subclass the server raised, so remote and local callers see identical
errors. Floats that JSON cannot carry (NaN, ±inf) travel as the strings "NaN",
"Infinity" and "-Infinity", both ways.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson

from keel.errors import KeelError, StoreUnavailable, error_class_for_code

__all__ = ["KeelHttp"]


class KeelHttp:
    """A connection pool to one Keel server."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "keel-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            body = orjson.loads(response.read())
            code, message = body["error_code"], body["message"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise KeelError(
                f"Keel server at {self.base_url} answered {response.status_code}: "
                f"{response.text[:200]}"
            ) from None
        raise error_class_for_code(code)(message)

    def _unreachable(self, exc: httpx.HTTPError) -> StoreUnavailable:
        return StoreUnavailable(f"Keel server at {self.base_url} is unreachable: {exc}")

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send a request and return its decoded JSON body (None for an empty body)."""
        if json is not None:
            content = orjson.dumps(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        try:
            response = self._client.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        self._raise_for(response)
        if not response.content:
            return None
        return orjson.loads(response.content)

    @contextmanager
    def stream(
        self, method: str, path: str, *, content: Any = None, headers: dict[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """Yield a streamed response (errors raised before the body is read)."""
        try:
            with self._client.stream(method, path, content=content, headers=headers) as response:
                self._raise_for(response)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
