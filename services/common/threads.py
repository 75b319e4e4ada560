"""Caps the BLAS thread pool (OpenBLAS under numpy and scipy) of a serving process."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def limit_blas_threads(threads: int) -> threadpool_limits | None:
    """Limits every BLAS library loaded in this process to `threads` threads until the returned
    limiter's `restore_original_limits()`; 0 changes nothing and returns None.

    A request multiplies small matrices (a few queries against a few thousand vectors), where a BLAS
    pool costs more than it gains: its threads spin-wait between products and, measured on the stack
    suite, doubled each process's CPU per request. Serving scales with processes and replicas instead,
    so each process keeps one BLAS thread by default (WREN_BLAS_THREADS).
    """
    if threads <= 0:
        return None
    return threadpool_limits(limits=threads, user_api="blas")
