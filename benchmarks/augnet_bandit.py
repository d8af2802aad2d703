"""AugNet's learning rule on synthetic rewards: does it stay put on noise, and find a weak signal?

    python benchmarks/augnet_bandit.py [--variants 'augnet,augnet[lr=0.003]'] [--seeds 8] [--rounds 350]
        [--delta 0.2]

Each run drives an AugNetPolicy over the 14 RandAugment ops for ``--rounds`` rounds of 4 batches of 64 (a
CIFAR-10 subset run of 20 epochs has about 350) with a per-sample reward that AugNet's own reward replaces:
- noise: N(0, 1) per sample, the same for every op. A sound learner stays near uniform; REINFORCE on a
  softmax is a random walk here and can lock onto an arbitrary op (what the CIFAR grids show: the op the
  policy collapses onto differs from seed to seed);
- signal: N(0, 1) + ``delta`` for samples that got Brightness. A sound learner finds it.
The primary model is a fixed linear layer on the digits images (the reward does not depend on it). Prints,
per variant, how many runs ended collapsed (op entropy < 0.5 of its maximum) under noise and how many found
the paid op (probability > 0.5) under the signal. Seeded: the same command prints the same table.
"""
from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from adaptaug.compare import augnet_variant, parse_policies
from adaptaug.ops.image import RANDAUGMENT_OPS
from adaptaug.ops.space import OpSpace
from adaptaug.policies.augnet import AugNetConfig, AugNetPolicy

SPACE = OpSpace.of(RANDAUGMENT_OPS)
PAID_OP = SPACE.index("Brightness")


class SyntheticReward:
    """Per-sample N(0, 1) reward plus ``delta`` for samples that got op ``paid``."""
    name, per_sample, needs_gradients, needs_clean_loss = "synthetic", True, False, False

    def __init__(self, paid: int, delta: float, seed: int) -> None:
        self.paid, self.delta = paid, delta
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, data) -> list[torch.Tensor]:
        return [torch.randn(s.op_idx.shape[0], generator=self.generator) + self.delta * (s.op_idx == self.paid).float()
                for s in data.steps]


def run(config: AugNetConfig, delta: float, seed: int, rounds: int, images: torch.Tensor,
        labels: torch.Tensor) -> tuple[float, float]:
    """(normalised op entropy, probability of the paid op) at the end of one run."""
    torch.manual_seed(seed)
    model = nn.Linear(64, 10)
    batch, update_every = 64, config.update_every
    policy = AugNetPolicy(SPACE, 10, total_steps=rounds * update_every, config=config,
                          generator=torch.Generator().manual_seed(seed))
    policy.reward = SyntheticReward(PAID_OP, delta, seed)
    loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    policy.attach(model, loss_fn, images[-256:], labels[-256:], head=model)
    g = torch.Generator().manual_seed(seed)
    for _ in range(rounds * update_every):
        idx = torch.randint(0, len(labels) - 256, (batch,), generator=g)
        policy.sample(batch)
        with torch.no_grad():
            logits = model(images[idx])
        policy.observe(logits, labels[idx])
    p = policy._op_probs
    return float(-(p * p.log()).sum() / math.log(len(p))), float(p[PAID_OP])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="augnet,augnet[lr=0.003],augnet[entropy_coef=0.03]")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=350)
    parser.add_argument("--delta", type=float, default=0.2, help="extra reward of the paid op, in noise stds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    x, y = load_digits(return_X_y=True)
    images, labels = torch.tensor(x, dtype=torch.float32).view(-1, 64) / 16, torch.tensor(y)
    print(f"{len(SPACE)} ops, {args.rounds} rounds, {args.seeds} seeds, signal {args.delta} std on Brightness\n")
    print("| variant | noise: collapsed runs | noise: mean entropy | signal: runs that found the op | "
          "signal: mean p(op) |")
    print("|---|---:|---:|---:|---:|")
    for label in parse_policies(args.variants):
        if not label.startswith("augnet"):
            parser.error(f"--variants takes AugNet labels, got {label!r}")
        config = AugNetConfig(**(augnet_variant(label) or {}))
        noise = [run(config, 0.0, s, args.rounds, images, labels) for s in range(args.seeds)]
        signal = [run(config, args.delta, s, args.rounds, images, labels) for s in range(args.seeds)]
        collapsed = sum(e < 0.5 for e, _ in noise)
        found = sum(p > 0.5 for _, p in signal)
        print(f"| {label} | {collapsed}/{args.seeds} | {sum(e for e, _ in noise) / args.seeds:.2f} | "
              f"{found}/{args.seeds} | {sum(p for _, p in signal) / args.seeds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
