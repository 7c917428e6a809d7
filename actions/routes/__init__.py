"""HTTP adapters: one router per concern."""

__all__: list[str] = []
