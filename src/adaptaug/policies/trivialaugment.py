"""TrivialAugment-wide (Müller & Hutter, ICCV 2021): one op per sample, uniform op, uniform level.

No parameters to tune; the level is one of 31 bins drawn uniformly over the op's *wide* range, the sign is
random. The strongest simple baseline a learned policy has to beat.
"""
from __future__ import annotations

import torch

from adaptaug.augment import AugPlan
from adaptaug.ops.space import OpSpace
from adaptaug.policies.base import NUM_MAGNITUDE_BINS, Policy, draw_seed, make_plan, random_signs


class TrivialAugment(Policy):
    name = "trivialaugment"

    def __init__(self, space: OpSpace, generator: torch.Generator | None = None, base: Policy | None = None,
                 wide: bool = True) -> None:
        super().__init__(generator, base)
        self.space, self.wide = space, wide

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        op_idx = torch.randint(0, len(self.space), (batch_size, 1), generator=self.generator)
        bins = torch.randint(0, NUM_MAGNITUDE_BINS, (batch_size, 1), generator=self.generator)
        levels = bins.float() / (NUM_MAGNITUDE_BINS - 1)
        signs = random_signs((batch_size, 1), self.generator)
        return make_plan(self.space, op_idx, levels, signs, seed=draw_seed(self.generator), wide=self.wide)

    def extra_repr(self) -> str:
        return f"ops={len(self.space)}, wide={self.wide}"
