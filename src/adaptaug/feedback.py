"""What AugNet reads: the primary model's performance, turned into a small normalised state vector.

Training statistics are accumulated as device tensors and read once per AugNet round (every
``update_every`` steps), so the hot loop never waits on the device.
"""
from __future__ import annotations

import math

import torch

STATE_FEATURES = (
    "train_loss",  # EMA of the training loss / log(C)
    "train_acc",  # EMA of the training accuracy
    "probe_loss",  # loss on the validation probe / log(C)
    "probe_acc",  # accuracy on the validation probe
    "gap",  # probe loss - train loss, / log(C): the generalisation gap
    "trend",  # fast EMA - slow EMA of the training loss, / log(C), x10: still falling or flat
    "progress",  # step / total steps
    "entropy",  # entropy of AugNet's last op distribution / log(K)
)
# Per-sample features, read by AugNet with ``per_sample=True``, one row per sample of a batch:
SAMPLE_FEATURES = (
    "hardness",  # log(the sample's training loss when last seen / the training-loss EMA), clipped to [-4, 4]
)


class FeedbackTracker:
    """Running statistics of training and of the validation probe -> ``state()`` (len(STATE_FEATURES),)."""

    def __init__(self, num_classes: int, total_steps: int, fast: float = 0.1, slow: float = 0.01) -> None:
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        self.loss_scale = math.log(max(num_classes, 2))  # chance-level cross-entropy
        self.total_steps = total_steps
        self.fast, self.slow = fast, slow
        self.step = 0
        self.train_loss_fast = self.train_loss_slow = self.loss_scale
        self.train_acc = 1.0 / max(num_classes, 2)
        self.probe_loss = self.loss_scale
        self.probe_acc = self.train_acc
        self.entropy = 1.0
        self._loss_sum: torch.Tensor | float = 0.0
        self._correct_sum: torch.Tensor | float = 0.0
        self._count = 0
        self._steps_in_round = 0

    def add_batch(self, per_sample_loss: torch.Tensor, correct: torch.Tensor | None) -> None:
        """Accumulate one training batch (device tensors, no sync)."""
        self.step += 1
        self._loss_sum = self._loss_sum + per_sample_loss.detach().float().sum()
        if correct is not None:
            self._correct_sum = self._correct_sum + correct.detach().float().sum()
        self._count += per_sample_loss.numel()
        self._steps_in_round += 1

    def close_round(self, probe_loss: float, probe_acc: float, entropy: float) -> None:
        """Fold the accumulated batches into the EMAs (one device read)."""
        if self._count:
            steps = self._steps_in_round
            loss_sum = torch.as_tensor(self._loss_sum, dtype=torch.float32)
            sums = torch.stack([loss_sum, torch.as_tensor(self._correct_sum, dtype=torch.float32,
                                                          device=loss_sum.device)]).tolist()  # one read
            mean_loss, mean_acc = (v / self._count for v in sums)
            # one EMA update per step folded in, so the time constant is in steps whatever update_every is
            fast, slow = 1 - (1 - self.fast) ** steps, 1 - (1 - self.slow) ** steps
            self.train_loss_fast += fast * (mean_loss - self.train_loss_fast)
            self.train_loss_slow += slow * (mean_loss - self.train_loss_slow)
            self.train_acc += fast * (mean_acc - self.train_acc)
        self._loss_sum, self._correct_sum, self._count, self._steps_in_round = 0.0, 0.0, 0, 0
        self.probe_loss, self.probe_acc, self.entropy = probe_loss, probe_acc, entropy

    def state(self) -> torch.Tensor:
        s = self.loss_scale
        values = [
            self.train_loss_fast / s,
            self.train_acc,
            self.probe_loss / s,
            self.probe_acc,
            (self.probe_loss - self.train_loss_fast) / s,
            10 * (self.train_loss_fast - self.train_loss_slow) / s,
            min(self.step / self.total_steps, 1.0),
            self.entropy,
        ]
        return torch.tensor(values, dtype=torch.float32).clamp(-5, 5)

    def state_dict(self) -> dict:
        # includes the accumulators of an unfinished round, so a resumed run continues it exactly
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)
