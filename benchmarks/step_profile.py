"""Where a training epoch's time goes, per policy: torch.profiler tables for one short epoch.

    python benchmarks/step_profile.py --data ../shared/datasets/cifar10 [--limit 3200] [--policies none,augnet]
        [--device cuda|cpu] [--rows 20]

For each policy, one warm-up epoch, then one profiled epoch of ``adaptaug.train.train`` on a CIFAR-10 subset
(early stopping off, no robustness evaluation; the end-of-run test evaluation is inside the profile too). Prints
the ops with the most self device time (self CPU time on the CPU) and the number of kernel launches per
training step, the figure the speed issue's "bounded number of kernel launches" is about; on CUDA also the ops
with the most host time.
"""
from __future__ import annotations

import argparse
import math
import platform
from datetime import date

import torch
from torch.profiler import ProfilerActivity, profile

from adaptaug.config import TrainConfig
from adaptaug.tasks import build_task
from adaptaug.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 image-folder tree")
    parser.add_argument("--limit", type=int, default=3200, help="stratified subset of N training images")
    parser.add_argument("--policies", default="none,augnet")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    device = torch.device(args.device)
    task = build_task("cifar10", args.data, seed=0, limit=args.limit)
    steps = math.ceil(task.size("train") / 64)
    print(f"machine: {platform.processor() or platform.machine()}, device {device}"
          f"{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}; torch {torch.__version__}; "
          f"{task.size('train')} training images ({steps} steps), 1 profiled epoch; date {date.today()}\n")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    for policy in args.policies.split(","):
        config = TrainConfig(task="cifar10", data=args.data, policy=policy, epochs=1, limit=args.limit,
                             device=str(device), patience=2, robustness=False)
        train(config, task=task, progress=False, write=False)  # warm-up: allocator, cuDNN, first-call costs
        with profile(activities=activities) as prof:
            train(config, task=task, progress=False, write=False)
        events = prof.key_averages()
        launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cudaLaunchKernelExC",
                                                             "cuLaunchKernel", "cuLaunchKernelEx"))
        print(f"## {policy}: {launches} kernel launches in the epoch and its evaluations, "
              f"{launches / steps:.0f} per training step (an upper bound)\n")
        print(events.table(sort_by=sort_by, row_limit=args.rows, max_name_column_width=60))
        if device.type == "cuda":  # the host's side too: at batch 64 the step waits on Python and launches
            print(events.table(sort_by="cpu_time_total", row_limit=args.rows, max_name_column_width=60))
        print(flush=True)


if __name__ == "__main__":
    main()
