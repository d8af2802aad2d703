"""`adaptaug compare` and `adaptaug preview`: the grid, reuse of finished runs, failures, report, plots."""
import csv
import dataclasses
import json
import math
import os
from dataclasses import replace
from pathlib import Path

import pytest

import adaptaug.compare as compare_mod
import adaptaug.train as train_mod
from adaptaug.cli import main
from adaptaug.compare import GridConfig, compare
from adaptaug.errors import ConfigError
from adaptaug.policies import AugNetConfig
from adaptaug.report import welch_interval

PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = ("val_accuracy.png", "augnet_ops.png", "augnet_magnitudes.png", "robustness.png")
GRID = ["--task", "digits", "--policies", "none,augnet", "--seeds", "2", "--epochs", "2", "--limit", "400"]


def _rows(out):
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    assert main(["compare", *GRID, "--out", str(out), "--no-progress"]) == 0
    return out


def test_compare_writes_results_report_and_plots(grid):
    rows = _rows(grid)
    assert [(r["policy"], r["seed"], r["status"]) for r in rows] == [
        ("none", "0", "done"), ("none", "1", "done"), ("augnet", "0", "done"), ("augnet", "1", "done")]
    for r in rows:
        assert (grid / r["run_dir"] / "metrics.json").is_file()
        assert 0 <= float(r["eval_robust_pgd_eps8_accuracy"]) <= float(r["eval_accuracy"])
    report = (grid / "report.md").read_text()
    for policy in ("none", "augnet"):
        line = next(x for x in report.splitlines() if x.startswith(f"| {policy} | 2 |"))
        assert line.count("±") >= 10, line  # mean ± std in every column
    for header in ("test acc", "F1 (macro)", "loss", "FGSM 2/255", "PGD 2/255", "FGSM 8/255", "PGD 8/255",
                   "corruptions (mean)", "train time (s)", "AugNet overhead (%)", "gaussian blur", "AugNet (s)"):
        assert header in report, header
    assert "Best fixed policy: **none**" in report and "Welch" in report
    assert "adaptaug compare --task digits --policies none,augnet --seeds 2 --epochs 2 --limit 400" in report
    for name in PLOTS:
        data = (grid / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 1024, name
        assert f"]({name})" in report


def test_rerun_reuses_finished_runs(grid, monkeypatch):
    stamps = {p: p.stat().st_mtime_ns for p in grid.glob("runs/*/metrics.json")}

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare_mod, "_run_one", no_training)
    monkeypatch.setattr(train_mod, "train", no_training)
    result = compare(GridConfig(task="digits", out=str(grid), policies=("none", "augnet"), seeds=2, epochs=2,
                                limit=400))
    assert (result.ran, result.reused, result.failed) == (0, 4, 0)
    assert {p: p.stat().st_mtime_ns for p in grid.glob("runs/*/metrics.json")} == stamps
    assert {r["status"] for r in _rows(grid)} == {"reused"}
    assert "| augnet | 2 |" in (grid / "report.md").read_text()


def _with_default(init, **defaults):
    def patched(self, *args, **kwargs):
        init(self, *args, **{**defaults, **kwargs})
    return patched


def test_every_augnet_field_says_what_its_absence_means():
    from dataclasses import fields

    from adaptaug.policies.augnet import ABSENT_FIELD_MEANS
    assert set(ABSENT_FIELD_MEANS) == {f.name for f in fields(AugNetConfig)}


def test_runs_made_before_an_augnet_field_existed_are_reused(grid, tmp_path, monkeypatch):
    import shutil

    from adaptaug.compare import is_finished, run_specs
    out = tmp_path / "old"
    shutil.copytree(grid / "runs", out / "runs")
    config_path = out / "runs" / "augnet-s0" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["augnet"]["per_sample"]  # as a run written before per_sample was added
    config_path.write_text(json.dumps(saved))
    spec = next(s for s in run_specs(GridConfig(task="digits", out=str(out), policies=("augnet",), seeds=1,
                                                epochs=2, limit=400)))
    assert is_finished(spec)  # the missing field had its default's behaviour
    (wants_other,) = run_specs(GridConfig(task="digits", out=str(out), policies=("augnet[per_sample]",), seeds=1,
                                          epochs=2, limit=400))
    (wants_other.run_dir).mkdir(parents=True)
    shutil.copy(out / "runs" / "augnet-s0" / "metrics.json", wants_other.run_dir)
    shutil.copy(config_path, wants_other.run_dir)
    with pytest.raises(ConfigError, match="per_sample"):
        is_finished(wants_other)
    # a later change of AugNetConfig's default does not relabel it: the saved run keeps meaning per_sample=False
    with monkeypatch.context() as m:
        m.setattr(AugNetConfig, "__init__", _with_default(AugNetConfig.__init__, per_sample=True))
        (changed_default,) = run_specs(GridConfig(task="digits", out=str(out), policies=("augnet",), seeds=1,
                                                  epochs=2, limit=400))
        assert changed_default.config.augnet.per_sample
        with pytest.raises(ConfigError, match="per_sample"):
            is_finished(changed_default)
    # another policy's run does not depend on AugNet's settings: reused whatever they were
    none_config = out / "runs" / "none-s0" / "config.json"
    saved = json.loads(none_config.read_text())
    saved["augnet"]["reward"] = "alignment"
    none_config.write_text(json.dumps(saved))
    (none_spec,) = run_specs(GridConfig(task="digits", out=str(out), policies=("none",), seeds=1, epochs=2,
                                        limit=400))
    assert is_finished(none_spec)


@pytest.mark.parametrize("task", ["digits", "sst2"])
def test_runs_made_before_the_gate_and_chunk_defaults_are_reused_only_where_they_stay_off(task, tmp_path):
    # the gate became the default over a base augmentation (image tasks), then the chunked probe under the gate, then
    # a probe every 4th round under it: an older augnet run (gate False, whole probe, nothing resolved) is what
    # `augnet` still means on text and no longer on images; a gated run from before the chunk default probed the
    # whole probe, and one from before the cadence default probed every round, which `augnet` no longer means
    from adaptaug.compare import is_finished, run_specs
    from adaptaug.policies.augnet import TEXT_SLOTS
    from adaptaug.tasks import op_modality, stacks_base
    (spec,) = run_specs(GridConfig(task=task, out=str(tmp_path), policies=("augnet",), seeds=1, epochs=2))
    assert spec.config.augnet.gate is None and spec.config.augnet.probe_chunk is None
    assert stacks_base(task) is (task == "digits")
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "metrics.json").write_text("{}")
    saved = spec.config.to_dict()
    def resolved(stacked):
        return json.loads(json.dumps(dataclasses.asdict(spec.config.augnet.resolved(stacked, op_modality(task)))))
    for gate, recorded, reused in (
            (False, {}, task == "sst2"),  # before the gate default
            (None, {"resolved_augnet_gate": True}, False),  # before the chunk default
            (None, {"resolved_augnet_gate": False}, task == "sst2"),
            (None, {"resolved_augnet_gate": True, "resolved_augnet_probe_chunk": 32}, False),  # every round
            (None, {"resolved_augnet": resolved(True)}, task == "digits"),  # since: the whole config as it ran
            (None, {"resolved_augnet": resolved(False)}, task == "sst2")):
        saved["augnet"]["gate"] = gate
        # the cadence as configs recorded it before its default: 1; since, None (resolved_augnet says what ran)
        saved["augnet"]["probe_every"] = None if "resolved_augnet" in recorded else 1
        # the ops per sample as this grid asks for them, so that only the gate and the probe decide here (text's
        # two-op default, below)
        saved["augnet"]["slots"] = TEXT_SLOTS if task == "sst2" else 1
        for key in ("resolved_augnet_gate", "resolved_augnet_probe_chunk", "resolved_augnet"):
            saved.pop(key, None)
        saved.update(recorded)
        (spec.run_dir / "config.json").write_text(json.dumps(saved))
        if reused:
            assert is_finished(spec)
        else:
            with pytest.raises(ConfigError, match=r"this grid asks for augnet\.(gate|probe_chunk|probe_every)"):
                is_finished(spec)
    # two ops per sample became the default on text after those: a text run that drew one op is not `augnet` there
    saved.update(resolved_augnet={**resolved(stacks_base(task)), "slots": 1})
    (spec.run_dir / "config.json").write_text(json.dumps(saved))
    if task == "sst2":
        with pytest.raises(ConfigError, match=r"this grid asks for augnet\.slots=\[2\]"):
            is_finished(spec)
    else:
        assert is_finished(spec)  # images still draw one op
    # the whole probe has one meaning however it is spelt: a run that ran it (every round) is the grid's
    # augnet[probe_chunk=256][probe_every=1]
    if task == "digits":
        label = "augnet[probe_chunk=256][probe_every=1]"
        (whole,) = run_specs(GridConfig(task=task, out=str(tmp_path), policies=(label,), seeds=1, epochs=2))
        whole.run_dir.mkdir(parents=True)
        (whole.run_dir / "metrics.json").write_text("{}")
        saved.pop("resolved_augnet")
        saved.update(resolved_augnet_gate=True)  # a gated run from before the chunk default
        saved["augnet"]["probe_every"] = 1
        (whole.run_dir / "config.json").write_text(json.dumps(saved))
        assert is_finished(whole)


def test_fresh_updates_only_relabels_runs_with_a_warmup(grid, tmp_path):
    import shutil

    from adaptaug.compare import is_finished, run_specs
    out = tmp_path / "old"
    shutil.copytree(grid / "runs", out / "runs")
    config_path = out / "runs" / "augnet-s0" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["augnet"]["fresh_updates"]  # a run made before the field: the old rule, which only a warmup reads
    config_path.write_text(json.dumps(saved))
    (fresh,) = run_specs(GridConfig(task="digits", out=str(out), policies=("augnet[fresh]",), seeds=1, epochs=2,
                                    limit=400))
    assert fresh.config.augnet.fresh_updates
    fresh.run_dir.mkdir(parents=True)
    for name in ("config.json", "metrics.json"):
        shutil.copy(out / "runs" / "augnet-s0" / name, fresh.run_dir)
    assert is_finished(fresh)  # no warmup: the same run either way
    saved["augnet"]["warmup"] = 1.0
    # a warmup turns the automatic gate off, and with it the chunked probe and the probe every 4th round
    saved["resolved_augnet"] = {**saved["resolved_augnet"], "warmup": 1.0, "gate": False, "probe_chunk": None,
                                "probe_every": 1}
    for label, reused in (("augnet[warmup=1]", True), ("augnet[warmup=1][fresh]", False)):
        (spec,) = run_specs(GridConfig(task="digits", out=str(out), policies=(label,), seeds=1, epochs=2,
                                       limit=400))
        spec.run_dir.mkdir(parents=True)
        (spec.run_dir / "config.json").write_text(json.dumps(saved))
        shutil.copy(out / "runs" / "augnet-s0" / "metrics.json", spec.run_dir)
        if reused:
            assert is_finished(spec)  # an old warmup run used the old rule, today's default
        else:
            with pytest.raises(ConfigError, match="fresh_updates"):
                is_finished(spec)


def test_runs_made_before_metrics_carried_validation_get_it_from_their_history(grid, tmp_path, monkeypatch):
    # a report mixing old runs (no best_val_accuracy in metrics.json) with new ones showed a mean over the new
    # runs only, under the count of all of them: old runs now read the kept epoch from history.csv
    import shutil

    out = tmp_path / "old-metrics"
    shutil.copytree(grid / "runs", out / "runs")
    wanted = {}
    for metrics_path in (out / "runs").glob("*-s0/metrics.json"):
        metrics = json.loads(metrics_path.read_text())
        wanted[metrics_path.parent.name] = metrics.pop("best_val_accuracy"), metrics.pop("best_val_loss")
        metrics_path.write_text(json.dumps(metrics))
    monkeypatch.setattr(compare_mod, "_run_one", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    compare(GridConfig(task="digits", out=str(out), policies=("none", "augnet"), seeds=2, epochs=2, limit=400))
    rows = {Path(r["run_dir"]).name: r for r in _rows(out)}
    assert len(wanted) == 2
    for run, (accuracy, loss) in wanted.items():
        assert float(rows[run]["best_val_accuracy"]) == pytest.approx(accuracy)
        assert float(rows[run]["best_val_loss"]) == pytest.approx(loss)


def test_rerun_with_other_settings_is_refused(grid, capsys):
    argv = list(GRID)
    argv[argv.index("--epochs") + 1] = "3"
    assert main(["compare", *argv, "--out", str(grid)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epochs=2" in err[0] and "epochs=3" in err[0], err


def test_one_failing_run_does_not_stop_the_others(tmp_path, monkeypatch):
    real_train = train_mod.train

    def flaky(config, **kwargs):
        if config.policy == "standard":
            raise RuntimeError("simulated crash")
        return real_train(config, **kwargs)

    monkeypatch.setattr(train_mod, "train", flaky)
    result = compare(GridConfig(task="digits", out=str(tmp_path), policies=("standard", "none"), seeds=1, epochs=1,
                                limit=300, train={"robustness": False}))  # robustness is not the subject here
    assert (result.ran, result.failed) == (2, 1)
    rows = {r["policy"]: r for r in _rows(tmp_path)}
    assert rows["standard"]["status"] == "failed" and rows["standard"]["error"] == "RuntimeError: simulated crash"
    assert rows["none"]["status"] == "done" and float(rows["none"]["eval_accuracy"]) > 0
    report = (tmp_path / "report.md").read_text()
    assert "## Failed runs" in report and "simulated crash" in report
    assert (tmp_path / "val_accuracy.png").read_bytes().startswith(PNG)


def test_parallel_jobs_record_a_failure_and_finish_the_rest(tmp_path):
    # a file where a run directory should go makes that run fail inside its worker process
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "standard-s0").write_text("in the way")
    result = compare(GridConfig(task="digits", out=str(tmp_path), policies=("none", "standard"), seeds=1, epochs=1,
                                limit=300, jobs=2, train={"robustness": False}))
    rows = {r["policy"]: r for r in _rows(tmp_path)}
    assert rows["none"]["status"] == "done" and rows["standard"]["status"] == "failed"
    assert rows["standard"]["error"] and result.failed == 1
    assert json.loads((tmp_path / "runs" / "none-s0" / "config.json").read_text())["robustness"] is False
    assert "No robustness keys" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["compare", "--policies", "none,magic"], "unknown policy 'magic' in --policies"),
    (["compare", "--policies", "none", "--seeds", "0"], "expected a positive integer, got '0'"),
    (["compare", "--policies", "none", "--first-seed", "-1"], "expected a non-negative integer, got '-1'"),
    (["compare", "--policies", "none,none"], "lists a policy twice"),
    (["preview", "--policy", "magic"], "invalid choice: 'magic'"),
])
def test_bad_input_is_one_clear_line(argv, message, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaptaug: error:") and message in err[0], err


def test_preview_writes_a_png(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["preview", "--task", "digits", "--policy", "randaugment", "--n", "8", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(PNG) and len(data) > 1024


def test_welch_interval_matches_scipy():
    from scipy import stats

    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.89, 0.91]
    diff, lo, hi = welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(sum(a) / 4 - sum(b) / 3)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))
    assert all(math.isnan(v) for v in welch_interval([0.9], b)[1:])


def test_augnet_ablations_are_grid_entries(tmp_path):
    from adaptaug.compare import parse_policies, run_specs
    grid = GridConfig(task="digits", out=str(tmp_path), seeds=1,
                      policies=("augnet", "augnet[frozen]", "augnet[reward=mixed]", "augnet[without=gap]",
                                "augnet[probe_every=4]", "augnet[entropy_coef=0.1]", "augnet[lr=0.003]",
                                "augnet[probe_chunk=32]", "augnet[narrow]", "augnet[gate]", "augnet[no_gate]"))
    specs = {s.policy: s for s in run_specs(grid)}
    assert {s.run_dir.name for s in specs.values()} == {"augnet-s0", "augnet-frozen-s0", "augnet-reward-mixed-s0",
                                                        "augnet-without-gap-s0", "augnet-probe_every-4-s0",
                                                        "augnet-entropy_coef-0-1-s0", "augnet-lr-0-003-s0",
                                                        "augnet-probe_chunk-32-s0", "augnet-narrow-s0",
                                                        "augnet-gate-s0", "augnet-no_gate-s0"}
    # the gate: None (the task decides: on over a base augmentation), or forced on / off
    assert [specs[k].config.augnet.gate for k in ("augnet", "augnet[gate]", "augnet[no_gate]")] == [None, True, False]
    assert specs["augnet[lr=0.003]"].config.augnet.lr == 0.003
    assert specs["augnet[probe_chunk=32]"].config.augnet.probe_chunk == 32
    trust = run_specs(replace(grid, policies=("augnet[max_kl=0.0003]",)))[0]
    assert trust.run_dir.name == "augnet-max_kl-0-0003-s0" and trust.config.augnet.max_kl == 0.0003
    free = run_specs(replace(grid, policies=("augnet[free_gate]",)))[0]
    assert free.run_dir.name == "augnet-free_gate-s0" and free.config.augnet.free_gate is True
    two = run_specs(replace(grid, policies=("augnet[slots=2]",)))[0]
    assert two.run_dir.name == "augnet-slots-2-s0" and two.config.augnet.slots == 2
    long_rounds = run_specs(replace(grid, policies=("augnet[update_every=32][minibatch=2048][buffer_size=2048]",)))[0]
    assert long_rounds.run_dir.name == "augnet-update_every-32-minibatch-2048-buffer_size-2048-s0"
    augnet = long_rounds.config.augnet
    assert (augnet.update_every, augnet.minibatch, augnet.buffer_size) == (32, 2048, 2048)
    assert specs["augnet"].config.augnet.wide and not specs["augnet[narrow]"].config.augnet.wide
    assert all(s.config.policy == "augnet" for s in specs.values())
    assert specs["augnet"].config.augnet.learn and not specs["augnet[frozen]"].config.augnet.learn
    assert specs["augnet[reward=mixed]"].config.augnet.reward == "mixed"
    assert specs["augnet[without=gap]"].config.augnet.drop_features == ("gap",)
    assert specs["augnet[probe_every=4]"].config.augnet.probe_every == 4
    assert specs["augnet[entropy_coef=0.1]"].config.augnet.entropy_coef == 0.1
    for bad in ("augnet[reward=nope]", "augnet[without=nope]", "augnet[fast]", "augnet[probe_every=0]",
                "augnet[probe_every=1.5]", "augnet[uniform_floor=1.0]", "augnet[probe_every=4][probe_every=8]",
                "augnet[frozen][frozen]", "augnet[probe_every=4]x", "augnet[]", "augnet[lr=0]",
                "augnet[probe_chunk=0]", "augnet[narrow][narrow]", "augnet[max_kl=0]"):
        with pytest.raises(ConfigError):
            parse_policies(f"none,{bad}")


def test_first_seed_gives_fresh_seeds_and_names_them_in_the_command(tmp_path):
    from adaptaug.compare import run_specs
    grid = GridConfig(task="digits", out=str(tmp_path), seeds=2, first_seed=10, policies=("none", "augnet"))
    specs = run_specs(grid)
    assert [(s.policy, s.seed, s.run_dir.name) for s in specs] == [
        ("none", 10, "none-s10"), ("none", 11, "none-s11"), ("augnet", 10, "augnet-s10"), ("augnet", 11, "augnet-s11")]
    assert all(s.config.seed == s.seed for s in specs)
    assert "--seeds 2 --first-seed 10" in grid.command()
    assert "--first-seed" not in GridConfig(task="digits", out=str(tmp_path), seeds=2).command()
    with pytest.raises(ConfigError, match="first_seed must be a non-negative integer"):
        GridConfig(task="digits", out=str(tmp_path), first_seed=-3)


def test_augnet_variants_chain_settings(tmp_path):
    from adaptaug.compare import run_specs
    label = "augnet[probe_every=4][probe_size=64][without=gap][without=trend]"
    (spec,) = run_specs(GridConfig(task="digits", out=str(tmp_path), seeds=1, policies=(label,)))
    assert spec.run_dir.name == "augnet-probe_every-4-probe_size-64-without-gap-without-trend-s0"
    assert (spec.config.augnet.probe_every, spec.config.augnet.probe_size) == (4, 64)
    assert spec.config.augnet.drop_features == ("gap", "trend")
    (spec,) = run_specs(GridConfig(task="digits", out=str(tmp_path), seeds=1,
                                   policies=("augnet[per_sample][minibatch=256][without=hardness]",)))
    assert spec.config.augnet.per_sample and spec.config.augnet.minibatch == 256
    assert spec.config.augnet.drop_features == ("hardness",)
    # a combination AugNetConfig refuses is refused as a label too
    with pytest.raises(ConfigError, match="probe_every 1"):
        run_specs(GridConfig(task="digits", out=str(tmp_path), seeds=1,
                             policies=("augnet[reward=val-drop][probe_every=2]",)))


def test_report_compares_augnet_with_trivialaugment_and_randaugment():
    from adaptaug.report import render_report

    def row(policy, seed, acc, pgd, seconds, model_seconds):
        return {"policy": policy, "seed": seed, "status": "done", "eval_accuracy": acc, "eval_f1": acc,
                "eval_loss": 1.0, "eval_robust_pgd_eps2_accuracy": pgd, "eval_robust_pgd_eps8_accuracy": pgd / 2,
                "train_runtime": seconds, "model_runtime": model_seconds}

    # augnet's runs met a quieter machine (model step 4 s, not 5 s): per model-step second it costs 1.31x
    rows = [row("trivialaugment", 0, 0.50, 0.30, 10.0, 5.0), row("trivialaugment", 1, 0.52, 0.32, 10.0, 5.0),
            row("augnet", 0, 0.60, 0.35, 10.4, 4.0), row("augnet", 1, 0.64, 0.33, 10.6, 4.0)]
    report = render_report(rows, command="c", task="t", policies=["trivialaugment", "augnet"], plots=[],
                           plot_note="")
    section = report.split("## AugNet against TrivialAugment and RandAugment")[1].split("\n## ")[0]
    line = next(x for x in section.splitlines() if x.startswith("| augnet | trivialaugment |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    diff, lo, hi = welch_interval([0.60, 0.64], [0.50, 0.52])
    assert cells[2] == f"{100 * diff:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"  # test accuracy: +11.00
    # paired by seed: differences 10 and 12 points, t(0.975, 1 df) = 12.706, sd 1.414 / sqrt(2) -> +-12.71
    assert cells[3] == "+11.00 [-1.71, +23.71]"
    assert cells[4].startswith("+3.00")  # PGD 2/255 (the smaller eps)
    assert cells[5:] == ["1.05x", "1.31x"]  # seconds 10.5 / 10.0; per model-step s (2.625 / 2.0)
    assert "randaugment" not in section  # no such runs: no row
    no_baseline = render_report(rows[2:], command="c", task="t", policies=["augnet"], plots=[], plot_note="")
    assert "## AugNet against" not in no_baseline


def test_paired_interval_uses_only_the_seeds_both_sides_ran():
    from adaptaug.report import paired_interval
    diff, lo, hi, n = paired_interval({0: 0.6, 1: 0.7, 7: 0.9}, {0: 0.5, 1: 0.5, 3: 0.1})
    assert n == 2 and diff == pytest.approx(0.15) and lo < 0.15 < hi  # seeds 7 and 3 have no partner
    diff, lo, hi, n = paired_interval({0: 0.6}, {0: 0.5, 1: 0.5})
    assert n == 1 and diff == pytest.approx(0.1) and math.isnan(lo) and math.isnan(hi)


def test_ner_reports_compare_entity_f1_not_token_accuracy():
    from adaptaug.report import render_report

    def row(policy, seed, token_acc, f1):
        return {"policy": policy, "seed": seed, "status": "done", "eval_accuracy": token_acc, "eval_f1": f1,
                "eval_precision": f1, "eval_loss": 0.2, "train_runtime": 10.0, "model_runtime": 5.0}

    # token accuracy says augnet is worse, entity F1 (what NER is judged by) that it is better
    rows = [row("trivialaugment", 0, 0.961, 0.77), row("trivialaugment", 1, 0.962, 0.78),
            row("augnet", 0, 0.959, 0.79), row("augnet", 1, 0.960, 0.80)]
    report = render_report(rows, command="c", task="conll2003", policies=["trivialaugment", "augnet"], plots=[],
                           plot_note="")
    assert "| token acc | entity F1 (micro) |" in report and "F1 (macro)" not in report
    section = report.split("## AugNet against TrivialAugment and RandAugment")[1].split("\n## ")[0]
    assert "| Δ entity F1 | Δ entity F1 (paired) |" in section
    line = next(x for x in section.splitlines() if x.startswith("| augnet | trivialaugment |"))
    assert line.split("|")[3].strip().startswith("+2.00 [")


def test_amp_is_part_of_a_runs_identity_and_channels_last_is_not(grid, tmp_path, capsys):
    import shutil

    from adaptaug.compare import is_finished, run_specs
    out = tmp_path / "amp"
    shutil.copytree(grid / "runs", out / "runs")
    config_path = out / "runs" / "none-s0" / "config.json"
    saved = json.loads(config_path.read_text())
    del saved["amp"]  # as a run written before amp existed: it ran in float32
    config_path.write_text(json.dumps(saved))

    def spec(**train):
        (only,) = run_specs(GridConfig(task="digits", out=str(out), policies=("none",), seeds=1, epochs=2,
                                       limit=400, train=train))
        return only

    assert is_finished(spec()) and is_finished(spec(channels_last=True))  # layout: rounding only, like device
    with pytest.raises(ConfigError, match="amp='off'.*amp='bf16'"):
        is_finished(spec(amp="bf16"))
    # the command line passes both on to every run and names them in the report's command
    assert main(["compare", *GRID, "--amp", "bf16", "--channels-last", "--out", str(out), "--no-progress"]) == 2
    assert "amp='bf16'" in capsys.readouterr().err
    command = GridConfig(task="digits", out=str(out), train={"amp": "bf16", "channels_last": True}).command()
    assert "--amp bf16 --channels-last" in command
    assert "--amp" not in GridConfig(task="digits", out=str(out)).command()
    assert "--no-channels-last" in GridConfig(task="digits", out=str(out), train={"channels_last": False}).command()


_POOL_SCRIPT = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from adaptaug.compare import _exit_with_parent
if __name__ == "__main__":
    kwargs = {"initializer": _exit_with_parent} if sys.argv[1] == "watch" else {}
    pool = ProcessPoolExecutor(1, mp_context=get_context("spawn"), **kwargs)
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be read


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_killed_grid_takes_its_workers_with_it():
    # SIGKILL (or SIGTERM) reaches the grid's process alone; without the initializer its worker trains on
    import signal
    import subprocess
    import sys
    import time

    for watch, survives in (("watch", False), ("none", True)):
        parent = subprocess.Popen([sys.executable, "-c", _POOL_SCRIPT, watch], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)  # the killed pool's leak warnings
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the pool script printed {line!r}, not its worker's pid"
        worker = int(line)
        assert _running(worker)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + (3 if survives else 15)
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            assert _running(worker) is survives
        finally:
            if _running(worker):
                os.kill(worker, signal.SIGKILL)


@pytest.mark.skipif(os.name != "posix", reason="the run lock is flock, POSIX only")
def test_a_run_another_process_is_training_is_not_trained_twice(tmp_path):
    import fcntl

    from adaptaug.config import TrainConfig
    run_dir = tmp_path / "runs" / "none-s0"
    config = TrainConfig(policy="none", epochs=1, limit=300, robustness=False, out=str(run_dir)).to_dict()
    run_dir.mkdir(parents=True)
    with open(run_dir / compare_mod.RUN_LOCK, "a") as held:  # as another grid's worker holds it while it trains
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = compare_mod._run_one(config)
        assert result["status"] == "failed" and "another process is training" in result["error"]
        assert not (run_dir / "metrics.json").exists() and not (run_dir / "config.json").exists()
    result = compare_mod._run_one(config)  # its holder is gone: the run trains
    assert result["status"] == "done" and (run_dir / "metrics.json").is_file()


def test_trace_summary_says_which_ops_a_run_committed_to_and_when():
    from adaptaug.report import summarise_trace

    def round_(a, b, c, share):
        return {"step": 0.0, "entropy": 0.5, "p_A": a, "p_B": b, "p_C": c, "augmented_share": share}

    trace = [round_(0.3, 0.4, 0.3, 0.5), round_(0.2, 0.7, 0.1, 0.3), round_(0.6, 0.3, 0.1, 0.1),
             round_(0.2, 0.5, 0.3, 0.1)]
    s = summarise_trace(trace)
    assert s["rounds"] == 4 and s["ops"] == 3 and s["committed_share"] == 0.75  # rounds 2-4: an op at 0.5 or more
    assert s["committed_to"] == ["B", "A"]  # in the order it first committed; B's return is not repeated
    assert (s["last_top"], s["last_top_p"], s["last_entropy"]) == ("B", 0.5, 0.5)
    assert s["mean_share"] == pytest.approx(0.25) and s["last_share"] == 0.1
    ungated = summarise_trace([{k: v for k, v in r.items() if k != "augmented_share"} for r in trace])
    assert "mean_share" not in ungated
    assert summarise_trace([]) is None and summarise_trace([{"step": 1.0}]) is None  # frozen: no rounds


def test_run_by_run_section_states_the_cap_for_its_op_spaces():
    from adaptaug.report import _dynamics_section

    row = {"policy": "augnet", "seed": 0, "rounds": 3, "committed_share": 1.0, "committed_to": ["A"],
           "last_top": "A", "last_top_p": 0.9, "last_entropy": 0.2}
    text = "\n".join(_dynamics_section([{**row, "ops": 6}, {**row, "seed": 1, "ops": 14}]))
    assert "caps it at 92% over 6 ops, 91% over 14 ops" in text  # 0.9 + 0.1 / n at the default floor


def test_report_lists_what_each_augnet_run_did(grid):
    from adaptaug.report import _read_csv, summarise_trace

    section = (grid / "report.md").read_text().split("## What AugNet did, run by run")[1].split("\n## ")[0]
    lines = [x for x in section.splitlines() if x.startswith("| augnet |")]
    assert [x.split("|")[2].strip() for x in lines] == ["0", "1"]  # one row per AugNet run, none for `none`
    for line, seed in zip(lines, (0, 1)):
        expected = summarise_trace(_read_csv(grid / "runs" / f"augnet-s{seed}" / "trace.csv"))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[2] == str(expected["rounds"]) and expected["rounds"] > 0
        assert cells[5] == f"{expected['last_top']} ({100 * expected['last_top_p']:.0f}%)"


def test_a_replayed_schedule_is_a_grid_entry(grid, tmp_path):
    source = grid / "runs" / "augnet-s0"
    out = tmp_path / "g"
    args = ["compare", "--task", "digits", "--policies", f"none,replay:{source}", "--seeds", "1", "--epochs", "1",
            "--limit", "400", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    rows = _rows(out)
    assert [(r["policy"], r["status"]) for r in rows] == [("none", "done"), (f"replay:{source}", "done")]
    config = json.loads((out / "runs" / "replay-augnet-s0-s0" / "config.json").read_text())
    assert config["policy"] == f"replay:{source}"
    replayed = list(csv.DictReader(open(out / "runs" / "replay-augnet-s0-s0" / "trace.csv")))
    assert replayed and "source_step" in replayed[0]  # the replay's own trace: the schedule's rows as they came in
    assert main(args) == 0 and _rows(out)[1]["status"] == "reused"  # on a rerun
    with pytest.raises(ConfigError, match="missing does not exist"):
        GridConfig(task="digits", out=str(out), policies=f"replay:{tmp_path / 'missing'}")
