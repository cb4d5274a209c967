"""Which Mailchimp client serves a command: connection -> audience -> credential -> client.

Clients are cached per credential name and rebuilt after ``ttl`` seconds, so a rotated or replaced
credential is picked up without a restart. Two credential names holding the same key share one
limiter and one health record: the limit belongs to the key, not to its name.
"""

from __future__ import annotations

import random
import time

from services.loader import errors
from services.loader.credentials import target_for
from services.loader.limiter import LimiterRegistry
from services.loader.mailchimp_client import ClientPool, KeyHealth, MailchimpClient, RetryPolicy
from shared.connections import ConnectionsConfig
from shared.credentials import CredentialError, CredentialStore
from shared.events import MailchimpMemberUpsert

__all__ = ["Targets", "Unresolvable"]


class Unresolvable(Exception):
    """The command names an audience or credential the loader cannot use."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Targets:
    def __init__(
        self,
        connections: ConnectionsConfig,
        store: CredentialStore,
        api_base: str,
        pool: ClientPool,
        limiters: LimiterRegistry,
        policy: RetryPolicy,
        ttl: float = 60.0,
    ) -> None:
        self.connections = connections
        self.store = store
        self.api_base = api_base
        self.pool = pool
        self.limiters = limiters
        self.policy = policy
        self.ttl = ttl
        self._clients: dict[str, tuple[float, MailchimpClient]] = {}
        self._health: dict[str, KeyHealth] = {}
        self._rng = random.Random()

    def credential_name(self, cmd: MailchimpMemberUpsert) -> str:
        try:
            return self.connections.get(cmd.connection_id).audience(cmd.audience_id).credential
        except KeyError:
            raise Unresolvable(
                errors.UNKNOWN_AUDIENCE,
                f"audience {cmd.audience_id!r} of connection {cmd.connection_id!r} "
                "is not in the connections file",
            ) from None

    def client_for(self, cmd: MailchimpMemberUpsert) -> MailchimpClient:
        name = self.credential_name(cmd)
        now = time.monotonic()
        cached = self._clients.get(name)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        try:
            target = target_for(self.store.get(name), self.api_base)
        except CredentialError as exc:
            raise Unresolvable(errors.CREDENTIAL_UNAVAILABLE, str(exc)) from None
        client = MailchimpClient(
            self.pool.for_base(target.base_url),
            target,
            self.limiters.for_key(target.key_id, name),
            self._health.setdefault(target.key_id, KeyHealth()),
            self.policy,
            self._rng,
        )
        self._clients[name] = (now, client)
        return client
