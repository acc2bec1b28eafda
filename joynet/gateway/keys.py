"""The gateway's own users: API keys and what each may spend.

The keys file (JSON, or YAML when it ends in ``.yaml``/``.yml``) lists every key with a name and
a spending limit in JOY wei::

    keys:
      - name: alice
        key: jn-alice-7f3c...          # what the client sends: Authorization: Bearer jn-alice-7f3c...
        limit_wei: "20000000000000000000"   # 20 JOY; a string or an integer

A request costs its model's price, taken from the gateway's deposited balance on chain. The price
is reserved for the key before anything is sent; a refunded request gives it back, and so does a
settled one whose output does not check out; a settled and checked one keeps it. A request that would take a key past its limit is refused (402) and nothing is sent.

With a spending file (SQLite, ``KeyLedger(keys, spending_path=...)``) what each key spent, and what
it holds reserved, is written before the request goes out, so that a restart does not give a key
its limit back. A reservation left in the file by a gateway that stopped without settling it
counts as spent: the gateway cannot tell whether that request was paid, and a limit errs on the
side of the operator's money.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from joynet.gateway.errors import GatewayError, SpendingLimitError, UnauthorizedError


class KeysFileError(GatewayError):
    """A keys file that is missing, malformed or names a key twice."""


@dataclass
class ApiKey:
    """One key: ``name`` (in logs and receipts, never the secret), ``limit`` in JOY wei, and what
    it has spent (settled) and holds reserved (requests in flight) so far."""

    name: str
    secret: str
    limit: int
    spent: int = 0
    reserved: int = 0

    def usage(self) -> dict:
        return {"key": self.name, "limit_wei": str(self.limit), "spent_wei": str(self.spent + self.reserved)}


class KeyLedger:
    """The keys and their spending. Every method runs on the gateway's event loop: a check and
    the reservation that follows it happen with no await in between, so two requests of one key
    cannot both pass the last of its limit."""

    def __init__(self, keys: list[ApiKey], spending_path: str | Path | None = None):
        self._by_secret: dict[str, ApiKey] = {}
        names = set()
        for key in keys:
            if key.secret in self._by_secret:
                raise KeysFileError(f"the API key of {key.name!r} is listed twice")
            if key.name in names:
                raise KeysFileError(f"two API keys are named {key.name!r}: their spending would be one")
            self._by_secret[key.secret] = key
            names.add(key.name)
        self._db: sqlite3.Connection | None = None
        if spending_path is not None:
            self._open(Path(spending_path))

    @classmethod
    def from_file(cls, path: str | Path, spending_path: str | Path | None = None) -> KeyLedger:
        return cls(load_keys(path), spending_path)

    def _open(self, path: Path) -> None:
        """Reads each key's spending back from ``path`` (reservations left unsettled count as
        spent) and keeps writing it there."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS spending (name TEXT PRIMARY KEY, spent TEXT, reserved TEXT)")
            recorded = {
                name: int(spent) + int(reserved)
                for name, spent, reserved in self._db.execute("SELECT name, spent, reserved FROM spending")
            }
        except (sqlite3.Error, ValueError) as error:
            raise KeysFileError(f"spending file {path}: {error}") from None
        for key in self._by_secret.values():
            key.spent, key.reserved = recorded.get(key.name, 0), 0
            self._record(key)

    def _record(self, key: ApiKey) -> None:
        if self._db is not None:
            self._db.execute(
                "INSERT INTO spending (name, spent, reserved) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET spent = excluded.spent, reserved = excluded.reserved",
                (key.name, str(key.spent), str(key.reserved)),
            )

    def close(self) -> None:
        """Closes the spending file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def authenticate(self, authorization: str | None) -> ApiKey:
        """The key an ``Authorization: Bearer <key>`` header names; UnauthorizedError otherwise."""
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise UnauthorizedError("no API key: send it as 'Authorization: Bearer <key>'")
        secret = secret.strip()
        for known, key in self._by_secret.items():
            if hmac.compare_digest(known.encode(), secret.encode()):  # no timing hint of a near miss
                return key
        raise UnauthorizedError("the API key is not one this gateway knows")

    def reserve(self, key: ApiKey, amount: int) -> None:
        """Holds ``amount`` wei of ``key``'s limit for a request about to be sent; SpendingLimitError
        if that would pass the limit."""
        if key.spent + key.reserved + amount > key.limit:
            raise SpendingLimitError(
                f"key {key.name!r} has spent {key.spent + key.reserved} of its {key.limit} wei; "
                f"this request costs {amount} wei: nothing was sent"
            )
        key.reserved += amount
        self._record(key)

    def settle(self, key: ApiKey, amount: int, charged: bool) -> None:
        """Ends a reservation: the amount is spent (``charged``) or given back (a refund)."""
        key.reserved -= amount
        if charged:
            key.spent += amount
        self._record(key)


def load_keys(path: str | Path) -> list[ApiKey]:
    """The keys of a keys file (see the module)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise KeysFileError(f"keys file {path}: {error.strerror}") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except ValueError as error:  # json.JSONDecodeError and yaml.YAMLError's parse errors
        raise KeysFileError(f"keys file {path} does not parse: {error}") from None
    except Exception as error:  # noqa: BLE001 - yaml.YAMLError is not a ValueError
        raise KeysFileError(f"keys file {path} does not parse: {error}") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise KeysFileError(f"keys file {path} must hold a 'keys' list")
    keys = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), str) and entry[f] for f in ("name", "key")):
            raise KeysFileError(f"keys file {path}: entry {index} needs a 'name' and a 'key' (strings)")
        limit = entry.get("limit_wei")
        try:
            wei = int(limit) if isinstance(limit, int | str) and not isinstance(limit, bool) else -1
        except ValueError:
            wei = -1
        if wei < 0:
            raise KeysFileError(f"keys file {path}: key {entry['name']!r} needs a 'limit_wei' of 0 or more (JOY wei)")
        keys.append(ApiKey(entry["name"], entry["key"], wei))
    return keys
