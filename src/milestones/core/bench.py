"""Benchmark helpers for `milestones bench`: best-of-n timing and this machine's fp32 matmul peak.

A paper with something worth timing has a `bench.py` beside its model, with
`benchmark(quick: bool = False) -> list[dict]`; each row is
{"case": str, "ours": float, "reference": float, "reference_name": str, "unit": str, "slowdown": float},
where `slowdown` is our time divided by the reference's (1.0: as fast; 2.0: twice as slow).
Benchmarks are reported, not asserted: timings depend on the machine and on what else it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of `repeats` calls, in seconds, after one warm-up call."""
    return best_times([fn], repeats)[0]


def best_times(fns: list[Callable[[], object]], repeats: int = 5) -> list[float]:
    """The fastest of `repeats` calls of each function, in seconds, after one warm-up call each. The
    functions take turns, so a change in the machine's load (another process, the clock) falls on
    all of them alike."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [min(record) for record in times]


def matmul_peak_flops(size: int = 1024, repeats: int = 5) -> float:
    """Achieved fp32 FLOP/s of one large square matmul: the ceiling a model's FLOP/s is compared to."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size ** 3 / best_time(lambda: a @ b, repeats)
