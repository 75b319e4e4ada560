"""Comparison tables (Markdown), the machine description, and JSON output that refuses non-finite figures."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers with `digits` significant figures (integers as they are); None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(value)))
        decimals = max(0, digits - 1 - magnitude)
        return f"{value:,.{decimals}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """A Markdown table (readable in a terminal too), first column left-aligned, the rest right-aligned."""
    cells = [[fmt(value) for value in row] for row in rows]
    widths = [max([len(str(h)), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    left = [i == 0 or all(isinstance(row[i], str) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if flush else v.rjust(w) for v, w, flush in zip(values, widths, left, strict=True)]
        return "| " + " | ".join(parts) + " |"

    marks = [":" + "-" * (w + 1) if flush else "-" * (w + 1) + ":" for w, flush in zip(widths, left, strict=True)]
    rule = "|" + "|".join(marks) + "|"
    lines = [line(list(headers)), rule, *(line(row) for row in cells)]
    return (f"{title}\n\n" if title else "") + "\n".join(lines)


def non_finite(value: Any, path: str = "$") -> list[str]:
    """JSON paths of every NaN, infinity or None inside `value`."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in non_finite(item, f"{path}.{key}")]
    if isinstance(value, list | tuple):
        return [p for index, item in enumerate(value) for p in non_finite(item, f"{path}[{index}]")]
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return [path]
    return []


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Writes `payload` (indented, keys in insertion order); raises ValueError naming any non-finite figure."""
    bad = non_finite(payload)
    if bad:
        raise ValueError(f"{path.name}: non-finite or missing figures at {', '.join(bad[:10])}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")
    return path


def machine() -> dict[str, Any]:
    """CPU count and model, memory, load average, Python and library versions of this machine."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count() or 0,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                break
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    from importlib import metadata

    info["versions"] = {}
    for package in ("grpcio", "onnxruntime", "torch", "hnswlib", "numpy", "aiohttp", "uhashring"):
        try:
            info["versions"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return info
