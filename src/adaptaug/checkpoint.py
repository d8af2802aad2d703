"""Per-epoch checkpoints for exact resume: written atomically, read with ``weights_only=True``.

A checkpoint holds everything that decides what happens next: model and optimizer, the policy (AugNet's
weights, optimizer, transition buffer, generator), the data-order generator, torch's global RNG (dropout),
the early-stopping state, the history so far and the elapsed time. Resuming from it on the CPU gives
exactly the numbers of the uninterrupted run.
"""
from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptaug.errors import ConfigError
from adaptaug.io import write_atomic

CHECKPOINT = "checkpoint.pt"
FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),  # MT19937 key, no pickle
        "numpy_pos": int(np.random.get_state()[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write ``run_dir/checkpoint.pt`` atomically: a kill at any moment leaves the previous one intact."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, **state}, buffer)
    write_atomic(Path(run_dir) / CHECKPOINT, buffer.getvalue())


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a resumable run: {CHECKPOINT} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or foreign file: say which, never unpickle it
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ConfigError(f"cannot read checkpoint {path}: {type(err).__name__}: {first_line}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ConfigError(f"{path} is not an adaptaug checkpoint (format {FORMAT_VERSION})")
    return state
