"""Text augmentation kernels on token ids: the EDA vocabulary (Wei & Zou, EMNLP 2019) plus ``<unk>`` masking.

Every kernel is ``fn(ids, lengths, magnitude, generator, context) -> (ids, lengths)``:
- ``ids`` (B, T) int64 right-padded with ``context.pad_id``, ``lengths`` (B,) int64 in [1, T];
- ``magnitude`` (B,) float, per sample: the fraction of the text's tokens touched. A sample touches
  ``n = ceil(magnitude x length)`` tokens, so magnitude 0 is exactly the identity and any positive magnitude
  touches at least one token, as EDA's ``max(1, int(alpha * l))`` does;
- randomness (which tokens, which synonym, where to insert) comes only from ``generator``;
- outputs are new tensors; padding stays ``pad_id`` after the new length, a text never becomes empty
  (deletion keeps >= 1 token) and insertion truncates at T.

Kernels are batched: random sort keys + ``argsort`` pick ``n_b`` distinct positions per row, and stable sorts on
integer keys compact (deletion) or interleave (insertion) rows, so there is no Python loop over the batch.

Ops (magnitude range (0, 0.5), the EDA paper's alpha values lie in [0.05, 0.5]):
- ``RandomDeletion``: drop n tokens (EDA deletes each word with probability p; here exactly n).
- ``RandomSwap``: n disjoint swaps of two tokens (EDA's n swaps, drawn without overlap so the count is exact).
- ``RandomInsertion``: insert n tokens at random places, each a synonym of a random token of the text
  (the token itself when it has no synonym or there is no synonym table), as EDA does.
- ``SynonymReplacement``: replace n tokens that have synonyms with a random synonym; needs a synonym table.
- ``UnkMask``: replace n tokens with ``<unk>`` (word dropout as in Iyyer et al. 2015 / Bowman et al. 2016).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from adaptaug.errors import ConfigError
from adaptaug.ops.space import OpSpec, register_op

TEXT_OPS = ("RandomDeletion", "RandomSwap", "RandomInsertion", "SynonymReplacement", "UnkMask")
EDA_OPS = ("SynonymReplacement", "RandomInsertion", "RandomSwap", "RandomDeletion")  # the paper's four, its order
MAGNITUDE_RANGE = (0.0, 0.5)  # fraction of tokens touched


@dataclass(frozen=True)
class TextOpContext:
    """What text kernels need beyond the batch: special ids, vocabulary size, synonym candidates."""

    vocab_size: int
    pad_id: int = 0
    unk_id: int = 1
    synonyms: torch.Tensor | None = None  # (V, K) int64 candidate ids per vocabulary id, -1 padded; None = none

    def __post_init__(self) -> None:
        if self.synonyms is not None:
            if self.synonyms.dim() != 2 or self.synonyms.shape[0] != self.vocab_size:
                raise ConfigError(f"synonym table must be (vocab_size={self.vocab_size}, K), "
                                  f"got {tuple(self.synonyms.shape)}")
            object.__setattr__(self, "synonyms", self.synonyms.long())

    @property
    def synonym_counts(self) -> torch.Tensor | None:
        """(V,) number of candidates per id (candidates come first in each row, -1 after)."""
        return None if self.synonyms is None else (self.synonyms >= 0).sum(1)

    def to(self, device: torch.device | str) -> "TextOpContext":
        return self if self.synonyms is None else replace(self, synonyms=self.synonyms.to(device))

    def __repr__(self) -> str:
        k = "none" if self.synonyms is None else self.synonyms.shape[1]
        return f"TextOpContext(vocab_size={self.vocab_size}, pad_id={self.pad_id}, unk_id={self.unk_id}, synonyms={k})"


# --------------------------------------------------------------------------------------------- helpers


def _check(ids: torch.Tensor, lengths: torch.Tensor, magnitude: torch.Tensor) -> None:
    if ids.dim() != 2 or lengths.shape != ids.shape[:1] or magnitude.shape != ids.shape[:1]:
        raise ConfigError(f"text kernels take ids (B, T), lengths (B,) and magnitude (B,); got "
                          f"{tuple(ids.shape)}, {tuple(lengths.shape)}, {tuple(magnitude.shape)}")


def touched(magnitude: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B,) tokens a sample touches: ceil(magnitude x length); the small slack absorbs float error (0.1 x 10)."""
    return torch.ceil(magnitude.float().clamp_min(0) * lengths.float() - 1e-4).clamp_min(0).long()


def _positions(ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)  # (B, T)
    return pos, pos < lengths[:, None]  # positions, valid (non-pad) mask


def _rank(eligible: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, T) a random rank of each eligible position in its row (0, 1, ...); ineligible ones rank last."""
    keys = torch.rand(eligible.shape, generator=generator, device=eligible.device)
    keys = torch.where(eligible, keys, torch.full_like(keys, 2.0))
    return keys.argsort(1).argsort(1)


def _pick(eligible: torch.Tensor, n: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, T) bool: min(n_b, eligible_b) distinct eligible positions per row, uniformly at random."""
    return (_rank(eligible, generator) < n[:, None]) & eligible


def _random_synonym(tokens: torch.Tensor, context: TextOpContext, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """A uniformly drawn synonym of each token (any shape) and whether it has one; tokens without stay."""
    if context.synonyms is None:
        return tokens, torch.zeros_like(tokens, dtype=torch.bool)
    table = context.synonyms.to(tokens.device)
    counts = (table >= 0).sum(1)[tokens]  # (...) candidates of each token
    u = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    j = (u * counts).long().clamp_max(table.shape[1] - 1)  # uniform among the first `counts` columns
    cand = table[tokens, j]
    has = counts > 0
    return torch.where(has, cand, tokens), has


# --------------------------------------------------------------------------------------------- kernels


def random_deletion(ids: torch.Tensor, lengths: torch.Tensor, magnitude: torch.Tensor, generator: torch.Generator,
                    context: TextOpContext) -> tuple[torch.Tensor, torch.Tensor]:
    _check(ids, lengths, magnitude)
    pos, valid = _positions(ids, lengths)
    n = torch.minimum(touched(magnitude, lengths), lengths - 1)  # keep >= 1 token
    keep = valid & ~_pick(valid, n, generator)
    new_lengths = keep.sum(1)
    order = torch.where(keep, pos, pos + ids.shape[1]).argsort(dim=1, stable=True)  # kept tokens first, in order
    out = ids.gather(1, order)
    return torch.where(pos < new_lengths[:, None], out, torch.full_like(out, context.pad_id)), new_lengths


def random_swap(ids: torch.Tensor, lengths: torch.Tensor, magnitude: torch.Tensor, generator: torch.Generator,
                context: TextOpContext) -> tuple[torch.Tensor, torch.Tensor]:
    _check(ids, lengths, magnitude)
    pos, valid = _positions(ids, lengths)
    n = torch.minimum(touched(magnitude, lengths), lengths // 2)[:, None]  # (B, 1) disjoint pairs
    rank = _rank(valid, generator)  # (B, T)
    order = rank.argsort(1)  # order[b, r] = position of rank r
    # ranks [0, n) pair with ranks [n, 2n): the token at rank r trades places with the one at rank r +- n
    partner_rank = torch.where(rank < n, rank + n, rank - n).clamp(0, ids.shape[1] - 1)
    perm = torch.where(rank < 2 * n, order.gather(1, partner_rank), pos)
    return ids.gather(1, perm), lengths.clone()


def random_insertion(ids: torch.Tensor, lengths: torch.Tensor, magnitude: torch.Tensor,
                     generator: torch.Generator, context: TextOpContext) -> tuple[torch.Tensor, torch.Tensor]:
    _check(ids, lengths, magnitude)
    batch, width = ids.shape
    pos, valid = _positions(ids, lengths)
    n = touched(magnitude, lengths)  # (B,)
    slots = int(n.max()) if batch else 0  # one sync: how many insertion columns this batch needs
    if slots == 0:
        return ids.clone(), lengths.clone()
    j = torch.arange(slots, device=ids.device).expand(batch, slots)  # (B, M)
    active = j < n[:, None]
    u = torch.rand(batch, slots, 2, generator=generator, device=ids.device)
    source = (u[..., 0] * lengths[:, None]).long().clamp_max(width - 1)  # a random token of the text
    inserted, _ = _random_synonym(ids.gather(1, source), context, generator)  # (B, M)
    where_to = (u[..., 1] * (lengths[:, None] + 1)).long().clamp_max(lengths[:, None])  # before token s, s <= len
    # integer sort keys: token at p -> 2p + 1, insertion before s -> 2s, then padding, then unused columns
    keys = torch.cat([torch.where(valid, 2 * pos + 1, 4 * width + pos),
                      torch.where(active, 2 * where_to, 6 * width + j)], 1)  # (B, T + M)
    order = keys.argsort(dim=1, stable=True)[:, :width]  # truncation at T keeps the first T
    out = torch.cat([ids, inserted], 1).gather(1, order)
    new_lengths = (lengths + n).clamp_max(width)
    return torch.where(pos < new_lengths[:, None], out, torch.full_like(out, context.pad_id)), new_lengths


def synonym_replacement(ids: torch.Tensor, lengths: torch.Tensor, magnitude: torch.Tensor,
                        generator: torch.Generator, context: TextOpContext) -> tuple[torch.Tensor, torch.Tensor]:
    _check(ids, lengths, magnitude)
    if context.synonyms is None:
        raise ConfigError("SynonymReplacement needs a synonym table, and this task has no synonym source "
                          "(synonyms='none'); use synonyms='cooc' (from the training data) or 'wordnet', "
                          "or leave the op out of the op space")
    _, valid = _positions(ids, lengths)
    synonym, has = _random_synonym(ids, context, generator)
    chosen = _pick(valid & has, touched(magnitude, lengths), generator)
    return torch.where(chosen, synonym, ids), lengths.clone()


def unk_mask(ids: torch.Tensor, lengths: torch.Tensor, magnitude: torch.Tensor, generator: torch.Generator,
             context: TextOpContext) -> tuple[torch.Tensor, torch.Tensor]:
    _check(ids, lengths, magnitude)
    _, valid = _positions(ids, lengths)
    chosen = _pick(valid & (ids != context.unk_id), touched(magnitude, lengths), generator)
    return torch.where(chosen, torch.full_like(ids, context.unk_id), ids), lengths.clone()


_DOCS = {
    "RandomDeletion": "delete ceil(m x len) tokens (>= 1 token kept)",
    "RandomSwap": "ceil(m x len) disjoint swaps of two tokens",
    "RandomInsertion": "insert ceil(m x len) synonyms of random tokens at random places, truncated at T",
    "SynonymReplacement": "replace ceil(m x len) tokens with a random synonym",
    "UnkMask": "replace ceil(m x len) tokens with <unk>",
}
_KERNELS = {"RandomDeletion": random_deletion, "RandomSwap": random_swap, "RandomInsertion": random_insertion,
            "SynonymReplacement": synonym_replacement, "UnkMask": unk_mask}

for _name in TEXT_OPS:
    register_op(OpSpec(_name, "text", _KERNELS[_name], range=MAGNITUDE_RANGE, doc=_DOCS[_name]))

__all__ = ["EDA_OPS", "MAGNITUDE_RANGE", "TEXT_OPS", "TextOpContext", "random_deletion", "random_insertion",
           "random_swap", "synonym_replacement", "touched", "unk_mask"]
