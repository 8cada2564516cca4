"""Cell functions for sweeps: module-level (so process pools and Dask can pickle them), keyword
arguments in, a JSON-serialisable dict out.
"""

from __future__ import annotations

from typing import Any

import torch

from unfoldtheory import unfold
from unfoldtheory.classical import ista
from unfoldtheory.metrics import nmse_db
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.train import evaluate_nmse, fit
from unfoldtheory.validation import positive_int

SPARSE_MODELS = ("UnfoldedISTA", "UnfoldedFISTA", "ALISTA", "UnfoldedADMM", "LISTA", "LISTACP", "HybridISTA", "LearnedUpdate")
TRAIN_SEED, TEST_SEED = 1, 2


def train_cell(depth: int, sparsity: float, train_samples: int | None, seed: int, *, model: str = "ALISTA", m: int = 32,
               n: int = 64, noise_std: float = 0.0, steps: int = 300, scheme: str = "end_to_end", lr: float = 0.02,
               batch_size: int = 64, test_samples: int = 1000, threads: int = 1) -> dict[str, Any]:
    """Train one unfolded model of ``depth`` layers on one sparse-recovery problem; report its test NMSE.

    The problem is ``SparseRecovery(m, n, sparsity, noise_std, seed=seed)`` (its matrix depends on
    the seed). Training uses ``train_samples`` fixed samples (``None``: fresh samples at every
    step, unlimited data) for ``steps`` optimiser steps of :func:`unfoldtheory.train.fit`, ending
    with the last parameters (no validation data, no early stopping). The test set has
    ``test_samples`` samples drawn apart from the training set (another sample seed). Returned:

    * ``test_nmse_db`` and, with a fixed training set, ``train_nmse_db`` and ``gap_db`` (test − train);
    * ``ista_nmse_db``: ISTA (step 1/L, threshold λ/L) with as many iterations as layers, same test set;
    * ``train_seconds`` and ``parameters`` (learned scalars).

    Deterministic for given arguments on a given machine (so a resumed sweep is consistent).
    """
    if model not in SPARSE_MODELS:
        raise ValueError(f"model {model!r} is not a sparse-recovery model; choose one of {SPARSE_MODELS}")
    depth = positive_int(depth, "depth")
    torch.set_num_threads(positive_int(threads, "threads"))
    problem = SparseRecovery(m, n, sparsity, noise_std, seed=seed)
    data = None if train_samples is None else problem.sample(positive_int(train_samples, "train_samples"), seed=TRAIN_SEED)
    Y, X = problem.sample(test_samples, seed=TEST_SEED)
    net = getattr(unfold, model)(problem.A, depth, problem.lam)
    history = fit(net, problem, scheme, steps, seed, lr=lr, batch_size=batch_size, data=data, keep_best=False, progress=False)
    train_nmse = None if data is None else float(evaluate_nmse(net, *data))
    test_nmse = float(evaluate_nmse(net, Y, X))
    return {
        "test_nmse_db": test_nmse,
        "train_nmse_db": train_nmse,
        "gap_db": None if train_nmse is None else test_nmse - train_nmse,
        "ista_nmse_db": float(nmse_db(ista(problem.A, Y, problem.lam, depth)[-1], X)),
        "train_seconds": history.seconds,
        "parameters": net.num_parameters(),
    }
