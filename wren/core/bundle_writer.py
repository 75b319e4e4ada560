"""Writes an artifact bundle aside and publishes it atomically: `current` never names a partial bundle."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from wren.core.bundle import CURRENT
from wren.core.manifest import MANIFEST, Manifest

STAGING_PREFIX = ".staging-"


def data_fingerprint(files: list[Path]) -> str:
    """sha256 over each input file's name and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def new_version(fingerprint: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{fingerprint[:8]}"


class BundleWriter:
    """Use as a context manager: files go to OUT/.staging-<version>-<pid>/; `publish` renames the
    directory to OUT/<version>/ and then swaps OUT/current; leaving the block without publishing (an
    exception, or simply not calling `publish`) deletes the staging directory and leaves `current` alone."""

    def __init__(self, out_root: Path, version: str) -> None:
        self.out_root = Path(out_root)
        self.version = version
        self.staging = self.out_root / f"{STAGING_PREFIX}{version}-{os.getpid()}"

    def __enter__(self) -> BundleWriter:
        self.out_root.mkdir(parents=True, exist_ok=True)
        remove_abandoned_staging(self.out_root)
        self.staging.mkdir()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)

    def path(self, relative: str) -> Path:
        target = self.staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def save_npz(self, relative: str, **arrays: np.ndarray) -> None:
        named: dict[str, Any] = arrays  # numpy's stub would match a **dict of arrays against allow_pickle
        np.savez(self.path(relative), allow_pickle=False, **named)

    def save_npy(self, relative: str, array: np.ndarray) -> None:
        np.save(self.path(relative), array, allow_pickle=False)

    def save_json(self, relative: str, value: object) -> None:
        self.path(relative).write_text(json.dumps(value, indent=1, sort_keys=False) + "\n")

    def write_manifest(self, manifest: Manifest) -> None:
        self.save_json(MANIFEST, manifest.to_json())

    def publish(self) -> Path:
        """Makes the bundle visible: fsync, rename into place, then atomically repoint `current`."""
        if not (self.staging / MANIFEST).is_file():
            raise RuntimeError("refusing to publish a bundle without a manifest")
        _fsync_tree(self.staging)
        final = self.out_root / self.version
        os.replace(self.staging, final)
        point_current(self.out_root, self.version)
        return final


def point_current(out_root: Path, version: str) -> None:
    """Atomically repoints OUT/current at OUT/<version> (a symlink swapped in with one rename)."""
    link_tmp = out_root / f".{CURRENT}-{os.getpid()}"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(version, target_is_directory=True)
    os.replace(link_tmp, out_root / CURRENT)
    _fsync_dir(out_root)


def remove_abandoned_staging(out_root: Path) -> None:
    """Deletes staging directories whose writer process no longer exists (a crash mid-write)."""
    for candidate in out_root.glob(f"{STAGING_PREFIX}*"):
        pid = candidate.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(root)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
