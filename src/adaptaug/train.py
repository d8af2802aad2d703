"""The one training loop every task and policy goes through.

Per step: the policy samples a plan, ``task.augment`` applies it, the model takes an Adam step, and the
policy observes the logits (AugNet learns there). Per epoch: validation, early stopping on validation
loss (best weights restored). ``train`` returns results and writes files; it prints nothing itself
beyond an optional progress bar.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from adaptaug import __version__
from adaptaug.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from adaptaug.config import TrainConfig
from adaptaug.distributed import DistContext, all_reduce_sum, broadcast_, finish, init_from_env
from adaptaug.errors import ConfigError
from adaptaug.evaluate import evaluate
from adaptaug.host_threads import one_thread
from adaptaug.io import read_run_config, write_atomic, write_csv, write_json
from adaptaug.policies import AugNetPolicy, Policy, build_policy
from adaptaug.policies.augnet import augnet_as_ran
from adaptaug.tasks import Task, build_task_of


@dataclass
class RunResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    trace: list[dict[str, float]]
    run_dir: Path | None
    model: torch.nn.Module = field(repr=False)
    config: TrainConfig = field(repr=False)


def seed_everything(seed: int) -> None:
    """Seed every global RNG once per run (dropout and init use torch's; nothing here uses the others)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but CUDA is not available here")
    return device


def _augmented(task: Task, policy: Policy, batches: Iterator[tuple], ahead: int, times: dict[str, float]
               ) -> Iterator[tuple[tuple, torch.Tensor, tuple, torch.Tensor]]:
    """(inputs, targets, augmented inputs, augmented targets) per training step. The policy draws each batch's
    plan in step order, as one at a time would, but up to ``ahead`` batches are augmented in one call: at
    batch 64 the kernels are launch-bound (BENCHMARKS.md). A learning policy caps the look-ahead where its
    plans would depend on feedback not yet seen (``Policy.plans_ahead``: AugNet, the rest of its round); its
    batches are still gathered ``ahead`` at a time (gathering depends on no feedback)."""
    gathered: list[tuple] = []
    while True:
        limit = policy.plans_ahead()
        take = ahead if limit is None else max(1, min(ahead, limit))
        if len(gathered) < take:  # the same chunks as gathering `take` at a time: stacking follows them
            t = time.perf_counter()
            gathered += itertools.islice(batches, ahead)
            times["data"] += time.perf_counter() - t
        if not gathered:
            return
        t1 = time.perf_counter()
        chunk, gathered = gathered[:take], gathered[take:]
        with one_thread():  # one switch for the chunk's draws, not one per draw (host_threads)
            plans = [policy.sample(targets.shape[0], sample_ids=index) for _, targets, index in chunk]
        # NER ops move tags with the tokens, so the targets of the step are those augment_batches returns
        augmented = task.augment_batches([(inputs, targets) for inputs, targets, _ in chunk], plans)
        times["augment"] += time.perf_counter() - t1
        for (inputs, targets, _), (aug_inputs, aug_targets) in zip(chunk, augmented):
            yield inputs, targets, aug_inputs, aug_targets


def _channels_last(inputs: torch.Tensor | tuple) -> torch.Tensor | tuple:
    """Image batches (4-D tensors) in channels_last; token ids and lengths as they are."""
    if isinstance(inputs, tuple):
        return tuple(_channels_last(x) for x in inputs)
    return inputs.contiguous(memory_format=torch.channels_last) if inputs.dim() == 4 else inputs


def default_run_dir(config: TrainConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    policy = config.policy.split(":", 1)[0]  # "replay:/path/to/run" -> "replay"
    return Path("runs") / f"{config.task}-{policy}-s{config.seed}-{stamp}"


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The TrainConfig a run directory was made with (its config.json)."""
    saved = read_run_config(run_dir)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = {k: v for k, v in saved.items() if k in fields}
    if isinstance(saved.get("augnet"), dict):
        config["augnet"] = augnet_as_ran(saved)  # not today's defaults: a resumed run goes on as it began
    return TrainConfig.from_dict(config)


def resume(run_dir: str | Path, *, progress: bool = True) -> RunResult:
    """Continue a run from its last checkpoint; same numbers as a run never interrupted (on the CPU)."""
    config = load_run_config(run_dir)
    config.out = str(run_dir)
    load_checkpoint(Path(run_dir))  # fail now, before loading data, if there is none
    return train(config, progress=progress, resume_from=Path(run_dir))


def train(config: TrainConfig, *, task: Task | None = None, progress: bool = True,
          write: bool = True, resume_from: Path | None = None) -> RunResult:
    """Train one model under one policy; write config.json, history.csv, trace.csv, metrics.json, model.pt
    and, after every epoch, checkpoint.pt (see ``resume``). Under torchrun, data-parallel across the ranks
    (:mod:`adaptaug.distributed`); rank 0 writes the files."""
    device = resolve_device(config.device)
    ctx = init_from_env(device)
    try:
        return _train(config, task, progress, write, resume_from, device, ctx)
    finally:
        finish(ctx)


def _train(config: TrainConfig, task: Task | None, progress: bool, write: bool, resume_from: Path | None,
           device: torch.device, ctx: DistContext) -> RunResult:
    if ctx.enabled:
        if resume_from is not None:
            raise ConfigError("--resume is for single-process runs; restart a data-parallel run instead")
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", ctx.local_rank)
            torch.cuda.set_device(device)
        write = write and ctx.is_main
        progress = progress and ctx.is_main
    seed_everything(config.seed + ctx.rank)  # dropout differs per rank; DDP copies rank 0's initial weights
    if task is None:
        task = build_task_of(config)
    task.to(device)
    model = task.build_model().to(device)  # the model itself: evaluation, AugNet's probe, checkpoints
    channels_last = config.channels_last_on(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # 4-D conv weights only; others unchanged
    step_model = model  # what the training step calls: the model, wrapped for DDP and/or compiled
    if ctx.enabled:
        step_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda"
                                                               else None)
    if config.compile:
        # Dynamo does not guard on module hooks: a graph compiled earlier in this process for another model of
        # the same class (no AugNet hook on it) would be reused, and AugNet would never see its features
        torch._dynamo.reset()
        step_model = torch.compile(step_model, mode=config.compile_mode)
    # CUDA-graph modes replay the step's graphs into the same output memory: each step is marked as a new one, and
    # what outlives a step (AugNet's features) is copied out by its reader
    graphed_steps = config.cuda_graphs_on(device)
    amp_dtype = torch.bfloat16 if config.amp == "bf16" else None  # the training forward's; AugNet's probe follows
    autocast = torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None)
    # one fused kernel instead of Adam's foreach passes: the seed CNN's step 0.88x on an H200, where a batch-64
    # step is launch-bound (BENCHMARKS.md); on the CPU the fused kernel measured slower
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True if device.type == "cuda" else None)
    train_size = task.size("train") // ctx.world_size * ctx.world_size  # samples per epoch, all ranks
    steps_per_epoch = math.ceil(train_size // ctx.world_size / config.batch_size)
    policy_gen = torch.Generator().manual_seed(config.seed + 1 + 7919 * ctx.rank)  # own images, own draws
    data_gen = torch.Generator().manual_seed(config.seed + 2)  # one permutation for all ranks
    policy = build_policy(config.policy, task, config.epochs * steps_per_epoch, policy_gen, config.augnet)
    feeds_policy = policy.learns and ctx.is_main  # rank 0 decides (adaptaug.distributed)
    if ctx.enabled and isinstance(policy, AugNetPolicy) and policy.config.per_sample:
        raise ConfigError("per-sample AugNet needs every sample's loss where it decides, but under torchrun only "
                          "rank 0 observes; train it in one process")
    if policy.learns:
        probe_gen = torch.Generator().manual_seed(config.seed + 3)
        probe_inputs, probe_targets = task.probe(config.augnet.probe_size, probe_gen)
        if channels_last:  # the probe forward in the layout of the training step's
            probe_inputs = _channels_last(probe_inputs)
        policy.attach(model, task.loss_fn, probe_inputs, probe_targets, accuracy_fn=task.accuracy_fn,
                      amp=amp_dtype, reused_outputs=graphed_steps)

    run_dir = Path(config.out) if config.out else default_run_dir(config)
    if write and resume_from is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "config.json", {"version": __version__, **config.to_dict(), "resolved_device": str(device),
                                             "resolved_channels_last": channels_last,
                                             "resolved_augment_ahead": config.resolved_augment_ahead,
                                             **({"resolved_augnet": dataclasses.asdict(policy.config)}
                                                if isinstance(policy, AugNetPolicy) else {}),
                                             "world_size": ctx.world_size,
                                             "task_info": task.describe(), "policy_repr": repr(policy)})
        task.save_assets(run_dir)  # class names / vocabulary / tags, for `adaptaug evaluate` (adaptaug.evaluate_run)

    times = dict.fromkeys(("data", "augment", "model", "validation"), 0.0)
    history: list[dict[str, float]] = []
    best_loss, best_state, best_epoch, bad_epochs = math.inf, None, 0, 0
    first_epoch, stopped, elapsed_before = 1, False, 0.0
    if resume_from is not None:
        ckpt = load_checkpoint(resume_from)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        policy.load_state_dict(ckpt["policy"])
        data_gen.set_state(ckpt["data_generator"])
        set_rng_state(ckpt["rng"])
        history, times = list(ckpt["history"]), dict(ckpt["times"])
        best_loss, best_state = ckpt["best_loss"], ckpt["best_state"]
        best_epoch, bad_epochs, stopped = ckpt["best_epoch"], ckpt["bad_epochs"], ckpt["stopped"]
        first_epoch, elapsed_before = ckpt["epoch"] + 1, ckpt["elapsed"]
    train_start = time.perf_counter()
    steps_done = (first_epoch - 1) * steps_per_epoch
    epochs = range(first_epoch, config.epochs + 1) if not stopped else range(0)
    bar = tqdm(epochs, desc=f"{config.task}/{config.policy}", unit="epoch", disable=not progress, leave=True)
    for epoch in bar:
        epoch_start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct_sum = torch.zeros((), device=device)
        batches = task.batches("train", config.batch_size, data_gen, ctx, with_index=True)
        steps = _augmented(task, policy, batches, config.resolved_augment_ahead, times)
        for inputs, targets, augmented, aug_targets in steps:
            steps_done += 1
            t2 = time.perf_counter()
            if channels_last:
                augmented = _channels_last(augmented)
            if graphed_steps:
                torch.compiler.cudagraph_mark_step_begin()
            with autocast:
                logits = step_model(*augmented)
            logits = logits.float()  # loss, metrics and AugNet's feedback in float32
            per_sample = task.loss_fn(logits, aug_targets)
            loss = per_sample.mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += per_sample.detach().sum()
            correct_sum += task.accuracy_fn(logits.detach(), aug_targets).sum()
            t3 = time.perf_counter()
            if feeds_policy:
                policy.observe(logits=logits, targets=aug_targets, clean_inputs=inputs, clean_targets=targets)
            if ctx.enabled and policy.learns and steps_done % config.augnet.update_every == 0:
                broadcast_(policy.shared_tensors(), ctx, device)  # AugNet's round ended on rank 0
            t4 = time.perf_counter()
            times["model"] += t3 - t2
            times["augment"] += t4 - t3  # AugNet's part is separated below from its own clock
        loss_sum, correct_sum = all_reduce_sum(loss_sum, ctx), all_reduce_sum(correct_sum, ctx)
        train_loss = float(loss_sum) / train_size
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"training loss became {train_loss} in epoch {epoch}; try a lower --lr")
        t = time.perf_counter()
        val = evaluate(model, task, "val", prefix="val")
        times["validation"] += time.perf_counter() - t
        row = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": float(correct_sum) / train_size,
               **{k: v for k, v in val.items() if not k.endswith(("_per_second", "_runtime"))},
               "epoch_seconds": round(time.perf_counter() - epoch_start, 4)}
        history.append(row)
        bar.set_postfix(loss=f"{train_loss:.3f}", val_loss=f"{val['val_loss']:.3f}",
                        val_acc=f"{val['val_accuracy']:.3f}")
        if val["val_loss"] < best_loss:
            best_loss, best_epoch, bad_epochs = val["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
        stopped = bad_epochs >= config.patience
        if write:
            write_csv(run_dir / "history.csv", history)
            write_atomic(run_dir / "trace.csv", policy.trace_csv())
            save_checkpoint(run_dir, {
                "epoch": epoch, "stopped": stopped, "elapsed": elapsed_before + time.perf_counter() - train_start,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "policy": policy.state_dict(),
                "data_generator": data_gen.get_state(), "rng": rng_state(), "history": history, "times": times,
                "best_loss": best_loss, "best_state": best_state, "best_epoch": best_epoch, "bad_epochs": bad_epochs,
            })
        if stopped:
            break
    bar.close()
    train_runtime = elapsed_before + time.perf_counter() - train_start
    if best_state is not None:
        model.load_state_dict(best_state)

    augnet_runtime = float(getattr(policy, "runtime_s", 0.0))
    metrics = evaluate(model, task, "test")
    metrics.update({
        "epoch": float(len(history)),
        "best_epoch": best_epoch,
        # the model kept, as validation saw it: what policy choices are made on (never the test split)
        "best_val_loss": history[best_epoch - 1]["val_loss"] if best_epoch else math.nan,
        "best_val_accuracy": history[best_epoch - 1]["val_accuracy"] if best_epoch else math.nan,
        "train_runtime": round(train_runtime, 4),
        "augnet_runtime": round(augnet_runtime, 4),
        "augnet_overhead_percent": round(100 * augnet_runtime / train_runtime, 3) if train_runtime else 0.0,
        "data_runtime": round(times["data"], 4),
        "augment_runtime": round(times["augment"] - augnet_runtime, 4),
        "model_runtime": round(times["model"], 4),
        "validation_runtime": round(times["validation"], 4),
    })
    # eval_robust_* (attacks, corruptions); timed apart, not part of train_runtime
    if config.robustness and ctx.is_main:
        from adaptaug.robustness import robustness
        t = time.perf_counter()
        metrics.update(robustness(model, task, seed=config.seed))
        metrics["robustness_runtime"] = round(time.perf_counter() - t, 4)
    if write:
        torch.save(model.state_dict(), run_dir / "model.pt")
        write_atomic(run_dir / "trace.csv", policy.trace_csv())
        write_json(run_dir / "metrics.json", metrics)
    return RunResult(metrics, history, list(policy.trace), run_dir if write else None, model,
                     config)
