"""The edge's own tables in Postgres (schema ``edge``), created and upgraded by ``python -m edge db upgrade``.

* :mod:`edge.db.schema`: the migrations (``edge/db/migrations/NNNN_name.sql``), the state of a database,
  the upgrade under an advisory lock;
* :mod:`edge.db.cli`: ``python -m edge db upgrade|current|check``.

Tables: ``edge.api_keys`` (:mod:`edge.keys`) and ``edge.schema_migrations`` (the applied migrations).
"""
