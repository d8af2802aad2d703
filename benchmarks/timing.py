"""Shared by the benchmark scripts: median wall times of callables, CUDA-synchronised."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` after one warm-up call; waits for the GPU around each."""
    return timed_together([fn], device, repeats)[0]


def timed_together(fns: list[Callable[[], object]], device: torch.device, repeats: int) -> list[float]:
    """Median seconds of each callable over ``repeats`` rounds that call every one of them in turn, after one
    warm-up round: a slow spell of a shared machine then falls on all of them alike, so their ratio holds
    better than when each is timed in its own stretch of time."""
    for fn in fns:
        fn()  # warm-up
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, times in zip(fns, samples):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in samples]
