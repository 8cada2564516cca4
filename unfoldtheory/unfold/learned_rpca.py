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
(default 0.5, LRPCA's initial step) and a geometric threshold decay ``ζ_k = ζ_0·decay^k``, the shape of
the thresholds in LRPCA's analysis (which shrink with the error ``‖L − L_k‖_∞`` [recalled]). Defaults:
``ζ_0 = 1.5·σ_L`` (:func:`default_zeta0`; ``σ_L = √(r/(d1 d2))`` is the RMS entry of L in
:class:`~unfoldtheory.problems.RobustPCA`, so ``ζ_0 ≈ 1.9·mean|L|``) and ``decay = 0.7``. They come from
a grid (ζ_0/σ_L ∈ {0.75, 1, 1.25, 1.5, 2}, decay ∈ {0.6, …, 0.8}, η = 0.5) on (d, r, α) = (40, 3, 0.1),
(40, 3, 0.2), (60, 5, 0.1): this pair is near the best 10-layer mean relative error in all three
(1.6e-2, 3.0e-2, 1.6e-2; 5.8e-3, 1.8e-2, 4.8e-3 at 20 layers). The theoretical start ``ζ_0 = ‖L‖_∞``
(≈ 3.8·σ_L at d = 40) gives 2.8e-2 at 10 layers on the first: LRPCA's outliers are bounded by
mean|L|, far below ‖L‖_∞, so its first layers' thresholds remove nothing (and, being above every
residual, get no gradient in training either).

**The truncated SVD** is a full SVD truncated to rank r (:func:`top_singular_triplets`), deterministic
(unlike LRPCA's randomised ``svd_lowrank``), with a backward pass that stays finite when trailing singular
values repeat, so ``ζ_0`` is learned too.
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

#: Classical initialisation (module docstring): ζ_0 = ZETA0_RMS × RMS entry of L, ζ_k = ζ_0·DEFAULT_DECAY^k.
ZETA0_RMS = 1.5
DEFAULT_DECAY = 0.7


def default_zeta0(d1: int, d2: int, rank: int) -> float:
    """``ζ_0 = ZETA0_RMS · σ_L`` with ``σ_L = √(r/(d1 d2))``, the RMS entry of ``L = UVᵀ`` for
    ``U ~ N(0, 1/d1)``, ``V ~ N(0, 1/d2)`` (the scale of :class:`~unfoldtheory.problems.RobustPCA`;
    ``ζ_0 ≈ 1.9·mean|L|``, about twice the outlier bound c). For data of another scale, pass
    ``zeta0 = 1.5 × RMS`` of the rank-r truncation of Y instead."""
    d1, d2, rank = positive_int(d1, "d1"), positive_int(d2, "d2"), positive_int(rank, "rank")
    return ZETA0_RMS * math.sqrt(rank / (d1 * d2))


class _TopSingularTriplets(torch.autograd.Function):
    """The r leading singular triplets of a batch of matrices, with a backward pass that couples only
    pairs of singular values of which at least one is leading.

    torch's own SVD backward divides by ``σ_j² − σ_i²`` for *every* pair, so a matrix with repeated
    trailing singular values (e.g. two exact zeros, which ``Y − ST_ζ(Y)`` has whenever a few rows of
    S vanish) gives 0/0 = NaN although the loss does not depend on the trailing vectors. Here the
    matrix (m × n) is zero-padded to N × N, N = max(m, n) (same leading triplets, extra zero
    singular values), and with ``A = UᵀŪ``, ``B = VᵀV̄`` (N × r, zero-padded to N × N)

        M̄ = U [ ((A − Aᵀ) diag σ + diag σ (B − Bᵀ)) ∘ F + diag(σ̄) ] Vᵀ,   F_pq = 1/(σ_q² − σ_p²),

    with ``F_pq = 0`` unless p ≠ q and min(p, q) < r (0-based; for p, q ≥ r the bracket is 0 anyway, A and B
    having no columns there, and ties there would give 0/0). This is the
    first-order perturbation theory of the SVD (du_i, dv_i from the eigenvectors of MMᵀ, MᵀM),
    transposed; exact wherever σ_1 > … > σ_r > σ_{r+1}.
    """

    @staticmethod
    def forward(ctx: Any, M: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _, m, n = M.shape
        N = max(m, n)
        padded = M.new_zeros(M.shape[0], N, N)
        padded[:, :m, :n] = M
        U, s, Vh = torch.linalg.svd(padded)
        V = Vh.mT
        ctx.save_for_backward(U, s, V)
        ctx.sizes = (m, n, r)
        return U[:, :m, :r], s[:, :r], V[:, :n, :r]

    @staticmethod
    def backward(ctx: Any, gU: torch.Tensor, gs: torch.Tensor, gV: torch.Tensor) -> tuple[torch.Tensor, None]:
        U, s, V = ctx.saved_tensors
        m, n, r = ctx.sizes
        batch, N = s.shape
        A = U.new_zeros(batch, N, N)
        B = U.new_zeros(batch, N, N)
        A[:, :, :r] = U[:, :m].mT @ gU
        B[:, :, :r] = V[:, :n].mT @ gV
        idx = torch.arange(N, device=s.device)
        keep = (idx[:, None] != idx[None, :]) & (torch.minimum(idx[:, None], idx[None, :]) < r)
        s2 = s * s
        gap = s2[:, None, :] - s2[:, :, None]
        F = torch.where(keep, 1.0 / torch.where(keep, gap, torch.ones_like(gap)), torch.zeros_like(gap))
        inner = ((A - A.mT) * s[:, None, :] + s[:, :, None] * (B - B.mT)) * F
        inner[:, idx[:r], idx[:r]] += gs
        return (U @ inner @ V.mT)[:, :m, :n], None


def top_singular_triplets(M: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(U_r, σ_r, V_r)`` of each matrix of a (batch, m, n) tensor: ``M ≈ U_r diag(σ_r) V_rᵀ`` (rank-r
    truncated SVD, from a full LAPACK/cuSOLVER SVD), differentiable wherever σ_1 > … > σ_r > σ_{r+1}
    even when trailing singular values repeat (see :class:`_TopSingularTriplets`)."""
    return _TopSingularTriplets.apply(M, r)


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
        if not torch.compiler.is_exporting() and not torch.isfinite(Y).all():  # a value test torch.export cannot trace
            raise ValueError("Y has non-finite entries")
        return Y.to(dtype=ref.dtype, device=ref.device)

    def _iterate(self, Y: torch.Tensor) -> list[torch.Tensor]:
        r = self.rank
        M = Y - soft_threshold_t(Y, self.threshold[0])
        W, sigma, Z = top_singular_triplets(M, r)
        # numerical rank as numpy.linalg.matrix_rank counts it: σ_r ≤ σ_1·max(d1, d2)·eps is zero
        tol = torch.finfo(M.dtype).eps * max(M.shape[1], M.shape[2])
        small = sigma[:, r - 1] <= tol * sigma[:, 0]
        if not torch.compiler.is_exporting() and bool(small.any()):
            i = int(torch.nonzero(small)[0])
            raise ValueError(f"Y − ST_ζ0(Y) of sample {i} has rank < {r} (σ_r ≤ {tol:.2g}·σ_1): the rank-{r} "
                             "factors would be singular; lower the rank or check the input")
        root = sigma.sqrt()
        U = W * root[:, None, :]
        V = Z * root[:, None, :]
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

        * init: soft-thresholding and subtraction (4 d1d2); a **full** SVD (U, Σ, V) of the matrix
          zero-padded to N × N, N = max(d1, d2) (see :func:`top_singular_triplets`), counted by Golub &
          Van Loan's R-SVD estimate ``4N³ + 22N³`` (*Matrix Computations*, 3rd ed., §5.4.5), although
          only r triplets are used (a truncated SVD would cost O(d1d2r)); the factors UΣ^{1/2}, VΣ^{1/2}
          ((d1 + d2)r + r) and ``L_0 = U_0V_0ᵀ`` (2d1d2r);
        * per layer: residual, soft-thresholding and E (5 d1d2), ``EV`` and ``EᵀU`` (4d1d2r), Gram
          matrices (2(d1 + d2)r²), two LU solves with d2 and d1 right-hand sides
          (2·(2r³/3) + 2(d1 + d2)r²), the updates (2(d1 + d2)r) and ``L_k = U_kV_kᵀ`` (2d1d2r).
        """
        d1 = self.d1 if d1 is None else positive_int(d1, "d1")
        d2 = self.d2 if d2 is None else positive_int(d2, "d2")
        if d1 is None or d2 is None:
            raise ValueError("flops_per_sample needs the matrix size: build the model with d1, d2 or pass them")
        r = self.rank
        N = max(d1, d2)
        init = 4 * d1 * d2 + 26 * N**3 + (d1 + d2) * r + r + 2 * d1 * d2 * r
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
