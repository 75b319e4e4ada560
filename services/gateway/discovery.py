"""Where a tier's replicas come from (static list or DNS of a headless Service), re-resolved periodically."""

from __future__ import annotations

import asyncio
import logging
import socket
from abc import ABC, abstractmethod

from services.common.periodic import PeriodicTask
from services.gateway.ring import ReplicaRing

log = logging.getLogger(__name__)

DNS_PREFIX = "dns:///"


class ReplicaSource(ABC):
    """Resolves to the tier's replica addresses: a sorted, duplicate-free, non-empty list of "host:port".

    `resolve` raises OSError (incl. TimeoutError, socket.gaierror) or LookupError when it cannot say.
    """

    spec: str

    @abstractmethod
    async def resolve(self) -> list[str]: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


class StaticSource(ReplicaSource):
    """A fixed list, e.g. "127.0.0.1:7001,127.0.0.1:7002" for local runs."""

    def __init__(self, addresses: list[str], spec: str = "") -> None:
        if not addresses:
            raise ValueError("a static replica list needs at least one address")
        self.addresses = sorted(set(addresses))
        self.spec = spec or ",".join(self.addresses)

    async def resolve(self) -> list[str]:
        return list(self.addresses)


class DnsSource(ReplicaSource):
    """Every A/AAAA record of `host` (a Kubernetes headless Service: one per ready pod), each as ip:port."""

    def __init__(self, host: str, port: int, spec: str = "") -> None:
        self.host = host
        self.port = port
        self.spec = spec or f"{DNS_PREFIX}{host}:{port}"

    async def resolve(self) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        addresses = {
            format_address(str(sockaddr[0]), self.port)
            for family, _, _, _, sockaddr in infos
            if family in (socket.AF_INET, socket.AF_INET6)
        }
        if not addresses:
            raise LookupError(f"{self.host} has no A/AAAA records")
        return sorted(addresses)


def parse_replicas(spec: str) -> ReplicaSource:
    """ "h1:p1,h2:p2" → StaticSource; "dns:///name:port" → DnsSource. Raises ValueError naming the problem."""
    text = spec.strip()
    if not text:
        raise ValueError("empty replica spec: give 'host:port[,host:port...]' or 'dns:///name:port'")
    if text.startswith("dns:"):
        if not text.startswith(DNS_PREFIX):
            raise ValueError(f"unsupported DNS spec {spec!r}: use 'dns:///name:port' (no authority)")
        target = text[len(DNS_PREFIX) :]
        if "," in target:
            raise ValueError(f"a DNS spec names one host, got {spec!r}")
        host, port = split_host_port(target, spec)
        return DnsSource(host, port, text)
    if "://" in text:
        raise ValueError(f"unsupported scheme in replica spec {spec!r}: use 'host:port,...' or 'dns:///name:port'")
    addresses = []
    for part in text.split(","):
        if not part.strip():
            raise ValueError(f"empty address in replica spec {spec!r}")
        addresses.append(format_address(*split_host_port(part.strip(), spec)))
    return StaticSource(addresses, text)


def split_host_port(text: str, spec: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" → (host, port); raises ValueError mentioning `spec` when malformed."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"malformed IPv6 address {text!r} in replica spec {spec!r}: use '[addr]:port'")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            raise ValueError(f"missing port in {text!r} of replica spec {spec!r}: use 'host:port'")
        if ":" in host:
            raise ValueError(f"IPv6 address {text!r} in replica spec {spec!r} needs brackets: '[addr]:port'")
    if not host or any(char.isspace() or char in "/[]@" for char in host):
        raise ValueError(f"bad host {host!r} in replica spec {spec!r}")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in replica spec {spec!r}: need 1..65535")
    return host, int(port_text)


def format_address(host: str, port: int) -> str:
    """gRPC target form: "host:port", with IPv6 hosts bracketed."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Discovery(PeriodicTask):
    """Re-resolves `source` every `interval` seconds and gives `ring` the new set when it changed.

    A failed (or empty, or slower than `timeout`) resolution keeps the last good set: stale replicas are
    better than none, and ejection/health checks deal with the ones that are really gone.
    """

    def __init__(
        self, source: ReplicaSource, ring: ReplicaRing, *, interval: float = 10.0, timeout: float = 5.0
    ) -> None:
        super().__init__(interval)
        self.source = source
        self.ring = ring
        self.timeout = timeout
        self.name = f"discovery-{ring.tier}"
        self.failures = 0  # resolutions failed in a row

    async def refresh(self) -> bool:
        """One resolution; True when the ring's membership changed."""
        try:
            addresses = await asyncio.wait_for(self.source.resolve(), self.timeout)
        except (OSError, LookupError) as error:
            self.failures += 1
            log.warning(
                "replica resolution failed; keeping the last good set",
                extra={
                    "tier": self.ring.tier,
                    "source": self.source.spec,
                    "error": repr(error),
                    "failures": self.failures,
                    "kept": sorted(self.ring.members),
                },
            )
            return False
        self.failures = 0
        if set(addresses) == self.ring.members:
            return False
        self.ring.set_replicas(addresses)
        return True

    async def tick(self) -> None:
        await self.refresh()
