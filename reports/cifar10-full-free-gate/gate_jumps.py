"""Gate jumps in AugNet runs and whether the op it had committed to changed with them.

    python reports/cifar10-full-free-gate/gate_jumps.py RUN_DIR [RUN_DIR ...]

A jump: the gate's share of augmented samples (trace.csv's augmented_share) moves by more than 0.3 between a round
and the round one epoch later, after the first epoch. "Committed op": the op AugNet draws for half the samples or
more (`adaptaug.report.committed_ops`; none if no op does). A jump "comes with an op change" when the committed op is
not the same from half an epoch before the jump's first round to half an epoch after its last. The base rate is that
share over all such windows of the same runs, stepped by half an epoch. The runs' folders are not committed; the
committed reports name their commands.
"""
import sys
from pathlib import Path

from adaptaug.report import _read_csv, committed_ops

STEPS_PER_EPOCH = 704  # CIFAR-10's 45,000 training images in batches of 64


def main(run_dirs: list[str]) -> None:
    jumps = with_change = windows = windows_with_change = 0
    for run_dir in run_dirs:
        rows = _read_csv(Path(run_dir) / "trace.csv")
        per_epoch = STEPS_PER_EPOCH // int(rows[1]["step"] - rows[0]["step"])  # rounds per epoch (one row per round)
        half = per_epoch // 2
        share = [r["augmented_share"] for r in rows]
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
