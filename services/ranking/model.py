"""One bundle ranking model in an onnxruntime session, checked against the serving input signature."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from wren.core.bundle import Bundle
from wren.core.errors import BundleError
from wren.core.model_inputs import MODEL_INPUTS, MODEL_OUTPUT
from wren.core.onnx import session_options
from wren.core.schema import recall_feature_width

ORT_TYPES: dict[type, str] = {np.float32: "tensor(float)", np.int64: "tensor(int64)"}


@dataclass(frozen=True)
class SessionSettings:
    """onnxruntime threading: intra-op threads per run, inter-op threads (only used by parallel mode)."""

    intra_op_threads: int = 1
    inter_op_threads: int = 1

    def options(self) -> ort.SessionOptions:
        return session_options(self.intra_op_threads, self.inter_op_threads)


def schema_dims(bundle: Bundle) -> dict[str, int]:
    """Trailing width of each input, keyed like MODEL_INPUTS' shape keys ("" = no trailing axis)."""
    schema = bundle.schema
    return {
        "user_dense": len(schema.user_dense),
        "item_dense": len(schema.item_dense),
        "genres": len(schema.genres),
        "embedding_dim": bundle.embedding_dim,
        "recent_len": schema.recent_len,
        "recall_channels": recall_feature_width(len(schema.recall_channels)),
    }


class OnnxModel:
    """A loaded ranking model. `score` is synchronous and thread-safe (onnxruntime sessions allow concurrent
    runs and release the GIL), so callers may run it in worker threads.

    name: the bundle's model name; version: "<name>@<bundle version>".
    """

    def __init__(
        self,
        name: str,
        path: str | Path,
        bundle_version: str,
        dims: dict[str, int],
        settings: SessionSettings | None = None,
    ) -> None:
        self.name = name
        self.version = f"{name}@{bundle_version}"
        self.path = Path(path)
        self.dims = dict(dims)
        settings = settings or SessionSettings()
        try:
            self.session = ort.InferenceSession(str(self.path), settings.options(), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise BundleError(f"model {self.version}: cannot load {self.path}: {exc}") from exc
        check_signature(self.session, dims, self.version)

    @classmethod
    def from_bundle(cls, bundle: Bundle, name: str, settings: SessionSettings | None = None) -> OnnxModel:
        return cls(name, bundle.model_path(name), bundle.version, schema_dims(bundle), settings)

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """inputs: MODEL_INPUTS name -> array with B rows (see wren.core.model_inputs.model_inputs).
        Returns float32 [B] click/like probabilities."""
        (scores,) = self.session.run([MODEL_OUTPUT], inputs)
        scores = np.asarray(scores, np.float32).reshape(-1)
        expected = len(inputs["item_index"])
        if len(scores) != expected:
            raise RuntimeError(f"model {self.version} returned {len(scores)} scores for {expected} rows")
        return scores

    def warm(self, rows: int = 32) -> None:
        """One dummy batch (zeros, padding item index) so the first real call pays no lazy initialisation."""
        self.score(
            {
                name: np.zeros((rows, self.dims[key]) if key else (rows,), dtype)
                for name, (dtype, key) in MODEL_INPUTS.items()
            }
        )


def check_signature(session: ort.InferenceSession, dims: dict[str, int], label: str) -> None:
    """Raises BundleError unless the session takes exactly MODEL_INPUTS (names, dtypes, ranks and static
    trailing widths equal to the bundle schema) and outputs MODEL_OUTPUT."""
    found = {node.name: node for node in session.get_inputs()}
    missing, extra = sorted(set(MODEL_INPUTS) - set(found)), sorted(set(found) - set(MODEL_INPUTS))
    if missing or extra:
        raise BundleError(
            f"model {label}: inputs do not match the serving signature; missing {missing}, unexpected {extra}"
        )
    problems = []
    for name, (dtype, key) in MODEL_INPUTS.items():
        node = found[name]
        if node.type != ORT_TYPES[dtype]:
            problems.append(f"{name} is {node.type}, expected {ORT_TYPES[dtype]}")
        rank = 2 if key else 1
        if len(node.shape) != rank:
            problems.append(f"{name} has shape {node.shape}, expected rank {rank}")
        elif key and isinstance(node.shape[1], int) and node.shape[1] != dims[key]:
            problems.append(f"{name} has width {node.shape[1]}, the bundle schema says {dims[key]} ({key})")
    outputs = [node.name for node in session.get_outputs()]
    if MODEL_OUTPUT not in outputs:
        problems.append(f"no output {MODEL_OUTPUT!r} (outputs: {outputs})")
    if problems:
        raise BundleError(f"model {label}: " + "; ".join(problems))
