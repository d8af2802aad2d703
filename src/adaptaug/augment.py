"""``apply_plan``: the only code that runs augmentation kernels on data.

A policy decides (``Policy.sample`` -> ``AugPlan``), this module executes. Splitting the two, as
torchvision v2 (``make_params`` / ``transform``) and Kornia (``forward_parameters`` / ``forward(params=)``)
do, makes every decision loggable, replayable and testable on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, NamedTuple

import torch

from adaptaug.errors import ConfigError
from adaptaug.host_threads import one_thread
from adaptaug.ops.space import family_of, fusion_of, get_op
from adaptaug.transfer import to_device

NO_OP = -1  # op id meaning "nothing in this slot for this sample"


@dataclass(frozen=True)
class AugPlan:
    """Per-sample decisions for one batch: ``S`` op slots applied in order.

    ``op_ids[b, s]`` indexes ``ops`` (or is ``NO_OP``); ``magnitudes[b, s]`` is in that op's own units,
    already signed. ``seed`` seeds the generator the kernels draw positions from (cutout centre, crop
    offset), so the same plan always gives the same output.
    """

    ops: tuple[str, ...]
    op_ids: torch.Tensor  # (B, S) int64
    magnitudes: torch.Tensor  # (B, S) float32, op units
    seed: int

    def __post_init__(self) -> None:
        if self.op_ids.shape != self.magnitudes.shape or self.op_ids.dim() != 2:
            raise ConfigError(
                f"plan op_ids {tuple(self.op_ids.shape)} and magnitudes {tuple(self.magnitudes.shape)} "
                "must both be (batch, slots)"
            )

    @property
    def batch_size(self) -> int:
        return self.op_ids.shape[0]

    def to(self, device: torch.device | str) -> "AugPlan":
        return replace(self, op_ids=self.op_ids.to(device), magnitudes=self.magnitudes.to(device))

    @staticmethod
    def concat(first: "AugPlan", second: "AugPlan") -> "AugPlan":
        """Slots of ``first`` then slots of ``second`` (ids of ``second`` re-indexed into one vocabulary)."""
        ops = first.ops + tuple(o for o in second.ops if o not in first.ops)
        remap = torch.tensor([ops.index(o) for o in second.ops] + [NO_OP], dtype=torch.long,
                             device=second.op_ids.device)
        second_ids = remap[second.op_ids]  # NO_OP (-1) indexes the last entry, which is NO_OP
        return AugPlan(
            ops=ops,
            op_ids=torch.cat([first.op_ids, second_ids], dim=1),
            magnitudes=torch.cat([first.magnitudes, second.magnitudes], dim=1),
            seed=first.seed,
        )

    @staticmethod
    def stack(plans: "list[AugPlan]") -> "AugPlan | None":
        """Plans of consecutive batches as one plan over all their samples, in order; the kernels' randomness
        (cutout centres, crop offsets) then comes from the first plan's seed. None when the plans differ in
        ops or slots (then they run one by one)."""
        first = plans[0]
        if any(p.ops != first.ops or p.op_ids.shape[1] != first.op_ids.shape[1] for p in plans):
            return None
        return replace(first, op_ids=torch.cat([p.op_ids for p in plans]),
                       magnitudes=torch.cat([p.magnitudes for p in plans]))


class Group(NamedTuple):
    """One kernel call of a plan slot: ``fn`` on the samples ``flat[rows]`` of the plan's index tensor, given
    each sample's member id ``flat[members]`` when ``fn`` runs an op family."""

    slot: int
    fn: Callable[..., object]
    rows: slice
    members: slice | None


def _plan_groups(plan: AugPlan, modality: str) -> tuple[list[Group], list[torch.Tensor]]:
    """On the host: for each slot, one group per op that some sample chose, or one per op family (``OpFamily``)
    when two or more of its members were chosen; Identity and NO_OP slots run nothing. A slot where every
    sample chose one op, followed by a slot of only the op it fuses with (``SlotFusion``), is one group."""
    op_ids = plan.op_ids.cpu()
    specs = [get_op(name) for name in plan.ops]
    families = [family_of(name) for name in plan.ops]
    groups: list[Group] = []
    flat: list[torch.Tensor] = []
    filled = 0
    slots = op_ids.shape[1]
    fused_into_previous = False
    for slot in range(slots):
        if fused_into_previous:
            fused_into_previous = False
            continue
        chosen = op_ids[:, slot]
        units: dict[object, list[int]] = {}  # a family, or an op without one -> the op ids chosen in this slot
        for k in torch.unique(chosen).tolist():
            if k == NO_OP or specs[k].name == "Identity":
                continue
            if specs[k].modality != modality:
                raise ConfigError(f"op {specs[k].name!r} has modality {specs[k].modality!r}; this plan runs "
                                  f"on {modality} data")
            units.setdefault(families[k] or k, []).append(k)
        fusion = _slot_fusion(units, chosen, op_ids[:, slot + 1] if slot + 1 < slots else None, specs)
        if fusion is not None:
            fn, then_mask = fusion
            n = len(chosen)
            groups.append(Group(slot, fn, slice(filled, filled + n), slice(filled + n, filled + 2 * n)))
            flat += [torch.arange(n), then_mask]
            filled += 2 * n
            fused_into_previous = True
            continue
        for unit, ks in units.items():
            if len(ks) > 1:  # one kernel for the family's samples, told which member each sample is
                member_of = torch.full((len(specs),), -1, dtype=torch.long)
                member_of[ks] = torch.tensor([unit.members.index(specs[k].name) for k in ks])
                idx = torch.isin(chosen, torch.tensor(ks)).nonzero().squeeze(1)
                n = len(idx)
                groups.append(Group(slot, unit.fn, slice(filled, filled + n), slice(filled + n, filled + 2 * n)))
                flat += [idx, member_of[chosen[idx]]]
                filled += 2 * n
            else:
                idx = (chosen == ks[0]).nonzero().squeeze(1)
                groups.append(Group(slot, specs[ks[0]].fn, slice(filled, filled + len(idx)), None))
                flat.append(idx)
                filled += len(idx)
    return groups, flat


def _slot_fusion(units: dict[object, list[int]], chosen: torch.Tensor, following: torch.Tensor | None,
                 specs: list) -> tuple[Callable[..., object], torch.Tensor] | None:
    """(kernel, per-sample mask of the next slot's op) when this slot (one op for every sample) and the next
    run as one ``SlotFusion``; else None."""
    if following is None or len(units) != 1:
        return None
    (first,) = units.values()
    if len(first) != 1 or not bool((chosen == first[0]).all()):
        return None
    then = [k for k in torch.unique(following).tolist() if k != NO_OP and specs[k].name != "Identity"]
    if len(then) != 1:
        return None
    fusion = fusion_of(specs[first[0]].name, specs[then[0]].name)
    if fusion is None:
        return None
    return fusion.fn, (following == then[0]).long()


def _apply_grouped(data: tuple[torch.Tensor, ...], plan: AugPlan, modality: str,
                   *context: object) -> tuple[torch.Tensor, ...]:
    """Run ``plan`` over per-sample tensors ``data`` (all (B, ...)): for each slot, each op (or op family) of
    the plan's vocabulary runs once on the samples that chose it, ``fn(*data[idx], magnitude[idx], generator,
    *context)``, so kernel launches are bounded by slots x ops, never by the batch size. The kernels'
    randomness comes from one generator seeded by ``plan.seed``: the same plan always gives the same output."""
    first = data[0]
    if plan.batch_size != first.shape[0]:
        raise ConfigError(f"plan is for {plan.batch_size} samples but the batch has {first.shape[0]}")
    # Policies draw plans on the host, so the groups are found there: no device-to-host sync per batch
    # (a plan already on the device costs one copy back). Every group's sample indices then travel in ONE
    # pinned, non-blocking copy, the magnitudes in another: a copy from pageable memory would synchronise.
    with one_thread():  # tiny host tensors (host_threads)
        groups, flat = _plan_groups(plan, modality)
        if not groups:
            return data
        device = first.device
        indices = to_device(torch.cat(flat), device)
        mags = to_device(plan.magnitudes.to(first.dtype if first.is_floating_point() else torch.float32), device)
    generator = torch.Generator(device=device).manual_seed(plan.seed)
    out = data
    for group in groups:
        members = (indices[group.members],) if group.members is not None else ()
        idx = indices[group.rows]
        whole = len(idx) == first.shape[0]  # every sample chose this op (crop+flip's crop): no gather, no scatter
        inputs = out if whole else tuple(t.index_select(0, idx) for t in out)  # 4x t[idx] on the CPU
        magnitudes = mags[:, group.slot] if whole else mags[idx, group.slot]
        results = group.fn(*inputs, magnitudes, generator, *context, *members)
        results = results if isinstance(results, tuple) else (results,)
        if whole:
            out = tuple(r.to(t.dtype) for t, r in zip(out, results))
            continue
        if out is data:
            out = tuple(t.clone() for t in data)  # scattered into below; the caller's tensors stay as they were
        for t, r in zip(out, results):
            t.index_copy_(0, idx, r.to(t.dtype))  # indices are unique within a group
    return out


def apply_plan(images: torch.Tensor, plan: AugPlan) -> torch.Tensor:
    """Apply ``plan`` to float images (B, C, H, W) in [0, 1] on their own device; returns a new tensor
    (or ``images`` itself when the plan changes nothing)."""
    if images.dim() != 4:
        raise ConfigError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    return _apply_grouped((images,), plan, "image")[0]


if TYPE_CHECKING:  # the type only: ops are registered lazily by get_op, not by importing this module
    from adaptaug.ops.text import TextOpContext


def apply_token_plan(ids: torch.Tensor, lengths: torch.Tensor, plan: AugPlan,
                     context: "TextOpContext") -> tuple[torch.Tensor, torch.Tensor]:
    """Apply ``plan`` to right-padded token ids (B, T) with lengths (B,); returns new (ids, lengths).

    The text twin of :func:`apply_plan`: grouped by op per slot (kernel launches bounded by slots x ops), the
    kernels' randomness from one generator seeded by ``plan.seed``, so the same plan gives the same tokens.
    ``context`` (:class:`adaptaug.ops.text.TextOpContext`) carries the pad/unk ids and the synonym table.
    """
    if ids.dim() != 2 or lengths.shape != ids.shape[:1]:
        raise ConfigError(f"token ids must be (B, T) with lengths (B,), got {tuple(ids.shape)} and "
                          f"{tuple(lengths.shape)}")
    out_ids, out_lengths = _apply_grouped((ids, lengths), plan, "text", context.to(ids.device))
    return out_ids, out_lengths


if TYPE_CHECKING:
    from adaptaug.ops.tagging import TaggingContext


def apply_tagging_plan(ids: torch.Tensor, tags: torch.Tensor, lengths: torch.Tensor, plan: AugPlan,
                       context: "TaggingContext") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Apply ``plan`` to NER sentences: ids (B, T), tags (B, T) (padded with -100) and lengths (B,); returns
    new (ids, tags, lengths) of the same shapes, tokens and tags changed together (Dai & Adel 2020 ops).

    Grouped by op per slot as :func:`apply_plan`; randomness from one generator seeded by ``plan.seed``.
    ``context`` (:class:`adaptaug.ops.tagging.TaggingContext`) carries the training tables the ops draw from.
    Mention replacement may change lengths; results are cut at ``T``.
    """
    if ids.dim() != 2 or tags.shape != ids.shape or lengths.shape != ids.shape[:1]:
        raise ConfigError(f"NER batches must be ids (B, T), tags (B, T) and lengths (B,), got "
                          f"{tuple(ids.shape)}, {tuple(tags.shape)} and {tuple(lengths.shape)}")
    out_ids, out_tags, out_lengths = _apply_grouped((ids, tags, lengths), plan, "tagging", context.to(ids.device))
    return out_ids, out_tags, out_lengths
