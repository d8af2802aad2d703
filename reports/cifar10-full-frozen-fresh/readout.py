"""The plan's read-outs: python reports/cifar10-full-frozen-fresh/readout.py

`augnet[frozen]` (results.csv here) at seeds 13-18 against the default (`../cifar10-full-trust-region/`), crop+flip
(`../cifar10-full-standard-fresh/`) and `augnet[free_gate]` (`../cifar10-full-free-gate/`), paired by seed.
"""
from __future__ import annotations

from pathlib import Path

from adaptaug.report import finished_runs, mean_std, paired_interval

HERE = Path(__file__).resolve().parent
FILES = (HERE / "results.csv",) + tuple(HERE.parent / grid / "results.csv" for grid in (
    "cifar10-full-trust-region", "cifar10-full-standard-fresh", "cifar10-full-free-gate"))
FROZEN = "augnet[frozen]"
PAIRS = (("augnet", FROZEN), (FROZEN, "standard"), ("augnet[free_gate]", FROZEN))
KEYS = {"val": "best_val_accuracy", "test": "eval_accuracy", "PGD 2/255": "eval_robust_pgd_eps2_accuracy"}


def main() -> None:
    rows = finished_runs(*FILES)
    seeds = sorted(seed for policy, seed in rows if policy == FROZEN)
    print(f"seeds {seeds}, full CIFAR-10, up to 50 epochs with early stopping")
    for policy in ("augnet", FROZEN, "standard", "augnet[free_gate]"):
        cells = []
        for label, key in KEYS.items():
            mean, std = mean_std([100 * float(rows[(policy, s)][key]) for s in seeds])
            cells.append(f"{label} {mean:.2f} ± {std:.2f}")
        early = sum(float(rows[(policy, s)]["best_epoch"]) < 20 for s in seeds)
        print(f"  {policy:18s} {'  '.join(cells)}  best epoch below 20: {early}/{len(seeds)}")
    for a_policy, b_policy in PAIRS:
        for label, key in KEYS.items():
            a = {s: 100 * float(rows[(a_policy, s)][key]) for s in seeds}
            b = {s: 100 * float(rows[(b_policy, s)][key]) for s in seeds}
            diff, low, high, _ = paired_interval(a, b)
            verdict = "above zero" if low > 0 else "below zero" if high < 0 else "contains zero"
            print(f"  {a_policy} - {b_policy} {label:9s} paired {diff:+.2f} [{low:+.2f}, {high:+.2f}] ({verdict}); "
                  f"ahead {sum(a[s] > b[s] for s in seeds)}/{len(seeds)}")


if __name__ == "__main__":
    main()
