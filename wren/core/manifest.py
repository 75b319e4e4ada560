"""The bundle's manifest.json as one typed model: the pipeline writes it, every reader validates it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from wren.core.errors import BundleError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class _Part(BaseModel):
    """A manifest section: typed where serving reads it; further keys (reports, diagnostics) ride along."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)


class FeatureSchema(_Part):
    genres: list[str]
    user_counters: list[str]
    user_dense: list[str]
    item_dense: list[str]
    recent_len: int
    embedding_dim: int
    recall_channels: list[str]


class EvaluationSplit(_Part):
    """How the held-out part was cut: enough to recompute the split from the data."""

    protocol: str
    test_fraction: float
    seed: int


class ColdStart(_Part):
    kind: str
    segments: list[str]
    default_segment: str


class CfEntry(_Part):
    """The ALS model the recall tier folds new users into, and its item-factor index."""

    index_kind: str
    index: dict[str, Any]
    factors: int
    regularization: float
    alpha: float


class RecallEntry(_Part):
    quotas: dict[str, float]
    candidates: int


class ModelEntry(_Part):
    """One ONNX ranking model: its file in the bundle and input/output signature."""

    file: str
    signature: dict[str, Any]
    prior: dict[str, Any] | None = None
    valid_candidate_ndcg: float | None = None
    metrics: dict[str, Any] = {}


class Manifest(_Part):
    """Everything a bundle says about itself. `config` is the training config as a dict (pipeline.config reads
    it back); `metrics` holds the evaluation, written once it has run."""

    format_version: int
    version: str
    created_at: str
    data_fingerprint: str
    data: dict[str, Any]
    data_cutoff: int
    config: dict[str, Any]
    counts: dict[str, int]
    feature_schema: FeatureSchema
    evaluation: EvaluationSplit
    embedding_dim: int
    embedding: dict[str, Any]
    indexes: dict[str, dict[str, Any]]
    cold_start: ColdStart
    models: dict[str, ModelEntry]
    default_model: str
    signature: dict[str, Any]
    cf: CfEntry | None = None
    item_graphs: list[str] = []
    recall: RecallEntry | None = None
    index_calibration: dict[str, Any] = {}
    metrics: dict[str, Any] = {}

    @property
    def positive_threshold(self) -> float:
        return float(self.config["positive_threshold"])

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to manifest.json: optional top-level parts left out until set; a None inside a
        part (a training setting left unset, say) is kept, so reading the manifest back gives the same values."""
        return {key: value for key, value in self.model_dump(mode="json").items() if value is not None}

    @classmethod
    def parse(cls, data: Any, where: str) -> Manifest:
        """Validates a manifest read from `where`; a wrong format version or a missing or mistyped field is a
        BundleError naming it."""
        found = data.get("format_version") if isinstance(data, dict) else None
        if found != FORMAT_VERSION:
            raise BundleError(f"{where}: format_version {found!r}, this Wren reads {FORMAT_VERSION}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]
            )
            raise BundleError(f"{where}: invalid manifest: {problems}") from None
