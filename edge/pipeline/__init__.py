"""The ``/graphql`` pipeline, one module per stage, in the order the request meets them.

receive_request -> authenticate -> identify_plan -> analyse_operation -> limit -> inject_session
-> proxy (cached_proxy, traced_proxy around it when on) -> finish_response -> respond

``order.py`` declares that order once (``Stages``); ``edge.graphql_http`` runs exactly that sequence
and maps errors to responses at one boundary, and ``edge.rest`` runs a variant of it. Stages that may
wait on I/O (the body, a JWKS or API-key look-up, the limiter's store, Hasura) are coroutines; the
others (``identify_plan``, ``analyse_operation``, ``inject_session``, ``respond`` with the edge's own
server) are plain calls, because a coroutine per stage per request is measurable on the hot path.
What the stages share with the other paths but is not a stage (request ids, client addresses, CORS,
response headers) is in ``edge/http/``.
"""
