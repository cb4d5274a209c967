"""`ml-connector run <service>`, the installed command: each service starts, reports ready, serves its
metrics and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import KafkaSettings
from simulators._server import free_port
from simulators.demo_kafka import wait_for_topics
from simulators.stack import REPO, SERVICES, LocalStack, StackOptions
from tests.conftest import delete_namespace
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

ML_CONNECTOR = Path(sys.executable).parent / "ml-connector"


async def test_every_service_runs_reports_ready_serves_metrics_and_stops_cleanly(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    stack = LocalStack(tmp_path, kafka_settings, StackOptions(customers=50, poll_interval=1.0))
    stack.start_simulators()
    env = stack.write_config()
    await stack.create_topics()
    await wait_for_topics(kafka_settings)
    ports = {s: free_port() for s in SERVICES}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {s: open(tmp_path / f"{s}.log", "wb") for s in SERVICES}  # noqa: SIM115 - closed below
    try:
        for service in SERVICES:
            procs[service] = subprocess.Popen(
                [str(ML_CONNECTOR), "run", service],
                env={**env, "MLC_HTTP_PORT": str(ports[service]), "MLC_HTTP_HOST": "127.0.0.1"},
                cwd=REPO,
                stdout=logs[service],
                stderr=subprocess.STDOUT,
            )
        async with httpx.AsyncClient(timeout=3.0) as client:
            for service in SERVICES:
                url = f"http://127.0.0.1:{ports[service]}"

                async def ready(service: str = service, url: str = url) -> dict[str, Any] | None:
                    code = procs[service].poll()
                    assert code is None, (
                        f"{service} exited {code}: {(tmp_path / f'{service}.log').read_text()}"
                    )
                    try:
                        response = await client.get(f"{url}/readyz")
                    except httpx.HTTPError:
                        return None
                    return response.json() if response.status_code == 200 else None

                body = await wait_for(ready, 90, 0.3, f"{service} /readyz")
                assert body["ready"] is True and body["service"] == service

                metrics = await client.get(f"{url}/metrics")
                assert metrics.status_code == 200
                assert metrics.headers["content-type"].startswith("text/plain")
                assert f'mlc_service_ready{{service="{service}"}} 1.0' in metrics.text
                assert f"# HELP mlc_{service}_" in metrics.text

        for service in SERVICES:
            procs[service].send_signal(signal.SIGTERM)
        codes = {s: await asyncio.to_thread(p.wait, 30) for s, p in procs.items()}
        assert codes == dict.fromkeys(SERVICES, 0)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for log in logs.values():
            log.close()
        stack.stop()
        await delete_namespace(kafka_settings)
