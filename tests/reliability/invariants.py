"""Checks every reliability test ends with: nothing lost, nothing doubled, nothing leaked.

Each function returns the problems it found (empty when all is well) so a test can assert on them and
still report its figures; the messages say which record or customer is at fault.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.events import (
    CustomerChanged,
    CustomerRejected,
    MailchimpMemberUpsert,
    MemberSynced,
    MemberSyncFailed,
)
from shared.topics import (
    CUSTOMER_CHANGED,
    CUSTOMER_REJECTED,
    DEAD_LETTER,
    MEMBER_RESULT,
    MEMBER_UPSERT,
)
from simulators.expectations import compare
from simulators.stack import API_KEY, AUDIT_TOKEN, ODATA_PASSWORD
from tests.reliability.observe import AuditDb, TopicDump
from tests.reliability.pipeline import AUDITED, Pipeline
from tests.reliability.secrets_scan import Leak, SecretSet, files, scan

__all__ = ["Delivery", "Verdict", "audit_problems", "delivery", "leaks", "stack_secrets", "verdict"]


@dataclass
class Delivery:
    """What the topics say about end-to-end delivery."""

    changes: int = 0
    commands: int = 0
    results: int = 0
    rejections: int = 0
    failures: list[MemberSyncFailed] = field(default_factory=list)
    dead_letters: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        """Changes without a decision and commands without a result."""
        return sum(1 for p in self.problems if p.startswith(("lost", "undecided")))


def delivery(dump: TopicDump) -> Delivery:
    """Every change decided, every command answered exactly once, no change emitted twice, no
    member created twice."""
    changes = [e for e in dump.events(CUSTOMER_CHANGED.name) if isinstance(e, CustomerChanged)]
    commands = [e for e in dump.events(MEMBER_UPSERT.name) if isinstance(e, MailchimpMemberUpsert)]
    results = [e for e in dump.events(MEMBER_RESULT.name) if isinstance(e, MemberSynced | MemberSyncFailed)]
    rejections = [e for e in dump.events(CUSTOMER_REJECTED.name) if isinstance(e, CustomerRejected)]
    out = Delivery(len(changes), len(commands), len(results), len(rejections))
    out.failures = [r for r in results if isinstance(r, MemberSyncFailed)]
    out.dead_letters = len(dump.records[DEAD_LETTER.name])

    answered = Counter(r.causation_id for r in results)
    for command in commands:
        n = answered[command.event_id]
        if n != 1:
            kind = "lost" if n == 0 else "doubled"
            out.problems.append(f"{kind}: command {command.event_id} ({command.customer}) has {n} results")
    decided: dict[UUID | None, Counter[str]] = defaultdict(Counter)
    for event in [*commands, *rejections]:
        decided[event.causation_id][event.customer] += 1
    commanded: dict[UUID | None, Counter[str]] = defaultdict(Counter)
    for command in commands:
        commanded[command.causation_id][command.customer] += 1
    for change in changes:
        if change.change != "deleted" and not decided.get(change.event_id):
            out.problems.append(f"undecided: change {change.event_id} of {change.customer} ({change.change})")
        per_customer = commanded.get(change.event_id, Counter())
        if any(n > 1 for n in per_customer.values()):
            out.problems.append(f"doubled: change {change.event_id} made {dict(per_customer)}")

    last_hash: dict[str, tuple[str, str]] = {}
    for change in changes:
        previous = last_hash.get(change.customer)
        if previous == (change.change, change.row_hash) and change.change != "deleted":
            out.problems.append(f"re-emitted: {change.customer} {change.change} with the same row twice")
        last_hash[change.customer] = (change.change, change.row_hash)

    created = Counter(
        (r.list_id, r.subscriber_hash)
        for r in results
        if isinstance(r, MemberSynced) and r.outcome == "created"
    )
    out.problems += [f"created twice: {key[1]} ({n} times)" for key, n in created.items() if n > 1]
    return out


def audit_problems(dump: TopicDump, audit: AuditDb) -> tuple[dict[str, int], list[str]]:
    """The audit holds one ``event`` row per committed event on the audited topics, and nothing else
    that was not on them; returns (figures, problems)."""
    problems: list[str] = []
    on_topics: Counter[str] = Counter()
    for topic in AUDITED:
        if topic == DEAD_LETTER.name:
            continue
        on_topics.update(str(e.event_id) for e in dump.typed_events(topic))
    rows, distinct = audit.event_rows()
    stored = audit.event_ids()
    kinds = audit.kinds()
    doubled_on_topics = [e for e, n in on_topics.items() if n > 1]
    if rows != distinct:
        problems.append(f"audit: {rows} event rows for {distinct} distinct event ids")
    if set(stored) != set(on_topics):
        missing = set(on_topics) - set(stored)
        extra = set(stored) - set(on_topics)
        problems.append(f"audit: {len(missing)} events not stored, {len(extra)} stored but not on the topics")
    if kinds.get("duplicate", 0) != sum(on_topics[e] - 1 for e in doubled_on_topics):
        problems.append(
            f"audit: {kinds.get('duplicate', 0)} duplicate rows, topics repeat {doubled_on_topics[:5]}"
        )
    records = sum(len(dump.records[t]) for t in AUDITED)
    if sum(kinds.values()) != records:
        problems.append(f"audit: {sum(kinds.values())} rows for {records} records on the audited topics")
    figures = {
        "audit_rows": sum(kinds.values()),
        "audit_event_rows": rows,
        "distinct_event_ids": distinct,
        "records_on_audited_topics": records,
        **{f"audit_rows_{k}": v for k, v in sorted(kinds.items())},
    }
    return figures, problems


def stack_secrets(pipeline: Pipeline) -> SecretSet:
    """The secrets of a ``LocalStack`` run: OData password, Mailchimp key, audit token, master key."""
    return SecretSet(
        {
            "odata password": ODATA_PASSWORD,
            "mailchimp api key": API_KEY,
            "audit token": AUDIT_TOKEN,
            "master key": pipeline.stack.master_key,
        }
    )


def leaks(pipeline: Pipeline, dump: TopicDump, extra: SecretSet | None = None) -> list[Leak]:
    """Secrets found in the services' logs, on any topic, or in the audit database."""
    secrets = extra or stack_secrets(pipeline)
    places = [
        *files(sorted(pipeline.stack.workdir.glob("*.log"))),
        *dump.all_bytes(),
        ("audit database", pipeline.audit_db.all_bytes()),
    ]
    return scan(secrets, places)


@dataclass
class Verdict:
    """Figures for the report and every problem found, from all the end-of-run checks together."""

    figures: dict[str, object]
    problems: list[str]

    def __str__(self) -> str:
        return "\n".join(self.problems[:40])


#: The columns ``ChangeStream`` edits: an observed row must match a version SYSPRO held on these.
_EDITED = ("Email", "Contact", "Telephone", "Branch", "CustomerOnHold")


def _held(row: Mapping[str, Any], version: Mapping[str, Any]) -> bool:
    return all(str(row[c]).strip() == str(version.get(c, "")).strip() for c in _EDITED if c in row)


def observed_departures(
    dump: TopicDump, history: Mapping[str, list[dict[str, Any]]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The last row the poller saw of each customer it then saw deleted, checked against the versions
    SYSPRO held (``history``). A row changed and deleted between two polls is never seen: the member
    then shows the last version the poller did see, and that is what the policy asks for."""
    last: dict[str, CustomerChanged] = {}
    alive: dict[str, dict[str, Any]] = {}
    for change in dump.events(CUSTOMER_CHANGED.name):
        if isinstance(change, CustomerChanged):
            last[change.customer] = change
            if change.change != "deleted":
                alive[change.customer] = dict(change.row)
    departed: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for customer, change in last.items():
        row = alive.get(customer)
        if change.change != "deleted" or row is None:
            continue
        versions = history.get(customer, [])
        if versions and not any(_held(row, v) for v in versions):
            problems.append(f"the poller's last row of deleted {customer} matches no version SYSPRO held")
        departed[customer] = row
    return departed, problems


def verdict(
    pipeline: Pipeline,
    dump: TopicDump,
    *,
    history: Mapping[str, list[dict[str, Any]]],
    opted_out: list[str],
    allow_failures: bool = False,
) -> Verdict:
    """The audience equals SYSPRO under the policy, opted-out contacts stay unsubscribed, every change
    and command is accounted for exactly once, the audit holds one row per event, no secret leaked and
    no service exited on its own. ``allow_failures`` accepts MemberSyncFailed (a test of permanent
    failures); dead letters are never accepted here."""
    departed, departure_issues = observed_departures(dump, history)
    gone_but_present = [c for c in departed if pipeline.stack.syspro.get(c) is not None]
    report = compare(pipeline.stack, departed=departed, opted_out=opted_out)
    sent = delivery(dump)
    audit_figures, audit_issues = audit_problems(dump, pipeline.audit_db)
    found = leaks(pipeline, dump)
    members = {m["email_address"].lower(): m for m in pipeline.stack.members()}
    problems: list[str] = list(departure_issues)
    problems += [f"the topics say {c} is deleted, SYSPRO still has it" for c in gone_but_present]
    if not report.ok:
        problems.append(report.render())
    problems += sent.problems
    if sent.failures and not allow_failures:
        problems += [f"failed: {f.customer} {f.reason} ({f.detail[:120]})" for f in sent.failures[:20]]
    if sent.dead_letters:
        problems.append(f"{sent.dead_letters} records dead-lettered")
    problems += [
        f"opted-out contact {e} is {members.get(e.lower(), {}).get('status')}"
        for e in opted_out
        if members.get(e.lower(), {}).get("status") != "unsubscribed"
    ]
    problems += audit_issues
    problems += [f"secret leaked: {leak.secret} in {leak.where}" for leak in found]
    problems += [
        f"{name} exited on its own ({code}):\n{tail}" for name, code, tail in pipeline.unplanned_exits
    ]
    figures: dict[str, object] = {
        **report.counts(),
        "changes": sent.changes,
        "commands": sent.commands,
        "results": sent.results,
        "rejections": sent.rejections,
        "failures": len(sent.failures),
        "dead_letters": sent.dead_letters,
        "events_lost": sent.lost,
        "delivery_problems": len(sent.problems),
        **audit_figures,
        "secret_leaks": len(found),
        "unplanned_exits": [(name, code) for name, code, _ in pipeline.unplanned_exits],
    }
    return Verdict(figures, problems)
