"""What every policy is: something that turns a batch size into an ``AugPlan``.

Fixed policies ignore feedback; AugNet reads it in ``observe``. Randomness comes only from the policy's own
``torch.Generator`` (given at construction), so a seeded run samples the same plans every time.
"""
from __future__ import annotations

from typing import Any

import torch

from adaptaug.augment import NO_OP, AugPlan
from adaptaug.host_threads import one_thread
from adaptaug.io import CsvText
from adaptaug.ops.space import OpSpace

# RandAugment and TrivialAugment quantise the level into 31 bins (torchvision's num_magnitude_bins).
NUM_MAGNITUDE_BINS = 31


def make_plan(space: OpSpace, op_idx: torch.Tensor, levels: torch.Tensor, signs: torch.Tensor,
              seed: int, wide: bool = False) -> AugPlan:
    """Build a plan from per-sample op indices (B, S) into ``space``, levels in [0, 1] and signs (+-1)."""
    low, span, signed = space.magnitude_table(wide)
    k = op_idx.long().clamp(min=0)  # NO_OP slots are zeroed below
    # the arithmetic of OpSpec.magnitude, in the levels' dtype, for every sample at once
    mags = low.to(levels.dtype)[k] + levels * span.to(levels.dtype)[k]
    mags = torch.where(signed[k], mags * signs, mags)
    mags = torch.where(op_idx >= 0, mags, torch.zeros((), dtype=mags.dtype))
    return AugPlan(ops=space.names, op_ids=op_idx.long(), magnitudes=mags.float(), seed=seed)


def draw_seed(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator).item())


def random_signs(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=generator).float() * 2 - 1


class Policy:
    """Base class. Subclasses implement ``_sample(batch_size, sample_ids)`` (their own slots; ``sample`` puts the
    ``base`` policy's slots first); learning policies also ``observe`` feedback."""

    name = "policy"
    learns = False

    def __init__(self, generator: torch.Generator | None = None, base: "Policy | None" = None) -> None:
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.base = base  # e.g. crop+flip applied before the policy's own ops, as the papers do
        self.trace: list[dict[str, float]] = []  # what the policy logs as it goes (AugNet: a row per round)
        self._trace_text = CsvText()

    def trace_csv(self) -> str:
        """The trace as CSV text, for trace.csv and checkpoints alike: rows are only appended, so only the rows
        logged since the last call get formatted (io.CsvText)."""
        return self._trace_text.of(self.trace)

    def sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        """A plan for the next batch. ``sample_ids`` (B,): the samples' positions in the training split, for
        policies that decide per sample from what they saw of each sample (AugNet's ``per_sample``); the
        others ignore it."""
        with one_thread():  # tiny host tensors (host_threads)
            own = self._sample(batch_size, sample_ids)
            if self.base is None:
                return own
            return AugPlan.concat(self.base.sample(batch_size), own)

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        raise NotImplementedError

    def plans_ahead(self) -> int | None:
        """How many batches' plans may be drawn now before the first of them is observed (the trainer draws
        plans ahead to augment several batches at once). None: any number, since fixed policies' plans do not
        depend on feedback."""
        return None

    def observe(self, **feedback: Any) -> None:
        """Feedback after the model step (fixed policies ignore it)."""

    def shared_tensors(self) -> list[torch.Tensor]:
        """What a learning policy's samples are drawn from, for data-parallel training to copy from rank 0
        to the others in place (:mod:`adaptaug.distributed`). Fixed policies share nothing."""
        return []

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"generator": self.generator.get_state()}
        if self.base is not None:
            state["base"] = self.base.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        if self.base is not None:
            self.base.load_state_dict(state["base"])

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        parts = [p for p in (self.extra_repr(), f"base={self.base!r}" if self.base is not None else "") if p]
        return f"{type(self).__name__}({', '.join(parts)})"


def empty_plan(batch_size: int) -> AugPlan:
    return AugPlan(ops=("Identity",), op_ids=torch.full((batch_size, 0), NO_OP, dtype=torch.long),
                   magnitudes=torch.zeros(batch_size, 0), seed=0)
