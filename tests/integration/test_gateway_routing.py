"""Gateway routing: the replica ring, discovery, and failover/ejection/health against real loopback servers."""
# Long: ring, discovery and failover cases share the fake clock, controlled source and echo replicas defined here.

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2
from prometheus_client import REGISTRY
from uhashring import HashRing

from services.common.server import GrpcService, start_server
from services.gateway.context import RequestContext
from services.gateway.discovery import Discovery, DnsSource, ReplicaSource, StaticSource, parse_replicas
from services.gateway.errors import UpstreamError
from services.gateway.health import HealthChecker
from services.gateway.ring import ReplicaRing
from services.gateway.upstream import TierClient
from tests.support.netutil import free_port

ECHO_SERVICE = "wren.test.Echo"
THREE = ["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"]
KEYS = [str(user_id) for user_id in range(1, 10_001)]
_tiers = itertools.count()


def new_tier() -> str:
    """A tier name of its own per test, so metric samples do not mix between tests."""
    return f"test-tier-{next(_tiers)}"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fail(ring: ReplicaRing, address: str, times: int) -> None:
    for _ in range(times):
        ring.record_failure(address)


# ---------------------------------------------------------------------------------------------- ring


def test_order_is_the_uhashring_clockwise_order() -> None:
    ring = ReplicaRing(new_tier(), THREE)
    reference = HashRing(nodes=THREE, hash_fn="ketama")
    for key in KEYS[:500]:
        expected = [conf["nodename"] for conf in reference.range(key, unique=True)]
        assert ring.order(key) == expected
        assert expected[0] == reference.get_node(key)


@pytest.mark.parametrize("how", ["eject", "remove"])
def test_losing_one_of_three_moves_only_its_keys(how: str) -> None:
    ring = ReplicaRing(new_tier(), THREE)
    before = {key: ring.order(key) for key in KEYS}
    lost = THREE[1]
    if how == "eject":
        fail(ring, lost, 3)
        assert ring.ejected == {lost}
    else:
        ring.set_replicas([THREE[0], THREE[2]])
    moved = [key for key in KEYS if ring.order(key)[0] != before[key][0]]
    assert 0.25 <= len(moved) / len(KEYS) <= 0.42
    assert all(before[key][0] == lost for key in moved), "a key whose replica survived moved"
    assert all(ring.order(key)[0] == before[key][1] for key in moved), "moved keys go to the next replica"
    assert all(lost not in ring.order(key) for key in KEYS[:200])


def test_load_is_balanced_over_three_replicas() -> None:
    ring = ReplicaRing(new_tier(), THREE)
    load = Counter(ring.order(key)[0] for key in KEYS)
    assert set(load) == set(THREE)
    assert max(load.values()) / (len(KEYS) / 3) < 1.25


def test_readmission_and_exponential_reejection() -> None:
    clock = FakeClock()
    ring = ReplicaRing(new_tier(), THREE, clock=clock, base_ejection_seconds=2.0, max_ejection_seconds=5.0)
    bad = THREE[0]
    fail(ring, bad, 2)
    assert ring.ejected == set()
    fail(ring, bad, 1)
    assert ring.ejected == {bad} and bad not in ring.routable

    clock.advance(1.99)
    assert bad in ring.ejected
    clock.advance(0.01)
    assert ring.ejected == set() and bad in ring.routable  # readmitted: the next request may try it

    fail(ring, bad, 1)  # one failure after readmission re-ejects, twice as long
    assert bad in ring.ejected
    clock.advance(3.99)
    assert bad in ring.ejected
    clock.advance(0.01)
    assert bad in ring.routable

    fail(ring, bad, 1)  # 8 s, capped at 5 s
    clock.advance(4.99)
    assert bad in ring.ejected
    clock.advance(0.01)
    assert bad in ring.routable

    ring.record_success(bad)  # a success resets the streak and the backoff
    fail(ring, bad, 2)
    assert bad in ring.routable
    fail(ring, bad, 1)
    clock.advance(2.0)
    assert bad in ring.routable


def test_failures_during_an_ejection_do_not_extend_it() -> None:
    clock = FakeClock()
    ring = ReplicaRing(new_tier(), THREE, clock=clock)
    fail(ring, THREE[0], 10)  # late results of calls already in flight
    clock.advance(2.0)
    assert THREE[0] in ring.routable


def test_never_ejects_the_last_routable_replicas() -> None:
    single = ReplicaRing(new_tier(), THREE[:1])
    fail(single, THREE[0], 100)
    single.set_health(THREE[0], False)
    assert single.ejected == set() and single.routable == {THREE[0]}
    assert single.order("42") == [THREE[0]]

    pair = ReplicaRing(new_tier(), THREE[:2], max_ejected_fraction=0.5)
    for _ in range(10):
        for address in THREE[:2]:
            fail(pair, address, 3)
    assert len(pair.ejected) == 1 and len(pair.routable) == 1

    trio = ReplicaRing(new_tier(), THREE, max_ejected_fraction=0.5)  # keeps ceil(1.5) = 2
    for address in THREE:
        trio.set_health(address, False)
        fail(trio, address, 5)
    assert len(trio.routable) == 2 and len(trio.ejected | trio.unhealthy) == 1

    none_kept = ReplicaRing(new_tier(), THREE, max_ejected_fraction=1.0)  # still keeps one
    for address in THREE:
        fail(none_kept, address, 3)
    assert len(none_kept.routable) == 1


def test_set_replicas_adds_and_removes_and_drops_state() -> None:
    clock = FakeClock()
    tier = new_tier()
    ring = ReplicaRing(tier, THREE[:2], clock=clock)
    changes: list[tuple[set[str], set[str]]] = []
    ring.add_listener(lambda added, removed: changes.append((added, removed)))
    fail(ring, THREE[0], 3)
    assert ring.ejected == {THREE[0]}

    ring.set_replicas(THREE)
    assert ring.members == set(THREE) and changes[-1] == ({THREE[2]}, set())
    assert metric("wren_ring_members", tier=tier) == 3
    assert metric("wren_ring_routable", tier=tier) == 2

    ring.set_replicas(THREE[1:])
    assert ring.members == set(THREE[1:]) and ring.ejected == set() and changes[-1] == (set(), {THREE[0]})
    ring.set_replicas(THREE)  # back with a clean slate
    assert ring.routable == set(THREE) and len(changes) == 3
    ring.set_replicas(reversed(THREE))  # same set: no change
    assert len(changes) == 3
    assert metric("wren_ring_members", tier=tier) == 3 and metric("wren_ring_routable", tier=tier) == 3

    ring.set_replicas([])
    assert ring.order("1") == []


def test_ejection_metric_counts_per_replica() -> None:
    tier = new_tier()
    ring = ReplicaRing(tier, THREE, ejection_threshold=2)
    fail(ring, THREE[2], 2)
    assert metric("wren_upstream_ejections_total", tier=tier, replica=THREE[2]) == 1
    assert metric("wren_ring_routable", tier=tier) == 2


# ---------------------------------------------------------------------------------------------- discovery


async def test_static_specs_parse() -> None:
    source = parse_replicas(" 127.0.0.1:7002, 127.0.0.1:7001,127.0.0.1:7002 ")
    assert isinstance(source, StaticSource)
    assert await source.resolve() == ["127.0.0.1:7001", "127.0.0.1:7002"]
    assert await parse_replicas("recall-0.recall:50051,[::1]:7001").resolve() == ["[::1]:7001", "recall-0.recall:50051"]


async def test_dns_spec_resolves_localhost_to_loopback() -> None:
    port = free_port()
    source = parse_replicas(f"dns:///localhost:{port}")
    assert isinstance(source, DnsSource) and source.host == "localhost" and source.port == port
    addresses = await source.resolve()
    assert addresses and addresses == sorted(set(addresses))
    for address in addresses:
        host, _, port_text = address.rpartition(":")
        assert int(port_text) == port
        assert ipaddress.ip_address(host.strip("[]")).is_loopback


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("", "empty replica spec"),
        ("   ", "empty replica spec"),
        ("127.0.0.1", "missing port"),
        ("127.0.0.1:0", "bad port"),
        ("127.0.0.1:70000", "bad port"),
        ("127.0.0.1:http", "bad port"),
        (":7001", "bad host"),
        ("a:1,,b:2", "empty address"),
        ("::1:7001", "needs brackets"),
        ("[::1]7001", "malformed IPv6"),
        ("dns://8.8.8.8/recall:50051", "no authority"),
        ("dns:///recall", "missing port"),
        ("dns:///a:1,b:2", "one host"),
        ("http://recall:50051", "unsupported scheme"),
    ],
)
def test_invalid_specs_are_rejected(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_replicas(spec)


class ControlledSource(ReplicaSource):
    """A source the test steers: the addresses it returns, or an OSError like a failed DNS lookup."""

    def __init__(self, addresses: list[str]) -> None:
        self.spec = "controlled"
        self.addresses = addresses
        self.failing = False
        self.calls = 0

    async def resolve(self) -> list[str]:
        self.calls += 1
        if self.failing:
            raise OSError("lookup failed")
        return sorted(self.addresses)


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_discovery_follows_changes_and_keeps_the_last_good_set() -> None:
    ring = ReplicaRing(new_tier(), THREE[:1])
    source = ControlledSource(THREE[:1])
    discovery = Discovery(source, ring, interval=0.02)
    assert await discovery.refresh() is False

    discovery.start()
    try:
        source.addresses = THREE
        await eventually(lambda: ring.members == set(THREE))
        source.failing = True
        calls = source.calls
        await eventually(lambda: source.calls >= calls + 3)
        assert ring.members == set(THREE) and discovery.failures >= 3
        source.failing = False
        source.addresses = THREE[1:]
        await eventually(lambda: ring.members == set(THREE[1:]))
        assert discovery.failures == 0
    finally:
        await discovery.stop()
    calls = source.calls
    await asyncio.sleep(0.06)
    assert source.calls == calls, "stopped discovery still resolves"


# ---------------------------------------------------------------------------------------------- real servers


class EchoStub:
    """Client side of the test service (raw bytes in and out)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.Echo = channel.unary_unary(f"/{ECHO_SERVICE}/Echo")


class EchoReplica:
    """A real grpc.aio server from the shared bootstrap (health, interceptor) whose Echo returns its port.

    `mode`: "ok"; "invalid" aborts with INVALID_ARGUMENT; "hang" sleeps far longer than any attempt timeout.
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.calls = 0
        self.request_ids: list[str | None] = []
        self.port = 0
        self.service: GrpcService | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        self.service = await start_server("echo-test", [self._register], [ECHO_SERVICE], port=port)
        self.port = self.service.port
        await self.service.mark_ready()

    async def stop(self) -> None:
        assert self.service is not None
        await self.service.server.stop(0)

    async def set_serving(self, serving: bool) -> None:
        assert self.service is not None
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        await self.service.health.set(ECHO_SERVICE, status)

    def _register(self, server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(self._echo)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(ECHO_SERVICE, {"Echo": handler}),))

    async def _echo(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.calls += 1
        self.request_ids.append(dict(context.invocation_metadata() or ()).get("x-request-id"))
        if self.mode == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad request")
        if self.mode == "hang":
            await asyncio.sleep(10)
        return str(self.port).encode()


@pytest.fixture
async def replicas() -> AsyncIterator[dict[str, EchoReplica]]:
    """Three running echo replicas, by address."""
    started = [EchoReplica() for _ in range(3)]
    for replica in started:
        await replica.start()
    yield {replica.address: replica for replica in started}
    for replica in started:
        await replica.stop()


def make_client(
    replicas: dict[str, EchoReplica], attempt: float = 0.5, **ring_options: object
) -> tuple[ReplicaRing, TierClient]:
    tier = new_tier()
    ring = ReplicaRing(tier, list(replicas), **ring_options)  # type: ignore[arg-type]
    return ring, TierClient(tier, ring, EchoStub, attempt_timeout_seconds=attempt)


def key_owned_by(ring: ReplicaRing, address: str) -> str:
    return next(key for key in KEYS if ring.order(key)[0] == address)


async def wait_connected(channel: grpc.aio.Channel, timeout: float = 5.0) -> None:
    async def connected() -> None:
        while (state := channel.get_state(try_to_connect=True)) != grpc.ChannelConnectivity.READY:
            await channel.wait_for_state_change(state)

    await asyncio.wait_for(connected(), timeout)


def soon(seconds: float = 2.0) -> float:
    return time.monotonic() + seconds


def request(key: str, deadline: float, request_id: str = "r-test") -> RequestContext:
    return RequestContext(key, deadline, request_id)


async def test_failover_ejection_and_return_after_restart(replicas: dict[str, EchoReplica]) -> None:
    clock = FakeClock()
    ring, client = make_client(replicas, clock=clock)
    tier = client.tier
    key = "user-7"
    first, second, _ = ring.order(key)
    try:
        routed = await client.call("Echo", b"", request(key, soon(), "r-1"))
        assert routed.replica == first and routed.response == str(replicas[first].port).encode()
        assert routed.attempts == 1 and replicas[first].request_ids == ["r-1"]

        await replicas[first].stop()
        failovers = metric("wren_upstream_failovers_total", tier=tier)
        for attempt in range(ring.ejection_threshold):  # every call still succeeds, on the next replica
            routed = await client.call("Echo", b"", request(key, soon(), f"r-failover-{attempt}"))
            assert (routed.replica, routed.attempts) == (second, 2)
        assert replicas[second].request_ids == [f"r-failover-{attempt}" for attempt in range(ring.ejection_threshold)]
        assert metric("wren_upstream_failovers_total", tier=tier) == failovers + 3
        assert ring.ejected == {first}
        refused = metric("wren_upstream_requests_total", tier=tier, replica=first, code="UNAVAILABLE")
        assert refused == 3
        assert metric("wren_upstream_ejections_total", tier=tier, replica=first) == 1

        for _ in range(5):  # ejected: no further attempts on it
            routed = await client.call("Echo", b"", request(key, soon()))
            assert (routed.replica, routed.attempts) == (second, 1)
        assert metric("wren_upstream_requests_total", tier=tier, replica=first, code="UNAVAILABLE") == refused
        assert metric("wren_upstream_failovers_total", tier=tier) == failovers + 3

        await replicas[first].start(port=replicas[first].port)
        await wait_connected(client.channel(first))
        assert first in ring.ejected  # back up, but its ejection has not run out yet
        assert (await client.call("Echo", b"", request(key, soon()))).replica == second
        clock.advance(ring.base_ejection_seconds)
        routed = await client.call("Echo", b"", request(key, soon()))
        assert routed.replica == first and routed.response == str(replicas[first].port).encode()
        assert metric("wren_upstream_requests_total", tier=tier, replica=first, code="OK") == 2
        assert metric("wren_upstream_latency_seconds_count", tier=tier) == 11
    finally:
        await client.close()


async def test_all_replicas_down_is_unavailable(replicas: dict[str, EchoReplica]) -> None:
    ring, client = make_client(replicas)
    try:
        for replica in replicas.values():
            await replica.stop()
        with pytest.raises(UpstreamError) as caught:
            await client.call("Echo", b"", request("user-1", soon()))
        assert caught.value.code == "UNAVAILABLE" and caught.value.tier == client.tier
        assert caught.value.message.startswith("all 3 replicas failed")
    finally:
        await client.close()


async def test_non_retryable_status_is_raised_at_once(replicas: dict[str, EchoReplica]) -> None:
    ring, client = make_client(replicas)
    bad = next(iter(replicas))
    replicas[bad].mode = "invalid"
    try:
        with pytest.raises(UpstreamError) as caught:
            await client.call("Echo", b"", request(key_owned_by(ring, bad), soon()))
        assert (caught.value.code, caught.value.message) == ("INVALID_ARGUMENT", "bad request")
        assert [replica.calls for replica in replicas.values()] == [1, 0, 0]
        assert metric("wren_upstream_failovers_total", tier=client.tier) == 0
        assert bad in ring.routable  # the request was bad, not the replica
    finally:
        await client.close()


async def test_passed_deadline_raises_without_calling(replicas: dict[str, EchoReplica]) -> None:
    ring, client = make_client(replicas)
    try:
        with pytest.raises(UpstreamError) as caught:
            await client.call("Echo", b"", request("user-1", time.monotonic() - 0.001))
        assert caught.value.code == "DEADLINE_EXCEEDED"
        assert sum(replica.calls for replica in replicas.values()) == 0
        assert client.open_channels == set()
    finally:
        await client.close()


async def test_hanging_replica_fails_over_within_the_attempt_timeout(replicas: dict[str, EchoReplica]) -> None:
    attempt = 0.2
    ring, client = make_client(replicas, attempt=attempt)
    hung = next(iter(replicas))
    replicas[hung].mode = "hang"
    key = key_owned_by(ring, hung)
    try:
        for address in replicas:  # connections up first, so only the attempt timeout is measured
            await wait_connected(client.channel(address))
        started = time.perf_counter()
        routed = await client.call("Echo", b"", request(key, soon()))
        elapsed = time.perf_counter() - started
        assert routed.replica == ring.order(key)[1] and routed.attempts == 2
        assert attempt <= elapsed < attempt + 0.25
        assert metric("wren_upstream_requests_total", tier=client.tier, replica=hung, code="DEADLINE_EXCEEDED") == 1

        # When the caller's own deadline runs out during the attempt, there is nothing left to fail over with.
        with pytest.raises(UpstreamError) as caught:
            await client.call("Echo", b"", request(key, soon(0.1)))
        assert caught.value.code == "DEADLINE_EXCEEDED"
        assert sum(replica.calls for address, replica in replicas.items() if address != hung) == 1
    finally:
        await client.close()


async def test_health_checker_follows_serving_status(replicas: dict[str, EchoReplica]) -> None:
    ring, client = make_client(replicas)
    checker = HealthChecker(client, ECHO_SERVICE, interval=0.05, timeout=0.25)
    draining, other, _ = replicas
    try:
        assert all((await checker.check_once()).values())
        await replicas[draining].set_serving(False)
        verdicts = await checker.check_once()
        assert verdicts[draining] is False and draining not in ring.routable
        assert all(draining not in ring.order(key) for key in KEYS[:100])
        await replicas[draining].set_serving(True)
        await checker.check_once()
        assert ring.routable == set(replicas)

        checker.start()  # the background loop: an unreachable replica goes, and comes back
        await replicas[other].stop()
        await eventually(lambda: ring.routable == set(replicas) - {other})
        await replicas[draining].set_serving(False)  # would leave 1 of 3: the never-all rule says no
        await asyncio.sleep(0.2)
        assert ring.routable == set(replicas) - {other}
        await replicas[draining].set_serving(True)
        await replicas[other].start(port=replicas[other].port)
        await eventually(lambda: ring.routable == set(replicas), timeout=5.0)
    finally:
        await checker.stop()
        await client.close()


async def test_channels_close_when_replicas_leave(replicas: dict[str, EchoReplica]) -> None:
    ring, client = make_client(replicas)
    gone = next(iter(replicas))
    try:
        for key in KEYS[:30]:
            await client.call("Echo", b"", request(key, soon()))
        assert client.open_channels == set(replicas)
        channel = client.channel(gone)
        ring.set_replicas(set(replicas) - {gone})
        assert client.open_channels == set(replicas) - {gone}
        await eventually(lambda: channel.get_state() == grpc.ChannelConnectivity.SHUTDOWN)
        served = [(await client.call("Echo", b"", request(key, soon()))).replica for key in KEYS[:30]]
        assert gone not in served and client.open_channels == set(replicas) - {gone}
    finally:
        await client.close()


async def test_failover_overhead_when_the_first_replica_refuses_connections(
    replicas: dict[str, EchoReplica],
) -> None:
    """Measures the extra latency of a call whose ring-first replica has nothing listening (printed; -s)."""
    dead = f"127.0.0.1:{free_port()}"
    live = list(replicas)[:2]
    tier = new_tier()
    ring = ReplicaRing(tier, [dead, *live], ejection_threshold=10**9)  # never ejected: every call fails over
    client = TierClient(tier, ring, EchoStub, attempt_timeout_seconds=0.5)
    dead_key = key_owned_by(ring, dead)
    live_key = key_owned_by(ring, live[0])
    try:
        for address in live:
            await wait_connected(client.channel(address))
        started = time.perf_counter()
        assert (await client.call("Echo", b"", request(dead_key, soon()))).attempts == 2
        cold = time.perf_counter() - started

        async def median_latency(key: str) -> float:
            samples = []
            for _ in range(60):
                started = time.perf_counter()
                await client.call("Echo", b"", request(key, soon()))
                samples.append(time.perf_counter() - started)
            return statistics.median(samples)

        direct = await median_latency(live_key)
        failover = await median_latency(dead_key)
        print(
            f"\nfailover overhead: first call {cold * 1e3:.2f} ms total; median direct {direct * 1e3:.2f} ms, "
            f"via failover {failover * 1e3:.2f} ms, overhead {(failover - direct) * 1e3:.2f} ms"
        )
        assert failover - direct < 0.05
    finally:
        await client.close()
