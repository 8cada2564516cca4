"""The results store of a sweep: one JSON file per finished cell, written atomically.

``DIRECTORY/KEY.json`` holds a record::

    {"key": ..., "function": "module.name", "cell": {...}, "result": ..., "seconds": ..., "worker": "host:pid",
     "finished": "2025-01-31T12:00:00+00:00"}

A file appears only once complete (temporary file, then ``os.replace``), so a sweep killed at
any moment leaves finished cells intact and unfinished ones absent. A file that cannot be read
as a record (edited by hand, a foreign file) counts as not done, with a :class:`StoreWarning`,
and is replaced when its cell runs again.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from unfoldtheory.diagnostics.files import atomic_write_json

_KEY = re.compile(r"[A-Za-z0-9_=,+-][A-Za-z0-9._=,+-]*")
FIELDS = ("key", "function", "cell", "result", "seconds", "worker", "finished")


class StoreWarning(UserWarning):
    """A file in a results store is not a readable record; its cell counts as not done."""


class ResultStore:
    """Finished cells of a sweep, one ``KEY.json`` per cell in ``directory`` (created if missing)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"results store {self.directory} exists and is not a folder")
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The file that holds ``key``'s record."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"cell key {key!r} is not a safe file name (letters, digits and ._=,+- only)")
        return self.directory / f"{key}.json"

    def load(self, key: str) -> dict[str, Any]:
        """The record of ``key``; ``KeyError`` if the cell is not stored, ``ValueError`` if unreadable."""
        path = self.path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise KeyError(f"cell {key!r} is not in the results store {self.directory}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a readable sweep record: {exc}") from exc
        if not isinstance(record, dict) or any(f not in record for f in FIELDS) or record["key"] != key:
            raise ValueError(f"{path} is not a sweep record of cell {key!r} (fields {FIELDS} expected)")
        return record

    def done(self) -> set[str]:
        """Keys of every readable record; unreadable files are skipped with a :class:`StoreWarning`."""
        keys = set()
        for path in sorted(self.directory.glob("*.json")):
            try:
                self.load(path.stem)
            except ValueError as exc:
                warnings.warn(f"{exc}; its cell counts as not done and will be run again", StoreWarning, stacklevel=2)
            else:
                keys.add(path.stem)
        return keys

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self.done()

    def __len__(self) -> int:
        return len(self.done())

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, sorted by key."""
        return [self.load(key) for key in sorted(self.done())]

    def save(self, key: str, function: str, cell: dict[str, Any], result: Any, seconds: float = 0.0,
             worker: str = "") -> dict[str, Any]:
        """Write the record of a finished cell atomically and return it as stored (read back).

        ``result`` must be JSON-serialisable after :func:`unfoldtheory.results.to_jsonable`
        (numpy values, dataclasses and Bounds are converted); otherwise ``ValueError`` and
        nothing is written.
        """
        record = {"key": key, "function": function, "cell": cell, "result": result, "seconds": float(seconds),
                  "worker": worker, "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        path = self.path(key)
        try:
            atomic_write_json(path, record)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the result of cell {key!r} cannot be stored as JSON: {exc}") from exc
        return self.load(key)

    def __repr__(self) -> str:
        return f"ResultStore({str(self.directory)!r})"
