"""BiLSTM sequence tagger for NER (Huang et al. 2015; Lample et al. 2016, "Neural Architectures for Named
Entity Recognition", without their CRF and character LSTM).

word embedding (128) [+ casing embedding] -> dropout -> BiLSTM (hidden per direction, on the padded batch:
:mod:`adaptaug.models.bilstm`) -> dropout -> ``classifier`` = Linear(2 * hidden, num_tags), the last layer
(AugNet's alignment reward reads its input features, one row per token).

Casing: input ids are *cased* word ids; ``lower_of`` maps each to the lower-cased form the word embedding
uses and ``shape_of`` to a casing class embedded in ``case_dim`` dimensions (Reimers & Gurevych 2017's
casing feature, a cheap stand-in for character features). With the tables left out, ids are embedded as
they are.
"""
from __future__ import annotations

import torch
from torch import nn

from adaptaug.models.bilstm import PaddedBiLSTM


class BiLSTMTagger(nn.Module):
    """``forward(ids (B, T), lengths (B,)) -> logits (B, T, num_tags)``; logits at padded positions are
    whatever the classifier makes of zero features and must be masked by the loss."""

    def __init__(self, vocab_size: int, num_tags: int, *, embedding_dim: int = 128, hidden: int = 128,
                 layers: int = 1, dropout: float = 0.5, lower_of: torch.Tensor | None = None,
                 shape_of: torch.Tensor | None = None, num_shapes: int = 0, case_dim: int = 16,
                 pad_id: int = 0) -> None:
        super().__init__()
        if (lower_of is None) != (shape_of is None):
            raise ValueError("pass both lower_of and shape_of, or neither")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size, self.num_tags, self.hidden, self.layers = vocab_size, num_tags, hidden, layers
        if lower_of is not None:
            self.register_buffer("lower_of", lower_of.long().clone())  # (V_ids,) cased id -> embedding row
            self.register_buffer("shape_of", shape_of.long().clone())  # (V_ids,) cased id -> casing class
            self.case_embedding: nn.Embedding | None = nn.Embedding(num_shapes, case_dim, padding_idx=0)
        else:
            self.lower_of = self.shape_of = None
            self.case_embedding = None
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.input_dim = embedding_dim + (case_dim if self.case_embedding is not None else 0)
        self.dropout = nn.Dropout(dropout)
        self.lstm = PaddedBiLSTM(self.input_dim, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.classifier = nn.Linear(2 * hidden, num_tags)
        for emb in (self.embedding, self.case_embedding):
            if emb is not None:
                # uniform(+-sqrt(3 / dim)), as Lample et al. initialise embeddings: torch's N(0, 1) rows are so
                # large that Adam's small steps barely move them in the first epochs
                bound = (3.0 / emb.embedding_dim) ** 0.5
                nn.init.uniform_(emb.weight, -bound, bound)
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> input embeddings (B, T, input_dim): the space embedding attacks perturb."""
        if self.case_embedding is None:
            return self.embedding(ids)
        return torch.cat([self.embedding(self.lower_of[ids]), self.case_embedding(self.shape_of[ids])], -1)

    def forward_embedded(self, emb: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """emb (B, T, input_dim), lengths (B,) -> logits (B, T, num_tags)."""
        h, _ = self.lstm(self.dropout(emb), lengths)  # (B, T, 2H), 0 at pads
        return self.classifier(self.dropout(h))  # (B, T, num_tags)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64, lengths (B,) -> logits (B, T, num_tags)."""
        return self.forward_embedded(self.embed(ids), lengths)

    def extra_repr(self) -> str:
        return f"casing={self.case_embedding is not None}"
