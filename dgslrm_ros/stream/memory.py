"""Process memory: what the node reports about itself, and the release that keeps it flat.

Why this module exists (issue 16; figures in docs/benchmarks.md, "Soak"): each window allocates and
frees a few hundred MB of transient tensors (model activations, the Gaussians and their offsets
[N, T, 3], renders, track seeds), many of them a size that varies with the number of Gaussians kept.
glibc malloc serves blocks up to 32 MiB from its heaps once its dynamic mmap threshold has risen
(it does after the first large free), one heap per allocating thread (torch's OpenMP workers, the
worker, rclpy's threads). Freed, the blocks stay in the heaps; as sizes vary the free space
fragments and a heap grows whenever a new block fits no hole. Measured: resident memory up by tens
of MB a minute while the bytes in use stayed constant and the heaps' free space rose by exactly the
RSS growth (no Python object or tensor was being kept).

`release_after_window()` hands the heaps' free pages back to the kernel (glibc `malloc_trim`) once a
window is done, so resident memory between windows is what is in use plus what the next window
touches, whatever the fragmentation. Compared with the alternatives measured (a fixed mmap threshold
of 1 or 8 MiB with two heaps: also flat, but 4.6-9.5x the page faults per window of the glibc default
against 3x for this), it costs the fewest page faults; in time, 1.56 s per default CPU window instead
of 1.37 s (measured: the trim takes ~20 ms, re-faulting the working set the rest).
`DGSLRM_ALLOCATOR=glibc-default` turns it off (to measure the difference); elsewhere than glibc it does
nothing.

Everything reported here is cheap enough for a 1 Hz diagnostics timer: /proc/self/statm, glibc
`mallinfo2` (walks the free lists, well under a millisecond here) and `sys.getallocatedblocks()` for
the Python heap; tracemalloc's figures only when tracing was switched on (DGSLRM_TRACEMALLOC=1),
since tracing itself costs time and memory.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

ALLOCATOR_ENV = "DGSLRM_ALLOCATOR"  # "glibc-default": no release after each window (for measuring)
TRACEMALLOC_ENV = "DGSLRM_TRACEMALLOC"  # "1": trace Python allocations from start-up (diagnostics show them)
MIB = 1024.0 * 1024.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc() -> ctypes.CDLL | None:
    """glibc, or None (musl, macOS: the allocator figures are then reported as absent)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "gnu_get_libc_version"):
        return None
    return libc


_LIBC = _libc()
if _LIBC is not None and hasattr(_LIBC, "mallinfo2"):  # glibc >= 2.33
    _LIBC.mallinfo2.restype = _MallInfo2


def release_free_memory() -> bool:
    """Give the free pages of every malloc heap back to the kernel now (glibc malloc_trim).

    False where there is no glibc. Takes milliseconds; the pages are faulted in again when reused.
    """
    if _LIBC is None or not hasattr(_LIBC, "malloc_trim"):
        return False
    _LIBC.malloc_trim(ctypes.c_size_t(0))
    return True


def release_enabled() -> bool:
    """False when DGSLRM_ALLOCATOR=glibc-default asks for glibc's behaviour unchanged."""
    return os.environ.get(ALLOCATOR_ENV, "") != "glibc-default"


def release_after_window() -> bool:
    """What the pipeline calls once per window (see the module docstring); True if pages were released."""
    return release_enabled() and release_free_memory()


def process_rss_bytes(pid: int | None = None) -> int | None:
    """Resident set size of a process (default: this one) from /proc, None where there is no /proc."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as stream:
            resident_pages = int(stream.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def process_cpu_seconds(pid: int | None = None) -> float | None:
    """User + system CPU time a process has used so far (s), from /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid or 'self'}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, in ticks


def malloc_bytes() -> tuple[int, int, int] | None:
    """glibc heaps, all arenas: (in use, free but kept, mmapped blocks) in bytes; None if not glibc >= 2.33.

    RSS rising while `in use` stays flat and `free` rises with it is allocator retention, not a leak.
    """
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    info = _LIBC.mallinfo2()
    return int(info.uordblks), int(info.fordblks), int(info.hblkhd)


def start_tracemalloc_if_asked() -> bool:
    """Start tracemalloc when DGSLRM_TRACEMALLOC=1 (for hunting Python-side growth); True if tracing."""
    import tracemalloc

    if os.environ.get(TRACEMALLOC_ENV, "") == "1" and not tracemalloc.is_tracing():
        tracemalloc.start(1)
    return tracemalloc.is_tracing()


def memory_status() -> dict[str, float | int]:
    """This process's memory as flat diagnostics values (MiB, counts); keys absent where unknown."""
    out: dict[str, float | int] = {}
    rss = process_rss_bytes()
    if rss is not None:
        out["memory_rss_mb"] = rss / MIB
    heaps = malloc_bytes()
    if heaps is not None:
        out["memory_malloc_in_use_mb"] = heaps[0] / MIB
        out["memory_malloc_free_mb"] = heaps[1] / MIB
        out["memory_malloc_mmapped_mb"] = heaps[2] / MIB
    out["python_allocated_blocks"] = sys.getallocatedblocks()
    torch = sys.modules.get("torch")  # never imported here: only reported where the node already uses CUDA
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_allocated_mb"] = torch.cuda.memory_allocated() / MIB
        out["cuda_reserved_mb"] = torch.cuda.memory_reserved() / MIB
    if "tracemalloc" in sys.modules:
        import tracemalloc

        if tracemalloc.is_tracing():
            out["python_traced_mb"] = tracemalloc.get_traced_memory()[0] / MIB
    return out
