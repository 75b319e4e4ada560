"""The one error table: every domain error's gRPC status and HTTP status, and the lookups built on it."""

from __future__ import annotations

import grpc
import pytest

from wren.core.errors import (
    ERRORS,
    BundleError,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
    Unimplemented,
    WrenError,
    code_for_http,
    error_for,
)


def test_every_entry_names_its_own_class_and_a_real_grpc_status() -> None:
    for code, kind in ERRORS.items():
        assert kind.error.code == code
        assert grpc.StatusCode[kind.grpc_code].name == kind.grpc_code
        assert 400 <= kind.http_status < 600


@pytest.mark.parametrize(
    ("error", "grpc_code", "http_status"),
    [
        (InvalidArgument("k must be positive"), "INVALID_ARGUMENT", 400),
        (FailedPrecondition("no feature bundle"), "FAILED_PRECONDITION", 400),
        (BundleError("manifest missing"), "FAILED_PRECONDITION", 400),
        (NotFound("unknown item 7"), "NOT_FOUND", 404),
        (Unimplemented("POST is not allowed"), "UNIMPLEMENTED", 405),
        (WrenError("internal error"), "INTERNAL", 500),
        (Unavailable("redis down"), "UNAVAILABLE", 503),
        (DeadlineExceeded("too late"), "DEADLINE_EXCEEDED", 504),
    ],
)
def test_each_error_maps_to_one_grpc_status_and_one_http_status(
    error: WrenError, grpc_code: str, http_status: int
) -> None:
    assert (error.grpc_code, error.http_status) == (grpc_code, http_status)


def test_error_for_rebuilds_the_domain_error_of_a_code() -> None:
    error = error_for("NOT_FOUND", "unknown user 5")
    assert type(error) is NotFound and str(error) == "unknown user 5"
    unknown = error_for("DATA_LOSS", "disk gone")
    assert type(unknown) is WrenError and unknown.code == "INTERNAL" and str(unknown) == "disk gone"


def test_code_for_http_reads_the_table_first() -> None:
    assert [code_for_http(status) for status in (400, 404, 405, 503, 504)] == [
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "UNIMPLEMENTED",
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
    ]
    assert code_for_http(413) == "INVALID_ARGUMENT" and code_for_http(502) == "INTERNAL"


def test_the_http_benchmark_target_reports_the_gateways_own_code() -> None:
    from benchmarks.targets import _error_code

    assert _error_code(503, b'{"error": {"code": "UNAVAILABLE", "message": "recall down"}}') == "UNAVAILABLE"
    assert _error_code(404, b"<html>not json</html>") == "NOT_FOUND"  # a proxy's page: the table's code
    assert _error_code(502, b"") == "INTERNAL"


def test_messages_are_bounded_whatever_input_they_quote() -> None:
    from wren.core.errors import MAX_MESSAGE_CHARS, InvalidArgument

    long = InvalidArgument(f"type must be one of rating, click, view, got {'x' * 12_000!r}")
    assert len(str(long)) == MAX_MESSAGE_CHARS and str(long).endswith("...")
    assert str(long).startswith("type must be one of rating, click, view, got 'xxx")
    assert str(InvalidArgument("short")) == "short"
