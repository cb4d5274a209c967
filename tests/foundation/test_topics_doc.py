"""docs/topics.md and the code's registry and event models must say the same thing."""

from __future__ import annotations

import re
from pathlib import Path

from shared.events import EVENT_TYPES, Event
from shared.topics import ALL_TOPICS

DOC = Path(__file__).resolve().parents[2] / "docs" / "topics.md"
ENVELOPE = set(Event.model_fields)


def _table_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("| `") and "." in line.split("|")[1]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_registry_topic_is_documented_with_the_same_settings() -> None:
    rows = _table_rows()
    assert set(rows) == {spec.name for spec in ALL_TOPICS}, (
        "topics in docs/topics.md differ from the registry"
    )
    for spec in ALL_TOPICS:
        _name, key, values, partitions, cleanup, retention, producers, consumers = rows[spec.name]
        assert key.strip("`") == spec.key, spec.name
        documented_values = re.findall(r"`(\w+)`", values)
        assert documented_values == list(spec.value_type_names), spec.name
        assert int(partitions) == spec.partitions, spec.name
        assert cleanup == spec.cleanup_policy, spec.name
        expected_retention = f"{spec.retention_ms // 86_400_000} d" if spec.retention_ms else "-"
        assert retention == expected_retention, spec.name
        assert producers == spec.producers, spec.name
        assert consumers == spec.consumers, spec.name


def _documented_fields() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^### `(\w+)`", line)
        if heading:
            current = heading.group(1)
            sections[current] = []
        elif line.startswith("## "):
            current = None
        elif current and (field := re.match(r"^- `(\w+)` —", line)):
            sections[current].append(field.group(1))
    return sections


def test_every_event_type_is_documented_with_exactly_its_fields() -> None:
    documented = _documented_fields()
    assert set(documented) == set(EVENT_TYPES), "event sections in docs/topics.md differ from the models"
    for name, cls in EVENT_TYPES.items():
        own = [f for f in cls.model_fields if f not in ENVELOPE]
        assert documented[name] == own, f"{name}: documented {documented[name]} vs model {own}"


def test_the_envelope_is_documented() -> None:
    text = DOC.read_text()
    envelope = text.split("## The envelope", 1)[1].split("## ", 1)[0]
    assert re.findall(r"^- `(\w+)` —", envelope, flags=re.M) == list(Event.model_fields)
