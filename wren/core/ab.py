"""A/B split: a stable hash of the user id picks a variant, and each variant names a bundle model."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

BUCKETS = 10_000  # hash buckets; a weight point (1 %) is 100 buckets
TOTAL_WEIGHT = 100
DEFAULT_VARIANT = "control"
FORCED_VARIANT = "forced"  # reported when the request names a model instead of following the split


class AbConfigError(ValueError):
    """The variant specification is malformed or names a model the bundle does not have."""


@dataclass(frozen=True)
class Variant:
    name: str
    model: str
    weight: int  # percent of users, 0..100


def parse_variants(spec: str) -> list[Variant]:
    """ "A=deepfm:90,B=widedeep:10" -> variants in order. Weights are integers summing to 100; names are
    unique. An empty spec yields [] (the caller then uses the bundle's default model)."""
    variants: list[Variant] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, eq, rest = part.partition("=")
        model, colon, weight = rest.rpartition(":")
        if not eq or not colon or not name.strip() or not model.strip():
            raise AbConfigError(f"A/B variant {part!r} must look like NAME=MODEL:WEIGHT, e.g. A=deepfm:90")
        try:
            points = int(weight)
        except ValueError:
            raise AbConfigError(f"A/B variant {part!r}: weight {weight!r} is not an integer") from None
        if points < 0:
            raise AbConfigError(f"A/B variant {part!r}: weight must not be negative")
        variants.append(Variant(name.strip(), model.strip(), points))
    names = [v.name for v in variants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise AbConfigError(f"A/B variant names must be unique; repeated: {duplicates}")
    total = sum(v.weight for v in variants)
    if variants and total != TOTAL_WEIGHT:
        raise AbConfigError(f"A/B weights must sum to {TOTAL_WEIGHT}, got {total} in {spec!r}")
    return variants


class AbSplit:
    """Maps users to variants. bucket(user) = blake2b(salt:user_id) mod BUCKETS, so a user keeps their
    variant across requests, replicas and restarts; changing the salt reshuffles everyone. Variants own
    consecutive bucket ranges in spec order, sized by weight."""

    def __init__(self, variants: list[Variant], salt: str = "") -> None:
        if not variants or sum(v.weight for v in variants) != TOTAL_WEIGHT:
            raise AbConfigError(f"A/B weights must sum to {TOTAL_WEIGHT}")
        self.variants = list(variants)
        self.salt = salt
        per_point = BUCKETS // TOTAL_WEIGHT
        bounds, upper = [], 0
        for variant in self.variants:
            upper += variant.weight * per_point
            bounds.append(upper)
        self._bounds = bounds

    @classmethod
    def for_models(cls, spec: str, model_names: list[str], default_model: str, salt: str = "") -> AbSplit:
        """The split for one bundle: `spec` parsed (empty = one "control" variant on `default_model` at 100)
        and every variant's model checked against `model_names`."""
        variants = parse_variants(spec) or [Variant(DEFAULT_VARIANT, default_model, TOTAL_WEIGHT)]
        unknown = sorted({v.model for v in variants} - set(model_names))
        if unknown:
            raise AbConfigError(
                f"A/B variants name model(s) {unknown} that the bundle does not have; it has {sorted(model_names)}"
            )
        return cls(variants, salt)

    def bucket(self, user_id: int) -> int:
        digest = hashlib.blake2b(f"{self.salt}:{user_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % BUCKETS

    def assign(self, user_id: int) -> Variant:
        bucket = self.bucket(user_id)
        for variant, upper in zip(self.variants, self._bounds, strict=True):
            if bucket < upper:
                return variant
        return self.variants[-1]  # unreachable: bounds end at BUCKETS

    def describe(self) -> str:
        return ",".join(f"{v.name}={v.model}:{v.weight}" for v in self.variants)
