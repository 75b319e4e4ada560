"""The committed wren/v1 code is exactly what grpcio-tools generates from protos/ (never stale)."""

from __future__ import annotations

import filecmp
from pathlib import Path

from tools.protogen import ROOT, generate, proto_files


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = sorted(p.name for p in (tmp_path / "wren" / "v1").glob("*_pb2*.py*"))
    committed = sorted(p.name for p in (ROOT / "wren" / "v1").glob("*_pb2*.py*"))
    assert fresh == committed
    expected = {f"{p.stem}{suffix}" for p in proto_files() for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")}
    assert set(fresh) == expected
    stale = [
        name
        for name in fresh
        if not filecmp.cmp(tmp_path / "wren" / "v1" / name, ROOT / "wren" / "v1" / name, shallow=False)
    ]
    assert not stale, f"regenerate with `make protos`: {stale}"


def test_imports_follow_the_proto_package() -> None:
    from wren.v1 import gateway_pb2, gateway_pb2_grpc

    assert gateway_pb2.DESCRIPTOR.package == "wren.v1"
    assert hasattr(gateway_pb2_grpc, "GatewayServiceStub")
