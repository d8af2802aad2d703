"""Data-parallel training across processes: ``torchrun --nproc_per_node N -m adaptaug train ...``.

What changes when ``WORLD_SIZE`` > 1 (set by torchrun):
- the model is wrapped in ``DistributedDataParallel`` (NCCL on CUDA, gloo on the CPU);
- every epoch, all ranks draw the same permutation and rank ``r`` takes every ``N``-th sample from ``r``,
  so each global batch is ``N x batch_size`` samples (the learning rate is not rescaled);
- AugNet: rank 0 decides. Only rank 0 feeds AugNet (its shard's losses, its validation probe) and updates
  it; after every AugNet round rank 0 broadcasts the op and magnitude distributions, so every rank samples
  its own images' ops from the same distribution. One learner keeps AugNet's cost off the other ranks and
  needs no agreement on rewards; its feedback is one shard of the batch, which is what AugNet already sees
  on one process.
- validation runs on every rank (the models are identical, so early stopping agrees without messages);
  only rank 0 writes files and runs the robustness evaluation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from adaptaug.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this context started the process group, so it ends it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device: torch.device) -> DistContext:
    """Join the process group torchrun describes in the environment; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, owns_group=owns)


def shard(order: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Rank ``ctx.rank``'s share of a permutation every rank drew alike. The tail that does not divide by
    the world size is left out, so every rank takes the same number of steps (DDP needs that)."""
    if not ctx.enabled:
        return order
    usable = order.shape[0] // ctx.world_size * ctx.world_size
    return order[ctx.rank:usable:ctx.world_size]


def all_reduce_sum(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum of ``value`` over ranks (``value`` itself on one process)."""
    if ctx.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def broadcast_(tensors: list[torch.Tensor], ctx: DistContext, device: torch.device) -> None:
    """Overwrite ``tensors`` in place with rank 0's values. NCCL only moves CUDA tensors, hence ``device``."""
    if not ctx.enabled:
        return
    for t in tensors:
        moved = t.to(device)
        dist.broadcast(moved, src=0)
        t.copy_(moved)


def finish(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
