"""Sweeps: a grid of study cells, run through any ``concurrent.futures.Executor``, resumable.

>>> from unfoldtheory.sweep import Grid, ResultStore, run_sweep
>>> from unfoldtheory.sweep.cells import train_cell
>>> records = run_sweep(train_cell, Grid(depth=[4, 8], sparsity=0.1, train_samples=500, seed=range(3)),
...                     ResultStore("out/cells"), executor="processes")  # doctest: +SKIP

* :class:`Grid` — the cells (dicts) and their stable keys (:func:`cell_key`);
* :class:`ResultStore` — one atomically written JSON file per finished cell;
* :func:`run_sweep` — skips finished cells, runs the rest, stores each as it finishes;
* :func:`executor_for` — the executor for ``--scheduler`` (process pool, Dask ``tcp://HOST:PORT``, ...);
* :mod:`unfoldtheory.sweep.cells` — ready cell functions (imports torch, so not imported here).
"""

from unfoldtheory.sweep.grid import Grid, cell_key
from unfoldtheory.sweep.runner import SweepError, call_cell, executor_for, function_name, run_sweep
from unfoldtheory.sweep.store import ResultStore, StoreWarning

__all__ = ["Grid", "ResultStore", "StoreWarning", "SweepError", "call_cell", "cell_key", "executor_for", "function_name",
           "run_sweep"]
