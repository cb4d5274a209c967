"""One consumed batch of commands in, one result per command (plus dead letters) out.

Within a batch, a customer's commands (same record key) run one after the other, in offset order,
after that customer's commands still running from an earlier batch (the processor keeps two in
flight); different customers run concurrently, every request under its key's limiter. When a list has
enough plain upserts, the first command of each of those customers goes through batch subscribe
(``bulk``) and the rest of that customer's commands wait for it.

The handler raises nothing but ``Retryable``: when a key's requests fail for a whole retry budget
while Mailchimp answers nothing else (an outage), finishing the batch would turn a backlog into a
pile of failures, so the batch is abandoned uncommitted and the processor retries it after a
backoff (already applied commands are re-applied harmlessly; PUT is idempotent). Every other
problem becomes that command's ``MemberSyncFailed``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from aiokafka import TopicPartition

from services.loader import errors
from services.loader.bulk import BulkAnswer, chunk_sizes, subscribe_chunk
from services.loader.mailchimp_client import MailchimpClient, MailchimpUnavailable
from services.loader.member_sync import MemberSync, Tally
from services.loader.metrics import FAILED, FRESHNESS, OUTAGES, RENAMES_HELD, SYNCED
from services.loader.settings import LoaderSettings
from services.loader.targets import Targets, Unresolvable
from services.loader.upsert_request import (
    created_changes,
    failed_event,
    is_plain_upsert,
    is_rename,
    member_view,
    missing_tags,
    synced_event,
)
from shared.codec import DecodeError, decode_as, encode
from shared.events import MailchimpMemberUpsert, MemberSynced, MemberSyncFailed
from shared.kafka import Output, dead_letter
from shared.metrics import DEAD_LETTERS
from shared.processor import Record, Retryable
from shared.topics import MEMBER_RESULT, MEMBER_UPSERT

__all__ = ["CommandHandler"]

log = logging.getLogger(__name__)

Result = MemberSynced | MemberSyncFailed


@dataclass(eq=False)
class _Job:
    record: Record
    cmd: MailchimpMemberUpsert | None = None
    client: MailchimpClient | None = None
    result: Result | None = None
    undecodable: DecodeError | None = None


@dataclass(eq=False)
class _Chain:
    """One customer's commands in a batch, run in offset order.

    ``after`` is the same customer's chain from an earlier batch still in flight (pipelined
    processing); ``done`` completes when this chain has finished, for the next batch to wait on.
    """

    jobs: list[_Job]
    done: asyncio.Future[None]
    after: asyncio.Future[None] | None = None
    #: Offset of this customer's last command in an earlier batch (which may not be committed yet).
    before: int | None = None

    @property
    def first(self) -> _Job:
        return self.jobs[0]


#: In an encoded command without a rename (checked before decoding, which costs more).
_NOT_A_RENAME = b'"previous_email":null'


def _is_rename_record(rec: Record) -> bool:
    try:
        return is_rename(decode_as(rec.value, MailchimpMemberUpsert))
    except DecodeError:
        return False


async def _committed_already(tp: TopicPartition, offset: int) -> None:
    return None


class _Interrupted(Exception):
    """The customer's previous commands (an earlier batch) were abandoned; this batch must be too."""


class CommandHandler:
    """The loader's batch handler (for ``PipelinedProcessor`` or ``TransactionalProcessor``)."""

    def __init__(self, targets: Targets, settings: LoaderSettings, group_id: str) -> None:
        self.targets = targets
        self.settings = settings
        self.group_id = group_id
        self.sync = MemberSync(settings.inline_tags, settings.outage_retry)
        self._tails: dict[bytes, asyncio.Future[None]] = {}
        #: Per customer, the partition and offset of its last command handed to this handler, kept until
        #: that offset is committed.
        self._last: dict[bytes, tuple[TopicPartition, int]] = {}
        #: Records waiting behind the batch being handled (set by the processor; 0 when unknown).
        self.backlog: Callable[[], int] = lambda: 0
        #: The next offset the processor committed for a partition, and a wait for a record's commit
        #: (set by the pipelined processor; one batch at a time, everything before a batch is committed).
        self.committed_offset: Callable[[TopicPartition], int] = lambda tp: sys.maxsize
        self.wait_committed: Callable[[TopicPartition, int], Awaitable[None]] = _committed_already

    @staticmethod
    def split(records: Sequence[Record]) -> int | None:
        """Where to cut ``records`` so that no rename follows an earlier command of its customer in the
        same batch: the index of the first such rename, or None.

        The processor starts the part from the cut only once everything before it is committed. A
        creation and its rename both applied but uncommitted would, after a crash, be applied again,
        possibly in other batches: the creation would find the old address absent (renamed) and
        create it again, a member no customer calls for.
        """
        seen: set[bytes] = set()
        for i, rec in enumerate(records):
            key = rec.key or b""
            if (
                i
                and key in seen
                and rec.value is not None
                and _NOT_A_RENAME not in rec.value
                and _is_rename_record(rec)
            ):
                return i
            seen.add(key)
        return None

    async def __call__(self, records: Sequence[Record]) -> list[Output]:
        jobs = [self._prepare(rec) for rec in records]
        chains = self._chains(jobs)
        try:
            async with asyncio.TaskGroup() as group:
                in_bulk = self._start_bulk(group, chains)
                # Let the batch-subscribe calls go out before thousands of other tasks are scheduled.
                await asyncio.sleep(0)
                for chain in chains:
                    if chain not in in_bulk:
                        group.create_task(self._run_chain(chain, chain.jobs))
        except* (MailchimpUnavailable, _Interrupted) as stopped:
            if any(isinstance(exc, MailchimpUnavailable) for exc in stopped.exceptions):
                OUTAGES.inc()
            raise Retryable(f"batch abandoned: {stopped.exceptions[0]}") from None
        finally:
            for chain in chains:
                if not chain.done.done():
                    chain.done.cancel()
        return self._outputs(jobs)

    def _chains(self, jobs: list[_Job]) -> list[_Chain]:
        by_key: dict[bytes, list[_Job]] = {}
        for job in jobs:
            if job.cmd is not None and job.client is not None and job.result is None:
                by_key.setdefault(job.record.key or job.cmd.key(), []).append(job)
        committed = self.committed_offset
        self._last = {k: v for k, v in self._last.items() if committed(v[0]) <= v[1]}
        loop = asyncio.get_running_loop()
        chains: list[_Chain] = []
        for key, chain_jobs in by_key.items():
            previous = self._tails.get(key)
            first, last = chain_jobs[0].record, chain_jobs[-1].record
            tp = TopicPartition(first.topic, first.partition)
            before = self._last.get(key)
            self._last[key] = (tp, last.offset)
            chain = _Chain(
                chain_jobs,
                loop.create_future(),
                previous if previous and not previous.done() else None,
                # A later offset is left from a batch abandoned and now consumed again: then nothing
                # earlier is in flight.
                before[1] if before is not None and before[0] == tp and before[1] < first.offset else None,
            )
            self._tails[key] = chain.done
            chain.done.add_done_callback(functools.partial(self._forget, key))
            chains.append(chain)
        return chains

    def _forget(self, key: bytes, done: asyncio.Future[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    def _prepare(self, record: Record) -> _Job:
        job = _Job(record)
        try:
            job.cmd = decode_as(record.value, MailchimpMemberUpsert)
        except DecodeError as exc:
            job.undecodable = exc
            return job
        try:
            job.client = self.targets.client_for(job.cmd)
        except Unresolvable as exc:
            job.result = failed_event(job.cmd, exc.reason, True, exc.detail, attempts=0)
        return job

    def _start_bulk(self, group: asyncio.TaskGroup, chains: Iterable[_Chain]) -> set[_Chain]:
        """Send the first plain upsert of each customer through batch subscribe, per key and list.

        Returns the chains whose first command went into a batch call; the rest of each such chain
        runs after that call. A customer with commands still running from an earlier batch waits
        for them instead.
        """
        firsts: dict[tuple[str, str], list[_Chain]] = {}
        for chain in chains:
            cmd, client = chain.first.cmd, chain.first.client
            assert cmd is not None and client is not None
            if chain.after is None and is_plain_upsert(cmd):
                firsts.setdefault((client.target.key_id, cmd.list_id), []).append(chain)
        started: set[_Chain] = set()
        for (_, list_id), candidates in firsts.items():
            seen: set[str] = set()
            eligible: list[_Chain] = []
            for chain in candidates:
                assert chain.first.cmd is not None
                address = chain.first.cmd.email_address.strip().lower()
                # One address once per call: two customers sharing it go one by one.
                if address not in seen:
                    seen.add(address)
                    eligible.append(chain)
            if len(eligible) < self.settings.bulk_min_members:
                continue
            client = eligible[0].first.client
            assert client is not None
            limiter = client.limiter
            # Spread a small batch over the slots only when nothing else wants them: then it finishes in
            # one round; under a backlog, full calls move the most members per connection second.
            idle = limiter.in_flight == 0 and len(eligible) + self.backlog() < limiter.limit * (
                self.settings.bulk_max_members
            )
            start = 0
            sizes = chunk_sizes(len(eligible), self.settings.bulk_max_members, limiter.limit, spread=idle)
            for size in sizes:
                part = eligible[start : start + size]
                start += size
                group.create_task(self._bulk(group, client, list_id, part))
                started.update(part)
        return started

    async def _bulk(
        self, group: asyncio.TaskGroup, client: MailchimpClient, list_id: str, chains: list[_Chain]
    ) -> None:
        """One batch-subscribe call for the first job of each chain, then the rest of each chain."""
        commands = [chain.first.cmd for chain in chains if chain.first.cmd is not None]
        try:
            answers = await subscribe_chunk(
                client, list_id, commands, self.settings.inline_tags, self.settings.outage_retry
            )
        except MailchimpUnavailable:
            raise
        except Exception:
            log.exception("batch subscribe failed inside the loader; applying its members one by one")
            answers = [BulkAnswer("fallback", 1)] * len(commands)
        for chain, answer in zip(chains, answers, strict=True):
            done = self._bulk_result(chain.first, answer)
            if done is None:
                group.create_task(self._run_chain(chain, chain.jobs, answer))
                continue
            chain.first.result = done
            if len(chain.jobs) > 1:
                group.create_task(self._run_chain(chain, chain.jobs[1:]))
            else:
                chain.done.set_result(None)

    def _bulk_result(self, job: _Job, answer: BulkAnswer) -> Result | None:
        """The result when batch subscribe settled the command alone; None when more calls are needed."""
        cmd = job.cmd
        assert cmd is not None
        if answer.kind == "failed":
            return failed_event(
                cmd,
                answer.reason,
                answer.permanent,
                answer.detail,
                answer.attempts,
                answer.http_status,
                answer.response,
            )
        if answer.kind == "fallback":
            return None
        member = member_view(answer.doc or {})
        if missing_tags(cmd.tags_add, member):
            return None
        return synced_event(cmd, answer.kind, member.status, created_changes(cmd), answer.attempts, "batch")

    async def _run_chain(self, chain: _Chain, jobs: list[_Job], answer: BulkAnswer | None = None) -> None:
        if chain.after is not None:
            await asyncio.wait({chain.after})
            if chain.after.cancelled():
                raise _Interrupted("an earlier batch with this customer's commands was abandoned")
        for job in jobs:
            if chain.before is not None and job.cmd is not None and is_rename(job.cmd):
                await self._after_commit(chain, job)
            job.result = await self._execute(job, answer)
            answer = None
        chain.done.set_result(None)

    async def _after_commit(self, chain: _Chain, job: _Job) -> None:
        """Hold a rename until this customer's commands from earlier batches are committed.

        Otherwise a crash could leave both applied and uncommitted: re-applied, the earlier creation of
        the old address would find it absent (renamed) and create it again, a member no customer calls
        for. Within one batch the processor cuts the batch before such a rename (``split``). Renames are
        rare, so the wait is too.
        """
        assert chain.before is not None
        tp = TopicPartition(job.record.topic, job.record.partition)
        if self.committed_offset(tp) <= chain.before:
            RENAMES_HELD.inc()
            await self.wait_committed(tp, chain.before)
        chain.before = None

    async def _execute(self, job: _Job, answer: BulkAnswer | None) -> Result:
        cmd, client = job.cmd, job.client
        assert cmd is not None and client is not None
        try:
            tally = Tally()
            if answer is not None:
                tally.count(answer.attempts)
                if answer.kind in ("created", "updated"):
                    kind: Literal["created", "updated"] = "created" if answer.kind == "created" else "updated"
                    return await self.sync.after_batch(
                        client, cmd, kind, member_view(answer.doc or {}), tally
                    )
            return await self.sync.apply(client, cmd, tally)
        except MailchimpUnavailable:
            raise
        except Exception as exc:
            log.exception("command failed inside the loader", extra={"customer": cmd.customer})
            return failed_event(cmd, errors.LOADER_ERROR, True, f"{type(exc).__name__}: {exc}", 1)

    def _outputs(self, jobs: list[_Job]) -> list[Output]:
        outputs: list[Output] = []
        synced: Counter[tuple[str, str]] = Counter()
        for job in jobs:
            if job.undecodable is not None:
                outputs.append(self._dead_letter(job.record, job.undecodable.reason, job.undecodable.message))
                continue
            result = job.result
            assert result is not None
            outputs.append(Output(MEMBER_RESULT.name, result.key(), encode(result)))
            if isinstance(result, MemberSynced):
                synced[(result.outcome, result.via)] += 1
                cmd = job.cmd
                if cmd is not None and cmd.change_occurred_at is not None and cmd.replay_of is None:
                    FRESHNESS.observe(max(0.0, (result.occurred_at - cmd.change_occurred_at).total_seconds()))
                continue
            FAILED.labels(result.reason, str(result.permanent).lower()).inc()
            if result.permanent:
                outputs.append(self._dead_letter(job.record, result.reason, result.detail or result.reason))
        for (outcome, via), count in synced.items():
            SYNCED.labels(outcome, via).inc(count)
        return outputs

    def _dead_letter(self, record: Record, reason: str, message: str) -> Output:
        DEAD_LETTERS.labels("loader", MEMBER_UPSERT.name, reason).inc()
        return dead_letter(record, stage="loader", reason=reason, message=message, group=self.group_id)
