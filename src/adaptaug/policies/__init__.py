"""Augmentation policies, all over the same op registry: ``build_policy(name, task, ...)``."""
from __future__ import annotations

import torch

from adaptaug.errors import ConfigError
from adaptaug.policies.augnet import AugNet, AugNetConfig, AugNetPolicy
from adaptaug.policies.base import Policy, make_plan
from adaptaug.policies.fixed import NoAugment, StandardAugment
from adaptaug.policies.randaugment import RandAugment
from adaptaug.policies.trivialaugment import TrivialAugment

POLICIES = ("none", "standard", "randaugment", "trivialaugment", "augnet")
REPLAY = "replay:"  # + a run directory or policy.json: a schedule AugNet logged, replayed fixed


def build_policy(name: str, task, total_steps: int, generator: torch.Generator,
                 augnet: AugNetConfig | None = None) -> Policy:
    """The named policy over ``task.op_space``; the adaptive and random ones sit on top of the task's
    standard augmentation (crop+flip), as RandAugment and TrivialAugment are run in their papers. A task with
    ``stack_base = False`` (text: EDA is itself a random-op policy, and stacking it would keep AugNet from ever
    choosing a clean sample) gets them alone."""
    if name == "none":
        return NoAugment(generator)
    if name == "standard":
        return task.base_policy(generator)
    base = task.base_policy(generator) if task.stack_base else None
    if name == "randaugment":
        return RandAugment(task.op_space, n=2, m=9, generator=generator, base=base)
    if name == "trivialaugment":
        return TrivialAugment(task.op_space, generator=generator, base=base)
    if name == "augnet":
        return AugNetPolicy(task.op_space, task.num_classes, total_steps, augnet, generator=generator, base=base)
    if name.startswith(REPLAY):  # a logged AugNet schedule, fixed: adaptaug.policies.replay
        from adaptaug.policies.replay import ReplayPolicy
        return ReplayPolicy.from_source(name[len(REPLAY):], task.op_space, total_steps, generator, base)
    raise ConfigError(f"unknown policy {name!r}; known policies: {', '.join(POLICIES)}, replay:RUN_DIR, "
                      "replay:policy.json")


__all__ = ["POLICIES", "REPLAY", "AugNet", "AugNetConfig", "AugNetPolicy", "NoAugment", "Policy", "RandAugment",
           "StandardAugment", "TrivialAugment", "build_policy", "make_plan"]
