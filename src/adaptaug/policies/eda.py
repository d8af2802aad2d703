"""EDA, the standard text augmentation (Wei & Zou, "EDA: Easy Data Augmentation Techniques for Boosting
Performance on Text Classification Tasks", EMNLP 2019): synonym replacement, random insertion, random swap and
random deletion at one fixed rate alpha (the paper's recommended alpha = 0.1).

The paper writes several augmented copies of each sentence offline; in an online loop the same recipe is one
random EDA op per sample at magnitude alpha (``ceil(alpha x length)`` tokens touched, see ``adaptaug.ops.text``).
"""
from __future__ import annotations

from typing import Sequence

import torch

from adaptaug.augment import AugPlan
from adaptaug.errors import ConfigError
from adaptaug.ops.space import OpSpace
from adaptaug.ops.text import EDA_OPS
from adaptaug.policies.base import Policy, draw_seed


class EDAPolicy(Policy):
    name = "standard"

    def __init__(self, space: OpSpace | Sequence[str] = EDA_OPS, rate: float = 0.1,
                 generator: torch.Generator | None = None) -> None:
        if not 0 <= rate <= 1:
            raise ConfigError(f"EDA rate must be in [0, 1], got {rate}")
        names = space.names if isinstance(space, OpSpace) else tuple(space)
        ops = tuple(op for op in EDA_OPS if op in names)  # SynonymReplacement is absent without synonyms
        if not ops:
            raise ConfigError(f"EDA needs at least one of {EDA_OPS} in the op space, got {names}")
        super().__init__(generator)
        self.ops, self.rate = ops, float(rate)

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        op_ids = torch.randint(0, len(self.ops), (batch_size, 1), generator=self.generator)  # (B, 1) one op each
        return AugPlan(self.ops, op_ids, torch.full((batch_size, 1), self.rate), seed=draw_seed(self.generator))

    def extra_repr(self) -> str:
        return f"rate={self.rate}, ops={len(self.ops)}"
