"""One ``/metrics`` for several worker processes: each worker's numbers, added up at scrape time.

Each worker answers its own exposition on a Unix socket, ``<directory>/<index>.sock``, in a directory the
supervisor made for this run (mode 0700: only the edge's user can connect). The worker that takes a scrape
(on ``EDGE_METRICS_PORT``, whose socket every worker shares, or on the main port with ``EDGE_METRICS_TOKEN``)
reads the others' expositions and sums them with its own: counters, histograms and gauges (the open
WebSockets and subscriptions of all workers) add up, and a ``_created`` sample keeps the earliest time. The
request path is untouched: every worker keeps its plain numbers (``edge.observability.metrics``), and nothing
is shared between processes but the scrape.

A worker that is not running (it died, or is being replaced) is skipped: its counts end with it, as a
restarted process's do, and Prometheus reads the drop as a counter reset.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["MetricsPeers", "sum_expositions"]

log = logging.getLogger("edge.metrics")

_READ_LIMIT = 64 * 1024 * 1024


class MetricsPeers:
    """Worker ``index``'s side: ``start()`` answers this worker's exposition to the others; ``sum_with()``
    adds the others' to it."""

    def __init__(self, directory: str, index: int, *, timeout: float = 5.0) -> None:
        self.directory = Path(directory)
        self.index = index
        self.timeout = timeout
        self._server: asyncio.AbstractServer | None = None

    def path(self, index: int) -> Path:
        return self.directory / f"{index}.sock"

    async def start(self, render: Callable[[], bytes]) -> None:
        async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(render())
                await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        path = self.path(self.index)
        path.unlink(missing_ok=True)  # left by the worker this one replaces
        self._server = await asyncio.start_unix_server(answer, path=str(path))

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def sum_with(self, own: bytes) -> bytes:
        """``own`` exposition plus every other running worker's, summed."""
        others = [path for path in self._peer_paths() if path != self.path(self.index)]
        read = await asyncio.gather(*(self._read(path) for path in others))
        return sum_expositions([own, *(text for text in read if text is not None)])

    def _peer_paths(self) -> Iterator[Path]:
        try:
            names = os.listdir(self.directory)
        except OSError:
            return
        for name in sorted(names):
            if name.endswith(".sock"):
                yield self.directory / name

    async def _read(self, path: Path) -> bytes | None:
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(str(path), limit=_READ_LIMIT)
                try:
                    return await reader.read(-1)
                finally:
                    writer.close()
        except (FileNotFoundError, ConnectionRefusedError):
            return None  # that worker is not running
        except (OSError, TimeoutError) as exc:
            log.warning("metrics_worker_unavailable", extra={"socket": path.name, "error": type(exc).__name__})
            return None


class _Summed:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def sum_expositions(expositions: list[bytes]) -> bytes:
    """Prometheus text expositions of the same metrics, added up sample by sample (``_created``: the earliest)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for exposition in expositions:
        for family in text_string_to_metric_families(exposition.decode("utf-8")):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            samples = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                known = samples.get(key)
                if known is None:
                    samples[key] = sample.value
                elif sample.name.endswith("_created"):
                    samples[key] = min(known, sample.value)
                else:
                    samples[key] = known + sample.value
    for name, family in families.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Summed(list(families.values())))
    return generate_latest(registry)
