"""The mapper's in-memory tables: undo with the transaction, and convergence with the ownership topic."""

from __future__ import annotations

from services.mapper.records import AudienceMemory
from services.mapper.tables import MapperTables, Waiter

KEY = "acme:main:h1"


def test_an_aborted_transaction_restores_memory_exactly() -> None:
    tables = MapperTables()
    tables.load_partition(0, {"acme:1": {"main": AudienceMemory("a@x.co", "h1")}})
    tables.claim(KEY, "1")
    tables.commit()
    tables.put_member(0, "acme:1", {"main": AudienceMemory("b@x.co", "h2")})
    tables.put_member(0, "acme:2", {"main": AudienceMemory("c@x.co", "h3")})
    tables.release(KEY)
    tables.claim("acme:main:h2", "1")
    tables.rollback()
    assert tables.member(0, "acme:1") == {"main": AudienceMemory("a@x.co", "h1")}
    assert tables.member(0, "acme:2") is None
    assert tables.owners == {KEY: "1"}


def test_a_savepoint_undoes_only_the_failed_call() -> None:
    tables = MapperTables()
    tables.claim(KEY, "1")
    mark = tables.savepoint()
    tables.claim("acme:main:h2", "2")
    tables.rollback_to(mark)
    assert tables.owners == {KEY: "1"}


def test_own_writes_read_back_do_not_undo_a_newer_own_write() -> None:
    tables = MapperTables(track_own_writes=True)
    tables.claim(KEY, "1")
    tables.release(KEY)
    tables.commit()
    assert not tables.apply_committed(KEY, "1", own=True)  # the claim, read back: the release is newer
    assert tables.owner(KEY) is None
    assert tables.apply_committed(KEY, None, own=True)
    assert tables.owner(KEY) is None


def test_memory_converges_to_the_log_when_another_instance_writes_in_between() -> None:
    tables = MapperTables(track_own_writes=True)
    tables.claim(KEY, "1")
    tables.commit()
    # The log: the other instance's claim committed first, ours after it.
    assert tables.apply_committed(KEY, "2", own=False)
    assert tables.owner(KEY) == "2"
    assert tables.apply_committed(KEY, "1", own=True)
    assert tables.owner(KEY) == "1"


def test_unseen_own_writes_of_an_aborted_transaction_are_forgotten() -> None:
    tables = MapperTables(track_own_writes=True)
    tables.claim(KEY, "1")
    tables.rollback()
    assert tables.apply_committed(KEY, "2", own=False)
    assert tables.owner(KEY) == "2"


def test_waiters_are_served_first_come_and_forgotten_when_their_partition_moves() -> None:
    tables = MapperTables()
    tables.load_partition(0, {})
    tables.load_partition(1, {})
    tables.wait(KEY, "acme:1", Waiter(1, "acme", "1", {}))
    tables.wait(KEY, "acme:2", Waiter(0, "acme", "2", {}))
    found = tables.next_waiter(KEY)
    assert found is not None and found[0] == "acme:1"
    tables.drop_partition(1)
    found = tables.next_waiter(KEY)
    assert found is not None and found[0] == "acme:2"
    tables.stop_waiting("acme:2")
    assert tables.next_waiter(KEY) is None and tables.waiting_count == 0
