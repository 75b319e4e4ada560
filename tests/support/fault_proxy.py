"""A TCP proxy that injects network faults between a client and a server: latency, stalls, resets, half-open."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field
from enum import Enum


class Fault(Enum):
    NONE = "none"  # forward everything
    LATENCY = "latency"  # hold every chunk `latency` seconds before forwarding it
    STALL = "stall"  # keep connections open, forward nothing
    RESET = "reset"  # answer every connection (new and open) with a TCP reset
    HALF_OPEN = "half_open"  # accept connections, never reach the server, never answer


@dataclass
class ProxyStats:
    connections: int = 0
    resets: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass(eq=False)  # compared and hashed by identity: held in a set
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Closes with SO_LINGER 0: the peer sees a connection reset, not an orderly close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """Listens on `port` (0 = a free one) and forwards to `upstream`; `fault` and `latency` can change at any
    time and apply to connections already open. Use `async with FaultProxy(...) as proxy:`."""

    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host, self.port = host, port
        self.fault = Fault.NONE
        self.latency = 0.0
        self.stats = ProxyStats()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            self._drop(link)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def set(self, fault: Fault, latency: float = 0.0) -> None:
        """Switches the fault; RESET also resets every open connection now."""
        self.fault, self.latency = fault, latency
        if fault is Fault.RESET:
            for link in list(self._links):
                self._drop(link, reset=True)

    def _drop(self, link: _Link, reset: bool = False) -> None:
        for task in link.tasks:
            task.cancel()
        for writer in (link.client, link.server):
            if writer is None:
                continue
            if reset:
                _reset(writer)
            else:
                writer.close()
        if reset:
            self.stats.resets += 1
        self._links.discard(link)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        link = _Link(writer)
        self._links.add(link)
        if self.fault is Fault.RESET:
            self._drop(link, reset=True)
            return
        if self.fault is Fault.HALF_OPEN:
            return  # held open, never answered: the client only learns by its own deadline
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self._drop(link, reset=True)
            return
        link.server = server_writer
        link.tasks = [
            asyncio.create_task(self._pump(reader, server_writer, link, up=True)),
            asyncio.create_task(self._pump(server_reader, writer, link, up=False)),
        ]

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, link: _Link, up: bool) -> None:
        try:
            while chunk := await source.read(65536):
                while self.fault in (Fault.STALL, Fault.HALF_OPEN):
                    await asyncio.sleep(0.01)
                if self.fault is Fault.LATENCY and self.latency > 0:
                    await asyncio.sleep(self.latency)
                sink.write(chunk)
                await sink.drain()
                if up:
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            return
        if link in self._links:
            self._drop(link)
