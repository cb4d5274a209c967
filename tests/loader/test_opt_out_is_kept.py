"""An unsubscribed member stays unsubscribed, whatever sequence of commands the loader applies.

Hypothesis generates sequences of upserts (with either ``status_if_new``), renames (onto free, taken
and cleaned addresses), tag changes, archives and unsubscribes for one customer whose member the
contact (or an account user, or the API) has unsubscribed. Each command goes through the loader's
real handler, over HTTP, against the Mailchimp simulator; after every command the unsubscribed
member (followed by its ``unique_email_id`` through renames) must still be unsubscribed.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from services.loader.handler import CommandHandler
from services.loader.limiter import LimiterRegistry
from services.loader.mailchimp_client import ClientPool, RetryPolicy
from services.loader.settings import LoaderSettings
from services.loader.targets import Targets
from services.loader.upsert_request import subscriber_hash
from shared.codec import decode, encode
from shared.connections import load_connections
from shared.credentials import CredentialStore
from shared.events import MailchimpMemberUpsert, MemberSynced
from shared.settings import MailchimpSettings
from shared.topics import MEMBER_RESULT, MEMBER_UPSERT
from tests.loader.support import (
    AUDIENCE,
    CONNECTION,
    LoaderFiles,
    Mailchimp,
    served_mailchimp,
    write_loader_files,
)

ADDRESSES = ["opted.out@example.com", "free@example.com", "taken@example.com", "bounced@example.com"]


@dataclass(frozen=True)
class Step:
    action: str
    address: int
    rename_from: int | None
    status_if_new: str
    fname: str
    tags_add: tuple[str, ...]
    tags_remove: tuple[str, ...]


steps = st.builds(
    Step,
    action=st.sampled_from(["upsert", "upsert", "upsert", "archive", "unsubscribe"]),
    address=st.integers(0, len(ADDRESSES) - 1),
    rename_from=st.none() | st.integers(0, len(ADDRESSES) - 1),
    status_if_new=st.sampled_from(["subscribed", "pending"]),
    fname=st.sampled_from(["Ann", "Bo", ""]),
    tags_add=st.lists(st.sampled_from(["vip", "VIP", "b2b"]), max_size=2).map(tuple),
    tags_remove=st.lists(st.sampled_from(["vip", "old"]), max_size=2).map(tuple),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mailchimp, LoaderFiles]]:
    files = write_loader_files(Path(tmp_path_factory.mktemp("optout")))
    with served_mailchimp() as mc:
        yield mc, files


def _handler(mc: Mailchimp, files: LoaderFiles) -> tuple[CommandHandler, ClientPool]:
    loader = LoaderSettings(
        bulk_min_members=1, max_attempts=3, backoff_initial_seconds=0.01, backoff_max_seconds=0.05
    )
    mailchimp = MailchimpSettings(api_base=mc.api_base)
    pool = ClientPool(mailchimp, loader)
    targets = Targets(
        load_connections(files.connections_file),
        CredentialStore(files.credentials_file, [files.master_key]),
        mc.api_base,
        pool,
        LimiterRegistry(9, 2.0, 0.0),
        RetryPolicy.from_settings(loader),
    )
    return CommandHandler(targets, loader, "test-group"), pool


def _record(cmd: MailchimpMemberUpsert, offset: int) -> ConsumerRecord[bytes, bytes]:
    value = encode(cmd)
    return ConsumerRecord(MEMBER_UPSERT.name, 0, offset, 0, 0, cmd.key(), value, None, 0, len(value), ())


def _command(list_id: str, step: Step) -> MailchimpMemberUpsert:
    email = ADDRESSES[step.address]
    previous = ADDRESSES[step.rename_from] if step.rename_from is not None else None
    return MailchimpMemberUpsert(
        connection_id=CONNECTION,
        customer="C1",
        audience_id=AUDIENCE,
        list_id=list_id,
        email_address=email,
        subscriber_hash=subscriber_hash(email),
        previous_email=previous,
        status_if_new=step.status_if_new,  # type: ignore[arg-type]
        action=step.action,  # type: ignore[arg-type]
        merge_fields={"FNAME": step.fname},
        tags_add=list(step.tags_add),
        tags_remove=list(step.tags_remove),
    )


def _status_of(mc: Mailchimp, list_id: str, unique_email_id: str) -> str | None:
    for member in mc.sim.members(list_id):
        if member["unique_email_id"] == unique_email_id:
            return str(member["status"])
    return None


_lists = itertools.count()


async def _apply(mc: Mailchimp, files: LoaderFiles, origin: str, sequence: list[Step]) -> list[Any]:
    list_id = f"l{next(_lists):04d}{uuid.uuid4().hex[:5]}"
    mc.sim.create_list(list_id=list_id, name="opt-out")
    opted_out = mc.sim.seed_member(
        list_id, ADDRESSES[0], status="unsubscribed", tags=["vip"], unsubscribe_origin=origin
    )
    mc.sim.seed_member(list_id, ADDRESSES[2], merge_fields={"FNAME": "Someone else"})
    mc.sim.seed_member(list_id, ADDRESSES[3])
    mc.sim.clean(list_id, ADDRESSES[3])
    handler, pool = _handler(mc, files)
    outcomes: list[Any] = []
    try:
        for offset, step in enumerate(sequence):
            outputs = await handler([_record(_command(list_id, step), offset)])
            results = [decode(o.value) for o in outputs if o.topic == MEMBER_RESULT.name]
            assert len(results) == 1
            outcomes.append(results[0])
            status = _status_of(mc, list_id, opted_out["unique_email_id"])
            assert status == "unsubscribed", (step, results[0], status)
    finally:
        await pool.aclose()
    return outcomes


def _upsert(address: int, rename_from: int | None = None, status: str = "subscribed") -> Step:
    return Step("upsert", address, rename_from, status, "Ann", ("vip",), ())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(origin=st.sampled_from(["contact", "admin", "api"]), sequence=st.lists(steps, min_size=1, max_size=6))
@example(origin="admin", sequence=[Step("archive", 0, None, "subscribed", "", (), ()), _upsert(0)])
@example(
    origin="api",
    sequence=[_upsert(1, rename_from=0), _upsert(1), Step("archive", 1, None, "pending", "", (), ())],
)
@example(origin="admin", sequence=[_upsert(2, rename_from=0), _upsert(0, status="pending")])
@example(origin="contact", sequence=[_upsert(3, rename_from=0), _upsert(0)])
@example(origin="api", sequence=[Step("unsubscribe", 0, None, "subscribed", "", (), ()), _upsert(0)])
def test_an_unsubscribed_member_stays_unsubscribed(
    world: tuple[Mailchimp, LoaderFiles], origin: str, sequence: list[Step]
) -> None:
    mc, files = world
    asyncio.run(_apply(mc, files, origin, sequence))


def test_the_sequences_do_reach_the_member(world: tuple[Mailchimp, LoaderFiles]) -> None:
    """Guard against a vacuous property: the commands above really write to the opted-out member."""
    mc, files = world
    outcomes = asyncio.run(_apply(mc, files, "admin", [_upsert(0), _upsert(1, rename_from=0)]))
    assert [(o.outcome, o.mailchimp_status) for o in outcomes if isinstance(o, MemberSynced)] == [
        ("updated", "unsubscribed"),
        ("renamed", "unsubscribed"),
    ]
