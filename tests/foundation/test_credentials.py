"""The encrypted credential store: nothing in clear, clear errors, rotation keeps everything readable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.credentials import CredentialError, CredentialStore, generate_key
from tests.helpers import REPO

SECRET = "odata-Pa55word-that-must-not-leak"
API_KEY = "0123456789abcdef0123456789abcdef-us6"


def test_the_store_file_holds_no_plaintext_secret(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "credentials.json", [generate_key()])
    store.set("syspro-acme", "syspro", {"secret": SECRET}, {"operator": "ADMIN"})
    store.set("mc", "mailchimp_api_key", {"secret": API_KEY}, {"dc": "us6"})
    raw = (tmp_path / "credentials.json").read_text()
    assert SECRET not in raw and API_KEY not in raw
    assert "ADMIN" in raw  # metadata stays readable
    assert store.get("syspro-acme").secret() == SECRET
    assert SECRET not in repr(store.get("syspro-acme"))


def test_a_wrong_master_key_fails_with_a_clear_message(tmp_path: Path) -> None:
    CredentialStore(tmp_path / "c.json", [generate_key()]).set("x", "syspro", {"secret": SECRET})
    with pytest.raises(CredentialError, match="cannot be decrypted with the configured master key") as info:
        CredentialStore(tmp_path / "c.json", [generate_key()]).get("x")
    assert SECRET not in str(info.value)


def test_an_invalid_master_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="not a valid Fernet key"):
        CredentialStore(tmp_path / "c.json", ["not-a-key"])


def test_rotation_keeps_every_credential_readable_and_drops_the_old_key(tmp_path: Path) -> None:
    old, new = generate_key(), generate_key()
    store = CredentialStore(tmp_path / "c.json", [old])
    for i in range(5):
        store.set(f"c{i}", "syspro", {"secret": f"{SECRET}-{i}"})
    rotated = store.rotate(new)
    assert [rotated.get(f"c{i}").secret() for i in range(5)] == [f"{SECRET}-{i}" for i in range(5)]
    with pytest.raises(CredentialError):
        CredentialStore(tmp_path / "c.json", [old]).get("c0")
    # Both keys configured (during a rolling restart) still read everything.
    assert CredentialStore(tmp_path / "c.json", [old, new]).get("c3").secret() == f"{SECRET}-3"


def test_the_cli_sets_lists_and_rotates_without_printing_secrets(tmp_path: Path) -> None:
    key = generate_key()
    env = {"MLC_MASTER_KEY": key, "MLC_CREDENTIALS_FILE": str(tmp_path / "c.json"), "PATH": "/usr/bin:/bin"}

    def cli(
        *args: str, stdin: str = "", extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", "credentials", *args],
            input=stdin,
            env={**env, **(extra or {})},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = cli("set-syspro", "syspro-acme", "--operator", "ADMIN", "--password-stdin", stdin=SECRET + "\n")
    assert result.returncode == 0, result.stderr
    listing = cli("list", "--json")
    assert '"syspro-acme"' in listing.stdout and SECRET not in listing.stdout + listing.stderr
    new_key = generate_key()
    rotated = cli("rotate", "--new-key-stdin", stdin=new_key + "\n")
    assert rotated.returncode == 0, rotated.stderr
    assert SECRET not in rotated.stdout + rotated.stderr
    refused = cli("list")
    assert refused.returncode == 0  # listing needs no decryption
    wrong = cli("delete", "nope")
    assert wrong.returncode == 2 and "no credential named 'nope'" in wrong.stderr
    assert CredentialStore(tmp_path / "c.json", [new_key]).get("syspro-acme").secret() == SECRET
