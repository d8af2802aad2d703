"""Evaluation: loss, accuracy, F1 and runtime in the dict shape users know from HF Trainer."""
from __future__ import annotations

import time

import torch
from torch import nn

from adaptaug.tasks.base import Task


@torch.no_grad()
def evaluate(model: nn.Module, task: Task, split: str = "test", batch_size: int = 256,
             prefix: str = "eval") -> dict[str, float]:
    """``{prefix}_loss, _accuracy, _f1, _runtime, _samples_per_second, _steps_per_second`` on ``split``."""
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    logits_all, targets_all, loss_sum, steps = [], [], 0.0, 0
    try:
        for inputs, targets in task.batches(split, batch_size):
            logits = model(*inputs)
            loss_sum = loss_sum + task.loss_fn(logits, targets).sum()
            logits_all.append(logits)
            targets_all.append(targets)
            steps += 1
    finally:
        model.train(was_training)
    n = task.size(split)
    metrics = task.metrics(logits_all, targets_all)
    runtime = time.perf_counter() - start
    out = {f"{prefix}_loss": float(loss_sum) / max(n, 1)}
    out.update({f"{prefix}_{k}": v for k, v in metrics.items()})
    out.update({
        f"{prefix}_runtime": round(runtime, 4),
        f"{prefix}_samples_per_second": round(n / runtime, 3) if runtime > 0 else 0.0,
        f"{prefix}_steps_per_second": round(steps / runtime, 3) if runtime > 0 else 0.0,
    })
    return out
