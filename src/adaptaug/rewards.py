"""Rewards AugNet learns from. Pluggable: a reward maps one round of feedback to a number per transition.

- ``alignment``: per sample, the dot product of that augmented sample's last-layer gradient with
  the validation probe's mean last-layer gradient: a first-order estimate of how much one step on it lowers
  the probe loss (Ren et al. 2018, "Learning to Reweight Examples"; GAR, Müller et al. 2021). Each sample's
  op and magnitude get their own credit, and it costs O(B x C x d).
- ``cosine`` (default): alignment divided by the sample's gradient norm, so credit goes to direction, not
  size. Chosen over ``alignment`` on validation accuracy (CIFAR-10 subset, docs/augnet.md).
- ``paired``: cosine minus the cosine of the same sample without AugNet's op (its clean input, eval mode):
  the clean term is a per-sample baseline that does not depend on the action, so what the sample's class and
  content put into its cosine cancels. Costs a clean forward per step.
- ``val-drop``: the drop of the probe loss across the round (the seed's idea); one number per round, noisy.
- ``adversarial``: augmented minus clean loss per sample, squashed with tanh (Zhang et al., Adversarial
  AutoAugment, ICLR 2020); pushes towards harder samples.
- ``mixed``: per step, standardised alignment plus half the standardised adversarial term: hard samples
  that still help the validation loss (the balance TeachAugment, Suzuki 2022, strikes with a teacher
  model). Costs a clean forward per step besides alignment's gradients.
Measured on an MNIST subset with a label-destroying op added (DESIGN.md): ``alignment`` drives that op's
probability to ~0.03 from 0.17 within ~500 steps, ``val-drop`` does not move it; hence a per-sample gradient
reward. Its direction-only form, ``cosine``, is the default: on a CIFAR-10 subset it kept AugNet from
concentrating on hard ops and beat ``alignment`` on validation accuracy (docs/augnet.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from adaptaug.errors import ConfigError


@dataclass
class StepRecord:
    """What one training step left for AugNet (all detached, on the model's device)."""

    op_idx: torch.Tensor  # (B, slots) AugNet's ops per sample
    bins: torch.Tensor  # (B, slots) magnitude bin of each
    grad_logits: torch.Tensor | None = None  # (N, C) d loss_i / d logits, N = B or B*T tokens
    features: torch.Tensor | None = None  # (N, d) input of the last linear layer
    sample_of_row: torch.Tensor | None = None  # (N,) which sample each row belongs to (tokens -> sentence)
    loss: torch.Tensor | None = None  # (B,) per-sample loss on the augmented input
    clean_loss: torch.Tensor | None = None  # (B,) per-sample loss on the clean input (adversarial only)
    # the clean input's last-layer rows in eval mode (paired only), like grad_logits, features, sample_of_row
    clean_grad_logits: torch.Tensor | None = None
    clean_features: torch.Tensor | None = None
    clean_sample_of_row: torch.Tensor | None = None
    sample_ids: torch.Tensor | None = None  # (B,) positions in the training split, host (per-sample AugNet)
    states: torch.Tensor | None = None  # (B, F) the state rows the plan was drawn from, host (per-sample AugNet)
    applied: torch.Tensor | None = None  # (B,) bool, host: which samples got the op (None: all; see warmup)


@dataclass
class RoundData:
    steps: list[StepRecord]
    probe_loss_before: float
    probe_loss_after: float
    probe_grad_logits: torch.Tensor | None = None  # (Nv, C)
    probe_features: torch.Tensor | None = None  # (Nv, d)
    extras: dict = field(default_factory=dict)


class Reward(Protocol):
    name: str
    per_sample: bool  # True: standardised within each step's batch; False: one number per round
    needs_gradients: bool
    needs_clean_loss: bool
    # optional (False when absent): the clean inputs' last-layer gradients and features, StepRecord.clean_*
    needs_clean_gradients: bool

    def __call__(self, round_data: RoundData) -> list[torch.Tensor] | torch.Tensor:
        """Per-sample rewards, one (B_step,) tensor per step (batches may differ in size), or a 0-dim
        tensor for a round-level reward."""


class AlignmentReward:
    name, per_sample, needs_gradients, needs_clean_loss = "alignment", True, True, False
    normalised = False  # CosineReward: divide by each row's gradient norm

    def __call__(self, round_data: RoundData) -> list[torch.Tensor]:
        g_weight, g_bias = _probe_gradient(round_data)
        return [self._per_sample(rec.grad_logits, rec.features, rec.sample_of_row, rec.op_idx.shape[0],
                                 g_weight, g_bias) for rec in round_data.steps]

    def _per_sample(self, grad_logits: torch.Tensor, features: torch.Tensor, sample_of_row: torch.Tensor | None,
                    batch_size: int, g_weight: torch.Tensor, g_bias: torch.Tensor) -> torch.Tensor:
        """(B,) <grad_i, grad_probe> on the last linear layer (its cosine when ``normalised``), rows summed
        per sample when a sample has several rows (tokens)."""
        dz, h = grad_logits.float(), features.float()
        per_row = ((dz @ g_weight) * h).sum(-1) + dz @ g_bias  # (N,) <grad_i, grad_probe>
        if self.normalised:  # |grad_i| of (W, b) = |dz_i| sqrt(|h_i|^2 + 1): dz_i h_i^T and dz_i
            per_row = per_row / (dz.norm(dim=-1) * (h.pow(2).sum(-1) + 1).sqrt()).clamp_min(1e-12)
        if sample_of_row is not None:
            per_row = torch.zeros(batch_size, device=per_row.device).index_add_(0, sample_of_row, per_row)
        return per_row


def _probe_gradient(round_data: RoundData) -> tuple[torch.Tensor, torch.Tensor]:
    """The probe's mean last-layer gradient: (C, d) for the weight, (C,) for the bias."""
    dz_v, h_v = round_data.probe_grad_logits, round_data.probe_features
    if dz_v is None or h_v is None:
        raise ConfigError("the alignment rewards need the probe's last-layer gradients and features")
    return dz_v.T.float() @ h_v.float() / dz_v.shape[0], dz_v.float().mean(0)


class CosineReward(AlignmentReward):
    """Alignment divided by each sample's gradient norm: the cosine between a sample's last-layer gradient
    and the probe's. The dot product grows with a sample's loss, so under ``alignment`` hard augmentations
    win credit by size alone whenever gradients mostly agree; the cosine credits direction only."""

    name, normalised = "cosine", True


class PairedCosineReward(CosineReward):
    """The cosine of each augmented sample minus the cosine of the same sample without AugNet's op (the
    train loop's clean inputs, in eval mode). The clean term does not depend on the action, so it is a
    per-sample baseline: the policy gradient stays unbiased, and what a sample's class and content contribute
    to its cosine (most of it: the last-layer gradient is mostly its label's) cancels, leaving what the op
    did. Costs a clean forward per step."""

    name, needs_clean_gradients = "paired", True

    def __call__(self, round_data: RoundData) -> list[torch.Tensor]:
        g_weight, g_bias = _probe_gradient(round_data)
        rewards = []
        for rec in round_data.steps:
            if rec.clean_grad_logits is None or rec.clean_features is None:
                raise ConfigError("the paired reward needs each step's clean-input gradients and features")
            n = rec.op_idx.shape[0]
            augmented = self._per_sample(rec.grad_logits, rec.features, rec.sample_of_row, n, g_weight, g_bias)
            clean = self._per_sample(rec.clean_grad_logits, rec.clean_features, rec.clean_sample_of_row, n,
                                     g_weight, g_bias)
            rewards.append(augmented - clean)
        return rewards


class ValDropReward:
    name, per_sample, needs_gradients, needs_clean_loss = "val-drop", False, False, False

    def __call__(self, round_data: RoundData) -> torch.Tensor:
        return torch.tensor(round_data.probe_loss_before - round_data.probe_loss_after)


class AdversarialReward:
    name, per_sample, needs_gradients, needs_clean_loss = "adversarial", True, False, True

    def __call__(self, round_data: RoundData) -> list[torch.Tensor]:
        return [torch.tanh(r.loss - r.clean_loss) for r in round_data.steps]


def standardised(r: torch.Tensor) -> torch.Tensor:
    """(r - mean) / std over the batch; zeros when r is constant (or a single value), which teaches nothing."""
    r = r.float()
    std = r.std() if r.numel() > 1 else r.new_zeros(())
    return (r - r.mean()) / std if std > 1e-8 else torch.zeros_like(r)


class MixedReward:
    name, per_sample, needs_gradients, needs_clean_loss = "mixed", True, True, True
    adversarial_weight = 0.5

    def __call__(self, round_data: RoundData) -> list[torch.Tensor]:
        aligned = AlignmentReward()(round_data)
        harder = AdversarialReward()(round_data)
        return [standardised(a) + self.adversarial_weight * standardised(h) for a, h in zip(aligned, harder)]


REWARDS: dict[str, Callable[[], Reward]] = {
    "alignment": AlignmentReward,
    "cosine": CosineReward,
    "paired": PairedCosineReward,
    "val-drop": ValDropReward,
    "adversarial": AdversarialReward,
    "mixed": MixedReward,
}


def get_reward(name: str | Reward) -> Reward:
    if not isinstance(name, str):
        return name
    try:
        return REWARDS[name]()
    except KeyError:
        raise ConfigError(f"unknown reward {name!r}; known rewards: {', '.join(REWARDS)}") from None
