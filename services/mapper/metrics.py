"""The mapper's own Prometheus metrics (the processor's common ones are in ``shared.metrics``).

Label values are bounded sets: change kinds, actions, reason codes, note kinds, never customers or emails.
The handler counts per batch and adds the counts once, so the per-record path does no metrics work.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import Counter, Gauge

__all__ = [
    "CHANGES",
    "COMMANDS",
    "INVALID_STATE_RECORDS",
    "MEMBER_STATES",
    "NOTES",
    "OWNERS",
    "OWNERSHIP",
    "REJECTIONS",
    "RENAMES",
    "RESULTS",
    "STATE_LOAD_SECONDS",
    "TERMINAL",
    "WAITING",
    "publish",
]

CHANGES = Counter("mlc_mapper_changes_total", "CustomerChanged events mapped, by change kind", ["change"])
COMMANDS = Counter(
    "mlc_mapper_commands_total", "MailchimpMemberUpsert commands emitted, by action", ["action"]
)
RENAMES = Counter("mlc_mapper_renames_total", "Commands that rename a member (email changed in SYSPRO)")
REJECTIONS = Counter("mlc_mapper_rejections_total", "CustomerRejected events emitted, by reason", ["reason"])
NOTES = Counter("mlc_mapper_notes_total", "Notes put on commands (address left out...), by kind", ["note"])
RESULTS = Counter("mlc_mapper_results_total", "Loader results consumed, by event type", ["event_type"])
TERMINAL = Counter(
    "mlc_mapper_terminal_members_total", "Members newly recorded as terminal (never resubscribe)"
)
OWNERSHIP = Counter(
    "mlc_mapper_ownership_changes_total",
    "Email ownership changes: claimed, released, woken (a waiting customer got a freed address)",
    ["event"],
)
MEMBER_STATES = Gauge(
    "mlc_mapper_member_states", "Customer member states held in memory (assigned partitions)"
)
OWNERS = Gauge("mlc_mapper_email_owners", "Email ownership entries held in memory (all partitions)")
WAITING = Gauge("mlc_mapper_waiting_customers", "Customers waiting for an address another customer owns")
STATE_LOAD_SECONDS = Gauge(
    "mlc_mapper_state_load_seconds", "Duration of the last load of a state table from Kafka", ["table"]
)

_BY_KIND = {
    "change": CHANGES,
    "command": COMMANDS,
    "rejection": REJECTIONS,
    "note": NOTES,
    "result": RESULTS,
    "ownership": OWNERSHIP,
}


def publish(tally: Tally[tuple[str, str]]) -> None:
    """Add one batch's counts: keys are (kind, label), or ("renames"|"terminal", "")."""
    for (kind, label), count in tally.items():
        if kind == "renames":
            RENAMES.inc(count)
        elif kind == "terminal":
            TERMINAL.inc(count)
        else:
            _BY_KIND[kind].labels(label).inc(count)


INVALID_STATE_RECORDS = Counter(
    "mlc_mapper_invalid_state_records_total",
    "Records on the member-state topic that are not valid MemberState events, skipped at load",
)
