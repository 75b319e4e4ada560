"""The gateway's error for a failed call to a tier, carrying the gRPC status name it ended with."""

from __future__ import annotations

from wren.core.errors import ERRORS, WrenError, error_for

# Codes a tier answers for the client's own mistake (bad input, an unknown id): the gateway re-raises them
# rather than degrade. FAILED_PRECONDITION from a tier is the tier's problem (e.g. no feature bundle in Redis).
PASS_THROUGH: dict[str, type[WrenError]] = {code: ERRORS[code].error for code in ("INVALID_ARGUMENT", "NOT_FOUND")}


class UpstreamError(Exception):
    """A tier call failed for good: no replica answered in time, or one answered with a non-retryable status.

    - `tier`: the tier's name ("feature", "recall", "ranking");
    - `code`: a `grpc.StatusCode` name, e.g. "UNAVAILABLE", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT";
    - `message`: the upstream's details or a summary of the failed attempts (no stack traces).
    """

    def __init__(self, tier: str, code: str, message: str) -> None:
        super().__init__(f"{tier}: {code}: {message}")
        self.tier = tier
        self.code = code
        self.message = message


def raise_client_errors(error: UpstreamError) -> None:
    """Bad input or an unknown id found by a tier is the client's problem, not a reason to degrade: re-raised as
    the domain error of the same code. Any other error returns, for the caller to handle."""
    if error.code in PASS_THROUGH:
        raise error_for(error.code, error.message) from None
