"""Stage 2's read-outs from results.csv: python reports/cifar10-full-trust-region/readout.py

The plan (`../cifar10-5k-trust-region/PLAN.md`, stage 2) decides on validation only: `augnet[max_kl=0.0001]` becomes
the image default if its validation mean is above the default's and it is ahead at 4 or more of the 6 seeds (paired
by seed). Test, PGD, early stops and cost are printed as information, and, after the run (exploratory, not in the
plan), PGD's difference adjusted for how long each run trained.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats

from adaptaug.report import finished_runs, mean_std, paired_interval, welch_interval

HERE = Path(__file__).resolve().parent
DEFAULT, TRUST = "augnet", "augnet[max_kl=0.0001]"
SEEDS = range(13, 19)


def column(rows, policy: str, name: str) -> list[float]:
    return [100 * float(rows[(policy, seed)][name]) for seed in SEEDS]


def describe(rows, policy: str) -> None:
    figures = "  ".join(f"{label} {m:.2f} ± {sd:.2f}" for label, (m, sd) in (
        ("val", mean_std(column(rows, policy, "best_val_accuracy"))),
        ("test", mean_std(column(rows, policy, "eval_accuracy"))),
        ("PGD 2/255", mean_std(column(rows, policy, "eval_robust_pgd_eps2_accuracy")))))
    epochs = [int(float(rows[(policy, s)]["best_epoch"])) for s in SEEDS]
    share = sum(float(rows[(policy, s)]["augnet_overhead_percent"]) for s in SEEDS) / len(SEEDS)
    per_step = (sum(float(rows[(policy, s)]["train_runtime"]) for s in SEEDS)
                / sum(float(rows[(policy, s)]["model_runtime"]) for s in SEEDS))
    print(f"  {policy:22s} {figures}\n  {'':22s} best epochs {epochs} (below 20: {sum(e < 20 for e in epochs)}/6), "
          f"AugNet {share:.1f}% of training, {per_step:.3f} s per model-step second")


def compare(rows, name: str) -> tuple[float, int]:
    a, b = column(rows, TRUST, name), column(rows, DEFAULT, name)
    diff, low, high = welch_interval(a, b)
    paired, p_low, p_high, _ = paired_interval(dict(zip(SEEDS, a)), dict(zip(SEEDS, b)))
    ahead = sum(x > y for x, y in zip(a, b))
    print(f"  {TRUST} - {DEFAULT} {name:30s} {diff:+.2f} Welch 95% [{low:+.2f}, {high:+.2f}], "
          f"paired [{p_low:+.2f}, {p_high:+.2f}], ahead {ahead}/6")
    return diff, ahead


def pgd_adjusted_for_training_length(rows) -> None:
    """Least squares over the 12 runs, PGD ~ 1 + best epoch + (trust region): is the PGD gap only longer training?"""
    runs = [rows[(policy, seed)] for policy in (DEFAULT, TRUST) for seed in SEEDS]
    pgd = np.array([100 * float(r["eval_robust_pgd_eps2_accuracy"]) for r in runs])
    epoch = np.array([float(r["best_epoch"]) for r in runs])
    design = np.column_stack([np.ones(len(runs)), epoch, [r["policy"] == TRUST for r in runs]]).astype(float)
    coef, *_ = np.linalg.lstsq(design, pgd, rcond=None)
    dof = len(runs) - design.shape[1]
    resid = pgd - design @ coef
    se = np.sqrt(resid @ resid / dof * np.linalg.inv(design.T @ design).diagonal())
    half = stats.t.ppf(0.975, dof) * se[2]
    print(f"  exploratory: r(best epoch, PGD) {np.corrcoef(epoch, pgd)[0, 1]:+.2f}; PGD {coef[1]:+.3f} per epoch; "
          f"{TRUST} adjusted for best epoch {coef[2]:+.2f} [{coef[2] - half:+.2f}, {coef[2] + half:+.2f}]")


def main() -> None:
    rows = finished_runs(HERE / "results.csv")
    print("seeds 13-18, full CIFAR-10, 50 epochs")
    for policy in (DEFAULT, TRUST):
        describe(rows, policy)
    diff, ahead = compare(rows, "best_val_accuracy")
    for name in ("eval_accuracy", "eval_robust_pgd_eps2_accuracy"):
        compare(rows, name)
    verdict = "becomes the image default" if diff > 0 and ahead >= 4 else "stays an option"
    print(f"decision (validation mean above and ahead at 4+ of 6): {TRUST} {verdict}")
    pgd_adjusted_for_training_length(rows)


if __name__ == "__main__":
    main()
