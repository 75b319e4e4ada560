"""Step reporting: each step's time and peak resident memory, as `wren train` records them."""

from __future__ import annotations

import time

import numpy as np
import pytest

from pipeline.progress import MB, PeakMemory, Steps


def test_each_step_records_its_own_time_and_peak_memory(capsys: pytest.CaptureFixture[str]) -> None:
    steps = Steps(2)
    try:
        with steps.step("allocate"):
            block = np.ones(300 * MB // 8)  # 300 MB, touched
        del block
        with steps.step("idle"):
            pass
    finally:
        steps.close()
    assert steps.peak_mb["allocate"] >= steps.peak_mb["idle"] + 250
    assert set(steps.timings) == {"allocate", "idle"} and all(value >= 0 for value in steps.timings.values())
    err = capsys.readouterr().err
    assert "[1/2] allocate done in" in err and "peak" in err and "[2/2] idle" in err


def test_the_sampler_keeps_a_peak_that_is_gone_by_the_time_it_is_read() -> None:
    memory = PeakMemory(interval=0.01)
    try:
        before = memory.peak
        block = np.ones(300 * MB // 8)
        time.sleep(1.0)  # about a hundred samples while the block is held
        del block
        assert memory.peak >= before + 250 * MB
        memory.reset()
        assert memory.peak < before + 250 * MB
    finally:
        memory.close()
