"""The client's address, for anonymous limits: ``X-Forwarded-For`` only from trusted proxies.

A client can write any ``X-Forwarded-For`` it likes, so the header is read only when the
direct peer is a configured trusted proxy (``EDGE_TRUSTED_PROXIES``), and then from the right:
each hop appends the address it saw, so the first address that is not itself a trusted proxy
is the client. Rotating ``X-Forwarded-For`` values from an untrusted peer change nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["ClientAddressResolver"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddressResolver:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies
        )

    def _is_trusted(self, address: str) -> bool:
        if not self.trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def resolve(self, peer: tuple[str, int] | None, forwarded_for: Sequence[bytes]) -> str:
        """The address limits are keyed on; ``forwarded_for`` are the raw header values in order."""
        address = peer[0] if peer else "unknown"
        if not forwarded_for or not self._is_trusted(address):
            return address
        hops = [hop.strip() for value in forwarded_for for hop in value.decode("latin-1").split(",")]
        for hop in reversed(hops):
            try:
                candidate = str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # garbage in the chain: stop trusting it, use the last good hop
            if not self._is_trusted(candidate):
                return candidate
            address = candidate
        return address
