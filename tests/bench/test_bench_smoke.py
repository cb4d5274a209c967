"""A tiny run of the benchmark harness, so CI notices when it stops working (not a timed test:
the figures themselves are not asserted, only that they are measured and saved)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bench(*args: str, bootstrap: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_tiny_throughput_run_saves_its_figures_and_renders_the_page(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    run = _bench(
        "--only",
        "throughput",
        "--customers",
        "200",
        "--repeat",
        "1",
        "--no-profile",
        "--results-dir",
        str(results),
        "--doc",
        str(tmp_path / "benchmarks.md"),
        bootstrap=kafka_bootstrap,
        timeout=150,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    doc = json.loads((results / "throughput.json").read_text())
    assert doc["scenario"] == "throughput" and doc["mode"] == "full"
    assert doc["machine"]["logical_cpus"] >= 1 and doc["started_at"]
    (measured,) = doc["runs"]
    assert measured["finished"] and measured["customers"] == 200
    stages = measured["stage_seconds"]
    assert 0 < stages["poller"] <= stages["mapper"] <= stages["loader"] <= stages["audit"]
    assert measured["customers_per_second"] > 0
    assert measured["records"]["syspro.customer.changed.v1"] == 200
    assert doc["summary"]["exactly_once"] is True
    assert measured["members"] == measured["commands"] > 0
    assert all(measured["peak_rss_mb"][s] > 0 for s in ("poller", "mapper", "loader", "audit"))

    page = (tmp_path / "benchmarks.md").read_text()
    assert "Pipeline throughput" in page and "customers/s" in page
    assert (tmp_path / "benchmarks.png").stat().st_size > 10_000
