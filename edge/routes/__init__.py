"""FastAPI routes that are not on the hot path: health and readiness."""
