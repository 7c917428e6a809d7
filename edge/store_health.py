"""How the edge's Redis-backed stores fail: counted, logged at most once per interval, never raised.

Every shared store (limiter, cost budgets, response cache, persisted queries) degrades the same
way when Redis is slow or gone: the request goes on (per the store's own rule: miss, allow,
refuse), the failure is counted for metrics, and a warning is logged at most once per
``log_interval`` with the error class and a message whose URL credentials are redacted; the
first success afterwards logs the recovery once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

__all__ = ["StoreHealth", "redact_credentials"]

_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]*@")


def redact_credentials(text: str) -> str:
    """``redis://user:secret@host`` -> ``redis://***@host``, cut to 200 characters."""
    return _CREDENTIALS.sub(r"\1***@", text)[:200]


class StoreHealth:
    """Failure accounting for one store; events are ``<name>_error`` and ``<name>_recovered``."""

    __slots__ = ("_clock", "_logger", "_next_log", "_unlogged", "errors", "failing", "log_interval", "name")

    def __init__(
        self,
        name: str,
        logger: logging.Logger,
        *,
        log_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.log_interval = log_interval
        self.errors = 0
        self.failing = False
        self._logger = logger
        self._clock = clock
        self._next_log = 0.0
        self._unlogged = 0

    def failed(self, exc: BaseException, **fields: Any) -> None:
        self.errors += 1
        self.failing = True
        now = self._clock()
        if now < self._next_log:
            self._unlogged += 1
            return
        self._next_log = now + self.log_interval
        self._logger.warning(
            f"{self.name}_error",
            extra={
                "error": type(exc).__name__,
                "detail": redact_credentials(str(exc)),
                **fields,
                "store_errors": self.errors,
                "suppressed": self._unlogged,
            },
        )
        self._unlogged = 0

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            self._logger.info(f"{self.name}_recovered", extra={"store_errors": self.errors})
