"""GraphiQL at the edge (``EDGE_GRAPHIQL``) over real sockets: who gets the page, its headers, its files,
and that nothing else changes (the browser itself: ``test_graphiql_browser.py``)."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from edge.content_negotiation import prefers_html
from edge.graphql_paths import GRAPHQL_PATHS
from tests.edge.conftest import EdgeFactory
from tests.support.servers import RunningServer
from tests.support.tokens import mint

# What Chromium, and Firefox and Safari, send when a person opens a URL.
BROWSER_ACCEPTS = [
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
]
# What GraphQL clients and tools send: none of them prefers text/html.
CLIENT_ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/graphql-response+json, application/json;q=0.9",
    "application/graphql-response+json, application/json, text/event-stream, multipart/mixed",
    "text/html, application/json",  # a tie is not a preference
    "application/json, text/html;q=0.9",
]
CSP_WITHOUT_HOST = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = Path(__file__).resolve().parents[2] / "edge" / "graphiql" / "assets"


def _csp(host: str) -> str:
    return CSP_WITHOUT_HOST.replace("connect-src 'self'", f"connect-src 'self' ws://{host} wss://{host}")


def _get(server: RunningServer, path: str, accept: str | None, **headers: str) -> httpx.Response:
    if accept is not None:
        headers["accept"] = accept
    return httpx.get(f"{server.url}{path}", headers=headers)


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(name, value) for name, value in response.headers.items() if name not in ("date", "x-request-id")]
    return response.status_code, headers, response.content


# --- who gets the page ---------------------------------------------------------------------------


@pytest.mark.parametrize("accept", BROWSER_ACCEPTS + ["text/html", "text/html;q=0.5, */*;q=0.1"])
def test_a_browser_accept_prefers_html(accept: str) -> None:
    assert prefers_html(accept)


@pytest.mark.parametrize("accept", CLIENT_ACCEPTS + ["text/html;q=0", "x" * 2000 + ", text/html"])
def test_no_graphql_client_accept_prefers_html(accept: str | None) -> None:
    assert not prefers_html(accept)


@pytest.mark.parametrize("path", GRAPHQL_PATHS)
def test_a_browser_gets_the_page_on_both_paths(start_edge: EdgeFactory, path: str) -> None:
    edge = start_edge(graphiql=True)
    response = _get(edge, path, BROWSER_ACCEPTS[0])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>GraphiQL - hasura-edge</title>" in response.text
    assert 'id="edge-credential"' in response.text


def test_every_other_get_is_answered_exactly_as_without_graphiql(start_edge: EdgeFactory) -> None:
    without, with_graphiql = start_edge(), start_edge(graphiql=True)
    requests = [
        ("?query={users(limit:1){id}}", {"authorization": f"Bearer {mint()}"}),  # answered by Hasura
        ("?query={users(limit:1){id}}", {}),  # refused: no CSRF header
        ("", {"graphql-require-preflight": "1"}),  # refused: no query
    ]
    for accept in CLIENT_ACCEPTS:
        for query, headers in requests:
            path = "/graphql" + query
            answered = _comparable(_get(with_graphiql, path, accept, **headers))
            assert answered == _comparable(_get(without, path, accept, **headers)), (accept, path, headers)
            assert answered[0] in (200, 400), (accept, path, headers)


def test_off_by_default_a_browser_gets_what_it_got_before(edge: RunningServer) -> None:
    response = _get(edge, "/graphql", BROWSER_ACCEPTS[0])
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "csrf-header-required"
    assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert httpx.get(f"{edge.url}/graphiql/assets/graphiql.min.js").status_code == 404


def test_the_page_is_served_even_where_get_queries_are_not(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True, allow_get=False)
    assert _get(edge, "/graphql", BROWSER_ACCEPTS[1]).status_code == 200
    assert _get(edge, "/graphql", "application/json").status_code == 405


# --- the page's headers --------------------------------------------------------------------------


def test_the_page_has_the_edges_security_headers_and_its_own_csp(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True)
    response = _get(edge, "/graphql", BROWSER_ACCEPTS[0])
    headers = response.headers
    assert headers["content-security-policy"] == _csp(f"127.0.0.1:{edge.port}")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-cache"
    assert headers["vary"] == "Accept"
    assert headers["x-request-id"]
    assert "strict-transport-security" not in headers  # plain HTTP: the edge does not terminate TLS


@pytest.mark.parametrize("host", ["evil.example;script-src *", "a b", "x:y:z", "[::1"])
def test_a_host_that_is_not_a_plain_host_stays_out_of_the_csp(start_edge: EdgeFactory, host: str) -> None:
    edge = start_edge(graphiql=True)
    response = _get(edge, "/graphql", BROWSER_ACCEPTS[0], host=host)
    assert response.headers["content-security-policy"] == CSP_WITHOUT_HOST


def test_the_page_loads_only_files_of_the_edge_and_no_inline_script(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True)
    page = _get(edge, "/graphql", BROWSER_ACCEPTS[0]).text
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources
    assert all(source.startswith("/graphiql/assets/") or source == "data:," for source in sources), sources
    assert re.findall(r"<script[^>]*>([^<]*)</script>", page) == ["", "", "", ""]  # every script has a src
    assert re.search(r"\son[a-z]+\s*=", page) is None  # no inline event handler either


# --- the files -----------------------------------------------------------------------------------


def _asset_urls(edge: RunningServer) -> list[str]:
    page = _get(edge, "/graphql", BROWSER_ACCEPTS[0]).text
    return re.findall(r'(?:src|href)="(/graphiql/assets/[^"]+)"', page)


def test_every_file_the_page_links_is_served_immutable_with_its_sha256_as_etag(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True)
    urls = _asset_urls(edge)
    assert len(urls) == 6
    for url in urls:
        name = url.split("?")[0].removeprefix("/graphiql/assets/")
        body = (ASSETS / name).read_bytes()
        response = httpx.get(f"{edge.url}{url}", headers={"accept-encoding": "identity"})
        assert response.status_code == 200, url
        assert response.content == body
        assert response.headers["content-type"].startswith("text/css" if name.endswith(".css") else "text/javascript")
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        assert url.endswith(f"?v={hashlib.sha256(body).hexdigest()[:16]}")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"


def test_a_file_is_gzipped_for_browsers_and_revalidated_with_its_etag(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True)
    url = next(url for url in _asset_urls(edge) if "graphiql.min.js" in url)
    with httpx.Client(base_url=edge.url) as client:
        raw = client.get(url, headers={"accept-encoding": "gzip, deflate, br"})
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.headers["vary"] == "Accept-Encoding"
        assert int(raw.headers["content-length"]) < len((ASSETS / "graphiql.min.js").read_bytes()) / 3
        assert raw.content == (ASSETS / "graphiql.min.js").read_bytes()  # httpx decoded it
        again = client.get(url, headers={"accept-encoding": "gzip", "if-none-match": raw.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == raw.headers["etag"]
        plain = client.get(url, headers={"accept-encoding": "identity", "if-none-match": raw.headers["etag"]})
        assert plain.status_code == 200  # another representation, another tag
        assert "content-encoding" not in plain.headers


def test_a_file_asked_for_by_another_version_is_revalidated_not_kept(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True)
    response = httpx.get(f"{edge.url}/graphiql/assets/graphiql-edge.js?v=0123456789abcdef")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == (ASSETS / "graphiql-edge.js").read_bytes()


@pytest.mark.parametrize(
    "path", ["/graphiql/assets/nothing.js", "/graphiql/assets/../settings.py", "/graphiql/assets/", "/graphiql"]
)
def test_anything_else_under_the_prefix_is_absent(start_edge: EdgeFactory, path: str) -> None:
    edge = start_edge(graphiql=True)
    response = httpx.get(f"{edge.url}{path}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "not-found"


def test_the_licences_of_the_vendored_files_are_served_with_them(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True)
    response = httpx.get(f"{edge.url}/graphiql/assets/THIRD-PARTY-NOTICES.txt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    for package in ("graphiql@", "react@", "react-dom@"):
        assert package in response.text


# --- subscriptions from the page's own origin ----------------------------------------------------


async def _upgrade_status(edge: RunningServer, origin: str, host: str | None = None) -> int:
    headers = {"Origin": origin}
    if host is not None:
        headers["Host"] = host
    try:
        ws = await connect(
            f"ws://127.0.0.1:{edge.port}/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=5,
        )
    except InvalidStatus as refused:
        return refused.response.status_code
    await ws.close()
    return 101


async def test_with_graphiql_the_edges_own_origin_may_subscribe(start_edge: EdgeFactory) -> None:
    edge = start_edge(graphiql=True, allowed_origins=["https://app.example.com"])
    own = f"127.0.0.1:{edge.port}"
    assert await _upgrade_status(edge, f"http://{own}") == 101
    assert await _upgrade_status(edge, f"https://{own}") == 101  # TLS terminated in front of the edge
    assert await _upgrade_status(edge, "https://app.example.com") == 101
    assert await _upgrade_status(edge, "https://evil.example") == 403
    assert await _upgrade_status(edge, f"http://{own}.evil.example") == 403
    assert await _upgrade_status(edge, f"file://{own}") == 403
    assert await _upgrade_status(edge, "null") == 403


async def test_without_graphiql_the_edges_own_origin_is_refused_as_before(start_edge: EdgeFactory) -> None:
    edge = start_edge(allowed_origins=["https://app.example.com"])
    assert await _upgrade_status(edge, f"http://127.0.0.1:{edge.port}") == 403


# --- the vendored files --------------------------------------------------------------------------


def _vendoring_tool() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "tools" / "vendor_graphiql.py"
    spec = importlib.util.spec_from_file_location("vendor_graphiql", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def test_the_committed_files_are_the_ones_the_vendoring_tool_pins() -> None:
    """tools/vendor_graphiql.py fetches them from npm and refuses any other sha256; this checks the tree."""
    tool = _vendoring_tool()
    pinned = {target: digest for package in tool.PACKAGES for target, digest in package.files.values()}
    assert set(pinned) == {
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    }
    for name, digest in pinned.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    notices = (ASSETS / tool.NOTICES).read_text()
    for package in tool.PACKAGES:
        assert f"{package.package}@{package.version} (" in notices


def test_the_package_data_carries_every_file_the_edge_serves() -> None:
    """The wheel, and so the image, has what edge.graphiql reads from the installed package."""
    pyproject = tomllib.loads((ASSETS.parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["edge.graphiql"]
    files = [path.relative_to(ASSETS.parent).as_posix() for path in ASSETS.iterdir()]
    assert files
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)
