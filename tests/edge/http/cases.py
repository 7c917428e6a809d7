"""The table: odd HTTP/1.1 requests, the edge's intended outcome for each, and every intended difference.

One row per case: an id, the raw bytes (one write, or several: each later write is sent once an
answer came, for ``Expect: 100-continue``), the edge's intended :class:`Outcome`, and each known
difference from h11 and from nginx, keyed by aspect (``verdict``, ``status``, ``count``,
``method``, ``target``, ``headers``, ``body``; see ``test_odd_requests``) with a short reason.

The intended outcomes (the specification of the edge's HTTP/1.1 layer):

- refuse (400, GraphQL-shaped body, connection closed) anything ambiguous about framing: CL with
  TE, TE that is not exactly ``chunked``, a duplicate or invalid CL, obs-fold, bare LF or CR,
  NUL/CTL where not allowed, whitespace before the colon, invalid chunk syntax or an overflowing
  chunk size, a missing Host or more than one Host in HTTP/1.1 (RFC 9112 §3.2), HTTP/0.9, an
  HTTP/2 preface; methods llhttp does not know are refused too;
- header names are handed over in lower case, values with leading and trailing SP/HTAB removed
  (RFC 9110 §5.5);
- trailer fields are dropped (never headers); they still count toward the header-size limit;
- a declared Content-Length over the body limit is answered 413 at once; chunked bodies are
  counted while reading (413 past the limit);
- absolute-form targets are accepted and routed by their path (RFC 9112 §3.2.2); a fragment
  (``#``) is not part of a request-target and is refused;
- ``Expect: 100-continue`` gets ``100 Continue`` and then the answer (not in HTTP/1.0, RFC 9110
  §10.1.1); any other expectation gets 417;
- pipelined requests are answered in order; nothing after a ``Connection: close`` request is;
- HTTP/1.0 closes after the response unless it asked for ``Connection: keep-alive``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tests.edge.http.outcome import Handed, Outcome

__all__ = ["BODY_LIMIT", "CASES", "Case", "MAX_HEADER_BYTES"]

BODY_LIMIT = 65_536  # the edge's max_body_bytes for this table (nginx: client_max_body_size)
MAX_HEADER_BYTES = 32_768  # the edge's default max_header_bytes (h11: max_incomplete_event_size)
MAX_URL_BYTES = 8_192  # the edge's default max_url_bytes

HOST = b"Host: edge"
BODY = b"hello"

# --- why h11 and nginx differ where they do ----------------------------------------------------
H11_TE_OVER_CL = "h11 lets Transfer-Encoding override Content-Length (RFC 9112 §6.3 allows it)"
H11_501 = "h11 answers a transfer coding it does not support with 501 (RFC 9112 §6.1)"
NGINX_501 = "nginx answers a transfer coding it does not support with 501 (RFC 9112 §6.1)"
H11_OBS_FOLD = "h11 unfolds obs-fold into one value (RFC 9112 §5.2 allows it)"
H11_BARE_LF = "h11 accepts bare LF line endings (RFC 9112 §2.2 allows it)"
NGINX_BARE_LF = "nginx accepts bare LF line endings (RFC 9112 §2.2 allows it)"
H11_CL_LIST = "h11 accepts repeated equal Content-Length values (RFC 9110 §8.6 allows it)"
H11_NO_BODY_LIMIT = "h11 has no body limit: it waits for the body"
NGINX_SP_ONLY = "nginx strips only SP around a value, not HTAB"
H11_CTL = "h11 accepts control bytes other than NUL, CR and LF in a value"
NGINX_CTL = "nginx accepts control bytes other than NUL, CR and LF in a value"
H11_ANY_METHOD = "h11 accepts any token as a method"
NGINX_ANY_METHOD = "nginx accepts any upper-case method"
H11_ABSOLUTE = "h11 hands an absolute-form target over as sent"
H11_EXPECT = "h11 leaves expectations to the application"
NGINX_EXPECT = "nginx ignores expectations other than 100-continue"
H11_CHUNK_SPACE = "h11 accepts whitespace after a chunk size"
NGINX_CHUNK_SPACE = "nginx accepts whitespace after a chunk size"
H11_CHUNK_SIZE = "h11 has no bound on a chunk size: it waits for that many bytes"
# The reference accepts what the edge refuses, or the other way round: so the number of requests differs too.
OTHER_VERDICT = ("verdict", "count")


@dataclass(frozen=True)
class Case:
    id: str
    writes: tuple[bytes, ...]
    edge: Outcome
    h11: Mapping[str, str] = field(default_factory=dict)
    nginx: Mapping[str, str] = field(default_factory=dict)


def case(
    id: str,
    writes: bytes | Sequence[bytes],
    edge: Outcome,
    *,
    h11: Mapping[str, str] | None = None,
    nginx: Mapping[str, str] | None = None,
) -> Case:
    return Case(id, (writes,) if isinstance(writes, bytes) else tuple(writes), edge, h11 or {}, nginx or {})


# --- building requests and what the edge hands over ------------------------------------------------


def request(method: bytes, target: bytes, *fields: bytes, body: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return method + b" " + target + b" " + version + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def chunked(*chunks: bytes, trailers: Sequence[bytes] = ()) -> bytes:
    """A chunked body: each chunk, the last chunk, the trailer fields."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    return body + b"0\r\n" + b"".join(t + b"\r\n" for t in trailers) + b"\r\n"


def normalised(fields: Sequence[bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """Header lines as the edge hands them over: lower-case name, value without surrounding SP/HTAB."""
    pairs = (line.partition(b":") for line in fields)
    return tuple((name.lower(), value.strip(b" \t")) for name, _, value in pairs)


def route_of(target: bytes) -> str:
    return "graphql" if target.partition(b"?")[0] == b"/graphql" else "other"


def handed(method: bytes, target: bytes, *fields: bytes, body: bytes = b"", route: str | None = None) -> Handed:
    return Handed(method, target, normalised(fields), body, route or route_of(target))


def accepted(*requests: Handed, closes: bool = False, continues: int = 0) -> Outcome:
    return Outcome(requests, closes=closes, continues=continues)


def refused(status: int = 400, *, after: Sequence[Handed] = ()) -> Outcome:
    """Refused, and the connection closed (``after``: pipelined requests answered before the refusal)."""
    return Outcome(tuple(after), refusal=status, closes=True)


REFUSED = refused()


def post(target: bytes, *fields: bytes, body: bytes = BODY, version: bytes = b"HTTP/1.1") -> bytes:
    return request(b"POST", target, HOST, *fields, body=body, version=version)


def get(target: bytes, *fields: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return request(b"GET", target, HOST, *fields, version=version)


def posted(target: bytes, *fields: bytes, body: bytes = BODY, route: str | None = None) -> Handed:
    return handed(b"POST", target, HOST, *fields, body=body, route=route)


def got(target: bytes, *fields: bytes, route: str | None = None) -> Handed:
    return handed(b"GET", target, HOST, *fields, route=route)


CL5 = b"Content-Length: 5"
TE = b"Transfer-Encoding: chunked"
CHUNKED_BODY = chunked(b"hel", b"lo")
LONG_FIELDS = tuple(b"X-Long-%d: %s" % (i, b"a" * 7000) for i in range(3))  # 21 KB, lines under nginx's 8 KB
LONG_TRAILERS = tuple(b"X-Trailer-%d: %s" % (i, b"b" * 7000) for i in range(3))
PIPELINE_THREE = get(b"/graphql?query=1") + post(b"/other", CL5) + post(b"/graphql", TE, body=CHUNKED_BODY)

CASES: tuple[Case, ...] = (
    # --- ordinary requests, both routes --------------------------------------------------------
    case("get-graphql", get(b"/graphql?query=%7Ba%7D"), accepted(got(b"/graphql?query=%7Ba%7D"))),
    case("post-graphql-content-length", post(b"/graphql", CL5), accepted(posted(b"/graphql", CL5))),
    case("post-other-content-length", post(b"/other", CL5), accepted(posted(b"/other", CL5))),
    case(
        "post-graphql-chunked",
        post(b"/graphql", TE, body=CHUNKED_BODY),
        accepted(posted(b"/graphql", TE)),
    ),
    case("post-other-chunked", post(b"/other", TE, body=CHUNKED_BODY), accepted(posted(b"/other", TE))),
    case(
        "patch-other",
        request(b"PATCH", b"/other", HOST, CL5, body=BODY),
        accepted(handed(b"PATCH", b"/other", HOST, CL5, body=BODY)),
    ),
    case(
        "get-with-body",
        request(b"GET", b"/graphql", HOST, CL5, body=BODY),
        accepted(handed(b"GET", b"/graphql", HOST, CL5, body=BODY)),
    ),
    # --- Content-Length with Transfer-Encoding, and obfuscated Transfer-Encoding ----------------
    case(
        "cl-and-te-graphql",
        post(b"/graphql", CL5, TE, body=CHUNKED_BODY),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_TE_OVER_CL),
    ),
    case(
        "te-and-cl-other",
        post(b"/other", TE, CL5, body=CHUNKED_BODY),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_TE_OVER_CL),
    ),
    case(
        "te-chunked-identity",
        post(b"/graphql", b"Transfer-Encoding: chunked, identity", body=CHUNKED_BODY),
        REFUSED,
        h11={"status": H11_501},
        nginx={"status": NGINX_501},
    ),
    case(
        "te-gzip-chunked",
        post(b"/graphql", b"Transfer-Encoding: gzip, chunked", body=CHUNKED_BODY),
        REFUSED,
        h11={"status": H11_501},
        nginx={"status": NGINX_501},
    ),
    case(
        "te-identity",
        post(b"/graphql", b"Transfer-Encoding: identity", CL5),
        REFUSED,
        h11={"status": H11_501},
        nginx={"status": NGINX_501},
    ),
    case(
        "te-xchunked",
        post(b"/graphql", b"Transfer-Encoding: xchunked", body=CHUNKED_BODY),
        REFUSED,
        h11={"status": H11_501},
        nginx={"status": NGINX_501},
    ),
    case(
        "te-chunkedx",
        post(b"/graphql", b"Transfer-Encoding: chunkedx", body=CHUNKED_BODY),
        REFUSED,
        h11={"status": H11_501},
        nginx={"status": NGINX_501},
    ),
    case(
        "te-empty",
        post(b"/graphql", b"Transfer-Encoding:", CL5),
        REFUSED,
        h11={"status": H11_501},
        nginx={"status": NGINX_501},
    ),
    case("te-twice", post(b"/graphql", TE, TE, body=CHUNKED_BODY), REFUSED, h11={"status": H11_501}),
    case(
        "te-identity-then-chunked",
        post(b"/graphql", b"Transfer-Encoding: identity", TE, body=CHUNKED_BODY),
        REFUSED,
        h11={"status": H11_501},
    ),
    case(
        "te-in-http10",
        post(b"/other", TE, body=CHUNKED_BODY, version=b"HTTP/1.0"),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, "h11 decodes chunked HTTP/1.0 bodies (RFC 9112 §6.1: faulty framing)"),
    ),
    case(
        "te-extra-leading-space",
        post(b"/graphql", b"Transfer-Encoding:    chunked", body=CHUNKED_BODY),
        accepted(posted(b"/graphql", TE)),
    ),
    case(
        "te-tab-before-value",
        post(b"/graphql", b"Transfer-Encoding:\tchunked", body=CHUNKED_BODY),
        accepted(posted(b"/graphql", TE)),
        nginx=dict.fromkeys(
            OTHER_VERDICT, "nginx skips only SP before a value: '\\tchunked' is an unknown coding to it"
        ),
    ),
    case(
        "te-trailing-space",
        post(b"/other", b"Transfer-Encoding: chunked  ", body=CHUNKED_BODY),
        accepted(posted(b"/other", TE)),
    ),
    case(
        "te-value-upper-case",
        post(b"/graphql", b"Transfer-Encoding: CHUNKED", body=CHUNKED_BODY),
        accepted(posted(b"/graphql", b"Transfer-Encoding: CHUNKED")),
        h11={"headers": "h11 lower-cases the Transfer-Encoding value"},
    ),
    case(
        "te-name-upper-case",
        post(b"/graphql", b"TRANSFER-ENCODING: chunked", body=CHUNKED_BODY),
        accepted(posted(b"/graphql", TE)),
    ),
    case(
        "te-line-starts-with-space",
        request(b"POST", b"/graphql", b" Transfer-Encoding: chunked", HOST, body=CHUNKED_BODY),
        REFUSED,
    ),
    case(
        "te-folded-into-previous",
        post(b"/graphql", b"X-Foo: a\r\n Transfer-Encoding: chunked", CL5),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_OBS_FOLD),
    ),
    case("te-space-before-colon", post(b"/graphql", b"Transfer-Encoding : chunked", body=CHUNKED_BODY), REFUSED),
    case("te-newline-before-colon", post(b"/graphql", b"Transfer-Encoding\r\n: chunked", body=CHUNKED_BODY), REFUSED),
    # --- Content-Length ----------------------------------------------------------------------------
    case("cl-duplicate-equal", post(b"/graphql", CL5, CL5), REFUSED, h11=dict.fromkeys(OTHER_VERDICT, H11_CL_LIST)),
    case("cl-duplicate-conflicting", post(b"/graphql", CL5, b"Content-Length: 6", body=b"hello!"), REFUSED),
    case("cl-list", post(b"/graphql", b"Content-Length: 5, 5"), REFUSED, h11=dict.fromkeys(OTHER_VERDICT, H11_CL_LIST)),
    case("cl-plus", post(b"/graphql", b"Content-Length: +5"), REFUSED),
    case("cl-hex", post(b"/graphql", b"Content-Length: 0x5"), REFUSED),
    case("cl-negative", post(b"/graphql", b"Content-Length: -5"), REFUSED),
    case("cl-empty", post(b"/graphql", b"Content-Length:"), REFUSED),
    case("cl-inner-space", post(b"/graphql", b"Content-Length: 5 5"), REFUSED),
    case(
        "cl-overflow-64-bit",
        post(b"/graphql", b"Content-Length: 18446744073709551621"),
        REFUSED,
        h11={"verdict": "h11 reads Content-Length as an unbounded integer: it waits for the body"},
    ),
    case("cl-overflow-long", post(b"/graphql", b"Content-Length: " + b"9" * 40), REFUSED),
    case(
        "cl-leading-zeros",
        post(b"/graphql", b"Content-Length: 005"),
        accepted(posted(b"/graphql", b"Content-Length: 005")),
    ),
    case(
        "cl-surrounding-whitespace",
        post(b"/other", b"Content-Length: \t5 \t"),
        accepted(posted(b"/other", CL5)),
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx keeps the HTAB around the value: an invalid Content-Length to it"),
    ),
    case(
        "cl-shorter-than-body",
        post(b"/graphql", b"Content-Length: 3", body=b"hello\r\n\r\n"),
        refused(after=[posted(b"/graphql", b"Content-Length: 3", body=b"hel")]),
    ),
    case(
        "cl-over-body-limit-graphql",
        post(b"/graphql", b"Content-Length: %d" % (BODY_LIMIT + 1)),
        refused(413),
        h11={"verdict": H11_NO_BODY_LIMIT},
    ),
    case(
        "cl-over-body-limit-other",
        post(b"/other", b"Content-Length: 1000000000"),
        refused(413),
        h11={"verdict": H11_NO_BODY_LIMIT},
    ),
    # --- obs-fold, line endings, whitespace -----------------------------------------------------
    case(
        "obs-fold-space", get(b"/graphql", b"X-Foo: a", b" b"), REFUSED, h11=dict.fromkeys(OTHER_VERDICT, H11_OBS_FOLD)
    ),
    case("obs-fold-tab", get(b"/other", b"X-Foo: a", b"\tb"), REFUSED, h11=dict.fromkeys(OTHER_VERDICT, H11_OBS_FOLD)),
    case(
        "bare-lf-everywhere",
        b"GET /graphql HTTP/1.1\nHost: edge\nX-Foo: a\n\n",
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_BARE_LF),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_BARE_LF),
    ),
    case(
        "bare-lf-request-line",
        b"GET /graphql HTTP/1.1\nHost: edge\r\n\r\n",
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_BARE_LF),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_BARE_LF),
    ),
    case(
        "bare-lf-one-field",
        b"GET /graphql HTTP/1.1\r\nHost: edge\nX-Foo: a\r\n\r\n",
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_BARE_LF),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_BARE_LF),
    ),
    case(
        "bare-lf-end-of-head",
        b"GET /graphql HTTP/1.1\r\nHost: edge\r\n\n",
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_BARE_LF),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_BARE_LF),
    ),
    case("bare-cr-field", get(b"/graphql", b"X-Foo: a\rX-Bar: b"), REFUSED),
    case(
        "leading-empty-line",
        b"\r\n" + get(b"/graphql"),
        accepted(got(b"/graphql")),
        h11=dict.fromkeys(
            OTHER_VERDICT, "h11 does not skip an empty line before the request line (RFC 9112 §2.2: SHOULD)"
        ),
    ),
    case(
        "value-trailing-whitespace",
        get(b"/graphql", b"X-Foo: bar \t "),
        accepted(got(b"/graphql", b"x-foo: bar")),
        nginx={"headers": NGINX_SP_ONLY},
    ),
    case(
        "value-trailing-whitespace-other",
        get(b"/other", b"X-Foo: bar\t"),
        accepted(got(b"/other", b"x-foo: bar")),
        nginx={"headers": NGINX_SP_ONLY},
    ),
    case(
        "value-leading-whitespace",
        get(b"/graphql", b"X-Foo: \t  bar"),
        accepted(got(b"/graphql", b"x-foo: bar")),
        nginx={"headers": NGINX_SP_ONLY},
    ),
    case("value-inner-whitespace", get(b"/graphql", b"X-Foo: a \t b"), accepted(got(b"/graphql", b"x-foo: a \t b"))),
    case(
        "value-empty",
        get(b"/graphql", b"X-Foo:", b"X-Bar:  \t "),
        accepted(got(b"/graphql", b"x-foo:", b"x-bar:")),
        nginx={"headers": NGINX_SP_ONLY},
    ),
    case("space-before-colon", get(b"/graphql", b"X-Foo : bar"), REFUSED),
    case("tab-before-colon", get(b"/other", b"X-Foo\t: bar"), REFUSED),
    case("name-empty", get(b"/graphql", b": bar"), REFUSED),
    case("line-without-colon", get(b"/graphql", b"X-Foo bar"), REFUSED),
    case(
        "name-separator",
        get(b"/graphql", b"X(Foo): bar"),
        REFUSED,
        nginx=dict.fromkeys(
            OTHER_VERDICT, "nginx drops a field with an invalid name (ignore_invalid_headers) and serves the rest"
        ),
    ),
    case(
        "name-underscore",
        get(b"/graphql", b"X_Hasura_Role: admin"),
        accepted(got(b"/graphql", b"x_hasura_role: admin")),
        nginx={"headers": "nginx drops field names with underscores (underscores_in_headers off)"},
    ),
    # --- NUL and other control bytes --------------------------------------------------------------
    case("nul-in-name", get(b"/graphql", b"X-F\x00oo: bar"), REFUSED),
    case("ctl-in-name", get(b"/graphql", b"X-F\x01oo: bar"), REFUSED),
    case("nul-in-value", get(b"/graphql", b"X-Foo: b\x00ar"), REFUSED),
    case(
        "ctl-in-value",
        get(b"/graphql", b"X-Foo: b\x01ar"),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_CTL),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_CTL),
    ),
    case(
        "del-in-value",
        get(b"/other", b"X-Foo: b\x7far"),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_CTL),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_CTL),
    ),
    case("obs-text-in-value", get(b"/graphql", b"X-Foo: caf\xe9"), accepted(got(b"/graphql", b"x-foo: caf\xe9"))),
    case("nul-in-target", get(b"/graph\x00ql"), REFUSED),
    case("ctl-in-target", get(b"/graph\x01ql"), REFUSED),
    case("del-in-target", get(b"/graph\x7fql"), REFUSED),
    case("space-in-target", get(b"/graph ql"), REFUSED),
    # --- chunked bodies ---------------------------------------------------------------------------
    case(
        "chunk-extension",
        post(b"/graphql", TE, body=b"5;name=value\r\nhello\r\n0;last\r\n\r\n"),
        accepted(posted(b"/graphql", TE)),
    ),
    case(
        "chunk-extension-quoted",
        post(b"/other", TE, body=b'5;name="a b"\r\nhello\r\n0\r\n\r\n'),
        accepted(posted(b"/other", TE)),
    ),
    case(
        "chunk-size-upper-hex",
        post(b"/graphql", TE, body=b"A\r\n0123456789\r\n0\r\n\r\n"),
        accepted(posted(b"/graphql", TE, body=b"0123456789")),
    ),
    case(
        "chunk-size-leading-zeros",
        post(b"/graphql", TE, body=b"0005\r\nhello\r\n000\r\n\r\n"),
        accepted(posted(b"/graphql", TE)),
    ),
    case(
        "chunk-size-overflow",
        post(b"/graphql", TE, body=b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n"),
        REFUSED,
        h11={"verdict": H11_CHUNK_SIZE},
    ),
    case("chunk-size-huge-overflow", post(b"/other", TE, body=b"f" * 40 + b"\r\nhello\r\n0\r\n\r\n"), REFUSED),
    case("chunk-size-invalid-digit", post(b"/graphql", TE, body=b"5g\r\nhello\r\n0\r\n\r\n"), REFUSED),
    case("chunk-size-0x", post(b"/graphql", TE, body=b"0x5\r\nhello\r\n0\r\n\r\n"), REFUSED),
    case("chunk-size-negative", post(b"/graphql", TE, body=b"-5\r\nhello\r\n0\r\n\r\n"), REFUSED),
    case("chunk-size-empty", post(b"/graphql", TE, body=b"\r\nhello\r\n0\r\n\r\n"), REFUSED),
    case(
        "chunk-size-trailing-space",
        post(b"/graphql", TE, body=b"5 \r\nhello\r\n0\r\n\r\n"),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_CHUNK_SPACE),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_CHUNK_SPACE),
    ),
    case("chunk-data-longer-than-size", post(b"/graphql", TE, body=b"3\r\nhello\r\n0\r\n\r\n"), REFUSED),
    case(
        "chunk-bare-lf",
        post(b"/graphql", TE, body=b"5\nhello\n0\n\n"),
        REFUSED,
        h11={"verdict": "h11 takes the bare LF after the chunk data for data still to come: it waits"},
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_BARE_LF),
    ),
    case(
        "chunked-body-over-limit",
        post(b"/graphql", TE, body=chunked(b"x" * 40_000, b"x" * 40_000)),
        refused(413),
        h11=dict.fromkeys(OTHER_VERDICT, "h11 has no body limit"),
    ),
    # --- trailer fields: dropped, never headers -------------------------------------------------
    *(
        case(
            f"trailer-{name}-{route}",
            post(b"/" + route.encode(), TE, body=chunked(BODY, trailers=[trailer])),
            accepted(posted(b"/" + route.encode(), TE)),
        )
        for name, trailer in (
            ("plain", b"X-Checksum: abc"),
            ("authorization", b"Authorization: Bearer trailer-token"),
            ("api-key", b"X-API-Key: trailer-key"),
            ("hasura-role", b"x-hasura-role: admin"),
        )
        for route in ("graphql", "other")
    ),
    case(
        "trailers-over-header-limit",
        post(b"/graphql", *LONG_FIELDS, TE, body=chunked(BODY, trailers=LONG_TRAILERS)),
        refused(431),
        h11=dict.fromkeys(OTHER_VERDICT, "h11 bounds the head and the trailers each on their own"),
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx does not count trailers toward its header limits"),
    ),
    # --- request targets --------------------------------------------------------------------------
    case(
        "target-asterisk",
        request(b"OPTIONS", b"*", HOST),
        accepted(handed(b"OPTIONS", b"*", HOST)),
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx refuses the asterisk-form target"),
    ),
    case("target-double-slash", get(b"//graphql"), accepted(got(b"//graphql"))),
    case(
        "target-fragment",
        get(b"/graphql#frag"),
        REFUSED,  # not a request-target (RFC 9112 §3.2): a fragment is the client's alone
        h11=dict.fromkeys(OTHER_VERDICT, "h11 accepts any target without whitespace"),
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx accepts a fragment and forwards it with the target"),
    ),
    case(
        "target-percent-encoded",
        get(b"/%67raphql"),
        accepted(got(b"/graphql")),
        h11={"target": "h11 keeps the target as sent; the GraphQL handler is reached by the decoded path"},
        nginx={"target": "nginx forwards the target as sent; the GraphQL handler is reached by the decoded path"},
    ),
    case("target-trailing-slash", get(b"/graphql/"), accepted(got(b"/graphql/"))),
    case("target-query-flag", get(b"/graphql?x"), accepted(got(b"/graphql?x"))),
    case("target-absolute-form", get(b"http://edge/graphql"), accepted(got(b"/graphql")), h11={"target": H11_ABSOLUTE}),
    case(
        "target-absolute-form-other",
        post(b"http://edge:8080/other?x=1", CL5),
        accepted(posted(b"/other?x=1", CL5)),
        h11={"target": H11_ABSOLUTE},
    ),
    case(
        "target-relative",
        get(b"graphql"),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, "h11 accepts any target without whitespace"),
    ),
    case(
        "target-over-limit",
        get(b"/graphql?q=" + b"a" * MAX_URL_BYTES),
        refused(414),
        h11=dict.fromkeys(OTHER_VERDICT, "h11 has no target limit of its own"),
    ),
    case(
        "header-over-limit",
        get(b"/graphql", b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 1)),
        refused(431),
        h11=dict.fromkeys(OTHER_VERDICT, "h11 bounds only a head still incomplete: one that arrived whole is parsed"),
        nginx={"status": "nginx answers an oversized header line with 400 (Request Header Or Cookie Too Large)"},
    ),
    # --- protocol versions ------------------------------------------------------------------------
    case("http10", get(b"/graphql", version=b"HTTP/1.0"), accepted(got(b"/graphql"), closes=True)),
    case(
        "http10-post-other",
        post(b"/other", CL5, version=b"HTTP/1.0"),
        accepted(posted(b"/other", CL5), closes=True),
    ),
    case(
        "http10-keep-alive",
        get(b"/graphql", b"Connection: keep-alive", version=b"HTTP/1.0"),
        accepted(got(b"/graphql", b"Connection: keep-alive")),
    ),
    case(
        "http09",
        b"GET /graphql\r\n\r\n",
        REFUSED,  # no version, so no headers: no Host and no framing
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx still serves HTTP/0.9 (an answer without a status line)"),
    ),
    case(
        "http09-line-only",
        b"GET /graphql\r\n",
        refused(408),  # llhttp knows the line has no version only at the next byte: the deadline answers
        h11={"verdict": "h11 does not know HTTP/0.9: it waits for the rest of a request head"},
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx still serves HTTP/0.9 (an answer without a status line)"),
    ),
    case(
        "http2-preface",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        REFUSED,
        h11={"count": "h11 takes the preface's first line for a request (PRI * HTTP/2.0), then refuses 'SM'"},
    ),
    case("http-version-lower-case", get(b"/graphql", version=b"http/1.1"), REFUSED),
    case(
        "request-line-double-space",
        b"GET  /graphql HTTP/1.1\r\nHost: edge\r\n\r\n",
        # RFC 9112 §3 lets recipients parse the request line on whitespace; nothing about it is ambiguous.
        accepted(got(b"/graphql")),
        h11=dict.fromkeys(OTHER_VERDICT, "h11 requires single spaces in the request line"),
    ),
    # --- Expect --------------------------------------------------------------------------------
    case(
        "expect-100-continue-graphql",
        [request(b"POST", b"/graphql", HOST, b"Expect: 100-continue", CL5), BODY],
        accepted(posted(b"/graphql", b"Expect: 100-continue", CL5), continues=1),
    ),
    case(
        "expect-100-continue-other",
        [request(b"POST", b"/other", HOST, b"Expect: 100-continue", TE), CHUNKED_BODY],
        accepted(posted(b"/other", b"Expect: 100-continue", TE), continues=1),
    ),
    case(
        "expect-100-continue-mixed-case",
        [request(b"POST", b"/graphql", HOST, b"Expect: 100-Continue", CL5), BODY],
        accepted(posted(b"/graphql", b"Expect: 100-Continue", CL5), continues=1),
    ),
    case(
        "expect-100-continue-http10",
        post(b"/other", b"Expect: 100-continue", CL5, version=b"HTTP/1.0"),
        accepted(posted(b"/other", b"Expect: 100-continue", CL5), closes=True),
    ),
    case(
        "expect-unknown",
        get(b"/graphql", b"Expect: something-else"),
        Outcome(refusal=417),
        h11=dict.fromkeys(OTHER_VERDICT, H11_EXPECT),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_EXPECT),
    ),
    # --- pipelining -----------------------------------------------------------------------------
    case(
        "pipeline-two",
        get(b"/graphql?n=1") + post(b"/graphql", CL5),
        accepted(got(b"/graphql?n=1"), posted(b"/graphql", CL5)),
    ),
    case(
        "pipeline-three",
        PIPELINE_THREE,
        accepted(got(b"/graphql?query=1"), posted(b"/other", CL5), posted(b"/graphql", TE)),
    ),
    case(
        "pipeline-after-connection-close",
        get(b"/graphql", b"Connection: close") + get(b"/other"),
        accepted(got(b"/graphql", b"Connection: close"), closes=True),
    ),
    case(
        "pipeline-after-http10",
        request(b"GET", b"/other", version=b"HTTP/1.0") + get(b"/graphql"),
        accepted(handed(b"GET", b"/other"), closes=True),
    ),
    case(
        "pipeline-then-malformed",
        post(b"/graphql", CL5) + get(b"/other", b"X-Foo : bar"),
        refused(after=[posted(b"/graphql", CL5)]),
    ),
    # --- Host ---------------------------------------------------------------------------------------
    case("host-missing", request(b"GET", b"/graphql"), REFUSED),
    case("host-missing-other", request(b"POST", b"/other", CL5, body=BODY), REFUSED),
    case("host-missing-absolute-form", request(b"GET", b"http://edge/graphql"), REFUSED),
    case("host-duplicate-equal", get(b"/graphql", HOST), REFUSED),
    case("host-duplicate-different", get(b"/other", b"Host: other"), REFUSED),
    case(
        "host-empty",
        request(b"GET", b"/graphql", b"Host:"),
        accepted(handed(b"GET", b"/graphql", b"Host:")),
        nginx=dict.fromkeys(OTHER_VERDICT, "nginx refuses an empty Host (RFC 9112 §3.2 allows one)"),
    ),
    case(
        "host-missing-http10",
        request(b"GET", b"/graphql", version=b"HTTP/1.0"),
        accepted(handed(b"GET", b"/graphql"), closes=True),
    ),
    # --- methods --------------------------------------------------------------------------------
    case(
        "method-long",
        request(b"X" * 1000, b"/graphql", HOST),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_ANY_METHOD),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_ANY_METHOD),
    ),
    case(
        "method-lower-case",
        request(b"get", b"/graphql", HOST),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_ANY_METHOD),
    ),
    case(
        "method-unknown",
        request(b"FOO", b"/graphql", HOST),
        REFUSED,
        h11=dict.fromkeys(OTHER_VERDICT, H11_ANY_METHOD),
        nginx=dict.fromkeys(OTHER_VERDICT, NGINX_ANY_METHOD),
    ),
)
