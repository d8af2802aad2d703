"""Host-to-device copies that do not block the host (the training loop's hot path must not synchronise)."""
from __future__ import annotations

import torch


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``. CPU -> CUDA copies go through pinned memory with ``non_blocking=True``: a copy from
    pageable memory makes the host wait for the GPU (``torch.cuda.set_sync_debug_mode`` flags it)."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
