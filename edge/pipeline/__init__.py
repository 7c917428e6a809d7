"""The ``/graphql`` pipeline, one module per stage, in the order the request meets them.

receive_request -> authenticate -> inject_session -> proxy

(Tier identification, operation analysis and limits slot in between authenticate and
inject_session as they land.) ``edge.graphql_http`` runs the stages and maps errors to
responses at one boundary.
"""
