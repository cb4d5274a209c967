"""Which ``ArCustomer`` columns a connection reads: the ones its audiences' mapping and policy use, plus
the connection's ``extra_columns``, plus what change detection itself needs.

Reading a ``$select`` of these (about 25 of the ~120 columns) keeps pages small, and makes the row hash
change only when something the connector uses changes. Pure: no I/O.
"""

from __future__ import annotations

from shared.connections import Audience, Connection

__all__ = ["KEY_COLUMN", "VERSION_COLUMN", "audience_columns", "columns_to_read"]

KEY_COLUMN = "Customer"
VERSION_COLUMN = "TimeStamp"


def audience_columns(audience: Audience) -> set[str]:
    """Columns one audience's mapping, tags, status policy and email rules refer to."""
    mapping = audience.mapping
    columns = {audience.email.column}
    columns.update(c for c in (mapping.contact, mapping.name_fallback, mapping.company, mapping.phone) if c)
    if mapping.address is not None:
        layout = mapping.address
        columns.update(
            c
            for c in (
                layout.addr1,
                layout.addr2,
                layout.city,
                layout.state,
                layout.zip,
                layout.country,
                layout.country_fallback,
            )
            if c
        )
    columns.update(mapping.extra.values())
    columns.update(audience.tags.from_columns)
    policy = audience.policy
    if policy.on_hold_is_inactive:
        columns.add("CustomerOnHold")
    if policy.inactive_credit_statuses or policy.overdue_tags:
        columns.add("CreditStatus")
    if policy.inactive_after_days_without_sale is not None:
        # A customer who never bought anything is judged by the day it was added.
        columns.update(("DateLastSale", "DateCustAdded"))
    if policy.inactive_column:
        columns.add(policy.inactive_column)
    return columns


def columns_to_read(connection: Connection) -> list[str]:
    """The ``$select`` of a connection, key first, the rest sorted (stable across restarts)."""
    source = connection.syspro
    columns: set[str] = set(source.extra_columns)
    for audience in connection.audiences:
        columns |= audience_columns(audience)
    if source.strategy == "cursor":
        columns.add(source.cursor_column)
    columns.discard(KEY_COLUMN)
    return [KEY_COLUMN, *sorted(columns)]
