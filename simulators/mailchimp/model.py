"""The simulated account's state: audiences, their merge fields, tags, members and forgotten addresses.

Plain dataclasses, no framework: the HTTP layer, the admin API and the Python test helpers all read and
write the same objects under one lock held by :class:`~simulators.mailchimp.simulator.MailchimpSimulator`.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Audience",
    "Member",
    "MergeField",
    "Store",
    "Tag",
    "default_merge_fields",
    "now_iso",
    "subscriber_hash",
]

#: Statuses a member can have. ``archived`` is what GET shows after DELETE; it is not writable.
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional", "archived")


def subscriber_hash(email: str) -> str:
    """MD5 of the trimmed, lower-cased address: the member's id and URL key."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


def now_iso() -> str:
    """Mailchimp's timestamp shape, ``YYYY-MM-DDTHH:MM:SS+00:00``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass(slots=True)
class MergeField:
    """One merge field definition of an audience (``GET /lists/{id}/merge-fields``)."""

    merge_id: int
    tag: str
    name: str
    type: str
    required: bool = False
    default_value: str = ""
    public: bool = True
    display_order: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    help_text: str = ""


@dataclass(frozen=True, slots=True)
class Tag:
    id: int
    name: str


@dataclass(slots=True)
class Member:
    """A list member. ``status`` is what the API shows; the other private facts drive compliance rules."""

    id: str
    email_address: str
    unique_email_id: str
    web_id: int
    status: str
    email_type: str = "html"
    merge_values: dict[str, Any] = field(default_factory=dict)
    interests: dict[str, bool] = field(default_factory=dict)
    language: str = ""
    vip: bool = False
    latitude: float = 0.0
    longitude: float = 0.0
    marketing_permissions: tuple[dict[str, Any], ...] = ()
    ip_signup: str = ""
    timestamp_signup: str = ""
    ip_opt: str = ""
    timestamp_opt: str = ""
    last_changed: str = ""
    member_rating: int = 2
    source: str = "API - Generic"
    # Tag -> date added, in the order tags were added. Few containers per member keep the garbage
    # collector's full passes short when an audience holds 100k members.
    tags: dict[Tag, str] = field(default_factory=dict)
    # Who unsubscribed the member: "contact" (self, a compliance state), "admin" or "api".
    unsubscribe_origin: str | None = None
    # Status before DELETE archived the member: archiving does not wash away an opt-out or a bounce.
    archived_from: str | None = None
    # Under Mailchimp's compliance review: cannot be subscribed through the API.
    under_review: bool = False

    @property
    def effective_status(self) -> str:
        """The status compliance rules look at (an archived member keeps its previous one)."""
        if self.status == "archived" and self.archived_from is not None:
            return self.archived_from
        return self.status


ADDRESS_KEYS = ("addr1", "addr2", "city", "state", "zip", "country")


#: A filled ADDRESS merge value: a plain tuple of strings in ``ADDRESS_KEYS`` order. The garbage collector
#: stops tracking such tuples (not subclasses), so 100k stored addresses add nothing to its full passes.
Address = tuple[str, ...]


def address_from_json(value: dict[str, Any]) -> Address:
    """Trimmed parts, missing ones empty; the country defaults to US."""
    parts = [str(value.get(key) or "").strip() for key in ADDRESS_KEYS]
    parts[-1] = parts[-1] or "US"
    return tuple(parts)


def address_to_json(value: Address) -> dict[str, str]:
    return dict(zip(ADDRESS_KEYS, value, strict=True))


def default_merge_fields() -> list[MergeField]:
    """The merge fields a new audience starts with: FNAME, LNAME, ADDRESS, PHONE, none required."""
    return [
        MergeField(1, "FNAME", "First Name", "text", display_order=2, options={"size": 25}),
        MergeField(2, "LNAME", "Last Name", "text", display_order=3, options={"size": 25}),
        MergeField(3, "ADDRESS", "Address", "address", display_order=4, options={"default_country": 164}),
        MergeField(4, "PHONE", "Phone Number", "phone", display_order=5, options={"phone_format": "none"}),
    ]


@dataclass
class Audience:
    """One list: merge fields in display order, members keyed by subscriber hash (insertion ordered)."""

    id: str
    web_id: int
    name: str
    date_created: str
    merge_fields: dict[str, MergeField] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    # Hashes of permanently deleted addresses; the address itself is erased with the member's data.
    forgotten: set[str] = field(default_factory=set)
    tags: dict[str, Tag] = field(default_factory=dict)

    def merge_field(self, tag: str) -> MergeField | None:
        found = self.merge_fields.get(tag)
        return found if found is not None else self.merge_fields.get(tag.upper())

    def next_merge_id(self) -> int:
        return max((f.merge_id for f in self.merge_fields.values()), default=0) + 1


class Store:
    """All audiences of the simulated account, with the id generators they share."""

    def __init__(self, seed: int | None) -> None:
        self.rng = random.Random(seed)
        self.lists: dict[str, Audience] = {}
        self._next_web_id = 100_000_001
        self._next_tag_id = 1_000_001

    def new_hex(self, length: int) -> str:
        return f"{self.rng.getrandbits(4 * length):0{length}x}"

    def new_web_id(self) -> int:
        self._next_web_id += 1
        return self._next_web_id

    def tag_named(self, audience: Audience, name: str) -> Tag:
        """The audience's tag called ``name`` (case-insensitive), created when unknown."""
        key = name.strip().lower()
        tag = audience.tags.get(key)
        if tag is None:
            self._next_tag_id += 1
            tag = Tag(self._next_tag_id, name.strip())
            audience.tags[key] = tag
        return tag

    def create_list(self, list_id: str | None, name: str, merge_fields: list[MergeField]) -> Audience:
        list_id = list_id or self.new_hex(10)
        if list_id in self.lists:
            raise ValueError(f"list {list_id} already exists")
        audience = Audience(list_id, self.new_web_id(), name, now_iso())
        for merge_field in merge_fields:
            audience.merge_fields[merge_field.tag] = merge_field
        self.lists[list_id] = audience
        return audience
