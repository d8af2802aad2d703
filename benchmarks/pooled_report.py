"""One report over the results.csv files of several compare grids of the same task and settings.

    python benchmarks/pooled_report.py reports/cifar10-5k-10seeds/results.csv \
        reports/cifar10-5k-replication/results.csv --policies 'randaugment,augnet[warmup=1]' --out pooled.md

Grids made with ``--first-seed`` add fresh seeds to earlier ones; this pools their rows (one per policy and
seed: a pair seen twice is an error, since the grids then overlap) and renders the same report.md that
``compare`` writes, without plots. It cannot check that the grids used the same epochs, data and limit:
results.csv does not carry them, so pool only grids whose report.md commands differ in their seeds alone.
"""
from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

from adaptaug.compare import parse_policies
from adaptaug.report import render_report


def pooled_rows(paths: list[Path], policies: list[str]) -> list[dict[str, str]]:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["policy"] not in policies:
                    continue
                key = (row["policy"], row["seed"])
                if key in rows:
                    raise SystemExit(f"{path}: {key[0]} seed {key[1]} is also in an earlier file; the grids overlap")
                rows[key] = {**row, "source": str(path)}
    return sorted(rows.values(), key=lambda r: (policies.index(r["policy"]), int(r["seed"])))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", type=Path, help="results.csv files of compare grids")
    ap.add_argument("--policies", required=True, help="comma-separated policy labels to keep, in report order")
    ap.add_argument("--task", default="", help="task name for the report's title")
    ap.add_argument("--out", type=Path, default=None, help="write the report here (default: stdout)")
    args = ap.parse_args(argv)
    policies = parse_policies(args.policies)
    rows = pooled_rows(args.results, policies)
    command = shlex.join(["python", "benchmarks/pooled_report.py", *map(str, args.results), "--policies",
                          ",".join(policies)])
    text = render_report(rows, command=command, task=args.task or "pooled grids", policies=policies, plots=[],
                         plot_note="Pooled from results.csv files: no plots (they need the run directories).")
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
