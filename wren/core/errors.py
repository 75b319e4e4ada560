"""Domain errors that carry their gRPC status name; core code raises these and never imports grpc."""

from __future__ import annotations


class WrenError(Exception):
    """Base class: `code` is a grpc.StatusCode name, the message is safe to show to clients."""

    code = "INTERNAL"
    http_status = 500


class InvalidArgument(WrenError):
    code = "INVALID_ARGUMENT"
    http_status = 400


class NotFound(WrenError):
    code = "NOT_FOUND"
    http_status = 404


class Unavailable(WrenError):
    code = "UNAVAILABLE"
    http_status = 503


class FailedPrecondition(WrenError):
    code = "FAILED_PRECONDITION"
    http_status = 503


class BundleError(WrenError):
    """An artifact bundle is missing, incomplete or of an unsupported format."""

    code = "FAILED_PRECONDITION"
    http_status = 503
