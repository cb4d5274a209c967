"""The whole pipeline on one machine: both simulators, a connections file, an encrypted credential store,
and the four services as real ``ml-connector run`` subprocesses.

Used by the demo, the end-to-end and reliability tests, and the benchmarks, so that all of them run the
product exactly as an operator would, only pointed at simulators.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from shared.credentials import CredentialStore, generate_key
from shared.kafka import ensure_topics
from shared.settings import KafkaSettings
from simulators._server import ServerThread, free_port
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator
from simulators.syspro import OperatorSecrets, SysproSimConfig, SysproSimulator

__all__ = ["SERVICES", "LocalStack", "ServiceProcess", "StackOptions"]

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("poller", "mapper", "loader", "audit")
API_KEY = "0123456789abcdef0123456789abcdef-us6"
ODATA_PASSWORD = "odata-Secret-42"
AUDIT_TOKEN = "audit-token-for-local-use"


@dataclass
class StackOptions:
    customers: int = 2000
    seed: int = 42
    connection_id: str = "demo"
    audience_id: str = "customers"
    list_id: str = "d3m0a1b2c3"
    strategy: str = "snapshot"
    poll_interval: float = 5.0
    page_size: int = 5000
    #: Overrides for the audience in the connections file (e.g. ``{"policy": {...}}``).
    audience: dict[str, Any] = field(default_factory=dict)
    syspro_source: dict[str, Any] = field(default_factory=dict)
    mailchimp: dict[str, Any] = field(default_factory=dict)
    syspro: dict[str, Any] = field(default_factory=dict)
    #: Extra environment for every service (e.g. loader tuning).
    env: dict[str, str] = field(default_factory=dict)


class ServiceProcess:
    """One ``ml-connector run <service>`` subprocess with its own HTTP port and log file."""

    def __init__(self, service: str, env: dict[str, str], port: int, log_path: Path, instance: str) -> None:
        self.service = service
        self.port = port
        self.instance = instance
        self.log_path = log_path
        self.env = {
            **env,
            "MLC_HTTP_PORT": str(port),
            "MLC_HTTP_HOST": "127.0.0.1",
            "MLC_INSTANCE_ID": instance,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", self.service],
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C meant for the driver must not also reach the service, which
            # is stopped deliberately (SIGTERM) by whoever started it.
            start_new_session=True,
        )
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise RuntimeError(f"{self.service} exited with {code}:\n{self.logs()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    response = await client.get(f"{self.url}/readyz")
                    if response.status_code == 200:
                        return dict(response.json())
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.service} not ready after {timeout}s:\n{self.logs()[-3000:]}")
                await asyncio.sleep(0.2)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.kill()
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is not None and self._log is not None:
                self._log.close()


class LocalStack:
    """Simulators in this process (threads), services as subprocesses, all on loopback."""

    def __init__(self, workdir: Path, kafka: KafkaSettings, options: StackOptions | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kafka = kafka
        self.options = options or StackOptions()
        self.syspro = SysproSimulator(
            SysproSimConfig(
                operators={
                    "MLC": OperatorSecrets(odata_password=ODATA_PASSWORD, login_password="enet-Login-7")  # type: ignore[arg-type]
                },
                **self.options.syspro,
            )
        )
        self.mailchimp = MailchimpSimulator(
            MailchimpSimConfig(data_centers=["us6"], api_keys=[API_KEY], **self.options.mailchimp)
        )
        self.syspro_server = ServerThread(self.syspro.app)
        self.mailchimp_server = ServerThread(self.mailchimp.app)
        self.master_key = generate_key()
        self.processes: dict[str, ServiceProcess] = {}
        self._ports: dict[str, int] = {}
        self.env: dict[str, str] = {}

    # ----- set-up --------------------------------------------------------------------------------

    @property
    def odata_url(self) -> str:
        return f"{self.syspro_server.url}{self.syspro.config.odata_path}"

    @property
    def enet_url(self) -> str:
        return f"{self.syspro_server.url}{self.syspro.config.enet_path}"

    def start_simulators(self) -> None:
        if self.options.customers:
            self.syspro.generate(self.options.customers, self.options.seed)
        self.mailchimp.create_list(list_id=self.options.list_id, name="Customers")
        self.syspro_server.start()
        self.mailchimp_server.start()

    def connections(self) -> dict[str, Any]:
        o = self.options
        audience: dict[str, Any] = {
            "id": o.audience_id,
            "list_id": o.list_id,
            "credential": "mailchimp-demo",
            "tags": {"from_columns": {"Branch": "branch-"}},
        }
        audience.update(o.audience)
        source: dict[str, Any] = {
            "odata_url": self.odata_url,
            "operator": "MLC",
            "credential": "syspro-demo",
            "strategy": o.strategy,
            "interval_seconds": o.poll_interval,
            "page_size": o.page_size,
            "timeout_seconds": 30,
        }
        source.update(o.syspro_source)
        return {"connections": [{"id": o.connection_id, "syspro": source, "audiences": [audience]}]}

    def write_config(self) -> dict[str, str]:
        """Write the connections file and the credential store; return the services' environment."""
        connections = self.workdir / "connections.yaml"
        connections.write_text(yaml.safe_dump(self.connections(), sort_keys=False))
        store = CredentialStore(self.workdir / "credentials.json", [self.master_key])
        store.set("syspro-demo", "syspro", {"secret": ODATA_PASSWORD}, {"operator": "MLC"})
        store.set("mailchimp-demo", "mailchimp_api_key", {"secret": API_KEY}, {"dc": "us6"})
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLC_", "KAFKA_"))},
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "KAFKA_NAMESPACE": self.kafka.namespace,
            "MLC_CONNECTIONS_FILE": str(connections),
            "MLC_CREDENTIALS_FILE": str(self.workdir / "credentials.json"),
            "MLC_MASTER_KEY": self.master_key,
            "MLC_MAILCHIMP_API_BASE": f"{self.mailchimp_server.url}/{{dc}}/3.0",
            "MLC_AUDIT_DB_URL": f"sqlite:///{self.workdir / 'audit.db'}",
            "MLC_AUDIT_API_TOKEN": AUDIT_TOKEN,
            "MLC_LOG_FORMAT": "json",
            **self.options.env,
        }
        return self.env

    async def create_topics(self) -> None:
        await ensure_topics(self.kafka)

    def port(self, service: str) -> int:
        if service not in self._ports:
            self._ports[service] = free_port()
        return self._ports[service]

    def start_service(self, service: str, instance: str | None = None) -> ServiceProcess:
        """Start (or restart) a service; ``instance`` distinguishes several workers of one service."""
        name = instance or service
        proc = ServiceProcess(
            service,
            self.env,
            self.port(name),
            self.workdir / f"{name}.log",
            instance=f"{self.kafka.namespace.strip('.') or 'local'}-{name}",
        )
        self.processes[name] = proc.start()
        return proc

    async def start(self, services: tuple[str, ...] = SERVICES) -> None:
        self.start_simulators()
        self.write_config()
        await self.create_topics()
        for service in services:
            self.start_service(service)
        await asyncio.gather(*(self.processes[s].wait_ready() for s in services))

    def stop(self) -> dict[str, int]:
        codes = {name: proc.terminate() for name, proc in self.processes.items()}
        self.syspro_server.stop()
        self.mailchimp_server.stop()
        return codes

    # ----- observing -------------------------------------------------------------------------------

    def members(self) -> list[dict[str, Any]]:
        return self.mailchimp.members(self.options.list_id)

    async def metrics(self, service: str) -> dict[str, float]:
        """The service's counters and gauges, summed over labels (``name`` -> value)."""
        proc = self.processes[service]
        async with httpx.AsyncClient(timeout=5.0) as client:
            text = (await client.get(f"{proc.url}/metrics")).text
        totals: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            if name.endswith("_created"):
                continue
            with contextlib.suppress(ValueError):
                totals[name] = totals.get(name, 0.0) + float(value)
        return totals

    def audit_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.processes["audit"].url,
            headers={"Authorization": f"Bearer {AUDIT_TOKEN}"},
            timeout=10.0,
        )
