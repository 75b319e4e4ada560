"""The human-readable side of a training run: summary tables and PNGs of the served list and the training."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipeline.evaluation.report import comparison_chart, comparison_table
from wren.core.manifest import Manifest


def served_title(served: dict) -> str:
    users = f"{served['users']:,} test users"
    population = served.get("population", served["users"])
    if population > served["users"]:
        interval = served["ndcg_ci95"]["wren"]
        users = (
            f"a seeded sample of {served['users']:,} of {population:,} test users "
            f"(NDCG@{served['k']} +-{interval:.4f} at 95 %)"
        )
    return f"served top-{served['k']} list vs baselines, {served['protocol']} protocol, {users}"


def summary_table(manifest: Manifest) -> str:
    """The run's headline numbers: the served list against the baselines, then secondary figures."""
    metrics = manifest.metrics
    served = metrics["served"]
    k = served["k"]
    lines = [
        f"Wren bundle {manifest.version}  (data {manifest.data_fingerprint[:12]}, "
        f"{metrics.get('train_seconds', 0):.0f}s)",
        "",
        served_title(served),
        "",
    ]
    lines.append(comparison_table(served["systems"], k))
    wren = served["systems"]["wren"]
    lines.append("")
    lines.append(
        f"served NDCG@{k} {wren[f'ndcg_at_{k}']:.4f}: {served['vs_best_baseline']:.2f}x the best baseline "
        f"({served['best_baseline']}), {served['vs_popularity']:.2f}x popularity; "
        f"already-rated items served: {wren['rated_items_served']}"
    )
    lines.append("")
    lines.append(f"{'ranking model (secondary)':<28}{'rating AUC':>11}{'logloss':>10}{'valid cand. NDCG':>18}")
    for name, values in metrics["models"].items():
        marker = " *" if name == manifest.default_model else ""
        entry = manifest.models[name]
        lines.append(
            f"{name + marker:<28}{values['auc']:>11.4f}{values['logloss']:>10.4f}"
            f"{entry.valid_candidate_ndcg if entry.valid_candidate_ndcg is not None else float('nan'):>18.4f}"
        )
    baseline = metrics["baseline"]
    lines.append(f"{'logistic regression':<28}{baseline['auc']:>11.4f}{baseline['logloss']:>10.4f}")
    prior = manifest.models[manifest.default_model].prior
    if prior:
        tuned = (
            f" (trained {prior['trained_scale']:.2f}, then chosen on validation NDCG)"
            if "valid_candidate_ndcg_by_scale" in prior
            else ""
        )
        lines.append(
            f"the rankers start from the {prior['channel']} channel's order (validation candidate NDCG "
            f"{prior['valid_candidate_ndcg']:.4f}), scale {prior['scale']:.2f}{tuned}"
        )
    lines.append("")
    ks = sorted({int(key.split("_")[-1]) for values in metrics["recall"].values() for key in values})
    header = "".join(f"{'R@' + str(k):>9}" for k in ks)
    lines.append(f"{'recall channel (positives)':<28}{header}")
    for name, values in metrics["recall"].items():
        lines.append(f"{name:<28}" + "".join(f"{values[f'recall_at_{k}']:>9.4f}" for k in ks))
    lines.append("")
    index = metrics["index"]
    lines.append(
        f"HNSW recall@100 vs exact: {index['hnsw_recall_at_100']:.4f}   "
        f"LSH recall@100 vs exact: {index['lsh_recall_at_100']:.4f}"
    )
    return "\n".join(lines)


def plot_training(histories: dict, path: Path) -> None:
    """Training loss and validation NDCG over recall candidates per epoch, for every ranking model."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, history in histories.items():
        epochs = range(1, history.epochs + 1)
        axes[0].plot(epochs, history.train_loss, label=name)
        axes[1].plot(range(history.epochs + 1), [history.initial_ndcg, *history.valid_ndcg], marker="o", label=name)
        axes[1].axvline(history.best_epoch, linestyle=":", alpha=0.3)
    axes[0].set(title="pairwise loss per epoch", xlabel="epoch")
    axes[1].set(title="validation NDCG@10 over recall candidates", xlabel="epoch (0: as initialised)")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(directory: Path, manifest: Manifest, histories: dict) -> None:
    """summary.txt, served.png (served list vs baselines) and training_curves.png under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    served = manifest.metrics["served"]
    comparison_chart(served["systems"], directory / "served.png", served_title(served), served["k"])
    plot_training(histories, directory / "training_curves.png")
    (directory / "summary.txt").write_text(summary_table(manifest) + "\n")
