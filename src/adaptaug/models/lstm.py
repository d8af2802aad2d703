"""The seed's BiLSTM sentiment classifier (IMDB, SST-2).

embedding 128 (id 0 = padding) -> BiLSTM 64 per direction over the padded batch (padding never reaches the
final states; see :mod:`adaptaug.models.bilstm`) -> concatenated final states (128) -> fc 128 ReLU -> dropout
0.5 -> one logit (sigmoid via BCE-with-logits). ``classifier`` is the last linear layer, so AugNet's alignment
reward reads its 128 input features. ``forward_embedded`` runs from embeddings, for attacks in embedding space.
"""
from __future__ import annotations

import torch
from torch import nn

from adaptaug.models.bilstm import PaddedBiLSTM


class BiLSTMClassifier(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int = 128, hidden: int = 64, fc: int = 128,
                 dropout: float = 0.5, num_outputs: int = 1, padding_idx: int = 0) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2 (<pad>, <unk>), got {vocab_size}")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.lstm = PaddedBiLSTM(embed_dim, hidden)
        self.hidden = nn.Sequential(nn.Linear(2 * hidden, fc), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.classifier = nn.Linear(fc, num_outputs)
        self.num_outputs = num_outputs

    def encode(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """emb (B, T, E), lengths (B,) in [1, T] -> (B, 2H) final forward and backward states."""
        if emb.dim() != 3 or lengths.shape != emb.shape[:1]:
            raise ValueError(f"expected embeddings (B, T, E) and lengths (B,), got {tuple(emb.shape)} and "
                             f"{tuple(lengths.shape)}")
        emb = emb[:, : int(lengths.max())]  # columns past the longest text are padding in every row
        return self.lstm(emb, lengths)[1]  # (B, 2H)

    def forward_embedded(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits (B,) (or (B, num_outputs) when > 1) from embedded tokens (B, T, E)."""
        logits = self.classifier(self.hidden(self.encode(emb, lengths)))  # (B, num_outputs)
        return logits.squeeze(-1) if self.num_outputs == 1 else logits

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 right-padded with 0, lengths (B,) -> logits (B,)."""
        if ids.dim() != 2 or lengths.shape != ids.shape[:1]:
            raise ValueError(f"expected ids (B, T) and lengths (B,), got {tuple(ids.shape)} and {tuple(lengths.shape)}")
        return self.forward_embedded(self.embedding(ids[:, : int(lengths.max())]), lengths)  # embed no dead columns
