"""The op registry: every augmentation is data, ``name -> OpSpec``.

AugNet, RandAugment (Cubuk et al. 2020) and TrivialAugment (Müller & Hutter 2021) all draw from the same
registry, so adding an op is one ``register_op`` call. A policy never calls a kernel directly: it emits an
``AugPlan`` and ``adaptaug.augment.apply_plan`` runs the kernels.

Magnitudes: a policy picks a *level* in [0, 1] per sample; ``OpSpec.magnitude`` maps it into the op's own
units (degrees, pixels fraction, enhancement delta ...) over ``range`` (RandAugment's standard space) or
``wide_range`` (TrivialAugment-wide's space), and flips the sign per sample when ``signed``.
"""
from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from adaptaug.errors import ConfigError

# fn(data, magnitude[B], generator) -> data. Image kernels take float images (B, C, H, W) in [0, 1].
# Randomness that is not the magnitude (cutout centre, crop offset) comes only from ``generator``.
Kernel = Callable[..., object]

MODALITIES = ("image", "text", "tagging")


@dataclass(frozen=True)
class OpSpec:
    name: str
    modality: str  # "image" | "text" | "tagging"
    fn: Kernel = field(repr=False)
    range: tuple[float, float] = (0.0, 0.0)  # op units at level 0 and level 1 (standard space)
    wide_range: tuple[float, float] | None = None  # TrivialAugment-wide space; None = same as range
    signed: bool = False  # the sign of the magnitude is drawn per sample (rotate left or right ...)
    identity_at_zero: bool = True  # level 0 returns the input unchanged
    has_magnitude: bool = True  # False for Identity, FlipLR, AutoContrast, Equalize
    doc: str = ""

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ConfigError(f"op {self.name!r}: modality must be one of {MODALITIES}, got {self.modality!r}")

    def magnitude(self, level: torch.Tensor, sign: torch.Tensor | None = None, wide: bool = False) -> torch.Tensor:
        """Map levels in [0, 1] (shape (B,)) to magnitudes in op units; ``sign`` is +-1 per sample."""
        low, high = self.wide_range if (wide and self.wide_range is not None) else self.range
        mag = low + level * (high - low)
        if self.signed and sign is not None:
            mag = mag * sign
        return mag


OP_REGISTRY: dict[str, OpSpec] = {}


def register_op(spec: OpSpec) -> OpSpec:
    if spec.name in OP_REGISTRY:
        raise ConfigError(f"op {spec.name!r} is already registered")
    OP_REGISTRY[spec.name] = spec
    return spec


def get_op(name: str) -> OpSpec:
    _ensure_builtin_ops()
    try:
        return OP_REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown op {name!r}; known ops: {', '.join(sorted(OP_REGISTRY))}") from None


def list_ops(modality: str | None = None) -> list[str]:
    _ensure_builtin_ops()
    return [n for n, s in OP_REGISTRY.items() if modality is None or s.modality == modality]


@dataclass(frozen=True)
class OpFamily:
    """Ops one kernel runs together, an execution shortcut that changes no result: ``fn(data..., magnitude
    (n,), generator, member (n,) long)`` gives each sample what the op ``members[member[i]]`` would. A plan
    slot then costs one launch sequence for all the family's samples instead of one per op (geometric ops
    as one warp, blends as one pass); tests hold each family to its members' own kernels."""

    name: str
    members: tuple[str, ...]
    fn: Kernel = field(repr=False)


FAMILIES: dict[str, OpFamily] = {}
_FAMILY_OF: dict[str, OpFamily] = {}


def register_family(family: OpFamily) -> OpFamily:
    for member in family.members:
        if member not in OP_REGISTRY:
            raise ConfigError(f"family {family.name!r}: register op {member!r} first")
        if member in _FAMILY_OF:
            raise ConfigError(f"op {member!r} is already in family {_FAMILY_OF[member].name!r}")
    FAMILIES[family.name] = family
    _FAMILY_OF.update(dict.fromkeys(family.members, family))
    return family


def family_of(name: str) -> OpFamily | None:
    """The family that runs op ``name`` together with others, or None."""
    _ensure_builtin_ops()
    return _FAMILY_OF.get(name)


@dataclass(frozen=True)
class SlotFusion:
    """Two ops in consecutive plan slots that one kernel runs together, an execution shortcut that changes no
    result: when every sample's op in a slot is ``first`` and the next slot holds only ``then`` (or nothing),
    ``fn(data..., magnitude (B,), generator, then_mask (B,) long)`` gives each sample ``first`` followed, where
    ``then_mask`` is 1, by ``then``. ``then`` takes no magnitude and draws nothing from the generator (the
    crop+flip recipe: one gather with mirrored columns instead of a crop, a gather, a flip and a scatter)."""

    first: str
    then: str
    fn: Kernel = field(repr=False)


FUSIONS: dict[tuple[str, str], SlotFusion] = {}


def register_fusion(fusion: SlotFusion) -> SlotFusion:
    for name in (fusion.first, fusion.then):
        if name not in OP_REGISTRY:
            raise ConfigError(f"fusion {fusion.first}+{fusion.then}: register op {name!r} first")
    if OP_REGISTRY[fusion.first].modality != OP_REGISTRY[fusion.then].modality:
        raise ConfigError(f"fusion {fusion.first}+{fusion.then}: the two ops must share a modality")
    if OP_REGISTRY[fusion.then].has_magnitude:
        raise ConfigError(f"fusion {fusion.first}+{fusion.then}: the second op must take no magnitude")
    FUSIONS[(fusion.first, fusion.then)] = fusion
    return fusion


def fusion_of(first: str, then: str) -> SlotFusion | None:
    """The kernel that runs ``first`` then ``then`` (from the next slot) in one call, or None."""
    _ensure_builtin_ops()
    return FUSIONS.get((first, then))


@dataclass(frozen=True)
class OpSpace:
    """An ordered set of ops a policy chooses among (op ids in a plan index into ``names``)."""

    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.names:
            raise ConfigError("an op space needs at least one op")
        for n in self.names:
            get_op(n)  # validates the name
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"op space has repeated ops: {self.names}")

    @property
    def specs(self) -> tuple[OpSpec, ...]:
        return tuple(get_op(n) for n in self.names)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def modality(self) -> str:
        """The data its ops run on: that of its ops other than Identity (registered once, as an image op)."""
        kinds = {s.modality for s in self.specs if s.name != "Identity"}
        return kinds.pop() if len(kinds) == 1 else "image"

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ConfigError(f"op {name!r} is not in this op space {self.names}") from None

    @classmethod
    def of(cls, names: Sequence[str]) -> "OpSpace":
        return cls(tuple(names))

    def magnitude_table(self, wide: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per op (K,): the low end and width of its magnitude range (float64) and whether it is signed, so
        a plan's magnitudes come from one gather instead of a loop over the ops (``OpSpec.magnitude``)."""
        return _magnitude_table(self.names, wide)


@functools.lru_cache(maxsize=64)
def _magnitude_table(names: tuple[str, ...], wide: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    specs = [get_op(n) for n in names]
    ranges = [s.wide_range if (wide and s.wide_range is not None) else s.range for s in specs]
    low = torch.tensor([lo for lo, _ in ranges], dtype=torch.float64)
    span = torch.tensor([hi - lo for lo, hi in ranges], dtype=torch.float64)  # high - low in double, as magnitude()
    signed = torch.tensor([s.signed for s in specs])
    return low, span, signed


_builtins_loaded = False


def _ensure_builtin_ops() -> None:
    # Importing the kernel modules registers the built-in ops. Checked by a flag: get_op runs for every op of
    # every plan, and import_module's lookup was 8% of a batch-64 TrivialAugment plan on the CPU.
    global _builtins_loaded
    if _builtins_loaded:
        return
    import importlib

    for module in ("image", "text", "tagging"):  # each on its own: one failing import hides no other
        importlib.import_module(f"adaptaug.ops.{module}")
    _builtins_loaded = True
