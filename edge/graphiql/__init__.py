"""GraphiQL at the edge (``EDGE_GRAPHIQL``, off by default; ``docs/graphiql.md``).

A browser that opens ``/graphql`` or ``/v1/graphql`` sends an ``Accept`` that prefers ``text/html``
(:func:`edge.content_negotiation.prefers_html`); with the setting on, that GET gets the GraphiQL page
instead of a GraphQL answer. Every other request, a GET from any GraphQL client included, is answered
exactly as without it.

The page and its files come from this package: GraphiQL, React and ReactDOM as published on the npm
registry (``assets/``, vendored by ``tools/vendor_graphiql.py``, licences in
``assets/THIRD-PARTY-NOTICES.txt``), and the page's own script and styles (``graphiql-edge.js``,
``graphiql-edge.css``). Nothing is loaded from anywhere else, which the page's Content-Security-Policy
enforces: scripts and styles from the edge only (no inline script), fonts and images from the edge or
``data:`` URLs (GraphiQL's stylesheet embeds its fonts), and requests to the edge itself only (``'self'``,
plus ``ws:``/``wss:`` to the host the browser asked for, for subscriptions).

Files are served under ``/graphiql/assets/`` (``edge.routes.graphiql``) with a strong ``ETag`` (the
sha256 of the bytes sent), gzip when the browser accepts it, and cached for a year as immutable when the
URL carries the file's version (``?v=``, which the page always writes): a new release of the edge changes
the version, so a browser never keeps a stale file.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from importlib import resources
from typing import Final

from edge.content_negotiation import prefers_html
from edge.http.response_headers import security_headers

__all__ = ["ASSETS_PATH", "Asset", "GraphiQL"]

ASSETS_PATH: Final = "/graphiql/assets/"

_CONTENT_TYPES: Final = {
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".txt": b"text/plain; charset=utf-8",
}
# The page loads these, in this order (React before ReactDOM before GraphiQL before the page's own script).
_STYLES: Final = ("graphiql.min.css", "graphiql-edge.css")
_SCRIPTS: Final = ("react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql-edge.js")
_IMMUTABLE: Final = b"public, max-age=31536000, immutable"
_REVALIDATE: Final = b"no-cache"
_MIN_GZIP_BYTES: Final = 1400
# A Host header that can stand in a CSP source expression as it is: a name, IPv4 or [IPv6], and a port.
_HOST: Final = re.compile(rb"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_REMEMBERED_ACCEPTS: Final = 256

_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>GraphiQL - hasura-edge</title>
{styles}
{scripts}
</head>
<body>
<form id="edge-credentials" class="edge-bar" autocomplete="off">
<span class="edge-title">hasura-edge</span>
<label for="edge-credential-kind">Send</label>
<select id="edge-credential-kind">
<option value="bearer">Authorization: Bearer</option>
<option value="api-key">X-API-Key</option>
</select>
<input id="edge-credential" type="password" placeholder="paste a token or an API key (none: anonymous)"
 spellcheck="false" aria-label="Token or API key">
<button type="submit" id="edge-credential-apply">Use</button>
<button type="button" id="edge-credential-clear">Clear</button>
<span id="edge-credential-state" role="status">anonymous</span>
</form>
<div id="edge-notice" role="alert" hidden></div>
<div id="graphiql"><p class="edge-loading">Loading GraphiQL...</p></div>
<noscript>GraphiQL needs JavaScript.</noscript>
</body>
</html>
"""


class Asset:
    """One file under ``/graphiql/assets/``: its bytes, gzipped bytes (None when not worth it), and validators."""

    __slots__ = ("body", "content_type", "etag", "gzip_etag", "gzipped", "version")

    def __init__(self, name: str, body: bytes) -> None:
        digest = hashlib.sha256(body).hexdigest()
        self.body = body
        self.content_type = _CONTENT_TYPES[name[name.rfind(".") :]]
        self.version = digest[:16]
        self.etag = f'"{digest[:32]}"'.encode("ascii")
        compressed = gzip.compress(body, compresslevel=6, mtime=0) if len(body) >= _MIN_GZIP_BYTES else None
        useful = compressed is not None and len(compressed) < len(body)
        self.gzipped = compressed if useful else None
        self.gzip_etag = f'"{digest[:32]}-gzip"'.encode("ascii")


class GraphiQL:
    """The page and its files, read from the package once (``tls``: the edge terminates TLS, so HSTS)."""

    def __init__(self, *, tls: bool) -> None:
        folder = resources.files(__name__).joinpath("assets")
        self.assets: dict[str, Asset] = {
            entry.name: Asset(entry.name, entry.read_bytes())
            for entry in folder.iterdir()
            if entry.is_file() and entry.name[entry.name.rfind(".") :] in _CONTENT_TYPES
        }
        missing = [name for name in (*_STYLES, *_SCRIPTS) if name not in self.assets]
        if missing:
            raise RuntimeError(f"GraphiQL's files are missing from the package: {', '.join(missing)}")
        styles = "\n".join(f'<link rel="stylesheet" href="{self.url(name)}">' for name in _STYLES)
        scripts = "\n".join(f'<script src="{self.url(name)}" defer></script>' for name in _SCRIPTS)
        self.page = _PAGE.format(styles=styles, scripts=scripts).encode("utf-8")
        # Everything but the CSP, which names the request's host: the page's own replaces the edge's.
        shared = [header for header in security_headers(tls=tls) if header[0] != b"content-security-policy"]
        self.page_headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"cache-control", _REVALIDATE),
            (b"vary", b"Accept"),
            *shared,
        ]
        self.asset_headers = security_headers(tls=tls)
        self._wanted: dict[str | None, bool] = {}

    def url(self, name: str) -> str:
        """The versioned URL the page loads ``name`` from."""
        return f"{ASSETS_PATH}{name}?v={self.assets[name].version}"

    def wanted(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """Whether a GET with these headers is a browser asking for a page (``Accept`` prefers text/html)."""
        values = [value for name, value in headers if name == b"accept"]
        accept = b",".join(values).decode("latin-1") if values else None
        remembered = self._wanted.get(accept)
        if remembered is None:
            remembered = prefers_html(accept)
            if len(self._wanted) >= _REMEMBERED_ACCEPTS:
                self._wanted.clear()  # bounded: a client inventing values only refills it
            self._wanted[accept] = remembered
        return remembered

    def page_response(self, host: bytes | None, request_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """The page's headers (with its CSP for ``host``, the request's Host header) and body."""
        return [
            *self.page_headers,
            (b"content-security-policy", content_security_policy(host)),
            (b"x-request-id", request_id.encode("ascii")),
        ], self.page

    def asset_response(
        self, name: str, version: str | None, if_none_match: str | None, accept_encoding: str | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """``(status, headers, body)`` for ``/graphiql/assets/<name>?v=<version>``; None: no such file."""
        asset = self.assets.get(name)
        if asset is None:
            return None
        gzipped = asset.gzipped is not None and _accepts_gzip(accept_encoding)
        etag = asset.gzip_etag if gzipped else asset.etag
        headers = [
            (b"cache-control", _IMMUTABLE if version == asset.version else _REVALIDATE),
            (b"etag", etag),
            (b"vary", b"Accept-Encoding"),
            *self.asset_headers,
        ]
        if if_none_match is not None and _matches(if_none_match, etag):
            return 304, headers, b""
        headers.append((b"content-type", asset.content_type))
        if gzipped and asset.gzipped is not None:
            headers.append((b"content-encoding", b"gzip"))
            return 200, headers, asset.gzipped
        return 200, headers, asset.body


def content_security_policy(host: bytes | None) -> bytes:
    """The page's CSP: what GraphiQL needs from the edge, and nothing from anywhere else."""
    connect = b"'self'"
    if host is not None and _HOST.fullmatch(host):
        # 'self' covers same-origin ws:/wss: in CSP Level 3; named too for browsers that predate it.
        connect += b" ws://" + host + b" wss://" + host
    return (
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
        b"connect-src " + connect + b"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _accepts_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _matches(if_none_match: str, etag: bytes) -> bool:
    """RFC 9110 §13.1.2: weak comparison against each listed tag, or ``*``."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.decode("ascii")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))
