"""What the load generator calls: the gateway over gRPC or HTTP, or a Recommender in this process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from grpc import aio

from wren.core.errors import WrenError, code_for_http
from wren.v1 import gateway_pb2, gateway_pb2_grpc


@dataclass(frozen=True, slots=True)
class Outcome:
    """One answered (or failed) request: `code` is "OK", the error's code (wren.core.errors.ERRORS, the same over
    gRPC, HTTP and in process) or a transport failure (the exception's class name)."""

    code: str
    degraded: bool = False
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.code == "OK"


class Target(Protocol):
    name: str
    protocol: str

    async def recommend(self, user_id: int, k: int) -> Outcome: ...

    async def close(self) -> None: ...


class GrpcTarget:
    """wren.v1.GatewayService/Recommend over one grpc.aio channel (HTTP/2 multiplexes the workers)."""

    protocol = "grpc"

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.name = address
        self.timeout = timeout
        self._channel = aio.insecure_channel(address)
        self._stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)

    async def recommend(self, user_id: int, k: int) -> Outcome:
        try:
            reply = await self._stub.Recommend(gateway_pb2.RecommendRequest(user_id=user_id, k=k), timeout=self.timeout)
        except aio.AioRpcError as error:
            return Outcome(error.code().name)
        return Outcome("OK", reply.degraded, bool(reply.items) and reply.items[0].cached)

    async def close(self) -> None:
        await self._channel.close()


class HttpTarget:
    """GET /v1/recommendations on the gateway's HTTP port (aiohttp, keep-alive connections)."""

    protocol = "http"

    def __init__(self, base_url: str, timeout: float = 5.0, connections: int = 64) -> None:
        import aiohttp

        self.name = base_url.rstrip("/")
        self._url = f"{self.name}/v1/recommendations"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            connector=aiohttp.TCPConnector(limit=max(1, connections)),
        )
        self._errors = (aiohttp.ClientError, TimeoutError)

    async def recommend(self, user_id: int, k: int) -> Outcome:
        try:
            async with self._session.get(self._url, params={"user_id": str(user_id), "k": str(k)}) as response:
                raw = await response.read()
        except self._errors as error:
            return Outcome(type(error).__name__)
        if response.status != 200:
            return Outcome(_error_code(response.status, raw))
        body = json.loads(raw)
        items = body.get("items") or []
        return Outcome("OK", bool(body.get("degraded")), bool(items) and bool(items[0].get("cached")))

    async def close(self) -> None:
        await self._session.close()


def _error_code(status: int, raw: bytes) -> str:
    """The gateway's error code (wren.core.errors.ERRORS) from its JSON body, else the table's code of the status."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error["code"]
    return code_for_http(status)


class RecommenderTarget:
    """Calls `Recommender.recommend` directly (the in-process pipeline): no transport at all."""

    protocol = "inprocess"

    def __init__(self, recommender, name: str = "inprocess") -> None:  # services.gateway.recommender.Recommender
        self.name = name
        self.recommender = recommender

    async def recommend(self, user_id: int, k: int) -> Outcome:
        try:
            result = await self.recommender.recommend(user_id, k)
        except WrenError as error:
            return Outcome(error.grpc_code)
        return Outcome("OK", result.degraded, bool(result.items) and result.items[0].cached)

    async def close(self) -> None:
        return None
