"""Image classification (digits, MNIST, CIFAR-10, any image folder) with the seed CNN.

The whole uint8 data set sits on the training device and batches are gathered by index: no DataLoader
workers, and the same code path on the CPU and the GPU. Images become float in [0, 1] only per batch;
the model normalises inside.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from adaptaug.augment import AugPlan, apply_plan
from adaptaug.data import ImageSplits
from adaptaug.models import SeedCNN
from adaptaug.ops.image import RANDAUGMENT_OPS
from adaptaug.ops.space import OpSpace
from adaptaug.policies.fixed import StandardAugment, crop_pad_for
from adaptaug.tasks.base import Batch, Inputs, Task

MIRROR_SAFE = {"cifar10": True, "mnist": False, "digits": False}  # digits are not mirror-symmetric


class ImageTask(Task):
    stacks_batches = True  # apply_plan treats samples independently

    def __init__(self, splits: ImageSplits, flips: bool | None = None) -> None:
        self.data = splits
        self.name = splits.name
        self.num_classes = len(splits.train.classes)
        self.flips = MIRROR_SAFE.get(splits.name, True) if flips is None else flips
        self.image_shape = tuple(splits.train.images.shape[1:])
        # Color is the identity on one channel: keep it out so no op is counted twice
        self.op_space = OpSpace.of([op for op in RANDAUGMENT_OPS if not (op == "Color" and self.image_shape[0] == 1)])
        self.device = torch.device("cpu")
        self._tensors = {s: (getattr(splits, s).images, getattr(splits, s).labels) for s in self.splits}

    def to(self, device: torch.device) -> "ImageTask":
        self.device = torch.device(device)
        self._tensors = {s: (x.to(self.device), y.to(self.device)) for s, (x, y) in self._tensors.items()}
        return self

    def build_model(self) -> nn.Module:
        return SeedCNN(self.image_shape, self.num_classes, self.data.mean, self.data.std)

    def base_policy(self, generator: torch.Generator) -> StandardAugment:
        return StandardAugment(pad=crop_pad_for(self.image_shape[-1]), flip=self.flips, generator=generator)

    def size(self, split: str) -> int:
        return self._tensors[split][1].shape[0]

    def gather(self, split: str, index: torch.Tensor) -> Batch:
        images, labels = self._tensors[split]
        index = index.to(self.device)
        return (images[index].float().div_(255),), labels[index]

    def augment(self, inputs: Inputs, plan: AugPlan) -> Inputs:
        return (apply_plan(inputs[0], plan),)

    def loss_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, reduction="none")

    def accuracy_fn(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(-1) == targets).float()

    def save_assets(self, run_dir) -> None:
        from adaptaug.evaluate_run import write_assets
        write_assets(run_dir, {"kind": "image", "name": self.name, "classes": list(self.data.classes),
                               "image_shape": list(self.image_shape)})

    def metrics(self, logits: list[torch.Tensor], targets: list[torch.Tensor]) -> dict[str, float]:
        pred = torch.cat(logits).argmax(-1).cpu().numpy()
        true = torch.cat(targets).cpu().numpy()
        return {"accuracy": float((pred == true).mean()),
                "f1": float(f1_score(true, pred, average="macro", labels=list(range(self.num_classes)),
                                     zero_division=0))}
