"""AugNet's own cost: epoch time of AugNet variants against trivialaugment and none.

    python benchmarks/augnet_cost.py --data ../shared/datasets/cifar10 [--limit 10000] [--threads 2]
        [--variants 'augnet,augnet[probe_every=4],augnet[frozen]'] [--device cpu|cuda]

Variants are labels as ``adaptaug compare`` takes them (``augnet[FIELD=N]``, chained brackets).
One epoch per variant on one CIFAR-10 subset, early stopping off, no robustness evaluation; prints seconds per
epoch (training only), the ratio to trivialaugment (the quality issue's bound is 1.05x) and AugNet's share as
``train`` measures it. Every figure comes from this one run.
"""
from __future__ import annotations

import argparse
import platform
from datetime import date

import torch

from adaptaug.compare import augnet_variant, parse_policies
from adaptaug.config import TrainConfig
from adaptaug.policies.augnet import AugNetConfig
from adaptaug.tasks import build_task
from adaptaug.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 image-folder tree")
    parser.add_argument("--limit", type=int, default=10000, help="stratified subset of N training images")
    parser.add_argument("--variants", default="augnet,augnet[probe_every=4],augnet[probe_every=8],augnet[frozen]",
                        help="AugNet variants to time, comma-separated compare labels")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--augment-ahead", type=int, default=None, help="default: adaptaug's")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="default: adaptaug's (on for the CPU)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = build_task("cifar10", args.data, seed=0, limit=args.limit)
    variants = [("none", "none", AugNetConfig()), ("trivialaugment", "trivialaugment", AugNetConfig())]
    for label in parse_policies(args.variants):
        if not label.startswith("augnet"):
            parser.error(f"--variants takes AugNet labels, got {label!r}")
        variants.append((label, "augnet", AugNetConfig(**(augnet_variant(label) or {}))))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device "
          f"{args.device}; torch {torch.__version__}; {task.size('train')} training images, 1 epoch; channels_last "
          f"{TrainConfig(channels_last=args.channels_last).channels_last_on(torch.device(args.device))}; "
          f"date {date.today()}\n")
    print("| policy | s / epoch (train) | vs trivialaugment | AugNet % |")
    print("|---|---:|---:|---:|")
    seconds: dict[str, float] = {}
    for i, (label, policy, augnet) in enumerate(variants):
        config = TrainConfig(task="cifar10", data=args.data, policy=policy, epochs=1, limit=args.limit,
                             device=args.device, patience=2, robustness=False, augnet=augnet,
                             channels_last=args.channels_last, augment_ahead=args.augment_ahead)
        if i == 0 and args.device.startswith("cuda"):  # untimed: cuDNN's autotuning, the allocator's growth
            train(config, task=task, progress=False, write=False)
        m = train(config, task=task, progress=False, write=False).metrics
        seconds[label] = m["train_runtime"] - m["validation_runtime"]
        ratio = f"{seconds[label] / seconds['trivialaugment']:.2f}x" if "trivialaugment" in seconds else "—"
        print(f"| {label} | {seconds[label]:.2f} | {ratio} | {m['augnet_overhead_percent']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
