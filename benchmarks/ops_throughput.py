"""Augmentation throughput (images/s), ours against Kornia, measured in the same run.

    python benchmarks/ops_throughput.py [--device cpu|cuda] [--batches 64,1024] [--repeats 31]

Prints a Markdown table: per policy (RandAugment n=2 m=9, TrivialAugment, crop+flip) and per op, images/s for
adaptaug (policy.sample + apply_plan: per-sample ops and magnitudes) and for Kornia's batched augmentation
modules on the same images, and the ratio ours / Kornia. Medians over ``--repeats`` timed runs after a warm-up; ours
and Kornia's calls alternate, so a slow spell of the machine falls on both (Kornia's RandAugment draws its ops per
batch, so its time per call varies with the draw: use 30 or more repeats for a stable ratio).
When torchvision is installed, two more rows per batch size: its v2 ``RandAugment(num_ops=2, magnitude=9)`` on
the whole batch (ONE op and magnitude for every image, so not the same work) and per image in a Python loop
(per-sample, the same work as ours; timed on at most 256 images). Kornia rows are skipped without Kornia.
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
from timing import timed, timed_together  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", default="64,1024")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    space = OpSpace.of(RANDAUGMENT_OPS)
    gen = torch.Generator().manual_seed(0)
    policies = kornia_pairs(space, gen)
    tv_randaugment = torchvision_randaugment()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"device {device}{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}; "
          f"torch {torch.__version__}; date {date.today()}\n")
    print("| what | batch | adaptaug img/s | other img/s | ratio (ours / other) |")
    print("|---|---:|---:|---:|---:|")
    for batch in (int(b) for b in args.batches.split(",")):
        images = torch.rand(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
        for name, (ours, theirs) in policies.items():
            t_ours, t_kornia = timed_together([lambda: apply_plan(images, ours.sample(batch)),
                                               lambda: theirs(images)], device, args.repeats)
            print(f"| {name} vs Kornia | {batch} | {batch / t_ours:,.0f} | {batch / t_kornia:,.0f} | "
                  f"{t_kornia / t_ours:.2f}x |", flush=True)
        if tv_randaugment is not None:
            ours = RandAugment(space, n=2, m=9, generator=gen)
            t_ours = timed(lambda: apply_plan(images, ours.sample(batch)), device, args.repeats)
            as_uint8 = (images * 255).to(torch.uint8)  # torchvision's RandAugment wants uint8 for posterize
            t_batch = timed(lambda: tv_randaugment(as_uint8), device, args.repeats)
            few = as_uint8[:256]
            t_loop = timed(lambda: [tv_randaugment(img) for img in few], device, max(1, args.repeats // 3))
            print(f"| randaugment (n=2, m=9) vs torchvision v2, one op for the whole batch | {batch} | "
                  f"{batch / t_ours:,.0f} | {batch / t_batch:,.0f} | {t_batch / t_ours:.2f}x |")
            print(f"| randaugment (n=2, m=9) vs torchvision v2 per image (loop) | {batch} | {batch / t_ours:,.0f} | "
                  f"{len(few) / t_loop:,.0f} | {t_loop / len(few) * batch / t_ours:.2f}x |", flush=True)
        for op in list_ops("image"):
            spec = get_op(op)
            mags = torch.rand(batch, generator=gen).to(device) * spec.range[1]
            g = torch.Generator(device=device).manual_seed(0)
            t = timed(lambda: spec.fn(images, mags, g), device, args.repeats)
            print(f"| op {op} | {batch} | {batch / t:,.0f} | | |", flush=True)


def kornia_pairs(space: OpSpace, gen: torch.Generator) -> dict[str, tuple]:
    """Our policy and Kornia's module for the same recipe; empty when Kornia's auto-augment is missing."""
    try:
        import kornia.augmentation as K
        from kornia.augmentation.auto import RandAugment as KRandAugment
        from kornia.augmentation.auto import TrivialAugment as KTrivialAugment
    except ImportError:
        print("Kornia not installed: its rows are skipped")
        return {}
    return {
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


def torchvision_randaugment():
    """torchvision v2 RandAugment(num_ops=2, magnitude=9), or None without torchvision."""
    try:
        from torchvision.transforms import v2
    except ImportError:
        return None
    return v2.RandAugment(num_ops=2, magnitude=9)


if __name__ == "__main__":
    main()
