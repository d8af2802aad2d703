"""--channels-last, --amp bf16, --compile and --augment-ahead: the same training, numbers within rounding of the
default (or the same distribution of augmentations)."""
from __future__ import annotations

import json

import pytest
import torch

from adaptaug.config import TrainConfig
from adaptaug.errors import ConfigError
from adaptaug.train import train

DIGITS = {"task": "digits", "policy": "augnet", "epochs": 2, "lr": 3e-3, "seed": 0, "robustness": False}


@pytest.fixture(scope="module")
def reference():
    return train(TrainConfig(**DIGITS, channels_last=False), progress=False, write=False).metrics


def test_channels_last_matches_the_default_layout(reference) -> None:
    metrics = train(TrainConfig(**DIGITS, channels_last=True), progress=False, write=False).metrics
    assert metrics["eval_loss"] == pytest.approx(reference["eval_loss"], rel=1e-3)
    assert abs(metrics["eval_accuracy"] - reference["eval_accuracy"]) <= 0.01


def test_channels_last_is_on_by_default_on_the_cpu_only(tmp_path) -> None:
    result = train(TrainConfig(**{**DIGITS, "epochs": 1}, out=str(tmp_path)), progress=False)
    conv = [m for m in result.model.modules() if isinstance(m, torch.nn.Conv2d)][-1]  # 32 -> 64 channels
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # really NHWC (a 1-channel kernel would be both)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["channels_last"] is None and saved["resolved_channels_last"] is True
    assert not TrainConfig().channels_last_on(torch.device("cuda"))  # no faster in an H200 epoch
    assert not TrainConfig(channels_last=False).channels_last_on(torch.device("cpu"))
    with pytest.raises(ConfigError, match="channels_last"):
        TrainConfig(channels_last="yes")


def test_bf16_autocast_trains_and_is_really_on(reference) -> None:
    result = train(TrainConfig(**DIGITS, amp="bf16", channels_last=False), progress=False, write=False)
    assert result.metrics["eval_accuracy"] > 0.6  # learns (float32: ~0.7 after these 2 epochs)
    assert result.metrics["eval_loss"] != reference["eval_loss"]  # bf16 rounding changed the path
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # weights stay float32


def test_unknown_amp_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="amp"):
        TrainConfig(amp="fp8")


@pytest.mark.slow
def test_compile_trains() -> None:
    from torch._dynamo.utils import counters

    counters.clear()
    metrics = train(TrainConfig(**DIGITS, compile=True), progress=False, write=False).metrics
    assert counters["stats"]["unique_graphs"] >= 1  # the step really ran compiled
    # Not compared with eager within a tolerance: inductor's dropout draws its masks from its own RNG stream,
    # so the runs see different masks and, 2 epochs in, differ as two seeds do (eval accuracy 0.71 vs 0.82).
    assert metrics["eval_accuracy"] > 0.5  # it learns (chance 0.1)


def test_compile_mode_is_checked_and_the_cli_flag_implies_compile() -> None:
    from adaptaug.cli import build_parser, train_config

    with pytest.raises(ConfigError, match="compile_mode must be one of"):
        TrainConfig(compile=True, compile_mode="fastest")
    with pytest.raises(ConfigError, match="needs compile=True"):
        TrainConfig(compile_mode="reduce-overhead")
    assert TrainConfig(compile=True, compile_mode="reduce-overhead").cuda_graphs_on(torch.device("cuda"))
    assert not TrainConfig(compile=True, compile_mode="reduce-overhead").cuda_graphs_on(torch.device("cpu"))
    assert not TrainConfig(compile=True).cuda_graphs_on(torch.device("cuda"))
    parse = build_parser().parse_args
    config = train_config(parse(["train", "--task", "digits", "--compile-mode", "reduce-overhead"]))
    assert config.compile and config.compile_mode == "reduce-overhead"
    config = train_config(parse(["train", "--task", "digits"]))
    assert not config.compile and config.compile_mode == "default"


@pytest.mark.slow
def test_augnet_trains_under_compile_mode_reduce_overhead() -> None:
    # on the CPU there are no CUDA graphs: this checks the plumbing and AugNet's features under the mode; the
    # graphs themselves are benchmarks/gpu_all.sh's part training_speed_graphs
    result = train(TrainConfig(**{**DIGITS, "epochs": 1}, compile=True, compile_mode="reduce-overhead"),
                   progress=False, write=False)
    assert result.metrics["augnet_runtime"] > 0 and result.metrics["eval_accuracy"] > 0.3


@pytest.mark.slow
def test_compiled_augnet_after_a_compiled_run_of_the_same_model_still_sees_features() -> None:
    # found on the H100: `none` then `augnet`, both compiled, in one process; the second reused the first's
    # hook-less graph and AugNet raised "no features were captured"
    train(TrainConfig(**{**DIGITS, "policy": "none", "epochs": 1}, compile=True), progress=False, write=False)
    result = train(TrainConfig(**{**DIGITS, "epochs": 1}, compile=True), progress=False, write=False)
    assert result.metrics["augnet_runtime"] > 0


def test_augnet_probe_runs_under_the_training_forwards_autocast_or_its_own_bf16() -> None:
    # the probe is most of AugNet's cost; under --amp bf16 it must take the same fast path as the step, and with
    # probe_bf16 it runs in bf16 while training (and the clean-input passes of other rewards) stay float32
    from torch import nn
    from torch.nn import functional as F

    from adaptaug.ops.space import OpSpace
    from adaptaug.policies.augnet import AugNetConfig, AugNetPolicy

    head = nn.Linear(16, 10)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), head)
    seen: list[torch.dtype] = []
    head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    probe_x, probe_y = torch.rand(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for amp, probe_bf16, expected in ((None, False, torch.float32), (torch.bfloat16, False, torch.bfloat16),
                                      (None, True, torch.bfloat16)):
        policy = AugNetPolicy(OpSpace.of(["Identity", "Brightness"]), 10, total_steps=8,
                              config=AugNetConfig(probe_bf16=probe_bf16), generator=torch.Generator().manual_seed(0))
        policy.attach(net, lambda z, y: F.cross_entropy(z, y, reduction="none"), probe_x, probe_y, head=head,
                      amp=amp)
        seen.clear()
        loss, acc, grad, features, n = policy._run_probe((probe_x,), probe_y)
        assert seen == [expected]
        assert grad.dtype == torch.float32 and features.dtype == expected and n == 32
        seen.clear()
        logits, _, _ = policy._eval_pass((probe_x,), probe_y, gradients=True, amp=policy._amp)  # a clean pass
        assert seen == [amp or torch.float32] and logits.dtype == torch.float32  # logits read in float32


def test_augmenting_batches_together_equals_one_by_one_where_no_op_draws_positions() -> None:
    # ImageTask.augment_batches runs the kernels once on several batches' images under their stacked plans;
    # ops whose output depends only on (image, magnitude) must give what each batch's own call gives
    from adaptaug.ops.space import OpSpace
    from adaptaug.policies import RandAugment
    from adaptaug.tasks import build_task

    task = build_task("digits", None, seed=0)
    space = OpSpace.of(["ShearX", "Rotate", "TranslateY", "Brightness", "Contrast", "Posterize", "Equalize"])
    policy = RandAugment(space, n=2, m=9, generator=torch.Generator().manual_seed(0))
    batches = [task.gather("train", torch.arange(i * 64, (i + 1) * 64 - 7 * i)) for i in range(4)]  # uneven
    plans = [policy.sample(targets.shape[0]) for _, targets in batches]
    together = task.augment_batches(batches, plans)
    for (inputs, targets), plan, (aug_inputs, aug_targets) in zip(batches, plans, together):
        own_inputs, _ = task.augment_batch(inputs, targets, plan)
        assert aug_inputs[0].shape == inputs[0].shape and torch.equal(aug_targets, targets)
        torch.testing.assert_close(aug_inputs[0], own_inputs[0], rtol=0, atol=1e-6)
        assert not torch.equal(aug_inputs[0], inputs[0])  # it did augment


def test_augment_ahead_is_recorded_reproducible_and_checked(tmp_path) -> None:
    config = TrainConfig(**{**DIGITS, "policy": "randaugment", "epochs": 1}, augment_ahead=5, out=str(tmp_path))
    first = train(config, progress=False)
    again = train(TrainConfig(**{**DIGITS, "policy": "randaugment", "epochs": 1}, augment_ahead=5), progress=False,
                  write=False)
    drop_time = lambda rows: [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]  # noqa: E731
    assert drop_time(first.history) == drop_time(again.history)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["augment_ahead"] == 5 and saved["resolved_augment_ahead"] == 5
    assert TrainConfig().resolved_augment_ahead == 16
    for bad in (0, -2, 1.5):
        with pytest.raises(ConfigError, match="augment_ahead"):
            TrainConfig(augment_ahead=bad)


def test_large_images_are_augmented_in_groups_within_the_budget(monkeypatch) -> None:
    # the look-ahead holds several batches' float images at once: past AUGMENT_BUDGET values they go in groups
    import adaptaug.tasks.base as task_base
    from adaptaug.ops.space import OpSpace
    from adaptaug.policies import RandAugment
    from adaptaug.tasks import build_task

    task = build_task("digits", None, seed=0)
    monkeypatch.setattr(task_base, "AUGMENT_BUDGET", 2 * 64 * 64)  # two digits batches of 64 (1 x 8 x 8)
    seen: list[int] = []
    monkeypatch.setattr(task, "augment", lambda inputs, plan: seen.append(len(inputs[0])) or (inputs[0] + 1,))
    policy = RandAugment(OpSpace.of(["Brightness"]), n=1, m=9, generator=torch.Generator().manual_seed(0))
    batches = [task.gather("train", torch.arange(i * 64, (i + 1) * 64)) for i in range(5)]
    out = task.augment_batches(batches, [policy.sample(64) for _ in batches])
    assert seen == [128, 128, 64]  # 2 + 2 + 1 batches, in order
    for (inputs, targets), (aug_inputs, aug_targets) in zip(batches, out):
        assert torch.equal(aug_inputs[0], inputs[0] + 1) and torch.equal(aug_targets, targets)
