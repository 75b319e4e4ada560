"""The shared server bootstrap on SIGTERM: readiness drops first, in-flight calls finish, then it stops."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.server import run_until_signalled, start_server

SLOW_SECONDS = 0.6


def register_slow_service(server: grpc.aio.Server) -> None:
    async def wait(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(SLOW_SECONDS)
        return b"done:" + request

    handler = grpc.unary_unary_rpc_method_handler(wait)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Slow", {"Wait": handler}),))


async def test_sigterm_drops_readiness_first_and_lets_in_flight_calls_finish() -> None:
    service = await start_server("lifecycle-test", [register_slow_service], ["test.Slow"], port=0)
    await service.mark_ready()
    serving = asyncio.create_task(run_until_signalled(service, grace=5.0))
    target = f"127.0.0.1:{service.port}"
    events: list[tuple[str, float]] = []

    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary("/test.Slow/Wait")
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service="test.Slow"))

        async def watch_health() -> None:
            async for update in watch:
                events.append((health_pb2.HealthCheckResponse.ServingStatus.Name(update.status), time.monotonic()))
                if update.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    watch.cancel()
                    return

        watcher = asyncio.create_task(watch_health())
        while not events:
            await asyncio.sleep(0.01)
        calls = [asyncio.ensure_future(call(str(i).encode(), timeout=10)) for i in range(12)]
        await asyncio.sleep(0.15)  # all twelve are in flight now
        os.kill(os.getpid(), signal.SIGTERM)
        results = await asyncio.gather(*calls)
        finished = time.monotonic()
        await asyncio.wait_for(watcher, 5)
    await asyncio.wait_for(serving, 10)

    assert results == [b"done:" + str(i).encode() for i in range(12)]
    assert [name for name, _ in events] == ["SERVING", "NOT_SERVING"]
    assert events[1][1] < finished, "readiness must drop before the in-flight calls complete"


class FinishedCallContext:
    """Stands in for the servicer context of a call grpc has already ended (its deadline passed before
    the handler ran): a real server cannot be made to hand such a call over on demand."""

    def time_remaining(self) -> float:
        return -0.01

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise grpc.aio.UsageError("abort on a finished call")

    def code(self) -> None:
        return None


async def test_a_call_that_arrives_past_its_deadline_is_counted_not_logged_as_a_crash(caplog) -> None:
    from services.common.interceptors import ServiceInterceptor
    from services.common.metrics import GRPC_REQUESTS

    ran = []

    async def handler(request: bytes, context: object) -> bytes:
        ran.append(request)
        return request

    async def continuation(details: object) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(handler)

    class Details:
        method = "/test.Late/Call"
        invocation_metadata = ()

    wrapped = await ServiceInterceptor("late-test", 4).intercept_service(continuation, Details())
    before = GRPC_REQUESTS.labels("late-test", "Call", "DEADLINE_EXCEEDED")._value.get()
    assert await wrapped.unary_unary(b"x", FinishedCallContext()) is None
    assert ran == []
    assert GRPC_REQUESTS.labels("late-test", "Call", "DEADLINE_EXCEEDED")._value.get() == before + 1
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
