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
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak_flops(size: int = 1024, repeats: int = 5) -> float:
    """Achieved fp32 FLOP/s of one large square matmul: the ceiling a model's FLOP/s is compared to."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size ** 3 / best_time(lambda: a @ b, repeats)
