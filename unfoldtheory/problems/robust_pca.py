"""Robust PCA: ``Y = L + S`` with ``L`` of rank r and ``S`` sparse, solved by principal component pursuit.

* :class:`RobustPCA` draws instances the way LRPCA's synthetic experiments do (Cai, Liu & Yin,
  NeurIPS 2021, ``synthetic_data_exp``): ``L = U Vᵀ`` with ``U ~ N(0, 1/d1)``, ``V ~ N(0, 1/d2)``
  (entries of L have variance ``r/(d1 d2)``), and exactly ``⌊α d1 d2⌋`` outliers at uniformly random
  positions with values uniform in ``[−c, c]``, ``c = mean|L|`` (per instance).
* :func:`pcp` is the reference: principal component pursuit (Candès, Li, Ma & Wright, J. ACM 2011)

      min ‖L‖_* + λ‖S‖₁  s.t.  L + S = Y,        default λ = 1/√max(d1, d2),

  solved per instance by cvxpy with a named solver (Clarabel or SCS). The nuclear norm becomes a
  semidefinite constraint of size (d1 + d2), so this is for small sizes only (d ≲ 50). Every
  solution carries a duality gap recomputed here from the dual of PCP,

      max ⟨Λ, Y⟩  s.t.  ‖Λ‖₂ ≤ 1 (spectral norm),  ‖Λ‖_∞ ≤ λ (largest entry),

  with Λ taken from the solver's multiplier of ``L + S = Y``, scaled into feasibility, and the
  primal evaluated at ``L`` with ``S = Y − L`` exactly (so the constraint holds to rounding):
  ``gap = ‖L‖_* + λ‖Y − L‖₁ − ⟨Λ, Y⟩ ≥ P(L) − P* ≥ 0``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from unfoldtheory.validation import as_finite_array, finite_float, positive_int

#: Tolerances for the reference solves (the data are scaled to ‖Y‖_F = 1 first). Clarabel's are its defaults,
#: named: on these SDPs it stalls near 1e-9 in feasibility ("AlmostSolved", cvxpy's "optimal_inaccurate")
#: when asked for 1e-10. SCS (first order) is given a tight eps and many iterations.
CLARABEL_OPTIONS: dict[str, Any] = {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8}
SCS_OPTIONS: dict[str, Any] = {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iters": 200_000}
SOLVERS = ("CLARABEL", "SCS")


def default_lam(d1: int, d2: int) -> float:
    """PCP's weight ``λ = 1/√max(d1, d2)`` (Candès, Li, Ma & Wright 2011, Theorem 1.1)."""
    return 1.0 / float(np.sqrt(max(d1, d2)))


def _seed(seed: Any, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


def nuclear_norm(M: np.ndarray) -> np.ndarray:
    """``‖M‖_*``, the sum of singular values, of each matrix in a (…, d1, d2) array."""
    return np.linalg.svd(M, compute_uv=False).sum(axis=-1)


def pcp_objective(L: np.ndarray, Y: np.ndarray, lam: float) -> np.ndarray:
    """``‖L‖_* + λ‖Y − L‖₁`` per matrix (PCP with S eliminated by the constraint)."""
    return nuclear_norm(L) + lam * np.abs(Y - L).sum(axis=(-2, -1))


class RobustPCA:
    """Recover the rank-r part ``L`` of ``Y = L + S ∈ ℝ^{d1×d2}``, ``S`` sparse.

    Each sample is a fresh pair (see the module docstring for the distribution):

    * ``sample(num)`` returns ``(Y, L)``: the input and the target (the low-rank part); the outliers
      are ``S = Y − L`` (to rounding; ``sample_parts`` returns them explicitly);
    * ``objective(L, Y)``: PCP's objective with S eliminated, ``‖L‖_* + λ‖Y − L‖₁``;
    * ``torch_objective(L, Y)``: its batch mean in torch (unsupervised training).

    Parameters are checked: ``d1, d2 ≥ 1``, ``1 ≤ rank ≤ min(d1, d2)``, ``0 ≤ outlier_fraction < 1``,
    ``lam > 0`` (default :func:`default_lam`), ``seed ≥ 0``.
    """

    def __init__(self, d1: int, d2: int, rank: int, outlier_fraction: float, seed: int = 0,
                 lam: float | None = None) -> None:
        self.d1 = positive_int(d1, "d1")
        self.d2 = positive_int(d2, "d2")
        self.rank = positive_int(rank, "rank")
        if self.rank > min(self.d1, self.d2):
            raise ValueError(f"rank {self.rank} exceeds min(d1, d2) = {min(self.d1, self.d2)}")
        self.outlier_fraction = finite_float(outlier_fraction, "outlier_fraction", low=0.0, high=1.0, high_open=True)
        self.lam = default_lam(self.d1, self.d2) if lam is None else finite_float(lam, "lam", low=0.0, low_open=True)
        self.seed = _seed(seed)
        self._sample_rng = np.random.default_rng([self.seed, 1])

    @property
    def num_outliers(self) -> int:
        """``⌊α d1 d2⌋`` outliers per sample."""
        return int(np.floor(self.outlier_fraction * self.d1 * self.d2))

    def _rng(self, seed: int | None) -> np.random.Generator:
        if seed is None:
            return self._sample_rng
        return np.random.default_rng([self.seed, 2, _seed(seed, "seed (None or an integer)")])

    def sample_parts(self, num: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(Y, L, S)``, each of shape (num, d1, d2), float64, with ``Y = L + S``.

        With a ``seed`` the draw depends on it alone; without one, successive calls continue one
        stream fixed by the problem's seed (reproducible, never the same draw twice).
        """
        num = positive_int(num, "num")
        rng = self._rng(seed)
        d1, d2, r = self.d1, self.d2, self.rank
        U = rng.standard_normal((num, d1, r)) / np.sqrt(d1)
        V = rng.standard_normal((num, d2, r)) / np.sqrt(d2)
        L = U @ V.transpose(0, 2, 1)
        scale = np.abs(L).mean(axis=(1, 2))  # c = mean|L| per sample
        # A uniformly random subset of exactly ⌊α d1 d2⌋ positions per sample: the first indices of a
        # uniformly random permutation (ranks of i.i.d. uniform keys).
        positions = np.argsort(rng.random((num, d1 * d2)), axis=1)[:, : self.num_outliers]
        values = rng.uniform(-1.0, 1.0, positions.shape) * scale[:, None]
        S = np.zeros((num, d1 * d2))
        np.put_along_axis(S, positions, values, axis=1)
        S = S.reshape(num, d1, d2)
        return L + S, L, S

    def sample(self, num: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(Y, L)`` of shape (num, d1, d2) each: the observations and the low-rank targets (``S = Y − L``)."""
        Y, L, _ = self.sample_parts(num, seed)
        return Y, L

    def _pair(self, L: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        L = as_finite_array(L, "L", ndim=(2, 3))
        Y = as_finite_array(Y, "Y", ndim=(2, 3))
        for name, M in (("L", L), ("Y", Y)):
            if M.shape[-2:] != (self.d1, self.d2):
                raise ValueError(f"{name} has shape {M.shape}; expected (…, {self.d1}, {self.d2})")
        if L.shape != Y.shape:
            raise ValueError(f"L has shape {L.shape} but Y has shape {Y.shape}; they must match")
        return L, Y

    def objective(self, L: Any, Y: Any) -> np.ndarray | float:
        """``‖L‖_* + λ‖Y − L‖₁`` per sample ((d1, d2) inputs give a float, (num, d1, d2) an array)."""
        L, Y = self._pair(L, Y)
        value = pcp_objective(L, Y, self.lam)
        return float(value) if L.ndim == 2 else value

    def torch_objective(self, L: Any, Y: Any) -> Any:
        """The batch mean of ``‖L‖_* + λ‖Y − L‖₁`` in torch, for ``L``, ``Y`` of shape (batch, d1, d2)."""
        import torch

        nuc = torch.linalg.matrix_norm(L, ord="nuc")
        return (nuc + self.lam * (Y - L).abs().sum(dim=(-2, -1))).mean()

    def __repr__(self) -> str:
        return (f"RobustPCA(d1={self.d1}, d2={self.d2}, rank={self.rank}, outlier_fraction={self.outlier_fraction}, "
                f"seed={self.seed}, lam={self.lam:.6g})")


# --------------------------------------------------------------------------- the reference: PCP


@dataclass(frozen=True, eq=False)
class PCPSolution:
    """Per-sample PCP solutions.

    Attributes
    ----------
    L, S: (num, d1, d2) solutions with ``S = Y − L`` exactly (NaN where a solver returned none).
    objective: (num,) ``‖L‖_* + λ‖S‖₁``.
    duality_gap: (num,) ``objective − ⟨Λ, Y⟩ ≥ objective − P*``, recomputed from ``L`` and the
        feasible dual point ``Λ`` (``inf`` where there is no solution).
    relative_gap: (num,) ``duality_gap / objective``.
    dual: (num, d1, d2) the feasible dual points Λ (the certificates).
    status: cvxpy's status per sample, as reported (``"optimal"``, ``"optimal_inaccurate"``, …), or
        ``"solver_error: …"``.
    solver, lam, seconds: how it was solved.
    """

    L: np.ndarray
    S: np.ndarray
    objective: np.ndarray
    duality_gap: np.ndarray
    relative_gap: np.ndarray
    dual: np.ndarray
    status: list[str]
    solver: str
    lam: float
    seconds: float

    @property
    def all_optimal(self) -> bool:
        """True when every sample has status ``"optimal"``."""
        return all(s == "optimal" for s in self.status)


def feasible_dual(Lam: np.ndarray, lam: float) -> np.ndarray:
    """Λ scaled into the dual feasible set ``{‖Λ‖₂ ≤ 1, ‖Λ‖_∞ ≤ λ}``: divided by
    ``max(1, ‖Λ‖₂, ‖Λ‖_∞/λ)`` (per matrix of a (…, d1, d2) array)."""
    spectral = np.linalg.norm(Lam, 2, axis=(-2, -1))
    largest = np.abs(Lam).max(axis=(-2, -1))
    factor = np.maximum(1.0, np.maximum(spectral, largest / lam))
    return Lam / factor[..., None, None]


def pcp_duality_gap(L: np.ndarray, Y: np.ndarray, Lam: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``(gap, primal)`` with ``primal = ‖L‖_* + λ‖Y − L‖₁`` and ``gap = primal − ⟨Λ̃, Y⟩``, where
    ``Λ̃ = feasible_dual(Λ)``; by weak duality ``gap ≥ primal − P* ≥ 0`` for any Λ."""
    primal = pcp_objective(L, Y, lam)
    dual_value = np.einsum("...ij,...ij->...", feasible_dual(Lam, lam), Y)
    return primal - dual_value, primal


def pcp(Y: Any, lam: float | None = None, solver: Literal["CLARABEL", "SCS"] = "CLARABEL", *,
        progress: bool | None = None) -> PCPSolution:
    """Principal component pursuit ``min ‖L‖_* + λ‖S‖₁ s.t. L + S = Y`` for each matrix of ``Y``.

    ``Y`` is (d1, d2) (a batch of one) or (num, d1, d2); ``lam`` defaults to ``1/√max(d1, d2)``;
    ``solver`` is named explicitly (``"CLARABEL"``: interior point, accurate; ``"SCS"``: first order).
    PCP is homogeneous (``(L, S)`` scale with ``Y``), so each instance is solved at ``‖Y‖_F = 1`` and
    scaled back. Semidefinite programs of size d1 + d2: small sizes only.
    """
    Y = as_finite_array(Y, "Y", ndim=(2, 3))
    Y = Y[None] if Y.ndim == 2 else Y
    num, d1, d2 = Y.shape
    if num == 0 or d1 == 0 or d2 == 0:
        raise ValueError(f"Y has shape {Y.shape}; expected non-empty (num, d1, d2) matrices")
    lam = default_lam(d1, d2) if lam is None else finite_float(lam, "lam", low=0.0, low_open=True)
    if solver not in SOLVERS:
        raise ValueError(f"solver {solver!r} is not supported; choose one of {SOLVERS}")
    import cvxpy as cp

    Lv, Sv = cp.Variable((d1, d2)), cp.Variable((d1, d2))
    Yp = cp.Parameter((d1, d2))
    constraint = Lv + Sv == Yp
    problem = cp.Problem(cp.Minimize(cp.normNuc(Lv) + lam * cp.sum(cp.abs(Sv))), [constraint])
    options = CLARABEL_OPTIONS if solver == "CLARABEL" else SCS_OPTIONS
    L_out = np.full(Y.shape, np.nan)
    Lam = np.zeros(Y.shape)
    status: list[str] = []
    start = time.perf_counter()
    for i in tqdm(range(num), desc=f"PCP (cvxpy/{solver})", disable=None if progress is None else not progress):
        scale = float(np.linalg.norm(Y[i]))
        if scale == 0.0:  # Y = 0: L = S = 0 is optimal, Λ = 0 certifies it
            L_out[i] = 0.0
            status.append("optimal")
            continue
        Yp.value = Y[i] / scale
        try:
            problem.solve(solver=getattr(cp, solver), **options)
        except cp.error.SolverError as exc:
            status.append(f"solver_error: {exc}")
            continue
        status.append(str(problem.status))
        if Lv.value is not None:
            L_out[i] = scale * Lv.value
        if constraint.dual_value is not None:
            # cvxpy's Lagrangian for ``expr == rhs`` is ``f + ⟨ν, expr − rhs⟩``, so the multiplier of Y in the
            # dual is −ν: Λ = −ν (checked numerically: ⟨−ν, Y⟩ matches the optimal value, ⟨ν, Y⟩ its negative).
            # Λ is dimensionless (PCP's dual does not scale with Y).
            Lam[i] = -np.asarray(constraint.dual_value)
    failed = np.isnan(L_out).any(axis=(1, 2))
    gap, primal = pcp_duality_gap(np.nan_to_num(L_out), Y, Lam, lam)
    gap[failed], primal[failed] = np.inf, np.nan
    rel = np.full(num, np.inf)
    solved = ~failed
    # P(L) = 0 only for Y = 0 (then L = 0 and the gap is 0): a relative gap of 0
    rel[solved] = gap[solved] / np.where(primal[solved] > 0, primal[solved], 1.0)
    return PCPSolution(L_out, Y - L_out, primal, gap, rel, feasible_dual(Lam, lam), status, solver, lam,
                       time.perf_counter() - start)
