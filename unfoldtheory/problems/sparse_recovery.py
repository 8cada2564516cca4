"""Sparse recovery: ``y = A x + noise`` with Bernoulli–Gaussian ``x``, solved by the Lasso.

The Lasso convention everywhere in the package is ``½‖Ax − y‖² + λ‖x‖₁``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unfoldtheory.lasso import lasso_objective
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

DEFAULT_LAM = 0.1


def default_lam(n: int, noise_std: float) -> float:
    """The default Lasso weight: ``λ = max(0.1, σ·√(2 log n))``.

    ``σ√(2 log n)`` is the universal threshold (Donoho & Johnstone 1994): with unit-norm
    columns, ``‖Aᵀe‖_∞ ≤ σ√(2 log n)`` with high probability for Gaussian noise ``e``. The floor
    0.1 keeps the noiseless problem well conditioned for iterative solvers while biasing the
    solution only slightly (nonzeros are of order 1).
    """
    return max(DEFAULT_LAM, noise_std * float(np.sqrt(2.0 * np.log(n))))


class SparseRecovery:
    """Recover an s-sparse ``x ∈ ℝⁿ`` from ``y = A x + σ e ∈ ℝᵐ``.

    * ``A``: i.i.d. Gaussian entries, columns normalised to unit ℓ2 norm (fixed by ``seed``);
    * signals: Bernoulli–Gaussian, each entry nonzero with probability ``sparsity`` and then
      standard normal;
    * noise: i.i.d. ``N(0, noise_std²)``;
    * ``lam``: the Lasso weight, default :func:`default_lam`.

    Parameters are checked: ``m, n ≥ 1``, ``0 < sparsity ≤ 1``, ``noise_std ≥ 0``, ``lam > 0``.
    """

    def __init__(self, m: int, n: int, sparsity: float, noise_std: float = 0.0,
                 lam: float | None = None, seed: int = 0) -> None:
        self.m = positive_int(m, "m")
        self.n = positive_int(n, "n")
        self.sparsity = finite_float(sparsity, "sparsity", low=0.0, high=1.0, low_open=True)
        self.noise_std = finite_float(noise_std, "noise_std", low=0.0)
        self.lam = default_lam(self.n, self.noise_std) if lam is None else finite_float(lam, "lam", low=0.0, low_open=True)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, 0])
        A = rng.standard_normal((self.m, self.n))
        A /= np.linalg.norm(A, axis=0, keepdims=True)
        A.flags.writeable = False
        self.A = A
        self._sample_rng = np.random.default_rng([self.seed, 1])

    @property
    def L(self) -> float:
        """``‖A‖₂²``, the Lipschitz constant of the gradient of ``½‖Ax − y‖²``."""
        return float(np.linalg.norm(self.A, 2) ** 2)

    def sample(self, num: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(Y, X)`` of shapes (num, m) and (num, n), float64.

        With a ``seed`` the draw depends on it alone; without one, successive calls continue one
        stream fixed by the problem's seed (reproducible, and never the same draw twice).
        """
        num = positive_int(num, "num")
        if seed is None:
            rng = self._sample_rng
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        else:
            rng = np.random.default_rng([self.seed, 2, int(seed)])
        support = rng.random((num, self.n)) < self.sparsity
        X = np.where(support, rng.standard_normal((num, self.n)), 0.0)
        Y = X @ self.A.T
        if self.noise_std > 0:
            Y = Y + self.noise_std * rng.standard_normal((num, self.m))
        return Y, X

    def objective(self, x: Any, y: Any) -> np.ndarray | float:
        """The Lasso objective ``½‖Ax − y‖² + λ‖x‖₁`` (rows of x and y pair up; 1-D gives a float)."""
        x = as_finite_array(x, "x", ndim=(1, 2))
        y = as_finite_array(y, "y", ndim=(1, 2))
        if x.shape[-1] != self.n:
            raise ValueError(f"x has {x.shape[-1]} entries per row; expected n = {self.n}")
        if y.shape[-1] != self.m:
            raise ValueError(f"y has {y.shape[-1]} entries per row; expected m = {self.m}")
        if x.ndim == 2 and y.ndim == 2 and x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} rows but y has {y.shape[0]}; they must pair up")
        value = lasso_objective(self.A, np.atleast_2d(x), np.atleast_2d(y), self.lam)
        return float(value[0]) if x.ndim == 1 and y.ndim == 1 else value

    def torch_objective(self, x: Any, y: Any) -> Any:
        """The Lasso objective averaged over a batch, in torch (for unsupervised training).

        ``x`` (batch, n) and ``y`` (batch, m) are tensors; A is cast to their dtype and device.
        """
        import torch

        A = torch.tensor(self.A, dtype=x.dtype, device=x.device)
        r = x @ A.T - y
        return (0.5 * (r**2).sum(dim=1) + self.lam * x.abs().sum(dim=1)).mean()

    def __repr__(self) -> str:
        return (f"SparseRecovery(m={self.m}, n={self.n}, sparsity={self.sparsity}, "
                f"noise_std={self.noise_std}, lam={self.lam:.6g}, seed={self.seed})")
