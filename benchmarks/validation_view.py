"""Validation view of a compare grid: what policy choices are made on (never the test split).

    python benchmarks/validation_view.py GRID_DIR

Per policy: validation accuracy and loss of the kept (lowest validation loss) epoch, read from each run's
history.csv, mean ± sample std over seeds; test accuracy for reference; AugNet's normalised op entropy at the
end of its trace (1 = uniform; 0.21 = the 10% uniform floor with everything else on one op); training time.
Works on grids written before metrics.json carried ``best_val_accuracy``.
"""
from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

from adaptaug.report import mean_std


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file() or path.stat().st_size == 0:
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _mean_std(values: list[float]) -> str:
    return "{:.4f} ± {:.4f}".format(*mean_std(values))


def main(grid: Path) -> None:
    by_policy: dict[str, list[tuple[float, float, float, float, float]]] = {}
    for row in _read(grid / "results.csv"):
        if row["status"] == "failed":
            continue
        run = grid / row["run_dir"]
        kept = min(_read(run / "history.csv"), key=lambda h: float(h["val_loss"]))
        trace = _read(run / "trace.csv")
        entropy = float(trace[-1]["entropy"]) if trace else float("nan")
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        by_policy.setdefault(row["policy"], []).append(
            (float(kept["val_accuracy"]), float(kept["val_loss"]), metrics["eval_accuracy"], entropy,
             metrics["train_runtime"]))
    print("| policy | seeds | val acc (kept epoch) | val loss | test acc | final op entropy | train s |")
    print("|---|---|---|---|---|---|---|")
    for policy, runs in by_policy.items():
        val_acc, val_loss, test_acc, entropy, seconds = (list(c) for c in zip(*runs))
        print(f"| {policy} | {len(runs)} | {_mean_std(val_acc)} | {_mean_std(val_loss)} | {_mean_std(test_acc)} | "
              f"{statistics.mean(entropy):.3f} | {statistics.mean(seconds):.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
