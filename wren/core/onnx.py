"""onnxruntime sessions opened one way for serving, evaluation and the export check: CPU, set thread counts."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session_options(intra_op_threads: int = 1, inter_op_threads: int = 1) -> ort.SessionOptions:
    """Threads inside one run and for inter-op parallelism (unused in sequential mode), every graph
    optimisation, errors-only logging (warnings about unused initializers are noise here)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def cpu_session(path: str | Path, intra_op_threads: int = 1, inter_op_threads: int = 1) -> ort.InferenceSession:
    """A CPU session over the model file at `path` with `session_options`."""
    options = session_options(intra_op_threads, inter_op_threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
