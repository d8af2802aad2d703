"""benchmarks/pooled_report.py: pooling the results.csv of grids that differ only in their seeds."""
import csv
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("pooled_report",
                                               Path(__file__).parents[1] / "benchmarks" / "pooled_report.py")
pooled_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pooled_report)


def _write(path: Path, rows: list[tuple[str, int, float]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, ["policy", "seed", "status", "eval_accuracy", "train_runtime", "model_runtime"])
        w.writeheader()
        for policy, seed, acc in rows:
            w.writerow({"policy": policy, "seed": seed, "status": "done", "eval_accuracy": acc,
                        "train_runtime": 10.0, "model_runtime": 5.0})
    return path


def test_pools_fresh_seeds_and_keeps_only_the_named_policies(tmp_path):
    first = _write(tmp_path / "a.csv", [("randaugment", 0, 0.50), ("randaugment", 1, 0.52), ("augnet", 0, 0.55),
                                        ("augnet", 1, 0.56), ("trivialaugment", 0, 0.40)])
    fresh = _write(tmp_path / "b.csv", [("augnet", 10, 0.57), ("randaugment", 10, 0.51)])
    out = tmp_path / "pooled.md"
    assert pooled_report.main([str(first), str(fresh), "--policies", "randaugment,augnet", "--out", str(out)]) == 0
    rows = pooled_report.pooled_rows([first, fresh], ["randaugment", "augnet"])
    assert [(r["policy"], r["seed"]) for r in rows] == [("randaugment", "0"), ("randaugment", "1"),
                                                         ("randaugment", "10"), ("augnet", "0"), ("augnet", "1"),
                                                         ("augnet", "10")]
    text = out.read_text()
    assert "| augnet | randaugment |" in text and "trivialaugment |" not in text
    # augnet minus randaugment per seed: +5, +4, +6 points -> paired mean +5.00
    line = next(x for x in text.splitlines() if x.startswith("| augnet | randaugment |"))
    assert line.split("|")[4].strip().startswith("+5.00 [")


def test_overlapping_grids_are_refused(tmp_path):
    a = _write(tmp_path / "a.csv", [("augnet", 3, 0.5)])
    b = _write(tmp_path / "b.csv", [("augnet", 3, 0.6)])
    with pytest.raises(SystemExit, match="augnet seed 3 is also in an earlier file"):
        pooled_report.pooled_rows([a, b], ["augnet"])


def test_finished_runs_pools_results_files_keyed_by_policy_and_seed(tmp_path):
    from adaptaug.report import finished_runs

    header = "policy,seed,status,eval_accuracy\n"
    (tmp_path / "a.csv").write_text(header + "augnet,0,done,0.70\naugnet,1,failed,\nstandard,0,reused,0.74\n")
    (tmp_path / "b.csv").write_text(header + "augnet,0,done,0.72\naugnet,2,done,0.71\n")
    rows = finished_runs(tmp_path / "a.csv", tmp_path / "b.csv")
    assert sorted(rows) == [("augnet", 0), ("augnet", 2), ("standard", 0)]  # the failed run left out
    assert rows[("augnet", 0)]["eval_accuracy"] == "0.72"  # the later file's row for the same run
