"""Whole texts and texts inside others, for a validation split that looks like the test set.

SST-2's training file holds every phrase of its parse trees (67,349 texts from ~8,700 sentences, median 6 tokens),
while its test file holds whole sentences (median 17). A validation split drawn at random from the training file is
then mostly short phrases whose longer neighbours, often their own sentence, are training texts: it measures recall
of phrases seen in training, and it ordered the policies differently from the test set (``reports/sst2-reward/``).

``val_whole_texts`` draws the validation split from the *whole* texts instead (those not inside a longer training
text: 8,677 in SST-2, with the test set's length distribution) and drops every training text that lies inside a
validation text, so no validation sentence is seen in pieces. On IMDB (reviews, no phrases) it changes almost nothing.

"Inside" is a contiguous run of the same tokens. Each text becomes a string of one character per token, so the test is
Python's substring search on token boundaries; the candidate holders of a text are those that contain its rarest token.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # adaptaug.data.text imports this module
    from adaptaug.data.text import TokenizedText


def _strings(part: TokenizedText) -> list[str]:
    codes = (part.tokens.astype(np.int64) + 1).tolist()  # -1 (a word the training file lacks) -> chr(0)
    offsets = part.offsets.tolist()
    return ["".join(map(chr, codes[a:b])) for a, b in zip(offsets[:-1], offsets[1:])]


def inside(queries: TokenizedText, holders: TokenizedText, *, longer_only: bool) -> np.ndarray:
    """(len(queries),) bool: whether each query's tokens occur as a contiguous run inside some holder text
    (``longer_only``: inside a holder with more tokens, so a text is not inside its own copy). Empty queries: False."""
    query_len, holder_len = np.diff(queries.offsets), np.diff(holders.offsets)
    # postings: holder tokens sorted, with the holder each came from
    order = np.argsort(holders.tokens, kind="stable")
    sorted_tokens = holders.tokens[order]
    holder_of = np.repeat(np.arange(holder_len.shape[0]), holder_len)[order]
    left = np.searchsorted(sorted_tokens, queries.tokens, side="left")
    right = np.searchsorted(sorted_tokens, queries.tokens, side="right")
    postings = right - left
    # each query's rarest token: the first token of its run after sorting by (query, postings)
    query_of = np.repeat(np.arange(query_len.shape[0]), query_len)
    by_rarity = np.lexsort((postings, query_of))
    first = queries.offsets[:-1][query_len > 0]
    rarest = by_rarity[first]
    found = np.zeros(query_len.shape[0], dtype=bool)
    query_text = _strings(queries)
    holder_text = query_text if holders is queries else _strings(holders)  # whole_texts: one part, one pass
    for q, at in zip(np.nonzero(query_len > 0)[0].tolist(), rarest.tolist()):
        if postings[at] == 0:
            continue  # a token no holder has
        text, n = query_text[q], query_len[q]
        for h in np.unique(holder_of[left[at]:right[at]]).tolist():
            if (holder_len[h] > n if longer_only else holder_len[h] >= n) and text in holder_text[h]:
                found[q] = True
                break
    return found


def whole_texts(part: TokenizedText) -> np.ndarray:
    """(N,) bool: the non-empty texts that lie inside no longer text of ``part`` (SST-2: its sentences)."""
    return (np.diff(part.offsets) > 0) & ~inside(part, part, longer_only=True)


__all__ = ["inside", "whole_texts"]
