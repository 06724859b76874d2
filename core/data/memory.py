"""Handing freed memory back to the operating system during long reads and writes.

Arrow's allocator (mimalloc or jemalloc) and glibc's malloc both keep memory that was freed, to reuse it. When a
prepare reads thousands of audio rows, each allocation is short-lived but the kept memory is not: measured on a
5,000-row parquet file (bench/memory.py), converting it to the Arrow cache left 210 MiB held by Arrow's pool, of
which `release_unused()` returned 140 MiB. Releasing every few hundred rows keeps a long prepare's memory at what
one batch needs, for a cost of about a millisecond per call.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

RELEASE_EVERY_ROWS = 500  # rows between releases (core/rows.decoded, which every prepare and training read uses)


def release_unused_memory() -> None:
    """Return the free memory Arrow's pool and glibc's malloc are holding to the operating system."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim():
    """glibc's malloc_trim, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


@contextmanager
def system_allocator_for_arrow() -> Iterator[None]:
    """Arrow allocates through the C library's malloc inside the block (then trimmed), not its own pool: the pool
    cannot be asked to let go while `datasets` converts a whole parquet file into its cache, and measured at 5,000
    rows it held 110 MiB more than malloc at the peak."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)
        release_unused_memory()
