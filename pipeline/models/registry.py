"""Model names -> constructors; `build_model` is how the pipeline instantiates a ranking model."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from pipeline.models.deepfm import DeepFM
from pipeline.models.dims import FeatureScaler, ModelDims
from pipeline.models.layers import Ranker
from pipeline.models.ncf import NeuralCF
from pipeline.models.widedeep import WideAndDeep

MODEL_NAMES = ("deepfm", "widedeep", "ncf")
_MODELS: dict[str, type[Ranker]] = {"deepfm": DeepFM, "widedeep": WideAndDeep, "ncf": NeuralCF}


def build_model(
    name: str,
    dims: ModelDims,
    scaler: FeatureScaler,
    *,
    pretrained: np.ndarray | None = None,
    seed: int,
    **hyper: Any,
) -> Ranker:
    """A freshly initialised model; identical for the same (name, dims, scaler, pretrained, seed, hyper).

    `hyper` goes to the model constructor (k, hidden, dropout, norm). `pretrained` ([vocab_size, E]
    item vectors, row 0 = padding) initialises the id-embedding table. The global torch RNG is left as
    it was.
    """
    try:
        cls = _MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}") from None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        return cls(dims, scaler, pretrained=pretrained, generator=generator, **hyper)
