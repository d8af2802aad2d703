"""`adaptaug evaluate` (a finished run on other data) and `--policy replay:` (a logged AugNet schedule, fixed)."""
import csv
import dataclasses
import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared

from adaptaug import robustness as rb
from adaptaug.cli import main
from adaptaug.config import TrainConfig
from adaptaug.errors import ConfigError, DataError
from adaptaug.evaluate_run import evaluate_run
from adaptaug.ops.space import OpSpace
from adaptaug.augment import NO_OP
from adaptaug.policies.replay import ReplayPolicy, Schedule, export_policy, load_schedule, schedule_from_run
from adaptaug.train import train

RUNTIME = ("runtime", "per_second", "overhead")
# small suites, so the robustness keys are reproduced too without minutes of attacks
SMALL_SUITES = {"image": rb.ImageSuite(eps_255=(8,), pgd_steps=2, corruptions=("brightness", "gaussian_noise"),
                                       severities=(3,), attack_samples=64),
                "text": rb.TextSuite(eps_percent=(10,), pgd_steps=2, max_samples=64, rates_percent=(10,)),
                "tagging": rb.TextSuite(eps_percent=(10,), pgd_steps=2, max_samples=32, rates_percent=(10,))}


DIGITS = dict(task="digits", epochs=3, lr=3e-3, seed=0)  # 21 steps per epoch, 15 AugNet updates, ~80% accuracy


@pytest.fixture(autouse=True)
def _small_suites(monkeypatch):
    for kind, suite in SMALL_SUITES.items():
        monkeypatch.setitem(rb.SUITES, kind, suite)
    # these models are tiny: one intra-op thread is faster, and much faster on a loaded 2-core machine
    torch.set_num_threads(1)


def _stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not any(t in k for t in RUNTIME)}


def _reproduces(run_dir: Path, got: dict) -> None:
    saved = _stable(json.loads((run_dir / "metrics.json").read_text()))
    assert {k: got.get(k) for k in saved} == saved
    assert any(k.startswith("eval_robust_") for k in saved)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "run"
    with pytest.MonkeyPatch.context() as mp:
        for kind, suite in SMALL_SUITES.items():
            mp.setitem(rb.SUITES, kind, suite)
        torch.set_num_threads(1)
        train(TrainConfig(policy="augnet", out=str(out), **DIGITS), progress=False)
    return out


def _digits_png_tree(root: Path, shift: int = 0, extra_class: str | None = None) -> Path:
    from PIL import Image

    from adaptaug.data import load_image_task

    test = load_image_task("digits").test
    for i, (img, y) in enumerate(zip(test.images, test.labels.tolist())):
        folder = root / "test" / (extra_class if extra_class and i == 0 else test.classes[y])
        folder.mkdir(parents=True, exist_ok=True)
        pixels = np.clip(img[0].numpy().astype(np.int64) + shift, 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    return root


# ------------------------------------------------------------------------------------------- evaluate


def test_evaluate_reproduces_the_runs_metrics(digits_run):
    assert json.loads((digits_run / "assets.json").read_text())["classes"] == [str(d) for d in range(10)]
    _reproduces(digits_run, evaluate_run(digits_run))


def test_test_only_image_folder_shifted_copy_and_unknown_class(digits_run, tmp_path):
    saved = json.loads((digits_run / "metrics.json").read_text())
    same = evaluate_run(digits_run, _digits_png_tree(tmp_path / "png"), robustness=False)
    # the same 359 images from PNG files (another order): the same predictions
    assert same["eval_accuracy"] == saved["eval_accuracy"] and same["eval_f1"] == saved["eval_f1"]
    assert same["eval_loss"] == pytest.approx(saved["eval_loss"], rel=1e-5)
    assert not any(k.startswith("eval_robust") for k in same)
    bright = evaluate_run(digits_run, _digits_png_tree(tmp_path / "bright", shift=120), robustness=False)
    assert bright["eval_accuracy"] < same["eval_accuracy"] - 0.1
    # classes map by name: a folder holding some of the classes is fine
    for c in "3456789":
        for f in (tmp_path / "png" / "test" / c).iterdir():
            f.unlink()
        (tmp_path / "png" / "test" / c).rmdir()
    part = evaluate_run(digits_run, tmp_path / "png" / "test", robustness=False)  # a folder of class folders
    assert part["eval_samples_per_second"] > 0 and 0 < part["eval_accuracy"] <= 1
    with pytest.raises(DataError, match=r"class folder .*cat is not a class the model was trained on"):
        evaluate_run(digits_run, _digits_png_tree(tmp_path / "cat", extra_class="cat"), robustness=False)


def _head(src: Path, dst: Path, n: int, blank_separated: bool = False) -> None:
    """The first ``n`` records (lines, or blank-separated sentences) of a gzip'd file, to a plain file."""
    out, count = [], 0
    with gzip.open(src, "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(line)
            count += not blank_separated or not line.strip()
            if count >= n:
                break
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(out), encoding="utf-8")


def test_text_run_evaluates_on_jsonl_folder_and_file(tmp_path):
    data = tmp_path / "sst2"
    _head(shared("sst2") / "train.jsonl.gz", data / "train.jsonl", 1200)
    _head(shared("sst2") / "test.jsonl.gz", data / "test.jsonl", 200)
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        train(TrainConfig(task="sst2", data=str(data), policy="augnet", epochs=1, lr=3e-3, out=str(run)),
              progress=False)
    assert (run / "vocab.json").is_file()
    moved = tmp_path / "elsewhere" / "reviews.jsonl"  # the run's own test file, as a file somewhere else
    moved.parent.mkdir()
    moved.write_bytes((data / "test.jsonl").read_bytes())
    _reproduces(run, evaluate_run(run, moved))
    (data / "train.jsonl").unlink()  # the vocabulary comes from the run, not from the data
    _reproduces(run, evaluate_run(run, data))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": 1}\n{"text": "odd", "label": 3}\n')
    with pytest.raises(DataError, match="line 2: label must be 0 or 1"):
        evaluate_run(run, bad, robustness=False)


def test_conll_run_evaluates_on_another_conll_file(tmp_path):
    data = tmp_path / "conll"
    for name, n in (("train", 400), ("valid", 120), ("test", 120)):
        _head(shared("conll2003") / f"{name}.txt.gz", data / f"{name}.txt", n, blank_separated=True)
    run = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        train(TrainConfig(task="conll2003", data=str(data), policy="none", epochs=1, lr=3e-3, out=str(run)),
              progress=False)
    _reproduces(run, evaluate_run(run))
    other = evaluate_run(run, data / "valid.txt", robustness=False)
    assert {"eval_f1", "eval_precision", "eval_recall", "eval_accuracy"} <= set(other)
    assert other["eval_samples_per_second"] > 0
    assert evaluate_run(run, data, split="val", robustness=False)["eval_f1"] == other["eval_f1"]
    unseen = tmp_path / "unseen.txt"
    unseen.write_text("Paris NNP B-NP B-CITY\nis VBZ B-VP O\n\n")
    with pytest.raises(DataError, match=r"unseen.txt:1: tag 'B-CITY' never occurs in the training split"):
        evaluate_run(run, unseen, robustness=False)


# ------------------------------------------------------------------------------------------- replay


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _trace(path: Path) -> list[dict]:
    rows = _csv(path)
    return [{k: v for k, v in r.items() if k == "step" or k[:2] in ("p_", "m_")} for r in rows]


def test_replay_run_logs_exactly_the_source_schedule(digits_run, tmp_path):
    """Same config and length: the replayed distribution at every step is the logged one (its trace equals the
    source trace's step / p_ / m_ columns), and two replays with the same seed sample the same plans."""
    config = dict(DIGITS, robustness=False)
    result = train(TrainConfig(policy=f"replay:{digits_run}", out=str(tmp_path / "r"), **config), progress=False)
    source = _trace(digits_run / "trace.csv")
    assert len(source) >= 3 and _trace(tmp_path / "r" / "trace.csv") == source
    again = train(TrainConfig(policy=f"replay:{digits_run}", **config), progress=False, write=False)
    assert _stable(again.metrics) == _stable(result.metrics)


def test_replay_run_resumes_exactly(digits_run, tmp_path, monkeypatch):
    import adaptaug.train as train_module
    from adaptaug.train import resume

    config = dict(DIGITS, robustness=False, policy=f"replay:{digits_run}")
    whole = train(TrainConfig(**config), progress=False, write=False)
    calls = []

    def crash_in_epoch_3(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # after the checkpoint of epoch 2
        return evaluate(*args, **kwargs)

    evaluate = train_module.evaluate
    monkeypatch.setattr(train_module, "evaluate", crash_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(out=str(tmp_path / "r"), **config), progress=False)
    monkeypatch.setattr(train_module, "evaluate", evaluate)
    resumed = resume(tmp_path / "r", progress=False)
    assert _stable(resumed.metrics) == _stable(whole.metrics) and resumed.trace == whole.trace


def test_replay_distribution_per_step_scaling_and_sampling(digits_run):
    schedule = schedule_from_run(digits_run)
    space = OpSpace.of(schedule.ops)
    logged = _csv(digits_run / "trace.csv")
    total = schedule.total_steps
    assert total == 3 * 21  # epochs run x steps per epoch (1,293 training images / 64)
    policy = ReplayPolicy(schedule, space, total, torch.Generator().manual_seed(0))
    uniform = {op: 1 / len(space) for op in space.names}
    for step in range(total):
        in_force = [r for r in logged if int(r["step"]) <= step]  # the row AugNet sampled from at this step
        expected = {op: float(in_force[-1][f"p_{op}"]) for op in space.names} if in_force else uniform
        assert policy.op_probabilities == expected, step
        policy.sample(4)
    # twice as long a run: progress fraction -> the same row at step 2t as at step t
    slow = ReplayPolicy(schedule, space, 2 * total, torch.Generator().manual_seed(0))
    fast = ReplayPolicy(schedule, space, total, torch.Generator().manual_seed(0))
    for step in range(total):
        assert slow.op_probabilities == fast.op_probabilities
        slow.sample(1), slow.sample(1), fast.sample(1)
    # draws follow the row in force: op frequencies and the mean level per op
    last = ReplayPolicy(schedule, space, 1, torch.Generator().manual_seed(1))
    last.sample(1)  # at the end: the last row
    p, m = schedule.probs[-1], schedule.levels[-1]
    n = 40_000
    op, levels = last.draw(n)
    freq = torch.bincount(op, minlength=len(space)).double() / n
    assert torch.allclose(freq, torch.tensor(p, dtype=torch.float64), atol=0.01)
    k = int(np.argmax(p))
    assert float(levels[op == k].mean()) == pytest.approx(m[k], abs=0.01)
    assert float(levels.min()) >= 0 and float(levels.max()) <= 1
    with pytest.raises(ConfigError, match="not the task's op space: missing Cutout, extra .*Sharpness"):
        ReplayPolicy(schedule, OpSpace.of([*[o for o in schedule.ops if o != "Sharpness"], "Cutout"]), 10)


def test_export_policy_round_trips(digits_run, tmp_path):
    path = tmp_path / "policy.json"
    exported = export_policy(digits_run, path)
    data = json.loads(path.read_text())
    assert data["format"] == "adaptaug-policy-v1" and data["task"] == "digits" and data["num_bins"] == 10
    assert load_schedule(path) == exported == schedule_from_run(digits_run)
    space = OpSpace.of(reversed(exported.ops))  # another op order: mapped by name
    plans = [ReplayPolicy(load_schedule(src), space, 30, torch.Generator().manual_seed(5))
             for src in (path, digits_run)]
    for _ in range(30):
        a, b = (p.sample(8) for p in plans)
        assert torch.equal(a.op_ids, b.op_ids) and torch.equal(a.magnitudes, b.magnitudes)
    path.write_text('{"format": "something-else"}')
    with pytest.raises(ConfigError, match="not an adaptaug policy file"):
        load_schedule(path)
    with pytest.raises(ConfigError, match="no AugNet trace to replay"):
        schedule_from_run(_plain_run(tmp_path / "plain"))


def test_replay_of_a_schedule_with_two_slots_draws_two_ops_per_sample(digits_run, tmp_path):
    one = schedule_from_run(digits_run)
    assert one.slots == 1  # the digits run drew one op per sample
    two = dataclasses.replace(one, slots=2, shares=None)  # every sample gets its ops
    path = tmp_path / "two.json"
    path.write_text(two.dumps())
    assert json.loads(path.read_text())["slots"] == 2 and load_schedule(path) == two
    policy = ReplayPolicy(load_schedule(path), OpSpace.of(two.ops), 10, torch.Generator().manual_seed(0))
    plan = policy.sample(3000)
    assert plan.op_ids.shape == (3000, 2)
    p = torch.tensor(two.probs[0])
    for slot in range(2):
        assert torch.allclose(torch.bincount(plan.op_ids[:, slot], minlength=len(p)).float() / 3000, p, atol=0.03)
    with pytest.raises(ConfigError, match="slots must be an integer >= 1"):
        dataclasses.replace(one, slots=0)


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gated") / "run"
    train(TrainConfig(policy="augnet", out=str(out), robustness=False, augnet={"gate": True}, **DIGITS),
          progress=False)
    return out


def test_replay_of_a_gated_run_gives_the_logged_share_of_samples_an_op(gated_run, tmp_path):
    """AugNet's gate logs the share of samples its op reaches (augmented_share); the replay keeps it: its trace
    carries the same column, and each plan gives about that share of samples an op (the rest: NO_OP)."""
    logged = _csv(gated_run / "trace.csv")
    schedule = schedule_from_run(gated_run)
    assert schedule.shares == [0.5] + [float(r["augmented_share"]) for r in logged]  # the gate starts at 0.5
    export_policy(gated_run, tmp_path / "p.json")
    assert load_schedule(tmp_path / "p.json") == schedule  # the share is each row's fifth element
    result = train(TrainConfig(policy=f"replay:{gated_run}", out=str(tmp_path / "r"), robustness=False, **DIGITS),
                   progress=False)
    assert result.metrics["epoch"] >= 1
    columns = ("step", "augmented_share")
    replayed = [{k: r[k] for k in columns} for r in _csv(tmp_path / "r" / "trace.csv")]
    assert replayed == [{k: r[k] for k in columns} for r in logged]
    space = OpSpace.of(schedule.ops)
    for share in (0.1, 0.9):
        fixed = Schedule(schedule.ops, [0], schedule.probs[:1], schedule.levels[:1], 10, shares=[share])
        plan = ReplayPolicy(fixed, space, 10, torch.Generator().manual_seed(0)).sample(20_000)
        assert float((plan.op_ids[:, -1] != NO_OP).double().mean()) == pytest.approx(share, abs=0.01)
    with pytest.raises(ConfigError, match="shares need one value in \\[0, 1\\] per row"):
        Schedule(schedule.ops, [0], schedule.probs[:1], schedule.levels[:1], 10, shares=[1.5])
    data = json.loads((tmp_path / "p.json").read_text())
    data["rows"][0] = data["rows"][0][:4]
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="a share in some rows and not in others"):
        load_schedule(tmp_path / "p.json")


def _plain_run(out: Path) -> Path:
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"task": "digits", "policy": "none"}))
    return out


# ------------------------------------------------------------------------------------------- CLI


def test_cli_evaluate_export_and_replay(digits_run, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--run", str(digits_run), "--no-robustness", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text()) and "eval_accuracy" in printed
    policy = tmp_path / "policy.json"
    assert main(["export-policy", str(digits_run), "-o", str(policy)]) == 0
    assert main(["train", "--policy", f"replay:{policy}", "--epochs", "1", "--limit", "300", "--no-robustness",
                 "--no-progress", "--out", str(tmp_path / "replayed")]) == 0
    config = json.loads((tmp_path / "replayed" / "config.json").read_text())
    assert config["policy"] == f"replay:{policy.resolve()}" and "ReplayPolicy" in config["policy_repr"]
    assert (tmp_path / "replayed" / "trace.csv").read_text().startswith("step,source_step,p_Identity")
    capsys.readouterr()
    for argv, message in [
        (["train", "--policy", "replay:" + str(tmp_path / "nope")], "does not exist"),
        (["train", "--policy", "replay"], "invalid choice: 'replay'"),
        (["evaluate", "--run", str(tmp_path)], "config.json is missing"),
        (["evaluate", "--run", str(digits_run), "--data", str(tmp_path / "nope")], "does not exist"),
        (["export-policy", str(_plain_run(tmp_path / "plain"))], "no AugNet trace"),
    ]:
        assert main(argv + (["--no-progress"] if argv[0] == "train" else [])) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("adaptaug: error:") and message in err[0], err
