"""RandAugment (Cubuk et al., NeurIPS 2020): N ops drawn uniformly per sample, one global magnitude M.

Levels follow torchvision: M indexes 31 bins over the op's standard range (level = M / 30), the sign is
random per sample. Each sample draws its own ops (torchvision applies one draw to a whole batch).
"""
from __future__ import annotations

import torch

from adaptaug.augment import AugPlan
from adaptaug.ops.space import OpSpace
from adaptaug.policies.base import NUM_MAGNITUDE_BINS, Policy, draw_seed, make_plan, random_signs


class RandAugment(Policy):
    name = "randaugment"

    def __init__(self, space: OpSpace, n: int = 2, m: int = 9, generator: torch.Generator | None = None,
                 base: Policy | None = None) -> None:
        if n < 1:
            raise ValueError(f"RandAugment n must be >= 1, got {n}")
        if not 0 <= m < NUM_MAGNITUDE_BINS:
            raise ValueError(f"RandAugment m must be in [0, {NUM_MAGNITUDE_BINS - 1}], got {m}")
        super().__init__(generator, base)
        self.space, self.n, self.m = space, n, m

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        op_idx = torch.randint(0, len(self.space), (batch_size, self.n), generator=self.generator)
        levels = torch.full((batch_size, self.n), self.m / (NUM_MAGNITUDE_BINS - 1))
        signs = random_signs((batch_size, self.n), self.generator)
        return make_plan(self.space, op_idx, levels, signs, seed=draw_seed(self.generator))

    def extra_repr(self) -> str:
        return f"n={self.n}, m={self.m}, ops={len(self.space)}"
