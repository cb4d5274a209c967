"""A connection's configuration prepared once for the per-record path.

``Audience`` is a validated pydantic model; what the mapper needs per row (compiled status rules, the
merge-field plan, the email rules) is derived here once at start-up, so mapping a row does no
configuration work.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.mapper.member_mapping import MemberMapper
from services.mapper.status_policy import StatusRules
from shared.connections import Audience, Connection, ConnectionsConfig

__all__ = ["AudiencePlan", "ConnectionPlan", "plan_connection", "plan_connections"]


@dataclass(frozen=True, slots=True)
class AudiencePlan:
    audience: Audience
    mapper: MemberMapper
    rules: StatusRules

    @property
    def id(self) -> str:
        return self.audience.id


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    connection_id: str
    audiences: tuple[AudiencePlan, ...]


def plan_connection(connection: Connection) -> ConnectionPlan:
    return ConnectionPlan(
        connection.id,
        tuple(AudiencePlan(a, MemberMapper(a), StatusRules(a.policy)) for a in connection.audiences),
    )


def plan_connections(config: ConnectionsConfig) -> dict[str, ConnectionPlan]:
    return {c.id: plan_connection(c) for c in config.connections}
