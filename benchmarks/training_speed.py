"""Training speed per policy through adaptaug's own loop, against a plain DataLoader + Pillow RandAugment loop.

    python benchmarks/training_speed.py --data ../shared/datasets/cifar10 [--limit 5000] [--epochs 1]
        [--policies none,standard,randaugment,trivialaugment,augnet] [--device cpu|cuda] [--threads N]
        [--baseline-workers 2] [--no-baseline] [--amp bf16] [--channels-last] [--compile]
        [--compile-mode reduce-overhead]

For each policy, ``adaptaug.train.train`` runs ``--epochs`` epochs on CIFAR-10 (early stopping off, no
robustness evaluation) and the table gives the training time per epoch without validation, the time per step,
the step time relative to ``none`` (the speed issue's "step overhead"), AugNet's share and the last epoch's time
(validation included; with ``--compile`` and 2+ epochs, the steady state without the compile time). The baseline is
what a user without adaptaug writes: a ``torch.utils.data.DataLoader`` over the same uint8 images with
``--baseline-workers`` workers, per image crop+flip and RandAugment(n=2, m=9) in Pillow (torchvision's
``RandAugment`` when torchvision is installed, else the Pillow re-implementation below), ``ToTensor``, and the
same seed CNN with Adam. Every figure comes from this one run, so ratios compare like with like.
"""
from __future__ import annotations

import argparse
import math
import platform
import random
import time
from dataclasses import replace
from datetime import date

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

from adaptaug.config import COMPILE_MODES, TrainConfig
from adaptaug.tasks import build_task
from adaptaug.train import train

POLICIES = "none,standard,randaugment,trivialaugment,augnet"


# ------------------------------------------------------------------------------ the Pillow baseline
def _pillow_randaugment(n: int = 2, m: int = 9):
    """RandAugment(n, m) on PIL images, torchvision's op list and magnitudes (31 bins), one image at a time."""
    level = m / 30

    def signed(v: float) -> float:
        return v if random.random() < 0.5 else -v

    def affine(img, matrix):
        return img.transform(img.size, Image.AFFINE, matrix, resample=Image.NEAREST, fillcolor=(0, 0, 0))

    w = 32
    ops = [
        lambda im: im,
        lambda im: affine(im, (1, signed(0.3 * level), 0, 0, 1, 0)),
        lambda im: affine(im, (1, 0, 0, signed(0.3 * level), 1, 0)),
        lambda im: affine(im, (1, 0, signed(150 / 331 * w * level), 0, 1, 0)),
        lambda im: affine(im, (1, 0, 0, 0, 1, signed(150 / 331 * w * level))),
        lambda im: im.rotate(signed(30 * level), resample=Image.NEAREST, fillcolor=(0, 0, 0)),
        lambda im: ImageEnhance.Brightness(im).enhance(1 + signed(0.9 * level)),
        lambda im: ImageEnhance.Color(im).enhance(1 + signed(0.9 * level)),
        lambda im: ImageEnhance.Contrast(im).enhance(1 + signed(0.9 * level)),
        lambda im: ImageEnhance.Sharpness(im).enhance(1 + signed(0.9 * level)),
        lambda im: ImageOps.posterize(im, 8 - round(4 * level)),
        lambda im: ImageOps.solarize(im, int(255 * (1 - level))),
        ImageOps.autocontrast,
        ImageOps.equalize,
    ]

    def apply(img):
        for op in random.choices(ops, k=n):
            img = op(img)
        return img

    return apply


class PillowCifar(torch.utils.data.Dataset):
    """uint8 (N, 3, 32, 32) images -> per-image reflect-pad crop, flip, RandAugment in Pillow, ToTensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC for PIL
        self.labels = labels.numpy()
        try:
            from torchvision.transforms import RandAugment
            self.randaugment, self.kind = RandAugment(num_ops=2, magnitude=9), "torchvision RandAugment"
        except ImportError:
            self.randaugment, self.kind = _pillow_randaugment(2, 9), "Pillow RandAugment (benchmarks/)"

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        padded = np.pad(self.images[i], ((4, 4), (4, 4), (0, 0)), mode="reflect")
        y, x = random.randint(0, 8), random.randint(0, 8)
        img = Image.fromarray(padded[y:y + 32, x:x + 32])
        if random.random() < 0.5:
            img = ImageOps.mirror(img)
        img = self.randaugment(img)
        tensor = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div_(255)
        return tensor, int(self.labels[i])


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def pillow_epoch_seconds(task, epochs: int, workers: int, device: torch.device, amp: str = "off",
                         channels_last: bool = False) -> tuple[float, int, str]:
    """The plain loop's seconds per epoch, with the same model settings (bf16 autocast, channels_last) as ours:
    they speed up the model step whichever loop feeds it."""
    dataset = PillowCifar(task.data.train.images, task.data.train.labels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, num_workers=workers,
                                         worker_init_fn=_seed_worker, persistent_workers=workers > 0,
                                         generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = task.build_model().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for images, labels in loader:
            images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                logits = model(images)
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / epochs, len(loader), dataset.kind


# ------------------------------------------------------------------------------ adaptaug's loop
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 image-folder tree")
    parser.add_argument("--limit", type=int, default=None, help="stratified subset of N training images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--policies", default=POLICIES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--baseline-workers", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--amp", default="off", choices=["off", "bf16"])
    parser.add_argument("--augment-ahead", type=int, default=None, help="default: adaptaug's")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="default: adaptaug's (on for the CPU); the Pillow loop follows the same setting")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--compile-mode", default=None, choices=COMPILE_MODES,
                        help="torch.compile's mode (implies --compile); reduce-overhead: CUDA graphs on CUDA")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=None,
                        help="one untimed epoch first (default: on CUDA, where the first run pays cuDNN's autotuning "
                             "and the allocator's growth)")
    args = parser.parse_args()
    args.compile = args.compile or args.compile_mode is not None
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    task = build_task("cifar10", args.data, seed=0, limit=args.limit)
    channels_last = TrainConfig(channels_last=args.channels_last).channels_last_on(device)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device "
          f"{device}{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}; torch "
          f"{torch.__version__}; {task.size('train')} training images, {args.epochs} epoch(s); amp {args.amp}, "
          f"channels_last {channels_last}, compile {args.compile} ({args.compile_mode or 'default'}); "
          f"date {date.today()}\n")
    print("| policy | s / epoch (train) | ms / step | step vs none | AugNet % | eval_accuracy | last epoch (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    per_epoch: dict[str, float] = {}
    configs = {policy: TrainConfig(task="cifar10", data=args.data, policy=policy, epochs=args.epochs,
                                   limit=args.limit, device=str(device), patience=args.epochs + 1, robustness=False,
                                   amp=args.amp, channels_last=channels_last, compile=args.compile,
                                   compile_mode=args.compile_mode or "default", augment_ahead=args.augment_ahead)
               for policy in args.policies.split(",")}
    if args.warmup if args.warmup is not None else device.type == "cuda":
        train(replace(next(iter(configs.values())), epochs=1), task=task, progress=False, write=False)
    for policy, config in configs.items():
        result = train(config, task=task, progress=False, write=False)
        m = result.metrics
        seconds = (m["train_runtime"] - m["validation_runtime"]) / args.epochs
        steps = math.ceil(task.size("train") / config.batch_size)
        per_epoch[policy] = seconds
        ratio = seconds / per_epoch["none"] if "none" in per_epoch else float("nan")
        print(f"| {policy} | {seconds:.2f} | {1000 * seconds / steps:.2f} | {ratio:.2f}x | "
              f"{m['augnet_overhead_percent']:.1f} | {m['eval_accuracy']:.4f} | "
              f"{result.history[-1]['epoch_seconds']:.2f} |", flush=True)
    if not args.no_baseline:
        seconds, steps, kind = pillow_epoch_seconds(task, args.epochs, args.baseline_workers, device, args.amp,
                                                     channels_last)
        print(f"| DataLoader ({args.baseline_workers} workers) + {kind} + crop+flip | {seconds:.2f} | "
              f"{1000 * seconds / steps:.2f} | {seconds / per_epoch.get('none', math.nan):.2f}x | | | |")
        print()
        for policy, ours in per_epoch.items():
            print(f"adaptaug {policy}: {seconds / ours:.2f}x the speed of the DataLoader + Pillow loop")


if __name__ == "__main__":
    main()
