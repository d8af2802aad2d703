"""The bare seed-CNN training step at batch 64, no augmentation and no data loading: the floor under every policy.

    python benchmarks/step_floor.py [--device cuda|cpu] [--steps 200] [--repeats 5]

Times forward + cross-entropy + backward + Adam on one resident batch, in the variants a faster default could
use: Adam's foreach path (torch's default) against its fused kernel, channels_last, bf16 autocast, and on CUDA the
whole step captured once as a CUDA graph and replayed (static input buffers, ``Adam(capturable=True)``), the
floor the speed issue quotes. Prints ms per step (median of ``--repeats`` runs of ``--steps`` steps) and each
variant's ratio to the eager default, all from this one run.
"""
from __future__ import annotations

import argparse
import platform
from datetime import date
from typing import Callable

import torch

from adaptaug.models.cnn import SeedCNN
from timing import timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def _step_fn(device: torch.device, *, fused: bool = False, channels_last: bool = False, bf16: bool = False,
             graph: bool = False) -> Callable[[], None]:
    torch.manual_seed(0)
    model = SeedCNN((3, 32, 32), num_classes=10).to(device)
    images = torch.rand(64, 3, 32, 32, device=device)
    labels = torch.randint(0, 10, (64,), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, fused=fused or None, capturable=graph)

    def step() -> None:
        # autocast's weight cache would hold casts made during capture: graphs need it off (torch.cuda.graphs)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=not graph):
            logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=False)  # graphs need the gradients' memory to stay put
        loss.backward()
        optimizer.step()

    if not graph:
        return step
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream before capture, as torch.cuda.graphs documents
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    cuda_graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(cuda_graph):
        step()
    return cuda_graph.replay


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    variants: dict[str, dict[str, bool]] = {
        "eager (Adam foreach, NCHW, float32)": {},
        "fused Adam": {"fused": True},
        "channels_last": {"channels_last": True},
        "bf16 autocast": {"bf16": True},
        "fused Adam + channels_last + bf16": {"fused": True, "channels_last": True, "bf16": True},
    }
    if device.type == "cuda":
        variants["CUDA graph of the whole step"] = {"graph": True}
        variants["CUDA graph + channels_last + bf16"] = {"graph": True, "channels_last": True, "bf16": True}
    print(f"machine: {platform.processor() or platform.machine()}, device {device}"
          f"{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}; torch {torch.__version__}; "
          f"seed CNN, batch 64, {args.steps} steps x {args.repeats}; date {date.today()}\n")
    print("| step | ms / step | vs eager |")
    print("|---|---:|---:|")
    base = None
    for name, flags in variants.items():
        step = _step_fn(device, **flags)
        seconds = timed(lambda: [step() for _ in range(args.steps)], device, args.repeats) / args.steps
        base = base or seconds
        print(f"| {name} | {1000 * seconds:.3f} | {seconds / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
