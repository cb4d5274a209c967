"""`python -m simulators.demo --once`, as `make demo ARGS=--once` runs it: completes, prints the summary,
and leaves an audience that matches SYSPRO under the policy (as the demo checks and the audit records)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.audit.reconcile import reconcile
from services.audit.store import AuditStore
from shared.settings import KafkaSettings
from simulators.expectations import compare
from simulators.stack import REPO, LocalStack, StackOptions
from tests.conftest import delete_namespace

pytestmark = pytest.mark.slow

CUSTOMERS = 300


async def test_demo_once_syncs_the_company_and_every_scripted_change(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "demo"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "KAFKA_"))},
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "COLUMNS": "160",
    }
    command = [sys.executable, "-m", "simulators.demo", "--once", "--customers", str(CUSTOMERS)]
    command += ["--interval", "2", "--workdir", str(workdir)]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, cwd=REPO, capture_output=True, text=True, timeout=240
    )
    out = result.stdout
    assert result.returncode == 0, f"{out[-6000:]}\n{result.stderr[-3000:]}"

    assert "initial sync:" in out
    assert len(re.findall(r"✓ visible in Mailchimp after \d+\.\d s", out)) == 6
    for change in ("new customer", "email change", "address change", "customer put on hold"):
        assert change in out
    assert "deleted customer" in out and "fixed invalid email" in out
    assert "rejected: invalid_email (field Email" in out
    assert "services exited: poller=0, mapper=0, loader=0, audit=0" in out
    for counter in ("read", "changed", "mapped", "synced", "failed", "rejected"):
        assert re.search(rf"\b{counter}\b", out), counter

    verdict = re.search(r"audience matches SYSPRO under the policy: (.*)", out)
    assert verdict, out[-4000:]
    counts = dict(pair.split("=") for pair in verdict.group(1).replace(" ", "").split(","))
    assert counts["problems"] == "0"
    assert int(counts["members_compared"]) == int(counts["members_in_audience"]) > CUSTOMERS // 2

    # The audit store the demo leaves behind saw the same audience: every member synced, and the only
    # member without a SYSPRO customer is the deleted customer's, kept (tagged) as the policy says.
    deleted = re.search(r"deleted customer: (\S+) <", out)
    assert deleted
    engine = AuditStore.open(f"sqlite:///{workdir / 'audit.db'}", create=False).engine
    [audience] = reconcile(engine)
    assert audience.mismatched_count == 0
    assert [item.customer for item in audience.extra] == [deleted.group(1)]
    assert audience.members_synced == int(counts["members_in_audience"])

    namespace = re.search(r"namespace (demo-[0-9a-f]+\.)", out)
    assert namespace
    await delete_namespace(KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace.group(1)))


async def test_demo_with_a_connections_file_only_runs_the_services_it_names(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    # Stand-ins for the "real" systems: the simulators, named by a connections file and a credential
    # store, exactly as an operator's would be. The demo must start no simulator of its own.
    stack = LocalStack(tmp_path / "systems", kafka_settings, StackOptions(customers=200, poll_interval=2.0))
    stack.start_simulators()
    env = {**stack.write_config(), "COLUMNS": "160"}
    connections = tmp_path / "systems" / "connections.yaml"
    try:
        command = [sys.executable, "-m", "simulators.demo", "--once", "--connections", str(connections)]
        command += ["--workdir", str(tmp_path / "run")]
        result = await asyncio.to_thread(
            subprocess.run, command, env=env, cwd=REPO, capture_output=True, text=True, timeout=180
        )
        out = result.stdout
        assert result.returncode == 0, f"{out[-6000:]}\n{result.stderr[-3000:]}"
        assert "services exited: poller=0, mapper=0, loader=0, audit=0" in out
        assert "scripted" not in out  # nothing is changed in the systems it was pointed at
        report = compare(stack)
        assert report.ok and report.members_compared > 100, report.render()
    finally:
        stack.stop()
        await delete_namespace(kafka_settings)
