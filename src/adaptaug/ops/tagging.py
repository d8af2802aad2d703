"""Label-preserving NER ops on (token ids, tag ids) batches, registered at import (modality ``"tagging"``).

The four simple augmentations of Dai & Adel (COLING 2020), "An Analysis of Simple Data Augmentation for
Named Entity Recognition":

- ``LabelwiseTokenReplacement`` (LwTR): each token, with probability ``m``, becomes another training token
  with the same tag, drawn from that tag's token distribution in the training set (tags unchanged).
- ``MentionReplacement`` (MR): each entity mention, with probability ``m``, becomes another training
  mention of the same type; its tags are re-spanned ``B-X I-X ...`` to the new length, so sentence
  lengths change (truncated at the batch width ``T``, which cuts an entity short but never breaks BIO).
- ``NerSynonymReplacement`` (SR, restricted to ``O`` tokens so an entity never loses its label): each ``O``
  token that has synonyms in the vocabulary, with probability ``m``, becomes one of them. The synonym
  table (vocab id -> candidate ids) is built by the task from WordNet; without a synonym source the task
  leaves this op out of its op space rather than run an op that does nothing.
- ``ShuffleWithinSegments`` (SiS): the sentence is split into same-label segments (each mention, each run
  of ``O`` tokens); each segment, with probability ``m``, has its tokens shuffled. Tags stay in place
  (``B-X`` first), so they stay aligned and valid.

Kernel signature (all four)::

    fn(ids (B, T) int64, tags (B, T) int64, lengths (B,) int64, magnitude (B,) float in [0, 1],
       generator, context: TaggingContext) -> (ids, tags, lengths)

Padding is word id ``context.pad_id`` (0) and tag :data:`~adaptaug.data.conll.PAD_TAG` (-100); outputs are
padded the same way. ``magnitude`` is a per-sample probability (per token, mention or segment); 0 is the
identity. Every random draw has a fixed shape and comes from ``generator``, so the same plan gives the same
batch. Nothing loops over the batch: mention replacement computes where every output token comes from
(``repeat_interleave`` over per-position output counts) and scatters them in one go.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import torch
from torch import Tensor

from adaptaug.errors import ConfigError, DataError
from adaptaug.ops.space import OpSpec, register_op

PAD_TAG = -100  # same value as adaptaug.data.conll.PAD_TAG (kept here so ops do not import the data layer)
O_KIND, B_KIND, I_KIND = 0, 1, 2

NER_OPS: tuple[str, ...] = ("LabelwiseTokenReplacement", "MentionReplacement", "NerSynonymReplacement",
                            "ShuffleWithinSegments")


@dataclass(frozen=True)
class TaggingContext:
    """What the NER ops need from the training set, as flat tensors (moved together with ``to``).

    Per tag ``k``: ``tag_pool[tag_offsets[k] : tag_offsets[k] + tag_counts[k]]`` are the word ids of every
    training occurrence with tag ``k`` (so sampling uniformly from it follows the training frequency).
    Per entity type ``e``: mentions ``mention_offsets[e] .. + mention_counts[e]`` index ``mention_start`` /
    ``mention_len`` into ``mention_tokens``. ``synonyms`` (V, K) holds candidate ids (-1 = none), with
    ``synonym_counts`` (V,).
    """

    tag_kind: Tensor  # (num_tags,) O_KIND | B_KIND | I_KIND
    tag_type: Tensor  # (num_tags,) entity type index, -1 for O
    b_tag: Tensor  # (num_types,) tag id of B-type
    i_tag: Tensor  # (num_types,) tag id of I-type (-1 when the type never continues)
    tag_pool: Tensor  # (N_tokens,) word ids grouped by tag
    tag_offsets: Tensor  # (num_tags,)
    tag_counts: Tensor  # (num_tags,)
    mention_tokens: Tensor  # (N_mention_tokens,) word ids of all training mentions, back to back
    mention_start: Tensor  # (N_mentions,) grouped by type
    mention_len: Tensor  # (N_mentions,)
    mention_offsets: Tensor  # (num_types,)
    mention_counts: Tensor  # (num_types,)
    synonyms: Tensor  # (V, K) int64, -1 padded
    synonym_counts: Tensor  # (V,)
    types: tuple[str, ...] = ()
    pad_id: int = 0

    @property
    def has_synonyms(self) -> bool:
        return bool((self.synonym_counts > 0).any())

    def to(self, device: torch.device | str) -> "TaggingContext":
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if isinstance(getattr(self, f.name), Tensor)})

    def __repr__(self) -> str:
        return (f"TaggingContext(tags={self.tag_kind.numel()}, types={self.types}, tokens={self.tag_pool.numel()}, "
                f"mentions={self.mention_start.numel()}, words_with_synonyms={int((self.synonym_counts > 0).sum())})")

    @classmethod
    def build(cls, ids: Tensor, tags: Tensor, lengths: Tensor, tag_names: Sequence[str],
              synonyms: Tensor | None = None, vocab_size: int | None = None, pad_id: int = 0) -> "TaggingContext":
        """Tables from training data: ids/tags (N, T) padded, lengths (N,), tag names indexed by tag id."""
        tag_names = tuple(tag_names)
        types = tuple(sorted({t[2:] for t in tag_names if t != "O"}))
        kind = torch.tensor([O_KIND if t == "O" else B_KIND if t.startswith("B-") else I_KIND for t in tag_names])
        typ = torch.tensor([-1 if t == "O" else types.index(t[2:]) for t in tag_names])
        b_tag = torch.tensor([tag_names.index(f"B-{e}") if f"B-{e}" in tag_names else -1 for e in types],
                             dtype=torch.long)
        i_tag = torch.tensor([tag_names.index(f"I-{e}") if f"I-{e}" in tag_names else -1 for e in types],
                             dtype=torch.long)
        if (b_tag < 0).any():
            raise DataError(f"every entity type needs a B- tag; tags are {tag_names}")
        valid = torch.arange(ids.shape[1]) < lengths[:, None]  # (N, T)
        flat_ids, flat_tags = ids[valid], tags[valid]  # row-major: sentence order kept
        order = torch.argsort(flat_tags, stable=True)
        tag_counts = torch.bincount(flat_tags, minlength=len(tag_names))
        # mentions: a B- token starts one; its I- tokens follow (IOB2, checked by the loader)
        tag_kind_flat = kind[flat_tags]
        starts = (tag_kind_flat == B_KIND).nonzero().squeeze(1)  # (M,) positions in the flat stream
        # a mention ends where the next token is not I- (sentence ends are covered: a new sentence never
        # starts with I- in valid IOB2, and its first token is O or B-)
        sent_start = torch.zeros_like(flat_tags, dtype=torch.bool)
        sent_start[torch.cumsum(lengths, 0)[:-1]] = True
        cont = (tag_kind_flat == I_KIND) & ~sent_start
        # run length of continuation after each position: next index that is not a continuation
        not_cont = (~cont).nonzero().squeeze(1)
        nxt = not_cont[torch.searchsorted(not_cont, starts, right=True).clamp(max=not_cont.numel() - 1)]
        nxt = torch.where(nxt > starts, nxt, torch.full_like(nxt, flat_tags.numel()))
        m_len = nxt - starts
        m_type = typ[flat_tags[starts]]
        m_order = torch.argsort(m_type, stable=True)
        mention_counts = torch.bincount(m_type, minlength=len(types)) if starts.numel() else torch.zeros(
            len(types), dtype=torch.long)
        if synonyms is None:
            v = vocab_size if vocab_size is not None else int(ids.max()) + 1
            synonyms = torch.full((v, 1), -1, dtype=torch.long)
        return cls(
            tag_kind=kind, tag_type=typ, b_tag=b_tag, i_tag=i_tag,
            tag_pool=flat_ids[order], tag_offsets=torch.cumsum(tag_counts, 0) - tag_counts, tag_counts=tag_counts,
            mention_tokens=flat_ids, mention_start=starts[m_order], mention_len=m_len[m_order],
            mention_offsets=torch.cumsum(mention_counts, 0) - mention_counts, mention_counts=mention_counts,
            synonyms=synonyms.long(), synonym_counts=(synonyms >= 0).sum(1), types=types, pad_id=pad_id,
        )


# ------------------------------------------------------------------------------------------ helpers


def _check(ids: Tensor, tags: Tensor, lengths: Tensor, magnitude: Tensor) -> None:
    if ids.dim() != 2 or tags.shape != ids.shape:
        raise DataError(f"ids and tags must both be (B, T), got {tuple(ids.shape)} and {tuple(tags.shape)}")
    if lengths.shape != (ids.shape[0],) or magnitude.shape != (ids.shape[0],):
        raise DataError(f"lengths and magnitude must be ({ids.shape[0]},), got {tuple(lengths.shape)} and "
                        f"{tuple(magnitude.shape)}")


def _valid(ids: Tensor, lengths: Tensor) -> Tensor:
    return torch.arange(ids.shape[1], device=ids.device) < lengths[:, None]  # (B, T) real tokens


def _rand(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator, device=device)


def _pick(offsets: Tensor, counts: Tensor, u: Tensor) -> Tensor:
    """Index ``offsets + floor(u * counts)`` (uniform among ``counts`` entries); 0 where counts is 0."""
    k = (u * counts).long().clamp(max=(counts - 1).clamp(min=0))
    return torch.where(counts > 0, offsets + k, torch.zeros_like(k))


# ------------------------------------------------------------------------------------------ kernels


def labelwise_token_replacement(ids: Tensor, tags: Tensor, lengths: Tensor, magnitude: Tensor,
                                generator: torch.Generator, context: TaggingContext) -> tuple[Tensor, Tensor, Tensor]:
    """LwTR: each real token, with probability m, -> a training token with the same tag."""
    _check(ids, tags, lengths, magnitude)
    b, t = ids.shape
    hit = _rand((b, t), generator, ids.device) < magnitude[:, None]  # (B, T)
    which = _rand((b, t), generator, ids.device)
    tag = tags.clamp(min=0)
    counts = context.tag_counts[tag]  # (B, T) training occurrences of this tag
    replace_ = _valid(ids, lengths) & hit & (counts > 0)
    new = context.tag_pool[_pick(context.tag_offsets[tag], counts, which)]
    return torch.where(replace_, new, ids), tags.clone(), lengths.clone()


def ner_synonym_replacement(ids: Tensor, tags: Tensor, lengths: Tensor, magnitude: Tensor,
                            generator: torch.Generator, context: TaggingContext) -> tuple[Tensor, Tensor, Tensor]:
    """SR on O tokens: each O token with synonyms, with probability m, -> one of its synonyms."""
    _check(ids, tags, lengths, magnitude)
    b, t = ids.shape
    hit = _rand((b, t), generator, ids.device) < magnitude[:, None]
    which = _rand((b, t), generator, ids.device)
    word = ids.clamp(0, context.synonyms.shape[0] - 1)
    counts = context.synonym_counts[word]  # (B, T)
    is_o = context.tag_kind[tags.clamp(min=0)] == O_KIND
    replace_ = _valid(ids, lengths) & is_o & hit & (counts > 0) & (ids < context.synonyms.shape[0])
    k = (which * counts).long().clamp(max=(counts - 1).clamp(min=0))
    new = context.synonyms[word, k.clamp(max=context.synonyms.shape[1] - 1)]
    return torch.where(replace_, new, ids), tags.clone(), lengths.clone()


def mention_replacement(ids: Tensor, tags: Tensor, lengths: Tensor, magnitude: Tensor,
                        generator: torch.Generator, context: TaggingContext) -> tuple[Tensor, Tensor, Tensor]:
    """MR: each mention, with probability m, -> a training mention of its type; tags re-spanned."""
    _check(ids, tags, lengths, magnitude)
    b, t = ids.shape
    dev = ids.device
    hit = _rand((b, t), generator, dev) < magnitude[:, None]  # drawn at every position, used at B- tokens
    which = _rand((b, t), generator, dev)
    valid = _valid(ids, lengths)
    tag = tags.clamp(min=0)
    kind = torch.where(valid, context.tag_kind[tag], torch.full_like(tag, O_KIND))  # (B, T)
    typ = context.tag_type[tag].clamp(min=0)  # (B, T); meaningless where kind is O
    is_b = kind == B_KIND
    n_type = context.mention_counts[typ]
    replaced_b = is_b & hit & (n_type > 0)  # (B, T) mentions to replace, marked at their B- token
    if not bool(replaced_b.any()):  # nothing to do: exactly the input (one sync, saves the scatter)
        return ids.clone(), tags.clone(), lengths.clone()
    pick = _pick(context.mention_offsets[typ], n_type, which)
    new_start, new_len = context.mention_start[pick], context.mention_len[pick]  # (B, T)
    # each I- token belongs to the latest B- before it (valid IOB2)
    pos = torch.arange(t, device=dev).expand(b, t)
    last_b = torch.cummax(torch.where(is_b, pos, torch.full_like(pos, -1)), dim=1).values.clamp(min=0)
    in_replaced = (kind != O_KIND) & replaced_b.gather(1, last_b)
    # how many output tokens each input position emits: 1 kept, new_len for a replaced B-, 0 for its I-
    emit = torch.where(replaced_b, new_len, torch.where(in_replaced | ~valid, 0, 1))  # (B, T)
    out_start = torch.cumsum(emit, 1) - emit  # (B, T) output column of each position's first token
    new_lengths = emit.sum(1).clamp(max=t)
    flat_emit = emit.reshape(-1)
    src = torch.repeat_interleave(torch.arange(b * t, device=dev), flat_emit)  # (N_out,) source position
    k = torch.arange(src.numel(), device=dev) - (torch.cumsum(flat_emit, 0) - flat_emit)[src]  # index in group
    row, col = src // t, out_start.reshape(-1)[src] + k
    is_new = replaced_b.reshape(-1)[src]
    mention_idx = torch.where(is_new, new_start.reshape(-1)[src] + k, torch.zeros_like(k))
    token = torch.where(is_new, context.mention_tokens[mention_idx], ids.reshape(-1)[src])
    src_type = typ.reshape(-1)[src]
    new_tag = torch.where(k == 0, context.b_tag[src_type], context.i_tag[src_type])
    tag_out = torch.where(is_new, new_tag, tags.reshape(-1)[src])
    keep = col < t  # truncation at the batch width
    out_ids = torch.full_like(ids, context.pad_id)
    out_tags = torch.full_like(tags, PAD_TAG)
    out_ids[row[keep], col[keep]] = token[keep]
    out_tags[row[keep], col[keep]] = tag_out[keep]
    return out_ids, out_tags, new_lengths


def shuffle_within_segments(ids: Tensor, tags: Tensor, lengths: Tensor, magnitude: Tensor,
                            generator: torch.Generator, context: TaggingContext) -> tuple[Tensor, Tensor, Tensor]:
    """SiS: each same-label segment, with probability m, has its tokens shuffled; tags stay in place."""
    _check(ids, tags, lengths, magnitude)
    b, t = ids.shape
    dev = ids.device
    seg_hit = _rand((b, t), generator, dev)  # one draw per segment index
    keys = _rand((b, t), generator, dev)
    valid = _valid(ids, lengths)
    kind = torch.where(valid, context.tag_kind[tags.clamp(min=0)], torch.full_like(tags, O_KIND))
    prev_kind = torch.cat([torch.full_like(kind[:, :1], -1), kind[:, :-1]], 1)
    # a segment starts at each B- and at each O that follows a non-O (or starts the sentence)
    starts = valid & ((kind == B_KIND) | ((kind == O_KIND) & (prev_kind != O_KIND)))
    seg = (torch.cumsum(starts.long(), 1) - 1).clamp(min=0)  # (B, T) segment index of each token
    chosen = seg_hit.gather(1, seg) < magnitude[:, None]
    pos = torch.arange(t, device=dev, dtype=torch.float64).expand(b, t) / t  # in [0, 1): keeps order
    within = torch.where(chosen, keys.double(), pos)
    # segments in order, tokens shuffled or kept inside; padding after everything, in order
    key = torch.where(valid, seg.double() * 2 + within, 2.0 * t + pos)
    order = key.argsort(dim=1)
    return ids.gather(1, order), tags.clone(), lengths.clone()


# ------------------------------------------------------------------------------------------ registry
# Magnitude = probability per token / mention / segment. Standard range up to 0.5; the wide range goes to
# 0.7, the largest rate Dai & Adel tuned over ({0.1, 0.3, 0.5, 0.7}).
_RATE = dict(range=(0.0, 0.5), wide_range=(0.0, 0.7))

for _spec in (
    OpSpec("LabelwiseTokenReplacement", "tagging", labelwise_token_replacement, **_RATE,
           doc="per-token probability of a same-tag training token (Dai & Adel 2020, LwTR)"),
    OpSpec("MentionReplacement", "tagging", mention_replacement, **_RATE,
           doc="per-mention probability of a same-type training mention, tags re-spanned (MR)"),
    OpSpec("NerSynonymReplacement", "tagging", ner_synonym_replacement, **_RATE,
           doc="per-O-token probability of a WordNet synonym in the vocabulary (SR)"),
    OpSpec("ShuffleWithinSegments", "tagging", shuffle_within_segments, **_RATE,
           doc="per-segment probability of shuffling its tokens, tags in place (SiS)"),
):
    register_op(_spec)
del _spec


def check_bio(tags: Tensor, lengths: Tensor, context: TaggingContext) -> None:
    """Raise ConfigError unless every row is valid IOB2 over its real tokens and padded after them."""
    valid = _valid(tags, lengths)
    if bool(((tags == PAD_TAG) == valid).any()):
        raise ConfigError("tags are padded inside a sentence or real after its length")
    tag = tags.clamp(min=0)
    kind = torch.where(valid, context.tag_kind[tag], torch.full_like(tag, O_KIND))
    typ = torch.where(valid, context.tag_type[tag], torch.full_like(tag, -1))
    prev_kind = torch.cat([torch.full_like(kind[:, :1], O_KIND), kind[:, :-1]], 1)
    prev_typ = torch.cat([torch.full_like(typ[:, :1], -1), typ[:, :-1]], 1)
    bad = (kind == I_KIND) & ((prev_kind == O_KIND) | (prev_typ != typ))
    if bool(bad.any()):
        r, c = bad.nonzero()[0].tolist()
        raise ConfigError(f"invalid IOB2 at sentence {r}, token {c}: I- tag does not continue an entity")


__all__ = ["NER_OPS", "PAD_TAG", "TaggingContext", "check_bio", "labelwise_token_replacement",
           "mention_replacement", "ner_synonym_replacement", "shuffle_within_segments"]
