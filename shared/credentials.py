"""The encrypted credential store: SYSPRO and Mailchimp secrets, encrypted at rest with Fernet.

The store is one JSON file. Each credential has a kind, non-secret metadata (operator, data center,
API endpoint) in clear, and its secrets as one Fernet token. The master key comes from
``MLC_MASTER_KEY`` (comma-separated: the first key encrypts, every key decrypts, which is how
rotation works) or ``MLC_MASTER_KEY_FILE``. Secrets are handed out as ``SecretStr`` so they never
show in a repr, a log line or a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from shared.settings import CredentialSettings

__all__ = [
    "Credential",
    "CredentialError",
    "CredentialKind",
    "CredentialStore",
    "generate_key",
    "master_keys",
    "open_store",
]

CredentialKind = Literal["syspro", "mailchimp_api_key", "mailchimp_oauth"]
KINDS: tuple[str, ...] = ("syspro", "mailchimp_api_key", "mailchimp_oauth")
_FORMAT = 1


class CredentialError(RuntimeError):
    """A credential cannot be found, decrypted or stored. Messages never contain secrets."""


@dataclass(frozen=True)
class Credential:
    name: str
    kind: CredentialKind
    meta: dict[str, str]
    secrets: dict[str, SecretStr]
    updated_at: str

    def secret(self, field: str = "secret") -> str:
        try:
            return self.secrets[field].get_secret_value()
        except KeyError:
            raise CredentialError(f"credential {self.name!r} has no {field!r}") from None

    def __repr__(self) -> str:
        return f"Credential(name={self.name!r}, kind={self.kind!r}, meta={self.meta!r}, secrets=<hidden>)"


def generate_key() -> str:
    """A new random master key."""
    return Fernet.generate_key().decode()


def master_keys(settings: CredentialSettings) -> list[str]:
    """The configured master keys, primary first."""
    raw: str | None = None
    if settings.master_key is not None:
        raw = settings.master_key.get_secret_value()
    elif settings.master_key_file is not None:
        try:
            raw = Path(settings.master_key_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CredentialError(
                f"cannot read MLC_MASTER_KEY_FILE {settings.master_key_file}: {exc.strerror}"
            ) from None
    if not raw or not raw.strip():
        raise CredentialError("no master key: set MLC_MASTER_KEY or MLC_MASTER_KEY_FILE")
    return [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]


def _fernet(keys: list[str]) -> MultiFernet:
    fernets = []
    for index, key in enumerate(keys):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError):
            raise CredentialError(
                f"master key #{index + 1} is not a valid Fernet key (32 url-safe base64-encoded bytes)"
            ) from None
    return MultiFernet(fernets)


class CredentialStore:
    """Read and write the encrypted credential file."""

    def __init__(self, path: Path, keys: list[str]) -> None:
        self.path = Path(path)
        self._keys = keys
        self._fernet = _fernet(keys)

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {"format": _FORMAT, "credentials": {}}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CredentialError(f"credential store {self.path} is unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise CredentialError(f"credential store {self.path} has an unknown format")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written store.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".credentials-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def set(
        self, name: str, kind: CredentialKind, secrets: dict[str, str], meta: dict[str, str] | None = None
    ) -> Credential:
        if kind not in KINDS:
            raise CredentialError(f"unknown credential kind {kind!r}; expected one of {', '.join(KINDS)}")
        data = self._read()
        token = self._fernet.encrypt(json.dumps(secrets).encode()).decode()
        updated_at = datetime.now(UTC).isoformat()
        data["credentials"][name] = {
            "kind": kind,
            "meta": dict(meta or {}),
            "token": token,
            "updated_at": updated_at,
        }
        self._write(data)
        return self.get(name)

    def get(self, name: str) -> Credential:
        entry = self._read()["credentials"].get(name)
        if entry is None:
            raise CredentialError(f"no credential named {name!r} in {self.path}")
        try:
            plain = self._fernet.decrypt(entry["token"].encode())
        except InvalidToken:
            raise CredentialError(
                f"credential {name!r} cannot be decrypted with the configured master key "
                "(wrong MLC_MASTER_KEY, or the key it was encrypted with was dropped)"
            ) from None
        secrets = {k: SecretStr(v) for k, v in json.loads(plain).items()}
        return Credential(name, entry["kind"], dict(entry["meta"]), secrets, entry["updated_at"])

    def list(self) -> list[dict[str, Any]]:
        """Every credential without its secrets."""
        return [
            {"name": name, "kind": e["kind"], "meta": e["meta"], "updated_at": e["updated_at"]}
            for name, e in sorted(self._read()["credentials"].items())
        ]

    def delete(self, name: str) -> None:
        data = self._read()
        if data["credentials"].pop(name, None) is None:
            raise CredentialError(f"no credential named {name!r} in {self.path}")
        self._write(data)

    def rotate(self, new_key: str) -> CredentialStore:
        """Re-encrypt every credential under ``new_key``; returns a store opened with it.

        Every credential must decrypt with the current keys first, so a rotation never loses one.
        """
        rotated = _fernet([new_key, *self._keys])
        data = self._read()
        for name, entry in data["credentials"].items():
            try:
                entry["token"] = rotated.rotate(entry["token"].encode()).decode()
            except InvalidToken:
                raise CredentialError(
                    f"credential {name!r} cannot be decrypted with the current keys; nothing was rotated"
                ) from None
        self._write(data)
        return CredentialStore(self.path, [new_key])


def open_store(settings: CredentialSettings | None = None) -> CredentialStore:
    settings = settings or CredentialSettings()
    return CredentialStore(settings.credentials_file, master_keys(settings))
