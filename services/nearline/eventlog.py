"""The training event log: append-only, fsynced JSON-lines files, rotated by size and age."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from services.nearline.apply import StreamEvent

LOG_SUFFIX = ".jsonl"


def event_line(item: StreamEvent) -> str:
    """One event as a log line (`pipeline.events` reads these): its idempotency key, ids, type, rating, time."""
    event = item.event
    record = {
        "event_id": item.key,
        "user_id": event.user_id,
        "item_id": event.item_id,
        "type": event.type,
        "rating": event.rating,
        "timestamp": event.timestamp,
        "stream_id": item.entry_id,
    }
    return json.dumps(record, separators=(",", ":")) + "\n"


class EventLog:
    """Files `events-<UTC start>-<writer>-<n>.jsonl` in `directory`, one writer per consumer process, so
    replicas never share a file. `append` returns once the lines are on disk (written and fsynced): the
    consumer acknowledges events only after that. A crash can leave a last line cut short; readers skip it
    (the event was not acknowledged, so it is delivered, and logged, again). Redeliveries make an event
    appear twice, under one event_id; readers keep the first."""

    def __init__(
        self,
        directory: str | Path,
        writer: str,
        max_bytes: int = 64 * 1024 * 1024,
        max_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.writer = writer
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.clock = clock
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = None
        self._opened = 0.0
        self._written = 0
        self._sequence = 0

    @property
    def path(self) -> Path | None:
        return Path(self._file.name) if self._file is not None else None

    def append(self, events: list[StreamEvent]) -> int:
        """Writes the events, flushes and fsyncs; returns the bytes written."""
        if not events:
            return 0
        self._rotate_if_due()
        handle = self._file or self._open()
        text = "".join(event_line(item) for item in events)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
        size = len(text.encode())
        self._written += size
        return size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _rotate_if_due(self) -> None:
        if self._file is not None and (
            self._written >= self.max_bytes or self.clock() - self._opened >= self.max_seconds
        ):
            self.close()

    def _open(self) -> IO[str]:
        self._sequence += 1
        started = datetime.fromtimestamp(self.clock(), UTC)
        name = f"events-{started:%Y%m%dT%H%M%SZ}-{self.writer}-{self._sequence:04d}{LOG_SUFFIX}"
        self._file = open(self.directory / name, "a", encoding="utf-8")  # kept open across appends
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)  # the new file's directory entry survives a crash too
        finally:
            os.close(fd)
        self._opened, self._written = self.clock(), 0
        return self._file
