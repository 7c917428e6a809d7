"""Which of GraphQL over HTTP's two response media types a client's ``Accept`` asks for.

The GraphQL-over-HTTP specification (graphql/graphql-over-http, ``spec/GraphQLOverHTTP.md``, "Media
Types" and "Body") names two types for a GraphQL response: ``application/graphql-response+json``, the
preferred one, whose status codes tell the outcome (a request error is a 4xx), and
``application/json``, for legacy clients, which get 200 for every well-formed request (its Appendix A).
"If an ``Accept`` header is provided, the server MUST respect the given ``Accept`` header and attempt
to encode the response in the highest priority media type listed that is supported by the server."

``Accept`` is read as RFC 9110 defines it (§12.5.1, §12.4.2, §5.6): a comma-separated list of media
ranges (``*/*``, ``type/*``, ``type/subtype``) with parameters and an optional weight ``q`` (0 to 1,
at most three decimals; 0 means "not acceptable"); names are case-insensitive; a parameter value may be
a quoted string (which may hold commas). A media type's weight is that of the most specific range that
matches it (parameters are more specific than none, ``type/subtype`` than ``type/*``, than ``*/*``); a
range with parameters matches only if the edge's representation has them (it has exactly
``charset=utf-8``). A malformed element is ignored, as if it had not been sent.

The choice, for a response the edge writes itself:

- the type with the higher weight;
- on equal weights, ``application/graphql-response+json`` only if the client named it (a range that
  matches it only through ``*/*`` or ``application/*`` does not count): a client that names it knows
  the specification, and ``*/*`` is what clients send that never heard of it;
- ``application/json`` when the header is absent, or accepts neither type. An absent ``Accept`` is
  what a pre-specification (Hasura) client sends; the specification leaves the choice to the server
  ("the server may respond with an error, or with any content type it chooses"), and before its
  2025 watershed said to treat it as ``Accept: application/json`` "to maintain compatibility with
  legacy clients", which is the edge's case. A header that accepts neither type would deserve a 406,
  but only error responses are negotiated, and a 406 would hide the error from the client, so the
  header is disregarded, which RFC 9110 §12.5.1 allows. So is a value over ``MAX_ACCEPT_CHARS``:
  clients send well under 200 characters, and parsing 32 KiB (the header limit) would cost tens of
  milliseconds per refused request.

One more question is asked of ``Accept`` when GraphiQL is on (``EDGE_GRAPHIQL``, ``edge.graphiql``): does a
GET come from a browser opening the page? :func:`prefers_html` says yes only when ``text/html`` weighs more
than both GraphQL response types, as in a browser's navigation (``text/html,...,*/*;q=0.8``); ``*/*``
alone, no header, or a tie is a GraphQL client, answered as always.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "GRAPHQL_RESPONSE_JSON",
    "HTML",
    "JSON",
    "MAX_ACCEPT_CHARS",
    "MediaRange",
    "parse_accept",
    "prefers_graphql_response_json",
    "prefers_html",
]

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
HTML = "text/html"
MAX_ACCEPT_CHARS = 1024

# RFC 9110 §5.6.2: tchar.
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WHITESPACE = " \t"
# The parameters of the edge's own representations (both types are sent as UTF-8).
_REPRESENTATION_PARAMETERS = {"charset": "utf-8"}


class MediaRange(NamedTuple):
    """One element of ``Accept``: ``type/subtype`` (either may be ``*``), its parameters and weight."""

    type: str
    subtype: str
    parameters: list[tuple[str, str]]
    weight: float

    def specificity(self, media_type: str) -> int:
        """How specifically this range matches ``media_type`` (higher wins), or -1 if it does not."""
        type_, _, subtype = media_type.partition("/")
        if self.type == "*":
            return 0 if self.subtype == "*" else -1
        if self.type != type_:
            return -1
        if self.subtype == "*":
            return 1
        if self.subtype != subtype:
            return -1
        for name, value in self.parameters:
            expected = _REPRESENTATION_PARAMETERS.get(name)
            if expected is None or value.lower() != expected:
                return -1
        return 2 + len(self.parameters)


class _Scanner:
    """A cursor over one ``Accept`` value; every read method returns None where the grammar is not met."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def done(self) -> bool:
        return self.at >= len(self.text)

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip_whitespace(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in _WHITESPACE:
            self.at += 1

    def token(self) -> str | None:
        start = self.at
        while self.at < len(self.text) and self.text[self.at] in _TOKEN_CHARS:
            self.at += 1
        return self.text[start : self.at].lower() if self.at > start else None

    def quoted_string(self) -> str | None:
        """RFC 9110 §5.6.4: ``"..."`` with ``\\`` escaping the next character; the unescaped content."""
        self.at += 1  # the opening quote
        content: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if char == '"':
                return "".join(content)
            if char == "\\":
                if self.at >= len(self.text):
                    return None
                char = self.text[self.at]
                self.at += 1
            if (char < " " and char != "\t") or char == "\x7f":
                return None
            content.append(char)
        return None

    def skip_element(self) -> None:
        """Move past the rest of a malformed element, to the next comma outside a quoted string."""
        while self.at < len(self.text) and self.text[self.at] != ",":
            if self.text[self.at] == '"':
                if self.quoted_string() is None:
                    self.at = len(self.text)
            else:
                self.at += 1


def _qvalue(text: str) -> float | None:
    """RFC 9110 §12.4.2: ``0[.ddd]`` or ``1[.000]``; None for anything else."""
    whole, _, fraction = text.partition(".")
    if whole not in ("0", "1") or len(fraction) > 3 or not all(char in "0123456789" for char in fraction):
        return None
    if whole == "1" and fraction.strip("0"):
        return None
    return float(text)


def _media_range(scanner: _Scanner) -> MediaRange | None:
    """One element, up to (not including) its comma; None if it is malformed."""
    type_ = scanner.token()
    if type_ is None or scanner.peek() != "/":
        return None
    scanner.at += 1
    subtype = scanner.token()
    if subtype is None or (type_ == "*" and subtype != "*"):
        return None
    parameters: list[tuple[str, str]] = []
    weight = 1.0
    weighted = False
    while True:
        scanner.skip_whitespace()
        if scanner.done() or scanner.peek() == ",":
            return MediaRange(type_, subtype, parameters, weight)
        if scanner.peek() != ";":
            return None
        scanner.at += 1
        scanner.skip_whitespace()
        if scanner.done() or scanner.peek() in ",;":
            continue  # an empty parameter (``;;``), which RFC 9110 allows
        name = scanner.token()
        if name is None or scanner.peek() != "=":
            return None
        scanner.at += 1
        value = scanner.quoted_string() if scanner.peek() == '"' else scanner.token()
        if value is None:
            return None
        if weighted:
            continue  # RFC 7231's accept-ext after the weight: no meaning, ignored
        if name == "q":
            parsed = _qvalue(value)
            if parsed is None:
                return None
            weight, weighted = parsed, True
        else:
            parameters.append((name, value))


def parse_accept(value: str) -> list[MediaRange]:
    """The well-formed media ranges of an ``Accept`` value, in order."""
    scanner = _Scanner(value)
    ranges: list[MediaRange] = []
    while not scanner.done():
        scanner.skip_whitespace()
        if scanner.peek() == ",":  # an empty list element
            scanner.at += 1
            continue
        if scanner.done():
            break
        media_range = _media_range(scanner)
        if media_range is None:
            scanner.skip_element()
        else:
            ranges.append(media_range)
        if scanner.peek() == ",":
            scanner.at += 1
    return ranges


def _weight(ranges: list[MediaRange], media_type: str) -> tuple[float, int]:
    """The weight the most specific matching range gives ``media_type`` (0 if none), and that specificity."""
    best_specificity = -1
    weight = 0.0
    for media_range in ranges:
        specificity = media_range.specificity(media_type)
        if specificity > best_specificity:
            best_specificity, weight = specificity, media_range.weight
        elif specificity == best_specificity and specificity >= 0:
            weight = max(weight, media_range.weight)
    return weight, best_specificity


def prefers_graphql_response_json(accept: str | None) -> bool:
    """Whether a response should be ``application/graphql-response+json`` rather than ``application/json``.

    ``accept`` is the request's ``Accept`` value (several header lines joined with commas), None if absent.
    """
    if accept is None or len(accept) > MAX_ACCEPT_CHARS:
        return False
    ranges = parse_accept(accept)
    modern, modern_specificity = _weight(ranges, GRAPHQL_RESPONSE_JSON)
    legacy, _ = _weight(ranges, JSON)
    if modern != legacy:
        return modern > legacy
    return modern > 0 and modern_specificity >= 2


def prefers_html(accept: str | None) -> bool:
    """Whether ``text/html`` is preferred to both GraphQL response types (strictly: a tie is not a preference).

    ``accept`` is the request's ``Accept`` value (several header lines joined with commas), None if absent.
    """
    if accept is None or len(accept) > MAX_ACCEPT_CHARS:
        return False
    ranges = parse_accept(accept)
    html, _ = _weight(ranges, HTML)
    return html > _weight(ranges, JSON)[0] and html > _weight(ranges, GRAPHQL_RESPONSE_JSON)[0]
