"""Domain errors and the one table mapping each to its gRPC status and HTTP status; core code never imports grpc."""

from __future__ import annotations

from typing import NamedTuple

MAX_MESSAGE_CHARS = 300  # a message quotes client input; bounded, it always fits a gRPC status header


class WrenError(Exception):
    """Base class: `code` names the error in ERRORS (a grpc.StatusCode name); the message is safe to show clients
    and at most MAX_MESSAGE_CHARS long (longer ones are cut, with "..." at the end)."""

    code = "INTERNAL"

    def __init__(self, message: str = "") -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 3] + "..."
        super().__init__(message)

    @property
    def grpc_code(self) -> str:
        return ERRORS[self.code].grpc_code

    @property
    def http_status(self) -> int:
        return ERRORS[self.code].http_status


class InvalidArgument(WrenError):
    code = "INVALID_ARGUMENT"


class NotFound(WrenError):
    code = "NOT_FOUND"


class Unimplemented(WrenError):
    """The path or service does not serve the method asked for (HTTP: a wrong method, 405)."""

    code = "UNIMPLEMENTED"


class FailedPrecondition(WrenError):
    code = "FAILED_PRECONDITION"


class BundleError(FailedPrecondition):
    """An artifact bundle is missing, incomplete or of an unsupported format."""


class Unavailable(WrenError):
    code = "UNAVAILABLE"


class DeadlineExceeded(WrenError):
    code = "DEADLINE_EXCEEDED"


class ErrorKind(NamedTuple):
    error: type[WrenError]
    grpc_code: str  # a grpc.StatusCode name
    http_status: int


# code -> (exception class, gRPC status, HTTP status); the interceptor, the HTTP middleware, the gateway's
# pass-through and the benchmarks all read this. HTTP statuses follow google.rpc.Code's mapping, except
# UNIMPLEMENTED: Wren raises it only for a method a path does not serve, which HTTP calls 405.
ERRORS: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": ErrorKind(InvalidArgument, "INVALID_ARGUMENT", 400),
    "FAILED_PRECONDITION": ErrorKind(FailedPrecondition, "FAILED_PRECONDITION", 400),
    "NOT_FOUND": ErrorKind(NotFound, "NOT_FOUND", 404),
    "UNIMPLEMENTED": ErrorKind(Unimplemented, "UNIMPLEMENTED", 405),
    "INTERNAL": ErrorKind(WrenError, "INTERNAL", 500),
    "UNAVAILABLE": ErrorKind(Unavailable, "UNAVAILABLE", 503),
    "DEADLINE_EXCEEDED": ErrorKind(DeadlineExceeded, "DEADLINE_EXCEEDED", 504),
}


def error_for(code: str, message: str) -> WrenError:
    """The domain error for `code` (a table code or gRPC status name); unknown codes give INTERNAL."""
    return ERRORS.get(code, ERRORS["INTERNAL"]).error(message)


def code_for_http(status: int) -> str:
    """The table code of an HTTP status (the first entry with it); other 4xx are INVALID_ARGUMENT, 5xx INTERNAL."""
    for code, kind in ERRORS.items():
        if kind.http_status == status:
            return code
    return "INVALID_ARGUMENT" if status < 500 else "INTERNAL"
