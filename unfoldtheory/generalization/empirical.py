"""The measured generalization gap: test loss minus training loss, with a confidence interval.

The estimate is ``mean_test ℓ − mean_train ℓ`` for the squared loss ``ℓ = ‖h(y) − x‖²``. The training
loss is a fixed number for a trained model; the uncertainty is that of the test mean as an estimate
of the expected loss, from test samples independent of the training set:

* ``method="t"``: Student's t interval ``mean ± t_{(1+c)/2, N−1} s/√N`` (asymptotically exact by the
  central limit theorem; squared errors are skewed, so it is approximate for small N);
* ``method="bootstrap"``: the percentile bootstrap of the test mean (``resamples`` draws, seeded).

The interval for the gap is the interval for the expected loss shifted by the training loss. This is
an estimate, never a bound: ``kind="estimate"``, ``certified=False``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from scipy import stats
from torch import nn

from unfoldtheory.generalization.data import squared_losses
from unfoldtheory.results import Bound
from unfoldtheory.validation import finite_float, positive_int

QUANTITY = "generalization gap of the squared loss (expected − training), estimated on test data"
METHODS = ("t", "bootstrap")


def mean_interval(losses: np.ndarray, confidence: float, method: str = "t", resamples: int = 2000,
                  seed: int = 0) -> tuple[float, float]:
    """A two-sided ``confidence`` interval for the mean of ``losses`` (at least 2 values)."""
    n = losses.size
    mean = float(losses.mean())
    if method == "t":
        half = float(stats.t.ppf(0.5 * (1.0 + confidence), n - 1)) * float(losses.std(ddof=1)) / math.sqrt(n)
        return mean - half, mean + half
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        means[start:stop] = losses[rng.integers(0, n, (stop - start, n))].mean(axis=1)
    tail = 0.5 * (1.0 - confidence)
    return float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))


def empirical_gap(model: nn.Module, train: Any, test: Any, confidence: float = 0.95, *, method: str = "t",
                  resamples: int = 2000, seed: int = 0) -> Bound:
    """The gap estimate ``test loss − train loss`` with its ``confidence`` interval in ``details["interval"]``.

    ``train`` and ``test`` are ``(Y, X)`` pairs; the test set needs at least 2 samples.
    """
    start = time.perf_counter()
    confidence = finite_float(confidence, "confidence", low=0.0, high=1.0, low_open=True, high_open=True)
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not known; choose one of {METHODS}")
    resamples = positive_int(resamples, "resamples")
    train_losses = squared_losses(model, train, "train")
    test_losses = squared_losses(model, test, "test")
    if test_losses.size < 2:
        raise ValueError(f"test has {test_losses.size} sample; a confidence interval needs at least 2")
    train_loss, test_loss = float(train_losses.mean()), float(test_losses.mean())
    lo, hi = mean_interval(test_losses, confidence, method, resamples, seed)
    details = {"train_loss": train_loss, "test_loss": test_loss, "interval": (lo - train_loss, hi - train_loss),
               "expected_loss_interval": (lo, hi), "confidence": confidence, "interval_method": method,
               "num_train": int(train_losses.size), "num_test": int(test_losses.size),
               "test_loss_std": float(test_losses.std(ddof=1)), "train_loss_std": float(train_losses.std(ddof=1))
               if train_losses.size > 1 else 0.0}
    return Bound(test_loss - train_loss, "estimate", QUANTITY, f"test − train ({method} interval)",
                 seconds=time.perf_counter() - start, details=details)
