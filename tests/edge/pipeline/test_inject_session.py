"""The inject-session stage on its own: exactly which headers a request sends Hasura.

The end-to-end view (a real edge in front of the Hasura double) is tests/edge/test_trust_boundary.py;
here each rule of the stage is checked against the headers it builds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from edge.context import RequestContext
from edge.pipeline.inject_session import SESSION_MEMO_SIZE, InjectSession, client_headers_to_forward
from edge.session import Identity, Session, session_from_claims

SECRET = "s3cret-\xe9"  # the admin secret is sent as latin-1, as HTTP header values are
TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def request(
    session: Session | None, headers: list[tuple[bytes, bytes]] = (), request_id: str = "req-1"
) -> RequestContext:
    ctx = RequestContext(
        method="POST", headers=list(headers), query_string=b"", client=("127.0.0.1", 5000), request_id=request_id
    )
    if session is not None:
        ctx.identity = Identity(session=session, credential="jwt")
    return ctx


def upstream(stage: InjectSession, ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    stage(ctx)
    return list(ctx.upstream_headers)


USER = session_from_claims("user", {"x-hasura-user-id": "42", "x-hasura-org-id": "\u00f6rg"})
EDGE_MADE = [
    (b"x-hasura-admin-secret", b"s3cret-\xe9"),
    (b"x-hasura-role", b"user"),
    (b"x-hasura-user-id", b"42"),
    (b"x-hasura-org-id", "\u00f6rg".encode()),
    (b"x-request-id", b"req-1"),
]


def test_hasura_gets_the_edge_made_identity_and_the_clients_other_headers() -> None:
    client = [
        (b"host", b"edge.example"),
        (b"content-type", b"application/json"),
        (b"content-length", b"42"),
        (b"accept-encoding", b"gzip"),
        (b"expect", b"100-continue"),
        (b"authorization", b"Bearer abc"),
        (b"x-api-key", b"key"),
        (b"x-request-id", b"client-chosen"),
        (b"te", b"trailers"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authorization", b"Basic xyz"),
        (b"user-agent", b"agent/1.0"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
    ]
    headers = upstream(InjectSession(admin_secret=SECRET), request(USER, client))
    assert sorted(headers) == sorted(
        [*EDGE_MADE, (b"user-agent", b"agent/1.0"), (b"cookie", b"a=1"), (b"cookie", b"b=2")]
    )


@pytest.mark.parametrize(
    "name",
    [b"x-hasura-role", b"x-hasura-admin-secret", b"x-hasura-user-id", b"x_hasura_role", b"x-hasura_user-id"],
)
def test_client_x_hasura_headers_never_pass(name: bytes) -> None:
    headers = upstream(InjectSession(admin_secret=SECRET), request(USER, [(name, b"admin")]))
    assert sorted(headers) == sorted(EDGE_MADE)


def test_role_and_values_are_utf8_and_an_anonymous_session_sends_only_its_role() -> None:
    stage = InjectSession(admin_secret="plain")
    assert upstream(stage, request(session_from_claims("r\u00f4le", {}))) == [
        (b"x-hasura-admin-secret", b"plain"),
        (b"x-hasura-role", "r\u00f4le".encode()),
        (b"x-request-id", b"req-1"),
    ]


def test_a_stage_run_before_authentication_is_a_bug_not_a_request() -> None:
    with pytest.raises(RuntimeError, match="^inject_session ran before authenticate$"):
        InjectSession(admin_secret=SECRET)(request(None))


def test_names_listed_in_connection_are_dropped_but_not_the_edges_own() -> None:
    client = [
        (b"connection", b"keep-alive,X-Custom-Hop , x-other-hop"),
        (b"connection", b"x-hasura-role, x-request-id,traceparent"),
        (b"x-custom-hop", b"1"),
        (b"x-other-hop", b"2"),
        (b"x-kept", b"3"),
        (b"traceparent", TRACEPARENT),
    ]
    headers = upstream(InjectSession(admin_secret=SECRET), request(USER, client))
    assert sorted(headers) == sorted([*EDGE_MADE, (b"traceparent", TRACEPARENT), (b"x-kept", b"3")])


def test_client_headers_to_forward_on_its_own() -> None:
    client = [(b"connection", b"a,b"), (b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"x-hasura-role", b"admin")]
    assert client_headers_to_forward(client) == [(b"c", b"3")]
    assert client_headers_to_forward(client, frozenset({b"connection", b"c"})) == []


def test_a_configured_token_header_is_not_forwarded() -> None:
    client = [(b"x-my-token", b"secret-token"), (b"user-agent", b"agent/1.0")]
    configured = InjectSession(admin_secret=SECRET, extra_dropped=[b"x-my-token"])
    assert sorted(upstream(configured, request(USER, client))) == sorted([*EDGE_MADE, (b"user-agent", b"agent/1.0")])
    # Without the setting it is just another client header.
    default = InjectSession(admin_secret=SECRET)
    assert (b"x-my-token", b"secret-token") in upstream(default, request(USER, client))


@pytest.mark.parametrize(
    ("client", "forwarded"),
    [
        pytest.param([(b"traceparent", b"  " + TRACEPARENT + b" ")], [(b"traceparent", TRACEPARENT)], id="stripped"),
        pytest.param(
            [(b"traceparent", TRACEPARENT), (b"tracestate", b"a=1,b=2")],
            [(b"traceparent", TRACEPARENT), (b"tracestate", b"a=1,b=2")],
            id="with-tracestate",
        ),
        pytest.param(
            [(b"traceparent", TRACEPARENT), (b"tracestate", b"a=" + b"x" * 510)],
            [(b"traceparent", TRACEPARENT), (b"tracestate", b"a=" + b"x" * 510)],
            id="tracestate-of-512-bytes",
        ),
        pytest.param(
            [(b"traceparent", TRACEPARENT), (b"tracestate", b"a=" + b"x" * 511)],
            [(b"traceparent", TRACEPARENT)],
            id="tracestate-over-512-bytes-dropped",
        ),
        pytest.param(
            [(b"traceparent", TRACEPARENT), (b"traceparent", b"x"), (b"tracestate", b"a=1"), (b"tracestate", b"b")],
            [(b"traceparent", TRACEPARENT), (b"tracestate", b"a=1")],
            id="first-values-only",
        ),
        pytest.param([(b"tracestate", b"a=1")], [], id="tracestate-without-traceparent"),
        pytest.param([(b"traceparent", b"garbage"), (b"tracestate", b"a=1")], [], id="malformed-traceparent"),
        pytest.param(
            [(b"traceparent", b"00-00000000000000000000000000000000-00f067aa0ba902b7-01")], [], id="zero-trace-id"
        ),
        pytest.param(
            [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01")], [], id="zero-span-id"
        ),
        pytest.param([(b"traceparent", TRACEPARENT.upper())], [], id="upper-case-hex"),
    ],
)  # fmt: skip
def test_only_a_well_formed_trace_context_is_forwarded(
    client: list[tuple[bytes, bytes]], forwarded: list[tuple[bytes, bytes]]
) -> None:
    headers = upstream(InjectSession(admin_secret=SECRET), request(USER, client))
    assert sorted(headers) == sorted([*EDGE_MADE, *forwarded])


class CountingVariables(Mapping[str, str]):
    """Session variables that count how often the headers were built from them."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads = 0

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def counted_session(user_id: str) -> tuple[Session, CountingVariables]:
    variables = CountingVariables({"x-hasura-user-id": user_id})
    return Session(role="user", variables=variables, user_id=user_id), variables


def user_id_sent(stage: InjectSession, session: Session) -> bytes:
    [value] = [value for name, value in upstream(stage, request(session)) if name == b"x-hasura-user-id"]
    return value


def test_a_sessions_identity_headers_are_built_once_for_all_its_requests() -> None:
    stage = InjectSession(admin_secret=SECRET)
    session, variables = counted_session("42")
    for request_id in ("r1", "r2", "r3"):
        headers = upstream(stage, request(session, request_id=request_id))
        assert sorted(headers) == sorted(
            [
                (b"x-hasura-admin-secret", b"s3cret-\xe9"),
                (b"x-hasura-role", b"user"),
                (b"x-hasura-user-id", b"42"),
                (b"x-request-id", request_id.encode()),
            ]
        )
    assert variables.reads == 1


def test_interleaved_sessions_each_get_their_own_identity() -> None:
    stage = InjectSession(admin_secret=SECRET)
    alice = session_from_claims("user", {"x-hasura-user-id": "alice"})
    bob = session_from_claims("editor", {"x-hasura-user-id": "bob"})
    for _ in range(3):
        assert user_id_sent(stage, alice) == b"alice"
        assert user_id_sent(stage, bob) == b"bob"
    # An equal session that is another object is another entry, with the same headers.
    assert user_id_sent(stage, session_from_claims("user", {"x-hasura-user-id": "alice"})) == b"alice"


def test_short_lived_sessions_never_get_a_previous_sessions_identity() -> None:
    """Sessions come and go (their memory is reused) across several fillings of the memo."""
    stage = InjectSession(admin_secret=SECRET)
    for number in range(2 * SESSION_MEMO_SIZE + 10):
        user = str(number).encode()
        assert user_id_sent(stage, session_from_claims("user", {"x-hasura-user-id": user.decode()})) == user


def test_the_memo_is_bounded_and_starts_over_when_full() -> None:
    stage = InjectSession(admin_secret=SECRET)
    first, first_variables = counted_session("first")
    others = [session_from_claims("user", {"x-hasura-user-id": str(n)}) for n in range(SESSION_MEMO_SIZE)]
    user_id_sent(stage, first)
    for other in others[:-1]:  # the memo now holds SESSION_MEMO_SIZE sessions, `first` among them
        user_id_sent(stage, other)
    assert user_id_sent(stage, first) == b"first"
    assert first_variables.reads == 1
    user_id_sent(stage, others[-1])  # one more: the memo starts over
    assert user_id_sent(stage, first) == b"first"
    assert first_variables.reads == 2
