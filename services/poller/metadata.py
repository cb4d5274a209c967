"""Reading an OData v4 CSDL document (``$metadata``): which properties an entity set has, and their types.

The poller checks its configured columns against this at start-up and types its cursor column from it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from services.poller.errors import BadResponse, SchemaMismatch

__all__ = ["EntityMetadata", "parse_metadata"]

_EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@dataclass(frozen=True)
class EntityMetadata:
    """An entity set's properties (name -> EDM type) from ``$metadata``."""

    entity_set: str
    entity_type: str
    properties: dict[str, str]


def parse_metadata(xml: bytes, entity_set: str) -> EntityMetadata:
    """Find ``entity_set`` in a CSDL document and list its entity type's properties."""
    try:
        # The document comes from the configured, authenticated SYSPRO service; expat refuses entity
        # expansion bombs on the Python versions this project supports.
        root = ET.fromstring(xml)  # noqa: S314
    except ET.ParseError as exc:
        raise BadResponse(f"$metadata is not valid XML ({exc})") from None
    type_name: str | None = None
    for element in root.iter(f"{_EDM}EntitySet"):
        if element.get("Name") == entity_set:
            type_name = element.get("EntityType")
            break
    if type_name is None:
        raise SchemaMismatch(f"entity set {entity_set!r} is not in $metadata")
    namespace, _, short = type_name.rpartition(".")
    for schema in root.iter(f"{_EDM}Schema"):
        if namespace and schema.get("Namespace") != namespace:
            continue
        for entity_type in schema.iter(f"{_EDM}EntityType"):
            if entity_type.get("Name") == short:
                properties = {
                    p.get("Name", ""): p.get("Type", "") for p in entity_type.iter(f"{_EDM}Property")
                }
                return EntityMetadata(entity_set, type_name, properties)
    raise SchemaMismatch(f"entity type {type_name!r} of {entity_set!r} is not in $metadata")
