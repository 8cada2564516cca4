"""Accuracy metrics shared by training, studies and reports."""

from __future__ import annotations

from typing import Any

import numpy as np

from unfoldtheory.validation import as_finite_array


def nmse_db(estimate: Any, truth: Any) -> float:
    """Normalised mean squared error in dB: ``10 log10(Σ‖x̂ − x‖² / Σ‖x‖²)`` over all samples."""
    est = as_finite_array(estimate, "estimate")
    ref = as_finite_array(truth, "truth")
    if est.shape != ref.shape:
        raise ValueError(f"estimate has shape {est.shape}; expected the truth's {ref.shape}")
    power = float(np.sum(ref**2))
    if power == 0:
        raise ValueError("the truth is all zeros: NMSE is undefined")
    err = float(np.sum((est - ref) ** 2))
    return 10.0 * np.log10(err / power) if err > 0 else -np.inf
