"""The comparison grid: policies x seeds on one task -> run directories, results.csv, report.md, plots.

``compare(GridConfig(...))`` runs every (policy, seed) into ``out/runs/<policy>-s<seed>/`` through the one
training loop, several at once with ``jobs > 1`` (processes, 'spawn' start method, so CUDA and torch's
thread pools start clean in each). A run whose ``metrics.json`` exists is reused, so a rerun of a finished
grid only rewrites the report; an interrupted run with a checkpoint is resumed. A failing run is recorded
with its error and never stops the others. Each job writes only inside its own run directory; the parent
alone writes results.csv, report.md and the plots (``adaptaug.report``). A job ends with the grid's process, even
when that is killed rather than interrupted, and holds its run directory's lock while it trains, so two grids over one
folder never train the same run at once.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import re
import shlex
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import connection, get_context, parent_process
from pathlib import Path
from typing import Any, Callable, Iterator

from adaptaug.config import TrainConfig
from adaptaug.errors import ConfigError
from adaptaug.policies import POLICIES, REPLAY, AugNetConfig
from adaptaug.policies.augnet import augnet_as_ran
from adaptaug.tasks import op_modality, stacks_base
from adaptaug.report import FIXED_POLICIES  # re-exported: the baselines AugNet is measured against

METRICS = "metrics.json"
# config fields that decide a run's numbers: a reused run must match them (out and device do not)
# (channels_last, like device, changes float rounding only; augment_ahead, the random positions of crops and
# cutouts, not their distribution; amp changes the step's precision)
_IDENTITY_FIELDS = ("task", "data", "policy", "seed", "epochs", "batch_size", "lr", "patience", "val_size",
                    "val_whole_texts", "limit", "robustness", "amp", "augnet")
# identity fields added after some runs were made: what those runs used
_ABSENT_IDENTITY = {"amp": "off", "val_whole_texts": False}


@dataclass
class GridConfig:
    task: str
    out: str
    policies: tuple[str, ...] = POLICIES
    seeds: int = 3  # seeds first_seed..first_seed+seeds-1; report mean ± std over them
    first_seed: int = 0  # > 0 adds fresh seeds to a grid, e.g. to replicate a finding on seeds it was not chosen on
    epochs: int | None = None  # None = TrainConfig's default (50, early stopping)
    data: str | None = None
    jobs: int = 1  # runs at once (processes); each gets max(1, cpu_count // jobs) torch threads
    limit: int | None = None
    device: str = "auto"
    train: dict[str, Any] = field(default_factory=dict)  # further TrainConfig fields for every run

    def __post_init__(self) -> None:
        self.policies = tuple(parse_policies(self.policies) if isinstance(self.policies, str) else self.policies)
        if not self.policies:
            raise ConfigError("no policies to compare")
        for name in self.policies:
            check_policy(name)
        if len(set(self.policies)) != len(self.policies):
            raise ConfigError(f"--policies lists a policy twice: {','.join(self.policies)}")
        for name in ("seeds", "jobs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.first_seed, int) or self.first_seed < 0:
            raise ConfigError(f"first_seed must be a non-negative integer, got {self.first_seed!r}")

    def command(self) -> str:
        """The ``adaptaug compare`` command line that makes this grid."""
        parts = ["adaptaug", "compare", "--task", self.task]
        if self.data:
            parts += ["--data", self.data]
        parts += ["--policies", ",".join(self.policies), "--seeds", str(self.seeds)]
        if self.first_seed:
            parts += ["--first-seed", str(self.first_seed)]
        if self.epochs is not None:
            parts += ["--epochs", str(self.epochs)]
        if self.limit is not None:
            parts += ["--limit", str(self.limit)]
        if "val_size" in self.train:
            parts += ["--val-size", str(self.train["val_size"])]
        if self.train.get("val_whole_texts"):
            parts.append("--val-whole-texts")
        if "patience" in self.train:
            parts += ["--patience", str(self.train["patience"])]
        if self.train.get("amp", "off") != "off":
            parts += ["--amp", self.train["amp"]]
        if self.train.get("channels_last") is not None:
            parts += ["--channels-last" if self.train["channels_last"] else "--no-channels-last"]
        if self.train.get("augment_ahead") is not None:
            parts += ["--augment-ahead", str(self.train["augment_ahead"])]
        if self.jobs != 1:
            parts += ["--jobs", str(self.jobs)]
        if self.device != "auto":
            parts += ["--device", self.device]
        return shlex.join(parts + ["--out", self.out])


@dataclass(frozen=True)
class RunSpec:
    policy: str
    seed: int
    run_dir: Path
    config: TrainConfig

    @property
    def name(self) -> str:
        return f"{slug(self.policy)}-s{self.seed}"


@dataclass
class CompareResult:
    rows: list[dict[str, Any]]  # one per run, as in results.csv
    out: Path
    files: list[Path]  # results.csv, report.md, the PNGs written
    ran: int
    reused: int
    failed: int
    seconds: float


# AugNet variants as grid entries, one setting per bracket, brackets chained: augnet[frozen], augnet[per_sample],
# augnet[narrow] (RandAugment's magnitude ranges), augnet[fresh] (with a warmup, policy steps wait for fresh
# transitions), augnet[gate] / augnet[no_gate] (the gate forced on / off; by default on image tasks),
# augnet[free_gate] (the gate one logit of its own, not a head on AugNet's features),
# augnet[probe_bf16], augnet[reward=NAME], augnet[without=FEATURE] and numeric AugNetConfig fields, e.g.
# augnet[probe_every=4][probe_size=64]
_NUMERIC_FIELDS: dict[str, type] = {"lr": float, "probe_every": int, "probe_size": int, "probe_chunk": int,
                                    "minibatch": int, "entropy_coef": float, "uniform_floor": float,
                                    "warmup": float, "update_every": int, "buffer_size": int, "slots": int,
                                    "max_kl": float}
# settings without a value: the AugNetConfig field each one sets, and to what
_FLAGS: dict[str, tuple[str, bool]] = {"frozen": ("learn", False), "per_sample": ("per_sample", True),
                                       "narrow": ("wide", False), "fresh": ("fresh_updates", True),
                                       "gate": ("gate", True), "no_gate": ("gate", False),
                                       "free_gate": ("free_gate", True),
                                       "probe_bf16": ("probe_bf16", True)}
_SETTING = r"\[(?:%s|reward=[\w-]+|without=\w+|(?:%s)=\d+(?:\.\d+)?)\]" % ("|".join(_FLAGS), "|".join(_NUMERIC_FIELDS))
_VARIANT = re.compile(r"augnet(?:%s)+" % _SETTING)
VARIANT_SYNTAX = ("".join(f"augnet[{flag}], " for flag in _FLAGS) + "augnet[reward=NAME], augnet[without=FEATURE], "
                  f"augnet[FIELD=NUMBER] for FIELD in {', '.join(_NUMERIC_FIELDS)}, chained as "
                  "augnet[probe_every=4][probe_size=64]")


def augnet_variant(label: str) -> dict[str, Any] | None:
    """AugNetConfig overrides of an ``augnet[...]`` label (checked), or None for a plain policy name."""
    if _VARIANT.fullmatch(label) is None:
        return None
    overrides: dict[str, Any] = {}
    for setting in re.findall(r"\[([^\]]*)\]", label):
        key, _, value = setting.partition("=")
        if (_FLAGS[key][0] if key in _FLAGS else key) in overrides:
            raise ConfigError(f"{label}: {key} is set twice")
        if key in _NUMERIC_FIELDS:
            try:
                overrides[key] = _NUMERIC_FIELDS[key](value)
            except ValueError:
                raise ConfigError(f"{label}: {key} must be {_NUMERIC_FIELDS[key].__name__}, got {value!r}") from None
        elif key in _FLAGS:
            field_name, flag_value = _FLAGS[key]
            overrides[field_name] = flag_value
        elif key == "reward":
            from adaptaug.rewards import get_reward

            get_reward(value)  # unknown reward -> ConfigError
            overrides["reward"] = value
        else:  # without=FEATURE
            overrides["drop_features"] = overrides.get("drop_features", ()) + (value,)
    AugNetConfig(**overrides)  # unknown state feature, out-of-range number, bad combination -> ConfigError
    return overrides


def slug(label: str) -> str:
    """A policy label as a folder name: ``augnet[reward=val-drop]`` -> ``augnet-reward-val-drop``;
    ``replay:runs/x/policy.json`` -> ``replay-policy`` (the source's name, not its path)."""
    if label.startswith(REPLAY):
        label = "replay-" + Path(label[len(REPLAY):].rstrip("/")).stem
    return re.sub(r"[^\w-]+", "-", label).strip("-")


def check_policy(name: str) -> None:
    """A ConfigError unless ``name`` is a policy, an ``augnet[...]`` ablation or ``replay:SOURCE`` with SOURCE a
    run directory or policy.json that holds a schedule (read as the runs will read it)."""
    if name.startswith(REPLAY):
        from adaptaug.policies.replay import load_schedule

        load_schedule(name[len(REPLAY):])
        return
    if name not in POLICIES and augnet_variant(name) is None:
        raise ConfigError(f"unknown policy {name!r} in --policies; known policies: {', '.join(POLICIES)}, "
                          f"replay:RUN_DIR or replay:policy.json, and AugNet variants {VARIANT_SYNTAX}")


def parse_policies(text: str) -> list[str]:
    """``"none, standard,augnet,augnet[frozen]"`` -> labels; an unknown one is a one-line ConfigError."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    for name in names:
        check_policy(name)
    return names


def run_specs(grid: GridConfig) -> list[RunSpec]:
    specs = []
    for policy in grid.policies:
        overrides = augnet_variant(policy)
        for seed in range(grid.first_seed, grid.first_seed + grid.seeds):
            run_dir = Path(grid.out) / "runs" / f"{slug(policy)}-s{seed}"
            kwargs: dict[str, Any] = dict(task=grid.task, data=grid.data, policy=policy, seed=seed,
                                          limit=grid.limit, device=grid.device, out=str(run_dir), **grid.train)
            if overrides is not None:
                kwargs["policy"], kwargs["augnet"] = "augnet", AugNetConfig(**overrides)
            if grid.epochs is not None:
                kwargs["epochs"] = grid.epochs
            specs.append(RunSpec(policy, seed, run_dir, TrainConfig(**kwargs)))
    return specs


def _identity(config: dict[str, Any], ran: bool) -> dict[str, Any]:
    """The settings that make a run what it is: of a finished run's config.json (``ran``: as it ran) or of a run
    to make (as it will run)."""
    ident = {k: config.get(k, _ABSENT_IDENTITY.get(k)) for k in _IDENTITY_FIELDS}
    if ident["policy"] != "augnet":
        ident["augnet"] = None  # AugNet's settings change nothing in another policy's run
    elif isinstance(ident["augnet"], dict):
        if ran:
            augnet = augnet_as_ran(config)
        else:  # as it will run (a config of today's fields): those left None are the task's to decide
            task = config["task"]
            augnet = dataclasses.asdict(AugNetConfig(**ident["augnet"]).resolved(stacks_base(task), op_modality(task)))
        if augnet["probe_chunk"] is not None and augnet["probe_chunk"] >= augnet["probe_size"]:
            augnet["probe_chunk"] = None  # one spelling of "the whole probe"
        if not augnet["warmup"]:
            augnet.pop("fresh_updates")  # only a warmup reads it: runs without one are the same either way
        ident["augnet"] = {k: list(v) if isinstance(v, tuple) else v for k, v in augnet.items()}
    return ident


def is_finished(spec: RunSpec) -> bool:
    """True when ``spec``'s metrics.json exists; a ConfigError when the run there was made differently
    (another epoch budget, data or seed), so a grid never mixes stale runs into its report."""
    if not (spec.run_dir / METRICS).is_file():
        return False
    saved_path = spec.run_dir / "config.json"
    try:
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True  # metrics without a readable config: trust the metrics, as a rerun would overwrite nothing
    want, have = _identity(spec.config.to_dict(), ran=False), _identity(saved, ran=True)
    diff = [k for k in _IDENTITY_FIELDS if (k in saved or k in _ABSENT_IDENTITY) and want[k] != have[k]]
    if diff:
        k, made, asked = diff[0], have[diff[0]], want[diff[0]]
        if k == "augnet" and isinstance(made, dict) and isinstance(asked, dict):  # name the AugNet fields that differ
            fields = [f for f in asked if made.get(f) != asked[f]]
            k, made, asked = ", ".join(f"augnet.{f}" for f in fields), [made.get(f) for f in fields], \
                [asked[f] for f in fields]
        raise ConfigError(f"{spec.run_dir} was made with {k}={made!r}, this grid asks for {k}={asked!r}; "
                          "use another --out or delete that run")
    return True


def _same_run(run_dir: Path, config: dict[str, Any]) -> bool:
    try:
        saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return _identity(saved, ran=True) == _identity(config, ran=False)


RUN_LOCK = ".lock"  # in a run directory: held (flock) by the process training that run


@contextlib.contextmanager
def _run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock while it trains: a second grid over the same folder (or an orphan of a killed one) would
    otherwise train the same run into the same files at the same time. The OS drops the lock when its holder dies,
    so it never goes stale. A ConfigError when another process holds it. POSIX only; elsewhere, no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / RUN_LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another process is training {run_dir} (it holds {run_dir / RUN_LOCK}); "
                              "wait for it or stop it") from None
        yield  # released when the file closes


def _run_one(config: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """One run (in a worker process or in-process): train, or resume from a checkpoint. Never raises."""
    start = time.perf_counter()
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        cfg = TrainConfig.from_dict(config)
        run_dir = Path(cfg.out)
        with _run_lock(run_dir):
            return _train_or_resume(cfg, config, run_dir, start)
    except Exception as err:  # noqa: BLE001 — a failing run is a result to record, not a reason to stop
        message = " ".join(f"{type(err).__name__}: {err}".split())  # one line for the CSV
        return {"status": "failed", "error": message, "seconds": round(time.perf_counter() - start, 3)}


def _train_or_resume(cfg: TrainConfig, config: dict[str, Any], run_dir: Path, start: float) -> dict[str, Any]:
    if (run_dir / "checkpoint.pt").is_file() and _same_run(run_dir, config):
        from adaptaug.train import resume
        try:
            resume(run_dir, progress=False)
            return {"status": "done", "error": "", "seconds": round(time.perf_counter() - start, 3)}
        except ConfigError:
            pass  # unreadable or foreign checkpoint: train afresh below
    from adaptaug.train import train
    train(cfg, progress=False)
    return {"status": "done", "error": "", "seconds": round(time.perf_counter() - start, 3)}


def _exit_with_parent() -> None:
    """Worker initializer: end this worker when the grid's process dies. Ctrl-C reaches every process of the group,
    but a SIGTERM or SIGKILL to the grid reaches it alone, and its workers would train on into run directories that
    a relaunched grid resumes at the same time."""
    parent = parent_process()
    if parent is None:
        return

    def watch() -> None:
        connection.wait([parent.sentinel])  # ready when the parent exits, however it ends
        os._exit(1)  # results are written atomically (adaptaug.io): a run cut here resumes from its checkpoint

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _read_metrics(spec: RunSpec) -> dict[str, Any]:
    try:
        metrics = json.loads((spec.run_dir / METRICS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if "best_val_accuracy" not in metrics:  # a run from before metrics.json carried it: its history has it
        metrics.update(_kept_epoch(spec.run_dir / "history.csv"))
    return metrics


def _kept_epoch(history_csv: Path) -> dict[str, float]:
    """best_val_loss / best_val_accuracy of the epoch early stopping kept (the first lowest validation loss),
    or nothing when the history is missing or has no validation columns."""
    try:
        with history_csv.open(newline="", encoding="utf-8") as f:
            epochs = [(float(h["val_loss"]), float(h["val_accuracy"])) for h in csv.DictReader(f)]
    except (OSError, KeyError, ValueError):
        return {}
    if not epochs:
        return {}
    loss, accuracy = min(epochs, key=lambda e: e[0])  # min keeps the first of equal losses, as training does
    return {"best_val_loss": loss, "best_val_accuracy": accuracy}


def compare(grid: GridConfig, *, on_event: Callable[[str], None] | None = None,
            command: str | None = None) -> CompareResult:
    """Run the grid (reusing finished runs), then write results.csv, report.md and plots into ``grid.out``."""
    from adaptaug.report import write_report

    start = time.perf_counter()
    say = on_event or (lambda message: None)
    out = Path(grid.out)
    specs = run_specs(grid)
    todo = [s for s in specs if not is_finished(s)]  # checks every reused run before any training starts
    outcome: dict[str, dict[str, Any]] = {s.name: {"status": "reused", "error": "", "seconds": ""}
                                          for s in specs if s not in todo}
    if todo:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    say(f"{len(specs)} runs: {len(specs) - len(todo)} reused, {len(todo)} to run with {grid.jobs} job(s)")
    done = 0

    def record(spec: RunSpec, result: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        outcome[spec.name] = result
        tail = f": {result['error']}" if result["status"] == "failed" else ""
        say(f"[{done}/{len(todo)}] {spec.name} {result['status']} in {result['seconds']:.1f}s{tail}")

    if grid.jobs == 1 or len(todo) <= 1:
        for spec in todo:  # in-process: no start-up cost, the caller's torch threads
            record(spec, _run_one(spec.config.to_dict()))
    else:
        threads = max(1, (os.cpu_count() or 1) // grid.jobs)  # jobs share the cores instead of oversubscribing
        with ProcessPoolExecutor(max_workers=min(grid.jobs, len(todo)), mp_context=get_context("spawn"),
                                 initializer=_exit_with_parent) as pool:
            futures = {pool.submit(_run_one, spec.config.to_dict(), threads): spec for spec in todo}
            for future in as_completed(futures):
                spec = futures[future]
                try:
                    result = future.result()
                except Exception as err:  # noqa: BLE001 — the worker itself died (killed, out of memory)
                    result = {"status": "failed", "error": " ".join(f"{type(err).__name__}: {err}".split()),
                              "seconds": 0.0}
                record(spec, result)

    rows = []
    for spec in specs:
        result = outcome[spec.name]
        metrics = _read_metrics(spec) if result["status"] != "failed" else {}
        if result["status"] != "failed" and not metrics:
            result = {**result, "status": "failed", "error": f"{METRICS} missing or unreadable after the run"}
        rows.append({"task": grid.task, "policy": spec.policy, "seed": spec.seed, "status": result["status"],
                     "error": result["error"], "run_dir": str(spec.run_dir.relative_to(out)),
                     "run_seconds": result["seconds"], **metrics})
    files = write_report(out, rows, command=command or grid.command(), task=grid.task, policies=grid.policies)
    failed = sum(r["status"] == "failed" for r in rows)
    return CompareResult(rows, out, files, ran=len(todo), reused=len(specs) - len(todo), failed=failed,
                         seconds=round(time.perf_counter() - start, 3))


__all__ = ["CompareResult", "FIXED_POLICIES", "GridConfig", "RunSpec", "compare", "parse_policies", "run_specs"]
