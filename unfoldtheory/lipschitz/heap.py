"""The one process-wide setting this package makes: glibc's heap thresholds, fixed at glibc's own ceilings.

glibc's ``malloc`` serves a block above ``M_MMAP_THRESHOLD`` (128 KiB at start) by a fresh ``mmap`` and returns
the free top of the heap to the system once it exceeds ``M_TRIM_THRESHOLD``. Both thresholds adapt upwards by
themselves as large blocks are freed, up to 32 MiB and 64 MiB on 64-bit systems (``mallopt(3)``:
``DEFAULT_MMAP_THRESHOLD_MAX`` and twice it). Until they get there, every 180 × 180 temporary of an interior-point
iteration (260 KiB) can come back as freshly mapped pages, each faulted in and zeroed by the kernel: 1,400–3,000
minor page faults per structured LipSDP solve at (m, n, K) = (20, 40, 4), about 5 % of its time.

:func:`keep_freed_memory` sets the two thresholds to those ceilings, the values glibc itself adopts after
freeing one 32 MiB block, so that freed temporaries are reused instead of unmapped and mapped again. It is
called by :func:`unfoldtheory.lipschitz.structured_ipm.solve` (once per process; later calls do nothing). It
changes where memory comes from, never what is computed: every result is bit-for-bit the same. The cost is
that the process may keep up to 64 MiB of freed heap for reuse instead of returning it at once, as glibc already
does for a program that once freed a large block. On other C libraries it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

#: ``mallopt`` parameter numbers (glibc's ``malloc.h``)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: glibc's ceilings of its dynamic thresholds on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX`` and twice it)
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 64 << 20

_done: bool | None = None  # None: not tried yet; then whether glibc accepted both settings


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds to ``MMAP_THRESHOLD`` and ``TRIM_THRESHOLD`` (the first call only);
    whether they are set (False where the C library is not glibc or refuses)."""
    global _done
    if _done is None:
        _done = _set_thresholds()
    return _done


def _set_thresholds() -> bool:
    version = None
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no confstr, or no such name on this system
        version = os.confstr("CS_GNU_LIBC_VERSION")
    if not version or not version.startswith("glibc"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; the mmap threshold first, so that the trim threshold is never below it
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
