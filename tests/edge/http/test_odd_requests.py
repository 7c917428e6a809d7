"""Odd HTTP/1.1 requests (``cases.py``) against the edge's HTTP layer, h11 and nginx.

The table's intended edge outcome is the pivot:

- ``test_edge_meets_the_intended_outcome``: what the edge's layer handed to its handlers (method,
  target, headers, body, route) and how it answered (refusal status, ``100 Continue``, connection
  closed or kept) equal the intended outcome exactly;
- ``test_h11_differs_only_as_written`` / ``test_nginx_differs_only_as_written``: the references
  parse the same bytes; every aspect in which they differ from the intended outcome must be
  written in the table with its reason, and every written difference must still occur.

So the edge is compared with both references through the table: a difference between the edge
and h11 or nginx that the table does not state fails one of the tests. Header names compare
case-insensitively; for nginx the proxy headers it sets itself (``NGINX_REWRITTEN``) are left
out on both sides.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from tests.edge.http import wire
from tests.edge.http.cases import CASES, MAX_HEADER_BYTES, Case
from tests.edge.http.outcome import Outcome
from tests.edge.http.reference_h11 import parse_with_h11
from tests.edge.http.reference_nginx import NGINX_REWRITTEN


def _params(*, refusals_only: bool = False) -> list[Any]:
    return [pytest.param(case, id=case.id) for case in CASES if case.edge.refusal is not None or not refusals_only]


def _fields(headers: tuple[tuple[bytes, bytes], ...], ignore: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in headers if name.lower() not in ignore]


def differences(intended: Outcome, reference: Outcome, *, ignore: frozenset[bytes] = frozenset()) -> dict[str, str]:
    """The aspects in which a reference's outcome differs from the intended one, each with what differs."""
    found: dict[str, str] = {}
    if intended.verdict != reference.verdict:
        found["verdict"] = f"{intended.verdict} (edge) vs {reference.verdict}"
    elif intended.refusal != reference.refusal:
        found["status"] = f"{intended.refusal} (edge) vs {reference.refusal}"
    if len(intended.requests) != len(reference.requests):
        found["count"] = f"{len(intended.requests)} (edge) vs {len(reference.requests)}"
    for mine, theirs in zip(intended.requests, reference.requests, strict=False):
        for aspect, edge_value, their_value in (
            ("method", mine.method, theirs.method),
            ("target", mine.target, theirs.target),
            ("headers", _fields(mine.headers, ignore), _fields(theirs.headers, ignore)),
            ("body", mine.body, theirs.body),
        ):
            if edge_value != their_value:
                found.setdefault(aspect, f"{edge_value!r} (edge) vs {their_value!r}")
    return found


def _unwritten(found: dict[str, str], written: Mapping[str, str]) -> list[str]:
    """Differences the table does not write, and written ones that no longer occur."""
    problems = [
        f"{aspect} differs, not written in the table: {detail}"
        for aspect, detail in found.items()
        if aspect not in written
    ]
    problems += [
        f"written difference in {aspect} no longer occurs: {reason}"
        for aspect, reason in written.items()
        if aspect not in found
    ]
    return problems


def observe_edge(address: tuple[str, int], case: Case) -> tuple[Outcome, list[wire.Answer]]:
    finals = len(case.edge.requests) + (case.edge.refusal is not None)
    answers, closes = wire.converse_keeping_open(address, case.writes, finals)
    return wire.outcome_of(answers, ended=closes is not None, closes=closes), answers


@pytest.mark.parametrize("case", _params())
def test_edge_meets_the_intended_outcome(case: Case, edge_address: tuple[str, int]) -> None:
    observed, _ = observe_edge(edge_address, case)
    if case.edge.closes is None:  # not specified for this case
        observed = dataclasses.replace(observed, closes=None)
    assert observed == case.edge


@pytest.mark.parametrize("case", _params(refusals_only=True))
def test_edge_refusal_is_graphql_shaped(case: Case, edge_address: tuple[str, int]) -> None:
    _, answers = observe_edge(edge_address, case)
    refusal = next(answer for answer in answers if answer.status >= 200 and answer.handed() is None)
    assert refusal.status == case.edge.refusal
    content_type = dict(refusal.headers).get(b"content-type", b"")
    assert content_type.partition(b";")[0].strip() == b"application/json"
    (error,) = orjson.loads(refusal.body)["errors"]
    assert isinstance(error["message"], str)
    assert isinstance(error["extensions"]["code"], str)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_h11_differs_only_as_written(case: Case) -> None:
    reference = parse_with_h11(case.writes, max_header_bytes=MAX_HEADER_BYTES)
    assert _unwritten(differences(case.edge, reference), case.h11) == []


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_nginx_differs_only_as_written(case: Case, nginx_address: tuple[str, int]) -> None:
    answers, ended = wire.converse_half_closed(nginx_address, case.writes)
    reference = wire.outcome_of(answers, ended=ended)
    assert _unwritten(differences(case.edge, reference, ignore=NGINX_REWRITTEN), case.nginx) == []
