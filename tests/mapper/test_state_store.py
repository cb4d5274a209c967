"""The mapper's state store (``MapperTables`` over a SQLite file): the undo log over the buffered batch,
what reaches the file on commit, restores in bulk, and memory that does not grow with the customers."""

from __future__ import annotations

import gc
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psutil

from services.mapper.app import MapperService
from services.mapper.records import AudienceMemory, CustomerMemory
from services.mapper.settings import MapperSettings
from services.mapper.tables import MapperTables, decode_memory, encode_memory
from shared.settings import KafkaSettings
from tests.mapper.factories import config

KEY = "acme:main:h1"


def _memory(email: str, tags: tuple[str, ...] = ()) -> CustomerMemory:
    return {"main": AudienceMemory(email, hashlib.md5(email.encode()).hexdigest(), "subscribed", tags=tags)}


def _in_file(tables: MapperTables) -> tuple[dict[tuple[int, str], CustomerMemory], dict[str, str]]:
    """What the file holds, read through another connection."""
    with sqlite3.connect(tables.path) as other:
        members = {
            (p, k): decode_memory(s) for p, k, s in other.execute("SELECT partition, key, state FROM members")
        }
        owners = dict(other.execute("SELECT key, customer FROM owners"))
    return members, owners


def test_a_state_survives_the_encoding_exactly() -> None:
    memory: CustomerMemory = {
        "main": AudienceMemory("a@x.co", "0" * 32, "subscribed", False, False, ("branch-1", "area-n")),
        "news": AudienceMemory(None, None, None, True, True, ()),
        "third": AudienceMemory("b@x.co", "1" * 32, "cleaned", archived=False, terminal=True),
    }
    assert decode_memory(encode_memory(memory)) == memory
    assert decode_memory(encode_memory({})) == {}


def test_changes_reach_the_file_only_on_commit() -> None:
    tables = MapperTables()
    tables.load_partition(0, {})
    tables.put_member(0, "acme:1", _memory("a@x.co"))
    tables.claim(KEY, "1")
    assert tables.member(0, "acme:1") == _memory("a@x.co")  # read from the buffer
    assert tables.member_count == 1 and len(tables.owners) == 1
    assert _in_file(tables) == ({}, {})
    tables.commit()
    assert _in_file(tables) == ({(0, "acme:1"): _memory("a@x.co")}, {KEY: "1"})
    assert tables.member(0, "acme:1") == _memory("a@x.co")  # read from the file
    assert tables.member_count == 1 and tables.owners == {KEY: "1"}
    tables.close()


def test_an_aborted_transaction_after_commits_restores_the_committed_state() -> None:
    tables = MapperTables(track_own_writes=True)
    tables.load_partition(0, {"acme:1": _memory("a@x.co")})
    tables.claim(KEY, "1")
    tables.commit()
    tables.put_member(0, "acme:1", _memory("b@x.co"))
    tables.put_member(0, "acme:2", _memory("c@x.co"))
    tables.release(KEY)
    tables.claim("acme:main:h2", "1")
    assert tables.member_count == 2 and tables.owners == {"acme:main:h2": "1"}
    tables.rollback()
    assert tables.member(0, "acme:1") == _memory("a@x.co")
    assert tables.member(0, "acme:2") is None
    assert tables.owners == {KEY: "1"} and tables.member_count == 1
    tables.commit()  # nothing of the aborted batch is written
    assert _in_file(tables) == ({(0, "acme:1"): _memory("a@x.co")}, {KEY: "1"})


def test_a_savepoint_undoes_only_the_failed_call_of_a_batch() -> None:
    tables = MapperTables()
    tables.load_partition(0, {})
    tables.put_member(0, "acme:1", _memory("a@x.co"))
    tables.claim(KEY, "1")
    mark = tables.savepoint()
    tables.put_member(0, "acme:1", _memory("b@x.co"))
    tables.put_member(0, "acme:2", _memory("c@x.co"))
    tables.release(KEY)
    tables.rollback_to(mark)
    assert tables.member(0, "acme:1") == _memory("a@x.co") and tables.member(0, "acme:2") is None
    assert tables.owner(KEY) == "1"
    tables.commit()
    assert _in_file(tables) == ({(0, "acme:1"): _memory("a@x.co")}, {KEY: "1"})


def test_a_rollback_restores_an_owner_over_a_record_applied_in_between() -> None:
    """As the dicts did: the undo log holds the value each change replaced, not "whatever the file says"."""
    tables = MapperTables()
    tables.claim(KEY, "1")
    tables.commit()
    tables.claim(KEY, "2")
    assert tables.apply_committed(KEY, "3", own=False)
    assert tables.owner(KEY) == "3"
    tables.rollback()
    assert tables.owner(KEY) == "1"
    tables.commit()
    assert _in_file(tables)[1] == {KEY: "1"}


def test_followed_records_are_written_with_the_next_commit() -> None:
    tables = MapperTables(track_own_writes=True)
    assert tables.apply_committed(KEY, "2", own=False)
    assert tables.apply_committed("acme:main:h2", None, own=False)
    assert tables.owners == {KEY: "2"}
    tables.commit()
    assert _in_file(tables)[1] == {KEY: "2"}
    assert tables.apply_committed(KEY, None, own=False)
    tables.rollback()  # not undoable
    assert tables.owner(KEY) is None and len(tables.owners) == 0
    tables.commit()
    assert _in_file(tables)[1] == {}


def test_an_unchanged_state_is_not_rewritten_and_counts_stay_exact() -> None:
    tables = MapperTables()
    tables.load_partition(1, {"acme:1": _memory("a@x.co")})
    before = tables.member(1, "acme:1")
    assert before is not None
    tables.put_member(1, "acme:1", dict(before))
    tables.put_member(1, "acme:2", _memory("b@x.co"))
    tables.put_member(1, "acme:2", _memory("b@x.co", ("t",)))
    tables.claim(KEY, "2")
    tables.release(KEY)
    tables.commit()
    assert tables.member_count == 2 and len(tables.owners) == 0
    assert _in_file(tables)[0] == {(1, "acme:1"): _memory("a@x.co"), (1, "acme:2"): _memory("b@x.co", ("t",))}
    assert dict(tables.members[1]) == {"acme:1": _memory("a@x.co"), "acme:2": _memory("b@x.co", ("t",))}


def test_a_restore_streams_into_the_file_and_replaces_the_partition() -> None:
    tables = MapperTables()
    tables.load_partition(2, {"acme:old": _memory("old@x.co")})
    consumed: list[str] = []

    def states() -> Iterator[tuple[str, CustomerMemory]]:
        for n in range(3):
            consumed.append(str(n))
            yield f"acme:{n}", _memory(f"{n}@x.co")

    tables.load_partition(2, states())
    assert consumed == ["0", "1", "2"]
    assert tables.member(2, "acme:old") is None and tables.member(2, "acme:1") == _memory("1@x.co")
    assert tables.member_count == 3 and sorted(tables.members) == [2]
    tables.drop_partition(2)
    assert tables.member(2, "acme:1") is None and tables.member_count == 0
    assert _in_file(tables)[0] == {}


def test_owners_restore_applies_tombstones_in_log_order() -> None:
    tables = MapperTables()
    tables.load_owners([(KEY, "1"), ("acme:main:h2", "2"), (KEY, None), ("acme:main:h3", "3")])
    tables.load_owners([(KEY, "4"), ("acme:main:h3", None)])
    assert tables.owners == {KEY: "4", "acme:main:h2": "2"}
    assert _in_file(tables)[1] == {KEY: "4", "acme:main:h2": "2"}


def test_the_file_is_in_the_state_dir_and_removed_on_close(tmp_path: Path) -> None:
    tables = MapperTables(state_dir=tmp_path, name="m1")
    assert tables.path == tmp_path / "m1.sqlite3" and tables.path.exists()
    tables.close()
    assert not list(tmp_path.iterdir())
    temporary = MapperTables()
    directory = temporary.path.parent
    del temporary
    gc.collect()
    assert not directory.exists()


def test_the_service_puts_its_store_in_the_configured_dir(tmp_path: Path) -> None:
    settings = MapperSettings(state_dir=str(tmp_path / "state"), state_cache_mb=4)
    service = MapperService(KafkaSettings(), config(), "i/1", settings)
    assert service.tables.path.parent == tmp_path / "state"
    assert service.tables.path.name.startswith("mapper-i_1-")
    service.tables.close()


def test_memory_does_not_grow_with_the_customers() -> None:
    """200k customers with one audience, an address, a status, tags and an owner entry: held as dicts
    they took ~800 bytes each (160 MB); in the store, the process grows by little more than the cache."""
    customers = 200_000
    gc.collect()
    before = psutil.Process().memory_info().rss
    tables = MapperTables(cache_mb=4)
    tags = ("branch-01", "area-north")
    for start in range(0, customers, 5000):
        chunk = range(start, start + 5000)
        tables.load_owners((f"acme:main:{hashlib.md5(str(n).encode()).hexdigest()}", f"C{n}") for n in chunk)
    for partition in range(6):
        tables.load_partition(
            partition,
            (
                (f"acme:C{n}", _memory(f"customer.{n}@example.co.uk", tags))
                for n in range(partition, customers, 6)
            ),
        )
    assert tables.member_count == customers and len(tables.owners) == customers
    gc.collect()
    grown = psutil.Process().memory_info().rss - before
    assert grown < 30_000_000, f"{grown / customers:,.0f} bytes per customer"
    tables.close()
