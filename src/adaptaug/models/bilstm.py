"""A bidirectional LSTM over right-padded batches, without packed sequences.

Why not ``pack_padded_sequence``: on the CPU a packed ``nn.LSTM`` leaves oneDNN's fused RNN kernel for a
step-by-step path that is ~6x slower for the seed's IMDB model (batch 64, 256 tokens; see BENCHMARKS.md).
Padding after the end of a text cannot change the forward direction's states before it, so the forward
direction runs on the padded batch as it is; the backward direction runs on each text reversed *within its
length* (pads stay at the end) and its outputs are reversed back. Outputs and final states equal a packed
bidirectional LSTM's (tested), and padded positions come out as exact zeros.
"""
from __future__ import annotations

import torch
from torch import nn


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x (B, T, ...) -> each row's first ``lengths[b]`` steps in reverse order, the rest unchanged."""
    t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    n = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    index = torch.where(t < n, n - 1 - t, t)  # (B, T): an involution
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class PaddedBiLSTM(nn.Module):
    """``forward(x (B, T, D), lengths (B,)) -> (outputs (B, T, 2H) with zeros at pads, final (B, 2H))``.

    ``final`` is the forward direction's state at the last real step and the backward direction's at the
    first, as ``h_n`` of a packed bidirectional LSTM (top layer). ``dropout`` applies between layers.
    """

    def __init__(self, input_dim: int, hidden: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be >= 1, got {layers}")
        self.hidden, self.layers = hidden, layers
        dims = [input_dim] + [2 * hidden] * (layers - 1)
        self.forward_lstms = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.backward_lstms = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.between = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or lengths.shape != x.shape[:1]:
            raise ValueError(f"expected x (B, T, D) and lengths (B,), got {tuple(x.shape)} and "
                             f"{tuple(lengths.shape)}")
        lengths = lengths.to(x.device).clamp(1, x.shape[1])
        real = (torch.arange(x.shape[1], device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        for layer, (fwd, bwd) in enumerate(zip(self.forward_lstms, self.backward_lstms)):
            if layer:
                x = self.between(x)
            ahead, _ = fwd(x)  # (B, T, H)
            behind, _ = bwd(reverse_within_length(x, lengths))
            x = torch.cat([ahead, reverse_within_length(behind, lengths)], dim=-1) * real  # zeros at pads
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, self.hidden)
        final = torch.cat([x[..., : self.hidden].gather(1, last).squeeze(1), x[:, 0, self.hidden:]], dim=-1)
        return x, final
