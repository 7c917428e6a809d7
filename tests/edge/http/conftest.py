"""The servers the table runs against, started once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.edge.conftest import edge_settings
from tests.edge.http.cases import BODY_LIMIT, MAX_HEADER_BYTES, MAX_URL_BYTES
from tests.edge.http.reference_nginx import nginx_binary, serving_nginx
from tests.edge.http.sut import serving_echo


@pytest.fixture(scope="module")
def edge_address() -> Iterator[tuple[str, int]]:
    settings = edge_settings(
        "http://127.0.0.1:9",  # never contacted: the echo handlers stand in for the pipeline
        max_body_bytes=BODY_LIMIT,
        max_header_bytes=MAX_HEADER_BYTES,
        max_url_bytes=MAX_URL_BYTES,
        # Only a case the layer fails waits for it: a stall then ends in a 408 sooner.
        request_deadline_seconds=2.0,
    )
    with serving_echo(settings) as address:
        yield address


@pytest.fixture(scope="module")
def nginx_address() -> Iterator[tuple[str, int]]:
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    with serving_nginx(binary, body_limit=BODY_LIMIT) as address:
        yield address
