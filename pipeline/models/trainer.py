"""What every ranking-model trainer shares: named inputs as tensors, the logit, Adam parameter groups, inference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from wren.core.model_inputs import MODEL_INPUTS

EPS = 1e-7  # probability clip when a model has no logit of its own


def to_tensors(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Named numpy inputs -> owned torch tensors in MODEL_INPUTS order with the MODEL_INPUTS dtypes."""
    missing = set(MODEL_INPUTS) - set(inputs)
    if missing:
        raise ValueError(f"inputs lack {sorted(missing)}")
    return {
        name: torch.from_numpy(np.array(inputs[name], dtype=dtype, copy=True))
        for name, (dtype, _) in MODEL_INPUTS.items()
    }


def _rows(inputs: dict[str, np.ndarray]) -> int:
    sizes = {len(array) for array in inputs.values()}
    if len(sizes) != 1:
        raise ValueError(f"inputs disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()


def _logit_fn(model: nn.Module) -> Callable[..., torch.Tensor]:
    """The model's raw-logit function if it has one (Ranker.logit), else logit(forward) clipped."""
    logit = getattr(model, "logit", None)
    if callable(logit):
        return logit
    return lambda **batch: torch.logit(model(**batch), eps=EPS)


class OptimiserSettings(Protocol):
    """lr; weight_decay on weight matrices; embedding_weight_decay and lr * embedding_lr_scale on nn.Embedding
    tables (id tables at the full rate memorise within two epochs on MovieLens-small); no decay on biases."""

    lr: float
    weight_decay: float
    embedding_weight_decay: float
    embedding_lr_scale: float


def _param_groups(model: nn.Module, config: OptimiserSettings) -> list[dict]:
    embedding_ids = {
        id(param) for module in model.modules() if isinstance(module, nn.Embedding) for param in module.parameters()
    }
    embeddings, decayed, plain = [], [], []
    for param in model.parameters():
        if not param.requires_grad:
            continue
        if id(param) in embedding_ids:
            embeddings.append(param)
        elif param.ndim >= 2:
            decayed.append(param)
        else:
            plain.append(param)
    return [
        {
            "params": embeddings,
            "weight_decay": config.embedding_weight_decay,
            "lr": config.lr * config.embedding_lr_scale,
        },
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def predict(model: nn.Module, inputs: dict[str, np.ndarray], batch_size: int = 8192) -> np.ndarray:
    """[n] float32 probabilities for named numpy inputs, in eval mode under inference_mode.

    The model's train/eval mode is restored afterwards.
    """
    return _evaluate(model, model, inputs, batch_size)


def predict_logits(model: nn.Module, inputs: dict[str, np.ndarray], batch_size: int = 8192) -> np.ndarray:
    """[n] float32 raw logits (see `_logit_fn`), otherwise as `predict`."""
    return _evaluate(model, _logit_fn(model), inputs, batch_size)


def _evaluate(
    model: nn.Module, function: Callable[..., torch.Tensor], inputs: dict[str, np.ndarray], batch_size: int
) -> np.ndarray:
    n = _rows(inputs)
    tensors = to_tensors(inputs)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                batch = {name: tensor[start : start + batch_size] for name, tensor in tensors.items()}
                out.append(function(**batch).float().reshape(-1).numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.float32)
