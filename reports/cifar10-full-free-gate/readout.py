"""The plan's rule and read-outs: python reports/cifar10-full-free-gate/readout.py

`augnet[free_gate]` (results.csv here) against the default at the same seeds (`../cifar10-full-trust-region/`) and
crop+flip (`../cifar10-full-standard-fresh/`). The rule (PLAN.md): validation mean above the default's and ahead at
4 or more of 6 seeds, and PGD 2/255 not shown worse (Welch 95% upper end above zero).
"""
from __future__ import annotations

from pathlib import Path

from adaptaug.report import finished_runs, mean_std, paired_interval, welch_interval

HERE = Path(__file__).resolve().parent
FILES = (HERE / "results.csv", HERE.parent / "cifar10-full-trust-region" / "results.csv",
         HERE.parent / "cifar10-full-standard-fresh" / "results.csv")
NEW, DEFAULT, CROP_FLIP = "augnet[free_gate]", "augnet", "standard"
KEYS = (("val", "best_val_accuracy"), ("test", "eval_accuracy"), ("PGD 2/255", "eval_robust_pgd_eps2_accuracy"))


def main() -> None:
    rows = finished_runs(*FILES)
    seeds = sorted(seed for policy, seed in rows if policy == NEW)
    print(f"seeds {seeds}, full CIFAR-10, up to 50 epochs with early stopping")

    def pct(policy: str, key: str) -> dict[int, float]:
        return {s: 100 * float(rows[(policy, s)][key]) for s in seeds}

    def epoch(policy: str, seed: int, key: str) -> int:
        return int(float(rows[(policy, seed)][key]))

    for policy in (NEW, DEFAULT, CROP_FLIP):
        figures = "  ".join(f"{label} {m:.2f} ± {sd:.2f}" for label, (m, sd) in
                            ((label, mean_std(list(pct(policy, key).values()))) for label, key in KEYS))
        epochs = ", ".join(f"{epoch(policy, s, 'best_epoch')}/{epoch(policy, s, 'epoch')}" for s in seeds)
        print(f"  {policy:18s} {figures}  best/last epoch {epochs}")
    for base in (DEFAULT, CROP_FLIP):
        for label, key in KEYS:
            a, b = pct(NEW, key), pct(base, key)
            per_seed = ", ".join(f"{s}: {a[s] - b[s]:+.2f}" for s in seeds)
            diff, low, high, _ = paired_interval(a, b)
            ahead = sum(a[s] > b[s] for s in seeds)
            print(f"  {NEW} - {base} {label:9s} per seed {per_seed}; paired {diff:+.2f} [{low:+.2f}, {high:+.2f}]"
                  f"; ahead {ahead}/{len(seeds)}")
    val_new, val_default = pct(NEW, "best_val_accuracy"), pct(DEFAULT, "best_val_accuracy")
    ahead = sum(val_new[s] > val_default[s] for s in seeds)
    above = mean_std(list(val_new.values()))[0] > mean_std(list(val_default.values()))[0]
    pgd_diff, pgd_low, pgd_high = welch_interval(list(pct(NEW, KEYS[2][1]).values()),
                                                 list(pct(DEFAULT, KEYS[2][1]).values()))
    print(f"rule: validation mean above the default's: {above}; ahead at {ahead} of {len(seeds)} (4 needed); "
          f"PGD 2/255 Welch {pgd_diff:+.2f} [{pgd_low:+.2f}, {pgd_high:+.2f}] (upper end above zero needed)")
    passed = above and ahead >= 4 and pgd_high > 0 and len(seeds) == 6
    print("rule met: free_gate becomes the image default" if passed else "rule not met: free_gate stays an option")


if __name__ == "__main__":
    main()
