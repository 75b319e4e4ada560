"""A private redis-server for tests: free port, no persistence, can be stopped, paused and restarted."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1:port, working in `directory`; start() again after stop() reuses the port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=1.0)

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Starts the server and returns once it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.log),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not start: {self._log_tail()}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 5 s); a paused server is resumed first so it can exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing answers (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def _answers(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=0.2, socket_connect_timeout=0.2) as probe:
                return bool(probe.ping())
        except redis.ConnectionError:
            return False

    def _log_tail(self) -> str:
        return self.log.read_text()[-500:] if self.log.exists() else "(no log)"
