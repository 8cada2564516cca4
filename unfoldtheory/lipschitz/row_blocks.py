"""A dense matrix stored as its nonzero blocks: products with it at the cost of those blocks.

The rows ``F_b = diag(β)P − E`` of the LipSDP constraints (:mod:`.quadratic_form`) are mostly zero in a pattern
set by the network's graph: with the selection part ``E`` taken out, the rows of layer k touch only the states
that layer k reads (y and z_{k−1} on a chain with input injection: 60 of 180 columns at (m, n, K) = (20, 40, 4)).
:class:`RowBlocks` keeps, for each block of rows, the dense pieces ``F[rows, cols]`` over the contiguous column
ranges where that block of rows has nonzero entries, so that ``F @ X``, ``Y @ F`` and ``Y @ Fᵀ`` cost
``Σ |rows|·|cols|`` instead of ``R·N`` per column of the other factor. Every product sums the same nonzero terms
as the dense one, in another order.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np


@dataclass(frozen=True)
class RowBlocks:
    """``F`` (``shape``) as ``pieces``: ``(rows, cols, F[rows, cols])`` with ``rows`` and ``cols`` slices, every
    nonzero entry of ``F`` in exactly one piece."""

    shape: tuple[int, int]
    pieces: tuple[tuple[slice, slice, np.ndarray], ...]

    @classmethod
    def from_dense(cls, F: np.ndarray, row_bounds: np.ndarray, col_bounds: np.ndarray) -> RowBlocks:
        """The pieces of ``F`` over the block partition given by the boundaries ``row_bounds`` and ``col_bounds``
        (ascending, from 0 to the number of rows / columns): in each row block, adjacent nonzero column blocks
        merge into one range."""
        R, N = F.shape
        for name, bounds, n in (("row_bounds", row_bounds, R), ("col_bounds", col_bounds, N)):
            bounds = np.asarray(bounds)
            if bounds.ndim != 1 or len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != n or np.any(np.diff(bounds) <= 0):
                raise ValueError(f"{name} must ascend strictly from 0 to {n}; got {bounds.tolist()}")
        pieces = []
        for r0, r1 in pairwise(row_bounds):
            rows = slice(int(r0), int(r1))
            touched = [bool(np.any(F[rows, c0:c1])) for c0, c1 in pairwise(col_bounds)]
            j = 0
            while j < len(touched):
                if not touched[j]:
                    j += 1
                    continue
                first = j
                while j < len(touched) and touched[j]:
                    j += 1
                cols = slice(int(col_bounds[first]), int(col_bounds[j]))
                pieces.append((rows, cols, np.ascontiguousarray(F[rows, cols])))
        return cls((R, N), tuple(pieces))

    def toarray(self) -> np.ndarray:
        F = np.zeros(self.shape)
        for rows, cols, block in self.pieces:
            F[rows, cols] = block
        return F

    def left(self, X: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``F @ X`` into ``out`` (``R × X.shape[1]``, overwritten)."""
        out.fill(0.0)
        for rows, cols, block in self.pieces:
            out[rows] += block @ X[cols]
        return out

    def right(self, Y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``Y @ F`` into ``out`` (``Y.shape[0] × N``, overwritten)."""
        out.fill(0.0)
        for rows, cols, block in self.pieces:
            out[:, cols] += Y[:, rows] @ block
        return out

    def right_transposed(self, Y: np.ndarray, out: np.ndarray) -> np.ndarray:
        """``Y @ Fᵀ`` into ``out`` (``Y.shape[0] × R``, overwritten)."""
        out.fill(0.0)
        for rows, cols, block in self.pieces:
            out[:, rows] += Y[:, cols] @ block.T
        return out
