"""Consistent-hash ring of one tier's replicas, with outlier ejection and health: who serves a user's key."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from uhashring import HashRing

from services.common.metrics import RING_MEMBERS, RING_ROUTABLE, UPSTREAM_EJECTIONS

log = logging.getLogger(__name__)

# Called with (added, removed) replica addresses after every membership change.
MembershipListener = Callable[[set[str], set[str]], None]
_MAX_BACKOFF_EXPONENT = 32  # keeps base * 2**k finite; the cap applies long before


@dataclass
class _ReplicaState:
    failures: int = 0  # consecutive failed calls; reset by a success
    ejections: int = 0  # ejections in a row; reset by a success, sets the next ejection's length
    ejected_until: float = -math.inf  # clock() instant the current ejection ends
    healthy: bool = True  # last verdict of the active health checker


class ReplicaRing:
    """A uhashring ketama ring over one tier's replica addresses ("host:port").

    Routing: `order(key)` is the ring's clockwise order of distinct replicas starting at the key's replica,
    with ejected and unhealthy replicas skipped (not removed from the ring), so a key moves only when its
    own replica is out, and comes back when it returns.

    Outlier ejection: `ejection_threshold` consecutive failures eject a replica for
    `base_ejection_seconds * 2**(ejections in a row - 1)`, at most `max_ejection_seconds`; after that it is
    readmitted, and a single further failure re-ejects it for twice as long. A success resets both counts.

    Never all: a replica is ejected or marked unhealthy only while at least
    `max(1, ceil(len(members) * (1 - max_ejected_fraction)))` others stay routable. Should the ring still
    end up with none routable (membership shrank meanwhile), `order` falls back to every member.

    Not thread-safe: use it from one event loop. `clock` is injectable for tests (seconds, monotonic).
    """

    def __init__(
        self,
        tier: str,
        addresses: Iterable[str],
        *,
        ejection_threshold: int = 3,
        base_ejection_seconds: float = 2.0,
        max_ejection_seconds: float = 30.0,
        max_ejected_fraction: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ejection_threshold < 1:
            raise ValueError(f"ejection_threshold must be >= 1, got {ejection_threshold}")
        if not 0 < base_ejection_seconds <= max_ejection_seconds:
            raise ValueError(
                f"need 0 < base_ejection_seconds <= max_ejection_seconds, got {base_ejection_seconds}, "
                f"{max_ejection_seconds}"
            )
        if not 0.0 <= max_ejected_fraction <= 1.0:
            raise ValueError(f"max_ejected_fraction must be in [0, 1], got {max_ejected_fraction}")
        self.tier = tier
        self.ejection_threshold = ejection_threshold
        self.base_ejection_seconds = base_ejection_seconds
        self.max_ejection_seconds = max_ejection_seconds
        self.max_ejected_fraction = max_ejected_fraction
        self._clock = clock
        self._states: dict[str, _ReplicaState] = {}
        self._ring = HashRing(hash_fn="ketama")
        self._listeners: list[MembershipListener] = []
        self.set_replicas(addresses)

    # -- routing -------------------------------------------------------------------------------------------

    def order(self, key: str) -> list[str]:
        """Replicas to try for `key`, best first: clockwise from the key's node, skipping excluded ones."""
        if not self._states:
            return []
        nodes = [conf["nodename"] for conf in self._ring.range(key, unique=True)]
        now = self._clock()
        routable = [address for address in nodes if self._is_routable(self._states[address], now)]
        RING_ROUTABLE.labels(self.tier).set(len(routable))
        return routable or nodes

    # -- passive outlier detection -------------------------------------------------------------------------

    def record_success(self, address: str) -> None:
        """A call on `address` succeeded: its failure streak and ejection backoff start over."""
        state = self._states.get(address)
        if state is not None:
            state.failures = 0
            state.ejections = 0

    def record_failure(self, address: str) -> None:
        """A call on `address` failed in a way that says the replica is bad (unavailable, overloaded, late)."""
        state = self._states.get(address)
        if state is None:  # left the ring while the call was in flight
            return
        state.failures += 1
        now = self._clock()
        if state.failures < self.ejection_threshold or now < state.ejected_until:
            return  # below the threshold, or late results of calls started before the ejection
        if not self._may_exclude(address, now):
            return
        state.ejections += 1
        exponent = min(state.ejections - 1, _MAX_BACKOFF_EXPONENT)
        seconds = min(self.base_ejection_seconds * 2**exponent, self.max_ejection_seconds)
        state.ejected_until = now + seconds
        UPSTREAM_EJECTIONS.labels(self.tier, address).inc()
        log.warning(
            "replica ejected",
            extra={"tier": self.tier, "replica": address, "seconds": seconds, "failures": state.failures},
        )
        self._publish(now)

    # -- active health ---------------------------------------------------------------------------------------

    def set_health(self, address: str, serving: bool) -> None:
        """Health checker verdict: NOT_SERVING/unreachable replicas are skipped (never all of them)."""
        state = self._states.get(address)
        if state is None or state.healthy == serving:
            return
        now = self._clock()
        if not serving and not self._may_exclude(address, now):
            return  # stays routable; the next health round asks again
        state.healthy = serving
        log.info("replica health changed", extra={"tier": self.tier, "replica": address, "serving": serving})
        self._publish(now)

    # -- membership ------------------------------------------------------------------------------------------

    def set_replicas(self, addresses: Iterable[str]) -> None:
        """Makes the ring exactly `addresses`; new replicas start healthy, removed ones lose their state."""
        wanted = set(addresses)
        if any(not address for address in wanted):
            raise ValueError("replica addresses must be non-empty 'host:port' strings")
        current = set(self._states)
        added, removed = wanted - current, current - wanted
        if not added and not removed:
            return
        for address in removed:
            del self._states[address]
        for address in added:
            self._states[address] = _ReplicaState()
        # Rebuilt from the sorted set, so the ring depends only on its members (ketama points are per node).
        self._ring = HashRing(nodes=sorted(self._states), hash_fn="ketama")
        log.info(
            "ring membership changed",
            extra={"tier": self.tier, "added": sorted(added), "removed": sorted(removed), "size": len(wanted)},
        )
        self._publish(self._clock())
        for listener in list(self._listeners):
            listener(set(added), set(removed))

    def add_listener(self, listener: MembershipListener) -> None:
        """`listener(added, removed)` runs after every membership change (e.g. to close channels)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: MembershipListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- introspection ---------------------------------------------------------------------------------------

    @property
    def members(self) -> set[str]:
        """Every replica in the ring, routable or not."""
        return set(self._states)

    @property
    def routable(self) -> set[str]:
        """Members neither ejected nor unhealthy right now."""
        now = self._clock()
        return {address for address, state in self._states.items() if self._is_routable(state, now)}

    @property
    def ejected(self) -> set[str]:
        """Members whose ejection has not run out yet."""
        now = self._clock()
        return {address for address, state in self._states.items() if now < state.ejected_until}

    @property
    def unhealthy(self) -> set[str]:
        """Members the health checker last saw NOT_SERVING or unreachable."""
        return {address for address, state in self._states.items() if not state.healthy}

    @property
    def min_routable(self) -> int:
        """Fewest replicas that must stay routable (ejections and health verdicts stop there)."""
        keep = len(self._states) * (1.0 - self.max_ejected_fraction)
        return max(1, math.ceil(keep - 1e-9))  # 1e-9: 10 * (1 - 0.3) is 7.000000000000001

    # -- internals -------------------------------------------------------------------------------------------

    @staticmethod
    def _is_routable(state: _ReplicaState, now: float) -> bool:
        return state.healthy and now >= state.ejected_until

    def _may_exclude(self, address: str, now: float) -> bool:
        """True when taking `address` out of routing keeps at least `min_routable` replicas routable."""
        if not self._is_routable(self._states[address], now):
            return True  # already out; nothing changes
        routable = sum(self._is_routable(state, now) for state in self._states.values())
        return routable - 1 >= self.min_routable

    def _publish(self, now: float) -> None:
        RING_MEMBERS.labels(self.tier).set(len(self._states))
        RING_ROUTABLE.labels(self.tier).set(sum(self._is_routable(state, now) for state in self._states.values()))
