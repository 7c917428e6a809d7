"""Hasura Actions and Event Trigger webhooks for hasura-edge. ``python -m actions`` runs it; see README.md."""

__all__: list[str] = []
