"""A floor under the pure handler's speed, so a slow path (a per-record regex compile, per-record logging,
pydantic models on the hot path) fails a test instead of the benchmark. The full measurement is
``python -m tests.mapper.bench_mapper``; the floor is far below it because test machines are shared."""

from __future__ import annotations

from tests.mapper.bench_mapper import changes, pure


def test_the_pure_handler_maps_thousands_of_changes_per_second() -> None:
    rate, outputs = pure(changes(3000))
    print(f"pure mapper handler: {rate:,.0f} changes/s")
    assert outputs > 3000
    assert rate > 2500, f"{rate:,.0f} changes/s"
