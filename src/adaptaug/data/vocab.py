"""Token vocabulary built from the training split only; saved as JSON (never pickle)."""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import torch

from adaptaug.errors import DataError

PAD, UNK = "<pad>", "<unk>"


class Vocab:
    """``token <-> id``; id 0 is padding, id 1 the unknown token. Built by frequency, ties by first sight."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if list(tokens[:2]) != [PAD, UNK]:
            raise DataError(f"a vocabulary must start with {PAD!r}, {UNK!r}; got {list(tokens[:2])}")
        if len(set(tokens)) != len(tokens):
            raise DataError("a vocabulary has repeated tokens")
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def build(cls, texts: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None) -> "Vocab":
        counts: Counter[str] = Counter()
        for tokens in texts:
            counts.update(tokens)
        ranked = [t for t, c in counts.most_common() if c >= min_freq and t not in (PAD, UNK)]
        if max_size is not None:
            ranked = ranked[: max(0, max_size - 2)]
        return cls([PAD, UNK, *ranked])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def encode_batch(self, texts: Sequence[Sequence[str]], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids (N, max_len) int64 and true lengths (N,), truncated to max_len."""
        ids = torch.full((len(texts), max_len), self.pad_id, dtype=torch.long)
        lengths = torch.zeros(len(texts), dtype=torch.long)
        for row, tokens in enumerate(texts):
            encoded = self.encode(tokens[:max_len])
            ids[row, : len(encoded)] = torch.tensor(encoded, dtype=torch.long)
            lengths[row] = len(encoded)
        return ids, lengths

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.itos, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Vocab":
        try:
            tokens = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read vocabulary {path}: {err}") from None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise DataError(f"vocabulary {path} is not a JSON list of strings")
        return cls(tokens)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"
