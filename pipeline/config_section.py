"""The base of every training-config section: a frozen pydantic model that rejects unknown keys and wrong types."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def _list_as_tuple(value: Any) -> Any:
    """TOML arrays and JSON manifests give lists; the sections hold tuples (immutable, hashable)."""
    return tuple(value) if isinstance(value, list) else value


StrTuple = Annotated[tuple[str, ...], BeforeValidator(_list_as_tuple)]
IntTuple = Annotated[tuple[int, ...], BeforeValidator(_list_as_tuple)]


class ConfigSection(BaseModel):
    """strict: TOML and JSON values are typed already, so "3" for an int or 1 for a bool is a mistake, not a
    value to coerce (an int for a float is still accepted)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
