"""Server interceptor: RED metrics, in-flight/utilization, deadline checks, request ids and domain-error mapping."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from services.common.inflight import tracker
from services.common.logs import REQUEST_ID_HEADER, request_id
from services.common.metrics import GRPC_LATENCY, GRPC_REQUESTS
from wren.core.errors import DeadlineExceeded, WrenError

log = logging.getLogger(__name__)
INTERNAL_MESSAGE = "internal error"
UNMETERED = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class ServiceInterceptor(aio.ServerInterceptor):
    """Wraps every unary-unary handler of a service.

    - counts requests by final code, times them, tracks in-flight requests and utilization;
    - rejects calls whose deadline has already passed before any work (DEADLINE_EXCEEDED);
    - sets the request-id context var from the `x-request-id` metadata for the call, so log lines carry it
      (at DEBUG, one "handled <method>" line per call);
    - maps `WrenError` to its status code (wren.core.errors.ERRORS) with its client-safe message;
    - turns any other exception into INTERNAL with a generic message (the text stays in the log).
    """

    def __init__(self, service: str, capacity: int) -> None:
        self.service = service
        self.in_flight = tracker(service, capacity)

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
            token = request_id.set(str(metadata.get(REQUEST_ID_HEADER, "")))
            code = "OK"
            started = self.in_flight.enter(method)
            try:
                remaining = context.time_remaining()
                if remaining is not None and remaining <= 0:
                    raise DeadlineExceeded("deadline exceeded before work began")
                return await behaviour(request, context)
            except WrenError as error:
                code = error.grpc_code
                await _abort(context, grpc.StatusCode[code], str(error))
            except aio.AbortError:
                code = _code_name(context) or code
                raise
            except Exception:
                code = "INTERNAL"
                log.exception("unhandled error in %s", method_path)
                await _abort(context, grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
            finally:
                GRPC_LATENCY.labels(self.service, method).observe(self.in_flight.leave(method, started))
                GRPC_REQUESTS.labels(self.service, method, code).inc()
                log.debug("handled %s", method, extra={"code": code})
                request_id.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


async def _abort(context: aio.ServicerContext, status: grpc.StatusCode, message: str) -> None:
    """Ends the call with `status` (raises AbortError, as grpc requires); a call that is already over
    (its deadline passed, the client cancelled) has nothing left to send, so that is not an error."""
    try:
        await context.abort(status, message)
    except aio.UsageError:
        return None


def _code_name(context: aio.ServicerContext) -> str | None:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    return None
