"""Fixed baselines: no augmentation, and the seed's standard crop+flip.

``StandardAugment`` is the usual CIFAR recipe (He et al. 2016): pad 4 pixels with reflection, crop back at a
random offset, flip horizontally with probability 0.5. The pad scales with the image (4 px per 32 px) so
8x8 digits are shifted by at most 1 px; flips are off for digits (not mirror-symmetric).
"""
from __future__ import annotations

import torch

from adaptaug.augment import NO_OP, AugPlan
from adaptaug.policies.base import Policy, draw_seed, empty_plan


class NoAugment(Policy):
    name = "none"

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        return empty_plan(batch_size)


def crop_pad_for(image_size: int) -> int:
    """4 px of padding per 32 px of image, at least 1 (the CIFAR recipe, scaled)."""
    return max(1, round(image_size * 4 / 32))


class StandardAugment(Policy):
    name = "standard"

    def __init__(self, pad: int = 4, flip: bool = True, generator: torch.Generator | None = None) -> None:
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        super().__init__(generator)
        self.pad, self.flip = pad, flip

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        crop = torch.zeros(batch_size, 1, dtype=torch.long)  # slot 0: CropPad (op 0) for every sample
        crop_mag = torch.full((batch_size, 1), float(self.pad))
        if not self.flip:
            return AugPlan(("CropPad",), crop, crop_mag, seed=draw_seed(self.generator))
        coin = torch.rand(batch_size, 1, generator=self.generator) < 0.5
        flip = torch.where(coin, torch.ones_like(crop), torch.full_like(crop, NO_OP))  # slot 1: FlipLR (op 1)
        return AugPlan(("CropPad", "FlipLR"), torch.cat([crop, flip], 1),
                       torch.cat([crop_mag, torch.zeros(batch_size, 1)], 1), seed=draw_seed(self.generator))

    def extra_repr(self) -> str:
        return f"pad={self.pad}, flip={self.flip}"
