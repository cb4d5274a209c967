"""Reconciliation: SYSPRO customers the connector has seen vs the members it last saw in Mailchimp.

Per connection and audience (every audience a command, result or rejection has named):
- *customers seen*: created or updated in SYSPRO and not deleted since (``customers``);
- *members synced*: the member's last successful result left it in the audience (not archived);
- *missing*: a customer seen without a synced member, with its sync status saying why (``none`` when
  neither a command nor a rejection has been seen for it);
- *extra*: a synced member whose customer was deleted, or never seen by this audit;
- *mismatched*: a synced member whose address differs from the one the latest command asked for.

This compares the connector's own records, not a fresh export of Mailchimp: it finds what the
connector did not do or did not finish, which is the question an operator asks first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Engine, FromClause, Select, and_, func, or_, select
from sqlalchemy.engine import Connection

from .models import AudienceReconciliation, ReconcileItem
from .schema import ALL_AUDIENCES, customers, sync_state

__all__ = ["reconcile"]


def _audiences(conn: Connection, connection: str | None, audience: str | None) -> list[tuple[str, str]]:
    query = select(sync_state.c.connection_id, sync_state.c.audience_id).where(
        sync_state.c.audience_id != ALL_AUDIENCES
    )
    if connection:
        query = query.where(sync_state.c.connection_id == connection)
    if audience:
        query = query.where(sync_state.c.audience_id == audience)
    return [(r[0], r[1]) for r in conn.execute(query.distinct().order_by(*query.selected_columns))]


def _one(conn: Connection, connection_id: str, audience_id: str, limit: int) -> AudienceReconciliation:
    member = sync_state.alias("member")
    wildcard = sync_state.alias("wildcard")
    seen = and_(customers.c.connection_id == connection_id, customers.c.deleted.is_(False))
    customers_seen = conn.scalar(select(func.count()).select_from(customers).where(seen)) or 0
    in_audience = and_(sync_state.c.connection_id == connection_id, sync_state.c.audience_id == audience_id)
    members_synced = (
        conn.scalar(
            select(func.count()).select_from(sync_state).where(in_audience, sync_state.c.member_present)
        )
        or 0
    )

    joined = customers.outerjoin(
        member,
        and_(
            member.c.connection_id == customers.c.connection_id,
            member.c.customer == customers.c.customer,
            member.c.audience_id == audience_id,
        ),
    ).outerjoin(
        wildcard,
        and_(
            wildcard.c.connection_id == customers.c.connection_id,
            wildcard.c.customer == customers.c.customer,
            wildcard.c.audience_id == ALL_AUDIENCES,
        ),
    )
    not_present: ColumnElement[bool] = or_(member.c.customer.is_(None), member.c.member_present.is_(False))
    status = func.coalesce(member.c.status, wildcard.c.status, "none")
    by_status = {
        str(s): int(n)
        for s, n in conn.execute(
            select(status, func.count()).select_from(joined).where(seen, not_present).group_by(status)
        )
    }
    missing = [
        ReconcileItem(
            customer=r.customer,
            status=r.status,
            reason=r.reason,
            email_address=r.email_address,
            member_email=r.member_email,
        )
        for r in conn.execute(
            select(
                customers.c.customer,
                status.label("status"),
                func.coalesce(member.c.reason, wildcard.c.reason).label("reason"),
                member.c.email_address,
                member.c.member_email,
            )
            .select_from(joined)
            .where(seen, not_present)
            .order_by(customers.c.customer)
            .limit(limit)
        )
    ]

    extra_join = sync_state.outerjoin(
        customers,
        and_(
            customers.c.connection_id == sync_state.c.connection_id,
            customers.c.customer == sync_state.c.customer,
        ),
    )
    extra_where = and_(
        in_audience,
        sync_state.c.member_present,
        or_(customers.c.customer.is_(None), customers.c.deleted.is_(True)),
    )
    extra_count = conn.scalar(select(func.count()).select_from(extra_join).where(extra_where)) or 0
    extra = [_item(r) for r in conn.execute(_items(extra_join, extra_where, limit))]

    mismatched_where = and_(
        in_audience,
        sync_state.c.member_present,
        sync_state.c.member_email.is_not(None),
        sync_state.c.email_address.is_not(None),
        func.lower(sync_state.c.member_email) != func.lower(sync_state.c.email_address),
    )
    mismatched_count = conn.scalar(select(func.count()).select_from(sync_state).where(mismatched_where)) or 0
    mismatched = [_item(r) for r in conn.execute(_items(sync_state, mismatched_where, limit))]

    return AudienceReconciliation(
        connection_id=connection_id,
        audience_id=audience_id,
        customers_seen=customers_seen,
        members_synced=members_synced,
        missing_count=sum(by_status.values()),
        extra_count=extra_count,
        mismatched_count=mismatched_count,
        missing_by_status=by_status,
        missing=missing,
        extra=extra,
        mismatched=mismatched,
    )


def _items(source: FromClause, where: ColumnElement[bool], limit: int) -> Select[Any]:
    return (
        select(
            sync_state.c.customer,
            sync_state.c.status,
            sync_state.c.reason,
            sync_state.c.email_address,
            sync_state.c.member_email,
        )
        .select_from(source)
        .where(where)
        .order_by(sync_state.c.customer)
        .limit(limit)
    )


def _item(row: object) -> ReconcileItem:
    return ReconcileItem.model_validate(row, from_attributes=True)


def reconcile(
    engine: Engine, connection: str | None = None, audience: str | None = None, limit: int = 50
) -> list[AudienceReconciliation]:
    """One reconciliation per (connection, audience), listing at most ``limit`` customers per category."""
    with engine.connect() as conn:
        return [_one(conn, c, a, limit) for c, a in _audiences(conn, connection, audience)]
