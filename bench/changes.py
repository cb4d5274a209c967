"""Changes a benchmark makes in SYSPRO: a new telephone number, which the default mapping sends to
Mailchimp's PHONE merge field, so every change is one real member update downstream."""

from __future__ import annotations

import hashlib
import random
import time

from bench.stack import BenchStack

__all__ = ["change_phone", "pick_customers", "pick_synced"]


def _code(number: int) -> str:
    return f"{number:06d}"


def pick_customers(total: int, k: int, rng: random.Random) -> list[str]:
    """``k`` distinct customer codes of a generated company (codes run ``000001``..)."""
    return [_code(i) for i in rng.sample(range(1, total + 1), k)]


def pick_synced(bench: BenchStack, k: int, rng: random.Random) -> list[str]:
    """``k`` distinct customers whose member is subscribed in the audience and who alone have its
    address: a change to a rejected customer (bad or shared address) reaches no one, and an inactive
    customer's archived member is rightly left alone, so neither would measure anything."""
    syspro, mailchimp = bench.stack.syspro, bench.stack.mailchimp
    with mailchimp.lock:
        audience = mailchimp.store.lists[bench.stack.options.list_id]
        subscribed = {key for key, m in audience.members.items() if m.status == "subscribed"}
    emails: dict[str, list[str]] = {}
    for row in syspro.rows():
        email = (row.get("Email") or "").strip().lower()
        if email:
            emails.setdefault(email, []).append(row["Customer"])
    candidates = sorted(
        codes[0]
        for email, codes in emails.items()
        if len(codes) == 1 and hashlib.md5(email.encode()).hexdigest() in subscribed
    )
    if len(candidates) < k:
        raise RuntimeError(f"only {len(candidates)} synced customers found, wanted {k}")
    return rng.sample(candidates, k)


def change_phone(bench: BenchStack, customer: str, rng: random.Random) -> float:
    """Give ``customer`` a new telephone number; returns the wall-clock time the row changed."""
    phone = f"0{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"
    bench.stack.syspro.update(customer, Telephone=phone)
    return time.time()
