"""Augmentation throughput (images/s), ours against Kornia, measured in the same run.

    python benchmarks/ops_throughput.py [--device cpu|cuda] [--batches 64,1024] [--repeats 5]

Prints a Markdown table: per policy (RandAugment n=2 m=9, TrivialAugment, crop+flip) and per op, images/s for
adaptaug (policy.sample + apply_plan: per-sample ops and magnitudes) and for Kornia's batched augmentation
modules on the same images, and the ratio ours / Kornia. Medians over ``--repeats`` timed runs after a warm-up.
"""
from __future__ import annotations

import argparse
import platform
from datetime import date

import torch

from adaptaug.augment import apply_plan
from adaptaug.ops import get_op, list_ops
from adaptaug.ops.image import RANDAUGMENT_OPS
from adaptaug.ops.space import OpSpace
from adaptaug.policies import RandAugment, StandardAugment, TrivialAugment
from timing import timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="64,1024")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    import kornia.augmentation as K
    from kornia.augmentation.auto import RandAugment as KRandAugment
    from kornia.augmentation.auto import TrivialAugment as KTrivialAugment

    space = OpSpace.of(RANDAUGMENT_OPS)
    gen = torch.Generator().manual_seed(0)
    policies = {
        "randaugment (n=2, m=9) + crop+flip": (
            RandAugment(space, n=2, m=9, generator=gen, base=StandardAugment(generator=gen)),
            K.AugmentationSequential(K.RandomCrop((32, 32), padding=4, padding_mode="reflect"),
                                     K.RandomHorizontalFlip(), KRandAugment(n=2, m=9))),
        "trivialaugment + crop+flip": (
            TrivialAugment(space, generator=gen, base=StandardAugment(generator=gen)),
            K.AugmentationSequential(K.RandomCrop((32, 32), padding=4, padding_mode="reflect"),
                                     K.RandomHorizontalFlip(), KTrivialAugment())),
        "crop+flip": (StandardAugment(generator=gen),
                      K.AugmentationSequential(K.RandomCrop((32, 32), padding=4, padding_mode="reflect"),
                                               K.RandomHorizontalFlip())),
    }
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"device {device}{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}; "
          f"torch {torch.__version__}; date {date.today()}\n")
    print("| what | batch | adaptaug img/s | Kornia img/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        images = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
        for name, (ours, theirs) in policies.items():
            t_ours = timed(lambda: apply_plan(images, ours.sample(batch)), device, args.repeats)
            t_kornia = timed(lambda: theirs(images), device, args.repeats)
            print(f"| {name} | {batch} | {batch / t_ours:,.0f} | {batch / t_kornia:,.0f} | "
                  f"{t_kornia / t_ours:.2f}x |", flush=True)
        for op in list_ops("image"):
            spec = get_op(op)
            mags = torch.rand(batch, generator=gen).to(device) * spec.range[1]
            g = torch.Generator(device=device).manual_seed(0)
            t = timed(lambda: spec.fn(images, mags, g), device, args.repeats)
            print(f"| op {op} | {batch} | {batch / t:,.0f} | | |", flush=True)


if __name__ == "__main__":
    main()
