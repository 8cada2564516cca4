"""The step-size figure: learned per-layer steps ``γ_k`` against the classical ``1/L`` and the limit ``2/L``.

For ISTA on ``½‖Ax − y‖²`` the gradient step ``x ↦ x − γAᵀ(Ax − y)`` is nonexpansive exactly when
``0 ≤ γ ≤ 2/L`` with ``L = ‖A‖₂²`` (``‖I − γAᵀA‖₂ = max(|1 − γλ_min|, |1 − γL|) ≤ 1``), and ``γ = 1/L``
is the classical choice that guarantees descent (Beck & Teboulle 2009). Learned steps above ``2/L``
are therefore outside the regime of the classical convergence proof (step-size learning: Ablin et
al., NeurIPS 2019). For ALISTA the operator is ``W̃ᵀA`` and ``L = ‖W̃ᵀA‖₂``, the scaling of its
initialisation (Liu et al., ICLR 2019); ``W̃ᵀA`` is not symmetric, so there ``2/L`` is the analogue
of the limit, not a theorem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from unfoldtheory.diagnostics.figures import new_figure, styled
from unfoldtheory.diagnostics.plot_support import Palette, finish, integer_ticks, legend_below
from unfoldtheory.validation import as_finite_array, finite_float


def learned_steps(model: Any) -> np.ndarray:
    """The per-layer step sizes ``γ_1, …, γ_K`` of a model with a ``step`` parameter list
    (UnfoldedISTA, UnfoldedFISTA, ALISTA, HybridISTA), as a float64 array."""
    steps = getattr(model, "step", None)
    if steps is None:
        raise ValueError(f"{type(model).__name__} has no learned step sizes (no 'step' parameters)")
    return as_finite_array([float(s.detach().cpu().double()) for s in steps], f"{type(model).__name__}.step", ndim=1)


def classical_step(model: Any) -> float:
    """The step of the classical algorithm the model starts from: ``1/‖W̃ᵀA‖₂`` for ALISTA, ``1/L`` otherwise."""
    from unfoldtheory.unfold import ALISTA

    if isinstance(model, ALISTA):
        A, W = model.A_numpy(), model.W.detach().cpu().double().numpy()
        return 1.0 / float(np.linalg.norm(W.T @ A, 2))
    L = getattr(model, "L", None)
    if L is None:
        raise ValueError(f"{type(model).__name__} has no Lipschitz constant L of its gradient")
    return 1.0 / finite_float(L, f"{type(model).__name__}.L", low=0.0, low_open=True)


def _series(models_or_steps: Mapping[str, Any], classical: Any) -> dict[str, tuple[np.ndarray, float]]:
    """``{name: (steps, classical step)}`` from models or arrays and the ``classical`` argument."""
    if not models_or_steps:
        raise ValueError("no models or step sizes to plot")
    out = {}
    for name, item in models_or_steps.items():
        is_model = hasattr(item, "parameters")
        steps = learned_steps(item) if is_model else as_finite_array(item, f"steps[{name!r}]", ndim=1)
        if steps.size == 0:
            raise ValueError(f"steps[{name!r}] is empty")
        if isinstance(classical, Mapping):
            if name not in classical:
                raise ValueError(f"classical has no step for {name!r}")
            ref = classical[name]
        elif classical is None:
            if not is_model:
                raise ValueError(f"steps[{name!r}] is an array: pass its classical step 1/L as classical")
            ref = classical_step(item)
        else:
            ref = classical
        out[name] = (steps, finite_float(ref, f"classical step of {name!r}", low=0.0, low_open=True))
    return out


@styled
def step_size_plot(models_or_steps: Mapping[str, Any], classical: float | Mapping[str, float] | None,
                   path: str | os.PathLike[str], *, title: str = "Learned step sizes against the classical 1/L",
                   normalized: bool = False, return_figure: bool = False) -> list[Path] | tuple[list[Path], Figure]:
    """Plot learned ``γ_k`` against layer k with the classical step ``1/L`` and the limit ``2/L``.

    ``models_or_steps`` maps a name to a model (steps from :func:`learned_steps`) or to an array of
    steps; ``classical`` is the classical step ``1/L`` (one number, or one per name; ``None`` takes
    :func:`classical_step` of each model). With ``normalized=True`` the y axis is ``γ_k·L``, so models
    with different ``L`` share the lines 1 and 2. Series are labelled by name; the reference lines
    ``"classical step 1/L…"`` and ``"stability limit 2/L…"`` (per name when the classical steps differ).
    """
    data = _series(models_or_steps, classical)
    fig, ax = new_figure()
    color = Palette()
    for name, (steps, ref) in data.items():
        y = steps / ref if normalized else steps
        ax.plot(np.arange(1, steps.size + 1), y, color=color(name), marker="o", ms=4, label=name)
    refs = {name: 1.0 if normalized else ref for name, (_, ref) in data.items()}
    values = list(refs.values())
    if np.allclose(values, values[0], rtol=1e-9, atol=0.0):
        ax.axhline(values[0], color="black", linestyle="--", lw=1, label=f"classical step 1/L = {values[0]:.4g}")
        ax.axhline(2 * values[0], color="black", linestyle=":", lw=1, label=f"stability limit 2/L = {2 * values[0]:.4g}")
    else:
        for name, ref in refs.items():
            ax.axhline(ref, color=color(name), linestyle="--", lw=1, label=f"{name}: classical step 1/L = {ref:.4g}")
            ax.axhline(2 * ref, color=color(name), linestyle=":", lw=1, label=f"{name}: stability limit 2/L = {2 * ref:.4g}")
    ax.set_xlabel("layer k")
    integer_ticks(ax.xaxis)
    ax.set_ylabel(r"$\gamma_k L$ (steps in units of 1/L)" if normalized else r"step size $\gamma_k$")
    ax.set_ylim(bottom=0.0)
    legend_below(ax)
    return finish(fig, path, title, ax, return_figure)
