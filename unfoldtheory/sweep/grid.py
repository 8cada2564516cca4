"""A grid of study cells: the Cartesian product of named axes, each cell a ``{axis: value}`` dict.

Values are JSON scalars (``bool``, ``int``, finite ``float``, ``str``, ``None``) so that a cell is
written to the results store exactly as it was run. A scalar given in place of a list is a fixed
parameter (an axis of length one): it is passed to every cell and is part of every cell's key,
so changing it makes new cells instead of silently reusing results computed with the old value.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

Value = bool | int | float | str | None
Cell = dict[str, Value]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")
READABLE_LENGTH = 80
DIGEST_LENGTH = 12


def _plain(value: Any, axis: str) -> Value:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"axis {axis!r} has the non-finite value {value!r}")
        return value
    raise ValueError(f"axis {axis!r} has the value {value!r} of type {type(value).__name__}; "
                     "grid values must be bool, int, float, str or None")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _axis(name: str, values: Any) -> tuple[Value, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        values = [values]
    plain = tuple(_plain(v, name) for v in values)
    if not plain:
        raise ValueError(f"axis {name!r} is empty")
    seen: set[str] = set()
    for v in plain:
        if _canonical(v) in seen:
            raise ValueError(f"axis {name!r} lists {v!r} twice")
        seen.add(_canonical(v))
    return plain


def cell_key(cell: Mapping[str, Any]) -> str:
    """The stable name of a cell: readable ``name=value`` pairs (sorted by name) and a hash.

    The hash is the SHA-256 of the cell's canonical JSON (sorted names, no spaces), so the key
    depends on the cell's contents only, never on the order of the axes or of the sweep; the
    readable part is shortened and restricted to filename-safe characters.
    """
    cell = {str(k): _plain(v, str(k)) for k, v in cell.items()}
    readable = ",".join(f"{k}={v if isinstance(v, str) else _canonical(v)}" for k, v in sorted(cell.items()))
    digest = hashlib.sha256(_canonical(cell).encode("utf-8")).hexdigest()[:DIGEST_LENGTH]
    readable = _UNSAFE.sub("_", readable)[:READABLE_LENGTH]
    return f"{'_' + readable[1:] if readable.startswith('.') else readable}-{digest}"


class Grid:
    """``Grid(depth=[4, 8], sparsity=[0.1, 0.2], seed=range(3), steps=300)``: 2 × 2 × 3 cells.

    Iterating yields one dict per cell, the last axis varying fastest (``itertools.product``
    order). ``len(grid)`` is the number of cells; ``grid.axes`` maps each name to its values.
    """

    def __init__(self, **axes: Any) -> None:
        if not axes:
            raise ValueError("a Grid needs at least one axis, e.g. Grid(seed=range(3))")
        self.axes: dict[str, tuple[Value, ...]] = {name: _axis(name, values) for name, values in axes.items()}

    def __iter__(self) -> Iterator[Cell]:
        names = list(self.axes)
        for values in itertools.product(*self.axes.values()):
            yield dict(zip(names, values, strict=True))

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.axes.values())

    def __repr__(self) -> str:
        axes = ", ".join(f"{k}={list(v)!r}" for k, v in self.axes.items())
        return f"Grid({axes})"
