"""Per-epoch cost of writing AugNet's trace as a run grows: the old way against io.CsvText.

    python benchmarks/trace_writes.py [--rounds 8000] [--per-epoch 176]

Old: every epoch, ``write_csv`` of the whole trace (trace.csv) and the trace as a list of dicts in the checkpoint.
New: ``io.CsvText`` formats only the rows logged since the last epoch; trace.csv and the checkpoint take that text.
Rows have AugNet's columns over the 14 image ops (seeded values). Prints seconds for the last epoch of a run of
``--rounds`` rounds (704 steps an epoch on the full CIFAR-10 / 4 steps a round = 176 rounds an epoch).
"""
from __future__ import annotations

import argparse
import platform
import random
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from adaptaug.checkpoint import save_checkpoint
from adaptaug.io import CsvText, write_atomic, write_csv
from adaptaug.ops.image import RANDAUGMENT_OPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8000)
    parser.add_argument("--per-epoch", type=int, default=176)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    trace = [{"step": 4 * i, "reward": rng.random(), "probe_loss": rng.random(), "probe_acc": rng.random(),
              "entropy": rng.random(), **{f"p_{o}": rng.random() for o in RANDAUGMENT_OPS},
              **{f"m_{o}": rng.random() for o in RANDAUGMENT_OPS}, "augmented_share": rng.random()}
             for i in range(args.rounds)]
    before = trace[:args.rounds - args.per_epoch]
    print(f"machine: {platform.processor() or platform.machine()}; torch {torch.__version__}; date {date.today()}; "
          f"{args.rounds} rounds, {args.per_epoch} new in the last epoch; best of {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        old, new = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            write_csv(Path(tmp) / "trace.csv", trace)
            save_checkpoint(Path(tmp), {"trace": list(trace)})
            old.append(time.perf_counter() - t)
            text = CsvText()
            text.of(before)  # the epochs before
            t = time.perf_counter()
            csv_text = text.of(trace)
            write_atomic(Path(tmp) / "trace.csv", csv_text)
            save_checkpoint(Path(tmp), {"trace": csv_text})
            new.append(time.perf_counter() - t)
    print(f"| whole trace each epoch (before) | {min(old):.3f} s |\n| io.CsvText (now) | {min(new):.3f} s |")


if __name__ == "__main__":
    main()
