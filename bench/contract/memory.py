"""Keep freed memory inside the process (glibc), so forward passes keep their speed.

glibc hands freed heap memory back to the OS once the free top of the heap exceeds
M_TRIM_THRESHOLD, and serves allocations above a moving M_MMAP_THRESHOLD with fresh mmaps;
either way the next batch's activations are page-faulted in again. Measured on the 2-core
machine (load the CNN checkpoint, time 4,096 rows, train another CNN for an epoch in the same
process, time again): after training, the default CNN's forward fell from ~10k to 5.7k rows/s
with 782k minor page faults per 4,096 rows; with both thresholds pinned it stays at ~9.3k
rows/s with 0 faults, and resnet_cbam at batch 256 goes from 1.8k to 2.7k rows/s. The cost is
that up to `trim_mib` of freed memory stays mapped in the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory(trim_mib: int = 1024, mmap_mib: int = 32) -> bool:
    """Pin glibc's trim threshold to `trim_mib` and mmap threshold to `mmap_mib` (its maximum).

    Returns True when both were set; False (and nothing changed) off glibc (macOS, Windows,
    musl), where the allocator behaves differently.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, trim_mib << 20)) and bool(mallopt(M_MMAP_THRESHOLD, mmap_mib << 20))
