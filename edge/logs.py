"""Logging configured once: one JSON object per line (or plain text for development).

Fields come from ``extra={...}``; event names are snake_case constants. Nothing here ever
formats a token, key or secret: callers pass ids and codes, never credentials.

In JSON mode everything the process writes while it serves is such a line: the edge's loggers and its
libraries' (websockets, httpx, asyncio's "Task exception was never retrieved" and "Exception in
callback") reach the one handler on the root logger, and Python's own channels that print straight
to stderr are routed to it too: warnings (``logging.captureWarnings``), an exception that ends the
process (``sys.excepthook``), one that ends a thread (``threading.excepthook``) and one raised where
nothing can catch it, such as ``__del__`` (``sys.unraisablehook``).

Libraries' loggers get a floor whatever ``EDGE_LOG_LEVEL`` says: at DEBUG websockets writes every
handshake header (``Authorization``, ``Cookie``) and the ends of every frame (a ``connection_init``'s
token, the admin secret in the edge's own init to Hasura), and httpx writes a line with the URL of
every request it makes (JWKS, the authorizer), so they log from INFO and WARNING up.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any

import orjson

__all__ = ["JsonFormatter", "JsonLineHandler", "configure_logging", "logger_chain"]

_LIBRARY_FLOORS = {"websockets": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.WARNING}
_process_log = logging.getLogger("edge")

# ".000Z" to ".999Z": indexing costs a fraction of formatting the milliseconds with a format spec per line.
_MILLISECONDS = tuple(f".{ms:03d}Z" for ms in range(1000))

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    # The access log writes a line per operation: the second's timestamp text is made once per
    # second, not per line (one tuple, replaced whole, so a thread never pairs a second with
    # another second's text).
    _second: tuple[int, str] = (-1, "")

    def timestamp(self, created: float, msecs: float) -> str:
        """``ts``: ``created`` (epoch seconds) in UTC to the millisecond, as ``2026-11-18T11:06:40.250Z``."""
        whole = int(created)
        second, stamp = self._second
        if second != whole:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self._second = (whole, stamp)
        return stamp + _MILLISECONDS[int(msecs)]

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key[0] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(entry, default=str).decode("utf-8")
        except TypeError:  # orjson's JSONEncodeError: an integer past 64 bits, a dict key that is not a string
            return orjson.dumps({key: _encodable(value) for key, value in entry.items()}).decode("utf-8")


def _encodable(value: Any) -> Any:
    try:
        orjson.dumps(value, default=str)
    except TypeError:
        return str(value)
    return value


class _WorkerField(logging.Filter):
    """Marks every line of a worker process (``EDGE_WORKERS`` above 1) with the worker's index."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.worker
        return True


class JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_logging` puts on the root logger in JSON mode.

    Besides handling records like any ``StreamHandler``, it takes lines already encoded
    (:meth:`write_encoded`): what the access log hands it for every operation, without a ``LogRecord``.
    Those are written together once per turn of the running event loop: the lines of the operations that
    ended in one turn make one ``write``, made before the loop next waits (called outside a running loop, a
    line is written at once). Nothing is held longer: a record handled the usual way first writes the lines
    before it (the file keeps their order), and so do :meth:`flush` and :meth:`close` (``logging.shutdown``
    at exit), and the loop's own shutdown runs the turn's write. A process killed outright (SIGKILL, the
    out-of-memory killer, a crash of the interpreter) loses at most the lines of the turn it was killed in.

    ``pending`` is that turn's list, the same list object for the handler's life: the compiled access log
    appends to it itself (a call into this interpreted class costs about as much as building the line) and, as
    :meth:`write_encoded` does, calls :meth:`write_soon` when its line is the list's first. Whether the edge's
    JSON handler alone writes a logger's lines is ``edge.observability.access_log.json_line_handler``.
    """

    def __init__(self, stream: Any, worker: int | None) -> None:
        super().__init__(stream)
        self.json = JsonFormatter()
        self.setFormatter(self.json)
        self.worker = worker
        self.own_filters: list[logging.Filter] = [] if worker is None else [_WorkerField(worker)]
        for own in self.own_filters:
            self.addFilter(own)
        self.pending: list[str] = []

    def write_encoded(self, line: str) -> None:
        """Write ``line`` (ending in a newline) by the end of the event loop's turn, after every line and record
        before it; a failure to write is reported as ``logging`` reports it (``handleError``)."""
        pending = self.pending
        pending.append(line)
        if len(pending) == 1:
            self.write_soon()

    def write_soon(self) -> None:
        """Write ``pending`` at the end of the event loop's turn (now, outside a running loop). Called when a line
        is added to an empty ``pending``: a write is then not scheduled yet, or it is and finds the line (a
        write that finds nothing left, after :meth:`emit` or :meth:`flush` wrote the lines, returns at once)."""
        try:
            asyncio.get_running_loop().call_soon(self.write_pending)
        except RuntimeError:  # no running loop: now
            self.write_pending()

    def write_pending(self) -> None:
        """Write the lines :meth:`write_encoded` holds, in one ``write``."""
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            pending = self.pending
            count = len(pending)
            if not count:
                return
            text = "".join(pending[:count])
            del pending[:count]
            try:
                stream = self.stream
                stream.write(text)
                stream.flush()
            except Exception:
                self.handleError(logging.LogRecord("edge.access", logging.INFO, "", 0, "", None, None))

    def emit(self, record: logging.LogRecord) -> None:
        if self.pending:
            self.write_pending()
        super().emit(record)

    def flush(self) -> None:
        if self.pending:
            self.write_pending()
        super().flush()


def logger_chain(name: str) -> tuple[logging.Logger, ...]:
    """The logger ``name`` and its ancestors by name, up to the root: ``a.b`` gives ``a.b``, ``a``, root."""
    parts = name.split(".")
    named = [logging.getLogger(".".join(parts[:end])) for end in range(len(parts), 0, -1)]
    return (*named, logging.getLogger())


def configure_logging(level: str = "info", fmt: str = "json", *, worker: int | None = None) -> None:
    """``worker``: this process is that worker of several; each line carries it (JSON: the ``worker`` field)."""
    # The logging HOWTO's optimisations ("Optimization" section): records carry neither the
    # caller's file, line and function (a stack walk per record) nor thread and process names,
    # which neither format prints. The access log at INFO writes a line per operation.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler: logging.Handler
    if fmt == "json":
        handler = JsonLineHandler(sys.stderr, worker)
    else:
        handler = logging.StreamHandler(sys.stderr)
        where = "" if worker is None else "worker=%(worker)s "
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {where}%(name)s %(message)s"))
        if worker is not None:
            handler.addFilter(_WorkerField(worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name, floor in _LIBRARY_FLOORS.items():
        logging.getLogger(name).setLevel(max(floor, root.level))
    if fmt == "json":
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_thread_exception
        sys.unraisablehook = _log_unraisable


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    _process_log.critical("uncaught_exception", exc_info=(kind, error, traceback))


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # as Python's own hook: a thread that exits is not an error
    error = args.exc_value if args.exc_value is not None else args.exc_type()
    _process_log.error(
        "thread_exception",
        exc_info=(args.exc_type, error, args.exc_traceback),
        extra={"thread_name": args.thread.name if args.thread is not None else None},
    )


def _log_unraisable(unraisable: Any) -> None:
    """``sys.UnraisableHookArgs``: an exception where nothing can catch it (``__del__``, a finaliser)."""
    try:
        where = repr(unraisable.object) if unraisable.object is not None else None
    except Exception:
        where = None
    error = unraisable.exc_value
    _process_log.error(
        "unraisable_exception",
        exc_info=(unraisable.exc_type, error, unraisable.exc_traceback) if error is not None else None,
        extra={"context": unraisable.err_msg or "Exception ignored in", "object": where},
    )
