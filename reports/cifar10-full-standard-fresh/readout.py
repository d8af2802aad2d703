"""The plan's read-outs: python reports/cifar10-full-standard-fresh/readout.py

Crop+flip (`standard`, results.csv here) against the default and the trust region at the same seeds
(`../cifar10-full-trust-region/results.csv`), paired by seed; information only.
"""
from __future__ import annotations

from pathlib import Path

from adaptaug.report import finished_runs, mean_std, paired_interval

HERE = Path(__file__).resolve().parent
FILES = (HERE / "results.csv", HERE.parent / "cifar10-full-trust-region" / "results.csv")
BASE = "standard"


def main() -> None:
    rows = finished_runs(*FILES)
    seeds = sorted(seed for policy, seed in rows if policy == BASE)
    print(f"seeds {seeds}, full CIFAR-10, 50 epochs")
    for policy in (BASE, "augnet", "augnet[max_kl=0.0001]"):
        figures = "  ".join(f"{label} {m:.2f} ± {sd:.2f}" for label, (m, sd) in (
            (name, mean_std([100 * float(rows[(policy, s)][key]) for s in seeds])) for name, key in
            (("val", "best_val_accuracy"), ("test", "eval_accuracy"), ("PGD 2/255", "eval_robust_pgd_eps2_accuracy"))))
        print(f"  {policy:22s} {figures}")
    for policy in ("augnet", "augnet[max_kl=0.0001]"):
        for key in ("best_val_accuracy", "eval_accuracy", "eval_robust_pgd_eps2_accuracy"):
            a = {s: 100 * float(rows[(policy, s)][key]) for s in seeds}
            b = {s: 100 * float(rows[(BASE, s)][key]) for s in seeds}
            per_seed = ", ".join(f"{s}: {a[s] - b[s]:+.2f}" for s in seeds)
            line = f"  {policy} - {BASE} {key:30s} per seed {per_seed}"
            if len(seeds) > 1:
                diff, low, high, _ = paired_interval(a, b)
                line += f"; paired {diff:+.2f} [{low:+.2f}, {high:+.2f}]"
            print(line)


if __name__ == "__main__":
    main()
