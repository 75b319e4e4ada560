"""`wren up` survives the race between picking a free port and the child process binding it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import services.stack as up

pytestmark = [pytest.mark.e2e]


async def test_a_member_whose_port_was_taken_starts_again_on_new_ports(
    tiny_artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, squatters, handed = up.free_port, [], []

    def racing(host: str = "127.0.0.1") -> int:
        port = real(host)
        handed.append(port)
        if len(handed) == 1:  # another process takes the very first port before the child binds it
            squatter = socket.socket()
            squatter.bind((host, port))
            squatter.listen()
            squatters.append(squatter)
        return port

    monkeypatch.setattr(up, "free_port", racing)
    stack = up.LocalStack(
        up.StackConfig(
            artifacts=tiny_artifacts, replicas=1, grpc_port=0, http_port=0, state_dir=tmp_path, grace_seconds=2.0
        )
    )
    try:
        await stack.start()
        ports = {member.port for member in stack.members}
        assert handed[0] not in ports and len(stack.members) == 4
        assert "could not bind" not in Path(stack.gateway.log).read_text()
    finally:
        await stack.stop()
        for squatter in squatters:
            squatter.close()
