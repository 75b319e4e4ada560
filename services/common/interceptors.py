"""Server interceptor: RED metrics, in-flight/utilization, deadline checks and domain-error mapping."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from services.common.errors import WrenError
from services.common.logs import request_id
from services.common.metrics import CAPACITY, GRPC_IN_FLIGHT, GRPC_LATENCY, GRPC_REQUESTS, UTILIZATION

log = logging.getLogger(__name__)
INTERNAL_MESSAGE = "internal error"
UNMETERED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class ServiceInterceptor(aio.ServerInterceptor):
    """Wraps every unary-unary handler of a service.

    - counts requests by final code, times them, tracks in-flight requests and utilization;
    - rejects calls whose deadline has already passed before any work (DEADLINE_EXCEEDED);
    - maps `WrenError` to its status code with its client-safe message;
    - turns any other exception into INTERNAL with a generic message (the text stays in the log).
    """

    def __init__(self, service: str, capacity: int) -> None:
        self.service = service
        self.capacity = max(1, capacity)
        self.in_flight = 0
        CAPACITY.labels(service).set(self.capacity)
        UTILIZATION.labels(service).set(0)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method_path = handler_call_details.method
        if handler is None or handler.unary_unary is None or method_path.startswith(UNMETERED):
            return handler
        method = method_path.rsplit("/", 1)[-1]
        metadata = dict(handler_call_details.invocation_metadata or ())
        behaviour = handler.unary_unary

        async def wrapped(request: Any, context: aio.ServicerContext) -> Any:
            request_id.set(str(metadata.get("x-request-id", "")))
            code = "OK"
            self._enter(method)
            started = time.perf_counter()
            try:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    code = "DEADLINE_EXCEEDED"
                    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before work began")
                return await behaviour(request, context)
            except WrenError as error:
                code = error.code
                await context.abort(grpc.StatusCode[error.code], str(error))
            except aio.AbortError:
                code = _code_name(context) or code
                raise
            except Exception:
                code = "INTERNAL"
                log.exception("unhandled error in %s", method_path)
                await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
            finally:
                GRPC_LATENCY.labels(self.service, method).observe(time.perf_counter() - started)
                GRPC_REQUESTS.labels(self.service, method, code).inc()
                self._leave(method)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _enter(self, method: str) -> None:
        self.in_flight += 1
        GRPC_IN_FLIGHT.labels(self.service, method).inc()
        UTILIZATION.labels(self.service).set(self.in_flight / self.capacity)

    def _leave(self, method: str) -> None:
        self.in_flight -= 1
        GRPC_IN_FLIGHT.labels(self.service, method).dec()
        UTILIZATION.labels(self.service).set(self.in_flight / self.capacity)


def _code_name(context: aio.ServicerContext) -> str | None:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return None
