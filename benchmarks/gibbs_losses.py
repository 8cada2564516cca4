"""Gibbs losses: the anchor, ``pac_bayes.gibbs_losses`` as it was before issue 15 (copied here as
:func:`anchor_gibbs_losses`: torch's generator, one forward pass per chunk in a Python loop), against
``posteriors.gibbs_losses`` (stacked draws under ``torch.func.vmap``, numpy's ziggurat normals).

The models are untrained (the timing does not depend on the weights): LISTA and LISTA-CP at ``--m``, ``--n``,
``--layers`` (default 64, 128, 12), whose parameters are matrices, and ALISTA at the same size, whose parameters
are all scalars (both codes broadcast one draw per sample); ``--models`` may add HybridISTA and LearnedUpdate
(default widths). The posterior is the per-tensor family with
``σ = --scale × RMS`` of each tensor (:func:`~unfoldtheory.generalization.posteriors.block_rms`). Both codes see
the same ``--samples`` samples of a ``SparseRecovery`` problem, ``--draws`` draws and ``--chunk``. For matrix
models the new code runs with ``per_sample=False`` (the old code's grouping: one draw per chunk) and, when its
default would take one draw per sample (``N·draws·D ≤ PER_SAMPLE_NORMALS``), with ``per_sample=None`` too; for
ALISTA both broadcast one draw per sample. Each row gives the fastest of ``--repeats`` timings of each code, the
ratio old/new, the number of independent groups, the relative difference of the two mean losses (independent
draws on the same samples) and, as a yardstick above it, the standard error of a group mean over the groups
relative to the mean. torch and BLAS use ``--threads`` threads (default 1: several threads on small matrices only
contend on a shared machine).

    python benchmarks/gibbs_losses.py [--samples 2000] [--draws 32] [--models LISTA LISTACP ALISTA]
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import time
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from unfoldtheory.diagnostics import markdown_table
from unfoldtheory.generalization import posteriors
from unfoldtheory.generalization.data import as_dataset
from unfoldtheory.generalization.parameter_lipschitz import flat_parameters, model_size
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.unfold import ALISTA, LISTA, LISTACP, HybridISTA, LearnedUpdate

MODELS = {"LISTA": LISTA, "LISTACP": LISTACP, "ALISTA": ALISTA, "HybridISTA": HybridISTA, "LearnedUpdate": LearnedUpdate}
DEFAULT_MODELS = ["LISTA", "LISTACP", "ALISTA"]


def anchor_gibbs_losses(model: torch.nn.Module, std: np.ndarray, data: Any, *, draws: int, seed: int,
                        chunk: int, batch_size: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """``pac_bayes.gibbs_losses`` before issue 15 (same contract): a broadcast pass per draw for all-scalar package
    models, else one ``functional_call`` per (draw, chunk), draws from one ``torch.Generator``."""
    Y, X = as_dataset(data, "data", m=getattr(model, "m", None), n=getattr(model, "n", None))
    mean = flat_parameters(model)
    N = Y.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    mu, sd = torch.as_tensor(mean), torch.as_tensor(std)
    work = copy.deepcopy(model).double()
    losses = np.empty((draws, N))
    groups = np.empty((draws, N), dtype=np.int64)
    Yt, Xt = torch.as_tensor(Y), torch.as_tensor(X)
    with torch.no_grad():
        for r in range(draws):
            if posteriors.broadcastable(work):
                for start in range(0, N, batch_size):
                    stop = min(N, start + batch_size)
                    thetas = mu + sd * torch.randn(stop - start, mean.size, generator=gen, dtype=torch.float64)
                    losses[r, start:stop] = posteriors.broadcast_losses(work, thetas, Yt[start:stop], Xt[start:stop]).numpy()
                groups[r] = r * N + np.arange(N)
                continue
            for g, start in enumerate(range(0, N, chunk)):
                stop = min(N, start + chunk)
                theta = mu + sd * torch.randn(mean.size, generator=gen, dtype=torch.float64)
                params, offset = {}, 0
                for name, p in work.named_parameters():
                    params[name] = theta[offset:offset + p.numel()].reshape(p.shape)
                    offset += p.numel()
                out = torch.func.functional_call(work, params, (Yt[start:stop],))
                losses[r, start:stop] = ((out - Xt[start:stop]) ** 2).sum(dim=1).numpy()
                groups[r, start:stop] = r * N + g
    return losses, groups


def _group_mean_error(losses: np.ndarray, groups: np.ndarray) -> tuple[float, float, int]:
    """Mean loss, its standard error over the independent groups, and the number of groups."""
    _, inverse, counts = np.unique(groups.ravel(), return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=losses.ravel()) / counts
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(means.size)) if means.size > 1 else 0.0, int(means.size)


def _timed(repeats: int, fn, *args, **kwargs):
    """``fn``'s result and its fastest time over ``repeats`` runs (a shared machine makes single timings noisy)."""
    best, out = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return out, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=list(MODELS))
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1, help="time each call this many times, keep the fastest")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    problem = SparseRecovery(args.m, args.n, 0.1, seed=args.seed)
    data = problem.sample(args.samples, seed=args.seed + 1)
    rows = []
    with threadpool_limits(args.threads):
        for name in args.models:
            model = MODELS[name](problem.A, args.layers, problem.lam)
            D = model_size(model)
            blocks = posteriors.parameter_blocks(model, "tensor")
            std = posteriors.block_std(blocks, args.scale * posteriors.block_rms(model, blocks), D)
            common = {"draws": args.draws, "seed": args.seed, "chunk": args.chunk}
            (old, old_groups), t_old = _timed(args.repeats, anchor_gibbs_losses, model, std, data, **common)
            old_mean, old_err, old_n = _group_mean_error(old, old_groups)
            choices = [None] if posteriors.broadcastable(model) else [False]
            if not posteriors.broadcastable(model) and args.samples * args.draws * D <= posteriors.PER_SAMPLE_NORMALS:
                choices.append(None)  # its own choice differs: one draw per sample
            for per_sample in choices:
                (new, new_groups), t_new = _timed(args.repeats, posteriors.gibbs_losses, model, std, data,
                                                  per_sample=per_sample, progress=False, **common)
                new_mean, new_err, new_n = _group_mean_error(new, new_groups)
                rows.append([name, D, str(per_sample), t_old, t_new, t_old / t_new, old_n, new_n,
                             abs(new_mean - old_mean) / old_mean, float(np.hypot(old_err, new_err)) / old_mean])
    header = ["model", "parameters", "per_sample", "seconds old", "seconds new", "old/new", "groups old", "groups new",
              "rel. diff of means", "rel. std error"]
    machine = platform.processor() or platform.machine()
    print(f"{args.samples} samples x {args.draws} draws, chunk {args.chunk}, m={args.m}, n={args.n}, "
          f"{args.layers} layers, {args.threads} thread(s), torch {torch.__version__}, {machine}")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
