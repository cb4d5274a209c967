"""The collector settings a service starts with (ADR 4)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shared.runtime import GC_YOUNG_THRESHOLD, GC_YOUNG_THRESHOLDS, tune_gc
from shared.settings import ServiceSettings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_tuning_raises_the_young_threshold_and_freezes_start_up_objects(restored_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc(GC_YOUNG_THRESHOLD)
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0


def test_zero_leaves_the_collector_alone(restored_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    tune_gc(0)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_poller_keeps_the_default_collector_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GC_YOUNG_THRESHOLDS["poller"] == 0
    assert ServiceSettings().gc_young_threshold is None
    monkeypatch.setenv("MLC_GC_YOUNG_THRESHOLD", "20000")
    assert ServiceSettings().gc_young_threshold == 20_000
