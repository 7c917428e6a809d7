"""h11 as a reference: a server-side h11 connection parses the same bytes as the edge.

Each complete request is answered with an empty ``200`` (h11 parses the next pipelined request
only once the current one is answered), until h11 says the connection must close. A
``RemoteProtocolError`` is a refusal, with h11's ``error_status_hint`` as its status.
"""

from __future__ import annotations

from collections.abc import Sequence

import h11

from tests.edge.http.outcome import Handed, Outcome

__all__ = ["parse_with_h11"]


def parse_with_h11(writes: Sequence[bytes], *, max_header_bytes: int) -> Outcome:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_bytes)
    for data in writes:
        conn.receive_data(data)
    requests: list[Handed] = []
    request: h11.Request | None = None
    body: list[bytes] = []
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return Outcome(tuple(requests), incomplete=request is not None or bool(conn.trailing_data[0]))
            if isinstance(event, h11.Request):
                request, body = event, []
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                # event.headers are the trailer fields: h11 keeps them apart from the request's.
                requests.append(Handed(request.method, request.target, tuple(request.headers), b"".join(body)))
                request = None
                conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"0")]))
                conn.send(h11.EndOfMessage())
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return Outcome(tuple(requests))  # the connection closes: nothing more is read
                conn.start_next_cycle()
            else:  # ConnectionClosed or PAUSED: nothing more to parse
                return Outcome(tuple(requests))
    except h11.RemoteProtocolError as error:
        return Outcome(tuple(requests), refusal=error.error_status_hint)
