"""End to end: the one training loop, the CLI, reproducibility, the README's library example."""
import csv
import json

import pytest
import torch

from adaptaug.cli import main
from adaptaug.config import TrainConfig
from adaptaug.errors import ConfigError
from adaptaug.train import train

RUNTIME_KEYS = ("runtime", "per_second", "overhead")


def _stable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not any(t in k for t in RUNTIME_KEYS)}


def test_digits_augnet_learns_and_is_reproducible(tmp_path):
    config = TrainConfig(task="digits", policy="augnet", epochs=12, seed=3, out=str(tmp_path / "a"))
    first = train(config, progress=False)
    assert first.metrics["eval_accuracy"] > 0.85  # it learns (chance 0.10); seeds give 0.89-0.96 at 12 epochs
    again = train(TrainConfig(task="digits", policy="augnet", epochs=12, seed=3, out=str(tmp_path / "b")),
                  progress=False)
    assert _stable(first.metrics) == _stable(again.metrics)
    assert first.trace == again.trace or all(
        _stable(a) == _stable(b) for a, b in zip(first.trace, again.trace))
    other = train(TrainConfig(task="digits", policy="augnet", epochs=2, seed=4), progress=False, write=False)
    assert other.metrics["eval_loss"] != first.metrics["eval_loss"]


def test_early_stopping_restores_the_best_epoch(tmp_path):
    # a high learning rate makes validation loss rise early, so patience 1 stops the run
    result = train(TrainConfig(task="digits", policy="none", epochs=30, lr=2e-2, patience=1, seed=0),
                   progress=False, write=False)
    history = result.history
    best = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    assert result.metrics["best_epoch"] == best + 1
    assert len(history) == best + 2  # stopped one epoch after the best (patience 1)
    assert result.metrics["epoch"] == len(history)
    # the kept model's validation figures, which policy choices are made on
    assert result.metrics["best_val_loss"] == history[best]["val_loss"]
    assert result.metrics["best_val_accuracy"] == history[best]["val_accuracy"]


@pytest.mark.parametrize("policy", ["none", "standard", "randaugment", "trivialaugment"])
def test_every_fixed_policy_trains(policy):
    result = train(TrainConfig(task="digits", policy=policy, epochs=2, seed=0), progress=False, write=False)
    assert 0.0 < result.metrics["eval_accuracy"] <= 1.0
    assert result.metrics["augnet_runtime"] == 0.0
    assert result.trace == []


def test_cli_writes_the_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(out), "--no-progress", "--seed", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("eval_loss", "eval_accuracy", "eval_f1", "eval_runtime", "eval_samples_per_second",
                "eval_steps_per_second", "epoch", "train_runtime", "augnet_runtime"):
        assert key in metrics, key
    captured = capsys.readouterr()
    assert metrics == json.loads(captured.out)
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "digits" and config["policy"] == "augnet" and config["seed"] == 1
    assert "version" in config
    # digits stacks AugNet on crop+flip, so its gate is on by default; the config says what was asked (None)
    assert config["augnet"]["gate"] is None and config["resolved_augnet"]["gate"] is True
    assert config["augnet"]["probe_chunk"] is None and config["resolved_augnet"]["probe_chunk"] == 32  # chunked
    history = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in history] == [1, 2]
    trace = list(csv.DictReader(open(out / "trace.csv")))
    assert trace and "p_Identity" in trace[0] and "m_Rotate" in trace[0] and "reward" in trace[0]
    assert "augmented_share" in trace[0]
    probs = [float(v) for k, v in trace[-1].items() if k.startswith("p_")]
    assert abs(sum(probs) - 1) < 1e-4
    top = max((k for k in trace[-1] if k.startswith("p_")), key=lambda k: float(trace[-1][k]))
    assert f"AugNet: {len(trace)} rounds, " in captured.err  # what it did, in one line
    assert f"last round: {top[2:]} at {float(trace[-1][top]):.0%}" in captured.err
    state = torch.load(out / "model.pt", weights_only=True)
    assert "classifier.weight" in state
    from adaptaug.policies.augnet import AugNetConfig
    assert config["augnet"]["probe_size"] == AugNetConfig().probe_size  # options not given keep the defaults


def test_cli_augnet_options_reach_the_config(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out), "--no-progress", "--no-robustness",
                 "--augnet-probe-size", "32", "--augnet-probe-every", "3", "--reward", "alignment",
                 "--augnet-probe-chunk", "8", "--augnet-without", "gap", "--augnet-per-sample",
                 "--augnet-narrow", "--no-augnet-gate"]) == 0
    augnet = json.loads((out / "config.json").read_text())["augnet"]
    assert augnet["gate"] is False
    assert (augnet["probe_size"], augnet["probe_every"], augnet["reward"]) == (32, 3, "alignment")
    assert augnet["probe_chunk"] == 8
    assert augnet["drop_features"] == ["gap"] and augnet["learn"] is True and augnet["per_sample"] is True
    assert augnet["wide"] is False


def test_train_policy_takes_compare_variant_labels():
    """`train --policy 'augnet[...]'` runs what compare runs for the same label; other AugNet options add to it."""
    from adaptaug.cli import build_parser, train_config
    from adaptaug.compare import augnet_variant
    from adaptaug.policies.augnet import AugNetConfig

    parse = build_parser().parse_args
    label = "augnet[max_kl=0.0001][uniform_floor=0.2][without=gap]"
    config = train_config(parse(["train", "--policy", label]))
    assert config.policy == "augnet" and config.augnet == AugNetConfig(**augnet_variant(label))
    assert (config.augnet.max_kl, config.augnet.uniform_floor, config.augnet.drop_features) == (1e-4, 0.2, ("gap",))
    config = train_config(parse(["train", "--policy", "augnet[frozen]", "--augnet-probe-size", "64", "--frozen-augnet"]))
    assert (config.augnet.learn, config.augnet.probe_size) == (False, 64)  # the same value set twice is no clash
    assert train_config(parse(["train"])).augnet == AugNetConfig()  # no options: AugNetConfig's own defaults


@pytest.mark.parametrize("argv, message", [
    (["train", "--policy", "magic"], "invalid choice: 'magic'"),
    (["train", "--policy", "augnet[colour=1]"], "invalid AugNet variant 'augnet[colour=1]'"),
    (["train", "--policy", "augnet[uniform_floor=2]"], "uniform_floor must be in [0, 1), got 2.0"),
    (["train", "--policy", "augnet[no_gate]", "--augnet-gate"], "set AugNet's gate differently"),
    (["train", "--task", "nope"], "invalid choice: 'nope'"),
    (["train", "--epochs", "0"], "expected a positive integer, got '0'"),
    (["train", "--lr", "-1"], "expected a positive number, got '-1'"),
    (["train", "--batch-size", "x"], "expected a positive integer, got 'x'"),
    (["train", "--task", "mnist", "--data", "/nonexistent/mnist"], "does not exist"),
    (["train", "--device", "cuda:7"] if not torch.cuda.is_available() else ["train", "--device", "tpu"], "device"),
])
def test_cli_bad_input_is_one_clear_line(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaptaug: error:") and message in err[0], err
    assert "Traceback" not in "\n".join(err)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="learning rate must be > 0"):
        TrainConfig(lr=float("nan"))
    with pytest.raises(ConfigError, match="unknown config keys: colour"):
        TrainConfig.from_dict({"colour": 1})


def test_readme_library_example_runs():
    """The ten-line AugNet loop from README.md, on real digits, with a model of the user's own."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from torch import nn

    from adaptaug import AugNetPolicy, OpSpace
    from adaptaug.ops.image import RANDAUGMENT_OPS

    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16
    y = torch.tensor(y)
    x_val, y_val = x[1500:], y[1500:]
    loader = [(x[i:i + 64], y[i:i + 64]) for i in range(0, 1500, 64)]
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    epochs = 3

    policy = AugNetPolicy(OpSpace.of(RANDAUGMENT_OPS), num_classes=10, total_steps=epochs * len(loader),
                          generator=torch.Generator().manual_seed(0))
    loss_fn = lambda logits, y: F.cross_entropy(logits, y, reduction="none")  # noqa: E731
    policy.attach(model, loss_fn, x_val[:256], y_val[:256], head=model[-1])
    for _ in range(epochs):
        for xb, yb in loader:
            logits = model(policy(xb))
            loss = loss_fn(logits, yb).mean()
            optimizer.zero_grad(); loss.backward(); optimizer.step()  # noqa: E702
            policy.observe(logits, yb)

    assert len(policy.trace) == epochs * len(loader) // 4
    accuracy = (model(x_val).argmax(1) == y_val).float().mean()
    assert accuracy > 0.8


def test_val_size_is_a_fraction_or_a_count_from_the_command_line(tmp_path):
    from adaptaug.compare import GridConfig
    from adaptaug.tasks import build_task

    out = tmp_path / "run"
    assert main(["train", "--policy", "none", "--epochs", "1", "--val-size", "300", "--out", str(out),
                 "--no-progress", "--no-robustness"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["val_size"] == 300 and isinstance(config["val_size"], int)
    assert build_task("digits", val_size=config["val_size"]).size("val") == 300
    grid = GridConfig(task="digits", out="g", policies=("none",), train={"val_size": 0.25})
    assert "--val-size 0.25" in grid.command()


def test_compare_takes_the_runs_patience(tmp_path):
    from adaptaug.cli import _compare_train_options, build_parser
    from adaptaug.compare import GridConfig, run_specs

    args = build_parser().parse_args(["compare", "--policies", "none", "--patience", "6", "--out", str(tmp_path)])
    options = _compare_train_options(args)
    grid = GridConfig(task="digits", out=str(tmp_path), policies=("none",), seeds=1, train=options)
    assert options == {"patience": 6} and "--patience 6" in grid.command()
    (spec,) = run_specs(grid)
    assert spec.config.patience == 6  # and patience is an identity field: a grid never reuses a run made with 3
    assert build_parser().parse_args(["compare", "--out", "x"]).patience is None



def test_a_learning_policy_gets_its_rounds_chunks_while_batches_are_gathered_ahead():
    """AugNet's plans are drawn at most to the end of its round, and augmentation stacks the batches of one draw
    (which changes the augmented images), so the chunks must be those of gathering a round's rest at a time;
    gathering itself goes `ahead` batches at a time."""
    from adaptaug.train import _augmented

    pulls = []

    def batches(n):
        for i in range(n):
            pulls.append(i)
            yield (torch.zeros(1),), torch.zeros(2), torch.tensor([i])

    class Round:  # AugNet's plans_ahead with rounds of 4, starting one batch into a round
        def __init__(self):
            self.drawn = 1

        def plans_ahead(self):
            return 4 - self.drawn % 4

        def sample(self, batch_size, sample_ids=None):
            self.drawn += 1
            return int(sample_ids)

    class Task:
        def __init__(self):
            self.calls = []

        def augment_batches(self, group, plans):
            self.calls.append(plans)
            return group

    task, times = Task(), dict.fromkeys(("data", "augment"), 0.0)
    steps = _augmented(task, Round(), batches(23), 16, times)
    first = next(steps)
    assert len(pulls) == 16 and first[1].shape == (2,)  # one gather of 16 before the first step
    rest = list(steps)
    assert len(rest) == 22 and len(pulls) == 23
    assert task.calls == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14], [15, 16, 17, 18], [19, 20, 21, 22]]
