"""AugNet's own cost: epoch time of augnet (per probe interval, and frozen) against trivialaugment and none.

    python benchmarks/augnet_cost.py --data ../shared/datasets/cifar10 [--limit 10000] [--threads 2]
        [--probe-every 1,4,8] [--device cpu|cuda]

One epoch per variant on one CIFAR-10 subset, early stopping off, no robustness evaluation; prints seconds per
epoch (training only), the ratio to trivialaugment (the quality issue's bound is 1.05x) and AugNet's share as
``train`` measures it. Every figure comes from this one run.
"""
from __future__ import annotations

import argparse
import platform
from datetime import date

import torch

from adaptaug.config import TrainConfig
from adaptaug.policies.augnet import AugNetConfig
from adaptaug.tasks import build_task
from adaptaug.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 image-folder tree")
    parser.add_argument("--limit", type=int, default=10000, help="stratified subset of N training images")
    parser.add_argument("--probe-every", default="1,4,8", help="AugNet probe intervals to time, in rounds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    task = build_task("cifar10", args.data, seed=0, limit=args.limit)
    variants = [("none", "none", AugNetConfig()), ("trivialaugment", "trivialaugment", AugNetConfig())]
    variants += [(f"augnet, probe_every {k}", "augnet", AugNetConfig(probe_every=int(k)))
                 for k in args.probe_every.split(",")]
    variants.append(("augnet, frozen", "augnet", AugNetConfig(learn=False)))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device "
          f"{args.device}; torch {torch.__version__}; {task.size('train')} training images, 1 epoch; "
          f"date {date.today()}\n")
    print("| policy | s / epoch (train) | vs trivialaugment | AugNet % |")
    print("|---|---:|---:|---:|")
    seconds: dict[str, float] = {}
    for label, policy, augnet in variants:
        config = TrainConfig(task="cifar10", data=args.data, policy=policy, epochs=1, limit=args.limit,
                             device=args.device, patience=2, robustness=False, augnet=augnet)
        m = train(config, task=task, progress=False, write=False).metrics
        seconds[label] = m["train_runtime"] - m["validation_runtime"]
        ratio = f"{seconds[label] / seconds['trivialaugment']:.2f}x" if "trivialaugment" in seconds else "—"
        print(f"| {label} | {seconds[label]:.2f} | {ratio} | {m['augnet_overhead_percent']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
