"""Keep freed memory inside the process (glibc on Linux), so that each training step reuses the last
step's activation buffers instead of mapping fresh pages from the kernel.

glibc serves blocks above its mmap threshold (128 KiB at start, raised adaptively up to 32 MiB) with
``mmap`` and unmaps them on ``free``, and it trims the heap top back to the kernel above 128 KiB. A
detector's activations are 1-40 MiB tensors allocated and freed every step, so every step page-faults
them in again. On a 2-core CPU this alone took a MobileNetV1-0.5 YOLO v1 step (bf16, inside the Runner,
``benchmarks/profile_train_step.py``) from 256 to 220 ms, and its system time from 4.2 to 0.6 s per 40
steps.
"""
import ctypes
import ctypes.util
import platform

# mallopt parameter numbers from glibc's malloc.h.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Set glibc's mmap threshold and trim threshold to ``limit_bytes``: blocks below it come from the
    heap and freed memory stays there for reuse (the process keeps its peak footprint). Returns False,
    changing nothing, where the C library is not glibc (macOS, Windows, musl)."""
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
    # The mmap threshold first: fixing the trim threshold alone freezes the mmap one at 128 KiB.
    return bool(libc.mallopt(M_MMAP_THRESHOLD, limit_bytes) and libc.mallopt(M_TRIM_THRESHOLD, limit_bytes))
