"""The human-readable side of a training run: a summary table and a PNG of the training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def summary_table(manifest: dict) -> str:
    """A fixed-width table of the run's headline numbers."""
    metrics = manifest["metrics"]
    lines = [f"Wren bundle {manifest['version']}  (data {manifest['data_fingerprint'][:12]}, "
             f"{metrics.get('train_seconds', 0):.0f}s)"]
    lines.append("")
    lines.append(f"{'ranking model':<22}{'test AUC':>10}{'logloss':>10}")
    for name, values in metrics["models"].items():
        marker = " *" if name == manifest["default_model"] else ""
        lines.append(f"{name + marker:<22}{values['auc']:>10.4f}{values['logloss']:>10.4f}")
    baseline = metrics["baseline"]
    lines.append(f"{'logistic regression':<22}{baseline['auc']:>10.4f}{baseline['logloss']:>10.4f}")
    lines.append("")
    ks = sorted({int(key.split('_')[-1]) for values in metrics["recall"].values() for key in values})
    header = "".join(f"{'R@' + str(k):>9}" for k in ks) + "".join(f"{'NDCG@' + str(k):>10}" for k in ks)
    lines.append(f"{'recall channel':<18}{header}")
    for name, values in metrics["recall"].items():
        row = "".join(f"{values[f'recall_at_{k}']:>9.4f}" for k in ks)
        row += "".join(f"{values[f'ndcg_at_{k}']:>10.4f}" for k in ks)
        lines.append(f"{name:<18}{row}")
    lines.append("")
    index = metrics["index"]
    lines.append(f"HNSW recall@100 vs exact: {index['hnsw_recall_at_100']:.4f}   "
                 f"LSH recall@100 vs exact: {index['lsh_recall_at_100']:.4f}")
    return "\n".join(lines)


def plot_training(histories: dict, metrics: dict, path: Path) -> None:
    """Validation loss and AUC per epoch for every model, plus Recall@K per recall channel."""
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, history in histories.items():
        epochs = range(1, len(history.valid_loss) + 1)
        axes[0].plot(epochs, history.train_loss, linestyle="--", alpha=0.6, label=f"{name} train")
        axes[0].plot(epochs, history.valid_loss, label=f"{name} valid")
        axes[1].plot(epochs, history.valid_auc, label=name)
        axes[1].axvline(history.best_epoch + 1, linestyle=":", alpha=0.3)
    axes[0].set(title="log loss per epoch", xlabel="epoch")
    axes[1].set(title="validation AUC per epoch", xlabel="epoch")
    axes[1].axhline(metrics["baseline"]["auc"], color="grey", linestyle="--", label="LR baseline (test)")
    for name, values in metrics["recall"].items():
        ks = sorted(int(key.split("_")[-1]) for key in values if key.startswith("recall_at_"))
        axes[2].plot(ks, [values[f"recall_at_{k}"] for k in ks], marker="o", label=name)
    axes[2].set(title="Recall@K on test positives", xlabel="K", xscale="log")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
