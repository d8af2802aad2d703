"""AugNet: a small MLP that reads the primary model's performance and chooses the augmentation.

State: ``adaptaug.feedback.STATE_FEATURES`` (training/probe loss and accuracy, generalisation gap, loss
trend, progress, its own entropy). Output: a distribution over the op space and, per op, over magnitude
bins. Every sample of a batch draws its own op and magnitude from that one distribution (varied batches,
batch-level policy). Learning: REINFORCE with a per-step batch baseline (or a running baseline for
round-level rewards), an entropy bonus and a uniform floor against collapse, on a small buffer of recent
(state, action, advantage) transitions, every ``update_every`` steps. Heads start at zero, so an untrained
AugNet is TrivialAugment-wide with continuous levels: learning is measured against that.

Sources: REINFORCE (Williams 1992); per-sample gradient-alignment credit (Ren et al. 2018); per-sample
adaptive policies (MADAug, Hou et al. ICCV 2023; AdaAugment, Yang et al. 2024). See docs/augnet.md.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import nn

from adaptaug.augment import NO_OP, AugPlan, apply_plan
from adaptaug.errors import ConfigError
from adaptaug.feedback import SAMPLE_FEATURES, STATE_FEATURES, FeedbackTracker
from adaptaug.host_threads import one_thread
from adaptaug.io import numeric_rows
from adaptaug.ops.space import OpSpace
from adaptaug.policies.base import Policy, draw_seed, make_plan, random_signs
from adaptaug.rewards import Reward, RoundData, StepRecord, get_reward, standardised

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, targets) -> (B,) per-sample loss


GATED_PROBE_CHUNK = 32  # probe samples per round under the gate unless probe_chunk says otherwise
GATED_PROBE_EVERY = 4  # rounds between probe forwards under the gate unless probe_every says otherwise
TEXT_SLOTS = 2  # ops per sample on text classification (op modality "text") unless slots says otherwise


@dataclass
class AugNetConfig:
    lr: float = 0.01  # the seed's value for AugNet's Adam
    hidden: tuple[int, int] = (64, 32)  # the seed's MLP
    num_bins: int = 10  # magnitude bins per op; a level is drawn uniformly inside its bin
    update_every: int = 4  # steps per round: one probe forward + policy update per round
    minibatch: int = 32  # transitions per policy-gradient step (the seed's value)
    updates_per_round: int = 1  # policy-gradient steps per round (more collapses the policy at lr 0.01)
    buffer_size: int = 512  # recent transitions kept (about two rounds at batch 64)
    entropy_coef: float = 0.01  # bonus on the op and magnitude entropies, against early collapse
    uniform_floor: float = 0.1  # share of uniform sampling mixed into the distributions
    probe_size: int = 256  # validation-probe samples (carved from the validation split, never test)
    # rounds between probe forwards; the rounds between reuse the last probe result (alignment moves slowly). On the
    # CPU the probe is most of AugNet's cost: at 1, 256 probe images per 4 steps of 64 cost about a third of a CNN's
    # training step. None (default): GATED_PROBE_EVERY under the gate (with the 32-image chunk it kept the default's
    # validation accuracy on the full CIFAR-10, 74.94 against 74.53, and cut AugNet's share of a CPU epoch from 9.7%
    # to 6.7%: reports/cifar10-full-probe-every/), 1 without it (not checked there)
    probe_every: int | None = None
    # probe samples per probe forward. Smaller than probe_size: each probe forward takes the probe's next chunk in
    # turn, and the probe result (loss, accuracy, gradient) is over the latest pass of every chunk, so the reward
    # still averages probe_size samples at a fraction of the forward cost; probe_size or more: the whole probe.
    # None (default): GATED_PROBE_CHUNK under the gate (it kept the gate's validation accuracy on the CIFAR subset
    # and the full task at about a quarter of AugNet's cost: reports/augnet-gate-probe-chunk/,
    # reports/cifar10-full-probe-chunk/), the whole probe without it (the chunk failed its rule there)
    probe_chunk: int | None = None
    # the probe's forward under bfloat16 autocast even when training runs in float32: the probe only sets the
    # reward's direction (its mean last-layer gradient) and the state's probe loss and accuracy. On a CPU with AMX
    # it cut AugNet's share of training from 24% to 18%, but lost 0.82 validation points on the CIFAR subset (rule:
    # at most 0.5; reports/augnet-probe-bf16/), so it is an option
    probe_bf16: bool = False
    # cosine | alignment | val-drop | adversarial | mixed (adaptaug.rewards); cosine beat alignment on CIFAR-10
    # validation accuracy (docs/augnet.md)
    reward: str = "cosine"
    wide: bool = True  # magnitude ranges of TrivialAugment-wide
    learn: bool = True  # False: frozen at initialisation (a uniform random policy, for ablations)
    # per-sample decisions: each sample's relative training loss when last seen (SAMPLE_FEATURES) joins the
    # state, and every sample gets its own distribution (AdaAugment, MADAug); needs the samples' ids
    per_sample: bool = False
    drop_features: tuple[str, ...] = ()  # features held at 0 (ablations); names from STATE_FEATURES, SAMPLE_FEATURES
    # curriculum (MADAug, PBA): the share of samples that get AugNet's op rises linearly from 0 to 1 over this
    # fraction of the planned training steps (0: every sample from the start); the rest get the base
    # augmentation only, and their draws teach AugNet nothing
    warmup: float = 0.0
    # with a warmup: a policy-gradient step waits until the rounds since the last one stored at least a minibatch
    # of fresh transitions, and draws from those and the previous step's only. Each Adam step moves the policy
    # about lr whatever the evidence (advantages are standardised), so steps on the trickle of transitions early
    # in a warmup, replayed round after round, drift: AugNet collapsed onto an arbitrary op within 5-15% of
    # training (CIFAR subset, 10 of 10 runs), and on a pure-noise reward (tests). This rule delays the collapse
    # (to 20-45%) but scored lower on validation (0.546 against 0.560, behind at 5 of 5 seeds;
    # reports/warmup-fresh/), so it is an option (augnet[fresh]). Without a warmup it changes nothing
    fresh_updates: bool = False
    # a learned gate: AugNet also decides the share of samples that get its op (the rest get the base augmentation
    # only), one Bernoulli per sample from a third head (starts at 0.5, kept within [floor/2, 1 - floor/2]),
    # learnt by REINFORCE from the same per-sample reward standardised over all the batch's samples, so an op earns
    # credit only where augmenting beats not augmenting. The amount of augmentation as an action, not a schedule.
    # None (default): on where AugNet stacks on a base augmentation (image tasks: crop+flip) and no warmup,
    # per-sample mode or val-drop reward is set; off where there is no base (text), since not augmenting then means
    # no augmentation at all: it passed its rule on CIFAR-10 (subset and full task) and failed it on SST-2
    # (reports/augnet-gate/, reports/cifar10-full-gate/)
    gate: bool | None = None
    # the gate as one learned logit of its own instead of a head on the MLP's features: the op heads' updates then
    # cannot move it, nor it them. On the full CIFAR-10 12 of the 15 times the shared gate's share moved by more than
    # 0.3 within an epoch, the op AugNet had committed to changed with it. Its own gate never jumped (0 of 6 runs), but
    # it did not close either (mean share 0.28-0.55): validation 71.95 against 72.47, ahead 3/6, so an option
    # (reports/cifar10-full-free-gate/)
    free_gate: bool = False
    # ops per sample, each drawn from the round's distribution on its own, one after another (RandAugment's N): the
    # sample's reward credits every one of its draws. None (default): TEXT_SLOTS on text classification, 1 elsewhere.
    # On SST-2 two ops passed their rule on a validation split of whole sentences (74.08 against 70.93, ahead 5/5;
    # reports/sst2-whole-val/), after a level result on a split of phrases (reports/sst2-reward/); images not tried
    slots: int | None = None
    # a trust region on each policy step (TRPO's, Schulman et al. 2015, by backtracking): if an Adam step moves the
    # distribution AugNet samples from (ops, their magnitude bins and the gate, with the uniform floor) by more than
    # this KL divergence (nats, mean over the step's states), the step is shrunk by halves until it does not, or
    # undone. Standardised advantages make every Adam step move the net by about lr whatever the evidence, and a
    # coherent step moves all its weights at once: on the full CIFAR-10 single rounds moved the policy by up to 0.38
    # nats, and runs switched from one committed op to another within 8 rounds, then stopped early
    # (reports/cifar10-full-13seeds/). None (default): no limit
    max_kl: float | None = None

    def __post_init__(self) -> None:
        for name in ("num_bins", "update_every", "minibatch", "updates_per_round", "buffer_size", "probe_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"AugNet {name} must be >= 1, got {getattr(self, name)}")
        for name in ("probe_every", "probe_chunk", "slots"):  # None: resolved() decides
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"AugNet {name} must be >= 1, got {value}")
        if not self.lr > 0:
            raise ConfigError(f"AugNet lr must be > 0, got {self.lr}")
        self.drop_features = tuple(self.drop_features)
        unknown = [f for f in self.drop_features if f not in STATE_FEATURES + SAMPLE_FEATURES]
        if unknown:
            raise ConfigError(f"unknown AugNet state feature {unknown[0]!r}; known: "
                              f"{', '.join(STATE_FEATURES + SAMPLE_FEATURES)}")
        if not self.per_sample and any(f in SAMPLE_FEATURES for f in self.drop_features):
            raise ConfigError(f"{', '.join(SAMPLE_FEATURES)} is a per-sample feature: it needs per_sample=True")
        if self.reward == "val-drop" and self.probe_every not in (None, 1):
            raise ConfigError("the val-drop reward is the probe loss's change across each round: it needs "
                              f"probe_every 1, got {self.probe_every}")
        if self.reward == "val-drop" and self.probe_chunk is not None and self.probe_chunk < self.probe_size:
            raise ConfigError("the val-drop reward compares the whole probe's loss across each round: it needs "
                              f"probe_chunk >= probe_size, got {self.probe_chunk} < {self.probe_size}")
        if not 0 <= self.warmup <= 1:
            raise ConfigError(f"AugNet warmup must be a fraction of training in [0, 1], got {self.warmup}")
        if self.max_kl is not None and not self.max_kl > 0:
            raise ConfigError(f"AugNet max_kl must be > 0 (or None: no trust region), got {self.max_kl}")
        if not 0 <= self.uniform_floor < 1:
            raise ConfigError(f"AugNet uniform_floor must be in [0, 1), got {self.uniform_floor}")
        if self.gate not in (None, True, False):
            raise ConfigError(f"AugNet gate must be true, false or null (auto), got {self.gate!r}")
        if self.gate and self.warmup > 0:
            raise ConfigError("AugNet's gate and its warmup both set the share of augmented samples: use one")
        if self.gate and self.per_sample:
            raise ConfigError("AugNet's gate is one decision per round; it does not combine with per_sample")
        if self.gate and self.reward == "val-drop":
            raise ConfigError("AugNet's gate learns from per-sample rewards; the val-drop reward is one per round")
        if self.free_gate and self.gate is False:
            raise ConfigError("AugNet's free_gate is a form of the gate, which is set off here")

    def resolved(self, stacked: bool, modality: str | None = "image") -> "AugNetConfig":
        """This config with ``gate``, ``probe_chunk``, ``probe_every`` and ``slots`` decided. The gate: as given,
        or, when None, on iff AugNet ``stacked`` on a base augmentation and nothing else sets the share of augmented
        samples or rules the gate out. The probe chunk: as given, or, when None, GATED_PROBE_CHUNK under the gate
        and None (the whole probe) without it. The probe's cadence: as given, or, when None, GATED_PROBE_EVERY under
        the gate and 1 without it. The slots: as given, or, when None, TEXT_SLOTS where the ops' ``modality`` is
        "text" and 1 elsewhere. ``free_gate`` where the gate resolves off is a ConfigError. Resolving twice changes
        nothing."""
        gate = self.gate
        if gate is None:
            gate = stacked and self.warmup == 0 and not self.per_sample and self.reward != "val-drop"
        probe_chunk = GATED_PROBE_CHUNK if gate and self.probe_chunk is None else self.probe_chunk
        probe_every = self.probe_every if self.probe_every is not None else (GATED_PROBE_EVERY if gate else 1)
        slots = self.slots if self.slots is not None else (TEXT_SLOTS if modality == "text" else 1)
        if self.free_gate and not gate:
            raise ConfigError("AugNet's free_gate needs the gate, which is off here (no base augmentation to fall back "
                              "on, or a warmup, per_sample or the val-drop reward rules it out)")
        return replace(self, gate=gate, probe_chunk=probe_chunk, probe_every=probe_every, slots=slots)


# What a saved run's config means when it lacks a field (it was made before the field existed): the value
# that keeps the behaviour it ran with. ``compare`` reuses runs by comparing configs, so this is a literal and
# not AugNetConfig's defaults: changing a default later must not relabel earlier runs. A new field adds its
# entry here (a test checks that every field has one).
ABSENT_FIELD_MEANS: dict[str, Any] = {
    "lr": 0.01, "hidden": (64, 32), "num_bins": 10, "update_every": 4, "minibatch": 32, "updates_per_round": 1,
    "buffer_size": 512, "entropy_coef": 0.01, "uniform_floor": 0.1, "probe_size": 256, "probe_every": 1,
    "probe_chunk": None, "reward": "cosine", "wide": True, "learn": True, "per_sample": False,
    "drop_features": (), "warmup": 0.0, "fresh_updates": False, "gate": False, "probe_bf16": False,
    "slots": 1, "max_kl": None, "free_gate": False,
}


def augnet_as_ran(saved: dict[str, Any]) -> dict[str, Any]:
    """The AugNet fields of a run's saved config (config.json) as that run used them: ``resolved_augnet`` (the
    config after AugNetConfig.resolved), and for runs made before it was recorded, fields they predate at the
    values they ran with (ABSENT_FIELD_MEANS), the gate and probe chunk as their own keys recorded them, and a None
    probe chunk as it read before it was recorded: the whole probe."""
    if isinstance(saved.get("resolved_augnet"), dict):
        return {**ABSENT_FIELD_MEANS, **saved["resolved_augnet"]}
    augnet = {**ABSENT_FIELD_MEANS, **(saved.get("augnet") or {})}
    if augnet["slots"] is None:  # left to resolved() by a run that predates recording it: one op then
        augnet["slots"] = ABSENT_FIELD_MEANS["slots"]
    augnet["gate"] = saved.get("resolved_augnet_gate", augnet["gate"])
    if "resolved_augnet_probe_chunk" in saved:
        augnet["probe_chunk"] = saved["resolved_augnet_probe_chunk"]
    elif augnet["probe_chunk"] is None:
        augnet["probe_chunk"] = augnet["probe_size"]
    return augnet


# a last linear layer's rows: d loss / d logits (N, C), its input (N, d), each row's sample (N,) or None (one row
# per sample)
Rows = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]


class Action(NamedTuple):
    """What AugNet drew for one batch, kept until that batch's feedback arrives."""

    op_idx: torch.Tensor  # (B, slots) ops per sample
    bins: torch.Tensor  # (B, slots) magnitude bin of each
    applied: torch.Tensor | None  # (B,) bool: the op reached the sample (gate, warmup); None: every sample
    sample_ids: torch.Tensor | None  # (B,) per-sample mode: positions in the training split
    states: torch.Tensor | None  # (B, F) per-sample mode: the state rows the draws came from


class AugNet(nn.Module):
    """MLP state -> (op logits (N, K), magnitude-bin logits (N, K, M)); heads start at zero (uniform). With
    ``gate``, a third head gives one logit (N,) for "apply the op at all" (``heads``); with ``free_gate`` that logit
    is one parameter of its own, the same for every state."""

    def __init__(self, num_features: int, num_ops: int, num_bins: int, hidden: Sequence[int] = (64, 32),
                 gate: bool = False, free_gate: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = num_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.body = nn.Sequential(*layers)
        self.op_head = nn.Linear(width, num_ops)
        self.magnitude_head = nn.Linear(width, num_ops * num_bins)
        self.gate_head = nn.Linear(width, 1) if gate and not free_gate else None  # absent: older checkpoints load
        self.gate_logit = nn.Parameter(torch.zeros(())) if gate and free_gate else None
        for head in (self.op_head, self.magnitude_head, self.gate_head):
            if head is not None:
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        self.num_ops, self.num_bins = num_ops, num_bins

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        op_logits, mag_logits, _ = self.heads(state)
        return op_logits, mag_logits

    def heads(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        h = self.body(state)
        op_logits = self.op_head(h)  # (N, K) one logit per op
        mag_logits = self.magnitude_head(h).view(-1, self.num_ops, self.num_bins)  # (N, K, M)
        gate_logit = self.gate_head(h).squeeze(-1) if self.gate_head is not None else None  # (N,)
        if self.gate_logit is not None:
            gate_logit = self.gate_logit.repeat(h.shape[0])  # a copy: a view of it would require grad under no_grad
        return op_logits, mag_logits, gate_logit


def default_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample correctness for multi-class logits (B, C) or one binary logit (B,) / (B, 1)."""
    if logits.dim() == 1 or logits.shape[-1] == 1:
        return ((logits.reshape(-1) > 0).long() == targets.reshape(-1).long()).float()
    return (logits.argmax(-1) == targets).float()


class AugNetPolicy(Policy):
    """The adaptive policy. Use ``attach`` once, then ``sample``/``__call__`` and ``observe`` every step."""

    name = "augnet"
    learns = True

    def __init__(self, space: OpSpace, num_classes: int, total_steps: int, config: AugNetConfig | None = None,
                 generator: torch.Generator | None = None, base: Policy | None = None) -> None:
        super().__init__(generator, base)
        config = (config or AugNetConfig()).resolved(stacked=base is not None, modality=space.modality)
        self.space, self.config = space, config
        self.reward: Reward = get_reward(self.config.reward)
        self.features = STATE_FEATURES + (SAMPLE_FEATURES if self.config.per_sample else ())
        self.net = AugNet(len(self.features), len(space), self.config.num_bins, self.config.hidden, self.config.gate,
                          self.config.free_gate)
        # foreach: one call per Adam op over all of the net's tensors instead of a Python loop over them (on the
        # CPU torch defaults to the loop); the same numbers bit for bit (checked over 60 rounds of the tests' harness)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.lr, foreach=True)
        self.tracker = FeedbackTracker(num_classes, total_steps)
        self.has_magnitude = torch.tensor([s.has_magnitude for s in space.specs])
        self.runtime_s = 0.0  # AugNet's own cost: sampling, feedback, probe, updates
        self._model: nn.Module | None = None
        self._pending: list[StepRecord] = []
        # drawn, not yet observed: (op ids, bins, applied mask, sample ids, state rows) per batch, oldest first
        # (the trainer draws a round's plans ahead); a round's worth at most, so loops that only sample stay bounded
        self._unobserved: deque[Action] = deque(maxlen=self.config.update_every)
        self._batches_drawn = 0  # the warmup's clock (a frozen AugNet observes nothing, so not the tracker's)
        self._buffer: dict[str, torch.Tensor] = {}
        self._gate_buffer: dict[str, torch.Tensor] = {}  # (state, applied, advantage) of every sample, with gate
        self._gate_prob = torch.tensor(0.5)  # 0-dim so that data-parallel ranks can share it (shared_tensors)
        self._fresh = 0  # transitions stored since the last policy-gradient step
        self._previous_fresh = 0  # those that the last step waited for
        self._baseline: tuple[float, float] | None = None  # running mean/var of round-level rewards
        self._probe_loss: float | None = None
        self._probe_result: tuple[float, float, torch.Tensor | None, torch.Tensor | None] | None = None
        self._chunk_results: dict[int, tuple] = {}  # chunk index -> its latest probe result and size
        self._next_chunk = 0
        self._rounds_done = 0
        self.trust_region_cuts = 0  # policy steps that max_kl shrank or undid (traced as trust_region_cuts)
        self._feature_mask = torch.tensor([f not in self.config.drop_features for f in self.features]).float()
        # per-sample mode: each training sample's loss when last seen (NaN: not seen yet), grown on demand
        self._loss_memory = torch.full((0,), math.nan)
        self._state = self._read_state()
        self._refresh_distribution()

    # ----------------------------------------------------------------------------------------- wiring
    def attach(self, model: nn.Module, loss_fn: LossFn, probe_inputs: torch.Tensor | tuple,
               probe_targets: torch.Tensor, head: nn.Module | None = None,
               accuracy_fn: LossFn = default_accuracy, amp: torch.dtype | None = None,
               reused_outputs: bool = False) -> "AugNetPolicy":
        """Connect the primary model. ``head`` is its last linear layer (default ``model.classifier``);
        ``probe_*`` is a small held-out batch (validation data, never test), inputs as ``model(*inputs)``,
        already in the memory format the training step feeds. ``amp``: the autocast dtype of the training
        forward (e.g. ``torch.bfloat16``), which AugNet's own forwards (probe, clean inputs) then use too;
        logits are read in float32 either way. ``reused_outputs``: the training step writes its outputs into the
        same memory every step (CUDA graphs), so the features a round keeps are copied out."""
        head = head if head is not None else getattr(model, "classifier", None)
        if self.reward.needs_gradients and not isinstance(head, nn.Linear):
            raise ConfigError("AugNet's alignment reward needs the model's last nn.Linear: pass head=... "
                              "or give the model a `classifier` attribute")
        self._model, self.loss_fn, self.accuracy_fn, self._amp = model, loss_fn, accuracy_fn, amp
        self._copy_features = reused_outputs
        inputs = probe_inputs if isinstance(probe_inputs, tuple) else (probe_inputs,)
        n = min(self.config.probe_size, len(probe_targets))
        self._probe = (tuple(x[:n] for x in inputs), probe_targets[:n])
        self._features: torch.Tensor | None = None
        if head is not None:
            head.register_forward_hook(self._capture_features)
        return self

    def _capture_features(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self._features = args[0].detach()

    # ----------------------------------------------------------------------------------------- acting
    def _distributions(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """State rows (N, F) -> op probabilities (N, K), magnitude-bin probabilities (N, K, M) and, with the
        gate, P(apply) (N,), from one pass of the net."""
        with torch.no_grad():
            op_logits, mag_logits, gate_logit = self.net.heads(rows)
        gate = self._gate_probability(gate_logit) if gate_logit is not None else None
        return self._with_floor(op_logits.softmax(-1)), self._with_floor(mag_logits.softmax(-1)), gate

    def _policy_kl(self, old: tuple, new: tuple) -> float:
        """Mean over state rows of KL(old || new) between two ``_distributions`` results: the op's, plus each op's
        magnitude bins weighted by the op's old probability (ops with a magnitude only), plus the gate's."""
        (old_ops, old_mags, old_gate), (new_ops, new_mags, new_gate) = old, new
        kl = (old_ops * (old_ops / new_ops).log()).sum(-1)
        mag_kl = (old_mags * (old_mags / new_mags).log()).sum(-1)  # (N, K)
        kl = kl + (old_ops * mag_kl * self.has_magnitude).sum(-1)
        if old_gate is not None:
            kl = kl + old_gate * (old_gate / new_gate).log() + (1 - old_gate) * ((1 - old_gate) / (1 - new_gate)).log()
        return float(kl.mean())

    def _within_trust_region(self, before: list[torch.Tensor], rows: torch.Tensor, old: tuple) -> None:
        """Shrink the step just taken (parameters ``before`` -> now) by halves until the policy on ``rows`` moved
        by at most ``max_kl`` from ``old``; undo it (scale 0) if ten halvings do not get there."""
        if self._policy_kl(old, self._distributions(rows)) <= self.config.max_kl:
            return
        params = list(self.net.parameters())
        steps = [p.detach() - b for p, b in zip(params, before)]
        for scale in [0.5 ** k for k in range(1, 11)] + [0.0]:
            with torch.no_grad():  # in place, so Adam's state stays with the same tensors
                for p, b, d in zip(params, before, steps):
                    p.copy_(b + scale * d)
            if scale == 0.0 or self._policy_kl(old, self._distributions(rows)) <= self.config.max_kl:
                self.trust_region_cuts += 1
                return

    def _state_rows(self, sample_ids: torch.Tensor | None, batch_size: int) -> torch.Tensor:
        """(B, F): the round's state, and in per-sample mode each sample's hardness (0 when unknown)."""
        if not self.config.per_sample:
            return self._state.unsqueeze(0)
        hardness = torch.zeros(batch_size)
        if sample_ids is not None:
            ids = sample_ids.cpu().long()
            seen = ids < self._loss_memory.shape[0]
            last = torch.full((batch_size,), math.nan)
            last[seen] = self._loss_memory[ids[seen]]
            mean = self.tracker.train_loss_fast
            hardness = torch.where(last.isnan(), 0.0, (torch.log(last + 1e-3) - math.log(mean + 1e-3)).clamp(-4, 4))
        rows = torch.cat([self._state.expand(batch_size, -1), hardness[:, None]], dim=1)
        return rows * self._feature_mask

    def _refresh_distribution(self) -> None:
        op_probs, mag_probs, gate = self._distributions(self._state_rows(None, 1))
        self._op_probs, self._mag_probs = op_probs[0], mag_probs[0]  # (K,), (K, M)
        if gate is not None:
            self._gate_prob = gate[0]

    def _gate_probability(self, gate_logit: torch.Tensor) -> torch.Tensor:
        """P(apply AugNet's op), kept off 0 and 1 by the uniform floor as the op distribution is."""
        eps = self.config.uniform_floor
        return (1 - eps) * gate_logit.sigmoid() + eps / 2

    def _with_floor(self, probs: torch.Tensor) -> torch.Tensor:
        eps = self.config.uniform_floor
        return (1 - eps) * probs + eps / probs.shape[-1]

    def shared_tensors(self) -> list[torch.Tensor]:
        return [self._op_probs, self._mag_probs] + ([self._gate_prob] if self.config.gate else [])

    @property
    def op_probabilities(self) -> dict[str, float]:
        return dict(zip(self.space.names, self._op_probs.tolist()))

    def _sample(self, batch_size: int, sample_ids: torch.Tensor | None = None) -> AugPlan:
        start = time.perf_counter()
        g, m, slots = self.generator, self.config.num_bins, self.config.slots
        if self.config.per_sample:  # a distribution per sample, from its own state row
            rows = self._state_rows(sample_ids, batch_size)
            op_probs, mag_probs, _ = self._distributions(rows)  # (B, K), (B, K, M); no gate with per_sample
            op_idx = torch.multinomial(op_probs, slots, replacement=True, generator=g)  # (B, S)
            own_mag_probs = mag_probs[torch.arange(batch_size)[:, None], op_idx]  # (B, S, M)
            bins = torch.multinomial(own_mag_probs.view(-1, m), 1, generator=g).view(batch_size, slots)
            # what this batch was drawn from on average: the trace, the entropy feature, data-parallel copies
            self._op_probs, self._mag_probs = op_probs.mean(0), mag_probs.mean(0)
        else:  # one distribution for the round; every sample draws from it
            sample_ids = rows = None  # the transitions need neither
            op_idx = torch.multinomial(self._op_probs, batch_size * slots, replacement=True, generator=g)
            bins = torch.multinomial(self._mag_probs[op_idx], 1, generator=g)
            op_idx, bins = op_idx.view(batch_size, slots), bins.view(batch_size, slots)  # (B, S)
        levels = (bins.float() + torch.rand(batch_size, slots, generator=g)) / m  # uniform inside the bin
        signs = random_signs((batch_size, slots), g)
        applied = self._augmented_mask(batch_size)
        if self.config.learn:  # frozen: observe() needs no draw, and its plans may run ahead of any round
            self._unobserved.append(Action(op_idx, bins, applied, sample_ids, rows))
        plan_ops = op_idx if applied is None else torch.where(applied[:, None], op_idx, NO_OP)
        plan = make_plan(self.space, plan_ops, levels, signs, seed=draw_seed(g), wide=self.config.wide)
        self.runtime_s += time.perf_counter() - start
        return plan

    def plans_ahead(self) -> int | None:
        """The batches left in this round: every draw until the round's update comes from the same net and
        state, so a round's plans drawn at its start are the ones drawn one by one, bit for bit. Frozen: any."""
        if not self.config.learn:
            return None
        return self.config.update_every - self._batches_drawn % self.config.update_every

    @property
    def augmented_share(self) -> float:
        """The share of samples AugNet's op reaches at the next batch: the gate's probability, the warmup's
        share, or 1."""
        if self.config.gate:
            return float(self._gate_prob)
        if self.config.warmup == 0:
            return 1.0
        return min(1.0, self._batches_drawn / (self.config.warmup * self.tracker.total_steps))

    def _augmented_mask(self, batch_size: int) -> torch.Tensor | None:
        """(B,) bool: which samples get AugNet's op (gate, warmup); None once (or if) every sample does."""
        share = self.augmented_share
        self._batches_drawn += 1
        if share >= 1.0 and not self.config.gate:
            return None
        return torch.rand(batch_size, generator=self.generator) < share

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Sample a plan for this batch and apply it (image convenience for custom loops)."""
        self._clean_inputs = images
        return apply_plan(images, self.sample(images.shape[0]))

    # ----------------------------------------------------------------------------------------- feedback
    def observe(self, logits: torch.Tensor, targets: torch.Tensor, clean_inputs: Any = None,
                clean_targets: torch.Tensor | None = None, **_: Any) -> None:
        """Feedback from the step that trained on the oldest plan not yet observed (the last one sampled, unless
        plans were drawn ahead): its logits and targets."""
        if self._model is None:
            raise ConfigError("call AugNetPolicy.attach(model, loss_fn, probe_inputs, probe_targets) first")
        if not self.config.learn:
            # frozen: the heads stay at their zero initialisation, so the policy is uniform whatever it reads;
            # feedback, probes and rewards would cost time and change nothing (and _sample keeps no draws for it)
            return
        if not self._unobserved:
            raise ConfigError("observe() was called without a sample() before it")
        action = self._unobserved.popleft()
        start = time.perf_counter()
        features = self._features
        if self._copy_features and features is not None:  # the next step's graph replay would overwrite them
            features = features.clone()
        record = StepRecord(op_idx=action.op_idx, bins=action.bins, sample_ids=action.sample_ids,
                            states=action.states, applied=action.applied)
        with one_thread(), torch.enable_grad():  # one batch's logits: tiny (host_threads)
            logits_d = logits.detach().requires_grad_(True)
            loss = self.loss_fn(logits_d, targets)  # (B,)
            grad_logits = torch.autograd.grad(loss.sum(), logits_d)[0] if self.reward.needs_gradients else None
            record.loss = loss.detach()
            if self.reward.needs_gradients:
                record.grad_logits, record.features, record.sample_of_row = _rows(grad_logits, features)
            self.tracker.add_batch(record.loss, self.accuracy_fn(logits.detach(), targets))
        needs_clean_gradients = getattr(self.reward, "needs_clean_gradients", False)
        if self.reward.needs_clean_loss or needs_clean_gradients:
            clean = clean_inputs if clean_inputs is not None else getattr(self, "_clean_inputs", None)
            if clean is None:
                raise ConfigError(f"the {self.reward.name} reward needs the clean inputs: "
                                  "observe(..., clean_inputs=x)")
            clean = clean if isinstance(clean, tuple) else (clean,)
            # clean_targets: the targets of the clean inputs when augmentation moved them (NER)
            clean_targets = targets if clean_targets is None else clean_targets
            if self.reward.needs_clean_loss:
                with torch.no_grad():
                    record.clean_loss = self.loss_fn(self._forward(clean, self._amp), clean_targets)
            if needs_clean_gradients:
                _, _, rows = self._eval_pass(clean, clean_targets, gradients=True, amp=self._amp)
                record.clean_grad_logits, record.clean_features, record.clean_sample_of_row = rows
        self._pending.append(record)
        if len(self._pending) >= self.config.update_every:
            self._round()
        self.runtime_s += time.perf_counter() - start

    def _probe_step(self) -> tuple[float, float, torch.Tensor | None, torch.Tensor | None]:
        """Probe the next chunk; return the result over the latest pass of every chunk seen so far."""
        inputs, targets = self._probe
        size = len(targets)
        chunk = min(self.config.probe_chunk or size, size)
        index = self._next_chunk % math.ceil(size / chunk)
        part = slice(index * chunk, (index + 1) * chunk)
        self._chunk_results[index] = self._run_probe(tuple(x[part] for x in inputs), targets[part])
        self._next_chunk = index + 1
        if len(self._chunk_results) == 1:  # the whole probe in one forward, or the first chunk: as it is
            return self._chunk_results[index][:4]
        results = [self._chunk_results[i] for i in sorted(self._chunk_results)]
        seen = sum(r[4] for r in results)
        loss = sum(r[0] * r[4] for r in results) / seen
        acc = sum(r[1] * r[4] for r in results) / seen
        grad, features = (None, None) if results[0][2] is None else (
            torch.cat([r[2] for r in results]), torch.cat([r[3] for r in results]))
        return loss, acc, grad, features

    def _run_probe(self, inputs: tuple, targets: torch.Tensor
                   ) -> tuple[float, float, torch.Tensor | None, torch.Tensor | None, int]:
        amp = torch.bfloat16 if self.config.probe_bf16 else self._amp
        logits, loss, rows = self._eval_pass(inputs, targets, self.reward.needs_gradients, amp)
        acc = self.accuracy_fn(logits, targets).float().mean()
        grad, features = rows[:2] if rows is not None else (None, None)
        mean_loss, mean_acc = torch.stack([loss.mean().float(), acc.float()]).tolist()  # one device read
        return mean_loss, mean_acc, grad, features, len(targets)

    def _eval_pass(self, inputs: tuple, targets: torch.Tensor, gradients: bool, amp: torch.dtype | None
                   ) -> tuple[torch.Tensor, torch.Tensor, Rows | None]:
        """The model in eval mode (no dropout: it measures the model, not the noise), under autocast to ``amp``
        (None: none), without autograd through it: logits, per-sample loss and, when ``gradients``, the last
        layer's rows as ``_rows`` gives them (d loss / d logits, the layer's input, each row's sample)."""
        model = self._model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                logits = self._forward(inputs, amp)
            features = self._features
        finally:
            model.train(was_training)
        with torch.enable_grad():
            logits_d = logits.detach().requires_grad_(True)
            loss = self.loss_fn(logits_d, targets)
            grad = torch.autograd.grad(loss.sum(), logits_d)[0] if gradients else None
        return logits, loss.detach(), _rows(grad, features) if gradients else None

    def _forward(self, inputs: tuple, amp: torch.dtype | None) -> torch.Tensor:
        """The primary model's logits (float32) under autocast to ``amp`` (the training forward's, or the
        probe's bf16), if any."""
        device_type = inputs[0].device.type
        with torch.autocast(device_type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            return self._model(*inputs).float()

    def _round(self) -> None:
        if self._probe_result is None or self._rounds_done % self.config.probe_every == 0:
            self._probe_result = self._probe_step()
        self._rounds_done += 1
        probe_loss, probe_acc, probe_grad, probe_features = self._probe_result
        # first round: no "before" yet, the probe just run is the reference (a second probe of the same
        # model would give the same numbers)
        before = self._probe_loss if self._probe_loss is not None else probe_loss
        if not math.isfinite(probe_loss):
            raise FloatingPointError(f"validation-probe loss is {probe_loss}; the primary model diverged")
        self._probe_loss = probe_loss
        with one_thread():  # the rest of the round: rewards, the policy net and its update (host_threads)
            self._learn_from_round(before, probe_loss, probe_acc, probe_grad, probe_features)

    def _learn_from_round(self, before: float, probe_loss: float, probe_acc: float,
                          probe_grad: torch.Tensor | None, probe_features: torch.Tensor | None) -> None:
        steps, self._pending = self._pending, []
        if self.config.per_sample:
            self._remember_losses(steps)
        data = RoundData(steps, before, probe_loss, probe_grad, probe_features)
        raw = _on_host(self.reward(data))  # the round's one read of its rewards from the device
        advantages = self._advantages(raw, steps)
        if self.config.learn:
            self._store(steps, advantages)
            if self.config.gate:
                self._store_gate(steps, self._gate_advantages(raw))
            self._update()
        entropy = float(-(self._op_probs * self._op_probs.log()).sum() / math.log(len(self.space)))
        self.tracker.close_round(probe_loss, probe_acc, entropy)
        self._state = self._read_state()
        if not self.config.per_sample:  # per-sample mode draws from the net at every batch; the trace then
            self._refresh_distribution()  # shows what the round's last batch was drawn from, on average
        mean_reward = float(torch.cat(raw).float().mean()) if isinstance(raw, list) else float(raw)
        gate_gap = _gate_reward_gap(raw, steps) if self.config.gate else None
        self._log(mean_reward, probe_loss, probe_acc, entropy, gate_gap)

    def _read_state(self) -> torch.Tensor:
        return self.tracker.state() * self._feature_mask[:len(STATE_FEATURES)]  # dropped features read 0

    def _remember_losses(self, steps: list[StepRecord]) -> None:
        """Each sample's training loss, kept for its next draw (one device read per round)."""
        known = [s for s in steps if s.sample_ids is not None]
        if not known:
            return
        ids = torch.cat([s.sample_ids.cpu().long() for s in known])
        losses = torch.cat([s.loss.detach().float() for s in known]).cpu()
        if int(ids.max()) >= self._loss_memory.shape[0]:
            grown = torch.full((int(ids.max()) + 1,), math.nan)
            grown[: self._loss_memory.shape[0]] = self._loss_memory
            self._loss_memory = grown
        self._loss_memory[ids] = losses

    def _advantages(self, raw: list[torch.Tensor] | torch.Tensor, steps: list[StepRecord]) -> torch.Tensor:
        """Advantages for every transition of the round from its rewards, already on the host (``_on_host``),
        flattened in step order: per-step standardisation (per-sample rewards: the batch mean is the baseline) or a
        running baseline (round-level rewards)."""
        if self.reward.per_sample:
            advantages = []
            for r, step in zip(raw, steps):
                if r.shape != step.op_idx.shape[:1]:
                    raise ConfigError(f"the {self.reward.name} reward must give one value per sample of a step, "
                                      f"({step.op_idx.shape[0]},); got {tuple(r.shape)}")
                r = _applied(step, r.float())
                if not torch.isfinite(r).all():
                    raise FloatingPointError("AugNet's reward is NaN or inf; the primary model diverged")
                advantages.append(standardised(r))  # a constant reward (or a batch of one) teaches nothing
            return torch.cat(advantages)
        r = float(raw)
        if not math.isfinite(r):
            raise FloatingPointError("AugNet's reward is NaN or inf; the primary model diverged")
        if self._baseline is None:
            self._baseline = (r, 0.0)
        mean, var = self._baseline
        adv = (r - mean) / math.sqrt(var) if var > 0 else 0.0
        self._baseline = (mean + 0.1 * (r - mean), 0.9 * var + 0.1 * (r - mean) ** 2)
        return torch.full((sum(_applied(s, s.op_idx).shape[0] for s in steps),), adv)  # one per augmented sample

    def _gate_advantages(self, raw: list[torch.Tensor]) -> torch.Tensor:
        """Every sample's reward standardised over its whole batch, augmented or not: the gate's advantage for
        having applied (or not) AugNet's op to it."""
        return torch.cat([standardised(r) for r in raw])

    def _store_gate(self, steps: list[StepRecord], advantages: torch.Tensor) -> None:
        # the gate draws a mask for every batch (_augmented_mask), so every step has one
        new = {"state": self._state.expand(advantages.shape[0], -1),
               "applied": torch.cat([s.applied for s in steps]), "advantage": advantages}
        self._gate_buffer = _appended(self._gate_buffer, new, self.config.buffer_size)

    def _store(self, steps: list[StepRecord], advantages: torch.Tensor) -> None:
        n = advantages.shape[0]
        if n == 0:  # early in the warmup no sample of the round got AugNet's op
            return
        # one transition per draw: a sample's advantage credits each of its slots' (op, bin)
        slots = self.config.slots
        new = {
            "state": (torch.cat([_applied(s, s.states) for s in steps]).repeat_interleave(slots, 0)
                      if self.config.per_sample else self._state.expand(n * slots, -1)),
            "op": torch.cat([_applied(s, s.op_idx.cpu()) for s in steps]).reshape(-1),
            "bin": torch.cat([_applied(s, s.bins.cpu()) for s in steps]).reshape(-1),
            "advantage": advantages.repeat_interleave(slots),
        }
        self._fresh += n * slots
        self._buffer = _appended(self._buffer, new, self.config.buffer_size)

    def _update(self) -> None:
        buf, cfg = self._buffer, self.config
        if not buf:
            return
        n = buf["op"].shape[0]
        window = n  # the minibatch is drawn from the newest `window` transitions
        if cfg.fresh_updates and cfg.warmup > 0:
            if self._fresh < min(cfg.minibatch, cfg.buffer_size):
                return
            # this step's fresh transitions and the previous step's: the two rounds the buffer holds by design
            # (a whole round stores 4 x 64 = 256), however few transitions a round stores
            window = min(n, self._fresh + self._previous_fresh)
            self._fresh, self._previous_fresh = 0, self._fresh
        for _ in range(cfg.updates_per_round):
            idx = (n - window) + torch.randint(0, window, (min(cfg.minibatch, window),), generator=self.generator)
            op_logits, mag_logits = self.net(buf["state"][idx])
            op_probs = self._with_floor(op_logits.softmax(-1))  # (N, K)
            ops = buf["op"][idx]
            mag_probs = self._with_floor(mag_logits[torch.arange(len(idx)), ops].softmax(-1))  # (N, M)
            log_prob = op_probs.gather(1, ops[:, None]).log().squeeze(1)
            mag_log_prob = mag_probs.gather(1, buf["bin"][idx][:, None]).log().squeeze(1)
            log_prob = log_prob + torch.where(self.has_magnitude[ops], mag_log_prob, torch.zeros_like(mag_log_prob))
            entropy = -(op_probs * op_probs.log()).sum(-1) - (mag_probs * mag_probs.log()).sum(-1)
            loss = -(buf["advantage"][idx] * log_prob).mean() - cfg.entropy_coef * entropy.mean()
            if cfg.gate and self._gate_buffer:
                loss = loss + self._gate_loss()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_kl is None:
                self.optimizer.step()
                continue
            rows = buf["state"][idx]
            old, before = self._distributions(rows), [p.detach().clone() for p in self.net.parameters()]
            self.optimizer.step()
            self._within_trust_region(before, rows, old)

    def _gate_loss(self) -> torch.Tensor:
        """REINFORCE for the gate on a minibatch of the gate's transitions (one Bernoulli per sample)."""
        buf = self._gate_buffer
        idx = torch.randint(0, buf["applied"].shape[0], (self.config.minibatch,), generator=self.generator)
        p = self._gate_probability(self.net.heads(buf["state"][idx])[2])
        applied = buf["applied"][idx]
        log_prob = torch.where(applied, p.log(), (1 - p).log())
        entropy = -(p * p.log() + (1 - p) * (1 - p).log())
        return -(buf["advantage"][idx] * log_prob).mean() - self.config.entropy_coef * entropy.mean()

    def _log(self, reward: float, probe_loss: float, probe_acc: float, entropy: float,
             gate_reward_gap: float | None = None) -> None:
        centres = (torch.arange(self.config.num_bins) + 0.5) / self.config.num_bins
        mean_levels = (self._mag_probs * centres).sum(-1)  # (K,) expected level per op
        row: dict[str, float] = {"step": self.tracker.step, "reward": reward, "probe_loss": probe_loss,
                                 "probe_acc": probe_acc, "entropy": entropy}
        row.update({f"p_{n}": float(p) for n, p in zip(self.space.names, self._op_probs)})
        row.update({f"m_{n}": float(m) for n, m in zip(self.space.names, mean_levels)})
        if self.config.warmup > 0 or self.config.gate:
            row["augmented_share"] = self.augmented_share
        if gate_reward_gap is not None:  # the evidence the gate learnt from this round
            row["gate_reward_gap"] = gate_reward_gap
        if self.config.max_kl is not None:  # running count: how often the trust region bound the policy's steps
            row["trust_region_cuts"] = self.trust_region_cuts
        self.trace.append(row)

    # ----------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update(
            net=self.net.state_dict(), optimizer=self.optimizer.state_dict(),
            tracker=self.tracker.state_dict(), buffer=dict(self._buffer), baseline=self._baseline,
            probe_loss=self._probe_loss, rounds_done=self._rounds_done, probe_result=self._probe_result,
            chunk_results=dict(self._chunk_results), next_chunk=self._next_chunk,
            state=self._state, trace=self.trace_csv(), loss_memory=self._loss_memory,
            runtime_s=self.runtime_s, batches_drawn=self._batches_drawn, trust_region_cuts=self.trust_region_cuts,
            fresh=(self._fresh, self._previous_fresh), gate_buffer=dict(self._gate_buffer),
            pending=[{k: v for k, v in vars(s).items()} for s in self._pending],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.tracker.load_state_dict(state["tracker"])
        self._buffer = dict(state["buffer"])
        self._baseline = tuple(state["baseline"]) if state["baseline"] is not None else None
        self._probe_loss, self._state = state["probe_loss"], state["state"]
        self._rounds_done = int(state.get("rounds_done", 0))
        # absent in older checkpoints: the next round probes afresh
        self._probe_result = self._on_model_device(state.get("probe_result"))
        self._chunk_results = {int(i): self._on_model_device(r) for i, r in state.get("chunk_results", {}).items()}
        self._next_chunk = int(state.get("next_chunk", 0))
        self.trace, self.runtime_s = numeric_rows(state["trace"]), state["runtime_s"]
        self._loss_memory = state.get("loss_memory", torch.full((0,), math.nan))  # absent before per_sample
        self._batches_drawn = int(state.get("batches_drawn", 0))  # absent before warmup, which then was 0
        self._fresh, self._previous_fresh = map(int, state.get("fresh", (0, 0)))  # absent before fresh_updates
        self._gate_buffer = dict(state.get("gate_buffer", {}))  # absent before the gate
        self.trust_region_cuts = int(state.get("trust_region_cuts", 0))  # absent before max_kl
        self._pending = [StepRecord(**s) for s in state["pending"]]
        self._refresh_distribution()

    def _on_model_device(self, result: tuple | None) -> tuple | None:
        """A stored probe result with its tensors moved to the model's device (checkpoints load on the CPU)."""
        if result is None or self._model is None:
            return result
        device = next(self._model.parameters()).device
        return tuple(v.to(device) if isinstance(v, torch.Tensor) else v for v in result)

    def extra_repr(self) -> str:
        c = self.config
        return (f"ops={len(self.space)}, reward={self.reward.name!r}, lr={c.lr}, update_every={c.update_every}, "
                f"bins={c.num_bins}, learn={c.learn}" + (", per_sample=True" if c.per_sample else "")
                + (", gate=True" if c.gate else "") + (", free_gate=True" if c.free_gate else ""))


def _appended(buffer: dict[str, torch.Tensor], new: dict[str, torch.Tensor], cap: int) -> dict[str, torch.Tensor]:
    """A replay buffer (aligned columns) with ``new`` rows added at the end, keeping the newest ``cap``."""
    return {k: torch.cat([buffer[k], v])[-cap:] if buffer else v[-cap:] for k, v in new.items()}


def _on_host(raw: list[torch.Tensor] | torch.Tensor | float) -> list[torch.Tensor] | torch.Tensor | float:
    """Rewards on the host in one copy: per step, each read on its own would make the host wait for the GPU
    once per step and again for the trace's mean."""
    if not isinstance(raw, list):
        return raw.detach().cpu() if isinstance(raw, torch.Tensor) else raw
    flat = torch.cat([r.detach().reshape(-1) for r in raw]).cpu()
    return [part.view(r.shape) for part, r in zip(flat.split([r.numel() for r in raw]), raw)]


def _gate_reward_gap(raw: list[torch.Tensor], steps: list[StepRecord]) -> float | None:
    """The round's mean reward of the samples that got AugNet's op minus that of the samples that did not (None
    when either group is empty)."""
    rewards = torch.cat([r.float().reshape(-1) for r in raw])
    applied = torch.cat([s.applied.cpu() for s in steps])
    if applied.all() or not applied.any():
        return None
    return float(rewards[applied].mean() - rewards[~applied].mean())


def _applied(step: StepRecord, values: torch.Tensor) -> torch.Tensor:
    """``values`` (B, ...) of the step's samples that got AugNet's op (all of them outside a warmup)."""
    return values if step.applied is None else values[step.applied.to(values.device)]


def _rows(grad_logits: torch.Tensor, features: torch.Tensor | None) -> Rows:
    """Flatten (B, C) / (B,) / (B, T, C) gradients and matching features to rows (N, C), (N, d)."""
    if features is None:
        raise ConfigError("no features were captured from the model's last linear layer")
    if grad_logits.dim() == 1:
        grad_logits = grad_logits[:, None]
    if grad_logits.dim() == 2:
        return grad_logits, features.reshape(grad_logits.shape[0], -1), None
    batch, tokens = grad_logits.shape[:2]
    sample_of_row = torch.arange(batch, device=grad_logits.device).repeat_interleave(tokens)
    return grad_logits.reshape(batch * tokens, -1), features.reshape(batch * tokens, -1), sample_of_row
