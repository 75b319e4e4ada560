"""Suite `routing`: the gateway's consistent-hash ring (ReplicaRing over uhashring): key movement and balance."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import plots
from benchmarks.report import table
from benchmarks.suites import SuiteContext, SuiteReport
from benchmarks.users import UserSampler
from services.gateway.ring import ReplicaRing

SKEWS = (0.8, 1.2)
REQUESTS_PER_KEY = 10


def address(index: int) -> str:
    return f"10.0.{index // 250}.{index % 250 + 1}:50051"


def owners(replicas: list[str], keys: list[str]) -> np.ndarray:
    """Index into `replicas` of the replica each key routes to (first of `ReplicaRing.order`)."""
    ring = ReplicaRing("bench", replicas)
    position = {name: i for i, name in enumerate(replicas)}
    return np.array([position[ring.order(key)[0]] for key in keys], np.int64)


def max_over_mean(counts: np.ndarray) -> float:
    return float(counts.max() / counts.mean())


def run_sync(ctx: SuiteContext) -> dict[str, Any]:
    scale = ctx.scale
    keys = [str(user) for user in range(1, scale.routing_keys + 1)]  # the gateway routes by str(user_id)
    sizes = sorted(set(scale.routing_replicas))
    pool = [address(i) for i in range(max(sizes) + 1)]
    ctx.say(f"  routing {len(keys):,} keys over rings of {sizes[0]}..{sizes[-1] + 1} replicas")
    prefix = {n: owners(pool[:n], keys) for n in range(sizes[0], sizes[-1] + 2)}
    samplers = {s: UserSampler(np.arange(len(keys)), s, ctx.seed) for s in SKEWS}
    draws = {s: sampler.draw(REQUESTS_PER_KEY * len(keys)) for s, sampler in samplers.items()}
    rows: dict[str, Any] = {}
    for n in sizes:
        # Adding replica n+1: keys that change owner, vs the ideal 1/(n+1) (only the newcomer's share moves).
        added = float(np.mean(prefix[n] != prefix[n + 1]))
        # Removing the first replica of n: every key it owned must move, ideally no other (1/n in total).
        without_first = owners(pool[1:n], keys) + 1
        removed = float(np.mean(prefix[n] != without_first))
        owned_by_removed = float(np.mean(prefix[n] == 0))
        uniform = np.bincount(prefix[n], minlength=n)
        entry = {
            "replicas": n,
            "add_moved_fraction": added,
            "add_ideal_fraction": 1.0 / (n + 1),
            "remove_moved_fraction": removed,
            "remove_ideal_fraction": 1.0 / n,
            "remove_moved_only_its_keys": bool(removed == owned_by_removed),
            "keys_per_replica_max_over_mean": max_over_mean(uniform),
        }
        for s, drawn in draws.items():
            requests = np.bincount(prefix[n][drawn], minlength=n)
            entry[f"zipf_{s:g}_requests_max_over_mean"] = max_over_mean(requests)
        rows[str(n)] = entry
    top_share = {f"zipf_{s:g}": float(sampler.weights[0]) for s, sampler in samplers.items()}
    return {
        "settings": {
            "keys": len(keys),
            "requests_per_key_for_skew": REQUESTS_PER_KEY,
            "hash": "ketama (uhashring)",
            "hottest_key_share": top_share,
        },
        "replicas": rows,
    }


async def run(ctx: SuiteContext) -> SuiteReport:
    data = run_sync(ctx)
    rows = data["replicas"]
    tables = [
        table(
            [
                "replicas",
                "add: moved",
                "ideal 1/(N+1)",
                "remove: moved",
                "ideal 1/N",
                "keys max/mean",
                *(f"zipf {s:g} requests max/mean" for s in SKEWS),
            ],
            [
                [
                    r["replicas"],
                    r["add_moved_fraction"],
                    r["add_ideal_fraction"],
                    r["remove_moved_fraction"],
                    r["remove_ideal_fraction"],
                    r["keys_per_replica_max_over_mean"],
                    *(r[f"zipf_{s:g}_requests_max_over_mean"] for s in SKEWS),
                ]
                for r in rows.values()
            ],
            f"Consistent hashing over {data['settings']['keys']:,} user keys (fraction of keys moved when one "
            "replica joins or leaves; load balance as max/mean per replica)",
        )
    ]
    x = [float(n) for n in rows]
    png = [
        plots.lines(
            ctx.out / "routing_movement.png",
            x,
            {
                "added: measured": [r["add_moved_fraction"] for r in rows.values()],
                "added: ideal 1/(N+1)": [r["add_ideal_fraction"] for r in rows.values()],
                "removed: measured": [r["remove_moved_fraction"] for r in rows.values()],
                "removed: ideal 1/N": [r["remove_ideal_fraction"] for r in rows.values()],
            },
            xlabel="replicas before the change (N)",
            ylabel="fraction of keys that move",
            title="Key movement when one replica joins or leaves",
            styles={"added: ideal 1/(N+1)": "k:", "removed: ideal 1/N": "k--"},
        ),
        plots.lines(
            ctx.out / "routing_balance.png",
            x,
            {
                "keys (uniform)": [r["keys_per_replica_max_over_mean"] for r in rows.values()],
                **{
                    f"requests, zipf {s:g}": [r[f"zipf_{s:g}_requests_max_over_mean"] for r in rows.values()]
                    for s in SKEWS
                },
            },
            xlabel="replicas",
            ylabel="max / mean per replica",
            title="Load balance across replicas",
        ),
    ]
    return SuiteReport("routing", data, tables, png)
