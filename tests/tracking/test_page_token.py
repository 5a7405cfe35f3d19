"""Search page tokens: what Keel gives round-trips; a forged or hostile one is bad input."""

from __future__ import annotations

import base64

import orjson
import pytest

from keel.errors import InvalidInput
from keel.tracking.search import MAX_PAGE_OFFSET, decode_page_token, encode_page_token


def _token(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


@pytest.mark.parametrize("offset", [0, 1, 1000, MAX_PAGE_OFFSET])
def test_a_token_keel_gave_round_trips(offset: int) -> None:
    assert decode_page_token(encode_page_token(offset)) == offset
    assert decode_page_token(None) == 0


@pytest.mark.parametrize(
    "token",
    [
        _token({"offset": MAX_PAGE_OFFSET + 1}),
        _token({"offset": 2**63 - 1}),
        _token({"offset": -1}),
        _token({"offset": True}),
        _token({"offset": 1.5}),
        _token({"offset": "3"}),
        _token({"other": 3}),
        _token([3]),
        "not base64 !!",
        "A" * 1001,
        base64.urlsafe_b64encode(b'{"offset": ' + b"9" * 400 + b"}").decode(),
    ],
)
def test_a_hostile_token_is_invalid_input(token: str) -> None:
    with pytest.raises(InvalidInput, match="invalid page token"):
        decode_page_token(token)


def test_a_search_with_a_forged_offset_is_refused(keel_env: object) -> None:
    import keel

    keel.create_experiment("e")
    with pytest.raises(InvalidInput, match="invalid page token"):
        keel.search_runs(experiment="e", page_token=_token({"offset": 2**63 - 1}))
