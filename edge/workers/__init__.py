"""Several processes serving one port (``EDGE_WORKERS``): how many (``count``), the supervisor that binds the
sockets and keeps the workers running (``supervisor``), and what each worker runs (``worker``).

``docs/operations.md`` ("Worker processes") describes the behaviour operators see.
"""
