"""Request ids the prediction log makes: 32 hex digits, never repeated, not in a fork either."""

from __future__ import annotations

import os
import re
import sys

import pytest

from keel.monitoring.prediction_serving import new_request_id, request_id_of


def test_new_ids_are_hex_and_distinct_across_pool_refills() -> None:
    ids = [new_request_id() for _ in range(2_000)]  # several pools of 256
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert request_id_of(None) not in ids


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_request_id()  # the parent's pool now holds ids the child must not hand out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its first ids and leave at once
        try:
            os.write(write, " ".join(new_request_id() for _ in range(8)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_request_id() for _ in range(300)]
    assert len(child) == 8
    assert not set(child) & set(parent)
