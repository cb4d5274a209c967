"""Row normalising, hashing and the snapshot diff (pure, no I/O)."""

from __future__ import annotations

import pytest

from services.poller.change_detection import (
    EMPTY_ROW_DIGEST,
    FullScanTracker,
    InvalidRow,
    KnownHashes,
    deletions,
    diff_rows,
    normalise_row,
    observe_row,
    row_digest,
)

ROW = {
    "@odata.etag": 'W/"x"',
    "Customer": "000019 ",
    "Name": "Johnsons Bicycles - South",
    "Currency": "$  ",
    "CreditLimit": 99999.0,
    "UserField2": 12.5,
    "DateLastPay": None,
    "TimeStamp": "AAAAAAAB9Xk=",
}


def test_strings_are_trimmed_integral_numbers_unified_and_annotations_and_versions_dropped() -> None:
    row = normalise_row(ROW, exclude={"TimeStamp"})
    assert row == {
        "Customer": "000019",
        "Name": "Johnsons Bicycles - South",
        "Currency": "$",
        "CreditLimit": 99999,
        "UserField2": 12.5,
        "DateLastPay": None,
    }
    assert isinstance(row["CreditLimit"], int)


def test_the_digest_ignores_column_order_padding_and_the_row_version() -> None:
    a = observe_row(ROW, exclude={"TimeStamp"})
    reordered = dict(reversed(list(ROW.items())))
    b = observe_row({**reordered, "Currency": "$", "TimeStamp": "AAAAAAAB9Xo="}, exclude={"TimeStamp"})
    assert a.digest == b.digest and len(a.digest) == 16
    assert a.digest == row_digest(a.row)
    assert (a.source_version, b.source_version) == ("AAAAAAAB9Xk=", "AAAAAAAB9Xo=")


def test_any_real_change_changes_the_digest() -> None:
    base = observe_row(ROW, exclude={"TimeStamp"}).digest
    assert observe_row({**ROW, "Name": "Johnsons Bicycles - North"}, exclude={"TimeStamp"}).digest != base
    assert observe_row({**ROW, "DateLastPay": "2024-01-01T00:00:00Z"}, exclude={"TimeStamp"}).digest != base
    assert observe_row({**ROW, "CreditLimit": "99999"}, exclude={"TimeStamp"}).digest != base


@pytest.mark.parametrize("key", [None, "", "   ", 19, "x" * 65])
def test_a_row_without_a_usable_customer_code_is_invalid(key: object) -> None:
    with pytest.raises(InvalidRow):
        observe_row({**ROW, "Customer": key})


def test_the_diff_emits_created_and_updated_and_nothing_for_unchanged_rows() -> None:
    known = KnownHashes()
    first = [observe_row({"Customer": c, "Email": f"{c}@x.example"}) for c in ("A", "B", "C")]
    created = diff_rows(known, first)
    assert [(c.customer, c.change) for c in created] == [("A", "created"), ("B", "created"), ("C", "created")]
    assert len(known) == 0, "the diff itself must not change the known state"
    known.apply(created)
    second = [
        observe_row({"Customer": "A", "Email": "A@x.example"}),
        observe_row({"Customer": "B", "Email": "new"}),
    ]
    assert [(c.customer, c.change, c.row["Email"]) for c in diff_rows(known, second)] == [
        ("B", "updated", "new")
    ]


def test_a_customer_read_twice_in_one_batch_counts_once_with_its_last_image() -> None:
    rows = [observe_row({"Customer": "A", "Email": "1"}), observe_row({"Customer": "A", "Email": "2"})]
    changes = diff_rows(KnownHashes(), rows)
    assert [(c.customer, c.row["Email"]) for c in changes] == [("A", "2")]


def test_deletions_are_only_for_known_customers_and_remove_them() -> None:
    known = KnownHashes({"A": b"a" * 16, "B": b"b" * 16})
    gone = deletions(known, ["B", "Z"])
    assert [(c.customer, c.change, c.row, c.digest) for c in gone] == [("B", "deleted", {}, EMPTY_ROW_DIGEST)]
    known.apply(gone)
    assert list(known) == ["A"]


def test_a_full_scan_reports_the_known_customers_it_did_not_read() -> None:
    known = KnownHashes({c: b"x" * 16 for c in ("A", "B", "C", "D")})
    tracker = FullScanTracker(known)
    for customer in ("C", "A"):
        tracker.seen(customer)
    # Read and changed by this scan, or new in it: never a candidate.
    known.apply(
        diff_rows(
            known, [observe_row({"Customer": "A", "Email": "changed"}), observe_row({"Customer": "NEW"})]
        )
    )
    tracker.seen("NEW")
    assert tracker.candidates() == ["B", "D"]
    assert known.get("A") == observe_row({"Customer": "A", "Email": "changed"}).digest


def test_a_scan_that_stopped_half_way_leaves_nothing_behind_for_the_next_one() -> None:
    known = KnownHashes({c: b"x" * 16 for c in ("A", "B", "C")})
    FullScanTracker(known).seen("A")  # this scan failed after reading A
    retry = FullScanTracker(known)
    assert retry.candidates() == ["A", "B", "C"]
    retry.seen("B")
    assert retry.candidates() == ["A", "C"]
    assert known.get("A") == b"x" * 16


def test_scan_marks_wrap_around_without_confusing_scans() -> None:
    known = KnownHashes({"A": b"a" * 16, "B": b"b" * 16})
    for _ in range(70_000):
        known.begin_scan()
        known.mark_read("A")
    assert known.unread() == ["B"]
