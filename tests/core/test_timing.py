"""The stage timer: a stage opened inside another counts only for itself."""

from __future__ import annotations

import pytest

from mistrust.pipeline import timing
from mistrust.pipeline.timing import Timer


def test_a_nested_stage_is_left_out_of_the_outer_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 1.0, 4.0, 10.0, 20.0, 22.0])  # outer 0-10 holding inner 1-4, then 20-22
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    timer = Timer()
    with timer.stage("outputs"):
        with timer.stage("shadow"):
            pass
    with timer.stage("outputs"):
        pass
    assert timer.seconds == {"shadow": 3.0, "outputs": 7.0 + 2.0}
    assert sum(timer.seconds.values()) == 12.0  # the stages add up to the wall time
    assert list(timer.seconds) == ["outputs", "shadow"]  # in the order they opened
