"""Request ids: the client's when well formed, else a fresh UUID4-shaped one, unique per process and fork."""

from __future__ import annotations

import os
import re

import pytest

from edge.http.request_id import choose_request_id, new_request_id

UUID4_SHAPE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.mark.parametrize(
    ("client_value", "kept"),
    [
        (b"abc-123", True),
        (b"req:1/2+3=4@x.y_z", True),
        (b"a" * 128, True),
        (b"a" * 129, False),
        (b"", False),
        (b"has space", False),
        (b"crlf\r\nx-hasura-role: admin", False),
        (b'quote"', False),
        (b"caf\xc3\xa9", False),
        (None, False),
    ],
)
def test_client_id_is_kept_only_when_well_formed(client_value: bytes | None, kept: bool) -> None:
    chosen = choose_request_id(client_value)
    if kept:
        assert client_value is not None and chosen == client_value.decode("ascii")
    else:
        assert UUID4_SHAPE.fullmatch(chosen), chosen


def test_new_ids_are_uuid4_shaped_and_distinct() -> None:
    ids = [new_request_id() for _ in range(50_000)]
    assert all(UUID4_SHAPE.fullmatch(one) for one in ids)
    assert len(set(ids)) == len(ids)
    # The tail does not count upwards: consecutive ids are not consecutive numbers.
    tails = [int(one[-12:], 16) for one in ids[:100]]
    assert sum(1 for a, b in zip(tails, tails[1:], strict=False) if b == a + 1) < 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.close(read_end)
        os.write(write_end, " ".join(new_request_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    parent_ids = {new_request_id() for _ in range(3)}
    with os.fdopen(read_end, "rb") as pipe:
        child_ids = set(pipe.read().decode().split())
    os.waitpid(pid, 0)
    assert len(child_ids) == 3
    assert not child_ids & parent_ids
    assert {one[:24] for one in child_ids}.isdisjoint({one[:24] for one in parent_ids})
