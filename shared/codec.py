"""One codec for every topic: event <-> JSON bytes, with clear errors for anything else.

A record that fails here is a poison pill: consumers dead-letter it with ``DecodeError.reason`` and
move on (see ``shared.kafka.DeadLetter``).
"""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import ValidationError

from shared.events import EVENT_TYPES, Event

__all__ = ["DecodeError", "decode", "decode_as", "encode"]

E = TypeVar("E", bound=Event)


class DecodeError(ValueError):
    """Bytes that are not a valid event of a known type and version.

    ``reason`` is a stable code (``not_json``, ``not_an_object``, ``missing_event_type``,
    ``unknown_event_type``, ``unsupported_schema_version``, ``invalid_payload``, ``unexpected_type``)
    used in dead-letter headers, metrics and the audit.
    """

    def __init__(self, reason: str, message: str, event_type: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.event_type = event_type


def encode(event: Event) -> bytes:
    """Serialise an event to UTF-8 JSON bytes."""
    return event.model_dump_json().encode()


def decode(data: bytes | None) -> Event:
    """Parse and validate bytes into the event type named by their ``event_type``."""
    if data is None:
        raise DecodeError("not_json", "record has no value (tombstone)")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("not_json", f"value is not JSON ({exc.msg} at byte {exc.pos})") from None
    if not isinstance(obj, dict):
        raise DecodeError("not_an_object", f"value is a JSON {type(obj).__name__}, expected an object")
    event_type = obj.get("event_type")
    if not isinstance(event_type, str):
        raise DecodeError("missing_event_type", "value has no string 'event_type'")
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise DecodeError("unknown_event_type", f"unknown event_type {event_type!r}", event_type)
    version = obj.get("schema_version")
    if version != cls.SCHEMA_VERSION:
        raise DecodeError(
            "unsupported_schema_version",
            f"{event_type} schema_version {version!r} is not supported (expected {cls.SCHEMA_VERSION})",
            event_type,
        )
    try:
        return cls.model_validate(obj)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise DecodeError("invalid_payload", f"{event_type} is invalid: {problems}", event_type) from None


def decode_as(data: bytes | None, *types: type[E]) -> E:
    """Decode and check that the event is one of ``types`` (a topic carries only its own types)."""
    event = decode(data)
    if not isinstance(event, types):
        names = ", ".join(t.__name__ for t in types)
        raise DecodeError(
            "unexpected_type", f"{event.event_type} does not belong on this topic (expected {names})"
        )
    return event
