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


# input values (B x C x H x W, B x T) augmented in one call at most: the look-ahead pays where kernels are
# launch-bound (small inputs) and would only hold memory for large ones; 16 CIFAR-10 batches of 64 are 3.1M
AUGMENT_BUDGET = 4 * 2**20


class Task(ABC):
    name: str
    num_classes: int  # classes (or tags) the loss scale refers to
    # RandAugment, TrivialAugment and AugNet run on top of base_policy (crop+flip); False: over the op space alone
    stack_base: bool = True
    modality: str = "image"  # the data its ops run on (OpSpec.modality); AugNet's defaults resolve by it
    # consecutive batches' inputs concatenate along dim 0 and ``augment`` treats samples independently, so
    # ``augment_batches`` may run several batches in one call (not where augmentation moves the targets: NER)
    stacks_batches = False
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
        """``augment_batch`` for several consecutive batches, each with its own plan. Where ``stacks_batches``,
        the batches' inputs are concatenated and ``augment`` runs once under the stacked plans, as many batches
        per call as fit in ``AUGMENT_BUDGET`` values: at batch 64 the kernels are launch-bound, and one call on 16
        batches costs about what one did (BENCHMARKS.md)."""
        out: list[Batch] = []
        start = 0
        while start < len(batches):
            end, values = start + 1, batches[start][0][0].numel()
            while (self.stacks_batches and end < len(batches)
                   and values + batches[end][0][0].numel() <= AUGMENT_BUDGET):
                values += batches[end][0][0].numel()
                end += 1
            group, group_plans = batches[start:end], plans[start:end]
            stacked = AugPlan.stack(group_plans) if len(group) > 1 else None
            if stacked is None or any(x.shape[1:] != y.shape[1:] for inputs, _ in group
                                      for x, y in zip(inputs, group[0][0])):
                out += [self.augment_batch(inputs, targets, plan)
                        for (inputs, targets), plan in zip(group, group_plans)]
            else:
                augmented = self.augment(tuple(torch.cat(parts) for parts in zip(*(inputs for inputs, _ in group))),
                                         stacked)
                sizes = [targets.shape[0] for _, targets in group]
                pieces = list(zip(*(t.split(sizes) for t in augmented)))
                out += [(tuple(piece), targets) for piece, (_, targets) in zip(pieces, group)]
            start = end
        return out

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
