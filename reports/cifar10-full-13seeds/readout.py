"""The plan's read-outs from the committed results files: python reports/cifar10-full-13seeds/readout.py

Pools seeds 0-8 (`../cifar10-full-probe-every/nine-seeds-results.csv`, where the default ran under its explicit name
`augnet[probe_every=4]`) with seeds 9-12 (`results.csv`), and prints Welch intervals at 95% and at the level the plan
corrects for repeated looks, paired intervals, and per-policy means (adaptaug.report's interval helpers).
"""
from __future__ import annotations

from pathlib import Path

from adaptaug.report import finished_runs, mean_std, paired_interval, welch_interval

HERE = Path(__file__).resolve().parent
FILES = (HERE.parent / "cifar10-full-probe-every" / "nine-seeds-results.csv", HERE / "results.csv")
SAME_POLICY = {"augnet[probe_every=4]": "augnet"}  # the default's explicit name in the nine-seed grid


def load() -> dict[tuple[str, int], dict[str, str]]:
    return {(SAME_POLICY.get(policy, policy), seed): row for (policy, seed), row in finished_runs(*FILES).items()}


def column(rows, policy: str, seeds, name: str) -> list[float]:
    return [100 * float(rows[(policy, seed)][name]) for seed in seeds]


def compare(rows, base: str, seeds, looks: int, name: str = "eval_accuracy") -> None:
    a, b = column(rows, "augnet", seeds, name), column(rows, base, seeds, name)
    corrected = 1 - 0.05 / looks
    diff, low, high = welch_interval(a, b)
    _, c_low, c_high = welch_interval(a, b, corrected)
    _, p_low, p_high, _ = paired_interval(dict(enumerate(a)), dict(enumerate(b)))
    ahead = sum(x > y for x, y in zip(a, b))
    print(f"  augnet - {base:14s} {name:32s} {diff:+.2f} "
          f"Welch 95% [{low:+.2f}, {high:+.2f}], {100 * corrected:.2f}% [{c_low:+.2f}, {c_high:+.2f}], "
          f"paired 95% [{p_low:+.2f}, {p_high:+.2f}], ahead {ahead}/{len(a)}")


def describe(rows, policy: str, seeds) -> None:
    test, val = column(rows, policy, seeds, "eval_accuracy"), column(rows, policy, seeds, "best_val_accuracy")
    pgd = column(rows, policy, seeds, "eval_robust_pgd_eps2_accuracy")
    early = sum(int(float(rows[(policy, s)]["best_epoch"])) < 20 for s in seeds)
    figures = "  ".join(f"{label} {m:.2f} ± {sd:.2f}" for label, (m, sd) in
                        (("val", mean_std(val)), ("test", mean_std(test)), ("PGD 2/255", mean_std(pgd))))
    print(f"  {policy:14s} {figures}  best epoch < 20: {early}/{len(seeds)}")


def main() -> None:
    rows = load()
    for title, seeds in (("fresh seeds 9-12", range(9, 13)), ("pooled seeds 0-12", range(13))):
        print(title)
        for policy in ("augnet", "randaugment"):
            describe(rows, policy, seeds)
        compare(rows, "randaugment", seeds, looks=4)
        compare(rows, "randaugment", seeds, looks=4, name="eval_robust_pgd_eps2_accuracy")
    print("TrivialAugment, seeds 0-8 (not re-run; three looks)")
    for policy in ("augnet", "trivialaugment"):
        describe(rows, policy, range(9))
    compare(rows, "trivialaugment", range(9), looks=3)
    compare(rows, "trivialaugment", range(9), looks=3, name="eval_robust_pgd_eps2_accuracy")


if __name__ == "__main__":
    main()
