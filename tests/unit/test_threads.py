"""The BLAS thread cap every serving process applies at start (services.common.threads)."""

from __future__ import annotations

import json
import subprocess
import sys

from services.common.config import ServiceSettings, load_settings

PROBE = """
import json, sys
import numpy, scipy.sparse  # loads the BLAS libraries the tiers use
from threadpoolctl import threadpool_info
from services.common.threads import limit_blas_threads
def sizes():
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
before = sizes()
limiter = limit_blas_threads(int(sys.argv[1]))
after = sizes()
if limiter is not None:
    limiter.restore_original_limits()
print(json.dumps({"limited": limiter is not None, "before": before, "after": after, "restored": sizes()}))
"""


def probe(threads: int) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(threads)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_limit_sets_every_blas_pool_to_the_requested_size_until_restored() -> None:
    result = probe(1)
    assert result["limited"] and len(result["before"]) >= 1
    assert result["after"] == [1] * len(result["before"])
    assert result["restored"] == result["before"]


def test_zero_leaves_the_library_default() -> None:
    result = probe(0)
    assert not result["limited"] and result["after"] == result["before"]


def test_services_default_to_one_blas_thread_and_read_the_environment(monkeypatch) -> None:
    assert load_settings(ServiceSettings, artifacts="x").blas_threads == 1
    monkeypatch.setenv("WREN_BLAS_THREADS", "2")
    assert load_settings(ServiceSettings, artifacts="x").blas_threads == 2
