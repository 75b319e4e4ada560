"""Side-by-side reports of systems' top-K metrics: a GitHub-markdown table and a grouped bar chart PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SERVED_SYSTEM = "wren"
_SERVED_COLOUR = "#d62728"
_BASELINE_COLOURS = ("#8da0cb", "#66c2a5", "#b3b3b3", "#e5c494", "#a6d854", "#80b1d3", "#bebada")
_RANKING = (("ndcg", "NDCG"), ("precision", "Precision"), ("recall", "Recall"), ("map", "MAP"))


def comparison_table(rows: dict[str, dict[str, float]], k: int = 10) -> str:
    """GitHub-markdown table, one line per system in `rows` order; `rows` maps a system name to its
    `list_metrics` result (keys ndcg_at_{k}, precision_at_{k}, recall_at_{k}, map_at_{k}, coverage,
    mean_popularity). A missing value shows as "–"."""
    header = ["system", *(f"{label}@{k}" for _, label in _RANKING), "coverage", "mean popularity"]
    keys = [*(f"{metric}_at_{k}" for metric, _ in _RANKING), "coverage", "mean_popularity"]
    formats = ["{:.4f}"] * len(_RANKING) + ["{:.2%}", "{:.1f}"]
    body = [
        [system, *(fmt.format(metrics[key]) if key in metrics else "–" for key, fmt in zip(keys, formats, strict=True))]
        for system, metrics in rows.items()
    ]
    lines = [header, ["---"] + ["---:"] * (len(header) - 1), *body]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def comparison_chart(rows: dict[str, dict[str, float]], path: Path, title: str, k: int = 10) -> None:
    """PNG at `path`: NDCG/Precision/Recall/MAP@k grouped by metric, one bar per system (in `rows` order)
    with its value on top; the served system (the row named "wren", if any) in a strong colour, the
    baselines in muted ones. Missing values are drawn as 0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(rows)
    values = np.array(
        [[rows[system].get(f"{metric}_at_{k}", 0.0) for metric, _ in _RANKING] for system in systems], np.float64
    )
    width = 0.8 / max(len(systems), 1)
    offsets = (np.arange(len(systems)) - (len(systems) - 1) / 2) * width
    figure, axes = plt.subplots(figsize=(max(7.0, 1.5 + 0.5 * len(systems) * len(_RANKING)), 4.8))
    baseline_index = 0
    for index, system in enumerate(systems):
        served = system == SERVED_SYSTEM
        colour = _SERVED_COLOUR if served else _BASELINE_COLOURS[baseline_index % len(_BASELINE_COLOURS)]
        baseline_index += not served
        bars = axes.bar(
            np.arange(len(_RANKING)) + offsets[index],
            values[index],
            width,
            label=system,
            color=colour,
            edgecolor="black" if served else "#555555",
            linewidth=1.4 if served else 0.6,
            zorder=3,
        )
        axes.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2, fontweight="bold" if served else "normal")
    axes.set_xticks(np.arange(len(_RANKING)), [f"{label}@{k}" for _, label in _RANKING])
    axes.set_ylabel("score (higher is better)")
    axes.set_ylim(0, max(float(values.max(initial=0.0)) * 1.25, 0.05))
    axes.grid(axis="y", alpha=0.3, zorder=0)
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize=8, ncols=min(len(systems), 3), frameon=False)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=130)
    plt.close(figure)
