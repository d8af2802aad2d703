"""The seed's PrimaryNet for images: conv32-pool-conv64-pool-fc128-dropout-fc10.

Normalisation lives inside the model so every input is a float image in [0, 1]: augmentation kernels and
adversarial attacks then work in pixel space, and an eps means the same thing for every run.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class SeedCNN(nn.Module):
    """conv32 3x3 ReLU, maxpool 2, conv64 3x3 ReLU, maxpool 2, fc128 ReLU, dropout 0.5, fc ``num_classes``.

    Convolutions use padding 1 so the same net serves 8x8 digits, 28x28 MNIST and 32x32 CIFAR-10; the width
    of the flattened features is computed from ``image_shape``. ``classifier`` is the last linear layer
    (AugNet's alignment reward reads its input features).
    """

    def __init__(self, image_shape: Sequence[int], num_classes: int = 10,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 dropout: float = 0.5) -> None:
        super().__init__()
        channels, height, width = image_shape
        mean = [0.0] * channels if mean is None else list(mean)
        std = [1.0] * channels if std is None else list(std)
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std need {channels} values, got {len(mean)} and {len(std)}")
        self.register_buffer("mean", torch.tensor(mean).view(1, channels, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, channels, 1, 1))
        self.image_shape = (channels, height, width)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        flat = 64 * (height // 2 // 2) * (width // 2 // 2)  # two 2x2 pools, floor as MaxPool2d does
        self.hidden = nn.Sequential(nn.Linear(flat, 128), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) float in [0, 1] -> logits (B, num_classes)."""
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"expected images of shape (B, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(images.shape)}")
        x = (images - self.mean) / self.std
        return self.classifier(self.hidden(self.features(x)))
