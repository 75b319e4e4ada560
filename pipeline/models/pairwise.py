"""Pairwise learning to rank for the ranking models: a user's held-out items against that user's recall
candidates (hard negatives) and random catalogue items (easy negatives), early-stopped on validation NDCG."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.models.trainer import _logit_fn, _param_groups, predict, to_tensors
from pipeline.ranking_candidates import CandidateRows


@dataclass
class PairwiseConfig:
    """Adam (trainer.OptimiserSettings); each epoch draws `negatives` pairs per positive row, half from the user's
    hard negatives and half from their random ones (all hard when a user has no random rows). A pair's loss
    is gain(positive) * softplus(s_neg - s_pos): a liked item counts twice. Early stopping on the validation
    users' NDCG@`ndcg_k` over their recall candidates, after `patience` epochs without improvement. The schedule
    has no defaults here: pipeline.config.RankingConfig holds them (pipeline.ranking_training passes them in)."""

    epochs: int
    batch_size: int
    lr: float
    negatives: int
    patience: int
    ndcg_k: int
    weight_decay: float = 1e-5
    embedding_weight_decay: float = 1e-5
    embedding_lr_scale: float = 0.05
    seed: int = 0
    progress: bool = True


@dataclass
class RankingHistory:
    """Per-epoch training loss and validation NDCG; `best_epoch` (1-based) holds the kept weights, 0 when no
    epoch beat the initial model (`initial_ndcg`)."""

    train_loss: list[float] = field(default_factory=list)
    valid_ndcg: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    initial_ndcg: float = 0.0
    best_epoch: int = 0
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.valid_ndcg)

    @property
    def best_valid_ndcg(self) -> float:
        return self.valid_ndcg[self.best_epoch - 1] if self.best_epoch else self.initial_ndcg


def candidate_ndcg(rows: CandidateRows, scores: np.ndarray, k: int) -> float:
    """Mean NDCG@k (binary: gain > 0) of each user's recall candidates ordered by `scores`, over users with
    at least one relevant candidate."""
    offsets = rows.groups()
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    total, users = 0.0, 0
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        hard = rows.hard[start:end]
        relevant = rows.gain[start:end][hard] > 0
        if not relevant.any():
            continue
        order = np.argsort(-scores[start:end][hard], kind="stable")[:k]
        ideal = discount[: min(k, int(relevant.sum()))].sum()
        total += float((relevant[order] * discount[: len(order)]).sum() / ideal)
        users += 1
    return total / max(users, 1)


def sample_pairs(rows: CandidateRows, negatives: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(positive row, negative row) index pairs: `negatives` per positive, drawn from the same user's rows."""
    offsets = rows.groups()
    pos, neg = [], []
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        gain, hard = rows.gain[start:end], rows.hard[start:end]
        positives = np.flatnonzero(gain > 0)
        if len(positives) == 0:
            continue
        hard_pool = np.flatnonzero((gain == 0) & hard)
        easy_pool = np.flatnonzero((gain == 0) & ~hard)
        pools = [p for p in (hard_pool, easy_pool) if len(p)]
        if not pools:
            continue
        per_pool = [negatives - negatives // len(pools) * (len(pools) - 1)] + [negatives // len(pools)] * (
            len(pools) - 1
        )
        for pool, count in zip(pools, per_pool, strict=True):
            drawn = pool[rng.integers(0, len(pool), (len(positives), count))]
            pos.append(np.repeat(positives, count) + start)
            neg.append(drawn.ravel() + start)
    if not pos:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(pos), np.concatenate(neg)


def train_pairwise(
    model: nn.Module,
    fit: CandidateRows,
    valid: CandidateRows,
    config: PairwiseConfig,
    on_epoch: Callable[[int, RankingHistory], None] | None = None,
) -> RankingHistory:
    """Trains `model` in place (left in eval mode with the best-validation weights, which may be the initial
    ones). Deterministic for a seed and thread count."""
    x = to_tensors(fit.inputs)
    gain = torch.as_tensor(fit.gain)
    rng = np.random.default_rng(config.seed)
    history = RankingHistory()
    started = time.perf_counter()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(config.seed)
        optimizer = torch.optim.Adam(_param_groups(model, config), lr=config.lr)
        logit = _logit_fn(model)
        history.initial_ndcg = candidate_ndcg(valid, predict(model, valid.inputs), config.ndcg_k)
        best, best_state, stale = history.initial_ndcg, copy.deepcopy(model.state_dict()), 0
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            pos, neg = sample_pairs(fit, config.negatives, rng)
            order = rng.permutation(len(pos))
            model.train()
            total, seen = 0.0, 0
            batches = range(0, len(order), config.batch_size)
            for start in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not config.progress, unit="batch"):
                chosen = order[start : start + config.batch_size]
                if len(chosen) < 2:
                    continue
                p, n = torch.as_tensor(pos[chosen]), torch.as_tensor(neg[chosen])
                both = torch.cat([p, n])
                scores = logit(**{name: tensor[both] for name, tensor in x.items()})
                margin = scores[: len(p)] - scores[len(p) :]
                loss = (gain[p] * nn.functional.softplus(-margin)).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(chosen)
                seen += len(chosen)
            ndcg = candidate_ndcg(valid, predict(model, valid.inputs), config.ndcg_k)
            history.train_loss.append(total / max(seen, 1))
            history.valid_ndcg.append(ndcg)
            history.epoch_seconds.append(time.perf_counter() - epoch_start)
            if ndcg > best:
                best, history.best_epoch, stale = ndcg, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                stale += 1
            history.seconds = time.perf_counter() - started
            if on_epoch is not None:
                on_epoch(epoch, history)
            if stale >= config.patience:
                break
        model.load_state_dict(best_state)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    model.eval()
    history.seconds = time.perf_counter() - started
    return history
