"""Host bookkeeping on one intra-op thread.

Policies draw plans, group them by op and (AugNet) run a tiny policy net on the host: tensors of tens to a few
thousand elements. Some CPU kernels (softmax among them) split even those across every intra-op thread, and the
fork and join then cost more than the work, most of all when the other threads are asleep or their cores busy:
profiled on a 16-core GPU host, a softmax of AugNet's update took 0.75 ms on average; on a busy 2-core CPU one
thread ran it 10x faster than two. Running these blocks on one thread made AugNet's H200 training step 11% faster
and halved its CPU time at 2 threads (BENCHMARKS.md, fourteenth session). The model's own CPU work (its step,
AugNet's probe forward) keeps the loop's thread count.

A switch is not free where there are many threads (torch rebuilds a thread pool: about 0.16 ms at 16, well under
1 us at 2), so the blocks are coarse: one per chunk of plan draws, per plan's grouping, per observed step and per
AugNet round.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one intra-op thread, then restore the caller's count; inside a block, a nested one
    changes nothing."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
