"""What a task plugs into the one training loop: data, a model, an op space, a loss and metrics."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterator

import torch
from torch import nn

from adaptaug.augment import AugPlan
from adaptaug.distributed import DistContext, shard
from adaptaug.ops.space import OpSpace
from adaptaug.transfer import to_device

Inputs = tuple[torch.Tensor, ...]  # what the model takes: model(*inputs)
Batch = tuple[Inputs, torch.Tensor]  # (inputs, targets)


class Task(ABC):
    name: str
    num_classes: int  # classes (or tags) the loss scale refers to
    op_space: OpSpace  # ops AugNet, RandAugment and TrivialAugment choose among
    splits = ("train", "val", "test")

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A fresh primary model; its last linear layer is ``model.classifier``."""

    @abstractmethod
    def base_policy(self, generator: torch.Generator) -> Any:
        """The standard fixed augmentation (crop+flip for images, EDA for text), or a NoAugment."""

    @abstractmethod
    def size(self, split: str) -> int: ...

    def batches(self, split: str, batch_size: int, generator: torch.Generator | None = None,
                ctx: DistContext | None = None, with_index: bool = False
                ) -> Iterator[Batch | tuple[Inputs, torch.Tensor, torch.Tensor]]:
        """Batches on ``self.device``; shuffled when a generator is given, in order otherwise. With a
        data-parallel ``ctx``, this rank's shard of the permutation (see :func:`adaptaug.distributed.shard`).
        ``with_index``: (inputs, targets, index) with the samples' positions in the split, on the host (for
        policies that decide per sample)."""
        n = self.size(split)
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        if ctx is not None:
            order = shard(order, ctx)
            n = order.shape[0]
        on_device = to_device(order, self.device)  # once per epoch: each batch's index is a slice on the device
        for start in range(0, n, batch_size):
            batch = self.gather(split, on_device[start:start + batch_size])
            yield (*batch, order[start:start + batch_size]) if with_index else batch

    @abstractmethod
    def augment(self, inputs: Inputs, plan: AugPlan) -> Inputs: ...

    def augment_batch(self, inputs: Inputs, targets: torch.Tensor, plan: AugPlan) -> Batch:
        """Augmented (inputs, targets): the training loop calls this. Targets pass through unchanged unless
        the ops move labels with the data (NER mention replacement re-spans tags and changes lengths)."""
        return self.augment(inputs, plan), targets

    def augment_batches(self, batches: list[tuple[Inputs, torch.Tensor]], plans: list[AugPlan]) -> list[Batch]:
        """``augment_batch`` for several batches, each with its own plan. Tasks whose batches concatenate
        (images) override this to run the kernels once for all of them: at batch 64 the kernels are
        launch-bound, and one call on 16 batches costs about what one did (BENCHMARKS.md)."""
        return [self.augment_batch(inputs, targets, plan) for (inputs, targets), plan in zip(batches, plans)]

    @abstractmethod
    def loss_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample loss (B,)."""

    @abstractmethod
    def accuracy_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-sample accuracy (B,) in [0, 1]."""

    @abstractmethod
    def metrics(self, logits: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, float]:
        """Split-level metrics from all batches: at least ``accuracy`` and ``f1``."""

    def probe(self, size: int, generator: torch.Generator) -> Batch:
        """A fixed seeded sample of the validation split for AugNet's probe (never the test split)."""
        n = self.size("val")
        index = torch.randperm(n, generator=generator)[: min(size, n)]
        return self.gather("val", index)

    @abstractmethod
    def gather(self, split: str, index: torch.Tensor) -> Batch: ...

    def to(self, device: torch.device) -> "Task":
        self.device = device
        return self

    def save_assets(self, run_dir: Any) -> None:
        """Write to ``run_dir`` what evaluating the trained model later needs besides ``model.pt`` and
        ``config.json``: class names, vocabulary, tag set (see :mod:`adaptaug.evaluate_run`). Default: nothing."""

    def describe(self) -> dict[str, Any]:
        return {"task": self.name, "num_classes": self.num_classes, "ops": list(self.op_space.names),
                **{f"num_{s}": self.size(s) for s in self.splits}}
