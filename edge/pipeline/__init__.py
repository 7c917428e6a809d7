"""The ``/graphql`` pipeline, one module per stage, in the order the request meets them.

receive_request -> authenticate -> identify_plan -> analyse_operation -> limit -> inject_session
-> proxy -> finish_response

Stages that may wait on I/O (the body, a JWKS or API-key look-up, the limiter's store, Hasura)
are coroutines; the others (``identify_plan``, ``analyse_operation``, ``inject_session``) are
plain calls, because a coroutine per stage per request is measurable on the hot path.
``edge.graphql_http`` runs the stages and maps errors to responses at one boundary.
"""
