"""PNG charts of bench results (matplotlib, headless): latency CDFs, throughput-latency curves, lines and bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

DPI = 110


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _finish(
    fig: plt.Figure,
    ax: plt.Axes,
    path: Path,
    *,
    title: str,
    xlabel: str | None = None,
    ylabel: str | None = None,
    logx: bool = False,
    logy: bool = False,
    bars: bool = False,
) -> Path:
    """The finish every chart shares: scales, axis labels, grid, legend and title; then saves it."""
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if bars:
        ax.grid(True, axis="y", alpha=0.3)
    else:
        ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def latency_cdf(path: Path, series: Mapping[str, np.ndarray], title: str) -> Path:
    """Empirical CDF of each run's latencies (seconds in, milliseconds on a log x axis)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, seconds in series.items():
        if len(seconds) == 0:
            continue
        ms = np.sort(np.asarray(seconds) * 1000.0)
        ax.plot(ms, np.arange(1, len(ms) + 1) / len(ms), label=f"{label} (n={len(ms):,})")
    ax.set_ylim(0, 1.01)
    for level in (0.5, 0.99):
        ax.axhline(level, color="grey", lw=0.6, ls=":")
    return _finish(
        fig, ax, path, title=title, xlabel="latency (ms, log scale)", ylabel="fraction of requests ≤ latency", logx=True
    )


def throughput_latency(path: Path, curves: Mapping[str, Sequence[tuple[float, float, float]]], title: str) -> Path:
    """Per setup, points (achieved throughput rps, p50 ms, p99 ms) of an open-loop sweep in offered-rate order
    (past saturation the achieved rate can fall, so the line may turn back): p50 solid, p99 dashed."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for index, (label, points) in enumerate(curves.items()):
        color = f"C{index}"
        x = [p[0] for p in points]
        ax.plot(x, [p[1] for p in points], "o-", color=color, label=f"{label} p50")
        ax.plot(x, [p[2] for p in points], "s--", color=color, label=f"{label} p99")
    return _finish(
        fig,
        ax,
        path,
        title=title,
        xlabel="achieved throughput (requests/s)",
        ylabel="latency (ms, log scale)",
        logy=True,
    )


def lines(
    path: Path,
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    logy: bool = False,
    styles: Mapping[str, str] | None = None,
) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, ys in series.items():
        ax.plot(x[: len(ys)], ys, (styles or {}).get(label, "o-"), label=label)
    return _finish(fig, ax, path, title=title, xlabel=xlabel, ylabel=ylabel, logx=logx, logy=logy)


def scatter_labeled(
    path: Path,
    points: Mapping[str, Sequence[tuple[float, float, str]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
) -> Path:
    """Per series, points (x, y, annotation) joined in order."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, pts in points.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=label)
        for x, y, note in pts:
            ax.annotate(note, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    return _finish(fig, ax, path, title=title, xlabel=xlabel, ylabel=ylabel, logx=logx)


def grouped_bars(
    path: Path,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
    logy: bool = False,
) -> Path:
    """One cluster of bars per group, one bar per series."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    width = 0.8 / max(1, len(series))
    positions = np.arange(len(groups))
    for index, (label, values) in enumerate(series.items()):
        bars = ax.bar(positions + index * width - 0.4 + width / 2, values, width, label=label)
        ax.bar_label(bars, fmt="%.2g", fontsize=7)
    ax.set_xticks(positions, groups)
    return _finish(fig, ax, path, title=title, ylabel=ylabel, logy=logy, bars=True)
