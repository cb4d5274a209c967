"""The mapper's batch handler: consumed records in, records to produce out, state kept in step.

No Kafka client here: records arrive from ``TransactionalProcessor`` and the returned ``Output`` list is
produced with the batch's offsets in one transaction. The pipeline decodes, calls the pure ``decide`` and
``learn``, applies their state changes to ``MapperTables`` (undoable until the transaction commits) and
encodes the results (``wire``). A record that cannot be decoded is dead-lettered here with the codec's
reason, so one bad record costs neither the batch nor a record-by-record re-run.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

import orjson
from pydantic import ValidationError, create_model

from services.mapper import metrics
from services.mapper.decide import CustomerInput, Decision, decide
from services.mapper.learn import learn
from services.mapper.plan import ConnectionPlan
from services.mapper.records import Claim, Rejection
from services.mapper.tables import MapperTables, Waiter
from services.mapper.wire import (
    Envelope,
    Stamp,
    encode_command,
    encode_memory,
    encode_ownership,
    encode_rejection,
)
from shared.codec import DecodeError, decode_as
from shared.events import CustomerChanged, MemberSynced, MemberSyncFailed
from shared.kafka import Output, dead_letter
from shared.metrics import DEAD_LETTERS
from shared.processor import Record
from shared.topics import (
    CUSTOMER_CHANGED,
    CUSTOMER_REJECTED,
    EMAIL_OWNERSHIP,
    MEMBER_RESULT,
    MEMBER_STATE,
    MEMBER_UPSERT,
)

__all__ = ["WRITER_HEADER", "MapperPipeline", "decode_change"]

WRITER_HEADER = "mlc.writer"
"""Header on ownership records naming the process incarnation that wrote them (see ``ownership_feed``)."""

Tally = Counter[tuple[str, str]]

# CustomerChanged without its row: the row's values are checked here instead of by pydantic's five-way
# union, which costs more than the rest of the event. Everything else is validated as the codec does
# (orjson, then pydantic in Python mode), so both accept and refuse the same records.
_ChangeEnvelope: Any = create_model("_ChangeEnvelope", __base__=CustomerChanged, row=(Any, None))
_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _today() -> date:
    return datetime.now(UTC).date()


def decode_change(value: bytes | None) -> CustomerInput:
    """The change a ``CustomerChanged`` record carries, or ``DecodeError`` with the codec's reason."""
    try:
        obj = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        obj = None
    if (
        isinstance(obj, dict)
        and obj.get("event_type") == "CustomerChanged"
        and obj.get("schema_version") == CustomerChanged.SCHEMA_VERSION
    ):
        row = obj.pop("row", None)
        if isinstance(row, dict) and _SCALAR_TYPES.issuperset(map(type, row.values())):
            try:
                env = _ChangeEnvelope.model_validate(obj)
            except ValidationError:
                pass
            else:
                return CustomerInput(
                    env.connection_id,
                    env.customer,
                    env.change,
                    row,
                    env.event_id,
                    env.correlation_id,
                    _iso(env.occurred_at),
                )
    event = decode_as(value, CustomerChanged)
    return CustomerInput(
        event.connection_id,
        event.customer,
        event.change,
        event.row,
        event.event_id,
        event.correlation_id,
        _iso(event.occurred_at),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class MapperPipeline:
    """Turns batches of changes and results into commands, rejections and state records."""

    def __init__(
        self,
        plans: dict[str, ConnectionPlan],
        tables: MapperTables,
        *,
        namespace: str = "",
        group_id: str = "mlc-mapper",
        writer_id: bytes = b"",
        clock: Callable[[], date] = _today,
    ) -> None:
        self.plans = plans
        self.tables = tables
        self.changed_topic = namespace + CUSTOMER_CHANGED.name
        self.result_topic = namespace + MEMBER_RESULT.name
        self.namespace = namespace
        self.group_id = group_id
        self.clock = clock
        self._owner_headers = ((WRITER_HEADER, writer_id),)
        #: Addresses another instance freed: their waiting customers are woken with the next batch.
        self.freed_elsewhere: list[str] = []
        self._freed_in_transaction: list[str] = []

    def handle(self, records: Sequence[Record]) -> list[Output]:
        """Outputs for ``records``; on an exception, memory is as it was before the call."""
        tables = self.tables
        mark = tables.savepoint()
        tally: Tally = Counter()
        out: list[Output] = []
        freed, self.freed_elsewhere = self.freed_elsewhere, []
        try:
            today = self.clock()
            stamp = Stamp.now()
            for key in freed:
                if tables.owner(key) is None:
                    self._wake(key, Envelope("", "", None, uuid.uuid4()), today, stamp, out, tally)
            for rec in records:
                if rec.topic == self.changed_topic:
                    self._change(rec, today, stamp, out, tally)
                elif rec.topic == self.result_topic:
                    self._result(rec, stamp, out, tally)
                else:
                    out.append(
                        self._dead_letter(rec, DecodeError("unexpected_type", f"not an input: {rec.topic}"))
                    )
        except BaseException:
            tables.rollback_to(mark)
            self.freed_elsewhere = freed + self.freed_elsewhere
            raise
        self._freed_in_transaction.extend(freed)
        metrics.publish(tally)
        return out

    def end_transaction(self, committed: bool) -> None:
        """The transaction of the calls since the last end committed or aborted (memory rolled back)."""
        if not committed:
            self.freed_elsewhere = self._freed_in_transaction + self.freed_elsewhere
        self._freed_in_transaction = []

    # --- changes ------------------------------------------------------------------------------

    def _dead_letter(self, rec: Record, exc: DecodeError) -> Output:
        topic = rec.topic.removeprefix(self.namespace)
        DEAD_LETTERS.labels("mapper", topic, exc.reason).inc()
        return dead_letter(
            rec, stage="mapper", reason=exc.reason, message=str(exc), group=self.group_id, exception=exc
        )

    def _change(self, rec: Record, today: date, stamp: Stamp, out: list[Output], tally: Tally) -> None:
        try:
            inp = decode_change(rec.value)
        except DecodeError as exc:
            out.append(self._dead_letter(rec, exc))
            return
        tally[("change", inp.change)] += 1
        env = Envelope(inp.connection_id, inp.customer, inp.causation_id, inp.correlation_id, inp.occurred_at)
        plan = self.plans.get(inp.connection_id)
        if plan is None:
            detail = f"connection {inp.connection_id} is not in the connections file"
            self._reject(env, stamp, Rejection(None, "unmappable", detail), out, tally)
            return
        self._decide(rec.partition, inp, env, plan, today, stamp, out, tally)

    def _decide(
        self,
        partition: int,
        inp: CustomerInput,
        env: Envelope,
        plan: ConnectionPlan,
        today: date,
        stamp: Stamp,
        out: list[Output],
        tally: Tally,
        *,
        only: frozenset[str] | None = None,
        wake: bool = False,
    ) -> None:
        tables = self.tables
        owner = tables.owner
        prefix = inp.connection_id + ":"
        customer_key = prefix + inp.customer

        def owner_of(audience_id: str, subscriber_hash: str) -> str | None:
            return owner(f"{prefix}{audience_id}:{subscriber_hash}")

        decision = decide(
            inp, tables.member(partition, customer_key), owner_of, plan, today, only=only, wake=wake
        )
        tables.stop_waiting(customer_key)
        for claim in decision.waiting:
            waiter = Waiter(partition, inp.connection_id, inp.customer, inp.row)
            tables.wait(_owner_key(inp.connection_id, claim), customer_key, waiter)
        self._emit(partition, customer_key, env, stamp, decision, out, tally)
        for claim in decision.releases:
            self._wake(_owner_key(inp.connection_id, claim), env, today, stamp, out, tally)

    def _reject(
        self, env: Envelope, stamp: Stamp, rejection: Rejection, out: list[Output], tally: Tally
    ) -> None:
        key = env.key if rejection.customer is None else f"{env.connection_id}:{rejection.customer}".encode()
        out.append(Output(CUSTOMER_REJECTED.name, key, encode_rejection(env, stamp, rejection)))
        tally[("rejection", rejection.reason)] += 1

    def _emit(
        self,
        partition: int,
        customer_key: str,
        env: Envelope,
        stamp: Stamp,
        decision: Decision,
        out: list[Output],
        tally: Tally,
    ) -> None:
        tables = self.tables
        key = env.key
        for command in decision.commands:
            out.append(Output(MEMBER_UPSERT.name, key, encode_command(env, stamp, command)))
            tally[("command", command.action)] += 1
            if command.previous_email is not None:
                tally[("renames", "")] += 1
            for note in command.notes:
                tally[("note", note.split(":", 1)[0])] += 1
        for rejection in decision.rejections:
            self._reject(env, stamp, rejection, out, tally)
        if decision.memory is not None:
            tables.put_member(partition, customer_key, decision.memory)
            out.append(Output(MEMBER_STATE.name, key, encode_memory(env, stamp, decision.memory)))
        for claim in decision.claims:
            owner_key = _owner_key(env.connection_id, claim)
            tables.claim(owner_key, env.customer)
            value = encode_ownership(env, stamp, claim)
            out.append(Output(EMAIL_OWNERSHIP.name, owner_key.encode(), value, self._owner_headers))
            tally[("ownership", "claimed")] += 1
        for claim in decision.releases:
            owner_key = _owner_key(env.connection_id, claim)
            tables.release(owner_key)
            out.append(Output(EMAIL_OWNERSHIP.name, owner_key.encode(), None, self._owner_headers))
            tally[("ownership", "released")] += 1

    def _wake(
        self, owner_key: str, cause: Envelope, today: date, stamp: Stamp, out: list[Output], tally: Tally
    ) -> None:
        """Give a freed address to the first customer waiting for it, if that customer is ours."""
        found = self.tables.next_waiter(owner_key)
        if found is None:
            return
        _, waiter = found
        plan = self.plans.get(waiter.connection_id)
        if plan is None:
            return
        env = Envelope(waiter.connection_id, waiter.customer, cause.causation_id, cause.correlation_id)
        inp = CustomerInput(
            waiter.connection_id,
            waiter.customer,
            "updated",
            waiter.row,
            cause.causation_id,
            cause.correlation_id,
        )
        tally[("ownership", "woken")] += 1
        audience = frozenset({owner_key.split(":")[1]})
        self._decide(waiter.partition, inp, env, plan, today, stamp, out, tally, only=audience, wake=True)

    # --- results ------------------------------------------------------------------------------

    def _result(self, rec: Record, stamp: Stamp, out: list[Output], tally: Tally) -> None:
        try:
            event = decode_as(rec.value, MemberSynced, MemberSyncFailed)
        except DecodeError as exc:
            out.append(self._dead_letter(rec, exc))
            return
        result = event if isinstance(event, MemberSynced) else cast(MemberSyncFailed, event)
        tally[("result", result.event_type)] += 1
        customer_key = f"{result.connection_id}:{result.customer}"
        memory = self.tables.member(rec.partition, customer_key)
        new = learn(memory, result)
        if new is None:
            return
        before = memory.get(result.audience_id) if memory is not None else None
        if new[result.audience_id].terminal and not (before is not None and before.terminal):
            tally[("terminal", "")] += 1
        self.tables.put_member(rec.partition, customer_key, new)
        env = Envelope(result.connection_id, result.customer, result.event_id, result.correlation_id)
        out.append(Output(MEMBER_STATE.name, env.key, encode_memory(env, stamp, new)))


def _owner_key(connection_id: str, claim: Claim) -> str:
    return f"{connection_id}:{claim.audience_id}:{claim.subscriber_hash}"
