"""Business logic, one module per action or trigger. No FastAPI imports: routes adapt these."""

__all__: list[str] = []
