"""BiLSTM forward+backward per batch: packed sequences (nn.LSTM) against adaptaug's PaddedBiLSTM, same run.

    python benchmarks/bilstm_speed.py [--device cpu|cuda] [--threads 1] [--repeats 5]

Shapes of the seed's models at batch 64: IMDB (embedding 128 -> BiLSTM 64, 256 tokens, a quarter of the texts
at 120) and CoNLL-2003 (144 -> BiLSTM 128, lengths 5-40). Prints milliseconds per batch and the ratio.
"""
from __future__ import annotations

import argparse
import platform
from datetime import date

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from adaptaug.models.bilstm import PaddedBiLSTM
from timing import timed  # benchmarks/timing.py (scripts run from benchmarks/ on sys.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    imdb_lengths = torch.full((64,), 256)
    imdb_lengths[::4] = 120
    shapes = {"IMDB (128 -> 64, T 256)": (128, 64, imdb_lengths),
              "CoNLL-2003 (144 -> 128, T <= 40)": (144, 128, torch.randint(5, 41, (64,), generator=gen))}
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device "
          f"{device}; torch {torch.__version__}; date {date.today()}\n")
    print("| shape, batch 64 | packed nn.LSTM ms | PaddedBiLSTM ms | speed-up |")
    print("|---|---:|---:|---:|")
    for name, (dim, hidden, lengths) in shapes.items():
        x = torch.randn(64, int(lengths.max()), dim, generator=gen).to(device).requires_grad_(True)
        packed = nn.LSTM(dim, hidden, batch_first=True, bidirectional=True).to(device)
        padded = PaddedBiLSTM(dim, hidden).to(device)

        def run_packed():
            out, _ = packed(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            out.data.sum().backward()

        def run_padded():
            padded(x, lengths.to(device))[0].sum().backward()

        t_packed, t_padded = timed(run_packed, device, args.repeats), timed(run_padded, device, args.repeats)
        print(f"| {name} | {1000 * t_packed:.1f} | {1000 * t_padded:.1f} | {t_packed / t_padded:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
