"""GatewayBundle: everything the gateway takes from its bundle, replaced as a whole when a new one is published."""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway.fallback import FallbackCatalog
from wren.core.ab import AbSplit
from wren.core.bundle import Bundle


@dataclass(frozen=True)
class GatewayBundle:
    """version: the bundle's version (part of every cache key); catalog: display data and fallbacks;
    split: the A/B split the ranking tier applies, from the same WREN_AB_VARIANTS / WREN_AB_SALT, so that the
    caches can be keyed on each user's variant without asking ranking."""

    version: str
    catalog: FallbackCatalog
    split: AbSplit

    @classmethod
    def load(cls, bundle: Bundle, ab_variants: str = "", ab_salt: str = "") -> GatewayBundle:
        """Raises AbConfigError when the variants are malformed or name a model the bundle does not have
        (as the ranking tier would)."""
        split = AbSplit.for_models(ab_variants, bundle.model_names, bundle.default_model, ab_salt)
        return cls(bundle.version, FallbackCatalog(bundle), split)

    def variant(self, user_id: int) -> str:
        return self.split.assign(user_id).name
