"""Gate jumps in AugNet runs and whether the op it had committed to changed with them.

    python reports/cifar10-full-free-gate/gate_jumps.py RUN_DIR [RUN_DIR ...]

A jump: the gate's share of augmented samples (trace.csv's augmented_share) moves by more than 0.3 between a round
and the round one epoch later, after the first epoch. "Committed op": the op AugNet draws for more than half the
samples (none if no op does). A jump "comes with an op change" when the committed op is not the same over the
window from half an epoch before it to half an epoch after it. The base rate is that share over all such windows
of the same runs, stepped by half an epoch. The runs' folders are not committed; the committed reports name their
commands.
"""
import csv
import sys
from pathlib import Path

STEPS_PER_EPOCH = 704  # CIFAR-10's 45,000 training images in batches of 64
ROUND_STEPS = 4  # the rounds the traces were written at (one row per round)


def committed_ops(rows: list[dict[str, str]]) -> list[str | None]:
    ops = []
    for row in rows:
        probs = {key[2:]: float(value) for key, value in row.items() if key.startswith("p_")}
        top = max(probs, key=probs.get)
        ops.append(top if probs[top] > 0.5 else None)
    return ops


def main(run_dirs: list[str]) -> None:
    per_epoch = STEPS_PER_EPOCH // ROUND_STEPS
    half = per_epoch // 2
    jumps = with_change = windows = windows_with_change = 0
    for run_dir in run_dirs:
        rows = list(csv.DictReader(open(Path(run_dir) / "trace.csv")))
        share = [float(r["augmented_share"]) for r in rows]
        ops = committed_ops(rows)
        changed = lambda i: len(set(ops[max(0, i - half):i + per_epoch + half + 1])) > 1  # noqa: E731
        events, i = [], per_epoch
        while i + per_epoch < len(rows):
            if abs(share[i + per_epoch] - share[i]) > 0.3:
                events.append((round(i / per_epoch, 1), share[i], share[i + per_epoch], changed(i)))
                i += per_epoch
            else:
                i += 8
        for i in range(2 * per_epoch, len(rows) - per_epoch - half, half):
            windows += 1
            windows_with_change += changed(i)
        jumps += len(events)
        with_change += sum(e[3] for e in events)
        text = ", ".join(f"epoch {e:.1f}: {a:.2f} -> {b:.2f}{' (op changed)' if c else ''}" for e, a, b, c in events)
        print(f"{Path(run_dir).name}: {text or 'no jump'}")
    print(f"jumps {jumps}, with an op change {with_change}; windows with an op change {windows_with_change} of "
          f"{windows} ({windows_with_change / max(windows, 1):.0%})")


if __name__ == "__main__":
    main(sys.argv[1:])
