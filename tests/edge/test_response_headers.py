"""Security headers on every /graphql answer, and gzip for clients that accept it."""

from __future__ import annotations

import gzip

import httpx
import pytest

from edge.http.response_headers import MIN_COMPRESS_BYTES, compress_if_worthwhile
from tests.hasura_double import HasuraDouble
from tests.support.servers import RunningServer
from tests.support.tokens import mint


def test_security_headers_on_success_and_error(edge: RunningServer, hasura: HasuraDouble):
    ok = httpx.post(f"{edge.url}/graphql", json={"query": "{ products(limit: 1) { id } }"},
                    headers={"Authorization": f"Bearer {mint()}"})  # fmt: skip
    refused = httpx.post(f"{edge.url}/graphql", json={"query": "{ products { id } }"})
    for response in (ok, refused):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in response.headers  # only when the edge terminates TLS


def test_large_answers_are_gzipped_for_clients_that_accept_it(edge: RunningServer, hasura: HasuraDouble):
    query = {"query": "{ products(limit: 100) { id name sku description } }"}
    headers = {"Authorization": f"Bearer {mint()}"}
    with httpx.Client() as client:
        zipped = client.post(f"{edge.url}/graphql", json=query, headers={**headers, "Accept-Encoding": "gzip"})
        plain = client.post(f"{edge.url}/graphql", json=query, headers={**headers, "Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert int(zipped.headers["content-length"]) < int(plain.headers["content-length"])
    assert zipped.json() == plain.json()  # httpx decodes gzip
    assert "content-encoding" not in plain.headers
    assert hasura.last().header("accept-encoding") is None  # Hasura always answers plain JSON to the edge
    small = httpx.post(f"{edge.url}/graphql", json={"query": "{ __typename }"},
                       headers={**headers, "Accept-Encoding": "gzip"})  # fmt: skip
    assert "content-encoding" not in small.headers


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"gzip", True),
        (b"GZip", True),  # codings are case-insensitive
        (b"br, gzip;q=0.5", True),
        (b"gzip;q=0", False),
        (b"br, gzip ; q = 0.000", False),  # spaces around the parameter change nothing
        (b"identity", False),
        (b"*", True),
        (b"*;q=0", False),
        (b"", False),
        (None, False),
    ],
)
def test_accept_encoding_parsing(header: bytes | None, expected: bool):
    body = b'{"data":{"products":[' + b'{"id":1},' * (MIN_COMPRESS_BYTES // 9) + b"]}}"  # worth compressing
    headers: list[tuple[bytes, bytes]] = []
    sent = compress_if_worthwhile(body, headers, header)
    if expected:
        assert gzip.decompress(sent) == body
        assert headers == [(b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
    else:
        assert (sent, headers) == (body, [])
