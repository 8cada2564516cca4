"""Block Cholesky factorisation of a sparse symmetric matrix along a block partition.

The LipSDP matrix of an unfolded network is chordally sparse: with the blocks ordered
``x_1, …, x_K, y`` (input last), a chain with input injection only couples ``x_k`` with
``x_{k±1}`` and ``y``, so the factor has no fill outside the blocks ``(k, k)``, ``(k + 1, k)`` and
``(y, k)`` (the cliques ``{y, x_{k−1}, x_k}``). :func:`factor_leading` eliminates every block but
the last one, in ``O(K d³)`` for K blocks of size d, and returns the Schur complement on the last
block. The operations are those of the scalar Cholesky algorithm, with each inner product summed
in some order (zero blocks contribute exact zeros), so its floating-point error analysis (Higham,
*Accuracy and Stability of Numerical Algorithms*, 2nd ed., Theorem 10.3) applies unchanged; the
rounding argument that uses it is in :mod:`.certificate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, sparse


@dataclass(frozen=True)
class LeadingFactor:
    """Outcome of :func:`factor_leading`: ``ok`` with the last block's Schur complement, or the
    position of the first block whose (updated, shifted) diagonal block was not positive definite."""

    ok: bool
    schur_last: np.ndarray | None
    failed_block: int | None


def lower_blocks(matrix: sparse.spmatrix, bounds: list[slice]) -> dict[tuple[int, int], np.ndarray]:
    """The structurally nonzero blocks ``(i, j)``, ``i ≥ j``, of ``matrix`` in the order of ``bounds``."""
    csr = sparse.csr_matrix(matrix)
    blocks: dict[tuple[int, int], np.ndarray] = {}
    for i, rows in enumerate(bounds):
        slab = csr[rows].tocsc()
        for j, cols in enumerate(bounds[: i + 1]):
            part = slab[:, cols]
            if part.nnz or i == j:
                blocks[(i, j)] = part.toarray()
    return blocks


def factor_leading(blocks: dict[tuple[int, int], np.ndarray], shift: float = 0.0) -> LeadingFactor:
    """Right-looking block Cholesky of ``A − shift·I`` over every block but the last.

    ``blocks`` holds the lower blocks as returned by :func:`lower_blocks` (it is not modified).
    Returns the Schur complement ``A_ll − shift·I − Σ_k L_lk L_lkᵀ`` of the last block ``l``.
    """
    work = {key: value.copy() for key, value in blocks.items()}
    count = 1 + max(i for i, _ in work)
    for i in range(count):
        work[(i, i)][np.diag_indices_from(work[(i, i)])] -= shift
    for k in range(count - 1):
        try:
            factor = linalg.cholesky(work[(k, k)], lower=True, check_finite=False)
        except linalg.LinAlgError:
            return LeadingFactor(False, None, k)
        below = [i for i in range(k + 1, count) if (i, k) in work]
        panels = {i: linalg.solve_triangular(factor, work[(i, k)].T, lower=True, check_finite=False).T for i in below}
        for i in below:
            for j in below:
                if j > i:
                    continue
                update = panels[i] @ panels[j].T
                if (i, j) in work:
                    work[(i, j)] -= update
                else:
                    work[(i, j)] = -update
    return LeadingFactor(True, work[(count - 1, count - 1)], None)
