"""Which Redis the shared stores use, from ``EDGE_REDIS_URL``: one server, a Sentinel-managed master, or a Cluster.

The URL's scheme says the topology (``docs/configuration.md`` has the reference)::

    redis://[[user]:password@]host[:port][/db]          one server (rediss:// for TLS, unix:// for a socket),
                                                        read by redis-py's own ``from_url``
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master>[/db]
                                                        the sentinels (port 26379 by default) and the name
                                                        they monitor; rediss+sentinel:// for TLS
    redis+cluster://[[user]:password@]host[:port][,host[:port]...]
                                                        some nodes of a Redis Cluster (port 6379 by
                                                        default); the client discovers the rest;
                                                        rediss+cluster:// for TLS

redis-py reads no URL for Sentinel or for several cluster nodes, so the two ``+`` schemes are parsed here
and given to its public classes: ``redis.asyncio.sentinel.Sentinel(...).master_for(...)`` and
``redis.asyncio.cluster.RedisCluster(startup_nodes=...)``. The credentials are the data nodes' (the
master and replicas, or the cluster nodes); sentinels are reached without credentials, over TLS with
``rediss+sentinel://``.

Every topology gets the limiter's client options (``redis_client_from_url``): connect and socket
timeouts of ``timeout`` seconds and no retries, because each store decides itself what a failure means
(allow, refuse, miss) and a retry would only hold a request longer. A failed call is followed by a
fresh connection on the next one: to the master the sentinels name now, or to the node that owns the
slot in the cluster's current map.

The limiter and cost budgets run one Lua script per call, the only Redis work on every request; for one
server (``redis://``, ``rediss://``) they get ``SharedRedis.limits_client``, a ``LeanRedis``
(``edge.limits.resp_client``: one pipelined connection, several times cheaper per call than redis-py)
with the same timeout. Sentinel and Cluster keep redis-py for them (it follows failovers and slot moves),
and so does a standalone URL with query parameters the lean client does not read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from edge.limits.redis_store import DEFAULT_TIMEOUT, StoreClient, redis_client_from_url
from edge.limits.resp_client import LeanRedis, lean_url_supported

__all__ = ["RedisClient", "RedisTarget", "SharedRedis", "open_shared_redis", "parse_redis_url"]

Topology = Literal["standalone", "sentinel", "cluster"]
RedisClient = aioredis.Redis | RedisCluster
"""What the shared stores are given: both answer the same commands (scripts, pipelines, GET/SET...)."""

_STANDALONE_SCHEMES = ("redis", "rediss", "unix")
_TOPOLOGY_SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_DEFAULT_PORTS: dict[Topology, int] = {"standalone": 6379, "sentinel": 26379, "cluster": 6379}
_SENTINEL_FORM = "redis+sentinel://host:26379[,host:port...]/<master>[/<db>]"


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """``EDGE_REDIS_URL`` read: the topology and what its client needs. ``repr`` never shows the password."""

    topology: Topology
    url: str = field(default="", repr=False)
    """Standalone only: the URL as given (redis-py reads it)."""
    nodes: tuple[tuple[str, int], ...] = ()
    """Sentinels or cluster nodes."""
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False

    def describe(self) -> str:
        """For ``check-config`` and logs: the topology and addresses, without credentials."""
        if self.topology == "standalone":
            return "one Redis server"
        where = ", ".join(f"{host}:{port}" for host, port in self.nodes)
        if self.topology == "sentinel":
            return f"Redis Sentinel master {self.master!r} (db {self.db}) via {where}"
        return f"Redis Cluster via {where}"


def parse_redis_url(url: str) -> RedisTarget:
    """Read ``EDGE_REDIS_URL``; ValueError with a message that never repeats the URL (it may hold a password)."""
    scheme, separator, _ = url.partition("://")
    scheme = scheme.lower()
    if not separator or (scheme not in _STANDALONE_SCHEMES and scheme not in _TOPOLOGY_SCHEMES):
        raise ValueError(
            "must start with redis:// or rediss:// (one server), redis+sentinel:// or rediss+sentinel:// "
            "(Sentinel), or redis+cluster:// or rediss+cluster:// (Cluster)"
        )
    if scheme in _STANDALONE_SCHEMES:
        return RedisTarget("standalone", url=url)
    topology, ssl = _TOPOLOGY_SCHEMES[scheme]
    parts = urlsplit(url)
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = tuple(_node(entry, _DEFAULT_PORTS[topology]) for entry in hostinfo.split(","))
    path = [segment for segment in parts.path.split("/") if segment]
    if topology == "sentinel":
        if not path or len(path) > 2:
            raise ValueError(f"a Sentinel URL names the master after the sentinels: {_SENTINEL_FORM}")
        master, db = unquote(path[0]), _db(path[1] if len(path) > 1 else "0")
    else:
        if len(path) > 1 or (path and _db(path[0]) != 0):
            raise ValueError("a Redis Cluster has only database 0: give no path, or /0")
        master, db = "", 0
    if parts.query or parts.fragment:
        raise ValueError(f"{scheme}:// takes no query parameters")
    return RedisTarget(topology, nodes=nodes, master=master, db=db, username=username, password=password, ssl=ssl)


def _node(entry: str, default_port: int) -> tuple[str, int]:
    if entry.startswith("["):  # an IPv6 address: [::1]:26379
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = entry.partition(":")
    if not host:
        raise ValueError("every node needs a host: host[:port], separated by commas")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port of {host} must be a number from 1 to 65535")
    return host, int(port_text)


def _db(text: str) -> int:
    if not text.isdigit():
        raise ValueError("the database must be a number")
    return int(text)


class SharedRedis:
    """The client every shared store is given, and what closes it (the sentinels' connections too)."""

    def __init__(self, target: RedisTarget, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.target = target
        self._sentinel: Sentinel | None = None
        self._lean: LeanRedis | None = None
        self.client: RedisClient
        no_retries = Retry(NoBackoff(), 0)
        if target.topology == "standalone":
            self.client = redis_client_from_url(target.url, timeout=timeout)
            if lean_url_supported(target.url):
                self._lean = LeanRedis.from_url(target.url, timeout=timeout)
        elif target.topology == "cluster":
            self.client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                username=target.username,
                password=target.password,
                ssl=target.ssl,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=no_retries,
            )
        else:
            # Sentinels get the socket timeouts (redis-py copies socket_* options) and, over rediss+, TLS.
            self._sentinel = Sentinel(
                list(target.nodes),
                sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout, "ssl": target.ssl},
            )
            self.client = self._sentinel.master_for(
                target.master,
                db=target.db,
                username=target.username,
                password=target.password,
                ssl=target.ssl,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=no_retries,
            )

    @property
    def limits_client(self) -> StoreClient:
        """What the limiter and cost budgets run their scripts on: ``LeanRedis`` for ``redis://`` and
        ``rediss://`` URLs it reads (``lean_url_supported``), else ``client``."""
        return self.client if self._lean is None else self._lean

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        finally:
            if self._lean is not None:
                await self._lean.aclose()
            if self._sentinel is not None:
                await self._sentinel.aclose()


def open_shared_redis(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> SharedRedis:
    """The client for ``EDGE_REDIS_URL`` (no I/O yet: it connects on first use)."""
    return SharedRedis(parse_redis_url(url), timeout=timeout)
