"""Breaking things on purpose: a steady stream of SYSPRO changes, and SIGKILLs at random moments.

``ChangeStream`` edits SYSPRO the way users do (phones, contacts, branches, holds, new addresses, new,
deleted and re-created customers) and remembers what the expectation needs: the last row of every
deleted customer. It renames and deletes only customers whose address nobody else shares, and never
those whose contacts opted out: a waiting duplicate claimant is remembered in memory only (ADR 0021),
so releasing a shared address across a mapper crash has a documented, different outcome.

``KillSchedule`` SIGKILLs each service several times in a shuffled order at random moments (also while
a killed service is still starting), restarts it at once, and records what each kill interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from services.mapper.email_identity import EmailIdentity, read_email
from shared.connections import Audience
from simulators.syspro import SysproSimulator
from tests.reliability.pipeline import Pipeline

__all__ = ["ChangeStream", "Kill", "KillSchedule", "insertable"]

#: Contact names with non-ASCII and Windows-1252-only characters (a right single quote).
CONTACTS = ("Ana Lima", "Zoë Ørsted", "Jean-Luc O\u2019Neil", "Li")
#: Columns a create may not set (the database maintains them).
_GENERATED = ("TimeStamp",)


def insertable(row: dict[str, Any]) -> dict[str, Any]:
    """A rendered row as values ``create`` accepts (for re-creating a deleted customer)."""
    return {k: v for k, v in row.items() if k not in _GENERATED}


@dataclass
class ChangeStream:
    """Random, realistic SYSPRO edits; ``departed`` holds the last row of each deleted customer."""

    sim: SysproSimulator
    audience: Audience
    seed: int
    #: Customers whose address and existence must not change (their contacts opted out).
    protected: set[str] = field(default_factory=set)
    counts: Counter[str] = field(default_factory=Counter)
    departed: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every version of the row of each customer the stream touched, oldest first.
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    last_change_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._n = 0
        owners: dict[str, list[str]] = {}
        for row in self.sim.rows():
            identity = read_email(row, self.audience.email)
            if isinstance(identity, EmailIdentity):
                owners.setdefault(identity.subscriber_hash, []).append(row["Customer"])
        #: Customers that alone hold a valid address: safe to rename and delete.
        self.sole: list[str] = sorted(c[0] for c in owners.values() if len(c) == 1)
        self._codes: list[str] = [r["Customer"] for r in self.sim.rows()]

    def sole_owners(self, count: int) -> list[str]:
        """``count`` customers that alone hold their address, spread over the key range."""
        step = max(1, len(self.sole) // (count + 1))
        return self.sole[step::step][:count]

    def _existing(self) -> str:
        return self.rng.choice(self._codes)

    def _movable(self) -> str | None:
        for _ in range(20):
            code = self.rng.choice(self.sole)
            if code not in self.protected and self.sim.get(code) is not None:
                return code
        return None

    def _versions(self, code: str) -> list[dict[str, Any]]:
        if code not in self.history:
            row = self.sim.get(code)
            self.history[code] = [row] if row is not None else []
        return self.history[code]

    def _update(self, code: str, **changes: Any) -> None:
        versions = self._versions(code)
        versions.append(self.sim.update(code, **changes))

    def _create(self, row: dict[str, Any]) -> None:
        code = row["Customer"]
        versions = self._versions(code)
        versions.append(self.sim.create(row))

    def _delete(self, code: str) -> None:
        self._versions(code)
        self.sim.delete(code)

    def step(self) -> str:
        """Make one change; returns its kind."""
        self._n += 1
        n = self._n
        kinds = ["phone"] * 30 + ["contact"] * 15 + ["branch"] * 15 + ["hold"] * 10
        kinds += ["rename"] * 10 + ["create"] * 10 + ["delete"] * 5 + ["recreate"] * 5
        kind = self.rng.choice(kinds)
        code = self._existing()
        if self.sim.get(code) is None:
            kind = "recreate" if code in self.departed else "create"
        if kind == "phone":
            self._update(code, Telephone=f"555-{n:07d}"[:20])
        elif kind == "contact":
            self._update(code, Contact=self.rng.choice(CONTACTS))
        elif kind == "branch":
            self._update(code, Branch=self.rng.choice(["10", "20", "30", "NE", "SW"]))
        elif kind == "hold":
            row = self.sim.get(code)
            assert row is not None
            self._update(code, CustomerOnHold="N" if row["CustomerOnHold"].strip() == "Y" else "Y")
        elif kind == "rename":
            movable = self._movable()
            if movable is None:
                return self.step()
            self._update(movable, Email=f"moved{n}.{movable.strip().lower()}@renamed.example.org")
        elif kind == "create":
            code = f"CH{self.seed % 100:02d}{n:06d}"
            self._create(
                {
                    "Customer": code,
                    "Name": f"Chaos {n} Outfitters",
                    "Email": f"chaos{n}@new.example.org",
                    "Contact": "Mia Chaos",
                    "Branch": "10",
                }
            )
            self._codes.append(code)
            self.sole.append(code)
        elif kind == "delete":
            movable = self._movable()
            if movable is None:
                return self.step()
            row = self.sim.get(movable)
            assert row is not None
            self._delete(movable)
            self.departed[movable] = row
        elif kind == "recreate":
            if not self.departed:
                return self.step()
            code = self.rng.choice(sorted(self.departed))
            row = self.departed.pop(code)
            self._create({**insertable(row), "Telephone": f"777-{n:07d}"[:20]})
        self.counts[kind] += 1
        self.last_change_at = datetime.now(UTC)
        return kind

    async def run(self, stop: asyncio.Event, per_second: float) -> None:
        """Change SYSPRO at about ``per_second`` until ``stop`` is set."""
        while not stop.is_set():
            self.step()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.rng.expovariate(per_second))


@dataclass(frozen=True)
class Kill:
    service: str
    at_s: float
    #: What the service was doing (from its /readyz or /metrics just before), for the report.
    during: str


@dataclass
class KillSchedule:
    """SIGKILL every service ``per_service`` times, in a shuffled order, ``gap`` seconds apart (random)."""

    pipeline: Pipeline
    per_service: int
    seed: int
    gap: tuple[float, float] = (0.5, 4.0)
    kills: list[Kill] = field(default_factory=list)

    async def _moment(self, service: str) -> str:
        """A short description of the state the service was killed in."""
        proc = self.pipeline.process(service)
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                ready = (await client.get(f"{proc.url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return "starting (no HTTP yet)"
        if not ready:
            return "starting (not ready)"
        members = self.pipeline.stack.mailchimp.list_summaries()[0]["members"]
        if service == "loader":
            # Aim at a moment with Mailchimp calls in flight (up to a few seconds' wait).
            for _ in range(30):
                if self.pipeline.stack.mailchimp.stats.in_flight:
                    return f"requests in flight, {members} members"
                await asyncio.sleep(0.1)
            return f"between calls, {members} members"
        return f"running, {members} members"

    async def run(self, started: float, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed)
        order = [s for s in self.pipeline.stack.processes for _ in range(self.per_service)]
        rng.shuffle(order)
        loop = asyncio.get_running_loop()
        for service in order:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=rng.uniform(*self.gap))
            if stop.is_set():
                return
            during = await self._moment(service)
            self.pipeline.kill(service)
            self.kills.append(Kill(service, round(loop.time() - started, 1), during))
            self.pipeline.start(service)

    def survived(self) -> dict[str, int]:
        return dict(Counter(k.service for k in self.kills))
