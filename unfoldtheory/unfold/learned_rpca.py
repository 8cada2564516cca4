"""Learned robust PCA (LRPCA; Cai, Liu & Yin, NeurIPS 2021): scaled gradient descent with learned
thresholds and step sizes, unfolded.

For ``Y = L + S`` (L of rank r, S sparse) and K layers:

    init:     S_0 = ST_{ζ_0}(Y),   Y − S_0 ≈ U Σ Vᵀ (rank-r truncated SVD),   U_0 = UΣ^{1/2}, V_0 = VΣ^{1/2}
    layer k:  S_k = ST_{ζ_k}(Y − U_{k−1}V_{k−1}ᵀ),      E_k = Y − U_{k−1}V_{k−1}ᵀ − S_k,
              U_k = U_{k−1} + η_k E_k V_{k−1} (V_{k−1}ᵀV_{k−1})⁻¹,
              V_k = V_{k−1} + η_k E_kᵀ U_{k−1} (U_{k−1}ᵀU_{k−1})⁻¹,        k = 1..K,

with learned ``ζ_0..ζ_K ≥ 0`` and ``η_1..η_K ≥ 0`` (2K + 1 scalars); the output is ``L_K = U_K V_Kᵀ``.
``E_k = −∇`` of ``½‖UVᵀ + S_k − Y‖²_F`` in UVᵀ, and the right factors ``(VᵀV)⁻¹``, ``(UᵀU)⁻¹`` are the
preconditioners of ScaledGD (Tong, Ma & Chi 2021), which make the rate independent of L's condition number.

**Classical initialisation** (the un-learned iteration, :func:`scaled_gradient_rpca`): ``η_k = η``
(default 0.5, LRPCA's initial step) and a geometric threshold decay ``ζ_k = ζ_0 · decay^k``.
The analysis of LRPCA (Cai, Liu & Yin 2021, Theorem 1) takes ``ζ_0 = ‖L‖_∞`` (S_0 then keeps only
entries that are certainly outliers) and thresholds that shrink geometrically with the error
``‖L − L_k‖_∞``; the defaults here are :data:`DEFAULT_DECAY` and :func:`default_zeta0`, an estimate of
``‖L‖_∞`` for the :class:`~unfoldtheory.problems.RobustPCA` generator (see there for the choice).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from unfoldtheory.spec import NetworkSpec, NotRepresentable
from unfoldtheory.unfold.base import DTYPE, scalar_parameters, soft_threshold_t
from unfoldtheory.validation import as_finite_array, finite_float, positive_int

#: Threshold decay per layer of the classical iteration (ζ_k = ζ_0·decay^k).
DEFAULT_DECAY = 0.7
#: Relative size below which σ_r(Y − S_0)/σ_1 counts as zero (the rank-r factors would be singular).
RANK_TOL = 1e-12


def default_zeta0(d1: int, d2: int, rank: int) -> float:
    """``ζ_0 = σ_L √(2 ln(d1 d2))`` with ``σ_L = √(r/(d1 d2))``: the Gaussian estimate of ``‖L‖_∞`` for
    L = UVᵀ with ``U ~ N(0, 1/d1)``, ``V ~ N(0, 1/d2)`` (entries of variance ``r/(d1 d2)``), the scale of
    :class:`~unfoldtheory.problems.RobustPCA`. LRPCA's analysis starts at ``ζ_0 = ‖L‖_∞``."""
    d1, d2, rank = positive_int(d1, "d1"), positive_int(d2, "d2"), positive_int(rank, "rank")
    return math.sqrt(rank / (d1 * d2)) * math.sqrt(2.0 * math.log(max(d1 * d2, 2)))


def _optional_size(value: Any, what: str) -> int | None:
    return None if value is None else positive_int(value, what)


class LearnedRPCA(nn.Module):
    """LRPCA with K layers, rank ``rank`` and learned ``ζ_0..ζ_K``, ``η_1..η_K`` (module docstring).

    * ``forward(Y, return_iterates=False)`` on ``Y`` of shape (batch, d1, d2) returns ``L_K`` of the same
      shape, or the list ``[L_1, …, L_K]``;
    * ``d1``, ``d2`` (optional) fix the matrix size: inputs are checked against it and
      :meth:`flops_per_sample` uses it; without them any size with ``min(d1, d2) ≥ rank`` is accepted;
    * ``zeta0`` (default :func:`default_zeta0`, which needs d1 and d2), ``decay`` and ``eta0`` give
      the classical initialisation ``ζ_k = ζ_0·decay^k``, ``η_k = eta0``;
    * float64 by default, like the package's other models (``model.float()`` for float32).

    Not a :class:`~unfoldtheory.unfold.UnfoldedModel` (there is no matrix A), but it has the same
    interface: ``layers``, ``layer_parameters(k)``, ``project_parameters()``, ``config()``,
    ``from_checkpoint``, ``num_parameters()``, ``flops_per_sample()``, and ``spec()``, which raises
    :class:`~unfoldtheory.spec.NotRepresentable`.
    """

    paradigm: ClassVar[str] = "learned hyperparameters"
    #: ParameterLists kept >= 0 by :meth:`project_parameters`.
    nonnegative: ClassVar[tuple[str, ...]] = ("threshold", "step")

    def __init__(self, rank: int, layers: int, d1: int | None = None, d2: int | None = None,
                 zeta0: float | None = None, eta0: float = 0.5, decay: float = DEFAULT_DECAY) -> None:
        super().__init__()
        self.rank = positive_int(rank, "rank")
        self.layers = positive_int(layers, "layers")
        self.d1, self.d2 = _optional_size(d1, "d1"), _optional_size(d2, "d2")
        for name, size in (("d1", self.d1), ("d2", self.d2)):
            if size is not None and size < self.rank:
                raise ValueError(f"rank {self.rank} exceeds {name} = {size}")
        if zeta0 is None:
            if self.d1 is None or self.d2 is None:
                raise ValueError("zeta0 is needed when d1 and d2 are not given (default_zeta0 uses the size)")
            zeta0 = default_zeta0(self.d1, self.d2, self.rank)
        self.zeta0 = finite_float(zeta0, "zeta0", low=0.0)
        self.eta0 = finite_float(eta0, "eta0", low=0.0)
        self.decay = finite_float(decay, "decay", low=0.0)
        self.threshold = scalar_parameters([self.zeta0 * self.decay**k for k in range(self.layers + 1)])
        self.step = scalar_parameters([self.eta0] * self.layers)

    # ------------------------------------------------------------------ the iteration
    def forward(self, Y: Any, return_iterates: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """``L_K`` (or ``[L_1, …, L_K]``) for ``Y`` of shape (batch, d1, d2), a tensor or an array."""
        its = self._iterate(self._input(Y))
        return its if return_iterates else its[-1]

    def _input(self, Y: Any) -> torch.Tensor:
        ref = self.threshold[0]
        if not isinstance(Y, torch.Tensor):
            Y = torch.as_tensor(as_finite_array(Y, "Y", ndim=3))
        want = f"(batch, {self.d1 or 'd1'}, {self.d2 or 'd2'})"
        if Y.ndim != 3 or Y.shape[0] == 0:
            raise ValueError(f"Y has shape {tuple(Y.shape)}; expected {want} with batch ≥ 1")
        if (self.d1 is not None and Y.shape[1] != self.d1) or (self.d2 is not None and Y.shape[2] != self.d2):
            raise ValueError(f"Y has shape {tuple(Y.shape)}; expected {want}")
        if min(Y.shape[1], Y.shape[2]) < self.rank:
            raise ValueError(f"rank {self.rank} exceeds min(d1, d2) = {min(Y.shape[1], Y.shape[2])} of Y {tuple(Y.shape)}")
        if not torch.isfinite(Y).all():
            raise ValueError("Y has non-finite entries")
        return Y.to(dtype=ref.dtype, device=ref.device)

    def _iterate(self, Y: torch.Tensor) -> list[torch.Tensor]:
        r = self.rank
        S = soft_threshold_t(Y, self.threshold[0])
        # Full thin SVD (LAPACK/cuSOLVER), truncated to rank r: deterministic and differentiable in ζ_0.
        W, sigma, Vh = torch.linalg.svd(Y - S, full_matrices=False)
        small = sigma[:, r - 1] <= RANK_TOL * sigma[:, 0]
        if bool(small.any()):
            i = int(torch.nonzero(small)[0])
            raise ValueError(f"Y − ST_ζ0(Y) of sample {i} has rank < {r} (σ_r/σ_1 ≤ {RANK_TOL:g}): the rank-{r} "
                             "factors would be singular; lower the rank or check the input")
        root = sigma[:, :r].sqrt()
        U = W[:, :, :r] * root[:, None, :]
        V = Vh[:, :r, :].mT * root[:, None, :]
        L = U @ V.mT
        its = []
        for k in range(self.layers):
            R = Y - L
            E = R - soft_threshold_t(R, self.threshold[k + 1])
            # E V (VᵀV)⁻¹ and Eᵀ U (UᵀU)⁻¹ as solves X·G = B (left=False), never explicit inverses.
            dU = torch.linalg.solve(V.mT @ V, E @ V, left=False)
            dV = torch.linalg.solve(U.mT @ U, E.mT @ U, left=False)
            U, V = U + self.step[k] * dU, V + self.step[k] * dV
            L = U @ V.mT
            its.append(L)
        return its

    # ------------------------------------------------------------------ the model interface
    def spec(self) -> NetworkSpec:
        """Always raises :class:`NotRepresentable`: LRPCA is not a feed-forward graph of slope-restricted activations."""
        raise NotRepresentable(
            "LearnedRPCA cannot be written as a NetworkSpec: each layer multiplies two state-dependent factors "
            "(U_k V_kᵀ, a bilinear map of the state, not an affine one), solves with the state-dependent Gram "
            "matrices VᵀV and UᵀU (a rational map), and starts from a truncated SVD; none of these is an affine "
            "map followed by a slope-restricted activation. Its empirical analyses (training, per-layer errors, "
            "witnesses) still apply.")

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Layer k (0-based) uses ``ζ_{k+1}`` and ``η_{k+1}``; layer 0 also owns the initial threshold ``ζ_0``."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.layers:
            raise ValueError(f"layer index {k!r} is out of range 0..{self.layers - 1}")
        own = [self.threshold[k + 1], self.step[k]]
        return [self.threshold[0], *own] if k == 0 else own

    @torch.no_grad()
    def project_parameters(self) -> None:
        """Clamp thresholds ``ζ ≥ 0`` and steps ``η ≥ 0`` (called by ``fit`` after each step)."""
        for name in self.nonnegative:
            for p in getattr(self, name):
                p.clamp_(min=0.0)

    def num_parameters(self) -> int:
        """Learned scalars: ``2K + 1``."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def flops_per_sample(self, d1: int | None = None, d2: int | None = None) -> int:
        """Floating-point operations of one forward pass for one (d1 × d2) input (a multiply-add counts 2).

        * init: soft-thresholding and subtraction (4 d1d2), a **full** thin SVD counted by Golub & Van
          Loan's R-SVD estimate ``6mn² + 20n³`` (m = max(d1, d2), n = min; *Matrix Computations*, 3rd
          ed., §5.4.5) although only r triplets are used, the factors UΣ^{1/2}, VΣ^{1/2}
          ((d1 + d2)r + r), and ``L_0 = U_0V_0ᵀ`` (2d1d2r);
        * per layer: residual, soft-thresholding and E (5 d1d2), ``EV`` and ``EᵀU`` (4d1d2r), Gram
          matrices (2(d1 + d2)r²), two LU solves with d1 and d2 right-hand sides
          (2·(2r³/3) + 2(d1 + d2)r²), the updates (2(d1 + d2)r) and ``L_k = U_kV_kᵀ`` (2d1d2r).
        """
        d1 = self.d1 if d1 is None else positive_int(d1, "d1")
        d2 = self.d2 if d2 is None else positive_int(d2, "d2")
        if d1 is None or d2 is None:
            raise ValueError("flops_per_sample needs the matrix size: build the model with d1, d2 or pass them")
        r = self.rank
        m, n = max(d1, d2), min(d1, d2)
        init = 4 * d1 * d2 + 6 * m * n * n + 20 * n**3 + (d1 + d2) * r + r + 2 * d1 * d2 * r
        layer = 5 * d1 * d2 + 4 * d1 * d2 * r + 4 * (d1 + d2) * r * r + (4 * r**3) // 3 + 2 * (d1 + d2) * r \
            + 2 * d1 * d2 * r
        return int(init + self.layers * layer)

    def config(self) -> dict[str, Any]:
        """What :func:`unfoldtheory.unfold.load` needs besides the state dict."""
        return {"class": type(self).__name__, "rank": self.rank, "layers": self.layers, "d1": self.d1,
                "d2": self.d2, "zeta0": self.zeta0, "eta0": self.eta0, "decay": self.decay}

    @classmethod
    def from_checkpoint(cls, config: dict[str, Any], state: dict[str, torch.Tensor]) -> LearnedRPCA:
        """An untrained model of the saved shape (the caller then loads ``state``)."""
        kwargs = {k: v for k, v in config.items() if k != "class"}
        return cls(**kwargs)

    def extra_repr(self) -> str:
        return (f"rank={self.rank}, layers={self.layers}, d1={self.d1}, d2={self.d2}, "
                f"parameters={self.num_parameters()}")


def scaled_gradient_rpca(Y: Any, rank: int, layers: int, zeta0: float, decay: float = DEFAULT_DECAY,
                         eta: float = 0.5, return_iterates: bool = False) -> np.ndarray:
    """The classical (un-learned) iteration: :class:`LearnedRPCA` at its classical initialisation
    (``ζ_k = ζ_0·decay^k``, ``η_k = eta``), run without gradients in float64.

    ``Y`` is (d1, d2) or (num, d1, d2); returns ``L_K`` of the same shape, or with ``return_iterates``
    an array (K, …) of ``L_1..L_K``.
    """
    Y = as_finite_array(Y, "Y", ndim=(2, 3))
    single = Y.ndim == 2
    model = LearnedRPCA(rank, layers, zeta0=zeta0, eta0=eta, decay=decay).to(DTYPE)
    with torch.no_grad():
        its = model(torch.as_tensor(Y[None] if single else Y), return_iterates=True)
    out = np.stack([L.numpy() for L in its])
    out = out[:, 0] if single else out
    return out if return_iterates else out[-1]
