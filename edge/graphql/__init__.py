"""GraphQL document handling, before Hasura sees a request.

- ``operation``: the operation type of a document (cached), ``InvalidDocument``.
- ``analysis``: one bounded, cached pass over a document: Hasura's depth, amounts, introspection, cost plan.
- ``schema_info`` / ``permissions``: Hasura's schema shapes and select-permission row limits.
- ``cost`` / ``actual_cost``: the estimate per request, and the cost of what Hasura returned.
- ``policy``: a plan's limits applied to an analysis (violations, ``OperationRejected``), suggestion stripping.
"""
