"""HTTP adapters: one router per concern."""
