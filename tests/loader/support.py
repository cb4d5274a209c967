"""Building blocks for loader tests: a served Mailchimp simulator, a connections file and credential
store that point at it, commands, an in-process loader, and reading results back."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from services.loader.app import LoaderService
from services.loader.settings import LoaderSettings
from shared.codec import encode
from shared.connections import load_connections
from shared.credentials import CredentialStore
from shared.events import MailchimpMemberUpsert, MemberSynced, MemberSyncFailed
from shared.kafka import make_producer
from shared.settings import KafkaSettings, MailchimpSettings, ServiceSettings
from shared.topics import MEMBER_RESULT, MEMBER_UPSERT
from simulators._server import ServerThread
from simulators.mailchimp import MailchimpSimConfig, MailchimpSimulator, subscriber_hash
from tests.helpers import read_events, wait_for

API_KEY = "0123456789abcdef0123456789abcdef-us6"
LIST_ID = "a1b2c3d4e5"
CONNECTION = "acme"
AUDIENCE = "newsletter"
CREDENTIAL = "mc-main"

CONNECTIONS_YAML = f"""
connections:
  - id: {CONNECTION}
    syspro:
      odata_url: http://127.0.0.1:1/SYSPRO8Odata/SYSPROOData/EDU1
      operator: ADMIN
      credential: syspro-main
    audiences:
      - id: {AUDIENCE}
        list_id: {LIST_ID}
        credential: {CREDENTIAL}
"""


@dataclass
class Mailchimp:
    """A simulator served on a real port, with the API base the loader should use."""

    sim: MailchimpSimulator
    server: ServerThread

    @property
    def api_base(self) -> str:
        return f"{self.server.url}/{{dc}}/3.0"

    def member(self, email: str) -> dict[str, Any] | None:
        return self.sim.member(LIST_ID, email)

    def throttled(self) -> int:
        return self.sim.stats.throttled_for(API_KEY)

    def max_concurrency(self) -> int:
        return self.sim.stats.max_concurrency_for(API_KEY)


@contextlib.contextmanager
def served_mailchimp(**config: Any) -> Iterator[Mailchimp]:
    options: dict[str, Any] = {"data_centers": ["us6"], "api_keys": [API_KEY], "seed": 7}
    options.update(config)
    sim = MailchimpSimulator(MailchimpSimConfig(**options))
    sim.create_list(list_id=LIST_ID, name="Customers")
    server = ServerThread(sim.app).start()
    try:
        yield Mailchimp(sim, server)
    finally:
        server.stop()


@dataclass
class LoaderFiles:
    connections_file: Path
    credentials_file: Path
    master_key: str

    def env(self, api_base: str) -> dict[str, str]:
        return {
            "MLC_CONNECTIONS_FILE": str(self.connections_file),
            "MLC_CREDENTIALS_FILE": str(self.credentials_file),
            "MLC_MASTER_KEY": self.master_key,
            "MLC_MAILCHIMP_API_BASE": api_base,
        }


def write_loader_files(directory: Path, secret: str = API_KEY) -> LoaderFiles:
    connections = directory / "connections.yaml"
    connections.write_text(CONNECTIONS_YAML, encoding="utf-8")
    master_key = Fernet.generate_key().decode()
    credentials = directory / "credentials.json"
    store = CredentialStore(credentials, [master_key])
    store.set(CREDENTIAL, "mailchimp_api_key", {"secret": secret}, {"dc": "us6"})
    return LoaderFiles(connections, credentials, master_key)


def command(
    customer: str,
    email: str,
    *,
    previous_email: str | None = None,
    action: str = "upsert",
    merge_fields: dict[str, Any] | None = None,
    tags_add: list[str] | None = None,
    tags_remove: list[str] | None = None,
    status_if_new: str = "subscribed",
) -> MailchimpMemberUpsert:
    return MailchimpMemberUpsert(
        connection_id=CONNECTION,
        customer=customer,
        audience_id=AUDIENCE,
        list_id=LIST_ID,
        email_address=email,
        subscriber_hash=subscriber_hash(email),
        previous_email=previous_email,
        status_if_new=status_if_new,  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        merge_fields=merge_fields or {},
        tags_add=tags_add or [],
        tags_remove=tags_remove or [],
    )


def loader_service(
    kafka: KafkaSettings,
    files: LoaderFiles,
    api_base: str,
    instance_id: str | None = None,
    timeout_seconds: float = 120.0,
    max_in_flight: int = 9,
    **loader: Any,
) -> LoaderService:
    """An in-process loader pointed at the test broker namespace and the simulator."""
    service = ServiceSettings(
        instance_id=instance_id or f"t{uuid.uuid4().hex[:8]}", connections_file=files.connections_file
    )
    options: dict[str, Any] = {
        "backoff_initial_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "group_refresh_seconds": 1.0,
    }
    options.update(loader)
    return LoaderService(
        service,
        kafka,
        MailchimpSettings(api_base=api_base, timeout_seconds=timeout_seconds, max_in_flight=max_in_flight),
        LoaderSettings(**options),
        load_connections(files.connections_file),
        CredentialStore(files.credentials_file, [files.master_key]),
    )


Result = MemberSynced | MemberSyncFailed


async def produce_commands(kafka: KafkaSettings, commands: Iterable[MailchimpMemberUpsert]) -> None:
    """Produce commands in order per key without waiting for each acknowledgement (fast for thousands)."""
    producer = make_producer(kafka, "test-command-producer")
    await producer.start()
    try:
        futures = [
            await producer.send(kafka.topic(MEMBER_UPSERT.name), encode(cmd), key=cmd.key())
            for cmd in commands
        ]
        await producer.flush()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def results(kafka: KafkaSettings) -> list[Result]:
    events = await read_events(kafka, MEMBER_RESULT.name, timeout=10)
    return [e for e in events if isinstance(e, MemberSynced | MemberSyncFailed)]


async def wait_for_results(kafka: KafkaSettings, count: int, timeout: float = 60.0) -> list[Result]:
    """Wait until at least ``count`` distinct commands have a result; returns every result read."""

    async def enough() -> list[Result] | None:
        found = await results(kafka)
        return found if len({r.causation_id for r in found}) >= count else None

    return await wait_for(enough, timeout=timeout, interval=1.0, message=f"{count} command results")
