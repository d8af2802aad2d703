"""Replay a schedule AugNet learned, as a fixed policy: ``--policy replay:RUN_DIR`` or ``replay:policy.json``.

Population Based Augmentation (Ho et al. 2019) showed that a schedule found once can be replayed on another
(larger) model for free. Here the schedule is what an AugNet run logged in its ``trace.csv``: after every policy
update, at training step ``step``, the op probabilities ``p_<op>`` and the expected magnitude level ``m_<op>``
(in [0, 1]) of each op. A :class:`Schedule` holds those rows, preceded by AugNet's starting distribution (step
0: uniform ops, level mean 0.5: its heads start at zero).

Replay (:class:`ReplayPolicy`, no AugNet in the loop, nothing learned):

- **Time.** The source's length is the number of steps it trained (epochs run x steps per epoch). At step
  ``t`` of a run of ``T`` planned steps, the row in force is the last one with ``row.step / T_source <=
  t / T`` (compared exactly, in integers): progress fraction -> nearest earlier row. With the same length
  (``T == T_source``) that is the row AugNet itself sampled from at step ``t``.
- **Ops.** Each sample draws its op from the row's probabilities, exactly as AugNet did (one per slot, when the
  source drew several).
- **Levels.** The trace keeps only the *mean* level per op, not AugNet's distribution over its magnitude bins,
  so a level is drawn uniformly in the widest window centred on the mean that fits in [0, 1]:
  ``U[m - h, m + h]`` with ``h = min(m, 1 - m)``. Its mean is exactly ``m``; at AugNet's start (``m = 0.5``)
  it is U[0, 1], AugNet's own starting distribution; a mean near 0 or 1 gives a narrow window, as a
  distribution concentrated at that end has. The sign of a signed op is random, as in AugNet.
- **What "the same" means.** The replayed distribution equals the logged one at every step: with the same
  length, the replay's own trace (a row whenever a new schedule row comes into force: ``step``,
  ``source_step``, ``p_<op>``, ``m_<op>`` = the mean of the level distribution) equals the source's
  ``step``/``p_``/``m_`` columns exactly. Individual draws are not the source's (those were never logged).
- **Share.** A run whose AugNet set the share of samples that get its op (its gate, or a warmup) logged it as
  ``augmented_share``; the replay gives the row's share of samples an op (each sample independently, as AugNet
  did) and the rest only the base augmentation. Its starting row: the gate's 0.5, the warmup's 0. Without the
  column every sample gets an op.
- **Base.** As for AugNet: on top of the task's standard augmentation (crop+flip), alone for text and NER.

``adaptaug export-policy RUN_DIR -o policy.json`` writes the schedule as a small JSON file (format
``adaptaug-policy-v1``: ``task``, ``ops``, ``num_bins``, ``wide``, ``total_steps``, ``slots`` (1 if absent), and
``rows`` of ``[step, fraction, [p per op], [m per op]]``, and a fifth element, the share, in every row or none),
which replays exactly as the run directory does.
The op space of the schedule must be the task's (same op names; order may differ): else a ConfigError.
"""
from __future__ import annotations

import bisect
import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from adaptaug.augment import NO_OP, AugPlan
from adaptaug.errors import ConfigError
from adaptaug.io import numeric_rows, read_run_config
from adaptaug.ops.space import OpSpace
from adaptaug.policies.augnet import augnet_as_ran
from adaptaug.policies.base import Policy, draw_seed, make_plan, random_signs

FORMAT = "adaptaug-policy-v1"
LEVELS = "uniform in [m - h, m + h], h = min(m, 1 - m): mean m, the logged mean level"
PREFIX = "replay:"


@dataclass
class Schedule:
    """Rows of (step, op probabilities, mean levels) over ``ops``; ``total_steps``: the source's length."""

    ops: tuple[str, ...]
    steps: list[int]  # ascending; the first row is in force from step 0
    probs: list[list[float]]  # (R, K)
    levels: list[list[float]]  # (R, K) mean level in [0, 1]
    total_steps: int
    num_bins: int = 10
    wide: bool = True
    task: str | None = None
    source: str = ""
    shares: list[float] | None = None  # (R,) share of samples that get an op (AugNet's gate or warmup); None: all
    slots: int = 1  # ops per sample, each drawn from the row on its own (AugNet's slots)

    def __post_init__(self) -> None:
        k, r = len(self.ops), len(self.steps)
        if not self.ops or r == 0:
            raise ConfigError(f"schedule {self.source}: no ops or no rows")
        if len(self.probs) != r or len(self.levels) != r or any(len(x) != k for x in (*self.probs, *self.levels)):
            raise ConfigError(f"schedule {self.source}: every row needs one probability and one level per op ({k})")
        if any(b < a for a, b in zip(self.steps, self.steps[1:])) or self.steps[0] < 0:
            raise ConfigError(f"schedule {self.source}: steps must be >= 0 and ascending")
        if not isinstance(self.total_steps, int) or self.total_steps < max(1, self.steps[-1]):
            raise ConfigError(f"schedule {self.source}: total_steps {self.total_steps!r} must be an integer >= the "
                              f"last row's step {self.steps[-1]}")
        for i, (p, m) in enumerate(zip(self.probs, self.levels)):
            if not all(math.isfinite(x) and x >= 0 for x in p) or abs(sum(p) - 1) > 1e-3:
                raise ConfigError(f"schedule {self.source}: row {i} probabilities must be >= 0 and sum to 1")
            if not all(math.isfinite(x) and 0 <= x <= 1 for x in m):
                raise ConfigError(f"schedule {self.source}: row {i} mean levels must be in [0, 1]")
        if self.shares is not None and (len(self.shares) != r
                                        or not all(math.isfinite(x) and 0 <= x <= 1 for x in self.shares)):
            raise ConfigError(f"schedule {self.source}: shares need one value in [0, 1] per row ({r})")
        if not isinstance(self.slots, int) or self.slots < 1:
            raise ConfigError(f"schedule {self.source}: slots must be an integer >= 1, got {self.slots!r}")

    # ------------------------------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "task": self.task, "source": self.source, "ops": list(self.ops),
                "num_bins": self.num_bins, "wide": self.wide, "total_steps": self.total_steps, "levels": LEVELS,
                "slots": self.slots,
                "rows": [[s, s / self.total_steps, list(p), list(m)] + ([self.shares[i]] if self.shares else [])
                         for i, (s, p, m) in enumerate(zip(self.steps, self.probs, self.levels))]}

    def dumps(self) -> str:
        """JSON text, one row per line (small, and readable in a diff)."""
        head = json.dumps({k: v for k, v in self.to_json().items() if k != "rows"}, indent=2)
        rows = ",\n".join("    " + json.dumps(r) for r in self.to_json()["rows"])
        return head[:-2] + ',\n  "rows": [\n' + rows + "\n  ]\n}\n"

    @classmethod
    def from_json(cls, data: Any, where: str = "policy JSON") -> "Schedule":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ConfigError(f"{where} is not an adaptaug policy file (format {FORMAT})")
        try:
            rows = data["rows"]
            with_share = [len(r) > 4 for r in rows]
            if any(with_share) and not all(with_share):
                raise ValueError("a share in some rows and not in others")
            return cls(ops=tuple(data["ops"]), steps=[int(r[0]) for r in rows],
                       probs=[[float(x) for x in r[2]] for r in rows], levels=[[float(x) for x in r[3]] for r in rows],
                       total_steps=int(data["total_steps"]), num_bins=int(data.get("num_bins", 10)),
                       wide=bool(data.get("wide", True)), task=data.get("task"), source=str(data.get("source", where)),
                       shares=[float(r[4]) for r in rows] if rows and all(with_share) else None,
                       slots=int(data.get("slots", 1)))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ConfigError(f"{where}: malformed policy file ({type(err).__name__}: {err})") from None

    def reordered(self, names: Sequence[str]) -> "Schedule":
        """The same schedule over ``names`` (the task's op order); a ConfigError when the op sets differ."""
        names = tuple(names)
        if set(names) != set(self.ops) or len(names) != len(self.ops):
            missing = [n for n in names if n not in self.ops]
            extra = [n for n in self.ops if n not in names]
            raise ConfigError(f"the replayed schedule ({self.source}) is over ops {', '.join(self.ops)}, not the "
                              f"task's op space: missing {', '.join(missing) or 'none'}, extra "
                              f"{', '.join(extra) or 'none'}")
        index = [self.ops.index(n) for n in names]
        return Schedule(names, list(self.steps), [[p[i] for i in index] for p in self.probs],
                        [[m[i] for i in index] for m in self.levels], self.total_steps, self.num_bins, self.wide,
                        self.task, self.source, self.shares, self.slots)


# ----------------------------------------------------------------------------------------------- loading


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err}") from None


def schedule_from_run(run_dir: str | os.PathLike) -> Schedule:
    """The schedule AugNet logged in ``run_dir/trace.csv``, preceded by its starting distribution."""
    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    trace = _read_csv(run_dir / "trace.csv") if (run_dir / "trace.csv").is_file() else []
    if not trace:
        raise ConfigError(f"{run_dir} has no AugNet trace to replay (policy {config.get('policy')!r}; trace.csv "
                          "is missing or empty): replay needs a run trained with --policy augnet")
    ops = tuple(k[2:] for k in trace[0] if k.startswith("p_"))
    if not ops or any(f"m_{op}" not in trace[0] for op in ops):
        raise ConfigError(f"{run_dir / 'trace.csv'} lacks p_<op> / m_<op> columns")
    try:
        steps = [int(float(r["step"])) for r in trace]
        probs = [[float(r[f"p_{op}"]) for op in ops] for r in trace]
        levels = [[float(r[f"m_{op}"]) for op in ops] for r in trace]
        logged_shares = [float(r["augmented_share"]) for r in trace] if "augmented_share" in trace[0] else None
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{run_dir / 'trace.csv'} has a malformed row ({err})") from None
    # the source's length: the steps it trained (epochs run x steps per epoch); the last row if unknown
    info, batch = config.get("task_info") or {}, config.get("batch_size")
    epochs = len(_read_csv(run_dir / "history.csv")) if (run_dir / "history.csv").is_file() else 0
    total = epochs * math.ceil(info["num_train"] / batch) if epochs and batch and info.get("num_train") else 0
    total = max(total, steps[-1], 1)
    augnet = augnet_as_ran(config)
    k = len(ops)
    # AugNet's starting share: the gate's head starts at 0.5, a warmup at 0
    shares = None if logged_shares is None else [0.5 if augnet["gate"] else 0.0, *logged_shares]
    return Schedule(ops, [0, *steps], [[1.0 / k] * k, *probs], [[0.5] * k, *levels], total,
                    num_bins=int(augnet["num_bins"]), wide=bool(augnet["wide"]),
                    task=config.get("task"), source=str(run_dir), shares=shares, slots=int(augnet["slots"]))


def load_schedule(source: str | os.PathLike) -> Schedule:
    """A schedule from a run directory (its trace.csv) or an exported ``policy.json``."""
    path = Path(source).expanduser()
    if path.is_dir():
        return schedule_from_run(path)
    if not path.is_file():
        raise ConfigError(f"replay source {path} does not exist: give a run directory or an exported policy JSON")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read policy file {path}: {err}") from None
    return Schedule.from_json(data, str(path))


def export_policy(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Schedule:
    """Write ``run_dir``'s schedule to ``out`` (JSON, atomically); returns it."""
    from adaptaug.io import write_atomic

    schedule = schedule_from_run(run_dir)
    if out is not None:
        write_atomic(out, schedule.dumps())
    return schedule


# ----------------------------------------------------------------------------------------------- policy


class ReplayPolicy(Policy):
    """A fixed schedule of op probabilities and mean levels, scaled to this run's ``total_steps``."""

    name = "replay"

    def __init__(self, schedule: Schedule, space: OpSpace, total_steps: int, generator: torch.Generator | None = None,
                 base: Policy | None = None) -> None:
        super().__init__(generator, base)
        if total_steps < 1:
            raise ConfigError(f"total_steps must be >= 1, got {total_steps}")
        self.space, self.total_steps = space, int(total_steps)
        self.schedule = schedule.reordered(space.names)
        self._probs = torch.tensor(self.schedule.probs, dtype=torch.float64)  # (R, K)
        means = torch.tensor(self.schedule.levels, dtype=torch.float64)
        self._means, self._half = means, torch.minimum(means, 1 - means)  # (R, K) window centre, half-width
        self.step = 0  # plans sampled so far
        self._active = self._row_at(0)

    @classmethod
    def from_source(cls, source: str | os.PathLike, space: OpSpace, total_steps: int,
                    generator: torch.Generator | None = None, base: Policy | None = None) -> "ReplayPolicy":
        return cls(load_schedule(source), space, total_steps, generator, base)

    def _row_at(self, step: int) -> int:
        """Index of the last row with row.step / T_source <= step / T (exact, in integers)."""
        limit = step * self.schedule.total_steps // self.total_steps
        return max(bisect.bisect_right(self.schedule.steps, limit) - 1, 0)

    @property
    def op_probabilities(self) -> dict[str, float]:
        return dict(zip(self.space.names, self.schedule.probs[self._active]))

    @property
    def mean_levels(self) -> dict[str, float]:
        return dict(zip(self.space.names, self.schedule.levels[self._active]))

    @property
    def augmented_share(self) -> float:
        """The share of samples that get an op under the row in force (1 without logged shares)."""
        return self.schedule.shares[self._active] if self.schedule.shares else 1.0

    def draw(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample op ids (B,) and levels (B,) in [0, 1] from the row in force (no step advance)."""
        g, row = self.generator, self._active
        op_idx = torch.multinomial(self._probs[row], batch_size, replacement=True, generator=g)  # (B,)
        u = torch.rand(batch_size, generator=g, dtype=torch.float64)
        levels = (self._means[row, op_idx] + (2 * u - 1) * self._half[row, op_idx]).clamp(0, 1).float()
        return op_idx, levels

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        g, slots = self.generator, self.schedule.slots
        op_idx, levels = (x.view(batch_size, slots) for x in self.draw(batch_size * slots))
        signs = random_signs((batch_size, slots), g)
        if self.schedule.shares:  # the rest get the base augmentation only, as under AugNet's gate or warmup
            applied = torch.rand(batch_size, generator=g) < self.augmented_share
            op_idx = torch.where(applied[:, None], op_idx, NO_OP)
        plan = make_plan(self.space, op_idx, levels, signs, seed=draw_seed(g), wide=self.schedule.wide)
        self.step += 1
        new = self._row_at(self.step)
        if new != self._active:  # in force from the next plan on: logged as AugNet logs an update
            self._active = new
            row = {"step": self.step, "source_step": self.schedule.steps[new]}
            row.update({f"p_{n}": p for n, p in zip(self.space.names, self.schedule.probs[new])})
            row.update({f"m_{n}": m for n, m in zip(self.space.names, self.schedule.levels[new])})
            if self.schedule.shares:
                row["augmented_share"] = self.schedule.shares[new]
            self.trace.append(row)
        return plan

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "step": self.step, "trace": self.trace_csv()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.step, self.trace = int(state["step"]), numeric_rows(state["trace"])
        self._active = self._row_at(self.step)

    def extra_repr(self) -> str:
        return (f"source={self.schedule.source!r}, rows={len(self.schedule.steps)}, "
                f"source_steps={self.schedule.total_steps}, steps={self.total_steps}, ops={len(self.space)}")


__all__ = ["FORMAT", "PREFIX", "ReplayPolicy", "Schedule", "export_policy", "load_schedule", "schedule_from_run"]
