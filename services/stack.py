"""`wren up`: the whole stack on one machine — N replicas of each tier plus the gateway as processes (starting,
watching, restarting and stopping them; services.stack_state writes and prints what runs where)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.stack_state import TIERS, Member, describe, site_url, write_state

log = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 180.0
PORT_ATTEMPTS = 3  # a free port can be taken by another process between free_port() and the child's bind
BIND_FAILURES = ("Failed to bind to address", "Address already in use")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class StackConfig:
    artifacts: Path
    replicas: int = 1
    host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_port: int = 8080
    redis_url: str = ""
    state_dir: Path | None = None
    grace_seconds: float = 10.0
    env: dict[str, str] = field(default_factory=dict)  # extra WREN_* settings for every process

    @property
    def directory(self) -> Path:
        return self.state_dir or Path(self.artifacts) / ".wren-up"


class LocalStack:
    """Starts, watches and stops the processes; `state.json` in the state directory lists them."""

    def __init__(self, config: StackConfig) -> None:
        if config.replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.config = config
        self.members: list[Member] = []
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def gateway(self) -> Member:
        return next(m for m in self.members if m.tier == "gateway")

    def replicas(self, tier: str) -> list[Member]:
        return [m for m in self.members if m.tier == tier]

    async def start(self) -> None:
        config = self.config
        (config.directory / "logs").mkdir(parents=True, exist_ok=True)
        if config.redis_url:
            self._publish()
        await asyncio.gather(
            *(
                self._start_member(Member(f"{tier}-{index}", tier, 0, 0), functools.partial(self._tier_env, tier))
                for tier in TIERS
                for index in range(1, config.replicas + 1)
            )
        )
        if config.redis_url:
            await self._start_member(Member("nearline", "nearline", 0, 0), lambda: self._tier_env("nearline"))
        gateway = Member("gateway", "gateway", 0, 0)
        await self._start_member(
            gateway,
            lambda: {
                **self._tier_env("gateway"),
                "WREN_HTTP_PORT": str(gateway.http_port),
                **{
                    f"WREN_{tier.upper()}_REPLICAS": ",".join(f"{config.host}:{m.port}" for m in self.replicas(tier))
                    for tier in TIERS
                },
            },
        )
        await self._wait_http_ready(gateway)
        self.write_state()

    async def _start_member(self, member: Member, env: Callable[[], dict[str, str]]) -> None:
        """Spawns `member` on free ports and waits until it serves; when another process took one of its ports
        first, it is started again on new ones (ports the config fixes are never changed)."""
        config = self.config
        for attempt in range(1, PORT_ATTEMPTS + 1):
            fixed = member.tier == "gateway"
            member.port = (config.grpc_port if fixed else 0) or free_port(config.host)
            member.metrics_port = free_port(config.host)
            if fixed:
                member.http_port = config.http_port or free_port(config.host)
            self._spawn(member, env())
            try:
                await self._wait_serving(member)
                return
            except RuntimeError:
                if attempt == PORT_ATTEMPTS or not any(text in _tail(member.log) for text in BIND_FAILURES):
                    raise
                log.warning("%s could not bind its ports; starting it again on new ones", member.name)
                self.members.remove(member)
                del self.processes[member.name]

    def _tier_env(self, tier: str) -> dict[str, str]:
        """With Redis: features from it, trending from the nearline tier into recall, invalidations between
        gateways, and the nearline tier's event log under the state directory."""
        url = self.config.redis_url
        if not url:
            return {}
        if tier == "feature":
            return {"WREN_BACKEND": "redis", "WREN_REDIS_URL": url}
        if tier == "nearline":
            return {"WREN_REDIS_URL": url, "WREN_EVENT_LOG_DIR": str(self.config.directory / "events")}
        return {"WREN_REDIS_URL": url}

    def _publish(self) -> None:
        from services.feature.publish import publish_bundle
        from wren.core.bundle import Bundle

        publish_bundle(Bundle(self.config.artifacts), self.config.redis_url, progress=True)

    def _spawn(self, member: Member, extra_env: dict[str, str]) -> None:
        config = self.config
        log_path = config.directory / "logs" / f"{member.name}.log"
        env = {
            **os.environ,
            "WREN_LOG_LEVEL": os.environ.get("WREN_LOG_LEVEL", "INFO"),
            "WREN_GRACE_SECONDS": str(config.grace_seconds),
            **config.env,
            **extra_env,
        }
        command = [
            sys.executable,
            "-m",
            "wren.cli.main",
            "serve",
            member.tier,
            "--artifacts",
            str(config.artifacts),
            "--port",
            str(member.port),
            "--metrics-port",
            str(member.metrics_port),
            "--host",
            config.host,
        ]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        member.pid, member.log = process.pid, str(log_path)
        self.members.append(member)
        self.processes[member.name] = process

    async def _wait_serving(self, member: Member) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        target = f"{self.config.host}:{member.port}"
        async with grpc.aio.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                process = self.processes[member.name]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{member.name} exited with code {process.returncode}; see {member.log}:\n" + _tail(member.log)
                    )
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{member.name} not serving after {READY_TIMEOUT_SECONDS:.0f}s; see {member.log}"
                    )
                await asyncio.sleep(0.1)

    async def _wait_http_ready(self, member: Member) -> None:
        url = f"http://{self.config.host}:{member.http_port}/readyz"
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                ready = await asyncio.to_thread(_http_status, url)
                if ready == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway {url} never became ready; see {member.log}")
            await asyncio.sleep(0.1)

    def write_state(self) -> Path:
        """state.json (processes and endpoints) and prometheus_targets.json (file_sd for Prometheus)."""
        return write_state(self.config.directory, self.config.artifacts, self.config.host, self.members)

    @property
    def site_url(self) -> str:
        return site_url(self.config.host, self.gateway.http_port)

    def describe(self) -> str:
        return describe(self.config.directory, self.config.artifacts, self.config.host, self.members)

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def signal(self, name: str, signum: int) -> None:
        """Sends a signal to one member (fault injection)."""
        self.processes[name].send_signal(signum)

    async def restart(self, name: str) -> None:
        """Starts a member that exited again, on the same ports, and waits until it serves."""
        member = self.member(name)
        process = self.processes[name]
        if process.poll() is None:
            raise RuntimeError(f"{name} is still running")
        self.members.remove(member)
        extra = self._tier_env(member.tier)
        self._spawn(member, extra)
        await self._wait_serving(member)
        self.write_state()

    def exited(self) -> list[Member]:
        return [m for m in self.members if self.processes[m.name].poll() is not None]

    async def stop(self) -> None:
        """SIGTERM to the gateway first (it drains), then to every tier; SIGKILL what outlives the grace."""
        grace = self.config.grace_seconds + 5
        for group in (["gateway"], [m.name for m in self.members if m.tier != "gateway"]):
            running = [self.processes[name] for name in group if name in self.processes]
            for process in running:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for process in running:
                while process.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                if process.poll() is None:
                    process.kill()
                    process.wait()


def _http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def run(config: StackConfig) -> int:
    """Starts the stack, prints the endpoints, runs until SIGINT/SIGTERM, stops everything."""
    stack = LocalStack(config)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stack.start()
        print(stack.describe(), flush=True)
        reported: set[str] = set()
        while not stopping.is_set():
            for member in stack.exited():
                if member.name not in reported:
                    reported.add(member.name)
                    print(f"warning: {member.name} (pid {member.pid}) exited; see {member.log}", flush=True)
            if any(m.tier == "gateway" for m in stack.exited()):
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.5)
        return 0
    finally:
        print("stopping ...", flush=True)
        await stack.stop()
        print("stopped.", flush=True)
