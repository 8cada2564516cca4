"""Run a function over every cell of a grid, storing each result as soon as it is finished.

``run_sweep(function, grid, store, executor)`` calls ``function(**cell)`` for every cell that the
store does not hold yet, through any :class:`concurrent.futures.Executor`:

* ``None`` (or ``"serial"``): in this process, one cell after another;
* an ``Executor`` you made (a process pool, a Dask ``client.get_executor()``): used, not shut down;
* a ``distributed.Client``: its ``get_executor(pure=False)``;
* a string: :func:`executor_for` makes one for the sweep and closes it afterwards (``"processes"``,
  ``"local-dask"``, or a Dask scheduler address ``"tcp://HOST:PORT"``).

Results are written by the process that calls ``run_sweep`` (the client, for Dask), so workers need
no shared file system. A killed or interrupted sweep, rerun with the same store, skips every
finished cell and runs only the rest.

Failures: a cell whose function raises is *not* recorded. The sweep keeps going, records every
other cell, and then raises :class:`SweepError` naming the failed cells (chained to the first
exception); rerunning retries just those.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from tqdm.auto import tqdm

from unfoldtheory.sweep.grid import Cell, cell_key
from unfoldtheory.sweep.store import ResultStore
from unfoldtheory.validation import positive_int

SCHEDULERS = ("processes", "serial", "local-dask", "tcp://HOST:PORT (or any Dask scheduler address)")


class SweepError(RuntimeError):
    """Some cells raised; ``failures`` maps each failed cell's key to ``(cell, exception)``."""

    def __init__(self, failures: dict[str, tuple[Cell, BaseException]]) -> None:
        self.failures = failures
        shown = [f"  {cell}: {type(exc).__name__}: {exc}" for cell, exc in list(failures.values())[:10]]
        more = [f"  ... and {len(failures) - 10} more"] if len(failures) > 10 else []
        super().__init__(f"{len(failures)} cell(s) failed and were not recorded (run the sweep again to retry them):\n"
                         + "\n".join(shown + more))


def function_name(function: Callable[..., Any]) -> str:
    """``module.qualname`` of a cell function (a ``functools.partial`` also names its bound arguments)."""
    if isinstance(function, functools.partial):
        bound = [repr(a) for a in function.args] + [f"{k}={v!r}" for k, v in sorted(function.keywords.items())]
        return f"{function_name(function.func)}({', '.join(bound)})"
    module = getattr(function, "__module__", None) or "?"
    qualname = getattr(function, "__qualname__", None) or type(function).__qualname__
    return f"{module}.{qualname}"


def call_cell(function: Callable[..., Any], cell: Mapping[str, Any]) -> tuple[Any, float, str]:
    """``function(**cell)`` with its wall time and the worker (``host:pid``) that ran it."""
    start = time.perf_counter()
    result = function(**cell)
    return result, time.perf_counter() - start, f"{socket.gethostname()}:{os.getpid()}"


def _dask() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("Dask sweeps need dask.distributed: pip install 'unfoldtheory[cluster]'") from exc
    return distributed


@contextmanager
def _closing(executor: Executor) -> Iterator[Executor]:
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


@contextmanager
def _dask_executor(address: str | None, workers: int) -> Iterator[Executor]:
    distributed = _dask()
    cluster = None
    if address is None:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None)
        address = cluster.scheduler_address
    try:
        with distributed.Client(address) as client:
            yield client.get_executor(pure=False)
    finally:
        if cluster is not None:
            cluster.close()


def executor_for(scheduler: str | None = None, workers: int | None = None) -> AbstractContextManager[Executor | None]:
    """A context manager giving the executor that command-line ``--scheduler`` / ``--workers`` ask for.

    * ``None`` or ``"processes"``: a ``ProcessPoolExecutor`` of ``workers`` processes (spawned,
      so a parent's torch threads never leak into them);
    * ``"serial"``: ``None``, which :func:`run_sweep` runs in this process;
    * ``"local-dask"``: a Dask ``LocalCluster`` of ``workers`` one-thread worker processes;
    * ``"tcp://HOST:PORT"`` (any ``scheme://`` address): the Dask scheduler there, through
      ``distributed.Client(address).get_executor(pure=False)``.

    ``workers`` defaults to the number of CPUs; the cluster, client or pool is closed on exit.
    """
    workers = (os.cpu_count() or 1) if workers is None else positive_int(workers, "workers")
    if scheduler is None or scheduler == "processes":
        return _closing(ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
    if scheduler == "serial":
        return nullcontext(None)
    if scheduler == "local-dask":
        return _dask_executor(None, workers)
    if isinstance(scheduler, str) and "://" in scheduler:
        return _dask_executor(scheduler, workers)
    raise ValueError(f"scheduler {scheduler!r} is not known; use one of {SCHEDULERS}")


def _executor(executor: Any) -> AbstractContextManager[Executor | None]:
    if executor is None or isinstance(executor, Executor):
        return nullcontext(executor)
    if isinstance(executor, str):
        return executor_for(executor)
    if hasattr(executor, "get_executor"):  # a distributed.Client
        return nullcontext(executor.get_executor(pure=False))
    raise ValueError(f"executor must be None, a concurrent.futures.Executor, a distributed.Client or one of "
                     f"{SCHEDULERS}; got {type(executor).__name__}")


def _check_finished(store: ResultStore, name: str, key: str, cell: Cell) -> None:
    record = store.load(key)
    if record["function"] != name:
        raise ValueError(f"{store.path(key)} holds a result of {record['function']}, but this sweep runs {name}; "
                         "use another results folder (or remove those files)")
    if record["cell"] != cell:
        raise ValueError(f"{store.path(key)} holds cell {record['cell']}, not {cell}")


def run_sweep(function: Callable[..., Any], grid: Iterable[Mapping[str, Any]], store: ResultStore | str | os.PathLike[str],
              executor: Any = None, progress: bool | None = None) -> list[dict[str, Any]]:
    """Run ``function(**cell)`` for every cell of ``grid`` not yet in ``store``; return all records in grid order.

    Each record (see :mod:`unfoldtheory.sweep.store`) is written the moment its cell finishes.
    ``function`` must be picklable (a module-level function) for process pools and Dask, and
    return something JSON-serialisable. A cell that raises is not recorded; after all other
    cells finished, :class:`SweepError` names the failures. ``progress``: tqdm bar (``None``:
    only on a terminal).
    """
    if not callable(function):
        raise ValueError(f"function must be callable; got {type(function).__name__}")
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    name = function_name(function)
    cells = [{str(k): v for k, v in cell.items()} for cell in grid]
    keys = [cell_key(cell) for cell in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("the grid lists a cell twice")
    finished = store.done()
    for key, cell in zip(keys, cells, strict=True):
        if key in finished:
            _check_finished(store, name, key, cell)
    todo = [(key, cell) for key, cell in zip(keys, cells, strict=True) if key not in finished]
    records: dict[str, dict[str, Any]] = {}
    failures: dict[str, tuple[Cell, BaseException]] = {}
    bar = tqdm(total=len(cells), initial=len(cells) - len(todo), desc=f"sweep {getattr(function, '__name__', name)}",
               disable=None if progress is None else not progress)

    def finish(key: str, cell: Cell, outcome: Callable[[], tuple[Any, float, str]]) -> None:
        try:
            result, seconds, worker = outcome()
            records[key] = store.save(key, name, cell, result, seconds, worker)
        except (Exception, CancelledError) as exc:
            failures[key] = (cell, exc)
            bar.set_postfix(failed=len(failures))
        bar.update(1)

    with _executor(executor) as pool:
        if pool is None:
            for key, cell in todo:
                finish(key, cell, functools.partial(call_cell, function, cell))
        else:
            futures: dict[Future[Any], tuple[str, Cell]] = {pool.submit(call_cell, function, c): (k, c) for k, c in todo}
            try:
                for future in as_completed(futures):
                    finish(*futures[future], future.result)
            finally:
                for future in futures:
                    future.cancel()
    bar.close()
    if failures:
        raise SweepError(failures) from next(iter(failures.values()))[1]
    return [records[key] if key in records else store.load(key) for key in keys]
