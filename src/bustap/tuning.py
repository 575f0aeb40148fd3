"""Process-wide settings for the hot path, for the CLI and its worker processes."""

from __future__ import annotations

import gc
import sys


def tune_malloc() -> None:
    """Keep freed heap for reuse instead of returning it to the kernel after
    every batch: with glibc's default trim threshold a capture spent a fifth
    of its time in brk() and page faults (strace -c, time: 1.2 s of system
    time per 200k messages, 0.2 s after). Memory stays bounded by the queues."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
        libc.mallopt(m_trim_threshold, 128 << 20)
        libc.mallopt(m_top_pad, 32 << 20)
        libc.mallopt(m_mmap_threshold, 32 << 20)
    except (OSError, AttributeError):
        pass  # not glibc (musl): nothing to tune


def tune_gc() -> None:
    """Records are acyclic dicts freed by reference counting; the cyclic
    collector only costs time on the hot path (measured in bench/: decoding
    allocates many small dicts, and the default gen-0 threshold of 700 ran a
    collection every few messages). Objects alive at start-up are frozen out
    of its reach."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
