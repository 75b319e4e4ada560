"""RequestContext: what one gateway request carries down every hop (deadline, routing key, id, fallbacks taken)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from services.common.logs import request_id as current_request_id

REQUEST_ID_HEADER = "x-request-id"  # gRPC metadata key (lower case, as gRPC requires) every tier logs by


@dataclass
class RequestContext:
    """Created once per request by the gateway core and passed to every helper and tier call.

    - `key`: the routing key (the user id, or "item:<id>"): the replicas `TierClient` tries, in order;
    - `deadline`: absolute `time.monotonic()` instant by which the whole request must be answered;
    - `request_id`: sent to every tier as `x-request-id` metadata, so their logs carry it;
    - `reasons`: the fallbacks taken, in order (they become `degraded_reason`);
    - `served_by`: tier -> replica ("host:port") that answered.
    """

    key: str
    deadline: float
    request_id: str
    reasons: list[str] = field(default_factory=list)
    served_by: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metadata: tuple[tuple[str, str], ...] = ((REQUEST_ID_HEADER, self.request_id),)

    @classmethod
    def begin(cls, key: str, deadline: float) -> RequestContext:
        """A context for the request being handled: its id is the one the HTTP middleware or the gRPC
        interceptor set for this call (the `request_id` context variable of services.common.logs), else a new
        uuid4 hex (a caller that set none, e.g. the in-process pipeline)."""
        return cls(key, deadline, current_request_id.get() or uuid.uuid4().hex)

    def degrade(self, reason: str) -> None:
        self.reasons.append(reason)

    def served(self, tier: str, replica: str) -> None:
        """Records the replica of the first answer from `tier` (a second call to the same tier keeps it)."""
        self.served_by.setdefault(tier, replica)

    @property
    def degraded(self) -> bool:
        return bool(self.reasons)

    @property
    def degraded_reason(self) -> str:
        return ",".join(self.reasons)
