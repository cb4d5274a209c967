"""Looking for secrets where they must never be: log files, topic bytes, the audit database.

A secret is searched in the forms it could leak in: as typed, URL-encoded, JSON-escaped, and inside
the HTTP Basic header the services build from it (base64 of ``user:secret``). A hit names the secret
by its role and the place, never the value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

__all__ = ["Leak", "SecretSet", "scan"]


@dataclass(frozen=True)
class Leak:
    secret: str
    where: str


@dataclass(frozen=True)
class SecretSet:
    """The secrets of one run, by role (``odata password``, ``mailchimp api key``...)."""

    secrets: dict[str, str]
    #: User names the secrets travel with in Basic auth headers (``MLC`` for OData, ``anystring``...).
    basic_users: tuple[str, ...] = ("anystring", "MLC", "mlc", "user")

    def forms(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for role, secret in self.secrets.items():
            variants = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
            for user in self.basic_users:
                variants.add(base64.b64encode(f"{user}:{secret}".encode()).decode())
            out.extend((role, v.encode()) for v in variants if v)
        return out


def scan(secrets: SecretSet, places: Iterable[tuple[str, bytes]]) -> list[Leak]:
    """Every (secret role, place) where a form of a secret occurs in the bytes of that place."""
    forms = secrets.forms()
    leaks: list[Leak] = []
    for where, data in places:
        for role, form in forms:
            if form in data:
                leaks.append(Leak(role, where))
    return leaks


def files(paths: Iterable[Path]) -> Iterable[tuple[str, bytes]]:
    for path in paths:
        if path.is_file():
            yield str(path), path.read_bytes()
