"""Runtime configuration from environment variables (WREN_*), failing fast with the variable's name."""

from __future__ import annotations

import logging
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)
ENV_PREFIX = "WREN_"


class ConfigError(ValueError):
    """A missing or malformed variable, named in the message; the CLI prints it and exits with status 2."""


class ServiceSettings(BaseSettings):
    """Settings every gRPC service shares. Each field is read from WREN_<FIELD NAME IN CAPITALS>."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    artifacts: str  # bundle directory or artifacts root holding `current`
    user_state: Literal["served", "evaluation"] = "served"  # which user table to serve (bundle.USER_STATES)
    host: str = "0.0.0.0"
    port: int = 0  # 0 picks a free port (tests)
    metrics_port: int = 0  # 0 disables the /metrics listener
    capacity: int = 64  # concurrent RPCs this process is sized for (utilization denominator, admission cap)
    grace_seconds: float = 10.0  # drain time on SIGTERM
    log_level: str = "INFO"
    reload_seconds: float = 5.0  # how often to look for a new bundle under the artifacts root; 0 = never
    blas_threads: int = 1  # numpy/scipy BLAS threads per process (see services.common.threads); 0 = library default


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Settings from the environment, with explicit overrides (command-line flags) taking precedence."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return cls(**given)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            name = ENV_PREFIX + "_".join(str(part) for part in item["loc"]).upper()
            if item["type"] == "missing":
                problems.append(f"missing required environment variable {name}")
            else:
                problems.append(f"{name}={item.get('input')!r}: {item['msg']}")
        raise ConfigError("configuration error: " + "; ".join(problems)) from None


def describe(settings: BaseSettings) -> dict[str, Any]:
    """The resolved settings, for the one log line each service writes at start."""
    return settings.model_dump()
