"""Builders for mapper tests: connections, SYSPRO rows, change events, a pipeline harness without Kafka."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any, Literal

from aiokafka.structs import ConsumerRecord

from services.mapper.pipeline import MapperPipeline
from services.mapper.plan import plan_connections
from services.mapper.tables import MapperTables
from shared.codec import decode, encode
from shared.connections import ConnectionsConfig
from shared.events import CustomerChanged, Event
from shared.kafka import Output
from shared.topics import CUSTOMER_CHANGED, MEMBER_RESULT

TODAY = date(2025, 6, 30)
CONNECTION = "acme"


def config(*audiences: dict[str, Any], connection_id: str = CONNECTION) -> ConnectionsConfig:
    """A connections file with the given audiences (defaults filled in); one default audience if none."""
    built = [{"id": "main", "list_id": "L1", "credential": "mc", **a} for a in audiences] or [
        {"id": "main", "list_id": "L1", "credential": "mc"}
    ]
    return ConnectionsConfig.model_validate(
        {
            "connections": [
                {
                    "id": connection_id,
                    "syspro": {
                        "odata_url": "http://syspro.test/odata",
                        "operator": "ADMIN",
                        "credential": "sp",
                    },
                    "audiences": built,
                }
            ]
        }
    )


def row(**columns: Any) -> dict[str, Any]:
    """A realistic, clean ``ArCustomer`` row; keyword arguments override or add columns."""
    base: dict[str, Any] = {
        "Customer": "000019",
        "Name": "Johnsons Bicycles - South",
        "Email": "accounts@johnsons.example",
        "Telephone": "555-2844",
        "Contact": "Jane Smith",
        "SoldToAddr1": "12 Main Road",
        "SoldToAddr2": "Northcliff",
        "SoldToAddr3": "Johannesburg",
        "SoldToAddr4": "Gauteng",
        "SoldToAddr5": "South Africa",
        "SoldPostalCode": "2195",
        "CustomerOnHold": "N",
        "CreditStatus": "0",
        "Branch": "10",
        "Area": "S",
        "Salesperson": "100",
        "CustomerClass": "",
        "Nationality": "ZAF",
        "DateCustAdded": "2019-05-22T00:00:00Z",
        "DateLastSale": "2025-02-28T00:00:00Z",
        "UserField1": "",
    }
    base.update(columns)
    return base


def change(
    customer: str = "000019",
    kind: Literal["created", "updated", "deleted"] = "updated",
    connection_id: str = CONNECTION,
    **columns: Any,
) -> CustomerChanged:
    data = {} if kind == "deleted" else row(Customer=customer, **columns)
    return CustomerChanged(
        connection_id=connection_id,
        customer=customer,
        change=kind,
        row=data,
        row_hash=uuid.uuid4().hex,
        run_id=uuid.uuid4(),
        strategy="snapshot",
    )


def record(
    value: bytes | None, topic: str, partition: int = 0, offset: int = 0, key: bytes | None = None
) -> Any:
    return ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, 0, 0, [])


class Harness:
    """The mapper pipeline with its tables, fed events directly and read back as decoded events."""

    def __init__(self, cfg: ConnectionsConfig | None = None, today: date = TODAY) -> None:
        self.tables = MapperTables()
        for partition in range(6):
            self.tables.load_partition(partition, {})
        self.pipeline = MapperPipeline(plan_connections(cfg or config()), self.tables, clock=lambda: today)
        self._offset = 0
        self.outputs: list[Output] = []

    def feed(self, *events: Event, partition: int = 0) -> list[Event]:
        """Handle ``events`` as one batch (changes and results), commit, and return the decoded outputs."""
        records = []
        for event in events:
            topic = CUSTOMER_CHANGED.name if isinstance(event, CustomerChanged) else MEMBER_RESULT.name
            records.append(record(encode(event), topic, partition, self._offset, event.key()))
            self._offset += 1
        return self.feed_records(records)

    def feed_records(self, records: Iterable[Any]) -> list[Event]:
        out = self.pipeline.handle(list(records))
        self.tables.commit()
        self.pipeline.end_transaction(committed=True)
        self.outputs.extend(out)
        return [
            decode(o.value) for o in out if o.value is not None and not o.topic.startswith("mlc.deadletter")
        ]

    def tombstones(self) -> list[bytes]:
        return [o.key for o in self.outputs if o.value is None and o.key is not None]

    def owner(self, audience: str, email: str) -> str | None:
        from services.mapper.email_identity import subscriber_hash

        return self.tables.owner(f"{CONNECTION}:{audience}:{subscriber_hash(email)}")
