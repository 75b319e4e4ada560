"""ONNX export of a ranking model (torch dynamo exporter) and the PyTorch-vs-onnxruntime parity check."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from pipeline.models.trainer import predict
from wren.core.model_inputs import MODEL_INPUTS, MODEL_OUTPUT
from wren.core.onnx import cpu_session

BATCH_AXIS = "batch"
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(double)": "float64"}
_QUIET_LOGGERS = ("torch.onnx", "torch.export", "torch._dynamo", "torch._export", "onnxscript", "onnx_ir")


class ParityError(RuntimeError):
    """The ONNX model's scores differ from the PyTorch model's by more than the tolerance."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow the exporter's progress prints, Python warnings and torch/onnxscript log lines.

    Captured stdout/stderr text is discarded; real failures still surface as exceptions.
    """
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _signature_entry(arg: Any) -> dict[str, Any]:
    shape = [dim if isinstance(dim, int) else BATCH_AXIS for dim in arg.shape]
    return {"name": arg.name, "dtype": _ORT_DTYPES.get(arg.type, arg.type), "shape": shape}


def signature(path: Path) -> dict[str, list[dict[str, Any]]]:
    """{"inputs": [{"name", "dtype", "shape"}], "outputs": [...]} of an ONNX file as onnxruntime sees it.

    dtypes are numpy dtype names ("float32", "int64"); a symbolic (dynamic) axis is reported as "batch".
    """
    session = cpu_session(path)
    return {
        "inputs": [_signature_entry(arg) for arg in session.get_inputs()],
        "outputs": [_signature_entry(arg) for arg in session.get_outputs()],
    }


def export_onnx(model: nn.Module, sample: dict[str, np.ndarray], path: Path) -> dict[str, list[dict[str, Any]]]:
    """Export `model` to a single self-contained ONNX file at `path` and return its signature.

    `sample` is a batch of named MODEL_INPUTS (at least 2 rows, so the batch axis is not specialised).
    The graph takes the MODEL_INPUTS in order with one shared dynamic batch axis and returns
    MODEL_OUTPUT ([batch] float32 probability). Weights are stored inline (no external-data sidecar); the
    model is exported in eval mode and its train/eval mode restored afterwards.
    """
    path = Path(path)
    if len(next(iter(sample.values()))) < 2:
        raise ValueError("export sample needs at least 2 rows")
    kwargs = {
        name: torch.from_numpy(np.array(sample[name], dtype=dtype, copy=True))
        for name, (dtype, _) in MODEL_INPUTS.items()
    }
    batch = torch.export.Dim(BATCH_AXIS)
    dynamic_shapes = {name: {0: batch} for name in kwargs}
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with _quiet():
            program = torch.onnx.export(
                model,
                (),
                kwargs=kwargs,
                input_names=list(MODEL_INPUTS),
                output_names=[MODEL_OUTPUT],
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
                external_data=False,
                optimize=True,
                verbose=False,
                report=False,
            )
            if program is None:
                raise RuntimeError("torch.onnx.export returned no program")
            # Written by us so the single-file property does not depend on exporter defaults.
            onnx.save_model(program.model_proto, str(path), save_as_external_data=False)
    finally:
        model.train(was_training)
    onnx.checker.check_model(str(path))
    sig = signature(path)
    names = [entry["name"] for entry in sig["inputs"]]
    if names != list(MODEL_INPUTS) or [o["name"] for o in sig["outputs"]] != [MODEL_OUTPUT]:
        raise RuntimeError(f"exported signature {names} -> {sig['outputs']} does not match MODEL_INPUTS")
    return sig


def onnx_predict(path: Path, inputs: dict[str, np.ndarray], batch_size: int = 8192) -> np.ndarray:
    """[n] scores of the ONNX model at `path` for named numpy inputs, via onnxruntime (1 intra-op thread)."""
    session = cpu_session(path)
    feeds: dict[str, np.ndarray] = {
        name: np.ascontiguousarray(inputs[name], dtype=dtype) for name, (dtype, _) in MODEL_INPUTS.items()
    }
    n = len(feeds["item_index"])
    out = [
        session.run([MODEL_OUTPUT], {name: array[start : start + batch_size] for name, array in feeds.items()})[0]
        for start in range(0, n, batch_size)
    ]
    return np.concatenate(out).reshape(-1) if out else np.zeros(0, np.float32)


def check_parity(model: nn.Module, path: Path, inputs: dict[str, np.ndarray], tolerance: float = 1e-4) -> float:
    """Max |PyTorch - onnxruntime| score difference over `inputs`; raises ParityError above `tolerance`."""
    expected = predict(model, inputs)
    actual = onnx_predict(path, inputs)
    if expected.shape != actual.shape:
        raise ParityError(f"ONNX returned shape {actual.shape}, PyTorch {expected.shape}")
    diff = float(np.max(np.abs(expected.astype(np.float64) - actual.astype(np.float64)))) if len(expected) else 0.0
    if not diff <= tolerance:  # also catches NaN
        raise ParityError(
            f"ONNX model {path} differs from PyTorch by max abs {diff:.3g} > tolerance {tolerance:g} "
            f"over {len(expected)} rows"
        )
    return diff
